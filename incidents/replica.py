"""Reads from a replica, when DATABASE_REPLICA_URL configures one (settings.py).

Only reads that a view declares safe to serve slightly stale go to the replica: the
incident lists (web and API) and the dashboard's counts, each wrapped in `replica_reads`.
Everything else reads from the primary, and so does:

- anything inside a transaction (`transaction.atomic`): a read there may decide a write,
  and must see the primary's rows and hold its locks;
- every request of a user who changed something in the last REPLICA_STICKY_SECONDS
  (read-your-writes). The mark is kept in the shared cache, keyed by the user, so it holds
  whichever app server the next request reaches and for token clients that keep no cookie.

A replica that falls further behind than the sticky window shows other people's changes
late (never the user's own): monitor its lag (docs/deployment.md).
"""

import contextlib
import contextvars

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections

from .models import team_membership

REPLICA = "replica"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_reading_from_replica: contextvars.ContextVar[bool] = contextvars.ContextVar("replica_reads", default=False)


def enabled() -> bool:
    return REPLICA in settings.DATABASES


def _sticky_key(user_pk) -> str:
    return f"irms:wrote:{user_pk}"


def mark_wrote(user) -> None:
    """`user` just changed something: their reads stay on the primary for a while."""
    if settings.REPLICA_STICKY_SECONDS > 0:
        cache.set(_sticky_key(user.pk), 1, timeout=settings.REPLICA_STICKY_SECONDS)


def wrote_recently(user) -> bool:
    return bool(user.is_authenticated and cache.get(_sticky_key(user.pk)))


@contextlib.contextmanager
def replica_reads(request):
    """Within the block, this request's reads outside transactions go to the replica,
    unless it is not a safe method or its user wrote recently. Without a replica it does
    nothing (not even the cache look-up)."""
    use = enabled() and request.method in SAFE_METHODS and not wrote_recently(request.user)
    if use and getattr(request.user, "is_authenticated", False):
        # Who the user is (their teams decide what they may see) is read from the primary
        # first: a lagging replica must not show a removed member their old team's incidents.
        team_membership(request.user)
    token = _reading_from_replica.set(use)
    try:
        yield
    finally:
        _reading_from_replica.reset(token)


class ReplicaReadsViewMixin:
    """For a Django view: its queries, template rendering included, may read the replica."""

    def dispatch(self, request, *args, **kwargs):
        with replica_reads(request):
            response = super().dispatch(request, *args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        return response


class ReplicaReadsListMixin:
    """For a DRF viewset: its `list` may read the replica. Wrapped around `list` itself,
    after authentication, so a token user's recent writes are known."""

    def list(self, request, *args, **kwargs):
        with replica_reads(request):
            return super().list(request, *args, **kwargs)


class ReplicaRouter:
    """Reads go to the replica only inside `replica_reads` and outside any transaction;
    writes and migrations always go to the primary."""

    def db_for_read(self, model, **hints):
        if _reading_from_replica.get() and not connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return REPLICA
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # The replica holds the primary's rows: objects read from either may be related.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


class ReadYourWritesMiddleware:
    """After a request that may have written (not GET/HEAD/OPTIONS) by a signed-in user,
    whether by session or API token, keep that user's reads on the primary for
    REPLICA_STICKY_SECONDS. DRF sets the token's user on the request it wraps, so it is
    known here once the view has run."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if enabled() and request.method not in SAFE_METHODS:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                mark_wrote(user)
        return response
