"""System checks for a deployment of several processes or servers (`manage.py check`,
`migrate` and `runserver` print them)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

# Caches that live inside one process (or on one machine's disk): each gunicorn worker,
# and each app server, would keep its own throttle counts.
LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": "local memory",
    "django.core.cache.backends.dummy.DummyCache": "no cache at all",
    "django.core.cache.backends.filebased.FileBasedCache": "files on one machine",
}


@register(Tags.caches)
def shared_cache(app_configs, **kwargs):
    """The API throttles count in the default cache: it must be one that every worker
    process and every app server shares (the database cache, the default, or Redis)."""
    backend = settings.CACHES["default"]["BACKEND"]
    if backend not in LOCAL_CACHES or settings.DEBUG:
        return []
    return [
        Warning(
            f"CACHE_URL selects {LOCAL_CACHES[backend]}: each gunicorn worker and each app server "
            "keeps its own API throttle counts, so a client gets the limit once per process.",
            hint="Use the database cache (the default: CACHE_URL unset or dbcache://irms_cache) "
            "or a Redis shared by every server (CACHE_URL=redis://host:6379/0).",
            id="irms.W001",
        )
    ]
