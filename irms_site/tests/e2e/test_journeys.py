"""The product as people use it: real Chromium, through the pages, with mail, JavaScript
and the Content-Security-Policy all live (issue #8).

Each journey ends with `browser_log.assert_clean()`: no console error, no uncaught
exception, no failed or refused request (nothing is fetched from outside IRMS), no
error answer the journey did not ask for, and no CSP violation.
"""

import csv
import re

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from incidents.models import Incident, Severity, Status, Visibility
from incidents.tests.factories import advance_to, make_incident, make_responder, make_team

from . import PHONE, requires_chromium

pytestmark = [pytest.mark.e2e, requires_chromium]

TOUCH_TARGET_PX = 44  # WCAG 2.5.5 / Apple HIG minimum for a control a finger must hit
LINK = re.compile(r"https?://\S+")


def label(text: str) -> re.Pattern:
    """A field's label exactly; crispy forms add an asterisk to a required field's label."""
    return re.compile(rf"^\s*{re.escape(text)}\*?\s*$")


def sign_in(page: Page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label(label("Username or e-mail")).fill(username)
    page.get_by_label(label("Password")).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {username}")).to_be_visible()


def timeline(page: Page):
    return page.get_by_role("region", name="Timeline").get_by_role("listitem")


def mail_to(outbox, address: str, subject: str):
    """The one message to `address` with `subject` (an assertion error lists what was sent)."""
    found = [message for message in outbox if message.to == [address] and message.subject == subject]
    sent = [(message.to, message.subject) for message in outbox]
    assert len(found) == 1, f"expected one mail to {address} about {subject!r}; sent: {sent}"
    return found[0]


def unlabelled_fields(page: Page) -> list[str]:
    """Form fields a screen reader would announce without a name: no <label> with text,
    no aria-label, no aria-labelledby."""
    return page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea")]
            .filter((el) => !["hidden", "submit", "button", "reset"].includes(el.type))
            .filter((el) => ![...el.labels].some((label) => label.textContent.trim())
                            && !(el.getAttribute("aria-label") || "").trim()
                            && !el.getAttribute("aria-labelledby"))
            .map((el) => `${location.pathname}: <${el.tagName.toLowerCase()} name=${el.name}>`)"""
    )


def test_register_sign_in_report_and_find_it_on_the_dashboard(open_page, browser_log, deliver_mail, password):
    page = open_page()

    # The landing page is served with the Content-Security-Policy the journey checks against.
    response = page.goto("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]

    # Register from the landing page: registering signs the new user in.
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label(label("Username")).fill("dana")
    page.get_by_label(label("E-mail address")).fill("dana@example.com")
    page.get_by_label(label("Password")).fill(password)
    page.get_by_label(label("Confirm password")).fill(password)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Welcome to IRMS, dana. Your account is ready.")).to_be_visible()

    # Sign out, and back in with the new account.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have been signed out.")).to_be_visible()
    sign_in(page, "dana", password)

    # Report an incident: the kind decides the team it goes to.
    facilities = make_team("facilities", category="building")
    page.get_by_role("link", name="Report an incident").click()
    page.get_by_role("radio", name="Facilities issues").check()
    page.get_by_label(label("Title")).fill("Smoke from the printer on floor 3")
    page.get_by_label(label("Description")).fill("Grey smoke since 10:40.\nNobody hurt; the room is cleared.")
    page.get_by_label(label("Severity")).select_option("High")
    page.get_by_role("button", name="Report incident").click()
    expect(page.get_by_text("Incident reported. The response team has been told.")).to_be_visible()
    expect(page.get_by_role("heading", name="Smoke from the printer on floor 3")).to_be_visible()
    expect(page.locator("[data-team]")).to_have_text("Facilities")
    assert Incident.objects.get(title="Smoke from the printer on floor 3").team == facilities

    # It is on the dashboard, counted as Reported; its link opens its page.
    page.get_by_role("link", name="Dashboard", exact=True).click()
    expect(page.locator('[data-status-count="Reported"]')).to_have_text("1")
    page.get_by_role("region", name="Your latest incidents").get_by_role(
        "link", name="Smoke from the printer on floor 3"
    ).click()
    incident = Incident.objects.get(title="Smoke from the printer on floor 3")
    expect(page).to_have_url(re.compile(re.escape(incident.get_absolute_url()) + "$"))
    expect(page.locator(".incident-description")).to_have_text(
        "Grey smoke since 10:40.\nNobody hurt; the room is cleared."
    )
    expect(timeline(page)).to_have_count(1)
    expect(timeline(page).first).to_contain_text("dana reported this incident")
    assert (incident.reporter.username, incident.severity, incident.status) == ("dana", Severity.HIGH, Status.REPORTED)

    outbox = deliver_mail()
    mail_to(outbox, "dana@example.com", "Welcome to IRMS, dana")
    mail_to(outbox, "dana@example.com", "Incident reported: Smoke from the printer on floor 3")
    browser_log.assert_clean()


def test_another_user_responds_and_the_reporter_sees_it_and_gets_mail(
    open_page, browser_log, deliver_mail, make_user, password
):
    alice = make_user("alice")
    make_user("bob")
    incident = make_incident(alice, title="Water leak under the server room door")
    bob = open_page()

    # Bob finds Alice's incident on the public list and responds.
    sign_in(bob, "bob", password)
    bob.get_by_role("link", name="Public", exact=True).click()
    expect(bob.get_by_role("heading", name="Public incidents")).to_be_visible()
    bob.get_by_role("link", name="Water leak under the server room door").click()
    bob.get_by_label(label("Your response")).fill("Facilities are on their way with a pump.")
    bob.get_by_role("button", name="Add response").click()
    expect(bob.get_by_text("Response added.")).to_be_visible()

    # Alice gets a mail about it, and its link shows the response on the timeline.
    message = mail_to(deliver_mail(), "alice@example.com", "New response on: Water leak under the server room door")
    assert "Facilities are on their way with a pump." in message.body
    link = next(url for url in LINK.findall(message.body) if incident.get_absolute_url() in url)
    page = open_page()
    page.goto(link)  # not signed in yet: the sign-in page brings her back here
    page.get_by_label(label("Username or e-mail")).fill("alice")
    page.get_by_label(label("Password")).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Water leak under the server room door")).to_be_visible()
    expect(timeline(page)).to_have_count(2)
    expect(timeline(page).last).to_contain_text("bob responded")
    expect(timeline(page).last).to_contain_text("Facilities are on their way with a pump.")
    browser_log.assert_clean()


def test_a_responder_works_the_incident_and_the_reporter_sees_each_step(
    open_page, browser_log, deliver_mail, make_user, password
):
    alice = make_user("alice")
    make_responder(make_user, "rita")
    incident = make_incident(alice, title="Badge reader at the north entrance rejects valid cards")
    responder, reporter = open_page(), open_page()
    sign_in(responder, "rita", password)
    sign_in(reporter, "alice", password)
    responder.goto(incident.get_absolute_url())
    reporter.goto(incident.get_absolute_url())
    expect(reporter.get_by_role("article")).to_contain_text("Reported")

    steps = [
        ("Acknowledge", "Reported", "Acknowledged"),
        ("Start work", "Acknowledged", "In Progress"),
        ("Resolve", "In Progress", "Resolved"),
    ]
    for button, old, new in steps:
        responder.get_by_role("button", name=button, exact=True).click()
        expect(responder.get_by_text(f"Status changed to {new}.")).to_be_visible()

        reporter.reload()
        expect(timeline(reporter).last).to_contain_text(f"rita changed the status from {old} to {new}")
        expect(reporter.locator("article .badge").first).to_have_text(new)
    # The reporter's own moves on a resolved incident: close it or reopen it, nothing else.
    expect(reporter.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(reporter.get_by_role("button", name="Close")).to_be_visible()
    expect(reporter.get_by_role("button", name="Reopen")).to_be_visible()

    incident.refresh_from_db()
    assert incident.status == Status.RESOLVED
    assert incident.acknowledged_at and incident.resolved_at
    outbox = deliver_mail()
    for status in ("Acknowledged", "In Progress", "Resolved"):
        mail_to(outbox, "alice@example.com", f"{status}: Badge reader at the north entrance rejects valid cards")
    browser_log.assert_clean()


def test_staff_filter_bulk_resolve_and_export_csv_in_the_admin(open_page, browser_log, make_user, password):
    alice = make_user("alice")
    staff = make_user("sam", is_staff=True, is_superuser=True)
    titles = ["Gas smell in the kitchen", "Fire exit blocked by pallets", "Broken glass on the stairs"]
    for title in titles:
        make_incident(alice, title=title)
    advance_to(make_incident(alice, title="VPN refuses logins"), Status.ACKNOWLEDGED, by=staff)
    page = open_page()
    sign_in(page, "sam", password)

    # Staff reach the incident list through the site's Admin link.
    page.get_by_role("link", name="Admin", exact=True).click()
    page.locator("#incidents-incident").get_by_role("link", name="Incidents").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(4)

    # Filter by status: the three Reported ones.
    page.locator("#changelist-filter").get_by_role("link", name="Reported", exact=True).click()
    expect(page).to_have_url(re.compile(r"status__exact=Reported"))
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    page.wait_for_load_state()  # the admin's actions.js counts the ticked rows

    # Bulk-resolve two of them.
    for title in titles[:2]:
        rows.filter(has_text=title).get_by_role("checkbox").check()
    expect(page.locator(".action-counter")).to_have_text("2 of 3 selected")
    page.get_by_label("Action:").select_option(label="Resolve selected incidents")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_text("Resolved 2 incidents.")).to_be_visible()
    expect(rows).to_have_count(1)  # still filtered by Reported
    statuses = dict(Incident.objects.values_list("title", "status"))
    assert statuses == {
        titles[0]: Status.RESOLVED,
        titles[1]: Status.RESOLVED,
        titles[2]: Status.REPORTED,
        "VPN refuses logins": Status.ACKNOWLEDGED,
    }

    # Export every incident as CSV: the download arrives and holds the rows.
    page.locator("#changelist-filter").get_by_role("link", name="All").first.click()
    expect(rows).to_have_count(4)
    page.wait_for_load_state()  # actions.js ticks every row for the toggle
    page.locator("#action-toggle").check()
    expect(page.locator(".action-counter")).to_have_text("4 of 4 selected")
    page.get_by_label("Action:").select_option(label="Export selected incidents as CSV")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Go").click()
    download = download_info.value
    assert re.fullmatch(r"incidents-\d{8}-\d{6}\.csv", download.suggested_filename)
    with open(download.path(), newline="", encoding="utf-8") as file:
        exported = list(csv.DictReader(file))
    assert sorted((row["title"], row["status"], row["reporter"]) for row in exported) == sorted(
        (title, status, "alice") for title, status in statuses.items()
    )
    assert {row["incident_id"] for row in exported} == {
        str(i) for i in Incident.objects.values_list("incident_id", flat=True)
    }
    browser_log.assert_clean()


def test_forgotten_password_reset_by_the_link_in_the_mail(open_page, browser_log, deliver_mail, make_user):
    make_user("alice")
    page = open_page()

    page.goto("/accounts/login/")
    page.get_by_role("link", name="Forgotten your password?").click()
    page.get_by_label(label("Email")).fill("alice@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()

    message = mail_to(deliver_mail(), "alice@example.com", "Reset your IRMS password")
    link = next(url for url in LINK.findall(message.body) if "/accounts/reset/" in url)
    page.goto(link)
    page.get_by_label(label("New password")).fill("a-new-and-longer-passphrase-7")
    page.get_by_label(label("New password confirmation")).fill("a-new-and-longer-passphrase-7")
    page.get_by_role("button", name="Change my password").click()
    expect(page.get_by_role("heading", name="Your password has been changed")).to_be_visible()

    page.get_by_role("main").get_by_role("link", name="Sign in").click()
    page.get_by_label(label("Username or e-mail")).fill("alice@example.com")
    page.get_by_label(label("Password")).fill("a-new-and-longer-passphrase-7")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hello, alice")).to_be_visible()
    assert User.objects.get(username="alice").check_password("a-new-and-longer-passphrase-7")

    # The link worked once.
    page.goto(link)
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    browser_log.assert_clean()


def test_api_docs_render_the_schema_and_try_it_out_uses_the_session(open_page, browser_log, make_user, password):
    make_incident(make_user("alice"), title="Phishing mail pretending to be payroll")
    page = open_page()
    sign_in(page, "alice", password)

    page.goto("/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("IRMS API")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() >= 8

    operation = page.locator(".opblock-get").filter(has=page.locator('[data-path="/api/incidents"]')).first
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    live = operation.locator(".live-responses-table")
    expect(live.locator("tbody .response-col_status")).to_have_text("200")
    expect(live.locator("tbody .response-col_description")).to_contain_text("Phishing mail pretending to be payroll")
    browser_log.assert_clean()


def test_report_an_incident_on_a_phone_with_touch_sized_controls(open_page, browser_log, make_user, password):
    make_user("alice")
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)

    def touch(name: str, locator):
        """Assert the control is big enough for a finger, then tap it."""
        page.wait_for_load_state()  # measured with the style sheets applied
        expect(locator).to_be_visible()
        box = locator.bounding_box()
        assert box["height"] >= TOUCH_TARGET_PX, f"{name} is {box['height']:.0f} px tall on a phone"
        locator.tap()
        return locator

    page.goto("/accounts/login/")
    touch("the username field", page.get_by_label(label("Username or e-mail"))).fill("alice")
    touch("the password field", page.get_by_label(label("Password"))).fill(password)
    touch("the sign-in button", page.get_by_role("button", name="Sign in"))
    expect(page.get_by_role("heading", name="Hello, alice")).to_be_visible()

    touch("the menu button", page.get_by_role("button", name="Toggle navigation"))
    touch("the menu's Report link", page.get_by_role("link", name="Report", exact=True))
    touch("the title field", page.get_by_label(label("Title"))).fill("Elevator stuck between floors 4 and 5")
    touch("the description field", page.get_by_label(label("Description"))).fill("Two people inside, they are calm.")
    touch("the severity list", page.get_by_label(label("Severity"))).select_option("Critical")
    touch("the Private checkbox's label", page.locator("label[for=id_private]"))
    expect(page.get_by_label("Private")).to_be_checked()
    touch("the submit button", page.get_by_role("button", name="Report incident"))

    expect(page.get_by_role("heading", name="Elevator stuck between floors 4 and 5")).to_be_visible()
    # Nothing is wider than the phone: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    incident = Incident.objects.get()
    assert (incident.title, incident.severity, incident.visibility) == (
        "Elevator stuck between floors 4 and 5",
        Severity.CRITICAL,
        "private",
    )
    browser_log.assert_clean()


def test_sign_in_and_report_with_the_keyboard_only(open_page, browser_log, make_user, password):
    make_user("alice")
    page = open_page()
    keyboard = page.keyboard

    def tab_to(name: str, limit: int = 40) -> None:
        for _ in range(limit):
            keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent.trim()") == name:
                return
        raise AssertionError(f"{name!r} cannot be reached with Tab")

    page.goto("/accounts/login/")
    assert unlabelled_fields(page) == []
    expect(page.get_by_label(label("Username or e-mail"))).to_be_focused()  # autofocus
    keyboard.type("alice")
    keyboard.press("Tab")
    expect(page.get_by_label(label("Password"))).to_be_focused()
    keyboard.type(password)
    keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Hello, alice")).to_be_visible()

    tab_to("Report an incident")
    keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Report an incident")).to_be_visible()
    assert unlabelled_fields(page) == []
    expect(page.get_by_label(label("Title"))).to_be_focused()  # autofocus
    keyboard.type("Suspicious USB stick found in the car park")
    keyboard.press("Tab")
    expect(page.get_by_label(label("Description"))).to_be_focused()
    keyboard.type("Next to the barrier, bay 12.")
    keyboard.press("Tab")
    expect(page.get_by_label(label("Severity"))).to_be_focused()
    keyboard.type("High")  # type-ahead picks the option
    expect(page.get_by_label(label("Severity"))).to_have_value("High")
    keyboard.press("Tab")
    expect(page.get_by_label(label("Private"))).to_be_focused()
    keyboard.press("Space")
    expect(page.get_by_label(label("Private"))).to_be_checked()
    keyboard.press("Tab")
    expect(page.get_by_label(label("Photos or files (optional)"))).to_be_focused()  # reachable, skipped here
    keyboard.press("Tab")
    expect(page.get_by_role("button", name="Report incident")).to_be_focused()
    keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Suspicious USB stick found in the car park")).to_be_visible()
    incident = Incident.objects.get()
    assert (incident.severity, incident.visibility) == (Severity.HIGH, Visibility.PRIVATE)
    browser_log.assert_clean()


def test_every_form_field_has_a_label(open_page, browser_log, make_user, password):
    alice = make_user("alice")
    make_responder(make_user, "rita")
    incident = make_incident(alice, title="Printer on floor 3 prints other people's documents")
    page = open_page()
    for path in ["/accounts/register/", "/accounts/login/", "/accounts/password_reset/"]:
        page.goto(path)
        assert unlabelled_fields(page) == []
    sign_in(page, "rita", password)
    pages = ["/incidents/new/", "/incidents/", "/incidents/public/", "/incidents/mine/", incident.get_absolute_url()]
    pages += ["/accounts/profile/", "/accounts/password_change/"]
    for path in pages:
        page.goto(path)
        assert unlabelled_fields(page) == []
    browser_log.assert_clean()


def test_an_unknown_address_shows_the_404_page_with_a_way_back(open_page, browser_log, make_user, password):
    make_user("alice")
    page = open_page()
    browser_log.expect_status(404, "/no/such/page/")
    browser_log.expect_status(404, "/incidents/00000000-0000-4000-8000-000000000000/")

    response = page.goto("/no/such/page/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    page.get_by_role("link", name="Back to the start").click()
    expect(page.get_by_role("heading", name="Report it. Respond to it. Resolve it.")).to_be_visible()

    # Signed in, an incident that does not exist is the same page, with the dashboard too.
    sign_in(page, "alice", password)
    response = page.goto("/incidents/00000000-0000-4000-8000-000000000000/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    page.get_by_role("main").get_by_role("link", name="Your dashboard").click()
    expect(page.get_by_role("heading", name="Hello, alice")).to_be_visible()
    browser_log.assert_clean()
