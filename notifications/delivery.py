"""How an outbox row is delivered, whatever its channel: the at-most-once claim, the
record of success that survives a database blink, and the retry schedule.

Every channel's task follows the same steps: `claim` the row (queued -> sending, in a
short transaction, so no lock is held while the outside world is slow), talk to the
outside world, then `record_sent` or `record_failure`.
"""

import logging
import time
from datetime import timedelta

from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from .models import OutboxMessage

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

State = OutboxMessage.State


def claim(model, pk: int):
    """Take a queued row for delivery (queued -> sending), or None if another worker has it,
    it went out already, or it no longer exists."""
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=pk).first()
        if row is None or row.state != State.QUEUED:
            return None
        row.state = State.SENDING
        row.attempts += 1
        row.claimed_at = timezone.now()
        row.save(update_fields=["state", "attempts", "claimed_at"])
    return row


def record_sent(model, pk: int, sent_at) -> None:
    """The message has left: record it even across a database blink (about a minute of
    retries), or a later retry of a row still marked `sending` would send it twice."""
    for pause in (1, 2, 4, 8, 15, 30, 0):
        try:
            model.objects.filter(pk=pk).update(state=State.SENT, sent_at=sent_at, last_error="")
            return
        except (OperationalError, InterfaceError):
            if not pause:
                raise
            connection.close_if_unusable_or_obsolete()
            time.sleep(pause)


def record_failure(row, error: Exception):
    """A delivery attempt failed: queue the row for a later attempt (returning when), or
    give up after MAX_ATTEMPTS (returning None). The caller enqueues the retry's task in
    the same transaction (`transaction.atomic` around both)."""
    row.last_error = f"{type(error).__name__}: {error}"[:2000]
    if row.attempts >= MAX_ATTEMPTS:
        row.state = State.FAILED
        row.next_attempt_at = None
        logger.error("Giving up on %s %s after %s attempts", row._meta.model_name, row.pk, row.attempts)
    else:
        row.state = State.QUEUED
        row.next_attempt_at = timezone.now() + RETRY_DELAYS[row.attempts - 1]
        logger.warning("%s %s failed, retry at %s", row._meta.model_name, row.pk, row.next_attempt_at)
    row.save(update_fields=["state", "last_error", "next_attempt_at"])
    return row.next_attempt_at
