"""Small presentation helpers for incident templates."""

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

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
        value.strftime("%Y-%m-%d %H:%M %Z"),
        timesince(value).split(",")[0],
    )
