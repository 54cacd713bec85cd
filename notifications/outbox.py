"""What the rest of IRMS calls: put a message in the outbox, and the recovery tools (the
workers' sweep and the staff's "send again").

`queue_email` writes the row and enqueues its delivery task inside the caller's
transaction: nothing is sent for a change that rolls back, and nothing is lost for one
that commits. No request ever talks to SMTP.
"""

from django.db import transaction

from . import delivery, mail
from .models import OutgoingEmail
from .tasks import CHANNELS, MAIL


@transaction.atomic
def queue_email(*, kind: str, to: str, context: dict, template: str | None = None, reply_to: str = "") -> OutgoingEmail:
    """Render `emails/<template or kind>` with `context` and queue one message to `to`
    (with its Message-ID, fixed from now on, and `reply_to` as its Reply-To if given)."""
    email = OutgoingEmail.objects.create(kind=kind, to=to, reply_to=reply_to, **mail.render(template or kind, context))
    email.task_id = MAIL.enqueue(email.pk).id
    return email


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
