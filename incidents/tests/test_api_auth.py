"""Who the API lets in: a caller without usable credentials gets a JSON 401, never a
redirect to the sign-in page; a deactivated account's token is refused; a browser session
must send the CSRF token to write, a token caller need not; and each user has a request
budget of their own (throttling). What each caller may do once in: the authorization matrix,
irms_site/tests/test_authorization_matrix.py."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from incidents.models import Incident

from .factories import stored


def api_client(user=None, auth="token", **kwargs) -> APIClient:
    """A client signed in as `user` by API token or by session (None: anonymous)."""
    client = APIClient(**kwargs)
    if user is not None and auth == "token":
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    elif user is not None:
        client.force_login(user)
    return client


ENDPOINTS = [
    # (method, path with {id}): every endpoint that needs a caller.
    ("get", "/api/incidents"),
    ("post", "/api/incidents"),
    ("get", "/api/incidents/{id}"),
    ("patch", "/api/incidents/{id}"),
    ("get", "/api/publicIncidents"),
    ("get", "/api/publicIncidents/{id}"),
    ("get", "/api/responses/{id}"),
    ("post", "/api/responses/{id}"),
]


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({}, id="none"),
        pytest.param({"HTTP_AUTHORIZATION": "Token 0123456789abcdef0123456789abcdef01234567"}, id="unknown-token"),
        pytest.param({"HTTP_AUTHORIZATION": "Token"}, id="empty-token"),
        pytest.param({"HTTP_AUTHORIZATION": "Basic YWxpY2U6c2VjcmV0"}, id="basic-auth"),
    ],
)
@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_anonymous_gets_401_json_not_a_redirect(public_incident, method, path, credentials, slash):
    # given
    client = APIClient()
    client.credentials(**credentials)
    before = stored(public_incident)

    # when
    response = getattr(client, method)(
        path.format(id=public_incident.incident_id) + slash, {"title": "T", "description": "D"}, format="json"
    )

    # then
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "Location" not in response
    assert response.json()["error"] == "Unauthorized access"
    assert stored(public_incident) == before
    assert Incident.objects.count() == 1


def test_token_of_a_deactivated_user_is_refused(inactive, public_incident):
    # given
    client = api_client(inactive, "token")

    # when
    response = client.get("/api/incidents")

    # then
    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized access"


def test_session_caller_needs_a_csrf_token_to_write(reporter):
    # given: a browser session, with CSRF checks on as in a real browser
    client = api_client(reporter, "session", enforce_csrf_checks=True)

    # when
    response = client.post("/api/incidents", {"title": "Lift stuck", "description": "Floor 2."}, format="json")

    # then
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]
    assert not Incident.objects.exists()


def test_token_caller_needs_no_csrf_token(reporter):
    # given
    client = api_client(reporter, "token", enforce_csrf_checks=True)

    # when
    response = client.post("/api/incidents", {"title": "Lift stuck", "description": "Floor 2."}, format="json")

    # then
    assert response.status_code == 201
    assert Incident.objects.count() == 1


# --- Throttling -------------------------------------------------------------------------------


def assert_throttled(response):
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


def test_api_is_throttled_by_the_user_rate(strict_rates, reporter, other):
    # given
    client = api_client(reporter)
    for _ in range(5):
        assert client.get("/api/incidents").status_code == 200

    # when
    response = client.get("/api/incidents")

    # then
    assert_throttled(response)
    # another user has a budget of their own
    assert api_client(other).get("/api/incidents").status_code == 200
