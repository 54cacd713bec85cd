"""Account forms: input validation only; rules about a user row live on the model."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import forms as auth_forms

from . import services
from .backends import MAX_LOGIN_LENGTH
from .models import User


class RegistrationForm(auth_forms.UserCreationForm):
    """Username, e-mail, password and its confirmation, checked by Django's validators."""

    email = forms.EmailField(label="E-mail address", max_length=254)

    class Meta:
        model = User
        fields = ("username", "email")
        field_classes = {"username": auth_forms.UsernameField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password2"].label = "Confirm password"
        self.fields["username"].help_text = "Letters, digits and @/./+/-/_ only; 150 characters at most."


class SignInForm(auth_forms.AuthenticationForm):
    """Django's sign-in form; the label says an e-mail address works too."""

    username = auth_forms.UsernameField(
        label="Username or e-mail",
        max_length=MAX_LOGIN_LENGTH,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    # One message for an unknown account and a wrong password: no account enumeration.
    error_messages = {
        **auth_forms.AuthenticationForm.error_messages,
        "invalid_login": "That username or e-mail and password do not match an account. Check them and try again.",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Django sizes the box for a username (150); an e-mail address may be longer.
        self.fields["username"].max_length = MAX_LOGIN_LENGTH
        self.fields["username"].widget.attrs["maxlength"] = MAX_LOGIN_LENGTH


class AdminSignInForm(AdminAuthenticationForm):
    """The admin's sign-in with the same length limit (django-axes records what is typed)."""

    username = auth_forms.UsernameField(max_length=MAX_LOGIN_LENGTH, widget=forms.TextInput(attrs={"autofocus": True}))


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ("email",)
        labels = {"email": "E-mail address"}


class NotificationPreferencesForm(forms.ModelForm):
    class Meta:
        model = User
        fields = (
            "email_on_sign_in",
            "email_on_my_report",
            "email_on_new_incident",
            "email_on_response",
            "email_on_status_change",
        )


class QueuedPasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form, with the mail queued like every other (it always goes: no
    preference applies) so the request never waits on SMTP."""

    def send_mail(
        self, subject_template_name, email_template_name, context, from_email, to_email, html_email_template_name=None
    ):
        services.queue_password_reset(to=to_email, context=context)
