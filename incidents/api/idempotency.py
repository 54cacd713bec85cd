"""`Idempotency-Key` for POSTs: a retry returns the first result and creates nothing new.

The key row is inserted in the same transaction as the write it guards. A concurrent
retry blocks on the unique index until the first request commits, then replays its
result; if the first request fails, its key row rolls back with it and a retry runs anew.
"""

import hashlib
import re
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from ..models import IdempotencyKey

HEADER = "Idempotency-Key"
# Visible ASCII only: what any HTTP client can send and any log can show.
KEY_PATTERN = r"^[!-~]{1,255}$"
LIFETIME = timedelta(hours=24)


class IdempotencyKeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used for a different request."
    default_code = "idempotency_key_reused"


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), *_body_parts(request)):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def _body_parts(request):
    """The body, or for an upload (streamed to temporary files, never held whole) its
    fields and each file's bytes, read back in chunks."""
    if not (request.content_type or "").startswith("multipart/"):
        yield request.body
        return
    for name, values in sorted(request.data.lists()):
        for value in values:
            yield name.encode()
            if hasattr(value, "chunks"):
                value.seek(0)
                file_digest = hashlib.sha256()
                for chunk in value.chunks():
                    file_digest.update(chunk)
                value.seek(0)
                yield file_digest.digest()
            else:
                yield str(value).encode()


def idempotent(request, perform) -> Response:
    """Run `perform()` (which returns a Response) at most once per user and key."""
    key = request.headers.get(HEADER)
    if key is None:
        return perform()
    if not re.match(KEY_PATTERN, key):
        raise ValidationError({HEADER: ["Must be 1 to 255 visible ASCII characters (no spaces)."]})
    fingerprint = _fingerprint(request)
    with transaction.atomic():
        IdempotencyKey.objects.filter(user=request.user, key=key, created_at__lt=timezone.now() - LIFETIME).delete()
        try:
            with transaction.atomic():
                record = IdempotencyKey.objects.create(user=request.user, key=key, fingerprint=fingerprint)
        except IntegrityError:
            record = IdempotencyKey.objects.get(user=request.user, key=key)
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReused() from None
            return Response(record.response_body, status=record.status_code, headers={"Idempotent-Replayed": "true"})
        response = perform()
        record.status_code, record.response_body = response.status_code, response.data
        record.save(update_fields=["status_code", "response_body"])
        return response
