"""Who may do what to an incident. The web views, the API, the admin and the choice of
notification recipients all ask these predicates; no other module decides.

Visibility has a queryset form, `Incident.objects.visible_to(user)`, and the Python form
`can_view` below; the two must agree (tests check them against each other).
"""

import uuid

from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef
from django.http import Http404

from .models import RESPONDERS_GROUP, TRANSITIONS, Incident, Status, Visibility


def is_responder(user) -> bool:
    """Members of the Responders group, and staff, work every incident."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_staff:
        return True
    # Cached on the user object: one query per request, however often it is asked.
    cached = getattr(user, "_irms_is_responder", None)
    if cached is None:
        cached = user.groups.filter(name=RESPONDERS_GROUP).exists()
        user._irms_is_responder = cached
    return cached


def with_responder_flag(users):
    """Annotate a user queryset so `is_responder` answers for each row without a query
    (for choosing notification recipients in one query)."""
    return users.annotate(_irms_is_responder=Exists(Group.objects.filter(name=RESPONDERS_GROUP, user=OuterRef("pk"))))


NOT_FOUND = "No incident has that ID."


def get_visible_incident(user, incident_id, *, queryset=None) -> Incident:
    """The incident whose public `incident_id` this is, if `user` may see it; otherwise
    `Http404`, the same for a malformed id, a missing incident and a hidden one (a 403
    would confirm it exists). Web pages, the API and downloads all look incidents up here;
    `queryset` adds what the caller needs per row (`Incident.objects.for_list()`...)."""
    try:
        incident_id = uuid.UUID(str(incident_id))
    except ValueError:
        raise Http404(NOT_FOUND) from None
    queryset = Incident.objects.all() if queryset is None else queryset
    incident = queryset.visible_to(user).filter(incident_id=incident_id).first()
    if incident is None:
        raise Http404(NOT_FOUND)
    return incident


def is_reporter(user, incident: Incident) -> bool:
    return getattr(user, "is_authenticated", False) and incident.reporter_id == user.pk


def can_view(user, incident: Incident) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return is_responder(user) or incident.visibility == Visibility.PUBLIC or is_reporter(user, incident)


def can_respond(user, incident: Incident) -> bool:
    """Anyone who can see an incident may respond, until it is closed."""
    return can_view(user, incident) and incident.status != Status.CLOSED


def can_edit(user, incident: Incident) -> bool:
    """The reporter may correct title and description until the team picks it up; staff always."""
    if not can_view(user, incident):
        return False
    if user.is_staff:
        return True
    return is_reporter(user, incident) and incident.status == Status.REPORTED


def can_change_visibility(user, incident: Incident) -> bool:
    """Making an incident private (or public) changes who may see it: staff only."""
    return can_view(user, incident) and user.is_staff


def allowed_statuses(user, incident: Incident) -> list[str]:
    """The statuses `user` may move `incident` to, in workflow order.

    Responders make every workflow move except closing an incident that is still open
    (Reported, Acknowledged, In Progress), which is for staff. Reporters may close their
    own incident from any state and reopen their own resolved one.
    """
    if not can_view(user, incident):
        return []
    moves = TRANSITIONS.get(incident.status, ())
    if user.is_staff:
        return list(moves)
    allowed = set()
    if is_responder(user):
        allowed.update(m for m in moves if not (m == Status.CLOSED and incident.is_open))
    if is_reporter(user, incident):
        allowed.update(m for m in moves if m == Status.CLOSED)
        if incident.status == Status.RESOLVED:
            allowed.add(Status.IN_PROGRESS)
    return [m for m in moves if m in allowed]


def can_change_status(user, incident: Incident, status: str) -> bool:
    return status in allowed_statuses(user, incident)


def can_change_severity(user, incident: Incident) -> bool:
    return is_responder(user) and can_view(user, incident) and incident.status != Status.CLOSED
