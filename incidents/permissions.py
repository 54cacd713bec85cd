"""Who may do what to an incident. The web views, the API, the admin and the choice of
notification recipients all ask these predicates; no other module decides.

Visibility has a queryset form, `Incident.objects.visible_to(user)`, and the Python form
`can_view` below; the two must agree (tests check them against each other).

Roles, from the incident's point of view:
- staff, and members of a `sees_all` team: see and work every incident;
- members of the incident's team: see it (private too) and work it;
- its assignee and its reporter: see it; the reporter may edit it while Reported, close it
  and reopen it when resolved;
- anyone else signed in: sees it if public, and may respond to it.
"Working" an incident is moving it along the workflow, re-grading it, assigning it and
moving it to another team.
"""

import uuid

from django.http import Http404

from .models import TRANSITIONS, Incident, Membership, Status, Visibility, team_membership


def is_active_user(user) -> bool:
    return getattr(user, "is_authenticated", False) and user.is_active


def is_responder(user) -> bool:
    """Staff, and members of at least one team: the people who work incidents."""
    if not is_active_user(user):
        return False
    return user.is_staff or bool(team_membership(user).team_ids)


def can_view_metrics(user) -> bool:
    """The metrics page and API: staff and team members (each seeing figures over what they
    may see); plain reporters have no team to measure."""
    return is_responder(user)


def sees_everything(user) -> bool:
    return is_active_user(user) and (user.is_staff or team_membership(user).sees_all)


def is_team_member(user, team_id) -> bool:
    return is_active_user(user) and team_id in team_membership(user).team_ids


def with_membership(users) -> list:
    """The users of a queryset, each knowing its teams, in two queries whatever their
    number (for choosing notification recipients with the predicates below)."""
    users = list(users.prefetch_related("teams"))
    for user in users:
        user._irms_membership = Membership.of((team.pk, team.sees_all) for team in user.teams.all())
    return users


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


def is_assignee(user, incident: Incident) -> bool:
    return getattr(user, "is_authenticated", False) and incident.assignee_id == user.pk


def can_view(user, incident: Incident) -> bool:
    if not is_active_user(user):
        return False
    return (
        incident.visibility == Visibility.PUBLIC
        or is_reporter(user, incident)
        or is_assignee(user, incident)
        or sees_everything(user)
        or is_team_member(user, incident.team_id)
    )


def can_work(user, incident: Incident) -> bool:
    """Move along the workflow, re-grade, assign, move to another team: the incident's
    team, `sees_all` teams and staff."""
    return sees_everything(user) or is_team_member(user, incident.team_id)


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

    Those who work the incident make every workflow move except closing an incident that
    is still open (Reported, Acknowledged, In Progress), which is for staff. Reporters may
    close their own incident from any state and reopen their own resolved one.
    """
    if not can_view(user, incident):
        return []
    moves = TRANSITIONS.get(incident.status, ())
    if user.is_staff:
        return list(moves)
    allowed = set()
    if can_work(user, incident):
        allowed.update(m for m in moves if not (m == Status.CLOSED and incident.is_open))
    if is_reporter(user, incident):
        allowed.update(m for m in moves if m == Status.CLOSED)
        if incident.status == Status.RESOLVED:
            allowed.add(Status.IN_PROGRESS)
    return [m for m in moves if m in allowed]


def can_change_status(user, incident: Incident, status: str) -> bool:
    return status in allowed_statuses(user, incident)


def can_change_severity(user, incident: Incident) -> bool:
    return can_work(user, incident) and incident.status != Status.CLOSED


def can_assign(user, incident: Incident) -> bool:
    return can_work(user, incident) and incident.status != Status.CLOSED


def can_change_team(user, incident: Incident) -> bool:
    return can_work(user, incident) and incident.status != Status.CLOSED


def can_be_assigned(user, team_id) -> bool:
    """Who may own an incident of team `team_id`: an active member of it, or staff."""
    return is_active_user(user) and (user.is_staff or is_team_member(user, team_id))


def webhook_may_receive(endpoint, incident: Incident) -> bool:
    """Whether a webhook endpoint hears of `incident`: it is like a member of its team (or,
    without a team, like someone who sees every team) who sees private incidents only if
    `include_private` is set. An inactive endpoint hears of nothing."""
    if not endpoint.active:
        return False
    if endpoint.team_id is not None and endpoint.team_id != incident.team_id:
        return False
    return incident.visibility == Visibility.PUBLIC or endpoint.include_private
