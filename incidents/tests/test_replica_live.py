"""Reads from a real MariaDB replica: a primary and a replica of this test's own
(mariadb_pair.py), IRMS under gunicorn with DATABASE_URL on the first and
DATABASE_REPLICA_URL on the second. The replica is made stale on purpose (it stops
applying the primary's changes), so where each read went shows in what it returns.

Collected in the MariaDB pass of the suite only (conftest.py): it needs the MySQL driver,
which the SQLite pass does not install.
"""

import json
import secrets
import subprocess
import sys
import time

import pytest
from django.conf import settings

from irms_site.tests.cluster import Browser, app_servers, cluster_env

from .mariadb_pair import mariadb_pair

STICKY = 3
PASSWORD = "correct-horse-battery-42"
# Run by `manage.py shell -c` against the site's primary; prints the users' API tokens.
MAKE_USERS = """
import json, os
from rest_framework.authtoken.models import Token
from accounts.models import User
tokens = {}
for name in ("alice", "bob", "sam"):
    user = User.objects.create_user(name, f"{name}@example.com", os.environ["IRMS_TEST_PASSWORD"], is_staff=name == "sam")
    tokens[name] = Token.objects.create(user=user).key
print(json.dumps(tokens))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(pair, server, tokens): one gunicorn reading lists from the replica, REPLICA_STICKY_SECONDS=3."""
    root = tmp_path_factory.mktemp("replica-site")
    with mariadb_pair() as pair:
        pair.primary.execute("CREATE DATABASE irms CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        env = cluster_env(
            pair.primary.url("irms"),
            cache_url=f"redis://127.0.0.1:6379/7?key_prefix=irms-replica-{secrets.token_hex(6)}",
            media_root=root / "media",
            extra={"DATABASE_REPLICA_URL": pair.replica.url("irms"), "REPLICA_STICKY_SECONDS": str(STICKY)},
        )

        def manage(*args):
            done = subprocess.run(  # noqa: S603
                [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        manage("migrate", "--no-input")
        env["IRMS_TEST_PASSWORD"] = PASSWORD
        tokens = json.loads(manage("shell", "-c", MAKE_USERS).strip().splitlines()[-1])
        pair.wait_caught_up()
        with app_servers(1, env, root) as (server,):
            server.env = env
            yield pair, server, tokens


@pytest.fixture
def stale_replica(site):
    """The replica caught up, every user's sticky window over, then frozen for the test."""
    pair, server, tokens = site
    pair.wait_caught_up()
    time.sleep(STICKY + 0.5)
    pair.stop_applying()
    yield site
    pair.resume_applying()
    pair.wait_caught_up()


def ids(answer) -> set[str]:
    status, _, body = answer
    assert status == 200, body
    return {incident["incident_id"] for incident in body}


def test_api_lists_read_the_replica_and_a_writer_sees_their_own_writes(stale_replica):
    pair, server, tokens = stale_replica
    client = Browser()

    def api(method, path, name, payload=None):
        return client.json(method, server.url + path, payload, token=tokens[name])

    # when alice reports an incident (on the primary; the replica does not apply it)
    status, _, created = api("POST", "/api/incidents", "alice", {"title": "Door forced", "description": "Back door."})
    assert status == 201, server.tail()
    new = created["incident_id"]

    # then alice's own list has it at once: her reads stay on the primary after her write
    assert new in ids(api("GET", "/api/incidents", "alice"))
    # and bob's list, read from the stale replica, does not yet
    assert new not in ids(api("GET", "/api/publicIncidents", "bob"))
    # though the incident itself (not a list) is read from the primary
    assert api("GET", f"/api/publicIncidents/{new}", "bob")[0] == 200

    # when alice's sticky window has passed, her list reads the replica too
    time.sleep(STICKY + 0.5)
    assert new not in ids(api("GET", "/api/incidents", "alice"))

    # and once the replica catches up, everyone sees it
    pair.resume_applying()
    pair.wait_caught_up()
    assert new in ids(api("GET", "/api/incidents", "alice"))
    assert new in ids(api("GET", "/api/publicIncidents", "bob"))


def test_the_sites_list_pages_read_the_replica(site):
    pair, server, tokens = site
    # given bob signed in on the site (a write: wait for his window to pass) and a stale replica
    browser = Browser()
    csrf = browser.csrf_token(server.url + "/accounts/login/")
    status, _, _ = browser.post_form(
        server.url + "/accounts/login/", {"csrfmiddlewaretoken": csrf, "username": "bob", "password": PASSWORD}
    )
    assert status == 302, server.tail()
    pair.wait_caught_up()
    time.sleep(STICKY + 0.5)
    pair.stop_applying()
    try:
        # when alice reports an incident through the API
        title = f"Smoke in room {secrets.randbelow(1000)}"
        report = {"title": title, "description": "Third floor."}
        assert browser.json("POST", server.url + "/api/incidents", report, token=tokens["alice"])[0] == 201

        # then bob's list of public incidents, from the replica, does not have it yet
        status, _, page = browser.get(server.url + "/incidents/public/")
        assert status == 200, server.tail()
        assert title.encode() not in page
    finally:
        pair.resume_applying()
    pair.wait_caught_up()
    # and has it once the replica caught up
    status, _, page = browser.get(server.url + "/incidents/public/")
    assert title.encode() in page


def test_the_metrics_read_the_replica(stale_replica):
    pair, server, tokens = stale_replica
    client = Browser()

    def reported():
        status, _, body = client.json("GET", server.url + "/api/metrics", None, token=tokens["sam"])
        assert status == 200, server.tail()
        return body["reported"]

    before = reported()
    # when alice reports an incident (the stale replica does not apply it)
    report = {"title": "Water on the floor", "description": "Basement."}
    assert client.json("POST", server.url + "/api/incidents", report, token=tokens["alice"])[0] == 201

    # then staff's metrics, read from the replica, do not count it yet; they do once it caught up
    assert reported() == before
    pair.resume_applying()
    pair.wait_caught_up()
    assert reported() == before + 1


def test_readyz_checks_the_replica_too(site):
    pair, server, _ = site
    status, _, body = Browser().json("GET", server.url + "/readyz")
    assert status == 200
    assert body["checks"] == {"database:default": "ok", "database:replica": "ok", "cache": "ok"}


def test_the_documented_backup_restores_into_a_working_database(site, tmp_path):
    # given a site with incidents (the other tests' and one more)
    pair, server, tokens = site
    report = {"title": "Before the backup", "description": "Kept."}
    assert Browser().json("POST", server.url + "/api/incidents", report, token=tokens["alice"])[0] == 201
    counts = "SELECT (SELECT COUNT(*) FROM incidents_incident), (SELECT COUNT(*) FROM accounts_user)"
    before = pair.primary.execute(counts, "irms")

    # when it is dumped as docs/deployment.md says, and restored into an empty database
    dump = tmp_path / "irms.sql"
    with open(dump, "wb") as out:
        dumped = subprocess.run(  # noqa: S603
            ["mariadb-dump", "--host=127.0.0.1", f"--port={pair.primary.port}", "--user=root",
             "--single-transaction", "--routines", "--triggers", "--hex-blob", "irms"],
            stdout=out, stderr=subprocess.PIPE, check=False,
        )  # fmt: skip
    assert dumped.returncode == 0, dumped.stderr
    pair.primary.execute("CREATE DATABASE irms_restored CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    with open(dump, "rb") as source:
        restored = subprocess.run(  # noqa: S603
            ["mariadb", "--host=127.0.0.1", f"--port={pair.primary.port}", "--user=root", "irms_restored"],
            stdin=source, capture_output=True, check=False,
        )  # fmt: skip
    assert restored.returncode == 0, restored.stderr

    # then it holds the same rows, and IRMS finds its schema complete (no migration pending)
    assert pair.primary.execute(counts, "irms_restored") == before
    env = {**server.env, "DATABASE_URL": pair.primary.url("irms_restored")}
    env.pop("DATABASE_REPLICA_URL")
    check = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "migrate", "--check"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
