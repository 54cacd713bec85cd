"""GET /api/metrics: who may ask, what a bad query gets, the shape (the figures themselves
are test_metrics.py's)."""

import json

import pytest
from django.utils import timezone

from incidents import metrics
from incidents.models import Visibility

from .factories import api_client, category_of, make_incident

KEYS = {
    "from", "to", "teams", "category", "severity", "reported", "acknowledged", "resolved", "closed", "open_now",
    "time_to_acknowledge", "time_to_resolve", "sla", "by_severity", "by_team", "weekly", "top_categories",
    "oldest_open",
}  # fmt: skip


def test_anonymous_callers_are_asked_to_sign_in(db):
    response = api_client(None).get("/api/metrics")

    assert response.status_code == 401
    assert response.json()["error"]


def test_a_reporter_without_a_team_is_refused(reporter):
    response = api_client(reporter).get("/api/metrics")

    assert response.status_code == 403
    assert response.json() == {"error": "Metrics are for team members and staff."}


def test_a_team_member_gets_their_teams_figures_by_default(reporter, fred, facilities, helpdesk):
    make_incident(reporter, category=category_of(facilities))
    make_incident(reporter, category=category_of(helpdesk))

    response = api_client(fred).get("/api/metrics")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == KEYS
    first, last = metrics.default_period()
    assert (body["from"], body["to"]) == (first.isoformat(), last.isoformat())
    assert body["teams"] == ["facilities"]
    assert body["reported"] == 1
    assert [row["team"] for row in body["by_team"]] == ["facilities"]
    assert body["weekly"][-1]["week_start"] <= last.isoformat()


def test_staff_see_every_team_and_may_pick_several(reporter, staff, facilities, helpdesk, security):
    make_incident(reporter, category=category_of(facilities))
    make_incident(reporter, category=category_of(helpdesk), visibility=Visibility.PRIVATE)

    everything = api_client(staff).get("/api/metrics").json()
    two = api_client(staff).get("/api/metrics?team=facilities&team=helpdesk").json()

    assert everything["teams"] == []
    assert everything["reported"] == 2
    assert {"facilities", "helpdesk", "security"} <= {row["team"] for row in everything["by_team"]}
    assert two["teams"] == ["facilities", "helpdesk"]
    assert [row["team"] for row in two["by_team"]] == ["facilities", "helpdesk"]


def test_another_teams_private_incidents_are_not_counted(reporter, ian, facilities, helpdesk):
    make_incident(reporter, category=category_of(facilities))
    make_incident(reporter, category=category_of(facilities), visibility=Visibility.PRIVATE)

    body = api_client(ian).get("/api/metrics?team=facilities").json()

    assert body["reported"] == 1
    assert len(body["oldest_open"]) == 1


def test_a_period_and_filters_are_echoed(staff, facilities):
    body = (
        api_client(staff)
        .get("/api/metrics?from=2026-06-01&to=2026-06-30&severity=High&category=facilities-issues")
        .json()
    )

    assert (body["from"], body["to"], body["severity"], body["category"]) == (
        "2026-06-01", "2026-06-30", "High", "facilities-issues",
    )  # fmt: skip
    assert [row["severity"] for row in body["by_severity"]] == ["High"]
    assert body["weekly"][0]["week_start"] == "2026-06-01"
    assert body["time_to_acknowledge"] == {"median_seconds": None, "p90_seconds": None, "count": 0}


def test_only_to_given_means_the_ninety_days_before_it(staff):
    body = api_client(staff).get("/api/metrics?to=2026-06-30").json()

    assert body["from"] == "2026-04-01"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-06-30&to=2026-06-01", "to"),
        ("from=2024-05-31&to=2026-06-01", "from"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("to=0001-01-01", "to"),
        ("to=9999-12-31", "to"),
        ("team=no-such-team", "team"),
        ("team=facilities&team=nope", "team"),
        ("category=no-such-category", "category"),
        ("severity=Apocalyptic", "severity"),
        ("severity=%00", "severity"),
    ],
)
def test_a_bad_query_is_a_400_naming_the_field(staff, facilities, query, field):
    response = api_client(staff).get(f"/api/metrics?{query}")

    assert response.status_code == 400
    body = response.json()
    assert field in body
    assert body["error"].startswith("Invalid input")


def test_two_years_exactly_is_allowed(staff):
    response = api_client(staff).get("/api/metrics?from=2024-06-01&to=2026-06-01")

    assert response.status_code == 200
    weeks = response.json()["weekly"]
    assert (weeks[0]["week_start"], weeks[-1]["week_start"], len(weeks)) == ("2024-05-27", "2026-06-01", 106)


def test_the_oldest_open_link_to_their_pages(reporter, staff, facilities):
    incident = make_incident(reporter, title="Boiler", category=category_of(facilities))

    row = api_client(staff).get("/api/metrics").json()["oldest_open"][0]

    assert row["incident_id"] == str(incident.incident_id)
    assert row["url"].endswith(incident.get_absolute_url())
    assert row["reported_at"] == timezone.localtime(incident.created_at).isoformat()
    assert "reporter" not in row


def test_the_schema_describes_the_metrics(db):
    schema = json.loads(api_client(None).get("/api/schema?format=json").content)
    operation = schema["paths"]["/api/metrics"]["get"]
    properties = schema["components"]["schemas"]["Metrics"]["properties"]

    assert {p["name"] for p in operation["parameters"]} >= {"from", "to", "team", "category", "severity"}
    assert set(operation["responses"]) >= {"200", "400", "401", "403"}
    assert set(properties) == KEYS
    assert properties["time_to_acknowledge"]["$ref"].endswith("/DurationPercentiles")


def test_a_member_of_a_team_that_sees_everything_gets_every_team_by_default(reporter, sue, security, facilities):
    make_incident(reporter, category=category_of(facilities))

    body = api_client(sue).get("/api/metrics").json()

    assert body["teams"] == []
    assert body["reported"] == 1
