"""The write services: what each one stores, the timeline event it records, who it
refuses, and that a refusal or failure leaves nothing behind."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError

from accounts.models import User
from incidents import services
from incidents.models import (
    MAX_TEXT_LENGTH,
    EventKind,
    Incident,
    IncidentEvent,
    Response,
    Severity,
    Status,
    Visibility,
)

from .factories import advance_to


def stored(incident: Incident) -> dict:
    """Everything the incidents table holds for `incident`."""
    return Incident.objects.filter(pk=incident.pk).values().get()


def events(incident: Incident, kind: str | None = None):
    found = IncidentEvent.objects.filter(incident=incident).order_by("created_at", "id")
    return found.filter(kind=kind) if kind else found


# --- report_incident ---------------------------------------------------------------------


def test_report_incident_stores_a_reported_incident_with_its_first_event(reporter):
    # when
    incident = services.report_incident(
        reporter=reporter,
        title="  Server room door left open  ",
        description="Found it wide open at 7:40.",
        severity=Severity.HIGH,
        visibility=Visibility.PRIVATE,
    )

    # then
    row = stored(incident)
    assert row["title"] == "Server room door left open"
    assert row["description"] == "Found it wide open at 7:40."
    assert (row["status"], row["severity"], row["visibility"]) == (Status.REPORTED, Severity.HIGH, Visibility.PRIVATE)
    assert row["reporter_id"] == reporter.pk
    assert (row["acknowledged_at"], row["resolved_at"], row["closed_at"]) == (None, None, None)
    event = events(incident).get()
    assert (event.kind, event.actor_id, event.new_value) == (EventKind.REPORTED, reporter.pk, Status.REPORTED)


def test_report_incident_defaults_to_medium_and_public(reporter):
    # when
    incident = services.report_incident(reporter=reporter, title="Flickering lights", description="Corridor B.")

    # then
    row = stored(incident)
    assert (row["severity"], row["visibility"]) == (Severity.MEDIUM, Visibility.PUBLIC)


def test_report_incident_accepts_the_longest_title_and_description(reporter):
    # when
    incident = services.report_incident(
        reporter=reporter, title="t" * 100, description="d" * MAX_TEXT_LENGTH, severity=Severity.LOW
    )

    # then
    row = stored(incident)
    assert (len(row["title"]), len(row["description"])) == (100, MAX_TEXT_LENGTH)


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        pytest.param("title", {"title": ""}, id="empty-title"),
        pytest.param("title", {"title": "   \t\n "}, id="whitespace-title"),
        pytest.param("title", {"title": "t" * 101}, id="title-too-long"),
        pytest.param("description", {"description": "d" * (MAX_TEXT_LENGTH + 1)}, id="description-too-long"),
        pytest.param("description", {"description": ""}, id="empty-description"),
        pytest.param("severity", {"severity": "Urgent"}, id="unknown-severity"),
        pytest.param("severity", {"severity": "high"}, id="severity-wrong-case"),
        pytest.param("visibility", {"visibility": "secret"}, id="unknown-visibility"),
        pytest.param("visibility", {"visibility": "Private"}, id="visibility-label-not-value"),
    ],
)
def test_report_incident_refuses_bad_input_and_writes_nothing(reporter, field, overrides):
    # given
    data = {"title": "Printer on fire", "description": "Third floor.", **overrides}

    # when
    with pytest.raises(ValidationError) as refused:
        services.report_incident(reporter=reporter, **data)

    # then
    assert field in refused.value.message_dict
    assert not Incident.objects.exists()
    assert not IncidentEvent.objects.exists()


def test_report_incident_refuses_an_anonymous_reporter(anonymous, db):
    # when / then
    with pytest.raises(PermissionDenied):
        services.report_incident(reporter=anonymous, title="Printer on fire", description="Third floor.")
    assert not Incident.objects.exists()
    assert not IncidentEvent.objects.exists()


# --- edit_incident -----------------------------------------------------------------------


def test_reporter_edits_own_reported_incident_one_event_per_changed_field(public_incident, reporter):
    # when
    services.edit_incident(
        incident=public_incident, actor=reporter, title=" Printer smoking ", description="Smoke only."
    )

    # then
    row = stored(public_incident)
    assert (row["title"], row["description"]) == ("Printer smoking", "Smoke only.")
    edits = {e.field: (e.old_value, e.new_value, e.actor_id) for e in events(public_incident, EventKind.EDITED)}
    assert edits == {
        "title": ("Printer on fire", "Printer smoking", reporter.pk),
        "description": (public_incident.description, "Smoke only.", reporter.pk),
    }


def test_edit_records_only_the_fields_that_changed(public_incident, reporter):
    # when: the title is sent unchanged (give or take spaces), the description changes
    services.edit_incident(
        incident=public_incident, actor=reporter, title="  Printer on fire ", description="Now with flames."
    )

    # then
    edit = events(public_incident, EventKind.EDITED).get()
    assert (edit.field, edit.new_value) == ("description", "Now with flames.")


def test_edit_that_changes_nothing_records_no_event_and_touches_nothing(public_incident, reporter):
    # given
    row_before = stored(public_incident)

    # when
    services.edit_incident(
        incident=public_incident, actor=reporter, title="Printer on fire ", description=public_incident.description
    )

    # then
    assert stored(public_incident) == row_before
    assert not events(public_incident, EventKind.EDITED).exists()


@pytest.mark.parametrize("status", list(Status))
def test_staff_may_edit_at_any_status(public_incident, staff, status):
    # given
    incident = advance_to(public_incident, status, by=staff)

    # when
    services.edit_incident(incident=incident, actor=staff, title="Printer replaced")

    # then
    assert stored(incident)["title"] == "Printer replaced"
    edit = events(incident, EventKind.EDITED).get()
    assert (edit.field, edit.old_value, edit.new_value, edit.actor_id) == (
        "title",
        "Printer on fire",
        "Printer replaced",
        staff.pk,
    )


def test_staff_may_change_visibility(public_incident, staff):
    # when
    services.edit_incident(incident=public_incident, actor=staff, visibility=Visibility.PRIVATE)

    # then
    assert stored(public_incident)["visibility"] == Visibility.PRIVATE
    edit = events(public_incident, EventKind.EDITED).get()
    assert (edit.field, edit.old_value, edit.new_value) == ("visibility", Visibility.PUBLIC, Visibility.PRIVATE)


@pytest.mark.parametrize("status", [Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED])
def test_reporter_may_not_edit_once_the_team_has_picked_it_up(public_incident, reporter, staff, status):
    # given
    incident = advance_to(public_incident, status, by=staff)
    row_before, events_before = stored(incident), events(incident).count()

    # when / then
    with pytest.raises(PermissionDenied):
        services.edit_incident(incident=incident, actor=reporter, title="Printer smoking")
    assert stored(incident) == row_before
    assert events(incident).count() == events_before


@pytest.mark.parametrize(
    ("role", "incident_fixture"),
    [
        ("other", "public_incident"),
        ("other", "private_incident"),
        ("responder", "public_incident"),
        ("anonymous", "public_incident"),
        ("inactive", "public_incident"),
    ],
)
def test_anyone_but_the_reporter_and_staff_may_not_edit(request, role, incident_fixture):
    # given
    incident = request.getfixturevalue(incident_fixture)
    actor = request.getfixturevalue(role)
    row_before = stored(incident)

    # when / then
    with pytest.raises(PermissionDenied):
        services.edit_incident(incident=incident, actor=actor, title="Nothing to see", description="Move along.")
    assert stored(incident) == row_before
    assert not events(incident, EventKind.EDITED).exists()


def test_reporter_may_not_change_visibility(public_incident, reporter):
    # The reporter may correct title and description, nothing else; whether the incident is
    # public is chosen when reporting and changed afterwards by staff.
    # given
    row_before = stored(public_incident)

    # when / then
    with pytest.raises(PermissionDenied):
        services.edit_incident(incident=public_incident, actor=reporter, visibility=Visibility.PRIVATE)
    assert stored(public_incident) == row_before
    assert not events(public_incident, EventKind.EDITED).exists()


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        pytest.param("title", {"title": "   "}, id="blank-title"),
        pytest.param("title", {"title": "t" * 101}, id="title-too-long"),
        pytest.param("description", {"description": "d" * (MAX_TEXT_LENGTH + 1)}, id="description-too-long"),
        pytest.param("visibility", {"visibility": "secret"}, id="unknown-visibility"),
    ],
)
def test_edit_refuses_bad_input_and_changes_nothing(public_incident, staff, field, changes):
    # given
    row_before = stored(public_incident)

    # when
    with pytest.raises(ValidationError) as refused:
        services.edit_incident(incident=public_incident, actor=staff, **changes)

    # then
    assert field in refused.value.message_dict
    assert stored(public_incident) == row_before
    assert not events(public_incident, EventKind.EDITED).exists()


# --- add_response ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "incident_fixture"),
    [
        ("reporter", "public_incident"),
        ("reporter", "private_incident"),
        ("other", "public_incident"),
        ("responder", "private_incident"),
        ("staff", "private_incident"),
    ],
)
def test_anyone_who_sees_the_incident_may_respond(request, role, incident_fixture):
    # given
    incident = request.getfixturevalue(incident_fixture)
    author = request.getfixturevalue(role)
    updated_before = stored(incident)["updated_at"]

    # when
    response = services.add_response(incident=incident, author=author, description="On my way.")

    # then
    stored_response = Response.objects.get()
    assert stored_response.pk == response.pk
    assert (stored_response.incident_id, stored_response.author_id) == (incident.pk, author.pk)
    assert stored_response.description == "On my way."
    event = events(incident, EventKind.RESPONDED).get()
    assert (event.actor_id, event.response_id) == (author.pk, response.pk)
    assert stored(incident)["updated_at"] > updated_before


@pytest.mark.parametrize("status", [Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED])
def test_responses_are_taken_until_the_incident_is_closed(public_incident, other, staff, status):
    # given
    incident = advance_to(public_incident, status, by=staff)

    # when
    services.add_response(incident=incident, author=other, description="Still happening here.")

    # then
    assert Response.objects.filter(incident=incident).count() == 1


@pytest.mark.parametrize("role", ["other", "anonymous", "inactive"])
def test_a_user_who_cannot_see_the_incident_may_not_respond(request, private_incident, role):
    # given
    author = request.getfixturevalue(role)
    row_before = stored(private_incident)

    # when / then
    with pytest.raises(PermissionDenied):
        services.add_response(incident=private_incident, author=author, description="Any news?")
    assert not Response.objects.exists()
    assert not events(private_incident, EventKind.RESPONDED).exists()
    assert stored(private_incident) == row_before


@pytest.mark.parametrize("role", ["reporter", "responder", "staff"])
def test_a_closed_incident_takes_no_response(request, public_incident, staff, role):
    # given
    incident = advance_to(public_incident, Status.CLOSED, by=staff)
    row_before = stored(incident)

    # when / then
    with pytest.raises(ValidationError):
        services.add_response(incident=incident, author=request.getfixturevalue(role), description="Reopen please.")
    assert not Response.objects.exists()
    assert not events(incident, EventKind.RESPONDED).exists()
    assert stored(incident) == row_before


@pytest.mark.parametrize(
    "description", [pytest.param("", id="empty"), pytest.param("r" * (MAX_TEXT_LENGTH + 1), id="too-long")]
)
def test_add_response_refuses_bad_text_and_writes_nothing(public_incident, other, description):
    # when
    with pytest.raises(ValidationError) as refused:
        services.add_response(incident=public_incident, author=other, description=description)

    # then
    assert "description" in refused.value.message_dict
    assert not Response.objects.exists()
    assert not events(public_incident, EventKind.RESPONDED).exists()


# --- change_severity ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "incident_fixture"), [("responder", "private_incident"), ("staff", "public_incident")]
)
def test_responders_and_staff_change_severity_with_an_event(request, role, incident_fixture):
    # given
    incident = request.getfixturevalue(incident_fixture)
    actor = request.getfixturevalue(role)

    # when
    services.change_severity(incident=incident, actor=actor, severity=Severity.CRITICAL)

    # then
    assert stored(incident)["severity"] == Severity.CRITICAL
    event = events(incident, EventKind.SEVERITY_CHANGED).get()
    assert (event.actor_id, event.old_value, event.new_value) == (actor.pk, Severity.MEDIUM, Severity.CRITICAL)


def test_setting_the_same_severity_records_no_event(public_incident, responder):
    # given
    row_before = stored(public_incident)

    # when
    services.change_severity(incident=public_incident, actor=responder, severity=Severity.MEDIUM)

    # then
    assert stored(public_incident) == row_before
    assert not events(public_incident, EventKind.SEVERITY_CHANGED).exists()


@pytest.mark.parametrize(
    ("role", "incident_fixture"),
    [
        ("reporter", "public_incident"),
        ("reporter", "private_incident"),
        ("other", "public_incident"),
        ("other", "private_incident"),
        ("anonymous", "public_incident"),
        ("inactive", "public_incident"),
    ],
)
def test_only_responders_and_staff_change_severity(request, role, incident_fixture):
    # given
    incident = request.getfixturevalue(incident_fixture)
    row_before = stored(incident)

    # when / then
    with pytest.raises(PermissionDenied):
        services.change_severity(incident=incident, actor=request.getfixturevalue(role), severity=Severity.CRITICAL)
    assert stored(incident) == row_before
    assert not events(incident, EventKind.SEVERITY_CHANGED).exists()


@pytest.mark.parametrize("role", ["responder", "staff"])
def test_severity_of_a_closed_incident_is_fixed(request, public_incident, staff, role):
    # given
    incident = advance_to(public_incident, Status.CLOSED, by=staff)
    row_before = stored(incident)

    # when / then
    with pytest.raises(PermissionDenied):
        services.change_severity(incident=incident, actor=request.getfixturevalue(role), severity=Severity.LOW)
    assert stored(incident) == row_before
    assert not events(incident, EventKind.SEVERITY_CHANGED).exists()


@pytest.mark.parametrize("severity", ["Urgent", "critical", ""])
def test_change_severity_refuses_an_unknown_severity(public_incident, responder, severity):
    # given
    row_before = stored(public_incident)

    # when
    with pytest.raises(ValidationError) as refused:
        services.change_severity(incident=public_incident, actor=responder, severity=severity)

    # then
    assert "severity" in refused.value.message_dict
    assert stored(public_incident) == row_before


# --- Atomicity: a failure part-way leaves nothing behind ---------------------------------


@pytest.fixture
def event_writes_fail(monkeypatch):
    """Make every timeline write fail, as a lost connection or full disk would, after the
    service has already written its main row. The database itself stays real."""

    def fail(*args, **kwargs):
        raise IntegrityError("injected failure writing the timeline")

    monkeypatch.setattr(IncidentEvent, "save", fail)
    monkeypatch.setattr(IncidentEvent.objects, "create", fail)
    monkeypatch.setattr(IncidentEvent.objects, "bulk_create", fail)


def test_change_status_rolls_back_when_the_event_cannot_be_written(public_incident, responder, event_writes_fail):
    # given
    row_before, events_before = stored(public_incident), events(public_incident).count()

    # when
    with pytest.raises(IntegrityError):
        services.change_status(incident=public_incident, actor=responder, status=Status.RESOLVED)

    # then
    assert stored(public_incident) == row_before
    assert stored(public_incident)["status"] == Status.REPORTED
    assert events(public_incident).count() == events_before


def test_report_incident_rolls_back_when_the_event_cannot_be_written(reporter, event_writes_fail):
    # when
    with pytest.raises(IntegrityError):
        services.report_incident(reporter=reporter, title="Printer on fire", description="Third floor.")

    # then
    assert not Incident.objects.exists()


def test_add_response_rolls_back_when_the_event_cannot_be_written(public_incident, other, event_writes_fail):
    # given
    row_before = stored(public_incident)

    # when
    with pytest.raises(IntegrityError):
        services.add_response(incident=public_incident, author=other, description="On my way.")

    # then
    assert not Response.objects.exists()
    assert stored(public_incident) == row_before


def test_edit_incident_rolls_back_when_the_events_cannot_be_written(public_incident, reporter, event_writes_fail):
    # given
    row_before = stored(public_incident)

    # when
    with pytest.raises(IntegrityError):
        services.edit_incident(incident=public_incident, actor=reporter, title="Printer smoking")

    # then
    assert stored(public_incident) == row_before


def test_change_severity_rolls_back_when_the_event_cannot_be_written(public_incident, responder, event_writes_fail):
    # given
    row_before = stored(public_incident)

    # when
    with pytest.raises(IntegrityError):
        services.change_severity(incident=public_incident, actor=responder, severity=Severity.HIGH)

    # then
    assert stored(public_incident) == row_before


# --- Deleting an account keeps the record ------------------------------------------------


def test_deleting_users_keeps_their_incidents_responses_and_events(public_incident, reporter, other, responder):
    # given: alice reported, bob responded, rita acknowledged and re-graded
    response = services.add_response(incident=public_incident, author=other, description="Smoke on floor 4 too.")
    services.change_status(incident=public_incident, actor=responder, status=Status.ACKNOWLEDGED)
    services.change_severity(incident=public_incident, actor=responder, severity=Severity.HIGH)
    kinds_before = list(events(public_incident).values_list("kind", flat=True))

    # when
    User.objects.filter(pk__in=[reporter.pk, other.pk, responder.pk]).delete()

    # then
    row = stored(public_incident)
    assert row["reporter_id"] is None
    assert (row["title"], row["status"], row["severity"]) == ("Printer on fire", Status.ACKNOWLEDGED, Severity.HIGH)
    kept = Response.objects.get(pk=response.pk)
    assert (kept.author_id, kept.description) == (None, "Smoke on floor 4 too.")
    assert list(events(public_incident).values_list("kind", flat=True)) == kinds_before
    assert set(events(public_incident).values_list("actor_id", flat=True)) == {None}
    assert events(public_incident, EventKind.RESPONDED).get().response_id == response.pk


# --- update_incident: any set of changes, under one lock, all or nothing ------------------


def test_update_incident_applies_several_changes_with_one_event_each(public_incident, staff, other):
    # when
    incident = services.update_incident(
        incident=public_incident,
        actor=staff,
        title="Printer smoking",
        visibility=Visibility.PRIVATE,
        severity=Severity.HIGH,
        status=Status.ACKNOWLEDGED,
        reporter=other,
    )

    # then
    stored_row = Incident.objects.get(pk=public_incident.pk)
    assert (stored_row.title, stored_row.visibility, stored_row.severity, stored_row.status) == (
        "Printer smoking",
        Visibility.PRIVATE,
        Severity.HIGH,
        Status.ACKNOWLEDGED,
    )
    assert stored_row.reporter == other and incident.reporter == other
    kinds = list(events(public_incident).exclude(kind=EventKind.REPORTED).values_list("kind", "field"))
    assert sorted(kinds) == sorted(
        [
            (EventKind.EDITED, "title"),
            (EventKind.EDITED, "visibility"),
            (EventKind.REPORTER_CHANGED, "reporter"),
            (EventKind.SEVERITY_CHANGED, ""),
            (EventKind.STATUS_CHANGED, ""),
        ]
    )


def test_update_incident_is_all_or_nothing(public_incident, responder):
    # given: a responder may re-grade but may not rename someone else's incident
    before = stored(public_incident)

    # when
    with pytest.raises(PermissionDenied):
        services.update_incident(incident=public_incident, actor=responder, severity=Severity.CRITICAL, title="Renamed")

    # then
    assert stored(public_incident) == before


def test_only_staff_change_the_reporter(public_incident, responder, other):
    # given
    before = stored(public_incident)

    # when
    with pytest.raises(PermissionDenied):
        services.update_incident(incident=public_incident, actor=responder, reporter=other)

    # then
    assert stored(public_incident) == before


def test_update_incident_with_current_values_changes_nothing(public_incident, staff, reporter):
    # given
    before = events(public_incident).count()

    # when
    services.update_incident(
        incident=public_incident,
        actor=staff,
        title=public_incident.title,
        severity=public_incident.severity,
        status=public_incident.status,
        reporter=reporter,
    )

    # then
    assert events(public_incident).count() == before


def test_update_incident_notifies_like_the_single_services(public_incident, other, staff, run_tasks, mailoutbox):
    # given: `other` follows the incident
    services.add_response(incident=public_incident, author=other, description="Seen it too.")
    run_tasks()
    mailoutbox.clear()

    # when
    services.update_incident(incident=public_incident, actor=staff, status=Status.ACKNOWLEDGED)
    run_tasks()

    # then: the reporter and the participant hear of the status change
    assert sorted(message.to[0] for message in mailoutbox) == sorted([public_incident.reporter.email, other.email])
