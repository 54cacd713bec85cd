"""The incident admin, through the test client as a superuser (pytest-django's
`admin_client`): lists, searches, bulk actions and edits all go through the services."""

import csv
import io

import pytest
from django.contrib.messages import constants as message_levels

from incidents import services
from incidents.models import EventKind, Incident, IncidentEvent, Response, Severity, Status, Visibility
from incidents.text import csv_cell
from notifications.models import OutgoingEmail

from . import samples
from .factories import advance_to, make_incident

CHANGELIST = "/admin/incidents/incident/"


def change_url(incident):
    return f"{CHANGELIST}{incident.pk}/change/"


def snapshot(incident):
    """Everything the admin could change about one incident, as stored."""
    return {
        "row": Incident.objects.filter(pk=incident.pk).values().get(),
        "events": IncidentEvent.objects.filter(incident=incident).count(),
        "responses": Response.objects.filter(incident=incident).count(),
    }


def listed(response):
    return {incident.title for incident in response.context["cl"].result_list}


def run_action(client, action, incidents, follow=False):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [incident.pk for incident in incidents], "index": 0},
        follow=follow,
    )


def shown_messages(response):
    return [(message.level, str(message)) for message in response.context["messages"]]


def change_form_data(response):
    """What a browser would post back from the change form the admin rendered, unchanged:
    the incident's fields and every inline's management form and rows."""

    def values(form):
        data = {}
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value
        return data

    data = values(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(values(formset.management_form))
        for form in formset.forms:
            data.update(values(form))
    return data


@pytest.fixture
def many_incidents(reporter, other):
    """`size` incidents by two reporters, each with a response."""

    def make(size):
        for n in range(size):
            incident = make_incident(reporter if n % 2 else other, title=f"Incident {n}")
            services.add_response(incident=incident, author=reporter, description=f"Response {n}")

    return make


# --- Changelist ---------------------------------------------------------------------------


def test_changelist_lists_incidents_with_filters(admin_client, reporter, admin_user):
    # given
    make_incident(reporter, title="Open one")
    advance_to(make_incident(reporter, title="Closed one"), Status.CLOSED, by=admin_user)

    # when
    everything = admin_client.get(CHANGELIST)
    closed = admin_client.get(CHANGELIST, {"status__exact": Status.CLOSED})

    # then
    assert everything.status_code == 200
    assert listed(everything) == {"Open one", "Closed one"}
    assert closed.status_code == 200
    assert listed(closed) == {"Closed one"}
    filter_titles = {spec.title for spec in everything.context["cl"].filter_specs}
    assert {"status", "severity", "visibility", "created at"} <= filter_titles


@pytest.mark.parametrize(
    "query",
    [
        # Committed: InnoDB's FULLTEXT index takes in a row when its transaction commits.
        pytest.param(lambda incident: "needle", id="title", marks=pytest.mark.django_db(transaction=True)),
        pytest.param(
            lambda incident: '"needle in the haystack"', id="phrase", marks=pytest.mark.django_db(transaction=True)
        ),
        pytest.param(lambda incident: incident.reporter.username, id="reporter-username"),
        pytest.param(lambda incident: incident.reporter.email.upper(), id="reporter-email"),
        pytest.param(lambda incident: str(incident.incident_id), id="incident-id"),
    ],
)
def test_changelist_search(admin_client, reporter, other, query):
    # given
    wanted = make_incident(reporter, title="A needle in the haystack")
    make_incident(other, title="Something else")

    # when
    response = admin_client.get(CHANGELIST, {"q": query(wanted)})

    # then
    assert response.status_code == 200
    assert listed(response) == {wanted.title}


@pytest.mark.parametrize("size", [5, 60])
def test_changelist_query_count_does_not_grow_with_the_table(
    admin_client, many_incidents, django_assert_max_num_queries, size
):
    # given
    many_incidents(size)

    # when: session, user, count, rows, date hierarchy (2), and the team and category
    # filters' and the action bar's choices (small tables, one query each)
    with django_assert_max_num_queries(9):
        response = admin_client.get(CHANGELIST)

    # then
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == min(size, 50)


# --- Bulk actions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        pytest.param("acknowledge_selected", Status.REPORTED, Status.ACKNOWLEDGED, id="acknowledge"),
        pytest.param("resolve_selected", Status.IN_PROGRESS, Status.RESOLVED, id="resolve"),
        pytest.param("close_selected", Status.RESOLVED, Status.CLOSED, id="close"),
    ],
)
def test_bulk_status_action_goes_through_the_services(admin_client, admin_user, reporter, action, before, after):
    # given
    first = advance_to(make_incident(reporter, title="First"), before, by=admin_user)
    second = advance_to(make_incident(reporter, title="Second"), before, by=admin_user)
    untouched = make_incident(reporter, title="Not selected")
    old = first.status

    # when
    response = run_action(admin_client, action, [first, second], follow=True)

    # then
    assert response.status_code == 200
    for incident in (first, second):
        incident.refresh_from_db()
        assert incident.status == after
        assert IncidentEvent.objects.filter(
            incident=incident, kind=EventKind.STATUS_CHANGED, actor=admin_user, old_value=old, new_value=after
        ).exists()
    untouched.refresh_from_db()
    assert untouched.status == Status.REPORTED
    assert [level for level, _ in shown_messages(response)] == [message_levels.SUCCESS]


def test_bulk_action_skips_a_disallowed_move_with_a_warning(admin_client, admin_user, reporter):
    # given
    reported = make_incident(reporter, title="Reported")
    closed = advance_to(make_incident(reporter, title="Closed"), Status.CLOSED, by=admin_user)
    closed_before = snapshot(closed)

    # when
    response = run_action(admin_client, "acknowledge_selected", [reported, closed], follow=True)

    # then
    assert response.status_code == 200
    assert snapshot(closed) == closed_before
    reported.refresh_from_db()
    assert reported.status == Status.ACKNOWLEDGED
    messages = shown_messages(response)
    assert (message_levels.SUCCESS, "Acknowledged 1 incident.") in messages
    assert [text for level, text in messages if level == message_levels.WARNING] == [
        "Skipped 1 incident: the workflow does not let it become Acknowledged."
    ]


def test_export_csv_has_a_header_and_one_row_per_selected_incident(admin_client, reporter):
    # given
    plain = make_incident(reporter, title="Plain title")
    formula = make_incident(reporter, title='=HYPERLINK("http://evil")', severity=Severity.HIGH)
    services.add_response(incident=formula, author=reporter, description="More detail.")
    make_incident(reporter, title="Not selected")

    # when
    response = run_action(admin_client, "export_csv", [plain, formula])

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    body = b"".join(response.streaming_content).decode()
    header, *rows = list(csv.reader(io.StringIO(body)))
    assert header[:3] == ["incident_id", "title", "status"]
    assert len(rows) == 2
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(by_id) == {str(plain.incident_id), str(formula.incident_id)}
    assert by_id[str(plain.incident_id)]["title"] == "Plain title"
    assert by_id[str(formula.incident_id)]["title"] == '\'=HYPERLINK("http://evil")'
    assert by_id[str(formula.incident_id)]["severity"] == Severity.HIGH
    assert by_id[str(formula.incident_id)]["reporter"] == reporter.username
    assert by_id[str(formula.incident_id)]["response_count"] == "1"


# --- Change form --------------------------------------------------------------------------


def test_change_form_status_change_records_an_event(admin_client, admin_user, reporter):
    # given
    incident = make_incident(reporter)
    data = change_form_data(admin_client.get(change_url(incident)))
    data["status"] = Status.ACKNOWLEDGED

    # when
    response = admin_client.post(change_url(incident), data)

    # then
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    assert incident.acknowledged_at is not None
    assert IncidentEvent.objects.filter(
        incident=incident,
        kind=EventKind.STATUS_CHANGED,
        actor=admin_user,
        old_value=Status.REPORTED,
        new_value=Status.ACKNOWLEDGED,
    ).exists()


def test_change_form_edits_fields_through_the_services(admin_client, admin_user, reporter):
    # given
    incident = make_incident(reporter, title="Old title")
    data = change_form_data(admin_client.get(change_url(incident)))
    data.update(title="New title", severity=Severity.CRITICAL, visibility=Visibility.PRIVATE)

    # when
    response = admin_client.post(change_url(incident), data)

    # then
    assert response.status_code == 302
    incident.refresh_from_db()
    assert (incident.title, incident.severity, incident.visibility) == ("New title", "Critical", "private")
    events = IncidentEvent.objects.filter(incident=incident, actor=admin_user)
    assert set(events.values_list("kind", "field")) == {
        (EventKind.EDITED, "title"),
        (EventKind.EDITED, "visibility"),
        (EventKind.SEVERITY_CHANGED, ""),
    }


def test_change_form_refuses_a_move_the_workflow_does_not_allow(admin_client, admin_user, reporter):
    # given
    incident = advance_to(make_incident(reporter), Status.CLOSED, by=admin_user)
    before = snapshot(incident)
    emails_before = OutgoingEmail.objects.count()
    data = change_form_data(admin_client.get(change_url(incident)))
    data["status"] = Status.REPORTED

    # when
    response = admin_client.post(change_url(incident), data)

    # then
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["status"] == ["An incident cannot move from Closed to Reported."]
    assert snapshot(incident) == before
    assert OutgoingEmail.objects.count() == emails_before


def test_change_form_inline_adds_a_response_through_the_service(admin_client, admin_user, reporter):
    # given
    incident = make_incident(reporter)
    services.add_response(incident=incident, author=reporter, description="Earlier response.")
    data = change_form_data(admin_client.get(change_url(incident)))
    new = int(data["responses-TOTAL_FORMS"])
    data["responses-TOTAL_FORMS"] = new + 1
    data[f"responses-{new}-description"] = "Handled by facilities."

    # when
    response = admin_client.post(change_url(incident), data)

    # then
    assert response.status_code == 302
    added = Response.objects.get(incident=incident, description="Handled by facilities.")
    assert added.author == admin_user
    assert IncidentEvent.objects.filter(
        incident=incident, kind=EventKind.RESPONDED, actor=admin_user, response=added
    ).exists()
    assert Response.objects.filter(incident=incident).count() == 2


def test_add_form_reports_the_incident_through_the_service(admin_client, admin_user, reporter):
    # given
    data = change_form_data(admin_client.get(f"{CHANGELIST}add/"))
    data.update(title="  Reported by phone  ", description="Caller saw smoke.", reporter=reporter.pk)

    # when
    response = admin_client.post(f"{CHANGELIST}add/", data)

    # then
    assert response.status_code == 302
    incident = Incident.objects.get()
    assert incident.title == "Reported by phone"
    assert incident.reporter == reporter
    assert incident.status == Status.REPORTED
    assert list(IncidentEvent.objects.values_list("kind", "actor")) == [(EventKind.REPORTED, reporter.pk)]


# --- Permissions --------------------------------------------------------------------------


def test_incidents_cannot_be_deleted(admin_client, reporter):
    # given
    incident = make_incident(reporter)

    # when
    changelist = admin_client.get(CHANGELIST)
    delete_page = admin_client.get(f"{CHANGELIST}{incident.pk}/delete/")
    delete_post = admin_client.post(f"{CHANGELIST}{incident.pk}/delete/", {"post": "yes"})

    # then
    actions = [name for name, _ in changelist.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert "close_selected" in actions
    assert delete_page.status_code == 403
    assert delete_post.status_code == 403
    assert Incident.objects.filter(pk=incident.pk).exists()


def test_non_staff_user_is_sent_to_the_admin_login(client, reporter):
    # given
    client.force_login(reporter)

    # when
    response = client.get(CHANGELIST)

    # then
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={CHANGELIST}"


@pytest.mark.parametrize(
    "text",
    [
        '\ufeff=HYPERLINK("http://evil")',
        '\u200b\u200b+cmd|"/c calc"!A1',
        "\u00a0 -2+3",
        "\u2060@SUM(1)",
    ],
)
def test_csv_cells_guard_formulas_behind_invisible_characters(text):
    # when
    cell = csv_cell(text)

    # then: a spreadsheet sees text, not a formula
    assert cell == "'" + text


def test_csv_cells_leave_ordinary_text_alone():
    assert csv_cell("Gas leak - second floor") == "Gas leak - second floor"
    assert csv_cell(None) == ""


# --- Reporter changes ----------------------------------------------------------------------


def test_change_form_reporter_change_is_on_the_timeline(admin_client, admin_user, reporter, other):
    # given
    incident = make_incident(reporter)
    data = change_form_data(admin_client.get(change_url(incident)))
    data["reporter"] = other.pk

    # when
    response = admin_client.post(change_url(incident), data)

    # then
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.reporter == other
    event = IncidentEvent.objects.get(incident=incident, kind=EventKind.REPORTER_CHANGED)
    assert (event.actor, event.field, event.old_value, event.new_value) == (
        admin_user,
        "reporter",
        reporter.username,
        other.username,
    )
    page = admin_client.get(incident.get_absolute_url())
    assert "changed the reporter from" in page.content.decode()


def test_change_form_without_changes_writes_no_event(admin_client, reporter):
    # given
    incident = make_incident(reporter)
    before = snapshot(incident)
    data = change_form_data(admin_client.get(change_url(incident)))

    # when
    response = admin_client.post(change_url(incident), data)

    # then
    assert response.status_code == 302
    assert snapshot(incident)["events"] == before["events"]


def test_the_change_form_lists_attachments_read_only_with_checked_links(admin_client, reporter):
    # given
    incident = make_incident(reporter)
    attachment = services.add_attachment(
        incident=incident, uploader=reporter, file=samples.upload("pipe.jpg", samples.image("JPEG"))
    )

    # when
    page = admin_client.get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()

    # then
    assert f'<a href="{attachment.get_absolute_url()}">pipe.jpg</a>' in page
    assert 'name="attachments-0-filename"' not in page  # nothing to edit
    assert admin_client.get(attachment.get_absolute_url()).status_code == 200
