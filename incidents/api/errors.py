"""One error shape for the whole API: a JSON object with a readable `error` string.

Validation errors keep DRF's usual `field -> [messages]` entries beside it, so clients
written for DRF and the original IRMS clients (which look for a truthy `error`) both work.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from ..attachments import AttachmentTooLarge, UnsupportedAttachment
from ..services import WorkflowError

MESSAGES = {
    status.HTTP_400_BAD_REQUEST: "Invalid input.",
    status.HTTP_401_UNAUTHORIZED: "Unauthorized access",
    status.HTTP_403_FORBIDDEN: "You do not have permission to perform this action.",
    status.HTTP_404_NOT_FOUND: "Not found.",
}


class Conflict(exceptions.ValidationError):
    """Valid input that the resource's current state refuses (services.WorkflowError)."""

    status_code = status.HTTP_409_CONFLICT


class TooLarge(exceptions.ValidationError):
    """A file over ATTACHMENT_MAX_BYTES (attachments.AttachmentTooLarge)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class Unsupported(exceptions.ValidationError):
    """A file of a type IRMS does not take (attachments.UnsupportedAttachment)."""

    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE


# A service's ValidationError subclass -> the API's answer (400 for the others).
KINDS = ((WorkflowError, Conflict), (AttachmentTooLarge, TooLarge), (UnsupportedAttachment, Unsupported))


def _from_django(exc):
    """Services raise Django's exceptions; give DRF its own so it renders them."""
    if isinstance(exc, DjangoValidationError):
        kind = next((api for django, api in KINDS if isinstance(exc, django)), exceptions.ValidationError)
        if hasattr(exc, "error_dict"):
            detail = exc.message_dict
            if "__all__" in detail:
                detail["non_field_errors"] = detail.pop("__all__")
        else:
            detail = {"non_field_errors": exc.messages}
        return kind(detail)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    return exc


def _first_message(data) -> str:
    if isinstance(data, dict):
        for value in data.values():
            return _first_message(value)
    if isinstance(data, list) and data:
        return _first_message(data[0])
    return str(data)


def exception_handler(exc, context):
    exc = _from_django(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        response.data = {"error": MESSAGES[401], "detail": str(data.get("detail", ""))}
    elif isinstance(data, dict) and set(data) == {"detail"}:
        response.data = {"error": str(data["detail"])}
    elif isinstance(exc, exceptions.ValidationError):
        fields = data if isinstance(data, dict) else {"non_field_errors": data}
        prefix = "Not possible now" if isinstance(exc, Conflict) else "Invalid input"
        response.data = {"error": f"{prefix}: {_first_message(fields)}", **fields}
    elif isinstance(data, dict):
        response.data = {"error": MESSAGES.get(response.status_code, "Request failed."), **data}
    return response
