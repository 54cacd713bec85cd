"""SLA clocks on the web and in the admin: words and colour in lists and on the incident
page, the queue's "most urgent first", the team member's dashboard counts, the timeline
line of a breach, the admin's SLA filter, column and policy pages."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import services
from incidents.models import Incident, Severity, SlaPolicy, Status

from .factories import category_of, make_incident, set_clock


def page(response) -> str:
    return response.content.decode()


def badges(html: str) -> list[tuple[str, str, str]]:
    """(clock, state, words) of each SLA badge on a page."""
    found = re.findall(r'data-sla="(\w+)" data-sla-state="(\w+)"><time [^>]*>(.*?)</time>', html)
    return [(clock, state, " ".join(words.split())) for clock, state, words in found]


def test_the_incident_page_shows_both_clocks_in_words_with_the_exact_time_on_hover(client, reporter):
    # given: a Critical incident, acknowledge due in 15 minutes
    incident = make_incident(reporter, severity=Severity.CRITICAL)
    client.force_login(reporter)

    # when
    html = page(client.get(incident.get_absolute_url()))

    # then
    shown = badges(html)
    assert shown[0][:2] == ("acknowledge", "pending")
    assert re.fullmatch(r"Acknowledge due in 1[45] minutes", shown[0][2])
    assert shown[1][:2] == ("resolve", "pending")
    assert re.fullmatch(r"Resolve due in [34] hours", shown[1][2])
    due = timezone.localtime(incident.acknowledge_due_at).strftime("%Y-%m-%d %H:%M")
    assert f'title="Due {due}' in html


def test_an_overdue_clock_says_so_in_words_not_only_in_red(client, reporter):
    # given
    incident = set_clock(make_incident(reporter), "acknowledge", due=timezone.now() - timedelta(hours=2, minutes=5))
    client.force_login(reporter)

    # when
    html = page(client.get(incident.get_absolute_url()))

    # then
    assert ("acknowledge", "breached", "Acknowledge overdue by 2 hours") in badges(html)
    assert 'class="badge text-bg-danger" data-sla="acknowledge"' in html


def test_a_clock_at_risk_says_at_risk(client, reporter):
    # given
    now = timezone.now()
    incident = set_clock(make_incident(reporter), "acknowledge", due=now + timedelta(minutes=3), warn=now)
    client.force_login(reporter)

    # when
    html = page(client.get(incident.get_absolute_url()))

    # then
    (clock, state, words) = badges(html)[0]
    assert (clock, state) == ("acknowledge", "at_risk")
    assert words.endswith("— at risk")


def test_a_met_clock_says_met(client, reporter, responder):
    # given
    incident = make_incident(reporter)
    services.change_status(incident=incident, actor=responder, status=Status.ACKNOWLEDGED)
    client.force_login(reporter)

    # when
    html = page(client.get(incident.get_absolute_url()))

    # then
    assert ("acknowledge", "met", "Acknowledge met") in badges(html)


def test_a_list_row_shows_the_clock_due_soonest(client, reporter, responder):
    # given
    incident = make_incident(reporter, severity=Severity.HIGH)
    services.change_status(incident=incident, actor=responder, status=Status.ACKNOWLEDGED)
    client.force_login(reporter)

    # when
    html = page(client.get("/incidents/mine/"))

    # then: acknowledged, so the resolve clock (a day) is the one that matters
    (clock, state, words) = badges(html)[0]
    assert (clock, state) == ("resolve", "pending")
    assert words.startswith("Resolve due in 23 hours") or words.startswith("Resolve due in 1 day")


def test_the_timeline_shows_a_breach_with_its_clock_and_lateness(client, reporter, facilities, fay):
    # given: an overdue incident of Facilities, escalated
    incident = make_incident(reporter, category=category_of(facilities))
    set_clock(incident, "acknowledge", due=timezone.now() - timedelta(minutes=10))
    assert services.escalate_breaches(incident_pk=incident.pk) == ["acknowledge"]
    client.force_login(fay)

    # when
    html = " ".join(page(client.get(incident.get_absolute_url())).split())

    # then
    assert "The incident</strong> missed the time to acknowledge" in html
    assert "<strong>SLA breached</strong>, 10 minutes late" in html
    assert 'class="timeline-breach"' in html


def test_the_queue_of_a_team_member_is_most_urgent_first_and_can_be_newest_first(client, reporter, facilities, fred):
    # given: a Critical incident (due in 15 min), then a Low one (due in a day)
    critical = make_incident(reporter, title="critical", severity=Severity.CRITICAL, category=category_of(facilities))
    low = make_incident(reporter, title="low", severity=Severity.LOW, category=category_of(facilities))
    assert critical.created_at < low.created_at
    client.force_login(fred)

    # when
    default = client.get("/incidents/")
    newest = client.get("/incidents/", {"sort": "newest"})

    # then
    assert [i.title for i in default.context["page_obj"]] == ["critical", "low"]
    assert '<option value="due" selected>Most urgent first</option>' in page(default)
    assert [i.title for i in newest.context["page_obj"]] == ["low", "critical"]
    assert newest.context["my_teams_view"] is True


def test_sort_by_due_works_for_anyone_and_an_unknown_sort_falls_back_to_the_default(client, reporter):
    # given
    first = make_incident(reporter, title="first", severity=Severity.LOW)
    make_incident(reporter, title="second", severity=Severity.CRITICAL)
    assert first
    client.force_login(reporter)

    # when
    due = client.get("/incidents/mine/", {"sort": "due"})
    unknown = client.get("/incidents/mine/", {"sort": "<script>"})

    # then
    assert [i.title for i in due.context["page_obj"]] == ["second", "first"]
    assert unknown.status_code == 200
    assert [i.title for i in unknown.context["page_obj"]] == ["second", "first"]  # newest first


def test_the_web_sla_filter_lists_breached_incidents(client, reporter, responder):
    # given
    late = set_clock(make_incident(reporter, title="late"), "acknowledge", due=timezone.now() - timedelta(minutes=1))
    make_incident(reporter, title="fine")
    assert late
    client.force_login(responder)

    # when
    response = client.get("/incidents/", {"sla": "breached"})
    bad = client.get("/incidents/", {"sla": "nonsense"})

    # then
    assert [i.title for i in response.context["page_obj"]] == ["late"]
    assert bad.status_code == 200
    assert list(bad.context["page_obj"]) == []
    assert "sla:" in page(bad)


def test_a_team_members_dashboard_counts_breached_and_at_risk_open_incidents(client, reporter, facilities, fred, staff):
    # given: Facilities has two breached open incidents, one at risk, one breached but closed
    now = timezone.now()
    for title in ("late-1", "late-2"):
        set_clock(
            make_incident(reporter, title=title, category=category_of(facilities)),
            "acknowledge",
            due=now - timedelta(minutes=1),
        )
    set_clock(
        make_incident(reporter, title="risky", category=category_of(facilities)),
        "acknowledge",
        due=now + timedelta(minutes=2),
        warn=now - timedelta(seconds=1),
    )
    closed = set_clock(
        make_incident(reporter, category=category_of(facilities)), "acknowledge", due=now - timedelta(minutes=1)
    )
    services.change_status(incident=closed, actor=staff, status=Status.CLOSED)
    client.force_login(fred)

    # when
    response = client.get("/dashboard/")

    # then
    ((team, _, counts),) = response.context["team_counts"]
    assert team == facilities
    assert counts == {"breached": 2, "at_risk": 1}
    html = page(response)
    assert 'data-sla-count="breached">2<' in html
    assert "?team=facilities&amp;open=true&amp;sla=breached&amp;sort=due" in html


def test_the_breached_link_of_the_dashboard_lists_what_it_counted(client, reporter, facilities, fred, staff):
    # given
    now = timezone.now()
    set_clock(
        make_incident(reporter, title="late", category=category_of(facilities)),
        "acknowledge",
        due=now - timedelta(minutes=1),
    )
    closed = set_clock(
        make_incident(reporter, title="closed", category=category_of(facilities)),
        "acknowledge",
        due=now - timedelta(minutes=1),
    )
    services.change_status(incident=closed, actor=staff, status=Status.CLOSED)
    client.force_login(fred)

    # when
    response = client.get("/incidents/", {"team": "facilities", "open": "true", "sla": "breached", "sort": "due"})

    # then
    assert [i.title for i in response.context["page_obj"]] == ["late"]


# --- Admin ----------------------------------------------------------------------------------


@pytest.fixture
def admin_client_for(client, make_user):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def test_the_admin_changelist_shows_the_next_due_and_filters_by_sla_state(admin_client_for, reporter):
    # given
    late = set_clock(make_incident(reporter, title="late"), "acknowledge", due=timezone.now() - timedelta(minutes=1))
    make_incident(reporter, title="fine")

    # when
    everything = admin_client_for.get("/admin/incidents/incident/")
    breached = admin_client_for.get("/admin/incidents/incident/", {"sla": "breached"})

    # then
    assert everything.status_code == 200
    assert "Acknowledge: " in page(everything) and "(breached)" in page(everything)
    assert [i.title for i in breached.context["cl"].result_list] == [late.title]


def test_the_admin_incident_page_shows_the_clocks(admin_client_for, reporter):
    # given
    incident = make_incident(reporter, severity=Severity.CRITICAL)

    # when
    response = admin_client_for.get(f"/admin/incidents/incident/{incident.pk}/change/")

    # then
    assert response.status_code == 200
    assert "Acknowledge: pending, Resolve: pending" in page(response)


def test_staff_manage_policies_in_the_admin(admin_client_for, facilities):
    # when
    listing = admin_client_for.get("/admin/incidents/slapolicy/")
    created = admin_client_for.post(
        "/admin/incidents/slapolicy/add/",
        {
            "severity": "Critical",
            "team": facilities.pk,
            "acknowledge_within": "00:05:00",
            "resolve_within": "02:00:00",
            "business_hours": "",
        },
    )
    duplicate = admin_client_for.post(
        "/admin/incidents/slapolicy/add/",
        {"severity": "Critical", "team": "", "acknowledge_within": "00:05:00", "resolve_within": "02:00:00"},
    )
    zero = admin_client_for.post(
        "/admin/incidents/slapolicy/add/",
        {"severity": "High", "team": facilities.pk, "acknowledge_within": "00:00:00", "resolve_within": "02:00:00"},
    )

    # then
    assert listing.status_code == 200
    assert SlaPolicy.objects.filter(team=None).count() == 4  # the defaults
    assert created.status_code == 302
    assert SlaPolicy.objects.get(team=facilities).acknowledge_within == timedelta(minutes=5)
    assert duplicate.status_code == 200 and duplicate.context["adminform"].form.errors
    assert zero.status_code == 200 and zero.context["adminform"].form.errors
    assert SlaPolicy.objects.count() == 5


def test_a_breach_stands_after_a_regrade_moves_the_due_time_later(client, reporter, facilities, fay):
    # given: escalated, then re-graded to Low (a day to acknowledge, from the report)
    incident = make_incident(reporter, severity=Severity.CRITICAL, category=category_of(facilities))
    set_clock(incident, "acknowledge", due=timezone.now() - timedelta(minutes=1))
    services.escalate_breaches(incident_pk=incident.pk)
    services.change_severity(incident=Incident.objects.get(pk=incident.pk), actor=fay, severity=Severity.LOW)
    client.force_login(fay)

    # when
    html = page(client.get(incident.get_absolute_url()))

    # then
    (clock, state, words) = badges(html)[0]
    assert (clock, state) == ("acknowledge", "breached")
    assert words.startswith("Acknowledge breached earlier, now due in 23 hours")


@pytest.mark.parametrize("field", ["acknowledge_within", "resolve_within"])
def test_a_policy_target_over_a_year_is_refused(admin_client_for, field):
    # given
    data = {"severity": "High", "team": "", "acknowledge_within": "01:00:00", "resolve_within": "02:00:00"}
    SlaPolicy.objects.filter(severity="High", team=None).delete()
    data[field] = "366 00:00:00"

    # when
    response = admin_client_for.post("/admin/incidents/slapolicy/add/", data)

    # then
    assert response.status_code == 200
    assert "at most 365 days" in page(response)
    assert not SlaPolicy.objects.filter(severity="High").exists()
