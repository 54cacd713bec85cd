"""Incident forms: they validate input only; the services apply the rules."""

from django import forms

from .models import MAX_TEXT_LENGTH, Incident, Response, Severity, Status, Visibility


class IncidentForm(forms.ModelForm):
    private = forms.BooleanField(
        required=False,
        label="Private",
        help_text="Only you, the response team and staff will see it.",
    )

    class Meta:
        model = Incident
        fields = ("title", "description", "severity")
        widgets = {
            "title": forms.TextInput(attrs={"placeholder": "What happened, in a few words", "autofocus": True}),
            "description": forms.Textarea(attrs={"rows": 5, "placeholder": "Where, when, who is affected"}),
        }
        help_texts = {"severity": "Critical: people or systems at risk right now."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["description"].max_length = MAX_TEXT_LENGTH
        self.fields["description"].widget.attrs["maxlength"] = MAX_TEXT_LENGTH

    @property
    def visibility(self) -> str:
        return Visibility.PRIVATE if self.cleaned_data.get("private") else Visibility.PUBLIC


class IncidentEditForm(forms.ModelForm):
    class Meta:
        model = Incident
        fields = ("title", "description")
        widgets = {"description": forms.Textarea(attrs={"rows": 6})}


class ResponseForm(forms.ModelForm):
    class Meta:
        model = Response
        fields = ("description",)
        labels = {"description": "Your response"}
        widgets = {"description": forms.Textarea(attrs={"rows": 3, "placeholder": "Add an update or a question"})}


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Status.choices)


class SeverityForm(forms.Form):
    severity = forms.ChoiceField(choices=Severity.choices, label="Severity")
