"""`python manage.py mail_worker`: django-tasks-db's `db_worker`, kept alive through
database outages.

`db_worker` exits on the first database error, and an outage would then leave mail
undelivered until someone restarted it. This command starts it again after a growing
pause, and on every start re-queues messages whose worker died mid-task
(`outbox.requeue_orphans`). It takes every `db_worker` option.
"""

import time

from django.db import DatabaseError, connections
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

from notifications import outbox

PAUSES = (1, 2, 5, 10, 30)
# A worker that ran this long before failing starts its pauses from the beginning again.
HEALTHY_RUN_SECONDS = 60


class Command(DbWorkerCommand):
    help = "Deliver queued e-mail (and other tasks) like db_worker, surviving database outages."

    def handle(self, *args, **options):
        failures = 0
        while True:
            started = time.monotonic()
            try:
                requeued = outbox.requeue_orphans()
                if requeued:
                    self.stderr.write(f"Re-queued {requeued} e-mail(s) left behind by a stopped worker.")
                return super().handle(*args, **options)
            except DatabaseError as error:
                failures = 0 if time.monotonic() - started > HEALTHY_RUN_SECONDS else failures + 1
                pause = PAUSES[min(failures, len(PAUSES) - 1)]
                self.stderr.write(f"Database error ({error}); starting again in {pause} s.")
                connections.close_all()
                time.sleep(pause)
