"""Attachments as people use them (issue #15): a reporter on a phone attaches the photo of
the leaking pipe, sees its thumbnail on the timeline and opens it."""

import hashlib
import re

import pytest
from playwright.sync_api import expect

from incidents.models import Attachment, Incident
from incidents.tests import samples

from . import PHONE, requires_chromium
from .test_journeys import label, sign_in, timeline

pytestmark = [pytest.mark.e2e, requires_chromium]


def test_report_with_a_photo_on_a_phone_see_the_thumbnail_and_open_it(open_page, browser_log, make_user, password):
    make_user("alice")
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    photo = samples.image("JPEG", size=(800, 600), gps=True)

    sign_in(page, "alice", password)
    page.goto("/incidents/new/")
    page.get_by_label(label("Title")).fill("Leaking pipe in the basement")
    page.get_by_label(label("Description")).fill("Water on the floor by the boiler.")
    picker = page.get_by_label(label("Photos or files (optional)"))
    assert picker.get_attribute("capture") is None  # the phone offers camera and gallery
    picker.set_input_files([{"name": "pipe.jpg", "mimeType": "image/jpeg", "buffer": photo}])
    page.get_by_role("button", name="Report incident").click()

    expect(page.get_by_role("heading", name="Leaking pipe in the basement")).to_be_visible()
    entry = timeline(page).filter(has_text="attached")
    expect(entry).to_contain_text("alice attached pipe.jpg")
    thumbnail = entry.get_by_role("img", name="pipe.jpg")
    expect(thumbnail).to_be_visible()
    # Visible is not loaded: wait for the image's bytes (slow on a busy machine), then check them.
    thumbnail.evaluate("img => img.complete || new Promise(done => img.addEventListener('load', done, {once: true}))")
    assert thumbnail.evaluate("img => img.naturalWidth") == 320
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    with page.expect_response(re.compile(r"/attachments/\d+/file$")) as opened:
        thumbnail.tap()
    served = opened.value
    assert served.status == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["content-security-policy"] == "sandbox; default-src 'none'"
    attachment = Attachment.objects.get(incident=Incident.objects.get())
    assert hashlib.sha256(served.body()).hexdigest() == attachment.sha256
    assert b"PhoneMaker" not in served.body()  # no camera or GPS data left in it
    # The photo is shown, full size, in Chromium's own image viewer...
    expect(page.locator("img")).to_have_count(1)
    assert page.evaluate("document.images[0].complete && document.images[0].naturalWidth") == 800
    # ...whose inline style and script the file's `sandbox; default-src 'none'` refuses, as it
    # should: that policy is the point (an uploaded file can run nothing). Those refusals, on
    # that one URL, are the only console errors allowed.
    refused_by_the_sandbox = ("Content Security Policy directive 'default-src 'none''", "frame is sandboxed")
    browser_log.problems = [
        problem
        for problem in browser_log.problems
        if not (served.url in problem and any(text in problem for text in refused_by_the_sandbox))
    ]
    browser_log.assert_clean()


def test_a_refused_file_on_the_report_form_keeps_what_was_typed(open_page, browser_log, make_user, password):
    make_user("alice")
    page = open_page()
    browser_log.expect_status(400, "/incidents/new/")

    sign_in(page, "alice", password)
    page.goto("/incidents/new/")
    page.get_by_label(label("Title")).fill("Strange attachment")
    page.get_by_label(label("Description")).fill("It came by mail.")
    page.get_by_label(label("Photos or files (optional)")).set_input_files(
        [{"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": b"<html><script>alert(1)</script></html>"}]
    )
    page.get_by_role("button", name="Report incident").click()

    expect(page.get_by_text("is not a file IRMS accepts")).to_be_visible()
    expect(page.get_by_label(label("Title"))).to_have_value("Strange attachment")
    expect(page.get_by_label(label("Description"))).to_have_value("It came by mail.")
    assert not Incident.objects.exists()
    browser_log.assert_clean()
