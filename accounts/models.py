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

    # Which e-mails the user wants (password reset mail always goes).
    email_on_sign_in = models.BooleanField("a notice when someone signs in to my account", default=True)
    email_on_my_report = models.BooleanField("a confirmation when I report an incident", default=True)
    email_on_new_incident = models.BooleanField("an alert for every new incident (responders)", default=True)
    email_on_response = models.BooleanField("new responses on incidents I reported or responded to", default=True)
    email_on_status_change = models.BooleanField("status changes on incidents I reported or responded to", default=True)

    objects = UserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def clean(self):
        super().clean()
        self.email = normalize_email(self.email)
