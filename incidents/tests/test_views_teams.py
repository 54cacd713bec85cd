"""The web pages of teams, categories and ownership, through the test client: the report
form's categories, the queue's default view, columns and filters, the incident page's
ownership and its controls, assigning and moving, the dashboard's team counts, the
navigation, and that a private incident of another team shows nowhere.

The cast: fay leads and fred belongs to Facilities; ian belongs to Helpdesk; sue belongs to
Security, a `sees_all` team; alice (`reporter`) and bob (`other`) belong to no team; sam
(`staff`) is staff and in no team.
"""

import re

import pytest
from django_tasks_db.models import DBTaskResult

from incidents import services
from incidents.models import Category, Incident, IncidentEvent, Response, Severity, Status, Team, Visibility
from notifications.models import OutgoingEmail

from .factories import advance_to, category_of, delivered, make_incident, make_team, response_team, settle

PRIVATE = Visibility.PRIVATE


# --- The cast -------------------------------------------------------------------------------


@pytest.fixture
def badge(reporter, facilities, helpdesk):
    """A private incident of Facilities."""
    return make_incident(reporter, title="Badge stolen", category=category_of(facilities), visibility=PRIVATE)


# --- Helpers --------------------------------------------------------------------------------


def page(response) -> str:
    return response.content.decode()


def listed(response) -> list[str]:
    return [incident.title for incident in response.context["page_obj"].object_list]


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def navigation(response) -> str:
    return re.search(r'<nav[^>]*aria-label="Main navigation".*?</nav>', page(response), re.S).group(0)


def snapshot(incident) -> dict:
    """The incident's row, the timeline, responses and everything queued to be sent."""
    return {
        "row": Incident.objects.filter(pk=incident.pk).values().get(),
        "events": IncidentEvent.objects.count(),
        "responses": Response.objects.count(),
        "emails": OutgoingEmail.objects.count(),
        "tasks": DBTaskResult.objects.count(),
    }


def url(incident, action: str = "") -> str:
    return f"{incident.get_absolute_url()}{action + '/' if action else ''}"


# --- The report form ------------------------------------------------------------------------


def test_report_form_asks_for_the_category_first_in_position_order_with_descriptions(client, reporter, facilities):
    # given
    response_team()
    helpdesk = make_team("helpdesk")
    Category.objects.filter(slug="general").update(description="Anything that fits no other category.")
    Category.objects.filter(slug="helpdesk-issues").update(position=10, description="Laptops, accounts, printers")
    Category.objects.filter(slug="facilities-issues").update(position=20, description="Lifts, doors, heating")
    Category.objects.create(slug="retired", name="Retired kind", team=helpdesk, position=5, active=False)
    client.force_login(reporter)

    # when
    response = client.get("/incidents/new/")

    # then
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.fields)[0] == "category"
    assert [category.slug for category in form.fields["category"].queryset] == [
        "general",
        "helpdesk-issues",
        "facilities-issues",
    ]
    html = " ".join(page(response).split())
    radios = re.findall(r'<input type="radio"[^>]*name="category"[^>]*>\s*<label[^>]*>(.*?)</label>', html)
    assert [label.strip() for label in radios] == [
        "General — Anything that fits no other category.",
        "Helpdesk issues — Laptops, accounts, printers",
        "Facilities issues — Lifts, doors, heating",
    ]
    assert html.index('name="category"') < html.index('name="title"')
    assert "Retired kind" not in html


def test_report_form_hides_the_category_when_there_is_only_one(client, reporter):
    # given
    response_team()
    client.force_login(reporter)

    # when
    form_page = client.get("/incidents/new/")
    posted = client.post("/incidents/new/", {"title": "Odd smell", "description": "Basement.", "severity": "Low"})

    # then
    assert re.search(r'<input type="hidden" name="category" value="\d+"', page(form_page))
    assert not re.search(r'<input type="radio"[^>]*name="category"', page(form_page))
    assert posted.status_code == 302
    incident = Incident.objects.get()
    assert (incident.category.slug, incident.team.slug) == ("general", "response")


def test_reporting_in_a_category_sends_the_incident_to_its_team(
    client, reporter, facilities, helpdesk, run_tasks, mailoutbox
):
    # given
    client.force_login(reporter)

    # when
    response = client.post(
        "/incidents/new/",
        {
            "category": category_of(facilities).pk,
            "title": "Lift stuck",
            "description": "Floor 2.",
            "severity": "High",
        },
    )

    # then
    incident = Incident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == incident.get_absolute_url()
    assert (incident.team, incident.category, incident.assignee) == (facilities, category_of(facilities), None)
    assert delivered(run_tasks, mailoutbox) == {
        "alice": ["Incident reported: Lift stuck"],
        "fay": ["[HIGH] New incident: Lift stuck"],
        "fred": ["[HIGH] New incident: Lift stuck"],
    }


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        pytest.param("inactive", "Choose one of the listed categories.", id="inactive"),
        pytest.param("missing", "Choose what kind of incident it is.", id="missing"),
        pytest.param("unknown", "Choose one of the listed categories.", id="unknown"),
    ],
)
def test_report_form_refuses_a_category_not_on_the_list(client, reporter, facilities, helpdesk, choice, message):
    # given
    retired = Category.objects.create(slug="retired", name="Retired", team=facilities, active=False)
    data = {"title": "Lift stuck", "description": "Floor 2.", "severity": "Medium"}
    if choice == "inactive":
        data["category"] = retired.pk
    elif choice == "unknown":
        data["category"] = 999_999
    client.force_login(reporter)
    before = (Incident.objects.count(), OutgoingEmail.objects.count(), DBTaskResult.objects.count())

    # when
    response = client.post("/incidents/new/", data)

    # then
    assert response.status_code == 400
    assert response.context["form"].errors["category"] == [message]
    assert (Incident.objects.count(), OutgoingEmail.objects.count(), DBTaskResult.objects.count()) == before


# --- The queue --------------------------------------------------------------------------------


@pytest.fixture
def queue_incidents(reporter, facilities, helpdesk, staff):
    """Facilities: open-public, open-private, resolved; Helpdesk: help-public, help-private;
    general (response team): general-public. Oldest first."""
    response_team()
    facilities_category, helpdesk_category = category_of(facilities), category_of(helpdesk)
    make_incident(reporter, title="general-public")
    make_incident(reporter, title="help-private", category=helpdesk_category, visibility=PRIVATE)
    make_incident(reporter, title="help-public", category=helpdesk_category)
    advance_to(make_incident(reporter, title="resolved", category=facilities_category), Status.RESOLVED, by=staff)
    make_incident(reporter, title="open-private", category=facilities_category, visibility=PRIVATE)
    make_incident(reporter, title="open-public", category=facilities_category)


def test_a_team_members_queue_opens_on_its_teams_open_incidents(client, fred, queue_incidents):
    # given
    client.force_login(fred)

    # when
    response = client.get("/incidents/")

    # then: most urgent first (the older one is due first)
    assert response.status_code == 200
    assert listed(response) == ["open-private", "open-public"]
    assert response.context["sort"] == "due"
    assert "My teams&#x27; open incidents" in page(response)
    assert 'href="?all=1"' in page(response)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(
            {"all": "1"}, ["open-public", "open-private", "resolved", "help-public", "general-public"], id="all"
        ),
        pytest.param({"status": "Resolved"}, ["resolved"], id="status"),
        pytest.param({"team": "helpdesk"}, ["help-public"], id="team"),
        pytest.param({"category": "facilities-issues"}, ["open-public", "open-private", "resolved"], id="category"),
        pytest.param(
            {"search": "public"},
            ["open-public", "help-public", "general-public"],
            id="search",
            # InnoDB's FULLTEXT index takes in a row when its transaction commits.
            marks=pytest.mark.django_db(transaction=True),
        ),
    ],
)
def test_any_filter_or_all_shows_everything_the_member_may_see(client, fred, queue_incidents, query, expected):
    # given
    client.force_login(fred)

    # when
    response = client.get("/incidents/", {"sort": "newest", **query})

    # then
    assert response.status_code == 200
    assert listed(response) == expected
    assert response.context["my_teams_view"] is False


def test_the_second_page_of_the_default_queue_stays_on_the_members_teams(client, reporter, fred, facilities, helpdesk):
    # given: 26 open Facilities incidents, and an older one of Helpdesk
    make_incident(reporter, title="helpdesk-oldest", category=category_of(helpdesk))
    for n in range(26):
        make_incident(reporter, title=f"facilities-{n:02d}", category=category_of(facilities))
    client.force_login(fred)

    # when
    first = client.get("/incidents/")
    second = client.get("/incidents/", {"page": 2})

    # then
    assert len(listed(first)) == 25
    assert 'href="?page=2"' in page(first)
    assert second.status_code == 200
    assert listed(second) == ["facilities-25"]  # most urgent (oldest) first
    assert second.context["my_teams_view"] is True


def test_the_queue_of_someone_in_no_team_is_everything_it_may_see(client, other, queue_incidents):
    # given
    client.force_login(other)

    # when
    response = client.get("/incidents/")

    # then
    assert listed(response) == ["open-public", "resolved", "help-public", "general-public"]
    assert response.context["my_teams_view"] is False


def test_staff_in_no_team_see_every_incident_in_the_queue(client, staff, queue_incidents):
    # given
    client.force_login(staff)

    # when
    response = client.get("/incidents/")

    # then
    assert listed(response) == [
        "open-public",
        "open-private",
        "resolved",
        "help-public",
        "help-private",
        "general-public",
    ]


def test_queue_rows_show_the_team_and_the_assignee(client, reporter, facilities, helpdesk, fay, fred):
    # given
    lift = make_incident(reporter, title="Lift stuck", category=category_of(facilities))
    make_incident(reporter, title="Laptop dead", category=category_of(helpdesk))
    services.assign(incident=lift, actor=fay, assignee=fred)
    client.force_login(fay)

    # when
    response = client.get("/incidents/", {"all": "1", "sort": "newest"})

    # then
    ownership = [
        " ".join(text.split()) for text in re.findall(r"<span[^>]*data-ownership>(.*?)</span>", page(response), re.S)
    ]
    assert ownership == ["· Helpdesk · unassigned", "· Facilities · assigned to fred"]


@pytest.fixture
def owned(reporter, facilities, helpdesk, fay, fred, ian):
    """Facilities: mine-fred (fred's), mine-fay (fay's), nobodys; Helpdesk: ians."""
    incidents = {}
    for title, category, owner, actor in [
        ("ians", category_of(helpdesk), ian, ian),
        ("nobodys", category_of(facilities), None, None),
        ("mine-fay", category_of(facilities), fay, fay),
        ("mine-fred", category_of(facilities), fred, fred),
    ]:
        incidents[title] = make_incident(reporter, title=title, category=category)
        if owner is not None:
            services.assign(incident=incidents[title], actor=actor, assignee=owner)
    return incidents


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({"assignee": "me"}, ["mine-fred"], id="me"),
        pytest.param({"assignee": "none"}, ["nobodys"], id="none"),
        pytest.param({"assignee": "fay"}, ["mine-fay"], id="a-person"),
        pytest.param({"assignee": "ian"}, ["ians"], id="another-teams-person"),
        pytest.param({"team": "facilities", "assignee": "none"}, ["nobodys"], id="team-and-none"),
    ],
)
def test_the_queue_filters_by_assignee(client, fred, owned, query, expected):
    # given
    client.force_login(fred)

    # when
    response = client.get("/incidents/", query)

    # then
    assert response.status_code == 200
    assert listed(response) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [({"assignee": "ghost"}, "assignee"), ({"team": "no-such-team"}, "team"), ({"category": "nope"}, "category")],
)
def test_an_unknown_filter_value_lists_nothing_and_says_why(client, fred, owned, query, field):
    # given
    client.force_login(fred)

    # when
    response = client.get("/incidents/", query)

    # then
    assert response.status_code == 200
    assert listed(response) == []
    assert field in response.context["filter"].form.errors
    assert 'class="alert alert-warning' in page(response)


def test_the_queue_offers_team_category_and_assignee_filters_to_team_members(client, fred, facilities, helpdesk):
    # given
    client.force_login(fred)

    # when
    html = page(client.get("/incidents/"))

    # then
    assert 'name="team"' in html and '<option value="helpdesk">' in html
    assert 'name="category"' in html and '<option value="facilities-issues">' in html
    assert 'name="assignee"' in html


# --- Navigation and dashboard -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "works"), [("fred", True), ("staff", True), ("other", False), ("reporter", False)])
def test_queue_links_are_in_the_navigation_only_for_those_who_work_incidents(client, request, facilities, name, works):
    # given
    client.force_login(request.getfixturevalue(name))

    # when
    response = client.get("/dashboard/")

    # then
    nav = navigation(response)
    assert ('href="/incidents/"' in nav) is works
    assert ('href="/incidents/?assignee=me">Assigned to me<' in nav) is works


def test_a_team_members_dashboard_counts_its_teams_open_incidents_and_lists_its_own(
    client, reporter, facilities, helpdesk, fay, fred, staff
):
    # given: Facilities has two Reported (one private), one Acknowledged and one closed;
    # Helpdesk has one; fred owns the Acknowledged one and a closed one
    facilities_category = category_of(facilities)
    make_incident(reporter, title="f-reported", category=facilities_category)
    make_incident(reporter, title="f-private", category=facilities_category, visibility=PRIVATE)
    acknowledged = advance_to(
        make_incident(reporter, title="f-ack", category=facilities_category), Status.ACKNOWLEDGED, by=fay
    )
    services.assign(incident=acknowledged, actor=fay, assignee=fred)
    closed = make_incident(reporter, title="f-closed", category=facilities_category)
    services.assign(incident=closed, actor=fay, assignee=fred)
    advance_to(closed, Status.CLOSED, by=staff)
    make_incident(reporter, title="h-reported", category=category_of(helpdesk))
    client.force_login(fred)

    # when
    response = client.get("/dashboard/")

    # then
    assert response.status_code == 200
    counts = [(team.slug, dict(by_status)) for team, by_status, _ in response.context["team_counts"]]
    assert counts == [("facilities", {Status.REPORTED: 2, Status.ACKNOWLEDGED: 1, Status.IN_PROGRESS: 0})]
    html = page(response)
    assert 'data-team-counts="facilities"' in html
    assert 'data-team-counts="helpdesk"' not in html
    assert [incident.title for incident in response.context["assigned_incidents"]] == ["f-ack"]
    assert "Assigned to you" in html


def test_a_member_of_two_teams_sees_counts_for_both(client, reporter, facilities, helpdesk, fred):
    # given
    helpdesk.members.add(fred)
    make_incident(reporter, title="h-reported", category=category_of(helpdesk))
    client.force_login(fred)

    # when
    response = client.get("/dashboard/")

    # then
    counts = [(team.slug, dict(by_status)[Status.REPORTED]) for team, by_status, _ in response.context["team_counts"]]
    assert counts == [("facilities", 0), ("helpdesk", 1)]


def test_the_dashboard_of_someone_in_no_team_has_no_team_counts_or_assignments(client, other, lift):
    # given
    client.force_login(other)

    # when
    response = client.get("/dashboard/")

    # then
    assert "team_counts" not in response.context
    html = page(response)
    assert "data-team-counts" not in html
    assert "Assigned to you" not in html


# --- The incident page ------------------------------------------------------------------------


def test_the_incident_page_shows_team_category_and_assignee(client, lift, fay, fred, other):
    # given
    services.assign(incident=lift, actor=fay, assignee=fred)
    client.force_login(other)

    # when
    html = page(client.get(url(lift)))

    # then
    ownership = " ".join(re.search(r'<dl[^>]*id="ownership".*?</dl>', html, re.S).group(0).split())
    assert ">Facilities</dd>" in ownership
    assert ">Facilities issues</dd>" in ownership
    assert "data-assignee>fred</dd>" in ownership


def test_a_team_member_is_offered_assign_to_me_assign_and_move(client, lift, fred, sue, security):
    # given
    client.force_login(fred)

    # when
    html = page(client.get(url(lift)))

    # then
    assert f'action="{url(lift, "assign")}"' in html
    assert ">Assign to me</button>" in html
    assert '<input type="hidden" name="assignee" value="fred">' in html
    members = re.findall(
        r'<option value="([^"]*)"', re.search(r'<select name="assignee".*?</select>', html, re.S).group(0)
    )
    assert members == ["", "fay", "fred"]  # nobody, then the team's members
    teams = re.findall(r'<option value="([^"]*)"', re.search(r'<select name="team".*?</select>', html, re.S).group(0))
    assert sorted(teams) == sorted(Team.objects.values_list("slug", flat=True))
    assert {"facilities", "helpdesk", "security"} <= set(teams)


def test_a_sees_all_member_may_assign_and_move_but_not_take_another_teams_incident(client, lift, sue, security):
    # given
    client.force_login(sue)

    # when
    html = page(client.get(url(lift)))

    # then
    assert '<select name="assignee"' in html
    assert '<select name="team"' in html
    assert ">Assign to me</button>" not in html


@pytest.mark.parametrize("name", ["ian", "reporter", "other"])
def test_those_who_do_not_work_the_incident_get_no_ownership_controls(client, request, lift, name):
    # given
    client.force_login(request.getfixturevalue(name))

    # when
    html = page(client.get(url(lift)))

    # then
    assert "Assign to me" not in html
    assert f'action="{url(lift, "assign")}"' not in html
    assert f'action="{url(lift, "team")}"' not in html
    assert f'action="{url(lift, "respond")}"' in html


def test_assign_to_me_is_one_click(client, lift, fred, run_tasks, mailoutbox):
    # given
    settle(run_tasks, mailoutbox)
    client.force_login(fred)

    # when
    response = client.post(url(lift, "assign"), {"assignee": "fred"}, follow=True)

    # then
    assert response.redirect_chain == [(url(lift), 302)]
    assert shown_messages(response) == ["Assigned to you."]
    assert Incident.objects.get(pk=lift.pk).assignee == fred
    assert "data-assignee>fred</dd>" in page(response)
    assert "assigned it to <strong>fred</strong>" in page(response)
    assert delivered(run_tasks, mailoutbox) == {}


def test_assigning_a_team_member_mails_them(client, lift, fay, fred, run_tasks, mailoutbox):
    # given
    settle(run_tasks, mailoutbox)
    client.force_login(fay)

    # when
    response = client.post(url(lift, "assign"), {"assignee": "fred"}, follow=True)

    # then
    assert shown_messages(response) == ["Assigned to fred."]
    assert Incident.objects.get(pk=lift.pk).assignee == fred
    assert delivered(run_tasks, mailoutbox) == {"fred": ["Assigned to you: Lift stuck"]}


def test_unassigning_leaves_it_to_nobody(client, lift, fay, fred):
    # given
    services.assign(incident=lift, actor=fay, assignee=fred)
    client.force_login(fay)

    # when
    response = client.post(url(lift, "assign"), {"assignee": ""}, follow=True)

    # then
    assert shown_messages(response) == ["Nobody is assigned now."]
    assert Incident.objects.get(pk=lift.pk).assignee is None
    assert "unassigned fred" in page(response)


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("ian", "ian is not a member of Facilities: assign a team member."),
        ("bob", "bob is not a member of Facilities: assign a team member."),
        ("ghost", "No user is called “ghost”."),
    ],
)
def test_assigning_someone_outside_the_team_is_refused_with_a_clear_message(
    client, lift, fay, other, username, message
):
    # given
    client.force_login(fay)
    before = snapshot(lift)

    # when
    response = client.post(url(lift, "assign"), {"assignee": username})

    # then
    assert response.status_code == 400
    assert shown_messages(response) == [message]
    assert snapshot(lift) == before


def test_moving_to_another_team_clears_an_assignee_not_in_it_and_alerts_that_team(
    client, lift, helpdesk, fay, fred, run_tasks, mailoutbox
):
    # given
    services.assign(incident=lift, actor=fay, assignee=fred)
    settle(run_tasks, mailoutbox)
    client.force_login(fred)

    # when
    response = client.post(url(lift, "team"), {"team": "helpdesk"}, follow=True)

    # then
    assert shown_messages(response) == ["Moved to Helpdesk."]
    stored = Incident.objects.get(pk=lift.pk)
    assert (stored.team, stored.assignee) == (helpdesk, None)
    html = page(response)
    assert "moved it from Facilities to <strong>Helpdesk</strong>" in html
    assert "unassigned fred" in html
    assert delivered(run_tasks, mailoutbox) == {"ian": ["Moved to Helpdesk: Lift stuck"]}


def test_moving_a_private_incident_away_lands_the_mover_on_a_page_it_may_see(client, badge, helpdesk, fred):
    # given
    client.force_login(fred)

    # when
    response = client.post(url(badge, "team"), {"team": "helpdesk"}, follow=True)

    # then
    assert Incident.objects.get(pk=badge.pk).team == helpdesk
    assert response.status_code == 200
    assert "Moved to Helpdesk." in shown_messages(response)


def test_moving_to_an_unknown_team_is_refused(client, lift, fred):
    # given
    client.force_login(fred)
    before = snapshot(lift)

    # when
    response = client.post(url(lift, "team"), {"team": "no-such-team"})

    # then
    assert response.status_code == 400
    assert snapshot(lift) == before


def test_the_timeline_shows_a_category_change(client, lift, helpdesk, fred):
    # given
    services.update_incident(incident=lift, actor=fred, category=category_of(helpdesk))
    client.force_login(fred)

    # when
    html = page(client.get(url(lift)))

    # then
    assert "changed the category from Facilities issues to <strong>Helpdesk issues</strong>" in html


# --- Refusals: another team's member, and a private incident of another team --------------------


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("status", {"status": Status.ACKNOWLEDGED}),
        ("severity", {"severity": Severity.HIGH}),
        ("assign", {"assignee": "fred"}),
        ("assign", {"assignee": "ian"}),
        ("team", {"team": "helpdesk"}),
    ],
)
def test_a_member_of_another_team_may_not_work_a_public_incident(client, lift, ian, action, data):
    # given
    client.force_login(ian)
    before = snapshot(lift)

    # when
    response = client.post(url(lift, action), data)

    # then
    assert response.status_code == 403
    assert snapshot(lift) == before


def test_a_member_of_another_team_may_respond_to_a_public_incident(client, lift, ian):
    # given
    client.force_login(ian)

    # when
    response = client.post(url(lift, "respond"), {"description": "Seen it too."})

    # then
    assert response.status_code == 302
    assert Response.objects.get().author == ian


@pytest.mark.parametrize("name", ["ian", "other"])
@pytest.mark.parametrize(
    ("method", "action", "data"),
    [
        ("get", "", None),
        ("get", "edit", None),
        ("post", "status", {"status": Status.ACKNOWLEDGED}),
        ("post", "severity", {"severity": Severity.HIGH}),
        ("post", "assign", {"assignee": "fred"}),
        ("post", "team", {"team": "helpdesk"}),
        ("post", "respond", {"description": "Hello?"}),
    ],
)
def test_a_private_incident_of_another_team_is_not_found(client, request, badge, name, method, action, data):
    # given
    client.force_login(request.getfixturevalue(name))
    before = snapshot(badge)

    # when
    response = getattr(client, method)(url(badge, action), data or {})

    # then
    assert response.status_code == 404
    assert "Badge stolen" not in page(response)
    assert snapshot(badge) == before


@pytest.mark.parametrize("name", ["ian", "other"])
def test_a_private_incident_of_another_team_is_in_no_list_search_or_count(client, request, badge, name):
    # given
    client.force_login(request.getfixturevalue(name))

    # when
    pages = {
        "queue": client.get("/incidents/"),
        "all": client.get("/incidents/", {"all": "1"}),
        "search": client.get("/incidents/", {"search": "Badge"}),
        "team": client.get("/incidents/", {"team": "facilities"}),
        "public": client.get("/incidents/public/", {"search": "Badge"}),
        "dashboard": client.get("/dashboard/"),
    }

    # then
    for name_, response in pages.items():
        assert response.status_code == 200, name_
        assert "Badge stolen" not in page(response), name_
    assert "0 incidents" in page(pages["search"])
    assert "0 incidents" in page(pages["team"])


@pytest.mark.django_db(transaction=True)  # a search: InnoDB indexes a row when it commits
def test_the_team_sees_its_private_incident_in_its_queue(client, badge, fred):
    # given
    client.force_login(fred)

    # when
    response = client.get("/incidents/", {"search": "Badge"})

    # then
    assert listed(response) == ["Badge stolen"]
    assert client.get(url(badge)).status_code == 200
