"""manage.py prune_attachments: the files a killed process left without a row go; every
file a row names, and any young file (its upload may be committing), stays."""

import os
import time
from io import StringIO

from django.core.files.base import ContentFile
from django.core.management import call_command

from incidents import services
from incidents.models import attachment_storage

from . import samples
from .factories import make_incident


def age(name: str, minutes: int) -> None:
    path = attachment_storage().path(name)
    then = time.time() - minutes * 60
    os.utime(path, (then, then))


def test_old_orphans_go_and_everything_else_stays(reporter):
    # given: a kept photo (file and thumbnail, both old), an old orphan and a young one
    incident = make_incident(reporter)
    kept = services.add_attachment(
        incident=incident, uploader=reporter, file=samples.upload("pipe.jpg", samples.image("JPEG"))
    )
    storage = attachment_storage()
    orphan = storage.save("attachments/orphan-old", ContentFile(b"left by a killed worker"))
    young = storage.save("attachments/orphan-young", ContentFile(b"still committing"))
    for name in (kept.file.name, kept.thumbnail.name, orphan):
        age(name, 120)
    out = StringIO()

    # when
    call_command("prune_attachments", stdout=out)

    # then
    assert not storage.exists(orphan)
    assert storage.exists(young) and storage.exists(kept.file.name) and storage.exists(kept.thumbnail.name)
    assert f"deleted {orphan}" in out.getvalue()
    storage.delete(young)


def test_a_dry_run_deletes_nothing(reporter):
    # given
    storage = attachment_storage()
    orphan = storage.save("attachments/orphan-dry", ContentFile(b"x"))
    age(orphan, 120)
    out = StringIO()

    # when
    call_command("prune_attachments", "--dry-run", stdout=out)

    # then
    assert storage.exists(orphan)
    assert f"would delete {orphan}" in out.getvalue()
    storage.delete(orphan)
