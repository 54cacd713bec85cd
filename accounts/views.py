"""Account pages: register, sign in/out, password reset and change, profile."""

from datetime import datetime, timezone

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views import View
from django.views.generic import FormView, UpdateView

from . import services
from .auth import usable_api_token
from .forms import (
    NotificationPreferencesForm,
    PasswordChangeForm,
    ProfileForm,
    QueuedPasswordResetForm,
    RegistrationForm,
    SetPasswordForm,
    SignInForm,
)
from .models import User

# The session's own record of the e-mail change it asked for, for the profile to show.
PENDING_EMAIL_CHANGE = "accounts.pending_email_change"


class InvalidFormIs400Mixin:
    """A form shown again with errors answers 400, like every other refused input."""

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)


@method_decorator(login_not_required, name="dispatch")
class RegisterView(InvalidFormIs400Mixin, FormView):
    template_name = "registration/register.html"
    form_class = RegistrationForm

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return redirect(settings.LOGIN_REDIRECT_URL)
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        user = services.register_user(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
        )
        login(self.request, user, backend="accounts.backends.UsernameOrEmailBackend")
        messages.success(self.request, f"Welcome to IRMS, {user.username}. Your account is ready.")
        return redirect(settings.LOGIN_REDIRECT_URL)


class SignInView(InvalidFormIs400Mixin, auth_views.LoginView):
    form_class = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        services.record_sign_in(user=form.get_user(), request=self.request)
        return response


@method_decorator(login_not_required, name="dispatch")
class SignOutView(auth_views.LogoutView):
    """Sign-out changes state, so it is POST only; a GET shows a confirmation button."""

    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        return render(request, "registration/logout_confirm.html")

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You have been signed out.")
        return response


class PasswordResetView(auth_views.PasswordResetView):
    form_class = QueuedPasswordResetForm
    success_url = reverse_lazy("accounts:password_reset_done")

    @property
    def extra_email_context(self):
        # Links come from SITE_URL, never from the (client-controlled) Host header.
        return {"site_url": settings.SITE_URL}


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = SetPasswordForm
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordChangeView(InvalidFormIs400Mixin, auth_views.PasswordChangeView):
    form_class = PasswordChangeForm
    success_url = reverse_lazy("accounts:profile")

    def form_valid(self, form):
        messages.success(
            self.request,
            "Your password has been changed. Your other sessions are signed out and your API token no longer works.",
        )
        return super().form_valid(form)


class ProfileView(InvalidFormIs400Mixin, UpdateView):
    template_name = "accounts/profile.html"
    form_class = ProfileForm
    success_url = reverse_lazy("accounts:profile")

    def get_object(self, queryset=None):
        # A copy: the form writes the address it is given onto its instance, and the
        # signed-in user keeps the current one until the change is confirmed.
        return User.objects.get(pk=self.request.user.pk)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            api_token=usable_api_token(self.request.user),
            pending_email_change=self.pending_email_change(),
            preferences_form=NotificationPreferencesForm(instance=self.request.user),
            **kwargs,
        )

    def pending_email_change(self) -> dict | None:
        """The change this session asked for, while its link may still work."""
        pending = self.request.session.get(PENDING_EMAIL_CHANGE)
        if not pending:
            return None
        expires = datetime.fromtimestamp(pending["expires"], tz=timezone.utc)
        if expires <= datetime.now(tz=timezone.utc) or pending["email"] == self.request.user.email:
            del self.request.session[PENDING_EMAIL_CHANGE]
            return None
        return {"email": pending["email"], "expires": expires}

    def form_valid(self, form):
        email = form.instance.email  # as the model stores it (normalised by User.clean)
        services.request_email_change(user=self.request.user, email=email, request=self.request)
        expires = datetime.now(tz=timezone.utc) + services.email_change_timeout()
        self.request.session[PENDING_EMAIL_CHANGE] = {"email": email, "expires": expires.timestamp()}
        messages.info(
            self.request,
            f"We have sent a confirmation link to {email}. Your address changes when you open it; "
            f"until then, {self.request.user.email} stays your address.",
        )
        return redirect(self.success_url)


class EmailChangeConfirmView(View):
    """The link in the confirmation mail. GET shows what it would do (a mail scanner that
    opens links changes nothing), POST does it. Signed out, the visitor signs in first and
    comes back here (LoginRequiredMiddleware's `next`). A link that cannot be used (expired,
    used, altered, another account's, its address taken since) gets a page saying why,
    with 400, and nothing changes."""

    http_method_names = ["get", "post", "options"]
    template_name = "accounts/email_change_confirm.html"

    def get(self, request, token):
        try:
            email = services.pending_email_change(user=request.user, token=token)
        except services.EmailChangeRefused as refusal:
            return self.refused(refusal)
        return render(request, self.template_name, {"new_email": email})

    def post(self, request, token):
        try:
            user = services.confirm_email_change(user=request.user, token=token)
        except services.EmailChangeRefused as refusal:
            return self.refused(refusal)
        request.session.pop(PENDING_EMAIL_CHANGE, None)
        messages.success(request, f"Your e-mail address is now {user.email}.")
        return redirect("accounts:profile")

    def refused(self, refusal):
        return render(self.request, self.template_name, {"refusal": str(refusal)}, status=400)


class ApiTokenView(View):
    """Create, regenerate or revoke the user's API token (POST from the profile page)."""

    http_method_names = ["post"]

    def post(self, request):
        action = request.POST.get("action")
        if action in ("create", "regenerate"):
            services.issue_api_token(user=request.user, regenerate=action == "regenerate")
            messages.success(
                request, "Your new API token is shown below." if action == "regenerate" else "API token created."
            )
        elif action == "revoke":
            services.revoke_api_token(user=request.user)
            messages.info(request, "API token revoked: it no longer works.")
        else:
            return HttpResponseBadRequest("Unknown action.")
        return redirect("accounts:profile")


class NotificationPreferencesView(View):
    http_method_names = ["post"]

    def post(self, request):
        form = NotificationPreferencesForm(request.POST, instance=User.objects.get(pk=request.user.pk))
        if not form.is_valid():
            return HttpResponseBadRequest("Invalid preferences.")
        services.update_notification_preferences(user=request.user, **form.cleaned_data)
        messages.success(request, "Your e-mail preferences have been saved.")
        return redirect("accounts:profile")
