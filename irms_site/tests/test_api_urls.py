"""/api/ as irms_site/api_urls.py mounts it (the token endpoint, the incident API's routes
from incidents/api/urls.py, the schema and its docs): every path answers with and without a
trailing slash, as the original clients call them without one, and a method a path does not
offer is a JSON 405 that changes nothing."""

import pytest

from incidents.tests.factories import api_client, make_incident, stored

PASSWORD = "correct-horse-battery-42"  # the root conftest's password for every user


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
