"""How well incidents are answered, in numbers: the metrics page (`/metrics/`), its CSV
and `GET /api/metrics` all read `measure()`.

Definitions (a period is a range of whole days in `TIME_ZONE`, both ends included):
- *reported* counts incidents created in the period; *acknowledged*, *resolved* and
  *closed* count incidents whose `acknowledged_at` / `resolved_at` / `closed_at` falls in
  it (whenever they were reported); *open now* counts incidents open at the moment asked.
- *Time to acknowledge* is from the report to the first of `acknowledged_at` and
  `closed_at` (closing unacknowledged counts, as it stops the SLA clock); *time to resolve*
  is to the first of `resolved_at` and `closed_at`. Both are measured over the incidents
  reported in the period that have got there, in whole seconds (truncated).
- The median and the 90th percentile use the nearest-rank method: of n values in
  ascending order, the p-th percentile is the value at rank ceil(p × n / 100).
- An SLA clock is *met* when it stopped by its due time and *missed* when it stopped after
  it or is still running past it; clocks still running in time are not counted yet, nor
  are incidents no policy applied to. The ratio is met / (met + missed), over incidents
  reported in the period. *Breached now*: open incidents with a clock running past due.
- Weeks start on Monday. The weekly series clips the first and last week to the period;
  `open_at_end` is the number open at the week's end (or now, for the current week),
  taking an incident as done from its `resolved_at` (else `closed_at`) as stored now, so an
  incident reopened and still open counts as open since its report.

Every figure counts only incidents the viewer may see (`Incident.objects.visible_to`).

Speed: each figure is one aggregate query the database answers from an index range over
the period (or over the open incidents), and the percentiles are picked by window
functions in the database, so a request reads the period's rows once per query and
returns a few dozen, whatever the size of the table. No rollup table to keep in step.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Case, Count, DurationField, ExpressionWrapper, F, IntegerField, Q, Value, When, Window
from django.db.models.functions import Coalesce, RowNumber
from django.db.models.lookups import GreaterThan, GreaterThanOrEqual
from django.urls import reverse
from django.utils import timezone

from notifications.mail import absolute

from . import sla
from .models import OPEN_STATUSES, Category, Incident, Severity, Team, team_membership

DEFAULT_DAYS = 90
# The dates a period may cover (date arithmetic beyond them overflows).
EARLIEST, LATEST = date(1970, 1, 1), date(9000, 1, 1)
PERCENTILES = {"median_seconds": 50, "p90_seconds": 90}
TOP_CATEGORIES = 10
OLDEST_OPEN = 10

ACKNOWLEDGE, RESOLVE = sla.ACKNOWLEDGE, sla.RESOLVE


def default_period(today: date | None = None) -> tuple[date, date]:
    """The last 90 days, today included."""
    today = today or timezone.localdate()
    return today - timedelta(days=DEFAULT_DAYS), today


def longest_period_start(last: date) -> date:
    """The earliest first day a period ending on `last` may have (two years)."""
    try:
        return last.replace(year=last.year - 2)
    except ValueError:  # 29 February
        return last.replace(year=last.year - 2, day=28)


@dataclass(frozen=True)
class Scope:
    """What to measure: a period and optional filters (no teams: every team)."""

    first: date
    last: date
    teams: tuple = ()
    category: Category | None = None
    severity: str | None = None

    @property
    def start(self) -> datetime:
        return local_midnight(self.first)

    @property
    def end(self) -> datetime:
        return local_midnight(self.last + timedelta(days=1))


def default_teams(user) -> tuple:
    """The teams a viewer sees by default: staff and members of a team that sees every
    incident, every team (none chosen); other team members their own teams."""
    if user.is_staff or team_membership(user).sees_all:
        return ()
    return tuple(Team.objects.filter(members=user).order_by("name"))


def local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass
class Week:
    start: date
    begins: datetime  # clipped to the period
    ends: datetime  # clipped to the period
    reported: int = 0
    resolved: int = 0
    open_at_end: int | None = None


def weeks_of(scope: Scope) -> list[Week]:
    monday = scope.first - timedelta(days=scope.first.weekday())
    weeks = []
    while monday <= scope.last:
        begins = max(local_midnight(monday), scope.start)
        ends = min(local_midnight(monday + timedelta(days=7)), scope.end)
        weeks.append(Week(start=monday, begins=begins, ends=ends))
        monday += timedelta(days=7)
    return weeks


@dataclass
class Group:
    """The figures of one slice (everything, one severity or one team)."""

    reported: int = 0
    open_now: int = 0
    breached_now: int = 0
    met: dict = field(default_factory=lambda: {ACKNOWLEDGE: 0, RESOLVE: 0})
    missed: dict = field(default_factory=lambda: {ACKNOWLEDGE: 0, RESOLVE: 0})
    times: dict = field(
        default_factory=lambda: {clock: dict.fromkeys(PERCENTILES) | {"count": 0} for clock in (ACKNOWLEDGE, RESOLVE)}
    )

    def ratio(self, clock: str) -> float | None:
        decided = self.met[clock] + self.missed[clock]
        return round(self.met[clock] / decided, 4) if decided else None

    def as_dict(self) -> dict:
        return {
            "reported": self.reported,
            "open_now": self.open_now,
            "time_to_acknowledge": self.times[ACKNOWLEDGE],
            "time_to_resolve": self.times[RESOLVE],
            "sla": {
                "acknowledge_met_ratio": self.ratio(ACKNOWLEDGE),
                "resolve_met_ratio": self.ratio(RESOLVE),
                "breached_now": self.breached_now,
            },
        }


def _stopped_at(clock: str):
    return Coalesce(*sla.STOPPED_BY[clock])


def _met_q(clock: str) -> Q:
    """Stopped by its due time (incidents with no due time have no clock to meet)."""
    return sla.met_q(clock, late=False) & Q(**{f"{clock}_due_at__isnull": False})


def _missed_q(clock: str, now: datetime) -> Q:
    """Stopped after its due time, or still running past it."""
    return sla.met_q(clock, late=True) | sla.overdue_q(clock, now)


def breached_now_q(now: datetime) -> Q:
    """Open incidents with a clock running past its due time."""
    return Q(status__in=OPEN_STATUSES) & (sla.overdue_q(ACKNOWLEDGE, now) | sla.overdue_q(RESOLVE, now))


def _done_after(moment: datetime) -> Q:
    """Done (resolved, else closed, as stored) after `moment`."""
    return Q(resolved_at__gt=moment) | Q(resolved_at__isnull=True, closed_at__gt=moment)


def _in(field_name: str, begins: datetime, ends: datetime) -> Q:
    return Q(**{f"{field_name}__gte": begins, f"{field_name}__lt": ends})


# The slices a percentile is picked in: everything, each severity, each team.
PARTITIONS = {"all": None, "severity": "severity", "team": "team_id"}


def _percentiles(reported, clock: str) -> dict:
    """{(partition, key): {"median_seconds": s, "p90_seconds": s, "count": n}} for the time
    from report to `clock` stopping, over `reported` incidents whose clock stopped, in one
    query: the database ranks the times within each slice (window functions) and returns
    only the rows at the wanted ranks, a few dozen whatever the number of incidents.

    The ranking is the ORM's (so visibility and filters are the caller's queryset); the
    pick around it is a little SQL of our own, since Django's filter on window functions
    compiles slowly for six of them and the comparisons are plain integer arithmetic."""
    duration = ExpressionWrapper(_stopped_at(clock) - F("created_at"), output_field=DurationField())
    windows = {}
    for name, column in PARTITIONS.items():
        partition = [F(column)] if column else None
        order = [F("duration").asc(), F("pk").asc()]
        windows[f"rn_{name}"] = Window(RowNumber(), partition_by=partition, order_by=order)
        windows[f"n_{name}"] = Window(Count("pk"), partition_by=partition)
    ranked = (
        reported.alias(duration=duration)
        .filter(duration__isnull=False)
        .annotate(seconds=F("duration"), **windows)
        .order_by()
        .values("severity", "team_id", "seconds", *windows)
    )
    try:
        inner, params = ranked.query.get_compiler(using=reported.db).as_sql()
    except EmptyResultSet:  # a filter that can match nothing
        return {}
    quote = connections[reported.db].ops.quote_name
    # A row is wanted where its rank is the nearest rank of a percentile p in some slice:
    # the smallest rank r of n with 100 r >= p n, i.e. 100 r >= p n > 100 (r - 1).
    wanted = " OR ".join(
        f"({quote('rn_' + name)} * 100 >= {quote('n_' + name)} * {percent}"
        f" AND ({quote('rn_' + name)} - 1) * 100 < {quote('n_' + name)} * {percent})"
        for name in PARTITIONS
        for percent in PERCENTILES.values()
    )
    columns = ", ".join(quote(c) for c in ("severity", "team_id", "seconds", *windows))
    found = {}
    with connections[reported.db].cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM ({inner}) ranked WHERE {wanted}", params)  # noqa: S608 - our names
        rows = cursor.fetchall()
    for severity, team_id, microseconds, *ranks in rows:
        seconds = _whole_seconds(microseconds)
        for (name, column), (rn, n) in zip(PARTITIONS.items(), zip(ranks[::2], ranks[1::2], strict=True), strict=True):
            key = {None: None, "severity": severity, "team_id": team_id}[column]
            for label, percent in PERCENTILES.items():
                if 100 * rn >= percent * n > 100 * (rn - 1):
                    entry = found.setdefault((name, key), dict.fromkeys(PERCENTILES) | {"count": n})
                    entry[label] = seconds
    return found


def _whole_seconds(microseconds) -> int:
    """A duration as the database gives it in raw SQL (microseconds on SQLite and MySQL
    alike, or a timedelta from a backend that converts), truncated to whole seconds."""
    if isinstance(microseconds, timedelta):
        microseconds = microseconds // timedelta(microseconds=1)
    microseconds = int(microseconds)
    whole = abs(microseconds) // 1_000_000
    return whole if microseconds >= 0 else -whole


@dataclass
class Metrics:
    scope: Scope
    now: datetime
    reported: int = 0
    acknowledged: int = 0
    resolved: int = 0
    closed: int = 0
    overall: Group = field(default_factory=Group)
    by_severity: dict = field(default_factory=dict)
    by_team: dict = field(default_factory=dict)
    weeks: list = field(default_factory=list)
    top_categories: list = field(default_factory=list)
    oldest_open: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """The API's representation (see the module's docstring for each figure)."""
        overall = self.overall.as_dict()
        return {
            "from": self.scope.first.isoformat(),
            "to": self.scope.last.isoformat(),
            "teams": [team.slug for team in self.scope.teams],
            "category": self.scope.category.slug if self.scope.category else None,
            "severity": self.scope.severity,
            "reported": self.reported,
            "acknowledged": self.acknowledged,
            "resolved": self.resolved,
            "closed": self.closed,
            "open_now": overall["open_now"],
            "time_to_acknowledge": overall["time_to_acknowledge"],
            "time_to_resolve": overall["time_to_resolve"],
            "sla": overall["sla"],
            "by_severity": [{"severity": severity} | group.as_dict() for severity, group in self.by_severity.items()],
            "by_team": [
                {"team": team.slug, "name": team.name} | group.as_dict() for team, group in self.by_team.values()
            ],
            "weekly": [
                {
                    "week_start": week.start.isoformat(),
                    "reported": week.reported,
                    "resolved": week.resolved,
                    "open_at_end": week.open_at_end,
                }
                for week in self.weeks
            ],
            "top_categories": self.top_categories,
            "oldest_open": self.oldest_open,
        }


def measure(user, scope: Scope, *, now: datetime | None = None) -> Metrics:
    """The figures for `scope`, over the incidents `user` may see (see the module's
    docstring for what each one means)."""
    now = now or timezone.now()
    incidents = Incident.objects.visible_to(user).order_by()
    if scope.teams:
        incidents = incidents.filter(team_id__in=[team.pk for team in scope.teams])
    if scope.category is not None:
        incidents = incidents.filter(category=scope.category)
    if scope.severity:
        incidents = incidents.filter(severity=scope.severity)

    teams = scope.teams or tuple(Team.objects.order_by("name"))
    result = Metrics(scope=scope, now=now, weeks=weeks_of(scope))
    result.by_severity = {
        severity: Group() for severity in reversed(Severity.values) if scope.severity in (None, severity)
    }
    result.by_team = {team.pk: (team, Group()) for team in teams}

    def groups(severity, team_id):
        yield result.overall
        if severity in result.by_severity:
            yield result.by_severity[severity]
        if team_id in result.by_team:
            yield result.by_team[team_id][1]

    reported = incidents.filter(**{"created_at__gte": scope.start, "created_at__lt": scope.end})
    _count_reported(result, reported, now, groups)
    for clock in (ACKNOWLEDGE, RESOLVE):
        for (partition, key), entry in _percentiles(reported, clock).items():
            if partition == "all":
                result.overall.times[clock] = entry
            elif partition == "severity" and key in result.by_severity:
                result.by_severity[key].times[clock] = entry
            elif partition == "team" and key in result.by_team:
                result.by_team[key][1].times[clock] = entry
    result.acknowledged = incidents.filter(_in("acknowledged_at", scope.start, scope.end)).count()
    result.closed = incidents.filter(_in("closed_at", scope.start, scope.end)).count()
    _count_resolved(result, incidents, scope)
    _count_open(result, incidents, now, groups)
    result.top_categories = _top_categories(reported)
    result.oldest_open = _oldest_open(incidents)
    return result


def _after(expression, moments: list[datetime], *, strictly: bool = True) -> Case:
    """How many of `moments` (ascending) come before `expression`'s value (strictly, or
    at or before it): the weekly figures group by this, one expression rather than one
    count per week."""
    after = GreaterThan if strictly else GreaterThanOrEqual
    whens = [When(after(expression, moment), then=Value(i + 1)) for i, moment in reversed(list(enumerate(moments)))]
    return Case(*whens, default=Value(0), output_field=IntegerField()) if whens else Value(0)


def _count_reported(result: Metrics, reported, now: datetime, groups) -> None:
    # Week k holds what came at or after the k-th week's end: a period's row is in week 0..W-1.
    week_ends = [week.ends for week in result.weeks[:-1]]
    rows = (
        reported.annotate(week=_after(F("created_at"), week_ends, strictly=False))
        .values("severity", "team_id", "week")
        .annotate(
            n=Count("pk"),
            **{f"{clock}_met": Count("pk", filter=_met_q(clock)) for clock in (ACKNOWLEDGE, RESOLVE)},
            **{f"{clock}_missed": Count("pk", filter=_missed_q(clock, now)) for clock in (ACKNOWLEDGE, RESOLVE)},
        )
        .order_by()
    )
    for row in rows:
        result.reported += row["n"]
        result.weeks[row["week"]].reported += row["n"]
        for group in groups(row["severity"], row["team_id"]):
            group.reported += row["n"]
            for clock in (ACKNOWLEDGE, RESOLVE):
                group.met[clock] += row[f"{clock}_met"]
                group.missed[clock] += row[f"{clock}_missed"]


def _count_resolved(result: Metrics, incidents, scope: Scope) -> None:
    week_ends = [week.ends for week in result.weeks[:-1]]
    rows = (
        incidents.filter(_in("resolved_at", scope.start, scope.end))
        .annotate(week=_after(F("resolved_at"), week_ends, strictly=False))
        .values("week")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        result.resolved += row["n"]
        result.weeks[row["week"]].resolved += row["n"]


def _count_open(result: Metrics, incidents, now: datetime, groups) -> None:
    """Open now, breached now, and the backlog at each week's end t: open now, less those
    reported after t, plus those done after t that were reported by then. Each query
    groups its rows by how many week ends come before the row's time."""
    ends = [min(week.ends, now) for week in result.weeks if week.begins <= now]
    open_rows = (
        incidents.filter(status__in=OPEN_STATUSES)
        .annotate(reported_after=_after(F("created_at"), ends))
        .values("severity", "team_id", "reported_after")
        .annotate(n=Count("pk"), breached=Count("pk", filter=breached_now_q(now)))
        .order_by()
    )
    open_now, reported_since = 0, [0] * len(ends)
    for row in open_rows:
        open_now += row["n"]
        for i in range(row["reported_after"]):  # reported after ends 0 .. k-1
            reported_since[i] += row["n"]
        for group in groups(row["severity"], row["team_id"]):
            group.open_now += row["n"]
            group.breached_now += row["breached"]
    done_since = [0] * len(ends)
    if ends:
        done_rows = (
            incidents.exclude(status__in=OPEN_STATUSES)
            .filter(_done_after(ends[0]))
            .annotate(
                reported_after=_after(F("created_at"), ends),
                done_after=_after(Coalesce("resolved_at", "closed_at"), ends),
            )
            .values("reported_after", "done_after")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in done_rows:
            # Open at end i: reported by then (i >= reported_after), done after it (i < done_after).
            for i in range(row["reported_after"], row["done_after"]):
                done_since[i] += row["n"]
    for i in range(len(ends)):
        result.weeks[i].open_at_end = open_now - reported_since[i] + done_since[i]


def _top_categories(reported) -> list[dict]:
    rows = list(reported.values("category_id").annotate(n=Count("pk")).order_by("-n", "category_id")[:TOP_CATEGORIES])
    names = Category.objects.in_bulk([row["category_id"] for row in rows if row["category_id"]])
    return [
        {
            "category": names[row["category_id"]].slug if row["category_id"] in names else None,
            "name": names[row["category_id"]].name if row["category_id"] in names else "No category",
            "reported": row["n"],
        }
        for row in rows
    ]


def _oldest_open(incidents) -> list[dict]:
    # One query per open status, each an ordered range of the (status, created_at, id)
    # index that stops after ten rows (`status IN (...)` ordered by date would sort every
    # open incident), with no join (a join to the small teams table lets MariaDB start from
    # it and sort); the teams' slugs come from one look-up.
    columns = ("pk", "incident_id", "title", "severity", "status", "team_id", "created_at")
    oldest = [
        row
        for status in OPEN_STATUSES
        for row in incidents.filter(status=status).order_by("created_at", "id").values(*columns)[:OLDEST_OPEN]
    ]
    rows = sorted(oldest, key=lambda row: (row["created_at"], row["pk"]))[:OLDEST_OPEN]
    slugs = dict(Team.objects.filter(pk__in={row["team_id"] for row in rows}).values_list("pk", "slug"))
    return [
        {
            "incident_id": str(row["incident_id"]),
            "title": row["title"],
            "severity": row["severity"],
            "status": row["status"],
            "team": slugs.get(row["team_id"]),
            "reported_at": timezone.localtime(row["created_at"]).isoformat(),
            "url": absolute(reverse("incidents:detail", args=[row["incident_id"]])),
        }
        for row in rows
    ]


def _hours(seconds: int | None) -> str:
    return "" if seconds is None else f"{seconds / 3600:.2f}"


def _percent(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio * 100:.1f}"


def _group_row(label: str, group: dict) -> list:
    ack, res, sla = group["time_to_acknowledge"], group["time_to_resolve"], group["sla"]
    return [
        label,
        group["reported"],
        _hours(ack["median_seconds"]),
        _hours(ack["p90_seconds"]),
        _hours(res["median_seconds"]),
        _hours(res["p90_seconds"]),
        _percent(sla["acknowledge_met_ratio"]),
        _percent(sla["resolve_met_ratio"]),
        group["open_now"],
        sla["breached_now"],
    ]


GROUP_COLUMNS = [
    "reported",
    "acknowledge median (h)",
    "acknowledge p90 (h)",
    "resolve median (h)",
    "resolve p90 (h)",
    "acknowledge SLA met (%)",
    "resolve SLA met (%)",
    "open now",
    "breached now",
]


def tables(figures: dict) -> list[tuple[str, list, list[list]]]:
    """The figures as the page's data tables (and the CSV's sections): (caption, header,
    rows); times in hours, ratios in percent."""
    summary = [
        ["reported", figures["reported"]],
        ["acknowledged", figures["acknowledged"]],
        ["resolved", figures["resolved"]],
        ["closed", figures["closed"]],
        ["open now", figures["open_now"]],
        ["breached now", figures["sla"]["breached_now"]],
    ]
    return [
        (f"Summary, {figures['from']} to {figures['to']}", ["figure", "value"], summary),
        (
            "By severity",
            ["severity", *GROUP_COLUMNS],
            [_group_row("All", figures)] + [_group_row(row["severity"], row) for row in figures["by_severity"]],
        ),
        ("By team", ["team", *GROUP_COLUMNS], [_group_row(row["name"], row) for row in figures["by_team"]]),
        (
            "Weekly",
            ["week starting", "reported", "resolved", "open at end"],
            [
                [
                    week["week_start"],
                    week["reported"],
                    week["resolved"],
                    "" if week["open_at_end"] is None else week["open_at_end"],
                ]
                for week in figures["weekly"]
            ],
        ),
        (
            "Top categories",
            ["category", "reported"],
            [[row["name"], row["reported"]] for row in figures["top_categories"]],
        ),
        (
            "Oldest open",
            ["reported at", "title", "severity", "status", "team", "link"],
            [
                [
                    datetime.fromisoformat(row["reported_at"]).strftime("%Y-%m-%d %H:%M"),
                    row["title"],
                    row["severity"],
                    row["status"],
                    row["team"],
                    row["url"],
                ]
                for row in figures["oldest_open"]
            ],
        ),
    ]


def chart_data(figures: dict) -> dict:
    """What the page's charts draw (hours for times), handed to static/js/metrics.js
    through `json_script`."""
    severities = figures["by_severity"]

    def hours(rows, clock, label):
        return [None if row[clock][label] is None else round(row[clock][label] / 3600, 2) for row in rows]

    return {
        "weekly": {
            "labels": [week["week_start"] for week in figures["weekly"]],
            "reported": [week["reported"] for week in figures["weekly"]],
            "resolved": [week["resolved"] for week in figures["weekly"]],
            "open": [week["open_at_end"] for week in figures["weekly"]],
        },
        "times": {
            "labels": [row["severity"] for row in severities],
            "acknowledge_median": hours(severities, "time_to_acknowledge", "median_seconds"),
            "acknowledge_p90": hours(severities, "time_to_acknowledge", "p90_seconds"),
            "resolve_median": hours(severities, "time_to_resolve", "median_seconds"),
            "resolve_p90": hours(severities, "time_to_resolve", "p90_seconds"),
        },
    }
