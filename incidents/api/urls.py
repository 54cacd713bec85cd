"""The incident API's routes (mounted under /api/ by irms_site/api_urls.py). Every path
answers with and without a trailing slash, as the original clients call them without one."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import views


class OptionalSlashRouter(SimpleRouter):
    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("incidents", views.IncidentViewSet, basename="incident")
router.register("publicIncidents", views.PublicIncidentViewSet, basename="public-incident")
router.register(r"responses/(?P<incident_id>[^/]+)", views.ResponseViewSet, basename="response")
router.register("categories", views.CategoryViewSet, basename="category")
router.register("teams", views.TeamViewSet, basename="team")
router.register(r"incidents/(?P<incident_id>[^/]+)/attachments", views.AttachmentViewSet, basename="attachment")

urlpatterns = router.urls + [
    re_path(r"^metrics/?$", views.MetricsView.as_view(), name="metrics"),
    re_path(
        r"^incidents/(?P<incident_id>[^/]+)/attachments/(?P<pk>[^/]+)/file/?$",
        views.AttachmentFileView.as_view(),
        name="attachment-file",
    ),
    re_path(
        r"^incidents/(?P<incident_id>[^/]+)/attachments/(?P<pk>[^/]+)/thumbnail/?$",
        views.AttachmentThumbnailView.as_view(),
        name="attachment-thumbnail",
    ),
]
