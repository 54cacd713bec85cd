"""`manage.py mail_ingest --imap` against a real IMAP server (Dovecot on loopback, a
throwaway maildir): replies become responses, refusals create nothing, every message is
marked handled (\\Seen and the IrmsIngested keyword) and none is processed twice, by one
ingester or by two at once."""

import io
import os
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from incidents import inbox, replies, services
from incidents.models import InboundMessage, Response

from .imap_server import Dovecot
from .test_replies import REPLY_TO, database_url, mail


@pytest.fixture(scope="session")
def dovecot():
    server = Dovecot()
    yield server
    server.stop()


@pytest.fixture
def mailbox(dovecot, settings):
    """The test's inbox, empty, and IRMS set to poll it."""
    dovecot.empty()
    settings.REPLY_TO_ADDRESS = REPLY_TO
    settings.EMAIL_INBOX_URL = dovecot.url
    yield dovecot
    dovecot.empty()


def poll() -> str:
    out = io.StringIO()
    call_command("mail_ingest", "--imap", "--once", stdout=out)
    return out.getvalue().strip()


def test_replies_in_the_mailbox_become_responses_and_are_marked_handled(mailbox, lift, fred, fay):
    # given: a reply from fred, a reply from fay with fred's address, and an auto-reply
    mailbox.deliver(
        mail(to=replies.reply_address(lift, fred), sender=fred.email, body="Technician is on site."),
        mail(to=replies.reply_address(lift, fred), sender=fay.email),
        mail(to=replies.reply_address(lift, fay), sender=fay.email, headers={"Auto-Submitted": "auto-replied"}),
    )

    # when
    assert poll() == "3 messages: 3 handled, 0 already handled."

    # then
    (response,) = Response.objects.filter(incident=lift)
    assert (response.author, response.description) == (fred, "Technician is on site.")
    assert sorted(InboundMessage.objects.values_list("reason", flat=True)) == ["", "auto_reply", "unknown_sender"]
    assert set(InboundMessage.objects.values_list("source", flat=True)) == {"imap"}
    assert all({"\\Seen", inbox.KEYWORD} <= flags for flags in mailbox.flags())
    # and the next poll finds nothing new
    assert poll() == "0 messages: 0 handled, 0 already handled."
    assert Response.objects.filter(incident=lift).count() == 1


def test_a_message_read_by_a_person_is_still_ingested(mailbox, lift, fred):
    mailbox.deliver(mail(to=replies.reply_address(lift, fred), sender=fred.email))
    client = mailbox.client()
    client.uid("STORE", "1:*", "+FLAGS", "(\\Seen)")
    client.logout()
    poll()
    assert Response.objects.filter(incident=lift, author=fred).count() == 1


def test_a_crash_before_the_flag_processes_nothing_twice(mailbox, lift, fred):
    # given: the message was recorded, but the ingester died before flagging it
    mailbox.deliver(mail(to=replies.reply_address(lift, fred), sender=fred.email))
    poll()
    client = mailbox.client()
    client.uid("STORE", "1:*", "-FLAGS", f"(\\Seen {inbox.KEYWORD})")
    client.logout()

    # when: the next poll reads it again
    assert poll() == "1 messages: 0 handled, 1 already handled."

    # then
    assert Response.objects.filter(incident=lift).count() == 1
    assert all(inbox.KEYWORD in flags for flags in mailbox.flags())


@pytest.mark.django_db(transaction=True)
def test_two_ingesters_at_once_process_each_message_once(mailbox, lift, fred, fay):
    # given: twenty replies
    raws = [
        mail(to=replies.reply_address(lift, user), sender=user.email, body=f"Update number {n}.")
        for n in range(10)
        for user in (fred, fay)
    ]
    mailbox.deliver(*raws)
    errors, reports = [], []
    start = threading.Barrier(2)

    def ingester():
        try:
            start.wait()
            reports.append(poll())
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    # when: two ingesters poll the same mailbox at the same moment
    threads = [threading.Thread(target=ingester) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    # then: one response per message, one record per message, every message flagged
    assert errors == []
    handled = sum(int(report.split(": ")[1].split(" handled")[0]) for report in reports)
    assert handled == 20, reports  # between them, each message recorded exactly once
    descriptions = sorted(Response.objects.filter(incident=lift).values_list("description", flat=True))
    assert descriptions == sorted(f"Update number {n}." for n in range(10) for _ in range(2))
    assert InboundMessage.objects.filter(status="accepted").count() == 20
    assert all(inbox.KEYWORD in flags for flags in mailbox.flags())


def test_an_unreachable_server_is_an_error_not_a_loss(settings, lift, fred, dovecot):
    settings.EMAIL_INBOX_URL = dovecot.url.replace("inbox-secret-42", "wrong-password")
    with pytest.raises(CommandError, match="failed"):
        call_command("mail_ingest", "--imap", "--once")
    assert InboundMessage.objects.count() == 0


@pytest.mark.parametrize(
    "url, message",
    [
        ("", "Set EMAIL_INBOX_URL"),
        ("pop3://user:pw@host/INBOX", "must look like"),
        ("imaps://host/INBOX", "must look like"),
        ("imaps://user:pw@host:notaport/INBOX", "not a valid URL"),
    ],
)
def test_a_bad_inbox_url_is_one_clear_error(settings, url, message):
    settings.EMAIL_INBOX_URL = url
    with pytest.raises(CommandError, match=message):
        call_command("mail_ingest", "--imap", "--once")


def test_inbox_url_parts():
    parsed = inbox.parse_url("imaps://irms%40example.org:p%2Fw@mail.example.org/Replies")
    assert parsed == inbox.Inbox(True, "mail.example.org", 993, "irms@example.org", "p/w", "Replies")
    assert inbox.parse_url("imap://u:p@127.0.0.1:1143").mailbox == "INBOX"


def wait_for(condition, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.django_db(transaction=True)
def test_the_poller_runs_on_at_its_interval(mailbox, lift, fred, tmp_path):
    # given: `mail_ingest --imap` running as a service runs it, polling every second
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "irms_site.test_settings",
        "DATABASE_URL": database_url(),
        "REPLY_TO_ADDRESS": REPLY_TO,
        "EMAIL_INBOX_URL": mailbox.url,
    }
    log = (tmp_path / "ingest.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "mail_ingest", "--imap", "--interval", "1"],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # when: replies arrive one after the other
        for n, body in enumerate(("First update.", "Second update."), start=1):
            mailbox.deliver(mail(to=replies.reply_address(lift, fred), sender=fred.email, body=body))

            # then: each becomes a response while the poller keeps running
            assert wait_for(lambda n=n: Response.objects.filter(incident=lift).count() == n), (
                tmp_path / "ingest.log"
            ).read_text()
            assert process.poll() is None
    finally:
        process.terminate()
        process.wait(10)
        log.close()
    descriptions = list(Response.objects.filter(incident=lift).values_list("description", flat=True))
    assert descriptions == ["First update.", "Second update."]


def test_a_message_that_trips_a_bug_does_not_stop_the_others(monkeypatch, mailbox, lift, fred):
    # given: handling one of the messages fails unexpectedly
    handle = services.respond_by_mail

    def buggy(*, raw, source):
        if b"POISON" in raw:
            raise RuntimeError("a bug")
        return handle(raw=raw, source=source)

    monkeypatch.setattr(services, "respond_by_mail", buggy)
    address = replies.reply_address(lift, fred)
    mailbox.deliver(
        mail(to=address, sender=fred.email, body="POISON"), mail(to=address, sender=fred.email, body="Fine.")
    )

    # when
    assert poll() == "2 messages: 1 handled, 0 already handled, 1 failed (see the log)."

    # then: the other one was handled; the failed one is left for the next poll
    assert list(Response.objects.filter(incident=lift).values_list("description", flat=True)) == ["Fine."]
    first, second = mailbox.flags()
    assert inbox.KEYWORD not in first and inbox.KEYWORD in second
    monkeypatch.setattr(services, "respond_by_mail", handle)
    assert poll() == "1 messages: 1 handled, 0 already handled."
