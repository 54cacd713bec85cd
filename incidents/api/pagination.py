"""Cursor pagination that keeps lists as bare JSON arrays, with RFC 8288 `Link` headers.

Keyset, not OFFSET: a page is a range scan from the cursor's position on an index
ending in (created_at, id), so page 2,000 costs what page 1 costs, and rows inserted
while a client walks the list never shift it (nothing is seen twice or skipped).
"""

from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

ORDERINGS = {
    "-created_at": ("-created_at", "-id"),
    "created_at": ("created_at", "id"),
}


class LinkHeaderCursorPagination(pagination.CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = ORDERINGS["-created_at"]
    default_ordering_param = "-created_at"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
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
        if raw not in ORDERINGS:
            raise ValidationError({"ordering": [f"Must be one of: {', '.join(ORDERINGS)}."]})
        return ORDERINGS[raw]

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: ["Invalid cursor: follow the Link headers."]}) from None

    def get_paginated_response(self, data):
        links = [(self.get_next_link(), "next"), (self.get_previous_link(), "prev")]
        header = ", ".join(f'<{url}>; rel="{rel}"' for url, rel in links if url)
        return Response(data, headers={"Link": header} if header else None)

    def get_paginated_response_schema(self, schema):
        return schema

    def get_schema_operation_parameters(self, view):
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": "ordering",
                "required": False,
                "in": "query",
                "description": "`-created_at` (newest first, the default) or `created_at` (oldest first).",
                "schema": {"type": "string", "enum": list(ORDERINGS)},
            },
        ]


class OldestFirstCursorPagination(LinkHeaderCursorPagination):
    """For an incident's responses: a conversation reads oldest first."""

    page_size = 200
    ordering = ORDERINGS["created_at"]
    default_ordering_param = "created_at"
