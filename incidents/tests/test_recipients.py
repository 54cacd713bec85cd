"""Who hears of what happens to an incident (incidents/recipients.py): for each event, who
gets which message (the reporter, its team, the assignee, earlier participants; never the
person who acted, nor anyone who may not see the incident), as each user's preferences
allow, and nothing at all for a change that does not commit.

Mail is delivered by the real task code (the `run_tasks` fixture) to Django's locmem
backend (`mailoutbox`); nothing reaches the outbox before the tasks run. What a message
says and how it is delivered: notifications/tests/test_mail.py and test_delivery.py.
"""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from incidents import services
from incidents.models import Incident, Severity, Status, Visibility
from notifications.models import OutgoingEmail
from notifications.tests.mailbox import by_recipient, post_form, settle

from .factories import make_incident


def queued() -> int:
    return OutgoingEmail.objects.filter(state=OutgoingEmail.State.QUEUED).count()


# --- Incident reported -------------------------------------------------------------------


def report_by_service(client, reporter, **fields) -> Incident:
    return services.report_incident(reporter=reporter, **fields)


def report_by_web(client, reporter, **fields) -> Incident:
    client.force_login(reporter)
    data = {"title": fields["title"], "description": fields["description"], "severity": fields["severity"]}
    if fields.get("visibility") == Visibility.PRIVATE:
        data["private"] = "on"
    response = post_form(client, "/incidents/new/", data)
    assert response.status_code == 302
    return Incident.objects.get()


@pytest.mark.parametrize("report", [report_by_service, report_by_web], ids=["service", "web"])
@pytest.mark.parametrize("visibility", [Visibility.PUBLIC, Visibility.PRIVATE])
def test_report_confirms_to_the_reporter_and_alerts_each_responder(
    client, run_tasks, mailoutbox, reporter, other, responder, second_responder, staff, report, visibility
):
    # when
    incident = report(
        client,
        reporter,
        title="Gas smell in lab 2",
        description="Strong smell near the fume hood.",
        severity=Severity.MEDIUM,
        visibility=visibility,
    )

    # then nothing is sent until the worker runs
    assert mailoutbox == []
    assert queued() == 3
    assert run_tasks() == 3
    received = by_recipient(mailoutbox)
    assert set(received) == {reporter.email, responder.email, second_responder.email}
    assert all(len(messages) == 1 for messages in received.values())
    (confirmation,) = received[reporter.email]
    assert confirmation.subject == "Incident reported: Gas smell in lab 2"
    for address in (responder.email, second_responder.email):
        (alert,) = received[address]
        assert alert.subject == "New incident: Gas smell in lab 2"
        assert f"http://testserver/incidents/{incident.incident_id}/" in alert.body
    assert other.email not in received and staff.email not in received
    assert set(OutgoingEmail.objects.values_list("state", flat=True)) == {OutgoingEmail.State.SENT}


@pytest.mark.parametrize(
    ("severity", "mark"),
    [(Severity.LOW, None), (Severity.MEDIUM, None), (Severity.HIGH, "[HIGH]"), (Severity.CRITICAL, "[CRITICAL]")],
)
def test_alert_subject_marks_high_and_critical(run_tasks, mailoutbox, reporter, responder, severity, mark):
    # when
    services.report_incident(reporter=reporter, title="Water leak", description="Basement.", severity=severity)
    run_tasks()

    # then
    (alert,) = by_recipient(mailoutbox)[responder.email]
    if mark:
        assert alert.subject == f"{mark} New incident: Water leak"
        assert severity.upper() in alert.body
    else:
        assert alert.subject == "New incident: Water leak"
        assert "[" not in alert.subject


def test_responder_who_reports_gets_the_confirmation_but_no_alert(run_tasks, mailoutbox, responder, second_responder):
    # when
    services.report_incident(reporter=responder, title="Fire door propped open", description="Stairwell C.")
    run_tasks()

    # then
    received = by_recipient(mailoutbox)
    assert set(received) == {responder.email, second_responder.email}
    (mine,) = received[responder.email]
    assert mine.subject.startswith("Incident reported:")
    (alert,) = received[second_responder.email]
    assert alert.subject.startswith("New incident:")


def test_deactivated_responder_gets_no_alert(run_tasks, mailoutbox, reporter, inactive, responder):
    # when
    make_incident(reporter)
    run_tasks()

    # then
    assert set(by_recipient(mailoutbox)) == {reporter.email, responder.email}


# --- Response added ----------------------------------------------------------------------


def test_response_goes_to_the_reporter_and_earlier_participants_never_the_author(
    run_tasks, mailoutbox, reporter, other, responder, staff, public_incident
):
    # given
    settle(run_tasks, mailoutbox)

    # when other responds, only the reporter hears of it
    services.add_response(incident=public_incident, author=other, description="I smell smoke too.")
    assert mailoutbox == []
    run_tasks()
    assert set(by_recipient(mailoutbox)) == {reporter.email}
    (message,) = mailoutbox
    assert message.subject == "New response on: Printer on fire"
    assert "I smell smoke too." in message.body
    assert "bob responded" in message.body
    mailoutbox.clear()

    # when the responder responds, the reporter and other hear of it
    services.add_response(incident=public_incident, author=responder, description="On my way.")
    run_tasks()
    assert set(by_recipient(mailoutbox)) == {reporter.email, other.email}
    mailoutbox.clear()

    # when the reporter responds, the two participants hear of it, the reporter does not
    services.add_response(incident=public_incident, author=reporter, description="Thanks!")
    run_tasks()
    received = by_recipient(mailoutbox)
    assert set(received) == {other.email, responder.email}
    assert all(len(messages) == 1 for messages in received.values())
    assert staff.email not in received


def test_participant_who_can_no_longer_see_the_incident_gets_nothing(
    run_tasks, mailoutbox, reporter, other, responder, staff, public_incident
):
    # given other took part while it was public; staff then made it private
    services.add_response(incident=public_incident, author=other, description="Seen it from the street.")
    services.edit_incident(incident=public_incident, actor=staff, visibility=Visibility.PRIVATE)
    settle(run_tasks, mailoutbox)

    # when
    services.add_response(incident=public_incident, author=responder, description="Handled.")
    services.change_status(incident=public_incident, actor=responder, status=Status.ACKNOWLEDGED)
    run_tasks()

    # then
    received = by_recipient(mailoutbox)
    assert set(received) == {reporter.email}
    assert [m.subject for m in received[reporter.email]] == [
        "New response on: Printer on fire",
        "Acknowledged: Printer on fire",
    ]
    assert not OutgoingEmail.objects.filter(to=other.email, kind__in=["response_added", "status_changed"]).exists()


# --- Status changed ----------------------------------------------------------------------


def test_status_change_goes_to_the_reporter_and_participants_never_the_actor(
    run_tasks, mailoutbox, reporter, other, responder, staff, public_incident
):
    # given
    services.add_response(incident=public_incident, author=other, description="Smoke on the stairs.")
    services.add_response(incident=public_incident, author=responder, description="On my way.")
    settle(run_tasks, mailoutbox)

    # when a participant moves it
    services.change_status(incident=public_incident, actor=responder, status=Status.ACKNOWLEDGED)

    # then
    assert mailoutbox == []
    run_tasks()
    received = by_recipient(mailoutbox)
    assert set(received) == {reporter.email, other.email}
    message = received[reporter.email][0]
    assert message.subject == "Acknowledged: Printer on fire"
    assert "rita moved" in message.body
    assert "from Reported to Acknowledged" in message.body
    mailoutbox.clear()

    # when someone who is not a participant moves it, every participant hears of it
    services.change_status(incident=public_incident, actor=staff, status=Status.RESOLVED)
    run_tasks()
    assert set(by_recipient(mailoutbox)) == {reporter.email, other.email, responder.email}
    mailoutbox.clear()

    # when the reporter closes it, the reporter is not told
    services.change_status(incident=public_incident, actor=reporter, status=Status.CLOSED)
    run_tasks()
    assert set(by_recipient(mailoutbox)) == {other.email, responder.email}


def test_severity_change_and_edits_send_nothing(run_tasks, mailoutbox, reporter, responder, staff, public_incident):
    # given
    services.add_response(incident=public_incident, author=responder, description="Looking.")
    settle(run_tasks, mailoutbox)

    # when
    services.change_severity(incident=public_incident, actor=responder, severity=Severity.HIGH)
    services.edit_incident(incident=public_incident, actor=staff, title="Printer on fire, 3rd floor")

    # then
    assert run_tasks() == 0
    assert mailoutbox == []


# --- Preferences -------------------------------------------------------------------------


def switch_off(user, preference: str) -> None:
    setattr(user, preference, False)
    user.save(update_fields=[preference])


def test_reporter_without_confirmations_gets_none_responders_still_alerted(run_tasks, mailoutbox, reporter, responder):
    # given
    switch_off(reporter, "email_on_my_report")

    # when
    make_incident(reporter)
    run_tasks()

    # then
    assert set(by_recipient(mailoutbox)) == {responder.email}


def test_responder_without_alerts_gets_none(run_tasks, mailoutbox, reporter, responder, second_responder):
    # given
    switch_off(responder, "email_on_new_incident")

    # when
    make_incident(reporter)
    run_tasks()

    # then
    assert set(by_recipient(mailoutbox)) == {reporter.email, second_responder.email}


def test_participant_without_response_mail_gets_none(
    run_tasks, mailoutbox, reporter, other, responder, public_incident
):
    # given
    services.add_response(incident=public_incident, author=other, description="Me too.")
    switch_off(reporter, "email_on_response")
    settle(run_tasks, mailoutbox)

    # when
    services.add_response(incident=public_incident, author=responder, description="On it.")
    run_tasks()

    # then
    assert set(by_recipient(mailoutbox)) == {other.email}


def test_participant_without_status_mail_gets_none(run_tasks, mailoutbox, reporter, other, responder, public_incident):
    # given
    services.add_response(incident=public_incident, author=other, description="Me too.")
    switch_off(reporter, "email_on_status_change")
    settle(run_tasks, mailoutbox)

    # when
    services.change_status(incident=public_incident, actor=responder, status=Status.ACKNOWLEDGED)
    run_tasks()

    # then
    assert set(by_recipient(mailoutbox)) == {other.email}


# --- Transactions: nothing for a change that does not commit -----------------------------


def test_rolled_back_report_leaves_no_mail_and_no_task(run_tasks, mailoutbox, reporter, responder):
    # when
    with pytest.raises(RuntimeError), transaction.atomic():
        services.report_incident(reporter=reporter, title="Never happened", description="Rolled back.")
        assert OutgoingEmail.objects.count() == 2  # queued inside the transaction ...
        raise RuntimeError("the caller's transaction fails later")

    # then ... and gone with it
    assert Incident.objects.count() == 0
    assert OutgoingEmail.objects.count() == 0
    assert DBTaskResult.objects.count() == 0
    assert run_tasks() == 0
    assert mailoutbox == []


def refused_move(incident, reporter, other, responder):
    services.change_status(incident=incident, actor=responder, status=Status.IN_PROGRESS)  # not from Reported


def forbidden_move(incident, reporter, other, responder):
    services.change_status(incident=incident, actor=other, status=Status.ACKNOWLEDGED)


def same_status(incident, reporter, other, responder):
    services.change_status(incident=incident, actor=responder, status=Status.REPORTED)


def empty_response(incident, reporter, other, responder):
    services.add_response(incident=incident, author=other, description="")


def empty_report(incident, reporter, other, responder):
    services.report_incident(reporter=reporter, title="   ", description="No title.")


@pytest.mark.parametrize(
    ("act", "error"),
    [
        (refused_move, ValidationError),
        (forbidden_move, PermissionDenied),
        (same_status, ValidationError),
        (empty_response, ValidationError),
        (empty_report, ValidationError),
    ],
)
def test_failing_service_queues_nothing(run_tasks, mailoutbox, reporter, other, responder, public_incident, act, error):
    # given
    services.add_response(incident=public_incident, author=other, description="Following.")
    settle(run_tasks, mailoutbox)
    emails, tasks = OutgoingEmail.objects.count(), DBTaskResult.objects.count()

    # when
    with pytest.raises(error):
        act(public_incident, reporter, other, responder)

    # then
    assert (OutgoingEmail.objects.count(), DBTaskResult.objects.count()) == (emails, tasks)
    assert run_tasks() == 0
    assert mailoutbox == []


def test_response_to_a_closed_incident_queues_nothing(run_tasks, mailoutbox, reporter, other, public_incident):
    # given
    services.add_response(incident=public_incident, author=other, description="Following.")
    services.change_status(incident=public_incident, actor=reporter, status=Status.CLOSED)
    settle(run_tasks, mailoutbox)
    emails, tasks = OutgoingEmail.objects.count(), DBTaskResult.objects.count()

    # when
    with pytest.raises(ValidationError):
        services.add_response(incident=public_incident, author=other, description="Too late.")

    # then
    assert (OutgoingEmail.objects.count(), DBTaskResult.objects.count()) == (emails, tasks)
    assert run_tasks() == 0
    assert mailoutbox == []
