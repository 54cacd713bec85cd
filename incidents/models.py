"""The incident domain: incidents, responses and the append-only timeline.

Who may see an incident is decided in one place, `Incident.objects.visible_to(user)`
(and its Python twin `permissions.can_view`); writes go through `services.py`.
"""

import base64
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import LazyObject, empty

from notifications.webhooks import check_url

# The team every install starts with (migration 0011): it sees every incident, as the
# Responders group of earlier versions did, and owns the default category.
DEFAULT_TEAM = "response"
DEFAULT_CATEGORY = "general"
# What an SLA column holds when there is no deadline to meet (no policy, or every clock met):
# a far-future time rather than NULL, so "most urgent first" is a plain ascending index scan
# (NULLs sort first on MariaDB, and NULLS LAST would make it sort the table). The sort key
# `sla_due_at` adds how long before 2500 the incident was reported: keyset pagination breaks
# ties by offset, and thousands of closed incidents sharing one value would page forever;
# so each has its own key, and those without a deadline come last, newest first.
NO_DEADLINE = datetime(9000, 1, 1, tzinfo=UTC)
_NO_DEADLINE_BASE = datetime(2500, 1, 1, tzinfo=UTC)


def no_deadline_key(created_at: datetime) -> datetime:
    """`sla_due_at` of an incident with no clock running (always >= NO_DEADLINE)."""
    return NO_DEADLINE + (_NO_DEADLINE_BASE - created_at)


# Long enough for a pasted log excerpt, short enough that nobody can store a novel per row.
MAX_TEXT_LENGTH = 20_000


class Status(models.TextChoices):
    REPORTED = "Reported", "Reported"
    ACKNOWLEDGED = "Acknowledged", "Acknowledged"
    IN_PROGRESS = "In Progress", "In Progress"
    RESOLVED = "Resolved", "Resolved"
    CLOSED = "Closed", "Closed"


OPEN_STATUSES = (Status.REPORTED, Status.ACKNOWLEDGED, Status.IN_PROGRESS)

# The workflow: which status may follow which. Who may make each move is decided in
# permissions.allowed_statuses; a move not listed here is refused for everyone.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    Status.REPORTED: (Status.ACKNOWLEDGED, Status.RESOLVED, Status.CLOSED),
    Status.ACKNOWLEDGED: (Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED),
    Status.IN_PROGRESS: (Status.RESOLVED, Status.CLOSED),
    Status.RESOLVED: (Status.CLOSED, Status.IN_PROGRESS),
    Status.CLOSED: (),
}


class Severity(models.TextChoices):
    LOW = "Low", "Low"
    MEDIUM = "Medium", "Medium"
    HIGH = "High", "High"
    CRITICAL = "Critical", "Critical"


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public"
    PRIVATE = "private", "Private"


class Membership:
    """Which teams a user belongs to, read once per request (cached on the user object)."""

    __slots__ = ("team_ids", "sees_all")

    def __init__(self, team_ids: frozenset, sees_all: bool):
        self.team_ids, self.sees_all = team_ids, sees_all

    @classmethod
    def of(cls, rows) -> "Membership":
        """From (team id, team sees_all) pairs."""
        rows = list(rows)
        return cls(frozenset(team for team, _ in rows), any(sees_all for _, sees_all in rows))


def team_membership(user) -> Membership:
    cached = getattr(user, "_irms_membership", None)
    if cached is None:
        cached = Membership.of(
            Team.members.through.objects.filter(user_id=user.pk).values_list("team_id", "team__sees_all")
        )
        user._irms_membership = cached
    return cached


class Team(models.Model):
    """People who own a kind of incident. Members see their team's private incidents and
    work its incidents; leads also hear of escalations; a `sees_all` team (central triage,
    security) sees and works every incident."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)
    leads = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="led_teams",
        blank=True,
        help_text="Members who hear of escalations (each lead must also be a member).",
    )
    sees_all = models.BooleanField(
        "sees every incident", default=False, help_text="A central triage or security team: sees and works everything."
    )

    class Meta:
        ordering = ("name",)

    def __str__(self):
        return self.name


class ActiveCategoryQuerySet(models.QuerySet):
    def active(self):
        return self.filter(active=True).order_by("position", "name")


class Category(models.Model):
    """What a reporter picks first on the form; decides the team an incident goes to."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=200, blank=True, help_text="One line shown on the report form.")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="categories")
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=100, help_text="Order on the report form (lowest first).")

    objects = ActiveCategoryQuerySet.as_manager()

    class Meta:
        ordering = ("position", "name")
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name


MAX_SLA_TARGET = timedelta(days=365)


class SlaPolicy(models.Model):
    """How soon incidents of one severity must be acknowledged and resolved. A policy with a
    team applies to that team's incidents; one without is the default for every team
    (`sla.policy_for` picks the most specific)."""

    severity = models.CharField(max_length=10, choices=Severity.choices)
    team = models.ForeignKey(
        Team,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="sla_policies",
        help_text="Empty: the default for every team without a policy of its own.",
    )
    acknowledge_within = models.DurationField(help_text="From the report to the first move out of Reported.")
    resolve_within = models.DurationField(help_text="From the report (or a reopening) to Resolved or Closed.")
    business_hours = models.BooleanField(
        default=False, help_text="Count only business hours (SLA_BUSINESS_HOURS), not around the clock."
    )

    class Meta:
        ordering = ("team__name", "severity")
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(fields=["severity", "team"], name="sla_policy_one_per_team_severity"),
            models.UniqueConstraint(
                fields=["severity"], condition=models.Q(team__isnull=True), name="sla_policy_one_default_per_severity"
            ),
            models.CheckConstraint(condition=models.Q(severity__in=Severity.values), name="sla_policy_severity_valid"),
            # A year at most: past that a due time is no target, and a clock in business
            # hours would have to walk years of calendar to find it.
            models.CheckConstraint(
                condition=models.Q(
                    acknowledge_within__gt=timedelta(0),
                    resolve_within__gt=timedelta(0),
                    acknowledge_within__lte=MAX_SLA_TARGET,
                    resolve_within__lte=MAX_SLA_TARGET,
                ),
                name="sla_policy_durations_in_range",
                violation_error_message="Each target must be more than zero and at most 365 days.",
            ),
        ]

    def __str__(self):
        return f"{self.severity} ({self.team.name if self.team_id else 'every team'})"


class IncidentQuerySet(models.QuerySet):
    def visible_to(self, user) -> "IncidentQuerySet":
        """Incidents `user` may see (the queryset twin of `permissions.can_view`): staff and
        members of a `sees_all` team see all; anyone else signed in sees public incidents,
        their own, those assigned to them and their teams' incidents; anonymous users and
        deactivated accounts see none."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        if user.is_staff:
            return self
        membership = team_membership(user)
        if membership.sees_all:
            return self
        return self.filter(
            models.Q(visibility=Visibility.PUBLIC)
            | models.Q(reporter=user)
            | models.Q(assignee=user)
            | models.Q(team_id__in=membership.team_ids)
        )

    def reported_by(self, user) -> "IncidentQuerySet":
        return self.filter(reporter=user)

    def reported_by_others(self, user) -> "IncidentQuerySet":
        """Visible incidents someone else reported (the original 'public incidents')."""
        return self.visible_to(user).exclude(reporter=user)

    def newest_first(self) -> "IncidentQuerySet":
        return self.order_by("-created_at", "-id")

    def for_list(self) -> "IncidentQuerySet":
        """What every list shows per row, in a fixed number of queries: the reporter and
        the number of responses (a correlated count, evaluated for the page's rows only)."""
        return self.select_related("reporter", "category", "assignee").annotate(**_list_annotations())


@cache
def _list_annotations() -> dict:
    """`for_list`'s annotations, built once per process: building the three subqueries'
    querysets cost about a millisecond per request on the API's hot path, and annotate()
    resolves a copy of each expression, so every queryset still gets its own."""
    responses = (
        Response.objects.filter(incident=models.OuterRef("pk"))
        .order_by()
        .values("incident")
        .annotate(n=models.Count("pk"))
        .values("n")
    )
    # The team's slug and name come from correlated subqueries, not a join: teams are a
    # handful of rows, and an inner join to such a small table lets MariaDB start from
    # it and sort the whole result instead of reading the list's index in order.
    team = Team.objects.filter(pk=models.OuterRef("team_id"))
    return {
        "response_count": Coalesce(models.Subquery(responses, output_field=models.IntegerField()), 0),
        "team_slug": models.Subquery(team.values("slug")[:1]),
        "team_name": models.Subquery(team.values("name")[:1]),
        "attachment_count": Coalesce(models.Subquery(attachment_count(), output_field=models.IntegerField()), 0),
    }


class Incident(models.Model):
    incident_id = models.UUIDField("incident ID", default=uuid.uuid4, unique=True, editable=False)
    title = models.CharField(max_length=100)
    description = models.TextField(validators=[MaxLengthValidator(MAX_TEXT_LENGTH)])
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.REPORTED)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC)
    # SET_NULL: deleting an account never deletes the record of what it reported.
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="incidents"
    )
    # Null only for incidents reported before categories existed (none after migration 0011).
    category = models.ForeignKey(Category, on_delete=models.PROTECT, null=True, blank=True, related_name="incidents")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="incidents")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_incidents",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The two SLA clocks (incidents/sla.py keeps them; services.py calls it on every change).
    # Each has a due time, the time it turns "at risk", and the time its breach was
    # escalated; null due: no policy applies. A clock is met by `acknowledged_at` /
    # `resolved_at` (or `closed_at`, for either).
    acknowledge_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    acknowledge_warn_at = models.DateTimeField(null=True, blank=True, editable=False)
    acknowledge_breached_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolve_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolve_warn_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolve_breached_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The soonest due time of a clock not yet met ("most urgent first"; no_deadline_key()
    # when none), and the soonest one not yet escalated (what the escalation sweep reads;
    # NO_DEADLINE when none).
    sla_due_at = models.DateTimeField(default=NO_DEADLINE, editable=False)
    sla_escalate_at = models.DateTimeField(default=NO_DEADLINE, editable=False)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            # One index per list query, each ending in the list's order so a page is an
            # index range scan with no sort: the queue, "mine", "public", and the filters.
            models.Index(fields=["-created_at", "-id"], name="incident_newest"),
            models.Index(fields=["reporter", "-created_at", "-id"], name="incident_reporter_newest"),
            models.Index(fields=["visibility", "-created_at", "-id"], name="incident_visibility_newest"),
            models.Index(fields=["status", "-created_at", "-id"], name="incident_status_newest"),
            models.Index(fields=["severity", "-created_at", "-id"], name="incident_severity_newest"),
            # Covering indexes for counts: the lists' capped count (public OR mine) and the
            # dashboard's counts by status of one reporter's incidents.
            models.Index(fields=["visibility", "reporter"], name="incident_visibility_reporter"),
            models.Index(fields=["reporter", "status"], name="incident_reporter_status"),
            # The team queue, "assigned to me", and the dashboards' counts by team.
            models.Index(fields=["team", "-created_at", "-id"], name="incident_team_newest"),
            models.Index(fields=["assignee", "-created_at", "-id"], name="incident_assignee_newest"),
            models.Index(fields=["category", "-created_at", "-id"], name="incident_category_newest"),
            models.Index(fields=["team", "status"], name="incident_team_status"),
            models.Index(fields=["visibility", "team"], name="incident_visibility_team"),
            # "Most urgent first", and the escalation sweep's range scan of what is overdue.
            models.Index(fields=["sla_due_at", "id"], name="incident_sla_due"),
            models.Index(fields=["team", "sla_due_at", "id"], name="incident_team_sla_due"),
            models.Index(fields=["sla_escalate_at"], name="incident_sla_escalate"),
            # The metrics count what was acknowledged, resolved and closed in a period, and the
            # backlog from what was done since (incidents/metrics.py): range scans, not the table.
            models.Index(fields=["acknowledged_at"], name="incident_acknowledged"),
            models.Index(fields=["resolved_at"], name="incident_resolved"),
            models.Index(fields=["closed_at"], name="incident_closed"),
            # The metrics' reads of a period and of the open incidents, answered from the index
            # alone (every column a figure or a visibility rule reads), not from 10,000s of
            # row look-ups (incidents/metrics.py).
            models.Index(
                fields=[
                    "created_at",
                    "team",
                    "severity",
                    "category",
                    "status",
                    "acknowledged_at",
                    "resolved_at",
                    "closed_at",
                    "acknowledge_due_at",
                    "resolve_due_at",
                    "visibility",
                    "reporter",
                    "assignee",
                ],
                name="incident_metrics_period",
            ),
            models.Index(
                fields=[
                    "status",
                    "team",
                    "severity",
                    "created_at",
                    "acknowledged_at",
                    "closed_at",
                    "acknowledge_due_at",
                    "resolve_due_at",
                    "category",
                    "visibility",
                    "reporter",
                    "assignee",
                ],
                name="incident_metrics_open",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=~models.Q(title=""), name="incident_title_not_empty"),
            models.CheckConstraint(condition=models.Q(status__in=Status.values), name="incident_status_valid"),
            models.CheckConstraint(condition=models.Q(severity__in=Severity.values), name="incident_severity_valid"),
            models.CheckConstraint(
                condition=models.Q(visibility__in=Visibility.values), name="incident_visibility_valid"
            ),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("incidents:detail", kwargs={"incident_id": self.incident_id})

    @property
    def short_id(self) -> str:
        return str(self.incident_id)[:8]

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_private(self) -> bool:
        return self.visibility == Visibility.PRIVATE

    def clean(self):
        super().clean()
        self.title = (self.title or "").strip()
        if not self.title:
            raise ValidationError({"title": "Enter a title."})


class Response(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="responses")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="incident_responses"
    )
    description = models.TextField(validators=[MaxLengthValidator(MAX_TEXT_LENGTH)])
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("created_at", "id")
        indexes = [
            models.Index(fields=["incident", "created_at", "id"], name="response_incident_oldest"),
            # The admin's list of every response, newest first (no sort of the table).
            models.Index(fields=["-created_at", "-id"], name="response_newest"),
        ]

    def __str__(self):
        return f"Response {self.pk} to {self.incident_id}"


class EventKind(models.TextChoices):
    REPORTED = "reported", "Reported"
    STATUS_CHANGED = "status_changed", "Status changed"
    SEVERITY_CHANGED = "severity_changed", "Severity changed"
    EDITED = "edited", "Edited"
    RESPONDED = "responded", "Responded"
    REPORTER_CHANGED = "reporter_changed", "Reporter changed"
    ASSIGNED = "assigned", "Assigned"
    UNASSIGNED = "unassigned", "Unassigned"
    TEAM_CHANGED = "team_changed", "Team changed"
    CATEGORY_CHANGED = "category_changed", "Category changed"
    SLA_BREACHED = "sla_breached", "SLA breached"
    ATTACHED = "attached", "Attached a file"


class IncidentEvent(models.Model):
    """One line of an incident's timeline. Append-only: services create them, nothing
    updates or deletes them."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    # For edits, which field changed ("title", "description", "visibility", "reporter");
    # for an SLA breach, which clock ("acknowledge", "resolve").
    # Values are what a reader needs later: usernames, team and category names.
    field = models.CharField(max_length=20, blank=True)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    response = models.OneToOneField(Response, on_delete=models.CASCADE, null=True, blank=True, related_name="event")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    attachment = models.OneToOneField(
        "Attachment", on_delete=models.CASCADE, null=True, blank=True, related_name="event"
    )

    class Meta:
        ordering = ("created_at", "id")
        indexes = [models.Index(fields=["incident", "created_at", "id"], name="event_incident_oldest")]

    def __str__(self):
        return f"{self.get_kind_display()} on {self.incident_id}"


class IdempotencyKey(models.Model):
    """The first result of a POST sent with an `Idempotency-Key` header, replayed for
    retries with the same key by the same user for 24 hours (see api/idempotency.py)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # What was asked (method, path, body): the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")]

    def __str__(self):
        return self.key


class AttachmentStorage(LazyObject):
    """STORAGES["attachments"] (the file system or S3), resolved on first use as Django's
    `default_storage` is; `reset()` makes the next use read STORAGES again."""

    def _setup(self):
        self._wrapped = storages["attachments"]

    def reset(self):
        self._wrapped = empty


_attachment_storage = AttachmentStorage()


def attachment_storage():
    """Where attachments are kept (FileField's `storage` callable)."""
    return _attachment_storage


def attachment_count():
    """The correlated count of an incident's attachments, for `for_list`."""
    return (
        Attachment.objects.filter(incident=models.OuterRef("pk"))
        .order_by()
        .values("incident")
        .annotate(n=models.Count("pk"))
        .values("n")
    )


class Attachment(models.Model):
    """A file on an incident (and on the response it came with, if any). Written by
    `services.add_attachment` and friends; its bytes leave IRMS only through the checked
    download view. `file` has a random name; `filename` is the uploaded name, sanitised."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="attachments")
    response = models.ForeignKey(Response, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    file = models.FileField(storage=attachment_storage, max_length=255)
    thumbnail = models.FileField(storage=attachment_storage, max_length=255, blank=True)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField("SHA-256", max_length=64)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("created_at", "id")
        indexes = [models.Index(fields=["incident", "created_at", "id"], name="attachment_incident_oldest")]

    def __str__(self):
        return self.filename

    def get_absolute_url(self):
        return reverse("api:attachment-file", kwargs={"incident_id": self.incident.incident_id, "pk": self.pk})

    def get_thumbnail_url(self):
        if not self.thumbnail:
            return None
        return reverse("api:attachment-thumbnail", kwargs={"incident_id": self.incident.incident_id, "pk": self.pk})

    @property
    def is_image(self) -> bool:
        return bool(self.thumbnail)


class WebhookEvent(models.TextChoices):
    """What an endpoint may subscribe to (the `type` of a Standard Webhooks message)."""

    REPORTED = "incident.reported", "Reported"
    STATUS_CHANGED = "incident.status_changed", "Status changed"
    SEVERITY_CHANGED = "incident.severity_changed", "Severity changed"
    ASSIGNED = "incident.assigned", "Assigned (or unassigned)"
    TEAM_CHANGED = "incident.team_changed", "Moved to another team"
    RESPONDED = "incident.responded", "Responded"
    ATTACHMENT_ADDED = "incident.attachment_added", "File attached"
    SLA_BREACHED = "incident.sla_breached", "SLA breached"


class WebhookFormat(models.TextChoices):
    STANDARD = "standard", "Standard Webhooks (signed JSON)"
    SLACK = "slack", "Slack incoming webhook (also Mattermost, Rocket.Chat)"
    TEAMS = "teams", "Microsoft Teams Workflows (Adaptive Card)"


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# How long the secret before a rotation still signs, so receivers can switch without a gap.
SECRET_OVERLAP = timedelta(hours=24)


class WebhookEndpoint(models.Model):
    """Where IRMS posts events (managed in the admin). It hears of an incident as the
    permission layer says (`permissions.webhook_may_receive`): of its team's incidents only
    when it has a team, of private ones only with `include_private`."""

    url = models.URLField("URL", max_length=2000, validators=[check_url])
    description = models.CharField(max_length=200, blank=True)
    # Shown once, when created or rotated; never in a form.
    secret = models.CharField(max_length=120, default=new_webhook_secret, editable=False)
    previous_secret = models.CharField(max_length=120, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    events = models.JSONField(default=list, blank=True, help_text="Empty: every event.")
    format = models.CharField(max_length=10, choices=WebhookFormat.choices, default=WebhookFormat.STANDARD)
    team = models.ForeignKey(
        Team,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhook_endpoints",
        help_text="Empty: incidents of every team.",
    )
    include_private = models.BooleanField("include private incidents", default=False)
    active = models.BooleanField(default=True)
    # Failed attempts in a row (a success resets it); at WEBHOOK_DISABLE_AFTER it is disabled.
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("description", "id")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(format__in=WebhookFormat.values), name="webhook_endpoint_format_valid"
            ),
        ]

    def __str__(self):
        # Never the whole URL: a chat webhook's URL is itself a credential.
        return self.description or f"Endpoint {self.pk} ({urlsplit(self.url).hostname})"

    @property
    def key(self) -> str:
        """Its deliveries' `destination` in the outbox."""
        return f"endpoint:{self.pk}"

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    def clean(self):
        super().clean()
        if not isinstance(self.events, list) or any(event not in WebhookEvent.values for event in self.events):
            raise ValidationError({"events": "Choose events from the list."})


class InboundMessage(models.Model):
    """One e-mail `manage.py mail_ingest` read, and what became of it (incidents/replies.py).

    The row is the processed-once record: `key` (a hash of the Message-ID, or of the whole
    message when it has none) is unique, and the row is written in the same transaction as
    the response it made, so two ingesters reading the same mail never both respond. Staff
    read the refused ones in the admin."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        REFUSED = "refused", "Refused"

    class Reason(models.TextChoices):
        NONE = "", "—"
        NO_TOKEN = "no_token", "Not addressed to a reply address"
        BAD_TOKEN = "bad_token", "Forged or damaged reply address"
        EXPIRED_TOKEN = "expired_token", "Expired reply address"
        UNKNOWN_SENDER = "unknown_sender", "Not from the address the notification went to"
        AUTO_REPLY = "auto_reply", "Automatic reply"
        BOUNCE = "bounce", "Bounce or delivery report"
        CLOSED = "closed", "Incident closed"
        NOT_ALLOWED = "not_allowed", "Sender may not respond"
        EMPTY = "empty", "No reply text"
        INVALID = "invalid", "Refused text or attachment"
        UNREADABLE = "unreadable", "Unreadable message"

    key = models.CharField(max_length=64, unique=True, editable=False)
    message_id = models.CharField("Message-ID", max_length=255, blank=True)
    received_at = models.DateTimeField(default=timezone.now, editable=False)
    source = models.CharField(max_length=10)
    sender = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    detail = models.TextField(blank=True)
    incident = models.ForeignKey(Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    response = models.ForeignKey(Response, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # When an explanation was mailed back (at most one per sender an hour).
    bounced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-received_at", "-id")
        indexes = [
            models.Index(fields=["status", "-received_at"], name="inbound_status_newest"),
            models.Index(fields=["sender", "bounced_at"], name="inbound_sender_bounced"),
        ]

    def __str__(self):
        return f"{self.get_status_display()} mail from {self.sender or 'nobody'}"
