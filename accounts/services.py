"""Account writes with side effects, one transaction each, and the account mails."""

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
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
    queue_email(kind="sign_in", to=user.email, context={"user": user, **_security_notice(request)})


def _security_notice(request) -> dict:
    """What a security notice tells the account owner: when, from which address and browser,
    and where to change (or, signed out, reset) the password."""
    return {
        "when": timezone.now(),
        "ip": client_ip(request) or "unknown",
        "browser": one_line(request.headers.get("User-Agent", "unknown"), 300),
        "password_change_url": absolute(reverse("accounts:password_change")),
        "password_reset_url": absolute(reverse("accounts:password_reset")),
    }


def queue_password_reset(*, to: str, context: dict) -> None:
    """The reset mail always goes (no preference applies), queued like every other."""
    queue_email(kind="password_reset", to=to, context=context)


@transaction.atomic
def change_password(*, user: User, password: str) -> User:
    """Give `user` a new password (the caller's form has validated it) and revoke their API
    token. Their other sessions end as well (Django binds a session to the password hash);
    a caller that keeps the current one calls `update_session_auth_hash`. Paths that skip
    this service (the admin, `manage.py changepassword`) still end the token:
    `User.set_password` stamps the change and `accounts.auth` refuses older tokens."""
    user.set_password(password)
    user.save(update_fields=["password", "password_changed_at"])
    Token.objects.filter(user=user).delete()
    return user


@transaction.atomic
def change_email(*, user: User, email: str) -> User:
    """Set the address now, no questions asked (the admin's and the confirmation link's
    write); a user changing their own goes through `request_email_change`."""
    user.email = email
    user.full_clean(exclude=["password"])
    user.save(update_fields=["email"])
    return user


# --- Changing one's own e-mail address: a signed link to the new address ------------------

EMAIL_CHANGE_SALT = "accounts.email_change"


class EmailChangeRefused(Exception):
    """A confirmation link that cannot be used; the message says why, for its owner."""


EXPIRED = "This link has expired. Ask for a new one from your profile."
INVALID = "This link is not valid: it may have been cut short or altered. Copy the whole link from the e-mail."
OTHER_ACCOUNT = "This link is for another IRMS account. Sign out, then open it again and sign in as that account."
USED = (
    "This link has already been used, or your account's e-mail address or password has changed since it was "
    "sent. Ask for a new one from your profile if you still want to change your address."
)
TAKEN = "Another account now uses that e-mail address, so it cannot become yours. Choose another one on your profile."


def email_change_timeout() -> timedelta:
    """How long a confirmation link works: EMAIL_CHANGE_TIMEOUT seconds (a day unless set)."""
    return timedelta(seconds=settings.EMAIL_CHANGE_TIMEOUT)


def _account_state(user: User) -> str:
    """A fingerprint of what a confirmation link is bound to, as PasswordResetTokenGenerator
    binds its links: the current address (so the link dies once used, or once any other
    change lands) and the password hash (so changing the password cancels the change)."""
    value = f"{user.pk}\0{user.email}\0{user.password}"
    return salted_hmac(EMAIL_CHANGE_SALT, value, algorithm="sha256").hexdigest()[:32]


@transaction.atomic
def request_email_change(*, user: User, email: str, request) -> str:
    """Start moving `user` to the address `email` (validated by ProfileForm: normalised, not
    theirs, nobody else's, and the current password given). Nothing changes yet: the new
    address gets a link that makes the change (`confirm_email_change`), valid for
    `email_change_timeout()` and once; the current address is told, whatever the user's
    preferences, when and from where it was asked. Until the link is used, sign-in and
    password reset keep using the current address. Returns the link's signed token."""
    token = signing.dumps({"u": user.pk, "e": email, "s": _account_state(user)}, salt=EMAIL_CHANGE_SALT)
    timeout = email_change_timeout()
    queue_email(
        kind="email_change_confirm",
        to=email,
        context={
            "user": user,
            "new_email": email,
            "confirm_url": absolute(reverse("accounts:email_change_confirm", args=[token])),
            "valid_hours": int(timeout.total_seconds() // 3600),
        },
    )
    queue_email(
        kind="email_change_requested",
        to=user.email,
        context={"user": user, "new_email": email, **_security_notice(request)},
    )
    return token


def pending_email_change(*, user: User, token: str) -> str:
    """The address a confirmation link's `token` would give `user`, or EmailChangeRefused
    (expired, altered, another account's, used or overtaken, or the address taken since)."""
    try:
        claims = signing.loads(token, salt=EMAIL_CHANGE_SALT, max_age=email_change_timeout())
    except signing.SignatureExpired:
        raise EmailChangeRefused(EXPIRED) from None
    except signing.BadSignature:
        raise EmailChangeRefused(INVALID) from None
    if claims.get("u") != user.pk:
        raise EmailChangeRefused(OTHER_ACCOUNT)
    if not constant_time_compare(claims.get("s", ""), _account_state(user)):
        raise EmailChangeRefused(USED)
    email = claims["e"]
    if User.objects.filter(email=email).exclude(pk=user.pk).exists():
        raise EmailChangeRefused(TAKEN)
    return email


@transaction.atomic
def confirm_email_change(*, user: User, token: str) -> User:
    """Give `user` the address their confirmation link names, if `pending_email_change`
    allows it; the link is then spent (it was bound to the old address). Raises
    EmailChangeRefused and changes nothing otherwise. Two uses at once: the second waits
    for the first's row lock, then finds the address changed."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    email = pending_email_change(user=locked, token=token)
    try:
        with transaction.atomic():
            change_email(user=locked, email=email)
    except (ValidationError, IntegrityError):
        # Taken between the check and the write.
        raise EmailChangeRefused(TAKEN) from None
    user.email = locked.email
    return locked


@transaction.atomic
def issue_api_token(*, user: User, regenerate: bool = False) -> Token:
    """The user's working API token, created if missing. `regenerate` replaces it (the old one
    stops working); so does a password change since it was issued, which made it useless
    (`accounts.auth`): after a password change the caller gets a new token, never the old."""
    tokens = Token.objects.filter(user=user)
    if not regenerate:
        # Compared in the database: an unsaved stamp (a hash upgrade at sign-in) counts for nothing.
        tokens = tokens.filter(created__lt=F("user__password_changed_at"))
    tokens.delete()
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
