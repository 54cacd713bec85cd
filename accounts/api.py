"""The API's sign-in: `POST /api/auth/token` exchanges a username (or e-mail) and
password for the account's token (path, shapes and behaviour as the original IRMS)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authtoken import serializers as authtoken_serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework.parsers import FormParser
from rest_framework.response import Response
from rest_framework.settings import api_settings

from . import services
from .lockout import lockout_response
from .throttling import AnonRateThrottle, ScopedRateThrottle

# The error shapes are the API's shared components (declared by the incident API's views);
# referring to them by name keeps one definition in the schema.
ERROR = {"$ref": "#/components/schemas/Error"}
VALIDATION_ERROR = {"$ref": "#/components/schemas/ValidationError"}


class LoginField(serializers.CharField):
    """A username or e-mail address: it must arrive as a JSON string (123 is a mistake)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class AuthTokenSerializer(authtoken_serializers.AuthTokenSerializer):
    """A username or e-mail address (at most 254 characters) and its password."""

    username = LoginField(label="Username or e-mail", max_length=254, write_only=True)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True)


@extend_schema(
    summary="Get your API token",
    description="Exchange a username (or e-mail) and password for the token to send as `Authorization: Token <key>`.",
    request=AuthTokenSerializer,
    responses={
        200: TokenSerializer,
        400: OpenApiResponse(VALIDATION_ERROR, description="A field is missing or empty."),
        401: OpenApiResponse(ERROR, description="The username (or e-mail) and password match no account."),
        429: OpenApiResponse(ERROR, description="Throttled, or locked out after repeated failures."),
    },
    auth=[],
)
class AuthTokenView(ObtainAuthToken):
    serializer_class = AuthTokenSerializer
    # A much stricter rate (the "auth" scope) than ordinary API use: it guards passwords.
    throttle_classes = [ScopedRateThrottle, AnonRateThrottle]
    throttle_scope = "auth"
    parser_classes = [*api_settings.DEFAULT_PARSER_CLASSES, FormParser]

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            # django-axes marks the request it saw (DRF's) when this username+address is locked out.
            if getattr(request, "axes_locked_out", False):
                return lockout_response(request._request)
            codes = serializer.errors.get("non_field_errors", [])
            if set(serializer.errors) == {"non_field_errors"} and all(
                getattr(error, "code", None) == "authorization" for error in codes
            ):
                # Both fields given, but they match no account: the same answer for an
                # unknown user and a wrong password.
                raise AuthenticationFailed("Unable to sign in with the username (or e-mail) and password given.")
            raise ValidationError(serializer.errors)
        user = serializer.validated_data["user"]
        token = services.issue_api_token(user=user)
        services.record_sign_in(user=user, request=request)
        return Response({"token": token.key})
