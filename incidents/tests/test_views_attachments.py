"""The report and respond forms with files, and the timeline that shows them."""

import re
from pathlib import Path

from django.conf import settings

from incidents.models import Attachment, Incident, Response

from . import samples
from .factories import category_of, make_incident


def stored_files() -> set[str]:
    return {str(path) for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()}


def test_the_report_form_offers_the_camera_and_the_gallery(client, reporter):
    # given
    client.force_login(reporter)

    # when
    page = client.get("/incidents/new/").content.decode()

    # then
    assert 'enctype="multipart/form-data"' in page
    field = re.search(r"<input[^>]*type=\"file\"[^>]*>", page).group(0)
    assert "multiple" in field
    assert 'accept="image/jpeg,image/png,image/webp,image/gif,image/heic,image/heif,application/pdf,' in field
    assert "capture" not in field


def test_report_with_a_photo_then_see_its_thumbnail(client, reporter, team_a):
    # given
    client.force_login(reporter)
    data = {
        "category": category_of(team_a).pk,
        "title": "Leaking pipe",
        "description": "Basement, by the boiler.",
        "severity": "High",
        "files": [samples.upload("pipe.jpg", samples.image("JPEG", gps=True)), samples.upload("a.log", samples.TEXT)],
    }

    # when
    response = client.post("/incidents/new/", data)

    # then
    assert response.status_code == 302
    incident = Incident.objects.get()
    photo, log = incident.attachments.order_by("pk")
    page = client.get(response["Location"]).content.decode()
    assert "attached" in page
    assert f'href="{photo.get_absolute_url()}">pipe.jpg</a>' in page
    assert f'src="{photo.get_thumbnail_url()}"' in page
    assert f'href="{log.get_absolute_url()}">a.log</a>' in page
    assert client.get(photo.get_thumbnail_url()).status_code == 200


def test_a_refused_file_keeps_everything_typed(client, reporter, team_a):
    # given
    client.force_login(reporter)
    before = stored_files()
    data = {
        "category": category_of(team_a).pk,
        "title": "Leaking pipe",
        "description": "Basement, by the boiler.",
        "severity": "High",
        "files": [samples.upload("pipe.jpg", samples.image("JPEG")), samples.upload("x.jpg", b"<html>hi</html>")],
    }

    # when
    response = client.post("/incidents/new/", data)

    # then
    assert response.status_code == 400
    page = response.content.decode()
    assert "is not a file IRMS accepts" in page
    assert 'value="Leaking pipe"' in page
    assert "Basement, by the boiler." in page
    assert not Incident.objects.exists()
    assert stored_files() == before


def test_a_file_over_the_limit_is_a_form_error(settings, client, reporter):
    # given
    settings.ATTACHMENT_MAX_BYTES = 100
    incident = make_incident(reporter)
    client.force_login(reporter)

    # when
    response = client.post(
        f"/incidents/{incident.incident_id}/respond/",
        {"description": "The log.", "files": samples.upload("auth.log", samples.TEXT)},
    )

    # then
    assert response.status_code == 400
    assert "larger than" in response.content.decode()
    assert "The log." in response.content.decode()
    assert not Response.objects.exists()


def test_respond_with_files(client, reporter, other):
    # given
    incident = make_incident(reporter)
    client.force_login(other)

    # when
    response = client.post(
        f"/incidents/{incident.incident_id}/respond/",
        {"description": "Two photos.", "files": [samples.upload(f"p{n}.png", samples.image("PNG")) for n in (1, 2)]},
    )

    # then
    assert response.status_code == 302
    written = Response.objects.get()
    assert [a.filename for a in written.attachments.order_by("pk")] == ["p1.png", "p2.png"]
    assert Attachment.objects.filter(uploaded_by=other).count() == 2


def test_the_media_folder_is_not_served(client, reporter):
    # given
    incident = make_incident(reporter)
    client.force_login(reporter)
    client.post(
        f"/incidents/{incident.incident_id}/respond/",
        {"description": "Photo.", "files": samples.upload("p.png", samples.image("PNG"))},
    )
    name = Attachment.objects.get().file.name

    # when
    response = client.get(f"/media/{name}")

    # then
    assert response.status_code == 404
