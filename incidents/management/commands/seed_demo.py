"""Demo data for `make run`: four accounts and about fifty incidents with timelines.

Idempotent: a second run changes nothing. Every incident is written through the services,
so the timeline is exactly what the web would have recorded; only the timestamps are then
spread over the past weeks so the lists look lived-in.
"""

import random
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import User
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
from incidents.tasks import check_sla
from notifications.models import OutgoingEmail
from notifications.tasks import send_email

DEMO_USERS = [
    # username, password, is_staff/superuser, team (a lead of it when marked with *)
    ("admin", "irms-admin-demo", True, None),
    ("responder", "irms-responder-demo", False, "response*"),
    ("alice", "irms-alice-demo", False, None),
    ("bob", "irms-bob-demo", False, None),
    ("fatima", "irms-fatima-demo", False, "facilities*"),
    ("felix", "irms-felix-demo", False, "facilities"),
    ("ines", "irms-ines-demo", False, "it-security*"),
    ("hugo", "irms-hugo-demo", False, "hr*"),
]
# slug, name, description, [(category slug, name, one-line description, position)]
DEMO_TEAMS = [
    (
        "facilities",
        "Facilities",
        "Buildings, rooms, doors, lifts and everything physical.",
        [
            ("building", "Building and rooms", "Leaks, heating, lifts, doors, broken furniture.", 10),
            ("safety", "Safety hazard", "Gas smell, blocked fire exit, anything that could hurt someone.", 20),
        ],
    ),
    (
        "it-security",
        "IT Security",
        "Phishing, lost devices, suspicious activity.",
        [
            ("phishing", "Phishing or suspicious mail", "A mail that asks for passwords or payment.", 30),
            ("it-outage", "IT outage", "Wi-Fi, VPN, printers or an application not working.", 40),
            ("lost-device", "Lost or stolen device", "A laptop, phone or badge that is gone.", 50),
        ],
    ),
    (
        "hr",
        "HR",
        "Harassment, discrimination, people's well-being (reports are best kept private).",
        [("conduct", "Conduct at work", "Harassment, discrimination, bullying.", 60)],
    ),
]
# Which category each demo title belongs to, in TITLES order.
TITLE_CATEGORIES = [
    "safety",
    "building",
    "phishing",
    "building",
    "it-outage",
    "safety",
    "lost-device",
    "lost-device",
    "safety",
    "it-outage",
    "it-outage",
    "building",
]

TITLES = [
    "Gas smell near the second-floor kitchen",
    "Badge reader at the north entrance rejects valid cards",
    "Phishing mail pretending to be payroll",
    "Water leak under the server room door",
    "Wi-Fi drops every few minutes in meeting room B",
    "Fire exit blocked by delivery pallets",
    "Suspicious USB stick found in the car park",
    "Laptop stolen from the open-plan office",
    "Broken glass on the main staircase",
    "VPN refuses logins since this morning",
    "Printer on floor 3 prints other people's documents",
    "Elevator stuck between floors 4 and 5",
]
DESCRIPTIONS = [
    "Noticed at about {h}:{m:02d}. Several people have mentioned it. Please check soon.",
    "Happened again today. I took a photo and can show it to whoever comes by.",
    "Not sure how serious this is, but it looks like it could get worse.",
    "First seen yesterday evening; still the case this morning.",
]
RESPONSES = [
    "On my way to take a look.",
    "Can you tell us exactly where this is?",
    "Facilities have been informed.",
    "Thanks for reporting — we are on it.",
    "Checked: this is fixed for now, please tell us if it comes back.",
    "Same here, seen it too.",
]
# Walks along the workflow that a demo incident may take.
PATHS = [
    [],
    [Status.ACKNOWLEDGED],
    [Status.ACKNOWLEDGED, Status.IN_PROGRESS],
    [Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED],
    [Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED],
    [Status.RESOLVED],
]


class Command(BaseCommand):
    help = "Create demo accounts and incidents (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when any account exists.")
        parser.add_argument("--incidents", type=int, default=50)

    def handle(self, *args, if_empty=False, incidents=50, **options):
        if if_empty and User.objects.exists():
            self.stdout.write("Accounts exist already; demo data not added.")
            return
        users = self.ensure_users()
        if Incident.objects.filter(reporter__in=users.values()).exists():
            self.stdout.write("Demo incidents exist already; nothing to add.")
        else:
            self.create_incidents(users, incidents)
            self.stdout.write(f"Created {incidents} demo incidents with responses and timelines.")
        self.stdout.write(self.style.SUCCESS("Demo accounts (username / password):"))
        for username, password, *_ in DEMO_USERS:
            self.stdout.write(f"  {username:<10} {password}")

    def ensure_teams(self) -> dict[str, Team]:
        teams = {team.slug: team for team in Team.objects.filter(slug=DEFAULT_TEAM)}
        for slug, name, description, categories in DEMO_TEAMS:
            team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": name, "description": description})
            for category_slug, category_name, line, position in categories:
                Category.objects.get_or_create(
                    slug=category_slug,
                    defaults={"name": category_name, "description": line, "team": team, "position": position},
                )
            teams[slug] = team
        return teams

    def ensure_users(self) -> dict[str, User]:
        teams = self.ensure_teams()
        users = {}
        for username, password, staff, team in DEMO_USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_user(
                    username=username,
                    email=f"{username}@example.com",
                    password=password,
                    is_staff=staff,
                    is_superuser=staff,
                )
                if team and team.rstrip("*") in teams:
                    teams[team.rstrip("*")].members.add(user)
                    if team.endswith("*"):
                        teams[team.rstrip("*")].leads.add(user)
            users[username] = user
        return users

    @transaction.atomic
    def create_incidents(self, users: dict[str, User], count: int) -> None:
        rng = random.Random(42)  # the same demo every time
        first_new_email = (OutgoingEmail.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
        started = timezone.now()
        reporters = [users["alice"], users["bob"], users["responder"]]
        categories = Category.objects.in_bulk(field_name="slug")
        now = timezone.now()
        for n in range(count):
            reporter = reporters[n % len(reporters)]
            category = categories.get(TITLE_CATEGORIES[n % len(TITLE_CATEGORIES)]) or categories.get(DEFAULT_CATEGORY)
            incident = services.report_incident(
                reporter=reporter,
                category=category,
                title=TITLES[n % len(TITLES)],
                description=rng.choice(DESCRIPTIONS).format(h=rng.randint(7, 18), m=rng.randint(0, 59)),
                severity=rng.choice(Severity.values),
                visibility=Visibility.PRIVATE if n % 7 == 3 else Visibility.PUBLIC,
            )
            for _ in range(rng.randint(0, 3)):
                author = rng.choice([users["responder"], users["alice"], users["bob"]])
                if author != reporter and incident.visibility == Visibility.PRIVATE and author != users["responder"]:
                    author = users["responder"]
                services.add_response(incident=incident, author=author, description=rng.choice(RESPONSES))
            path = rng.choice(PATHS)
            members = list(incident.team.members.filter(is_active=True))
            if path and members:
                incident = services.assign(incident=incident, actor=users["responder"], assignee=rng.choice(members))
            for status in path:
                actor = users["admin"] if status == Status.CLOSED else users["responder"]
                incident = services.change_status(incident=incident, actor=actor, status=status)
            self.spread_in_time(incident, start=now - timedelta(days=count - n, hours=rng.randint(0, 20)))
        # Demo data is history, not news: drop the mail its services queued.
        OutgoingEmail.objects.filter(pk__gte=first_new_email).delete()
        DBTaskResult.objects.filter(
            task_path__in=[send_email.module_path, check_sla.module_path], enqueued_at__gte=started
        ).delete()

    def spread_in_time(self, incident: Incident, *, start) -> None:
        """Move an incident's timestamps back to `start`, keeping their order and gaps small."""
        step = timedelta(minutes=37)
        events = list(IncidentEvent.objects.filter(incident=incident).order_by("created_at", "id"))
        for i, event in enumerate(events):
            event.created_at = start + i * step
            if event.response_id:
                Response.objects.filter(pk=event.response_id).update(created_at=event.created_at)
        IncidentEvent.objects.bulk_update(events, ["created_at"])
        last = events[-1].created_at
        Incident.objects.filter(pk=incident.pk).update(
            created_at=start,
            updated_at=last,
            acknowledged_at=start + step if incident.acknowledged_at else None,
            resolved_at=last if incident.resolved_at else None,
            closed_at=last if incident.closed_at else None,
        )
        # The SLA clocks as that history would have left them (missed ones breached; the
        # workers' sweep escalates those still to come when they fall due).
        incident = Incident.objects.get(pk=incident.pk)
        sla.replay(
            incident,
            policy=sla.policy_for(incident.severity, incident.team_id),
            resolve_started_at=incident.created_at,
            now=timezone.now(),
        )
        incident.save(update_fields=sla.COLUMNS)
