"""Fixtures for the end-to-end journeys: Debian's Chromium (headless, no network of its
own) against pytest-django's live server, with every console error, uncaught exception,
failed or refused request and Content-Security-Policy violation written down, so each
journey can assert there were none.

Users are made with the ORM (the root conftest's `make_user`); mail is delivered by the
real worker (`manage.py db_worker --batch`) and read from the locmem outbox.
"""

import os
import signal
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command

from . import CHROMIUM, DESKTOP

# Playwright's sync API keeps an asyncio loop running in this thread, and Django refuses
# ORM calls from a thread with a running loop. The tests themselves are plain synchronous
# code, so the check guards nothing here. Set for the whole process (not per test):
# once a worker has started Playwright, its later non-browser tests see the loop too.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Added to every page before its own scripts (by Playwright, so the CSP does not apply
# to it): report each violation to the test, whatever the browser prints about it.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.irmsCspViolation(
    `${event.effectiveDirective} refused ${event.blockedURI || "inline code"} ` +
    `(${event.sourceFile || document.URL}:${event.lineNumber})`
  );
});
"""


def pytest_collection_modifyitems(config, items):
    """Screenshot tests rewrite docs/screenshots/: they run only when `-m` names them.
    pytest.ini's `-m "not screenshots"` keeps them out of `make test`; this keeps them
    out of `-m e2e` (`make e2e`), which replaces that expression."""
    if "screenshots" in (config.getoption("markexpr") or ""):
        return
    kept, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker("screenshots") else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch options, with Debian's Chromium (never a downloaded one)."""
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args():
    """Every context: British English, UTC (`open_page` adds the window size and base_url)."""
    return {"locale": "en-GB", "timezone_id": "UTC"}


class BrowserLog:
    """What went wrong in the browser, as lines for an assertion message."""

    def __init__(self):
        self.problems: list[str] = []
        self.expected: set[tuple[int, str]] = set()

    def expect_status(self, status: int, path: str) -> None:
        """A journey that asks for an error page (a 404) expects that one answer."""
        self.expected.add((status, path))

    def _expected(self, status: int, url: str) -> bool:
        return (status, urlsplit(url).path) in self.expected

    def watch(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught exception: {error}"))
        page.on("requestfailed", self._request_failed)
        page.on("response", self._response)

    def _request_failed(self, request) -> None:
        # ERR_ABORTED is the browser cancelling, not failing: what was still loading when
        # the person clicked on (a favicon, say), or a navigation that became a download.
        # A missing file is an HTTP error (below); a refused one is ERR_BLOCKED_BY_*.
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"request failed: {request.failure} {request.method} {request.url}")

    def csp_violation(self, text: str) -> None:
        self.problems.append(f"CSP violation: {text}")

    def _console(self, message) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        # Chromium logs every 4xx/5xx answer to the console too: an expected one is fine.
        if "the server responded with a status of" in message.text and urlsplit(url).path in {
            path for _, path in self.expected
        }:
            return
        self.problems.append(f"console error: {message.text} ({url})")

    def _response(self, response) -> None:
        if response.status >= 400 and not self._expected(response.status, response.url):
            self.problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def assert_clean(self) -> None:
        assert not self.problems, "The browser reported problems:\n" + "\n".join(self.problems)


@pytest.fixture
def browser_log(request):
    """Every page opened with `open_page` reports here. Each journey ends with
    `browser_log.assert_clean()`; the teardown checks again for anything later."""
    log = BrowserLog()
    yield log
    report = getattr(request.node, "rep_call", None)  # set by pytest-playwright
    if report is not None and report.passed:
        log.assert_clean()


@pytest.fixture(autouse=True)
def default_team(transactional_db):
    """The `response` team and `general` category a migration creates: a live-server test
    empties every table when it ends, so the next one would start without them."""
    from incidents.tests.factories import response_team

    return response_team()


@pytest.fixture
def open_page(new_context, live_server, browser_log, settings):
    """`open_page(**context_args)` -> a page in a fresh browser context (its own cookies:
    one per person in a journey) whose relative URLs go to the live server. Requests for
    anything but the live server are refused, and show up as failed requests: every
    asset must be served by IRMS itself."""
    # Links in mail point at the live server, so a journey can follow them.
    settings.SITE_URL = live_server.url

    def is_elsewhere(url: str) -> bool:
        return not url.startswith(live_server.url + "/") and not url.startswith(("data:", "blob:"))

    def open_page(**context_args):
        context = new_context(**{"base_url": live_server.url, "viewport": DESKTOP, **context_args})
        context.expose_function("irmsCspViolation", browser_log.csp_violation)
        context.add_init_script(script=REPORT_CSP_VIOLATIONS)
        context.route(is_elsewhere, lambda route: route.abort("blockedbyclient"))
        context.set_default_timeout(10_000)  # a missing element fails in seconds, not half a minute
        page = context.new_page()
        browser_log.watch(page)
        return page

    return open_page


WORKER_SIGNALS = [signal.SIGINT, signal.SIGTERM, *([signal.SIGQUIT] if hasattr(signal, "SIGQUIT") else [])]


@pytest.fixture
def deliver_mail(mailoutbox):
    """`deliver_mail()` runs the real mail worker until the queue is empty, then returns
    the outbox (django.core.mail.outbox) with everything sent during the test."""

    def deliver():
        # The worker installs its own Ctrl-C/TERM handlers; give pytest its own back.
        handlers = {sig: signal.getsignal(sig) for sig in WORKER_SIGNALS}
        try:
            call_command("db_worker", "--batch", "--no-startup-delay")
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        return mailoutbox

    return deliver
