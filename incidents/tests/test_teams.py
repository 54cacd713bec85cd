"""Teams, categories and ownership in the domain: the models' rules, who sees and works an
incident of a team (`permissions`), what reporting, assigning and moving do (`services`),
the timeline events they leave (`events`) and who hears of them (`recipients`).

The cast: fay leads and fred belongs to Facilities; ian belongs to Helpdesk; sue belongs to
Security, a `sees_all` team; rita (`responder`) belongs to the default `response` team,
which sees everything too; alice (`reporter`) and bob (`other`) belong to no team; sam
(`staff`) is staff and in no team.
"""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django_tasks_db.models import DBTaskResult

from incidents import permissions, services
from incidents.models import (
    DEFAULT_CATEGORY,
    DEFAULT_TEAM,
    Category,
    EventKind,
    Incident,
    IncidentEvent,
    Severity,
    Status,
    Team,
    Visibility,
)
from notifications.models import OutgoingEmail

from .factories import advance_to, category_of, delivered, make_incident, response_team, settle

PUBLIC, PRIVATE = Visibility.PUBLIC, Visibility.PRIVATE


# --- The cast -------------------------------------------------------------------------------


@pytest.fixture
def facilities_incident(reporter, facilities):
    return make_incident(reporter, title="Lift stuck", category=category_of(facilities))


# --- Helpers --------------------------------------------------------------------------------


def snapshot(incident) -> dict:
    """The incident's row, its timeline and everything queued to be sent: a refused
    change must leave all of them as they were."""
    return {
        "row": Incident.objects.filter(pk=incident.pk).values().get(),
        "events": list(IncidentEvent.objects.filter(incident=incident).values_list("pk", flat=True)),
        "emails": OutgoingEmail.objects.count(),
        "tasks": DBTaskResult.objects.count(),
    }


def fresh(user):
    """The user as stored, with no team membership cached on it."""
    return type(user).objects.get(pk=user.pk)


def last_events(incident, n: int) -> list[tuple]:
    events = IncidentEvent.objects.filter(incident=incident).order_by("-created_at", "-id")[:n]
    return [(e.kind, e.actor.username, e.field, e.old_value, e.new_value) for e in reversed(events)]


# --- Models ---------------------------------------------------------------------------------


def test_team_slugs_are_unique(facilities):
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        Team.objects.create(slug="facilities", name="Another facilities")


def test_category_slugs_are_unique(facilities, helpdesk):
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        Category.objects.create(slug="facilities-issues", name="Twin", team=helpdesk)


def test_active_categories_come_in_position_order_then_by_name(facilities):
    # given
    Category.objects.all().delete()
    Category.objects.create(slug="c", name="Charlie", team=facilities, position=20)
    Category.objects.create(slug="b", name="Bravo", team=facilities, position=10)
    Category.objects.create(slug="a", name="Alpha", team=facilities, position=20)
    Category.objects.create(slug="old", name="Retired", team=facilities, position=0, active=False)

    # when
    slugs = [category.slug for category in Category.objects.active()]

    # then
    assert slugs == ["b", "a", "c"]


def test_a_report_goes_to_its_categorys_team(reporter, facilities):
    # when
    incident = services.report_incident(
        reporter=reporter, title="Lift stuck", description="Between floors 2 and 3.", category=category_of(facilities)
    )

    # then
    stored = Incident.objects.get(pk=incident.pk)
    assert (stored.category.slug, stored.team, stored.assignee) == ("facilities-issues", facilities, None)
    assert last_events(stored, 1) == [(EventKind.REPORTED, "alice", "", "", Status.REPORTED)]


def test_a_report_without_a_category_goes_to_the_general_one(reporter, facilities):
    # given
    response_team()

    # when
    incident = services.report_incident(reporter=reporter, title="Odd smell", description="Basement.")

    # then
    stored = Incident.objects.get(pk=incident.pk)
    assert (stored.category.slug, stored.team.slug) == (DEFAULT_CATEGORY, DEFAULT_TEAM)


def test_a_report_in_an_inactive_category_is_refused(reporter, facilities):
    # given
    category = category_of(facilities)
    category.active = False
    category.save()
    before = (Incident.objects.count(), IncidentEvent.objects.count(), OutgoingEmail.objects.count())

    # when
    with pytest.raises(ValidationError) as refused:
        services.report_incident(reporter=reporter, title="Lift stuck", description="Stuck.", category=category)

    # then
    assert "category" in refused.value.message_dict
    assert (Incident.objects.count(), IncidentEvent.objects.count(), OutgoingEmail.objects.count()) == before


# --- Who sees and who works an incident of a team -------------------------------------------

# Per viewer: may it see a public / a private incident of Facilities (reported by alice)?
# fmt: off
SEES = {
    "reporter":  (True,  True),   # its reporter
    "fred":      (True,  True),   # a member of its team
    "fay":       (True,  True),   # its team's lead
    "sue":       (True,  True),   # a member of a sees_all team
    "responder": (True,  True),   # a member of the default (sees_all) response team
    "staff":     (True,  True),   # staff, in no team
    "ian":       (True,  False),  # a member of another team
    "other":     (True,  False),  # signed in, in no team
    "anonymous": (False, False),
}
# fmt: on


@pytest.mark.parametrize(
    ("role", "visibility", "expected"),
    [
        pytest.param(role, visibility, seen, id=f"{role}-{visibility}")
        for role, row in SEES.items()
        for visibility, seen in zip((PUBLIC, PRIVATE), row, strict=True)
    ],
)
def test_who_sees_an_incident_of_a_team(request, reporter, facilities, helpdesk, security, role, visibility, expected):
    # given
    incident = make_incident(reporter, category=category_of(facilities), visibility=visibility)
    viewer = request.getfixturevalue(role)

    # when
    in_queryset = Incident.objects.visible_to(viewer).filter(pk=incident.pk).exists()
    in_python = permissions.can_view(viewer, incident)

    # then
    assert (in_queryset, in_python) == (expected, expected)


def test_the_assignee_sees_a_private_incident_after_leaving_its_team(reporter, facilities, fay, fred):
    # given: fred owns a private incident of Facilities, then leaves the team
    incident = make_incident(reporter, category=category_of(facilities), visibility=PRIVATE)
    services.assign(incident=incident, actor=fay, assignee=fred)
    facilities.members.remove(fred)
    fred = fresh(fred)

    # when
    in_queryset = Incident.objects.visible_to(fred).filter(pk=incident.pk).exists()

    # then
    assert in_queryset is True
    assert permissions.can_view(fred, Incident.objects.get(pk=incident.pk)) is True
    assert permissions.can_work(fred, Incident.objects.get(pk=incident.pk)) is False


def test_a_deactivated_member_sees_nothing_of_its_team(make_user, reporter, facilities):
    # given
    ina = make_user("ina", is_active=False)
    facilities.members.add(ina)
    incident = make_incident(reporter, category=category_of(facilities), visibility=PRIVATE)

    # then
    assert not Incident.objects.visible_to(ina).exists()
    assert permissions.can_view(ina, incident) is False
    assert permissions.can_work(ina, incident) is False
    assert permissions.is_responder(ina) is False


def test_leaving_a_team_hides_its_private_incidents(reporter, facilities, fred):
    # given
    incident = make_incident(reporter, category=category_of(facilities), visibility=PRIVATE)
    assert Incident.objects.visible_to(fred).filter(pk=incident.pk).exists()

    # when
    facilities.members.remove(fred)

    # then
    assert not Incident.objects.visible_to(fresh(fred)).filter(pk=incident.pk).exists()


@pytest.mark.parametrize(
    ("role", "expected"),
    [("fred", True), ("staff", True), ("responder", True), ("reporter", False), ("anonymous", False)],
)
def test_a_responder_is_a_member_of_a_team_or_staff(request, facilities, role, expected):
    # then
    assert permissions.is_responder(request.getfixturevalue(role)) is expected


# Per user: does it work a Reported public incident of Facilities (status, severity,
# assign, move to another team)?
WORKS = {
    "fred": True,
    "fay": True,
    "sue": True,
    "responder": True,
    "staff": True,
    "ian": False,
    "reporter": False,
    "other": False,
    "anonymous": False,
}


@pytest.mark.parametrize(("role", "expected"), list(WORKS.items()))
def test_who_works_an_incident_of_a_team(request, facilities_incident, helpdesk, security, role, expected):
    # given
    user = request.getfixturevalue(role)

    # when
    answers = (
        permissions.can_work(user, facilities_incident),
        permissions.can_assign(user, facilities_incident),
        permissions.can_change_team(user, facilities_incident),
        permissions.can_change_severity(user, facilities_incident),
        Status.ACKNOWLEDGED in permissions.allowed_statuses(user, facilities_incident),
    )

    # then
    assert answers == (expected,) * 5


def test_a_member_of_another_team_may_respond_to_a_public_incident(facilities_incident, helpdesk, ian):
    # when
    response = services.add_response(incident=facilities_incident, author=ian, description="Seen it too.")

    # then
    assert response.incident == facilities_incident
    assert last_events(facilities_incident, 1) == [(EventKind.RESPONDED, "ian", "", "", "")]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"status": Status.ACKNOWLEDGED}, id="status"),
        pytest.param({"severity": Severity.HIGH}, id="severity"),
        pytest.param({"assignee": "fred"}, id="assignee"),
        pytest.param({"team": "helpdesk"}, id="team"),
        pytest.param({"category": "helpdesk-issues"}, id="category"),
    ],
)
def test_a_member_of_another_team_may_not_work_a_public_incident(facilities_incident, helpdesk, ian, fred, change):
    # given
    before = snapshot(facilities_incident)
    values = {
        "status": change.get("status"),
        "severity": change.get("severity"),
        "team": Team.objects.get(slug=change["team"]) if "team" in change else None,
        "category": Category.objects.get(slug=change["category"]) if "category" in change else None,
    }
    if "assignee" in change:
        values["assignee"] = fred

    # when
    with pytest.raises(PermissionDenied):
        services.update_incident(incident=facilities_incident, actor=ian, **values)

    # then
    assert snapshot(facilities_incident) == before


# --- Assigning -------------------------------------------------------------------------------


def test_a_team_member_assigns_a_colleague_who_is_mailed(facilities_incident, fay, fred, run_tasks, mailoutbox):
    # given
    settle(run_tasks, mailoutbox)

    # when
    services.assign(incident=facilities_incident, actor=fay, assignee=fred)

    # then
    assert Incident.objects.get(pk=facilities_incident.pk).assignee == fred
    assert last_events(facilities_incident, 1) == [(EventKind.ASSIGNED, "fay", "assignee", "", "fred")]
    assert delivered(run_tasks, mailoutbox) == {"fred": ["Assigned to you: Lift stuck"]}
    (message,) = mailoutbox
    assert "fay assigned an incident of Facilities to you" in message.body
    assert facilities_incident.get_absolute_url() in message.body


def test_assign_to_me_records_the_event_and_mails_nobody(facilities_incident, fred, run_tasks, mailoutbox):
    # given
    settle(run_tasks, mailoutbox)

    # when
    services.assign(incident=facilities_incident, actor=fred, assignee=fred)

    # then
    assert Incident.objects.get(pk=facilities_incident.pk).assignee == fred
    assert last_events(facilities_incident, 1) == [(EventKind.ASSIGNED, "fred", "assignee", "", "fred")]
    assert delivered(run_tasks, mailoutbox) == {}


def test_reassigning_names_both_people_on_the_timeline(facilities_incident, fay, fred, run_tasks, mailoutbox):
    # given
    services.assign(incident=facilities_incident, actor=fred, assignee=fred)
    settle(run_tasks, mailoutbox)

    # when
    services.assign(incident=facilities_incident, actor=fred, assignee=fay)

    # then
    assert last_events(facilities_incident, 1) == [(EventKind.ASSIGNED, "fred", "assignee", "fred", "fay")]
    assert delivered(run_tasks, mailoutbox) == {"fay": ["Assigned to you: Lift stuck"]}


def test_unassigning_records_an_unassigned_event_and_mails_nobody(
    facilities_incident, fay, fred, run_tasks, mailoutbox
):
    # given
    services.assign(incident=facilities_incident, actor=fay, assignee=fred)
    settle(run_tasks, mailoutbox)

    # when
    services.assign(incident=facilities_incident, actor=fay, assignee=None)

    # then
    assert Incident.objects.get(pk=facilities_incident.pk).assignee is None
    assert last_events(facilities_incident, 1) == [(EventKind.UNASSIGNED, "fay", "assignee", "fred", "")]
    assert delivered(run_tasks, mailoutbox) == {}


def test_assigning_the_current_assignee_again_changes_nothing(facilities_incident, fay, fred):
    # given
    services.assign(incident=facilities_incident, actor=fay, assignee=fred)
    before = snapshot(facilities_incident)

    # when
    services.assign(incident=facilities_incident, actor=fay, assignee=fred)

    # then
    assert snapshot(facilities_incident) == before


@pytest.mark.parametrize("name", ["ian", "other", "reporter", "sue"])
def test_assigning_someone_outside_the_team_is_refused_with_a_clear_message(
    request, facilities_incident, helpdesk, security, fay, name
):
    # given: ian is in another team, bob and alice in none, sue in a sees_all team
    outsider = request.getfixturevalue(name)
    before = snapshot(facilities_incident)

    # when
    with pytest.raises(ValidationError) as refused:
        services.assign(incident=facilities_incident, actor=fay, assignee=outsider)

    # then
    assert refused.value.message_dict == {
        "assignee": [f"{outsider.username} is not a member of Facilities: assign a team member."]
    }
    assert snapshot(facilities_incident) == before


def test_a_deactivated_member_cannot_be_assigned(facilities_incident, fay, fred):
    # given
    type(fred).objects.filter(pk=fred.pk).update(is_active=False)
    before = snapshot(facilities_incident)

    # when
    with pytest.raises(ValidationError) as refused:
        services.assign(incident=facilities_incident, actor=fay, assignee=fresh(fred))

    # then
    assert "assignee" in refused.value.message_dict
    assert snapshot(facilities_incident) == before


def test_staff_may_be_assigned_without_being_a_member(facilities_incident, fay, staff):
    # when
    services.assign(incident=facilities_incident, actor=fay, assignee=staff)

    # then
    assert Incident.objects.get(pk=facilities_incident.pk).assignee == staff


@pytest.mark.parametrize("name", ["ian", "reporter", "other"])
def test_only_those_who_work_an_incident_may_assign_it(request, facilities_incident, helpdesk, fred, name):
    # given
    actor = request.getfixturevalue(name)
    before = snapshot(facilities_incident)

    # when
    with pytest.raises(PermissionDenied):
        services.assign(incident=facilities_incident, actor=actor, assignee=fred)

    # then
    assert snapshot(facilities_incident) == before


def test_a_member_of_another_team_may_not_take_the_incident_either(facilities_incident, helpdesk, ian):
    # given
    before = snapshot(facilities_incident)

    # when
    with pytest.raises(PermissionDenied):
        services.assign(incident=facilities_incident, actor=ian, assignee=ian)

    # then
    assert snapshot(facilities_incident) == before


def test_a_sees_all_member_works_another_teams_incident(facilities_incident, helpdesk, security, sue, fred, ian):
    # when
    services.update_incident(
        incident=facilities_incident, actor=sue, severity=Severity.HIGH, status=Status.ACKNOWLEDGED, assignee=fred
    )
    services.move_to_team(incident=facilities_incident, actor=sue, team=helpdesk)

    # then
    stored = Incident.objects.get(pk=facilities_incident.pk)
    assert (stored.severity, stored.status, stored.team, stored.assignee) == (
        Severity.HIGH,
        Status.ACKNOWLEDGED,
        helpdesk,
        None,
    )


def test_a_closed_incident_cannot_be_assigned_or_moved(facilities_incident, helpdesk, staff, fred):
    # given
    incident = advance_to(facilities_incident, Status.CLOSED, by=staff)
    before = snapshot(incident)

    # when / then
    with pytest.raises(PermissionDenied):
        services.assign(incident=incident, actor=fred, assignee=fred)
    with pytest.raises(PermissionDenied):
        services.move_to_team(incident=incident, actor=fred, team=helpdesk)
    assert snapshot(incident) == before


# --- Moving to another team and changing the category ----------------------------------------


def test_moving_to_another_team_records_it_and_alerts_that_team(
    facilities_incident, helpdesk, fred, run_tasks, mailoutbox
):
    # given
    settle(run_tasks, mailoutbox)

    # when
    services.move_to_team(incident=facilities_incident, actor=fred, team=helpdesk)

    # then
    assert Incident.objects.get(pk=facilities_incident.pk).team == helpdesk
    assert last_events(facilities_incident, 1) == [(EventKind.TEAM_CHANGED, "fred", "team", "Facilities", "Helpdesk")]
    # the new team hears of it; the old one (fay) and the actor (fred) do not
    assert delivered(run_tasks, mailoutbox) == {"ian": ["Moved to Helpdesk: Lift stuck"]}
    (message,) = mailoutbox
    assert "moved to Helpdesk from Facilities" in message.body


def test_moving_a_private_incident_hands_it_to_the_new_team(reporter, facilities, helpdesk, fred, ian):
    # given
    incident = make_incident(reporter, category=category_of(facilities), visibility=PRIVATE)
    assert not Incident.objects.visible_to(ian).filter(pk=incident.pk).exists()

    # when
    services.move_to_team(incident=incident, actor=fred, team=helpdesk)

    # then
    assert Incident.objects.visible_to(fresh(ian)).filter(pk=incident.pk).exists()
    assert not Incident.objects.visible_to(fresh(fred)).filter(pk=incident.pk).exists()


def test_moving_clears_an_assignee_who_is_not_a_member_there(facilities_incident, helpdesk, fay, fred):
    # given
    services.assign(incident=facilities_incident, actor=fay, assignee=fred)

    # when
    services.move_to_team(incident=facilities_incident, actor=fay, team=helpdesk)

    # then
    stored = Incident.objects.get(pk=facilities_incident.pk)
    assert (stored.team, stored.assignee) == (helpdesk, None)
    assert last_events(stored, 2) == [
        (EventKind.TEAM_CHANGED, "fay", "team", "Facilities", "Helpdesk"),
        (EventKind.UNASSIGNED, "fay", "assignee", "fred", ""),
    ]


def test_moving_keeps_an_assignee_who_is_a_member_there(facilities_incident, helpdesk, fay, fred):
    # given: fred is in both teams
    helpdesk.members.add(fred)
    services.assign(incident=facilities_incident, actor=fay, assignee=fred)

    # when
    services.move_to_team(incident=facilities_incident, actor=fay, team=helpdesk)

    # then
    stored = Incident.objects.get(pk=facilities_incident.pk)
    assert (stored.team, stored.assignee) == (helpdesk, fred)
    assert last_events(stored, 1) == [(EventKind.TEAM_CHANGED, "fay", "team", "Facilities", "Helpdesk")]


def test_moving_to_the_team_it_is_in_changes_nothing(facilities_incident, facilities, fred):
    # given
    before = snapshot(facilities_incident)

    # when
    services.move_to_team(incident=facilities_incident, actor=fred, team=facilities)

    # then
    assert snapshot(facilities_incident) == before


def test_moving_and_assigning_in_one_update_checks_the_assignee_against_the_new_team(
    facilities_incident, helpdesk, staff, ian
):
    # when: the assignee is checked against the team the incident is moving to
    services.update_incident(incident=facilities_incident, actor=staff, team=helpdesk, assignee=ian)

    # then
    stored = Incident.objects.get(pk=facilities_incident.pk)
    assert (stored.team, stored.assignee) == (helpdesk, ian)


def test_a_member_may_change_severity_and_status_while_moving_the_incident_away(facilities_incident, helpdesk, fred):
    # given: fred works the incident as it is when he asks
    # when
    services.update_incident(
        incident=facilities_incident, actor=fred, team=helpdesk, severity=Severity.HIGH, status=Status.ACKNOWLEDGED
    )

    # then
    stored = Incident.objects.get(pk=facilities_incident.pk)
    assert (stored.team, stored.severity, stored.status) == (helpdesk, Severity.HIGH, Status.ACKNOWLEDGED)


def test_changing_the_category_records_an_event(facilities_incident, helpdesk, fred):
    # when
    services.update_incident(incident=facilities_incident, actor=fred, category=category_of(helpdesk))

    # then
    stored = Incident.objects.get(pk=facilities_incident.pk)
    assert stored.category == category_of(helpdesk)
    assert last_events(stored, 1) == [
        (EventKind.CATEGORY_CHANGED, "fred", "category", "Facilities issues", "Helpdesk issues")
    ]


def test_an_inactive_category_cannot_be_chosen_later(facilities_incident, fred, facilities):
    # given
    retired = Category.objects.create(slug="retired", name="Retired", team=facilities, active=False)
    before = snapshot(facilities_incident)

    # when
    with pytest.raises(ValidationError) as refused:
        services.update_incident(incident=facilities_incident, actor=fred, category=retired)

    # then
    assert "category" in refused.value.message_dict
    assert snapshot(facilities_incident) == before


# --- Who hears of what ------------------------------------------------------------------------


@pytest.mark.parametrize("visibility", [PUBLIC, PRIVATE])
def test_a_new_incident_alerts_the_members_of_its_team_only(
    reporter, facilities, helpdesk, security, responder, staff, run_tasks, mailoutbox, visibility
):
    # when
    make_incident(reporter, title="Lift stuck", category=category_of(facilities), visibility=visibility)

    # then: fay and fred are alerted; ian, sue, rita (sees_all) and sam (staff) are not
    assert delivered(run_tasks, mailoutbox) == {
        "alice": ["Incident reported: Lift stuck"],
        "fay": ["New incident: Lift stuck"],
        "fred": ["New incident: Lift stuck"],
    }


@pytest.mark.parametrize(
    ("severity", "subject"),
    [
        (Severity.LOW, "New incident: Lift stuck"),
        (Severity.MEDIUM, "New incident: Lift stuck"),
        (Severity.HIGH, "[HIGH] New incident: Lift stuck"),
        (Severity.CRITICAL, "[CRITICAL] New incident: Lift stuck"),
    ],
)
def test_high_and_critical_alerts_are_marked(reporter, facilities, run_tasks, mailoutbox, severity, subject):
    # when
    make_incident(reporter, title="Lift stuck", category=category_of(facilities), severity=severity)

    # then
    run_tasks()
    alerts = [message for message in mailoutbox if message.to == ["fred@example.com"]]
    (alert,) = alerts
    assert alert.subject == subject
    marked = f"with {severity.upper()} severity" in alert.body
    assert marked is (severity in (Severity.HIGH, Severity.CRITICAL))


def test_a_member_who_reports_is_not_alerted_of_its_own_report(facilities, fred, run_tasks, mailoutbox):
    # when
    make_incident(fred, title="Lift stuck", category=category_of(facilities))

    # then
    assert delivered(run_tasks, mailoutbox) == {
        "fred": ["Incident reported: Lift stuck"],
        "fay": ["New incident: Lift stuck"],
    }


def test_alerts_respect_the_preference_and_skip_deactivated_members(
    make_user, reporter, facilities, fred, run_tasks, mailoutbox
):
    # given
    type(fred).objects.filter(pk=fred.pk).update(email_on_new_incident=False)
    facilities.members.add(make_user("ina", is_active=False))

    # when
    make_incident(reporter, title="Lift stuck", category=category_of(facilities))

    # then
    assert delivered(run_tasks, mailoutbox) == {
        "alice": ["Incident reported: Lift stuck"],
        "fay": ["New incident: Lift stuck"],
    }


def test_responses_reach_the_reporter_the_assignee_and_participants(
    facilities_incident, helpdesk, fay, fred, ian, other, run_tasks, mailoutbox
):
    # given: fred owns it, ian (another team) responded before
    services.assign(incident=facilities_incident, actor=fay, assignee=fred)
    services.add_response(incident=facilities_incident, author=ian, description="Seen it too.")
    settle(run_tasks, mailoutbox)

    # when
    services.add_response(incident=facilities_incident, author=other, description="Still stuck.")

    # then: not bob (the author), not fay (in the team, but neither owner nor participant)
    recipients = delivered(run_tasks, mailoutbox)
    assert set(recipients) == {"alice", "fred", "ian"}
    assert all(len(subjects) == 1 for subjects in recipients.values())


def test_status_changes_reach_the_reporter_the_assignee_and_participants(
    facilities_incident, helpdesk, fay, fred, ian, run_tasks, mailoutbox
):
    # given
    services.assign(incident=facilities_incident, actor=fay, assignee=fred)
    services.add_response(incident=facilities_incident, author=ian, description="Seen it too.")
    settle(run_tasks, mailoutbox)

    # when
    services.change_status(incident=facilities_incident, actor=fay, status=Status.ACKNOWLEDGED)

    # then
    recipients = delivered(run_tasks, mailoutbox)
    assert set(recipients) == {"alice", "fred", "ian"}
    assert all(len(subjects) == 1 for subjects in recipients.values())


def test_the_assignee_hears_of_responses_without_having_responded(
    facilities_incident, fay, fred, other, run_tasks, mailoutbox
):
    # given
    services.assign(incident=facilities_incident, actor=fay, assignee=fred)
    settle(run_tasks, mailoutbox)

    # when
    services.add_response(incident=facilities_incident, author=other, description="Still stuck.")

    # then
    assert "fred" in delivered(run_tasks, mailoutbox)


def test_no_mail_about_a_private_incident_reaches_a_participant_who_can_no_longer_see_it(
    reporter, facilities, fay, fred, run_tasks, mailoutbox
):
    # given: fred responded as a member, then left the team
    incident = make_incident(reporter, category=category_of(facilities), visibility=PRIVATE)
    services.add_response(incident=incident, author=fred, description="On my way.")
    facilities.members.remove(fred)
    settle(run_tasks, mailoutbox)

    # when
    services.add_response(incident=incident, author=fay, description="Fixed the door.")
    services.change_status(incident=incident, actor=fay, status=Status.ACKNOWLEDGED)

    # then
    recipients = delivered(run_tasks, mailoutbox)
    assert "fred" not in recipients
    assert len(recipients["alice"]) == 2
