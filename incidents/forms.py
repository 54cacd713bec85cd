"""Incident forms: they validate input only; the services apply the rules."""

from datetime import timedelta

from django import forms
from django.conf import settings

from . import attachments, metrics
from .models import MAX_TEXT_LENGTH, Category, Incident, Response, Severity, Status, Team, Visibility


class CategoryChoiceField(forms.ModelChoiceField):
    """Radio cards: each category's name with its one-line description."""

    widget = forms.RadioSelect

    def label_from_instance(self, category):
        return f"{category.name} — {category.description}" if category.description else category.name


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one input (Django's documented recipe). The service checks
    them: their number, size and type."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data if item]
        return [super().clean(data, initial)] if data else []

    def widget_attrs(self, widget):
        # No `capture`: a phone offers the camera and the gallery alike.
        return {**super().widget_attrs(widget), "accept": attachments.accept_attribute()}


def files_field(label: str) -> MultipleFileField:
    return MultipleFileField(
        label=label,
        help_text=(
            f"Up to {settings.ATTACHMENT_MAX_FILES} files of {attachments.describe_limit()} each: photos, PDF, "
            "text, CSV or .eml mail. Location and other details are removed from photos."
        ),
    )


class IncidentForm(forms.ModelForm):
    category = CategoryChoiceField(
        queryset=Category.objects.none(),
        empty_label=None,
        label="What kind of incident is it?",
        help_text="It goes straight to the team that handles this kind.",
        error_messages={
            "required": "Choose what kind of incident it is.",
            "invalid_choice": "Choose one of the listed categories.",
        },
    )
    private = forms.BooleanField(
        required=False,
        label="Private",
        help_text="Only you, the team that handles it and staff will see it.",
    )

    class Meta:
        model = Incident
        fields = ("category", "title", "description", "severity")
        widgets = {
            "title": forms.TextInput(attrs={"placeholder": "What happened, in a few words", "autofocus": True}),
            "description": forms.Textarea(attrs={"rows": 5, "placeholder": "Where, when, who is affected"}),
        }
        help_texts = {"severity": "Critical: people or systems at risk right now."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        categories = Category.objects.active()
        self.fields["category"].queryset = categories
        if len(categories) == 1:
            # Nothing to choose between: the one category applies without asking.
            field = self.fields["category"]
            field.required, field.initial, field.widget = False, categories[0].pk, forms.HiddenInput()
        self.fields["description"].max_length = MAX_TEXT_LENGTH
        self.fields["description"].widget.attrs["maxlength"] = MAX_TEXT_LENGTH
        self.fields["files"] = files_field("Photos or files (optional)")

    @property
    def visibility(self) -> str:
        return Visibility.PRIVATE if self.cleaned_data.get("private") else Visibility.PUBLIC


class IncidentEditForm(forms.ModelForm):
    class Meta:
        model = Incident
        fields = ("title", "description")
        widgets = {"description": forms.Textarea(attrs={"rows": 6})}


class ResponseForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["files"] = files_field("Attach files (optional)")

    class Meta:
        model = Response
        fields = ("description",)
        labels = {"description": "Your response"}
        widgets = {"description": forms.Textarea(attrs={"rows": 3, "placeholder": "Add an update or a question"})}


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Status.choices)


class SeverityForm(forms.Form):
    severity = forms.ChoiceField(choices=Severity.choices, label="Severity")


class AssignForm(forms.Form):
    """Who owns the incident: a username, or empty for nobody."""

    assignee = forms.CharField(required=False, max_length=150)


class TeamForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), to_field_name="slug", label="Move to team")


class TeamSlugsField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"})

    def label_from_instance(self, team):
        return team.name


class MetricsScopeForm(forms.Form):
    """What the metrics cover (the page's filter form and `GET /api/metrics`'s query, one
    set of rules): `from`/`to` dates (default the last 90 days, at most two years, `to` not
    before `from`), teams by slug (default: the viewer's teams, or every team for staff), a
    category slug and a severity. Always bound: what is left out takes its default, so the
    page shows what it measured."""

    def __init__(self, data, *, user):
        data = data.copy()
        default_first, default_last = metrics.default_period()
        if not data.get("to"):
            data["to"] = default_last.isoformat()
            if not data.get("from"):
                data["from"] = default_first.isoformat()
        if not [slug for slug in data.getlist("team") if slug]:
            data.setlist("team", [team.slug for team in metrics.default_teams(user)])
        super().__init__(data)
        self.user = user
        date_input = forms.DateInput(attrs={"type": "date", "class": "form-control"}, format="%Y-%m-%d")
        self.fields["from"] = forms.DateField(required=False, label="From", widget=date_input)
        self.fields["to"] = forms.DateField(label="To", widget=date_input)
        self.fields["team"] = TeamSlugsField(
            queryset=Team.objects.order_by("name"), to_field_name="slug", required=False, label="Teams"
        )
        self.fields["category"] = forms.ModelChoiceField(
            queryset=Category.objects.order_by("position", "name"),
            to_field_name="slug",
            required=False,
            empty_label="Any category",
            widget=forms.Select(attrs={"class": "form-select"}),
        )
        self.fields["severity"] = forms.ChoiceField(
            choices=[("", "Any severity"), *Severity.choices],
            required=False,
            widget=forms.Select(attrs={"class": "form-select"}),
        )

    def clean_severity(self):
        return self.cleaned_data["severity"] or None

    def clean(self):
        cleaned = super().clean()
        last, first = cleaned.get("to"), cleaned.get("from")
        for name, day in (("from", first), ("to", last)):
            if day is not None and not metrics.EARLIEST <= day <= metrics.LATEST:
                self.add_error(name, forms.ValidationError("Pick a date from 1970 to 9000.", code="out_of_range"))
        if last is None or self.errors:
            return cleaned
        if first is None:
            first = cleaned["from"] = last - timedelta(days=metrics.DEFAULT_DAYS)
        if last < first:
            self.add_error("to", forms.ValidationError("“To” must not be before “From”.", code="before_from"))
        elif first < metrics.longest_period_start(last):
            self.add_error("from", forms.ValidationError("The period may be two years at most.", code="too_long"))
        return cleaned

    def scope(self) -> "metrics.Scope":
        """The validated scope (call after `is_valid()`)."""
        data = self.cleaned_data
        return metrics.Scope(
            first=data["from"],
            last=data["to"],
            teams=tuple(data["team"]),
            category=data["category"],
            severity=data["severity"],
        )
