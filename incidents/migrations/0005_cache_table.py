"""Create the database cache table (throttling and rate state) as part of `migrate`, so a
deployment cannot forget `createcachetable`. Idempotent; a no-op for other cache backends."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0004_outgoing_email")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
