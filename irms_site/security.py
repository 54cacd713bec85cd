"""Site-wide safety nets: request ids, request size and type limits, log redaction,
the lockout answer, and error pages that never leak internals."""

import contextvars
import logging
import re
import sys
import uuid
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.template.defaultfilters import filesizeformat, pluralize
from django.urls import Resolver404, resolve
from django.views import defaults

from incidents import uploads

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
logger = logging.getLogger("irms.security")


def wants_json(request) -> bool:
    return request.path.startswith("/api/")


def error_response(request, status: int, message: str, *, template: str | None = None, headers=None):
    """The same error as JSON for the API and as the site's page for browsers."""
    if wants_json(request):
        response = JsonResponse({"error": message, "request_id": request_id_var.get()}, status=status)
    elif template:
        context = {"message": message, "status": status, "request_id": request_id_var.get()}
        response = render(request, template, context, status=status)
    else:
        response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class RequestIdMiddleware:
    """Give every request an id (a sane incoming X-Request-ID, or a new one), put it on
    every log line and on the response, so a user's error report finds its log entry."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request.id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request.id
        return response


class RequestGuardMiddleware:
    """Refuse oversized bodies (413) and body types no view reads (415) before any view
    or parser sees them. The API accepts JSON (DRF answers 415 for anything else); the
    site's forms are URL-encoded or multipart. Only views that take attachments
    (`incidents.uploads`) accept files, with a body limit of their own; the body of an
    upload is refused by its Content-Length alone, before any of it is read."""

    FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and not request.META.get(
            "CONTENT_LENGTH"
        ):
            # WSGI gives Django no length for a chunked body, so it would read it as empty
            # and answer "field required": say what is wrong instead.
            return error_response(
                request,
                411,
                "Send the request body with a Content-Length header (chunked transfer encoding is not accepted).",
                template="400.html",
            )
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(request, 400, "Invalid Content-Length header.", template="400.html")
        files = _files_accepted(request) if request.content_type == "multipart/form-data" else 0
        if length > settings.MAX_REQUEST_BODY_BYTES and (not files or length > uploads.body_limit(files)):
            return error_response(request, 413, _too_large_message(files), template="400.html")
        if files and request.method == "POST":
            try:
                # Parse the upload here (its files stream to temporary files) so that a form
                # field over the body limit is the same 413 as a body over it.
                request.POST  # noqa: B018
            except RequestDataTooBig:
                return error_response(request, 413, _too_large_message(0), template="400.html")
        if request.method in ("POST", "PUT", "PATCH") and length and not wants_json(request):
            content_type = request.content_type or ""
            if content_type not in self.FORM_TYPES:
                return error_response(
                    request, 415, f"Unsupported content type “{content_type}”: send a form.", template="400.html"
                )
            if content_type == "multipart/form-data" and not files and request.FILES:
                return error_response(request, 415, "This page does not accept file uploads.", template="400.html")
            if content_type == "application/x-www-form-urlencoded" and not _is_utf8_form(request.body):
                # Django would quietly turn bad bytes into U+FFFD and save them.
                return error_response(request, 400, "The form data is not valid UTF-8.", template="400.html")
        return self.get_response(request)


def _files_accepted(request) -> int:
    """How many files the view at this path takes (views say so: incidents/uploads.py)."""
    try:
        return uploads.files_accepted(resolve(request.path_info).func)
    except Resolver404:
        return 0


def _too_large_message(files: int) -> str:
    if not files:
        return f"The request body is too large (at most {settings.MAX_REQUEST_BODY_BYTES // 1024} kB)."
    size = filesizeformat(settings.ATTACHMENT_MAX_BYTES)
    return f"The upload is too large: at most {files} file{pluralize(files)} of {size} each."


def _is_utf8_form(body: bytes) -> bool:
    try:
        unquote_to_bytes(body.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class RequestIdLogFilter(logging.Filter):
    def filter(self, record):
        record.request_id = request_id_var.get()
        return True


class RedactSecretsLogFilter(logging.Filter):
    """Keep secrets out of logs: reset-link tokens, API tokens, session ids, passwords."""

    PATTERNS = [
        (re.compile(r"(/accounts/reset/[^/\s]+/)[^/\s]+"), r"\1[redacted]"),
        (re.compile(r"(?i)(Token\s+)[0-9a-f]{20,}"), r"\1[redacted]"),
        (re.compile(r"(?i)(sessionid=)[^;\s&]+"), r"\1[redacted]"),
        (re.compile(r"(?i)(csrftoken=)[^;\s&]+"), r"\1[redacted]"),
        (
            re.compile(r"(?i)((?:password|password1|password2|new_password1|new_password2|old_password)=)[^&\s]+"),
            r"\1[redacted]",
        ),
        (re.compile(r'(?i)("(?:old_|new_)?password\d?"\s*:\s*")[^"]*'), r"\1[redacted]"),
    ]

    def filter(self, record):
        message = record.getMessage()
        redacted = message
        for pattern, replacement in self.PATTERNS:
            redacted = pattern.sub(replacement, redacted)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def server_error(request):
    """handler500. A database that is down or unreachable is a 503 with Retry-After (the
    client should come back), anything else a plain 500; neither shows internals."""
    error = sys.exc_info()[1]
    if isinstance(error, DATABASE_UNAVAILABLE) or (
        isinstance(error, DatabaseError) and "connect" in str(error).lower()
    ):
        message = "IRMS is briefly unavailable. Please try again in a few seconds."
        if wants_json(request):
            return error_response(request, 503, message, headers={"Retry-After": "10"})
        response = HttpResponse(
            loader.get_template("503.html").render({"request_id": request_id_var.get()}), status=503
        )
        response["Retry-After"] = "10"
        return response
    if wants_json(request):
        return error_response(request, 500, "Server error. It has been logged; please try again later.")
    return HttpResponse(loader.get_template("500.html").render({"request_id": request_id_var.get()}), status=500)


def bad_request(request, exception):
    """handler400 (a malformed request Django refused itself, such as more query
    parameters than DATA_UPLOAD_MAX_NUMBER_FIELDS): JSON under /api/, the page elsewhere."""
    if wants_json(request):
        return error_response(request, 400, "Bad request: the request is malformed or has too many parameters.")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    """handler403 for anything refused outside the API's own handling."""
    if wants_json(request):
        return error_response(request, 403, "You do not have permission to perform this action.")
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    """handler404: JSON under /api/ (clients parse it), the site's page elsewhere."""
    if wants_json(request):
        return error_response(request, 404, "Not found.")
    return defaults.page_not_found(request, exception)
