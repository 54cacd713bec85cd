"""The IRMS user: Django's user with a required e-mail that is unique whatever its case."""

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models


def normalize_email(email: str | None) -> str:
    """The one spelling of an address that uniqueness and look-ups use: trimmed, lower case.

    Lower-casing the whole address (not only the domain, as Django does) makes
    `Ann@X.io` and `ann@x.io` the same account on SQLite and MariaDB alike; no real
    mail system delivers those two to different people.
    """
    return (email or "").strip().lower()


class UserManager(DjangoUserManager):
    @classmethod
    def normalize_email(cls, email):
        return normalize_email(email)


class User(AbstractUser):
    email = models.EmailField(
        "e-mail address",
        unique=True,
        error_messages={"unique": "An account with this e-mail address already exists."},
    )

    objects = UserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def clean(self):
        super().clean()
        self.email = normalize_email(self.email)
