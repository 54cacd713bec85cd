"""Site-level pages that belong to no app: the landing page and the health check."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
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


def csrf_failure(request, reason=""):
    """A refused form gets the site's own page (Django's default is a developer page)."""
    return render(request, "403_csrf.html", status=403)
