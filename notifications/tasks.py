"""Background tasks (Django's tasks API, django-tasks-db backend, `manage.py mail_worker`):
one task per channel, delivering one outbox row, and the registry of channels
(`CHANNELS`) that the recovery sweep and the staff's "send again" work through."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from . import delivery, mail, webhooks
from .models import OutboxMessage, OutgoingEmail, WebhookDelivery

# How soon a webhook delivery waiting behind an earlier one of its group looks again, when
# that one is being sent (or is due) now.
ORDER_RECHECK = timedelta(seconds=1)


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


def deliver_webhook(delivery_id: int) -> str:
    """Deliver one queued webhook, in order within its group: while an earlier delivery to
    the same destination with the same `ordering_key` (one incident's events) is still
    queued or being sent, this one waits (re-enqueued for when that one is next tried; no
    attempt is spent). A delivery whose destination is disabled or gone is given up
    without a request. Then as `delivery.deliver`, and the destination hears of the
    attempt's result (`attempted(key, ok=...)`: it counts consecutive failures)."""
    row = WebhookDelivery.objects.filter(pk=delivery_id, state=OutboxMessage.State.QUEUED).first()
    if row is None:
        return "skipped"
    known = webhooks.destinations()
    if not known.secrets(row.destination):
        WebhookDelivery.objects.filter(pk=row.pk, state=OutboxMessage.State.QUEUED).update(
            state=OutboxMessage.State.FAILED, last_error="Given up: the destination is disabled or gone."
        )
        return "failed"
    wait_until = _earlier_pending(row)
    if wait_until is not None:
        with transaction.atomic():
            WEBHOOK.enqueue(row.pk, run_after=wait_until)
        return "waiting"
    result = delivery.deliver(WEBHOOK, delivery_id, webhooks.send)
    if result in ("sent", "retry", "failed"):
        known.attempted(row.destination, ok=result == "sent")
    return result


def _earlier_pending(row: WebhookDelivery):
    """When to look again if an earlier delivery of `row`'s group is still pending, else
    None. The services lock the incident they change, so one incident's deliveries are
    committed in the order of their ids."""
    if not row.ordering_key:
        return None
    earlier = (
        WebhookDelivery.objects.filter(
            destination=row.destination,
            ordering_key=row.ordering_key,
            state__in=(OutboxMessage.State.QUEUED, OutboxMessage.State.SENDING),
            pk__lt=row.pk,
        )
        .order_by("pk")
        .values_list("pk", "next_attempt_at")
        .first()
    )
    if earlier is None:
        return None
    now = timezone.now()
    return max(earlier[1] or now, now) + ORDER_RECHECK


@task()
def send_webhook(delivery_id: int) -> str:
    """Deliver one `WebhookDelivery` (failures reschedule themselves)."""
    return deliver_webhook(delivery_id)


WEBHOOK = delivery.Channel(name="webhook", model=WebhookDelivery, task=send_webhook, timeout_setting="WEBHOOK_TIMEOUT")

# Every channel the outbox carries, each a model and a task (chat rides on webhooks).
CHANNELS = (MAIL, WEBHOOK)
