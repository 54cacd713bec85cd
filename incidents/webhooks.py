"""Which events go to which webhook endpoint, and what they say.

The services hand every timeline event to `announce` inside their transaction (as they
hand it to `recipients.announce`); each endpoint that wants the event's type and may hear
of the incident (`permissions.webhook_may_receive`) gets one delivery in the outbox, in
that transaction. The notifications app signs and posts it, retries it, and asks
`destinations` (named by settings.WEBHOOK_DESTINATIONS) for the endpoint's secrets at each
attempt and tells it how each attempt went.

Payloads never carry a user's e-mail address: people are named by username, and the
incident is the API's representation as an anonymous reader gets it (`user_email` null).

Ordering: one incident's deliveries reach one endpoint in the order the events happened
(a delivery waits while an earlier one for the same incident and endpoint is pending;
once that one has succeeded or been given up, the next goes). Each message is delivered
at least once while attempts last, and at most once per successful attempt: a receiver
that must not act twice drops a repeated `webhook-id`.
"""

import logging
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from notifications.mail import absolute
from notifications.outbox import queue_email, queue_webhook
from notifications.webhooks import dumps

from . import permissions
from .api.serializers import IncidentSerializer
from .models import (
    SECRET_OVERLAP,
    EventKind,
    Incident,
    IncidentEvent,
    WebhookEndpoint,
    WebhookEvent,
    WebhookFormat,
    new_webhook_secret,
)

logger = logging.getLogger(__name__)

# After this many failed attempts in a row an endpoint is disabled and staff are mailed.
DISABLE_AFTER = 20
TEST_EVENT = "webhook.test"

EVENT_TYPES = {
    EventKind.REPORTED: WebhookEvent.REPORTED,
    EventKind.STATUS_CHANGED: WebhookEvent.STATUS_CHANGED,
    EventKind.SEVERITY_CHANGED: WebhookEvent.SEVERITY_CHANGED,
    EventKind.ASSIGNED: WebhookEvent.ASSIGNED,
    EventKind.UNASSIGNED: WebhookEvent.ASSIGNED,
    EventKind.TEAM_CHANGED: WebhookEvent.TEAM_CHANGED,
    EventKind.RESPONDED: WebhookEvent.RESPONDED,
    EventKind.ATTACHED: WebhookEvent.ATTACHMENT_ADDED,
    EventKind.SLA_BREACHED: WebhookEvent.SLA_BREACHED,
}


# --- What goes where -----------------------------------------------------------------------


def announce(event: IncidentEvent) -> None:
    """Queue one delivery of `event` per endpoint that wants it and may hear of its
    incident (none for kinds that are no webhook event). Call inside the service's
    transaction, after the incident is saved."""
    event_type = EVENT_TYPES.get(event.kind)
    if event_type is None:
        return
    incident = event.incident
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(active=True).order_by("pk")
        if endpoint.wants(event_type) and permissions.webhook_may_receive(endpoint, incident)
    ]
    if not endpoints:
        return
    represented = incident_representation(incident)
    actor = getattr(event.actor, "username", None)
    change = _change(event)
    for endpoint in endpoints:
        body = render(
            endpoint.format,
            event_type=event_type,
            timestamp=event.created_at.isoformat(),
            incident=represented,
            actor=actor,
            change=change,
        )
        queue_webhook(
            event=event_type,
            destination=endpoint.key,
            url=endpoint.url,
            body=body,
            ordering_key=str(incident.incident_id),
        )


class _SiteRequest:
    """What the API serializer needs of a request, for a reader who is nobody in particular:
    links from SITE_URL, no reporter's address (`user_email` is the reporter's and staff's)."""

    user = AnonymousUser()

    def build_absolute_uri(self, location: str) -> str:
        return settings.SITE_URL + location


def incident_representation(incident: Incident) -> dict:
    """The incident exactly as the API represents it (to a reader who may not see e-mail
    addresses), as it stands in this transaction."""
    fresh = Incident.objects.for_list().get(pk=incident.pk)
    return IncidentSerializer(fresh, context={"request": _SiteRequest()}).data


def _change(event: IncidentEvent) -> dict:
    """What changed, in the event's own words (usernames, team names; never addresses)."""
    kind = event.kind
    if kind in (EventKind.STATUS_CHANGED, EventKind.SEVERITY_CHANGED):
        field = "status" if kind == EventKind.STATUS_CHANGED else "severity"
        return {"field": field, "from": event.old_value, "to": event.new_value}
    if kind in (EventKind.ASSIGNED, EventKind.UNASSIGNED, EventKind.TEAM_CHANGED):
        return {"field": event.field, "from": event.old_value or None, "to": event.new_value or None}
    if kind == EventKind.RESPONDED:
        response = event.response
        return {
            "response": {
                "id": response.pk,
                "author": getattr(response.author, "username", None),
                "description": response.description,
                "created_at": response.created_at.isoformat(),
            }
        }
    if kind == EventKind.ATTACHED:
        attachment = event.attachment
        return {
            "attachment": {
                "id": attachment.pk,
                "filename": attachment.filename,
                "content_type": attachment.content_type,
                "size": attachment.size,
                "response_id": attachment.response_id,
            }
        }
    if kind == EventKind.SLA_BREACHED:
        return {"clock": event.field, "due_at": event.old_value, "escalated_at": event.new_value}
    return {}


# --- Formats -------------------------------------------------------------------------------


def render(fmt: str, *, event_type: str, timestamp: str, incident: dict, actor, change: dict) -> str:
    """The body for an endpoint of format `fmt` (JSON text)."""
    if fmt == WebhookFormat.STANDARD:
        payload = {
            "type": event_type,
            "timestamp": timestamp,
            "data": {"incident": incident, "actor": actor, "change": change},
        }
    elif fmt == WebhookFormat.SLACK:
        payload = _slack(event_type, incident, _summary(event_type, actor, change))
    else:
        payload = _teams(event_type, incident, _summary(event_type, actor, change))
    return dumps(payload)


def _summary(event_type: str, actor, change: dict) -> str:
    who = actor or "IRMS"
    if event_type == WebhookEvent.REPORTED:
        return f"Reported by {who}"
    if event_type in (WebhookEvent.STATUS_CHANGED, WebhookEvent.SEVERITY_CHANGED):
        return f"{change['field'].capitalize()}: {change['from']} → {change['to']} (by {who})"
    if event_type == WebhookEvent.ASSIGNED:
        if change["to"]:
            return f"Assigned to {change['to']} by {who}"
        return f"Unassigned from {change['from']} by {who}"
    if event_type == WebhookEvent.TEAM_CHANGED:
        return f"Moved from {change['from']} to {change['to']} by {who}"
    if event_type == WebhookEvent.RESPONDED:
        text = change["response"]["description"]
        return f"{who} responded: {text[:300]}{'…' if len(text) > 300 else ''}"
    if event_type == WebhookEvent.ATTACHMENT_ADDED:
        return f"{who} attached {change['attachment']['filename']}"
    if event_type == WebhookEvent.SLA_BREACHED:
        return f"The {change['clock']} SLA was missed (due {change['due_at']})"
    return "A test event from IRMS: this endpoint is set up."


# Plain-text mentions that notify a whole channel in Mattermost and Rocket.Chat, which read
# the message's `text` (Slack's need <!channel>, which the escaping below already stops).
BROADCAST_MENTION = re.compile(r"@(?=(?:channel|here|all|everyone)\b)", re.IGNORECASE)


def _slack_escape(text: str) -> str:
    """Slack's own escaping (&, <, >), and a zero-width space after the @ of a broadcast
    mention: user text cannot become a link or notify a whole channel."""
    escaped = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return BROADCAST_MENTION.sub("@\u200b", escaped)


def _slack(event_type: str, incident: dict, summary: str) -> dict:
    title = _slack_escape(incident["title"])
    link = incident["web_url"]
    return {
        "text": f"[{incident['severity']}] {title}: {_slack_escape(summary)}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{_slack_escape(summary)}"}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*Severity*\n{incident['severity']}"},
                    {"type": "mrkdwn", "text": f"*Status*\n{incident['status']}"},
                    {"type": "mrkdwn", "text": f"*Team*\n{_slack_escape(incident['team'] or '-')}"},
                ],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|Open in IRMS> · {event_type}"}]},
        ],
    }


def _teams(event_type: str, incident: dict, summary: str) -> dict:
    """A Teams Workflows ("when a webhook request is received") message: one Adaptive Card."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": incident["title"], "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "TextBlock", "text": summary, "wrap": True},
            {
                "type": "FactSet",
                "facts": [
                    {"title": "Severity", "value": incident["severity"]},
                    {"title": "Status", "value": incident["status"]},
                    {"title": "Team", "value": incident["team"] or "-"},
                    {"title": "Event", "value": event_type},
                ],
            },
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open in IRMS", "url": incident["web_url"]}],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


# --- Staff's actions -----------------------------------------------------------------------

_TEST_INCIDENT = {
    "title": "Test event",
    "severity": "Low",
    "status": "Reported",
    "team": None,
    "web_url": "",
}


@transaction.atomic
def send_test_event(endpoint: WebhookEndpoint):
    """Queue a `webhook.test` message to `endpoint`, whatever events it subscribes to."""
    now = timezone.now().isoformat()
    if endpoint.format == WebhookFormat.STANDARD:
        body = dumps({"type": TEST_EVENT, "timestamp": now, "data": {"endpoint": endpoint.description}})
    else:
        incident = {**_TEST_INCIDENT, "web_url": settings.SITE_URL + "/"}
        body = render(endpoint.format, event_type=TEST_EVENT, timestamp=now, incident=incident, actor=None, change={})
    return queue_webhook(event=TEST_EVENT, destination=endpoint.key, url=endpoint.url, body=body)


@transaction.atomic
def rotate_secret(endpoint: WebhookEndpoint) -> str:
    """Give `endpoint` a new secret; the one it had keeps signing beside it (a second
    signature in `webhook-signature`) for SECRET_OVERLAP (24 h). Returns the new secret,
    to be shown once."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + SECRET_OVERLAP
    endpoint.secret = new_webhook_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint.secret


# --- The outbox's view of endpoints (settings.WEBHOOK_DESTINATIONS) -------------------------


def _endpoint_pk(key: str) -> int | None:
    prefix, _, pk = key.partition(":")
    return int(pk) if prefix == "endpoint" and pk.isdigit() else None


class EndpointDestinations:
    """Resolves the outbox's destination keys (`endpoint:<pk>`) to endpoints."""

    def secrets(self, key: str) -> list[str] | None:
        """The secrets that sign a delivery now (current first, then the previous one while
        it is honoured); None if the endpoint is disabled or gone."""
        endpoint = WebhookEndpoint.objects.filter(pk=_endpoint_pk(key), active=True).first()
        if endpoint is None:
            return None
        honoured = [endpoint.secret]
        expires = endpoint.previous_secret_expires_at
        if endpoint.previous_secret and expires is not None and expires > timezone.now():
            honoured.append(endpoint.previous_secret)
        return honoured

    def url(self, key: str) -> str | None:
        """Where a delivery goes now: the endpoint's URL as staff last saved it."""
        return WebhookEndpoint.objects.filter(pk=_endpoint_pk(key), active=True).values_list("url", flat=True).first()

    def attempted(self, key: str, *, ok: bool) -> None:
        """Count a failed attempt (disable the endpoint and mail staff at DISABLE_AFTER in a
        row), or reset the count on a success."""
        endpoints = WebhookEndpoint.objects.filter(pk=_endpoint_pk(key))
        if ok:
            endpoints.exclude(consecutive_failures=0).update(consecutive_failures=0)
            return
        with transaction.atomic():
            endpoints.update(consecutive_failures=F("consecutive_failures") + 1)
            # Compare-and-set on `active`: of two workers failing at once, one disables it.
            disabled = endpoints.filter(active=True, consecutive_failures__gte=DISABLE_AFTER).update(
                active=False, disabled_at=timezone.now()
            )
            if disabled:
                _tell_staff_disabled(endpoints.get())


destinations = EndpointDestinations()


def _tell_staff_disabled(endpoint: WebhookEndpoint) -> None:
    logger.error("Webhook endpoint %s disabled after %s failed attempts", endpoint.pk, endpoint.consecutive_failures)
    staff = get_user_model().objects.filter(is_active=True, is_staff=True).exclude(email="").order_by("pk")
    for user in staff:
        queue_email(
            kind="webhook_disabled",
            to=user.email,
            context={
                "user": user,
                "endpoint": endpoint,
                "failures": endpoint.consecutive_failures,
                # The host only: a chat webhook's full URL is a credential, and mail is no vault.
                "endpoint_host": urlsplit(endpoint.url).hostname,
                "endpoint_admin_url": absolute(reverse("admin:incidents_webhookendpoint_change", args=[endpoint.pk])),
            },
        )
