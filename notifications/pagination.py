"""A paginator whose count costs the same at any size of the table (the outbox's
changelists, and the incident lists and admin, which subclass it)."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedPaginator(Paginator):
    """Counts at most `max_rows` rows: a full COUNT(*) grows with the table; counting a
    LIMIT-ed subquery of primary keys costs the same at 100 rows and at 100,000 (and skips
    the list's per-row annotations). Past the cap the page says "10000+"."""

    max_rows = 10_000

    @cached_property
    def count(self):
        return self.object_list.order_by().values("pk")[: self.max_rows].count()

    @property
    def is_capped(self) -> bool:
        return self.count >= self.max_rows
