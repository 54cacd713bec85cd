"""The admin of teams, categories and ownership, through the test client as a superuser
(pytest-django's `admin_client`): the Team admin (members and leads, leads must be
members), the Category admin, and the incident changelist's team/category/assignee
filters and columns and its "assign to…" and "move to team…" bulk actions, which go
through the services and skip, with a warning, what the services refuse.

The cast: fay leads and fred belongs to Facilities; ian belongs to Helpdesk; alice
(`reporter`) belongs to no team.
"""

import re

import pytest
from django.contrib.messages import constants as message_levels
from django_tasks_db.models import DBTaskResult

from incidents import services
from incidents.models import Category, EventKind, Incident, IncidentEvent, Response, Status, Team
from notifications.models import OutgoingEmail

from .factories import advance_to, category_of, delivered, make_incident, settle

CHANGELIST = "/admin/incidents/incident/"
TEAMS = "/admin/incidents/team/"
CATEGORIES = "/admin/incidents/category/"


# --- The cast -------------------------------------------------------------------------------


@pytest.fixture
def door(reporter, facilities, helpdesk):
    return make_incident(reporter, title="Door jammed", category=category_of(facilities))


@pytest.fixture
def laptop(reporter, facilities, helpdesk):
    return make_incident(reporter, title="Laptop dead", category=category_of(helpdesk))


# --- Helpers --------------------------------------------------------------------------------


def snapshot(incident) -> dict:
    return {
        "row": Incident.objects.filter(pk=incident.pk).values().get(),
        "events": IncidentEvent.objects.filter(incident=incident).count(),
        "responses": Response.objects.filter(incident=incident).count(),
    }


def queued() -> tuple[int, int]:
    return OutgoingEmail.objects.count(), DBTaskResult.objects.count()


def listed(response) -> set[str]:
    return {incident.title for incident in response.context["cl"].result_list}


def shown_messages(response) -> list[tuple[int, str]]:
    return [(message.level, str(message)) for message in response.context["messages"]]


def run_action(client, action, incidents, **fields):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [incident.pk for incident in incidents], "index": 0, **fields},
        follow=True,
    )


def form_data(response) -> dict:
    """What a browser posts back from the admin form it rendered, unchanged (the main
    form's fields and every inline's management form and rows)."""

    def values(form):
        data = {}
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            if isinstance(value, (list, tuple)):
                value = [getattr(item, "pk", item) for item in value]
            data[form.add_prefix(name)] = "on" if value is True else value
        return data

    data = values(response.context["adminform"].form)
    for inline in response.context.get("inline_admin_formsets", []):
        data.update(values(inline.formset.management_form))
        for form in inline.formset.forms:
            data.update(values(form))
    return data


def change_url(incident) -> str:
    return f"{CHANGELIST}{incident.pk}/change/"


# --- Team admin -------------------------------------------------------------------------------


def test_team_admin_picks_members_and_leads_with_filter_horizontal(admin_client, fay):
    # when
    response = admin_client.get(f"{TEAMS}add/")

    # then
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("members", "leads"):
        select = re.search(rf'<select[^>]*name="{name}"[^>]*>', html).group(0)
        assert "selectfilter" in select
    assert {"slug", "name", "description", "members", "leads", "sees_all"} <= set(
        response.context["adminform"].form.fields
    )


def test_team_admin_saves_a_team_whose_leads_are_members(admin_client, fay, fred):
    # when
    response = admin_client.post(
        f"{TEAMS}add/",
        {
            "slug": "security",
            "name": "Security",
            "description": "Badges.",
            "members": [fay.pk, fred.pk],
            "leads": [fay.pk],
        },
    )

    # then
    assert response.status_code == 302
    team = Team.objects.get(slug="security")
    assert set(team.members.all()) == {fay, fred}
    assert list(team.leads.all()) == [fay]
    assert team.sees_all is False


def test_team_admin_refuses_a_lead_who_is_not_a_member(admin_client, fay, fred):
    # when
    response = admin_client.post(
        f"{TEAMS}add/", {"slug": "security", "name": "Security", "members": [fred.pk], "leads": [fay.pk, fred.pk]}
    )

    # then
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["leads"] == ["Leads must be members of the team too: fay."]
    assert not Team.objects.filter(slug="security").exists()


def test_team_admin_refuses_to_drop_a_lead_from_the_members(admin_client, facilities, fay, fred):
    # given
    data = form_data(admin_client.get(f"{TEAMS}{facilities.pk}/change/"))
    data["members"] = [fred.pk]

    # when
    response = admin_client.post(f"{TEAMS}{facilities.pk}/change/", data)

    # then
    assert response.status_code == 200
    assert "leads" in response.context["adminform"].form.errors
    assert set(facilities.members.all()) == {fay, fred}


def test_team_admin_lists_teams_with_their_member_count(admin_client, facilities, helpdesk):
    # when
    response = admin_client.get(TEAMS)

    # then
    assert response.status_code == 200
    counts = {team.slug: team._members for team in response.context["cl"].result_list}
    assert counts["facilities"] == 2 and counts["helpdesk"] == 1


# --- Category admin ----------------------------------------------------------------------------


def test_category_admin_adds_a_category_for_a_team(admin_client, facilities):
    # when
    response = admin_client.post(
        f"{CATEGORIES}add/",
        {
            "slug": "heating",
            "name": "Heating",
            "description": "Too hot, too cold.",
            "team": facilities.pk,
            "active": "on",
            "position": 5,
        },
    )

    # then
    assert response.status_code == 302
    category = Category.objects.get(slug="heating")
    assert (category.team, category.active, category.position, category.description) == (
        facilities,
        True,
        5,
        "Too hot, too cold.",
    )
    assert category in Category.objects.active()


def test_category_admin_lists_categories_with_team_active_and_position(admin_client, facilities, helpdesk):
    # when
    response = admin_client.get(CATEGORIES, {"team__id__exact": helpdesk.pk})

    # then
    assert response.status_code == 200
    assert [category.slug for category in response.context["cl"].result_list] == ["helpdesk-issues"]
    assert {"team", "active", "position"} <= set(response.context["cl"].list_display)


def test_a_deactivated_category_leaves_the_report_form(admin_client, client, reporter, facilities, helpdesk):
    # given
    category = category_of(helpdesk)
    data = form_data(admin_client.get(f"{CATEGORIES}{category.pk}/change/"))
    data.pop("active", None)

    # when
    response = admin_client.post(f"{CATEGORIES}{category.pk}/change/", data)

    # then
    assert response.status_code == 302
    client.force_login(reporter)
    form = client.get("/incidents/new/").context["form"]
    assert category not in form.fields["category"].queryset


# --- Incident changelist: filters and columns --------------------------------------------------


def test_changelist_filters_by_team_category_and_assignee(admin_client, admin_user, lift, door, laptop, fred):
    # given
    services.assign(incident=lift, actor=admin_user, assignee=fred)
    services.assign(incident=laptop, actor=admin_user, assignee=admin_user)

    # when
    pages = {
        "team": admin_client.get(CHANGELIST, {"team__id__exact": laptop.team_id}),
        "category": admin_client.get(CHANGELIST, {"category__id__exact": lift.category_id}),
        "me": admin_client.get(CHANGELIST, {"assignee": "me"}),
        "none": admin_client.get(CHANGELIST, {"assignee": "none"}),
        "any": admin_client.get(CHANGELIST, {"assignee": "any"}),
    }

    # then
    assert {name: listed(response) for name, response in pages.items()} == {
        "team": {"Laptop dead"},
        "category": {"Lift stuck", "Door jammed"},
        "me": {"Laptop dead"},
        "none": {"Door jammed"},
        "any": {"Lift stuck", "Laptop dead"},
    }
    titles = {spec.title for spec in pages["team"].context["cl"].filter_specs}
    assert {"team", "category", "assignee"} <= titles


def test_changelist_shows_team_and_assignee_columns(admin_client, admin_user, lift, fred):
    # given
    services.assign(incident=lift, actor=admin_user, assignee=fred)

    # when
    response = admin_client.get(CHANGELIST)

    # then
    html = response.content.decode()
    assert re.search(r'<td class="field-team[^"]*">Facilities</td>', html)
    assert re.search(r'<td class="field-assignee[^"]*">fred</td>', html)


# --- Bulk "assign to…" -------------------------------------------------------------------------


def test_bulk_assign_goes_through_the_service_and_skips_a_refused_one(
    admin_client, admin_user, lift, door, laptop, fred, run_tasks, mailoutbox
):
    # given: fred is in Facilities (lift, door), not in Helpdesk (laptop)
    settle(run_tasks, mailoutbox)
    laptop_before = snapshot(laptop)

    # when
    response = run_action(admin_client, "assign_selected", [lift, door, laptop], assignee="fred", team="")

    # then
    assert response.status_code == 200
    for incident in (lift, door):
        assert Incident.objects.get(pk=incident.pk).assignee == fred
        assert IncidentEvent.objects.filter(
            incident=incident, kind=EventKind.ASSIGNED, actor=admin_user, new_value="fred"
        ).exists()
    assert snapshot(laptop) == laptop_before
    messages = shown_messages(response)
    assert (message_levels.SUCCESS, "Assigned to fred: 2 incidents.") in messages
    assert [text for level, text in messages if level == message_levels.WARNING] == [
        "Skipped 1: fred is not a member of Helpdesk: assign a team member."
    ]
    mail = delivered(run_tasks, mailoutbox)
    assert list(mail) == ["fred"]
    assert sorted(mail["fred"]) == ["Assigned to you: Door jammed", "Assigned to you: Lift stuck"]


@pytest.mark.parametrize("assignee", ["", "ghost"])
def test_bulk_assign_without_a_known_user_changes_nothing(admin_client, lift, door, assignee):
    # given
    before = [snapshot(lift), snapshot(door)], queued()

    # when
    response = run_action(admin_client, "assign_selected", [lift, door], assignee=assignee, team="")

    # then
    assert response.status_code == 200
    assert ([snapshot(lift), snapshot(door)], queued()) == before
    assert any(level in (message_levels.ERROR, message_levels.WARNING) for level, _ in shown_messages(response))


def test_bulk_assign_skips_a_closed_incident(admin_client, admin_user, lift, door, fred):
    # given
    closed = advance_to(door, Status.CLOSED, by=admin_user)
    closed_before = snapshot(closed)

    # when
    response = run_action(admin_client, "assign_selected", [lift, closed], assignee="fred", team="")

    # then
    assert Incident.objects.get(pk=lift.pk).assignee == fred
    assert snapshot(closed) == closed_before
    assert [level for level, _ in shown_messages(response)] == [message_levels.SUCCESS, message_levels.WARNING]


# --- Bulk "move to team…" ----------------------------------------------------------------------


def test_bulk_move_goes_through_the_service_and_skips_a_refused_one(
    admin_client, admin_user, lift, door, helpdesk, fred, run_tasks, mailoutbox
):
    # given: lift is fred's; door is closed
    services.assign(incident=lift, actor=admin_user, assignee=fred)
    closed = advance_to(door, Status.CLOSED, by=admin_user)
    closed_before = snapshot(closed)
    settle(run_tasks, mailoutbox)

    # when
    response = run_action(admin_client, "move_selected_to_team", [lift, closed], team=helpdesk.pk, assignee="")

    # then
    stored = Incident.objects.get(pk=lift.pk)
    assert (stored.team, stored.assignee) == (helpdesk, None)
    assert IncidentEvent.objects.filter(
        incident=lift, kind=EventKind.TEAM_CHANGED, actor=admin_user, old_value="Facilities", new_value="Helpdesk"
    ).exists()
    assert IncidentEvent.objects.filter(incident=lift, kind=EventKind.UNASSIGNED, old_value="fred").exists()
    assert snapshot(closed) == closed_before
    messages = shown_messages(response)
    assert (message_levels.SUCCESS, "Moved to Helpdesk: 1 incident.") in messages
    assert [level for level, _ in messages if level == message_levels.WARNING] == [message_levels.WARNING]
    assert delivered(run_tasks, mailoutbox) == {"ian": ["Moved to Helpdesk: Lift stuck"]}


@pytest.mark.parametrize("team", ["", "999999"])
def test_bulk_move_without_a_known_team_changes_nothing(admin_client, lift, door, team):
    # given
    before = [snapshot(lift), snapshot(door)], queued()

    # when
    response = run_action(admin_client, "move_selected_to_team", [lift, door], team=team, assignee="")

    # then
    assert response.status_code == 200
    assert ([snapshot(lift), snapshot(door)], queued()) == before
    assert any(level in (message_levels.ERROR, message_levels.WARNING) for level, _ in shown_messages(response))


# --- The incident change and add forms -----------------------------------------------------------


def test_change_form_moves_and_assigns_through_the_services(admin_client, admin_user, lift, helpdesk, ian):
    # given
    data = form_data(admin_client.get(change_url(lift)))
    data.update(team=helpdesk.pk, assignee=ian.pk)

    # when
    response = admin_client.post(change_url(lift), data)

    # then
    assert response.status_code == 302
    stored = Incident.objects.get(pk=lift.pk)
    assert (stored.team, stored.assignee) == (helpdesk, ian)
    kinds = set(IncidentEvent.objects.filter(incident=lift, actor=admin_user).values_list("kind", flat=True))
    assert kinds == {EventKind.TEAM_CHANGED, EventKind.ASSIGNED}


def test_change_form_refuses_an_assignee_outside_the_team_with_a_form_error(admin_client, lift, ian):
    # given
    before = snapshot(lift), queued()
    data = form_data(admin_client.get(change_url(lift)))
    data["assignee"] = ian.pk

    # when
    response = admin_client.post(change_url(lift), data)

    # then
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "ian is not a member of Facilities: assign a team member." in str(errors)
    assert (snapshot(lift), queued()) == before


def test_change_form_refuses_an_inactive_category_with_a_form_error(admin_client, lift, facilities):
    # given
    retired = Category.objects.create(slug="retired", name="Retired", team=facilities, active=False)
    before = snapshot(lift), queued()
    data = form_data(admin_client.get(change_url(lift)))
    data["category"] = retired.pk

    # when
    response = admin_client.post(change_url(lift), data)

    # then
    assert response.status_code == 200
    assert "category" in response.context["adminform"].form.errors
    assert (snapshot(lift), queued()) == before


def test_add_form_routes_by_category_and_assigns(admin_client, admin_user, reporter, facilities, helpdesk, fred):
    # given
    data = form_data(admin_client.get(f"{CHANGELIST}add/"))
    data.update(
        title="Reported by phone",
        description="Lift stuck.",
        reporter=reporter.pk,
        category=category_of(facilities).pk,
        assignee=fred.pk,
    )
    data.pop("team", None)

    # when
    response = admin_client.post(f"{CHANGELIST}add/", data)

    # then
    assert response.status_code == 302
    incident = Incident.objects.get()
    assert (incident.category, incident.team, incident.assignee) == (category_of(facilities), facilities, fred)


def test_a_team_member_who_is_not_staff_cannot_open_the_admin(client, lift, fred):
    # given
    client.force_login(fred)

    # when
    response = client.get(change_url(lift))

    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
