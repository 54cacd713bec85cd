"""Background tasks (Django's tasks API, django-tasks-db backend, `manage.py mail_worker`):
one task per channel, delivering one outbox row, and the registry of channels
(`CHANNELS`) that the recovery sweep and the staff's "send again" work through."""

from django_tasks import task

from . import delivery, mail
from .models import OutgoingEmail


def deliver_email(email_id: int) -> str:
    """Send one queued message. Safe to call twice or from two workers at once: the row is
    claimed before SMTP is spoken, so it is sent at most once per claim (see
    `delivery.deliver` for what it returns)."""
    return delivery.deliver(MAIL, email_id, mail.send)


@task()
def send_email(email_id: int) -> str:
    """Deliver one `OutgoingEmail` (failures reschedule themselves)."""
    return deliver_email(email_id)


MAIL = delivery.Channel(name="mail", model=OutgoingEmail, task=send_email, timeout_setting="EMAIL_TIMEOUT")

# Every channel the outbox carries (webhooks and chat join here, each a model and a task).
CHANNELS = (MAIL,)
