from django.apps import AppConfig
from django.db.models.signals import post_migrate


def keep_search_index(sender, using, **kwargs):
    """On SQLite, a later migration that rebuilds a table (copy, drop, rename) drops the
    triggers that keep the full-text index in step: put back any that went missing, and
    reindex what they missed. Only where migration 0018 made the index (its FTS tables
    exist); elsewhere, and on MariaDB, this does nothing."""
    from django.db import connections

    from . import search

    connection = connections[using]
    if connection.vendor == "sqlite" and set(search.SQLITE_TABLES) <= set(connection.introspection.table_names()):
        search.install(connection)


class IncidentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self):
        # A misspelt SLA_BUSINESS_HOURS stops the server at start, not at the first report.
        from . import sla

        sla.business_hours()
        post_migrate.connect(keep_search_index, sender=self)
