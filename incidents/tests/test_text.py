"""Single-line and multi-line text rules, applied by the services to every path."""

import pytest
from django.core.exceptions import ValidationError

from incidents import services, text
from incidents.models import Incident, Response

from .factories import api_client, make_incident


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Gas leak\r\nsecond floor", "Gas leak second floor"),
        ("  tabs\tand\x0bvertical\x0cfeeds  ", "tabs and vertical feeds"),
        ("unicode\u2028line\u2029separators\x85next", "unicode line separators next"),
        ("file\x1cgroup\x1dunit\x1erecord\x1fseparators", "file group unit record separators"),
        ("Gaz à l’étage", "Gaz à l’étage"),
    ],
)
def test_single_line_text_collapses_every_whitespace_run(given, stored):
    assert text.single_line(given, field="title") == stored


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x1b", "\x7f", "\x9b"])
def test_single_line_text_refuses_other_control_characters(control):
    with pytest.raises(ValidationError) as error:
        text.single_line(f"Gas{control}leak", field="title")
    assert "title" in error.value.message_dict


def test_multiline_text_keeps_line_breaks_and_tabs():
    assert text.multiline("line one\r\nline two\n\tindented", field="description") == (
        "line one\r\nline two\n\tindented"
    )


@pytest.mark.parametrize("control", ["\x00", "\x08", "\x1b", "\x7f", "\x0b"])
def test_multiline_text_refuses_nul_and_other_controls(control):
    with pytest.raises(ValidationError) as error:
        text.multiline(f"one{control}two", field="description")
    assert "description" in error.value.message_dict


def test_a_title_with_crlf_reported_through_the_api_is_stored_as_one_line(reporter):
    # when
    response = api_client(reporter).post(
        "/api/incidents", {"title": "Gas leak\r\nBcc: victim@example.org", "description": "Smell."}, format="json"
    )

    # then
    assert response.status_code == 201
    assert response.json()["title"] == "Gas leak Bcc: victim@example.org"
    assert Incident.objects.get().title == "Gas leak Bcc: victim@example.org"


def test_a_title_with_a_control_character_is_refused_by_the_api_and_nothing_is_stored(reporter):
    # when
    response = api_client(reporter).post(
        "/api/incidents", {"title": "Gas\x1b[31m leak", "description": "Smell."}, format="json"
    )

    # then
    assert response.status_code == 400
    assert "title" in response.json()
    assert not Incident.objects.exists()


def test_a_patched_title_is_one_line_too(reporter):
    # given
    incident = make_incident(reporter)

    # when
    response = api_client(reporter).patch(
        f"/api/incidents/{incident.incident_id}", {"title": "New\ntitle"}, format="json"
    )

    # then
    assert response.status_code == 200
    incident.refresh_from_db()
    assert incident.title == "New title"


@pytest.mark.parametrize("control", ["\x00", "\x1b"])
def test_a_description_with_a_control_character_is_refused_on_the_web_form(client, reporter, control):
    # given
    client.force_login(reporter)

    # when
    response = client.post(
        "/incidents/new/", {"title": "Gas leak", "description": f"Smell{control} here", "severity": "Medium"}
    )

    # then
    assert response.status_code == 400
    assert not Incident.objects.exists()
    form = response.context["form"]
    assert "description" in form.errors
    assert form["title"].value() == "Gas leak"  # nothing typed is lost


def test_a_response_with_a_control_character_is_refused(reporter):
    # given
    incident = make_incident(reporter)

    # when
    with pytest.raises(ValidationError):
        services.add_response(incident=incident, author=reporter, description="bell\x07")

    # then
    assert not Response.objects.exists()
