"""Fixtures shared by every app's tests."""

import pytest

from accounts.models import User

PASSWORD = "correct-horse-battery-42"


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def make_user(db):
    def make(username="alice", email=None, **extra):
        return User.objects.create_user(
            username=username, email=email or f"{username}@example.com", password=PASSWORD, **extra
        )

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def run_tasks(db):
    """Run every task that is due, with the worker's own claim-and-run code
    (`manage.py db_worker`), minus its connection recycling, which would close the
    test's transaction. Returns how many ran."""
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    worker = Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="pytest",
        excluded_queue_names=[],
    )

    def run() -> int:
        count = 0
        while (result := DBTaskResult.objects.ready().filter(backend_name="default").get_locked()) is not None:
            result.claim(worker.worker_id)
            worker.run_task(result)
            count += 1
        return count

    return run


@pytest.fixture
def mailoutbox(db, mailoutbox):
    """pytest-django's outbox, taken after the database is set up: that set-up starts a
    fresh `mail.outbox`, so an outbox fixture requested before a database fixture would
    be a stale list that never sees a message (and "nothing was sent" would pass vacuously)."""
    return mailoutbox
