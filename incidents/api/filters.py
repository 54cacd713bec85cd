"""The API's filter backend: the shared IncidentFilter, strictly applied."""

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError


class StrictFilterBackend(DjangoFilterBackend):
    """A filter parameter given with no value is an error in the API (leave it out to not
    filter), so `?status=` cannot silently mean "any status". Free-text search may be empty.
    The web's filter form, which always sends every field, stays lenient."""

    lenient = ("search",)

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not any(
            name in request.query_params for name in filterset_class.base_filters
        ):
            return queryset  # nothing to filter by: skip building the filter form (measurable per request)
        if filterset_class is not None:
            empty = [
                name
                for name in filterset_class.base_filters
                if name not in self.lenient and request.query_params.get(name) == ""
            ]
            if empty:
                raise ValidationError(
                    {name: ["Must not be empty: leave the parameter out to not filter."] for name in empty}
                )
        return super().filter_queryset(request, queryset, view)
