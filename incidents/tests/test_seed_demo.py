"""The `seed_demo` management command: demo accounts and incidents, idempotent."""

from io import StringIO

from django.core.management import call_command

from accounts.models import User
from incidents.models import RESPONDERS_GROUP, Incident, IncidentEvent, Response, Status, Visibility
from notifications.models import OutgoingEmail


def seed(*args):
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def row_counts():
    return {
        "users": User.objects.count(),
        "incidents": Incident.objects.count(),
        "responses": Response.objects.count(),
        "events": IncidentEvent.objects.count(),
        "emails": OutgoingEmail.objects.count(),
    }


def test_seed_demo_creates_the_demo_accounts(db):
    # when
    seed()

    # then
    users = {user.username: user for user in User.objects.prefetch_related("groups")}
    assert set(users) == {"admin", "responder", "alice", "bob"}
    assert users["admin"].is_staff and users["admin"].is_superuser
    assert [group.name for group in users["responder"].groups.all()] == [RESPONDERS_GROUP]
    for name in ("responder", "alice", "bob"):
        assert not users[name].is_staff
    for name in ("alice", "bob"):
        assert not users[name].groups.exists()
    assert users["alice"].check_password("irms-alice-demo")


def test_seed_demo_creates_about_fifty_incidents_with_timelines(db):
    # when
    seed()

    # then
    assert Incident.objects.count() == 50
    assert Incident.objects.values("status").distinct().count() >= 3
    assert Incident.objects.filter(visibility=Visibility.PRIVATE).exists()
    assert Incident.objects.filter(visibility=Visibility.PUBLIC).exists()
    assert Response.objects.exists()
    # Written through the services: every incident has its `reported` event, every
    # response its `responded` event, every status its `status_changed` event.
    assert IncidentEvent.objects.filter(kind="reported").count() == 50
    assert IncidentEvent.objects.filter(kind="responded").count() == Response.objects.count()
    moved = Incident.objects.exclude(status=Status.REPORTED)
    assert moved.exists()
    assert not moved.exclude(events__kind="status_changed").exists()
    # Demo history is not news: the mail its services queued is dropped.
    assert not OutgoingEmail.objects.exists()


def test_seed_demo_spreads_incidents_over_time_newest_last(db):
    # when
    seed()

    # then
    created = list(Incident.objects.order_by("id").values_list("created_at", flat=True))
    assert created == sorted(created)
    assert (created[-1] - created[0]).days >= 40


def test_seed_demo_second_run_creates_nothing(db):
    # given
    seed()
    before = row_counts()

    # when
    output = seed()

    # then
    assert row_counts() == before
    assert "nothing to add" in output


def test_seed_demo_if_empty_does_nothing_when_accounts_exist(make_user):
    # given
    make_user("carol")

    # when
    output = seed("--if-empty")

    # then
    assert list(User.objects.values_list("username", flat=True)) == ["carol"]
    assert not Incident.objects.exists()
    assert "not added" in output


def test_seed_demo_if_empty_seeds_an_empty_database(db):
    # when
    seed("--if-empty")

    # then
    assert User.objects.count() == 4
    assert Incident.objects.count() == 50
