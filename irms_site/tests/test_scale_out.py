"""Two app servers behind one (imaginary) balancer agree on everything: real gunicorn
processes on two loopback ports, with the deployment kit's configuration, on the test
database, one Redis (database 7, a key prefix per test) or the database cache, and one
upload directory (cluster.py). Each test sends its requests to both and checks that what
one server did, the other knows: sessions and CSRF, sign-in lockouts, API throttles,
Idempotency-Keys, uploads; and that two mail workers deliver every message once.
"""

import secrets
import time
from collections import Counter

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from rest_framework.authtoken.models import Token

from accounts.models import User
from incidents.models import Attachment, Category, Incident
from incidents.tests.factories import response_team
from notifications.models import OutgoingEmail
from notifications.tests.conftest import (  # noqa: F401 - fixtures used by name
    queue_messages,
    shared_database,
    smtp_sink,
    wait_for,
    workers,
)

from .cluster import Browser, app_servers, cluster_env, multipart

PASSWORD = "correct-horse-battery-42"
REDIS_DB = 7


def redis_url() -> str:
    """Redis database 7, under a key prefix of this test's own: no other test's throttle
    counts or sessions are seen, and nothing needs flushing."""
    return f"redis://127.0.0.1:6379/{REDIS_DB}?key_prefix=irms-test-{secrets.token_hex(6)}"


CACHES = {"redis": redis_url, "database": lambda: f"dbcache://irms_cache?key_prefix=irms-test-{secrets.token_hex(6)}"}


@pytest.fixture
def cluster(shared_database, tmp_path):  # noqa: F811
    """`cluster(cache="redis", **env)` starts two servers sharing one database, one cache and
    one media directory; yields them as (a, b). Stopped after the test."""
    stack = []

    def start(*, cache: str = "redis", **extra):
        env = cluster_env(shared_database, cache_url=CACHES[cache](), media_root=tmp_path / "media", extra=extra)
        (tmp_path / "logs").mkdir(exist_ok=True)
        context = app_servers(2, env, tmp_path / "logs")
        servers = context.__enter__()
        stack.append(context)
        return servers

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


@pytest.fixture
def member(transactional_db):
    """A signed-up user who can report (the default team and category exist), with an API token."""
    response_team()
    user = User.objects.create_user(username="alice", email="alice@example.com")
    # The servers run the production hashers, not the tests' fast MD5: a PBKDF2 hash they
    # can check (few iterations; they upgrade it at the first sign-in).
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt(), iterations=1000)
    user.save(update_fields=["password"])
    user.api_token = Token.objects.create(user=user).key
    return user


def sign_in(browser: Browser, server, username: str = "alice", password: str = PASSWORD):
    token = browser.csrf_token(server.url + "/accounts/login/")
    return browser.post_form(
        server.url + "/accounts/login/",
        {"csrfmiddlewaretoken": token, "username": username, "password": password},
    )


# --- Sessions and CSRF ---------------------------------------------------------------------


def test_a_session_and_a_form_token_made_on_one_server_work_on_the_other(cluster, member):
    # given two servers, and a browser signed in through the first
    a, b = cluster()
    browser = Browser()
    status, headers, _ = sign_in(browser, a)
    assert status == 302, a.tail()

    # when it opens its dashboard on the second
    status, _, body = browser.get(b.url + "/dashboard/")

    # then it is signed in there
    assert status == 200, b.tail()
    assert b"alice" in body

    # and a report form fetched from the second is accepted by the first (one CSRF secret)
    token = browser.csrf_token(b.url + "/incidents/new/")
    status, headers, _ = browser.post_form(
        a.url + "/incidents/new/",
        {
            "csrfmiddlewaretoken": token,
            "category": str(Category.objects.get(slug="general").pk),
            "title": "Gas smell in the kitchen",
            "description": "Near the coffee machine.",
            "severity": "High",
        },
    )
    assert status == 302, a.tail()
    assert Incident.objects.filter(reporter=member, title="Gas smell in the kitchen").count() == 1

    # and signing out on the second ends the session on the first too
    token = browser.csrf_token(b.url + "/dashboard/")
    status, _, _ = browser.post_form(b.url + "/accounts/logout/", {"csrfmiddlewaretoken": token})
    assert status == 302
    status, headers, _ = browser.get(a.url + "/dashboard/")
    assert status == 302
    assert "/accounts/login/" in headers["Location"]


# --- Lockouts and throttles ------------------------------------------------------------------


def test_the_sign_in_lockout_counts_failures_on_every_server(cluster, member):
    # given two servers that lock an account out after 3 failed sign-ins
    a, b = cluster(AXES_FAILURE_LIMIT="3")
    client = Browser()

    def token_request(server, password):
        return client.json("POST", server.url + "/api/auth/token", {"username": "alice", "password": password})

    # when the failures are spread over both (2 on one, 1 on the other: neither saw 3)
    assert token_request(a, "wrong-1")[0] == 401
    assert token_request(b, "wrong-2")[0] == 401
    token_request(a, "wrong-3")

    # then the right password is refused on either, until the cool-off
    for server in (b, a):
        status, headers, body = token_request(server, PASSWORD)
        assert status == 429, (server.name, body)
        assert int(headers["Retry-After"]) > 0


@pytest.mark.parametrize("cache", ["redis", "database"])
def test_the_api_throttle_counts_requests_on_every_server(cluster, member, cache):
    # given two servers allowing 6 API requests a minute per user, on a shared cache
    a, b = cluster(cache=cache, API_THROTTLE_USER="6/min")
    client = Browser()

    # when a client sends 3 requests to each (never more than 6 anywhere)
    answers = [client.json("GET", server.url + "/api/incidents", token=member.api_token)[0] for server in (a, b) * 3]

    # then all are served, and the seventh is refused on either server, though each saw 3
    assert answers == [200] * 6
    for server in (a, b):
        status, headers, _ = client.json("GET", server.url + "/api/incidents", token=member.api_token)
        assert status == 429, server.name
        assert int(headers["Retry-After"]) > 0


# --- Idempotency-Key ----------------------------------------------------------------------------


def test_an_idempotency_key_used_on_one_server_replays_on_the_other(cluster, member):
    # given two servers, and a report sent to the first with a key
    a, b = cluster()
    client = Browser()
    report = {"title": "Door forced", "description": "Back entrance, found at 07:10."}
    key = {"Idempotency-Key": "report-" + secrets.token_hex(8)}
    status, _, first = client.json("POST", a.url + "/api/incidents", report, token=member.api_token, headers=key)
    assert status == 201, a.tail()

    # when the client retries it on the second (its first answer was lost, say)
    status, headers, again = client.json("POST", b.url + "/api/incidents", report, token=member.api_token, headers=key)

    # then it gets the first answer back, and there is one incident
    assert status == 201
    assert headers["Idempotent-Replayed"] == "true"
    assert again == first
    assert Incident.objects.filter(title="Door forced").count() == 1

    # and the same key for another report is refused there too
    other = {**report, "title": "Window forced"}
    status, _, body = client.json("POST", b.url + "/api/incidents", other, token=member.api_token, headers=key)
    assert status == 422, body
    assert not Incident.objects.filter(title="Window forced").exists()


# --- Uploads --------------------------------------------------------------------------------------


def test_a_file_uploaded_through_one_server_downloads_through_the_other(cluster, member):
    # given two servers sharing an upload directory, and an incident
    a, b = cluster()
    client = Browser()
    status, _, incident = client.json(
        "POST", a.url + "/api/incidents", {"title": "Phishing", "description": "See the log."}, token=member.api_token
    )
    assert status == 201
    content = b"Dec  1 09:00:01 sshd[42]: Failed password for root from 203.0.113.7\n" * 20

    # when a file is uploaded through the first
    body, content_type = multipart({}, {"file": ("auth.log", content, "text/plain")})
    status, _, raw = client.request(
        "POST",
        f"{a.url}/api/incidents/{incident['incident_id']}/attachments",
        data=body,
        headers={"Content-Type": content_type, "Authorization": f"Token {member.api_token}"},
    )
    assert status == 201, (raw, a.tail())
    attachment = Attachment.objects.get(incident__incident_id=incident["incident_id"])

    # then the second serves the same bytes
    status, headers, downloaded = client.request(
        "GET",
        f"{b.url}/api/incidents/{incident['incident_id']}/attachments/{attachment.pk}/file",
        headers={"Authorization": f"Token {member.api_token}"},
    )
    assert status == 200, b.tail()
    assert downloaded == content
    assert headers["Content-Type"].startswith("text/plain")


# --- Workers ----------------------------------------------------------------------------------------


def test_two_workers_deliver_every_message_once(cluster, member, workers):  # noqa: F811
    # given mail queued through both servers (each report confirms to the reporter and
    # alerts the team) and a backlog of 40 more
    a, b = cluster()
    client = Browser()
    response_team().members.add(User.objects.create_user("rita", "rita@example.com"))
    for index, server in enumerate((a, b, a, b)):
        report = {"title": f"Report {index}", "description": "Through a server."}
        assert client.json("POST", server.url + "/api/incidents", report, token=member.api_token)[0] == 201
    queue_messages(40)
    queued = OutgoingEmail.objects.count()
    assert queued > 40

    # when two workers take the outbox at once
    with smtp_sink() as (sink, port):
        workers.start(port, "one")
        workers.start(port, "two")
        wait_for(
            lambda: not OutgoingEmail.objects.exclude(state=OutgoingEmail.State.SENT).exists(),
            timeout=90,
            what="every message sent",
        )
        time.sleep(1)  # a duplicate would arrive now, if there were one

    # then each message arrived exactly once, as itself
    received = Counter(message_id for rcpt in sink.copies() for message_id in sink.message_ids(rcpt))
    expected = Counter(OutgoingEmail.objects.values_list("message_id", flat=True))
    assert len(expected) == queued
    assert received == expected
    assert set(OutgoingEmail.objects.values_list("attempts", flat=True)) == {1}


# --- Readiness ---------------------------------------------------------------------------------------


def test_readyz_answers_for_each_server_and_names_what_is_down(cluster, member, tmp_path):
    # given a healthy pair, and a pair whose cache is a Redis nobody runs
    a, _ = cluster()
    from bench.server import free_port

    broken, _ = cluster(cache="redis", CACHE_URL=f"redis://127.0.0.1:{free_port()}/0")
    client = Browser()

    # then the healthy one is ready
    status, _, body = client.json("GET", a.url + "/readyz")
    assert (status, body["ready"]) == (200, True)
    assert body["checks"] == {"database:default": "ok", "cache": "ok"}

    # and the other is alive (healthz) but not ready, saying why
    assert client.get(broken.url + "/healthz")[0] == 200
    started = time.monotonic()
    status, _, body = client.json("GET", broken.url + "/readyz")
    assert time.monotonic() - started < 10
    assert status == 503
    assert body["checks"] == {"database:default": "ok", "cache": "failed"}


def test_a_local_memory_cache_is_warned_about_outside_debug(settings):
    from django.core.checks import run_checks

    settings.DEBUG = False
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert "irms.W001" in {message.id for message in run_checks()}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "irms_cache"}}
    assert "irms.W001" not in {message.id for message in run_checks()}
