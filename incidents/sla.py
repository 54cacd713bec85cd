"""SLA clocks: how long an incident may wait to be acknowledged and to be resolved.

Every incident has two clocks, started when it is reported, with targets from the most
specific `SlaPolicy` (team + severity over severity alone). Their due times are stored on
the incident (lists sort and filter on an index); this module computes them and the
services call it on every change that moves them:

- reported: both clocks start from the report time;
- severity or team changed: clocks not yet met are recomputed from their start;
- Resolved → In Progress (reopened): the resolve clock starts again from that moment;
- acknowledge is met by the first move out of Reported, resolve by Resolved or Closed.

A clock whose due time passes unmet is escalated once (`services.escalate_breaches`):
a task queued for its due time (`incidents.tasks.check_sla`) is the fast path, and every
worker's sweep (an index range scan of `sla_escalate_at`) is the
guarantee after restarts and lost tasks (`services.escalate_overdue`).
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils import timezone

from .models import NO_DEADLINE, OPEN_STATUSES, EventKind, Incident, IncidentEvent, SlaPolicy, Status, no_deadline_key

ACKNOWLEDGE, RESOLVE = "acknowledge", "resolve"
CLOCKS = (ACKNOWLEDGE, RESOLVE)
# What stops each clock: the first of these timestamps that is set (closing counts for both).
STOPPED_BY = {ACKNOWLEDGE: ("acknowledged_at", "closed_at"), RESOLVE: ("resolved_at", "closed_at")}
# The incident's columns this module keeps (bulk writers such as seed_load name them).
COLUMNS = (
    "acknowledge_due_at",
    "acknowledge_warn_at",
    "acknowledge_breached_at",
    "resolve_due_at",
    "resolve_warn_at",
    "resolve_breached_at",
    "sla_due_at",
    "sla_escalate_at",
)


class State:
    PENDING, AT_RISK, MET, BREACHED = "pending", "at_risk", "met", "breached"
    ALL = (PENDING, AT_RISK, MET, BREACHED)


# --- Business hours ---------------------------------------------------------------------

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_GROUP = re.compile(
    r"^\s*(?P<days>[a-z,\- ]+?)\s+(?P<hours>\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}(?:\s+\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2})*)\s*$"
)


@dataclass(frozen=True)
class BusinessHours:
    """Working windows by weekday (0 = Monday), as local (start, end) times; an end of
    None means midnight at the end of the day."""

    windows: tuple[tuple[tuple[time, time | None], ...], ...]
    zone: ZoneInfo

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of business time after `start` (in UTC). Arithmetic is on
        UTC instants, so a day that is 23 or 25 hours long (DST) counts what it has."""
        remaining = duration
        start = start.astimezone(UTC)
        day = start.astimezone(self.zone).date()
        # Ten years of days: a policy of years of business time is a mistake, not a loop.
        for _ in range(3660):
            for opens, closes in self.windows[day.weekday()]:
                window_start = datetime.combine(day, opens, tzinfo=self.zone).astimezone(UTC)
                window_end = (
                    datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
                    if closes is None
                    else datetime.combine(day, closes, tzinfo=self.zone)
                ).astimezone(UTC)
                begin = max(window_start, start)
                if begin >= window_end:
                    continue
                if remaining <= window_end - begin:
                    return begin + remaining
                remaining -= window_end - begin
            day += timedelta(days=1)
        raise ImproperlyConfigured("SLA_BUSINESS_HOURS leaves no time to count an SLA clock in.")


def _clock_time(text: str) -> time | None:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours == 24 and minutes == 0:
        return None
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ValueError(text)
    return time(hours, minutes)


def parse_business_hours(spec: str, zone: str = "UTC") -> BusinessHours:
    """`mon-fri 09:00-17:00`; several groups with `;` (`mon-thu 08:00-18:00; fri 08:00-14:00`),
    several windows in a group with spaces (`mon-fri 09:00-12:00 13:00-17:00`), days as
    ranges or lists (`mon,wed,fri`). Raises ImproperlyConfigured on anything else."""
    windows: list[list] = [[] for _ in DAYS]
    for group in filter(str.strip, spec.lower().split(";")):
        match = _GROUP.match(group)
        if not match:
            raise ImproperlyConfigured(f"SLA_BUSINESS_HOURS: cannot read “{group.strip()}” (e.g. mon-fri 09:00-17:00).")
        days: set[int] = set()
        for part in filter(None, (p.strip() for p in match["days"].split(","))):
            first, _, last = (p.strip() for p in part.partition("-"))
            if first not in DAYS or (last and last not in DAYS):
                raise ImproperlyConfigured(f"SLA_BUSINESS_HOURS: “{part}” is not a day or range of days (mon-sun).")
            a, b = DAYS.index(first), DAYS.index(last or first)
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        for window in re.findall(r"\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}", match["hours"]):
            opens_text, closes_text = (p.strip() for p in window.split("-"))
            try:
                opens, closes = _clock_time(opens_text), _clock_time(closes_text)
            except ValueError:
                raise ImproperlyConfigured(f"SLA_BUSINESS_HOURS: “{window}” is not a time range.") from None
            if opens is None or (closes is not None and closes <= opens):
                raise ImproperlyConfigured(f"SLA_BUSINESS_HOURS: “{window}” must end after it starts.")
            for day in days:
                windows[day].append((opens, closes))
    if not any(windows):
        raise ImproperlyConfigured("SLA_BUSINESS_HOURS names no working hours.")
    return BusinessHours(tuple(_merged(day) for day in windows), ZoneInfo(zone))


def _merged(windows: list) -> tuple:
    """A day's windows in order, overlapping or touching ones joined: an hour two groups
    both name is one business hour, counted once."""
    end_of_day = time.max
    merged: list[list] = []
    for opens, closes in sorted(windows, key=lambda w: (w[0], w[1] or end_of_day)):
        if merged and (merged[-1][1] is None or opens <= merged[-1][1]):
            last = merged[-1][1]
            if last is not None and (closes is None or closes > last):
                merged[-1][1] = closes
        else:
            merged.append([opens, closes])
    return tuple((opens, closes) for opens, closes in merged)


@cache
def _business_hours(spec: str, zone: str) -> BusinessHours:
    return parse_business_hours(spec, zone)


def business_hours() -> BusinessHours:
    return _business_hours(settings.SLA_BUSINESS_HOURS, settings.TIME_ZONE)


# --- Policies and clocks ------------------------------------------------------------------


def policy_for(severity: str, team_id) -> SlaPolicy | None:
    """The team's own policy for `severity`, else the default one, else none."""
    return (
        SlaPolicy.objects.filter(severity=severity)
        .filter(models.Q(team_id=team_id) | models.Q(team__isnull=True))
        .order_by(models.F("team_id").asc(nulls_last=True))
        .first()
    )


def deadline(start: datetime, within: timedelta, *, business: bool) -> tuple[datetime, datetime]:
    """(due, at-risk) for a clock started at `start`: at risk once SLA_AT_RISK_FRACTION of
    the window is left."""
    used_before_warning = within * (1 - settings.SLA_AT_RISK_FRACTION)
    if business:
        hours = business_hours()
        return hours.add(start, within), hours.add(start, used_before_warning)
    return start + within, start + used_before_warning


def met_at(incident: Incident, clock: str) -> datetime | None:
    """When `clock` was met, or None. Closing counts for both clocks (a report closed
    straight from Reported was dealt with)."""
    if clock == ACKNOWLEDGE:
        return incident.acknowledged_at or incident.closed_at
    if incident.status in (Status.RESOLVED, Status.CLOSED):
        return incident.resolved_at or incident.closed_at
    return None


def _set(incident: Incident, clock: str, due, warn) -> None:
    setattr(incident, f"{clock}_due_at", due)
    setattr(incident, f"{clock}_warn_at", warn)


def _start(incident: Incident, clock: str, start: datetime, policy: SlaPolicy | None) -> None:
    if policy is None:
        _set(incident, clock, None, None)
        return
    within = policy.acknowledge_within if clock == ACKNOWLEDGE else policy.resolve_within
    _set(incident, clock, *deadline(start, within, business=policy.business_hours))


def sync(incident: Incident) -> None:
    """Recompute the two index columns from the clocks."""
    unmet = [getattr(incident, f"{c}_due_at") for c in CLOCKS if met_at(incident, c) is None]
    unescalated = [
        getattr(incident, f"{c}_due_at")
        for c in CLOCKS
        if met_at(incident, c) is None and getattr(incident, f"{c}_breached_at") is None
    ]
    incident.sla_due_at = min((due for due in unmet if due is not None), default=no_deadline_key(incident.created_at))
    incident.sla_escalate_at = min((due for due in unescalated if due is not None), default=NO_DEADLINE)


def start_clocks(incident: Incident) -> None:
    """A new report: both clocks start at its report time."""
    policy = policy_for(incident.severity, incident.team_id)
    for clock in CLOCKS:
        _start(incident, clock, incident.created_at, policy)
    sync(incident)


def resolve_started_at(incident: Incident) -> datetime:
    """The resolve clock runs from the report, or from the last reopening."""
    reopened = (
        IncidentEvent.objects.filter(
            incident=incident,
            kind=EventKind.STATUS_CHANGED,
            old_value=Status.RESOLVED,
            new_value=Status.IN_PROGRESS,
        )
        .order_by("-created_at", "-id")
        .values_list("created_at", flat=True)
        .first()
    )
    return reopened or incident.created_at


def recompute(incident: Incident) -> None:
    """Severity or team changed: clocks not yet met take the new target, counted from
    when they started. A clock already escalated stays breached."""
    policy = policy_for(incident.severity, incident.team_id)
    if met_at(incident, ACKNOWLEDGE) is None:
        _start(incident, ACKNOWLEDGE, incident.created_at, policy)
    if met_at(incident, RESOLVE) is None:
        _start(incident, RESOLVE, resolve_started_at(incident), policy)
    sync(incident)


def status_moved(incident: Incident, *, old: str, new: str, at: datetime) -> list[str]:
    """After a workflow move (the incident's fields already say `new`): a reopening starts
    the resolve clock again; a clock met after its due time, before the escalation got to
    it, is recorded as breached. Returns those clocks (the caller records their breach on
    the timeline; nobody is mailed: somebody is on it now)."""
    if old == Status.RESOLVED and new == Status.IN_PROGRESS:
        _start(incident, RESOLVE, at, policy_for(incident.severity, incident.team_id))
        incident.resolve_breached_at = None
    late = []
    for clock in CLOCKS:
        due, met = getattr(incident, f"{clock}_due_at"), met_at(incident, clock)
        if met is not None and due is not None and met > due and getattr(incident, f"{clock}_breached_at") is None:
            setattr(incident, f"{clock}_breached_at", met)
            late.append(clock)
    sync(incident)
    return late


def overdue_clocks(incident: Incident, now: datetime) -> list[str]:
    """Clocks past due, not met, and not yet escalated."""
    return [
        clock
        for clock in CLOCKS
        if met_at(incident, clock) is None
        and getattr(incident, f"{clock}_breached_at") is None
        and getattr(incident, f"{clock}_due_at") is not None
        and getattr(incident, f"{clock}_due_at") <= now
    ]


# --- What users see -----------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    name: str
    due_at: datetime | None
    state: str

    @property
    def label(self) -> str:
        return "Acknowledge" if self.name == ACKNOWLEDGE else "Resolve"


def clock(incident: Incident, name: str, now: datetime | None = None) -> Clock:
    now = now or timezone.now()
    due = getattr(incident, f"{name}_due_at")
    met = met_at(incident, name)
    late = due is not None and (met > due if met is not None else now >= due)
    if getattr(incident, f"{name}_breached_at") is not None or late:
        state = State.BREACHED
    elif met is not None:
        state = State.MET
    elif due is not None and getattr(incident, f"{name}_warn_at") <= now:
        state = State.AT_RISK
    else:
        state = State.PENDING
    return Clock(name, due, state)


def clocks(incident: Incident, now: datetime | None = None) -> dict[str, Clock]:
    now = now or timezone.now()
    return {name: clock(incident, name, now) for name in CLOCKS}


def next_clock(incident: Incident, now: datetime | None = None) -> Clock | None:
    """The clock a list shows: the unmet one due soonest (None when both are met or no
    policy applies)."""
    waiting = [c for c in clocks(incident, now).values() if c.due_at is not None and met_at(incident, c.name) is None]
    return min(waiting, key=lambda c: c.due_at, default=None)


def unmet_q(clock_name: str) -> models.Q:
    if clock_name == ACKNOWLEDGE:
        return models.Q(acknowledged_at__isnull=True, closed_at__isnull=True)
    return models.Q(status__in=OPEN_STATUSES)


def met_q(clock_name: str, *, late: bool) -> models.Q:
    """Met after its due time (`late`), or met in time (or with no due time): `met_at`'s
    twin, the first of its two timestamps that is set compared with the due time."""
    first, then = STOPPED_BY[clock_name]
    due = f"{clock_name}_due_at"
    done = ~unmet_q(clock_name)

    def compare(field: str) -> models.Q:
        if late:
            return models.Q(**{f"{field}__gt": models.F(due)})
        return models.Q(**{f"{due}__isnull": True}) | models.Q(**{f"{field}__lte": models.F(due)})

    return done & (
        (models.Q(**{f"{first}__isnull": False}) & compare(first))
        | (models.Q(**{f"{first}__isnull": True, f"{then}__isnull": False}) & compare(then))
    )


def overdue_q(clock_name: str, now: datetime) -> models.Q:
    """The clock still runs and its due time has passed."""
    return unmet_q(clock_name) & models.Q(**{f"{clock_name}_due_at__lte": now})


def state_q(state: str, now: datetime) -> models.Q:
    """Incidents with either clock in `state` (the `sla=` filter), the database's twin of
    `clock()`."""
    q = models.Q(pk__in=[])
    for name in CLOCKS:
        due, warn, breached = f"{name}_due_at", f"{name}_warn_at", f"{name}_breached_at"
        unmet = unmet_q(name)
        if state == State.BREACHED:
            q |= models.Q(**{f"{breached}__isnull": False}) | overdue_q(name, now) | met_q(name, late=True)
        elif state == State.AT_RISK:
            q |= unmet & models.Q(**{f"{breached}__isnull": True, f"{warn}__lte": now, f"{due}__gt": now})
        elif state == State.PENDING:
            q |= (
                unmet
                & models.Q(**{f"{breached}__isnull": True})
                & (models.Q(**{f"{due}__isnull": True}) | models.Q(**{f"{warn}__gt": now}))
            )
        elif state == State.MET:
            q |= met_q(name, late=False) & models.Q(**{f"{breached}__isnull": True})
    return q


def replay(incident: Incident, *, policy: SlaPolicy | None, resolve_started_at: datetime, now: datetime) -> list[str]:
    """Fill the clocks of an incident whose whole history is already on it (`seed_load`
    writes history without the services): as the services and the escalations would have
    left them, each clock missed escalated at its due time. Returns the clocks breached."""
    _start(incident, ACKNOWLEDGE, incident.created_at, policy)
    _start(incident, RESOLVE, resolve_started_at, policy)
    breached = []
    for name in CLOCKS:
        due, met = getattr(incident, f"{name}_due_at"), met_at(incident, name)
        if due is not None and due < (met or now):
            setattr(incident, f"{name}_breached_at", due)
            breached.append(name)
    sync(incident)
    return breached
