"""The `seed_load` management command: many incidents fast, with the timeline the services
would have written, strictly increasing creation times, and nothing else touched."""

from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import User
from incidents import events as events_module
from incidents import permissions
from incidents.models import (
    DEFAULT_TEAM,
    OPEN_STATUSES,
    TRANSITIONS,
    EventKind,
    Incident,
    IncidentEvent,
    Response,
    SlaPolicy,
    Status,
    Visibility,
)
from notifications.models import OutgoingEmail

from .factories import make_incident


def seed_load(*args) -> str:
    out = StringIO()
    call_command("seed_load", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def load_incidents():
    return Incident.objects.filter(reporter__username__startswith="load-user-")


def test_seed_load_creates_the_asked_for_rows(db):
    # when
    output = seed_load("--incidents", "120", "--users", "6", "--responders", "3", "--responses", "2")

    # then
    assert load_incidents().count() == 120
    assert User.objects.filter(username__startswith="load-user-").count() == 6
    responders = User.objects.filter(username__startswith="load-responder-")
    assert responders.count() == 3
    assert all(user.teams.filter(slug=DEFAULT_TEAM, sees_all=True).exists() for user in responders)
    responses = Response.objects.filter(incident__in=load_incidents())
    events = IncidentEvent.objects.filter(incident__in=load_incidents())
    assert 120 < responses.count() < 360  # about two per incident
    assert events.filter(kind=EventKind.REPORTED).count() == 120
    assert events.filter(kind=EventKind.RESPONDED).count() == responses.count()
    assert events.filter(kind=EventKind.STATUS_CHANGED).count() > 0
    assert "Added 120 incidents" in output


def test_seed_load_spreads_incidents_over_users_statuses_severities_and_visibility(db):
    # when
    seed_load("--incidents", "400", "--users", "8", "--responders", "2")

    # then
    counts = Counter(load_incidents().values_list("reporter_id", flat=True))
    assert sorted(counts.values()) == [50] * 8  # an equal share each
    assert set(load_incidents().values_list("status", flat=True)) == set(Status.values)
    assert len(set(load_incidents().values_list("severity", flat=True))) == 4
    private = load_incidents().filter(visibility=Visibility.PRIVATE).count()
    assert 20 <= private <= 100  # about 15%
    first, last = load_incidents().order_by("created_at")[0], load_incidents().order_by("-created_at")[0]
    assert (last.created_at - first.created_at).days > 700  # two years
    teams = Counter(load_incidents().values_list("team__slug", flat=True))
    assert len(teams) == 5 and min(teams.values()) > 40  # the response team and four load teams
    assert all(
        incident.category.team_id == incident.team_id for incident in load_incidents().select_related("category")
    )
    picked_up = load_incidents().exclude(status=Status.REPORTED)
    assert 0.25 < picked_up.filter(assignee__isnull=False).count() / picked_up.count() < 0.9
    assert not load_incidents().filter(status=Status.REPORTED, assignee__isnull=False).exists()


def test_seed_load_created_at_strictly_increases_with_id(db):
    # when
    seed_load("--incidents", "300", "--users", "5")

    # then
    times = list(load_incidents().order_by("pk").values_list("created_at", flat=True))
    assert len(times) == 300
    assert all(earlier < later for earlier, later in zip(times, times[1:], strict=False))


def written(event) -> dict:
    """What an event row says, leaving out its own primary key."""
    return {
        field.attname: getattr(event, field.attname) for field in event._meta.concrete_fields if not field.primary_key
    }


def test_seed_load_timelines_are_what_the_services_would_have_written(db):
    # given
    seed_load("--incidents", "250", "--users", "5", "--responders", "2", "--responses", "3")
    users = {user.pk: user for user in User.objects.all()}

    # then: replay each timeline along the workflow and compare it with the row
    for incident in load_incidents().prefetch_related("events", "responses"):
        events = sorted(incident.events.all(), key=lambda event: (event.created_at, event.pk))
        assert written(events[0]) == written(events_module.reported(incident, actor=users[incident.reporter_id]))
        assert events[0].kind == EventKind.REPORTED
        assert events[0].created_at == incident.created_at
        assert events[0].actor_id == incident.reporter_id
        assert [event.pk for event in events] == sorted(event.pk for event in events)  # written in time order
        state = Incident(pk=incident.pk, reporter_id=incident.reporter_id, visibility=incident.visibility)
        state.status, acknowledged, resolved, closed = Status.REPORTED, None, None, None
        for event in events[1:]:
            assert event.created_at >= incident.created_at
            if event.kind == EventKind.SLA_BREACHED:
                # escalated at the due time it records, which is the clock's due time
                due = getattr(incident, f"{event.field}_due_at")
                assert written(event) == written(
                    events_module.sla_breached(incident, clock=event.field, due_at=due, at=due)
                )
                assert getattr(incident, f"{event.field}_breached_at") == due
                continue
            actor = users[event.actor_id]
            if event.kind == EventKind.STATUS_CHANGED:
                # the same row the services' event constructor builds for this move
                assert written(event) == written(
                    events_module.status_changed(
                        incident, actor=actor, old=event.old_value, new=event.new_value, at=event.created_at
                    )
                )
                assert event.old_value == state.status
                assert event.new_value in TRANSITIONS[state.status]
                assert event.new_value in permissions.allowed_statuses(actor, state), (event.new_value, actor)
                if event.new_value in OPEN_STATUSES[1:] + (Status.RESOLVED,) and acknowledged is None:
                    acknowledged = event.created_at
                if event.new_value == Status.RESOLVED:
                    resolved = event.created_at
                elif event.new_value == Status.IN_PROGRESS and state.status == Status.RESOLVED:
                    resolved = None
                if event.new_value == Status.CLOSED:
                    closed = event.created_at
                state.status = event.new_value
            elif event.kind == EventKind.ASSIGNED:
                assignee = User.objects.get(username=event.new_value)
                expected = events_module.assignment_changed(incident, actor=actor, old=None, new=assignee)
                expected.created_at = event.created_at  # the services stamp "now"
                assert written(event) == written(expected)
                assert permissions.can_work(actor, incident)
                assert assignee.teams.filter(pk=incident.team_id).exists()
                assert incident.assignee == assignee
            else:
                assert event.kind == EventKind.RESPONDED
                assert written(event) == written(events_module.responded(event.response))
                assert state.status != Status.CLOSED  # nobody responds to a closed incident
                assert permissions.can_view(actor, state)
                assert event.response.author_id == event.actor_id
                assert event.response.created_at == event.created_at
        assert incident.status == state.status
        assert (incident.acknowledged_at, incident.resolved_at, incident.closed_at) == (acknowledged, resolved, closed)
        assert incident.updated_at == [e for e in events if e.kind != EventKind.SLA_BREACHED][-1].created_at
        # the SLA clocks: the default policy's targets from the report (or the reopening),
        # breached exactly when missed, each breach on the timeline once
        policy = SlaPolicy.objects.get(severity=incident.severity, team=None)
        assert incident.acknowledge_due_at == incident.created_at + policy.acknowledge_within
        reopenings = [
            e.created_at for e in events if (e.old_value, e.new_value) == (Status.RESOLVED, Status.IN_PROGRESS)
        ]
        resolve_start = reopenings[-1] if reopenings else incident.created_at
        assert incident.resolve_due_at == resolve_start + policy.resolve_within
        breaches = [e.field for e in events if e.kind == EventKind.SLA_BREACHED]
        for clock, met in (("acknowledge", acknowledged or closed), ("resolve", resolved or closed)):
            due = getattr(incident, f"{clock}_due_at")
            missed = due < (met if met is not None else timezone.now())
            assert (getattr(incident, f"{clock}_breached_at") is not None) is missed, clock
            assert breaches.count(clock) == int(missed)
        assert {event.response_id for event in events if event.response_id} == {r.pk for r in incident.responses.all()}


def test_seed_load_long_thread_gives_the_newest_incident_that_many_responses(db):
    # when
    output = seed_load("--incidents", "20", "--users", "3", "--long-thread", "40")

    # then
    newest = load_incidents().order_by("-created_at").first()
    assert f"long-thread incident_id={newest.incident_id} responses=40" in output
    assert newest.responses.count() == 40
    assert newest.visibility == Visibility.PUBLIC
    assert newest.status != Status.CLOSED


def test_seed_load_adds_and_leaves_existing_data_alone(db, make_user):
    # given
    alice = make_user("alice")
    existing = make_incident(alice, title="Printer on fire")
    before = Incident.objects.filter(pk=existing.pk).values().get()
    mail_before = OutgoingEmail.objects.count()

    # when: twice
    seed_load("--incidents", "30", "--users", "4", "--responders", "2")
    seed_load("--incidents", "30", "--users", "4", "--responders", "2")

    # then
    assert Incident.objects.count() == 61
    assert Incident.objects.filter(pk=existing.pk).values().get() == before
    assert existing.events.count() == 1
    assert User.objects.filter(username__startswith="load-").count() == 6  # reused, not duplicated
    assert OutgoingEmail.objects.count() == mail_before  # history, not news: nothing was mailed


def test_seed_load_is_repeatable_with_the_same_seed(db):
    # given
    def contents():
        return list(
            load_incidents()
            .order_by("pk")
            .values_list("title", "description", "status", "severity", "visibility", "reporter__username")
        )

    # when
    seed_load("--incidents", "40", "--users", "4", "--seed", "7")
    first = contents()
    load_incidents().delete()
    seed_load("--incidents", "40", "--users", "4", "--seed", "7")
    second = contents()
    load_incidents().delete()
    seed_load("--incidents", "40", "--users", "4", "--seed", "8")
    other = contents()

    # then
    assert first == second
    assert first != other


def test_seed_load_sets_a_usable_password_only_when_asked(db):
    # when
    seed_load("--incidents", "1", "--users", "1", "--responders", "1")
    unusable = User.objects.get(username="load-user-00001")
    seed_load("--incidents", "1", "--users", "1", "--responders", "1", "--password", "load-password-42")

    # then
    assert not unusable.has_usable_password()
    assert User.objects.get(username="load-user-00001").check_password("load-password-42")


@pytest.mark.parametrize(
    "args",
    [("--incidents", "-1"), ("--incidents", "5", "--users", "0"), ("--incidents", "5", "--responses", "-1")],
)
def test_seed_load_refuses_nonsense(db, args):
    with pytest.raises(CommandError):
        seed_load(*args)
    assert not Incident.objects.exists()
