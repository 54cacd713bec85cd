"""/api/responses/<incident_id>: the `{"responses": [...]}` envelope, oldest first, the
exact response object, responding, and Idempotency-Key on responses."""

import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from incidents import services
from incidents.models import EventKind, IdempotencyKey, IncidentEvent, Response, Status

from .factories import advance_to, api_client, make_incident, stored

RESPONSE_KEYS = {"id", "incident_id", "responder_username", "description", "created_at", "attachments"}


def respond(incident, author, description, minutes_ago=0) -> Response:
    response = services.add_response(incident=incident, author=author, description=description)
    Response.objects.filter(pk=response.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    return Response.objects.get(pk=response.pk)


def url(incident) -> str:
    return f"/api/responses/{incident.incident_id}"


# --- GET ------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["token", "session"])
def test_responses_envelope_oldest_first(reporter, other, responder, public_incident, auth):
    # given: written out of order
    second = respond(public_incident, other, "Smells like toner.", minutes_ago=5)
    third = respond(public_incident, reporter, "Still smoking.", minutes_ago=1)
    first = respond(public_incident, responder, "On my way.", minutes_ago=9)

    # when
    response = api_client(reporter, auth).get(url(public_incident))

    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"responses"}
    assert [item["id"] for item in body["responses"]] == [first.pk, second.pk, third.pk]
    assert [(item["responder_username"], item["description"]) for item in body["responses"]] == [
        ("rita", "On my way."),
        ("bob", "Smells like toner."),
        ("alice", "Still smoking."),
    ]


def test_response_has_exactly_the_documented_keys(reporter, responder, public_incident):
    # given
    written = respond(public_incident, responder, "On my way.")

    # when
    item = api_client(reporter).get(url(public_incident)).json()["responses"][0]

    # then
    assert set(item) == RESPONSE_KEYS
    assert item["id"] == written.pk
    assert item["incident_id"] == str(public_incident.incident_id)
    assert item["responder_username"] == "rita"
    assert item["description"] == "On my way."
    parsed = datetime.fromisoformat(item["created_at"])
    assert parsed.tzinfo is not None
    assert item["created_at"].endswith("+00:00")
    assert parsed == written.created_at


def test_response_of_a_deleted_account_has_no_username(reporter, other, public_incident):
    # given
    respond(public_incident, other, "On my way.")
    other.delete()

    # when
    item = api_client(reporter).get(url(public_incident)).json()["responses"][0]

    # then
    assert item["responder_username"] is None
    assert item["description"] == "On my way."


def test_no_responses_is_an_empty_envelope(reporter, public_incident):
    # when
    response = api_client(reporter).get(url(public_incident))

    # then
    assert response.json() == {"responses": []}


def test_responses_only_of_the_incident_asked_for(reporter, responder, public_incident, private_incident):
    # given
    respond(public_incident, responder, "Public answer.")
    respond(private_incident, responder, "Private answer.")

    # when
    body = api_client(reporter).get(url(public_incident)).json()

    # then
    assert [item["description"] for item in body["responses"]] == ["Public answer."]


@pytest.mark.parametrize("incident_id", ["not-a-uuid", "00000000-0000-4000-8000-000000000000"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_unknown_incident_is_404(staff, incident_id, method):
    # when
    response = getattr(api_client(staff), method)(
        f"/api/responses/{incident_id}", {"description": "Hello?"}, format="json"
    )

    # then
    assert response.status_code == 404
    assert response.json()["error"]
    assert not Response.objects.exists()


def test_responses_paginate_by_link_header(reporter, responder, public_incident):
    # given
    written = [respond(public_incident, responder, f"Update {n}", minutes_ago=30 - n).pk for n in range(7)]
    client = api_client(reporter)

    # when: following rel="next" three at a time
    seen, pages, next_url = [], 0, f"{url(public_incident)}?page_size=3"
    while next_url:
        response = client.get(next_url)
        assert response.status_code == 200
        seen += [item["id"] for item in response.json()["responses"]]
        pages += 1
        found = re.search(r'<([^>]+)>; rel="next"', response.get("Link", ""))
        next_url = found.group(1) if found else None

    # then
    assert seen == written
    assert pages == 3


# --- POST -----------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["token", "session"])
def test_respond(reporter, other, public_incident, auth):
    # when
    response = api_client(other, auth).post(url(public_incident), {"description": "On my way."}, format="json")

    # then
    assert response.status_code == 201
    body = response.json()
    written = Response.objects.get()
    assert set(body) == RESPONSE_KEYS
    assert body["id"] == written.pk
    assert body["incident_id"] == str(public_incident.incident_id)
    assert body["responder_username"] == "bob"
    assert body["description"] == "On my way."
    assert body["created_at"].endswith("+00:00")
    assert written.author == other
    assert written.incident == public_incident
    assert IncidentEvent.objects.filter(incident=public_incident, kind=EventKind.RESPONDED, response=written).exists()
    listed = api_client(reporter).get(f"/api/incidents/{public_incident.incident_id}").json()
    assert listed["response_count"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({}, "description", id="missing"),
        pytest.param({"description": ""}, "description", id="empty"),
        pytest.param({"description": "   "}, "description", id="blank"),
        pytest.param({"description": "x" * 20_001}, "description", id="too-long"),
        pytest.param({"description": None}, "description", id="null"),
    ],
)
def test_respond_rejects_bad_input(reporter, public_incident, body, field):
    # given
    before = stored(public_incident)

    # when
    response = api_client(reporter).post(url(public_incident), body, format="json")

    # then
    assert response.status_code == 400
    assert response.json()["error"]
    assert response.json()[field]
    assert stored(public_incident) == before


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        ('{"description": ', "application/json", 400),
        ("description=Hi", "application/x-www-form-urlencoded", 415),
    ],
)
def test_respond_rejects_bad_bodies(reporter, public_incident, raw, content_type, expected):
    # when
    response = api_client(reporter).post(url(public_incident), raw, content_type=content_type)

    # then
    assert response.status_code == expected
    assert response.json()["error"]
    assert not Response.objects.exists()


def test_closed_incident_takes_no_responses(reporter, staff, public_incident):
    # given
    incident = advance_to(public_incident, Status.CLOSED, by=staff)
    before = stored(incident)

    # when
    response = api_client(reporter).post(url(incident), {"description": "Hello?"}, format="json")

    # then
    assert response.status_code == 409
    assert response.json()["error"]
    assert stored(incident) == before


# --- Idempotency-Key --------------------------------------------------------------------------


def post_response(client, incident, key, description="On my way."):
    return client.post(url(incident), {"description": description}, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_response_retry_with_the_same_key_replays(other, public_incident):
    # given
    client = api_client(other)
    first = post_response(client, public_incident, "r-1")

    # when
    retry = post_response(client, public_incident, "r-1")

    # then
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert Response.objects.count() == 1
    assert IncidentEvent.objects.filter(kind=EventKind.RESPONDED).count() == 1


def test_response_same_key_different_body_is_422(other, public_incident):
    # given
    client = api_client(other)
    post_response(client, public_incident, "r-1")

    # when
    response = post_response(client, public_incident, "r-1", description="Something else.")

    # then
    assert response.status_code == 422
    assert response.json()["error"]
    assert Response.objects.count() == 1


def test_response_same_key_on_another_incident_is_422(reporter, other, public_incident):
    # given: the key names one request, whatever its target
    second = make_incident(reporter, title="Lift stuck")
    client = api_client(other)
    post_response(client, public_incident, "r-1")

    # when
    response = post_response(client, second, "r-1")

    # then
    assert response.status_code == 422
    assert Response.objects.count() == 1


def test_response_same_key_from_another_user_is_separate(reporter, other, public_incident):
    # given
    post_response(api_client(other), public_incident, "r-1")

    # when
    response = post_response(api_client(reporter), public_incident, "r-1")

    # then
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Response.objects.count() == 2


def test_response_key_expires_after_24_hours(other, public_incident):
    # given
    client = api_client(other)
    post_response(client, public_incident, "r-1")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))

    # when
    response = post_response(client, public_incident, "r-1")

    # then
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Response.objects.count() == 2


def test_response_key_on_an_invisible_incident_is_not_kept(other, private_incident):
    # when
    response = post_response(api_client(other), private_incident, "r-1")

    # then
    assert response.status_code == 404
    assert not IdempotencyKey.objects.exists()
    assert not Response.objects.exists()
