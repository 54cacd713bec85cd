"""The outbox in the admin: what went out, what is waiting, and what failed (and why)."""

from django.contrib import admin, messages

from . import outbox
from .models import OutgoingEmail, WebhookAttempt, WebhookDelivery
from .pagination import CappedPaginator


class OutboxAdmin(admin.ModelAdmin):
    """An outbox changelist: rows are written by the services and the workers only, never
    edited here; its actions (send again) need the "resend" check below."""

    def has_add_permission(self, request):
        return False

    def has_resend_permission(self, request):
        """Sending again needs the model's change permission (granted to staff who run the
        outbox), though the rows themselves are never edited here: staff who may only
        view the outbox cannot make it send."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutgoingEmail)
class OutgoingEmailAdmin(OutboxAdmin):
    """The mail outbox: what went out, what is waiting, and what failed (and why)."""

    list_display = ("created_at", "kind", "to", "subject", "state", "attempts", "next_attempt_at", "sent_at")
    list_filter = ("state", "kind", "created_at")
    # Exact recipient or Message-ID: each an index look-up (a LIKE over subjects would read
    # every row). No date_hierarchy: its SELECT DISTINCT of years reads every row too; the
    # "created at" filter takes its place.
    search_fields = ("=to", "=message_id")
    search_help_text = "A recipient's exact address, or a Message-ID."
    paginator = CappedPaginator
    show_full_result_count = False
    readonly_fields = (
        "kind",
        "to",
        "subject",
        "message_id",
        "reply_to",
        "body_text",
        "body_html",
        "state",
        "attempts",
        "last_error",
        "created_at",
        "next_attempt_at",
        "claimed_at",
        "lease_expires_at",
        "sent_at",
    )
    actions = ("retry_selected",)

    @admin.action(
        description="Send selected e-mails again (failed ones, and ones whose worker died)", permissions=["resend"]
    )
    def retry_selected(self, request, queryset):
        count = outbox.retry(queryset)
        self.message_user(request, f"Queued {count} e-mail{'s' if count != 1 else ''} again.", messages.SUCCESS)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = readonly_fields = ("number", "started_at", "status_code", "duration_ms", "response_excerpt", "error")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OutboxAdmin):
    """The webhook delivery log: each event posted to each destination, its attempts
    (status code, time taken, what the receiver said), and "redeliver"."""

    list_display = (
        "created_at",
        "event",
        "destination",
        "state",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "sent_at",
    )
    list_filter = ("state", "event", "created_at")
    search_fields = ("=destination", "=webhook_id", "=ordering_key")
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = (
        "event",
        "destination",
        "ordering_key",
        "url",
        "webhook_id",
        "body",
        "headers",
        "state",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "next_attempt_at",
        "claimed_at",
        "lease_expires_at",
        "sent_at",
    )
    inlines = (WebhookAttemptInline,)
    actions = ("redeliver_selected",)

    @admin.action(description="Redeliver selected deliveries (sent or failed ones)", permissions=["resend"])
    def redeliver_selected(self, request, queryset):
        count = outbox.redeliver(queryset)
        self.message_user(request, f"Queued {count} deliver{'ies' if count != 1 else 'y'} again.", messages.SUCCESS)
