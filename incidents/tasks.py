"""Background tasks of the incident domain (Django's tasks API; `manage.py mail_worker`
runs them beside the mail)."""

from django_tasks import task


@task()
def check_sla(incident_pk: int) -> str:
    """Queued for the moment an SLA clock falls due (`services` queue it whenever a due
    time is set). Escalates what is overdue then; a clock met, moved later or already
    escalated in the meantime makes this a no-op, so a stale task cancels itself."""
    from . import services

    escalated = services.escalate_breaches(incident_pk=incident_pk)
    return ", ".join(escalated) or "nothing due"
