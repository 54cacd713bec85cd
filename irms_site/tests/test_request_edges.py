"""Requests Django refuses before any view runs still get the API's JSON error (or the
site's page), and a chunked body is refused clearly instead of being read as empty."""

import pytest

from incidents.models import Incident
from incidents.tests.factories import api_client


@pytest.mark.parametrize("path", ["/api/incidents", "/api/publicIncidents", "/api/schema"])
def test_too_many_query_parameters_is_a_json_400_under_the_api(reporter, path):
    # given
    query = "&".join(f"p{n}=1" for n in range(250))

    # when
    response = api_client(reporter).get(f"{path}?{query}")

    # then
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


def test_too_many_query_parameters_is_the_400_page_on_the_site(client, reporter):
    # given
    client.force_login(reporter)
    query = "&".join(f"p{n}=1" for n in range(250))

    # when
    response = client.get(f"/incidents/?{query}")

    # then
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_a_chunked_json_body_is_refused_with_411_and_nothing_is_created(reporter):
    # given: what a WSGI server hands Django for a chunked body: no Content-Length
    client = api_client(reporter)

    # when
    response = client.generic(
        "POST",
        "/api/incidents",
        b'{"title": "Gas leak", "description": "Smell."}',
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",
    )

    # then
    assert response.status_code == 411
    assert "Content-Length" in response.json()["error"]
    assert not Incident.objects.exists()


def test_a_body_with_a_length_is_read_as_usual(reporter):
    response = api_client(reporter).post(
        "/api/incidents", {"title": "Gas leak", "description": "Smell."}, format="json"
    )
    assert response.status_code == 201
