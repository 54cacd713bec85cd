"""Every page IRMS serves is valid HTML, by the Nu HTML Checker (npm's vnu-jar, run with
Debian's Java): each page is rendered as the person who would see it, written to a file,
and the checker reads them all in one run. `make check-html` runs this module alone.

Only what the server sends is checked: Swagger UI's page at /api/docs is built by script
in the browser, which the accessibility journey (e2e/test_accessibility.py) covers.
"""

import json
import subprocess

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.urls import get_resolver
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from incidents import services
from incidents.models import Visibility
from incidents.tests import samples
from incidents.tests.factories import make_incident, make_responder

from .checkers import VNU_JAR, require

pytestmark = pytest.mark.django_db


def page(client: Client, path: str, status: int = 200, **extra) -> str:
    response = client.get(path, follow=True, **extra)
    assert response.status_code == status, f"{path}: {response.status_code}"
    assert response["Content-Type"].startswith("text/html"), f"{path}: {response['Content-Type']}"
    return response.content.decode()


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def pages(make_user) -> dict[str, str]:
    """name -> the HTML of one page, as the person who would see it."""
    alice = make_user("alice")
    rita = make_responder(make_user)
    sam = make_user("sam", is_staff=True, is_superuser=True)
    mine = make_incident(alice, title="Printer on fire", visibility=Visibility.PRIVATE)
    services.add_response(incident=mine, author=rita, description="On my way with an extinguisher.")
    services.add_response(incident=mine, author=alice, description="Smoke is thicker now.")
    # A photo (a thumbnail on the timeline) and a log (a link): both kinds of attachment.
    services.add_response(
        incident=mine,
        author=rita,
        description="Photo and the panel's log.",
        files=[samples.upload("panel.jpg", samples.image("JPEG")), samples.upload("panel.log", samples.TEXT)],
    )
    theirs = make_incident(rita, title="Fire exit blocked by pallets")

    anonymous, reporter, responder, staff = Client(), signed_in(alice), signed_in(rita), signed_in(sam)
    uid = urlsafe_base64_encode(force_bytes(alice.pk))
    reset_link = f"/accounts/reset/{uid}/{default_token_generator.make_token(alice)}/"
    server_error = get_resolver().resolve_error_handler(500)(anonymous.get("/").wsgi_request)

    return {
        "home": page(anonymous, "/"),
        "sign-in": page(anonymous, "/accounts/login/"),
        "sign-in-refused": Client()
        .post("/accounts/login/", {"username": "alice", "password": "wrong"})
        .content.decode(),
        "register": page(anonymous, "/accounts/register/"),
        "password-reset": page(anonymous, "/accounts/password_reset/"),
        "password-reset-done": page(anonymous, "/accounts/password_reset/done/"),
        "password-reset-confirm": page(anonymous, reset_link),  # follows to set-password/
        "password-reset-bad-link": page(anonymous, f"/accounts/reset/{uid}/not-a-token/"),
        "password-reset-complete": page(anonymous, "/accounts/reset/done/"),
        "not-found": page(anonymous, "/no/such/page/", 404),
        "bad-request": page(anonymous, "/", 400, CONTENT_LENGTH="many"),
        "server-error": server_error.content.decode(),
        "api-docs": page(anonymous, "/api/docs"),
        "admin-sign-in": page(anonymous, "/admin/login/"),
        "dashboard": page(reporter, "/dashboard/"),
        "all-incidents": page(reporter, "/incidents/"),
        "my-incidents": page(reporter, "/incidents/mine/"),
        "public-incidents": page(reporter, "/incidents/public/"),
        "filtered-with-error": page(reporter, "/incidents/?status=Nonsense"),
        "report-form": page(reporter, "/incidents/new/"),
        "report-form-errors": reporter.post("/incidents/new/", {"title": " "}).content.decode(),
        "incident-detail-reporter": page(reporter, mine.get_absolute_url()),
        "incident-detail-responder": page(responder, mine.get_absolute_url()),
        "queue-responder": page(responder, "/incidents/"),
        "queue-responder-all": page(responder, "/incidents/?all=1"),
        "incident-edit": page(reporter, f"{mine.get_absolute_url()}edit/"),
        "forbidden": page(reporter, f"{theirs.get_absolute_url()}edit/", 403),
        "profile": page(reporter, "/accounts/profile/"),
        "password-change": page(reporter, "/accounts/password_change/"),
        "sign-out": page(reporter, "/accounts/logout/"),
        "metrics-responder": page(responder, "/metrics/"),
        "metrics-staff": page(staff, "/metrics/"),
        "metrics-errors": page(responder, "/metrics/?from=2026-12-01&to=2026-01-01", 400),
        "metrics-forbidden": page(reporter, "/metrics/", 403),
        "admin-index": page(staff, "/admin/"),
        "admin-incidents": page(staff, "/admin/incidents/incident/"),
        "admin-incident-change": page(staff, f"/admin/incidents/incident/{mine.pk}/change/"),
    }


def test_every_page_is_valid_html(pages, tmp_path):
    # given
    require("java", VNU_JAR)
    files = []
    for name, html in pages.items():
        files.append(tmp_path / f"{name}.html")
        files[-1].write_text(html, encoding="utf-8")

    # when
    run = subprocess.run(
        ["java", "-jar", str(VNU_JAR), "--errors-only", "--format", "json", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )

    # then
    messages = json.loads(run.stderr or '{"messages": []}')["messages"]
    problems = [
        f"{message['url'].rsplit('/', 1)[-1]}:{message.get('lastLine', '?')}: {message['message']}"
        f" [{' '.join(message.get('extract', '').split())}]"
        for message in messages
    ]
    assert not problems, f"{len(problems)} HTML error(s):\n" + "\n".join(problems)
    assert run.returncode == 0, run.stderr
