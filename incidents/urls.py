from django.contrib.auth.decorators import login_not_required
from django.urls import include, path, reverse_lazy
from django.views.generic import RedirectView

from . import views

app_name = "incidents"

incident_patterns = [
    path("", views.IncidentQueueView.as_view(), name="queue"),
    path("new/", views.IncidentCreateView.as_view(), name="new"),
    path("mine/", views.IncidentMineView.as_view(), name="mine"),
    path("public/", views.IncidentPublicView.as_view(), name="public"),
    path("<uuid:incident_id>/", views.IncidentDetailView.as_view(), name="detail"),
    path("<uuid:incident_id>/edit/", views.IncidentEditView.as_view(), name="edit"),
    path("<uuid:incident_id>/respond/", views.IncidentRespondView.as_view(), name="respond"),
    path("<uuid:incident_id>/status/", views.IncidentStatusView.as_view(), name="status"),
    path("<uuid:incident_id>/severity/", views.IncidentSeverityView.as_view(), name="severity"),
    path("<uuid:incident_id>/assign/", views.IncidentAssignView.as_view(), name="assign"),
    path("<uuid:incident_id>/team/", views.IncidentTeamView.as_view(), name="team"),
]


def moved(name: str):
    """An original IRMS path: anyone is redirected (signing in, if needed, happens there)."""
    return login_not_required(RedirectView.as_view(url=reverse_lazy(name), permanent=True, query_string=True))


urlpatterns = [
    path("incidents/", include(incident_patterns)),
    path("metrics/", views.MetricsView.as_view(), name="metrics"),
    path("metrics/export.csv", views.MetricsCsvView.as_view(), name="metrics_csv"),
    # The original app's paths.
    path("incident-report", moved("incidents:new")),
    path("public_incidents", moved("incidents:public")),
    path("response", moved("incidents:mine")),
]
