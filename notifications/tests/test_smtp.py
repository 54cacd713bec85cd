"""Delivery end to end against a real SMTP server on loopback (aiosmtpd): a request never
waits on mail, a server that is down or hangs only delays delivery, and once it answers
every queued message arrives exactly once.

The worker is django-tasks-db's own loop (`db_worker --batch`), run in a background
thread with its own database connection, so these tests commit for real (`transaction=True`).
"""

import email
import socket
import threading
import time
from collections import Counter
from contextlib import contextmanager

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from incidents.models import Incident
from incidents.tests.factories import make_responder, response_team
from notifications.models import OutgoingEmail

# Mail delivery tasks only: reports also queue SLA checks (incidents.tasks.check_sla).
MAIL_TASK = "notifications.tasks.send_email"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def responders_group(db):
    """The group migration 0002 creates. A transactional test ends by emptying every table,
    so the group is gone for any such test that runs after another: create it again."""
    response_team()


FORM = "application/x-www-form-urlencoded"
REPORT = "title=Smoke+in+the+server+room&description=Alarm+on+rack+4.&severity=High"


def free_port() -> int:
    """A loopback port nothing listens on (for now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def smtp_at(port: int, timeout: int = 2):
    """The settings `EMAIL_URL=smtp://127.0.0.1:<port>` gives, with a short timeout."""
    return override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
        EMAIL_USE_TLS=False,
        EMAIL_USE_SSL=False,
        EMAIL_TIMEOUT=timeout,
    )


class Collector:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received: list[tuple[list[str], email.message.Message]] = []

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"

    def per_recipient(self) -> Counter:
        with self.lock:
            return Counter(address for recipients, _ in self.received for address in recipients)


@contextmanager
def smtp_server(port: int):
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield collector
    finally:
        controller.stop()


@contextmanager
def hanging_smtp_server(port: int):
    """Accepts connections (the kernel completes them) and never says a word."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    try:
        yield
    finally:
        listener.close()


def start_worker() -> threading.Thread:
    """`manage.py db_worker --batch --no-startup-delay` in a background thread: it runs
    every due task, then stops. Errors are kept on the thread to be re-raised by `finish`."""

    def work():
        try:
            Worker(
                queue_names=["*"],
                interval=0,
                batch=True,
                backend_name="default",
                startup_delay=False,
                max_tasks=None,
                worker_id="smtp-test",
                excluded_queue_names=[],
            ).run()
        except BaseException as error:  # re-raised in the test's thread
            thread.error = error
        finally:
            connection.close()

    thread = threading.Thread(target=work, name="db_worker", daemon=True)
    thread.error = None
    thread.start()
    return thread


def finish(thread: threading.Thread, timeout: float = 60) -> None:
    thread.join(timeout)
    assert not thread.is_alive(), "the worker did not finish"
    if thread.error is not None:
        raise thread.error


def run_worker(timeout: float = 60) -> None:
    finish(start_worker(), timeout)


def make_due() -> int:
    return DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path=MAIL_TASK).update(
        run_after=timezone.now()
    )


def report_by_web(client) -> tuple[int, float]:
    started = time.monotonic()
    response = client.post("/incidents/new/", REPORT, content_type=FORM)
    return response.status_code, time.monotonic() - started


def test_mail_queued_while_smtp_is_down_arrives_exactly_once_when_it_is_back(client, reporter, make_user):
    # given two responders, and nothing listening where the SMTP server should be
    first, second = make_responder(make_user, "rita"), make_responder(make_user, "rhea")
    port = free_port()
    client.force_login(reporter)

    with smtp_at(port):
        # when an incident is reported while SMTP is down
        status, elapsed = report_by_web(client)

        # then the page answers at once: the request only queued the mail
        assert status == 302
        assert elapsed < 1.0
        assert Incident.objects.count() == 1
        assert OutgoingEmail.objects.filter(state=OutgoingEmail.State.QUEUED).count() == 3

        # when the worker runs, every attempt fails and is rescheduled
        run_worker()
        emails = list(OutgoingEmail.objects.all())
        assert len(emails) == 3
        for row in emails:
            assert (row.state, row.attempts) == (OutgoingEmail.State.QUEUED, 1)
            assert "Connection" in row.last_error or "refused" in row.last_error.lower(), row.last_error
            assert row.next_attempt_at > timezone.now()
        retries = DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path=MAIL_TASK)
        assert retries.count() == 3
        assert not DBTaskResult.objects.ready().exists()

        # when the server comes up and the retries fall due
        with smtp_server(port) as server:
            assert make_due() == 3
            run_worker()
            run_worker()  # a second pass finds nothing more to send

            # then each message arrived exactly once
            expected = Counter(OutgoingEmail.objects.values_list("to", flat=True))
            assert expected == Counter({reporter.email: 1, first.email: 1, second.email: 1})
            assert server.per_recipient() == expected
            assert len(server.received) == 3
            by_subject = sorted((rcpt[0], message["Subject"]) for rcpt, message in server.received)
            assert by_subject == sorted(OutgoingEmail.objects.values_list("to", "subject"))
            for recipients, message in server.received:
                assert len(recipients) == 1
                assert message["To"] == recipients[0]
                assert message.get_content_type() == "multipart/alternative"
                assert [part.get_content_type() for part in message.get_payload()] == ["text/plain", "text/html"]

    assert set(OutgoingEmail.objects.values_list("state", "attempts")) == {(OutgoingEmail.State.SENT, 2)}
    assert not DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path=MAIL_TASK).exists()


def test_hanging_smtp_server_delays_mail_but_never_a_request(client, reporter):
    # given an SMTP server that accepts connections and never answers, and one queued message
    port = free_port()
    client.force_login(reporter)
    with smtp_at(port, timeout=1), hanging_smtp_server(port):
        assert report_by_web(client)[0] == 302
        first = OutgoingEmail.objects.get()

        # when the worker is stuck talking to it
        worker = start_worker()
        deadline = time.monotonic() + 10
        while OutgoingEmail.objects.get(pk=first.pk).state != OutgoingEmail.State.SENDING:
            assert time.monotonic() < deadline, "the worker never claimed the message"
            time.sleep(0.02)

        # then the site still answers at once (no lock is held during the SMTP conversation)
        status, elapsed = report_by_web(client)
        assert status == 302
        assert elapsed < 1.0
        finish(worker)

    # and the stuck messages time out and wait for a retry
    assert OutgoingEmail.objects.count() == 2
    for row in OutgoingEmail.objects.all():
        assert (row.state, row.attempts) == (OutgoingEmail.State.QUEUED, 1)
        assert "timed out" in row.last_error.lower() or "Timeout" in row.last_error, row.last_error

    # when a working server takes its place
    with smtp_at(port), smtp_server(port) as server:
        make_due()
        run_worker()

    # then both arrive once
    assert server.per_recipient() == Counter({reporter.email: 2})
    assert set(OutgoingEmail.objects.values_list("state", flat=True)) == {OutgoingEmail.State.SENT}
