"""API tokens: POST /api/auth/token (accounts/api.py), which trades a username or e-mail
address and password for the account's token, refuses everything else alike and is
throttled and locked out like any sign-in; and the profile page's buttons that create,
regenerate and revoke it."""

from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

PASSWORD = "correct-horse-battery-42"  # the root conftest's password for every user


# --- POST /api/auth/token ---------------------------------------------------------------------


@pytest.mark.parametrize("login", ["alice", "alice@example.com", "ALICE@example.com"])
@pytest.mark.parametrize("fmt", ["json", "form"])
def test_token_for_username_or_email_authenticates(reporter, public_incident, login, fmt):
    # given
    client = APIClient()
    data = {"username": login, "password": PASSWORD}

    # when
    if fmt == "json":
        response = client.post("/api/auth/token", data, format="json")
    else:
        response = client.post("/api/auth/token", urlencode(data), content_type="application/x-www-form-urlencoded")

    # then
    assert response.status_code == 200, response.content
    key = response.json()["token"]
    assert response.json() == {"token": key}
    assert Token.objects.get(user=reporter).key == key
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    listed = client.get("/api/incidents")
    assert listed.status_code == 200
    assert [item["incident_id"] for item in listed.json()] == [str(public_incident.incident_id)]


def test_token_is_the_same_on_a_second_request(reporter):
    # given
    client = APIClient()
    first = client.post("/api/auth/token", {"username": "alice", "password": PASSWORD}, format="json").json()

    # when
    second = client.post("/api/auth/token", {"username": "alice", "password": PASSWORD}, format="json").json()

    # then
    assert first == second
    assert Token.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "status"),
    [
        # Credentials that match no account: 401, as for a bad token.
        pytest.param({"username": "alice", "password": "wrong-password-1"}, 401, id="wrong-password"),
        pytest.param({"username": "nobody", "password": "wrong-password-1"}, 401, id="unknown-user"),
        pytest.param({"username": "nobody@example.com", "password": PASSWORD}, 401, id="unknown-email"),
        # A malformed request: 400 with the field named.
        pytest.param({"username": "alice"}, 400, id="no-password"),
        pytest.param({"password": PASSWORD}, 400, id="no-username"),
        pytest.param({"username": "", "password": ""}, 400, id="empty"),
    ],
)
def test_token_refused_for_bad_credentials(reporter, data, status):
    # given
    client = APIClient()

    # when
    response = client.post("/api/auth/token", data, format="json")

    # then
    assert response.status_code == status
    assert response.json()["error"]
    assert "token" not in response.json()
    assert not Token.objects.exists()


def test_token_refusal_does_not_tell_unknown_users_from_wrong_passwords(reporter):
    # given
    client = APIClient()

    # when
    wrong_password = client.post("/api/auth/token", {"username": "alice", "password": "nope-nope-1"}, format="json")
    unknown_user = client.post("/api/auth/token", {"username": "zed", "password": "nope-nope-1"}, format="json")
    unknown_email = client.post(
        "/api/auth/token", {"username": "zed@example.com", "password": "nope-nope-1"}, format="json"
    )

    # then
    assert wrong_password.status_code == unknown_user.status_code == unknown_email.status_code == 401
    assert wrong_password.content == unknown_user.content == unknown_email.content


@override_settings(AXES_FAILURE_LIMIT=3)
@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_token_endpoint_locks_out_after_repeated_failures(reporter, username):
    # given: as many failures as the limit allows
    client = APIClient()
    for _ in range(3):
        client.post("/api/auth/token", {"username": username, "password": "guess-guess-1"}, format="json")

    # when: even the right password
    response = client.post("/api/auth/token", {"username": username, "password": PASSWORD}, format="json")

    # then: the same answer for a real and an unknown account
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"].startswith("Too many failed sign-in attempts.")
    assert not Token.objects.exists()


def test_token_refused_for_a_deactivated_account(make_user):
    # given
    make_user("ivan", is_active=False)

    # when
    response = APIClient().post("/api/auth/token", {"username": "ivan", "password": PASSWORD}, format="json")

    # then
    assert response.status_code == 401
    assert not Token.objects.exists()


def test_token_error_is_the_same_for_an_unknown_account_and_a_wrong_password(client, reporter):
    # given
    cache.clear()

    # when
    wrong_password = client.post(
        "/api/auth/token", {"username": "alice", "password": "not-it"}, content_type="application/json"
    )
    unknown_user = client.post(
        "/api/auth/token", {"username": "nobody", "password": "not-it"}, content_type="application/json"
    )

    # then
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json() == unknown_user.json()


# --- The profile page's token management --------------------------------------------------------


def test_profile_creates_and_shows_a_token(client, reporter):
    # given
    client.force_login(reporter)
    assert "You have no API token." in client.get("/accounts/profile/").content.decode()

    # when
    response = client.post("/accounts/profile/token/", {"action": "create"})

    # then
    assert response.status_code == 302
    assert response["Location"] == "/accounts/profile/"
    key = Token.objects.get(user=reporter).key
    assert key in client.get("/accounts/profile/").content.decode()
    assert api_client_with_key(key).get("/api/incidents").status_code == 200


def api_client_with_key(key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_profile_regenerate_replaces_the_token(client, reporter):
    # given
    client.force_login(reporter)
    old = Token.objects.create(user=reporter).key

    # when
    response = client.post("/accounts/profile/token/", {"action": "regenerate"})

    # then
    assert response.status_code == 302
    new = Token.objects.get(user=reporter).key
    assert new != old
    assert new in client.get("/accounts/profile/").content.decode()
    refused = api_client_with_key(old).get("/api/incidents")
    assert refused.status_code == 401
    assert refused.json()["error"] == "Unauthorized access"
    assert api_client_with_key(new).get("/api/incidents").status_code == 200


def test_profile_revoke_stops_the_token(client, reporter):
    # given
    client.force_login(reporter)
    old = Token.objects.create(user=reporter).key

    # when
    response = client.post("/accounts/profile/token/", {"action": "revoke"})

    # then
    assert response.status_code == 302
    assert not Token.objects.filter(user=reporter).exists()
    page = client.get("/accounts/profile/").content.decode()
    assert old not in page
    assert "You have no API token." in page
    assert api_client_with_key(old).get("/api/incidents").status_code == 401


def test_profile_token_actions_touch_only_the_callers_token(client, reporter, other):
    # given
    client.force_login(reporter)
    others = Token.objects.create(user=other).key

    # when
    client.post("/accounts/profile/token/", {"action": "create"})
    client.post("/accounts/profile/token/", {"action": "regenerate"})
    client.post("/accounts/profile/token/", {"action": "revoke"})

    # then
    assert Token.objects.get(user=other).key == others
    assert others not in client.get("/accounts/profile/").content.decode()


def test_profile_token_unknown_action_is_refused(client, reporter):
    # given
    client.force_login(reporter)

    # when
    response = client.post("/accounts/profile/token/", {"action": "steal"})

    # then
    assert response.status_code == 400
    assert not Token.objects.exists()


def test_profile_token_needs_a_signed_in_user(client, reporter):
    # when
    response = client.post("/accounts/profile/token/", {"action": "create"})

    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not Token.objects.exists()


# --- Throttling -------------------------------------------------------------------------------


def assert_throttled(response):
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


def test_token_endpoint_is_throttled_by_the_auth_rate(strict_rates, reporter):
    # given: three failed guesses
    client = APIClient()
    for _ in range(3):
        guess = client.post("/api/auth/token", {"username": "alice", "password": "guess-guess-1"}, format="json")
        assert guess.status_code == 401

    # when: the right password, one request too many
    response = client.post("/api/auth/token", {"username": "alice", "password": PASSWORD}, format="json")

    # then
    assert_throttled(response)
    assert not Token.objects.exists()
