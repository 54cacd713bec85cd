"""SLA clocks (incidents/sla.py): business-hours arithmetic, the choice of policy, the
clocks the services keep at each workflow move and re-grade, their states (in Python and
in the database's `sla=` filter) and the escalation of a missed clock, exactly once.

No clock is frozen: an incident is made overdue by moving every time it holds into the
past (`as_if_passed`), which is what the passing of that time would have left."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from incidents import services, sla
from incidents.models import NO_DEADLINE, EventKind, Incident, IncidentEvent, Severity, SlaPolicy, Status
from notifications.models import OutgoingEmail

from .factories import advance_to, category_of, make_incident

PARIS = ZoneInfo("Europe/Paris")
WORKING_WEEK = "mon-fri 09:00-17:00"

# Every time an incident row holds, for `as_if_passed`.
TIMES = ("created_at", "acknowledged_at", "resolved_at", "closed_at", *sla.COLUMNS)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def paris(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


def as_if_passed(incident: Incident, delta: timedelta) -> Incident:
    """Move every time `incident` and its timeline hold `delta` into the past, as if `delta`
    had gone by since: its clocks are then `delta` closer to (or past) their due times."""
    row = Incident.objects.filter(pk=incident.pk).values(*TIMES).get()
    moved = {field: value - delta for field, value in row.items() if value is not None and value != NO_DEADLINE}
    Incident.objects.filter(pk=incident.pk).update(**moved)
    for event in IncidentEvent.objects.filter(incident_id=incident.pk):
        IncidentEvent.objects.filter(pk=event.pk).update(created_at=event.created_at - delta)
    return Incident.objects.get(pk=incident.pk)


def reread(incident: Incident) -> Incident:
    return Incident.objects.get(pk=incident.pk)


def breach_events(incident: Incident):
    return IncidentEvent.objects.filter(incident_id=incident.pk, kind=EventKind.SLA_BREACHED).order_by("id")


def breach_mails() -> list[str]:
    return sorted(OutgoingEmail.objects.filter(kind="sla_breached").values_list("to", flat=True))


def states(incident: Incident, now: datetime) -> dict[str, str]:
    return {name: clock.state for name, clock in sla.clocks(incident, now).items()}


# --- Business hours ------------------------------------------------------------------------


def test_a_friday_afternoon_report_with_four_business_hours_is_due_on_monday_at_half_past_twelve():
    # given
    hours = sla.parse_business_hours(WORKING_WEEK)

    # when
    due = hours.add(utc("2026-11-27 16:30"), timedelta(hours=4))  # a Friday

    # then: half an hour on Friday, three and a half on Monday
    assert due == utc("2026-11-30 12:30")


@pytest.mark.parametrize(
    ("start", "due"),
    [
        pytest.param("2026-11-30 07:00", "2026-11-30 10:00", id="before-opening"),
        pytest.param("2026-11-30 09:00", "2026-11-30 10:00", id="at-opening"),
        pytest.param("2026-11-30 18:00", "2026-12-01 10:00", id="after-closing"),
        pytest.param("2026-11-30 17:00", "2026-12-01 10:00", id="at-closing"),
        pytest.param("2026-11-28 11:00", "2026-11-30 10:00", id="on-saturday"),
        pytest.param("2026-11-29 23:59", "2026-11-30 10:00", id="late-on-sunday"),
    ],
)
def test_a_clock_started_outside_business_hours_starts_counting_at_the_next_opening(start, due):
    # given
    hours = sla.parse_business_hours(WORKING_WEEK)

    # when / then
    assert hours.add(utc(start), timedelta(hours=1)) == utc(due)


def test_a_clock_ending_exactly_at_closing_time_is_due_at_closing_time():
    # given
    hours = sla.parse_business_hours(WORKING_WEEK)

    # when / then
    assert hours.add(utc("2026-11-30 09:00"), timedelta(hours=8)) == utc("2026-11-30 17:00")


def test_business_time_spans_several_nights_and_a_weekend():
    # given
    hours = sla.parse_business_hours(WORKING_WEEK)

    # when: 20 business hours from Wednesday 15:00
    due = hours.add(utc("2026-11-25 15:00"), timedelta(hours=20))

    # then: 2 on Wednesday, 8 on Thursday, 8 on Friday, 2 on Monday
    assert due == utc("2026-11-30 11:00")


def test_a_day_with_a_lunch_break_counts_both_windows_and_not_the_break():
    # given
    hours = sla.parse_business_hours("mon-fri 09:00-12:00 13:00-17:00")

    # when / then
    assert hours.add(utc("2026-11-30 11:00"), timedelta(hours=2)) == utc("2026-11-30 14:00")
    assert hours.add(utc("2026-11-30 12:30"), timedelta(hours=1)) == utc("2026-11-30 14:00")
    assert hours.add(utc("2026-11-30 16:00"), timedelta(hours=3)) == utc("2026-12-01 11:00")


def test_groups_separated_by_semicolons_each_set_their_own_days():
    # given: long days Monday to Thursday, a short Friday
    hours = sla.parse_business_hours("mon-thu 08:00-18:00; fri 08:00-14:00")

    # when / then
    assert hours.add(utc("2026-12-03 17:00"), timedelta(hours=2)) == utc("2026-12-04 09:00")  # Thursday
    assert hours.add(utc("2026-12-04 13:00"), timedelta(hours=2)) == utc("2026-12-07 09:00")  # Friday
    assert hours.add(utc("2026-12-05 10:00"), timedelta(hours=1)) == utc("2026-12-07 09:00")  # Saturday


def test_days_may_be_a_list():
    # given
    hours = sla.parse_business_hours("mon,wed,fri 10:00-12:00")

    # when / then: Monday 11:00 + 2 h is Monday's last hour and Wednesday's first
    assert hours.add(utc("2026-11-30 11:00"), timedelta(hours=2)) == utc("2026-12-02 11:00")
    assert [bool(day) for day in hours.windows] == [True, False, True, False, True, False, False]


def test_overlapping_windows_count_each_business_hour_once():
    # given: Monday named by two groups, the office's 09:00-17:00 and a late shift's
    # 12:00-18:00: Monday's business hours are 09:00-18:00
    hours = sla.parse_business_hours("mon-fri 09:00-17:00; mon 12:00-18:00")
    start = utc("2026-11-30 09:00")  # a Monday

    # when
    dues = [hours.add(start, timedelta(hours=n)) for n in (7, 8, 9, 10)]

    # then: more business time is never due sooner; the tenth hour is Tuesday's first
    assert dues == [utc("2026-11-30 16:00"), utc("2026-11-30 17:00"), utc("2026-11-30 18:00"), utc("2026-12-01 10:00")]


def test_a_day_range_may_wrap_around_the_weekend():
    # given
    hours = sla.parse_business_hours("fri-mon 10:00-14:00")

    # when
    due = hours.add(utc("2026-11-30 13:00"), timedelta(hours=2))  # a Monday

    # then: Friday, Saturday, Sunday and Monday work; Tuesday to Thursday do not
    assert [bool(day) for day in hours.windows] == [True, False, False, False, True, True, True]
    assert due == utc("2026-12-04 11:00")


def test_an_end_of_24_00_means_midnight_at_the_end_of_the_day():
    # given
    evenings = sla.parse_business_hours("mon-fri 20:00-24:00")
    around_the_clock = sla.parse_business_hours("mon-sun 00:00-24:00")

    # when / then
    assert evenings.add(utc("2026-11-30 23:00"), timedelta(hours=2)) == utc("2026-12-01 21:00")
    assert around_the_clock.add(utc("2026-11-27 16:30"), timedelta(hours=50)) == utc("2026-11-29 18:30")


@pytest.mark.parametrize(
    ("start", "duration", "due"),
    [
        # Spring forward (29 March 2026): that Sunday has 23 hours.
        pytest.param("2026-03-29 00:00", timedelta(hours=23), "2026-03-30 00:00", id="spring-day-is-23-hours"),
        pytest.param("2026-03-29 00:00", timedelta(hours=24), "2026-03-30 01:00", id="spring-24-hours-into-monday"),
        pytest.param("2026-03-28 12:00", timedelta(hours=48), "2026-03-30 13:00", id="spring-48-real-hours"),
        # Fall back (25 October 2026): that Sunday has 25 hours.
        pytest.param("2026-10-25 00:00", timedelta(hours=25), "2026-10-26 00:00", id="autumn-day-is-25-hours"),
        pytest.param("2026-10-24 12:00", timedelta(hours=48), "2026-10-26 11:00", id="autumn-48-real-hours"),
    ],
)
def test_around_the_clock_business_time_counts_the_real_hours_of_a_dst_day(start, duration, due):
    # given
    hours = sla.parse_business_hours("mon-sun 00:00-24:00", "Europe/Paris")

    # when
    result = hours.add(paris(start), duration)

    # then: business time is real (UTC) time, whatever the wall clock says
    assert result == paris(due)
    assert result - paris(start) == duration


@pytest.mark.parametrize(
    ("friday", "monday", "monday_utc"),
    [
        # 27 March: CET (+01:00) on Friday, CEST (+02:00) on Monday.
        pytest.param("2026-03-27 16:30", "2026-03-30 12:30", "2026-03-30 10:30", id="spring-forward"),
        # 23 October: CEST (+02:00) on Friday, CET (+01:00) on Monday.
        pytest.param("2026-10-23 16:30", "2026-10-26 12:30", "2026-10-26 11:30", id="fall-back"),
    ],
)
def test_a_working_week_clock_across_a_dst_weekend_is_due_at_local_half_past_twelve(friday, monday, monday_utc):
    # given
    hours = sla.parse_business_hours(WORKING_WEEK, "Europe/Paris")

    # when
    due = hours.add(paris(friday), timedelta(hours=4))

    # then: 12:30 on the wall clock, which is another UTC offset than Friday's
    assert due.astimezone(PARIS).replace(tzinfo=None) == datetime.fromisoformat(monday)
    assert due == utc(monday_utc)


def test_a_window_across_the_missing_spring_hour_counts_only_the_hours_it_has():
    # given: 01:00-04:00 is two real hours on 29 March 2026 (02:00-03:00 does not exist)
    hours = sla.parse_business_hours("mon-sun 01:00-04:00", "Europe/Paris")

    # when
    due = hours.add(paris("2026-03-29 01:00"), timedelta(hours=3))

    # then: two hours that Sunday, the third on Monday
    assert due == paris("2026-03-30 02:00")


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("mon-fry 09:00-17:00", id="bad-day"),
        pytest.param("monday 09:00-17:00", id="day-spelt-out"),
        pytest.param("mon-fri 25:00-26:00", id="hour-out-of-range"),
        pytest.param("mon-fri 09:60-17:00", id="minute-out-of-range"),
        pytest.param("mon-fri 9-17", id="no-minutes"),
        pytest.param("mon-fri 17:00-09:00", id="end-before-start"),
        pytest.param("mon-fri 09:00-09:00", id="end-equals-start"),
        pytest.param("mon-fri 24:00-24:00", id="starts-at-24-00"),
        pytest.param("mon-fri", id="no-hours"),
        pytest.param("09:00-17:00", id="no-days"),
        pytest.param("", id="empty"),
        pytest.param("  ;  ", id="only-separators"),
    ],
)
def test_a_spec_it_cannot_read_is_improperly_configured(spec):
    # when / then
    with pytest.raises(ImproperlyConfigured):
        sla.parse_business_hours(spec)


# --- Which policy applies --------------------------------------------------------------------


def test_a_teams_own_policy_beats_the_default_and_other_teams_get_the_default(facilities, helpdesk):
    # given
    own = SlaPolicy.objects.create(
        severity=Severity.HIGH,
        team=facilities,
        acknowledge_within=timedelta(minutes=10),
        resolve_within=timedelta(hours=2),
    )
    default = SlaPolicy.objects.get(severity=Severity.HIGH, team=None)

    # when / then
    assert sla.policy_for(Severity.HIGH, facilities.pk) == own
    assert sla.policy_for(Severity.HIGH, helpdesk.pk) == default
    assert (default.acknowledge_within, default.resolve_within) == (timedelta(hours=1), timedelta(days=1))
    # Its own policy for High says nothing of its other severities.
    assert sla.policy_for(Severity.LOW, facilities.pk) == SlaPolicy.objects.get(severity=Severity.LOW, team=None)


def test_a_report_uses_its_teams_own_policy(reporter, facilities, helpdesk):
    # given
    SlaPolicy.objects.create(
        severity=Severity.HIGH,
        team=facilities,
        acknowledge_within=timedelta(minutes=10),
        resolve_within=timedelta(hours=2),
    )

    # when
    ours = make_incident(reporter, severity=Severity.HIGH, category=category_of(facilities))
    theirs = make_incident(reporter, severity=Severity.HIGH, category=category_of(helpdesk))

    # then
    ours, theirs = reread(ours), reread(theirs)
    assert (ours.acknowledge_due_at, ours.resolve_due_at) == (
        ours.created_at + timedelta(minutes=10),
        ours.created_at + timedelta(hours=2),
    )
    assert (theirs.acknowledge_due_at, theirs.resolve_due_at) == (
        theirs.created_at + timedelta(hours=1),
        theirs.created_at + timedelta(days=1),
    )


def test_without_any_policy_for_its_severity_an_incident_has_no_due_time(reporter):
    # given
    SlaPolicy.objects.filter(severity=Severity.LOW).delete()
    assert sla.policy_for(Severity.LOW, None) is None

    # when
    incident = reread(make_incident(reporter, severity=Severity.LOW))

    # then
    assert (incident.acknowledge_due_at, incident.acknowledge_warn_at) == (None, None)
    assert (incident.resolve_due_at, incident.resolve_warn_at) == (None, None)
    assert incident.sla_due_at >= NO_DEADLINE and incident.sla_escalate_at == NO_DEADLINE
    later = timezone.now() + timedelta(days=365)
    clocks = sla.clocks(incident, later)
    assert [(c.due_at, c.state) for c in clocks.values()] == [(None, "pending"), (None, "pending")]
    assert sla.next_clock(incident, later) is None


# --- The clocks at each workflow move ---------------------------------------------------------


def test_a_report_starts_both_clocks_at_its_report_time_with_warnings_at_80_percent(reporter):
    # when
    incident = reread(make_incident(reporter, severity=Severity.CRITICAL))

    # then
    start = incident.created_at
    assert incident.acknowledge_due_at == start + timedelta(minutes=15)
    assert incident.acknowledge_warn_at == start + timedelta(minutes=12)
    assert incident.resolve_due_at == start + timedelta(hours=4)
    assert incident.resolve_warn_at == start + timedelta(hours=3, minutes=12)
    assert (incident.acknowledge_breached_at, incident.resolve_breached_at) == (None, None)
    assert incident.sla_due_at == incident.sla_escalate_at == incident.acknowledge_due_at
    assert states(incident, start) == {"acknowledge": "pending", "resolve": "pending"}


def test_acknowledging_meets_the_acknowledge_clock(reporter, responder):
    # given
    incident = make_incident(reporter, severity=Severity.CRITICAL)

    # when
    incident = advance_to(incident, Status.ACKNOWLEDGED, by=responder)

    # then: the resolve clock is what is left to meet
    assert states(incident, incident.acknowledged_at) == {"acknowledge": "met", "resolve": "pending"}
    # met on time stays met once the due time has gone by
    assert states(incident, incident.acknowledge_due_at + timedelta(hours=1))["acknowledge"] == "met"
    assert incident.acknowledge_breached_at is None
    assert incident.sla_due_at == incident.sla_escalate_at == incident.resolve_due_at


def test_closing_straight_from_reported_meets_both_clocks(reporter, staff):
    # given
    incident = make_incident(reporter, severity=Severity.CRITICAL)

    # when
    incident = reread(services.change_status(incident=incident, actor=staff, status=Status.CLOSED))

    # then
    assert incident.acknowledged_at is None
    assert states(incident, incident.closed_at + timedelta(days=1)) == {"acknowledge": "met", "resolve": "met"}
    assert incident.sla_due_at >= NO_DEADLINE and incident.sla_escalate_at == NO_DEADLINE


def test_resolving_meets_the_resolve_clock(reporter, responder):
    # given
    incident = make_incident(reporter, severity=Severity.CRITICAL)

    # when
    incident = advance_to(incident, Status.RESOLVED, by=responder)

    # then
    assert states(incident, incident.resolved_at + timedelta(days=1)) == {"acknowledge": "met", "resolve": "met"}
    assert (incident.acknowledge_breached_at, incident.resolve_breached_at) == (None, None)
    assert incident.sla_due_at >= NO_DEADLINE and incident.sla_escalate_at == NO_DEADLINE


def test_reopening_restarts_the_resolve_clock_from_the_reopening_with_the_same_target(reporter, responder):
    # given: a Critical incident resolved five hours after its report, an hour late
    incident = as_if_passed(make_incident(reporter, severity=Severity.CRITICAL), timedelta(hours=5))
    incident = advance_to(incident, Status.RESOLVED, by=responder)
    assert incident.resolve_breached_at == incident.resolved_at
    assert incident.acknowledge_breached_at == incident.acknowledged_at

    # when
    incident = reread(services.change_status(incident=incident, actor=responder, status=Status.IN_PROGRESS))

    # then: four hours again, from the reopening; the late acknowledgement stays on record
    reopened = (
        IncidentEvent.objects.filter(incident=incident, kind=EventKind.STATUS_CHANGED, new_value=Status.IN_PROGRESS)
        .latest("id")
        .created_at
    )
    assert incident.resolve_due_at == reopened + timedelta(hours=4)
    assert incident.resolve_warn_at == reopened + timedelta(hours=3, minutes=12)
    assert incident.resolve_breached_at is None
    assert incident.acknowledge_breached_at is not None
    assert states(incident, reopened) == {"acknowledge": "breached", "resolve": "pending"}
    assert incident.sla_due_at == incident.sla_escalate_at == incident.resolve_due_at


def test_a_severity_change_recomputes_unmet_clocks_from_the_report_time(reporter, responder):
    # given: a Medium incident reported half an hour ago
    incident = as_if_passed(make_incident(reporter, severity=Severity.MEDIUM), timedelta(minutes=30))

    # when
    incident = reread(services.change_severity(incident=incident, actor=responder, severity=Severity.HIGH))

    # then: High's targets, counted from the report (not from the re-grade)
    start = incident.created_at
    assert (incident.acknowledge_due_at, incident.acknowledge_warn_at) == (
        start + timedelta(hours=1),
        start + timedelta(minutes=48),
    )
    assert (incident.resolve_due_at, incident.resolve_warn_at) == (
        start + timedelta(days=1),
        start + timedelta(hours=19, minutes=12),
    )
    assert incident.sla_due_at == incident.sla_escalate_at == incident.acknowledge_due_at
    assert not breach_events(incident).exists()


def test_a_severity_change_leaves_a_clock_already_met_alone(reporter, responder):
    # given: a Medium incident (4 h / 3 days), acknowledged
    incident = advance_to(make_incident(reporter, severity=Severity.MEDIUM), Status.ACKNOWLEDGED, by=responder)
    acknowledge = (incident.acknowledge_due_at, incident.acknowledge_warn_at)

    # when
    incident = reread(services.change_severity(incident=incident, actor=responder, severity=Severity.HIGH))

    # then: the met clock keeps its due time; the resolve clock takes High's day
    assert (incident.acknowledge_due_at, incident.acknowledge_warn_at) == acknowledge
    assert incident.acknowledge_due_at == incident.created_at + timedelta(hours=4)
    assert incident.resolve_due_at == incident.created_at + timedelta(days=1)
    assert incident.sla_due_at == incident.resolve_due_at


def test_a_move_to_a_team_with_its_own_policy_recomputes_the_clocks(lift, fred, helpdesk):
    # given: Helpdesk is quicker on Medium incidents than the default (4 h / 3 days)
    SlaPolicy.objects.create(
        severity=Severity.MEDIUM,
        team=helpdesk,
        acknowledge_within=timedelta(minutes=30),
        resolve_within=timedelta(hours=8),
    )
    assert reread(lift).acknowledge_due_at == lift.created_at + timedelta(hours=4)

    # when
    incident = reread(services.move_to_team(incident=lift, actor=fred, team=helpdesk))

    # then
    assert incident.acknowledge_due_at == incident.created_at + timedelta(minutes=30)
    assert incident.resolve_due_at == incident.created_at + timedelta(hours=8)
    assert incident.sla_due_at == incident.sla_escalate_at == incident.acknowledge_due_at


def test_a_business_hours_policy_counts_business_hours_on_a_regrade(reporter, responder, settings):
    # given: Low counts business hours in Paris (4 h to acknowledge, 16 h to resolve), and an
    # incident reported on a Friday at 16:30 (one still to come: no clock is overdue)
    settings.SLA_BUSINESS_HOURS = WORKING_WEEK
    settings.TIME_ZONE = "Europe/Paris"
    sla._business_hours.cache_clear()
    SlaPolicy.objects.filter(severity=Severity.LOW, team=None).update(
        business_hours=True, acknowledge_within=timedelta(hours=4), resolve_within=timedelta(hours=16)
    )
    incident = make_incident(reporter, severity=Severity.MEDIUM)
    Incident.objects.filter(pk=incident.pk).update(created_at=paris("2030-01-04 16:30"))

    # when
    incident = reread(services.change_severity(incident=reread(incident), actor=responder, severity=Severity.LOW))

    # then: half an hour on Friday, the rest on Monday (and Tuesday)
    assert incident.acknowledge_due_at == paris("2030-01-07 12:30")
    assert incident.acknowledge_warn_at == paris("2030-01-07 11:42")  # 3 h 12 min of business time
    assert incident.resolve_due_at == paris("2030-01-08 16:30")
    assert incident.resolve_warn_at == paris("2030-01-08 13:18")  # 12 h 48 min of business time


def test_a_report_under_a_business_hours_policy_is_due_in_business_time(reporter, settings):
    # given
    settings.SLA_BUSINESS_HOURS = WORKING_WEEK
    settings.TIME_ZONE = "Europe/Paris"
    sla._business_hours.cache_clear()
    SlaPolicy.objects.filter(severity=Severity.LOW, team=None).update(
        business_hours=True, acknowledge_within=timedelta(hours=4), resolve_within=timedelta(hours=16)
    )

    # when
    incident = reread(make_incident(reporter, severity=Severity.LOW))

    # then: due when four working hours in Paris have gone by, on a weekday inside them
    week = sla.parse_business_hours(WORKING_WEEK, "Europe/Paris")
    assert incident.acknowledge_due_at == week.add(incident.created_at, timedelta(hours=4))
    assert incident.resolve_due_at == week.add(incident.created_at, timedelta(hours=16))
    local = incident.acknowledge_due_at.astimezone(PARIS)
    assert local.weekday() < 5
    assert time(9) < local.time() <= time(17)


# --- The index columns -----------------------------------------------------------------------


def test_sla_due_at_is_the_soonest_unmet_due_time(reporter, facilities):
    # given: a policy whose resolve target is sooner than its acknowledge one
    SlaPolicy.objects.create(
        severity=Severity.LOW, team=facilities, acknowledge_within=timedelta(hours=2), resolve_within=timedelta(hours=1)
    )

    # when
    incident = reread(make_incident(reporter, severity=Severity.LOW, category=category_of(facilities)))

    # then
    assert incident.sla_due_at == incident.resolve_due_at == incident.created_at + timedelta(hours=1)
    assert sla.next_clock(incident).name == "resolve"


def test_sla_due_at_is_no_deadline_once_both_clocks_are_met(reporter, responder):
    # given
    incident = make_incident(reporter, severity=Severity.HIGH)
    assert reread(incident).sla_due_at == reread(incident).acknowledge_due_at

    # when
    incident = advance_to(incident, Status.RESOLVED, by=responder)

    # then
    assert incident.sla_due_at >= NO_DEADLINE and incident.sla_escalate_at == NO_DEADLINE
    assert sla.next_clock(incident) is None


def test_sla_escalate_at_skips_a_clock_already_escalated(reporter):
    # given: a Critical incident 20 minutes old, its acknowledge clock overdue
    incident = as_if_passed(make_incident(reporter, severity=Severity.CRITICAL), timedelta(minutes=20))

    # when
    assert services.escalate_breaches(incident_pk=incident.pk) == ["acknowledge"]

    # then: still the soonest unmet due time, but nothing left to escalate before resolve's
    incident = reread(incident)
    assert incident.acknowledge_breached_at is not None
    assert incident.sla_due_at == incident.acknowledge_due_at
    assert incident.sla_escalate_at == incident.resolve_due_at


# --- States ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "state"),
    [
        pytest.param(timedelta(0), "pending", id="at-report"),
        pytest.param(timedelta(minutes=11, seconds=59), "pending", id="just-before-warning"),
        pytest.param(timedelta(minutes=12), "at_risk", id="at-warning"),
        pytest.param(timedelta(minutes=14, seconds=59), "at_risk", id="just-before-due"),
        pytest.param(timedelta(minutes=15), "breached", id="at-due"),
        pytest.param(timedelta(days=2), "breached", id="long-after-due"),
    ],
)
def test_an_unmet_clock_is_pending_then_at_risk_then_breached(reporter, after, state):
    # given: a Critical incident (15 min to acknowledge, at risk after 12)
    incident = reread(make_incident(reporter, severity=Severity.CRITICAL))

    # when
    found = sla.clock(incident, "acknowledge", incident.created_at + after)

    # then
    assert (found.name, found.due_at, found.state) == ("acknowledge", incident.acknowledge_due_at, state)


def test_a_clock_met_late_stays_breached(reporter, responder):
    # given: a Critical incident 20 minutes old
    incident = as_if_passed(make_incident(reporter, severity=Severity.CRITICAL), timedelta(minutes=20))

    # when
    incident = advance_to(incident, Status.ACKNOWLEDGED, by=responder)

    # then: recorded as breached, on the timeline too, but nobody is mailed: somebody is
    # on it now
    assert incident.acknowledge_breached_at == incident.acknowledged_at
    assert states(incident, incident.acknowledged_at + timedelta(days=1))["acknowledge"] == "breached"
    (event,) = breach_events(incident)
    assert (event.field, event.created_at) == ("acknowledge", incident.acknowledged_at)
    assert not OutgoingEmail.objects.filter(kind="sla_breached").exists()


def test_a_clock_escalated_stays_breached_when_a_regrade_moves_its_due_time_later(reporter, responder):
    # given: a Critical incident whose acknowledge clock was escalated
    incident = as_if_passed(make_incident(reporter, severity=Severity.CRITICAL), timedelta(minutes=20))
    services.escalate_breaches(incident_pk=incident.pk)

    # when: re-graded Low (a day to acknowledge), then acknowledged within that day
    incident = reread(services.change_severity(incident=reread(incident), actor=responder, severity=Severity.LOW))
    assert incident.acknowledge_due_at == incident.created_at + timedelta(days=1)
    incident = advance_to(incident, Status.ACKNOWLEDGED, by=responder)

    # then
    assert incident.acknowledge_breached_at is not None
    assert states(incident, timezone.now())["acknowledge"] == "breached"
    assert breach_events(incident).count() == 1


def every_combination(reporter, responder, staff) -> list[Incident]:
    """Incidents whose clocks, between them, are in every state the services leave."""
    SlaPolicy.objects.filter(severity=Severity.LOW, team=None).delete()
    critical = {"severity": Severity.CRITICAL}
    made = [
        make_incident(reporter, title="fresh", **critical),
        make_incident(reporter, title="no policy", severity=Severity.LOW),
        advance_to(make_incident(reporter, title="acknowledged", **critical), Status.ACKNOWLEDGED, by=responder),
        advance_to(make_incident(reporter, title="resolved", **critical), Status.RESOLVED, by=responder),
        advance_to(make_incident(reporter, title="closed", **critical), Status.CLOSED, by=responder),
        services.change_status(
            incident=make_incident(reporter, title="closed from reported", **critical),
            actor=staff,
            status=Status.CLOSED,
        ),
        as_if_passed(make_incident(reporter, title="acknowledge at risk", **critical), timedelta(minutes=13)),
        as_if_passed(make_incident(reporter, title="acknowledge overdue", **critical), timedelta(minutes=20)),
        as_if_passed(make_incident(reporter, title="both overdue", **critical), timedelta(hours=5)),
        as_if_passed(
            advance_to(make_incident(reporter, title="resolve at risk", **critical), Status.ACKNOWLEDGED, by=responder),
            timedelta(hours=3, minutes=30),
        ),
    ]
    late = as_if_passed(make_incident(reporter, title="acknowledged late", **critical), timedelta(minutes=20))
    made.append(advance_to(late, Status.ACKNOWLEDGED, by=responder))
    late = as_if_passed(make_incident(reporter, title="resolved late", **critical), timedelta(hours=5))
    made.append(advance_to(late, Status.RESOLVED, by=responder))
    escalated = as_if_passed(make_incident(reporter, title="escalated", **critical), timedelta(minutes=20))
    services.escalate_breaches(incident_pk=escalated.pk)
    made.append(escalated)
    regraded = as_if_passed(make_incident(reporter, title="escalated, re-graded", **critical), timedelta(minutes=20))
    services.escalate_breaches(incident_pk=regraded.pk)
    made.append(services.change_severity(incident=reread(regraded), actor=responder, severity=Severity.HIGH))
    reopened = advance_to(make_incident(reporter, title="reopened", **critical), Status.RESOLVED, by=responder)
    made.append(services.change_status(incident=reopened, actor=responder, status=Status.IN_PROGRESS))
    return [reread(incident) for incident in made]


def test_state_q_selects_the_incidents_whose_clocks_clock_puts_in_that_state(reporter, responder, staff):
    # given
    incidents = every_combination(reporter, responder, staff)
    start = timezone.now()
    seen = set()

    for now in (
        start,
        start + timedelta(minutes=13),
        start + timedelta(hours=1),
        start + timedelta(hours=3, minutes=30),
        start + timedelta(days=30),
    ):
        for state in sla.State.ALL:
            # when
            in_database = set(Incident.objects.filter(sla.state_q(state, now)).values_list("title", flat=True))

            # then
            in_python = {i.title for i in incidents if state in states(i, now).values()}
            assert in_database == in_python, (state, now - start)
            seen |= {(state, name) for i in incidents for name, s in states(i, now).items() if s == state}

    # every state of every clock was tried
    assert seen == {(state, name) for state in sla.State.ALL for name in sla.CLOCKS}


def test_state_q_agrees_with_clock_for_a_clock_met_late_without_a_recorded_breach(reporter, responder):
    # given: an incident acknowledged after its due time with no breach recorded, as
    # migration 0013 leaves one that was acknowledged late before it ran (it records
    # breaches of unacknowledged incidents only)
    incident = advance_to(make_incident(reporter, severity=Severity.CRITICAL), Status.ACKNOWLEDGED, by=responder)
    Incident.objects.filter(pk=incident.pk).update(
        acknowledged_at=incident.acknowledge_due_at + timedelta(minutes=5), acknowledge_breached_at=None
    )
    incident = reread(incident)
    now = incident.acknowledge_due_at + timedelta(minutes=10)
    assert sla.clock(incident, "acknowledge", now).state == "breached"

    # when
    breached = Incident.objects.filter(sla.state_q("breached", now))
    met = Incident.objects.filter(sla.state_q("met", now))

    # then: the `sla=` filter says what the incident's own `sla` field says
    assert list(breached) == [incident]
    assert list(met) == []


# --- Escalation ------------------------------------------------------------------------------


def test_a_regrade_that_makes_a_clock_overdue_escalates_it_at_once(lift, fred, fay):
    # given: a Medium incident of Facilities (lead: fay), half an hour old
    incident = as_if_passed(lift, timedelta(minutes=30))

    # when: re-graded Critical, whose 15 minutes to acknowledge are already over
    incident = reread(services.change_severity(incident=incident, actor=fred, severity=Severity.CRITICAL))

    # then: escalated in the same call, the lead mailed
    assert incident.acknowledge_due_at == incident.created_at + timedelta(minutes=15)
    assert incident.acknowledge_breached_at is not None
    assert incident.resolve_breached_at is None
    event = breach_events(incident).get()
    assert (event.field, event.actor_id) == ("acknowledge", None)
    assert event.old_value == incident.acknowledge_due_at.isoformat()
    assert event.created_at == incident.acknowledge_breached_at
    assert breach_mails() == [fay.email]
    assert incident.sla_escalate_at == incident.resolve_due_at
    # and the sweep has nothing left to do
    assert services.escalate_breaches(incident_pk=incident.pk) == []
    assert breach_events(incident).count() == 1


def test_a_breach_of_a_team_without_leads_mails_staff(reporter, staff, make_user):
    # given: an incident of the response team (no lead), its acknowledge clock overdue
    other_staff = make_user("sid", is_staff=True)
    make_user("gone", is_staff=True, is_active=False)
    incident = as_if_passed(make_incident(reporter, severity=Severity.CRITICAL), timedelta(minutes=20))

    # when
    escalated = services.escalate_breaches(incident_pk=incident.pk)

    # then
    assert escalated == ["acknowledge"]
    assert breach_mails() == sorted([staff.email, other_staff.email])


def test_a_regrade_that_moves_the_due_time_later_cancels_the_pending_escalation(reporter, responder):
    # given: a Critical incident re-graded Low before its 15 minutes are up
    incident = make_incident(reporter, severity=Severity.CRITICAL)
    services.change_severity(incident=incident, actor=responder, severity=Severity.LOW)

    # when: the old due time goes by and its check runs
    incident = as_if_passed(incident, timedelta(minutes=16))
    escalated = services.escalate_breaches(incident_pk=incident.pk)

    # then
    assert escalated == []
    incident = reread(incident)
    assert incident.acknowledge_due_at == incident.created_at + timedelta(days=1)
    assert incident.acknowledge_breached_at is None
    assert not breach_events(incident).exists()
    assert breach_mails() == []
    assert states(incident, timezone.now()) == {"acknowledge": "pending", "resolve": "pending"}


def test_escalating_twice_escalates_each_clock_once(reporter, facilities, fay):
    # given: a Critical incident of Facilities five hours old: both clocks overdue
    incident = make_incident(reporter, severity=Severity.CRITICAL, category=category_of(facilities))
    incident = as_if_passed(incident, timedelta(hours=5))

    # when
    first = services.escalate_breaches(incident_pk=incident.pk)
    second = services.escalate_breaches(incident_pk=incident.pk)

    # then: one event and one mail per clock
    assert (first, second) == (["acknowledge", "resolve"], [])
    assert list(breach_events(incident).values_list("field", flat=True)) == ["acknowledge", "resolve"]
    assert breach_mails() == [fay.email, fay.email]
    incident = reread(incident)
    assert incident.sla_escalate_at == NO_DEADLINE
    assert incident.sla_due_at == incident.acknowledge_due_at


def test_the_sweep_escalates_overdue_incidents_and_nothing_else(reporter, responder, staff):
    # given
    overdue = as_if_passed(make_incident(reporter, title="overdue", severity=Severity.CRITICAL), timedelta(minutes=20))
    both = as_if_passed(make_incident(reporter, title="both", severity=Severity.CRITICAL), timedelta(hours=5))
    make_incident(reporter, title="fresh", severity=Severity.CRITICAL)
    at_risk = as_if_passed(make_incident(reporter, title="at risk", severity=Severity.CRITICAL), timedelta(minutes=13))
    met = advance_to(
        make_incident(reporter, title="met", severity=Severity.CRITICAL), Status.ACKNOWLEDGED, by=responder
    )
    as_if_passed(met, timedelta(minutes=20))
    resolved = advance_to(
        make_incident(reporter, title="resolved", severity=Severity.CRITICAL), Status.RESOLVED, by=responder
    )
    as_if_passed(resolved, timedelta(hours=5))
    done = as_if_passed(make_incident(reporter, title="done", severity=Severity.CRITICAL), timedelta(minutes=20))
    services.escalate_breaches(incident_pk=done.pk)
    OutgoingEmail.objects.filter(kind="sla_breached").delete()
    before = IncidentEvent.objects.filter(kind=EventKind.SLA_BREACHED).count()

    # when
    first = services.escalate_overdue()
    second = services.escalate_overdue()

    # then
    assert (first, second) == (2, 0)
    escalated = IncidentEvent.objects.filter(kind=EventKind.SLA_BREACHED).exclude(incident=done)
    assert sorted(escalated.values_list("incident__title", "field")) == [
        ("both", "acknowledge"),
        ("both", "resolve"),
        ("overdue", "acknowledge"),
    ]
    assert IncidentEvent.objects.filter(kind=EventKind.SLA_BREACHED).count() == before + 3
    assert breach_mails() == [staff.email] * 3
    assert reread(at_risk).acknowledge_breached_at is None
    assert reread(overdue).sla_escalate_at == reread(overdue).resolve_due_at
    assert reread(both).sla_escalate_at == NO_DEADLINE
