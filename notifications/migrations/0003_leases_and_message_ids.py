# Leases, task ids and Message-IDs for the outbox (a killed worker must never strand mail):
# - `lease_expires_at`: a row in `sending` belongs to its worker until then; a message
#   being sent at upgrade time gets the lease the old "stuck after 3 x EMAIL_TIMEOUT" rule
#   gave it;
# - `task_id`: the task that delivers a queued row, taken from the waiting tasks;
# - `message_id`: every existing row gets one now, in a single UPDATE (`<random.id@domain>`,
#   the random part shared by this run, so unique however often a database is rebuilt);
#   new rows get theirs from `new_message_id` when they are queued.

import secrets
from datetime import timedelta
from email.utils import parseaddr

import notifications.models
from django.conf import settings
from django.db import migrations, models
from django.db.models.functions import Cast, Concat
from django.utils import timezone

SEND_EMAIL = "notifications.tasks.send_email"


def backfill(apps, schema_editor):
    OutgoingEmail = apps.get_model("notifications", "OutgoingEmail")
    DBTaskResult = apps.get_model("django_tasks_database", "DBTaskResult")

    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "localhost"
    OutgoingEmail.objects.update(
        message_id=Concat(
            models.Value(f"<{secrets.token_hex(6)}."),
            Cast("id", models.CharField()),
            models.Value(f"@{domain}>"),
            output_field=models.CharField(),
        )
    )

    lease = timedelta(seconds=3 * (settings.EMAIL_TIMEOUT or 20))
    for row in OutgoingEmail.objects.filter(state="sending"):
        row.lease_expires_at = (row.claimed_at or timezone.now()) + lease
        row.save(update_fields=["lease_expires_at"])

    tasks = {}
    pending = DBTaskResult.objects.filter(task_path=SEND_EMAIL, status__in=["READY", "RUNNING"])
    for pk, status, args_kwargs in pending.values_list("pk", "status", "args_kwargs"):
        row = args_kwargs["args"][0]
        if status == "READY" or row not in tasks:
            tasks[row] = pk
    for row, task in tasks.items():
        OutgoingEmail.objects.filter(pk=row, state="queued").update(task_id=task)


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0002_outgoing_email_table'),
        ('django_tasks_database', '0021_conditional_partial_index_ordering'),
    ]

    operations = [
        migrations.AddField(
            model_name='outgoingemail',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='outgoingemail',
            name='task_id',
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        # Adding the column gives every existing row the same one value; backfill replaces it.
        migrations.AddField(
            model_name='outgoingemail',
            name='message_id',
            field=models.CharField(default=notifications.models.new_message_id, editable=False, max_length=255),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name='outgoingemail',
            index=models.Index(fields=['state', 'lease_expires_at'], name='email_state_lease'),
        ),
    ]
