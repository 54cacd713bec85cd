"""Account forms: input validation only; rules about a user row live on the model."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate
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
    """A new e-mail address, with the current password: a signed-in session alone (perhaps a
    stolen one) cannot send the account's mail elsewhere. The password is checked through
    `authenticate`, so a wrong one counts toward the sign-in lockout (django-axes) like a
    failed sign-in, and a locked-out account is refused here too."""

    current_password = forms.CharField(
        label="Current password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Needed to change your e-mail address.",
    )

    class Meta:
        model = User
        fields = ("email",)
        labels = {"email": "E-mail address"}

    def __init__(self, *args, request, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_email(self):
        email = self.cleaned_data["email"]
        if User.objects.normalize_email(email) == self.instance.email:
            raise forms.ValidationError("This is already your e-mail address.", code="unchanged")
        return email

    def clean_current_password(self):
        password = self.cleaned_data["current_password"]
        user = authenticate(self.request, username=self.instance.get_username(), password=password)
        if user is None or user.pk != self.instance.pk:
            raise forms.ValidationError("That is not your current password.", code="password_incorrect")
        return password


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


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's form, saved by `services.change_password` (which also revokes the API token)."""

    def save(self, commit=True):
        return services.change_password(user=self.user, password=self.cleaned_data["new_password1"])


class SetPasswordForm(auth_forms.SetPasswordForm):
    """Django's form for a reset link, saved by `services.change_password` (which also
    revokes the API token)."""

    def save(self, commit=True):
        return services.change_password(user=self.user, password=self.cleaned_data["new_password1"])
