"""Top-level URLs. The original Flask paths redirect to their canonical pages."""

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path, reverse_lazy
from django.utils.functional import lazy
from django.views.generic import RedirectView

from incidents.views import DashboardView

from . import views


def moved(pattern_name: str):
    """A GET of an original IRMS path lands on its canonical page (query string kept)."""
    return login_not_required(RedirectView.as_view(url=reverse_lazy(pattern_name), permanent=True, query_string=True))


urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    # Browsers ask for /favicon.ico on pages that name none (the admin's).
    path(
        "favicon.ico",
        login_not_required(RedirectView.as_view(url=lazy(static, str)("img/favicon.svg"), permanent=True)),
    ),
    path("accounts/", include("accounts.urls")),
    path("dashboard/", DashboardView.as_view(), name="dashboard"),
    path("", include("incidents.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("irms_site.api_urls")),
    # The original app's paths.
    path("register", moved("accounts:register")),
    path("login", moved("accounts:login")),
    path("logout", moved("accounts:logout")),
    path("forgot_password", moved("accounts:password_reset")),
    path("reset_password/<str:token>", moved("accounts:password_reset")),
    path("dashboard", moved("dashboard")),
]


handler400 = "irms_site.security.bad_request"
handler403 = "irms_site.security.permission_denied"
handler404 = "irms_site.security.page_not_found"
handler500 = "irms_site.security.server_error"
