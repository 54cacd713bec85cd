"""`python manage.py mail_ingest`: replies to notifications become responses.

Two ways in:
- standard input (the default): one RFC 5322 message, as an MTA pipes it to a command
  (`--recipient` takes the envelope recipient if the MTA gives it, e.g. Postfix's
  `${original_recipient}`). Exit status 0 once the message is recorded, accepted or
  refused; 75 (EX_TEMPFAIL) when the database cannot be reached, so the MTA keeps the
  message and tries again.
- `--imap`: poll the mailbox EMAIL_INBOX_URL every `--interval` seconds
  (EMAIL_INBOX_POLL_SECONDS), or once with `--once` (cron). Run one or several.

Whatever arrives, at most one response per message (`services.respond_by_mail`).
"""

import imaplib
import logging
import sys
import time

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from incidents import inbox, replies, services

logger = logging.getLogger(__name__)

EX_TEMPFAIL = 75


class Command(BaseCommand):
    help = "Turn e-mailed replies into responses: one message from stdin, or poll EMAIL_INBOX_URL with --imap."

    def add_arguments(self, parser):
        parser.add_argument("--imap", action="store_true", help="Poll the IMAP mailbox EMAIL_INBOX_URL.")
        parser.add_argument("--once", action="store_true", help="With --imap: one pass, then exit.")
        parser.add_argument(
            "--interval",
            type=int,
            default=None,
            metavar="SECONDS",
            help="With --imap: seconds between polls (default: EMAIL_INBOX_POLL_SECONDS).",
        )
        parser.add_argument("--recipient", default=None, help="Stdin: the envelope recipient, if the MTA passes it.")

    def handle(self, *args, imap, once, interval, recipient, **options):
        if imap:
            return self._poll(once=once, interval=interval or settings.EMAIL_INBOX_POLL_SECONDS)
        raw = sys.stdin.buffer.read(replies.max_message_bytes() + 1)
        # Read an oversized message to its end (and refuse it): an MTA whose pipe breaks
        # would bounce the mail with an error of its own.
        while sys.stdin.buffer.read(1 << 20):
            pass
        try:
            record = services.respond_by_mail(raw=raw, source="stdin", recipient=recipient)
        except DatabaseError as error:
            self.stderr.write(f"mail_ingest: database unavailable, try again later ({error})")
            sys.exit(EX_TEMPFAIL)
        if record is None:
            self.stdout.write("Already handled.")
        else:
            self.stdout.write(
                f"{record.get_status_display()}{f': {record.get_reason_display()}' if record.reason else ''}"
            )
        return None

    def _poll(self, *, once: bool, interval: int):
        if not settings.EMAIL_INBOX_URL:
            raise CommandError("Set EMAIL_INBOX_URL (imaps://user:password@host/INBOX) to poll a mailbox.")
        try:
            mailbox = inbox.parse_url(settings.EMAIL_INBOX_URL)
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        while True:
            try:
                result = inbox.poll_once(mailbox)
            except (imaplib.IMAP4.error, OSError, DatabaseError) as error:
                # A mail server or database outage: nothing was flagged that was not
                # recorded, so the next poll picks up where this one stopped.
                if once:
                    raise CommandError(f"Polling {mailbox.host} failed: {error}") from None
                logger.warning("Polling %s failed, trying again in %s s: %s", mailbox.host, interval, error)
                close_old_connections()
            else:
                if result.seen or once:
                    self.stdout.write(
                        f"{result.seen} messages: {result.handled} handled, {result.duplicates} already handled"
                        + (f", {result.failed} failed (see the log)." if result.failed else ".")
                    )
            if once:
                return None
            time.sleep(interval)
