"""The IRMS user: Django's user with a required e-mail that is unique whatever its case, and
a username no other account's could be mistaken for."""

import unicodedata
from functools import lru_cache

from confusable_homoglyphs import confusables
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import Contains, EndsWith, Exact, StartsWith
from django.utils import timezone


def normalize_email(email: str | None) -> str:
    """The one spelling of an address that uniqueness and look-ups use: trimmed, lower case, NFC.

    Lower-casing the whole address (not only the domain, as Django does) makes
    `Ann@X.io` and `ann@x.io` the same account on SQLite and MariaDB alike; no real
    mail system delivers those two to different people. NFC makes a decomposed `ä`
    (a + combining diaeresis) and the composed one the same address too.
    """
    return unicodedata.normalize("NFC", (email or "").strip().lower())


def login_key(login: str) -> str:
    """A login (username or e-mail address) as sign-in compares it: NFKC, as Django
    normalises usernames, then trimmed, lower case and NFC. Usernames with the same key
    differ only in case; an address's key is its `normalize_email` spelling."""
    return normalize_email(unicodedata.normalize("NFKC", login))


@lru_cache(maxsize=4096)
def _look_alikes(char: str) -> frozenset[str]:
    """`char` and the characters Unicode's confusables list (TR39) says it may be taken for."""
    found = confusables.is_confusable(char, greedy=True) or []
    return frozenset({char, *(glyph["c"] for entry in found for glyph in entry["homoglyphs"])})


def _chars_look_alike(a: str, b: str) -> bool:
    spellings_a, spellings_b = {a, a.lower()}, {b, b.lower()}
    return bool(spellings_a & spellings_b) or any(y in _look_alikes(x) for x in spellings_a for y in spellings_b)


def usernames_look_alike(first: str, second: str) -> bool:
    """True when two (NFKC) usernames could be mistaken for each other: as long as each
    other, and letter by letter the same in either case or a look-alike — Cyrillic `а`
    for `a`, dotless `ı` for `i`, `I` or `1` for `l`. Look-alikes that change the length
    (`rn` for `m`) are not caught."""
    return len(first) == len(second) and all(map(_chars_look_alike, first, second))


class ExactEmailField(models.EmailField):
    """An e-mail column compared exactly, on every database.

    MariaDB's default collation (utf8mb4_unicode_ci) ignores accents, so there
    `carol@exämple.org` would be "the same" as `carol@example.org` and block its real
    owner; on MySQL/MariaDB the column is therefore utf8mb4_bin (what SQLite does anyway).
    The values are stored normalised (`normalize_email`), so `iexact` is equality with
    the normalised value (indexed), and `icontains`, `istartswith` and `iendswith` match
    the normalised fragment: case-insensitive on both databases, where a LIKE under
    utf8mb4_bin is not. Django's password reset and the admin's searches use them.
    """

    def db_parameters(self, connection):
        parameters = super().db_parameters(connection)
        if connection.vendor == "mysql" and not self.db_collation:
            parameters["collation"] = "utf8mb4_bin"
        return parameters


class _InStoredSpelling:
    """A lookup whose value is put in the stored spelling (`normalize_email`), then
    compared exactly: case-insensitive for the stored, lower-case values."""

    def get_prep_lookup(self):
        prepared = super().get_prep_lookup()
        return normalize_email(prepared) if isinstance(prepared, str) else prepared


@ExactEmailField.register_lookup
class EmailIExact(_InStoredSpelling, Exact):
    lookup_name = "iexact"


@ExactEmailField.register_lookup
class EmailIContains(_InStoredSpelling, Contains):
    lookup_name = "icontains"


@ExactEmailField.register_lookup
class EmailIStartsWith(_InStoredSpelling, StartsWith):
    lookup_name = "istartswith"


@ExactEmailField.register_lookup
class EmailIEndsWith(_InStoredSpelling, EndsWith):
    lookup_name = "iendswith"


class UserManager(DjangoUserManager):
    @classmethod
    def normalize_email(cls, email):
        return normalize_email(email)


class User(AbstractUser):
    email = ExactEmailField(
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
    # Stamped by set_password (null: never changed since this field was added). API tokens
    # created before it are refused (accounts.auth): a changed password ends stolen tokens.
    password_changed_at = models.DateTimeField("password last changed", null=True, blank=True, editable=False)

    objects = UserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def set_password(self, raw_password):
        """Django's, and stamps `password_changed_at`: whichever path changes a password (the
        site, a reset link, the admin, `manage.py changepassword`), the API tokens issued
        before it stop working. The caller saves, as with Django's; a hash upgrade at sign-in
        saves only `password`, so it revokes nothing."""
        super().set_password(raw_password)
        self.password_changed_at = timezone.now()

    def clean(self):
        """Normalises the username (NFKC, Django's) and the e-mail address, and refuses a new
        or changed username that looks like another account's (`usernames_look_alike`)."""
        super().clean()
        self.email = normalize_email(self.email)
        if self.username and self._username_is_new() and self._look_alike_exists():
            message = "This username looks too much like an existing one. Choose another."
            raise ValidationError({"username": ValidationError(message, code="confusable")})

    def _username_is_new(self) -> bool:
        if self._state.adding:
            return True
        stored = type(self)._default_manager.filter(pk=self.pk).values_list("username", flat=True).first()
        return stored != self.username

    def _look_alike_exists(self) -> bool:
        # Look-alikes are as long as each other: the database narrows to those, the
        # comparison runs here (no database can do it).
        others = (
            type(self)
            ._default_manager.exclude(pk=self.pk)
            .alias(length=Length("username"))
            .filter(length=len(self.username))
            .values_list("username", flat=True)
        )
        return any(usernames_look_alike(self.username, other) for other in others.iterator())
