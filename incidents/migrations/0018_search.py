"""The full-text index (incidents/search.py): FTS5 tables and their triggers on SQLite,
InnoDB FULLTEXT indexes on MariaDB/MySQL. Existing rows are indexed here."""

from django.db import migrations


def install(apps, schema_editor):
    from incidents import search

    search.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    from incidents import search

    search.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0014_attachments")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
