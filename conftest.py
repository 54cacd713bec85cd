"""Fixtures shared by every app's tests: users, one per role, and the incidents they are
tried on. Users come from `make_user`; incidents and teams from `incidents/tests/factories.py`,
through the services. Note `user` and `reporter` are both alice: use one of them, not both.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import User
from incidents.models import SlaPolicy, Visibility
from incidents.tests.factories import (
    assign_then_leave_team,
    category_of,
    make_incident,
    make_responder,
    make_staff,
    make_team,
)

PASSWORD = "correct-horse-battery-42"


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def make_user(db):
    def make(username="alice", email=None, **extra):
        return User.objects.create_user(
            username=username, email=email or f"{username}@example.com", password=PASSWORD, **extra
        )

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def run_tasks(db):
    """Run every task that is due, with the worker's own claim-and-run code
    (`manage.py db_worker`), minus its connection recycling, which would close the
    test's transaction. Returns how many ran."""
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    worker = Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="pytest",
        excluded_queue_names=[],
    )

    def run() -> int:
        count = 0
        while (result := DBTaskResult.objects.ready().filter(backend_name="default").get_locked()) is not None:
            result.claim(worker.worker_id)
            worker.run_task(result)
            count += 1
        return count

    return run


# The default SLA policies, as migration 0013 creates them.
DEFAULT_SLA_POLICIES = {
    "Critical": (timedelta(minutes=15), timedelta(hours=4)),
    "High": (timedelta(hours=1), timedelta(days=1)),
    "Medium": (timedelta(hours=4), timedelta(days=3)),
    "Low": (timedelta(days=1), timedelta(days=7)),
}


@pytest.fixture(autouse=True)
def default_sla_policies(request):
    """Every database test starts with the default SLA policies. Migrations create them,
    but a transactional test (real workers, live servers) ends with a flush that empties
    every table, and the tests after it on the same pytest worker would find none."""
    needs = set(request.fixturenames)
    for name in ("transactional_db", "db"):
        if name in needs:
            request.getfixturevalue(name)
            break
    else:
        if request.node.get_closest_marker("django_db") is None:
            return
        request.getfixturevalue("_django_db_helper")
    have = set(SlaPolicy.objects.filter(team__isnull=True).values_list("severity", flat=True))
    SlaPolicy.objects.bulk_create(
        SlaPolicy(severity=severity, acknowledge_within=acknowledge, resolve_within=resolve)
        for severity, (acknowledge, resolve) in DEFAULT_SLA_POLICIES.items()
        if severity not in have
    )


@pytest.fixture
def mailoutbox(db, mailoutbox):
    """pytest-django's outbox, taken after the database is set up: that set-up starts a
    fresh `mail.outbox`, so an outbox fixture requested before a database fixture would
    be a stale list that never sees a message (and "nothing was sent" would pass vacuously)."""
    return mailoutbox


@pytest.fixture
def strict_rates(db, monkeypatch):
    """Low rates. DRF reads them into `SimpleRateThrottle.THROTTLE_RATES` at import, so
    override_settings would not reach them; the cache holds the request history."""
    cache.clear()
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"auth": "3/min", "user": "5/min", "anon": "5/min"})
    yield
    cache.clear()


# --- One user per role ----------------------------------------------------------------------


@pytest.fixture
def reporter(make_user):
    """A signed-in user with no special role; reports `public_incident` and `private_incident`
    (and the team A incidents)."""
    return make_user("alice")


@pytest.fixture
def other(make_user):
    """Another signed-in user with no special role, in no team, who reported no incident."""
    return make_user("bob")


@pytest.fixture
def responder(make_user):
    """A member of the `response` team, which sees and works every incident (`sees_all`,
    the former Responders group); not staff."""
    return make_responder(make_user, "rita")


@pytest.fixture
def second_responder(make_user):
    """Another member of the `response` team."""
    return make_responder(make_user, "rhea")


@pytest.fixture
def staff(make_user):
    """A staff user (not a superuser, no model permissions), in no team."""
    return make_staff(make_user, "sam")


@pytest.fixture
def anonymous():
    return AnonymousUser()


@pytest.fixture
def inactive(make_user):
    """A deactivated account that was staff and a responder: being inactive must outweigh both."""
    return make_responder(make_user, "ivan", is_staff=True, is_active=False)


# --- Teams and their members ------------------------------------------------------------------


@pytest.fixture
def team_a():
    """A team that does not see everything, with one category, `team-a-issues`."""
    return make_team("team-a")


@pytest.fixture
def team_b():
    """Another such team, with the category `team-b-issues`."""
    return make_team("team-b")


@pytest.fixture
def team_a_member(make_user, team_a):
    """A member of team A (not a lead, in no other team, not staff)."""
    user = make_user("tara")
    team_a.members.add(user)
    return user


@pytest.fixture
def team_b_member(make_user, team_b):
    """A member of team B only."""
    user = make_user("bert")
    team_b.members.add(user)
    return user


@pytest.fixture
def assignee(make_user):
    """In no team: owns the team A incidents (`team_a_public_incident`...), which were
    assigned to them while they were a member of team A; they have left team A since."""
    return make_user("asa")


# --- Incidents --------------------------------------------------------------------------------


@pytest.fixture
def public_incident(reporter):
    """Reported by `reporter` in the default category: the `response` team's."""
    return make_incident(reporter, title="Printer on fire")


@pytest.fixture
def private_incident(reporter):
    return make_incident(reporter, title="Badge lost in the car park", visibility=Visibility.PRIVATE)


@pytest.fixture
def team_a_public_incident(reporter, team_a, assignee, staff):
    """Reported by `reporter` in team A's category, and owned by `assignee`, a former member."""
    incident = make_incident(reporter, title="Printer on fire", category=category_of(team_a))
    return assign_then_leave_team(incident, assignee, by=staff)


@pytest.fixture
def team_a_private_incident(reporter, team_a, assignee, staff):
    incident = make_incident(
        reporter, title="Badge lost in the car park", category=category_of(team_a), visibility=Visibility.PRIVATE
    )
    return assign_then_leave_team(incident, assignee, by=staff)
