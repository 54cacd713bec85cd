"""services.py with files: a report or response with attachments is written whole or not
at all, stored files included; mail names the files and links to them, never carries them."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from incidents import services
from incidents.attachments import UnsupportedAttachment
from incidents.models import Attachment, EventKind, Incident, IncidentEvent, Response
from notifications.models import OutgoingEmail

from . import samples
from .factories import make_incident, response_team


def stored_files() -> set[str]:
    return {str(path) for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()}


def photos(count: int) -> list:
    return [samples.upload(f"photo{n}.jpg", samples.image("JPEG")) for n in range(count)]


def report(reporter, files):
    response_team()
    return services.report_incident(reporter=reporter, title="Leaking pipe", description="Basement.", files=files)


def test_a_report_keeps_its_files_with_their_events(reporter):
    # when
    incident = report(reporter, photos(2) + [samples.upload("auth.log", samples.TEXT)])

    # then
    kept = list(incident.attachments.order_by("pk"))
    assert [a.filename for a in kept] == ["photo0.jpg", "photo1.jpg", "auth.log"]
    assert all(a.uploaded_by == reporter and a.response is None for a in kept)
    assert [a.is_image for a in kept] == [True, True, False]
    events = IncidentEvent.objects.filter(incident=incident).order_by("pk").values_list("kind", flat=True)
    assert list(events) == [EventKind.REPORTED, EventKind.ATTACHED, EventKind.ATTACHED, EventKind.ATTACHED]


def test_a_refused_file_refuses_the_whole_report(reporter):
    # given
    before = stored_files()
    files = photos(2) + [samples.upload("photo.jpg", samples.refused()["photo.jpg"])]

    # when
    with pytest.raises(UnsupportedAttachment):
        report(reporter, files)

    # then
    assert not Incident.objects.exists()
    assert stored_files() == before


def test_a_report_that_fails_after_storing_files_leaves_none_behind(reporter, monkeypatch):
    # given: the database refuses the second attachment row, after two files were stored
    before = stored_files()
    save = Attachment.save
    calls = []

    def failing_save(self, *args, **kwargs):
        calls.append(self)
        if len(calls) == 2:
            raise RuntimeError("database gone")
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Attachment, "save", failing_save)

    # when
    with pytest.raises(RuntimeError):
        report(reporter, photos(2))

    # then: no incident, no row, and no orphan file (each photo had a file and a thumbnail)
    assert not Incident.objects.exists()
    assert not Attachment.objects.exists()
    assert stored_files() == before


def test_a_response_that_fails_after_storing_leaves_no_file(reporter, other, monkeypatch):
    # given
    incident = make_incident(reporter)
    before = stored_files()
    monkeypatch.setattr(services, "_record", lambda *events: (_ for _ in ()).throw(RuntimeError("boom")))

    # when
    with pytest.raises(RuntimeError):
        services.add_response(incident=incident, author=other, description="Photo.", files=photos(1))

    # then
    assert not Response.objects.exists()
    assert stored_files() == before


def test_too_many_files_are_refused_before_anything_is_written(settings, reporter):
    # given
    settings.ATTACHMENT_MAX_FILES = 2
    before = stored_files()

    # when
    with pytest.raises(ValidationError) as refused:
        report(reporter, photos(3))

    # then
    assert "files" in refused.value.message_dict
    assert not Incident.objects.exists()
    assert stored_files() == before


def test_a_response_keeps_its_files(reporter, other):
    # given
    incident = make_incident(reporter)

    # when
    response = services.add_response(incident=incident, author=other, description="See photo.", files=photos(1))

    # then
    assert [a.filename for a in response.attachments.all()] == ["photo0.jpg"]
    assert response.attachments.get().incident == incident


def test_mail_names_the_files_and_links_to_them_without_attaching_them(reporter, responder):
    # when
    incident = report(reporter, photos(1))

    # then: the team's alert and the reporter's confirmation list the photo with its link
    attachment = incident.attachments.get()
    link = f"http://testserver/api/incidents/{incident.incident_id}/attachments/{attachment.pk}/file"
    mails = OutgoingEmail.objects.filter(kind__in=["incident_alert", "incident_reported"])
    assert mails.count() == 2
    for mail in mails:
        assert f"photo0.jpg: {link}" in mail.body_text
        assert f'<a href="{link}">photo0.jpg</a>' in mail.body_html
        assert "Content-Disposition" not in mail.body_text


def test_mail_of_a_response_names_its_files(reporter, other):
    # given
    incident = make_incident(reporter)

    # when
    services.add_response(
        incident=incident, author=other, description="See log.", files=[samples.upload("auth.log", samples.TEXT)]
    )

    # then
    mail = OutgoingEmail.objects.get(kind="response_added")
    assert "auth.log: http://testserver/api/incidents/" in mail.body_text
