"""Site-level pages that belong to no app: the landing page and the health checks."""

import logging
import secrets

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView


@method_decorator(login_not_required, name="dispatch")
class HomeView(TemplateView):
    template_name = "home.html"


@never_cache
@login_not_required
def healthz(request):
    """Liveness for load balancers (and the benchmark's framework ceiling): no database."""
    return HttpResponse("ok", content_type="text/plain")


logger = logging.getLogger(__name__)


@never_cache
@login_not_required
def readyz(request):
    """Readiness, for the balancer and monitoring: 200 when every database (the primary, and
    the replica if one is configured) answers a query and the shared cache stores and
    returns a value; 503 naming what failed otherwise. Takes at most the databases'
    connect timeout; the reasons go to the log, not to the caller."""
    checks = {}
    for alias in connections:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
            checks[f"database:{alias}"] = "ok"
        except Exception:  # any driver's error: the check's whole point is not to raise
            logger.exception("readyz: database %s is not answering", alias)
            checks[f"database:{alias}"] = "failed"
            # A broken connection must not be handed to the next request as it is.
            connections[alias].close_if_unusable_or_obsolete()
    key, value = f"irms:readyz:{secrets.token_hex(8)}", secrets.token_hex(8)
    try:
        cache.set(key, value, timeout=10)
        checks["cache"] = "ok" if cache.get(key) == value else "failed"
        cache.delete(key)
    except Exception:
        logger.exception("readyz: the cache is not answering")
        checks["cache"] = "failed"
    ready = all(result == "ok" for result in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)


def csrf_failure(request, reason=""):
    """A refused form gets the site's own page (Django's default is a developer page)."""
    return render(request, "403_csrf.html", status=403)
