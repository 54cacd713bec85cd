"""Load data for benchmarks and query-plan tests: many realistic incidents, fast.

    python manage.py seed_load --incidents 100000 [--users 1000] [--responders 10]
        [--responses 2] [--long-thread 100] [--seed 1] [--password secret]

A load generator, not a way to make records: unlike every other writer it bypasses
`services.py` and writes rows directly, in batches, one transaction per batch of
incidents. Accounts go in with `bulk_create`; incidents, responses and timeline events
(nine rows per incident on average) with multi-row `INSERT`s through `executemany`,
values adapted by the same field and backend methods the ORM uses: `bulk_create` spends
about 100 µs of Python per row building instances and SQL, over a minute for 100,000
incidents on its own, where this takes under 20 µs, planning included. It still leaves exactly what the
services would have left:

- each incident has one `reported` event at its `created_at`, one `status_changed` event
  per move along `models.TRANSITIONS` (made by someone `permissions.allowed_statuses`
  lets make it), `acknowledged_at` / `resolved_at` / `closed_at` stamped as
  `services.change_status` stamps them, and `updated_at` at its last activity;
- each response has its `responded` event at the same instant, comes before the
  incident was closed, and is written by someone who may see the incident;
- incidents spread over the `response` team and four load teams (each with two
  categories); most that were picked up are assigned to a member of their team, with the
  `assigned` event at the moment of the first move;
- no mail and no tasks are queued: this is history, not news.

Incidents spread over `--users` reporters (each reports an equal share, in shuffled
order), the five statuses (older incidents are more often closed), four severities, 15%
private, and the last two years. `created_at` strictly increases with the id within one
run, one value per incident (microsecond resolution), so cursor pagination meets no ties.

It only adds: existing data, demo data included, is left alone. Accounts are named
`load-user-NNNNN` and `load-responder-NNN` (created once, reused by later runs; their
password is unusable unless `--password` is given). The same `--seed` gives the same
titles, statuses, users and time offsets (times are relative to the moment of the run;
incident IDs are always new), so a second run adds a second, similar set.

Never run it against a production database.
"""

import random
import time
import uuid
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import User
from incidents import sla
from incidents.models import (
    DEFAULT_CATEGORY,
    DEFAULT_TEAM,
    Category,
    EventKind,
    Incident,
    IncidentEvent,
    Response,
    Severity,
    Status,
    Team,
    Visibility,
)

PLACES = [
    "the second-floor kitchen",
    "the north entrance",
    "the server room",
    "meeting room B",
    "the car park",
    "the open-plan office",
    "the main staircase",
    "the loading bay",
    "the reception desk",
    "floor 3",
    "the data centre in Leeds",
    "the VPN gateway",
    "the payroll system",
    "the customer portal",
    "the mail server",
]
PROBLEMS = [
    "Gas smell near {place}",
    "Badge reader at {place} rejects valid cards",
    "Phishing mail mentioning {place}",
    "Water leak in {place}",
    "Wi-Fi drops every few minutes in {place}",
    "Fire exit blocked at {place}",
    "Suspicious USB stick found in {place}",
    "Laptop stolen from {place}",
    "Broken glass in {place}",
    "Logins failing on {place}",
    "Printer in {place} prints other people's documents",
    "Power cut in {place}",
    "Unknown person tailgating at {place}",
    "Ransomware warning on a PC in {place}",
    "Smoke alarm keeps sounding in {place}",
]
SENTENCES = [
    "Noticed at about {h}:{m:02d}.",
    "Several people have mentioned it.",
    "Please check soon.",
    "Happened again today; I took a photo and can show it to whoever comes by.",
    "Not sure how serious this is, but it looks like it could get worse.",
    "First seen yesterday evening and still the case this morning.",
    "Two colleagues could not work because of it.",
    "I reported something similar last month.",
    "Security has been told by phone as well.",
    "The error message says the service is unavailable.",
]
REPLIES = [
    "On my way to take a look.",
    "Can you tell us exactly where this is?",
    "Facilities have been informed.",
    "Thanks for reporting — we are on it.",
    "Checked: this is fixed for now, please tell us if it comes back.",
    "Same here, seen it too.",
    "We have a supplier visit booked for tomorrow morning.",
    "Could you send the exact time it happened?",
    "Logs attached to the ticket; looking into it.",
    "Still happening on my side.",
]
SEVERITIES = [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]
SEVERITY_WEIGHTS = [30, 40, 20, 10]
PRIVATE_SHARE = 0.15
# How an incident of each final status got there (weights), per the workflow in models.TRANSITIONS.
PATHS = {
    Status.REPORTED: [((), 1)],
    Status.ACKNOWLEDGED: [((Status.ACKNOWLEDGED,), 1)],
    Status.IN_PROGRESS: [((Status.ACKNOWLEDGED, Status.IN_PROGRESS), 1)],
    Status.RESOLVED: [
        ((Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED), 70),
        ((Status.ACKNOWLEDGED, Status.RESOLVED), 15),
        ((Status.RESOLVED,), 15),
    ],
    Status.CLOSED: [
        ((Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED), 65),
        ((Status.RESOLVED, Status.CLOSED), 15),
        ((Status.CLOSED,), 15),  # the reporter closes it: a duplicate, or it went away
        (
            (
                Status.ACKNOWLEDGED,
                Status.IN_PROGRESS,
                Status.RESOLVED,
                Status.IN_PROGRESS,
                Status.RESOLVED,
                Status.CLOSED,
            ),
            5,
        ),
    ],
}
# Final status weights by the incident's age: recent ones are still open, old ones closed.
STATUS_BY_AGE = [
    (timedelta(days=2), {Status.REPORTED: 40, Status.ACKNOWLEDGED: 25, Status.IN_PROGRESS: 20, Status.RESOLVED: 10, Status.CLOSED: 5}),
    (timedelta(days=30), {Status.REPORTED: 8, Status.ACKNOWLEDGED: 8, Status.IN_PROGRESS: 14, Status.RESOLVED: 30, Status.CLOSED: 40}),
    (None, {Status.REPORTED: 2, Status.ACKNOWLEDGED: 2, Status.IN_PROGRESS: 3, Status.RESOLVED: 18, Status.CLOSED: 75}),
]  # fmt: skip
OPEN = (Status.REPORTED, Status.ACKNOWLEDGED, Status.IN_PROGRESS)
MINUTE_US = 60 * 1_000_000
INSERT_BATCH = 2000  # rows per INSERT statement
# Load teams besides the default `response` team (which sees everything), each with two
# categories; every load responder is a member of `response` and of one load team.
LOAD_TEAMS = ("load-facilities", "load-it", "load-hr", "load-security")
ASSIGNED_SHARE = 0.7  # of incidents someone picked up (not Reported)
SLA_FIELDS = sla.COLUMNS
INCIDENT_FIELDS = [
    "incident_id",
    "title",
    "description",
    "status",
    "severity",
    "visibility",
    "reporter",
    "created_at",
    "updated_at",
    "acknowledged_at",
    "resolved_at",
    "closed_at",
    "team",
    "category",
    "assignee",
    *SLA_FIELDS,
]


class Table:
    """A multi-row INSERT into `model`'s table, for the named fields in this order; each
    value adapted as the ORM adapts it (aware datetimes to the database's time zone,
    UUIDs to the column type), so rows read back exactly as if saved by a model."""

    def __init__(self, model, fields: list[str]):
        quote = connection.ops.quote_name
        self.fields = [model._meta.get_field(name) for name in fields]
        self.sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 - names from _meta, quoted
            quote(model._meta.db_table),
            ", ".join(quote(field.column) for field in self.fields),
            ", ".join(["%s"] * len(self.fields)),
        )
        self.adapters = [self._adapter(field) for field in self.fields]

    @staticmethod
    def _adapter(field):
        if isinstance(field, models.DateTimeField):
            return connection.ops.adapt_datetimefield_value
        if isinstance(field, models.UUIDField):
            return lambda value: field.get_db_prep_value(value, connection)
        return None

    def insert(self, rows: list[tuple]) -> None:
        adapters = self.adapters
        with connection.cursor() as cursor:
            for start in range(0, len(rows), INSERT_BATCH):
                cursor.executemany(
                    self.sql,
                    [
                        tuple(
                            value if adapt is None else adapt(value) for adapt, value in zip(adapters, row, strict=True)
                        )
                        for row in rows[start : start + INSERT_BATCH]
                    ],
                )


class Progress:
    """One line on stderr: rewritten in place on a terminal, every tenth otherwise."""

    def __init__(self, stream, total: int, enabled: bool):
        self.stream, self.total, self.enabled = stream, total, enabled
        self.tty = enabled and stream.isatty()
        self.started = time.monotonic()
        self.next_tenth = 0.1

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        share = done / self.total if self.total else 1.0
        elapsed = time.monotonic() - self.started
        bar = "#" * int(share * 30)
        line = f"seed_load [{bar:<30}] {done:,}/{self.total:,} incidents {share:4.0%} {elapsed:5.1f} s"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done >= self.total else ""), style_func=str, ending="")
            self.stream.flush()
        elif share >= self.next_tenth or done >= self.total:
            self.stream.write(line, style_func=str)
            self.next_tenth = int(share * 10) / 10 + 0.1


class Command(BaseCommand):
    help = "Add many realistic incidents, responses and timeline events quickly (benchmarks; never production)."

    def add_arguments(self, parser):
        parser.add_argument("--incidents", type=int, required=True, help="how many incidents to add")
        parser.add_argument("--users", type=int, default=200, help="reporters (load-user-NNNNN), default 200")
        parser.add_argument("--responders", type=int, default=10, help="team members (load-responder-NNN), default 10")
        parser.add_argument("--responses", type=float, default=2.0, help="average responses per incident, default 2")
        parser.add_argument(
            "--long-thread", type=int, default=0, metavar="K", help="give the newest incident exactly K responses"
        )
        parser.add_argument("--years", type=float, default=2.0, help="spread over this many years up to now")
        parser.add_argument("--seed", type=int, default=1, help="random seed: the same seed, the same data")
        parser.add_argument("--batch-size", type=int, default=1000, help="incidents per transaction")
        parser.add_argument("--password", default=None, help="password for the load accounts (default: unusable)")

    def handle(self, *args, **options):
        count = options["incidents"]
        if count < 0 or options["users"] < 1 or options["responders"] < 1 or options["batch_size"] < 1:
            raise CommandError("--incidents must be 0 or more; --users, --responders and --batch-size at least 1.")
        if options["responses"] < 0 or options["long_thread"] < 0:
            raise CommandError("--responses and --long-thread must be 0 or more.")
        started = time.monotonic()
        self.rng = random.Random(options["seed"])
        self.policies = {}
        self.mean_responses = options["responses"]
        self.long_thread = options["long_thread"]
        self.now = timezone.now()
        span_us = int(options["years"] * 365 * 24 * 3600 * 1_000_000)
        if count and span_us < count:
            raise CommandError("--years is too short to give every incident its own microsecond.")
        self.start = self.now - timedelta(microseconds=span_us) - timedelta(minutes=1)
        self.gap_us = span_us // count if count else 0

        self.reporters, self.responders = self.ensure_users(
            options["users"], options["responders"], options["password"]
        )
        self.reporter_cycle: list[int] = []
        progress = Progress(self.stderr, count, options["verbosity"] > 0)
        totals = {"incidents": 0, "responses": 0, "events": 0}
        long_thread_id = None
        self.tables = {
            "incidents": Table(Incident, INCIDENT_FIELDS),
            "responses": Table(Response, ["incident", "author", "description", "created_at"]),
            "events": Table(
                IncidentEvent,
                ["incident", "actor", "kind", "field", "old_value", "new_value", "response", "created_at"],
            ),
        }
        for first in range(0, count, options["batch_size"]):
            last = min(count, first + options["batch_size"])
            made = self.add_batch(range(first, last), count)
            for key in totals:
                totals[key] += made[key]
            long_thread_id = made["long_thread"] or long_thread_id
            progress.update(last)
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"Added {totals['incidents']:,} incidents, {totals['responses']:,} responses and "
            f"{totals['events']:,} timeline events for {len(self.reporters):,} reporters and "
            f"{len(self.responders):,} responders in {elapsed:.1f} s."
        )
        if long_thread_id:
            self.stdout.write(f"long-thread incident_id={long_thread_id} responses={self.long_thread}")

    # --- Accounts ---------------------------------------------------------------------

    def ensure_users(self, users: int, responders: int, password: str | None) -> tuple[list[int], list[int]]:
        """The load accounts' ids (reporters, responders), created on first use and reused
        afterwards (one password hash for all: hashing is deliberately slow)."""
        hashed = make_password(password)  # None: an unusable password
        joined = self.start - timedelta(days=1)
        names = [f"load-user-{n:05d}" for n in range(1, users + 1)]
        responder_names = [f"load-responder-{n:03d}" for n in range(1, responders + 1)]
        User.objects.bulk_create(
            [
                User(username=name, email=f"{name}@load.example", password=hashed, date_joined=joined)
                for name in names + responder_names
            ],
            batch_size=INSERT_BATCH,
            ignore_conflicts=True,
        )
        if password is not None:
            User.objects.filter(username__in=names + responder_names).update(password=hashed)
        by_name = User.objects.in_bulk(names + responder_names, field_name="username")
        response, _ = Team.objects.get_or_create(
            slug=DEFAULT_TEAM, defaults={"name": "Response team", "sees_all": True}
        )
        Category.objects.get_or_create(slug=DEFAULT_CATEGORY, defaults={"name": "General", "team": response})
        teams = [response]
        for slug in LOAD_TEAMS:
            team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": slug.replace("-", " ").title()})
            for kind in ("urgent", "routine"):
                Category.objects.get_or_create(
                    slug=f"{slug}-{kind}", defaults={"name": f"{team.name} ({kind})", "team": team}
                )
            teams.append(team)
        Membership = Team.members.through
        responder_ids = [by_name[name].pk for name in responder_names]
        Membership.objects.bulk_create(
            [Membership(user_id=pk, team_id=response.pk) for pk in responder_ids]
            + [Membership(user_id=pk, team_id=teams[1 + n % len(LOAD_TEAMS)].pk) for n, pk in enumerate(responder_ids)],
            ignore_conflicts=True,
        )
        # Each team: its category ids and the responders who may own its incidents.
        self.teams = [
            {
                "id": team.pk,
                "categories": list(team.categories.order_by("pk").values_list("pk", flat=True)),
                "members": sorted(set(team.members.values_list("pk", flat=True)) & set(responder_ids)),
            }
            for team in teams
        ]
        self.usernames = dict(User.objects.filter(pk__in=responder_ids).values_list("pk", "username"))
        return [by_name[name].pk for name in names], responder_ids

    def next_reporter(self) -> int:
        """Every reporter reports an equal share, in an order shuffled afresh each round."""
        if not self.reporter_cycle:
            self.reporter_cycle = list(self.reporters)
            self.rng.shuffle(self.reporter_cycle)
        return self.reporter_cycle.pop()

    # --- Incidents --------------------------------------------------------------------

    def add_batch(self, numbers: range, count: int) -> dict:
        """Plan and insert one batch of incidents with their responses and events, in one
        transaction: a batch is all there or not at all."""
        rng = self.rng
        incidents, plans = [], []
        long_thread = None
        for n in numbers:
            created = self.start + timedelta(microseconds=n * self.gap_us + rng.randrange(self.gap_us))
            is_long = bool(self.long_thread) and n == count - 1
            plan = self.plan(created, long=is_long)
            incident_id = uuid.uuid4()
            incidents.append(
                (
                    incident_id,
                    rng.choice(PROBLEMS).format(place=rng.choice(PLACES))[:100],
                    " ".join(rng.sample(SENTENCES, rng.randint(1, 4))).format(
                        h=rng.randint(7, 18), m=rng.randint(0, 59)
                    ),
                    plan["status"],
                    plan["severity"],
                    plan["visibility"],
                    plan["reporter"],
                    created,
                    plan["updated_at"],
                    plan["acknowledged_at"],
                    plan["resolved_at"],
                    plan["closed_at"],
                    plan["team"],
                    plan["category"],
                    plan["assignee"],
                    *(getattr(plan["clocks"], name) for name in SLA_FIELDS),
                )
            )
            plans.append(plan)
            if is_long:
                long_thread = incident_id

        with transaction.atomic():
            self.tables["incidents"].insert(incidents)
            # Our rows' ids, by their (new, unique) incident_id.
            pks = dict(
                Incident.objects.filter(incident_id__in=[row[0] for row in incidents]).values_list("incident_id", "pk")
            )
            incident_pks = [pks[row[0]] for row in incidents]
            responses = [
                (pk, step["actor"], step["text"], step["at"])
                for pk, plan in zip(incident_pks, plans, strict=True)
                for step in plan["steps"]
                if step["kind"] == EventKind.RESPONDED
            ]
            self.tables["responses"].insert(responses)
            # Nobody else can have responded to incidents not yet committed: in id order,
            # these are our responses in the order they were inserted.
            response_pks = iter(
                Response.objects.filter(incident__in=incident_pks).order_by("pk").values_list("pk", flat=True)
            )
            events = []
            for pk, plan in zip(incident_pks, plans, strict=True):
                events.append(
                    (pk, plan["reporter"], EventKind.REPORTED, "", "", Status.REPORTED, None, plan["created"])
                )
                for step in plan["steps"]:
                    if step["kind"] == EventKind.SLA_BREACHED:
                        events.append(
                            (
                                pk,
                                None,
                                EventKind.SLA_BREACHED,
                                step["clock"],
                                step["due"],
                                step["due"],
                                None,
                                step["at"],
                            )
                        )
                    elif step["kind"] == EventKind.RESPONDED:
                        events.append(
                            (pk, step["actor"], EventKind.RESPONDED, "", "", "", next(response_pks), step["at"])
                        )
                    elif step["kind"] == EventKind.ASSIGNED:
                        events.append(
                            (pk, step["actor"], EventKind.ASSIGNED, "assignee", "", step["new"], None, step["at"])
                        )
                    else:
                        events.append(
                            (
                                pk,
                                step["actor"],
                                EventKind.STATUS_CHANGED,
                                "",
                                step["old"],
                                step["new"],
                                None,
                                step["at"],
                            )
                        )
            if next(response_pks, None) is not None:
                raise CommandError("Unexpected responses on the new incidents; nothing was added for this batch.")
            self.tables["events"].insert(events)
        return {
            "incidents": len(incidents),
            "responses": len(responses),
            "events": len(events),
            "long_thread": long_thread,
        }

    def plan(self, created, *, long: bool) -> dict:
        """One incident's life: who reported it, its moves and responses in time order,
        and the timestamps those leave, as `services.change_status` would stamp them."""
        rng = self.rng
        reporter = self.next_reporter()  # user ids from here on: no model instances, for speed
        visibility = Visibility.PUBLIC if long or rng.random() >= PRIVATE_SHARE else Visibility.PRIVATE
        age = self.now - created
        if long:
            final = Status.IN_PROGRESS  # open, so the page shows the reply form and status buttons
        else:
            weights = next(w for limit, w in STATUS_BY_AGE if limit is None or age < limit)
            final = rng.choices(list(weights), weights=list(weights.values()))[0]
        paths = PATHS[final]
        moves = list(rng.choices([p for p, _ in paths], weights=[w for _, w in paths])[0])
        closing = moves.pop() if moves and moves[-1] == Status.CLOSED else None

        # Who may see it may respond: anyone when public; the reporter and responders when private.
        team = rng.choice(self.teams)
        owner = rng.choice(team["members"] or self.responders)
        if long:
            replies = self.long_thread
        else:
            replies = rng.randint(0, round(2 * self.mean_responses)) if self.mean_responses else 0
        # Interleave responses with the moves (keeping each in order); closing comes last.
        kinds = ["move"] * len(moves) + ["reply"] * replies
        rng.shuffle(kinds)
        sequence = []
        move_iter = iter(moves)
        for kind in kinds:
            if kind == "move":
                sequence.append(("move", next(move_iter)))
            else:
                author = self.reply_author(reporter, owner, visibility)
                text = rng.choice(REPLIES)
                sequence.append(("reply", (author, text)))
        if closing:
            sequence.append(("move", closing))

        # Times: gaps of a minute to eight hours, squeezed to end before now.
        gaps = [rng.randint(1, 480) * MINUTE_US for _ in sequence]
        room = int(age.total_seconds() * 1_000_000) - 1
        total = sum(gaps)
        if total > room:
            gaps = [gap * room // total for gap in gaps]
        at, steps = created, []
        status, acknowledged_at, resolved_at, closed_at = Status.REPORTED, None, None, None
        reopened_at = None
        # Someone of the team takes most incidents that were picked up, as they pick it up.
        assignee = owner if moves and team["members"] and rng.random() < ASSIGNED_SHARE else None
        for (kind, value), gap in zip(sequence, gaps, strict=True):
            at = at + timedelta(microseconds=gap)
            if assignee is not None and kind == "move" and status == Status.REPORTED:
                steps.append({"kind": EventKind.ASSIGNED, "actor": owner, "new": self.usernames[owner], "at": at})
            if kind == "reply":
                author, text = value
                steps.append({"kind": EventKind.RESPONDED, "actor": author, "text": text, "at": at})
                continue
            new = value
            if new in (Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED) and acknowledged_at is None:
                acknowledged_at = at
            if new == Status.RESOLVED:
                resolved_at = at
            elif new == Status.IN_PROGRESS and status == Status.RESOLVED:
                resolved_at = None
                reopened_at = at
            if new == Status.CLOSED:
                closed_at = at
            steps.append(
                {"kind": EventKind.STATUS_CHANGED, "actor": self.mover(status, new, reporter, owner), "old": status, "new": new, "at": at}
            )  # fmt: skip
            status = new
        severity = rng.choices(SEVERITIES, weights=SEVERITY_WEIGHTS)[0]
        clocks = Incident(
            created_at=created,
            status=status,
            severity=severity,
            acknowledged_at=acknowledged_at,
            resolved_at=resolved_at,
            closed_at=closed_at,
        )
        breached = sla.replay(
            clocks, policy=self.policy(severity, team["id"]), resolve_started_at=reopened_at or created, now=self.now
        )
        # Each missed clock was escalated at its due time, as the worker would have.
        for name in breached:
            due = getattr(clocks, f"{name}_due_at")
            steps.append({"kind": EventKind.SLA_BREACHED, "clock": name, "due": due.isoformat(), "at": due})
        steps.sort(key=lambda step: step["at"])
        return {
            "reporter": reporter,
            "severity": severity,
            "clocks": clocks,
            "team": team["id"],
            "category": rng.choice(team["categories"]),
            "assignee": assignee,
            "created": created,
            "visibility": visibility,
            "status": status,
            "steps": steps,
            "updated_at": at,
            "acknowledged_at": acknowledged_at,
            "resolved_at": resolved_at,
            "closed_at": closed_at,
        }

    def policy(self, severity: str, team_id: int):
        key = (severity, team_id)
        if key not in self.policies:
            self.policies[key] = sla.policy_for(severity, team_id)
        return self.policies[key]

    def reply_author(self, reporter: int, owner: int, visibility: str) -> int:
        roll = self.rng.random()
        if roll < 0.45:
            return owner
        if roll < 0.75 or visibility == Visibility.PRIVATE:
            return reporter if roll < 0.9 else self.rng.choice(self.responders)
        return self.rng.choice(self.reporters)

    def mover(self, old: str, new: str, reporter: int, owner: int) -> int:
        """Who `permissions.allowed_statuses` lets make this move: responders make every
        move but closing an open incident, which the reporter may do (as may staff); a
        resolved incident is closed by either and reopened by its reporter."""
        if new == Status.CLOSED:
            return reporter if old in OPEN or self.rng.random() < 0.5 else owner
        if old == Status.RESOLVED and new == Status.IN_PROGRESS:
            return reporter
        return owner
