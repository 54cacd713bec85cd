"""Account writes with side effects, one transaction each, and the account mails."""

from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from notifications.mail import absolute, one_line
from notifications.outbox import queue_email

from .lockout import client_ip
from .models import User


@transaction.atomic
def register_user(*, username: str, email: str, password: str) -> User:
    """Create an active account. The caller has validated the input (RegistrationForm)."""
    user = User.objects.create_user(username=username, email=email, password=password)
    queue_email(kind="welcome", to=user.email, context={"user": user, "dashboard_url": absolute(reverse("dashboard"))})
    return user


def record_sign_in(*, user: User, request) -> None:
    """A successful sign-in, whichever door it came through (the site, the admin, the API
    token endpoint): the one place the account owner's sign-in notice is queued."""
    if not user.email_on_sign_in:
        return
    queue_email(
        kind="sign_in",
        to=user.email,
        context={
            "user": user,
            "when": timezone.now(),
            "ip": client_ip(request) or "unknown",
            "browser": one_line(request.headers.get("User-Agent", "unknown"), 300),
            "password_change_url": absolute(reverse("accounts:password_change")),
            "password_reset_url": absolute(reverse("accounts:password_reset")),
        },
    )


def queue_password_reset(*, to: str, context: dict) -> None:
    """The reset mail always goes (no preference applies), queued like every other."""
    queue_email(kind="password_reset", to=to, context=context)


@transaction.atomic
def change_email(*, user: User, email: str) -> User:
    user.email = email
    user.full_clean(exclude=["password"])
    user.save(update_fields=["email"])
    return user


@transaction.atomic
def issue_api_token(*, user: User, regenerate: bool = False) -> Token:
    """The user's API token, created if missing; `regenerate` replaces it (the old one stops working)."""
    if regenerate:
        Token.objects.filter(user=user).delete()
    token, _ = Token.objects.get_or_create(user=user)
    return token


@transaction.atomic
def revoke_api_token(*, user: User) -> None:
    Token.objects.filter(user=user).delete()


@transaction.atomic
def update_notification_preferences(*, user: User, **preferences: bool) -> User:
    for name, value in preferences.items():
        setattr(user, name, value)
    user.save(update_fields=list(preferences))
    return user
