"""The admin site: Django's, with IRMS's sign-in form and the account owner's sign-in notice."""

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache

from accounts import services as account_services
from accounts.forms import AdminSignInForm


class IRMSAdminSite(admin.AdminSite):
    site_header = "IRMS administration"
    site_title = "IRMS admin"
    index_title = "Incident Response Management System"
    login_form = AdminSignInForm

    @method_decorator(never_cache)
    @login_not_required
    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        # Django's LoginView answers a successful POST with a redirect, after signing in.
        if request.method == "POST" and response.status_code == 302 and request.user.is_authenticated:
            account_services.record_sign_in(user=request.user, request=request)
        return response
