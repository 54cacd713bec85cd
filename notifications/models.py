"""The outbox: one row per message to deliver, through one channel, to one recipient.

A row is written in the same transaction as the change it reports (a rolled-back change
leaves nothing to send; a committed one always has its message), together with the task
that delivers it. `state` makes each delivery at most once per row: a worker claims a
queued row (queued -> sending) before it talks to the outside world, then records the
result. The fields every channel shares live on `OutboxMessage`; each channel adds what
its message needs (mail today; webhooks and chat reuse the same machinery).

This app knows no domain: callers give it rendered content and an address.
"""

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
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class OutgoingEmail(OutboxMessage):
    """One e-mail to one recipient (the mail channel's outbox)."""

    kind = models.CharField(max_length=30)
    to = models.EmailField()
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["state", "-created_at"], name="email_state_newest")]

    def __str__(self):
        return f"{self.kind} to {self.to}"
