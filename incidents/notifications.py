"""What mail goes out, to whom: recipients and rendering, and the delivery of one message.

Services (and the account views for sign-in) call the event functions below inside their
transaction. Each writes one `OutgoingEmail` row per recipient and enqueues its delivery
task in that same transaction: nothing is sent for a change that rolls back, and nothing
is lost for one that commits. No request ever talks to SMTP.

Recipients are chosen with the same predicates as everything else (`permissions.py`):
nobody hears of an incident they may not see, nobody hears of their own action (except
the reporter's confirmation), and each user's preferences are respected.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from irms_site.security import client_ip

from . import permissions
from .models import RESPONDERS_GROUP, Incident, OutgoingEmail, Response, Severity

logger = logging.getLogger(__name__)

# Delay before each retry: the first within 30 seconds, eight attempts over about two hours.
RETRY_DELAYS = [
    timedelta(seconds=15),
    timedelta(minutes=1),
    timedelta(minutes=3),
    timedelta(minutes=7),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(minutes=60),
]
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


def absolute(path: str) -> str:
    """Links in mail come from SITE_URL, never from a request's Host header."""
    return settings.SITE_URL + path


def one_line(text: str, limit: int = 200) -> str:
    """A header-safe subject: any CR/LF or other whitespace run becomes one space."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@transaction.atomic
def queue(*, kind: str, to: str, context: dict, template: str | None = None) -> OutgoingEmail:
    """Render `templates/emails/<template>{_subject.txt,.txt,.html}` and queue one message.
    The row and its task commit together (inside the caller's transaction if there is one)."""
    from .tasks import send_email

    template = template or kind
    context = {"site_url": settings.SITE_URL, **context}
    email = OutgoingEmail.objects.create(
        kind=kind,
        to=to,
        subject=one_line(render_to_string(f"emails/{template}_subject.txt", context)),
        body_text=render_to_string(f"emails/{template}.txt", context),
        body_html=render_to_string(f"emails/{template}.html", context),
    )
    send_email.enqueue(email.pk)
    return email


def _incident_context(incident: Incident) -> dict:
    return {"incident": incident, "incident_url": absolute(incident.get_absolute_url())}


def _recipients(incident: Incident, *, exclude, preference: str):
    """The reporter and everyone who responded, who may still see the incident, want
    this kind of mail, and are not `exclude` (the person who acted)."""
    User = get_user_model()
    users = permissions.with_responder_flag(
        User.objects.filter(is_active=True)
        .filter(Q(pk=incident.reporter_id) | Q(incident_responses__incident=incident))
        .exclude(pk=getattr(exclude, "pk", None))
        .filter(**{preference: True})
        .distinct()
        .order_by("pk")
    )
    return [user for user in users if permissions.can_view(user, incident)]


# --- Events ------------------------------------------------------------------------------


def welcome(user) -> None:
    queue(
        kind="welcome",
        to=user.email,
        context={"user": user, "dashboard_url": absolute(reverse("dashboard"))},
    )


def sign_in_notice(user, request) -> None:
    if not user.email_on_sign_in:
        return
    queue(
        kind="sign_in",
        to=user.email,
        context={
            "user": user,
            "when": timezone.now(),
            "ip": client_ip(request) or "unknown",
            "browser": one_line(request.headers.get("User-Agent", "unknown"), 300),
            "password_change_url": absolute(reverse("accounts:password_change")),
            "password_reset_url": absolute(reverse("accounts:password_reset")),
        },
    )


def incident_reported(incident: Incident) -> None:
    reporter = incident.reporter
    context = _incident_context(incident)
    if reporter.email_on_my_report:
        queue(kind="incident_reported", to=reporter.email, context={**context, "user": reporter})
    User = get_user_model()
    responders = permissions.with_responder_flag(
        User.objects.filter(is_active=True, groups__name=RESPONDERS_GROUP, email_on_new_incident=True)
        .exclude(pk=reporter.pk)
        .order_by("pk")
    )
    urgent = incident.severity in (Severity.HIGH, Severity.CRITICAL)
    for user in responders:
        if permissions.can_view(user, incident):
            queue(kind="incident_alert", to=user.email, context={**context, "user": user, "urgent": urgent})


def response_added(response: Response) -> None:
    incident = response.incident
    for user in _recipients(incident, exclude=response.author, preference="email_on_response"):
        queue(
            kind="response_added",
            to=user.email,
            context={**_incident_context(incident), "user": user, "response": response},
        )


def status_changed(incident: Incident, *, actor, old_status: str) -> None:
    for user in _recipients(incident, exclude=actor, preference="email_on_status_change"):
        queue(
            kind="status_changed",
            to=user.email,
            context={**_incident_context(incident), "user": user, "actor": actor, "old_status": old_status},
        )


# --- Delivery ----------------------------------------------------------------------------


def deliver(email_id: int) -> str:
    """Send one queued message. Safe to call twice or from two workers at once: the row is
    claimed (queued -> sending) in a short transaction before the SMTP conversation, so it
    is sent at most once, and no database lock is held while SMTP is slow."""
    with transaction.atomic():
        email = OutgoingEmail.objects.select_for_update().filter(pk=email_id).first()
        if email is None or email.state != OutgoingEmail.State.QUEUED:
            return "skipped"
        email.state = OutgoingEmail.State.SENDING
        email.attempts += 1
        email.claimed_at = timezone.now()
        email.save(update_fields=["state", "attempts", "claimed_at"])

    message = EmailMultiAlternatives(
        subject=email.subject, body=email.body_text, from_email=settings.DEFAULT_FROM_EMAIL, to=[email.to]
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    try:
        message.send()
    except Exception as error:  # SMTP, socket and TLS errors alike: retry later
        return _failed(email, error)
    _record_sent(email.pk, timezone.now())
    return "sent"


def _record_sent(pk: int, sent_at) -> None:
    """The message has left: record it even across a database blink (about a minute of
    retries), or a later retry of a row still marked `sending` would send it twice."""
    for pause in (1, 2, 4, 8, 15, 30, 0):
        try:
            OutgoingEmail.objects.filter(pk=pk).update(state=OutgoingEmail.State.SENT, sent_at=sent_at, last_error="")
            return
        except (OperationalError, InterfaceError):
            if not pause:
                raise
            connection.close_if_unusable_or_obsolete()
            time.sleep(pause)


def _failed(email: OutgoingEmail, error: Exception) -> str:
    from .tasks import send_email

    email.last_error = f"{type(error).__name__}: {error}"[:2000]
    with transaction.atomic():
        if email.attempts >= MAX_ATTEMPTS:
            email.state = OutgoingEmail.State.FAILED
            email.next_attempt_at = None
            logger.error("Giving up on e-mail %s (%s) after %s attempts", email.pk, email.kind, email.attempts)
        else:
            email.state = OutgoingEmail.State.QUEUED
            email.next_attempt_at = timezone.now() + RETRY_DELAYS[email.attempts - 1]
            send_email.using(run_after=email.next_attempt_at).enqueue(email.pk)
            logger.warning("E-mail %s (%s) failed, retry at %s", email.pk, email.kind, email.next_attempt_at)
        email.save(update_fields=["state", "last_error", "next_attempt_at"])
    return "retry" if email.state == OutgoingEmail.State.QUEUED else "failed"


def requeue_orphans(*, older_than: timedelta = timedelta(minutes=5)) -> int:
    """Queue a task again for every queued message that has none waiting: its worker died
    after taking the task but before claiming the message. Harmless if the task was only
    slow, since `deliver` claims the row first. The mail worker calls this when it starts."""
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from .tasks import send_email

    cutoff = timezone.now() - older_than
    waiting = {
        int(args_kwargs["args"][0])
        for args_kwargs in DBTaskResult.objects.filter(
            task_path=send_email.module_path, status=TaskResultStatus.READY
        ).values_list("args_kwargs", flat=True)
    }
    orphans = (
        OutgoingEmail.objects.filter(state=OutgoingEmail.State.QUEUED)
        .filter(Q(next_attempt_at__lt=cutoff) | Q(next_attempt_at__isnull=True, created_at__lt=cutoff))
        .exclude(pk__in=waiting)
        .values_list("pk", flat=True)
    )
    count = 0
    for pk in orphans.iterator():
        send_email.enqueue(pk)
        count += 1
    return count


def stuck_after() -> timedelta:
    """A message claimed longer ago than this is stuck (its worker died mid-send): an SMTP
    conversation cannot last longer than a few socket timeouts."""
    return timedelta(seconds=3 * (settings.EMAIL_TIMEOUT or 60))


@transaction.atomic
def retry(emails) -> int:
    """Queue failed or stuck messages again, from the admin. Sent messages, and ones a
    worker may still be sending, are left alone, so nothing goes out twice."""
    from .tasks import send_email

    stuck = Q(state=OutgoingEmail.State.SENDING, claimed_at__lt=timezone.now() - stuck_after())
    count = 0
    for email in emails.select_for_update().filter(Q(state=OutgoingEmail.State.FAILED) | stuck):
        email.state, email.attempts, email.next_attempt_at = OutgoingEmail.State.QUEUED, 0, None
        email.save(update_fields=["state", "attempts", "next_attempt_at"])
        send_email.enqueue(email.pk)
        count += 1
    return count
