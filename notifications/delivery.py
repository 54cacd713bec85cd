"""How an outbox row is delivered, whatever its channel: the claim under a lease, the
record of success that survives a database blink, the retry schedule, and the recovery of
whatever a dead worker left behind.

A `Channel` is an `OutboxMessage` model and the task that delivers one of its rows (mail
is the first; see `tasks.CHANNELS`). Every channel delivers a row the same way
(`deliver`): `claim` it (queued -> sending, leased to this worker for `Channel.lease()`,
in a short transaction, so no lock is held while the outside world is slow), talk to the
outside world, `renew` the lease just before the step that cannot be taken back (for
mail, the message itself), then `record_sent` or `record_failure`.

A worker can die anywhere in between (`kill -9`, a lost machine, a database outage that
ends its loop). `recover`, which every running mail worker calls every 30 s, then takes
back what it left: tasks left RUNNING, rows left `sending` past their lease, and `queued`
rows whose task is gone. Every take-back is a compare-and-set, so two workers recovering
the same row at once recover it once, and a row is only ever claimed from `queued`, so
it is never delivered by two workers at once while its lease holds; a worker slower than
its lease finds at `renew` that the row was taken back, and stops there. A worker that dies
after the outside world took a message but before `record_sent` leaves it unknown whether
the message left; it is then delivered again, as the same message (the mail channel
sends the row's Message-ID every time).
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks.base import Task
from django_tasks_db.models import DBTaskResult

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

# A lease lasts this many of the channel's socket timeouts: one conversation gives up
# after the first timeout it hits, so a live worker is done well before its lease ends.
LEASE_TIMEOUTS = 3
DEFAULT_TIMEOUT_SECONDS = 20
# How long `record_sent` keeps trying through a database outage.
RECORD_SENT_PATIENCE_SECONDS = 120
# Rows (or tasks) one recovery step takes back per query.
RECOVERY_BATCH = 500

State = OutboxMessage.State


class LeaseLost(Exception):
    """This worker's lease on a row ran out and another worker took the row back: this one
    must not go on (raised by `renew`)."""


class WorkerLost(Exception):
    """Recorded on a task that was still RUNNING long after its worker must have finished it:
    the worker died. Its row has been (or will be) taken back by `recover`."""


@dataclass(frozen=True)
class Channel:
    """One way a message leaves: the outbox model whose rows it delivers, the task that
    delivers one row (called with the row's pk), and the setting holding the timeout, in
    seconds, of one blocking step of a conversation with the outside world."""

    name: str
    model: type[OutboxMessage]
    task: Task
    timeout_setting: str

    def lease(self) -> timedelta:
        """How long a claim lasts (LEASE_TIMEOUTS socket timeouts): with EMAIL_TIMEOUT at its
        default 20 s, a mail claim lasts 60 s, and a dead worker's row is back within 90 s
        (the lease and a 30-s sweep)."""
        seconds = getattr(settings, self.timeout_setting, None) or DEFAULT_TIMEOUT_SECONDS
        return timedelta(seconds=LEASE_TIMEOUTS * seconds)

    def enqueue(self, pk: int, *, run_after=None):
        """Enqueue the task that delivers row `pk` (in the caller's transaction) and note
        it on the row; returns the task's result."""
        task = self.task if run_after is None else self.task.using(run_after=run_after)
        result = task.enqueue(pk)
        self.model.objects.filter(pk=pk).update(task_id=result.id)
        return result


# --- Delivering one row ----------------------------------------------------------------


def deliver(channel: Channel, pk: int, send) -> str:
    """Deliver row `pk` with `send(row, renew)`, which raises on failure and calls
    `renew()` right before the step that cannot be taken back. Safe to call twice or from
    two workers at once: only one claims the row. Returns what happened: "sent", "retry"
    (queued for a later attempt), "failed" (given up), "skipped" (not queued: another
    worker has it, it went out already, or it no longer exists) or "lost" (this attempt
    outlived its lease and another worker has the row now)."""
    row = claim(channel, pk)
    if row is None:
        return "skipped"
    try:
        send(row, lambda: renew(channel, row))
    except Exception as error:  # network, protocol and TLS errors alike: retry later
        with transaction.atomic():
            if not record_failure(row, error):
                return "lost"
            if row.state == State.QUEUED:
                channel.enqueue(row.pk, run_after=row.next_attempt_at)
        return "retry" if row.state == State.QUEUED else "failed"
    record_sent(channel.model, row.pk, timezone.now())
    return "sent"


def claim(channel: Channel, pk: int):
    """Take a queued row for delivery (queued -> sending, leased until now + the channel's
    lease), or None if another worker has it, it went out already, or it no longer exists."""
    with transaction.atomic():
        row = channel.model.objects.select_for_update().filter(pk=pk).first()
        if row is None or row.state != State.QUEUED:
            return None
        now = timezone.now()
        row.state = State.SENDING
        row.attempts += 1
        row.claimed_at = now
        row.lease_expires_at = now + channel.lease()
        row.save(update_fields=["state", "attempts", "claimed_at", "lease_expires_at"])
    return row


def renew(channel: Channel, row) -> None:
    """Extend this worker's lease on `row` to a full lease from now, so that it covers the
    step that follows, however long the conversation took to get there. Compare-and-set
    on the lease this worker holds: raises LeaseLost, and changes nothing, if the lease ran
    out and another worker took the row back meanwhile."""
    lease = timezone.now() + channel.lease()
    kept = channel.model.objects.filter(pk=row.pk, state=State.SENDING, lease_expires_at=row.lease_expires_at)
    if not kept.update(lease_expires_at=lease):
        raise LeaseLost(f"{channel.name} {row.pk}: the lease ran out and another worker took the row back")
    row.lease_expires_at = lease


def record_sent(model, pk: int, sent_at) -> None:
    """The message has left: record it even across a database outage of up to two minutes,
    or the row's expired lease would have it delivered again. It tries every second, so
    that once the database is back it records the send before any worker's sweep (every
    30 s) finds the lease expired. Unconditional: even if this worker's lease ran out and
    another worker took the row, the message did leave."""
    deadline = time.monotonic() + RECORD_SENT_PATIENCE_SECONDS
    while True:
        try:
            model.objects.filter(pk=pk).update(state=State.SENT, sent_at=sent_at, last_error="", lease_expires_at=None)
            return
        except (OperationalError, InterfaceError):
            if time.monotonic() >= deadline:
                raise
            connection.close_if_unusable_or_obsolete()
            time.sleep(1)


def record_failure(row, error: Exception) -> bool:
    """A delivery attempt failed: queue the row for a later attempt (`row.next_attempt_at`),
    or give up after MAX_ATTEMPTS (`row.state` is then FAILED). The caller enqueues the
    retry's task in the same transaction. Returns False, changing nothing, if the row is no
    longer this attempt's (its lease ran out and another worker took it over)."""
    row.last_error = f"{type(error).__name__}: {error}"[:2000]
    if row.attempts >= MAX_ATTEMPTS:
        row.state, row.next_attempt_at = State.FAILED, None
    else:
        row.state, row.next_attempt_at = State.QUEUED, timezone.now() + RETRY_DELAYS[row.attempts - 1]
    updated = (
        type(row)
        .objects.filter(pk=row.pk, state=State.SENDING, lease_expires_at=row.lease_expires_at)
        .update(state=row.state, last_error=row.last_error, next_attempt_at=row.next_attempt_at, lease_expires_at=None)
    )
    name = f"{row._meta.model_name} {row.pk}"
    if not updated:
        logger.warning("%s failed after its lease ran out; another worker has it now (%s)", name, row.last_error)
        return False
    if row.state == State.FAILED:
        logger.error("Giving up on %s after %s attempts", name, row.attempts)
    else:
        logger.warning("%s failed, retry at %s", name, row.next_attempt_at)
    return True


# --- Taking back what a dead worker left --------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    """What one `recover` call took back on one channel."""

    tasks_closed: int = 0  # RUNNING tasks of dead workers, now FAILED (WorkerLost)
    leases_expired: int = 0  # `sending` rows past their lease, queued again (or given up)
    tasks_replaced: int = 0  # `queued` rows whose task was gone, given a new one

    @property
    def requeued(self) -> int:
        return self.leases_expired + self.tasks_replaced


def recover(channel: Channel, *, now=None) -> Recovery:
    """Take back, on `channel`, everything a worker that died left behind (see the module's
    docstring). Any number of workers may run this at once. Costs a few indexed queries
    when there is nothing to recover: the rows it looks at are the `sending` ones past
    their lease and the `queued` ones due for longer than a lease (the backlog)."""
    now = now or timezone.now()
    gone_before = now - channel.lease()
    return Recovery(
        tasks_closed=close_dead_tasks(channel, started_before=gone_before, now=now),
        leases_expired=requeue_expired_leases(channel, now=now),
        tasks_replaced=replace_lost_tasks(channel, due_before=gone_before),
    )


def close_dead_tasks(channel: Channel, *, started_before, now) -> int:
    """Mark FAILED (WorkerLost) the channel's tasks still RUNNING that started before
    `started_before` (a lease ago): their worker died, or they would have finished. A task
    whose row is still leased is left alone (its worker may be alive: the row was claimed
    late, after a database stall). Compare-and-set on status and start, so a worker that
    does finish such a task still records its own result."""
    running = list(
        DBTaskResult.objects.filter(
            task_path=channel.task.module_path, status=TaskResultStatus.RUNNING, started_at__lt=started_before
        ).values_list("pk", "started_at", "args_kwargs", "worker_ids")[:RECOVERY_BATCH]
    )
    leased = set(
        channel.model.objects.filter(
            pk__in=[args_kwargs["args"][0] for _, _, args_kwargs, _ in running],
            state=State.SENDING,
            lease_expires_at__gte=now,
        ).values_list("pk", flat=True)
    )
    closed = 0
    for pk, started_at, args_kwargs, worker_ids in running:
        if args_kwargs["args"][0] in leased:
            continue
        worker = worker_ids[-1] if worker_ids else "?"
        closed += DBTaskResult.objects.filter(pk=pk, status=TaskResultStatus.RUNNING, started_at=started_at).update(
            status=TaskResultStatus.FAILED,
            finished_at=now,
            return_value=None,
            exception_class_path=f"{WorkerLost.__module__}.{WorkerLost.__qualname__}",
            traceback=(
                f"WorkerLost: worker {worker} started this task at {started_at.isoformat()} and never finished "
                f"it (presumed dead). The {channel.name} outbox row's state says what became of the delivery: "
                "a row left behind is queued again by the recovery sweep.\n"
            ),
        )
    if closed:
        logger.warning("Closed %s %s task(s) left RUNNING by a dead worker", closed, channel.name)
    return closed


def requeue_expired_leases(channel: Channel, *, now) -> int:
    """Queue again, with a new task, every `sending` row whose lease ran out (give it up if
    that was its last attempt). Compare-and-set on state and lease: of two workers doing
    this at once, one takes the row; the other finds it changed and leaves it."""
    model = channel.model
    requeued = 0
    while True:
        expired = list(
            model.objects.filter(state=State.SENDING, lease_expires_at__lt=now)
            .order_by("lease_expires_at")
            .values_list("pk", "lease_expires_at", "attempts")[:RECOVERY_BATCH]
        )
        for pk, lease, attempts in expired:
            give_up = attempts >= MAX_ATTEMPTS
            with transaction.atomic():
                taken = model.objects.filter(pk=pk, state=State.SENDING, lease_expires_at=lease).update(
                    state=State.FAILED if give_up else State.QUEUED,
                    next_attempt_at=None,
                    lease_expires_at=None,
                    last_error=(
                        f"WorkerLost: the worker delivering this stopped before recording the result "
                        f"(lease expired at {lease.isoformat()}); "
                        + ("given up after the last attempt." if give_up else "delivering it again.")
                    ),
                )
                if taken and not give_up:
                    channel.enqueue(pk)
            if taken:
                requeued += 1
                outcome = "given up" if give_up else "queued again"
                logger.warning("%s %s: its worker stopped mid-delivery, %s", channel.name, pk, outcome)
        if len(expired) < RECOVERY_BATCH:
            return requeued


def replace_lost_tasks(channel: Channel, *, due_before) -> int:
    """Give a new task to every `queued` row due before `due_before` (a lease ago) whose
    task is neither waiting (READY) nor running since then: its worker died between taking
    the task and claiming the row, or the task failed on a database error. A row still
    waiting behind a backlog keeps its READY task. Compare-and-set on the row's task."""
    model = channel.model
    live_task = DBTaskResult.objects.filter(pk=OuterRef("task_id")).filter(
        Q(status=TaskResultStatus.READY) | Q(status=TaskResultStatus.RUNNING, started_at__gte=due_before)
    )
    lost = (
        model.objects.filter(state=State.QUEUED)
        .filter(Q(next_attempt_at__lt=due_before) | Q(next_attempt_at__isnull=True, created_at__lt=due_before))
        .filter(~Exists(live_task))
        .order_by()
    )
    replaced = 0
    while True:
        found = list(lost.values_list("pk", "task_id")[:RECOVERY_BATCH])
        for pk, old_task in found:
            same_task = Q(task_id=old_task) if old_task else Q(task_id__isnull=True)
            with transaction.atomic():
                new_task = channel.task.enqueue(pk)
                taken = model.objects.filter(same_task, pk=pk, state=State.QUEUED).update(task_id=new_task.id)
                if not taken:  # another worker replaced it first, or the row moved on
                    transaction.set_rollback(True)
            if taken:
                replaced += 1
                logger.warning("%s %s: its task was lost with a worker, queued a new one", channel.name, pk)
        if len(found) < RECOVERY_BATCH:
            return replaced


# --- Staff's "send again" ------------------------------------------------------------------


@transaction.atomic
def retry(channel: Channel, rows) -> int:
    """Queue again, from scratch, the `failed` rows among `rows` and the `sending` ones whose
    lease ran out (their worker died). Rows sent, queued or still leased to a live worker
    are left alone, so nothing goes out twice. Returns how many were queued."""
    retryable = Q(state=State.FAILED) | Q(state=State.SENDING, lease_expires_at__lt=timezone.now())
    count = 0
    for row in rows.select_for_update().filter(retryable):
        row.state, row.attempts, row.next_attempt_at, row.lease_expires_at = State.QUEUED, 0, None, None
        row.save(update_fields=["state", "attempts", "next_attempt_at", "lease_expires_at"])
        channel.enqueue(row.pk)
        count += 1
    return count
