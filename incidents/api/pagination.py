"""Cursor pagination that keeps lists as bare JSON arrays, with RFC 8288 `Link` headers.

Keyset, not OFFSET: a page is a range scan from the cursor's position on an index
ending in (created_at, id), so page 2,000 costs what page 1 costs, and rows inserted
while a client walks the list never shift it (nothing is seen twice or skipped).
"""

from django.utils.dateparse import parse_datetime
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor
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
# How deep `ordering=relevance` pages go (rows before a page), see _paginate_by_relevance.
MAX_RELEVANCE_OFFSET = 1000  # DRF clamps a cursor offset to CursorPagination.offset_cutoff (1000)


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
        self.by_relevance = False
        if "relevance" in self.orderings and request.query_params.get("ordering") == "relevance":
            text = request.query_params.get("search", "")
            if not text.strip():
                raise ValidationError({"ordering": ["`relevance` needs a `search`."]})
            return self._paginate_by_relevance(queryset.annotate(search_rank=search.rank(text)), request)
        return super().paginate_queryset(queryset, request, view)

    def _paginate_by_relevance(self, queryset, request):
        """The best matches first, by offset. Not keyset: a rank is computed from word
        frequencies over the whole table, hidden incidents included, so a cursor holding
        the last row's rank would let anyone measure how many incidents they may not see
        contain a word. The cursor holds only how many rows came before; relevance is for
        the first pages of a search, hence the cap."""
        self.by_relevance = True
        self.base_url = request.build_absolute_uri()
        self.page_size = self.get_page_size(request)
        self.ordering = self.orderings["relevance"]
        cursor = self.decode_cursor(request)
        self.relevance_offset = cursor.offset if cursor is not None else 0
        if self.relevance_offset > MAX_RELEVANCE_OFFSET:
            raise NotFound(self.invalid_cursor_message)
        rows = list(
            queryset.order_by(*self.ordering)[self.relevance_offset : self.relevance_offset + self.page_size + 1]
        )
        self.has_next = len(rows) > self.page_size and self.relevance_offset + self.page_size <= MAX_RELEVANCE_OFFSET
        self.has_previous = self.relevance_offset > 0
        self.page = rows[: self.page_size]
        return self.page

    def get_next_link(self):
        if getattr(self, "by_relevance", False):
            if not self.has_next:
                return None
            return self.encode_cursor(
                Cursor(offset=self.relevance_offset + self.page_size, reverse=False, position=None)
            )
        return super().get_next_link()

    def get_previous_link(self):
        if getattr(self, "by_relevance", False):
            if not self.has_previous:
                return None
            offset = max(0, self.relevance_offset - self.page_size)
            return self.encode_cursor(Cursor(offset=offset, reverse=False, position=None))
        return super().get_previous_link()

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
        if cursor is not None and getattr(self, "by_relevance", False):
            if cursor.position is not None or cursor.reverse:
                raise NotFound(self.invalid_cursor_message)  # relevance pages carry an offset only
        elif cursor is not None and cursor.position is not None:
            try:
                position = parse_datetime(cursor.position)
            except ValueError:
                position = None
            if position is None or position.tzinfo is None:
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
