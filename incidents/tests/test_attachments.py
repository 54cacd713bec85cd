"""incidents/attachments.py and uploads.py: what a file must be to be kept, and what is kept
of it. Real small files of every kind (incidents/tests/samples.py)."""

import hashlib
import io

import pytest
from PIL import ExifTags, Image

from incidents import attachments
from incidents.attachments import AttachmentTooLarge, UnsupportedAttachment
from incidents.uploads import LimitedTemporaryFileUploadHandler

from . import samples

ALLOWED = samples.allowed()
REFUSED = samples.refused()


@pytest.mark.parametrize("name", list(ALLOWED))
def test_each_allowed_type_is_kept_as_what_its_content_is(name):
    # given: the client claims nothing useful about it
    content, stored_type = ALLOWED[name]

    # when
    prepared = attachments.prepare(samples.upload(name, content, "application/octet-stream"))

    # then
    assert prepared.content_type == stored_type
    assert prepared.sha256 == hashlib.sha256(prepared.content).hexdigest()
    assert prepared.size == len(prepared.content) > 0
    assert (prepared.thumbnail is not None) == stored_type.startswith("image/")


@pytest.mark.parametrize("name", list(REFUSED))
def test_markup_scripts_executables_and_polyglots_are_refused_whatever_their_name(name):
    # given: each named and labelled as something harmless
    upload = samples.upload(name, REFUSED[name], "image/jpeg")

    # when, then
    with pytest.raises(UnsupportedAttachment) as refused:
        attachments.prepare(upload)
    assert "file" in refused.value.message_dict


def test_an_svg_is_refused_even_when_listed_in_attachment_types(settings):
    # given
    settings.ATTACHMENT_TYPES = [*settings.ATTACHMENT_TYPES, "image/svg+xml", "text/html"]

    # when, then
    with pytest.raises(UnsupportedAttachment):
        attachments.prepare(samples.upload("logo.svg", REFUSED["logo.svg"]))
    with pytest.raises(UnsupportedAttachment):
        attachments.prepare(samples.upload("photo.jpg", REFUSED["photo.jpg"]))
    assert "image/svg+xml" not in attachments.accept_attribute()


def test_a_type_taken_off_attachment_types_is_refused(settings):
    # given
    settings.ATTACHMENT_TYPES = ["image/jpeg"]

    # when, then
    with pytest.raises(UnsupportedAttachment):
        attachments.prepare(samples.upload("phish.pdf", samples.PDF))
    assert attachments.accept_attribute() == "image/jpeg,.jpg,.jpeg"


def test_gps_exif_and_xmp_are_removed_and_orientation_applied():
    # given: a 64x48 photo, rotated 90° by its EXIF, with GPS, a camera make and XMP
    original = samples.image("JPEG", gps=True, orientation=6)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    # when
    prepared = attachments.prepare(samples.upload("pipe.jpg", original))

    # then
    kept = Image.open(io.BytesIO(prepared.content))
    assert kept.size == (48, 64)  # turned upright
    assert dict(kept.getexif()) == {}
    assert kept.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert "xmp" not in kept.info and "exif" not in kept.info
    assert b"Paris" not in prepared.content and b"PhoneMaker" not in prepared.content


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_exif_is_removed_from_other_image_types(fmt):
    # when
    prepared = attachments.prepare(samples.upload("x", samples.image(fmt, gps=True)))

    # then
    kept = Image.open(io.BytesIO(prepared.content))
    assert dict(kept.getexif()) == {}
    assert b"PhoneMaker" not in prepared.content


def test_an_animated_gif_keeps_its_frames_and_loses_its_comment():
    # when
    prepared = attachments.prepare(samples.upload("anim.gif", samples.animated_gif()))

    # then
    kept = Image.open(io.BytesIO(prepared.content))
    assert kept.n_frames == 3
    assert "comment" not in kept.info


def test_metadata_is_kept_when_stripping_is_off(settings):
    # given
    settings.ATTACHMENT_STRIP_METADATA = False
    original = samples.image("JPEG", gps=True)

    # when
    prepared = attachments.prepare(samples.upload("pipe.jpg", original))

    # then
    assert prepared.content == original


def test_heic_becomes_jpeg_without_metadata():
    # when
    prepared = attachments.prepare(samples.upload("IMG_0001.HEIC", samples.image("HEIF")))

    # then
    assert prepared.content_type == "image/jpeg"
    assert prepared.filename == "IMG_0001.jpg"
    assert Image.open(io.BytesIO(prepared.content)).format == "JPEG"


def test_a_thumbnail_is_a_small_webp():
    # when
    prepared = attachments.prepare(samples.upload("big.png", samples.image("PNG", size=(1600, 1200))))

    # then
    thumbnail = Image.open(io.BytesIO(prepared.thumbnail))
    assert thumbnail.format == "WEBP"
    assert max(thumbnail.size) == 320


def test_a_decompression_bomb_is_refused(monkeypatch):
    # given: Pillow's limit lowered so a small file stands for a huge one
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)

    # when, then
    with pytest.raises(UnsupportedAttachment) as refused:
        attachments.prepare(samples.upload("bomb.png", samples.image("PNG", size=(40, 40))))
    assert refused.value.error_dict["file"][0].code == "too_many_pixels"


def test_a_file_over_the_limit_is_refused_as_too_large(settings):
    # given
    settings.ATTACHMENT_MAX_BYTES = 100

    # when, then
    with pytest.raises(AttachmentTooLarge):
        attachments.prepare(samples.upload("auth.log", samples.TEXT))


def test_an_empty_file_is_refused():
    with pytest.raises(attachments.ValidationError) as refused:
        attachments.prepare(samples.upload("empty.txt", b""))
    assert refused.value.error_dict["file"][0].code == "empty"


@pytest.mark.parametrize(
    ("uploaded", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
        ("/var/www/html/index.html", "index.html"),
        ("...", "attachment"),
        ("", "attachment"),
        (".htaccess", "htaccess"),
        ("photo\x00.jpg", "photo.jpg"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),  # no right-to-left override
        ("line\r\nbreak.txt", "linebreak.txt"),
        ("Grüße aus Köln.jpg", "Grüße aus Köln.jpg"),
        ("Gru\u0308ße.jpg", "Grüße.jpg"),  # NFC
        ("写真 2026.jpg", "写真 2026.jpg"),
        ('say "hi".txt', 'say "hi".txt'),
        ("a" * 300 + ".jpeg", "a" * 145 + ".jpeg"),
    ],
)
def test_display_name_keeps_no_folders_and_no_control_characters(uploaded, shown):
    assert attachments.display_name(uploaded) == shown


def test_the_upload_handler_writes_no_further_than_the_limit(settings, rf):
    # given
    settings.ATTACHMENT_MAX_BYTES = 10
    handler = LimitedTemporaryFileUploadHandler(rf.post("/"))
    handler.new_file("file", "big.txt", "text/plain", 100)

    # when
    for start in range(0, 100, 7):
        handler.receive_data_chunk(b"x" * 7, start)
    uploaded = handler.file_complete(105)

    # then: the size sent is known, only one byte past the limit is on disk
    assert uploaded.size == 105
    uploaded.seek(0)
    assert len(uploaded.read()) == 11
