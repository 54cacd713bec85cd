"""SLA clocks: the policies (with the defaults the issue fixed, all 24x7) and two clocks
per incident.

Incidents still open when this runs get clocks from the default policies, counted from
their report. Clocks already past due are recorded as breached without escalating them:
an upgrade must not mail every lead about every old incident at once.
"""

from datetime import UTC, datetime, timedelta

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# models.NO_DEADLINE, as of this migration.
NO_DEADLINE = datetime(9000, 1, 1, tzinfo=UTC)


DEFAULTS = {
    "Critical": (timedelta(minutes=15), timedelta(hours=4)),
    "High": (timedelta(hours=1), timedelta(days=1)),
    "Medium": (timedelta(hours=4), timedelta(days=3)),
    "Low": (timedelta(days=1), timedelta(days=7)),
}
OPEN = ("Reported", "Acknowledged", "In Progress")
NO_DEADLINE_BASE = datetime(2500, 1, 1, tzinfo=UTC)  # models.no_deadline_key, as of this migration


def create_defaults_and_start_clocks(apps, schema_editor):
    from django.conf import settings
    from django.db.models import F
    from django.utils import timezone

    at_risk_after = 1 - getattr(settings, "SLA_AT_RISK_FRACTION", 0.2)

    SlaPolicy = apps.get_model("incidents", "SlaPolicy")
    Incident = apps.get_model("incidents", "Incident")
    now = timezone.now()
    for severity, (acknowledge, resolve) in DEFAULTS.items():
        SlaPolicy.objects.get_or_create(
            severity=severity,
            team=None,
            defaults={"acknowledge_within": acknowledge, "resolve_within": resolve, "business_hours": False},
        )
        still_open = Incident.objects.filter(severity=severity, status__in=OPEN)
        still_open.update(
            acknowledge_due_at=F("created_at") + acknowledge,
            acknowledge_warn_at=F("created_at") + acknowledge * at_risk_after,
            resolve_due_at=F("created_at") + resolve,
            resolve_warn_at=F("created_at") + resolve * at_risk_after,
        )
        unacknowledged = still_open.filter(acknowledged_at__isnull=True)
        unacknowledged.update(sla_due_at=F("acknowledge_due_at"))
        still_open.filter(acknowledged_at__isnull=False).update(sla_due_at=F("resolve_due_at"))
        unacknowledged.filter(acknowledge_due_at__lte=now).update(acknowledge_breached_at=F("acknowledge_due_at"))
        still_open.filter(acknowledged_at__gt=F("acknowledge_due_at")).update(
            acknowledge_breached_at=F("acknowledged_at")
        )
        still_open.filter(resolve_due_at__lte=now).update(resolve_breached_at=F("resolve_due_at"))
        still_open.filter(sla_due_at__gt=now).update(sla_escalate_at=F("sla_due_at"))
        unacknowledged.filter(acknowledge_due_at__lte=now, resolve_due_at__gt=now).update(
            sla_escalate_at=F("resolve_due_at")
        )
    # Everything else has no clock running: each its own sort key, newest first.
    no_deadline = Incident.objects.filter(sla_due_at=NO_DEADLINE).order_by("pk")
    batch = []
    for pk, created_at in no_deadline.values_list("pk", "created_at").iterator(chunk_size=2000):
        batch.append(Incident(pk=pk, sla_due_at=NO_DEADLINE + (NO_DEADLINE_BASE - created_at)))
        if len(batch) == 2000:
            Incident.objects.bulk_update(batch, ["sla_due_at"])
            batch = []
    Incident.objects.bulk_update(batch, ["sla_due_at"])


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0012_incident_team_required"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SlaPolicy",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "severity",
                    models.CharField(
                        choices=[("Low", "Low"), ("Medium", "Medium"), ("High", "High"), ("Critical", "Critical")],
                        max_length=10,
                    ),
                ),
                (
                    "acknowledge_within",
                    models.DurationField(help_text="From the report to the first move out of Reported."),
                ),
                (
                    "resolve_within",
                    models.DurationField(help_text="From the report (or a reopening) to Resolved or Closed."),
                ),
                (
                    "business_hours",
                    models.BooleanField(
                        default=False, help_text="Count only business hours (SLA_BUSINESS_HOURS), not around the clock."
                    ),
                ),
            ],
            options={
                "verbose_name": "SLA policy",
                "verbose_name_plural": "SLA policies",
                "ordering": ("team__name", "severity"),
            },
        ),
        migrations.AddField(
            model_name="incident",
            name="acknowledge_breached_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="incident",
            name="acknowledge_due_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="incident",
            name="acknowledge_warn_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="incident",
            name="resolve_breached_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="incident",
            name="resolve_due_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="incident",
            name="resolve_warn_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="incident",
            name="sla_due_at",
            field=models.DateTimeField(default=NO_DEADLINE, editable=False),
        ),
        migrations.AddField(
            model_name="incident",
            name="sla_escalate_at",
            field=models.DateTimeField(default=NO_DEADLINE, editable=False),
        ),
        migrations.AlterField(
            model_name="incidentevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("reported", "Reported"),
                    ("status_changed", "Status changed"),
                    ("severity_changed", "Severity changed"),
                    ("edited", "Edited"),
                    ("responded", "Responded"),
                    ("reporter_changed", "Reporter changed"),
                    ("assigned", "Assigned"),
                    ("unassigned", "Unassigned"),
                    ("team_changed", "Team changed"),
                    ("category_changed", "Category changed"),
                    ("sla_breached", "SLA breached"),
                ],
                max_length=20,
            ),
        ),
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(fields=["sla_due_at", "id"], name="incident_sla_due"),
        ),
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(fields=["team", "sla_due_at", "id"], name="incident_team_sla_due"),
        ),
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(fields=["sla_escalate_at"], name="incident_sla_escalate"),
        ),
        migrations.AddField(
            model_name="slapolicy",
            name="team",
            field=models.ForeignKey(
                blank=True,
                help_text="Empty: the default for every team without a policy of its own.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="sla_policies",
                to="incidents.team",
            ),
        ),
        migrations.AddConstraint(
            model_name="slapolicy",
            constraint=models.UniqueConstraint(fields=("severity", "team"), name="sla_policy_one_per_team_severity"),
        ),
        migrations.AddConstraint(
            model_name="slapolicy",
            constraint=models.UniqueConstraint(
                condition=models.Q(("team__isnull", True)),
                fields=("severity",),
                name="sla_policy_one_default_per_severity",
            ),
        ),
        migrations.AddConstraint(
            model_name="slapolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(("severity__in", ["Low", "Medium", "High", "Critical"])),
                name="sla_policy_severity_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="slapolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("acknowledge_within__gt", timedelta(0)),
                    ("acknowledge_within__lte", timedelta(days=365)),
                    ("resolve_within__gt", timedelta(0)),
                    ("resolve_within__lte", timedelta(days=365)),
                ),
                name="sla_policy_durations_in_range",
                violation_error_message="Each target must be more than zero and at most 365 days.",
            ),
        ),
        migrations.RunPython(create_defaults_and_start_clocks, migrations.RunPython.noop),
    ]
