"""Every page passes axe-core (npm's axe-core, the engine behind most accessibility
checkers) with no serious or critical violation, nor a broken heading order, as the
person who would see it, in the same Chromium, under the same CSP, as the journeys.
/api/docs is checked once Swagger UI has drawn the operations, again with one open for
trying out, and with its Authorize dialog (static/css/swagger.css fixes its contrast,
static/js/swagger.js names the controls it leaves unnamed).

axe is run through `page.evaluate`, which Playwright sends over the DevTools protocol:
the page's Content-Security-Policy (no inline or injected script) does not apply to it,
so the page is checked exactly as it is served.
"""

from urllib.parse import urlsplit

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from playwright.sync_api import Page, expect

from incidents import services
from incidents.models import Visibility
from incidents.tests import samples
from incidents.tests.factories import make_incident, make_responder

from ..checkers import AXE_JS, require
from . import requires_chromium

pytestmark = [pytest.mark.e2e, requires_chromium]

FAILING_IMPACTS = {"serious", "critical"}
# Moderate rules that IRMS once broke and keeps to since.
FAILING_RULES = {"heading-order"}
# Swagger UI's own markup, which no stylesheet can change: its title is an h1 and each
# tag an h3 (moderate; the serious and critical rules still apply there).
SWAGGER_UI_EXCEPTIONS = {"heading-order"}

# preload: false, since axe's preloading copies each stylesheet into an inline <style>
# (for the one rule that reads CSS, css-orientation-lock), which the CSP refuses: the
# browser log would blame the page for axe's doing.
RUN_AXE = """async () => {
  const { violations } = await axe.run(document, { resultTypes: ["violations"], preload: false });
  return violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ")),
  }));
}"""


def violations(page: Page, *, except_rules: set[str] = frozenset()) -> list[str]:
    """The page's failing axe violations, one line each (rule, impact, help, elements)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    found = page.evaluate(RUN_AXE)
    return [
        f"{page.url}: {v['id']} ({v['impact']}) {v['help']}: {len(v['nodes'])} element(s): {', '.join(v['nodes'][:5])}"
        for v in found
        if (v["impact"] in FAILING_IMPACTS or v["id"] in FAILING_RULES) and v["id"] not in except_rules
    ]


def sign_in(page: Page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {username}")).to_be_visible()


def test_every_page_has_no_serious_accessibility_violation(open_page, browser_log, make_user, password):
    # given
    require(AXE_JS)
    alice = make_user("alice")
    rita = make_responder(make_user)
    make_user("sam", is_staff=True, is_superuser=True)
    mine = make_incident(alice, title="Printer on fire", visibility=Visibility.PRIVATE)
    services.add_response(incident=mine, author=rita, description="On my way with an extinguisher.")
    services.add_response(incident=mine, author=alice, description="Smoke is thicker now.")
    services.add_response(
        incident=mine,
        author=rita,
        description="Photo and the panel's log.",
        files=[samples.upload("panel.jpg", samples.image("JPEG")), samples.upload("panel.log", samples.TEXT)],
    )
    theirs = make_incident(rita, title="Fire exit blocked by pallets")
    uid = urlsafe_base64_encode(force_bytes(alice.pk))
    reset_link = f"/accounts/reset/{uid}/{default_token_generator.make_token(alice)}/"
    problems: list[str] = []

    def check(page: Page, path: str, status: int = 200) -> None:
        if status != 200:
            browser_log.expect_status(status, urlsplit(path).path)
        response = page.goto(path)
        assert response.status == status, f"{path}: {response.status}"
        page.wait_for_load_state("networkidle")
        problems.extend(violations(page))

    # when: signed out
    anonymous = open_page()
    for path in [
        "/",
        "/accounts/login/",
        "/accounts/register/",
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        reset_link,  # lands on the set-password form
        f"/accounts/reset/{uid}/not-a-token/",
        "/accounts/reset/done/",
        "/admin/login/",
    ]:
        check(anonymous, path)
    check(anonymous, "/no/such/page/", 404)
    # A form body that is not UTF-8 is refused with the 400 page before any view runs.
    anonymous.route(
        lambda url: url.endswith("?bad-form"),
        lambda route: route.continue_(
            method="POST", post_data=b"username=\xff", headers={"content-type": "application/x-www-form-urlencoded"}
        ),
    )
    check(anonymous, "/accounts/login/?bad-form", 400)

    # /api/docs as drawn, with an operation open for trying out, and with the Authorize dialog.
    anonymous.goto("/api/docs")
    expect(anonymous.locator(".opblock").first).to_be_visible()
    problems.extend(violations(anonymous, except_rules=SWAGGER_UI_EXCEPTIONS))
    operation = anonymous.locator(".opblock-post").first
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    expect(operation.get_by_role("button", name="Execute")).to_be_visible()
    problems.extend(violations(anonymous, except_rules=SWAGGER_UI_EXCEPTIONS))
    anonymous.get_by_role("button", name="Authorize").first.click()
    expect(anonymous.locator(".modal-ux")).to_be_visible()
    problems.extend(violations(anonymous, except_rules=SWAGGER_UI_EXCEPTIONS))

    # when: the reporter, a responder and staff
    reporter = open_page()
    sign_in(reporter, "alice", password)
    for path in [
        "/dashboard/",
        "/incidents/",
        "/incidents/mine/",
        "/incidents/public/",
        "/incidents/new/",
        mine.get_absolute_url(),
        f"{mine.get_absolute_url()}edit/",
        "/accounts/profile/",
        "/accounts/password_change/",
        "/accounts/logout/",
    ]:
        check(reporter, path)
    check(reporter, f"{theirs.get_absolute_url()}edit/", 403)

    responder = open_page()
    sign_in(responder, "rita", password)
    for path in [mine.get_absolute_url(), "/incidents/", "/incidents/?all=1", "/metrics/"]:
        check(responder, path)
    check(responder, "/metrics/?from=2026-12-01&to=2026-01-01", 400)
    check(reporter, "/metrics/", 403)

    staff = open_page()
    sign_in(staff, "sam", password)
    for path in ["/admin/", "/admin/incidents/incident/", f"/admin/incidents/incident/{mine.pk}/change/", "/metrics/"]:
        check(staff, path)

    # then
    assert not problems, f"{len(problems)} accessibility violation(s):\n" + "\n".join(problems)
    browser_log.assert_clean()
