"""/api/incidents and /api/publicIncidents: the exact shape of an incident (and whose
e-mail it may carry), reporting, changing, filtering, and Idempotency-Key on reports."""

import json
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from incidents import services
from incidents.api.serializers import IncidentSerializer
from incidents.models import EventKind, IdempotencyKey, Incident, IncidentEvent, Severity, Status

from .factories import advance_to, api_client, make_incident, stored

ORIGINAL_KEYS = {"id", "incident_id", "title", "description", "status", "user_id", "user_email", "created_at"}
INCIDENT_KEYS = set(IncidentSerializer.Meta.fields)
RESPONSE_KEYS = {"id", "incident_id", "responder_username", "description", "created_at"}
# For searches on MariaDB: InnoDB's FULLTEXT index takes in a row when its transaction commits.
COMMITTED = pytest.mark.django_db(transaction=True)
TIMESTAMPS = ("created_at", "updated_at", "acknowledged_at", "resolved_at", "closed_at")


def assert_utc_timestamp(value: str):
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    assert value.endswith("+00:00"), value


# --- Shape ----------------------------------------------------------------------------------


def test_incident_keys_include_the_original_ones():
    assert ORIGINAL_KEYS <= INCIDENT_KEYS


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("reporter", "/api/incidents"),
        ("reporter", "/api/incidents/{id}"),
        ("other", "/api/incidents/{id}"),
        ("other", "/api/publicIncidents"),
        ("other", "/api/publicIncidents/{id}"),
        ("responder", "/api/publicIncidents"),
        ("staff", "/api/publicIncidents/{id}"),
    ],
)
def test_incident_has_exactly_the_documented_keys(request, public_incident, who, path):
    # given
    client = api_client(request.getfixturevalue(who))

    # when
    response = client.get(path.format(id=public_incident.incident_id))

    # then
    assert response.status_code == 200
    body = response.json()
    if "{id}" not in path:
        assert isinstance(body, list)
        assert len(body) == 1
        body = body[0]
    assert set(body) == INCIDENT_KEYS
    assert body["id"] == public_incident.pk
    assert body["incident_id"] == str(public_incident.incident_id)
    assert body["title"] == public_incident.title
    assert body["description"] == public_incident.description
    assert body["status"] == "Reported"
    assert body["user_id"] == public_incident.reporter_id
    assert body["severity"] == "Medium"
    assert body["visibility"] == "public"
    assert body["reporter_username"] == "alice"
    assert body["response_count"] == 0
    assert body["url"] == f"http://testserver/api/incidents/{public_incident.incident_id}"
    assert body["web_url"] == f"http://testserver/incidents/{public_incident.incident_id}/"


@pytest.mark.parametrize(
    ("who", "path", "shown"),
    [
        ("reporter", "/api/incidents/{id}", True),
        ("staff", "/api/incidents/{id}", True),
        ("staff", "/api/publicIncidents/{id}", True),
        ("other", "/api/incidents/{id}", False),
        ("other", "/api/publicIncidents/{id}", False),
        ("responder", "/api/incidents/{id}", False),
        ("responder", "/api/publicIncidents/{id}", False),
    ],
)
def test_user_email_only_for_the_reporter_and_staff(request, reporter, public_incident, who, path, shown):
    # given
    client = api_client(request.getfixturevalue(who))

    # when
    body = client.get(path.format(id=public_incident.incident_id)).json()

    # then
    assert body["user_email"] == (reporter.email if shown else None)


def everything_visible_to(client) -> list[str]:
    """The raw body of every GET the caller can make, for every incident it can see."""
    bodies = []
    for path in ("/api/incidents", "/api/publicIncidents"):
        response = client.get(path)
        bodies.append(response.content.decode())
        for item in response.json():
            incident_id = item["incident_id"]
            for detail in (f"/api/incidents/{incident_id}", f"/api/publicIncidents/{incident_id}"):
                bodies.append(client.get(detail).content.decode())
            bodies.append(client.get(f"/api/responses/{incident_id}").content.decode())
    return bodies


@pytest.mark.parametrize("who", ["reporter", "other", "responder", "staff"])
def test_no_other_users_email_appears_in_any_response(request, reporter, other, responder, staff, who):
    # given: incidents by several users, with responses by several users
    mine = make_incident(reporter, title="Printer on fire")
    private = make_incident(reporter, title="Badge lost", visibility="private")
    theirs = make_incident(other, title="Lift stuck")
    rita = make_incident(responder, title="Server room hot")
    for incident, author in [(mine, responder), (mine, other), (private, staff), (theirs, reporter), (rita, other)]:
        services.add_response(incident=incident, author=author, description="On it.")
    advance_to(theirs, Status.ACKNOWLEDGED, by=responder)
    viewer = request.getfixturevalue(who)
    client = api_client(viewer)
    foreign = {user.email for user in (reporter, other, responder, staff)} - {viewer.email}

    # when
    bodies = everything_visible_to(client)
    bodies.append(client.post(f"/api/responses/{mine.incident_id}", {"description": "Seen."}, format="json").content)
    bodies.append(client.post("/api/incidents", {"title": "New", "description": "D"}, format="json").content)
    bodies = [body.decode() if isinstance(body, bytes) else body for body in bodies]

    # then
    for body in bodies:
        if viewer.is_staff:
            # staff are shown each reporter's address in `user_email`, and nowhere else
            data = json.loads(body)
            for item in data if isinstance(data, list) else [data]:
                item.pop("user_email", None)
            body = json.dumps(data)
        for email in foreign:
            assert email not in body, (email, body)


def test_incident_of_a_deleted_account(reporter, other, staff, public_incident):
    # given
    reporter.delete()

    # when
    bodies = [api_client(user).get(f"/api/incidents/{public_incident.incident_id}").json() for user in (other, staff)]

    # then
    for body in bodies:
        assert body["user_id"] is None
        assert body["user_email"] is None
        assert body["reporter_username"] is None
        assert body["title"] == "Printer on fire"


def test_timestamps_are_iso_8601_in_utc(reporter, responder):
    # given: every timestamp set
    incident = advance_to(make_incident(reporter), Status.CLOSED, by=responder)

    # when
    body = api_client(reporter).get(f"/api/incidents/{incident.incident_id}").json()

    # then
    for name in TIMESTAMPS:
        assert_utc_timestamp(body[name])
    assert datetime.fromisoformat(body["created_at"]) == incident.created_at


def test_lists_are_bare_arrays_even_when_empty(reporter):
    # when
    responses = [api_client(reporter).get(path) for path in ("/api/incidents", "/api/publicIncidents")]

    # then
    assert [response.json() for response in responses] == [[], []]


# --- POST /api/incidents ----------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["token", "session"])
def test_report_incident(reporter, auth):
    # given
    client = api_client(reporter, auth)

    # when
    response = client.post(
        "/api/incidents", {"title": "  Gas smell  ", "description": "Near the coffee machine."}, format="json"
    )

    # then
    assert response.status_code == 201
    body = response.json()
    incident = Incident.objects.get()
    assert set(body) == INCIDENT_KEYS
    assert body["incident_id"] == str(incident.incident_id)
    assert body["title"] == incident.title == "Gas smell"
    assert body["description"] == "Near the coffee machine."
    assert body["status"] == incident.status == "Reported"
    assert body["severity"] == incident.severity == "Medium"
    assert body["visibility"] == incident.visibility == "public"
    assert body["user_id"] == reporter.pk
    assert body["user_email"] == reporter.email
    assert body["response_count"] == 0
    assert incident.reporter == reporter
    assert_utc_timestamp(body["created_at"])
    assert IncidentEvent.objects.filter(incident=incident, kind=EventKind.REPORTED, actor=reporter).count() == 1


def test_report_incident_with_severity_and_visibility(reporter):
    # when
    response = api_client(reporter).post(
        "/api/incidents",
        {"title": "Badge lost", "description": "Car park.", "severity": "Critical", "visibility": "private"},
        format="json",
    )

    # then
    assert response.status_code == 201
    assert response.json()["severity"] == "Critical"
    assert response.json()["visibility"] == "private"
    assert Incident.objects.get().visibility == "private"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"title": "T", "description": "D", "severity": "Apocalyptic"}, "severity", id="bad-severity"),
        pytest.param({"title": "T", "description": "D", "visibility": "secret"}, "visibility", id="bad-visibility"),
        pytest.param({"description": "D"}, "title", id="missing-title"),
        pytest.param({"title": "   ", "description": "D"}, "title", id="blank-title"),
        pytest.param({"title": "x" * 101, "description": "D"}, "title", id="long-title"),
        pytest.param({"title": "T"}, "description", id="missing-description"),
        pytest.param({"title": "T", "description": "x" * 20_001}, "description", id="long-description"),
        pytest.param({"title": None, "description": "D"}, "title", id="null-title"),
    ],
)
def test_report_incident_rejects_bad_input(reporter, body, field):
    # when
    response = api_client(reporter).post("/api/incidents", body, format="json")

    # then
    assert response.status_code == 400
    data = response.json()
    assert data["error"]
    assert isinstance(data[field], list)
    assert data[field]
    assert not Incident.objects.exists()
    assert not IncidentEvent.objects.exists()


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        pytest.param('{"title": "T", "description":', "application/json", 400, id="malformed-json"),
        pytest.param('["T", "D"]', "application/json", 400, id="json-array"),
        pytest.param("title=T&description=D", "application/x-www-form-urlencoded", 415, id="form-encoded"),
        pytest.param("title: T", "text/plain", 415, id="text"),
    ],
)
def test_report_incident_rejects_bad_bodies(reporter, raw, content_type, expected):
    # when
    response = api_client(reporter).post("/api/incidents", raw, content_type=content_type)

    # then
    assert response.status_code == expected
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]
    assert not Incident.objects.exists()


# --- PATCH /api/incidents/<id> --------------------------------------------------------------


def patch(client, incident, body, **kwargs):
    return client.patch(f"/api/incidents/{incident.incident_id}", body, format="json", **kwargs)


@pytest.mark.parametrize("auth", ["token", "session"])
def test_reporter_edits_title_and_description_while_reported(reporter, public_incident, auth):
    # when
    response = patch(api_client(reporter, auth), public_incident, {"title": "  Printer smoking ", "description": "F3"})

    # then
    assert response.status_code == 200
    assert response.json()["title"] == "Printer smoking"
    assert response.json()["description"] == "F3"
    public_incident.refresh_from_db()
    assert public_incident.title == "Printer smoking"
    assert public_incident.description == "F3"
    edits = IncidentEvent.objects.filter(incident=public_incident, kind=EventKind.EDITED, actor=reporter)
    assert sorted(edits.values_list("field", flat=True)) == ["description", "title"]


def test_reporter_may_not_edit_once_acknowledged(reporter, responder, public_incident):
    # given
    incident = advance_to(public_incident, Status.ACKNOWLEDGED, by=responder)
    before = stored(incident)

    # when
    response = patch(api_client(reporter), incident, {"title": "Too late"})

    # then
    assert response.status_code == 403
    assert response.json()["error"]
    assert stored(incident) == before


def test_staff_make_an_incident_private(staff, other, public_incident):
    # when
    response = patch(api_client(staff), public_incident, {"visibility": "private"})

    # then
    assert response.status_code == 200
    assert response.json()["visibility"] == "private"
    assert api_client(other).get(f"/api/incidents/{public_incident.incident_id}").status_code == 404


@pytest.mark.parametrize("body", [{"visibility": "private"}, {"title": "Still mine", "visibility": "private"}])
def test_reporter_may_not_change_visibility(reporter, other, public_incident, body):
    # given: who may see an incident is for staff to change
    before = stored(public_incident)

    # when
    response = patch(api_client(reporter), public_incident, body)

    # then
    assert response.status_code == 403
    assert response.json()["error"]
    assert stored(public_incident) == before


@pytest.mark.parametrize(
    ("path", "stamp"),
    [
        ([Status.ACKNOWLEDGED], "acknowledged_at"),
        ([Status.ACKNOWLEDGED, Status.IN_PROGRESS], "acknowledged_at"),
        ([Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED], "resolved_at"),
    ],
)
def test_responder_moves_status_along_the_workflow(responder, public_incident, path, stamp):
    # given
    client = api_client(responder)

    # when
    responses = [patch(client, public_incident, {"status": status}) for status in path]

    # then
    assert [response.status_code for response in responses] == [200] * len(path)
    body = responses[-1].json()
    assert body["status"] == path[-1]
    assert_utc_timestamp(body[stamp])
    public_incident.refresh_from_db()
    assert public_incident.status == path[-1]
    assert getattr(public_incident, stamp) is not None
    moves = IncidentEvent.objects.filter(incident=public_incident, kind=EventKind.STATUS_CHANGED)
    assert list(moves.values_list("new_value", flat=True)) == path


def test_a_status_that_does_not_exist_is_a_400(staff, public_incident):
    # when
    response = patch(api_client(staff), public_incident, {"status": "Bogus"})

    # then
    assert response.status_code == 400
    assert response.json()["status"]


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (Status.REPORTED, Status.IN_PROGRESS),
        (Status.ACKNOWLEDGED, Status.REPORTED),
        (Status.CLOSED, Status.IN_PROGRESS),
    ],
)
def test_moves_off_the_workflow_are_refused_with_409(staff, responder, public_incident, start, target):
    # given
    incident = advance_to(public_incident, start, by=staff)
    before = stored(incident)

    # when
    response = patch(api_client(staff), incident, {"status": target})

    # then: well-formed, but the incident's current state refuses it
    assert response.status_code == 409
    assert response.json()["error"].startswith("Not possible now: ")
    assert response.json()["status"]
    assert stored(incident) == before


def test_responder_changes_severity(responder, private_incident):
    # when
    response = patch(api_client(responder), private_incident, {"severity": "High"})

    # then
    assert response.status_code == 200
    assert response.json()["severity"] == "High"
    private_incident.refresh_from_db()
    assert private_incident.severity == Severity.HIGH
    assert IncidentEvent.objects.filter(
        incident=private_incident, kind=EventKind.SEVERITY_CHANGED, old_value="Medium", new_value="High"
    ).exists()


@pytest.mark.parametrize(
    ("who", "body", "expected"),
    [
        pytest.param("reporter", {"title": "Valid title", "severity": "High"}, 403, id="title-then-forbidden-severity"),
        pytest.param(
            "reporter", {"description": "Valid", "status": "Acknowledged"}, 403, id="edit-then-forbidden-status"
        ),
        pytest.param("staff", {"title": "Valid title", "status": "In Progress"}, 409, id="title-then-bad-move"),
        pytest.param("staff", {"severity": "Low", "status": "In Progress"}, 409, id="severity-then-bad-move"),
        pytest.param("responder", {"severity": "Low", "title": "Not theirs"}, 403, id="forbidden-edit-and-severity"),
    ],
)
def test_patch_is_all_or_nothing(request, public_incident, who, body, expected):
    # given
    before = stored(public_incident)

    # when
    response = patch(api_client(request.getfixturevalue(who)), public_incident, body)

    # then
    assert response.status_code == expected
    assert response.json()["error"]
    assert stored(public_incident) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"reporter": 2}, "reporter", id="unknown-field"),
        pytest.param({"title": "Fine", "created_at": "2020-01-01T00:00:00Z"}, "created_at", id="read-only-field"),
        pytest.param({"title": ""}, "title", id="blank-title"),
        pytest.param({"title": "x" * 101}, "title", id="long-title"),
        pytest.param({"severity": "Apocalyptic"}, "severity", id="bad-severity"),
        pytest.param({"visibility": "secret"}, "visibility", id="bad-visibility"),
        pytest.param([{"title": "Fine"}], "non_field_errors", id="array"),
    ],
)
def test_patch_rejects_bad_input(staff, public_incident, body, field):
    # given
    before = stored(public_incident)

    # when
    response = patch(api_client(staff), public_incident, body)

    # then
    assert response.status_code == 400
    assert response.json()["error"]
    assert response.json()[field]
    assert stored(public_incident) == before


def test_patch_rejects_malformed_json(staff, public_incident):
    # given
    before = stored(public_incident)

    # when
    response = api_client(staff).patch(
        f"/api/incidents/{public_incident.incident_id}", '{"title": ', content_type="application/json"
    )

    # then
    assert response.status_code == 400
    assert response.json()["error"]
    assert stored(public_incident) == before


@pytest.mark.parametrize("incident_id", ["not-a-uuid", "00000000-0000-4000-8000-000000000000"])
@pytest.mark.parametrize("method", ["get", "patch"])
def test_unknown_incident_is_404(staff, public_incident, incident_id, method):
    # when
    response = getattr(api_client(staff), method)(f"/api/incidents/{incident_id}", {"title": "X"}, format="json")

    # then
    assert response.status_code == 404
    assert response.json()["error"]


# --- Filters --------------------------------------------------------------------------------


@pytest.fixture
def assorted(other, responder):
    """Incidents by `other`, as seen by `responder` in /api/publicIncidents."""
    made = {
        "lift": make_incident(other, title="Lift stuck", description="Between floors", severity="High"),
        "gas": make_incident(other, title="Gas smell", description="Kitchen, near the LIFT lobby", severity="Low"),
        "badge": make_incident(other, title="Badge lost", description="Car park", visibility="private"),
        "printer": make_incident(other, title="Printer on fire", description="Third floor", severity="Critical"),
    }
    advance_to(made["printer"], Status.IN_PROGRESS, by=responder)
    start = timezone.now() - timedelta(days=10)
    for days, name in enumerate(made):
        Incident.objects.filter(pk=made[name].pk).update(created_at=start + timedelta(days=days * 3))
    return made


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=In+Progress", ["printer"]),
        ("status=Reported", ["badge", "gas", "lift"]),
        ("severity=High", ["lift"]),
        ("severity=Medium", ["badge"]),
        ("visibility=private", ["badge"]),
        ("visibility=public", ["printer", "gas", "lift"]),
        pytest.param("search=lift", ["gas", "lift"], marks=COMMITTED),  # title and description, any case
        pytest.param("search=car+park", ["badge"], marks=COMMITTED),
        ("search=%20", ["printer", "badge", "gas", "lift"]),
        ("status=Reported&severity=Low", ["gas"]),
        ("created_after={day2}", ["printer", "badge", "gas"]),
        ("created_before={day2}", ["lift"]),
        ("created_after={day0}", ["printer", "badge", "gas", "lift"]),  # inclusive
        ("created_before={day0}", []),  # exclusive
        ("created_after={day2}&created_before={day7}", ["badge", "gas"]),
        ("created_after=2099-01-01T00:00:00%2B00:00", []),
        ("created_after=2000-01-01T00:00:00", ["printer", "badge", "gas", "lift"]),  # naive: the site's zone
        ("created_after=2000-01-01T00:00:00Z", ["printer", "badge", "gas", "lift"]),
    ],
)
def test_filters(responder, assorted, query, expected):
    # given
    lift = Incident.objects.get(pk=assorted["lift"].pk).created_at
    days = {f"day{n}": quote((lift + timedelta(days=n)).isoformat()) for n in (0, 2, 7)}

    # when
    response = api_client(responder).get(f"/api/publicIncidents?{query.format(**days)}")

    # then
    assert response.status_code == 200, response.content
    titles = {incident.title: name for name, incident in assorted.items()}
    assert [titles[item["title"]] for item in response.json()] == expected


def test_filters_apply_to_my_incidents_too(reporter, public_incident, private_incident):
    # when
    response = api_client(reporter).get("/api/incidents?visibility=private")

    # then
    assert [item["incident_id"] for item in response.json()] == [str(private_incident.incident_id)]


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("status=Bogus", "status", "Bogus"),
        ("severity=Apocalyptic", "severity", "Apocalyptic"),
        ("visibility=secret", "visibility", "secret"),
        ("created_after=yesterday", "created_after", "date"),
        ("created_before=2024-13-45", "created_before", "date"),
        ("search=" + "x" * 101, "search", "100"),
    ],
)
@pytest.mark.parametrize("path", ["/api/incidents", "/api/publicIncidents"])
def test_bad_filter_values_are_400_with_a_clear_message(reporter, path, query, field, words):
    # when
    response = api_client(reporter).get(f"{path}?{query}")

    # then
    assert response.status_code == 400
    data = response.json()
    assert words in data["error"]
    assert any(words in message for message in data[field])


# --- Idempotency-Key --------------------------------------------------------------------------

REPORT = {"title": "Lift stuck", "description": "Between 2 and 3."}


def post_report(client, key, body=REPORT):
    return client.post("/api/incidents", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_retry_with_the_same_key_replays_the_first_result(reporter):
    # given
    client = api_client(reporter)
    first = post_report(client, "k-1")

    # when
    retry = post_report(client, "k-1")

    # then
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Incident.objects.count() == 1
    assert IncidentEvent.objects.filter(kind=EventKind.REPORTED).count() == 1


def test_same_key_with_a_different_body_is_422(reporter):
    # given
    client = api_client(reporter)
    post_report(client, "k-1")

    # when
    response = post_report(client, "k-1", {**REPORT, "title": "Something else"})

    # then
    assert response.status_code == 422
    assert response.json()["error"]
    assert Incident.objects.count() == 1


def test_same_key_from_another_user_is_a_separate_report(reporter, other):
    # given
    post_report(api_client(reporter), "k-1")

    # when
    response = post_report(api_client(other), "k-1")

    # then
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Incident.objects.filter(reporter=other).count() == 1
    assert Incident.objects.count() == 2


def test_different_keys_make_different_reports(reporter):
    # given
    client = api_client(reporter)

    # when
    responses = [post_report(client, key) for key in ("k-1", "k-2")]

    # then
    assert [response.status_code for response in responses] == [201, 201]
    assert Incident.objects.count() == 2


def test_key_expires_after_24_hours(reporter):
    # given
    client = api_client(reporter)
    post_report(client, "k-1")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))

    # when
    response = post_report(client, "k-1")

    # then
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Incident.objects.count() == 2
    assert IdempotencyKey.objects.count() == 1


def test_a_failed_request_does_not_use_up_its_key(reporter):
    # given: the first try is invalid, and rolls back with its key
    client = api_client(reporter)
    failed = post_report(client, "k-1", {"title": "Lift stuck"})
    assert failed.status_code == 400

    # when: the corrected request is sent with the same key
    retry = post_report(client, "k-1")

    # then
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry
    assert Incident.objects.count() == 1


@pytest.mark.parametrize("key", ["x" * 256, "tab\there"])
def test_invalid_idempotency_key_is_400(reporter, key):
    # when
    response = post_report(api_client(reporter), key)

    # then
    assert response.status_code == 400
    assert response.json()["error"]
    assert not Incident.objects.exists()


@pytest.mark.parametrize("param", ["status", "severity", "visibility", "created_after", "created_before"])
def test_a_filter_given_with_no_value_is_a_400(responder, param):
    # when
    response = api_client(responder).get(f"/api/publicIncidents?{param}=")

    # then: leaving it out means "any"; an empty value is a mistake worth telling
    assert response.status_code == 400
    assert response.json()["error"]
    assert response.json()[param] == ["Must not be empty: leave the parameter out to not filter."]


def test_an_empty_patch_changes_nothing(staff, public_incident):
    # given
    before = stored(public_incident)

    # when
    response = patch(api_client(staff), public_incident, {})

    # then
    assert response.status_code == 200
    assert response.json()["incident_id"] == str(public_incident.incident_id)
    assert stored(public_incident) == before


@pytest.mark.parametrize("path", ["/api/incidents/0.5", "/api/publicIncidents/0.5", "/api/nothing-here"])
def test_unknown_api_urls_answer_json_404(reporter, path):
    # when
    response = api_client(reporter).get(path)

    # then
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]


@pytest.mark.parametrize("value", [123, 1.5, True, ["x"], {"x": 1}, None])
def test_text_fields_must_be_json_strings(reporter, value):
    # when
    response = api_client(reporter).post("/api/incidents", {"title": value, "description": "d"}, format="json")

    # then
    assert response.status_code == 400
    assert response.json()["title"]
    assert not Incident.objects.exists()


@pytest.mark.parametrize("blank", [" ", "\t\n", "\u00a0", "\x1e", "\x85", "\ufeff", "\u3000"])
def test_text_of_only_white_space_is_blank_in_every_regex_dialect(reporter, blank):
    # when: white space as Python sees it, or as JSON Schema (ECMA-262) does
    response = api_client(reporter).post("/api/incidents", {"title": "Fine", "description": blank}, format="json")

    # then
    assert response.status_code == 400
    assert response.json()["description"] == ["This field may not be blank."]
    assert not Incident.objects.exists()
