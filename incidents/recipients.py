"""Who hears of what happens to an incident, and through which message.

The services record each change as a timeline event (`events.py`) and hand it to
`announce`, inside their transaction. This module decides who may hear of it, with the
same predicates as everything else (`permissions.py`): nobody hears of an incident they
may not see, nobody hears of their own action (except the reporter's confirmation), and
each user's preferences are respected. The notifications app renders and delivers; it
knows nothing of incidents.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.timesince import timesince

from notifications.mail import absolute
from notifications.outbox import queue_email

from . import permissions, replies, sla
from .models import EventKind, InboundMessage, Incident, IncidentEvent, Response, Severity

# A refused reply's sender is told why at most this often: a loop or a flood costs one
# mail an hour.
REFUSAL_NOTICE_INTERVAL = timedelta(hours=1)


def announce(event: IncidentEvent) -> None:
    """Queue every notification `event` implies (none for most kinds)."""
    handler = HANDLERS.get(event.kind)
    if handler is not None:
        handler(event)


def _incident_context(incident: Incident) -> dict:
    return {"incident": incident, "incident_url": absolute(incident.get_absolute_url())}


def _tell(user, incident: Incident, *, kind: str, context: dict) -> None:
    """Queue one notification about `incident` to `user`, whose replies come back as their
    responses when reply by e-mail is on (a Reply-To signed for this incident and user)."""
    reply_to = replies.reply_address(incident, user)
    queue_email(
        kind=kind, to=user.email, context={**context, "user": user, "reply_by_mail": bool(reply_to)}, reply_to=reply_to
    )


def _who_may_see(users, incident: Incident) -> list:
    """Of `users` (a queryset), those who may see `incident`, in its order: nobody hears of
    an incident they may not see."""
    return [user for user in permissions.with_membership(users) if permissions.can_view(user, incident)]


def _recipients(incident: Incident, *, exclude, preference: str):
    """The reporter, the assignee and everyone who responded, who may still see the
    incident, want this kind of mail, and are not `exclude` (the person who acted)."""
    User = get_user_model()
    return _who_may_see(
        User.objects.filter(is_active=True)
        .filter(Q(pk=incident.reporter_id) | Q(pk=incident.assignee_id) | Q(incident_responses__incident=incident))
        .exclude(pk=getattr(exclude, "pk", None))
        .filter(**{preference: True})
        .distinct()
        .order_by("pk"),
        incident,
    )


def _alert_team(incident: Incident, *, exclude, moved_from=None) -> None:
    """Tell the members of the incident's team that it is theirs (High and Critical marked)."""
    User = get_user_model()
    members = _who_may_see(
        User.objects.filter(is_active=True, teams=incident.team_id, email_on_new_incident=True)
        .exclude(pk=getattr(exclude, "pk", None))
        .order_by("pk"),
        incident,
    )
    urgent = incident.severity in (Severity.HIGH, Severity.CRITICAL)
    context = {**_incident_context(incident), "urgent": urgent, "moved_from": moved_from}
    if moved_from is None:
        context["files"] = _files(incident.attachments.filter(response=None))
    for user in members:
        _tell(user, incident, kind="incident_alert", context=context)


def incident_reported(event: IncidentEvent) -> None:
    incident = event.incident
    reporter = incident.reporter
    context = {**_incident_context(incident), "files": _files(incident.attachments.filter(response=None))}
    if reporter.email_on_my_report:
        _tell(reporter, incident, kind="incident_reported", context=context)
    _alert_team(incident, exclude=reporter)


def assigned(event: IncidentEvent) -> None:
    """The new assignee hears of it, unless they took it themselves."""
    incident, assignee = event.incident, event.incident.assignee
    if assignee is None or assignee.pk == event.actor_id or not assignee.is_active:
        return
    _tell(assignee, incident, kind="assigned", context={**_incident_context(incident), "actor": event.actor})


def team_changed(event: IncidentEvent) -> None:
    _alert_team(event.incident, exclude=event.actor, moved_from=event.old_value)


def response_added(event: IncidentEvent) -> None:
    response: Response = event.response
    incident = response.incident
    files = _files(response.attachments.all())
    for user in _recipients(incident, exclude=response.author, preference="email_on_response"):
        _tell(
            user,
            incident,
            kind="response_added",
            context={**_incident_context(incident), "response": response, "files": files},
        )


def status_changed(event: IncidentEvent) -> None:
    incident, actor, old_status = event.incident, event.actor, event.old_value
    for user in _recipients(incident, exclude=actor, preference="email_on_status_change"):
        _tell(
            user,
            incident,
            kind="status_changed",
            context={**_incident_context(incident), "actor": actor, "old_status": old_status},
        )


def sla_breached(event: IncidentEvent) -> None:
    """The team's leads hear of a missed SLA clock (staff, when the team has no lead who
    may see the incident). Not subject to a preference: escalation is the point. A clock
    met late, before the escalation got to it, is on the timeline only: somebody acted."""
    incident = event.incident
    if sla.met_at(incident, event.field) is not None:
        return
    User = get_user_model()
    active = User.objects.filter(is_active=True).order_by("pk")
    leads = _who_may_see(active.filter(led_teams=incident.team_id), incident)
    to = leads or list(active.filter(is_staff=True))
    due_at, breached_at = (parse_datetime(value) for value in (event.old_value, event.new_value))
    context = {
        **_incident_context(incident),
        "clock": "acknowledge" if event.field == "acknowledge" else "resolve",
        "due_at": due_at,
        "late_by": timesince(due_at, breached_at),
        "as_lead": bool(leads),
    }
    for user in to:
        _tell(user, incident, kind="sla_breached", context=context)


def reply_refused(record: InboundMessage) -> bool:
    """Tell the sender of a refused e-mail reply why (`record`, not saved yet), through the
    outbox; True if a notice was queued. Only an active account's address hears (anything
    else would be backscatter to a forged sender), never a robot (bounces and automatic
    replies have no explanation), and each address at most once an hour. The incident is
    named only to someone who may see it."""
    explanation = replies.REFUSAL_EXPLANATIONS.get(record.reason)
    if explanation is None or not record.sender:
        return False
    # The user's row is locked so that two ingesters refusing two of their mails at once
    # take turns, and the second sees the first's notice (read committed).
    user = get_user_model().objects.select_for_update().filter(email=record.sender, is_active=True).first()
    if user is None:
        return False
    since = timezone.now() - REFUSAL_NOTICE_INTERVAL
    if InboundMessage.objects.filter(sender=record.sender, bounced_at__gt=since).exists():
        return False
    incident = record.incident if record.incident and permissions.can_view(user, record.incident) else None
    queue_email(
        kind="reply_refused",
        to=user.email,
        context={
            "user": user,
            "subject": record.subject,
            "explanation": explanation,
            "detail": record.detail if record.reason == InboundMessage.Reason.INVALID else "",
            **(_incident_context(incident) if incident else {}),
        },
    )
    return True


def _files(attachments) -> list[dict]:
    """Attached files by name with their (checked) download links: never the files."""
    return [
        {"name": attachment.filename, "url": absolute(attachment.get_absolute_url())}
        for attachment in attachments.select_related("incident")
    ]


HANDLERS = {
    EventKind.REPORTED: incident_reported,
    EventKind.RESPONDED: response_added,
    EventKind.STATUS_CHANGED: status_changed,
    EventKind.ASSIGNED: assigned,
    EventKind.TEAM_CHANGED: team_changed,
    EventKind.SLA_BREACHED: sla_breached,
}
