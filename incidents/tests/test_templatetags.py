"""Presentation helpers (incidents/templatetags/incidents.py)."""

import datetime as dt

from incidents.templatetags.incidents import when


def test_when_gives_a_machine_readable_time_html_accepts(settings):
    # given: a time with microseconds, as the database stores them
    settings.TIME_ZONE = "UTC"
    created = dt.datetime(2026, 12, 1, 9, 53, 18, 123456, tzinfo=dt.timezone.utc)

    # when
    html = when(created)

    # then: HTML allows at most three fractional digits; whole seconds it is
    assert html.startswith('<time datetime="2026-12-01T09:53:18+00:00" title="2026-12-01 09:53 UTC">')
    assert html.endswith(" ago</time>")


def test_when_renders_nothing_for_no_time():
    assert when(None) == ""
