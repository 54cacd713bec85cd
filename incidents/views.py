"""Incident pages."""

from django.views.generic import TemplateView


class DashboardView(TemplateView):
    template_name = "incidents/dashboard.html"
