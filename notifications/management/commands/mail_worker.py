"""`python manage.py mail_worker`: django-tasks-db's `db_worker`, kept alive through
database outages, with the outbox's recovery sweep beside it.

`db_worker` exits on the first database error, and an outage would then leave mail
undelivered until someone restarted it. This command starts it again after a growing
pause. While it runs, a thread of its own sweeps every `--recover-every` seconds (30)
for what any dead worker left behind (`settings.WORKER_SWEEPS`: `outbox.requeue_orphans`,
and the SLA escalations whose task was lost): a message claimed by a
worker that was killed goes out again once its lease (3 x EMAIL_TIMEOUT) has run out,
so within 90 s with the defaults, without a restart of anything. With `--batch` the
sweep runs once at each start instead. It takes every `db_worker` option.
"""

import logging
import os
import threading
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django.utils.module_loading import import_string
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand
from django_tasks_db.management.commands.db_worker import valid_interval

logger = logging.getLogger(__name__)

PAUSES = (1, 2, 5, 10, 30)
# A worker that ran this long before failing starts its pauses from the beginning again.
HEALTHY_RUN_SECONDS = 60
RECOVER_EVERY_SECONDS = 30


class Command(DbWorkerCommand):
    help = "Deliver queued e-mail (and other tasks) like db_worker, surviving database outages and dead workers."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--recover-every",
            type=valid_interval,
            default=RECOVER_EVERY_SECONDS,
            metavar="SECONDS",
            help="How often to take back messages and tasks that dead workers left behind (default: %(default)r)",
        )

    def handle(self, *args, recover_every, **options):
        # With --reload, the process that only watches files (and restarts the real worker)
        # must not sweep as well.
        watcher_only = options["reload"] and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true"
        if not options["batch"] and not watcher_only:
            threading.Thread(target=self.recover_forever, args=(recover_every,), name="recovery", daemon=True).start()
        failures = 0
        while True:
            started = time.monotonic()
            try:
                if options["batch"]:
                    self.recover()
                return super().handle(*args, **options)
            except DatabaseError as error:
                failures = 0 if time.monotonic() - started > HEALTHY_RUN_SECONDS else failures + 1
                pause = PAUSES[min(failures, len(PAUSES) - 1)]
                self.stderr.write(f"Database error ({error}); starting again in {pause} s.")
                connections.close_all()
                time.sleep(pause)

    def recover(self) -> None:
        """Run each of settings.WORKER_SWEEPS (dotted paths of functions returning how much
        they did): the outbox's recovery, and whatever other apps need swept (the SLA
        escalations). The apps name them in settings, so this app imports none of them."""
        for path in getattr(settings, "WORKER_SWEEPS", ["notifications.outbox.requeue_orphans"]):
            done = import_string(path)()
            if done:
                self.stderr.write(f"{path}: {done} item(s) taken care of.")

    def recover_forever(self, every: float) -> None:
        """The recovery sweep, at once and then every `every` seconds for as long as the worker
        runs, on this thread's own database connection. Nothing stops it: an outage (or
        anything else) is logged and the next sweep tries again."""
        while True:
            try:
                self.recover()
            except DatabaseError as error:  # an outage: the main loop reports it too
                logger.warning("Recovery sweep failed (%s); trying again in %s s", error, every)
            except Exception:
                logger.exception("Recovery sweep failed; trying again in %s s", every)
            finally:
                close_old_connections()  # a broken or expired connection is opened afresh next time
            time.sleep(every)
