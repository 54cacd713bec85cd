"""API routes. Every path answers with and without a trailing slash, as the original
clients call them without one."""

from django.urls import re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.routers import SimpleRouter

from . import views

app_name = "api"


class OptionalSlashRouter(SimpleRouter):
    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("incidents", views.IncidentViewSet, basename="incident")
router.register("publicIncidents", views.PublicIncidentViewSet, basename="public-incident")
router.register(r"responses/(?P<incident_id>[^/]+)", views.ResponseViewSet, basename="response")

urlpatterns = [
    *router.urls,
    re_path(r"^auth/token/?$", views.AuthTokenView.as_view(), name="token"),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    re_path(
        r"^docs/?$",
        SpectacularSwaggerSplitView.as_view(url_name="api:schema", permission_classes=[AllowAny]),
        name="docs",
    ),
]
