"""The metrics (incidents/metrics.py): every figure against values worked out by hand from
incidents with known timestamps, on whichever database the suite runs (SQLite, MariaDB)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from incidents import metrics
from incidents.models import Incident, Severity, Status, Visibility

from .factories import category_of, make_incident

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PERIOD = metrics.Scope(first=date(2026, 11, 2), last=date(2026, 11, 15))  # Monday to Sunday, two weeks
S = timedelta(seconds=1)
CLEAR = {
    "acknowledged_at": None,
    "resolved_at": None,
    "closed_at": None,
    "acknowledge_due_at": None,
    "resolve_due_at": None,
}


def at(day: int, hour: int = 10, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def put(incident: Incident, *, created, status, **times) -> Incident:
    """Give `incident` known timestamps and due times (as if its history had happened)."""
    Incident.objects.filter(pk=incident.pk).update(**(CLEAR | {"created_at": created, "status": status} | times))
    incident.refresh_from_db()
    return incident


@pytest.fixture
def cast(reporter, facilities, helpdesk):
    """Facilities' incidents (hand-computed figures in each test), one of Helpdesk's."""
    cat = category_of(facilities)

    def new(title, severity, **kwargs):
        return make_incident(reporter, title=title, severity=severity, category=cat, **kwargs)

    a = put(
        new("A", Severity.HIGH),
        created=at(2),
        status=Status.RESOLVED,
        acknowledged_at=at(2) + 600 * S + timedelta(milliseconds=700),  # measured as 600 s
        resolved_at=at(2) + 3600 * S,
        acknowledge_due_at=at(2) + 900 * S,  # met
        resolve_due_at=at(2) + 3000 * S,  # missed
    )
    b = put(
        new("B", Severity.HIGH, visibility=Visibility.PRIVATE),
        created=at(3),
        status=Status.RESOLVED,
        acknowledged_at=at(3) + 1200 * S,
        resolved_at=at(3) + 7200 * S,
        acknowledge_due_at=at(3) + 900 * S,  # missed; no resolve policy
    )
    c = put(
        new("C", Severity.HIGH),
        created=at(4),
        status=Status.IN_PROGRESS,
        acknowledged_at=at(4) + 1800 * S,
        acknowledge_due_at=at(4) + 3600 * S,  # met
        resolve_due_at=at(5),  # running past due: missed, breached now
    )
    d = put(
        new("D", Severity.CRITICAL),
        created=at(5),
        status=Status.CLOSED,
        closed_at=at(5) + 5000 * S,  # closed unacknowledged: both clocks stop here
        acknowledge_due_at=at(5) + 900 * S,  # missed
        resolve_due_at=at(5) + 10000 * S,  # met
    )
    e = put(
        new("E", Severity.CRITICAL),
        created=at(10),
        status=Status.RESOLVED,
        acknowledged_at=at(10) + 300 * S,
        resolved_at=at(10) + 86400 * S,
        acknowledge_due_at=at(10) + 600 * S,
        resolve_due_at=at(10) + 100000 * S,
    )
    f = put(
        new("F", Severity.HIGH),
        created=at(16),  # after the period
        status=Status.ACKNOWLEDGED,
        acknowledged_at=at(16) + 100 * S,
        resolve_due_at=at(30),
    )
    g = put(
        new("G", Severity.LOW),
        created=at(20, month=10),  # before the period, resolved in it
        status=Status.RESOLVED,
        acknowledged_at=at(21, month=10),
        resolved_at=at(3, hour=12),
    )
    h = put(
        make_incident(reporter, title="H", category=category_of(helpdesk), visibility=Visibility.PRIVATE),
        created=at(6),
        status=Status.REPORTED,
    )
    return {"A": a, "B": b, "C": c, "D": d, "E": e, "F": f, "G": g, "H": h}


def facilities_only(facilities) -> metrics.Scope:
    return metrics.Scope(first=PERIOD.first, last=PERIOD.last, teams=(facilities,))


def test_counts_in_the_period_and_open_now(cast, staff, facilities):
    figures = metrics.measure(staff, facilities_only(facilities), now=NOW).as_dict()

    assert figures["reported"] == 5  # A B C D E
    assert figures["acknowledged"] == 4  # A B C E (F's is after the period, D never was)
    assert figures["resolved"] == 4  # A B E, and G reported before the period
    assert figures["closed"] == 1  # D
    assert figures["open_now"] == 2  # C F
    assert figures["sla"]["breached_now"] == 1  # C


def test_times_are_nearest_rank_median_and_90th_percentile_in_whole_seconds(cast, staff, facilities):
    figures = metrics.measure(staff, facilities_only(facilities), now=NOW).as_dict()

    # Acknowledge: 300 600 1200 1800 5000 -> ranks ceil(2.5) = 3 and ceil(4.5) = 5.
    assert figures["time_to_acknowledge"] == {"median_seconds": 1200, "p90_seconds": 5000, "count": 5}
    # Resolve: 3600 5000 7200 86400 -> ranks 2 and ceil(3.6) = 4.
    assert figures["time_to_resolve"] == {"median_seconds": 5000, "p90_seconds": 86400, "count": 4}


def test_times_and_sla_by_severity(cast, staff, facilities):
    figures = metrics.measure(staff, facilities_only(facilities), now=NOW).as_dict()
    by_severity = {row["severity"]: row for row in figures["by_severity"]}

    assert [row["severity"] for row in figures["by_severity"]] == ["Critical", "High", "Medium", "Low"]
    high, critical, low = by_severity["High"], by_severity["Critical"], by_severity["Low"]
    assert high["reported"] == 3
    assert high["time_to_acknowledge"] == {"median_seconds": 1200, "p90_seconds": 1800, "count": 3}
    assert high["time_to_resolve"] == {"median_seconds": 3600, "p90_seconds": 7200, "count": 2}
    assert high["sla"] == {"acknowledge_met_ratio": 0.6667, "resolve_met_ratio": 0.0, "breached_now": 1}
    assert high["open_now"] == 2
    assert critical["time_to_acknowledge"] == {"median_seconds": 300, "p90_seconds": 5000, "count": 2}
    assert critical["time_to_resolve"] == {"median_seconds": 5000, "p90_seconds": 86400, "count": 2}
    assert critical["sla"] == {"acknowledge_met_ratio": 0.5, "resolve_met_ratio": 1.0, "breached_now": 0}
    assert low == {
        "severity": "Low",
        "reported": 0,
        "open_now": 0,
        "time_to_acknowledge": {"median_seconds": None, "p90_seconds": None, "count": 0},
        "time_to_resolve": {"median_seconds": None, "p90_seconds": None, "count": 0},
        "sla": {"acknowledge_met_ratio": None, "resolve_met_ratio": None, "breached_now": 0},
    }


def test_sla_ratios_count_met_and_missed_clocks_only(cast, staff, facilities):
    figures = metrics.measure(staff, facilities_only(facilities), now=NOW).as_dict()

    # Acknowledge: met A C E, missed B D. Resolve: met D E, missed A (late) and C (running past due);
    # B had no resolve policy.
    assert figures["sla"]["acknowledge_met_ratio"] == 0.6
    assert figures["sla"]["resolve_met_ratio"] == 0.5


def test_a_clock_running_in_time_is_not_counted_yet(cast, staff, facilities):
    # At 4 Nov 11:00, C's resolve clock (due 5 Nov) still runs in time: neither met nor missed.
    early = datetime(2026, 11, 4, 11, 0, tzinfo=UTC)
    figures = metrics.measure(
        staff, metrics.Scope(first=date(2026, 11, 2), last=date(2026, 11, 4), teams=(facilities,)), now=early
    )

    # Reported by then: A B C. Resolve: A missed; B no policy; C pending.
    assert figures.as_dict()["sla"]["resolve_met_ratio"] == 0.0
    assert figures.overall.met["resolve"] + figures.overall.missed["resolve"] == 1


def test_weekly_series_with_the_backlog_at_each_weeks_end(cast, staff, facilities):
    figures = metrics.measure(staff, facilities_only(facilities), now=NOW).as_dict()

    assert figures["weekly"] == [
        # Open at 9 Nov 00:00: C (A B D G done; E not reported yet).
        {"week_start": "2026-11-02", "reported": 4, "resolved": 3, "open_at_end": 1},
        # Open at 16 Nov 00:00: C (E resolved on the 11th; F reported later that day).
        {"week_start": "2026-11-09", "reported": 1, "resolved": 1, "open_at_end": 1},
    ]


def test_weeks_start_on_monday_and_are_clipped_to_the_period(cast, staff, facilities):
    # Wednesday 4 to Tuesday 10 November.
    scope = metrics.Scope(first=date(2026, 11, 4), last=date(2026, 11, 10), teams=(facilities,))
    figures = metrics.measure(staff, scope, now=NOW).as_dict()

    assert [(w["week_start"], w["reported"], w["resolved"]) for w in figures["weekly"]] == [
        ("2026-11-02", 2, 0),  # C and D (A and B are before the 4th; their resolutions too)
        ("2026-11-09", 1, 0),  # E (resolved on the 11th, after the period)
    ]
    # Open at the end of the clipped last week (11 Nov 00:00): C and E.
    assert figures["weekly"][-1]["open_at_end"] == 2


def test_a_week_still_ahead_has_no_backlog_yet(cast, staff, facilities):
    scope = metrics.Scope(first=date(2026, 11, 16), last=date(2026, 11, 29), teams=(facilities,))
    figures = metrics.measure(staff, scope, now=NOW).as_dict()

    assert [w["open_at_end"] for w in figures["weekly"]] == [2, None]  # C F now; the 23rd is ahead


def test_top_categories_and_the_oldest_open(cast, staff, facilities):
    figures = metrics.measure(staff, PERIOD, now=NOW).as_dict()

    assert figures["top_categories"][0] == {"category": "facilities-issues", "name": "Facilities issues", "reported": 5}
    assert figures["top_categories"][1] == {"category": "helpdesk-issues", "name": "Helpdesk issues", "reported": 1}
    oldest = [row["title"] for row in figures["oldest_open"]]
    assert oldest == ["C", "H", "F"]
    assert figures["oldest_open"][1]["url"].endswith(f"/incidents/{cast['H'].incident_id}/")


def test_every_team_for_staff_by_default(cast, staff, facilities, helpdesk):
    figures = metrics.measure(staff, PERIOD, now=NOW).as_dict()
    by_team = {row["team"]: row for row in figures["by_team"]}

    assert figures["teams"] == []
    assert figures["reported"] == 6  # A-E and H
    assert by_team["facilities"]["reported"] == 5
    assert by_team["helpdesk"]["reported"] == 1
    assert by_team["helpdesk"]["time_to_acknowledge"]["median_seconds"] is None


def test_figures_count_only_what_the_viewer_may_see(cast, ian, facilities):
    # ian (Helpdesk) looks at Facilities: B is private to Facilities.
    figures = metrics.measure(ian, facilities_only(facilities), now=NOW).as_dict()

    assert figures["reported"] == 4
    assert figures["time_to_acknowledge"] == {"median_seconds": 600, "p90_seconds": 5000, "count": 4}
    assert figures["acknowledged"] == 3


def test_filters_by_severity_and_category(cast, staff, facilities, helpdesk):
    critical = metrics.measure(staff, metrics.Scope(first=PERIOD.first, last=PERIOD.last, severity="Critical"), now=NOW)
    helpdesk_only = metrics.measure(
        staff, metrics.Scope(first=PERIOD.first, last=PERIOD.last, category=category_of(helpdesk)), now=NOW
    )

    assert critical.as_dict()["reported"] == 2
    assert [row["severity"] for row in critical.as_dict()["by_severity"]] == ["Critical"]
    assert helpdesk_only.as_dict()["reported"] == 1
    assert helpdesk_only.as_dict()["open_now"] == 1


def test_days_are_counted_in_the_configured_time_zone(settings, reporter, staff, facilities):
    settings.TIME_ZONE = "Europe/Paris"
    # 1 Nov 23:30 UTC is 2 Nov 00:30 in Paris: inside a period starting on the 2nd.
    put(
        make_incident(reporter, category=category_of(facilities)),
        created=datetime(2026, 11, 1, 23, 30, tzinfo=UTC),
        status=Status.REPORTED,
    )
    with timezone.override("Europe/Paris"):
        paris = metrics.measure(staff, PERIOD, now=NOW).as_dict()
    with timezone.override("UTC"):
        utc = metrics.measure(staff, PERIOD, now=NOW).as_dict()

    assert paris["reported"] == 1
    assert utc["reported"] == 0


def test_one_measured_value_is_both_median_and_90th_percentile(reporter, staff, facilities):
    put(
        make_incident(reporter, category=category_of(facilities)),
        created=at(3),
        status=Status.ACKNOWLEDGED,
        acknowledged_at=at(3) + 42 * S,
    )

    figures = metrics.measure(staff, PERIOD, now=NOW).as_dict()

    assert figures["time_to_acknowledge"] == {"median_seconds": 42, "p90_seconds": 42, "count": 1}
    assert figures["time_to_resolve"] == {"median_seconds": None, "p90_seconds": None, "count": 0}


@pytest.mark.parametrize(
    ("n", "median_rank", "p90_rank"),
    [(1, 1, 1), (2, 1, 2), (9, 5, 9), (10, 5, 9), (11, 6, 10), (20, 10, 18), (21, 11, 19)],
)
def test_nearest_rank_on_longer_series(reporter, staff, facilities, n, median_rank, p90_rank):
    cat = category_of(facilities)
    for i in range(n):  # times 100, 200 ... in shuffled report order
        minutes = (i * 13) % n + 1
        put(
            make_incident(reporter, category=cat),
            created=at(3) + i * S,
            status=Status.ACKNOWLEDGED,
            acknowledged_at=at(3) + i * S + minutes * 100 * S,
        )

    times = metrics.measure(staff, PERIOD, now=NOW).as_dict()["time_to_acknowledge"]

    assert times == {"median_seconds": median_rank * 100, "p90_seconds": p90_rank * 100, "count": n}


def test_default_period_is_the_last_ninety_days():
    assert metrics.default_period(date(2026, 12, 1)) == (date(2026, 9, 2), date(2026, 12, 1))


def test_the_longest_period_is_two_years_even_from_a_leap_day():
    assert metrics.longest_period_start(date(2026, 12, 1)) == date(2024, 12, 1)
    assert metrics.longest_period_start(date(2028, 2, 29)) == date(2026, 2, 28)


def test_tables_put_the_figures_in_hours_and_percent(cast, staff, facilities):
    figures = metrics.measure(staff, facilities_only(facilities), now=NOW).as_dict()
    tables = {caption.split(",")[0]: (header, rows) for caption, header, rows in metrics.tables(figures)}

    header, rows = tables["By severity"]
    assert rows[0][:2] == ["All", 5]
    assert rows[0][header.index("acknowledge median (h)")] == "0.33"  # 1200 s
    assert rows[0][header.index("acknowledge SLA met (%)")] == "60.0"
    assert tables["Weekly"][1][0] == ["2026-11-02", 4, 3, 1]
