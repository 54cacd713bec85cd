"""The outbox: one row per message to deliver, through one channel, to one recipient.

A row is written in the same transaction as the change it reports (a rolled-back change
leaves nothing to send; a committed one always has its message), together with the task
that delivers it. `state` makes each delivery at most once per row: a worker claims a
queued row (queued -> sending) under a lease before it talks to the outside world, then
records the result. A worker that dies mid-delivery leaves its lease to expire, and any
other worker then takes the row back (`delivery.recover`). The fields every channel shares
live on `OutboxMessage`; each channel adds what its message needs (mail today; webhooks and
chat reuse the same machinery through `delivery.Channel`).

This app knows no domain: callers give it rendered content and an address.
"""

import uuid
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import make_msgid
from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # While `sending`: the worker that claimed the row owns it until then. Past it, the
    # worker is presumed dead and the row may be taken back (compare-and-set on this value).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The django-tasks-db task last enqueued to deliver this row (DBTaskResult.id): a queued
    # row whose task is neither waiting nor running lost it with a dead worker.
    task_id = models.UUIDField(null=True, blank=True, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


def new_message_id() -> str:
    """A fresh Message-ID header value in the domain of DEFAULT_FROM_EMAIL."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2]
    return make_msgid(domain=domain or "localhost")


class OutgoingEmail(OutboxMessage):
    """One e-mail to one recipient (the mail channel's outbox)."""

    kind = models.CharField(max_length=30)
    to = models.EmailField()
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    # Fixed when queued and sent on every attempt: a copy sent again after a crash (when it
    # is unknown whether the server took the first) is the same message to MTAs and clients.
    message_id = models.CharField(max_length=255, default=new_message_id, editable=False)
    # Where a reply should go (the caller's choice, e.g. a signed per-recipient address that
    # turns replies into responses); empty: replies go to DEFAULT_FROM_EMAIL.
    reply_to = models.CharField(max_length=255, blank=True, editable=False)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["state", "-created_at"], name="email_state_newest"),
            # The admin's list (newest first), its "kind" filter (a loose index scan for the
            # distinct kinds) and its searches by recipient or Message-ID.
            models.Index(fields=["-created_at", "-id"], name="email_newest"),
            models.Index(fields=["kind", "-created_at"], name="email_kind_newest"),
            models.Index(fields=["to"], name="email_to"),
            models.Index(fields=["message_id"], name="email_message_id"),
            # The recovery sweep's lookup of expired leases (state = sending).
            models.Index(fields=["state", "lease_expires_at"], name="email_state_lease"),
        ]

    def __str__(self):
        return f"{self.kind} to {self.to}"


def new_webhook_id() -> str:
    """A Standard Webhooks message id (`webhook-id`): fixed when queued and sent on every
    attempt, so a receiver can drop a copy it already handled."""
    return f"msg_{uuid.uuid4().hex}"


class WebhookDelivery(OutboxMessage):
    """One event to one webhook destination (the webhook channel's outbox). The body is
    final when queued; the signature headers are made afresh at each attempt (a Standard
    Webhooks timestamp must be recent), with the destination's secrets as they are then.

    `destination` is an opaque key of the app that owns the destination (its endpoint),
    which `settings.WEBHOOK_DESTINATIONS` resolves; `ordering_key` groups deliveries that
    must reach a destination in the order they were queued (one incident's events)."""

    event = models.CharField(max_length=60)
    destination = models.CharField(max_length=100)
    ordering_key = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=2000)
    body = models.TextField()
    headers = models.JSONField(default=dict, blank=True)
    webhook_id = models.CharField(max_length=64, default=new_webhook_id, editable=False)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["state", "-created_at"], name="webhook_state_newest"),
            models.Index(fields=["state", "lease_expires_at"], name="webhook_state_lease"),
            # The per-destination log, and the "anything earlier still pending?" check.
            models.Index(fields=["destination", "ordering_key", "state", "id"], name="webhook_destination_order"),
            models.Index(fields=["destination", "-created_at"], name="webhook_destination_newest"),
        ]

    def __str__(self):
        return f"{self.event} to {self.destination}"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: what the delivery log shows."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ("delivery", "number", "id")

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}"
