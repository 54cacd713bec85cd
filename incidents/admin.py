"""The staff's admin. Every change goes through `services.py`, like the web and the API,
so admin edits and bulk actions land on the timeline and follow the workflow."""

import csv
import unicodedata

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import StreamingHttpResponse
from django.utils import timezone

from . import services
from .models import TRANSITIONS, Incident, IncidentEvent, Response, Status

# A cell starting with one of these is run as a formula by spreadsheets.
FORMULA_STARTS = ("=", "+", "-", "@")


def csv_cell(value) -> str:
    """A CSV cell a spreadsheet shows as text (no CSV injection): a leading formula
    character is escaped with a quote, also when invisible characters a spreadsheet skips
    (a BOM, zero-width or other spaces, controls) come before it."""
    text = "" if value is None else str(value)
    start = 0
    while start < len(text) and unicodedata.category(text[start])[0] in "CZ":
        start += 1
    if text[start : start + 1] in FORMULA_STARTS or text[:1] in ("\t", "\r"):
        return "'" + text
    return text


class IncidentAdminForm(forms.ModelForm):
    class Meta:
        model = Incident
        fields = ("title", "description", "status", "severity", "visibility", "reporter")

    def clean_status(self):
        status = self.cleaned_data["status"]
        old = self.instance.status if self.instance.pk else Status.REPORTED
        if status != old and status not in TRANSITIONS[old]:
            raise ValidationError(f"An incident cannot move from {old} to {status}.")
        return status


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
        "created_at",
        "responses",
    )
    list_display_links = ("short_id", "title")
    list_filter = ("status", "severity", "visibility", "created_at")
    search_fields = ("title", "description", "=incident_id", "reporter__username", "reporter__email")
    date_hierarchy = "created_at"
    list_select_related = ("reporter",)
    list_per_page = 50
    show_full_result_count = False  # a COUNT(*) of the whole table on every page view
    raw_id_fields = ("reporter",)
    readonly_fields = ("incident_id", "created_at", "updated_at", "acknowledged_at", "resolved_at", "closed_at")
    fieldsets = (
        (None, {"fields": ("incident_id", "title", "description", "reporter")}),
        ("Triage", {"fields": ("status", "severity", "visibility")}),
        ("Times", {"fields": ("created_at", "updated_at", "acknowledged_at", "resolved_at", "closed_at")}),
    )
    inlines = (ResponseInline, IncidentEventInline)
    actions = ("acknowledge_selected", "resolve_selected", "close_selected", "export_csv")

    def get_queryset(self, request):
        return super().get_queryset(request).for_list()

    @admin.display(description="ID", ordering="incident_id")
    def short_id(self, obj):
        return obj.short_id

    @admin.display(description="Responses", ordering="response_count")
    def responses(self, obj):
        return obj.response_count

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
            )
            obj.pk, obj.incident_id = created.pk, created.incident_id
            return
        services.update_incident(
            incident=Incident.objects.get(pk=obj.pk),
            actor=request.user,
            title=data["title"],
            description=data["description"],
            visibility=data["visibility"],
            severity=data["severity"],
            status=data["status"],
            reporter=data.get("reporter"),
        )

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

    list_display = ("id", "incident", "author", "created_at")
    list_select_related = ("incident", "author")
    search_fields = ("description", "author__username", "=incident__incident_id")
    list_filter = ("created_at",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = ("incident", "author", "description", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
