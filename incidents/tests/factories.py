"""Test data made the way the application makes it: through `incidents.services`.

Plain functions, no factory library. Each takes the users it needs, so the calling test's
fixtures decide who is who, and every object they return has a real row (and the timeline
events a real one would have) behind it.
"""

from datetime import timedelta

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from incidents import services, sla
from incidents.models import (
    DEFAULT_CATEGORY,
    DEFAULT_TEAM,
    Category,
    Incident,
    IncidentEvent,
    Response,
    Severity,
    Status,
    Team,
    Visibility,
)

# The statuses an incident passes through, from Reported, to reach each status the long way.
# Every step is one a responder (and staff) may make, so `advance_to` works with either.
PATH_TO = {
    Status.REPORTED: (),
    Status.ACKNOWLEDGED: (Status.ACKNOWLEDGED,),
    Status.IN_PROGRESS: (Status.ACKNOWLEDGED, Status.IN_PROGRESS),
    Status.RESOLVED: (Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED),
    Status.CLOSED: (Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED),
}


def make_incident(reporter, **overrides) -> Incident:
    """An incident `reporter` filed through `services.report_incident`: status Reported,
    one `reported` event. `overrides` replace the defaults for title, description,
    severity and visibility (e.g. `visibility=Visibility.PRIVATE`)."""
    fields = {
        "title": "Printer on fire",
        "description": "Third floor, next to the kitchen. Smoke, no flames yet.",
        "severity": Severity.MEDIUM,
        "visibility": Visibility.PUBLIC,
    }
    fields.update(overrides)
    if "category" not in fields:
        response_team()
    return services.report_incident(reporter=reporter, **fields)


def response_team() -> Team:
    """The default `sees_all` team and its `general` category (created by migration
    incidents/0011; recreated here because a transactional test's flush empties them)."""
    team, _ = Team.objects.get_or_create(slug=DEFAULT_TEAM, defaults={"name": "Response team", "sees_all": True})
    Category.objects.get_or_create(slug=DEFAULT_CATEGORY, defaults={"name": "General", "team": team, "position": 0})
    return team


def make_team(slug: str, *, members=(), leads=(), sees_all: bool = False, category: str | None = None) -> Team:
    """A team with `members` (and `leads`, who are members too) and one active category
    (`category`, default `<slug>-issues`) routed to it."""
    team = Team.objects.create(slug=slug, name=slug.replace("-", " ").title(), sees_all=sees_all)
    team.members.add(*members, *leads)
    team.leads.add(*leads)
    Category.objects.create(slug=category or f"{slug}-issues", name=f"{team.name} issues", team=team)
    return team


def category_of(team: Team) -> Category:
    return team.categories.order_by("position", "pk").first()


def assign_then_leave_team(incident: Incident, assignee, *, by) -> Incident:
    """Give `incident` to `assignee` with `services.assign` (acting as `by`, who works it),
    then take `assignee` off the incident's team: someone who left the team but still owns
    the incident. The service only assigns members of the team (or staff), so they join it
    first; leaving a team, in the admin as here, unassigns nobody. Returns the incident as
    stored."""
    incident.team.members.add(assignee)
    services.assign(incident=incident, actor=by, assignee=assignee)
    incident.team.members.remove(assignee)
    # Membership is read once per user object (models.team_membership): forget any read
    # while they were a member, as the next request would.
    vars(assignee).pop("_irms_membership", None)
    return Incident.objects.get(pk=incident.pk)


def make_responder(make_user, name: str = "rita", **extra):
    """A member of the `response` team, which sees and works every incident (the former
    Responders group). `make_user` is the root conftest's fixture; `extra` goes to
    `create_user`."""
    user = make_user(name, **extra)
    response_team().members.add(user)
    return user


def make_staff(make_user, name: str = "sam", **extra):
    """A staff user (`is_staff=True`, not a superuser): may do everything to an incident."""
    return make_user(name, is_staff=True, **extra)


def advance_to(incident: Incident, status: str, *, by) -> Incident:
    """Move a Reported `incident` to `status` along the main workflow path
    (Reported → Acknowledged → In Progress → Resolved → Closed) with
    `services.change_status`, acting as `by` (a responder or staff). Returns the incident
    as stored, with the timestamps and `status_changed` events those moves leave."""
    for step in PATH_TO[status]:
        incident = services.change_status(incident=incident, actor=by, status=step)
    return Incident.objects.get(pk=incident.pk)


def api_client(user=None, auth="token") -> APIClient:
    """A client signed in as `user` by API token or by session (None: anonymous)."""
    client = APIClient()
    if user is not None and auth == "token":
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    elif user is not None:
        client.force_login(user)
    return client


def stored(incident) -> dict:
    """The incident's row as stored, and the number of timeline events and responses."""
    return {
        "row": Incident.objects.filter(pk=incident.pk).values().get(),
        "events": IncidentEvent.objects.count(),
        "responses": Response.objects.count(),
    }


def settle(run_tasks, mailoutbox) -> None:
    """Deliver what the set-up queued and forget it."""
    run_tasks()
    mailoutbox.clear()


def delivered(run_tasks, mailoutbox) -> dict[str, list[str]]:
    """Run the queued tasks; the subjects each recipient got, by username."""
    run_tasks()
    found: dict[str, list[str]] = {}
    for message in mailoutbox:
        (to,) = message.to
        found.setdefault(to.split("@")[0], []).append(message.subject)
    return found


def set_clock(incident: Incident, clock: str, *, due, warn=None, breached=None) -> Incident:
    """Move one SLA clock's times (as if the incident were older: due, at risk a minute
    before unless `warn` says, escalated at `breached`), keeping the index columns true;
    returns the incident as stored."""
    Incident.objects.filter(pk=incident.pk).update(
        **{
            f"{clock}_due_at": due,
            f"{clock}_warn_at": warn or due - timedelta(minutes=1),
            f"{clock}_breached_at": breached,
        }
    )
    incident = Incident.objects.get(pk=incident.pk)
    sla.sync(incident)
    Incident.objects.filter(pk=incident.pk).update(
        sla_due_at=incident.sla_due_at, sla_escalate_at=incident.sla_escalate_at
    )
    return Incident.objects.get(pk=incident.pk)
