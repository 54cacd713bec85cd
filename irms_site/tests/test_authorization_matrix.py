"""The whole site's authorization matrix: every URL of the web pages, the admin and the API
(from irms_site/urls.py, accounts/urls.py, incidents/urls.py and incidents/api/urls.py), for
every kind of user, on a public and on a private Reported incident that `reporter` filed,
with every method the URL accepts (and PUT/DELETE on the API).

Each cell is written down, not computed from `permissions.py`: the table is the
specification the code is checked against. Whenever the answer refuses, nothing changed:
the incident row, the number of incidents, responses, timeline events, users, tokens,
queued e-mails and queued tasks are as they were.

How a refusal looks:
    web, anonymous        302 to /accounts/login/?next=<path>            LOGIN
    admin, not staff      302 to /admin/login/?next=<path>                ADMIN_LOGIN
                          (and anonymous visitors to the admin's index page)
    signed in, sign-in or register page: 302 away, nothing done           AWAY
    API, anonymous        401, JSON with "error"
    unusable link         400, a page saying why (an e-mail change confirmation)
    not visible           404 (web and API; never 403, which would confirm it exists)
    visible, not allowed  403
    method not accepted   405 (API)
"""

import json
import uuid
from urllib.parse import urlencode

import pytest
from django.urls import get_resolver, resolve
from django_tasks_db.models import DBTaskResult
from rest_framework.authtoken.models import Token

from accounts.models import User
from incidents.models import Incident, IncidentEvent, Response, Severity, Status
from incidents.tests import conftest as incident_fixtures
from notifications.models import OutgoingEmail

# The incident tests' users and incidents (irms_site/tests has no conftest of its own).
other = incident_fixtures.other
private_incident = incident_fixtures.private_incident
public_incident = incident_fixtures.public_incident
reporter = incident_fixtures.reporter
responder = incident_fixtures.responder
staff = incident_fixtures.staff

PASSWORD = "correct-horse-battery-42"  # the root conftest's password for every user
NEW_PASSWORD = "a-sturdy-new-passphrase-77"

LOGIN = "login"
ADMIN_LOGIN = "admin-login"
AWAY = "away"
REFUSED = {LOGIN, ADMIN_LOGIN, AWAY, 400, 401, 403, 404, 405}

ROLES = ("anonymous", "owner", "other", "responder", "staff")
ROLE_FIXTURE = {"owner": "reporter", "other": "other", "responder": "responder", "staff": "staff"}

PUBLIC, PRIVATE, ANY = "public", "private", "any"


def both(*cells):
    """The same answers on the public and the private incident."""
    return {PUBLIC: cells, PRIVATE: cells}


def once(*cells):
    """A URL that names no incident: asked once per role."""
    return {ANY: cells}


# Columns:      anonymous    owner        other        responder    staff
# fmt: off
MATRIX = [
    # --- Site pages ---------------------------------------------------------------------------
    ("home", "GET", "/", None, once(200, 200, 200, 200, 200)),
    ("healthz", "GET", "/healthz", None, once(200, 200, 200, 200, 200)),
    ("favicon", "GET", "/favicon.ico", None, once(301, 301, 301, 301, 301)),
    ("dashboard", "GET", "/dashboard/", None, once(LOGIN, 200, 200, 200, 200)),
    # The original app's paths: anyone is redirected (signing in, if needed, happens there).
    ("old-register", "GET", "/register", None, once(301, 301, 301, 301, 301)),
    ("old-login", "GET", "/login", None, once(301, 301, 301, 301, 301)),
    ("old-logout", "GET", "/logout", None, once(301, 301, 301, 301, 301)),
    ("old-forgot-password", "GET", "/forgot_password", None, once(301, 301, 301, 301, 301)),
    ("old-reset-password", "GET", "/reset_password/abc", None, once(301, 301, 301, 301, 301)),
    ("old-dashboard", "GET", "/dashboard", None, once(301, 301, 301, 301, 301)),
    ("old-incident-report", "GET", "/incident-report", None, once(301, 301, 301, 301, 301)),
    ("old-public-incidents", "GET", "/public_incidents", None, once(301, 301, 301, 301, 301)),
    ("old-response", "GET", "/response", None, once(301, 301, 301, 301, 301)),
    # --- Accounts -----------------------------------------------------------------------------
    ("register-form", "GET", "/accounts/register/", None, once(200, AWAY, AWAY, AWAY, AWAY)),
    ("register", "POST", "/accounts/register/",
     {"username": "newbie", "email": "newbie@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
     once(302, AWAY, AWAY, AWAY, AWAY)),
    ("login-form", "GET", "/accounts/login/", None, once(200, AWAY, AWAY, AWAY, AWAY)),
    ("login", "POST", "/accounts/login/", {"username": "alice", "password": PASSWORD},
     once(302, AWAY, AWAY, AWAY, AWAY)),
    ("logout-confirm", "GET", "/accounts/logout/", None, once(200, 200, 200, 200, 200)),
    ("logout", "POST", "/accounts/logout/", {}, once(302, 302, 302, 302, 302)),
    ("profile", "GET", "/accounts/profile/", None, once(LOGIN, 200, 200, 200, 200)),
    ("profile-email", "POST", "/accounts/profile/", {"email": "changed@example.com", "current_password": PASSWORD},
     once(LOGIN, 302, 302, 302, 302)),
    # A confirmation link that is not one: refused with a page saying why, nothing changed.
    ("email-change-confirm-form", "GET", "/accounts/profile/email/bad-token/", None, once(LOGIN, 400, 400, 400, 400)),
    ("email-change-confirm", "POST", "/accounts/profile/email/bad-token/", {}, once(LOGIN, 400, 400, 400, 400)),
    ("profile-token", "POST", "/accounts/profile/token/", {"action": "create"}, once(LOGIN, 302, 302, 302, 302)),
    ("profile-notifications", "POST", "/accounts/profile/notifications/", {"email_on_response": "on"},
     once(LOGIN, 302, 302, 302, 302)),
    ("password-change-form", "GET", "/accounts/password_change/", None, once(LOGIN, 200, 200, 200, 200)),
    ("password-change", "POST", "/accounts/password_change/",
     {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
     once(LOGIN, 302, 302, 302, 302)),
    ("password-reset-form", "GET", "/accounts/password_reset/", None, once(200, 200, 200, 200, 200)),
    ("password-reset", "POST", "/accounts/password_reset/", {"email": "alice@example.com"},
     once(302, 302, 302, 302, 302)),
    ("password-reset-done", "GET", "/accounts/password_reset/done/", None, once(200, 200, 200, 200, 200)),
    # A link with a bad token shows "this link is invalid" and changes nothing, whatever the method.
    ("password-reset-confirm-form", "GET", "/accounts/reset/MQ/bad-token/", None, once(200, 200, 200, 200, 200)),
    ("password-reset-confirm", "POST", "/accounts/reset/MQ/bad-token/",
     {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, once(200, 200, 200, 200, 200)),
    ("password-reset-complete", "GET", "/accounts/reset/done/", None, once(200, 200, 200, 200, 200)),
    # --- Incident lists and the report form ------------------------------------------------------
    ("queue", "GET", "/incidents/", None, once(LOGIN, 200, 200, 200, 200)),
    ("mine", "GET", "/incidents/mine/", None, once(LOGIN, 200, 200, 200, 200)),
    ("public", "GET", "/incidents/public/", None, once(LOGIN, 200, 200, 200, 200)),
    ("report-form", "GET", "/incidents/new/", None, once(LOGIN, 200, 200, 200, 200)),
    ("report", "POST", "/incidents/new/",
     {"title": "Water on the floor", "description": "Server room.", "severity": Severity.HIGH},
     once(LOGIN, 302, 302, 302, 302)),
    # --- One incident's pages ----------------------------------------------------------------------
    ("detail", "GET", "/incidents/{id}/", None, {
        PUBLIC: (LOGIN, 200, 200, 200, 200),
        PRIVATE: (LOGIN, 200, 404, 200, 200)}),
    ("edit-form", "GET", "/incidents/{id}/edit/", None, {
        PUBLIC: (LOGIN, 200, 403, 403, 200),
        PRIVATE: (LOGIN, 200, 404, 403, 200)}),
    ("edit", "POST", "/incidents/{id}/edit/", {"title": "Corrected title", "description": "Corrected."}, {
        PUBLIC: (LOGIN, 302, 403, 403, 302),
        PRIVATE: (LOGIN, 302, 404, 403, 302)}),
    ("respond", "POST", "/incidents/{id}/respond/", {"description": "On my way."}, {
        PUBLIC: (LOGIN, 302, 302, 302, 302),
        PRIVATE: (LOGIN, 302, 404, 302, 302)}),
    ("acknowledge", "POST", "/incidents/{id}/status/", {"status": Status.ACKNOWLEDGED}, {
        PUBLIC: (LOGIN, 403, 403, 302, 302),
        PRIVATE: (LOGIN, 403, 404, 302, 302)}),
    # Closing a still-open incident: its reporter and staff, not responders.
    ("close", "POST", "/incidents/{id}/status/", {"status": Status.CLOSED}, {
        PUBLIC: (LOGIN, 302, 403, 403, 302),
        PRIVATE: (LOGIN, 302, 404, 403, 302)}),
    ("severity", "POST", "/incidents/{id}/severity/", {"severity": Severity.CRITICAL}, {
        PUBLIC: (LOGIN, 403, 403, 302, 302),
        PRIVATE: (LOGIN, 403, 404, 302, 302)}),
    # Working an incident (assigning it, moving it to a team): its team, a sees_all team, staff.
    ("assign", "POST", "/incidents/{id}/assign/", {"assignee": ""}, {
        PUBLIC: (LOGIN, 403, 403, 302, 302),
        PRIVATE: (LOGIN, 403, 404, 302, 302)}),
    ("move-team", "POST", "/incidents/{id}/team/", {"team": "response"}, {
        PUBLIC: (LOGIN, 403, 403, 302, 302),
        PRIVATE: (LOGIN, 403, 404, 302, 302)}),
    # --- Admin (the `staff` fixture is staff without model permissions: the admin refuses) -----
    ("admin-index", "GET", "/admin/", None, once(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200)),
    ("admin-login-form", "GET", "/admin/login/", None, once(200, 200, 200, 200, AWAY)),
    ("admin-incidents", "GET", "/admin/incidents/incident/", None,
     once(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-incidents-action", "POST", "/admin/incidents/incident/",
     {"action": "acknowledge_selected", "_selected_action": "{pk}", "index": "0"},
     both(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-incident-change-form", "GET", "/admin/incidents/incident/{pk}/change/", None,
     both(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-incident-change", "POST", "/admin/incidents/incident/{pk}/change/",
     {"title": "Changed in the admin", "description": "Changed.", "status": Status.ACKNOWLEDGED,
      "severity": Severity.LOW, "visibility": "public"},
     both(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-emails", "GET", "/admin/notifications/outgoingemail/", None,
     once(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-emails-action", "POST", "/admin/notifications/outgoingemail/",
     {"action": "retry_selected", "_selected_action": "{email_pk}", "index": "0"},
     once(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-email-change-form", "GET", "/admin/notifications/outgoingemail/{email_pk}/change/", None,
     once(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    # --- API: the caller's own incidents ---------------------------------------------------------
    ("api-categories", "GET", "/api/categories", None, once(401, 200, 200, 200, 200)),
    ("api-teams", "GET", "/api/teams", None, once(401, 200, 200, 200, 200)),
    ("api-list", "GET", "/api/incidents", None, once(401, 200, 200, 200, 200)),
    ("api-report", "POST", "/api/incidents", {"title": "Water on the floor", "description": "Server room."},
     once(401, 201, 201, 201, 201)),
    ("api-list-put", "PUT", "/api/incidents", {"title": "x"}, once(401, 405, 405, 405, 405)),
    ("api-list-delete", "DELETE", "/api/incidents", None, once(401, 405, 405, 405, 405)),
    ("api-get", "GET", "/api/incidents/{id}", None, {
        PUBLIC: (401, 200, 200, 200, 200),
        PRIVATE: (401, 200, 404, 200, 200)}),
    ("api-edit", "PATCH", "/api/incidents/{id}", {"title": "Corrected title"}, {
        PUBLIC: (401, 200, 403, 403, 200),
        PRIVATE: (401, 200, 404, 403, 200)}),
    ("api-acknowledge", "PATCH", "/api/incidents/{id}", {"status": Status.ACKNOWLEDGED}, {
        PUBLIC: (401, 403, 403, 200, 200),
        PRIVATE: (401, 403, 404, 200, 200)}),
    ("api-close", "PATCH", "/api/incidents/{id}", {"status": Status.CLOSED}, {
        PUBLIC: (401, 200, 403, 403, 200),
        PRIVATE: (401, 200, 404, 403, 200)}),
    ("api-severity", "PATCH", "/api/incidents/{id}", {"severity": Severity.CRITICAL}, {
        PUBLIC: (401, 403, 403, 200, 200),
        PRIVATE: (401, 403, 404, 200, 200)}),
    # Only staff make an incident private or public.
    ("api-visibility", "PATCH", "/api/incidents/{id}", {"visibility": "private"}, {
        PUBLIC: (401, 403, 403, 403, 200),
        PRIVATE: (401, 200, 404, 403, 200)}),
    ("api-put", "PUT", "/api/incidents/{id}", {"title": "Replaced", "description": "Replaced."},
     both(401, 405, 405, 405, 405)),
    ("api-delete", "DELETE", "/api/incidents/{id}", None, both(401, 405, 405, 405, 405)),
    # --- API: incidents reported by others (the caller's own are not "others'": 404) -------------
    ("api-others", "GET", "/api/publicIncidents", None, once(401, 200, 200, 200, 200)),
    ("api-others-post", "POST", "/api/publicIncidents", {"title": "x", "description": "y"},
     once(401, 405, 405, 405, 405)),
    ("api-others-get", "GET", "/api/publicIncidents/{id}", None, {
        PUBLIC: (401, 404, 200, 200, 200),
        PRIVATE: (401, 404, 404, 200, 200)}),
    ("api-others-put", "PUT", "/api/publicIncidents/{id}", {"title": "x"}, both(401, 405, 405, 405, 405)),
    ("api-others-patch", "PATCH", "/api/publicIncidents/{id}", {"title": "x"}, both(401, 405, 405, 405, 405)),
    ("api-others-delete", "DELETE", "/api/publicIncidents/{id}", None, both(401, 405, 405, 405, 405)),
    # --- API: responses ----------------------------------------------------------------------------
    ("api-responses", "GET", "/api/responses/{id}", None, {
        PUBLIC: (401, 200, 200, 200, 200),
        PRIVATE: (401, 200, 404, 200, 200)}),
    ("api-respond", "POST", "/api/responses/{id}", {"description": "On my way."}, {
        PUBLIC: (401, 201, 201, 201, 201),
        PRIVATE: (401, 201, 404, 201, 201)}),
    ("api-responses-put", "PUT", "/api/responses/{id}", {"description": "x"}, both(401, 405, 405, 405, 405)),
    ("api-responses-patch", "PATCH", "/api/responses/{id}", {"description": "x"}, both(401, 405, 405, 405, 405)),
    ("api-responses-delete", "DELETE", "/api/responses/{id}", None, both(401, 405, 405, 405, 405)),
    # --- API: token, schema, docs (open to all) --------------------------------------------------
    ("api-token", "POST", "/api/auth/token", {"username": "alice", "password": PASSWORD},
     once(200, 200, 200, 200, 200)),
    ("api-token-get", "GET", "/api/auth/token", None, once(405, 405, 405, 405, 405)),
    ("api-token-put", "PUT", "/api/auth/token", {"username": "alice", "password": PASSWORD},
     once(405, 405, 405, 405, 405)),
    ("api-token-delete", "DELETE", "/api/auth/token", None, once(405, 405, 405, 405, 405)),
    ("api-schema", "GET", "/api/schema", None, once(200, 200, 200, 200, 200)),
    ("api-docs", "GET", "/api/docs", None, once(200, 200, 200, 200, 200)),
]
# fmt: on


def cells():
    for name, method, path, data, expected in MATRIX:
        for visibility, answers in expected.items():
            for role, answer in zip(ROLES, answers, strict=True):
                case_id = f"{name}-{role}" if visibility == ANY else f"{name}-{visibility}-{role}"
                yield pytest.param(method, path, data, visibility, role, answer, id=case_id)


def snapshot(incident) -> dict:
    """Everything a refused request could have changed."""
    return {
        "incident": Incident.objects.filter(pk=incident.pk).values().get(),
        "incidents": Incident.objects.count(),
        "responses": Response.objects.count(),
        "events": IncidentEvent.objects.count(),
        "users": list(User.objects.order_by("pk").values()),
        "tokens": sorted(Token.objects.values_list("key", flat=True)),
        "emails": OutgoingEmail.objects.count(),
        "tasks": DBTaskResult.objects.count(),
    }


def fill(value, incident, email):
    """Put the incident's ids (and an e-mail row's) into a path or a form value."""
    if isinstance(value, str):
        return value.format(id=incident.incident_id, pk=incident.pk, email_pk=email.pk)
    if isinstance(value, dict):
        return {name: fill(item, incident, email) for name, item in value.items()}
    return value


def send(client, method, path, data, token):
    if path.startswith("/api/"):
        extra = {"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}
        body = json.dumps(data) if data is not None else ""
        return client.generic(method, path, body, content_type="application/json", **extra)
    if method == "GET":
        return client.get(path)
    return client.post(path, data)


def test_every_route_has_a_matrix_row():
    """A guard on the table itself: each URL pattern of irms_site, accounts, incidents and
    the API (the admin's own pages aside) is reached by at least one row."""

    def routes(resolver, prefix=""):
        for entry in resolver.url_patterns:
            route = prefix + str(entry.pattern).removeprefix("^")
            if not hasattr(entry, "url_patterns"):
                yield route
            elif route != "admin/":
                yield from routes(entry, route)

    covered = {
        resolve(path.format(id=uuid.UUID(int=0), pk=1, email_pk=1)).route
        for _name, _method, path, _data, _expected in MATRIX
    }

    assert set(routes(get_resolver())) - covered == set()


@pytest.mark.parametrize(("method", "path", "data", "visibility", "role", "expected"), list(cells()))
def test_authorization_matrix(
    client, request, public_incident, private_incident, method, path, data, visibility, role, expected
):
    # given
    incident = private_incident if visibility == PRIVATE else public_incident
    email = OutgoingEmail.objects.order_by("pk").first()
    path, data = fill(path, incident, email), fill(data, incident, email)
    token = None
    if role != "anonymous":
        user = request.getfixturevalue(ROLE_FIXTURE[role])
        if path.startswith("/api/"):
            token = Token.objects.create(user=user).key
        else:
            client.force_login(user)
    before = snapshot(incident)

    # when
    response = send(client, method, path, data, token)

    # then
    status = {LOGIN: 302, ADMIN_LOGIN: 302, AWAY: 302}.get(expected, expected)
    assert response.status_code == status, response.content[:300]
    if expected == LOGIN:
        assert response["Location"] == "/accounts/login/?" + urlencode({"next": path}, safe="/")
    elif expected == ADMIN_LOGIN:
        assert response["Location"] == "/admin/login/?" + urlencode({"next": path}, safe="/")
    elif expected == AWAY:
        assert "login" not in response["Location"]
    if path.startswith("/api/") and status >= 400:
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"]
    if expected in REFUSED:
        assert snapshot(incident) == before
