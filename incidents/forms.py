"""Incident forms: they validate input only; the services apply the rules."""

from django import forms
from django.conf import settings

from . import attachments
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
