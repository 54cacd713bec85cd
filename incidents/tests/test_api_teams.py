"""Teams, categories and ownership in the API: the incident's `category`, `team` and
`assignee_username`; reporting under a category; PATCHing `assignee`, `team` and
`category` (and who may); /api/categories and /api/teams; the list filters; and the
OpenAPI schema that describes them.

The cast: fay leads and fred belongs to Facilities; ian belongs to Helpdesk; alice
(`reporter`) and bob (`other`) belong to no team; sam (`staff`) is staff and in no team.
"""

import json

import pytest
from django_tasks_db.models import DBTaskResult

from incidents import services
from incidents.models import Category, EventKind, Incident, IncidentEvent, Response, Severity, Status, Team, Visibility
from notifications.models import OutgoingEmail

from .factories import api_client, category_of, delivered, make_incident, response_team, settle

PRIVATE = Visibility.PRIVATE


# --- The cast -------------------------------------------------------------------------------


@pytest.fixture
def badge(reporter, facilities, helpdesk):
    """A private incident of Facilities."""
    return make_incident(reporter, title="Badge stolen", category=category_of(facilities), visibility=PRIVATE)


# --- Helpers --------------------------------------------------------------------------------


def snapshot(incident) -> dict:
    """The incident's row, the timeline, responses and everything queued to be sent."""
    return {
        "row": Incident.objects.filter(pk=incident.pk).values().get(),
        "events": IncidentEvent.objects.count(),
        "responses": Response.objects.count(),
        "emails": OutgoingEmail.objects.count(),
        "tasks": DBTaskResult.objects.count(),
    }


def patch(user, incident, body):
    return api_client(user).patch(f"/api/incidents/{incident.incident_id}", body, format="json")


def titles(response) -> list[str]:
    return [incident["title"] for incident in response.json()]


def ownership(body: dict) -> tuple:
    return body["category"], body["team"], body["assignee_username"]


# --- The representation ------------------------------------------------------------------------


def test_an_incident_carries_its_category_team_and_assignee(lift, reporter, fay, fred):
    # given
    unassigned = api_client(reporter).get(f"/api/incidents/{lift.incident_id}").json()
    services.assign(incident=lift, actor=fay, assignee=fred)

    # when
    assigned = api_client(reporter).get(f"/api/incidents/{lift.incident_id}").json()
    listed = api_client(reporter).get("/api/incidents").json()

    # then
    assert ownership(unassigned) == ("facilities-issues", "facilities", None)
    assert ownership(assigned) == ("facilities-issues", "facilities", "fred")
    assert [ownership(body) for body in listed] == [("facilities-issues", "facilities", "fred")]


def test_an_incident_from_before_categories_has_a_null_category(lift, reporter):
    # given
    Incident.objects.filter(pk=lift.pk).update(category=None)

    # when
    body = api_client(reporter).get(f"/api/incidents/{lift.incident_id}").json()

    # then
    assert ownership(body) == (None, "facilities", None)


# --- Reporting under a category --------------------------------------------------------------


def test_a_report_with_a_category_goes_to_its_team(reporter, facilities, helpdesk, run_tasks, mailoutbox):
    # when
    response = api_client(reporter).post(
        "/api/incidents",
        {"title": "Laptop dead", "description": "No power.", "category": "helpdesk-issues"},
        format="json",
    )

    # then
    assert response.status_code == 201
    assert ownership(response.json()) == ("helpdesk-issues", "helpdesk", None)
    incident = Incident.objects.get()
    assert (incident.team, incident.category) == (helpdesk, category_of(helpdesk))
    assert delivered(run_tasks, mailoutbox) == {
        "alice": ["Incident reported: Laptop dead"],
        "ian": ["New incident: Laptop dead"],
    }


def test_a_report_without_a_category_goes_to_the_general_one(reporter, facilities):
    # given
    response_team()

    # when
    response = api_client(reporter).post("/api/incidents", {"title": "Odd smell", "description": "Hm."}, format="json")

    # then
    assert response.status_code == 201
    assert ownership(response.json()) == ("general", "response", None)


@pytest.mark.parametrize(
    "category",
    [
        pytest.param("no-such-kind", id="unknown"),
        pytest.param("retired", id="inactive"),
        pytest.param(None, id="null"),
        pytest.param(42, id="not-a-slug"),
        pytest.param("", id="empty"),
    ],
)
def test_a_report_in_an_unknown_or_inactive_category_is_refused(reporter, facilities, category):
    # given
    Category.objects.create(slug="retired", name="Retired", team=facilities, active=False)
    before = (Incident.objects.count(), OutgoingEmail.objects.count(), DBTaskResult.objects.count())

    # when
    response = api_client(reporter).post(
        "/api/incidents", {"title": "Lift stuck", "description": "Floor 2.", "category": category}, format="json"
    )

    # then
    assert response.status_code == 400
    body = response.json()
    assert "category" in body and body["error"].startswith("Invalid input")
    assert (Incident.objects.count(), OutgoingEmail.objects.count(), DBTaskResult.objects.count()) == before


# --- Changing the owner, the team and the category ---------------------------------------------


def test_a_team_member_assigns_by_username(lift, fay, fred, run_tasks, mailoutbox):
    # given
    settle(run_tasks, mailoutbox)

    # when
    response = patch(fay, lift, {"assignee": "fred"})

    # then
    assert response.status_code == 200
    assert response.json()["assignee_username"] == "fred"
    assert Incident.objects.get(pk=lift.pk).assignee == fred
    event = IncidentEvent.objects.filter(incident=lift).latest("id")
    assert (event.kind, event.actor, event.new_value) == (EventKind.ASSIGNED, fay, "fred")
    assert delivered(run_tasks, mailoutbox) == {"fred": ["Assigned to you: Lift stuck"]}


def test_a_team_member_takes_the_incident_without_a_mail(lift, fred, run_tasks, mailoutbox):
    # given
    settle(run_tasks, mailoutbox)

    # when
    response = patch(fred, lift, {"assignee": "fred"})

    # then
    assert response.status_code == 200
    assert response.json()["assignee_username"] == "fred"
    assert delivered(run_tasks, mailoutbox) == {}


def test_null_unassigns(lift, fay, fred):
    # given
    services.assign(incident=lift, actor=fay, assignee=fred)

    # when
    response = patch(fay, lift, {"assignee": None})

    # then
    assert response.status_code == 200
    assert response.json()["assignee_username"] is None
    assert Incident.objects.get(pk=lift.pk).assignee is None
    assert IncidentEvent.objects.filter(incident=lift).latest("id").kind == EventKind.UNASSIGNED


@pytest.mark.parametrize(
    ("assignee", "message"),
    [
        pytest.param("ian", "ian is not a member of Facilities: assign a team member.", id="another-team"),
        pytest.param("bob", "bob is not a member of Facilities: assign a team member.", id="no-team"),
        pytest.param("ghost", "No active user is called “ghost”.", id="unknown"),
        pytest.param("ina", "No active user is called “ina”.", id="deactivated-member"),
        pytest.param(7, None, id="not-a-username"),
    ],
)
def test_assigning_someone_who_may_not_own_it_is_refused_with_a_clear_message(
    make_user, lift, facilities, fay, other, assignee, message
):
    # given
    facilities.members.add(make_user("ina", is_active=False))
    before = snapshot(lift)

    # when
    response = patch(fay, lift, {"assignee": assignee})

    # then
    assert response.status_code == 400
    body = response.json()
    assert "assignee" in body
    if message is not None:
        assert body["assignee"] == [message]
    assert snapshot(lift) == before


def test_a_team_member_moves_the_incident_and_an_assignee_not_in_the_new_team_is_cleared(
    lift, helpdesk, fay, fred, run_tasks, mailoutbox
):
    # given
    services.assign(incident=lift, actor=fay, assignee=fred)
    settle(run_tasks, mailoutbox)

    # when
    response = patch(fred, lift, {"team": "helpdesk"})

    # then
    assert response.status_code == 200
    assert ownership(response.json()) == ("facilities-issues", "helpdesk", None)
    kinds = list(IncidentEvent.objects.filter(incident=lift).order_by("id").values_list("kind", flat=True))
    assert kinds[-2:] == [EventKind.TEAM_CHANGED, EventKind.UNASSIGNED]
    assert delivered(run_tasks, mailoutbox) == {"ian": ["Moved to Helpdesk: Lift stuck"]}


def test_moving_keeps_an_assignee_who_is_a_member_of_the_new_team(lift, helpdesk, fay, fred):
    # given
    helpdesk.members.add(fred)
    services.assign(incident=lift, actor=fay, assignee=fred)

    # when
    response = patch(fay, lift, {"team": "helpdesk"})

    # then
    assert response.status_code == 200
    assert ownership(response.json()) == ("facilities-issues", "helpdesk", "fred")


def test_moving_and_assigning_together_checks_the_assignee_against_the_new_team(lift, helpdesk, staff, fred):
    # given
    before = snapshot(lift)

    # when: fred is in Facilities, not in Helpdesk
    refused = patch(staff, lift, {"team": "helpdesk", "assignee": "fred"})
    accepted = patch(staff, lift, {"team": "helpdesk", "assignee": "ian"})

    # then
    assert refused.status_code == 400
    assert refused.json()["assignee"] == ["fred is not a member of Helpdesk: assign a team member."]
    assert accepted.status_code == 200
    assert ownership(accepted.json()) == ("facilities-issues", "helpdesk", "ian")
    assert before["row"]["team_id"] != Incident.objects.get(pk=lift.pk).team_id


def test_a_team_member_changes_severity_while_moving_the_incident_away(lift, helpdesk, fred):
    # when: fred works the incident when he asks for both changes
    response = patch(fred, lift, {"team": "helpdesk", "severity": Severity.HIGH})

    # then
    assert response.status_code == 200
    assert (response.json()["team"], response.json()["severity"]) == ("helpdesk", Severity.HIGH)


def test_a_team_member_changes_the_category(lift, helpdesk, fred):
    # when
    response = patch(fred, lift, {"category": "helpdesk-issues"})

    # then
    assert response.status_code == 200
    assert response.json()["category"] == "helpdesk-issues"
    event = IncidentEvent.objects.filter(incident=lift).latest("id")
    assert (event.kind, event.old_value, event.new_value) == (
        EventKind.CATEGORY_CHANGED,
        "Facilities issues",
        "Helpdesk issues",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"team": "no-such-team"}, "team", id="unknown-team"),
        pytest.param({"team": None}, "team", id="null-team"),
        pytest.param({"category": "no-such-kind"}, "category", id="unknown-category"),
        pytest.param({"category": "retired"}, "category", id="inactive-category"),
        pytest.param({"team": "helpdesk", "assignee": "ghost"}, "assignee", id="all-or-nothing"),
    ],
)
def test_an_unknown_team_or_category_is_refused(lift, facilities, fred, body, field):
    # given
    Category.objects.create(slug="retired", name="Retired", team=facilities, active=False)
    before = snapshot(lift)

    # when
    response = patch(fred, lift, body)

    # then
    assert response.status_code == 400
    assert field in response.json()
    assert snapshot(lift) == before


@pytest.mark.parametrize("name", ["ian", "reporter", "other"])
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"assignee": "fred"}, id="assignee"),
        pytest.param({"assignee": None}, id="unassign"),
        pytest.param({"team": "helpdesk"}, id="team"),
        pytest.param({"category": "helpdesk-issues"}, id="category"),
        pytest.param({"severity": Severity.HIGH}, id="severity"),
        pytest.param({"status": Status.ACKNOWLEDGED}, id="status"),
    ],
)
def test_those_who_do_not_work_a_public_incident_may_not_change_its_ownership(request, lift, fay, fred, name, body):
    # given: fred owns it (so "unassign" would change something)
    services.assign(incident=lift, actor=fay, assignee=fred)
    before = snapshot(lift)

    # when
    response = patch(request.getfixturevalue(name), lift, body)

    # then
    assert response.status_code == 403
    assert response.json()["error"]
    assert snapshot(lift) == before


def test_a_member_of_another_team_may_respond_to_a_public_incident(lift, ian):
    # when
    response = api_client(ian).post(
        f"/api/responses/{lift.incident_id}", {"description": "Seen it too."}, format="json"
    )

    # then
    assert response.status_code == 201


@pytest.mark.parametrize("name", ["ian", "other"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/incidents/{id}", None),
        ("get", "/api/publicIncidents/{id}", None),
        ("patch", "/api/incidents/{id}", {"assignee": "fred"}),
        ("patch", "/api/incidents/{id}", {"team": "helpdesk"}),
        ("get", "/api/responses/{id}", None),
        ("post", "/api/responses/{id}", {"description": "Hello?"}),
    ],
)
def test_a_private_incident_of_another_team_is_not_found(request, badge, name, method, path, body):
    # given
    client = api_client(request.getfixturevalue(name))
    before = snapshot(badge)

    # when
    response = getattr(client, method)(path.format(id=badge.incident_id), body, format="json")

    # then
    assert response.status_code == 404
    assert "Badge" not in response.content.decode()
    assert snapshot(badge) == before


def test_the_team_sees_and_works_its_private_incident(badge, fred):
    # when
    seen = api_client(fred).get(f"/api/publicIncidents/{badge.incident_id}")
    taken = patch(fred, badge, {"assignee": "fred"})

    # then
    assert seen.status_code == 200
    assert taken.status_code == 200
    assert taken.json()["assignee_username"] == "fred"


# --- /api/categories and /api/teams ------------------------------------------------------------


def test_categories_are_the_active_ones_in_form_order(other, facilities, helpdesk):
    # given
    response_team()
    Category.objects.filter(slug="general").update(description="Anything else.")
    Category.objects.filter(slug="helpdesk-issues").update(position=10, description="Laptops")
    Category.objects.filter(slug="facilities-issues").update(position=20, description="Lifts")
    Category.objects.create(slug="retired", name="Retired", team=helpdesk, position=1, active=False)

    # when
    response = api_client(other).get("/api/categories")

    # then
    assert response.status_code == 200
    assert response.json() == [
        {"slug": "general", "name": "General", "description": "Anything else.", "team": "response"},
        {"slug": "helpdesk-issues", "name": "Helpdesk issues", "description": "Laptops", "team": "helpdesk"},
        {"slug": "facilities-issues", "name": "Facilities issues", "description": "Lifts", "team": "facilities"},
    ]


def test_teams_are_listed_by_name(other, facilities, helpdesk):
    # given
    Team.objects.filter(pk=response_team().pk).update(description="Sees everything.")
    helpdesk.description = "Laptops and accounts."
    helpdesk.save()

    # when
    response = api_client(other).get("/api/teams")

    # then
    assert response.status_code == 200
    assert response.json() == [
        {"slug": "facilities", "name": "Facilities", "description": ""},
        {"slug": "helpdesk", "name": "Helpdesk", "description": "Laptops and accounts."},
        {"slug": "response", "name": "Response team", "description": "Sees everything."},
    ]


@pytest.mark.parametrize("path", ["/api/categories", "/api/teams", "/api/categories/", "/api/teams/"])
def test_the_reference_lists_need_a_signed_in_user(db, facilities, path):
    # when
    response = api_client(None).get(path)

    # then
    assert response.status_code == 401
    assert response.json()["error"]


@pytest.mark.parametrize("path", ["/api/categories", "/api/teams"])
def test_the_reference_lists_are_read_only(other, facilities, path):
    # given
    before = (Category.objects.count(), Team.objects.count())

    # when
    response = api_client(other).post(path, {"slug": "x", "name": "X"}, format="json")

    # then
    assert response.status_code == 405
    assert (Category.objects.count(), Team.objects.count()) == before


# --- Filters -------------------------------------------------------------------------------------


@pytest.fixture
def owned(reporter, facilities, helpdesk, fay, fred, ian):
    """Reported by alice: Facilities mine-fred, mine-fay, nobodys; Helpdesk ians (all public),
    and Helpdesk's private help-private."""
    for title, category, owner in [
        ("ians", category_of(helpdesk), ian),
        ("nobodys", category_of(facilities), None),
        ("mine-fay", category_of(facilities), fay),
        ("mine-fred", category_of(facilities), fred),
    ]:
        incident = make_incident(reporter, title=title, category=category)
        if owner is not None:
            services.assign(incident=incident, actor=owner, assignee=owner)
    make_incident(reporter, title="help-private", category=category_of(helpdesk), visibility=PRIVATE)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("team=facilities", ["mine-fred", "mine-fay", "nobodys"], id="team"),
        pytest.param("team=helpdesk", ["ians"], id="team-hides-private"),
        pytest.param("category=helpdesk-issues", ["ians"], id="category"),
        pytest.param("assignee=me", ["mine-fred"], id="me"),
        pytest.param("assignee=none", ["nobodys"], id="none"),
        pytest.param("assignee=fay", ["mine-fay"], id="a-person"),
        pytest.param("team=facilities&assignee=none", ["nobodys"], id="combined"),
    ],
)
def test_public_incidents_filter_by_team_category_and_assignee(owned, fred, query, expected):
    # when
    response = api_client(fred).get(f"/api/publicIncidents?{query}")

    # then
    assert response.status_code == 200
    assert titles(response) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("team=helpdesk", ["help-private", "ians"], id="team"),
        pytest.param("assignee=ian", ["ians"], id="a-person"),
        pytest.param("assignee=none", ["help-private", "nobodys"], id="none"),
    ],
)
def test_own_incidents_filter_by_team_and_assignee(owned, reporter, query, expected):
    # when
    response = api_client(reporter).get(f"/api/incidents?{query}")

    # then
    assert response.status_code == 200
    assert titles(response) == expected


@pytest.mark.parametrize("path", ["/api/incidents", "/api/publicIncidents"])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("team=no-such-team", "team"),
        ("category=no-such-kind", "category"),
        ("assignee=ghost", "assignee"),
        ("team=", "team"),
        ("assignee=", "assignee"),
    ],
)
def test_an_unknown_filter_value_is_a_400(owned, fred, path, query, field):
    # when
    response = api_client(fred).get(f"{path}?{query}")

    # then
    assert response.status_code == 400
    assert field in response.json()


# --- The schema ----------------------------------------------------------------------------------


@pytest.fixture
def schema(db):
    response = api_client(None).get("/api/schema?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_schema_describes_the_incidents_ownership(schema):
    # when
    incident = schema["components"]["schemas"]["Incident"]

    # then
    for name in ("category", "team", "assignee_username"):
        assert incident["properties"][name]["type"] == "string"
        assert incident["properties"][name]["nullable"] is True
        assert name in incident["required"]


def test_the_schema_describes_reporting_under_a_category_and_changing_ownership(schema):
    # when
    schemas = schema["components"]["schemas"]
    create, update = schemas["IncidentCreateRequest"], schemas["PatchedIncidentUpdateRequest"]

    # then
    assert create["properties"]["category"]["type"] == "string"
    assert "category" not in create.get("required", [])
    assert {"team", "category", "assignee"} <= set(update["properties"])
    assert update["properties"]["assignee"]["nullable"] is True
    assert create["additionalProperties"] is False and update["additionalProperties"] is False


@pytest.mark.parametrize(
    ("path", "component", "keys"),
    [
        ("/api/categories", "Category", {"slug", "name", "description", "team"}),
        ("/api/teams", "Team", {"slug", "name", "description"}),
    ],
)
def test_the_schema_describes_the_reference_lists_as_bare_arrays(schema, path, component, keys):
    # when
    operation = schema["paths"][path]["get"]
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]

    # then
    assert body == {"type": "array", "items": {"$ref": f"#/components/schemas/{component}"}}
    assert set(schema["components"]["schemas"][component]["properties"]) == keys
    assert "401" in operation["responses"]
    assert set(schema["paths"][path]) == {"get"}


@pytest.mark.parametrize("path", ["/api/incidents", "/api/publicIncidents"])
def test_the_schema_lists_the_ownership_filters(schema, path):
    # when
    parameters = {parameter["name"]: parameter for parameter in schema["paths"][path]["get"]["parameters"]}

    # then
    for name in ("team", "category", "assignee"):
        assert parameters[name]["in"] == "query"
        assert parameters[name]["schema"]["type"] == "string"
    assert "me" in parameters["assignee"]["description"] and "none" in parameters["assignee"]["description"]


@pytest.mark.parametrize("value", ["50%", "%s", "%(x)s", "¾\x86\x01Þ%Ā"])
def test_an_unknown_assignee_with_a_percent_sign_is_a_400_not_a_500(responder, value):
    # when: the fuzzer found a 500 here (the message was %-formatted with the value in it)
    response = api_client(responder).get("/api/publicIncidents", {"assignee": value})

    # then
    assert response.status_code == 400
    assert "assignee" in response.json()
