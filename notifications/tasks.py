"""Background tasks (Django's tasks API, django-tasks-db backend, `manage.py mail_worker`):
one task per channel, delivering one outbox row."""

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from . import delivery, mail
from .models import OutgoingEmail


def deliver_email(email_id: int) -> str:
    """Send one queued message. Safe to call twice or from two workers at once: the row is
    claimed before SMTP is spoken, so it is sent at most once."""
    email = delivery.claim(OutgoingEmail, email_id)
    if email is None:
        return "skipped"
    try:
        mail.send(email)
    except Exception as error:  # SMTP, socket and TLS errors alike: retry later
        with transaction.atomic():
            retry_at = delivery.record_failure(email, error)
            if retry_at is not None:
                send_email.using(run_after=retry_at).enqueue(email.pk)
        return "retry" if retry_at is not None else "failed"
    delivery.record_sent(OutgoingEmail, email.pk, timezone.now())
    return "sent"


@task()
def send_email(email_id: int) -> str:
    """Deliver one `OutgoingEmail` (failures reschedule themselves)."""
    return deliver_email(email_id)
