"""The full-text index (incidents/search.py): FTS5 tables and their triggers on SQLite,
InnoDB FULLTEXT indexes on MariaDB/MySQL. Existing rows are indexed here. And the index
the admin's list of every response reads, newest first."""

from django.db import migrations, models


def install(apps, schema_editor):
    from incidents import search

    search.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    from incidents import search

    search.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0017_inbound")]

    operations = [
        migrations.RunPython(install, uninstall, elidable=False),
        migrations.AddIndex(
            model_name="response",
            index=models.Index(fields=["-created_at", "-id"], name="response_newest"),
        ),
    ]
