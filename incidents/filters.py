"""List filters, shared by the web lists and the API (one definition, one behaviour)."""

import django_filters
from django.db.models import Q
from drf_spectacular.utils import extend_schema_field

from .models import Incident, Severity, Status, Visibility


class IncidentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Status.choices, empty_label="Any status")
    severity = django_filters.ChoiceFilter(choices=Severity.choices, empty_label="Any severity")
    visibility = django_filters.ChoiceFilter(choices=Visibility.choices, empty_label="Any visibility")
    search = django_filters.CharFilter(method="filter_search", label="Search", max_length=100)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Incident
        fields = ["status", "severity", "visibility", "search", "created_after", "created_before"]

    @extend_schema_field({"type": "string", "maxLength": 100})
    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(title__icontains=value) | Q(description__icontains=value))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("status", "severity", "visibility"):
            self.form.fields[name].widget.attrs["class"] = "form-select"
