"""The timeline's event constructors: the one place that says what each kind of event
records. Each returns an unsaved `IncidentEvent`; the services save it and hand it to
`recipients.announce` inside their transaction. `seed_load` bulk-writes historical rows
for speed; incidents/tests/test_seed_load.py checks each of them field by field against
what these constructors build.
"""

from .models import EventKind, Incident, IncidentEvent, Response, Status


def reported(incident: Incident, *, actor) -> IncidentEvent:
    return IncidentEvent(
        incident=incident,
        actor=actor,
        kind=EventKind.REPORTED,
        new_value=Status.REPORTED,
        created_at=incident.created_at,
    )


def status_changed(incident: Incident, *, actor, old: str, new: str, at) -> IncidentEvent:
    return IncidentEvent(
        incident=incident, actor=actor, kind=EventKind.STATUS_CHANGED, old_value=old, new_value=new, created_at=at
    )


def severity_changed(incident: Incident, *, actor, old: str, new: str) -> IncidentEvent:
    return IncidentEvent(incident=incident, actor=actor, kind=EventKind.SEVERITY_CHANGED, old_value=old, new_value=new)


def edited(incident: Incident, *, actor, field: str, old: str, new: str) -> IncidentEvent:
    """A change of title, description or visibility (`field` says which)."""
    return IncidentEvent(
        incident=incident, actor=actor, kind=EventKind.EDITED, field=field, old_value=old, new_value=new
    )


def reporter_changed(incident: Incident, *, actor, old, new) -> IncidentEvent:
    """Staff changed who the incident is reported by (usernames; empty for nobody)."""
    return IncidentEvent(
        incident=incident,
        actor=actor,
        kind=EventKind.REPORTER_CHANGED,
        field="reporter",
        old_value=getattr(old, "username", ""),
        new_value=getattr(new, "username", ""),
    )


def responded(response: Response) -> IncidentEvent:
    return IncidentEvent(
        incident=response.incident,
        actor=response.author,
        kind=EventKind.RESPONDED,
        response=response,
        created_at=response.created_at,
    )


def assignment_changed(incident: Incident, *, actor, old, new) -> IncidentEvent:
    """Someone took the incident, was given it, or nobody owns it any more (usernames)."""
    return IncidentEvent(
        incident=incident,
        actor=actor,
        kind=EventKind.ASSIGNED if new is not None else EventKind.UNASSIGNED,
        field="assignee",
        old_value=getattr(old, "username", ""),
        new_value=getattr(new, "username", ""),
    )


def team_changed(incident: Incident, *, actor, old, new) -> IncidentEvent:
    """Moved to another team (team names, as they read at the time)."""
    return IncidentEvent(
        incident=incident,
        actor=actor,
        kind=EventKind.TEAM_CHANGED,
        field="team",
        old_value=old.name,
        new_value=new.name,
    )


def category_changed(incident: Incident, *, actor, old, new) -> IncidentEvent:
    return IncidentEvent(
        incident=incident,
        actor=actor,
        kind=EventKind.CATEGORY_CHANGED,
        field="category",
        old_value=getattr(old, "name", ""),
        new_value=new.name,
    )


def sla_breached(incident: Incident, *, clock: str, due_at, at) -> IncidentEvent:
    """An SLA clock ("acknowledge" or "resolve") passed its due time unmet. No actor: the
    clock did it. Old value: the due time; new value: when the breach was escalated (the
    difference is how late it was then)."""
    return IncidentEvent(
        incident=incident,
        actor=None,
        kind=EventKind.SLA_BREACHED,
        field=clock,
        old_value=due_at.isoformat(),
        new_value=at.isoformat(),
        created_at=at,
    )


def attached(attachment) -> IncidentEvent:
    """A file was attached (its sanitised name, as it read at the time)."""
    return IncidentEvent(
        incident=attachment.incident,
        actor=attachment.uploaded_by,
        kind=EventKind.ATTACHED,
        attachment=attachment,
        new_value=attachment.filename,
        created_at=attachment.created_at,
    )
