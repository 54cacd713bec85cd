"""POST/GET /api/incidents/<id>/attachments and the download view: what is kept, what is
refused (413, 415, 403, 404, 409), and what a download looks like. Who may do each is the
authorization matrix's (irms_site/tests/test_authorization_matrix.py)."""

import hashlib
from pathlib import Path

import pytest
from django.conf import settings

from incidents import services
from incidents.models import Attachment, EventKind, IncidentEvent, Status

from . import samples
from .factories import advance_to, api_client

ATTACHMENT_KEYS = {
    "id",
    "filename",
    "content_type",
    "size",
    "sha256",
    "url",
    "thumbnail_url",
    "uploaded_by",
    "created_at",
    "response_id",
}


def url(incident) -> str:
    return f"/api/incidents/{incident.incident_id}/attachments"


def upload(client, incident, name, content, **fields):
    return client.post(url(incident), {"file": samples.upload(name, content), **fields}, format="multipart")


def stored_files() -> set[str]:
    return {str(path) for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()}


def download(client, link: str):
    response = client.get(link)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


@pytest.mark.parametrize("name", list(samples.allowed()))
def test_each_allowed_type_round_trips_with_its_sha256(reporter, public_incident, name):
    # given
    content, stored_type = samples.allowed()[name]
    client = api_client(reporter)

    # when
    response = upload(client, public_incident, name, content)

    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == ATTACHMENT_KEYS
    assert body["content_type"] == stored_type
    assert body["uploaded_by"] == "alice"
    assert body["response_id"] is None
    assert body["created_at"].endswith("+00:00")
    served, data = download(client, body["url"])
    assert served.status_code == 200
    assert served["Content-Type"] == stored_type
    assert hashlib.sha256(data).hexdigest() == body["sha256"]
    assert len(data) == body["size"]
    assert (body["thumbnail_url"] is None) != stored_type.startswith("image/")


def test_a_download_cannot_be_run_or_sniffed_by_the_browser(reporter, public_incident):
    # given
    client = api_client(reporter)
    text = upload(client, public_incident, "auth.log", samples.TEXT).json()
    photo = upload(client, public_incident, "pipe.jpg", samples.image("JPEG")).json()

    # when
    as_file, _ = download(client, text["url"])
    as_image, _ = download(client, photo["url"])

    # then
    for served in (as_file, as_image):
        assert served["X-Content-Type-Options"] == "nosniff"
        assert served["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert as_file["Content-Disposition"] == 'attachment; filename="auth.log"'
    assert as_image["Content-Disposition"] == 'inline; filename="pipe.jpg"'


def test_a_unicode_or_traversing_filename_is_sanitised_for_content_disposition(reporter, public_incident):
    # given
    client = api_client(reporter)

    # when
    traversing = upload(client, public_incident, "../../../etc/passwd.txt", samples.TEXT).json()
    unicode = upload(client, public_incident, "Grüße\u202e.txt", samples.TEXT).json()

    # then
    assert traversing["filename"] == "passwd.txt"
    assert unicode["filename"] == "Grüße.txt"
    served, _ = download(client, unicode["url"])
    assert served["Content-Disposition"] == "attachment; filename*=utf-8''Gr%C3%BC%C3%9Fe.txt"
    stored = Attachment.objects.get(pk=traversing["id"]).file.name
    assert "passwd" not in stored and stored.startswith("attachments/")


def test_a_thumbnail_is_served_for_images_only(reporter, public_incident):
    # given
    client = api_client(reporter)
    photo = upload(client, public_incident, "pipe.png", samples.image("PNG")).json()
    text = upload(client, public_incident, "auth.log", samples.TEXT).json()

    # when
    served, data = download(client, photo["thumbnail_url"])
    missing = client.get(text["url"].replace("/file", "/thumbnail"))

    # then
    assert served.status_code == 200
    assert served["Content-Type"] == "image/webp"
    assert served["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert data.startswith(b"RIFF")
    assert missing.status_code == 404


def test_the_list_is_a_bare_array_oldest_first(reporter, other, public_incident):
    # given
    upload(api_client(reporter), public_incident, "first.txt", samples.TEXT)
    upload(api_client(other), public_incident, "second.csv", samples.CSV)

    # when
    response = api_client(other).get(url(public_incident))

    # then
    assert response.status_code == 200
    assert [item["filename"] for item in response.json()] == ["first.txt", "second.csv"]
    assert [item["uploaded_by"] for item in response.json()] == ["alice", "bob"]


def test_an_html_page_named_photo_jpg_is_a_415_and_nothing_is_kept(reporter, public_incident):
    # given
    before = stored_files()

    # when
    response = upload(api_client(reporter), public_incident, "photo.jpg", samples.refused()["photo.jpg"])

    # then
    assert response.status_code == 415
    assert "file" in response.json() and response.json()["error"]
    assert not Attachment.objects.exists()
    assert stored_files() == before


def test_a_file_over_the_limit_is_a_413(settings, reporter, public_incident):
    # given
    settings.ATTACHMENT_MAX_BYTES = 1000
    before = stored_files()

    # when
    response = upload(api_client(reporter), public_incident, "big.txt", b"x" * 1001)

    # then
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]
    assert not Attachment.objects.exists()
    assert stored_files() == before


class Unreadable:
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


@pytest.mark.parametrize("path", ["/api/incidents/{id}/attachments", "/incidents/{id}/respond/", "/incidents/new/"])
def test_a_body_over_the_upload_limit_is_a_413_without_reading_it(reporter, public_incident, path):
    # given: a Content-Length over what the view takes, and a body that must not be read
    client = api_client(reporter, auth="session")
    length = settings.MAX_REQUEST_BODY_BYTES + 6 * (settings.ATTACHMENT_MAX_BYTES + 4096)

    # when
    response = client.generic(
        "POST",
        path.format(id=public_incident.incident_id),
        b"",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(length),
        **{"wsgi.input": Unreadable()},
    )

    # then
    assert response.status_code == 413
    assert "too large" in response.content.decode()
    assert not Attachment.objects.exists()


def test_an_upload_to_a_view_that_takes_none_is_still_refused(client, reporter, public_incident):
    # given
    client.force_login(reporter)

    # when
    response = client.post(
        f"/incidents/{public_incident.incident_id}/edit/",
        {"title": "x", "description": "y", "files": samples.upload("pipe.jpg", samples.image("JPEG"))},
    )

    # then
    assert response.status_code == 415


def test_a_closed_incident_takes_no_file(reporter, staff, public_incident):
    # given
    advance_to(public_incident, Status.CLOSED, by=staff)

    # when
    response = upload(api_client(reporter), public_incident, "late.txt", samples.TEXT)

    # then
    assert response.status_code == 409
    assert not Attachment.objects.exists()


def test_a_file_for_a_response_joins_it_and_the_responses_list(reporter, other, public_incident):
    # given
    mine = services.add_response(incident=public_incident, author=other, description="Log attached.")

    # when
    response = upload(api_client(other), public_incident, "auth.log", samples.TEXT, response_id=mine.pk)

    # then
    assert response.status_code == 201
    assert response.json()["response_id"] == mine.pk
    listed = api_client(reporter).get(f"/api/responses/{public_incident.incident_id}").json()["responses"]
    assert [item["filename"] for item in listed[0]["attachments"]] == ["auth.log"]


def test_a_file_for_someone_elses_response_is_a_403(reporter, other, public_incident):
    # given
    theirs = services.add_response(incident=public_incident, author=reporter, description="Mine.")

    # when
    response = upload(api_client(other), public_incident, "auth.log", samples.TEXT, response_id=theirs.pk)

    # then
    assert response.status_code == 403
    assert not Attachment.objects.exists()


def test_a_response_of_another_incident_is_a_400(reporter, public_incident, private_incident):
    # given
    elsewhere = services.add_response(incident=private_incident, author=reporter, description="Elsewhere.")

    # when
    response = upload(api_client(reporter), public_incident, "auth.log", samples.TEXT, response_id=elsewhere.pk)

    # then
    assert response.status_code == 400
    assert "response_id" in response.json()


def test_an_unknown_field_and_a_missing_file_are_400s(reporter, public_incident):
    # when
    unknown = upload(api_client(reporter), public_incident, "a.txt", samples.TEXT, colour="red")
    missing = api_client(reporter).post(url(public_incident), {"response_id": "1"}, format="multipart")

    # then
    assert unknown.status_code == 400 and "colour" in unknown.json()
    assert missing.status_code == 400 and "file" in missing.json()


def test_json_is_a_415(reporter, public_incident):
    # when
    response = api_client(reporter).post(url(public_incident), {"file": "x"}, format="json")

    # then
    assert response.status_code == 415


def test_an_idempotency_key_replays_the_first_upload(reporter, public_incident):
    # given
    client = api_client(reporter)
    client.credentials(HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"], HTTP_IDEMPOTENCY_KEY="up-1")

    # when
    first = upload(client, public_incident, "auth.log", samples.TEXT)
    again = upload(client, public_incident, "auth.log", samples.TEXT)
    other = upload(client, public_incident, "auth.log", samples.CSV)

    # then
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert Attachment.objects.count() == 1


def test_an_attachment_of_another_incident_is_a_404(reporter, public_incident, private_incident):
    # given
    client = api_client(reporter)
    theirs = upload(client, private_incident, "auth.log", samples.TEXT).json()

    # when
    crossed = client.get(f"{url(public_incident)}/{theirs['id']}/file")
    not_a_number = client.get(f"{url(public_incident)}/abc/file")

    # then
    assert crossed.status_code == 404
    assert not_a_number.status_code == 404


def test_incidents_carry_their_attachment_count(reporter, public_incident):
    # given
    client = api_client(reporter)
    upload(client, public_incident, "a.txt", samples.TEXT)
    upload(client, public_incident, "b.csv", samples.CSV)

    # when
    one = client.get(f"/api/incidents/{public_incident.incident_id}").json()
    listed = client.get("/api/incidents").json()

    # then
    assert one["attachment_count"] == 2
    assert listed[0]["attachment_count"] == 2


def test_an_upload_is_on_the_timeline(reporter, public_incident):
    # when
    body = upload(api_client(reporter), public_incident, "pipe.jpg", samples.image("JPEG")).json()

    # then
    event = IncidentEvent.objects.get(kind=EventKind.ATTACHED)
    assert (event.actor, event.new_value, event.attachment_id) == (reporter, "pipe.jpg", body["id"])


def test_each_uploader_attaches_at_most_the_limit_per_place(settings, reporter, public_incident):
    # given
    settings.ATTACHMENT_MAX_FILES = 2
    client = api_client(reporter)
    for name in ("a.txt", "b.txt"):
        upload(client, public_incident, name, samples.TEXT)

    # when
    response = upload(client, public_incident, "c.txt", samples.TEXT)

    # then
    assert response.status_code == 400
    assert Attachment.objects.count() == 2
