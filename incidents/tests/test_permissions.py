"""The authorization layer: who sees which incident (`Incident.objects.visible_to` and
`permissions.can_view`, which must agree) and who may respond, edit, re-grade and move it.

Expected answers are written out as tables from the rules in the issue.
"""

import pytest

from incidents import permissions
from incidents.models import Incident, Status, Visibility

from .factories import advance_to, assign_then_leave_team, category_of, make_incident, make_responder

PUBLIC, PRIVATE = Visibility.PUBLIC, Visibility.PRIVATE
REPORTED, ACKNOWLEDGED, IN_PROGRESS, RESOLVED, CLOSED = (
    Status.REPORTED,
    Status.ACKNOWLEDGED,
    Status.IN_PROGRESS,
    Status.RESOLVED,
    Status.CLOSED,
)


@pytest.fixture
def inactive_reporter(make_user):
    """A deactivated account with no role at all."""
    return make_user("ines", is_active=False)


@pytest.fixture
def carol(make_user):
    """Reports the incidents that are someone else's for every user under test."""
    return make_user("carol")


# --- Who sees what -------------------------------------------------------------------------

# Per viewer: may it see an incident that is its own (reported in the default category, the
# `response` team's), carol's in the default category, or carol's of team A (assigned to
# `assignee`, who has left team A since), public and private? None: an anonymous user owns
# nothing.
OWN, DEFAULT_TEAM, TEAM_A = "own", "default-team", "team-a"
COLUMNS = [(whose, visibility) for whose in (OWN, DEFAULT_TEAM, TEAM_A) for visibility in (PUBLIC, PRIVATE)]
# fmt: off
VISIBLE = {
    #                      own             carol's, default team   carol's, team A
    #                      public, private public, private         public, private
    "anonymous":          (None,  None,    False, False,           False, False),
    "reporter":           (True,  True,    True,  False,           True,  False),
    "other":              (True,  True,    True,  False,           True,  False),
    "team_a_member":      (True,  True,    True,  False,           True,  True),
    "team_b_member":      (True,  True,    True,  False,           True,  False),
    "responder":          (True,  True,    True,  True,            True,  True),   # a sees_all team
    "assignee":           (True,  True,    True,  False,           True,  True),   # of carol's team A ones
    "staff":              (True,  True,    True,  True,            True,  True),
    "inactive":           (False, False,   False, False,           False, False),
    "inactive_reporter":  (False, False,   False, False,           False, False),
}
# fmt: on

VISIBILITY_CASES = [
    pytest.param(role, whose, visibility, expected, id=f"{role}-{whose}-{visibility}")
    for role, row in VISIBLE.items()
    for (whose, visibility), expected in zip(COLUMNS, row, strict=True)
    if expected is not None
]


@pytest.fixture
def make_carols(carol, team_a, team_b_member, assignee, staff):
    """carol's incident in the default category, or of team A (then assigned to `assignee`,
    who left team A afterwards). `team_b_member` is asked for so that team B exists too."""

    def make(whose, visibility):
        if whose == DEFAULT_TEAM:
            return make_incident(carol, visibility=visibility)
        incident = make_incident(carol, category=category_of(team_a), visibility=visibility)
        return assign_then_leave_team(incident, assignee, by=staff)

    return make


@pytest.mark.parametrize(("role", "whose", "visibility", "expected"), VISIBILITY_CASES)
def test_visible_to_and_can_view_agree_with_the_rules(request, make_carols, role, whose, visibility, expected):
    # given
    viewer = request.getfixturevalue(role)
    incident = make_incident(viewer, visibility=visibility) if whose == OWN else make_carols(whose, visibility)

    # when
    in_queryset = Incident.objects.visible_to(viewer).filter(pk=incident.pk).exists()
    in_python = permissions.can_view(viewer, incident)

    # then
    assert (in_queryset, in_python) == (expected, expected)


@pytest.mark.parametrize("role", list(VISIBLE))
def test_visible_to_returns_exactly_what_can_view_allows(request, make_carols, role):
    # given: one incident of each kind and visibility from carol, and from the viewer when it can report
    viewer = request.getfixturevalue(role)
    incidents = [make_carols(whose, v) for whose in (DEFAULT_TEAM, TEAM_A) for v in (PUBLIC, PRIVATE)]
    if role != "anonymous":
        incidents += [make_incident(viewer, visibility=v) for v in (PUBLIC, PRIVATE)]

    # when
    listed = list(Incident.objects.visible_to(viewer).values_list("pk", flat=True))

    # then
    assert sorted(listed) == sorted(i.pk for i in incidents if permissions.can_view(viewer, i))


def test_responders_see_private_incidents_of_everyone(make_user, responder):
    # given
    private = [make_incident(make_user(name), visibility=PRIVATE) for name in ("dan", "eve", "fay")]

    # when
    seen = set(Incident.objects.visible_to(responder).values_list("pk", flat=True))

    # then
    assert seen == {i.pk for i in private}
    assert all(permissions.can_view(responder, i) for i in private)


def test_leaving_the_response_team_hides_private_incidents_again(make_user, private_incident):
    # given: a responder who has since left the team, as a fresh request would load them
    former = make_responder(make_user, "gus")
    former.teams.clear()
    former = type(former).objects.get(pk=former.pk)

    # when / then
    assert not Incident.objects.visible_to(former).filter(pk=private_incident.pk).exists()
    assert not permissions.can_view(former, private_incident)


# --- What each role may do -------------------------------------------------------------------

# Per (role, visibility of alice's incident), per status:
# (can_respond, can_edit, can_change_severity, allowed_statuses).
NOTHING = (False, False, False, set())
ACTIONS = {
    ("reporter", PUBLIC): {
        REPORTED: (True, True, False, {CLOSED}),
        ACKNOWLEDGED: (True, False, False, {CLOSED}),
        IN_PROGRESS: (True, False, False, {CLOSED}),
        RESOLVED: (True, False, False, {IN_PROGRESS, CLOSED}),
        CLOSED: NOTHING,
    },
    ("reporter", PRIVATE): {
        REPORTED: (True, True, False, {CLOSED}),
        ACKNOWLEDGED: (True, False, False, {CLOSED}),
        IN_PROGRESS: (True, False, False, {CLOSED}),
        RESOLVED: (True, False, False, {IN_PROGRESS, CLOSED}),
        CLOSED: NOTHING,
    },
    ("other", PUBLIC): {
        REPORTED: (True, False, False, set()),
        ACKNOWLEDGED: (True, False, False, set()),
        IN_PROGRESS: (True, False, False, set()),
        RESOLVED: (True, False, False, set()),
        CLOSED: NOTHING,
    },
    ("other", PRIVATE): {
        REPORTED: NOTHING,
        ACKNOWLEDGED: NOTHING,
        IN_PROGRESS: NOTHING,
        RESOLVED: NOTHING,
        CLOSED: NOTHING,
    },
    ("responder", PRIVATE): {
        REPORTED: (True, False, True, {ACKNOWLEDGED, RESOLVED}),
        ACKNOWLEDGED: (True, False, True, {IN_PROGRESS, RESOLVED}),
        IN_PROGRESS: (True, False, True, {RESOLVED}),
        RESOLVED: (True, False, True, {IN_PROGRESS, CLOSED}),
        CLOSED: NOTHING,
    },
    ("staff", PRIVATE): {
        REPORTED: (True, True, True, {ACKNOWLEDGED, RESOLVED, CLOSED}),
        ACKNOWLEDGED: (True, True, True, {IN_PROGRESS, RESOLVED, CLOSED}),
        IN_PROGRESS: (True, True, True, {RESOLVED, CLOSED}),
        RESOLVED: (True, True, True, {IN_PROGRESS, CLOSED}),
        CLOSED: (False, True, False, set()),
    },
    ("anonymous", PUBLIC): {
        REPORTED: NOTHING,
        ACKNOWLEDGED: NOTHING,
        IN_PROGRESS: NOTHING,
        RESOLVED: NOTHING,
        CLOSED: NOTHING,
    },
    ("inactive", PUBLIC): {
        REPORTED: NOTHING,
        ACKNOWLEDGED: NOTHING,
        IN_PROGRESS: NOTHING,
        RESOLVED: NOTHING,
        CLOSED: NOTHING,
    },
}

ACTION_CASES = [
    pytest.param(role, visibility, status, *expected, id=f"{role}-{visibility}-{status}")
    for (role, visibility), rows in ACTIONS.items()
    for status, expected in rows.items()
]


@pytest.mark.parametrize(
    ("role", "visibility", "status", "respond", "edit", "severity", "moves"),
    ACTION_CASES,
)
def test_what_each_role_may_do(request, reporter, staff, role, visibility, status, respond, edit, severity, moves):
    # given: alice's incident, brought to `status` by staff
    incident = advance_to(make_incident(reporter, visibility=visibility), status, by=staff)
    user = request.getfixturevalue(role)

    # when
    allowed = permissions.allowed_statuses(user, incident)

    # then
    assert permissions.can_respond(user, incident) is respond
    assert permissions.can_edit(user, incident) is edit
    assert permissions.can_change_severity(user, incident) is severity
    assert sorted(allowed) == sorted(moves)
    assert all(permissions.can_change_status(user, incident, s) == (s in moves) for s in Status.values)


# Per (role, visibility) of alice's incident of team A, assigned to `assignee` (who has left
# team A since), per status: (can_respond, can_edit, can_change_severity, can_assign,
# can_change_team, allowed_statuses).
NOTHING_TO_WORK = (False, False, False, False, False, set())
RESPOND_ONLY = (True, False, False, False, False, set())
WORKS_IT = {
    REPORTED: (True, False, True, True, True, {ACKNOWLEDGED, RESOLVED}),
    ACKNOWLEDGED: (True, False, True, True, True, {IN_PROGRESS, RESOLVED}),
    IN_PROGRESS: (True, False, True, True, True, {RESOLVED}),
    RESOLVED: (True, False, True, True, True, {IN_PROGRESS, CLOSED}),
    CLOSED: NOTHING_TO_WORK,
}
SEES_IT = dict.fromkeys((REPORTED, ACKNOWLEDGED, IN_PROGRESS, RESOLVED), RESPOND_ONLY) | {CLOSED: NOTHING_TO_WORK}
TEAM_ACTIONS = {
    ("team_a_member", PUBLIC): WORKS_IT,
    ("team_a_member", PRIVATE): WORKS_IT,
    ("responder", PRIVATE): WORKS_IT,  # a sees_all team's member
    ("team_b_member", PUBLIC): SEES_IT,
    ("team_b_member", PRIVATE): dict.fromkeys(Status.values, NOTHING_TO_WORK),
    ("assignee", PUBLIC): SEES_IT,
    ("assignee", PRIVATE): SEES_IT,
}

TEAM_ACTION_CASES = [
    pytest.param(role, visibility, status, *expected, id=f"{role}-{visibility}-{status}")
    for (role, visibility), rows in TEAM_ACTIONS.items()
    for status, expected in rows.items()
]


@pytest.mark.parametrize(
    ("role", "visibility", "status", "respond", "edit", "severity", "assign", "team", "moves"),
    TEAM_ACTION_CASES,
)
def test_what_each_team_role_may_do(
    request,
    reporter,
    staff,
    team_a,
    team_b_member,
    assignee,
    role,
    visibility,
    status,
    respond,
    edit,
    severity,
    assign,
    team,
    moves,
):
    # given: alice's incident of team A, owned by a former member, brought to `status` by staff
    incident = make_incident(reporter, category=category_of(team_a), visibility=visibility)
    incident = advance_to(assign_then_leave_team(incident, assignee, by=staff), status, by=staff)
    user = request.getfixturevalue(role)

    # when
    allowed = permissions.allowed_statuses(user, incident)

    # then
    assert permissions.can_respond(user, incident) is respond
    assert permissions.can_edit(user, incident) is edit
    assert permissions.can_change_severity(user, incident) is severity
    assert permissions.can_assign(user, incident) is assign
    assert permissions.can_change_team(user, incident) is team
    assert sorted(allowed) == sorted(moves)
    assert all(permissions.can_change_status(user, incident, s) == (s in moves) for s in Status.values)


@pytest.mark.parametrize(
    ("status", "moves"),
    [
        (REPORTED, {ACKNOWLEDGED, RESOLVED, CLOSED}),
        (ACKNOWLEDGED, {IN_PROGRESS, RESOLVED, CLOSED}),
        (IN_PROGRESS, {RESOLVED, CLOSED}),
        (RESOLVED, {IN_PROGRESS, CLOSED}),
        (CLOSED, set()),
    ],
)
def test_a_responder_may_also_close_an_incident_it_reported_itself(responder, staff, status, moves):
    # given: the responder reported it, so the reporter's right to close applies too
    incident = advance_to(make_incident(responder), status, by=staff)

    # when
    allowed = permissions.allowed_statuses(responder, incident)

    # then
    assert sorted(allowed) == sorted(moves)


@pytest.mark.parametrize("status", list(Status))
def test_the_reporter_of_a_deleted_account_leaves_no_owner_behind(reporter, other, staff, status):
    # given: alice's incident, her account gone; bob must not inherit her rights
    incident = advance_to(make_incident(reporter), status, by=staff)
    reporter.delete()
    incident.refresh_from_db()

    # when / then
    assert incident.reporter_id is None
    assert not permissions.is_reporter(other, incident)
    assert not permissions.can_edit(other, incident)
    assert permissions.allowed_statuses(other, incident) == []
