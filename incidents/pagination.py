"""Pagination for the web lists."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedPaginator(Paginator):
    """A paginator that counts at most `max_rows` rows.

    A full COUNT(*) grows with the table; counting a LIMIT-ed subquery costs the same at
    100 rows and at 100,000. Past the cap the list says "1,000+" and the filters narrow it.
    """

    max_rows = 1000

    @cached_property
    def count(self):
        # Primary keys only: the list's per-row annotations (response counts) would otherwise
        # be computed for every counted row (bench/README.md).
        return self.object_list.order_by().values("pk")[: self.max_rows].count()

    @property
    def is_capped(self) -> bool:
        return self.count >= self.max_rows
