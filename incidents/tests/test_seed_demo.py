"""The `seed_demo` management command: demo accounts and incidents, idempotent."""

from io import StringIO

from django.core.management import call_command

from accounts.models import User
from incidents.models import DEFAULT_TEAM, Incident, IncidentEvent, Response, Status, Team, Visibility
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
    users = {user.username: user for user in User.objects.prefetch_related("teams", "led_teams")}
    assert set(users) == {"admin", "responder", "alice", "bob", "fatima", "felix", "ines", "hugo"}
    assert users["admin"].is_staff and users["admin"].is_superuser
    assert [team.slug for team in users["responder"].teams.all()] == [DEFAULT_TEAM]
    for name in set(users) - {"admin"}:
        assert not users[name].is_staff
    for name in ("alice", "bob"):
        assert not users[name].teams.exists()  # plain reporters
    assert users["alice"].check_password("irms-alice-demo")
    # three more teams besides the response team, each with categories, members and a lead
    teams = {team.slug: team for team in Team.objects.all()}
    assert set(teams) == {DEFAULT_TEAM, "facilities", "it-security", "hr"}
    assert set(teams["facilities"].members.values_list("username", flat=True)) == {"fatima", "felix"}
    assert list(teams["facilities"].leads.values_list("username", flat=True)) == ["fatima"]
    for slug in ("facilities", "it-security", "hr"):
        assert teams[slug].categories.filter(active=True).exists()
    assert not teams["facilities"].sees_all and teams[DEFAULT_TEAM].sees_all


def test_seed_demo_routes_incidents_to_teams_and_assigns_some(db):
    # when
    seed()

    # then: every incident went to its category's team, some are owned by a team member
    incidents = list(Incident.objects.select_related("category", "team", "assignee"))
    assert all(incident.category.team_id == incident.team_id for incident in incidents)
    assert {incident.team.slug for incident in incidents} >= {"facilities", "it-security"}
    assigned = [incident for incident in incidents if incident.assignee is not None]
    assert assigned
    assert all(incident.team.members.filter(pk=incident.assignee.pk).exists() for incident in assigned)


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
    assert User.objects.count() == 8
    assert Incident.objects.count() == 50
