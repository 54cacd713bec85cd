"""Cursor pagination that keeps lists as bare JSON arrays, with RFC 8288 `Link` headers.

Keyset, not OFFSET: a page is a range scan from the cursor's position on an index
ending in (created_at, id), so page 2,000 costs what page 1 costs, and rows inserted
while a client walks the list never shift it (nothing is seen twice or skipped).
"""

import math

from django.utils.dateparse import parse_datetime
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from .. import search

ORDERINGS = {
    "-created_at": ("-created_at", "-id"),
    "created_at": ("created_at", "id"),
    # The soonest unmet SLA due time first (incidents with none come last).
    "due": ("sla_due_at", "id"),
    # With `search`: the best matches first (search.rank), then newest first.
    "relevance": ("-search_rank", "-created_at", "-id"),
}
INVALID_CURSOR = "Invalid cursor: follow the Link headers."


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


class LinkHeaderCursorPagination(pagination.CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = ORDERINGS["-created_at"]
    default_ordering_param = "-created_at"
    invalid_cursor_message = INVALID_CURSOR
    orderings = ORDERINGS
    ordering_description = (
        "`-created_at` (newest first, the default), `created_at` (oldest first), `due` "
        "(the soonest unmet SLA due time first; incidents with no clock running last) or, with "
        "`search`, `relevance` (the best matches first)."
    )

    def paginate_queryset(self, queryset, request, view=None):
        if "relevance" in self.orderings and request.query_params.get("ordering") == "relevance":
            text = request.query_params.get("search", "")
            if not text.strip():
                raise ValidationError({"ordering": ["`relevance` needs a `search`."]})
            queryset = queryset.annotate(search_rank=search.rank(text))
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({"page_size": [f"Must be a whole number from 1 to {self.max_page_size}."]})
        return size

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get("ordering", self.default_ordering_param)
        if raw not in self.orderings:
            raise ValidationError({"ordering": [f"Must be one of: {', '.join(self.orderings)}."]})
        return self.orderings[raw]

    def decode_cursor(self, request):
        """An unknown cursor is a page that does not exist (404), whether it is garbage or
        a well-formed cursor whose position is not a time."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            if self.ordering == self.orderings.get("relevance"):
                valid = _is_number(cursor.position)
            else:
                try:
                    position = parse_datetime(cursor.position)
                except ValueError:
                    position = None
                valid = position is not None and position.tzinfo is not None
            if not valid:
                raise NotFound(self.invalid_cursor_message)
        return cursor

    def link_header(self) -> str:
        links = [(self.get_next_link(), "next"), (self.get_previous_link(), "prev")]
        return ", ".join(f'<{url}>; rel="{rel}"' for url, rel in links if url)

    def get_paginated_response(self, data):
        header = self.link_header()
        return Response(data, headers={"Link": header} if header else None)

    def get_paginated_response_schema(self, schema):
        return schema

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
                parameter["description"] = f"Items per page, 1 to {self.max_page_size} (default {self.page_size})."
            if parameter["name"] == self.cursor_query_param:
                parameter["description"] = "Opaque position, taken from a `Link` header; an unknown one is a 404."
        return [
            *parameters,
            {
                "name": "ordering",
                "required": False,
                "in": "query",
                "description": self.ordering_description,
                "schema": {"type": "string", "enum": list(self.orderings)},
            },
        ]


class ResponsesPagination(LinkHeaderCursorPagination):
    """An incident's responses: oldest first (a conversation), in the original
    `{"responses": [...]}` envelope."""

    page_size = 200
    ordering = ORDERINGS["created_at"]
    default_ordering_param = "created_at"
    orderings = {key: ORDERINGS[key] for key in ("created_at", "-created_at")}
    ordering_description = "`created_at` (oldest first, the default) or `-created_at` (newest first)."

    def get_paginated_response(self, data):
        header = self.link_header()
        return Response({"responses": data}, headers={"Link": header} if header else None)

    def get_paginated_response_schema(self, schema):
        return {"type": "object", "required": ["responses"], "properties": {"responses": schema}}
