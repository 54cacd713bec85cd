"""/api/: each app's API routes under one namespace (`api:`), with the schema and its docs."""

from django.urls import include, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from accounts.api import AuthTokenView

app_name = "api"

urlpatterns = [
    re_path(r"^auth/token/?$", AuthTokenView.as_view(), name="token"),
    re_path(r"", include("incidents.api.urls")),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    re_path(
        r"^docs/?$",
        SpectacularSwaggerSplitView.as_view(url_name="api:schema", permission_classes=[AllowAny]),
        name="docs",
    ),
]
