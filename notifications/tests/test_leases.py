"""A killed worker never strands mail: leases, the recovery sweep, and one Message-ID per
message.

The first tests run real `manage.py mail_worker` processes against the test database and
a real SMTP server on loopback (conftest.py), kill them with SIGKILL in the middle of a
batch, freeze the database under them, or start two at once on the same leftovers, and
check what arrived. Leases are 3 s here (EMAIL_TIMEOUT=1) and workers sweep twice a
second, so each takes seconds. The rest check the same machinery in this process.
"""

import re
import smtplib
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from notifications import delivery, mail, outbox, tasks
from notifications.models import OutgoingEmail
from notifications.tasks import MAIL

from .conftest import frozen_database, queue_messages, smtp_sink, wait_for

# Mail delivery tasks only: reports also queue SLA checks (incidents.tasks.check_sla).
MAIL_TASK = "notifications.tasks.send_email"

State = OutgoingEmail.State
WORKER_LOST = "notifications.delivery.WorkerLost"
BATCH = 20
VICTIM = 4  # the fifth message of the batch is the one in flight when the worker dies
# A dead worker's message is back within the lease (3 s) + a sweep (0.5 s) + a new
# worker's start-up (a few seconds, more on a busy machine); in production 60 s + 30 s.
RECOVERY_SECONDS = 45


def all_sent() -> bool:
    return not OutgoingEmail.objects.exclude(state=State.SENT).exists()


def nothing_running() -> bool:
    return not DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).exists()


def tasks_per_row() -> Counter:
    return Counter(args_kwargs["args"][0] for args_kwargs in DBTaskResult.objects.values_list("args_kwargs", flat=True))


# --- Real workers, killed, frozen and racing ------------------------------------------------


@pytest.mark.parametrize("moment", ["before", "after"])
def test_a_worker_killed_mid_batch_strands_nothing(workers, moment):
    # given a batch of mail, and an SMTP server that will stall on the fifth message:
    # before its 250 (the server never took it), or after it (the worker has the 250 but
    # cannot have recorded it)
    addresses = queue_messages(BATCH)
    victim = OutgoingEmail.objects.get(to=addresses[VICTIM])
    with smtp_sink(trap_rcpt=victim.to, trap=moment) as (sink, port):
        first = workers.start(port, "first")
        assert sink.trapped.wait(30), workers.logs()

        # when the worker is killed right then
        workers.kill(first)
        killed_at = time.monotonic()

        # then the message it was sending is left `sending`, its task RUNNING
        victim.refresh_from_db()
        assert victim.state == State.SENDING
        lost_task = DBTaskResult.objects.get(pk=victim.task_id)
        assert lost_task.status == TaskResultStatus.RUNNING

        # when another worker starts
        workers.start(port, "second")

        # then everything goes out, the lost message within seconds of its lease running out
        wait_for(all_sent, timeout=RECOVERY_SECONDS + 15, what="every message sent")
        assert time.monotonic() - killed_at < RECOVERY_SECONDS
        wait_for(nothing_running, timeout=10, what="no task left RUNNING")

    copies = sink.copies()
    others = [address for address in addresses if address != victim.to]
    assert Counter({address: copies[address] for address in others}) == Counter(others)
    if moment == "before":
        assert copies[victim.to] == 1
    else:
        assert 1 <= copies[victim.to] <= 2
    victim.refresh_from_db()
    assert set(sink.message_ids(victim.to)) == {victim.message_id}
    assert victim.attempts == 2
    lost_task.refresh_from_db()
    assert (lost_task.status, lost_task.exception_class_path) == (TaskResultStatus.FAILED, WORKER_LOST)
    assert OutgoingEmail.objects.values("message_id").distinct().count() == BATCH


def test_a_frozen_database_strands_no_message(workers):
    # given a worker in the middle of a batch, that has just had its 250 for the fifth message
    addresses = queue_messages(BATCH)
    with smtp_sink(trap_rcpt=addresses[VICTIM], trap="after", stall=0.5) as (sink, port):
        only = workers.start(port, "only")
        assert sink.trapped.wait(30), workers.logs()

        # when the outbox's tables stop answering, for longer than a lease, just as it
        # goes to record the send
        with frozen_database():
            time.sleep(5)

        # then the same worker (never restarted from outside) delivers every message
        wait_for(all_sent, timeout=RECOVERY_SECONDS + 15, what="every message sent")
        wait_for(nothing_running, timeout=15, what="no task left RUNNING")
        assert only.poll() is None

    copies = sink.copies()
    assert set(copies) == set(addresses)
    assert max(copies.values()) <= 2
    for email in OutgoingEmail.objects.all():
        assert set(sink.message_ids(email.to)) == {email.message_id}


def test_two_workers_racing_for_the_same_expired_leases_send_each_message_once(workers):
    # given: a worker died holding every message of a batch: each is `sending` under a
    # lease that ran out, each task RUNNING
    addresses = queue_messages(30)
    long_ago = timezone.now() - timedelta(minutes=1)
    OutgoingEmail.objects.update(
        state=State.SENDING, attempts=1, claimed_at=long_ago, lease_expires_at=long_ago + timedelta(seconds=3)
    )
    DBTaskResult.objects.update(status=TaskResultStatus.RUNNING, started_at=long_ago, worker_ids=["dead"])

    # when two workers start at once, each sweeping for what the dead one left
    with smtp_sink() as (sink, port):
        workers.start(port, "one")
        workers.start(port, "two")
        wait_for(all_sent, timeout=RECOVERY_SECONDS + 15, what="every message sent")

    # then each message was taken back once, given one new task, and sent once
    assert sink.copies() == Counter(addresses)
    assert set(OutgoingEmail.objects.values_list("attempts", flat=True)) == {2}
    assert set(tasks_per_row().values()) == {2}
    assert DBTaskResult.objects.filter(exception_class_path=WORKER_LOST).count() == 30


# --- The sweep, the lease and the Message-ID, in this process --------------------------------


class FailingBackend(BaseEmailBackend):
    """An SMTP server that hangs up on every message."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


def make_row(to: str, *, state=State.QUEUED, lease=None, age=timedelta(), attempts=0, task=None, started=None):
    """A queued message, then put in `state` (with its lease, age and attempts, and its
    task's status and start) as a worker would have left it."""
    email = outbox.queue_email(
        kind="welcome", to=to, context={"user": {"username": to}, "dashboard_url": "http://irms.test/"}
    )
    created = timezone.now() - age
    OutgoingEmail.objects.filter(pk=email.pk).update(
        state=state,
        lease_expires_at=lease,
        created_at=created,
        attempts=attempts,
        claimed_at=created if lease else None,
    )
    if task is not None:
        DBTaskResult.objects.filter(pk=email.task_id).update(status=task, started_at=started)
    email.refresh_from_db()
    return email


def test_recovery_takes_back_exactly_what_dead_workers_left(db):
    # given rows and tasks in every state a worker can leave them in (the lease is 60 s)
    now = timezone.now()
    ago = timedelta(minutes=10)
    expired, running = now - timedelta(seconds=1), TaskResultStatus.RUNNING
    for name, state, lease, age, attempts, task, started in [
        # died mid-send: the lease ran out, the task is still RUNNING
        ("expired", State.SENDING, expired, ago, 1, running, now - ago),
        ("last", State.SENDING, expired, ago, 8, running, now - ago),  # ... on its last attempt
        # alive: claimed just now, or late (after a database stall) under a live lease
        ("leased", State.SENDING, now + timedelta(seconds=30), ago, 1, running, now),
        ("late", State.SENDING, now + timedelta(seconds=30), ago, 1, running, now - ago),
        # died between taking the task and claiming the row; or is only just starting
        ("taken", State.QUEUED, None, ago, 0, running, now - ago),
        ("starting", State.QUEUED, None, ago, 0, running, now),
        # the task failed on a database error: long ago, or only just
        ("broken", State.QUEUED, None, ago, 0, TaskResultStatus.FAILED, None),
        ("fresh", State.QUEUED, None, timedelta(), 0, TaskResultStatus.FAILED, None),
        # waiting behind a backlog, its task READY
        ("backlog", State.QUEUED, None, ago, 0, None, None),
        # died after recording the send, before finishing the task
        ("sent", State.SENT, None, ago, 1, running, now - ago),
    ]:
        make_row(
            f"{name}@example.com", state=state, lease=lease, age=age, attempts=attempts, task=task, started=started
        )
    before = dict(OutgoingEmail.objects.values_list("to", "task_id"))

    # when
    recovery = delivery.recover(MAIL)

    # then: the expired lease is queued again with a new task, the exhausted one given up;
    # the rows whose task died get a new one; RUNNING tasks of dead workers are closed
    assert recovery == delivery.Recovery(tasks_closed=4, leases_expired=2, tasks_replaced=2)
    rows = {email.to.split("@")[0]: email for email in OutgoingEmail.objects.all()}
    assert {name: email.state for name, email in rows.items() if email.state != State.QUEUED} == {
        "last": State.FAILED,
        "leased": State.SENDING,
        "late": State.SENDING,
        "sent": State.SENT,
    }
    assert rows["expired"].lease_expires_at is None
    assert rows["expired"].last_error.startswith("WorkerLost:")
    changed = {name for name, email in rows.items() if email.task_id != before[email.to]}
    assert changed == {"expired", "taken", "broken"}
    for name in changed:
        assert DBTaskResult.objects.get(pk=rows[name].task_id).status == TaskResultStatus.READY
    closed = DBTaskResult.objects.filter(exception_class_path=WORKER_LOST).values_list("pk", flat=True)
    assert set(closed) == {before[f"{name}@example.com"] for name in ("expired", "last", "taken", "sent")}
    for name in ("leased", "late", "starting"):
        assert DBTaskResult.objects.get(pk=rows[name].task_id).status == TaskResultStatus.RUNNING

    # and a second sweep finds nothing more
    assert delivery.recover(MAIL) == delivery.Recovery()


def test_a_claim_leases_the_row_for_three_smtp_timeouts(db):
    (address,) = queue_messages(1)
    email = OutgoingEmail.objects.get(to=address)
    with override_settings(EMAIL_TIMEOUT=7):
        before = timezone.now()
        row = delivery.claim(MAIL, email.pk)
    assert row.state == State.SENDING
    assert before + timedelta(seconds=21) <= row.lease_expires_at <= timezone.now() + timedelta(seconds=21)
    assert delivery.claim(MAIL, email.pk) is None  # a live lease is nobody else's


def test_a_worker_slower_than_its_lease_stops_before_sending(db, mailoutbox):
    # given a worker that took longer than its lease to get to the message, while another
    # worker took the row back and claimed it
    (address,) = queue_messages(1)
    email = OutgoingEmail.objects.get(to=address)
    theirs = timezone.now() + timedelta(minutes=1)

    def slow_start(row, renew):
        OutgoingEmail.objects.filter(pk=row.pk).update(lease_expires_at=theirs, attempts=2)
        mail.send(row, renew)

    # when it goes on
    result = delivery.deliver(MAIL, email.pk, slow_start)

    # then it sends nothing, records nothing and schedules nothing: the row is the other's
    assert result == "lost"
    assert mailoutbox == []
    email.refresh_from_db()
    assert (email.state, email.lease_expires_at, email.attempts, email.last_error) == (State.SENDING, theirs, 2, "")
    assert (
        DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path=MAIL_TASK).count() == 1
    )  # its first task only


def test_a_worker_renews_its_lease_just_before_the_message(db, mailoutbox):
    # given a queued message, claimed long enough ago that most of its lease is gone
    (address,) = queue_messages(1)
    email = OutgoingEmail.objects.get(to=address)
    seen = {}

    def late_start(row, renew):
        row.lease_expires_at -= timedelta(seconds=50)
        OutgoingEmail.objects.filter(pk=row.pk).update(lease_expires_at=row.lease_expires_at)

        def renew_and_look():
            renew()
            seen["lease"] = OutgoingEmail.objects.get(pk=row.pk).lease_expires_at

        mail.send(row, renew_and_look)

    # when it sends
    before = timezone.now()
    assert delivery.deliver(MAIL, email.pk, late_start) == "sent"

    # then the message went out under a full lease from that moment
    assert len(mailoutbox) == 1
    assert seen["lease"] >= before + MAIL.lease()


@override_settings(DEFAULT_FROM_EMAIL="IRMS <irms@irms.test>")
def test_every_attempt_carries_the_messages_own_message_id(run_tasks, mailoutbox):
    # given two queued messages
    first, second = (OutgoingEmail.objects.get(to=address) for address in queue_messages(2))
    assert re.fullmatch(r"<[^<>@\s]+@irms\.test>", first.message_id)
    assert first.message_id != second.message_id

    # when the first attempt fails and the retry succeeds
    with override_settings(EMAIL_BACKEND="notifications.tests.test_leases.FailingBackend"):
        assert run_tasks() == 2
    DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path=MAIL_TASK).update(run_after=timezone.now())
    assert run_tasks() == 2

    # then what left carries each row's Message-ID, unchanged since it was queued
    sent = {message.to[0]: message.message()["Message-ID"] for message in mailoutbox}
    assert sent == {first.to: first.message_id, second.to: second.message_id}


def test_send_again_is_for_failed_rows_and_expired_leases_only(db):
    # given a message in each state, two of them left `sending`: by a dead worker, by a live one
    now = timezone.now()
    make_row("failed@example.com", state=State.FAILED, attempts=8)
    make_row("expired@example.com", state=State.SENDING, lease=now - timedelta(seconds=1), attempts=1)
    make_row("leased@example.com", state=State.SENDING, lease=now + timedelta(seconds=30), attempts=1)
    make_row("queued@example.com")
    make_row("sent@example.com", state=State.SENT, attempts=1)

    # when staff send them all again
    count = outbox.retry(OutgoingEmail.objects.all())

    # then only the failed one and the dead worker's go out again
    assert count == 2
    assert dict(OutgoingEmail.objects.values_list("to", "state")) == {
        "failed@example.com": State.QUEUED,
        "expired@example.com": State.QUEUED,
        "leased@example.com": State.SENDING,
        "queued@example.com": State.QUEUED,
        "sent@example.com": State.SENT,
    }


def test_a_goodbye_that_times_out_after_the_250_is_still_a_message_sent(db):
    # given an SMTP server that takes the message and then never answers the QUIT
    (address,) = queue_messages(1)
    email = OutgoingEmail.objects.get(to=address)
    with smtp_sink(trap_rcpt=address, trap="after") as (sink, port):
        smtp = override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
            EMAIL_TIMEOUT=1,
        )
        # when
        with smtp:
            result = tasks.deliver_email(email.pk)

    # then it is recorded as sent, never retried into a second copy
    assert result == "sent"
    assert sink.copies() == Counter({address: 1})
    email.refresh_from_db()
    assert email.state == State.SENT


# --- The migration -----------------------------------------------------------------------------

BEFORE = [("notifications", "0002_outgoing_email_table")]
AFTER = [("notifications", "0003_leases_and_message_ids")]
TASKS_APP = ("django_tasks_database", "0021_conditional_partial_index_ordering")


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state([*targets, TASKS_APP]).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_rows_message_ids_waiting_tasks_and_leases():
    # given the outbox before leases, with mail queued, being sent, and sent
    old = migrate(BEFORE)
    Email, Task = (
        old.get_model("notifications", "OutgoingEmail"),
        old.get_model("django_tasks_database", "DBTaskResult"),
    )
    claimed = timezone.now() - timedelta(seconds=10)
    queued = Email.objects.create(kind="k", to="a@example.com", subject="s", body_text="b")
    sending = Email.objects.create(
        kind="k", to="b@example.com", subject="s", body_text="b", state="sending", claimed_at=claimed
    )
    for _ in range(2):
        Email.objects.create(kind="k", to="c@example.com", subject="s", body_text="b", state="sent")
    waiting = Task.objects.create(
        task_path="notifications.tasks.send_email",
        args_kwargs={"args": [queued.pk], "kwargs": {}},
        backend_name="default",
        run_after=timezone.now(),
        exception_class_path="",
        traceback="",
    )

    # when
    new = migrate(AFTER)

    # then every row has a Message-ID of its own, the queued row knows its task, and the
    # row being sent has the lease the old "stuck" rule gave it
    rows = {row.pk: row for row in new.get_model("notifications", "OutgoingEmail").objects.all()}
    message_ids = [row.message_id for row in rows.values()]
    assert len(set(message_ids)) == 4
    assert all(re.fullmatch(r"<[0-9a-f]{12}\.\d+@localhost>", message_id) for message_id in message_ids)
    assert rows[queued.pk].task_id == waiting.pk
    assert rows[sending.pk].lease_expires_at == claimed + timedelta(seconds=60)
