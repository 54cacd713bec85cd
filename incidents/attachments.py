"""What an uploaded file must be to become an attachment, and what is stored of it.

The type is decided from the bytes by libmagic (python-magic), never from the file's name
or the client's Content-Type. Images must decode wholly with Pillow as the type libmagic
found (a script wearing a JPEG header does not), within Pillow's decompression-bomb limit;
they are re-encoded without EXIF, GPS or XMP, orientation applied, unless
ATTACHMENT_STRIP_METADATA is off, and get a WebP thumbnail. HEIC/HEIF photos are stored as
JPEG so every browser can show them. Nothing here writes anywhere: the services store.
"""

import hashlib
import io
import os
import unicodedata
import warnings
from dataclasses import dataclass

import magic
import pillow_heif
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from PIL import Image, ImageOps

pillow_heif.register_heif_opener()

# Refused whatever ATTACHMENT_TYPES says: what a browser might run or render as a page.
NEVER = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "text/x-shellscript",
        "text/x-script.python",
        "text/x-php",
        "application/x-executable",
        "application/x-sharedlib",
        "application/x-dosexec",
        "application/x-mach-binary",
        "application/java-archive",
        "application/x-msdownload",
    }
)
# libmagic's type -> Pillow's format name.
IMAGE_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
    "image/heic": "HEIF",
    "image/heif": "HEIF",
}
# Stored as JPEG: browsers cannot show HEIC.
CONVERTED_TO_JPEG = frozenset({"image/heic", "image/heif"})
# Shown in the browser's viewer (Content-Disposition: inline); everything else downloads.
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "application/pdf"})
# Pillow metadata kept on re-encoding: how to draw the image, nothing about who or where.
DRAWING_INFO = ("transparency", "duration", "loop", "background")
THUMBNAIL_BOX = (320, 320)
THUMBNAIL_TYPE = "image/webp"
# What the file input offers (MIME types, and extensions for pickers that ignore them).
ACCEPT_EXTENSIONS = {
    "image/jpeg": ".jpg,.jpeg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "application/pdf": ".pdf",
    "text/plain": ".txt,.log",
    "text/csv": ".csv",
    "message/rfc822": ".eml",
}


class AttachmentTooLarge(ValidationError):
    """A file over ATTACHMENT_MAX_BYTES (the API answers 413)."""


class UnsupportedAttachment(ValidationError):
    """A file whose content is not of an allowed type (the API answers 415)."""


@dataclass(frozen=True)
class Prepared:
    """An accepted file, as it will be stored."""

    filename: str
    content: bytes
    content_type: str
    sha256: str
    thumbnail: bytes | None

    @property
    def size(self) -> int:
        return len(self.content)


def allowed_types() -> list[str]:
    return [t for t in settings.ATTACHMENT_TYPES if t not in NEVER]


def accept_attribute() -> str:
    """The file input's `accept`: the allowed types and their usual extensions."""
    kinds = allowed_types()
    return ",".join(kinds + [ACCEPT_EXTENSIONS[kind] for kind in kinds if kind in ACCEPT_EXTENSIONS])


def display_name(name: str) -> str:
    """The uploaded name made safe to show and to put in Content-Disposition: no folders
    (`../../etc/passwd` is `passwd`), no control or format characters (no right-to-left
    override), NFC, at most 150 characters with the extension kept; `attachment` if
    nothing is left."""
    name = unicodedata.normalize("NFC", str(name or ""))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = " ".join(name.split()).strip(" .")
    if len(name) > 150:
        stem, ext = os.path.splitext(name)
        name = stem[: 150 - len(ext[:20])] + ext[:20]
    return name or "attachment"


def _refusal(kind: type[ValidationError], field: str, message: str, code: str) -> ValidationError:
    return kind({field: ValidationError(message, code=code)})


def describe_limit() -> str:
    return filesizeformat(settings.ATTACHMENT_MAX_BYTES)


def check_size(upload, *, field: str) -> None:
    name = display_name(getattr(upload, "name", ""))
    if upload.size > settings.ATTACHMENT_MAX_BYTES:
        raise _refusal(AttachmentTooLarge, field, f"“{name}” is larger than {describe_limit()}.", "too_large")
    if upload.size == 0:
        raise _refusal(ValidationError, field, f"“{name}” is empty.", "empty")


def prepare(upload, *, field: str = "file") -> Prepared:
    """Check one uploaded file and make what will be stored of it, or raise
    `AttachmentTooLarge`, `UnsupportedAttachment` or `ValidationError` (empty) naming `field`."""
    check_size(upload, field=field)
    name = display_name(upload.name)
    upload.seek(0)
    data = upload.read()
    content_type = magic.from_buffer(data, mime=True)
    if content_type in NEVER or content_type not in allowed_types():
        raise _refusal(
            UnsupportedAttachment,
            field,
            f"“{name}” is not a file IRMS accepts ({content_type}): send a photo, a PDF, text, CSV or a mail.",
            "unsupported",
        )
    thumbnail = None
    if content_type in IMAGE_FORMATS:
        data, content_type, thumbnail = _image(data, content_type, name=name, field=field)
        if content_type == "image/jpeg" and not name.lower().endswith((".jpg", ".jpeg")):
            name = display_name(os.path.splitext(name)[0] + ".jpg")
    return Prepared(
        filename=name,
        content=data,
        content_type=content_type,
        sha256=hashlib.sha256(data).hexdigest(),
        thumbnail=thumbnail,
    )


def _image(data: bytes, content_type: str, *, name: str, field: str) -> tuple[bytes, str, bytes]:
    """(bytes to store, their type, a thumbnail) for an image, or UnsupportedAttachment."""
    try:
        with warnings.catch_warnings():
            # Over Image.MAX_IMAGE_PIXELS is a warning in Pillow; here it is a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format != IMAGE_FORMATS[content_type]:
                raise ValueError(f"{image.format} inside {content_type}")
            image.load()
            frames = getattr(image, "n_frames", 1)
            if content_type in CONVERTED_TO_JPEG or settings.ATTACHMENT_STRIP_METADATA:
                data, content_type = _reencode(image, content_type, frames)
            thumbnail = _thumbnail(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refusal(UnsupportedAttachment, field, f"“{name}” has too many pixels.", "too_many_pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError, TypeError):
        raise _refusal(UnsupportedAttachment, field, f"“{name}” is not a readable image.", "broken_image") from None
    return data, content_type, thumbnail


def _reencode(image, content_type: str, frames: int) -> tuple[bytes, str]:
    """The pixels alone: orientation applied, every metadata block left behind."""
    out = io.BytesIO()
    keep = {key: image.info[key] for key in DRAWING_INFO if key in image.info}
    if frames > 1:  # animated GIF or WebP: every frame, no orientation to apply
        image.info = keep
        image.save(out, format=image.format, save_all=True, exif=b"")
        return out.getvalue(), content_type
    upright = ImageOps.exif_transpose(image)
    clean = Image.new(upright.mode, upright.size)
    clean.paste(upright)
    if upright.mode == "P":
        clean.putpalette(upright.getpalette())
    clean.info = keep
    if content_type in CONVERTED_TO_JPEG or content_type == "image/jpeg":
        clean = clean.convert("RGB") if clean.mode not in ("RGB", "L") else clean
        clean.save(out, format="JPEG", quality=90)
        return out.getvalue(), "image/jpeg"
    clean.save(out, format=IMAGE_FORMATS[content_type], **({"lossless": True} if content_type == "image/webp" else {}))
    return out.getvalue(), content_type


def _thumbnail(image) -> bytes:
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    small = ImageOps.exif_transpose(image).copy()
    small = small.convert("RGBA") if small.mode in ("P", "LA", "PA") else small
    small = small.convert("RGB") if small.mode not in ("RGB", "RGBA", "L") else small
    small.thumbnail(THUMBNAIL_BOX)
    out = io.BytesIO()
    small.save(out, format="WEBP", quality=80)
    return out.getvalue()
