"""The incident web pages, through the test client: the forms, what the pages show (and
never show), the lists, and how many queries each page costs. Who may see and do what on
each page: the authorization matrix, irms_site/tests/test_authorization_matrix.py."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import services
from incidents.models import (
    EventKind,
    Incident,
    IncidentEvent,
    Response,
    Severity,
    Status,
    Visibility,
)
from notifications.models import OutgoingEmail

from .factories import advance_to, make_incident

XSS_TITLE = "<script>alert(1)</script>"
XSS_TITLE_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
XSS_RESPONSE = "<img src=x onerror=alert(1)>"
XSS_RESPONSE_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def page(response) -> str:
    return response.content.decode()


def listed(response) -> list[str]:
    """The titles a list page shows, in order."""
    return [incident.title for incident in response.context["page_obj"].object_list]


def stored(incident) -> dict:
    """The incident's row as stored, and the number of timeline events, responses and
    queued e-mails (a refused request must leave all of them as they were)."""
    return {
        "row": Incident.objects.filter(pk=incident.pk).values().get(),
        "events": IncidentEvent.objects.count(),
        "responses": Response.objects.count(),
        "emails": OutgoingEmail.objects.count(),
    }


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# For searches on MariaDB: InnoDB's FULLTEXT index takes in a row when its transaction commits.
COMMITTED = pytest.mark.django_db(transaction=True)


def signed_in(client, user):
    if user is not None:
        client.force_login(user)
    return client


def dated(incident, when):
    """Back-date an incident (services stamp 'now'), for tests about order."""
    Incident.objects.filter(pk=incident.pk).update(created_at=when)
    return incident


# --- Reporting ------------------------------------------------------------------------------


def report_form(**overrides):
    data = {"title": "Gas smell in the kitchen", "description": "Near the coffee machine.", "severity": "High"}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_report_creates_incident_and_shows_it_with_a_message(client, reporter):
    # given
    signed_in(client, reporter)

    # when
    response = client.post("/incidents/new/", report_form(title="  Gas smell in the kitchen  "))

    # then
    incident = Incident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == incident.get_absolute_url()
    assert incident.title == "Gas smell in the kitchen"
    assert incident.description == "Near the coffee machine."
    assert incident.severity == Severity.HIGH
    assert incident.visibility == Visibility.PUBLIC
    assert incident.status == Status.REPORTED
    assert incident.reporter == reporter
    assert IncidentEvent.objects.filter(incident=incident, kind=EventKind.REPORTED, actor=reporter).exists()
    shown = client.get(response["Location"])
    assert shown_messages(shown) == ["Incident reported. The response team has been told."]


def test_report_private_checkbox_makes_it_private(client, reporter):
    # given
    signed_in(client, reporter)

    # when
    response = client.post("/incidents/new/", report_form(private="on"))

    # then
    assert response.status_code == 302
    assert Incident.objects.get().visibility == Visibility.PRIVATE


def test_report_form_page_loads(client, reporter):
    # given
    signed_in(client, reporter)

    # when
    response = client.get("/incidents/new/")

    # then
    assert response.status_code == 200
    assert 'name="private"' in page(response)


@pytest.mark.parametrize(
    ("overrides", "field", "kept"),
    [
        pytest.param({"title": "   "}, "title", "Near the coffee machine.", id="blank-title"),
        pytest.param({"description": None}, "description", "Gas smell in the kitchen", id="missing-description"),
        pytest.param({"severity": "Apocalyptic"}, "severity", "Near the coffee machine.", id="bad-severity"),
    ],
)
def test_report_refuses_invalid_input_and_keeps_what_was_typed(client, reporter, overrides, field, kept):
    # given
    signed_in(client, reporter)

    # when
    response = client.post("/incidents/new/", report_form(**overrides))

    # then
    assert response.status_code == 400
    assert list(response.context["form"].errors) == [field]
    assert not Incident.objects.exists()
    assert not IncidentEvent.objects.exists()
    assert kept in page(response)


# --- Responding -----------------------------------------------------------------------------


def test_empty_response_is_refused(client, reporter, public_incident):
    # given
    signed_in(client, reporter)
    before = stored(public_incident)

    # when
    response = client.post(f"{public_incident.get_absolute_url()}respond/", {"description": ""})

    # then
    assert response.status_code == 400
    assert "description" in response.context["response_form"].errors
    assert stored(public_incident) == before


def test_too_long_response_is_refused_and_the_text_kept(client, reporter, public_incident):
    # given
    signed_in(client, reporter)
    text = "x" * 20_001
    before = stored(public_incident)

    # when
    response = client.post(f"{public_incident.get_absolute_url()}respond/", {"description": text})

    # then
    assert response.status_code == 400
    assert "description" in response.context["response_form"].errors
    assert f">\n{text}</textarea>" in page(response)
    assert stored(public_incident) == before


def test_response_of_the_maximum_length_is_accepted(client, reporter, public_incident):
    # given
    signed_in(client, reporter)

    # when
    response = client.post(f"{public_incident.get_absolute_url()}respond/", {"description": "x" * 20_000})

    # then
    assert response.status_code == 302
    assert len(Response.objects.get(incident=public_incident).description) == 20_000


def test_response_to_a_closed_incident_is_refused(client, reporter, staff, public_incident):
    # given
    advance_to(public_incident, Status.CLOSED, by=staff)
    signed_in(client, reporter)
    before = stored(public_incident)

    # when
    response = client.post(f"{public_incident.get_absolute_url()}respond/", {"description": "Still broken."})

    # then
    assert response.status_code == 400
    assert "description" in response.context["response_form"].errors
    assert stored(public_incident) == before


# --- Editing, status and severity with bad input ---------------------------------------------


def test_edit_with_a_blank_title_is_refused_and_keeps_the_text(client, reporter, public_incident):
    # given
    signed_in(client, reporter)
    before = stored(public_incident)

    # when
    response = client.post(
        f"{public_incident.get_absolute_url()}edit/", {"title": "  ", "description": "A better description."}
    )

    # then
    assert response.status_code == 400
    assert "title" in response.context["form"].errors
    assert "A better description." in page(response)
    assert stored(public_incident) == before


@pytest.mark.parametrize(
    ("action", "data"),
    [
        pytest.param("status", {"status": "Exploded"}, id="unknown-status"),
        pytest.param("status", {"status": Status.IN_PROGRESS}, id="move-the-workflow-forbids"),
        pytest.param("status", {"status": Status.REPORTED}, id="same-status"),
        pytest.param("severity", {"severity": "Apocalyptic"}, id="unknown-severity"),
        pytest.param("severity", {}, id="missing-severity"),
    ],
)
def test_bad_status_or_severity_is_refused_with_a_message(client, staff, public_incident, action, data):
    # given
    signed_in(client, staff)
    before = stored(public_incident)

    # when
    response = client.post(f"{public_incident.get_absolute_url()}{action}/", data)

    # then
    assert response.status_code == 400
    assert len(shown_messages(response)) == 1
    assert stored(public_incident) == before


# --- Controls on the detail page ------------------------------------------------------------


def edit_link(incident):
    return f'href="{incident.get_absolute_url()}edit/"'


def test_reporter_sees_close_and_edit_but_no_triage_controls(client, reporter, public_incident):
    # given
    signed_in(client, reporter)

    # when
    html = page(client.get(public_incident.get_absolute_url()))

    # then
    assert 'name="status" value="Closed"' in html
    assert ">Close</button>" in html
    assert 'value="Acknowledged"' not in html
    assert ">Acknowledge</button>" not in html
    assert 'name="severity"' not in html
    assert edit_link(public_incident) in html


def test_responder_sees_acknowledge_and_severity_but_no_close_or_edit(client, responder, public_incident):
    # given
    signed_in(client, responder)

    # when
    html = page(client.get(public_incident.get_absolute_url()))

    # then
    assert 'name="status" value="Acknowledged"' in html
    assert ">Acknowledge</button>" in html
    assert '<select name="severity"' in html
    assert 'value="Closed"' not in html
    assert edit_link(public_incident) not in html


def test_reporter_loses_the_edit_link_once_the_team_picks_it_up(client, reporter, responder, public_incident):
    # given
    advance_to(public_incident, Status.ACKNOWLEDGED, by=responder)
    signed_in(client, reporter)

    # when
    html = page(client.get(public_incident.get_absolute_url()))

    # then
    assert edit_link(public_incident) not in html
    assert ">Close</button>" in html


def test_other_user_sees_no_controls_but_may_respond(client, other, public_incident):
    # given
    signed_in(client, other)

    # when
    html = page(client.get(public_incident.get_absolute_url()))

    # then
    assert 'name="status"' not in html
    assert 'name="severity"' not in html
    assert edit_link(public_incident) not in html
    assert f'action="{public_incident.get_absolute_url()}respond/"' in html


def test_closed_incident_takes_no_responses(client, reporter, staff, public_incident):
    # given
    advance_to(public_incident, Status.CLOSED, by=staff)
    signed_in(client, reporter)

    # when
    html = page(client.get(public_incident.get_absolute_url()))

    # then
    assert "This incident is closed." in html
    assert "respond/" not in html
    assert 'name="status"' not in html


# --- What pages show ------------------------------------------------------------------------


@pytest.fixture
def hostile_incident(reporter, responder):
    incident = make_incident(reporter, title=XSS_TITLE)
    services.add_response(incident=incident, author=responder, description=XSS_RESPONSE)
    return incident


@pytest.mark.parametrize(
    ("who", "url"),
    [
        pytest.param("responder", "detail", id="detail"),
        pytest.param("responder", "/incidents/", id="queue"),
        pytest.param("reporter", "/incidents/mine/", id="mine"),
        pytest.param("other", "/incidents/public/", id="public"),
        pytest.param("reporter", "/dashboard/", id="dashboard-own"),
        pytest.param("other", "/dashboard/", id="dashboard-others"),
    ],
)
def test_user_text_is_escaped(client, request, hostile_incident, who, url):
    # given
    signed_in(client, request.getfixturevalue(who))
    url = hostile_incident.get_absolute_url() if url == "detail" else url

    # when
    response = client.get(url)

    # then
    html = page(response)
    assert response.status_code == 200
    assert XSS_TITLE not in html
    assert XSS_TITLE_ESCAPED in html
    assert XSS_RESPONSE not in html
    if url == hostile_incident.get_absolute_url():
        assert XSS_RESPONSE_ESCAPED in html


@pytest.mark.parametrize("who", ["other", "responder"])
def test_pages_never_show_the_reporters_email(client, request, reporter, public_incident, who):
    # given
    services.add_response(incident=public_incident, author=reporter, description="More detail.")
    signed_in(client, request.getfixturevalue(who))

    # when
    pages = [client.get(url) for url in (public_incident.get_absolute_url(), "/incidents/", "/incidents/public/")]

    # then
    for response in pages:
        assert response.status_code == 200
        assert reporter.username in page(response)
        assert reporter.email not in page(response)


def test_timeline_shows_responses_and_status_changes_in_time_order(client, reporter, responder, public_incident):
    # given: written in one order, then dated in another (as an import or a clock skew could)
    services.add_response(incident=public_incident, author=reporter, description="Written first, dated third.")
    advance_to(public_incident, Status.ACKNOWLEDGED, by=responder)
    services.add_response(incident=public_incident, author=responder, description="Written third, dated second.")
    services.change_status(incident=public_incident, actor=responder, status=Status.IN_PROGRESS)
    reported, first, acknowledged, second, in_progress = IncidentEvent.objects.filter(
        incident=public_incident
    ).order_by("id")
    start = timezone.now() - timedelta(hours=1)
    for minutes, event in enumerate([reported, acknowledged, second, first, in_progress]):
        IncidentEvent.objects.filter(pk=event.pk).update(created_at=start + timedelta(minutes=minutes))
    signed_in(client, reporter)

    # when
    html = page(client.get(public_incident.get_absolute_url()))

    # then
    markers = [
        "reported this incident",
        "from Reported to <strong>Acknowledged</strong>",
        "Written third, dated second.",
        "Written first, dated third.",
        "from Acknowledged to <strong>In Progress</strong>",
    ]
    positions = [html.index(marker) for marker in markers]
    assert positions == sorted(positions)


# --- Lists ----------------------------------------------------------------------------------


@pytest.fixture
def four_incidents(reporter, other):
    """Public and private incidents by `reporter` and by `other`."""
    now = timezone.now()
    return {
        "mine-public": dated(make_incident(reporter, title="mine-public"), now - timedelta(minutes=4)),
        "mine-private": dated(
            make_incident(reporter, title="mine-private", visibility=Visibility.PRIVATE), now - timedelta(minutes=3)
        ),
        "theirs-public": dated(make_incident(other, title="theirs-public"), now - timedelta(minutes=2)),
        "theirs-private": dated(
            make_incident(other, title="theirs-private", visibility=Visibility.PRIVATE), now - timedelta(minutes=1)
        ),
    }


@pytest.mark.parametrize(
    ("who", "url", "expected"),
    [
        pytest.param("reporter", "/incidents/mine/", ["mine-private", "mine-public"], id="mine"),
        pytest.param("reporter", "/incidents/public/", ["theirs-public"], id="public-for-reporter"),
        pytest.param(
            "responder",
            "/incidents/public/",
            ["theirs-private", "theirs-public", "mine-private", "mine-public"],
            id="public-for-responder",
        ),
        pytest.param(
            "responder",
            "/incidents/",
            ["theirs-private", "theirs-public", "mine-private", "mine-public"],
            id="queue-for-responder",
        ),
        pytest.param(
            "staff",
            "/incidents/",
            ["theirs-private", "theirs-public", "mine-private", "mine-public"],
            id="queue-for-staff",
        ),
        pytest.param(
            "reporter", "/incidents/", ["theirs-public", "mine-private", "mine-public"], id="queue-for-reporter"
        ),
        pytest.param("other", "/incidents/mine/", ["theirs-private", "theirs-public"], id="mine-for-other"),
        pytest.param("other", "/incidents/public/", ["mine-public"], id="public-for-other"),
    ],
)
def test_lists_show_the_right_incidents_newest_first(client, request, four_incidents, who, url, expected):
    # given
    signed_in(client, request.getfixturevalue(who))

    # when (a team member's queue is most urgent first by default)
    response = client.get(url, {"sort": "newest"})

    # then
    assert response.status_code == 200
    assert listed(response) == expected
    for title in expected:
        assert title in page(response)


def test_public_list_excludes_own_incidents_for_a_responder_too(client, responder, four_incidents):
    # given
    own = make_incident(responder, title="responder-own")
    signed_in(client, responder)

    # when
    response = client.get("/incidents/public/")

    # then
    assert own.title not in listed(response)
    assert len(listed(response)) == 4


def test_lists_paginate_25_per_page(client, responder, reporter):
    # given
    now = timezone.now()
    for n in range(30):
        dated(make_incident(reporter, title=f"Incident {n:02d}"), now - timedelta(minutes=30 - n))
    signed_in(client, responder)

    # when
    first = client.get("/incidents/", {"sort": "newest"})
    second = client.get("/incidents/", {"sort": "newest", "page": 2})

    # then
    assert first.status_code == second.status_code == 200
    assert listed(first) == [f"Incident {n:02d}" for n in range(29, 4, -1)]
    assert listed(second) == [f"Incident {n:02d}" for n in range(4, -1, -1)]
    assert "30 incidents" in page(first)
    assert 'href="?sort=newest&amp;page=2"' in page(first)


def test_pagination_keeps_the_filters(client, responder, reporter):
    # given
    for n in range(26):
        make_incident(reporter, title=f"Incident {n:02d}", severity=Severity.HIGH)
    make_incident(reporter, title="Low one", severity=Severity.LOW)
    signed_in(client, responder)

    # when
    first = client.get("/incidents/", {"severity": "High"})
    second = client.get("/incidents/", {"severity": "High", "page": 2})

    # then
    assert 'href="?severity=High&amp;page=2"' in page(first)
    assert len(listed(first)) + len(listed(second)) == 26
    assert "Low one" not in listed(first) + listed(second)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({"status": "Acknowledged"}, ["acked-high"], id="status"),
        pytest.param({"severity": "High"}, ["acked-high"], id="severity"),
        pytest.param({"severity": "Low"}, ["reported-low"], id="severity-low"),
        pytest.param({"status": "Reported", "severity": "High"}, [], id="status-and-severity"),
        pytest.param({"search": "BOILER"}, ["reported-low"], id="search-title-any-case", marks=COMMITTED),
        pytest.param({"search": "basement stairs"}, ["acked-high"], id="search-description", marks=COMMITTED),
        pytest.param({"search": "  "}, ["acked-high", "reported-low"], id="search-blank"),
    ],
)
def test_lists_filter_and_search(client, reporter, responder, query, expected):
    # given
    now = timezone.now()
    dated(
        make_incident(reporter, title="reported-low", description="The boiler hums.", severity=Severity.LOW),
        now - timedelta(minutes=2),
    )
    acked = dated(
        make_incident(reporter, title="acked-high", description="Water on the basement stairs.", severity="High"),
        now - timedelta(minutes=1),
    )
    advance_to(acked, Status.ACKNOWLEDGED, by=responder)
    signed_in(client, responder)

    # when
    response = client.get("/incidents/", {"sort": "newest", **query})

    # then
    assert response.status_code == 200
    assert listed(response) == expected


@pytest.mark.parametrize("url", ["/incidents/", "/incidents/mine/", "/incidents/public/"])
@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"status": "Exploded"}, id="status"),
        pytest.param({"severity": "Extreme"}, id="severity"),
        pytest.param({"created_after": "yesterday"}, id="date"),
        pytest.param({"search": "x" * 101}, id="search-too-long"),
    ],
)
def test_invalid_filter_shows_the_error_not_a_500(client, reporter, public_incident, url, query):
    # given
    signed_in(client, reporter)

    # when
    response = client.get(url, query)

    # then
    assert response.status_code == 200
    field = next(iter(query))
    assert field in response.context["filter"].form.errors
    assert 'class="alert alert-warning' in page(response)
    assert listed(response) == []


# --- Query budgets --------------------------------------------------------------------------
#
# Measured: session, user, (team membership), the page's own queries; for those who work
# incidents, the team and category choices of the filters, the dashboard's team counts and
# assigned list, the incident page's team members and teams. The budget is the same for 5
# and for 60 incidents, so no page makes a query per row.


@pytest.fixture
def populated(reporter, other, responder):
    """`size` incidents by `reporter` and `other` (some private, some moved along), each
    with a response; and `size` responses and status changes on `public_incident`."""

    def make(size, incident):
        for n in range(size):
            by = reporter if n % 2 else other
            created = make_incident(by, title=f"Incident {n}", visibility="private" if n % 3 == 0 else "public")
            services.add_response(incident=created, author=responder, description=f"Response {n}")
            if n % 4 == 0:
                advance_to(created, Status.ACKNOWLEDGED, by=responder)
        for n in range(size):
            services.add_response(incident=incident, author=(reporter, other, responder)[n % 3], description=f"{n}")
        advance_to(incident, Status.IN_PROGRESS, by=responder)

    return make


@pytest.mark.parametrize("size", [5, 60])
@pytest.mark.parametrize(
    ("who", "url", "budget"),
    [
        pytest.param("responder", "/incidents/", 7, id="queue"),
        pytest.param("reporter", "/incidents/mine/", 5, id="mine"),
        pytest.param("reporter", "/incidents/public/", 5, id="public"),
        pytest.param("responder", "/incidents/public/", 7, id="public-responder"),
        pytest.param("reporter", "/dashboard/", 6, id="dashboard"),
        pytest.param("responder", "/dashboard/", 9, id="dashboard-responder"),
        pytest.param("reporter", "detail", 5, id="detail"),
        pytest.param("responder", "detail", 7, id="detail-responder"),
        pytest.param("staff", "detail", 6, id="detail-staff"),
    ],
)
def test_query_budget_does_not_grow_with_the_data(
    client, request, django_assert_max_num_queries, populated, public_incident, size, who, url, budget
):
    # given
    populated(size, public_incident)
    signed_in(client, request.getfixturevalue(who))
    url = public_incident.get_absolute_url() if url == "detail" else url

    # when
    with django_assert_max_num_queries(budget):
        response = client.get(url)

    # then
    assert response.status_code == 200


# --- The original app's URLs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/incident-report", "/incidents/new/"),
        ("/public_incidents", "/incidents/public/"),
        ("/response", "/incidents/mine/"),
        ("/public_incidents?status=Reported", "/incidents/public/?status=Reported"),
    ],
)
def test_original_urls_redirect_permanently(client, reporter, old, new):
    # given
    signed_in(client, reporter)

    # when
    response = client.get(old)

    # then
    assert response.status_code == 301
    assert response["Location"] == new
