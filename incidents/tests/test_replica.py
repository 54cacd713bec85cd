"""The read-replica router (incidents/replica.py), in this process: which reads may go to
the replica, when a user's own writes pin them to the primary, and the settings that
configure it. The same behaviour against a real MariaDB replica is test_replica_live.py."""

import json
import time

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.test import RequestFactory, override_settings
from rest_framework.test import APIClient

from accounts.models import User
from incidents import replica
from incidents.models import Incident, Team
from irms_site.tests.test_settings_env import DRIVER_PRESENT, KEY, start_django

from .factories import response_team

router = replica.ReplicaRouter()


@pytest.fixture
def with_replica(monkeypatch):
    """As if DATABASE_REPLICA_URL were set. Nothing here reads through the router's choice,
    so no second connection is needed."""
    monkeypatch.setattr(replica, "enabled", lambda: True)


def get(user):
    request = RequestFactory().get("/incidents/")
    request.user = user
    return request


def test_without_a_replica_every_read_goes_to_the_primary(transactional_db):
    with replica.replica_reads(get(AnonymousUser())):
        assert router.db_for_read(Incident) == "default"


def test_a_list_reads_from_the_replica_outside_transactions_only(transactional_db, with_replica):
    # given a request of a user who has written nothing
    user = User.objects.create_user("alice")
    with replica.replica_reads(get(user)):
        # then its reads go to the replica, its writes to the primary
        assert router.db_for_read(Incident) == "replica"
        assert router.db_for_write(Incident) == "default"
        # and anything in a transaction reads the primary
        with transaction.atomic():
            assert router.db_for_read(Incident) == "default"
        assert router.db_for_read(Incident) == "replica"
    # and outside the list's block, everything reads the primary
    assert router.db_for_read(Incident) == "default"


def test_only_safe_methods_read_from_the_replica(transactional_db, with_replica):
    request = RequestFactory().post("/incidents/")
    request.user = AnonymousUser()
    with replica.replica_reads(request):
        assert router.db_for_read(Incident) == "default"


@override_settings(REPLICA_STICKY_SECONDS=1)
def test_a_users_own_write_pins_their_reads_to_the_primary_for_the_sticky_window(transactional_db, with_replica):
    # given two users, one of whom just wrote
    writer, other = (
        User.objects.create_user("alice", "alice@example.com"),
        User.objects.create_user("bob", "bob@example.com"),
    )
    replica.mark_wrote(writer)

    # then the writer reads the primary, the other the replica
    with replica.replica_reads(get(writer)):
        assert router.db_for_read(Incident) == "default"
    with replica.replica_reads(get(other)):
        assert router.db_for_read(Incident) == "replica"

    # and once the window has passed, the writer reads the replica again
    time.sleep(1.2)
    with replica.replica_reads(get(writer)):
        assert router.db_for_read(Incident) == "replica"


def test_migrations_run_on_the_primary_only():
    assert router.allow_migrate("default", "incidents") is True
    assert router.allow_migrate("replica", "incidents") is False


@pytest.mark.parametrize("how", ["session", "token"])
def test_a_write_through_the_site_or_the_api_marks_its_user(transactional_db, with_replica, how):
    # given a signed-in user (by session, or by API token only: DRF finds that user in the view)
    response_team()
    user = User.objects.create_user("alice", "alice@example.com", "correct-horse-battery-42")
    client = APIClient()
    if how == "session":
        client.force_login(user)
    else:
        from rest_framework.authtoken.models import Token

        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert not replica.wrote_recently(user)

    # when they report an incident
    response = client.post("/api/incidents", {"title": "Door forced", "description": "Back entrance."}, format="json")

    # then their next reads stay on the primary
    assert response.status_code == 201, response.content
    assert replica.wrote_recently(user)


def test_a_read_marks_nobody(transactional_db, with_replica):
    user = User.objects.create_user("alice")
    client = APIClient()
    client.force_login(user)
    assert client.head("/healthz").status_code == 200
    assert not replica.wrote_recently(user)


# --- Settings ----------------------------------------------------------------------------------


def test_the_replica_is_off_by_default():
    process = start_django(
        '{"aliases": list(settings.DATABASES), "sticky": settings.REPLICA_STICKY_SECONDS}', SECRET_KEY=KEY
    )
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout) == {"aliases": ["default"], "sticky": 10}


def test_a_replica_url_adds_a_replica_with_the_primarys_options():
    process = start_django(
        '{"replica": settings.DATABASES["replica"], "routers": settings.DATABASE_ROUTERS}',
        driver=DRIVER_PRESENT,
        setup=False,
        SECRET_KEY=KEY,
        DATABASE_URL="mysql://u:p@db1:3306/irms",
        DATABASE_REPLICA_URL="mysql://r:q@db2:3307/irms",
    )
    assert process.returncode == 0, process.stderr
    shown = json.loads(process.stdout)
    db = shown["replica"]
    assert (db["HOST"], db["PORT"], db["USER"], db["PASSWORD"], db["NAME"]) == ("db2", 3307, "r", "q", "irms")
    assert db["OPTIONS"]["charset"] == "utf8mb4"
    assert "STRICT_TRANS_TABLES" in db["OPTIONS"]["init_command"]
    assert db["TEST"] == {"MIRROR": "default"}
    assert shown["routers"] == ["incidents.replica.ReplicaRouter"]


def test_a_replica_of_another_kind_of_database_stops_with_one_line():
    process = start_django(
        "{}",
        driver=DRIVER_PRESENT,
        setup=False,
        SECRET_KEY=KEY,
        DATABASE_URL="mysql://u:p@db1:3306/irms",
        DATABASE_REPLICA_URL="sqlite:////tmp/x.sqlite3",
    )
    assert process.returncode == 2
    assert process.stderr.strip() == (
        "IRMS configuration error: DATABASE_REPLICA_URL must name the same kind of database as DATABASE_URL."
    )


def test_a_users_teams_are_read_from_the_primary_before_reads_go_to_the_replica(transactional_db, with_replica):
    # given a member of a team (what they may see depends on it)
    user = User.objects.create_user("alice", "alice@example.com")
    team = Team.objects.create(slug="facilities", name="Facilities")
    team.members.add(user)

    # when their request enters the replica's block
    with replica.replica_reads(get(user)):
        # then their membership was already read, on the primary: a lagging replica cannot
        # show someone just removed from a team that team's incidents
        assert team.pk in user._irms_membership.team_ids
        assert router.db_for_read(Incident) == "replica"
