from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self):
        # A misspelt SLA_BUSINESS_HOURS stops the server at start, not at the first report.
        from . import sla

        sla.business_hours()
