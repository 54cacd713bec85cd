"""List filters, shared by the web lists and the API (one definition, one behaviour)."""

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field

from . import search, sla
from .models import OPEN_STATUSES, Category, Incident, Severity, Status, Team, Visibility

ASSIGNEE_HELP = "`me`, `none` (unassigned) or a username."


class AssigneeField(forms.CharField):
    """`me`, `none` or the username of an existing account (a typo is an error, not an
    empty list)."""

    def validate(self, value):
        super().validate(value)
        if value and value not in ("me", "none") and not get_user_model().objects.filter(username=value).exists():
            # As params, not in the message: django-filter %-formats messages, and a
            # username may hold a "%".
            raise ValidationError("No user is called “%(value)s”.", code="invalid_choice", params={"value": value})


class AssigneeFilter(django_filters.CharFilter):
    field_class = AssigneeField

    def filter(self, queryset, value):
        if not value:
            return queryset
        if value == "none":
            return queryset.filter(assignee__isnull=True)
        if value == "me":
            return queryset.filter(assignee_id=self.parent.request.user.pk)
        # One look-up here keeps the list query on its (assignee, created_at) index.
        pk = get_user_model().objects.filter(username=value).values_list("pk", flat=True).first()
        return queryset.filter(assignee_id=pk)


class IncidentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Status.choices, empty_label="Any status")
    severity = django_filters.ChoiceFilter(choices=Severity.choices, empty_label="Any severity")
    visibility = django_filters.ChoiceFilter(choices=Visibility.choices, empty_label="Any visibility")
    team = django_filters.ModelChoiceFilter(
        queryset=Team.objects.order_by("name"), to_field_name="slug", empty_label="Any team"
    )
    category = django_filters.ModelChoiceFilter(
        queryset=Category.objects.order_by("position", "name"), to_field_name="slug", empty_label="Any category"
    )
    assignee = AssigneeFilter(label="Assignee", max_length=150, help_text=ASSIGNEE_HELP)
    open = django_filters.BooleanFilter(
        method="filter_open",
        label="Open",
        help_text="`true`: Reported, Acknowledged or In Progress; `false`: the rest.",
    )
    sla = django_filters.ChoiceFilter(
        choices=[(state, state.replace("_", " ").capitalize()) for state in sla.State.ALL],
        method="filter_sla",
        empty_label="Any SLA state",
        help_text="Incidents with either SLA clock in this state.",
    )
    search = django_filters.CharFilter(
        method="filter_search",
        label="Search",
        max_length=100,
        help_text=(
            "Words in the title or description, all of them (the last one may be the start of a word); "
            '"quotes" for a phrase; case and accents ignored. Words under 3 letters and very common ones '
            "(the, with...) are left out: a search of only those matches nothing."
        ),
    )
    search_responses = django_filters.BooleanFilter(
        method="filter_nothing",
        label="Also search responses",
        help_text="`true`: `search` also finds incidents one of whose responses holds every word.",
    )
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Incident
        fields = [
            "status",
            "severity",
            "visibility",
            "team",
            "category",
            "assignee",
            "open",
            "sla",
            "search",
            "search_responses",
            "created_after",
            "created_before",
        ]

    def filter_open(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(status__in=OPEN_STATUSES) if value else queryset.exclude(status__in=OPEN_STATUSES)

    def filter_sla(self, queryset, name, value):
        return queryset.filter(sla.state_q(value, timezone.now())) if value else queryset

    @extend_schema_field({"type": "string", "maxLength": 100})
    def filter_search(self, queryset, name, value):
        if not value.strip():
            return queryset
        self.search_query = search.parse(value)
        return search.matching(
            queryset, self.search_query, responses=bool(self.form.cleaned_data.get("search_responses"))
        )

    def filter_nothing(self, queryset, name, value):
        return queryset  # read by filter_search

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.search_query = None  # what `search` was parsed into, once filtered
        for name in ("status", "severity", "visibility", "team", "category", "sla"):
            self.form.fields[name].widget.attrs["class"] = "form-select"
