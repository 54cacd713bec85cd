"""What the rest of IRMS calls: put a message in the outbox, and the staff's recovery tools.

`queue_email` writes the row and enqueues its delivery task inside the caller's
transaction: nothing is sent for a change that rolls back, and nothing is lost for one
that commits. No request ever talks to SMTP.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from . import mail
from .models import OutgoingEmail
from .tasks import send_email

State = OutgoingEmail.State


@transaction.atomic
def queue_email(*, kind: str, to: str, context: dict, template: str | None = None) -> OutgoingEmail:
    """Render `emails/<template or kind>` with `context` and queue one message to `to`."""
    email = OutgoingEmail.objects.create(kind=kind, to=to, **mail.render(template or kind, context))
    send_email.enqueue(email.pk)
    return email


def requeue_orphans(*, older_than: timedelta = timedelta(minutes=5)) -> int:
    """Queue a task again for every queued message that has none waiting: its worker died
    after taking the task but before claiming the message. Harmless if the task was only
    slow, since delivery claims the row first. The mail worker calls this when it starts."""
    cutoff = timezone.now() - older_than
    waiting = {
        int(args_kwargs["args"][0])
        for args_kwargs in DBTaskResult.objects.filter(
            task_path=send_email.module_path, status=TaskResultStatus.READY
        ).values_list("args_kwargs", flat=True)
    }
    orphans = (
        OutgoingEmail.objects.filter(state=State.QUEUED)
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
    stuck = Q(state=State.SENDING, claimed_at__lt=timezone.now() - stuck_after())
    count = 0
    for email in emails.select_for_update().filter(Q(state=State.FAILED) | stuck):
        email.state, email.attempts, email.next_attempt_at = State.QUEUED, 0, None
        email.save(update_fields=["state", "attempts", "next_attempt_at"])
        send_email.enqueue(email.pk)
        count += 1
    return count
