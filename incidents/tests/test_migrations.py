"""Data migrations can be rolled back and replayed without losing anybody's role, and the
SLA migration starts clocks on what is already open."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from incidents import services, sla
from incidents.models import (
    DEFAULT_TEAM,
    EventKind,
    Incident,
    IncidentEvent,
    Severity,
    SlaPolicy,
    Status,
    Team,
    no_deadline_key,
)

from .factories import make_incident, make_responder


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_rolling_back_below_the_responders_migration_keeps_its_members(make_user):
    # given: a member of the response team (the Responders group of earlier versions)
    responder = make_responder(make_user, "rita")
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()

    # when: back below incidents/0002 (the team becomes the group again) and forward again
    migrate([("incidents", "0001_initial")])
    assert list(Group.objects.get(name="Responders").user_set.values_list("username", flat=True)) == ["rita"]
    migrate(latest)

    # then: the team has its member back, and the group is gone again
    team = Team.objects.get(slug=DEFAULT_TEAM)
    assert team.sees_all
    assert list(team.members.values_list("username", flat=True)) == [responder.username]
    assert not Group.objects.filter(name="Responders").exists()


@pytest.mark.django_db(transaction=True)
def test_the_sla_migration_starts_clocks_on_open_incidents_without_a_storm_of_escalations(reporter, staff):
    # given: before SLAs, an old unacknowledged Critical incident, one acknowledged late,
    # a fresh one, and a closed one
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old = make_incident(reporter, title="old", severity=Severity.CRITICAL)
    late = make_incident(reporter, title="late", severity=Severity.CRITICAL)
    fresh = make_incident(reporter, title="fresh", severity=Severity.CRITICAL)
    closed = make_incident(reporter, title="closed", severity=Severity.CRITICAL)
    services.change_status(incident=closed, actor=staff, status=Status.CLOSED)
    migrate([("incidents", "0012_incident_team_required")])
    now = timezone.now()
    Incident.objects.filter(pk__in=[old.pk, late.pk]).update(created_at=now - timedelta(hours=1))
    Incident.objects.filter(pk=late.pk).update(status=Status.ACKNOWLEDGED, acknowledged_at=now - timedelta(minutes=30))

    # when
    migrate(latest)

    # then: the default policies exist, open incidents have clocks from their report time,
    # missed ones are recorded as breached but not escalated, and the sweep leaves them be
    assert set(SlaPolicy.objects.filter(team=None).values_list("severity", flat=True)) == set(Severity.values)
    old, late, fresh, closed = (Incident.objects.get(pk=i.pk) for i in (old, late, fresh, closed))
    assert old.acknowledge_due_at == old.created_at + timedelta(minutes=15)
    assert old.acknowledge_breached_at == old.acknowledge_due_at
    assert old.sla_escalate_at == old.resolve_due_at  # next: the resolve clock, 4 h after the report
    assert late.acknowledge_breached_at == late.acknowledged_at
    assert sla.clock(late, "acknowledge").state == sla.State.BREACHED
    assert fresh.acknowledge_breached_at is None
    assert fresh.sla_escalate_at == fresh.acknowledge_due_at
    assert closed.acknowledge_due_at is None and closed.sla_due_at == no_deadline_key(closed.created_at)
    assert services.escalate_overdue() == 0
    assert not IncidentEvent.objects.filter(kind=EventKind.SLA_BREACHED).exists()
