"""The documentation's screenshots (docs/screenshots/), taken from the demo data in the
same Chromium the journeys use. `make screenshots` runs this; `make test` leaves it out
(conftest.py deselects it unless `-m` names `screenshots`).

The pages must be as clean as in the journeys: a screenshot of a page with a console
error or a CSP violation is not taken.
"""

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db.models import Count
from playwright.sync_api import expect

from accounts.models import User
from incidents.management.commands.seed_demo import DEMO_USERS
from incidents.models import Incident, Status, Visibility

from . import PHONE, requires_chromium

pytestmark = [pytest.mark.e2e, pytest.mark.screenshots, requires_chromium]

SCREENSHOTS = settings.BASE_DIR / "docs" / "screenshots"
DEMO_PASSWORDS = {username: password for username, password, *_ in DEMO_USERS}


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", stdout=StringIO())


def sign_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(DEMO_PASSWORDS[username])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {username}")).to_be_visible()


def shoot(page, name: str, *, full_page: bool = False) -> None:
    page.wait_for_load_state("networkidle")
    page.mouse.move(0, 0)  # no hover effect on whatever sits under the last click
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=SCREENSHOTS / name, full_page=full_page, animations="disabled", caret="hide")


def busiest_open_incident() -> Incident:
    """The public, not yet closed incident with the longest timeline (responses and status
    changes), so its page shows the workflow buttons and the response form too."""
    return (
        Incident.objects.filter(visibility=Visibility.PUBLIC, responses__isnull=False)
        .exclude(status=Status.CLOSED)
        .annotate(events_count=Count("events", distinct=True))
        .order_by("-events_count", "-created_at")
        .first()
    )


def test_screenshots_of_the_main_pages(demo, open_page, browser_log):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert User.objects.filter(username__in=DEMO_PASSWORDS).count() == len(DEMO_PASSWORDS)
    page = open_page()

    page.goto("/")
    shoot(page, "landing.png")

    page.goto("/api/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    shoot(page, "api-docs.png")

    sign_in(page, "alice")
    shoot(page, "dashboard.png")
    page.goto("/incidents/new/")
    shoot(page, "report-form.png")
    page.goto("/incidents/public/")
    shoot(page, "public-list.png")

    responder = open_page()
    sign_in(responder, "responder")
    incident = busiest_open_incident()
    responder.goto(incident.get_absolute_url())
    timeline = responder.get_by_role("region", name="Timeline").get_by_role("listitem")
    expect(timeline).to_have_count(incident.events_count)
    shoot(responder, "incident-timeline.png", full_page=True)

    responder.goto("/metrics/")
    expect(responder.locator("#chart-weekly")).to_be_visible()
    responder.wait_for_function("() => window.Chart && Object.keys(window.Chart.instances).length === 2")
    shoot(responder, "metrics.png", full_page=True)

    admin = open_page()
    sign_in(admin, "admin")
    admin.goto("/admin/incidents/incident/")
    admin.get_by_role("button", name="Toggle navigation").click()  # the table gets the width
    expect(admin.locator("#nav-sidebar")).to_be_hidden()
    shoot(admin, "admin-changelist.png")

    phone = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(phone, "alice")
    phone.goto("/incidents/new/")
    shoot(phone, "report-form-phone.png")

    lead = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(lead, "fatima")
    lead.goto("/metrics/")
    lead.wait_for_function("() => window.Chart && Object.keys(window.Chart.instances).length === 2")
    shoot(lead, "metrics-phone.png")

    browser_log.assert_clean()
