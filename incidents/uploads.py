"""How uploaded files reach IRMS: streamed to temporary files, never held in memory, and
never written past the size limit.

Views that take files say so with a class attribute, `accepts_uploads = ONE` (one file a
request: the API) or `MANY` (up to ATTACHMENT_MAX_FILES: the report and respond forms).
`irms_site.security.RequestGuardMiddleware` reads it to allow those views a larger body,
refusing anything over it with 413 before the body is read; every other view keeps the
site's small body limit and refuses file uploads.
"""

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

ONE, MANY = "one", "many"
# Room for a multipart part's headers and boundary beside each file.
PART_OVERHEAD = 4096


def files_accepted(view_func) -> int:
    """How many files the view behind a resolved URL takes (0: it takes none)."""
    view_class = getattr(view_func, "view_class", None) or getattr(view_func, "cls", None)
    accepts = getattr(view_class, "accepts_uploads", None)
    if accepts == ONE:
        return 1
    if accepts == MANY:
        return settings.ATTACHMENT_MAX_FILES
    return 0


def body_limit(files: int) -> int:
    """The largest request body a view taking `files` files accepts."""
    return settings.MAX_REQUEST_BODY_BYTES + files * (settings.ATTACHMENT_MAX_BYTES + PART_OVERHEAD)


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Django's temporary-file handler that stops writing a file one byte past
    ATTACHMENT_MAX_BYTES. The file's `size` is still the size that was sent, so the
    service refuses it as too large (413) without anything over the limit on disk."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.written = 0

    def receive_data_chunk(self, raw_data, start):
        room = settings.ATTACHMENT_MAX_BYTES + 1 - self.written
        if room > 0:
            self.file.write(raw_data[:room])
            self.written += min(room, len(raw_data))
        return None
