"""API representations. Input validation only: the services apply the rules."""

from django.contrib.auth import get_user_model
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import sla
from ..models import MAX_TEXT_LENGTH, Attachment, Category, Incident, Response, Severity, Status, Team, Visibility


class IsoDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an explicit offset (`+00:00`), the same in every response."""

    def to_representation(self, value):
        if value is None:
            return None
        return self.enforce_timezone(value).isoformat()


# "Contains something that is not white space", written so that Python's regular
# expressions (the server) and ECMA-262's (JSON Schema clients) agree: each engine's \s
# misses characters the other's has (\x1c-\x1f and \x85 in ECMA, \ufeff in Python).
NOT_BLANK = "[^\\s\\x1c-\\x1f\\x85\\ufeff]"


class StrictCharField(serializers.CharField):
    """Text must arrive as a JSON string (123 or true is a mistake, not a title) and say
    something: whitespace alone is blank (the schema's `pattern` says so)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(RegexValidator(NOT_BLANK, "This field may not be blank."))

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class SlaClockSerializer(serializers.Serializer):
    due_at = IsoDateTimeField(allow_null=True, help_text="Null when no SLA policy applies.")
    state = serializers.ChoiceField(
        choices=sla.State.ALL,
        help_text="`pending`, `at_risk` (the last part of the window), `met`, or `breached` (missed, met late or not).",
    )


class SlaSerializer(serializers.Serializer):
    acknowledge = SlaClockSerializer(help_text="Met by the first move out of Reported.")
    resolve = SlaClockSerializer(help_text="Met by Resolved or Closed; a reopening starts it again.")


class IncidentSerializer(serializers.ModelSerializer):
    """The original keys with the original meaning, plus what a dashboard needs."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: IsoDateTimeField,
    }

    incident_id = serializers.UUIDField(read_only=True)
    user_id = serializers.IntegerField(source="reporter_id", read_only=True, allow_null=True)
    user_email = serializers.SerializerMethodField(
        help_text="The reporter's address, only for the reporter and staff; otherwise null."
    )
    reporter_username = serializers.CharField(source="reporter.username", read_only=True, allow_null=True, default=None)
    response_count = serializers.IntegerField(read_only=True)
    attachment_count = serializers.IntegerField(read_only=True, help_text="How many files are attached.")
    category = serializers.CharField(source="category.slug", read_only=True, allow_null=True, default=None)
    # Annotated by Incident.objects.for_list(), which every incident the API returns comes from.
    team = serializers.CharField(source="team_slug", read_only=True, allow_null=True, default=None)
    assignee_username = serializers.CharField(source="assignee.username", read_only=True, allow_null=True, default=None)
    url = serializers.SerializerMethodField(help_text="This incident in the API.")
    web_url = serializers.SerializerMethodField(help_text="This incident's page on the site.")
    sla = serializers.SerializerMethodField(help_text="The two SLA clocks.")

    class Meta:
        model = Incident
        fields = (
            "id",
            "incident_id",
            "title",
            "description",
            "status",
            "user_id",
            "user_email",
            "created_at",
            "severity",
            "visibility",
            "updated_at",
            "acknowledged_at",
            "resolved_at",
            "closed_at",
            "reporter_username",
            "response_count",
            "category",
            "team",
            "assignee_username",
            "url",
            "web_url",
            "sla",
            "attachment_count",
        )
        read_only_fields = fields

    @extend_schema_field(SlaSerializer)
    def get_sla(self, incident) -> dict:
        # One "now" per response: every row of a page is judged at the same moment.
        now = self.context.setdefault("_now", timezone.now())
        return {
            name: {"due_at": clock.due_at.isoformat() if clock.due_at else None, "state": clock.state}
            for name, clock in sla.clocks(incident, now).items()
        }

    def get_user_email(self, incident) -> str | None:
        user = self.context["request"].user
        if incident.reporter_id is not None and (incident.reporter_id == user.pk or user.is_staff):
            return incident.reporter.email
        return None

    def _absolute_url(self, url_name: str, incident) -> str:
        """The URL of `url_name` for this incident. Reversed once per response, not per row:
        a page of 50 spent a quarter of its serializing time in reverse() (bench/README.md)."""
        templates = self.context.setdefault("_url_templates", {})
        if url_name not in templates:
            placeholder = "00000000-0000-0000-0000-000000000000"
            url = self.context["request"].build_absolute_uri(reverse(url_name, kwargs={"incident_id": placeholder}))
            templates[url_name] = url.split(placeholder)
        head, tail = templates[url_name]
        return f"{head}{incident.incident_id}{tail}"

    def get_url(self, incident) -> str:
        return self._absolute_url("api:incident-detail", incident)

    def get_web_url(self, incident) -> str:
        return self._absolute_url("incidents:detail", incident)


class StrictInputSerializer(serializers.Serializer):
    """Refuses fields it does not know (a typo is an error, not a silent no-op); the schema
    says so with `additionalProperties: false` (see schema.py)."""

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields) if isinstance(self.initial_data, dict) else set()
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
        return attrs


class ActiveCategoryField(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(
            slug_field="slug",
            queryset=Category.objects.filter(active=True).select_related("team"),
            error_messages={
                "does_not_exist": "No active category is called “{value}”: see GET /api/categories.",
                "invalid": "Give a category's slug.",
            },
            **kwargs,
        )


class IncidentCreateSerializer(StrictInputSerializer):
    """A new incident. Unknown fields are refused."""

    category = ActiveCategoryField(required=False, help_text="A category's slug (default: the general one).")
    title = StrictCharField(max_length=100)
    description = StrictCharField(max_length=MAX_TEXT_LENGTH)
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.MEDIUM)
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PUBLIC)


class IncidentUpdateSerializer(StrictInputSerializer):
    """Changes to an incident: every field optional; unknown fields are refused."""

    title = StrictCharField(max_length=100, required=False)
    description = StrictCharField(max_length=MAX_TEXT_LENGTH, required=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    team = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Team.objects.all(),
        required=False,
        error_messages={"does_not_exist": "No team is called “{value}”: see GET /api/teams."},
    )
    category = ActiveCategoryField(required=False)
    assignee = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_active=True),
        required=False,
        allow_null=True,
        help_text="A team member's username, or null for nobody.",
        error_messages={"does_not_exist": "No active user is called “{value}”."},
    )


class AttachmentSerializer(serializers.ModelSerializer):
    """A file on an incident. `url` and `thumbnail_url` go through the checked download
    view (token or session; 404 to whoever may not see the incident)."""

    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True, allow_null=True, default=None)
    response_id = serializers.IntegerField(read_only=True, allow_null=True)
    created_at = IsoDateTimeField(read_only=True)
    url = serializers.SerializerMethodField(help_text="Download the file.")
    thumbnail_url = serializers.SerializerMethodField(help_text="A small WebP of an image; null for other files.")

    class Meta:
        model = Attachment
        fields = (
            "id",
            "filename",
            "content_type",
            "size",
            "sha256",
            "url",
            "thumbnail_url",
            "uploaded_by",
            "created_at",
            "response_id",
        )
        read_only_fields = fields

    def get_url(self, attachment) -> str:
        return self.context["request"].build_absolute_uri(attachment.get_absolute_url())

    def get_thumbnail_url(self, attachment) -> str | None:
        url = attachment.get_thumbnail_url()
        return self.context["request"].build_absolute_uri(url) if url else None


class ResponseSerializer(serializers.ModelSerializer):
    responder_username = serializers.CharField(source="author.username", read_only=True, allow_null=True, default=None)
    incident_id = serializers.UUIDField(source="incident.incident_id", read_only=True)
    created_at = IsoDateTimeField(read_only=True)
    attachments = AttachmentSerializer(
        many=True, read_only=True, help_text="The files that came with it, oldest first."
    )

    class Meta:
        model = Response
        fields = ("id", "incident_id", "responder_username", "description", "created_at", "attachments")
        read_only_fields = fields


class ResponseCreateSerializer(StrictInputSerializer):
    """A response to an incident. Unknown fields are refused."""

    description = StrictCharField(max_length=MAX_TEXT_LENGTH)


class CategorySerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.slug", read_only=True)

    class Meta:
        model = Category
        fields = ("slug", "name", "description", "team")
        read_only_fields = fields


class TeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ("slug", "name", "description")
        read_only_fields = fields


class AttachmentCreateSerializer(StrictInputSerializer):
    """One file (multipart field `file`), optionally for one of the caller's responses."""

    file = serializers.FileField(help_text="The file. Its type is read from its content.")
    response_id = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="One of your responses to this incident."
    )


# The metrics' representation (`metrics.Metrics.as_dict()`), for the schema: built by
# incidents/metrics.py, documented here.
class DurationPercentilesSerializer(serializers.Serializer):
    median_seconds = serializers.IntegerField(allow_null=True, help_text="Nearest-rank median, whole seconds.")
    p90_seconds = serializers.IntegerField(allow_null=True, help_text="Nearest-rank 90th percentile, whole seconds.")
    count = serializers.IntegerField(help_text="How many incidents were measured.")


class MetricsSlaSerializer(serializers.Serializer):
    acknowledge_met_ratio = serializers.FloatField(allow_null=True, help_text="Met / (met + missed), 0 to 1.")
    resolve_met_ratio = serializers.FloatField(allow_null=True)
    breached_now = serializers.IntegerField(help_text="Open incidents with a clock running past due.")


class MetricsGroupSerializer(serializers.Serializer):
    reported = serializers.IntegerField()
    open_now = serializers.IntegerField()
    time_to_acknowledge = DurationPercentilesSerializer()
    time_to_resolve = DurationPercentilesSerializer()
    sla = MetricsSlaSerializer()


class MetricsSeveritySerializer(MetricsGroupSerializer):
    severity = serializers.ChoiceField(choices=Severity.choices)


class MetricsTeamSerializer(MetricsGroupSerializer):
    team = serializers.SlugField(help_text="The team's slug.")
    name = serializers.CharField()


class MetricsWeekSerializer(serializers.Serializer):
    week_start = serializers.DateField(help_text="The Monday starting the week (the first and last weeks are clipped).")
    reported = serializers.IntegerField()
    resolved = serializers.IntegerField()
    open_at_end = serializers.IntegerField(allow_null=True, help_text="Open at the week's end, or now; null ahead.")


class MetricsCategorySerializer(serializers.Serializer):
    category = serializers.SlugField(allow_null=True)
    name = serializers.CharField()
    reported = serializers.IntegerField()


class MetricsOldestOpenSerializer(serializers.Serializer):
    incident_id = serializers.UUIDField()
    title = serializers.CharField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    status = serializers.ChoiceField(choices=Status.choices)
    team = serializers.SlugField()
    reported_at = serializers.DateTimeField()
    url = serializers.URLField()


class MetricsSerializer(serializers.Serializer):
    to = serializers.DateField()
    teams = serializers.ListField(child=serializers.SlugField(), help_text="The teams measured; empty: every team.")
    category = serializers.SlugField(allow_null=True)
    severity = serializers.CharField(allow_null=True, help_text="The severity measured; null: every severity.")
    reported = serializers.IntegerField()
    acknowledged = serializers.IntegerField()
    resolved = serializers.IntegerField()
    closed = serializers.IntegerField()
    open_now = serializers.IntegerField()
    time_to_acknowledge = DurationPercentilesSerializer()
    time_to_resolve = DurationPercentilesSerializer()
    sla = MetricsSlaSerializer()
    by_severity = MetricsSeveritySerializer(many=True)
    by_team = MetricsTeamSerializer(many=True)
    weekly = MetricsWeekSerializer(many=True)
    top_categories = MetricsCategorySerializer(many=True)
    oldest_open = MetricsOldestOpenSerializer(many=True)

    def get_fields(self):
        # "from" is a Python keyword, so it cannot be declared as an attribute.
        return {"from": serializers.DateField(), **super().get_fields()}


# --- The lists' read path ---------------------------------------------------------------
#
# A page of 50 incidents through IncidentSerializer cost ~13 ms of CPU, most of it model
# instances (three users joined per row, every datetime column parsed) and DRF's per-field
# machinery (bench/README.md, "The API's hot path"). The lists read the columns the
# representation needs with values() and build each dict directly. IncidentSerializer
# stays the contract (the schema, one incident, writes' answers); test_api_rows.py proves
# both give the same JSON for the same incidents.

_SLA_COLUMNS = tuple(f"{clock}_{column}" for clock in sla.CLOCKS for column in ("due_at", "warn_at", "breached_at"))
LIST_COLUMNS = (
    "id",
    "incident_id",
    "title",
    "description",
    "status",
    "reporter_id",
    "reporter__username",
    "reporter__email",
    "created_at",
    "severity",
    "visibility",
    "updated_at",
    "acknowledged_at",
    "resolved_at",
    "closed_at",
    "response_count",
    "category__slug",
    "team_slug",
    "assignee__username",
    "attachment_count",
    *_SLA_COLUMNS,
    # The cursor's position for `ordering=due` (the paginator reads it from the row).
    "sla_due_at",
)


def incident_rows(queryset):
    """`queryset` (from `Incident.objects.for_list()`, visibility and filters applied) as
    dicts of LIST_COLUMNS, for `IncidentRows`."""
    return queryset.values(*LIST_COLUMNS)


class _SlaRow:
    """What `sla.clocks` reads of an incident, from a row."""

    __slots__ = ("status", "acknowledged_at", "resolved_at", "closed_at", *_SLA_COLUMNS)

    def __init__(self, row):
        for name in self.__slots__:
            setattr(self, name, row[name])


class IncidentRows:
    """IncidentSerializer's representation of `incident_rows` dicts: the same keys in the
    same order, the same values (times in the current time zone, ISO 8601)."""

    def __init__(self, request):
        self.request = request
        self.now = timezone.now()
        self.zone = timezone.get_current_timezone()
        user = request.user
        self.viewer_id, self.viewer_is_staff = user.pk, user.is_staff
        placeholder = "00000000-0000-0000-0000-000000000000"
        self.url = request.build_absolute_uri(reverse("api:incident-detail", kwargs={"incident_id": placeholder}))
        self.url = self.url.split(placeholder)
        self.web_url = request.build_absolute_uri(reverse("incidents:detail", kwargs={"incident_id": placeholder}))
        self.web_url = self.web_url.split(placeholder)

    def time(self, value):
        return None if value is None else value.astimezone(self.zone).isoformat()

    def represent(self, rows) -> list[dict]:
        return [self.one(row) for row in rows]

    def one(self, row) -> dict:
        time = self.time
        incident_id = str(row["incident_id"])
        reporter_id = row["reporter_id"]
        shows_email = reporter_id is not None and (reporter_id == self.viewer_id or self.viewer_is_staff)
        return {
            "id": row["id"],
            "incident_id": incident_id,
            "title": row["title"],
            "description": row["description"],
            "status": row["status"],
            "user_id": reporter_id,
            "user_email": row["reporter__email"] if shows_email else None,
            "created_at": time(row["created_at"]),
            "severity": row["severity"],
            "visibility": row["visibility"],
            "updated_at": time(row["updated_at"]),
            "acknowledged_at": time(row["acknowledged_at"]),
            "resolved_at": time(row["resolved_at"]),
            "closed_at": time(row["closed_at"]),
            "reporter_username": row["reporter__username"],
            "response_count": row["response_count"],
            "category": row["category__slug"],
            "team": row["team_slug"],
            "assignee_username": row["assignee__username"],
            "url": f"{self.url[0]}{incident_id}{self.url[1]}",
            "web_url": f"{self.web_url[0]}{incident_id}{self.web_url[1]}",
            "sla": {
                name: {"due_at": clock.due_at.isoformat() if clock.due_at else None, "state": clock.state}
                for name, clock in sla.clocks(_SlaRow(row), self.now).items()
            },
            "attachment_count": row["attachment_count"],
        }
