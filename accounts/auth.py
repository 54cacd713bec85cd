"""API token authentication bound to the password: a token issued before the account's
last password change (`User.password_changed_at`) is refused, however the password was
changed, so a stolen token does not survive its owner's fix."""

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


def token_outlived_password(token: Token) -> bool:
    """True when the password was changed after `token` was issued (never changed: False)."""
    changed_at = token.user.password_changed_at
    return changed_at is not None and token.created < changed_at


def usable_api_token(user) -> Token | None:
    """The user's API token, or None if they have none or it predates a password change."""
    token = Token.objects.select_related("user").filter(user=user).first()
    return None if token is None or token_outlived_password(token) else token


class PasswordBoundTokenAuthentication(TokenAuthentication):
    """DRF's `Authorization: Token <key>`, refusing a token older than the password. The
    answer is DRF's own for an unknown key: a stale token tells its holder nothing more."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_outlived_password(token):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        return user, token
