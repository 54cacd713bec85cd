"""Sign-in lockout (accounts/lockout.py, django-axes) from the outside: failures count
against the account whatever spelling named it, on the web sign-in, the admin's and the
token endpoint alike; an address is locked after many failures across accounts; an
unknown account is answered exactly as an existing one; ten failures lock a username at
an address for fifteen minutes, even against the right password, until the cool-off time
passes or the access attempts are deleted; and an overlong username is no server error."""

import json
from datetime import timedelta
from itertools import cycle
from urllib.parse import urlencode

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

PASSWORD = "correct-horse-battery-42"  # the root conftest's password for every user

ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.1"
SURFACES = {"web": "/accounts/login/", "admin": "/admin/login/", "token": "/api/auth/token"}


@pytest.fixture
def sam(make_user):
    """Staff, so the admin's sign-in lets him in too."""
    return make_user("sam", email="sam@example.org", is_staff=True)


def sign_in(surface, login, password, *, address=ATTACKER, client=None):
    client = client or Client()
    data = {"username": login, "password": password}
    if surface == "token":
        return client.post(SURFACES[surface], data, content_type="application/json", REMOTE_ADDR=address)
    return client.post(SURFACES[surface], data, REMOTE_ADDR=address)


def fail(surface, logins, times, *, address=ATTACKER):
    """`times` wrong passwords, naming the logins in turn; the answers."""
    return [
        sign_in(surface, login, f"wrong-{attempt}", address=address)
        for attempt, login in zip(range(times), cycle(logins))
    ]


def succeeded(surface, response) -> bool:
    if surface == "token":
        return response.status_code == 200 and "token" in response.json()
    return response.status_code == 302


def assert_locked_out(response):
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()


def answer(response):
    """What a caller sees, less the per-request id and CSRF token."""
    if response.status_code == 429 and response["Content-Type"].startswith("application/json"):
        return response.status_code, {**response.json(), "request_id": None}
    if response.status_code == 429:
        return response.status_code, response.content
    return response.status_code, response.get("Content-Type")


# --- One count per account, whatever spelling named it -----------------------------------


@pytest.mark.parametrize("surface", SURFACES)
def test_failures_under_every_spelling_count_against_one_account(sam, password, surface):
    # given: ten failures naming sam by username, by address and by upper-case address
    fail(surface, ["sam", "sam@example.org", "SAM@EXAMPLE.ORG"], 10)

    # when: the right password, under yet another spelling
    response = sign_in(surface, "Sam@Example.org", password)

    # then
    assert_locked_out(response)
    assert not Token.objects.exists()


@pytest.mark.parametrize("surface", SURFACES)
def test_a_success_by_another_spelling_does_not_clear_a_lockout(sam, password, surface):
    # given: sam locked out by username
    fail(surface, ["sam"], 10)

    # when: the right password by e-mail address, then by username again
    by_email = sign_in(surface, "sam@example.org", password)
    by_username = sign_in(surface, "sam", password)

    # then
    assert_locked_out(by_email)
    assert_locked_out(by_username)
    assert AccessAttempt.objects.filter(username="sam", ip_address=ATTACKER).exists()


@pytest.mark.parametrize("surface", SURFACES)
def test_the_account_lockout_is_per_address(sam, password, surface):
    # given
    fail(surface, ["sam@example.org"], 10)

    # when
    response = sign_in(surface, "sam", password, address=ELSEWHERE)

    # then
    assert succeeded(surface, response)


def test_a_success_before_the_limit_clears_the_accounts_failures_under_every_spelling(client, sam, password):
    # given: nine failures by address, then the right password by username
    fail("web", ["sam@example.org"], 9)
    sign_in("web", "sam", password)

    # when: nine more failures, then the right password again
    fail("web", ["SAM@example.org"], 9)
    response = sign_in("web", "sam@example.org", password, client=client)

    # then: never ten in a row, never locked out
    assert succeeded("web", response)
    assert client.session["_auth_user_id"] == str(sam.pk)


# --- One address against many accounts (password spraying) -------------------------------


def test_fifty_failures_across_accounts_lock_the_address(make_user, sam, password):
    # given: one failure for each of fifty accounts, existing and unknown, from one address
    logins = [make_user(f"user-{n}").username for n in range(10)] + [f"nobody-{n}" for n in range(40)]
    answers = fail("web", logins, 50)
    assert [response.status_code for response in answers[:49]] == [400] * 49

    # when: an account that was never named, with its right password
    here = sign_in("web", "sam", password)
    elsewhere = sign_in("web", "sam", password, address=ELSEWHERE)

    # then: refused from that address only
    assert_locked_out(answers[49])
    assert_locked_out(here)
    assert succeeded("web", elsewhere)


@pytest.mark.parametrize("surface", SURFACES)
def test_the_address_limit_applies_on_every_sign_in(settings, make_user, sam, password, surface):
    # given: a low address limit, reached across five accounts
    settings.AXES_IP_FAILURE_LIMIT = 5
    fail(surface, ["ann", "ben", "cat", "dan", "eve"], 5)

    # when
    response = sign_in(surface, "sam", password)

    # then
    assert_locked_out(response)
    assert not Token.objects.exists()


def test_signing_in_to_ones_own_account_does_not_reset_the_address_count(settings, make_user, sam, password):
    # given: an attacker with an account of their own, four failures against others
    settings.AXES_IP_FAILURE_LIMIT = 5
    make_user("mallory")
    fail("web", ["ann", "ben", "cat", "dan"], 4)

    # when: they sign in to their own account, then try one more
    own = sign_in("web", "mallory", password)
    fail("web", ["eve"], 1)
    response = sign_in("web", "sam", password)

    # then
    assert succeeded("web", own)
    assert_locked_out(response)


# --- Unknown and existing accounts look the same -----------------------------------------


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(
    ("existing", "unknown"),
    [
        pytest.param(["sam", "SAM", "Sam"], ["zed", "ZED", "Zed"], id="username-in-any-case"),
        pytest.param(
            ["sam@example.org", "SAM@EXAMPLE.ORG", "Sam@example.org"],
            ["zed@example.org", "ZED@EXAMPLE.ORG", "Zed@example.org"],
            id="email-in-any-case",
        ),
    ],
)
def test_an_unknown_account_is_answered_like_an_existing_one(sam, password, surface, existing, unknown):
    # given / when: the same requests, each run from its own address
    def run(logins, address):
        answers = fail(surface, logins, 10, address=address)
        answers.append(sign_in(surface, logins[0], password, address=address))
        return [answer(response) for response in answers]

    for_existing = run(existing, ATTACKER)
    for_unknown = run(unknown, ELSEWHERE)

    # then: every answer alike, the last two lockouts
    assert for_existing == for_unknown
    assert [status for status, _ in for_existing[-2:]] == [429, 429]


def test_an_address_lockout_reads_the_same_for_an_existing_and_an_unknown_account(settings, sam, password):
    # given
    settings.AXES_IP_FAILURE_LIMIT = 5
    fail("web", ["ann", "ben", "cat", "dan", "eve"], 5)

    # when
    existing = sign_in("web", "sam", password)
    unknown = sign_in("web", "zed", password)

    # then
    assert answer(existing) == answer(unknown)
    assert existing.status_code == 429


# --- The limits, per username and address, on every sign-in; unlocking ---------------------------


def test_lockout_settings():
    assert settings.AXES_FAILURE_LIMIT == 10
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME


def fail_to_sign_in(client, path, username, times=10, address=ATTACKER):
    for attempt in range(times):
        response = client.post(path, {"username": username, "password": f"wrong-{attempt}"}, REMOTE_ADDR=address)
        if attempt < times - 1:
            # refused and shown again: 400 on the site's sign-in page, 200 on Django's admin's
            assert response.status_code in (200, 400), f"attempt {attempt + 1} was {response.status_code}"


def assert_locked_out_for_the_cool_off(response):
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    assert "Too many failed sign-in attempts" in response.content.decode()


@pytest.mark.parametrize("username", ["alice", "nobody"], ids=["existing", "unknown"])
def test_ten_failures_lock_the_sign_in_page_even_for_the_right_password(client, reporter, username):
    # given
    fail_to_sign_in(client, "/accounts/login/", username)

    # when
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD}, REMOTE_ADDR=ATTACKER)

    # then
    assert_locked_out_for_the_cool_off(response)
    assert "_auth_user_id" not in client.session


def test_the_lockout_reads_the_same_for_an_existing_and_an_unknown_account(reporter):
    # given
    answers = []
    for username in ("alice", "nobody"):
        client = Client()
        fail_to_sign_in(client, "/accounts/login/", username)
        # when
        answers.append(
            client.post("/accounts/login/", {"username": username, "password": PASSWORD}, REMOTE_ADDR=ATTACKER)
        )

    # then
    existing, unknown = answers
    assert existing.status_code == unknown.status_code == 429
    assert existing["Retry-After"] == unknown["Retry-After"]
    assert existing.content == unknown.content


def test_the_lockout_is_per_username_and_address(client, reporter, other):
    # given
    fail_to_sign_in(client, "/accounts/login/", "alice")

    # when: another account from the same address, and the same account from elsewhere
    other_account = Client().post("/accounts/login/", {"username": "bob", "password": PASSWORD}, REMOTE_ADDR=ATTACKER)
    elsewhere = Client().post(
        "/accounts/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="198.51.100.1"
    )

    # then
    assert other_account.status_code == 302
    assert elsewhere.status_code == 302


def test_the_admin_sign_in_locks_the_same_way(client, staff):
    # given
    fail_to_sign_in(client, "/admin/login/", "sam")

    # when
    response = client.post("/admin/login/", {"username": "sam", "password": PASSWORD}, REMOTE_ADDR=ATTACKER)

    # then
    assert_locked_out_for_the_cool_off(response)
    assert "_auth_user_id" not in client.session


def test_the_api_token_endpoint_locks_the_same_way(client, reporter):
    # given
    cache.clear()  # the "auth" throttle's counts live in the cache
    for attempt in range(10):
        response = client.post(
            "/api/auth/token",
            {"username": "alice", "password": f"wrong-{attempt}"},
            content_type="application/json",
            REMOTE_ADDR=ATTACKER,
        )
        if attempt < 9:
            assert response.status_code == 401

    # when
    response = client.post(
        "/api/auth/token",
        {"username": "alice", "password": PASSWORD},
        content_type="application/json",
        REMOTE_ADDR=ATTACKER,
    )

    # then
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    assert "Too many failed sign-in attempts" in response.json()["error"]
    assert "token" not in response.json()
    assert not Token.objects.filter(user=reporter).exists()


def test_deleting_the_access_attempts_unlocks_the_account(client, reporter):
    # given
    fail_to_sign_in(client, "/accounts/login/", "alice")
    assert AccessAttempt.objects.exists()

    # when: what "delete" on the admin's access-attempt list does
    AccessAttempt.objects.all().delete()
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR=ATTACKER)

    # then
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(reporter.pk)


def test_the_lockout_ends_after_the_cool_off_time(client, reporter):
    # given
    fail_to_sign_in(client, "/accounts/login/", "alice")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    # when
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR=ATTACKER)

    # then
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/accounts/login/", "application/x-www-form-urlencoded"),
        ("/admin/login/", "application/x-www-form-urlencoded"),
        ("/api/auth/token", "application/json"),
    ],
    ids=["sign-in", "admin sign-in", "api token"],
)
def test_an_overlong_username_is_refused_without_a_server_error(client, reporter, path, content_type):
    # given: longer than any username (150) or address (254), and than axes' record of it (255)
    cache.clear()
    credentials = {"username": "a" * 300, "password": PASSWORD}
    body = json.dumps(credentials) if content_type == "application/json" else urlencode(credentials)

    # when
    response = client.generic("POST", path, body, content_type=content_type, REMOTE_ADDR=ATTACKER)

    # then
    assert 200 <= response.status_code < 500
    assert response.status_code not in (301, 302)
    assert "_auth_user_id" not in client.session
