"""The IMAP side of reply by e-mail: polling the mailbox EMAIL_INBOX_URL names and handing
each new message to `services.respond_by_mail` (the stdin side is `manage.py mail_ingest`
itself).

A message is marked handled (the `\\Seen` flag and the keyword `IrmsIngested`) only after
its record is committed; the search asks for messages without the keyword, so a person
reading the mailbox hides nothing from IRMS. A crash between the commit and the flag
leaves the message to the next poll, whose record insert finds the key taken and only
flags it: nothing is processed twice, by one ingester or by several at once.
"""

import imaplib
import logging
import re
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from . import services

logger = logging.getLogger(__name__)

KEYWORD = "IrmsIngested"
IMAP_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Inbox:
    secure: bool
    host: str
    port: int
    username: str
    password: str
    mailbox: str


def parse_url(url: str) -> Inbox:
    """`imaps://user:pw@host[:port]/MAILBOX` (TLS, port 993) or `imap://...` (port 143,
    STARTTLS when the server offers it); the mailbox defaults to INBOX. User and password
    may be percent-encoded."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ImproperlyConfigured(f"EMAIL_INBOX_URL is not a valid URL ({error}).") from None
    if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
        raise ImproperlyConfigured("EMAIL_INBOX_URL must look like imaps://user:password@host/INBOX.")
    secure = parts.scheme == "imaps"
    return Inbox(
        secure=secure,
        host=parts.hostname,
        port=port or (993 if secure else 143),
        username=unquote(parts.username),
        password=unquote(parts.password or ""),
        mailbox=unquote(parts.path.lstrip("/")) or "INBOX",
    )


def connect(inbox: Inbox) -> imaplib.IMAP4:
    if inbox.secure:
        client = imaplib.IMAP4_SSL(
            inbox.host, inbox.port, ssl_context=ssl.create_default_context(), timeout=IMAP_TIMEOUT_SECONDS
        )
    else:
        client = imaplib.IMAP4(inbox.host, inbox.port, timeout=IMAP_TIMEOUT_SECONDS)
        if "STARTTLS" in client.capabilities:
            client.starttls(ssl.create_default_context())
    client.login(inbox.username, inbox.password)
    status, _ = client.select(_quoted(inbox.mailbox))
    if status != "OK":
        raise imaplib.IMAP4.error(f"cannot open the mailbox {inbox.mailbox!r}")
    return client


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fetched_bytes(data) -> bytes | None:
    """The message literal of a `UID FETCH n (BODY.PEEK[])` answer."""
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and re.search(rb"BODY\[\]", item[0]):
            return item[1]
    return None


@dataclass
class PollResult:
    seen: int = 0
    handled: int = 0  # records written by this ingester
    duplicates: int = 0  # already recorded (by another ingester, or before a crash)
    failed: int = 0  # left unflagged after an unexpected error, for the next poll


def poll(client: imaplib.IMAP4) -> PollResult:
    """Handle every message of the selected mailbox not marked handled yet."""
    result = PollResult()
    status, data = client.uid("SEARCH", "UNKEYWORD", KEYWORD)
    if status != "OK":
        raise imaplib.IMAP4.error(f"SEARCH failed: {data!r}")
    for uid in (data[0] or b"").split():
        status, fetched = client.uid("FETCH", uid, "(BODY.PEEK[])")
        raw = _fetched_bytes(fetched) if status == "OK" else None
        if raw is None:  # expunged meanwhile (another ingester moved it, or a person)
            continue
        result.seen += 1
        try:
            record = services.respond_by_mail(raw=raw, source="imap")
        except DatabaseError:
            raise  # an outage: stop this pass, the next one starts over
        except Exception:
            # A message that trips a bug must not stop the others: it stays unflagged, to
            # be tried again by each poll (and handled once the bug is fixed).
            logger.exception("Could not handle the inbound message with UID %s", uid.decode())
            result.failed += 1
            continue
        if record is None:
            result.duplicates += 1
        else:
            result.handled += 1
        client.uid("STORE", uid, "+FLAGS", f"(\\Seen {KEYWORD})")
    return result


def poll_once(inbox: Inbox) -> PollResult:
    client = connect(inbox)
    try:
        return poll(client)
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError) as error:  # the work is done and recorded
            logger.info("IMAP logout failed: %s", error)
