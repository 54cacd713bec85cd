"""Small presentation helpers for incident templates."""

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

from .. import sla

register = template.Library()

STATUS_CLASSES = {
    "Reported": "text-bg-danger",
    "Acknowledged": "text-bg-warning",
    "In Progress": "text-bg-primary",
    "Resolved": "text-bg-success",
    "Closed": "text-bg-secondary",
}
SEVERITY_CLASSES = {
    "Low": "text-bg-light border",
    "Medium": "text-bg-info",
    "High": "text-bg-warning",
    "Critical": "text-bg-danger",
}


@register.simple_tag
def status_badge(status):
    return format_html('<span class="badge {}">{}</span>', STATUS_CLASSES.get(status, "text-bg-light"), status)


@register.simple_tag
def severity_badge(severity):
    return format_html(
        '<span class="badge {}">{} severity</span>', SEVERITY_CLASSES.get(severity, "text-bg-light"), severity
    )


@register.simple_tag
def when(value):
    """'3 minutes ago', with the exact UTC time on hover (irms.js shows it in local time)."""
    if not value:
        return ""
    value = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{} ago</time>',
        # HTML's global date and time string allows at most three fractional digits;
        # whole seconds are all anyone reads.
        value.replace(microsecond=0).isoformat(),
        _exact(value),
        timesince(value).split(",")[0],
    )


SLA_CLASSES = {
    "pending": "text-bg-light border",
    "at_risk": "text-bg-warning",
    "breached": "text-bg-danger",
    "met": "text-bg-success",
}


def _span(moment, now) -> str:
    """'12 minutes' between `moment` and now, the largest unit only."""
    return (timesince(moment, now) if moment <= now else timeuntil(moment, now)).split(",")[0]


def _exact(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


@register.simple_tag
def sla_clock(incident, clock=None, now=None):
    """One SLA clock as words and colour: "Acknowledge due in 12 minutes", "Resolve overdue
    by 2 hours" (the words carry the state; the colour repeats it), the exact time on
    hover. Without `clock`, the unmet clock due soonest (nothing when there is none)."""
    now = now or timezone.now()
    shown = sla.next_clock(incident, now) if clock is None else sla.clock(incident, clock, now)
    if shown is None:
        return ""
    met = sla.met_at(incident, shown.name)
    if shown.due_at is None:
        text = "met" if met else "no target"
        return format_html(
            '<span class="badge text-bg-light border" data-sla="{}">{}: {}</span>', shown.name, shown.label, text
        )
    if met is not None:
        text = "met" if shown.state == sla.State.MET else f"missed by {_span(shown.due_at, met)}"
    elif shown.state == sla.State.BREACHED and shown.due_at <= now:
        text = f"overdue by {_span(shown.due_at, now)}"
    elif shown.state == sla.State.BREACHED:
        # Escalated, then re-graded to a later due time: the breach stands.
        text = f"breached earlier, now due in {_span(shown.due_at, now)}"
    elif shown.state == sla.State.AT_RISK:
        text = f"due in {_span(shown.due_at, now)} — at risk"
    else:
        text = f"due in {_span(shown.due_at, now)}"
    return format_html(
        '<span class="badge {}" data-sla="{}" data-sla-state="{}"><time datetime="{}" title="Due {}">{} {}</time></span>',
        SLA_CLASSES[shown.state],
        shown.name,
        shown.state,
        shown.due_at.replace(microsecond=0).isoformat(),
        _exact(shown.due_at),
        shown.label,
        text,
    )


@register.simple_tag
def sla_breach(event):
    """A timeline line for an SLA breach: which clock, due when, how late at escalation."""
    due_at, at = parse_datetime(event.old_value), parse_datetime(event.new_value)
    clock = "acknowledge" if event.field == "acknowledge" else "resolve"
    return format_html(
        "missed the time to {} (due {}): <strong>SLA breached</strong>, {} late",
        clock,
        _exact(due_at),
        _span(due_at, at) if at > due_at else "0 minutes",
    )


@register.filter
def seconds_span(seconds):
    """A measured time for people: "45 s", "37 min", "2 h 28 min", "3 d 4 h"; a dash when
    nothing was measured."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 60:
        return f"{minutes} min"
    if hours < 24:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"
