"""Account writes with side effects: one transaction each."""

from django.db import transaction
from rest_framework.authtoken.models import Token

from incidents import notifications

from .models import User


@transaction.atomic
def register_user(*, username: str, email: str, password: str) -> User:
    """Create an active account. The caller has validated the input (RegistrationForm)."""
    user = User.objects.create_user(username=username, email=email, password=password)
    notifications.welcome(user)
    return user


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
