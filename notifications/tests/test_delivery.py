"""How the outbox delivers (notifications/delivery.py, outbox.py, tasks.py, the admin's retry
and `manage.py mail_worker`): a failed delivery is retried with growing delays, then given
up, and sent again from the admin; a message is sent at most once, whoever else tries; a
message whose worker died gets a new task; and the worker survives the database blinking.
The messages are the ones reporting an incident queues; they go through the real task code
to Django's locmem backend (an SMTP server on loopback: test_smtp.py; killed worker
processes: test_leases.py)."""

import smtplib
from datetime import timedelta
from io import StringIO

from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from incidents import services
from incidents.models import Severity, Status
from incidents.tests.factories import advance_to, make_incident
from notifications import delivery, outbox, tasks
from notifications.models import OutgoingEmail
from notifications.tests.mailbox import post_form, settle

# Mail delivery tasks only: reports also queue SLA checks (incidents.tasks.check_sla).
MAIL_TASK = "notifications.tasks.send_email"


class FailingBackend(BaseEmailBackend):
    """An SMTP server that hangs up on every message."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


FAILING_BACKEND = "notifications.tests.test_delivery.FailingBackend"


def make_due() -> int:
    """Bring every scheduled retry forward to now, as if its time had come."""
    return DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path=MAIL_TASK).update(
        run_after=timezone.now()
    )


# --- Delivery: retries, giving up, the admin's retry, at most once ----------------------


def test_failed_delivery_is_retried_with_backoff_then_given_up_and_requeued_from_the_admin(
    admin_client, run_tasks, mailoutbox, reporter
):
    # given one queued message (no responders: the confirmation only)
    make_incident(reporter)
    email = OutgoingEmail.objects.get()

    with override_settings(EMAIL_BACKEND=FAILING_BACKEND):
        # when the first attempt fails
        assert run_tasks() == 1

        # then it is queued again for a retry within 30 seconds
        email.refresh_from_db()
        now = timezone.now()
        assert email.state == OutgoingEmail.State.QUEUED
        assert email.attempts == 1
        assert now < email.next_attempt_at <= now + timedelta(seconds=30)
        assert email.last_error == "SMTPServerDisconnected: Connection unexpectedly closed"
        (retry,) = DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path=MAIL_TASK)
        assert retry.run_after == email.next_attempt_at
        assert run_tasks() == 0  # not due yet
        assert mailoutbox == []

        # when each later attempt fails too
        delays = [email.next_attempt_at - now]
        for attempt in range(2, delivery.MAX_ATTEMPTS + 1):
            assert make_due() == 1
            assert run_tasks() == 1
            email.refresh_from_db()
            assert email.attempts == attempt
            if attempt < delivery.MAX_ATTEMPTS:
                assert email.state == OutgoingEmail.State.QUEUED
                delays.append(email.next_attempt_at - timezone.now())
                assert run_tasks() == 0

    # then after eight attempts it is given up, with nothing left scheduled
    assert delivery.MAX_ATTEMPTS == 8
    assert email.state == OutgoingEmail.State.FAILED
    assert email.next_attempt_at is None
    assert email.sent_at is None
    assert "SMTPServerDisconnected" in email.last_error
    assert not DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path=MAIL_TASK).exists()
    assert all(earlier < later for earlier, later in zip(delays, delays[1:], strict=False))
    assert sum(delays, timedelta()) < timedelta(hours=2, minutes=30)
    assert mailoutbox == []

    # when staff send it again from the admin
    response = post_form(
        admin_client,
        "/admin/notifications/outgoingemail/",
        {"action": "retry_selected", "_selected_action": [email.pk]},
    )

    # then it is queued from scratch and the (now working) server gets it once
    assert response.status_code == 302
    email.refresh_from_db()
    assert (email.state, email.attempts, email.next_attempt_at) == (OutgoingEmail.State.QUEUED, 0, None)
    assert run_tasks() == 1
    (message,) = mailoutbox
    assert message.to == [reporter.email]
    email.refresh_from_db()
    assert email.state == OutgoingEmail.State.SENT
    assert email.attempts == 1
    assert email.sent_at is not None
    assert email.last_error == ""

    # and a message already sent is never sent again
    assert tasks.deliver_email(email.pk) == "skipped"
    post_form(
        admin_client,
        "/admin/notifications/outgoingemail/",
        {"action": "retry_selected", "_selected_action": [email.pk]},
    )
    assert run_tasks() == 0
    email.refresh_from_db()
    assert email.state == OutgoingEmail.State.SENT
    assert len(mailoutbox) == 1


def test_admin_retry_is_refused_to_an_ordinary_user(client, run_tasks, mailoutbox, reporter, other):
    # given a failed message
    make_incident(reporter)
    email = OutgoingEmail.objects.get()
    OutgoingEmail.objects.filter(pk=email.pk).update(state=OutgoingEmail.State.FAILED)
    settle(run_tasks, mailoutbox)
    client.force_login(other)

    # when an ordinary user tries the admin action
    response = post_form(
        client, "/admin/notifications/outgoingemail/", {"action": "retry_selected", "_selected_action": [email.pk]}
    )

    # then
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    email.refresh_from_db()
    assert email.state == OutgoingEmail.State.FAILED
    assert run_tasks() == 0


def test_delivering_the_same_message_twice_sends_it_once(run_tasks, mailoutbox, reporter):
    # given one queued message, as two workers would each find it
    make_incident(reporter)
    email = OutgoingEmail.objects.get()

    # when
    first = tasks.deliver_email(email.pk)
    second = tasks.deliver_email(email.pk)

    # then
    assert (first, second) == ("sent", "skipped")
    assert len(mailoutbox) == 1
    assert run_tasks() == 1  # the task itself now finds nothing to do
    assert len(mailoutbox) == 1
    email.refresh_from_db()
    assert (email.state, email.attempts) == (OutgoingEmail.State.SENT, 1)


def test_message_claimed_by_another_worker_is_skipped(run_tasks, mailoutbox, reporter):
    # given another worker has claimed the message and is talking to the server
    make_incident(reporter)
    email = OutgoingEmail.objects.get()
    OutgoingEmail.objects.filter(pk=email.pk).update(state=OutgoingEmail.State.SENDING, attempts=1)

    # when
    assert tasks.deliver_email(email.pk) == "skipped"

    # then
    assert mailoutbox == []
    email.refresh_from_db()
    assert (email.state, email.attempts) == (OutgoingEmail.State.SENDING, 1)


def test_delivering_a_missing_message_is_skipped(db, mailoutbox):
    assert tasks.deliver_email(987654) == "skipped"
    assert mailoutbox == []


def test_whole_journey_sends_each_queued_message_exactly_once(
    client, run_tasks, mailoutbox, reporter, other, responder, second_responder, staff
):
    # given a busy incident
    incident = make_incident(reporter, severity=Severity.CRITICAL)
    services.add_response(incident=incident, author=other, description="Evacuating.")
    services.add_response(incident=incident, author=responder, description="Fire brigade called.")
    advance_to(incident, Status.RESOLVED, by=staff)

    # when the worker runs twice
    first = run_tasks()
    second = run_tasks()

    # then
    assert second == 0
    assert first == OutgoingEmail.objects.count() == len(mailoutbox)
    assert not OutgoingEmail.objects.exclude(state=OutgoingEmail.State.SENT).exists()
    expected = sorted(OutgoingEmail.objects.values_list("to", "subject"))
    assert sorted((m.to[0], m.subject) for m in mailoutbox) == expected
    assert staff.email not in {m.to[0] for m in mailoutbox}


def test_retry_leaves_a_message_being_sent_alone_but_recovers_a_stuck_one(run_tasks, mailoutbox, reporter):
    # given two messages claimed by workers: one just now, one whose lease ran out (its worker died)
    make_incident(reporter)
    make_incident(reporter)
    fresh, stuck = OutgoingEmail.objects.order_by("pk")
    now = timezone.now()
    OutgoingEmail.objects.filter(pk=fresh.pk).update(
        state=OutgoingEmail.State.SENDING, claimed_at=now, lease_expires_at=now + timedelta(minutes=1)
    )
    OutgoingEmail.objects.filter(pk=stuck.pk).update(
        state=OutgoingEmail.State.SENDING,
        claimed_at=now - timedelta(minutes=2),
        lease_expires_at=now - timedelta(seconds=1),
    )
    settle(run_tasks, mailoutbox)

    # when staff retry both
    count = outbox.retry(OutgoingEmail.objects.filter(pk__in=[fresh.pk, stuck.pk]))

    # then only the stuck one goes out again; the one in flight is not sent twice
    assert count == 1
    assert run_tasks() == 1
    assert [message.to for message in mailoutbox] == [[stuck.to]]
    fresh.refresh_from_db()
    assert fresh.state == OutgoingEmail.State.SENDING


# --- Surviving database trouble in the worker ---------------------------------------------------


def test_requeue_orphans_gives_a_task_back_to_a_message_whose_worker_died(run_tasks, mailoutbox, reporter):
    # given: three queued messages; the first's task was taken by a worker that then died,
    # long enough ago; the second's likewise but just now; the third still has its task waiting
    for _ in range(3):
        make_incident(reporter)
    orphan, recent, waiting = OutgoingEmail.objects.order_by("pk")
    tasks = {int(task.args_kwargs["args"][0]): task for task in DBTaskResult.objects.all()}
    for email in (orphan, recent):
        DBTaskResult.objects.filter(pk=tasks[email.pk].pk).update(status=TaskResultStatus.RUNNING)
    OutgoingEmail.objects.filter(pk=orphan.pk).update(created_at=timezone.now() - timedelta(minutes=10))

    # when
    count = outbox.requeue_orphans()

    # then only the orphan gets a new task, and everything still waiting goes out once
    assert count == 1
    assert run_tasks() == 2
    assert sorted(message.to[0] for message in mailoutbox) == sorted([orphan.to, waiting.to])
    recent.refresh_from_db()
    assert recent.state == OutgoingEmail.State.QUEUED


def test_a_sent_message_is_recorded_even_if_the_database_blinks(monkeypatch, reporter, mailoutbox):
    # given: the database refuses the first attempt to record the send
    make_incident(reporter)
    email = OutgoingEmail.objects.get()
    real_filter = OutgoingEmail.objects.filter
    refusals = []

    def flaky_filter(*args, **kwargs):
        queryset = real_filter(*args, **kwargs)
        if kwargs == {"pk": email.pk} and not refusals:
            refusals.append(1)

            class Refusing:
                def update(self, **values):
                    raise OperationalError("server has gone away")

            return Refusing()
        return queryset

    monkeypatch.setattr(delivery.time, "sleep", lambda seconds: None)
    # The real connection is fine; recycling it would end the test's own transaction.
    monkeypatch.setattr(delivery.connection, "close_if_unusable_or_obsolete", lambda: None)
    monkeypatch.setattr(OutgoingEmail.objects, "filter", flaky_filter)

    # when
    result = tasks.deliver_email(email.pk)

    # then: sent once and recorded as sent, so no retry would send it again
    assert result == "sent"
    assert refusals == [1]
    assert len(mailoutbox) == 1
    email.refresh_from_db()
    assert email.state == OutgoingEmail.State.SENT


def test_mail_worker_starts_again_after_a_database_error(monkeypatch, reporter, mailoutbox):
    # given: a queued message, and a database that fails the worker's first start
    from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

    from notifications.management.commands import mail_worker

    make_incident(reporter)
    real_handle = DbWorkerCommand.handle
    starts = []

    def failing_once(self, *args, **options):
        starts.append(1)
        if len(starts) == 1:
            raise OperationalError("Can't connect to server")
        return real_handle(self, *args, **options)

    monkeypatch.setattr(DbWorkerCommand, "handle", failing_once)
    monkeypatch.setattr(mail_worker.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(mail_worker.connections, "close_all", lambda: None)
    monkeypatch.setattr("django_tasks_db.management.commands.db_worker.close_old_connections", lambda: None)

    # when
    call_command("mail_worker", "--batch", "--no-startup-delay", "--no-reload", stderr=StringIO())

    # then: it started twice and delivered the message
    assert len(starts) == 2
    assert [message.to for message in mailoutbox] == [[reporter.email]]
