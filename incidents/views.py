"""Incident pages. Each handler: parse, call a service or a queryset, respond.

Reads go through `Incident.objects.visible_to(user)` (an incident the user may not see
is a 404, never a 403); writes through `services.py`, whose `PermissionDenied` becomes
Django's 403 page and whose `ValidationError` is shown on the form.
"""

import csv

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View
from django.views.generic import ListView, TemplateView

from . import metrics, permissions, search, services, sla, uploads
from .filters import IncidentFilter
from .forms import (
    AssignForm,
    IncidentEditForm,
    IncidentForm,
    MetricsScopeForm,
    ResponseForm,
    SeverityForm,
    StatusForm,
    TeamForm,
)
from .models import OPEN_STATUSES, EventKind, Incident, IncidentEvent, Status, Team, team_membership
from .pagination import CappedPaginator
from .replica import ReplicaReadsViewMixin
from .text import csv_cell


def visible_incident(request, incident_id) -> Incident:
    return permissions.get_visible_incident(
        request.user, incident_id, queryset=Incident.objects.select_related("reporter", "team", "category", "assignee")
    )


def attach_errors(form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form, field by field where it can."""
    by_field = error.error_dict if hasattr(error, "error_dict") else {None: error.error_list}
    for field, errors in by_field.items():
        form.add_error(field if field in form.fields else None, errors)


class DashboardView(ReplicaReadsViewMixin, TemplateView):
    template_name = "incidents/dashboard.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        mine = Incident.objects.reported_by(user)
        counts = dict(mine.order_by().values_list("status").annotate(n=Count("pk")))
        context = {
            "status_counts": [(status, counts.get(status, 0)) for status in Status.values],
            "my_incidents": mine.for_list().newest_first()[:10],
            "others_incidents": Incident.objects.reported_by_others(user).for_list().newest_first()[:10],
            "is_responder": permissions.is_responder(user),
        }
        team_ids = team_membership(user).team_ids
        if team_ids:
            # Open incidents of each of the user's teams, by status, with how many of them
            # have an SLA clock breached or at risk: one grouped count.
            now = timezone.now()
            open_counts, sla_counts = {}, {}
            rows = (
                Incident.objects.filter(team_id__in=team_ids, status__in=OPEN_STATUSES)
                .order_by()
                .values_list("team_id", "status")
                .annotate(
                    n=Count("pk"),
                    breached=Count("pk", filter=sla.state_q(sla.State.BREACHED, now)),
                    at_risk=Count("pk", filter=sla.state_q(sla.State.AT_RISK, now)),
                )
            )
            for team_id, status, n, breached, at_risk in rows:
                open_counts.setdefault(team_id, {})[status] = n
                team_sla = sla_counts.setdefault(team_id, {sla.State.BREACHED: 0, sla.State.AT_RISK: 0})
                team_sla[sla.State.BREACHED] += breached
                team_sla[sla.State.AT_RISK] += at_risk
            context["team_counts"] = [
                (
                    team,
                    [(status, open_counts.get(team.pk, {}).get(status, 0)) for status in OPEN_STATUSES],
                    sla_counts.get(team.pk, {sla.State.BREACHED: 0, sla.State.AT_RISK: 0}),
                )
                for team in Team.objects.filter(pk__in=team_ids).order_by("name")
            ]
        if context["is_responder"]:
            assigned = Incident.objects.visible_to(user).filter(assignee=user, status__in=OPEN_STATUSES)
            assigned = assigned.order_by("sla_due_at", "id")
            context["assigned_incidents"] = assigned.for_list()[:10]
        return super().get_context_data(**context, **kwargs)


class IncidentListBaseView(ReplicaReadsViewMixin, ListView):
    """Newest first, 25 a page, filter by status/severity/visibility, search in text."""

    template_name = "incidents/incident_list.html"
    paginate_by = 25
    paginator_class = CappedPaginator
    heading = ""
    intro = ""

    def base_queryset(self):
        raise NotImplementedError

    # ?sort=: "newest" first (the default), "due", the soonest unmet SLA due time first, or
    # (with a search) "relevance", the best matches first.
    SORTS = {
        "newest": ("-created_at", "-id"),
        "due": ("sla_due_at", "id"),
        "relevance": ("-search_rank", "-created_at", "-id"),
    }

    def default_sort(self) -> str:
        return "newest"

    def get_queryset(self):
        self.filterset = IncidentFilter(self.request.GET or None, queryset=self.base_queryset(), request=self.request)
        queryset = (
            self.filterset.qs if self.filterset.is_valid() or not self.filterset.is_bound else Incident.objects.none()
        )
        self.sort = self.request.GET.get("sort")
        searched = self.filterset.search_query
        if self.sort not in self.SORTS or (self.sort == "relevance" and not searched):
            self.sort = self.default_sort()
        if self.sort == "relevance":
            queryset = queryset.annotate(search_rank=search.rank(searched))
        return queryset.for_list().order_by(*self.SORTS[self.sort])

    def get_context_data(self, **kwargs):
        query = self.request.GET.copy()
        query.pop("page", None)
        return super().get_context_data(
            filter=self.filterset,
            heading=self.heading,
            intro=self.intro,
            query=query.urlencode(),
            show_ownership=permissions.is_responder(self.request.user),
            sort=self.sort,
            search_query=self.filterset.search_query,
            **kwargs,
        )


class IncidentQueueView(IncidentListBaseView):
    heading = "All incidents"
    intro = "Every incident you may see: the teams' working queue."

    def base_queryset(self):
        queryset = Incident.objects.visible_to(self.request.user)
        # A team member's queue opens on their teams' open incidents; any filter, or
        # ?all=1, shows everything they may see.
        asked = set(self.request.GET) - {"page", "sort"}
        self.my_teams_view = not asked and bool(team_membership(self.request.user).team_ids)
        if self.my_teams_view:
            return queryset.filter(team_id__in=team_membership(self.request.user).team_ids, status__in=OPEN_STATUSES)
        return queryset

    def default_sort(self) -> str:
        # Most urgent first for those who work a team's incidents.
        return "due" if team_membership(self.request.user).team_ids else "newest"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if self.my_teams_view:
            context["heading"] = "My teams' open incidents"
            context["intro"] = "Open incidents of the teams you belong to."
        context["my_teams_view"] = self.my_teams_view
        return context


class IncidentMineView(IncidentListBaseView):
    heading = "My incidents"
    intro = "Incidents you reported."

    def base_queryset(self):
        return Incident.objects.reported_by(self.request.user)


class IncidentPublicView(IncidentListBaseView):
    heading = "Public incidents"
    intro = "Incidents other people reported that you may see and respond to."

    def base_queryset(self):
        return Incident.objects.reported_by_others(self.request.user)


class IncidentCreateView(View):
    template_name = "incidents/incident_form.html"
    accepts_uploads = uploads.MANY

    def get(self, request):
        return render(request, self.template_name, {"form": IncidentForm()})

    def post(self, request):
        form = IncidentForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                incident = services.report_incident(
                    reporter=request.user,
                    category=form.cleaned_data["category"],
                    title=form.cleaned_data["title"],
                    description=form.cleaned_data["description"],
                    severity=form.cleaned_data["severity"],
                    visibility=form.visibility,
                    files=form.cleaned_data["files"],
                )
            except ValidationError as error:
                attach_errors(form, error)
            else:
                messages.success(request, "Incident reported. The response team has been told.")
                return redirect(incident)
        return render(request, self.template_name, {"form": form}, status=400)


def render_detail(request, incident: Incident, *, response_form=None, status=200):
    user = request.user
    timeline = (
        IncidentEvent.objects.filter(incident=incident)
        .select_related("actor", "response", "attachment__incident")
        .order_by("created_at", "id")
    )
    context = {
        "incident": incident,
        "timeline": timeline,
        "EventKind": EventKind,
        "response_form": response_form or ResponseForm(),
        "can_respond": permissions.can_respond(user, incident),
        "can_edit": permissions.can_edit(user, incident),
        "next_statuses": permissions.allowed_statuses(user, incident),
        "severity_form": SeverityForm(initial={"severity": incident.severity})
        if permissions.can_change_severity(user, incident)
        else None,
        "is_reporter": permissions.is_reporter(user, incident),
        "can_assign": permissions.can_assign(user, incident),
        "can_take": permissions.can_assign(user, incident)
        and incident.assignee_id != user.pk
        and permissions.can_be_assigned(user, incident.team_id),
        "team_members": incident.team.members.filter(is_active=True).order_by("username")
        if permissions.can_assign(user, incident)
        else (),
        "teams": Team.objects.order_by("name") if permissions.can_change_team(user, incident) else (),
    }
    return render(request, "incidents/incident_detail.html", context, status=status)


class IncidentDetailView(View):
    def get(self, request, incident_id):
        return render_detail(request, visible_incident(request, incident_id))


class IncidentEditView(View):
    template_name = "incidents/incident_edit.html"

    def dispatch(self, request, *args, **kwargs):
        self.incident = visible_incident(request, kwargs["incident_id"])
        if not permissions.can_edit(request.user, self.incident):
            raise PermissionDenied("You may not edit this incident.")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, incident_id):
        return render(
            request, self.template_name, {"form": IncidentEditForm(instance=self.incident), "incident": self.incident}
        )

    def post(self, request, incident_id):
        form = IncidentEditForm(request.POST, instance=Incident.objects.get(pk=self.incident.pk))
        if form.is_valid():
            try:
                services.edit_incident(
                    incident=self.incident,
                    actor=request.user,
                    title=form.cleaned_data["title"],
                    description=form.cleaned_data["description"],
                )
            except ValidationError as error:
                attach_errors(form, error)
            else:
                messages.success(request, "Incident updated.")
                return redirect(self.incident)
        return render(request, self.template_name, {"form": form, "incident": self.incident}, status=400)


class IncidentRespondView(View):
    accepts_uploads = uploads.MANY

    def post(self, request, incident_id):
        incident = visible_incident(request, incident_id)
        form = ResponseForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                services.add_response(
                    incident=incident,
                    author=request.user,
                    description=form.cleaned_data["description"],
                    files=form.cleaned_data["files"],
                )
            except ValidationError as error:
                attach_errors(form, error)
            else:
                messages.success(request, "Response added.")
                return redirect(incident)
        # Re-show the page with the text still in the box: nothing typed is lost.
        return render_detail(request, incident, response_form=form, status=400)


class IncidentControlView(View):
    """One control of the incident page (a status button, the severity select): validate
    the single field, apply it through its service, and say what happened."""

    form_class: type
    field: str
    service = None  # services.change_status or services.change_severity
    success_message: str

    def post(self, request, incident_id):
        incident = visible_incident(request, incident_id)
        form = self.form_class(request.POST)
        if not form.is_valid():
            messages.error(request, f"Choose a valid {self.field}.")
            return render_detail(request, incident, status=400)
        value = form.cleaned_data[self.field]
        try:
            type(self).service(incident=incident, actor=request.user, **{self.field: value})
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return render_detail(request, incident, status=400)
        messages.success(request, self.success_message.format(value=value))
        return redirect(incident)


class IncidentStatusView(IncidentControlView):
    form_class = StatusForm
    field = "status"
    service = services.change_status
    success_message = "Status changed to {value}."


class IncidentAssignView(View):
    """ "Assign to me" (assignee = the user's name), assign to a team member, or unassign."""

    def post(self, request, incident_id):
        incident = visible_incident(request, incident_id)
        if not permissions.can_assign(request.user, incident):
            raise PermissionDenied("You may not assign this incident.")
        form = AssignForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose a team member.")
            return render_detail(request, incident, status=400)
        username = form.cleaned_data["assignee"]
        assignee = None
        if username:
            assignee = get_user_model().objects.filter(username=username).first()
            if assignee is None:
                messages.error(request, f"No user is called “{username}”.")
                return render_detail(request, incident, status=400)
        if assignee is not None and not assignee.is_active:
            messages.error(request, f"{assignee.username}'s account is deactivated: assign someone else.")
            return render_detail(request, incident, status=400)
        try:
            services.assign(incident=incident, actor=request.user, assignee=assignee)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return render_detail(request, incident, status=400)
        if assignee is None:
            messages.success(request, "Nobody is assigned now.")
        elif assignee == request.user:
            messages.success(request, "Assigned to you.")
        else:
            messages.success(request, f"Assigned to {assignee.username}.")
        return redirect(incident)


class IncidentTeamView(IncidentControlView):
    form_class = TeamForm
    field = "team"
    service = services.move_to_team
    success_message = "Moved to {value}."

    def post(self, request, incident_id):
        response = super().post(request, incident_id)
        incident = Incident.objects.filter(incident_id=incident_id).first()
        if response.status_code == 302 and incident is not None and not permissions.can_view(request.user, incident):
            # A private incident moved to a team the mover is not in: they may not see it now.
            return redirect("incidents:queue")
        return response


class IncidentSeverityView(IncidentControlView):
    form_class = SeverityForm
    field = "severity"
    service = services.change_severity
    success_message = "Severity set to {value}."


class MetricsMixin:
    """Team members and staff only; the figures for the scope the query asks for."""

    def dispatch(self, request, *args, **kwargs):
        if not permissions.can_view_metrics(request.user):
            raise PermissionDenied("Metrics are for team members and staff.")
        self.form = MetricsScopeForm(request.GET, user=request.user)
        return super().dispatch(request, *args, **kwargs)


class MetricsView(ReplicaReadsViewMixin, MetricsMixin, View):
    template_name = "incidents/metrics.html"

    def get(self, request):
        if not self.form.is_valid():
            return render(request, self.template_name, {"form": self.form}, status=400)
        figures = metrics.measure(request.user, self.form.scope()).as_dict()
        context = {
            "form": self.form,
            "figures": figures,
            "tables": metrics.tables(figures),
            "charts": metrics.chart_data(figures),
            "query": request.GET.urlencode(),
            "time_zone": settings.TIME_ZONE,
            "default_all_teams": not metrics.default_teams(request.user),
        }
        return render(request, self.template_name, context)


class MetricsCsvView(ReplicaReadsViewMixin, MetricsMixin, View):
    def get(self, request):
        if not self.form.is_valid():
            return render(request, MetricsView.template_name, {"form": self.form}, status=400)
        figures = metrics.measure(request.user, self.form.scope()).as_dict()
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="irms-metrics-{figures["from"]}-{figures["to"]}.csv"'
        writer = csv.writer(response)
        for caption, header, rows in metrics.tables(figures):
            writer.writerow([caption])
            writer.writerow(header)
            writer.writerows([csv_cell(cell) for cell in row] for row in rows)
            writer.writerow([])
        return response
