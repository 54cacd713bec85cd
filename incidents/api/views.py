"""The REST API: the original IRMS paths and shapes, on DRF viewsets.

Reads go through `Incident.objects.visible_to(user)` (not visible: 404), writes through
`services.py` (not allowed: 403; bad input or workflow: 400), errors through
`errors.exception_handler` (always a JSON object with an `error` string).
"""

from django.db import transaction
from django.db.models import Prefetch
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import attachments, metrics, services, uploads
from ..filters import IncidentFilter
from ..forms import MetricsScopeForm
from ..models import Attachment, Category, Incident, Severity, Team
from ..models import Response as IncidentResponse
from ..permissions import can_view_metrics, get_visible_incident
from ..replica import ReplicaReadsListMixin, replica_reads
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import KEY_PATTERN as IDEMPOTENCY_KEY_PATTERN
from .idempotency import idempotent
from .pagination import ResponsesPagination
from .serializers import (
    AttachmentCreateSerializer,
    AttachmentSerializer,
    CategorySerializer,
    IncidentCreateSerializer,
    IncidentRows,
    IncidentSerializer,
    IncidentUpdateSerializer,
    MetricsSerializer,
    ResponseCreateSerializer,
    ResponseSerializer,
    TeamSerializer,
    incident_rows,
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


class VisibleIncidentMixin:
    """Lookup by the public `incident_id` among what the caller may see."""

    serializer_class = IncidentSerializer
    lookup_field = "incident_id"
    # Anything up to the next slash reaches the view, which answers 404 for a non-UUID.
    lookup_value_regex = "[^/]+"
    filterset_class = IncidentFilter

    def get_object(self):
        return get_visible_incident(self.request.user, self.kwargs["incident_id"], queryset=Incident.objects.for_list())

    def list(self, request, *args, **kwargs):
        """The same query, filters and cursors as DRF's `list`, read as rows rather than
        model instances and represented by `IncidentRows` (the hot path: bench/README.md)."""
        page = self.paginate_queryset(incident_rows(self.filter_queryset(self.get_queryset())))
        return self.get_paginated_response(IncidentRows(request).represent(page))


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
class IncidentViewSet(
    ReplicaReadsListMixin,
    VisibleIncidentMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
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
            "(staff); `status` (along the workflow, as your role allows); `severity`, `team`, `category` "
            "and `assignee` (members of the incident's team, of a team that sees every incident, and "
            "staff; an assignee must be a member of the incident's team, and a move to another team "
            "clears an assignee who is not a member there). All changes apply together or not at all; "
            "an empty body changes nothing."
        ),
        parameters=[INCIDENT_ID],
        request=IncidentUpdateSerializer,
        responses={200: IncidentSerializer, **BAD_INPUT, **FORBIDDEN, **NOT_FOUND, **CONFLICT, **UNSUPPORTED, **ERRORS},
    )
    def partial_update(self, request, *args, **kwargs):
        incident = self.get_object()
        serializer = IncidentUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            services.update_incident(incident=incident, actor=request.user, **serializer.validated_data)
            # Read back under the lock the update still holds: the answer is this request's
            # result, never a later concurrent change.
            incident = Incident.objects.for_list().get(pk=incident.pk)
        return Response(self.get_serializer(incident).data)


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
class PublicIncidentViewSet(ReplicaReadsListMixin, VisibleIncidentMixin, viewsets.ReadOnlyModelViewSet):
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
        description=(
            "Add a response to an incident you can see, until it is closed. It joins the timeline, and the "
            "reporter, the assignee and earlier responders are e-mailed (as their preferences allow). "
            "Send an `Idempotency-Key` to retry safely."
        ),
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
        return get_visible_incident(self.request.user, self.kwargs["incident_id"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return IncidentResponse.objects.none()
        return (
            self.get_incident()
            .responses.select_related("author", "incident")
            # A response carries its attachments: one query per page, whatever its size.
            .prefetch_related(
                Prefetch("attachments", queryset=Attachment.objects.select_related("uploaded_by", "incident"))
            )
        )

    def create(self, request, *args, **kwargs):
        def perform():
            incident = self.get_incident()
            serializer = ResponseCreateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            created = services.add_response(
                incident=incident, author=request.user, description=serializer.validated_data["description"]
            )
            return Response(
                ResponseSerializer(created, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
            )

        return idempotent(request, perform)


class ReferenceListMixin:
    """A short reference list for forms and scripts: a bare array, not paginated."""

    pagination_class = None
    filter_backends = []


@extend_schema_view(
    list=extend_schema(
        summary="Categories to report under",
        description="Active categories in the report form's order, each with the slug of the team it goes to.",
        responses={200: CategorySerializer(many=True), **ERRORS},
    )
)
class CategoryViewSet(ReferenceListMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = CategorySerializer
    queryset = Category.objects.active().select_related("team")


@extend_schema_view(
    list=extend_schema(
        summary="Teams",
        description="Every team, by name: where incidents can be routed.",
        responses={200: TeamSerializer(many=True), **ERRORS},
    )
)
class TeamViewSet(ReferenceListMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = TeamSerializer
    queryset = Team.objects.order_by("name")


ATTACHMENT_REFUSED = {
    413: OpenApiResponse(ValidationErrorSerializer, description="The file, or the whole body, is over the size limit."),
    415: OpenApiResponse(
        ValidationErrorSerializer, description="Not multipart, or the file's content is of a type IRMS refuses."
    ),
}
ATTACHMENT_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The attachment's id.")


@extend_schema_view(
    list=extend_schema(
        summary="An incident's attachments",
        description="Every file on the incident, oldest first: a bare array.",
        tags=["attachments"],
        parameters=[INCIDENT_ID],
        responses={200: AttachmentSerializer(many=True), **NOT_FOUND, **ERRORS},
    ),
    create=extend_schema(
        summary="Attach a file",
        tags=["attachments"],
        description=(
            "One file per request (multipart field `file`), optionally for one of your responses "
            "(`response_id`), on an incident you may respond to (not a closed one). Allowed: JPEG, PNG, "
            "WebP, GIF, HEIC/HEIF (stored as JPEG), PDF, plain text, CSV and .eml mail, decided from the "
            "content. Image metadata (EXIF, GPS, XMP) is removed. Send an `Idempotency-Key` to retry safely."
        ),
        parameters=[INCIDENT_ID, IDEMPOTENCY_PARAM],
        request={"multipart/form-data": AttachmentCreateSerializer},
        responses={
            201: AttachmentSerializer,
            **BAD_INPUT,
            **FORBIDDEN,
            **NOT_FOUND,
            **CONFLICT,
            **ATTACHMENT_REFUSED,
            **KEY_REUSED,
            **ERRORS,
        },
    ),
)
class AttachmentViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = AttachmentSerializer
    parser_classes = [MultiPartParser]
    pagination_class = None
    filter_backends = []
    accepts_uploads = uploads.ONE

    def get_incident(self) -> Incident:
        return get_visible_incident(self.request.user, self.kwargs["incident_id"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Attachment.objects.none()
        return self.get_incident().attachments.select_related("uploaded_by", "incident")

    def create(self, request, *args, **kwargs):
        def perform():
            incident = self.get_incident()
            serializer = AttachmentCreateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            created = services.add_attachment(incident=incident, uploader=request.user, **serializer.validated_data)
            return Response(self.get_serializer(created).data, status=status.HTTP_201_CREATED)

        return idempotent(request, perform)


BINARY = dict.fromkeys((*attachments.IMAGE_FORMATS, *attachments.ACCEPT_EXTENSIONS), OpenApiTypes.BINARY)


class AttachmentFileView(APIView):
    """The one way an attachment's bytes leave IRMS, for the site (session) and the API
    (token or session) alike: the incident through `get_visible_incident` (404 to whoever
    may not see it), then the stored bytes streamed, under headers that keep a browser from
    running or sniffing them."""

    thumbnail = False

    @extend_schema(
        summary="Download an attachment",
        description=(
            "The file as stored, with its content type; `Content-Disposition` is `inline` for images "
            "and PDFs, `attachment` otherwise."
        ),
        parameters=[INCIDENT_ID, ATTACHMENT_ID],
        responses={(200, content_type): schema for content_type, schema in BINARY.items()} | {**NOT_FOUND, **ERRORS},
        tags=["attachments"],
    )
    def get(self, request, incident_id, pk):
        incident = get_visible_incident(request.user, incident_id)
        attachment = incident.attachments.filter(pk=pk).first() if str(pk).isdigit() else None
        stored = getattr(attachment, "thumbnail" if self.thumbnail else "file", None)
        if not stored:
            raise NotFound("This incident has no such attachment.")
        content_type = attachments.THUMBNAIL_TYPE if self.thumbnail else attachment.content_type
        response = FileResponse(
            stored.open("rb"),
            content_type=content_type,
            as_attachment=content_type not in attachments.INLINE_TYPES,
            filename=attachment.filename,
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
        response["Cache-Control"] = "private, max-age=3600"
        return response


class AttachmentThumbnailView(AttachmentFileView):
    thumbnail = True

    @extend_schema(
        summary="An image attachment's thumbnail",
        description="A WebP at most 320 pixels wide and high; 404 for attachments that are not images.",
        parameters=[INCIDENT_ID, ATTACHMENT_ID],
        responses={(200, attachments.THUMBNAIL_TYPE): OpenApiTypes.BINARY, **NOT_FOUND, **ERRORS},
        tags=["attachments"],
    )
    def get(self, request, incident_id, pk):
        return super().get(request, incident_id, pk)


class CanViewMetrics(BasePermission):
    message = "Metrics are for team members and staff."

    def has_permission(self, request, view):
        return can_view_metrics(request.user)


@extend_schema(
    summary="Response metrics",
    description=(
        "Counts, times to acknowledge and resolve (nearest-rank median and 90th percentile, whole "
        "seconds), SLA ratios, a weekly series, the top categories and the ten oldest open incidents, "
        "over the incidents you may see, for a period of whole days in the server's time zone (default: "
        "the last 90 days; at most two years). Team members see their teams by default, staff every "
        "team. `null` where nothing was measured. Team members and staff only."
    ),
    parameters=[
        OpenApiParameter("from", OpenApiTypes.DATE, description="First day (default: 90 days before `to`)."),
        OpenApiParameter("to", OpenApiTypes.DATE, description="Last day, included (default: today)."),
        OpenApiParameter("team", str, many=True, explode=True, description="A team's slug; repeat for several."),
        OpenApiParameter("category", str, description="A category's slug."),
        OpenApiParameter("severity", str, enum=[value for value, _ in Severity.choices]),
    ],
    responses={
        200: MetricsSerializer,
        **BAD_INPUT,
        403: OpenApiResponse(ErrorSerializer, description="Not a team member or staff."),
        **ERRORS,
    },
)
class MetricsView(APIView):
    permission_classes = [IsAuthenticated, CanViewMetrics]

    def get(self, request):
        form = MetricsScopeForm(request.query_params, user=request.user)
        if not form.is_valid():
            raise ValidationError(
                {name: [e["message"] for e in errors] for name, errors in form.errors.get_json_data().items()}
            )
        with replica_reads(request):  # read-only figures: a replica may answer (incidents/replica.py)
            return Response(metrics.measure(request.user, form.scope()).as_dict())
