"""FastJSONRenderer writes the bytes DRF's JSONRenderer writes, for whatever the API
hands it, and falls back to DRF's renderer for what orjson cannot write alike."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from incidents.api.renderers import FastJSONRenderer
from incidents.models import Status

SAMPLES = {
    "plain": [{"id": 1, "title": "Printer", "ok": True, "none": None, "nested": {"a": [1, 2, {"b": "c"}]}}],
    "unicode": {"title": "“Quoted” ünïcode, emoji 🔥, and line separators \u2028 \u2029 <script>"},
    "control": {"text": 'tab\there, newline\n, quote " and backslash \\ and \x00 \x1f'},
    "error": {"error": ErrorDetail("Invalid cursor.", code="invalid"), "field": [ErrorDetail("Too long.")]},
    "lazy": {"message": gettext_lazy("This field is required.")},
    "times": {
        "aware": dt.datetime(2026, 12, 1, 15, 18, 55, 511965, tzinfo=dt.UTC),
        "whole": dt.datetime(2026, 12, 1, 15, 18, 55, tzinfo=dt.UTC),
        "naive": dt.datetime(2026, 12, 1, 15, 18, 55, 5),
        "date": dt.date(2026, 12, 1),
        "time": dt.time(9, 30),
        "span": dt.timedelta(hours=4),
    },
    "types": {
        "uuid": uuid.UUID("8a856119-11de-41d5-89a6-b5e6e12fac6f"),
        "decimal": Decimal("1.50"),
        "choice": Status.CLOSED,
    },
    "returned": ReturnList([ReturnDict({"x": 1}, serializer=None)], serializer=None),
    "big": {"id": 2**70},
    "keys": {1: "one", None: "none"},
    "empty": [],
}


@pytest.mark.parametrize("name", SAMPLES)
def test_same_bytes_as_drf(name):
    # when
    fast = FastJSONRenderer().render(SAMPLES[name], "application/json")

    # then
    assert fast == JSONRenderer().render(SAMPLES[name], "application/json")


def test_indented_json_on_request_is_drf_own():
    # given
    data = {"a": [1, {"b": 2}]}

    # when
    fast = FastJSONRenderer().render(data, "application/json; indent=4")

    # then
    assert fast == JSONRenderer().render(data, "application/json; indent=4")
    assert b"\n    " in fast


def test_nothing_renders_as_nothing():
    assert FastJSONRenderer().render(None) == b""
