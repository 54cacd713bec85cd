"""Fixtures for delivery tests with real processes: the test database opened to other
processes, an SMTP server on loopback that can misbehave on cue, and real
`manage.py mail_worker` processes to start, kill -9 and start again.

The workers use the test database itself: on SQLite it is a file (irms_site/test_settings.py),
on MariaDB a database like any other, so they are simply given its name.
"""

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from email import message_from_bytes
from pathlib import Path
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_tasks_db.models import DBTaskResult

from notifications import outbox
from notifications.models import OutgoingEmail

SENDER = "IRMS <irms@irms.test>"
# Short enough that a dead worker's message is back within seconds: the lease is three
# socket timeouts (`delivery.LEASE_TIMEOUTS`), 3 s here, and workers sweep twice a second.
EMAIL_TIMEOUT = 1
RECOVER_EVERY = 0.5


@pytest.fixture(autouse=True)
def latest_schema(django_db_setup, django_db_blocker):
    """Every test here starts and ends on the latest schema. `test_migrations` moves this
    app's schema back to an earlier migration and leaves it there; any test that ran next
    in the same pytest worker (in any app) would find the outbox without its lease and
    Message-ID columns. A few milliseconds when there is nothing to do."""

    def migrate_to_latest():
        with django_db_blocker.unblock():
            executor = MigrationExecutor(connection)
            targets = executor.loader.graph.leaf_nodes()
            if executor.migration_plan(targets):
                executor.migrate(targets)

    migrate_to_latest()
    yield
    migrate_to_latest()


def free_port() -> int:
    """A loopback port nothing listens on (for now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, *, timeout: float, what: str, every: float = 0.05):
    """Poll `condition()` until it returns something true (returned), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"gave up after {timeout} s waiting for {what}"
        time.sleep(every)


def queue_messages(count: int) -> list[str]:
    """Queue `count` welcome mails to user000@... user<count-1>@..., the way IRMS queues mail."""
    addresses = [f"user{index:03d}@example.com" for index in range(count)]
    for address in addresses:
        outbox.queue_email(
            kind="welcome",
            to=address,
            context={"user": {"username": address.split("@")[0]}, "dashboard_url": "http://irms.test/"},
        )
    return addresses


# --- The test database, for other processes ------------------------------------------------


@pytest.fixture
def shared_database(transactional_db):
    """The DATABASE_URL under which other processes see this test's database (what this
    test commits, they see, and the other way round)."""
    db = connection.settings_dict
    if connection.vendor == "mysql":
        credentials = quote(db["USER"], safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
        return f"mysql://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}"
    assert not connection.is_in_memory_db(), "other processes need a file (irms_site/test_settings.py sets one)"
    return f"sqlite:///{Path(db['NAME']).resolve()}"


@contextmanager
def frozen_database():
    """The outbox's tables stop answering for as long as the block runs: on MariaDB every
    statement on them waits (LOCK TABLES ... WRITE from a connection of its own, which
    freezes only this test database, not the server's other users); on SQLite a
    connection of its own holds the write lock (BEGIN EXCLUSIVE), so every write waits."""
    db = connection.settings_dict
    if connection.vendor == "mysql":
        import MySQLdb

        locker = MySQLdb.connect(
            host=db["HOST"] or "127.0.0.1",
            port=int(db["PORT"] or 3306),
            user=db["USER"],
            passwd=db["PASSWORD"],
            database=db["NAME"],
        )
        cursor = locker.cursor()
        tables = (OutgoingEmail._meta.db_table, DBTaskResult._meta.db_table)
        cursor.execute("LOCK TABLES " + ", ".join(f"`{table}` WRITE" for table in tables))
        try:
            yield
        finally:
            cursor.execute("UNLOCK TABLES")
            locker.close()
    else:
        locker = sqlite3.connect(db["NAME"], timeout=30, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            locker.execute("COMMIT")
            locker.close()


# --- An SMTP server on loopback --------------------------------------------------------------


class Sink:
    """An aiosmtpd handler that keeps every message it accepts, with its Message-ID, and
    can misbehave once, on the first message to `trap_rcpt`:

    - "before": stall on DATA and never say 250 (the sender waits for its reply; this
      attempt is not kept: the server never took it);
    - "after": take the message (250), then stall the QUIT that follows for `stall`
      seconds, so the sender has its 250 but has not recorded it yet.

    `trapped` is set when the trap springs, for the test to act then (kill the sender)."""

    def __init__(self, *, trap_rcpt: str | None = None, trap: str = "before", stall: float = 120):
        self.lock = threading.Lock()
        self.received: list[tuple[str, str]] = []  # (recipient, Message-ID)
        self.trap_rcpt, self.trap, self.stall = trap_rcpt, trap, stall
        self.trapped = threading.Event()
        self._trap_session = None

    async def handle_DATA(self, server, session, envelope):
        (rcpt,) = envelope.rcpt_tos
        if rcpt == self.trap_rcpt and not self.trapped.is_set() and self.trap == "before":
            self.trapped.set()
            await asyncio.sleep(self.stall)  # the controller's stop cancels it
            return "451 Too late"
        message = message_from_bytes(envelope.content)
        with self.lock:
            self.received.append((rcpt, message["Message-ID"]))
        if rcpt == self.trap_rcpt and self.trap == "after" and self._trap_session is None:
            self._trap_session = session
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server, session, envelope):
        if session is self._trap_session and not self.trapped.is_set():
            self.trapped.set()
            await asyncio.sleep(self.stall)
        return "221 Bye"

    def copies(self) -> Counter:
        with self.lock:
            return Counter(rcpt for rcpt, _ in self.received)

    def message_ids(self, rcpt: str) -> list[str]:
        with self.lock:
            return [message_id for address, message_id in self.received if address == rcpt]


@contextmanager
def smtp_sink(**trap):
    """A `Sink` listening on a free loopback port; yields (sink, port)."""
    sink = Sink(**trap)
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


# --- Real mail workers -------------------------------------------------------------------------


class Workers:
    """`manage.py mail_worker` processes against the test database and an SMTP port, each
    logging to its own file. Only the processes started here are ever signalled, by pid."""

    def __init__(self, database_url: str, log_dir: Path):
        self.database_url, self.log_dir = database_url, log_dir
        self.started: list[subprocess.Popen] = []

    def env(self, smtp_port: int) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
        env.update(
            DJANGO_SETTINGS_MODULE="irms_site.settings",
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(50),
            DATABASE_URL=self.database_url,
            DATABASE_IO_TIMEOUT="1",  # MariaDB: a frozen table is an error within seconds
            EMAIL_URL=f"smtp://127.0.0.1:{smtp_port}",
            EMAIL_TIMEOUT=str(EMAIL_TIMEOUT),
            DEFAULT_FROM_EMAIL=SENDER,
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
            PYTHONFAULTHANDLER="1",  # `dump_threads` (SIGABRT) writes every thread's stack to the log
        )
        return env

    def start(self, smtp_port: int, name: str) -> subprocess.Popen:
        command = [
            sys.executable,
            "manage.py",
            "mail_worker",
            "--no-startup-delay",
            "--no-reload",
            "--interval",
            "0.05",
            "--recover-every",
            str(RECOVER_EVERY),
            "--worker-id",
            name,
        ]
        with open(self.log_dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                command, cwd=settings.BASE_DIR, env=self.env(smtp_port), stdout=log, stderr=subprocess.STDOUT
            )
        process.name = name
        self.started.append(process)
        return process

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """kill -9: no clean-up of any kind, as when a machine is lost."""
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-20000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    def dump_threads(self) -> None:
        """Have every live worker write its threads' stacks to its log and stop (for a
        failed test: where was each one?)."""
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGABRT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture
def workers(shared_database, tmp_path, request):
    """Start real mail workers with `workers.start(smtp_port, name)`; all are stopped after
    the test, and their logs are printed if it failed."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    started = Workers(shared_database, log_dir)
    yield started
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        started.dump_threads()
        print(started.logs())
    started.stop_all()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (for `workers` to print logs on failure)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
