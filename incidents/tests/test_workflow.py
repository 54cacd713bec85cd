"""The status workflow, through `services.change_status`: who may make which move, and
what a move stamps.

The expected outcomes are written out below as one table per role, from the rules in the
issue, not derived from `models.TRANSITIONS`, so a mistake there shows up here.
"""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from incidents import services
from incidents.models import EventKind, Incident, IncidentEvent, Status

from .factories import advance_to, make_incident

OK = "ok"  # the move is made
NO = "denied"  # the workflow has the move, this user may not make it: PermissionDenied
XX = "invalid"  # the workflow has no such move: ValidationError

COLUMNS = (Status.REPORTED, Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED)

# Rows: the status the incident is in. Columns: the status asked for, in COLUMNS order
# (Reported, Acknowledged, In Progress, Resolved, Closed).
# The incident is public and reported by `reporter`; `other` is any other signed-in user.
# fmt: off
MOVES = {
    "staff": {
        # from ↓  to →         Rep Ack InP Res Clo
        Status.REPORTED:      (XX, OK, XX, OK, OK),
        Status.ACKNOWLEDGED:  (XX, XX, OK, OK, OK),
        Status.IN_PROGRESS:   (XX, XX, XX, OK, OK),
        Status.RESOLVED:      (XX, XX, OK, XX, OK),
        Status.CLOSED:        (XX, XX, XX, XX, XX),
    },
    "responder": {
        # from ↓  to →         Rep Ack InP Res Clo
        Status.REPORTED:      (XX, OK, XX, OK, NO),
        Status.ACKNOWLEDGED:  (XX, XX, OK, OK, NO),
        Status.IN_PROGRESS:   (XX, XX, XX, OK, NO),
        Status.RESOLVED:      (XX, XX, OK, XX, OK),
        Status.CLOSED:        (XX, XX, XX, XX, XX),
    },
    "reporter": {
        # from ↓  to →         Rep Ack InP Res Clo
        Status.REPORTED:      (XX, NO, XX, NO, OK),
        Status.ACKNOWLEDGED:  (XX, XX, NO, NO, OK),
        Status.IN_PROGRESS:   (XX, XX, XX, NO, OK),
        Status.RESOLVED:      (XX, XX, OK, XX, OK),
        Status.CLOSED:        (XX, XX, XX, XX, XX),
    },
    "other": {
        # from ↓  to →         Rep Ack InP Res Clo
        Status.REPORTED:      (XX, NO, XX, NO, NO),
        Status.ACKNOWLEDGED:  (XX, XX, NO, NO, NO),
        Status.IN_PROGRESS:   (XX, XX, XX, NO, NO),
        Status.RESOLVED:      (XX, XX, NO, XX, NO),
        Status.CLOSED:        (XX, XX, XX, XX, XX),
    },
}
# fmt: on

MATRIX = [
    pytest.param(role, current, requested, outcome, id=f"{role}:{current}->{requested}:{outcome}")
    for role, rows in MOVES.items()
    for current, outcomes in rows.items()
    for requested, outcome in zip(COLUMNS, outcomes, strict=True)
]

# The moves that exist in the workflow (any OK or NO cell for staff, who may make them all).
WORKFLOW_MOVES = [
    pytest.param(current, requested, id=f"{current}->{requested}")
    for current, outcomes in MOVES["staff"].items()
    for requested, outcome in zip(COLUMNS, outcomes, strict=True)
    if outcome != XX
]


def stored(incident: Incident) -> dict:
    """Everything the incidents table holds for `incident`."""
    return Incident.objects.filter(pk=incident.pk).values().get()


def event_ids(incident: Incident) -> set[int]:
    return set(IncidentEvent.objects.filter(incident=incident).values_list("pk", flat=True))


# --- Who may make which move -----------------------------------------------------------


@pytest.mark.parametrize(("role", "current", "requested", "outcome"), MATRIX)
def test_status_move(request, public_incident, staff, role, current, requested, outcome):
    # given
    incident = advance_to(public_incident, current, by=staff)
    actor = request.getfixturevalue(role)
    row_before, events_before = stored(incident), event_ids(incident)

    # when
    if outcome == OK:
        returned = services.change_status(incident=incident, actor=actor, status=requested)
    else:
        expected_error = ValidationError if outcome == XX else PermissionDenied
        with pytest.raises(expected_error) as refused:
            services.change_status(incident=incident, actor=actor, status=requested)

    # then
    new_events = IncidentEvent.objects.filter(incident=incident).exclude(pk__in=events_before)
    if outcome == OK:
        assert returned.status == requested
        assert stored(incident)["status"] == requested
        event = new_events.get()
        assert (event.kind, event.actor_id, event.old_value, event.new_value) == (
            EventKind.STATUS_CHANGED,
            actor.pk,
            current,
            requested,
        )
    else:
        if outcome == XX:
            assert "status" in refused.value.message_dict
        assert stored(incident) == row_before
        assert not new_events.exists()


@pytest.mark.parametrize(("current", "requested"), WORKFLOW_MOVES)
def test_a_user_who_cannot_see_the_incident_may_make_no_move(private_incident, other, staff, current, requested):
    # given: bob did not report the private incident and is no responder
    incident = advance_to(private_incident, current, by=staff)
    row_before, events_before = stored(incident), event_ids(incident)

    # when / then
    with pytest.raises(PermissionDenied):
        services.change_status(incident=incident, actor=other, status=requested)
    assert stored(incident) == row_before
    assert event_ids(incident) == events_before


@pytest.mark.parametrize("role", ["anonymous", "inactive"])
@pytest.mark.parametrize("requested", [Status.ACKNOWLEDGED, Status.RESOLVED, Status.CLOSED])
def test_anonymous_and_inactive_users_may_make_no_move(request, public_incident, role, requested):
    # given
    actor = request.getfixturevalue(role)
    row_before, events_before = stored(public_incident), event_ids(public_incident)

    # when / then
    with pytest.raises(PermissionDenied):
        services.change_status(incident=public_incident, actor=actor, status=requested)
    assert stored(public_incident) == row_before
    assert event_ids(public_incident) == events_before


@pytest.mark.parametrize("requested", ["Done", "", "reported", "closed"])
def test_a_status_that_does_not_exist_is_refused(public_incident, staff, requested):
    # given
    row_before, events_before = stored(public_incident), event_ids(public_incident)

    # when
    with pytest.raises(ValidationError) as refused:
        services.change_status(incident=public_incident, actor=staff, status=requested)

    # then
    assert "status" in refused.value.message_dict
    assert stored(public_incident) == row_before
    assert event_ids(public_incident) == events_before


def test_the_reporter_may_not_reopen_someone_elses_resolved_incident(make_user, other, staff):
    # given: a public incident carol reported, resolved by staff
    incident = advance_to(make_incident(make_user("carol")), Status.RESOLVED, by=staff)

    # when / then
    with pytest.raises(PermissionDenied):
        services.change_status(incident=incident, actor=other, status=Status.IN_PROGRESS)
    assert stored(incident)["status"] == Status.RESOLVED


def test_a_responder_may_close_and_reopen_a_private_incident_it_did_not_report(private_incident, responder):
    # given
    incident = advance_to(private_incident, Status.RESOLVED, by=responder)

    # when
    reopened = services.change_status(incident=incident, actor=responder, status=Status.IN_PROGRESS)
    resolved = services.change_status(incident=reopened, actor=responder, status=Status.RESOLVED)
    closed = services.change_status(incident=resolved, actor=responder, status=Status.CLOSED)

    # then
    assert stored(closed)["status"] == Status.CLOSED


# --- Timestamps --------------------------------------------------------------------------


@pytest.mark.parametrize("requested", [Status.ACKNOWLEDGED, Status.RESOLVED])
def test_the_first_move_past_reported_stamps_acknowledged_at(public_incident, responder, requested):
    # given
    assert stored(public_incident)["acknowledged_at"] is None
    before = timezone.now()

    # when
    services.change_status(incident=public_incident, actor=responder, status=requested)

    # then
    row = stored(public_incident)
    assert before <= row["acknowledged_at"] <= timezone.now()
    assert row["closed_at"] is None


def test_acknowledging_stamps_neither_resolved_at_nor_closed_at(public_incident, responder):
    # when
    services.change_status(incident=public_incident, actor=responder, status=Status.ACKNOWLEDGED)

    # then
    row = stored(public_incident)
    assert (row["resolved_at"], row["closed_at"]) == (None, None)


def test_later_moves_keep_the_first_acknowledged_at(public_incident, responder):
    # given
    services.change_status(incident=public_incident, actor=responder, status=Status.ACKNOWLEDGED)
    first = stored(public_incident)["acknowledged_at"]

    # when
    for status in (Status.IN_PROGRESS, Status.RESOLVED, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED):
        services.change_status(incident=public_incident, actor=responder, status=status)

    # then
    assert stored(public_incident)["acknowledged_at"] == first


@pytest.mark.parametrize("current", [Status.REPORTED, Status.ACKNOWLEDGED, Status.IN_PROGRESS])
def test_resolving_stamps_resolved_at(public_incident, responder, current):
    # given
    incident = advance_to(public_incident, current, by=responder)
    before = timezone.now()

    # when
    services.change_status(incident=incident, actor=responder, status=Status.RESOLVED)

    # then
    row = stored(incident)
    assert before <= row["resolved_at"] <= timezone.now()
    assert row["acknowledged_at"] is not None
    assert row["closed_at"] is None


@pytest.mark.parametrize("actor_role", ["responder", "reporter"])
def test_reopening_clears_resolved_at_and_keeps_acknowledged_at(request, public_incident, responder, actor_role):
    # given
    incident = advance_to(public_incident, Status.RESOLVED, by=responder)
    acknowledged_at = stored(incident)["acknowledged_at"]

    # when
    services.change_status(incident=incident, actor=request.getfixturevalue(actor_role), status=Status.IN_PROGRESS)

    # then
    row = stored(incident)
    assert row["status"] == Status.IN_PROGRESS
    assert row["resolved_at"] is None
    assert row["acknowledged_at"] == acknowledged_at
    assert row["closed_at"] is None


def test_resolving_again_after_a_reopen_stamps_a_new_resolved_at(public_incident, responder):
    # given
    incident = advance_to(public_incident, Status.RESOLVED, by=responder)
    first_resolved_at = stored(incident)["resolved_at"]
    services.change_status(incident=incident, actor=responder, status=Status.IN_PROGRESS)

    # when
    services.change_status(incident=incident, actor=responder, status=Status.RESOLVED)

    # then
    assert stored(incident)["resolved_at"] > first_resolved_at


def test_closing_a_resolved_incident_stamps_closed_at_and_keeps_the_others(public_incident, responder):
    # given
    incident = advance_to(public_incident, Status.RESOLVED, by=responder)
    row_before = stored(incident)
    before = timezone.now()

    # when
    services.change_status(incident=incident, actor=responder, status=Status.CLOSED)

    # then
    row = stored(incident)
    assert before <= row["closed_at"] <= timezone.now()
    assert row["acknowledged_at"] == row_before["acknowledged_at"]
    assert row["resolved_at"] == row_before["resolved_at"]


@pytest.mark.parametrize("actor_role", ["staff", "reporter"])
def test_closing_a_reported_incident_stamps_only_closed_at(request, public_incident, actor_role):
    # given
    before = timezone.now()

    # when
    services.change_status(incident=public_incident, actor=request.getfixturevalue(actor_role), status=Status.CLOSED)

    # then
    row = stored(public_incident)
    assert before <= row["closed_at"] <= timezone.now()
    assert (row["acknowledged_at"], row["resolved_at"]) == (None, None)


def test_a_move_returns_the_stored_incident_and_bumps_updated_at(public_incident, responder):
    # given
    updated_before = stored(public_incident)["updated_at"]

    # when
    returned = services.change_status(incident=public_incident, actor=responder, status=Status.ACKNOWLEDGED)

    # then
    row = stored(public_incident)
    assert (returned.status, returned.acknowledged_at) == (row["status"], row["acknowledged_at"])
    assert row["updated_at"] > updated_before
