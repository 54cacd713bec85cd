"""Sign-in lockout (django-axes): whose attempts are counted, and what a locked-out
sign-in is answered. The settings point django-axes here (`AXES_USERNAME_CALLABLE`,
`AXES_HANDLER`, `AXES_LOCKOUT_CALLABLE`); the sign-in notice uses `client_ip` so that a
notice and a lockout name the same address."""

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_ip_address, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import JsonResponse
from django.shortcuts import render

from .backends import find_account
from .models import login_key


def client_ip(request) -> str | None:
    """The client's address as django-axes sees it (honours NUM_PROXIES)."""
    return get_client_ip_address(request)


def axes_username(request, credentials) -> str:
    """Whose failures django-axes counts: the account the login names, however it was
    spelt (username, e-mail address, any case the backend accepts: `find_account`), as
    the `login_key` of its username; a login that names no account, as its own
    `login_key`. So `ann`, `Ann` and `ann@example.org` share one count, and an unknown
    login is counted just as a known one is. Cut to axes' 255-character column."""
    login = (credentials or {}).get(settings.AXES_USERNAME_FORM_FIELD)
    if login is None:
        login = request.POST.get(settings.AXES_USERNAME_FORM_FIELD, "")
    login = str(login)
    account = find_account(login)
    return login_key(account.username if account else login[:255])[:255]


class AccountAndAddressHandler(AxesDatabaseHandler):
    """django-axes' database handler with a second limit, against password spraying:
    besides AXES_FAILURE_LIMIT failures for one account from one address
    (AXES_LOCKOUT_PARAMETERS), AXES_IP_FAILURE_LIMIT failures from one address, whatever
    accounts they named, lock that address out until the cool-off has passed.

    The address count is kept out of AXES_LOCKOUT_PARAMETERS on purpose: axes resets every
    parameter's attempts on a successful sign-in, so an attacker with an account of their
    own would wipe the address's count (and every other account's) by signing in to it.
    A success here clears only that account's failures from that address.
    """

    def get_failures(self, request, credentials=None) -> int:
        failures = super().get_failures(request, credentials)
        if self.address_failures(request) >= settings.AXES_IP_FAILURE_LIMIT:
            # axes compares this with AXES_FAILURE_LIMIT: count the address's lockout as one.
            return max(failures, get_failure_limit(request, credentials))
        return failures

    @staticmethod
    def address_failures(request) -> int:
        """Failures from the request's address within the cool-off, over all accounts."""
        attempts = AccessAttempt.objects.filter(
            ip_address=request.axes_ip_address, attempt_time__gte=get_cool_off_threshold(request)
        )
        return attempts.aggregate(failures=Sum("failures_since_start"))["failures"] or 0


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' answer to a locked-out sign-in: the same for existing and unknown
    accounts, with the wait in Retry-After; JSON under /api/, the site's page elsewhere."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    minutes = max(1, seconds // 60)
    message = f"Too many failed sign-in attempts. Try again in {minutes} minutes, or reset your password."
    request_id = getattr(request, "id", "-")
    if request.path.startswith("/api/"):
        response = JsonResponse({"error": message, "request_id": request_id}, status=429)
    else:
        context = {"message": message, "status": 429, "request_id": request_id}
        response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response
