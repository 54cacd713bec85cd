"""Background tasks (Django's tasks API; the django-tasks-db backend; `manage.py db_worker`)."""

from django_tasks import task

from . import notifications


@task()
def send_email(email_id: int) -> str:
    """Deliver one queued `OutgoingEmail`; failures are rescheduled by `notifications.deliver`."""
    return notifications.deliver(email_id)
