"""SLA escalation with real `mail_worker` processes and a real SMTP server on loopback:
a missed clock reaches the team's lead by mail within 60 s and the timeline says so, once,
with two workers at once, and after a worker is killed or its task is lost."""

import time
from datetime import timedelta

import pytest
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from incidents import services
from incidents.models import EventKind, IncidentEvent, Severity, SlaPolicy
from notifications.models import OutgoingEmail

# The real-worker fixtures live with the outbox's own process tests.
from notifications.tests.conftest import shared_database, smtp_sink, wait_for, workers  # noqa: F401

from .factories import category_of, make_team

pytestmark = pytest.mark.django_db(transaction=True)

ESCALATION_LIMIT = 60  # seconds, as the issue asks


@pytest.fixture
def quick_policy(make_user):
    """A Facilities team with a lead, whose Critical incidents must be acknowledged within
    two seconds."""
    # She hears of escalations only (no new-incident alerts), so every mail to her is one.
    lead = make_user("lena", email="lena@example.com", email_on_new_incident=False)
    team = make_team("facilities", members=[lead], leads=[lead], category="facilities-issues")
    SlaPolicy.objects.create(
        severity=Severity.CRITICAL,
        team=team,
        acknowledge_within=timedelta(seconds=2),
        resolve_within=timedelta(hours=4),
    )
    return team


def report(reporter, team, title="Gas smell in the boiler room"):
    return services.report_incident(
        reporter=reporter,
        title=title,
        description="Strong smell.",
        severity=Severity.CRITICAL,
        category=category_of(team),
    )


def breaches(incident):
    return list(IncidentEvent.objects.filter(incident=incident, kind=EventKind.SLA_BREACHED))


def escalation_mails(sink):
    return sink.copies()["lena@example.com"]


def test_a_missed_clock_reaches_the_lead_by_mail_within_60_seconds(workers, quick_policy, reporter):
    # given: a worker running, and a Critical incident due for acknowledgement in 2 s
    with smtp_sink() as (sink, port):
        workers.start(port, "w1")
        incident = report(reporter, quick_policy)
        due = incident.acknowledge_due_at

        # when: nobody acknowledges it
        wait_for(lambda: escalation_mails(sink), timeout=ESCALATION_LIMIT + 5, what="the escalation mail")
        arrived = time.time()

    # then: within 60 s of the due time, one mail to the lead, one timeline event
    assert arrived - due.timestamp() < ESCALATION_LIMIT
    (event,) = breaches(incident)
    assert event.field == "acknowledge"
    assert event.created_at >= due
    incident.refresh_from_db()
    assert incident.acknowledge_breached_at == event.created_at
    mail = OutgoingEmail.objects.get(kind="sla_breached")
    assert mail.to == "lena@example.com"
    assert "SLA breached (acknowledge)" in mail.subject


def test_two_workers_escalate_each_breach_exactly_once(workers, quick_policy, reporter):
    # given: two workers polling the same queue, and eight incidents falling due together
    with smtp_sink() as (sink, port):
        workers.start(port, "w1")
        workers.start(port, "w2")
        incidents = [report(reporter, quick_policy, title=f"Leak {n}") for n in range(8)]

        # when: every escalation has gone out, and both workers swept several times more
        wait_for(lambda: escalation_mails(sink) >= 8, timeout=ESCALATION_LIMIT + 5, what="eight escalation mails")
        time.sleep(3)

        # then
        assert escalation_mails(sink) == 8
    assert [len(breaches(incident)) for incident in incidents] == [1] * 8
    assert OutgoingEmail.objects.filter(kind="sla_breached").count() == 8


def test_a_worker_killed_before_the_due_time_is_replaced_and_the_breach_still_escalates(
    workers, quick_policy, reporter
):
    # given: the only worker dies (kill -9) before the clock falls due
    with smtp_sink() as (sink, port):
        first = workers.start(port, "w1")
        incident = report(reporter, quick_policy)
        workers.kill(first)
        time.sleep(2.5)  # past due, with no worker running

        # when: a worker is started again
        workers.start(port, "w2")
        wait_for(lambda: escalation_mails(sink), timeout=ESCALATION_LIMIT, what="the escalation mail")
        time.sleep(2)

        # then: escalated once
        assert escalation_mails(sink) == 1
    assert len(breaches(incident)) == 1


def test_a_lost_escalation_task_is_made_up_for_by_the_workers_sweep(workers, quick_policy, reporter):
    # given: an overdue incident whose escalation task is gone (a wiped queue, a bad restore)
    incident = report(reporter, quick_policy)
    DBTaskResult.objects.filter(task_path="incidents.tasks.check_sla").delete()
    time.sleep(2.1)

    # when: a worker runs
    with smtp_sink() as (sink, port):
        workers.start(port, "w1")
        wait_for(lambda: escalation_mails(sink), timeout=ESCALATION_LIMIT, what="the escalation mail")

    # then: the sweep found it
    assert len(breaches(incident)) == 1


def test_acknowledging_in_time_cancels_the_escalation(workers, quick_policy, reporter):
    # given: a worker, and an incident acknowledged before its clock ran out
    lead = quick_policy.leads.get()
    with smtp_sink() as (sink, port):
        workers.start(port, "w1")
        incident = report(reporter, quick_policy)
        services.change_status(incident=incident, actor=lead, status="Acknowledged")

        # when: its old due time has passed, and the check queued for it has run
        wait_for(
            lambda: DBTaskResult.objects.filter(
                task_path="incidents.tasks.check_sla",
                run_after=incident.acknowledge_due_at,
                status=TaskResultStatus.SUCCESSFUL,
            ).exists(),
            timeout=ESCALATION_LIMIT,
            what="the SLA check to run",
        )
        time.sleep(1)

        # then: nothing was escalated
        assert escalation_mails(sink) == 0
    assert breaches(incident) == []
