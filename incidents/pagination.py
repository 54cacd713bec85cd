"""Pagination for the web lists."""

from notifications.pagination import CappedPaginator as BaseCappedPaginator


class CappedPaginator(BaseCappedPaginator):
    """The web lists count at most 1,000 rows ("1,000+": the filters narrow it), the
    outbox's paginator with a smaller cap."""

    max_rows = 1000
