"""The mail channel: rendering a message from `templates/emails/` and speaking SMTP.

Links in mail come from SITE_URL, never from a request's Host header.
"""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string

from .models import OutgoingEmail

logger = logging.getLogger(__name__)


def absolute(path: str) -> str:
    return settings.SITE_URL + path


def one_line(text: str, limit: int = 200) -> str:
    """A header-safe subject: any CR/LF or other whitespace run becomes one space."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(template: str, context: dict) -> dict:
    """Subject, text and HTML bodies of `emails/<template>{_subject.txt,.txt,.html}`."""
    context = {"site_url": settings.SITE_URL, **context}
    return {
        "subject": one_line(render_to_string(f"emails/{template}_subject.txt", context)),
        "body_text": render_to_string(f"emails/{template}.txt", context),
        "body_html": render_to_string(f"emails/{template}.html", context),
    }


def send(email: OutgoingEmail, renew=lambda: None) -> None:
    """One SMTP conversation (or whatever EMAIL_BACKEND is); raises on any failure before
    the server took the message. `renew()` (the delivery's lease) is called once the
    connection is up, just before the message itself: a worker that took too long to get
    there and lost its row stops before sending. Every attempt carries the row's own
    Message-ID, so a copy sent again after a crash is recognisably the same message."""
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=email.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
        reply_to=[email.reply_to] if email.reply_to else None,
        # RFC 3834: every IRMS mail is machine-made, so vacation responders and other
        # automatic repliers leave it alone (no mail loop with the reply-by-mail ingester).
        headers={"Message-ID": email.message_id, "Auto-Submitted": "auto-generated"},
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    connection = get_connection()
    try:
        connection.open()
        renew()
        connection.send_messages([message])
    finally:
        # Once the server has said 250 the message is its; a QUIT that times out must not
        # turn that into a failure, and so into a second copy.
        try:
            connection.close()
        except Exception as error:  # any failure to say goodbye is harmless
            logger.info("Closing the mail connection failed after the conversation: %s", error)
