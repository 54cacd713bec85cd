"""SLA clocks in the API: the `sla` object on every incident, the `sla=` filter, the
`ordering=due` order, and that the numbers follow visibility (an incident you may not see
has no SLA you can read)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import services
from incidents.models import Incident, Severity, SlaPolicy, Status

from .factories import advance_to, api_client, category_of, make_incident, set_clock


def get(user, path, **params):
    return api_client(user).get(path, params)


def test_every_incident_carries_its_two_clocks(reporter):
    # given: a Critical report (15 min to acknowledge, 4 h to resolve by default)
    incident = make_incident(reporter, severity=Severity.CRITICAL)

    # when
    body = get(reporter, f"/api/incidents/{incident.incident_id}").json()

    # then
    assert body["sla"] == {
        "acknowledge": {"due_at": (incident.created_at + timedelta(minutes=15)).isoformat(), "state": "pending"},
        "resolve": {"due_at": (incident.created_at + timedelta(hours=4)).isoformat(), "state": "pending"},
    }


def test_clock_states_follow_the_workflow(reporter, responder):
    # given
    incident = make_incident(reporter, severity=Severity.HIGH)
    late = set_clock(incident, "resolve", due=timezone.now() - timedelta(minutes=5))

    # when: acknowledged in time, the resolve clock already missed
    advance_to(late, Status.ACKNOWLEDGED, by=responder)
    body = get(reporter, f"/api/incidents/{incident.incident_id}").json()

    # then
    assert body["sla"]["acknowledge"]["state"] == "met"
    assert body["sla"]["resolve"]["state"] == "breached"


def test_a_clock_in_its_last_fifth_is_at_risk(reporter):
    # given
    incident = make_incident(reporter)
    now = timezone.now()
    set_clock(incident, "acknowledge", due=now + timedelta(minutes=2), warn=now - timedelta(seconds=1))

    # when
    body = get(reporter, f"/api/incidents/{incident.incident_id}").json()

    # then
    assert body["sla"]["acknowledge"]["state"] == "at_risk"
    assert body["sla"]["resolve"]["state"] == "pending"


def test_no_policy_means_no_due_time(reporter):
    # given
    SlaPolicy.objects.filter(severity=Severity.LOW).delete()
    incident = make_incident(reporter, severity=Severity.LOW)

    # when
    body = get(reporter, f"/api/incidents/{incident.incident_id}").json()

    # then
    assert body["sla"] == {
        "acknowledge": {"due_at": None, "state": "pending"},
        "resolve": {"due_at": None, "state": "pending"},
    }


@pytest.fixture
def four_states(reporter, responder):
    """One incident per state of the acknowledge clock (the resolve clock pending)."""
    now = timezone.now()
    pending = make_incident(reporter, title="pending")
    at_risk = set_clock(
        make_incident(reporter, title="at-risk"),
        "acknowledge",
        due=now + timedelta(minutes=1),
        warn=now - timedelta(minutes=1),
    )
    breached = set_clock(make_incident(reporter, title="breached"), "acknowledge", due=now - timedelta(minutes=1))
    met = make_incident(reporter, title="met")
    services.change_status(incident=met, actor=responder, status=Status.ACKNOWLEDGED)
    return {"pending": pending, "at_risk": at_risk, "breached": breached, "met": met}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("breached", {"breached"}),
        ("at_risk", {"at-risk"}),
        ("met", {"met"}),
        # the resolve clock of every one of them is still pending
        ("pending", {"pending", "at-risk", "breached", "met"}),
    ],
)
def test_the_sla_filter_matches_either_clock(reporter, four_states, state, expected):
    # when
    response = get(reporter, "/api/incidents", sla=state)

    # then
    assert response.status_code == 200
    assert {row["title"] for row in response.json()} == expected
    for row in response.json():
        assert state in {row["sla"]["acknowledge"]["state"], row["sla"]["resolve"]["state"]}


def test_an_unknown_sla_state_is_a_400(reporter):
    # when
    response = get(reporter, "/api/incidents", sla="late")

    # then
    assert response.status_code == 400
    assert "sla" in response.json()


def test_ordering_due_puts_the_soonest_unmet_due_time_first_and_met_ones_last(reporter, four_states):
    # when
    response = get(reporter, "/api/incidents", ordering="due")

    # then: breached (due a minute ago), at risk (in a minute), pending (in 4 h); "met" is
    # now on its resolve clock (3 days)
    assert response.status_code == 200
    assert [row["title"] for row in response.json()] == ["breached", "at-risk", "pending", "met"]


def test_ordering_due_pages_with_cursors_without_repeats(reporter):
    # given
    for n in range(7):
        make_incident(reporter, title=f"n{n}", severity=[Severity.CRITICAL, Severity.LOW][n % 2])
    client = api_client(reporter)

    # when: three at a time, following the Link headers
    seen, url = [], "/api/incidents?ordering=due&page_size=3"
    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += [row["title"] for row in response.json()]
        links = [part for part in response.headers.get("Link", "").split(",") if 'rel="next"' in part]
        url = links[0].split(";")[0].strip(" <>") if links else None

    # then: every incident once, Critical ones (due soonest) first
    assert sorted(seen) == [f"n{n}" for n in range(7)]
    assert seen[:4] == ["n0", "n2", "n4", "n6"]


def test_responses_cannot_be_ordered_by_due(reporter):
    # given
    incident = make_incident(reporter)

    # when
    response = get(reporter, f"/api/responses/{incident.incident_id}", ordering="due")

    # then
    assert response.status_code == 400
    assert "ordering" in response.json()


def test_sla_of_an_incident_you_may_not_see_is_not_readable(reporter, other, facilities):
    # given: a private incident of Facilities, overdue
    private = make_incident(reporter, category=category_of(facilities), visibility="private")
    set_clock(private, "acknowledge", due=timezone.now() - timedelta(hours=1))

    # when
    one = get(other, f"/api/publicIncidents/{private.incident_id}")
    listed = get(other, "/api/publicIncidents", sla="breached")

    # then
    assert one.status_code == 404
    assert listed.json() == []


def test_the_schema_describes_the_sla_object_filter_and_ordering(db, client):
    # when
    schema = client.get("/api/schema", HTTP_ACCEPT="application/json").json()

    # then
    incident = schema["components"]["schemas"]["Incident"]
    assert "sla" in incident["properties"]
    list_params = {p["name"]: p for p in schema["paths"]["/api/incidents"]["get"]["parameters"]}
    assert list_params["sla"]["schema"]["enum"] == ["at_risk", "breached", "met", "pending"]
    assert "due" in list_params["ordering"]["schema"]["enum"]


def test_incidents_with_no_clock_running_each_have_their_own_place_in_the_due_order(reporter, staff):
    # given: closed incidents (no deadline left), which keyset pages must not tie on
    closed = [make_incident(reporter, title=f"closed-{n}") for n in range(5)]
    for incident in closed:
        services.change_status(incident=incident, actor=staff, status=Status.CLOSED)
    open_one = make_incident(reporter, title="open")
    client = api_client(reporter)

    # when: two at a time
    seen, url = [], "/api/incidents?ordering=due&page_size=2"
    while url:
        response = client.get(url)
        seen += [row["title"] for row in response.json()]
        links = [part for part in response.headers.get("Link", "").split(",") if 'rel="next"' in part]
        url = links[0].split(";")[0].strip(" <>") if links else None

    # then: the open one first, then the closed ones newest first, each once
    assert seen == ["open", "closed-4", "closed-3", "closed-2", "closed-1", "closed-0"]
    keys = list(Incident.objects.exclude(pk=open_one.pk).values_list("sla_due_at", flat=True))
    assert len(set(keys)) == len(keys) == 5
