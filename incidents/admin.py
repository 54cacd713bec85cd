"""The staff's admin. Every change goes through `services.py`, like the web and the API,
so admin edits and bulk actions land on the timeline and follow the workflow."""

import csv
import uuid
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from notifications import outbox
from notifications.models import OutboxMessage, WebhookAttempt, WebhookDelivery

from . import permissions, search, services, sla, webhooks
from .models import (
    NO_DEADLINE,
    TRANSITIONS,
    Attachment,
    Category,
    InboundMessage,
    Incident,
    IncidentEvent,
    Response,
    SlaPolicy,
    Status,
    Team,
    WebhookEndpoint,
    WebhookEvent,
)
from .pagination import CappedPaginator
from .text import csv_cell

# The change form's fields that update_incident takes.
EDITABLE = ("title", "description", "visibility", "severity", "status", "reporter", "team", "category", "assignee")


class AdminPaginator(CappedPaginator):
    """The changelists count at most this many rows (templates/admin/pagination.html then
    says "10000+"): a COUNT(*) of the whole table on every page view grows with it."""

    max_rows = 10_000


def as_incident_id(term: str) -> uuid.UUID | None:
    """A whole incident ID (a unique-index look-up). Not the 8-character short ID: MariaDB's
    UUID type does not order IDs by their text, so a prefix would be a scan."""
    try:
        return uuid.UUID(term)
    except ValueError:
        return None


def people_matching(term: str) -> list[int]:
    """Accounts whose username is `term`, or whose e-mail is `term` (any case)."""
    return list(
        get_user_model()
        .objects.filter(Q(username=term) | Q(email__iexact=term) if "@" in term else Q(username=term))
        .values_list("pk", flat=True)[:20]
    )


class IncidentAdminForm(forms.ModelForm):
    class Meta:
        model = Incident
        fields = (
            "title",
            "description",
            "status",
            "severity",
            "visibility",
            "reporter",
            "category",
            "team",
            "assignee",
        )
        help_texts = {"team": "A new incident goes to its category's team unless you choose one here."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A new incident's team comes from its category (the default one if none is chosen).
        for name in ("team", "category"):
            if name in self.fields:
                self.fields[name].required = False

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("team"):
            # Filled in for the model's validation; the service routes by category itself.
            category = cleaned.get("category") or services.default_category()
            if category is not None:
                cleaned["team"] = category.team
        # What the service would refuse after the form was accepted, said on the form.
        category, team, assignee = cleaned.get("category"), cleaned.get("team"), cleaned.get("assignee")
        if category is not None and "category" in self.changed_data and not category.active:
            self.add_error("category", "This category is not active: choose an active one.")
        # (A changed team with the same assignee is the service's: it clears a non-member.)
        if (
            assignee is not None
            and team is not None
            and "assignee" in self.changed_data
            and not permissions.can_be_assigned(assignee, team.pk)
        ):
            self.add_error("assignee", f"{assignee.username} is not a member of {team}: assign a team member.")
        return cleaned

    def clean_status(self):
        status = self.cleaned_data["status"]
        old = self.instance.status if self.instance.pk else Status.REPORTED
        if status != old and status not in TRANSITIONS[old]:
            raise ValidationError(f"An incident cannot move from {old} to {status}.")
        return status


class IncidentActionForm(ActionForm):
    """The changelist's action bar, with what "assign to…" and "move to team…" need."""

    assignee = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True),
        to_field_name="username",
        widget=forms.TextInput(attrs={"placeholder": "username", "size": 12}),
        required=False,
        label="Assignee",
        error_messages={"invalid_choice": "No active user has that username."},
    )
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False, label="Team")


class AssigneeListFilter(admin.SimpleListFilter):
    """Me / nobody / anybody: one indexed condition each (a list of every assignee would
    scan the table for distinct values on every page view)."""

    title = "assignee"
    parameter_name = "assignee"

    def lookups(self, request, model_admin):
        return (("me", "Me"), ("none", "Nobody"), ("any", "Somebody"))

    def queryset(self, request, queryset):
        if self.value() == "me":
            return queryset.filter(assignee=request.user)
        if self.value() == "none":
            return queryset.filter(assignee__isnull=True)
        if self.value() == "any":
            return queryset.filter(assignee__isnull=False)
        return queryset


class SlaListFilter(admin.SimpleListFilter):
    """Either SLA clock in a state: the same condition as the lists' and the API's `sla=`."""

    title = "SLA"
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return [(state, state.replace("_", " ").capitalize()) for state in sla.State.ALL]

    def queryset(self, request, queryset):
        if self.value() in sla.State.ALL:
            return queryset.filter(sla.state_q(self.value(), timezone.now()))
        return queryset


class ResponseInline(admin.TabularInline):
    """Existing responses are shown as written; new ones are added through the service."""

    model = Response
    fields = ("author", "description", "created_at")
    readonly_fields = ("created_at",)
    extra = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request, obj=None):
        return ("author", "created_at")

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")


class IncidentEventInline(admin.TabularInline):
    model = IncidentEvent
    fields = ("created_at", "actor", "kind", "field", "old_value", "new_value")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "timeline event"
    verbose_name_plural = "timeline (read-only)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class AttachmentInline(admin.TabularInline):
    """Files on the incident, read-only; each links to the checked download view."""

    model = Attachment
    fields = ("download", "content_type", "size", "sha256", "uploaded_by", "response", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("uploaded_by", "incident", "response")

    @admin.display(description="file")
    def download(self, attachment):
        return format_html('<a href="{}">{}</a>', attachment.get_absolute_url(), attachment.filename)


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    form = IncidentAdminForm
    list_display = (
        "short_id",
        "title",
        "reporter",
        "status",
        "severity",
        "visibility",
        "team_name",
        "assignee",
        "created_at",
        "responses",
        "sla_due",
    )
    list_display_links = ("short_id", "title")
    list_filter = (
        "status",
        "severity",
        "visibility",
        "team",
        "category",
        AssigneeListFilter,
        SlaListFilter,
        "created_at",
    )
    # Read by get_search_results (no LIKE over joins): an incident ID, an exact
    # username or e-mail (that person's reports), else the full-text index.
    # (No search_help_text: Django ties it to the search box by aria-describedby beside an
    # image-only label, which axe reports as a box with no visible label. The README's
    # Search section says what the box takes.)
    search_fields = ("title", "description")
    # No date_hierarchy: its year links come from a SELECT DISTINCT over the whole table on
    # every page view. The "created at" filter offers today, 7 days, this month and year.
    list_select_related = ("reporter", "assignee")  # the team's name is annotated (for_list)
    list_per_page = 50
    paginator = AdminPaginator
    show_full_result_count = False  # a COUNT(*) of the whole table on every page view
    raw_id_fields = ("reporter", "assignee")
    action_form = IncidentActionForm
    SLA_FIELDS = (
        "acknowledge_due_at",
        "acknowledge_breached_at",
        "resolve_due_at",
        "resolve_breached_at",
        "sla_states",
    )
    readonly_fields = (
        "incident_id",
        "created_at",
        "updated_at",
        "acknowledged_at",
        "resolved_at",
        "closed_at",
        *SLA_FIELDS,
    )
    fieldsets = (
        (None, {"fields": ("incident_id", "title", "description", "reporter")}),
        ("Triage", {"fields": ("status", "severity", "visibility", "category", "team", "assignee")}),
        ("Times", {"fields": ("created_at", "updated_at", "acknowledged_at", "resolved_at", "closed_at")}),
        ("SLA", {"fields": SLA_FIELDS}),
    )
    inlines = (ResponseInline, IncidentEventInline, AttachmentInline)
    actions = (
        "acknowledge_selected",
        "resolve_selected",
        "close_selected",
        "assign_selected",
        "move_selected_to_team",
        "export_csv",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).for_list()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        incident_id = as_incident_id(term)
        if incident_id is not None:
            return queryset.filter(incident_id=incident_id), False
        people = people_matching(term)
        if people:
            return queryset.filter(reporter_id__in=people), False
        return search.matching(queryset, term), False

    @admin.display(description="ID", ordering="incident_id")
    def short_id(self, obj):
        return obj.short_id

    @admin.display(description="Team", ordering="team_id")
    def team_name(self, obj):
        return obj.team_name

    @admin.display(description="Responses", ordering="response_count")
    def responses(self, obj):
        return obj.response_count

    @admin.display(description="Next SLA due", ordering="sla_due_at")
    def sla_due(self, obj):
        """The unmet clock due soonest, in words ("Acknowledge overdue")."""
        if obj.sla_due_at >= NO_DEADLINE:
            return "—"
        clock = sla.next_clock(obj)
        state = clock.state.replace("_", " ")
        return f"{clock.label}: {timezone.localtime(clock.due_at):%Y-%m-%d %H:%M} ({state})"

    @admin.display(description="SLA states")
    def sla_states(self, obj):
        return ", ".join(f"{clock.label}: {clock.state.replace('_', ' ')}" for clock in sla.clocks(obj).values())

    def has_delete_permission(self, request, obj=None):
        return False  # an incident is a record: close it, never delete it

    def save_model(self, request, obj, form, change):
        """Route the form's changes through the services (validation, events, locking)."""
        data = form.cleaned_data
        if not change:
            created = services.report_incident(
                reporter=data.get("reporter") or request.user,
                title=data["title"],
                description=data["description"],
                severity=data["severity"],
                visibility=data["visibility"],
                category=data.get("category"),
            )
            obj.pk, obj.incident_id = created.pk, created.incident_id
            follow_up = {
                name: data[name] for name in ("team", "assignee") if data.get(name) and name in form.changed_data
            }
            if follow_up:
                services.update_incident(incident=created, actor=request.user, **follow_up)
            return
        # Only what the form changed: an untouched field asks for nothing (a closed
        # incident's severity, say, may not be changed, but need not be).
        changes = {name: data[name] for name in form.changed_data if name in EDITABLE}
        services.update_incident(incident=Incident.objects.get(pk=obj.pk), actor=request.user, **changes)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Response:
            return super().save_formset(request, form, formset, change)
        # The admin's change message reads these; the service does the saving.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if inline_form.instance.pk is None and inline_form.has_changed() and inline_form.is_valid():
                formset.new_objects.append(
                    services.add_response(
                        incident=form.instance,
                        author=request.user,
                        description=inline_form.cleaned_data["description"],
                    )
                )

    def _bulk_status(self, request, queryset, status: str, verb: str):
        done = skipped = 0
        for incident in queryset:
            try:
                services.change_status(incident=incident, actor=request.user, status=status)
                done += 1
            except (ValidationError, PermissionDenied):
                skipped += 1
        if done:
            self.message_user(request, f"{verb} {done} incident{'s' if done != 1 else ''}.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"Skipped {skipped} incident{'s' if skipped != 1 else ''}: the workflow does not let "
                f"{'it' if skipped == 1 else 'them'} become {status}.",
                messages.WARNING,
            )

    def _bulk_update(self, request, queryset, verb: str, **changes):
        done, refused = 0, []
        for incident in queryset:
            try:
                services.update_incident(incident=incident, actor=request.user, **changes)
                done += 1
            except (ValidationError, PermissionDenied) as error:
                refused.append(" ".join(getattr(error, "messages", [str(error)])))
        if done:
            self.message_user(request, f"{verb} {done} incident{'s' if done != 1 else ''}.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Skipped {len(refused)}: {'; '.join(sorted(set(refused)))}", messages.WARNING)

    def _bulk_from_action_bar(self, request, queryset, field: str, missing: str, verb) -> None:
        """An action whose value (`field`) is chosen in the action bar's extra field."""
        form = IncidentActionForm(request.POST)
        form.fields["action"].choices = self.get_action_choices(request)
        value = form.cleaned_data.get(field) if form.is_valid() else None
        if value is None:
            self.message_user(request, missing, messages.ERROR)
            return
        self._bulk_update(request, queryset, verb(value), **{field: value})

    @admin.action(description="Assign selected incidents to… (the user below)")
    def assign_selected(self, request, queryset):
        self._bulk_from_action_bar(
            request,
            queryset,
            "assignee",
            "Choose who to assign them to (a username) below the action.",
            lambda user: f"Assigned to {user.username}:",
        )

    @admin.action(description="Move selected incidents to team… (the team below)")
    def move_selected_to_team(self, request, queryset):
        self._bulk_from_action_bar(
            request, queryset, "team", "Choose a team below the action.", lambda team: f"Moved to {team.name}:"
        )

    @admin.action(description="Acknowledge selected incidents")
    def acknowledge_selected(self, request, queryset):
        self._bulk_status(request, queryset, Status.ACKNOWLEDGED, "Acknowledged")

    @admin.action(description="Resolve selected incidents")
    def resolve_selected(self, request, queryset):
        self._bulk_status(request, queryset, Status.RESOLVED, "Resolved")

    @admin.action(description="Close selected incidents")
    def close_selected(self, request, queryset):
        self._bulk_status(request, queryset, Status.CLOSED, "Closed")

    @admin.action(description="Export selected incidents as CSV")
    def export_csv(self, request, queryset):
        columns = (
            "incident_id",
            "title",
            "status",
            "severity",
            "visibility",
            "reporter",
            "created_at",
            "acknowledged_at",
            "resolved_at",
            "closed_at",
            "response_count",
        )

        class Echo:
            def write(self, value):
                return value

        writer = csv.writer(Echo())

        def rows():
            yield writer.writerow(columns)
            for incident in queryset.order_by("-created_at", "-id").iterator(chunk_size=500):
                yield writer.writerow(
                    [
                        csv_cell(incident.incident_id),
                        csv_cell(incident.title),
                        incident.status,
                        incident.severity,
                        incident.visibility,
                        csv_cell(incident.reporter.username if incident.reporter else ""),
                        *(
                            value.isoformat() if value else ""
                            for value in (
                                incident.created_at,
                                incident.acknowledged_at,
                                incident.resolved_at,
                                incident.closed_at,
                            )
                        ),
                        incident.response_count,
                    ]
                )

        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="incidents-{stamp}.csv"'
        return response


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    """Responses are part of the record: staff read and search them here; they are
    written from the incident pages, the API or the incident admin's inline."""

    list_display = ("id", "incident_title", "author", "created_at")
    # The incident's title from a correlated subquery, not a join: joined, MariaDB starts
    # from the incidents and sorts every response instead of reading the newest-first index.
    list_select_related = ("author",)
    # As the incidents' (get_search_results): an incident ID, an author's exact username or
    # e-mail, else the responses' full-text index. No date_hierarchy (see IncidentAdmin).
    search_fields = ("description",)  # an incident ID, an author's exact username or e-mail, or words
    list_filter = ("created_at",)
    ordering = ("-created_at", "-id")
    paginator = AdminPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        title = Incident.objects.filter(pk=OuterRef("incident_id")).values("title")[:1]
        return super().get_queryset(request).annotate(incident_title=Subquery(title))

    @admin.display(description="Incident")
    def incident_title(self, obj):
        return obj.incident_title

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        incident_id = as_incident_id(term)
        if incident_id is not None:
            # The incident's pk first: a join here would again let MariaDB start from incidents.
            pks = Incident.objects.filter(incident_id=incident_id).values_list("pk", flat=True)[:1]
            return queryset.filter(incident_id__in=list(pks)), False
        people = people_matching(term)
        if people:
            return queryset.filter(author_id__in=people), False
        return search.responses_matching(queryset, term), False

    readonly_fields = ("incident", "author", "description", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    """Every e-mail `mail_ingest` read: the replies that became responses and the refused
    ones, with why (filter by status and reason). The record of what was processed, so
    read-only: deleting a row would let the same message be processed again."""

    list_display = ("received_at", "status", "reason", "sender", "subject", "incident", "user", "bounced_at")
    list_select_related = ("incident", "user")
    list_filter = ("status", "reason", "source", "received_at")
    search_fields = ("=sender", "subject", "=message_id")
    date_hierarchy = "received_at"
    show_full_result_count = False
    readonly_fields = (
        "received_at",
        "source",
        "status",
        "reason",
        "detail",
        "sender",
        "subject",
        "message_id",
        "incident",
        "user",
        "response",
        "bounced_at",
    )
    exclude = ("key",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TeamAdminForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ("slug", "name", "description", "sees_all", "members", "leads")

    def clean(self):
        cleaned = super().clean()
        members, leads = set(cleaned.get("members") or ()), set(cleaned.get("leads") or ())
        if not leads <= members:
            names = ", ".join(sorted(user.username for user in leads - members))
            self.add_error("leads", f"Leads must be members of the team too: {names}.")
        return cleaned


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    form = TeamAdminForm
    list_display = ("name", "slug", "sees_all", "member_count")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("members", "leads")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("members", distinct=True))

    @admin.display(description="Members", ordering="_members")
    def member_count(self, obj):
        return obj._members

    def has_delete_permission(self, request, obj=None):
        # Incidents keep their team (PROTECT): a team with incidents cannot go.
        return super().has_delete_permission(request, obj) and (obj is None or not obj.incidents.exists())


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "team", "active", "position")
    list_editable = ("active", "position")
    list_filter = ("active", "team")
    list_select_related = ("team",)
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    """Targets by severity, for every team or one. A change applies to incidents reported
    (or re-graded, or moved) after it; clocks already running keep their due times."""

    list_display = ("severity", "team", "acknowledge_within", "resolve_within", "business_hours")
    list_filter = ("severity", "team", "business_hours")
    list_select_related = ("team",)
    ordering = ("team__name", "severity")


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=2000, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("description", "url", "format", "events", "team", "include_private", "active")


# Attempts the endpoint's change page shows (the full log is the deliveries' changelist).
LOG_ROWS = 20


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Webhook endpoints. The secret is shown once, when it is made (on creation and on
    rotation); the change page shows the latest attempts and links to the full log."""

    form = WebhookEndpointForm
    # The host, not the URL: a chat webhook's URL is itself a credential.
    list_display = ("__str__", "host", "format", "team", "include_private", "active", "consecutive_failures")
    list_filter = ("active", "format", "team")
    list_select_related = ("team",)
    search_fields = ("description", "url")
    readonly_fields = ("secret_state", "consecutive_failures", "disabled_at", "created_at", "delivery_log")
    actions = ("send_test_event", "rotate_secret", "redeliver_failed")

    @admin.display(description="Host")
    def host(self, obj):
        return urlsplit(obj.url).hostname or "-"

    @admin.display(description="Secret")
    def secret_state(self, obj):
        if obj.pk is None:
            return "Made when you save; shown once."
        expires = obj.previous_secret_expires_at
        if obj.previous_secret and expires and expires > timezone.now():
            return f"Set (shown once). The previous one still signs until {expires:%Y-%m-%d %H:%M %Z}."
        return "Set (shown once; rotate it to get a new one)."

    @admin.display(description="Delivery log (latest attempts)")
    def delivery_log(self, obj):
        if obj.pk is None:
            return "-"
        attempts = (
            WebhookAttempt.objects.filter(delivery__destination=obj.key)
            .select_related("delivery")
            .order_by("-started_at", "-id")[:LOG_ROWS]
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td></tr>",
            (
                (
                    f"{attempt.started_at:%Y-%m-%d %H:%M:%S}",
                    attempt.delivery.event,
                    attempt.number,
                    attempt.status_code or "-",
                    attempt.duration_ms,
                    (attempt.response_excerpt or attempt.error)[:200],
                )
                for attempt in attempts
            ),
        )
        everything = reverse("admin:notifications_webhookdelivery_changelist") + f"?destination={obj.key}"
        return format_html(
            "<table><thead><tr><th>When</th><th>Event</th><th>Attempt</th><th>Status</th><th>Time</th>"
            '<th>Response</th></tr></thead><tbody>{}</tbody></table><p><a href="{}">Every delivery</a></p>',
            rows,
            everything,
        )

    def save_model(self, request, obj, form, change):
        if change and "active" in form.changed_data and obj.active:
            # Switched on again by staff: the failures that disabled it are behind it.
            obj.consecutive_failures, obj.disabled_at = 0, None
        super().save_model(request, obj, form, change)
        if not change:
            self._show_secret(request, obj, obj.secret)

    def _show_secret(self, request, endpoint, secret):
        self.message_user(
            request,
            f"The signing secret of “{endpoint}” is {secret} — copy it now: it is not shown again.",
            messages.WARNING,
        )

    # Each action changes what receivers get (or shows a secret): staff who may change
    # endpoints only, not those who may only view them.
    @admin.action(description="Send a test event", permissions=["change"])
    def send_test_event(self, request, queryset):
        active = [endpoint for endpoint in queryset if endpoint.active]
        for endpoint in active:
            webhooks.send_test_event(endpoint)
        skipped = len(queryset) - len(active)
        note = f" ({skipped} inactive endpoint(s) skipped)" if skipped else ""
        self.message_user(request, f"Queued a test event to {len(active)} endpoint(s){note}.", messages.SUCCESS)

    @admin.action(description="Rotate the secret (the old one keeps signing for 24 hours)", permissions=["change"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            self._show_secret(request, endpoint, webhooks.rotate_secret(endpoint))

    @admin.action(description="Redeliver failed deliveries", permissions=["change"])
    def redeliver_failed(self, request, queryset):
        keys = [endpoint.key for endpoint in queryset]
        failed = WebhookDelivery.objects.filter(destination__in=keys, state=OutboxMessage.State.FAILED)
        count = outbox.redeliver(failed)
        self.message_user(request, f"Queued {count} deliver{'ies' if count != 1 else 'y'} again.", messages.SUCCESS)
