"""Incident pages. Each handler: parse, call a service or a queryset, respond.

Reads go through `Incident.objects.visible_to(user)` (an incident the user may not see
is a 404, never a 403); writes through `services.py`, whose `PermissionDenied` becomes
Django's 403 page and whose `ValidationError` is shown on the form.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.shortcuts import redirect, render
from django.views import View
from django.views.generic import ListView, TemplateView

from . import permissions, services
from .filters import IncidentFilter
from .forms import IncidentEditForm, IncidentForm, ResponseForm, SeverityForm, StatusForm
from .models import EventKind, Incident, IncidentEvent, Status
from .pagination import CappedPaginator


def visible_incident(request, incident_id) -> Incident:
    return permissions.get_visible_incident(
        request.user, incident_id, queryset=Incident.objects.select_related("reporter")
    )


def attach_errors(form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form, field by field where it can."""
    by_field = error.error_dict if hasattr(error, "error_dict") else {None: error.error_list}
    for field, errors in by_field.items():
        form.add_error(field if field in form.fields else None, errors)


class DashboardView(TemplateView):
    template_name = "incidents/dashboard.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        mine = Incident.objects.reported_by(user)
        counts = dict(mine.order_by().values_list("status").annotate(n=Count("pk")))
        return super().get_context_data(
            status_counts=[(status, counts.get(status, 0)) for status in Status.values],
            my_incidents=mine.for_list().newest_first()[:10],
            others_incidents=Incident.objects.reported_by_others(user).for_list().newest_first()[:10],
            is_responder=permissions.is_responder(user),
            **kwargs,
        )


class IncidentListBaseView(ListView):
    """Newest first, 25 a page, filter by status/severity/visibility, search in text."""

    template_name = "incidents/incident_list.html"
    paginate_by = 25
    paginator_class = CappedPaginator
    heading = ""
    intro = ""

    def base_queryset(self):
        raise NotImplementedError

    def get_queryset(self):
        self.filterset = IncidentFilter(self.request.GET or None, queryset=self.base_queryset())
        queryset = (
            self.filterset.qs if self.filterset.is_valid() or not self.filterset.is_bound else Incident.objects.none()
        )
        return queryset.for_list().newest_first()

    def get_context_data(self, **kwargs):
        query = self.request.GET.copy()
        query.pop("page", None)
        return super().get_context_data(
            filter=self.filterset, heading=self.heading, intro=self.intro, query=query.urlencode(), **kwargs
        )


class IncidentQueueView(IncidentListBaseView):
    heading = "All incidents"
    intro = "Every incident you may see: the response team's working queue."

    def base_queryset(self):
        return Incident.objects.visible_to(self.request.user)


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

    def get(self, request):
        return render(request, self.template_name, {"form": IncidentForm()})

    def post(self, request):
        form = IncidentForm(request.POST)
        if form.is_valid():
            try:
                incident = services.report_incident(
                    reporter=request.user,
                    title=form.cleaned_data["title"],
                    description=form.cleaned_data["description"],
                    severity=form.cleaned_data["severity"],
                    visibility=form.visibility,
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
        IncidentEvent.objects.filter(incident=incident).select_related("actor", "response").order_by("created_at", "id")
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
    def post(self, request, incident_id):
        incident = visible_incident(request, incident_id)
        form = ResponseForm(request.POST)
        if form.is_valid():
            try:
                services.add_response(
                    incident=incident, author=request.user, description=form.cleaned_data["description"]
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


class IncidentSeverityView(IncidentControlView):
    form_class = SeverityForm
    field = "severity"
    service = services.change_severity
    success_message = "Severity set to {value}."
