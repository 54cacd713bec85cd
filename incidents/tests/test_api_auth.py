"""The API's edges: who may call what (the authorization matrix, 401/403/404/405), both
spellings of every path, tokens (the endpoint and the profile page), throttling, CSRF for
session callers, CORS, and the OpenAPI schema and its docs page."""

import json
import re
from urllib.parse import urlencode

import pytest
import yaml
from django.core.cache import cache
from django.core.management import call_command
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from incidents.models import Incident, IncidentEvent, Response

from .factories import make_incident, stored

PASSWORD = "correct-horse-battery-42"  # the root conftest's password for every user


def api_client(user=None, auth="token", **kwargs) -> APIClient:
    """A client signed in as `user` by API token or by session (None: anonymous)."""
    client = APIClient(**kwargs)
    if user is not None and auth == "token":
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    elif user is not None:
        client.force_login(user)
    return client


# --- Authorization matrix -------------------------------------------------------------------
#
# Every incident endpoint, for every kind of caller, on a public and a private Reported
# incident that `reporter` filed, by token and by session. Anonymous: always 401. Not
# visible: 404 (never 403, which would confirm it exists). Visible but not allowed: 403.
# Whenever the answer is not a success, the incident, its timeline and responses are unchanged.

ACTIONS = {
    # name: (method, path with {id}, body)
    "get": ("get", "/api/incidents/{id}", None),
    "get-public": ("get", "/api/publicIncidents/{id}", None),
    "responses": ("get", "/api/responses/{id}", None),
    "respond": ("post", "/api/responses/{id}", {"description": "On my way."}),
    "edit": ("patch", "/api/incidents/{id}", {"title": "Corrected title"}),
    "acknowledge": ("patch", "/api/incidents/{id}", {"status": "Acknowledged"}),
    "close": ("patch", "/api/incidents/{id}", {"status": "Closed"}),
    "severity": ("patch", "/api/incidents/{id}", {"severity": "Critical"}),
}

EXPECTED = {
    #                public/private for:  reporter   other      responder   staff
    "get": {"reporter": "200/200", "other": "200/404", "responder": "200/200", "staff": "200/200"},
    # /api/publicIncidents lists what *others* reported: the reporter's own are not there.
    "get-public": {"reporter": "404/404", "other": "200/404", "responder": "200/200", "staff": "200/200"},
    "responses": {"reporter": "200/200", "other": "200/404", "responder": "200/200", "staff": "200/200"},
    "respond": {"reporter": "201/201", "other": "201/404", "responder": "201/201", "staff": "201/201"},
    "edit": {"reporter": "200/200", "other": "403/404", "responder": "403/403", "staff": "200/200"},
    "acknowledge": {"reporter": "403/403", "other": "403/404", "responder": "200/200", "staff": "200/200"},
    "close": {"reporter": "200/200", "other": "403/404", "responder": "403/403", "staff": "200/200"},
    "severity": {"reporter": "403/403", "other": "403/404", "responder": "200/200", "staff": "200/200"},
}


def matrix():
    for action, by_user in EXPECTED.items():
        for visibility in ("public", "private"):
            for auth in ("token", "session"):
                yield pytest.param(
                    action, "anonymous", visibility, auth, 401, id=f"{action}-anonymous-{visibility}-{auth}"
                )
                for who, outcomes in by_user.items():
                    outcome = dict(zip(("public", "private"), outcomes.split("/"), strict=True))[visibility]
                    yield pytest.param(
                        action, who, visibility, auth, int(outcome), id=f"{action}-{who}-{visibility}-{auth}"
                    )


def action_happened(action, incident, actor) -> bool:
    incident.refresh_from_db()
    events = IncidentEvent.objects.filter(incident=incident, actor=actor)
    if action == "respond":
        response = Response.objects.get(incident=incident, author=actor, description="On my way.")
        return events.filter(kind="responded", response=response).exists()
    if action == "edit":
        return incident.title == "Corrected title" and events.filter(kind="edited", field="title").exists()
    if action in ("acknowledge", "close"):
        status = ACTIONS[action][2]["status"]
        return incident.status == status and events.filter(kind="status_changed", new_value=status).exists()
    if action == "severity":
        return incident.severity == "Critical" and events.filter(kind="severity_changed").exists()
    raise AssertionError(f"no check for {action}")


@pytest.mark.parametrize(("action", "who", "visibility", "auth", "expected"), list(matrix()))
def test_authorization_matrix(request, action, who, visibility, auth, expected):
    # given
    incident = request.getfixturevalue(f"{visibility}_incident")
    user = None if who == "anonymous" else request.getfixturevalue(who)
    client = api_client(user, auth)
    method, path, body = ACTIONS[action]
    before = stored(incident)

    # when
    response = getattr(client, method)(path.format(id=incident.incident_id), body, format="json")

    # then
    assert response.status_code == expected, response.content
    assert response["Content-Type"] == "application/json"
    if expected >= 400:
        assert response.json()["error"]
        assert stored(incident) == before
    elif method == "get":
        assert stored(incident) == before
    else:
        assert action_happened(action, incident, user)
    if expected == 401:
        assert response.json()["error"] == "Unauthorized access"


LISTED = {
    # What each caller finds in each list, of the reporter's public and private incidents.
    "/api/incidents": {"reporter": {"public", "private"}, "other": set(), "responder": set(), "staff": set()},
    "/api/publicIncidents": {
        "reporter": set(),
        "other": {"public"},
        "responder": {"public", "private"},
        "staff": {"public", "private"},
    },
}


@pytest.mark.parametrize("auth", ["token", "session"])
@pytest.mark.parametrize("who", ["reporter", "other", "responder", "staff"])
@pytest.mark.parametrize("path", list(LISTED))
def test_lists_show_what_each_caller_may_see(request, public_incident, private_incident, path, who, auth):
    # given
    client = api_client(request.getfixturevalue(who), auth)
    ids = {str(public_incident.incident_id): "public", str(private_incident.incident_id): "private"}

    # when
    response = client.get(path)

    # then
    assert response.status_code == 200
    assert {ids[item["incident_id"]] for item in response.json()} == LISTED[path][who]


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


NOT_ALLOWED = [
    *[
        (method, path)
        for method in ("delete", "put")
        for path in (
            "/api/incidents",
            "/api/incidents/{id}",
            "/api/publicIncidents",
            "/api/publicIncidents/{id}",
            "/api/responses/{id}",
            "/api/auth/token",
        )
    ],
    ("post", "/api/incidents/{id}"),
    ("patch", "/api/incidents"),
    ("post", "/api/publicIncidents"),
    ("patch", "/api/publicIncidents/{id}"),
    ("patch", "/api/responses/{id}"),
]


@pytest.mark.parametrize(("method", "path"), NOT_ALLOWED)
def test_methods_not_offered_are_405(staff, public_incident, path, method):
    # given: staff, who may do everything else
    client = api_client(staff)
    before = stored(public_incident)

    # when
    response = getattr(client, method)(path.format(id=public_incident.incident_id), {"title": "X"}, format="json")

    # then
    assert response.status_code == 405
    assert response.json()["error"]
    assert stored(public_incident) == before


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("get", "/api/incidents", None, 200),
        ("post", "/api/incidents", {"title": "Lift stuck", "description": "Between 2 and 3."}, 201),
        ("get", "/api/incidents/{id}", None, 200),
        ("patch", "/api/incidents/{id}", {"title": "Printer smoking"}, 200),
        ("get", "/api/publicIncidents", None, 200),
        ("get", "/api/publicIncidents/{id}", None, 200),
        ("get", "/api/responses/{id}", None, 200),
        ("post", "/api/responses/{id}", {"description": "On my way."}, 201),
        ("post", "/api/auth/token", {"username": "sam", "password": PASSWORD}, 200),
        ("get", "/api/schema", None, 200),
        ("get", "/api/docs", None, 200),
    ],
)
def test_every_path_works_with_and_without_trailing_slash(staff, other, method, path, body, expected, slash):
    # given: an incident somebody else reported, so it is in staff's /api/publicIncidents too
    incident = make_incident(other)
    client = api_client(staff)

    # when
    response = getattr(client, method)(path.format(id=incident.incident_id) + slash, body, format="json")

    # then
    assert response.status_code == expected, response.content
    assert "Location" not in response


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


@pytest.fixture
def strict_rates(db, monkeypatch):
    """Low rates. DRF reads them into `SimpleRateThrottle.THROTTLE_RATES` at import, so
    override_settings would not reach them; the cache holds the request history."""
    cache.clear()
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"auth": "3/min", "user": "5/min", "anon": "5/min"})
    yield
    cache.clear()


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


# --- CORS -------------------------------------------------------------------------------------


def preflight(origin):
    return APIClient().options(
        "/api/incidents",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )


@override_settings(CORS_ALLOWED_ORIGINS=["https://dash.example"])
def test_cors_preflight_from_a_listed_origin_is_allowed(db):
    # when
    response = preflight("https://dash.example")

    # then
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://dash.example"
    assert "authorization" in response["Access-Control-Allow-Headers"].lower()


@override_settings(CORS_ALLOWED_ORIGINS=["https://dash.example"])
def test_cors_preflight_from_another_origin_gets_no_allow_header(db):
    # when
    response = preflight("https://evil.example")

    # then
    assert "Access-Control-Allow-Origin" not in response


def test_cors_is_off_by_default(db, settings):
    # given
    assert settings.CORS_ALLOWED_ORIGINS == []

    # when
    response = preflight("https://dash.example")

    # then
    assert "Access-Control-Allow-Origin" not in response


@override_settings(CORS_ALLOWED_ORIGINS=["https://dash.example"])
def test_cors_covers_only_the_api(db):
    # when
    response = APIClient().options(
        "/accounts/login/", HTTP_ORIGIN="https://dash.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )

    # then
    assert "Access-Control-Allow-Origin" not in response


# --- Schema and docs ----------------------------------------------------------------------------

PATHS = {
    "/api/incidents",
    "/api/incidents/{incident_id}",
    "/api/publicIncidents",
    "/api/publicIncidents/{incident_id}",
    "/api/responses/{incident_id}",
    "/api/auth/token",
    "/api/categories",
    "/api/teams",
}


def test_schema_is_openapi_3_yaml_with_every_path(db):
    # when
    response = APIClient().get("/api/schema")

    # then
    assert response.status_code == 200
    assert "openapi" in response["Content-Type"]
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == PATHS


def test_schema_as_json(db):
    # when
    response = APIClient().get("/api/schema?format=json")

    # then
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == PATHS
    assert {"get", "patch"} <= set(schema["paths"]["/api/incidents/{incident_id}"])


def test_schema_validates_without_warnings(db, tmp_path):
    # given
    target = tmp_path / "s.yaml"

    # when
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    # then
    assert set(yaml.safe_load(target.read_text())["paths"]) == PATHS


def test_docs_page_uses_the_local_swagger_ui(db):
    # given
    client = APIClient()

    # when
    response = client.get("/api/docs")

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert not re.search(r"https?://", html)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    bundle = next(url for url in assets if url.endswith("swagger-ui-bundle.js"))
    assert bundle.startswith("/static/")
    assert all(url.startswith(("/static/", "/api/")) for url in assets), assets
    served = client.get(bundle)
    served.close()  # a streamed file: close it, or it leaks a file handle
    assert served.status_code == 200


def test_docs_script_is_javascript(db):
    # when
    response = APIClient().get("/api/docs?script=")

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in response.content.decode()
