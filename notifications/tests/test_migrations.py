"""The outbox moved from the incidents app to this one: every row, its state and its
waiting delivery task survive the move, on SQLite and MariaDB alike."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

TASKS = ("django_tasks_database", "0021_conditional_partial_index_ordering")
BEFORE = [("incidents", "0007_count_indexes"), ("notifications", None)]
AFTER = [("incidents", "0009_incidentevent_reporter_changed"), ("notifications", "0002_outgoing_email_table")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state([target for target in targets if target[1]] + [TASKS]).apps


@pytest.mark.django_db(transaction=True)
def test_the_outbox_moves_with_every_row_and_its_waiting_task():
    # given: the database as it was before the move, with a queued, a sent and a failed message
    old_apps = migrate(BEFORE)
    OldEmail = old_apps.get_model("incidents", "OutgoingEmail")
    Task = old_apps.get_model("django_tasks_database", "DBTaskResult")
    now = timezone.now()
    rows = {
        "queued": OldEmail.objects.create(
            kind="welcome", to="a@example.com", subject="Hi", body_text="x", state="queued"
        ),
        "sent": OldEmail.objects.create(
            kind="sign_in", to="b@example.com", subject="Sign-in", body_text="y", state="sent", attempts=1, sent_at=now
        ),
        "failed": OldEmail.objects.create(
            kind="response_added",
            to="c@example.com",
            subject="Re",
            body_text="z",
            state="failed",
            attempts=8,
            last_error="SMTPServerDisconnected: gone",
        ),
    }
    Task.objects.create(
        task_path="incidents.tasks.send_email",
        args_kwargs={"args": [rows["queued"].pk], "kwargs": {}},
        queue_name="default",
        backend_name="default",
        priority=0,
        status="READY",
        run_after=now,
        exception_class_path="",
        traceback="",
    )

    # when
    new_apps = migrate(AFTER)

    # then: the same rows, in the renamed table, and the waiting task points at the new task
    NewEmail = new_apps.get_model("notifications", "OutgoingEmail")
    assert NewEmail._meta.db_table == "notifications_outgoingemail"
    moved = {row.state: row for row in NewEmail.objects.all()}
    assert set(moved) == {"queued", "sent", "failed"}
    for state, old in rows.items():
        assert (moved[state].pk, moved[state].to, moved[state].attempts) == (old.pk, old.to, old.attempts)
    assert moved["failed"].last_error == "SMTPServerDisconnected: gone"
    assert moved["sent"].sent_at is not None
    NewTask = new_apps.get_model("django_tasks_database", "DBTaskResult")
    assert list(NewTask.objects.values_list("task_path", flat=True)) == ["notifications.tasks.send_email"]
    assert "incidents_outgoingemail" not in connection.introspection.table_names()


@pytest.mark.django_db(transaction=True)
def test_the_move_can_be_rolled_back_and_replayed():
    # given
    migrate(AFTER)

    # when: back to before the move, and forward again
    old_apps = migrate(BEFORE)
    old_apps.get_model("incidents", "OutgoingEmail").objects.create(
        kind="k", to="d@example.com", subject="s", body_text="b"
    )
    new_apps = migrate(AFTER)

    # then
    assert list(new_apps.get_model("notifications", "OutgoingEmail").objects.values_list("to", flat=True)) == [
        "d@example.com"
    ]
