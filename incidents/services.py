"""Every write to the incident domain, one transaction each.

Each service checks the actor's permission (`permissions.py`), validates, writes, and
records the timeline event in the same transaction, so a failure leaves nothing behind.
They raise `PermissionDenied` (not allowed: 403), `ValidationError` (bad input: 400 / a
form error) or its subclass `WorkflowError` (not possible in the incident's current state:
409 in the API, a form error on the web). Web views, API viewsets, admin actions
and management commands call these; none of them writes incidents directly.

Notifications are queued through `notifications.py` inside the same transaction, so a
change that rolls back sends nothing and a change that commits always has its mail queued.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from . import notifications, permissions
from .models import (
    TRANSITIONS,
    EventKind,
    Incident,
    IncidentEvent,
    Response,
    Severity,
    Status,
    Visibility,
)


class WorkflowError(ValidationError):
    """A well-formed request that the incident's current state refuses (a move the
    workflow does not have, a response to a closed incident). The API answers 409."""


def _locked(incident: Incident) -> Incident:
    """Re-read the row under a lock so two concurrent changes apply one after the other,
    each checked against the state the other left."""
    return Incident.objects.select_for_update().get(pk=incident.pk)


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


@transaction.atomic
def report_incident(
    *,
    reporter,
    title: str,
    description: str,
    severity: str = Severity.MEDIUM,
    visibility: str = Visibility.PUBLIC,
) -> Incident:
    """File a new incident as `reporter` (any signed-in user); status starts at Reported."""
    _require(getattr(reporter, "is_authenticated", False), "Sign in to report an incident.")
    incident = Incident(
        reporter=reporter,
        title=(title or "").strip(),
        description=description,
        severity=severity or Severity.MEDIUM,
        visibility=visibility or Visibility.PUBLIC,
    )
    incident.full_clean()
    incident.save()
    IncidentEvent.objects.create(
        incident=incident,
        actor=reporter,
        kind=EventKind.REPORTED,
        new_value=incident.status,
        created_at=incident.created_at,
    )
    notifications.incident_reported(incident)
    return incident


@transaction.atomic
def edit_incident(
    *,
    incident: Incident,
    actor,
    title: str | None = None,
    description: str | None = None,
    visibility: str | None = None,
) -> Incident:
    """Change title, description or visibility; one `edited` event per changed field."""
    incident = _locked(incident)
    _require(permissions.can_edit(actor, incident), "You may not edit this incident.")
    if visibility is not None and visibility != incident.visibility:
        _require(permissions.can_change_visibility(actor, incident), "You may not change who can see this incident.")
    changes = {}
    for field, value in (("title", title), ("description", description), ("visibility", visibility)):
        if value is None:
            continue
        if field == "title":
            value = value.strip()
        old = getattr(incident, field)
        if value != old:
            changes[field] = (old, value)
            setattr(incident, field, value)
    if not changes:
        return incident
    incident.full_clean()
    incident.save()
    IncidentEvent.objects.bulk_create(
        IncidentEvent(incident=incident, actor=actor, kind=EventKind.EDITED, field=field, old_value=old, new_value=new)
        for field, (old, new) in changes.items()
    )
    return incident


@transaction.atomic
def add_response(*, incident: Incident, author, description: str) -> Response:
    """Add `author`'s response to an incident they can see (not a closed one)."""
    incident = _locked(incident)
    _require(permissions.can_view(author, incident), "You may not respond to this incident.")
    if incident.status == Status.CLOSED:
        raise WorkflowError({"description": "This incident is closed; it takes no more responses."})
    response = Response(incident=incident, author=author, description=description)
    response.full_clean()
    response.save()
    IncidentEvent.objects.create(
        incident=incident, actor=author, kind=EventKind.RESPONDED, response=response, created_at=response.created_at
    )
    # Touch updated_at so "recently active" sorts see the new response.
    Incident.objects.filter(pk=incident.pk).update(updated_at=timezone.now())
    notifications.response_added(response)
    return response


@transaction.atomic
def change_status(*, incident: Incident, actor, status: str) -> Incident:
    """Move an incident along the workflow (`models.TRANSITIONS`), stamping the
    acknowledged/resolved/closed times."""
    incident = _locked(incident)
    old = incident.status
    if status not in Status.values:
        raise ValidationError({"status": f"“{status}” is not a status."})
    if status == old:
        raise WorkflowError({"status": f"The incident is already {old}."})
    if not permissions.can_view(actor, incident):
        raise PermissionDenied("You may not change this incident.")
    if status not in permissions.allowed_statuses(actor, incident):
        if status not in TRANSITIONS[old]:
            raise WorkflowError({"status": f"An incident cannot move from {old} to {status}."})
        raise PermissionDenied(f"You may not move this incident from {old} to {status}.")

    now = timezone.now()
    incident.status = status
    if status in (Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED) and incident.acknowledged_at is None:
        incident.acknowledged_at = now
    if status == Status.RESOLVED:
        incident.resolved_at = now
    elif status == Status.IN_PROGRESS and old == Status.RESOLVED:
        incident.resolved_at = None  # reopened: time to resolve counts again
    if status == Status.CLOSED:
        incident.closed_at = now
    incident.save(update_fields=["status", "acknowledged_at", "resolved_at", "closed_at", "updated_at"])
    IncidentEvent.objects.create(
        incident=incident, actor=actor, kind=EventKind.STATUS_CHANGED, old_value=old, new_value=status, created_at=now
    )
    notifications.status_changed(incident, actor=actor, old_status=old)
    return incident


@transaction.atomic
def change_severity(*, incident: Incident, actor, severity: str) -> Incident:
    """Responders and staff re-grade an incident that is not closed."""
    incident = _locked(incident)
    if not permissions.can_view(actor, incident):
        raise PermissionDenied("You may not change this incident.")
    _require(permissions.can_change_severity(actor, incident), "You may not change the severity of this incident.")
    if severity not in Severity.values:
        raise ValidationError({"severity": f"“{severity}” is not a severity."})
    old = incident.severity
    if severity == old:
        return incident
    incident.severity = severity
    incident.save(update_fields=["severity", "updated_at"])
    IncidentEvent.objects.create(
        incident=incident, actor=actor, kind=EventKind.SEVERITY_CHANGED, old_value=old, new_value=severity
    )
    return incident
