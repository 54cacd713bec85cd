"""The site's safety nets, from the outside: security headers on every response, cookies,
the production deployment check, CSRF on every state-changing form, error pages that leak
nothing, logs without secrets, and CORS only where configured. (Sign-in lockout and
account enumeration are the accounts app's: accounts/tests/test_lockout.py, test_views.py
and test_api.py.)"""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import DatabaseError, InterfaceError, OperationalError
from django.test import Client, RequestFactory, override_settings
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_tasks_db.models import DBTaskResult
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import User
from incidents.api.views import IncidentViewSet
from incidents.models import Incident, IncidentEvent, Response
from incidents.views import DashboardView
from irms_site.security import RedactSecretsLogFilter, request_id_var, server_error
from notifications.models import OutgoingEmail

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery-42"  # the root conftest's password for every user
NEW_PASSWORD = "a-sturdy-new-passphrase-77"
GENERATED_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def snapshot() -> dict:
    """Every row a refused request could have written, changed or deleted."""
    return {
        "incidents": list(Incident.objects.order_by("pk").values()),
        "responses": Response.objects.count(),
        "events": IncidentEvent.objects.count(),
        "users": list(User.objects.order_by("pk").values()),
        "tokens": sorted(Token.objects.values_list("key", flat=True)),
        "sessions": sorted(Session.objects.values_list("session_key", flat=True)),
        "emails": OutgoingEmail.objects.count(),
        "tasks": DBTaskResult.objects.count(),
    }


@pytest.fixture
def superuser(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


# --- Security headers ---------------------------------------------------------------------------

# name: (who, method, path, expected status)
RESPONSES = {
    "home": (None, "GET", "/", 200),
    "sign-in page": (None, "GET", "/accounts/login/", 200),
    "sign-in redirect": (None, "GET", "/dashboard/", 302),
    "dashboard": ("reporter", "GET", "/dashboard/", 200),
    "incident page": ("reporter", "GET", "/incidents/{id}/", 200),
    "api": ("reporter", "GET", "/api/incidents", 200),
    "api 401": (None, "GET", "/api/incidents", 401),
    "not found": ("reporter", "GET", "/no-such-page/", 404),
    "api not found": ("reporter", "GET", "/api/no-such-endpoint", 404),
    "admin sign-in": (None, "GET", "/admin/login/", 200),
    "api docs": (None, "GET", "/api/docs", 200),
    "api schema": (None, "GET", "/api/schema", 200),
    "health check": (None, "GET", "/healthz", 200),
    "readiness check": (None, "GET", "/readyz", 200),
    "too large": (None, "POST", "/accounts/login/", 413),
}


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for directive in filter(None, (part.strip() for part in policy.split(";"))):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


@pytest.mark.parametrize(("who", "method", "path", "status"), list(RESPONSES.values()), ids=list(RESPONSES))
def test_every_response_carries_the_security_headers(request, client, public_incident, who, method, path, status):
    # given
    if who:
        client.force_login(request.getfixturevalue(who))
    path = path.format(id=public_incident.incident_id)

    # when
    if method == "GET":
        response = client.get(path)
    else:
        response = client.post(path, {"username": "alice", "password": "x" * (300 * 1024)})

    # then
    assert response.status_code == status
    policy = directives(response["Content-Security-Policy"])
    assert "'self'" in policy["script-src"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert GENERATED_REQUEST_ID.match(response["X-Request-ID"])


@pytest.mark.parametrize(
    ("incoming", "echoed"),
    [
        ("abcd1234", True),
        ("req-2026.11_26-XYZ", True),
        ("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", True),  # 64: the most
        ("<script>", False),
        ("short", False),
        ("x" * 65, False),
        ("has spaces in it", False),
        ("abcd1234\r\nSet-Cookie: sessionid=evil", False),
        ("'; DROP TABLE x; --", False),
    ],
)
def test_a_sane_request_id_is_echoed_and_any_other_replaced(client, incoming, echoed):
    # when
    response = client.get("/", HTTP_X_REQUEST_ID=incoming)

    # then
    if echoed:
        assert response["X-Request-ID"] == incoming
    else:
        assert GENERATED_REQUEST_ID.match(response["X-Request-ID"])


def test_each_request_gets_its_own_id(client):
    # when
    first, second = client.get("/"), client.get("/")

    # then
    assert first["X-Request-ID"] != second["X-Request-ID"]


@override_settings(SECURE_HSTS_SECONDS=3600, SECURE_SSL_REDIRECT=False)
def test_hsts_is_sent_on_secure_requests_when_configured(client):
    # when
    secure, plain = client.get("/", secure=True), client.get("/")

    # then
    assert secure["Strict-Transport-Security"] == "max-age=3600"
    assert "Strict-Transport-Security" not in plain


def test_no_hsts_by_default(client):
    # when
    response = client.get("/", secure=True)

    # then
    assert "Strict-Transport-Security" not in response


@override_settings(SECURE_SSL_REDIRECT=True)
def test_plain_http_is_redirected_to_https_when_configured(client):
    # when
    response = client.get("/accounts/login/")

    # then
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/accounts/login/"


# --- Cookies --------------------------------------------------------------------------------------


def test_session_cookie_is_http_only_and_same_site_lax(client, reporter):
    # when
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})

    # then
    assert response.status_code == 302
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie.value
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]
    assert response.cookies[settings.CSRF_COOKIE_NAME]["samesite"] == "Lax"


@override_settings(SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True)
def test_cookies_are_secure_when_configured(client, reporter):
    # when
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, secure=True)

    # then
    assert response.status_code == 302
    assert response.cookies[settings.SESSION_COOKIE_NAME]["secure"] is True
    assert response.cookies[settings.SESSION_COOKIE_NAME]["httponly"] is True
    assert response.cookies[settings.CSRF_COOKIE_NAME]["secure"] is True


# --- The production deployment check ---------------------------------------------------------------

# Every variable the check depends on is given: a developer's .env (read with
# overwrite=False) cannot change the outcome.
BASE_ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "irms_site.settings",
    "DEBUG": "false",
    "SECRET_KEY": "a-production-like-secret-key-9f8e7d6c5b4a39281706f5e4d3c2b1a0-ZyXwVuTsRqPo",
    "ALLOWED_HOSTS": "irms.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://irms.example.org",
    "SITE_URL": "https://irms.example.org",
    "DATABASE_URL": "sqlite:////tmp/irms-deploy-check.sqlite3",
    "EMAIL_URL": "console://",
    # Shared by every process and server; a local-memory cache fails the check (irms.W001).
    "CACHE_URL": "dbcache://irms_cache",
    "TRUST_X_FORWARDED_PROTO": "false",
}
HTTPS_ON = {
    "SECURE_SSL_REDIRECT": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}
# The documented defaults, spelled out.
HTTPS_OFF = {
    "SECURE_SSL_REDIRECT": "false",
    "SESSION_COOKIE_SECURE": "false",
    "CSRF_COOKIE_SECURE": "false",
    "SECURE_HSTS_SECONDS": "0",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "false",
    "SECURE_HSTS_PRELOAD": "false",
}


def deploy_check(variables: dict) -> subprocess.CompletedProcess:
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    environment.update(variables)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_passes_with_the_production_settings():
    # when
    process = deploy_check({**BASE_ENVIRONMENT, **HTTPS_ON})

    # then
    assert process.returncode == 0, process.stdout + process.stderr
    assert "no issues" in process.stdout


def test_deploy_check_fails_with_a_cache_each_process_keeps_to_itself():
    process = deploy_check({**BASE_ENVIRONMENT, **HTTPS_ON, "CACHE_URL": "locmemcache://"})
    assert process.returncode != 0
    assert "irms.W001" in process.stdout + process.stderr


def test_deploy_check_fails_without_the_https_switches():
    # when
    process = deploy_check({**BASE_ENVIRONMENT, **HTTPS_OFF})

    # then
    assert process.returncode != 0
    output = process.stdout + process.stderr
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in output


# --- CSRF ----------------------------------------------------------------------------------------------

# name: (who, path, form data, the answer once the token is sent)
CSRF_FORMS = {
    "register": (
        None,
        "/accounts/register/",
        {"username": "newbie", "email": "newbie@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        302,
    ),
    "login": (None, "/accounts/login/", {"username": "alice", "password": PASSWORD}, 302),
    "logout": ("reporter", "/accounts/logout/", {}, 302),
    "profile e-mail": (
        "reporter",
        "/accounts/profile/",
        {"email": "alice.new@example.com", "current_password": PASSWORD},
        302,
    ),
    "profile notifications": ("reporter", "/accounts/profile/notifications/", {"email_on_response": "on"}, 302),
    "profile token": ("reporter", "/accounts/profile/token/", {"action": "create"}, 302),
    "password change": (
        "reporter",
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        302,
    ),
    "password reset": (None, "/accounts/password_reset/", {"email": "alice@example.com"}, 302),
    "report": (
        "reporter",
        "/incidents/new/",
        {"title": "Water", "description": "Server room.", "severity": "High"},
        302,
    ),
    "edit": ("reporter", "/incidents/{id}/edit/", {"title": "Corrected", "description": "Corrected."}, 302),
    "respond": ("reporter", "/incidents/{id}/respond/", {"description": "On my way."}, 302),
    "status": ("responder", "/incidents/{id}/status/", {"status": "Acknowledged"}, 302),
    "severity": ("responder", "/incidents/{id}/severity/", {"severity": "Critical"}, 302),
    "admin action": (
        "superuser",
        "/admin/incidents/incident/",
        {"action": "acknowledge_selected", "_selected_action": "{pk}", "index": "0"},
        302,
    ),
    "admin change": (
        "superuser",
        "/admin/incidents/incident/{pk}/change/",
        {
            "title": "Changed",
            "description": "Changed.",
            "reporter": "{reporter_pk}",
            "status": "Reported",
            "severity": "Low",
            "visibility": "public",
            **{
                f"{inline}-{count}_FORMS": "0"
                for inline in ("responses", "events", "attachments")
                for count in ("TOTAL", "INITIAL")
            },
        },
        302,
    ),
}


@pytest.mark.parametrize(("who", "path", "data", "accepted"), list(CSRF_FORMS.values()), ids=list(CSRF_FORMS))
def test_every_form_refuses_a_post_without_a_csrf_token(request, public_incident, who, path, data, accepted):
    # given
    client = Client(enforce_csrf_checks=True)
    if who:
        client.force_login(request.getfixturevalue(who))
    path = path.format(id=public_incident.incident_id, pk=public_incident.pk)
    data = {
        name: value.format(pk=public_incident.pk, reporter_pk=public_incident.reporter_id)
        for name, value in data.items()
    }
    client.get("/accounts/profile/" if who else "/accounts/login/")  # a page with a form sets the cookie
    before = snapshot()

    # when
    refused = client.post(path, data)

    # then: the site's "form expired" page, and nothing done
    assert refused.status_code == 403
    assert "This form has expired" in refused.content.decode()
    assert snapshot() == before

    # and the same post with the token goes through (the refusal was about the token alone)
    accepted_response = client.post(path, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert accepted_response.status_code == accepted, accepted_response.content[:300]


# name: (method, path, body, status once allowed)
API_WRITES = {
    "report": ("POST", "/api/incidents", {"title": "Water", "description": "Server room."}, 201),
    "edit": ("PATCH", "/api/incidents/{id}", {"title": "Corrected"}, 200),
    "respond": ("POST", "/api/responses/{id}", {"description": "On my way."}, 201),
}


@pytest.mark.parametrize(("method", "path", "body", "allowed"), list(API_WRITES.values()), ids=list(API_WRITES))
def test_api_with_a_session_needs_the_csrf_header(reporter, public_incident, method, path, body, allowed):
    # given
    client = Client(enforce_csrf_checks=True)
    client.force_login(reporter)
    client.get("/accounts/profile/")
    path = path.format(id=public_incident.incident_id)
    before = snapshot()

    # when
    refused = client.generic(method, path, json.dumps(body), content_type="application/json")

    # then
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]
    assert snapshot() == before

    # and with the header it goes through
    accepted = client.generic(
        method,
        path,
        json.dumps(body),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert accepted.status_code == allowed


@pytest.mark.parametrize(("method", "path", "body", "allowed"), list(API_WRITES.values()), ids=list(API_WRITES))
def test_api_with_a_token_needs_no_csrf_header(reporter, public_incident, method, path, body, allowed):
    # given
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=reporter).key}")

    # when
    response = client.generic(
        method, path.format(id=public_incident.incident_id), json.dumps(body), content_type="application/json"
    )

    # then
    assert response.status_code == allowed


# --- Server errors --------------------------------------------------------------------------------------

SECRET_DETAIL = "db password is hunter2 at 10.0.0.5"

# name: (exception, status)
FAILURES = {
    "operational error": (OperationalError("(2002) can't connect to MySQL server on 10.0.0.5 " + SECRET_DETAIL), 503),
    "interface error": (InterfaceError("connection already closed; " + SECRET_DETAIL), 503),
    "lost connection": (DatabaseError("Lost connection to server during query; " + SECRET_DETAIL), 503),
    "other database error": (DatabaseError("Deadlock found when trying to get lock; " + SECRET_DETAIL), 500),
    "bug": (ValueError("unexpected None; " + SECRET_DETAIL), 500),
}


def call_handler500(path: str, error: Exception):
    """Run handler500 the way Django does: inside the `except` that caught the error."""
    request = RequestFactory().get(path)
    token = request_id_var.set("req-0123456789abcdef")
    try:
        try:
            raise error
        except Exception:
            return server_error(request)
    finally:
        request_id_var.reset(token)


@pytest.mark.parametrize(("error", "status"), list(FAILURES.values()), ids=list(FAILURES))
def test_server_error_page_shows_no_internals(error, status):
    # when
    response = call_handler500("/dashboard/", error)

    # then
    body = response.content.decode()
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert ("Retry-After" in response) == (status == 503)
    assert "req-0123456789abcdef" in body
    for leak in ("Traceback", SECRET_DETAIL, "hunter2", settings.SECRET_KEY, type(error).__name__, 'File "'):
        assert leak not in body


@pytest.mark.parametrize(("error", "status"), list(FAILURES.values()), ids=list(FAILURES))
def test_server_error_under_the_api_is_json(error, status):
    # when
    response = call_handler500("/api/incidents", error)

    # then
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert body["error"]
    assert body["request_id"] == "req-0123456789abcdef"
    assert ("Retry-After" in response) == (status == 503)
    for leak in ("Traceback", SECRET_DETAIL, "hunter2", settings.SECRET_KEY):
        assert leak not in response.content.decode()


def raise_database_down(*args, **kwargs):
    raise OperationalError("can't connect to MySQL server on 10.0.0.5 (" + SECRET_DETAIL + ")")


def test_a_database_outage_on_a_page_is_a_503(client, reporter, monkeypatch):
    # given
    monkeypatch.setattr(DashboardView, "get_context_data", raise_database_down)
    client.raise_request_exception = False
    client.force_login(reporter)

    # when
    response = client.get("/dashboard/", HTTP_X_REQUEST_ID="outage-test-0001")

    # then
    body = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"]
    assert response["X-Request-ID"] == "outage-test-0001"
    assert "outage-test-0001" in body
    assert "Traceback" not in body
    assert SECRET_DETAIL not in body
    assert "'unsafe-inline'" not in directives(response["Content-Security-Policy"])["script-src"]
    assert response["X-Frame-Options"] == "DENY"


def test_a_database_outage_in_the_api_is_a_json_503(client, reporter, monkeypatch):
    # given
    monkeypatch.setattr(IncidentViewSet, "list", raise_database_down)
    client.raise_request_exception = False

    # when
    response = client.get(
        "/api/incidents",
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=reporter).key}",
        HTTP_X_REQUEST_ID="outage-test-0002",
    )

    # then
    assert response.status_code == 503
    assert response["Retry-After"]
    assert response.json()["error"]
    assert response.json()["request_id"] == "outage-test-0002"
    assert SECRET_DETAIL not in response.content.decode()


def test_a_bug_on_a_page_is_a_plain_500(client, reporter, monkeypatch):
    # given
    def broken(*args, **kwargs):
        raise KeyError("internal detail " + SECRET_DETAIL)

    monkeypatch.setattr(DashboardView, "get_context_data", broken)
    client.raise_request_exception = False
    client.force_login(reporter)

    # when
    response = client.get("/dashboard/")

    # then
    body = response.content.decode()
    assert response.status_code == 500
    assert "Retry-After" not in response
    assert response["X-Request-ID"] in body
    assert "Traceback" not in body
    assert SECRET_DETAIL not in body


# --- Logs ------------------------------------------------------------------------------------------------


@pytest.fixture
def all_logs(caplog):
    """caplog, hearing every logger at DEBUG, including `django` and `axes`, which do not
    propagate to the root logger."""
    loggers = [logging.getLogger(name) for name in ("django", "axes")]
    for logger in loggers:
        logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    for logger in loggers:
        caplog.set_level(logging.DEBUG, logger=logger.name)
    yield caplog
    for logger in loggers:
        logger.removeHandler(caplog.handler)


def produce_secret_laden_traffic(reporter, monkeypatch):
    """Sign in (and fail to), visit reset links, use a bad token and crash during a sign-in;
    return the secrets that went over the wire."""
    cache.clear()
    wrong_password = "Wr0ng-but-still-a-secret!"
    browser = Client(raise_request_exception=False)
    browser.post("/accounts/login/", {"username": "alice", "password": wrong_password})
    browser.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    session_id = browser.cookies[settings.SESSION_COOKIE_NAME].value
    browser.get("/dashboard/")
    browser.post("/accounts/password_change/", {"old_password": "nope", "new_password1": "x", "new_password2": "y"})

    uid = urlsafe_base64_encode(force_bytes(reporter.pk))
    reset_token = default_token_generator.make_token(reporter)
    anonymous = Client(raise_request_exception=False)
    anonymous.get(f"/accounts/reset/{uid}/{reset_token}/oops/")  # 404, logged with its path
    anonymous.get(f"/accounts/reset/{uid}/{reset_token}/")
    anonymous.get("/accounts/reset/MQ/bad-token/")

    api_key = Token.objects.create(user=reporter).key
    Token.objects.filter(key=api_key).delete()  # now a bad token: 401
    api = Client(raise_request_exception=False)
    api.get("/api/incidents", HTTP_AUTHORIZATION=f"Token {api_key}")
    api.post("/api/auth/token", {"username": "alice", "password": wrong_password}, content_type="application/json")

    def crash(*args, **kwargs):
        raise RuntimeError("sign-in broke")

    monkeypatch.setattr("accounts.views.SignInView.form_valid", crash)
    Client(raise_request_exception=False).post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    return {
        "password": PASSWORD,
        "wrong password": wrong_password,
        "session id": session_id,
        "api token": api_key,
        "reset token": reset_token,
    }


def test_logs_never_contain_passwords_tokens_or_session_ids(all_logs, reporter, monkeypatch):
    # when
    secrets = produce_secret_laden_traffic(reporter, monkeypatch)

    # then: these never reach a log line at all, redaction or not
    assert "Internal Server Error" in all_logs.text  # the traffic was logged
    for name in ("password", "wrong password", "session id", "api token"):
        assert secrets[name] not in all_logs.text, name


def test_reset_tokens_are_redacted_from_logs(all_logs, reporter, monkeypatch):
    # given: the filter the stdout handler uses, on the handler that captures here
    all_logs.handler.addFilter(RedactSecretsLogFilter())

    # when
    secrets = produce_secret_laden_traffic(reporter, monkeypatch)

    # then
    assert "/accounts/reset/" in all_logs.text
    assert "[redacted]" in all_logs.text
    for name, secret in secrets.items():
        assert secret not in all_logs.text, name


def test_the_stdout_handler_redacts():
    handler = logging.getLogger("django").handlers[0]
    assert any(isinstance(item, RedactSecretsLogFilter) for item in handler.filters)


KEY = "0123456789abcdef0123456789abcdef01234567"

# name: (message, args, the secret)
LOG_LINES = {
    "reset link": (
        "Not Found: %s",
        ("/accounts/reset/MQ/cbx7q2-0f1e2d3c4b5a69788796a5b4c3d2e1f0/oops/",),
        "cbx7q2-0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    ),
    "reset link in text": ("GET /accounts/reset/Mg/set-token-123/ 200", (), "set-token-123"),
    "api token": ("Authorization: Token %s", (KEY,), KEY),
    "api token lower case": ("authorization: token " + KEY, (), KEY),
    "session cookie": ("Cookie: csrftoken=abc; sessionid=s3ss10nk3yvalue42; theme=dark", (), "s3ss10nk3yvalue42"),
    "csrf cookie": ("Cookie: csrftoken=Csrf70kenValue99; sessionid=x", (), "Csrf70kenValue99"),
    "form password": ("POST body username=alice&password=hunter2&next=/", (), "hunter2"),
    "form new passwords": ("new_password1=Sup3rS3cret&new_password2=Sup3rS3cret", (), "Sup3rS3cret"),
    "form old password": ("old_password=0ldS3cret&new_password1=x", (), "0ldS3cret"),
    "json password": ('body: {"username": "alice", "password": "hunter2"}', (), "hunter2"),
}


@pytest.mark.parametrize(("message", "args", "secret"), list(LOG_LINES.values()), ids=list(LOG_LINES))
def test_redaction_filter_removes_secrets(message, args, secret):
    # given
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, message, args, None)

    # when
    kept = RedactSecretsLogFilter().filter(record)

    # then
    assert kept is True
    assert secret not in record.getMessage()
    assert "[redacted]" in record.getMessage()


def test_redaction_filter_leaves_ordinary_lines_alone():
    # given
    record = logging.LogRecord(
        "irms", logging.INFO, __file__, 1, "Incident %s reported by %s", ("c0ffee", "alice"), None
    )

    # when
    RedactSecretsLogFilter().filter(record)

    # then
    assert record.getMessage() == "Incident c0ffee reported by alice"


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
