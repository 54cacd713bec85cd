"""The mail channel: rendering a message from `templates/emails/` and speaking SMTP.

Links in mail come from SITE_URL, never from a request's Host header.
"""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from .models import OutgoingEmail


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


def send(email: OutgoingEmail) -> None:
    """One SMTP conversation (or whatever EMAIL_BACKEND is); raises on any failure."""
    message = EmailMultiAlternatives(
        subject=email.subject, body=email.body_text, from_email=settings.DEFAULT_FROM_EMAIL, to=[email.to]
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    message.send()
