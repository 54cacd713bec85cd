"""The REST API: the original IRMS paths and shapes, on DRF viewsets.

Reads go through `Incident.objects.visible_to(user)` (not visible: 404), writes through
`services.py` (not allowed: 403; bad input or workflow: 400), errors through
`errors.exception_handler` (always a JSON object with an `error` string).
"""

import uuid

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken import serializers as authtoken_serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import AuthenticationFailed, NotFound, ValidationError
from rest_framework.parsers import FormParser
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle

from irms_site.security import lockout_response

from .. import notifications, services
from ..filters import IncidentFilter
from ..models import Incident
from ..models import Response as IncidentResponse
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import KEY_PATTERN as IDEMPOTENCY_KEY_PATTERN
from .idempotency import idempotent
from .pagination import ResponsesPagination
from .parsers import SafeJSONParser
from .serializers import (
    IncidentCreateSerializer,
    IncidentSerializer,
    IncidentUpdateSerializer,
    ResponseCreateSerializer,
    ResponseSerializer,
    StrictCharField,
    TokenSerializer,
)

ErrorSerializer = inline_serializer(
    name="Error",
    fields={"error": serializers.CharField(help_text="What went wrong, for a person to read.")},
)
ValidationErrorSerializer = inline_serializer(
    name="ValidationError",
    fields={
        "error": serializers.CharField(),
        "field_name": serializers.ListField(
            child=serializers.CharField(), required=False, help_text="Messages for each invalid field, by its name."
        ),
    },
)
ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="Not signed in: no or a bad token or session."),
    429: OpenApiResponse(ErrorSerializer, description="Throttled; see the Retry-After header."),
}
NOT_FOUND = {404: OpenApiResponse(ErrorSerializer, description="No such incident, or not visible to you.")}
NO_SUCH_PAGE = {404: OpenApiResponse(ErrorSerializer, description="Unknown cursor: follow the Link headers.")}
CONFLICT = {
    409: OpenApiResponse(
        ValidationErrorSerializer, description="Not possible in the incident's current state (workflow, closed)."
    )
}
BAD_INPUT = {
    400: OpenApiResponse(ValidationErrorSerializer, description="Invalid input, or a move the workflow refuses.")
}
FORBIDDEN = {403: OpenApiResponse(ErrorSerializer, description="Visible to you, but you may not do this.")}
UNSUPPORTED = {415: OpenApiResponse(ErrorSerializer, description="The body is not JSON.")}
KEY_REUSED = {
    422: OpenApiResponse(ErrorSerializer, description="The Idempotency-Key was used before for a different request.")
}
LINK_HEADER = OpenApiParameter(
    "Link",
    type=str,
    location=OpenApiParameter.HEADER,
    response=True,
    description='RFC 8288 pagination links: `<url>; rel="next"`, `<url>; rel="prev"`.',
)
IDEMPOTENCY_PARAM = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    type={"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
    location=OpenApiParameter.HEADER,
    required=False,
    description="A retry with the same key (same user, within 24 hours) returns the first result.",
)
INCIDENT_ID = OpenApiParameter("incident_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


def parse_incident_id(value) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound("No incident has that ID.") from None


class VisibleIncidentMixin:
    """Lookup by the public `incident_id` among what the caller may see."""

    serializer_class = IncidentSerializer
    lookup_field = "incident_id"
    # Anything up to the next slash reaches the view, which answers 404 for a non-UUID.
    lookup_value_regex = "[^/]+"
    filterset_class = IncidentFilter

    def get_object(self):
        incident_id = parse_incident_id(self.kwargs["incident_id"])
        incident = Incident.objects.visible_to(self.request.user).for_list().filter(incident_id=incident_id).first()
        if incident is None:
            raise NotFound("No incident has that ID.")
        return incident


@extend_schema_view(
    list=extend_schema(
        summary="Your own incidents",
        description="Incidents the caller reported, newest first: a bare array, paginated by `Link` headers.",
        parameters=[LINK_HEADER],
        responses={200: IncidentSerializer(many=True), **BAD_INPUT, **NO_SUCH_PAGE, **ERRORS},
    ),
    retrieve=extend_schema(
        summary="One incident",
        parameters=[INCIDENT_ID],
        responses={200: IncidentSerializer, **NOT_FOUND, **ERRORS},
    ),
)
class IncidentViewSet(VisibleIncidentMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Incident.objects.none()
        return Incident.objects.reported_by(self.request.user).for_list()

    @extend_schema(
        summary="Report an incident",
        request=IncidentCreateSerializer,
        parameters=[IDEMPOTENCY_PARAM],
        responses={201: IncidentSerializer, **BAD_INPUT, **UNSUPPORTED, **KEY_REUSED, **ERRORS},
    )
    def create(self, request, *args, **kwargs):
        def perform():
            serializer = IncidentCreateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            incident = services.report_incident(reporter=request.user, **serializer.validated_data)
            incident = Incident.objects.for_list().get(pk=incident.pk)
            return Response(self.get_serializer(incident).data, status=status.HTTP_201_CREATED)

        return idempotent(request, perform)

    @extend_schema(
        summary="Change an incident",
        description=(
            "Any of: `title`, `description` (the reporter while Reported, or staff); `visibility` "
            "(staff); `status` (along the workflow, as your role allows); `severity` (responders and "
            "staff). All changes apply together or not at all; an empty body changes nothing."
        ),
        parameters=[INCIDENT_ID],
        request=IncidentUpdateSerializer,
        responses={200: IncidentSerializer, **BAD_INPUT, **FORBIDDEN, **NOT_FOUND, **CONFLICT, **UNSUPPORTED, **ERRORS},
    )
    def partial_update(self, request, *args, **kwargs):
        incident = self.get_object()
        serializer = IncidentUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = serializer.validated_data
        with transaction.atomic():
            edits = {name: changes[name] for name in ("title", "description", "visibility") if name in changes}
            if edits:
                services.edit_incident(incident=incident, actor=request.user, **edits)
            if "severity" in changes:
                services.change_severity(incident=incident, actor=request.user, severity=changes["severity"])
            if "status" in changes and changes["status"] != incident.status:
                services.change_status(incident=incident, actor=request.user, status=changes["status"])
        return Response(self.get_serializer(self.get_object()).data)


@extend_schema_view(
    list=extend_schema(
        summary="Incidents reported by others",
        description=(
            "Incidents the caller may see that somebody else reported: public ones, and for responders "
            "and staff private ones too. A bare array, paginated by `Link` headers."
        ),
        parameters=[LINK_HEADER],
        responses={200: IncidentSerializer(many=True), **BAD_INPUT, **NO_SUCH_PAGE, **ERRORS},
    ),
    retrieve=extend_schema(
        summary="One incident reported by somebody else",
        parameters=[INCIDENT_ID],
        responses={200: IncidentSerializer, **NOT_FOUND, **ERRORS},
    ),
)
class PublicIncidentViewSet(VisibleIncidentMixin, viewsets.ReadOnlyModelViewSet):
    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Incident.objects.none()
        return Incident.objects.reported_by_others(self.request.user).for_list()

    def get_object(self):
        incident = super().get_object()
        if incident.reporter_id == self.request.user.pk:
            raise NotFound("No incident has that ID.")
        return incident


@extend_schema_view(
    list=extend_schema(
        summary="An incident's responses",
        description='`{"responses": [...]}`, oldest first, paginated by `Link` headers.',
        parameters=[INCIDENT_ID, LINK_HEADER],
        responses={
            200: ResponseSerializer(many=True),
            **BAD_INPUT,
            **NOT_FOUND,
            **ERRORS,
        },
    ),
    create=extend_schema(
        summary="Respond to an incident",
        parameters=[INCIDENT_ID, IDEMPOTENCY_PARAM],
        request=ResponseCreateSerializer,
        responses={
            201: ResponseSerializer,
            **BAD_INPUT,
            **FORBIDDEN,
            **NOT_FOUND,
            **CONFLICT,
            **UNSUPPORTED,
            **KEY_REUSED,
            **ERRORS,
        },
    ),
)
class ResponseViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = ResponseSerializer
    pagination_class = ResponsesPagination
    filter_backends = []
    lookup_value_regex = "[^/]+"

    def get_incident(self) -> Incident:
        incident_id = parse_incident_id(self.kwargs["incident_id"])
        incident = Incident.objects.visible_to(self.request.user).filter(incident_id=incident_id).first()
        if incident is None:
            raise NotFound("No incident has that ID.")
        return incident

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return IncidentResponse.objects.none()
        return self.get_incident().responses.select_related("author", "incident")

    def create(self, request, *args, **kwargs):
        def perform():
            incident = self.get_incident()
            serializer = ResponseCreateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            created = services.add_response(
                incident=incident, author=request.user, description=serializer.validated_data["description"]
            )
            return Response(ResponseSerializer(created).data, status=status.HTTP_201_CREATED)

        return idempotent(request, perform)


class AuthTokenSerializer(authtoken_serializers.AuthTokenSerializer):
    """A username or e-mail address (at most 254 characters) and its password."""

    username = StrictCharField(label="Username or e-mail", max_length=254, write_only=True)


@extend_schema(
    summary="Get your API token",
    description="Exchange a username (or e-mail) and password for the token to send as `Authorization: Token <key>`.",
    request=AuthTokenSerializer,
    responses={
        200: TokenSerializer,
        400: OpenApiResponse(ValidationErrorSerializer, description="A field is missing or empty."),
        401: OpenApiResponse(ErrorSerializer, description="The username (or e-mail) and password match no account."),
        429: OpenApiResponse(ErrorSerializer, description="Throttled, or locked out after repeated failures."),
    },
    auth=[],
)
class AuthTokenView(ObtainAuthToken):
    serializer_class = AuthTokenSerializer
    # A much stricter rate (the "auth" scope) than ordinary API use: it guards passwords.
    throttle_classes = [ScopedRateThrottle, AnonRateThrottle]
    throttle_scope = "auth"
    parser_classes = [SafeJSONParser, FormParser]

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
        token, _ = Token.objects.get_or_create(user=user)
        notifications.sign_in_notice(user, request)
        return Response({"token": token.key})
