"""Account writes with side effects: one transaction each."""

from django.db import transaction

from .models import User


@transaction.atomic
def register_user(*, username: str, email: str, password: str) -> User:
    """Create an active account. The caller has validated the input (RegistrationForm)."""
    user = User.objects.create_user(username=username, email=email, password=password)
    return user


@transaction.atomic
def change_email(*, user: User, email: str) -> User:
    user.email = email
    user.full_clean(exclude=["password"])
    user.save(update_fields=["email"])
    return user
