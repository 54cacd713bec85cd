"""What the rest of IRMS calls: put a message in the outbox, and the recovery tools (the
workers' sweep and the staff's "send again").

`queue_email` writes the row and enqueues its delivery task inside the caller's
transaction: nothing is sent for a change that rolls back, and nothing is lost for one
that commits. No request ever talks to SMTP.
"""

from django.db import transaction
from django.db.models import Exists, OuterRef

from . import delivery, mail
from .models import OutboxMessage, OutgoingEmail, WebhookDelivery
from .tasks import CHANNELS, MAIL, WEBHOOK


@transaction.atomic
def queue_email(*, kind: str, to: str, context: dict, template: str | None = None, reply_to: str = "") -> OutgoingEmail:
    """Render `emails/<template or kind>` with `context` and queue one message to `to`
    (with its Message-ID, fixed from now on, and `reply_to` as its Reply-To if given)."""
    email = OutgoingEmail.objects.create(kind=kind, to=to, reply_to=reply_to, **mail.render(template or kind, context))
    email.task_id = MAIL.enqueue(email.pk).id
    return email


@transaction.atomic
def queue_webhook(
    *, event: str, destination: str, url: str, body: str, ordering_key: str = "", headers: dict | None = None
) -> WebhookDelivery:
    """Queue one POST of `body` (JSON text, sent as it is) to `url` for `destination` (the
    caller's key, resolved at each attempt through settings.WEBHOOK_DESTINATIONS for its
    secrets). Deliveries sharing `destination` and a non-empty `ordering_key` are
    delivered in the order they were queued."""
    row = WebhookDelivery.objects.create(
        event=event, destination=destination, url=url, body=body, ordering_key=ordering_key, headers=headers or {}
    )
    row.task_id = WEBHOOK.enqueue(row.pk).id
    return row


@transaction.atomic
def redeliver(deliveries) -> int:
    """Staff's "redeliver": a new delivery for each finished (sent or failed) one among
    `deliveries`, with the same body and the same `webhook-id` (a receiver that already
    has it may recognise it), queued behind whatever is pending for its destination.
    Deliveries still queued or being sent, and ones redelivered already (a later copy
    exists), are left alone, so asking twice queues one copy. Returns how many were queued."""
    later_copy = WebhookDelivery.objects.filter(webhook_id=OuterRef("webhook_id"), pk__gt=OuterRef("pk"))
    finished = (
        deliveries.filter(state__in=(OutboxMessage.State.SENT, OutboxMessage.State.FAILED))
        .exclude(Exists(later_copy))
        .order_by("pk")
    )
    count = 0
    for row in finished:
        copy = WebhookDelivery.objects.create(
            event=row.event,
            destination=row.destination,
            ordering_key=row.ordering_key,
            url=row.url,
            body=row.body,
            headers=row.headers,
            webhook_id=row.webhook_id,
        )
        WEBHOOK.enqueue(copy.pk)
        count += 1
    return count


def requeue_orphans() -> int:
    """Take back, on every channel, what workers that died left behind: their tasks left
    RUNNING, their rows left `sending` past the lease, and `queued` rows whose task went
    with them (`delivery.recover`). Harmless if a worker was only slow, since delivery
    claims the row first. Every running mail worker calls this every 30 s. Returns how many
    messages were queued again."""
    return sum(delivery.recover(channel).requeued for channel in CHANNELS)


def retry(emails) -> int:
    """Queue failed messages again, and ones whose worker died mid-send (lease expired),
    from the admin. Sent messages, and ones a live worker may still be sending, are left
    alone, so nothing goes out twice."""
    return delivery.retry(MAIL, emails)
