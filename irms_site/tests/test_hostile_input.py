"""Hostile input against every form and API endpoint that takes some.

Whatever arrives, the answer is a 4xx with a message a person can act on (a form error or
an error page on the web; a JSON object with an `error` string from the API), never a 500,
and nothing is written. Input that only looks dangerous (emoji, SQL, template syntax) is
ordinary text: it is accepted, stored exactly as sent and shown escaped, never executed.
"""

import json
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.test import Client
from django.utils.html import escape
from django_tasks_db.models import DBTaskResult
from rest_framework.authtoken.models import Token

from accounts.models import User
from incidents.models import Incident, IncidentEvent, Response
from notifications.models import OutgoingEmail

PASSWORD = "correct-horse-battery-42"  # the root conftest's password for every user
NEW_PASSWORD = "a-sturdy-new-passphrase-77"
LIMIT = 256 * 1024  # settings.MAX_REQUEST_BODY_BYTES

# Text that no field accepts.
BAD_TEXT = {
    "empty": "",
    "whitespace": "  \t\n  ",
    "100kB": "x" * 100_000,
    "nul": "a\x00b",
}
# JSON values of the wrong type for a text (or choice) field.
WRONG_TYPES = {
    "int": 123,
    "list": [],
    "object": {},
    "null": None,
    "bool": True,
}
# Text that looks dangerous but is valid: stored verbatim, shown escaped.
WEIRD_BUT_VALID = {
    "emoji": "🔥 Server room on fire 🚒🧯",
    "sql-or": "' OR 1=1 --",
    "sql-drop": "'; DROP TABLE incidents_incident; --",
    "template-variable": "{{ settings.SECRET_KEY }}",
    "template-tag": "{% debug %}",
    "html": "<script>alert(document.cookie)</script>",
}
# Ten thousand levels of nesting, built as a string: no recursion in the test itself.
DEEP = "[" * 10_000 + "]" * 10_000


# --- Helpers -----------------------------------------------------------------------------------


def snapshot() -> dict:
    """Every row a refused request could have written or changed."""
    return {
        "incidents": list(Incident.objects.order_by("pk").values()),
        "responses": list(Response.objects.order_by("pk").values()),
        "events": IncidentEvent.objects.count(),
        "users": list(User.objects.order_by("pk").values()),
        "tokens": sorted(Token.objects.values_list("key", flat=True)),
        "emails": OutgoingEmail.objects.count(),
        "tasks": DBTaskResult.objects.count(),
    }


def web_client(user) -> Client:
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


def api_client(user) -> Client:
    client = Client(raise_request_exception=False)
    if user is not None:
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {Token.objects.create(user=user).key}"
    return client


def send_json(client, method, path, body, content_type="application/json"):
    if not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    return client.generic(method, path, body, content_type=content_type)


def assert_api_error(response, status=400):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str)
    assert body["error"].strip()


def form_errors(response) -> dict:
    """The errors on the form the page showed again (the response box, on an incident page)."""
    context = response.context or {}
    form = context.get("response_form") or context.get("form")
    return dict(form.errors) if form is not None else {}


def page(response) -> str:
    return response.content.decode()


# --- Web forms ---------------------------------------------------------------------------------

# name: (path, who posts, a valid submission, the fields under attack)
FORMS = {
    "report": (
        "/incidents/new/",
        "reporter",
        {"title": "Printer on fire", "description": "Smoke, no flames yet.", "severity": "Medium"},
        ("title", "description"),
    ),
    "respond": ("/incidents/{id}/respond/", "reporter", {"description": "On my way."}, ("description",)),
    "edit": (
        "/incidents/{id}/edit/",
        "reporter",
        {"title": "Printer on fire", "description": "Smoke, no flames yet."},
        ("title", "description"),
    ),
    "register": (
        "/accounts/register/",
        None,
        {"username": "newbie", "email": "newbie@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        ("username", "email"),
    ),
    "login": ("/accounts/login/", None, {"username": "alice", "password": PASSWORD}, ("username", "password")),
    "profile-email": (
        "/accounts/profile/",
        "reporter",
        {"email": "alice.new@example.com", "current_password": PASSWORD},
        ("email",),
    ),
}


def form_cases(values):
    return [
        pytest.param(form, field, value, id=f"{form}-{field}-{name}")
        for form, (_path, _who, _data, fields) in FORMS.items()
        for field in fields
        for name, value in values.items()
    ]


def form_target(request, form, incident):
    path, who, data, _fields = FORMS[form]
    user = request.getfixturevalue(who) if who else None
    return path.format(id=incident.incident_id), web_client(user), dict(data)


@pytest.mark.parametrize(("form", "field", "value"), form_cases(BAD_TEXT))
def test_web_form_refuses_bad_text_with_a_form_error(request, public_incident, form, field, value):
    # given
    path, client, data = form_target(request, form, public_incident)
    data[field] = value
    before = snapshot()

    # when
    response = client.post(path, data)

    # then
    assert response.status_code == 400
    # A password is never trimmed or length-checked at sign-in (any string may be one): an
    # empty or NUL one is a field error, a merely strange one matches no account (form error).
    expected = {field, "__all__"} if (form, field) == ("login", "password") else {field}
    assert expected & set(form_errors(response))
    assert snapshot() == before


@pytest.mark.parametrize(
    ("form", "field"),
    [pytest.param(form, field, id=f"{form}-{field}") for form, (*_, fields) in FORMS.items() for field in fields],
)
def test_web_form_refuses_invalid_utf8(request, public_incident, form, field):
    # given: the field's value is the byte 0xFF, which is not UTF-8 (a browser never sends it)
    path, client, data = form_target(request, form, public_incident)
    data.pop(field)
    body = urlencode(data) + f"&{field}=a%FFb"
    before = snapshot()

    # when
    response = client.generic("POST", path, body, content_type="application/x-www-form-urlencoded")

    # then
    assert 400 <= response.status_code < 500
    assert snapshot() == before


def test_report_form_refuses_a_severity_that_is_not_one(reporter):
    # given
    client = web_client(reporter)
    before = snapshot()

    # when
    response = client.post("/incidents/new/", {"title": "Printer", "description": "Smoke.", "severity": "Apocalyptic"})

    # then
    assert response.status_code == 400
    assert "severity" in form_errors(response)
    assert snapshot() == before


WEIRD_WEB = [
    pytest.param(form, field, value, id=f"{form}-{field}-{name}")
    for form, fields in (
        ("report", ("title", "description")),
        ("respond", ("description",)),
        ("edit", ("title", "description")),
    )
    for field in fields
    for name, value in WEIRD_BUT_VALID.items()
]


@pytest.mark.parametrize(("form", "field", "value"), WEIRD_WEB)
def test_web_form_stores_weird_text_verbatim_and_shows_it_escaped(request, public_incident, form, field, value):
    # given
    path, client, data = form_target(request, form, public_incident)
    data[field] = value
    incidents_before = Incident.objects.count()

    # when
    response = client.post(path, data)

    # then: stored exactly as typed ...
    assert response.status_code == 302, form_errors(response) if response.context else response.content[:300]
    if form == "respond":
        stored = Response.objects.order_by("-pk").first()
        incident = stored.incident
        assert stored.description == value
    else:
        incident = Incident.objects.order_by("-pk").first() if form == "report" else public_incident
        incident.refresh_from_db()
        assert getattr(incident, field) == value
    # ... the SQL was data, not a statement (the table is there, with the one new row) ...
    assert Incident.objects.count() == incidents_before + (form == "report")
    # ... and the pages show it as text: escaped, never rendered as a template.
    pages = [client.get(incident.get_absolute_url())]
    if field == "title":
        pages.append(client.get("/incidents/"))
    for shown in pages:
        assert shown.status_code == 200
        assert escape(value) in page(shown)
        assert settings.SECRET_KEY not in page(shown)
        assert "<script>alert(document.cookie)" not in page(shown)
    for email in OutgoingEmail.objects.all():
        assert settings.SECRET_KEY not in email.subject + email.body_text + email.body_html


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/xml"])
@pytest.mark.parametrize("form", list(FORMS))
def test_web_form_refuses_a_body_that_is_not_a_form(request, public_incident, form, content_type):
    # given
    path, client, data = form_target(request, form, public_incident)
    before = snapshot()

    # when
    response = client.generic("POST", path, json.dumps(data), content_type=content_type)

    # then: the site's error page, saying what was wrong
    assert response.status_code == 415
    assert response["Content-Type"].startswith("text/html")
    assert "content type" in page(response).lower()
    assert snapshot() == before


@pytest.mark.parametrize("form", list(FORMS))
def test_web_form_refuses_an_oversized_body(request, public_incident, form):
    # given
    path, client, data = form_target(request, form, public_incident)
    data[FORMS[form][3][0]] = "x" * (LIMIT + 1)
    before = snapshot()

    # when
    response = client.post(path, data)

    # then
    assert response.status_code == 413
    assert "too large" in page(response).lower()
    assert snapshot() == before


def test_web_form_refuses_a_content_length_that_is_not_a_number(reporter):
    # given
    client = web_client(reporter)
    before = snapshot()

    # when
    response = client.generic(
        "POST",
        "/incidents/new/",
        "title=x&description=y",
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH="abc",
    )

    # then
    assert response.status_code == 400
    assert snapshot() == before


# --- Web lists and URLs ------------------------------------------------------------------------


@pytest.mark.parametrize("page_number", ["-1", "0", "999999999999", "abc", "1.5", "%00"])
@pytest.mark.parametrize("path", ["/incidents/", "/incidents/mine/", "/incidents/public/"])
def test_web_list_answers_a_page_that_does_not_exist_with_404(reporter, public_incident, path, page_number):
    # when
    response = web_client(reporter).get(f"{path}?page={page_number}")

    # then: the site's own "not found" page
    assert response.status_code == 404
    assert "Page not found" in page(response)


BAD_IDS = {
    "not-a-uuid": "not-a-uuid",
    "number": "12345",
    "unknown": "00000000-0000-0000-0000-000000000000",
    "sql": quote("' OR 1=1 --"),
    "dotted": "a.b",
    "too-long": "0" * 40,
}


@pytest.mark.parametrize("bad_id", list(BAD_IDS.values()), ids=list(BAD_IDS))
@pytest.mark.parametrize(
    ("method", "suffix", "data"),
    [
        ("GET", "", None),
        ("GET", "edit/", None),
        ("POST", "edit/", {"title": "T", "description": "D"}),
        ("POST", "respond/", {"description": "D"}),
        ("POST", "status/", {"status": "Closed"}),
        ("POST", "severity/", {"severity": "Low"}),
    ],
)
def test_web_incident_pages_answer_a_bad_id_with_404(staff_user, method, suffix, data, bad_id):
    # given
    client = web_client(staff_user)
    before = snapshot()

    # when
    path = f"/incidents/{bad_id}/{suffix}"
    response = client.get(path) if method == "GET" else client.post(path, data)

    # then
    assert response.status_code == 404
    assert "Page not found" in page(response)
    assert snapshot() == before


@pytest.fixture
def staff_user(make_user, public_incident):
    """Staff, who may see and do everything: a 404 is about the id, not about permission."""
    return make_user("sam", is_staff=True)


# --- API bodies --------------------------------------------------------------------------------

# name: (method, path, a valid body, the fields under attack)
ENDPOINTS = {
    "report": (
        "POST",
        "/api/incidents",
        {"title": "Printer on fire", "description": "Smoke."},
        ("title", "description"),
    ),
    "edit": (
        "PATCH",
        "/api/incidents/{id}",
        {"title": "Printer on fire"},
        ("title", "description", "status", "severity", "visibility"),
    ),
    "respond": ("POST", "/api/responses/{id}", {"description": "On my way."}, ("description",)),
    "token": ("POST", "/api/auth/token", {"username": "alice", "password": PASSWORD}, ("username", "password")),
}


def endpoint(reporter, incident, name):
    method, path, data, _fields = ENDPOINTS[name]
    # The token endpoint is for callers without one.
    client = api_client(None if name == "token" else reporter)
    return client, method, path.format(id=incident.incident_id), dict(data)


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        pytest.param(name, field, value, id=f"{name}-{field}-{label}")
        for name, (*_, fields) in ENDPOINTS.items()
        for field in fields
        for label, value in {**BAD_TEXT, **WRONG_TYPES}.items()
    ],
)
def test_api_refuses_bad_values_with_a_json_error(reporter, public_incident, name, field, value):
    # given
    client, method, path, data = endpoint(reporter, public_incident, name)
    data[field] = value
    before = snapshot()

    # when
    response = send_json(client, method, path, data)

    # then: a value the token form takes as text, but that is nobody's username or password,
    # is a failed sign-in (401), the same answer as for any wrong password.
    assert_api_error(response, 401 if name == "token" and (field, value) in PLAUSIBLE_CREDENTIALS else 400)
    assert snapshot() == before


# (100 kB is longer than any username or e-mail address can be: a 400, before any look-up.)
# A username must be a JSON string (123 is a 400, as for every text field of the API).
PLAUSIBLE_CREDENTIALS = [
    ("password", BAD_TEXT["whitespace"]),
    ("password", BAD_TEXT["100kB"]),
    ("password", WRONG_TYPES["int"]),
]


RAW_BODIES = {
    "invalid-utf8": b'{"title": "a\xff\xfeb", "description": "\xc3\x28", "username": "\xff", "password": "\xff"}',
    "nested-body": DEEP,
    "nested-field": '{"title": ' + DEEP + ', "description": ' + DEEP + ', "username": ' + DEEP + "}",
    "truncated": '{"title": "Printer',
    "trailing-garbage": '{"title": "Printer"} }',
    "array": "[]",
    "null": "null",
    "number": "42",
    "string": '"Printer on fire"',
    "nan": '{"title": NaN, "description": Infinity}',
    "not-json": "title=Printer&description=Smoke",
}


@pytest.mark.parametrize("body", list(RAW_BODIES.values()), ids=list(RAW_BODIES))
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_api_refuses_a_body_that_is_not_a_json_object(reporter, public_incident, name, body):
    # given
    client, method, path, _data = endpoint(reporter, public_incident, name)
    before = snapshot()

    # when
    response = send_json(client, method, path, body)

    # then
    assert_api_error(response, 400)
    assert snapshot() == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=xyz"])
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_api_refuses_a_body_that_is_not_json_with_415(reporter, public_incident, name, content_type):
    # given
    client, method, path, data = endpoint(reporter, public_incident, name)
    before = snapshot()

    # when
    response = send_json(client, method, path, json.dumps(data), content_type=content_type)

    # then
    assert_api_error(response, 415)
    assert snapshot() == before


@pytest.mark.parametrize("name", ["report", "edit", "respond"])
def test_api_takes_no_form_bodies(reporter, public_incident, name):
    # given
    client, method, path, data = endpoint(reporter, public_incident, name)
    before = snapshot()

    # when
    response = send_json(client, method, path, urlencode(data), content_type="application/x-www-form-urlencoded")

    # then
    assert_api_error(response, 415)
    assert snapshot() == before


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_api_refuses_an_oversized_body_with_413(reporter, public_incident, name):
    # given
    client, method, path, data = endpoint(reporter, public_incident, name)
    data[ENDPOINTS[name][3][0]] = "x" * (LIMIT + 1)
    before = snapshot()

    # when
    response = send_json(client, method, path, data)

    # then
    assert_api_error(response, 413)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        pytest.param(name, field, value, id=f"{name}-{field}-{label}")
        for name, fields in (
            ("report", ("title", "description")),
            ("edit", ("title", "description")),
            ("respond", ("description",)),
        )
        for field in fields
        for label, value in WEIRD_BUT_VALID.items()
    ],
)
def test_api_stores_weird_text_verbatim(reporter, public_incident, name, field, value):
    # given
    client, method, path, data = endpoint(reporter, public_incident, name)
    data[field] = value
    incidents_before = Incident.objects.count()

    # when
    response = send_json(client, method, path, data)

    # then: echoed and stored exactly as sent, and the SQL was only data
    assert response.status_code == {"POST": 201, "PATCH": 200}[method], response.content[:300]
    assert response.json()[field] == value
    if name == "respond":
        assert Response.objects.get(pk=response.json()["id"]).description == value
    else:
        assert (
            Incident.objects.filter(incident_id=response.json()["incident_id"]).values_list(field, flat=True).get()
            == value
        )
    assert Incident.objects.count() == incidents_before + (name == "report")
    assert settings.SECRET_KEY not in response.content.decode()


# --- API lists and URLs ------------------------------------------------------------------------

LIST_PARAMS = {
    "page_size-negative": {"page_size": "-5"},
    "page_size-zero": {"page_size": "0"},
    "page_size-huge": {"page_size": str(10**12)},
    "page_size-text": {"page_size": "abc"},
    "page_size-nul": {"page_size": "1\x00"},
    "ordering-unknown": {"ordering": "title; DROP TABLE incidents_incident"},
}
FILTER_PARAMS = {
    "status-unknown": {"status": "Bogus"},
    "severity-sql": {"severity": "' OR 1=1 --"},
    "visibility-unknown": {"visibility": "everyone"},
    "created_after-text": {"created_after": "yesterday"},
    "search-nul": {"search": "a\x00b"},
    "search-100kB": {"search": "x" * 100_000},
}


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param(path, params, id=f"{path.split('/')[2]}-{label}")
        for path, labels in (
            ("/api/incidents", {**LIST_PARAMS, **FILTER_PARAMS}),
            ("/api/publicIncidents", {**LIST_PARAMS, **FILTER_PARAMS}),
            ("/api/responses/{id}", LIST_PARAMS),
        )
        for label, params in labels.items()
    ],
)
def test_api_list_refuses_bad_query_parameters(reporter, public_incident, path, params):
    # when
    response = api_client(reporter).get(path.format(id=public_incident.incident_id), params)

    # then
    assert_api_error(response, 400)


@pytest.mark.parametrize("cursor", ["garbage", "cD0yMDI2LTEzLTQ1", "%00", "x" * 10_000])
@pytest.mark.parametrize("path", ["/api/incidents", "/api/publicIncidents", "/api/responses/{id}"])
def test_api_list_answers_an_unknown_cursor_with_a_json_404(reporter, public_incident, path, cursor):
    # when: a cursor that no Link header ever gave (garbage, or base64 of "p=2026-13-45")
    response = api_client(reporter).get(path.format(id=public_incident.incident_id), {"cursor": cursor})

    # then: a page that does not exist
    assert_api_error(response, 404)


@pytest.mark.parametrize("bad_id", list(BAD_IDS.values()), ids=list(BAD_IDS))
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/incidents/{id}", None),
        ("PATCH", "/api/incidents/{id}", {"title": "T"}),
        ("GET", "/api/publicIncidents/{id}", None),
        ("GET", "/api/responses/{id}", None),
        ("POST", "/api/responses/{id}", {"description": "D"}),
    ],
)
def test_api_answers_a_bad_id_with_a_json_404(staff_user, method, path, body, bad_id):
    # given
    client = api_client(staff_user)
    before = snapshot()

    # when
    response = send_json(client, method, path.format(id=bad_id), body if body is not None else "")

    # then
    assert_api_error(response, 404)
    assert snapshot() == before


@pytest.mark.parametrize("path", ["/api/nope", "/api/incidents/not-a-uuid/extra", "/api/responses/"])
def test_api_answers_an_unknown_path_with_a_json_404(reporter, path):
    # when
    response = api_client(reporter).get(path)

    # then
    assert_api_error(response, 404)
