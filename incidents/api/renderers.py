"""The API's JSON renderer: DRF's output, written by orjson.

DRF's renderer runs the standard library's encoder, which walks a page of 50 incidents
in Python (about a tenth of the list's CPU time, bench/README.md). orjson writes the same
compact UTF-8 JSON in C. What orjson would spell differently is handed to DRF's own
encoder (times: DRF writes `Z` and milliseconds for a raw datetime, orjson would not;
dataclasses; lazy strings, Decimals and the rest through `default`), and anything orjson
refuses (an integer past 64 bits, a non-string key) or a request for indented JSON goes
to DRF's renderer whole. As DRF does, U+2028 and U+2029 are escaped so the output is
also valid JavaScript.
"""

import orjson
from rest_framework.renderers import JSONRenderer

OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class FastJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if (
            self.get_indent(accepted_media_type, renderer_context or {}) is not None
            or self.ensure_ascii
            or not self.compact
        ):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            out = orjson.dumps(data, default=self.encoder_class().default, option=OPTIONS)
        except (orjson.JSONEncodeError, TypeError, ValueError):
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80\xa8" in out or b"\xe2\x80\xa9" in out:
            out = out.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return out
