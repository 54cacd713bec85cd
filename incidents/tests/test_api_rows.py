"""The lists' read path (`IncidentRows` over `incident_rows`) gives exactly what
IncidentSerializer gives for the same incidents: the same keys in the same order, the
same values, the same JSON bytes, for every kind of viewer and every state an incident can
be in (bench/README.md: "The API's hot path")."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIRequestFactory

from incidents import services
from incidents.api.serializers import IncidentRows, IncidentSerializer, incident_rows
from incidents.models import Incident, Status, Visibility

from .factories import advance_to, api_client, category_of, make_incident, set_clock
from .samples import upload


@pytest.fixture
def assorted(reporter, other, responder, staff, team_a, team_a_member, make_user):
    """Incidents in every state the representation distinguishes."""
    now = timezone.now()
    plain = make_incident(reporter, title="Plain")
    private = make_incident(other, title="Private, with “quotes” and ünïcode \u2028", visibility=Visibility.PRIVATE)
    team = make_incident(other, title="Team A's, assigned", category=category_of(team_a))
    services.assign(incident=team, actor=staff, assignee=team_a_member)
    answered = make_incident(other, title="Answered, with a file")
    services.add_response(incident=answered, author=responder, description="On it.")
    services.add_attachment(incident=answered, uploader=other, file=upload("note.txt", b"hello", "text/plain"))
    acknowledged = advance_to(make_incident(reporter, title="Acknowledged"), Status.ACKNOWLEDGED, by=responder)
    closed = advance_to(make_incident(other, title="Closed"), Status.CLOSED, by=responder)
    breached = set_clock(make_incident(other, title="Breached"), "acknowledge", due=now - timedelta(hours=1))
    at_risk = set_clock(make_incident(other, title="At risk"), "resolve", due=now + timedelta(hours=1), warn=now)
    no_clock = make_incident(other, title="No policy")
    Incident.objects.filter(pk=no_clock.pk).update(acknowledge_due_at=None, acknowledge_warn_at=None)
    gone = make_user("gone")
    orphan = make_incident(gone, title="Reporter deleted")
    gone.delete()
    Incident.objects.filter(pk=plain.pk).update(category=None)
    return [plain, private, team, answered, acknowledged, closed, breached, at_risk, no_clock, orphan]


def both(user, queryset):
    """(generic serializer JSON, rows JSON) for `queryset` as `user` sees it."""
    request = APIRequestFactory().get("/api/publicIncidents")
    request.user = user
    generic = IncidentSerializer(list(queryset), many=True, context={"request": request}).data
    rows = IncidentRows(request).represent(incident_rows(queryset))
    return JSONRenderer().render(generic), JSONRenderer().render(rows), generic, rows


@pytest.mark.parametrize("who", ["reporter", "other", "responder", "staff", "team_a_member"])
def test_rows_represent_incidents_exactly_as_the_serializer_does(request, assorted, who):
    # given
    user = request.getfixturevalue(who)
    queryset = Incident.objects.visible_to(user).for_list()

    # when
    generic_json, rows_json, generic, rows = both(user, queryset)

    # then
    assert len(rows) >= 3
    assert [list(row) for row in rows] == [list(item) for item in generic]  # key order too
    assert rows == generic
    assert rows_json == generic_json


def test_rows_show_times_in_the_current_time_zone_as_the_serializer_does(assorted, staff):
    # given
    queryset = Incident.objects.for_list()

    # when
    with timezone.override("Europe/Paris"):
        generic_json, rows_json, _, rows = both(staff, queryset)

    # then
    assert rows[0]["created_at"].endswith(("+01:00", "+02:00"))
    assert rows_json == generic_json


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("reporter", "/api/incidents"),
        ("other", "/api/publicIncidents"),
        ("responder", "/api/publicIncidents?ordering=due"),
        ("staff", "/api/publicIncidents?ordering=created_at&page_size=3"),
        ("team_a_member", "/api/publicIncidents?team=team-a"),
    ],
)
def test_list_endpoints_answer_what_the_serializer_says(request, assorted, who, path):
    # given
    user = request.getfixturevalue(who)
    client = api_client(user)

    # when
    response = client.get(path)

    # then: each incident as the generic serializer represents it, one by one
    assert response.status_code == 200
    body = response.json()
    assert body
    for item in body:
        incident = Incident.objects.for_list().get(incident_id=item["incident_id"])
        request_ = APIRequestFactory().get(path)
        request_.user = user
        assert item == IncidentSerializer(incident, context={"request": request_}).data


def test_cursor_pages_of_rows_have_no_gap_or_duplicate(assorted, staff):
    # given
    client = api_client(staff)
    expected = list(Incident.objects.order_by("sla_due_at", "id").values_list("id", flat=True))

    # when: walking the due order two at a time
    seen, url = [], "/api/publicIncidents?ordering=due&page_size=2"
    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += [item["id"] for item in response.json()]
        link = response.get("Link", "")
        url = next((part.split(">")[0].lstrip("<") for part in link.split(", ") if 'rel="next"' in part), None)

    # then
    mine = set(Incident.objects.filter(reporter=staff).values_list("id", flat=True))
    assert seen == [pk for pk in expected if pk not in mine]
