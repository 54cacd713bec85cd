"""Reply by e-mail: the signed Reply-To addresses notifications carry, and reading the
replies that come back (`manage.py mail_ingest`; the write itself is
`services.respond_by_mail`).

A reply address is `REPLY_TO_ADDRESS` with `{token}` replaced by a token naming one
incident and one recipient, the day it was issued and an HMAC of the three under a key
derived from SECRET_KEY (`salted_hmac`; SECRET_KEY_FALLBACKS still verify, so rotating
the key does not break the addresses in mail already sent). It cannot be guessed, and
changing the incident or the user in it breaks the MAC. It expires REPLY_TO_MAX_AGE_DAYS
after issue (each new notification carries a fresh one); it also stops working, whatever
its age, the moment its user may no longer respond (the incident closed, its visibility
changed, the account deactivated), because permissions are asked at each reply.

Tokens are lower-case letters, digits and `-`, under 40 characters: MTAs may fold the
case of a local part and RFC 5321 allows 64 octets for it.

Nothing here writes; `classify` and friends only read the message and the database.
"""

import base64
import hashlib
import html
import logging
import re
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.html import strip_tags
from mailparser_reply import EmailReplyParser

from accounts.models import normalize_email

from . import attachments, permissions
from .models import InboundMessage, Incident, Status

Reason = InboundMessage.Reason
logger = logging.getLogger(__name__)

_SALT = "irms.incidents.replies.reply-to"
_TOKEN = re.compile(r"([0-9a-z]{1,13})-([0-9a-z]{1,13})-([0-9a-z]{1,6})-([a-z2-7]{24})")
# Reply parsing: the languages whose "On ... wrote:" headers and signatures are recognised.
REPLY_LANGUAGES = ["en", "de", "fr"]
# Headers that name the address a message was delivered to, most specific first.
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc")
AUTOMATIC_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
AUTOREPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "List-Id", "List-Unsubscribe")
BOUNCE_SENDERS = {"mailer-daemon", "postmaster"}


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _today() -> int:
    return int(time.time() // 86400)


def _mac(payload: str, secret: str) -> str:
    digest = salted_hmac(_SALT, payload, secret=secret, algorithm="sha256").digest()
    return base64.b32encode(digest[:15]).decode().lower()


def make_token(incident_pk: int, user_pk: int, *, day: int | None = None) -> str:
    payload = f"{_b36(incident_pk)}-{_b36(user_pk)}-{_b36(_today() if day is None else day)}"
    return f"{payload}-{_mac(payload, settings.SECRET_KEY)}"


def reply_address(incident: Incident, user) -> str:
    """The Reply-To for a notification about `incident` to `user` ('' when the feature is off)."""
    if not settings.REPLY_TO_ADDRESS:
        return ""
    return settings.REPLY_TO_ADDRESS.replace("{token}", make_token(incident.pk, user.pk))


@dataclass(frozen=True)
class Token:
    incident_pk: int
    user_pk: int
    day: int


class TokenError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_token(token: str) -> Token:
    """The (incident, user, day) a token names, or `TokenError(BAD_TOKEN / EXPIRED_TOKEN)`."""
    match = _TOKEN.fullmatch(token.lower())
    if match is None:
        raise TokenError(Reason.BAD_TOKEN)
    payload = token.lower().rpartition("-")[0]
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not any(constant_time_compare(_mac(payload, secret), match[4]) for secret in secrets):
        raise TokenError(Reason.BAD_TOKEN)
    parsed = Token(*(int(part, 36) for part in match.groups()[:3]))
    today = _today()
    if parsed.day > today + 1:  # signed, yet from the future: not one IRMS issued
        raise TokenError(Reason.BAD_TOKEN)
    if today - parsed.day > settings.REPLY_TO_MAX_AGE_DAYS:
        raise TokenError(Reason.EXPIRED_TOKEN)
    return parsed


def _address_pattern() -> re.Pattern | None:
    if not settings.REPLY_TO_ADDRESS:
        return None
    before, _, after = settings.REPLY_TO_ADDRESS.partition("{token}")
    return re.compile(re.escape(before) + r"([^@\s]+?)" + re.escape(after), re.IGNORECASE)


# --- Reading a message ---------------------------------------------------------------------


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def message_key(message: EmailMessage, raw: bytes) -> tuple[str, str]:
    """(the unique key of a message, its Message-ID): the same mail read twice, from two
    ingesters or after a crash, has the same key."""
    message_id = " ".join(str(message.get("Message-ID", "") or "").split())[:255]
    basis = b"mid:" + message_id.encode() if message_id else b"raw:" + raw
    return hashlib.sha256(basis).hexdigest(), message_id


def header(message: EmailMessage, name: str) -> str:
    """A header as one line of text ('' when missing or beyond repair)."""
    try:
        return " ".join(str(message.get(name, "") or "").split())
    except Exception:  # a header the parser cannot decode is as good as absent
        return ""


def sender_address(message: EmailMessage) -> str:
    return normalize_email(parseaddr(header(message, "From"))[1])


def automatic_reason(message: EmailMessage) -> str | None:
    """BOUNCE or AUTO_REPLY for a message no person wrote (RFC 3834, RFC 3464, the
    headers vacation responders and list servers add), else None. Such mail is never
    answered: answering a robot is how mail loops start."""
    sender = sender_address(message)
    return_path = header(message, "Return-Path")
    if (
        message.get_content_type() == "multipart/report"
        or ("Return-Path" in message and return_path.strip("<> ") == "")
        or sender.partition("@")[0] in BOUNCE_SENDERS
        or "X-Failed-Recipients" in message
    ):
        return Reason.BOUNCE
    auto_submitted = header(message, "Auto-Submitted").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return Reason.AUTO_REPLY
    if header(message, "Precedence").lower() in AUTOMATIC_PRECEDENCE:
        return Reason.AUTO_REPLY
    if any(name in message for name in AUTOREPLY_HEADERS):
        return Reason.AUTO_REPLY
    return None


def find_token(message: EmailMessage, recipient: str | None = None) -> str | None:
    """The token of the first reply address the message was sent to (the envelope
    recipient the MTA gave, if any, first)."""
    pattern = _address_pattern()
    if pattern is None:
        return None
    candidates = [recipient] if recipient else []
    for name in RECIPIENT_HEADERS:
        try:
            values = [str(value) for value in message.get_all(name, [])]
        except Exception as error:  # an undecodable header names no recipient
            logger.info("Skipping an undecodable %s header: %s", name, error)
            continue
        candidates += [address for _, address in getaddresses(values)]
    for address in candidates:
        match = pattern.fullmatch(address.strip())
        if match:
            return match[1]
    return None


def reply_text(message: EmailMessage) -> str:
    """What the sender wrote: the text body (or the HTML one as text), without the quoted
    history and the signature (mail-parser-reply)."""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    content = body.get_content()
    if body.get_content_subtype() == "html":
        content = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", content)
        content = html.unescape(strip_tags(content))
    content = content.replace("\r\n", "\n")
    replies = EmailReplyParser(languages=REPLY_LANGUAGES).read(content).replies
    return replies[0].body.strip() if replies else ""


def attached_files(message: EmailMessage) -> list[SimpleUploadedFile]:
    """The files attached to the message, as uploads for the attachment rules. Inline
    pictures that belong to an HTML body (a signature's logo: a Content-ID, no
    "attachment" disposition) are not attachments."""
    files = []
    for part in message.iter_attachments():
        if part.is_multipart() and part.get_content_type() != "message/rfc822":
            continue
        if part.get_content_disposition() != "attachment" and "Content-ID" in part:
            continue
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            content = inner[0].as_bytes() if isinstance(inner, list) and inner else b""
        else:
            content = part.get_payload(decode=True) or b""
        name = part.get_filename() or "attachment"
        files.append(SimpleUploadedFile(attachments.display_name(name), content))
    return files


def max_message_bytes() -> int:
    """The largest message read: the text limit plus every attachment allowed, base64-encoded."""
    return settings.MAX_REQUEST_BODY_BYTES + settings.ATTACHMENT_MAX_FILES * settings.ATTACHMENT_MAX_BYTES * 4 // 3


# --- Deciding ------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What to do with a message: respond (`reason` None) or refuse with `reason`."""

    reason: str | None
    detail: str = ""
    incident: Incident | None = None
    user: object = None
    text: str = ""
    files: list = field(default_factory=list)


def classify(message: EmailMessage, *, recipient: str | None = None) -> Verdict:
    """Read a message and decide, with the permission layer, whether it may become a
    response, and whose to which incident."""
    automatic = automatic_reason(message)
    if automatic:
        return Verdict(automatic, "Sent by a machine; never answered.")
    token = find_token(message, recipient)
    if token is None:
        return Verdict(Reason.NO_TOKEN, "No recipient is a reply address.")
    try:
        parsed = read_token(token)
    except TokenError as error:
        return Verdict(error.reason, f"Reply address token {token[:60]!r}.")
    incident = Incident.objects.filter(pk=parsed.incident_pk).first()
    user = get_user_model().objects.filter(pk=parsed.user_pk).first()
    if incident is None or user is None:
        return Verdict(Reason.NOT_ALLOWED, "The incident or the account of this reply address is gone.")
    sender = sender_address(message)
    if not sender or sender != user.email:
        return Verdict(
            Reason.UNKNOWN_SENDER,
            f"The reply address is {user.username}'s, the mail is from another address.",
            incident,
        )
    if not permissions.can_view(user, incident):
        return Verdict(Reason.NOT_ALLOWED, "The sender may no longer see this incident.", incident, user)
    if incident.status == Status.CLOSED:
        return Verdict(Reason.CLOSED, "The incident is closed.", incident, user)
    text = reply_text(message)
    if not text:
        return Verdict(Reason.EMPTY, "Nothing is left once quoted text and signature are removed.", incident, user)
    return Verdict(None, "", incident, user, text, attached_files(message))


REFUSAL_EXPLANATIONS = {
    Reason.BAD_TOKEN: "The address you replied to is not a valid IRMS reply address.",
    Reason.EXPIRED_TOKEN: "The address you replied to has expired. Reply to a more recent notification, "
    "or respond on the site.",
    Reason.NOT_ALLOWED: "You may not respond to this incident.",
    Reason.CLOSED: "The incident is closed and takes no more responses.",
    Reason.EMPTY: "We found no text in your reply once the quoted message and your signature were removed.",
    Reason.INVALID: "Your reply or one of its attachments was refused:",
    Reason.UNKNOWN_SENDER: "Replies are only accepted from the address the notification was sent to.",
}
