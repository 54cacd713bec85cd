"""The mail IRMS sends: who gets which message for each event, what it says (text and
HTML, links from SITE_URL, user text escaped, header-safe subjects), that it is only
queued by the change's own transaction, and how delivery retries, gives up and never
sends one message twice.

Mail is delivered by the real task code (the `run_tasks` fixture) to Django's locmem
backend (`mailoutbox`); nothing reaches the outbox before the tasks run.
"""

import re
import smtplib
from datetime import timedelta
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.db import OperationalError, transaction
from django.test import Client, override_settings
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from incidents import services
from incidents.models import Incident, Severity, Status, Visibility
from notifications import delivery, outbox, tasks
from notifications.models import OutgoingEmail

from .factories import advance_to, make_incident, make_responder

PASSWORD = "correct-horse-battery-42"  # the root conftest's password for every user
IP = "203.0.113.9"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) IRMS-Test/1.0"
PREFERENCES = (
    "email_on_sign_in",
    "email_on_my_report",
    "email_on_new_incident",
    "email_on_response",
    "email_on_status_change",
)


class FailingBackend(BaseEmailBackend):
    """An SMTP server that hangs up on every message."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


FAILING_BACKEND = "incidents.tests.test_notifications.FailingBackend"


@pytest.fixture
def second_responder(make_user):
    return make_responder(make_user, "rhea")


def post_form(client, path: str, data: dict, **extra):
    """POST `data` URL-encoded, as a browser's form does (the test client's default is multipart)."""
    return client.post(path, urlencode(data, doseq=True), content_type="application/x-www-form-urlencoded", **extra)


def settle(run_tasks, mailoutbox) -> None:
    """Deliver the mail the set-up queued (fixtures report incidents) and forget it."""
    run_tasks()
    mailoutbox.clear()


def by_recipient(messages) -> dict[str, list]:
    """Messages keyed by their one recipient (every message goes to exactly one address)."""
    found: dict[str, list] = {}
    for message in messages:
        assert len(message.to) == 1, message.to
        assert message.cc == [] and message.bcc == []
        found.setdefault(message.to[0], []).append(message)
    return found


def html_of(message) -> str:
    assert len(message.alternatives) == 1
    content, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    return content


def queued() -> int:
    return OutgoingEmail.objects.filter(state=OutgoingEmail.State.QUEUED).count()


def make_due() -> int:
    """Bring every scheduled retry forward to now, as if its time had come."""
    return DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(run_after=timezone.now())


# --- Registration and sign-in ------------------------------------------------------------


def test_registration_sends_one_welcome_mail(client, db, run_tasks, mailoutbox):
    # when
    response = post_form(
        client,
        "/accounts/register/",
        {"username": "newbie", "email": "newbie@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    # then
    assert response.status_code == 302
    assert mailoutbox == []
    assert run_tasks() == 1
    (message,) = mailoutbox
    assert message.to == ["newbie@example.com"]
    assert message.subject == "Welcome to IRMS, newbie"
    assert "http://testserver/dashboard/" in message.body
    assert 'href="http://testserver/dashboard/"' in html_of(message)
    assert OutgoingEmail.objects.get().state == OutgoingEmail.State.SENT
    # and the new user is signed in and can use the site
    assert client.get("/dashboard/").status_code == 200


def sign_in_by_web(client, user):
    response = post_form(
        client,
        "/accounts/login/",
        {"username": user.username, "password": PASSWORD},
        REMOTE_ADDR=IP,
        HTTP_USER_AGENT=BROWSER,
    )
    assert response.status_code == 302
    return response


def sign_in_by_token(client, user):
    response = client.post(
        "/api/auth/token",
        {"username": user.username, "password": PASSWORD},
        content_type="application/json",
        REMOTE_ADDR=IP,
        HTTP_USER_AGENT=BROWSER,
    )
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("sign_in", [sign_in_by_web, sign_in_by_token], ids=["web", "token"])
def test_sign_in_sends_a_notice_with_address_browser_and_password_change_link(
    client, run_tasks, mailoutbox, reporter, sign_in
):
    # when
    sign_in(client, reporter)

    # then
    assert mailoutbox == []
    assert run_tasks() == 1
    (message,) = mailoutbox
    assert message.to == [reporter.email]
    assert message.subject == "New sign-in to your IRMS account"
    html = html_of(message)
    for part in (message.body, html):
        assert IP in part
        assert BROWSER in part
        assert "http://testserver/accounts/password_change/" in part


@pytest.mark.parametrize("sign_in", [sign_in_by_web, sign_in_by_token], ids=["web", "token"])
def test_sign_in_notice_respects_the_preference(client, run_tasks, mailoutbox, reporter, sign_in):
    # given
    reporter.email_on_sign_in = False
    reporter.save()

    # when
    sign_in(client, reporter)

    # then
    assert OutgoingEmail.objects.count() == 0
    assert run_tasks() == 0
    assert mailoutbox == []


def test_failed_sign_in_sends_nothing(client, run_tasks, mailoutbox, reporter):
    # when
    response = post_form(
        client, "/accounts/login/", {"username": reporter.username, "password": "wrong"}, REMOTE_ADDR=IP
    )

    # then
    assert response.status_code == 400
    assert run_tasks() == 0
    assert mailoutbox == []


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


def test_password_reset_mail_goes_whatever_the_preferences(client, run_tasks, mailoutbox, reporter):
    # given
    for preference in PREFERENCES:
        setattr(reporter, preference, False)
    reporter.save()

    # when
    response = post_form(client, "/accounts/password_reset/", {"email": reporter.email})

    # then
    assert response.status_code == 302
    assert mailoutbox == []
    assert run_tasks() == 1
    (message,) = mailoutbox
    assert message.to == [reporter.email]
    assert message.subject == "Reset your IRMS password"
    assert re.search(r"http://testserver/accounts/reset/[^/\s]+/[^/\s]+/", message.body)
    assert re.search(r'href="http://testserver/accounts/reset/[^/"]+/[^/"]+/"', html_of(message))


def test_profile_form_saves_preferences_with_checkbox_semantics(client, run_tasks, mailoutbox, reporter, responder):
    # given
    client.force_login(reporter)

    # when only one box is ticked
    response = post_form(client, "/accounts/profile/notifications/", {"email_on_response": "on"})

    # then the ticked one is on and every absent one is off
    assert response.status_code == 302
    reporter.refresh_from_db()
    assert {name: getattr(reporter, name) for name in PREFERENCES} == {
        "email_on_sign_in": False,
        "email_on_my_report": False,
        "email_on_new_incident": False,
        "email_on_response": True,
        "email_on_status_change": False,
    }
    # and the next report sends the reporter no confirmation
    make_incident(reporter)
    run_tasks()
    assert set(by_recipient(mailoutbox)) == {responder.email}

    # when every box is ticked again
    post_form(client, "/accounts/profile/notifications/", dict.fromkeys(PREFERENCES, "on"))

    # then
    reporter.refresh_from_db()
    assert all(getattr(reporter, name) for name in PREFERENCES)


# --- Content: text and HTML, links, escaping, headers -----------------------------------


def test_every_message_has_text_and_html_with_links_from_site_url(
    client, run_tasks, mailoutbox, reporter, other, responder, staff
):
    # given a site whose address is not the request's host
    with override_settings(SITE_URL="https://irms.example.org"):
        # when every kind of mail is triggered
        post_form(
            Client(),
            "/accounts/register/",
            {"username": "newbie", "email": "newbie@example.com", "password1": PASSWORD, "password2": PASSWORD},
        )
        sign_in_by_web(client, reporter)
        incident = report_by_web(
            client, reporter, title="Lift stuck", description="Between floors 2 and 3.", severity=Severity.HIGH
        )
        services.add_response(incident=incident, author=other, description="People inside!")
        services.change_status(incident=incident, actor=responder, status=Status.ACKNOWLEDGED)
        client.logout()
        post_form(client, "/accounts/password_reset/", {"email": reporter.email})
        run_tasks()

    # then
    kinds = set(OutgoingEmail.objects.values_list("kind", flat=True))
    assert kinds == {
        "welcome",
        "sign_in",
        "incident_reported",
        "incident_alert",
        "response_added",
        "status_changed",
        "password_reset",
    }
    assert len(mailoutbox) == OutgoingEmail.objects.count()
    for message in mailoutbox:
        html = html_of(message)
        assert message.body.strip() and not message.body.lstrip().startswith("<")
        assert html.lstrip().startswith("<!doctype html>")
        text_links = re.findall(r"https?://[^\s\"<>)]+", message.body)
        html_links = re.findall(r'href="([^"]*)"', html)
        assert text_links and html_links, message.subject
        for link in text_links + html_links:
            assert link.startswith("https://irms.example.org/"), (message.subject, link)
    alert = next(m for m in mailoutbox if m.to == [responder.email] and "New incident" in m.subject)
    assert f"https://irms.example.org/incidents/{incident.incident_id}/" in alert.body
    assert f'href="https://irms.example.org/incidents/{incident.incident_id}/"' in html_of(alert)


def test_user_text_is_escaped_in_html_and_left_alone_in_text(run_tasks, mailoutbox, reporter, other, responder):
    # when
    incident = services.report_incident(
        reporter=reporter, title="<b>x</b>", description="<script>alert('hi')</script> & \"quotes\""
    )
    services.add_response(incident=incident, author=other, description="<i>y</i> <a href='http://evil'>z</a>")
    run_tasks()

    # then
    assert len(mailoutbox) == 3  # confirmation, alert, response
    for message in mailoutbox:
        html = html_of(message)
        assert "<b>x</b>" in message.body
        assert "&lt;b&gt;x&lt;/b&gt;" in html
        assert "<b>x</b>" not in html
        assert "<b>x</b>" in message.subject and "&lt;" not in message.subject
        assert "<script" not in html and "<i>" not in html and "http://evil" not in re.findall(r'href="[^"]*"', html)
    confirmation = by_recipient(mailoutbox)[reporter.email][0]
    assert "<script>alert('hi')</script> & \"quotes\"" in confirmation.body
    assert "&lt;script&gt;alert(&#x27;hi&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in html_of(confirmation)
    response_mail = next(m for m in mailoutbox if m.subject.startswith("New response"))
    assert "<i>y</i>" in response_mail.body
    assert "&lt;i&gt;y&lt;/i&gt;" in html_of(response_mail)


def header_block(message) -> str:
    """The top-level headers of `message` as it would go over the wire."""
    return message.message().as_string().split("\n\n", 1)[0]


def test_title_cannot_inject_headers(run_tasks, mailoutbox, reporter, responder):
    # given
    title = "Hello\r\nBcc: victim@example.com"

    # when
    incident = services.report_incident(reporter=reporter, title=title, description="Subject line games.")
    services.add_response(incident=incident, author=responder, description="Looking.")
    services.change_status(incident=incident, actor=responder, status=Status.ACKNOWLEDGED)
    run_tasks()

    # then
    # the confirmation and the alert; then to the reporter, the response and the status change
    assert len(mailoutbox) == 4
    for message in mailoutbox:
        assert "\r" not in message.subject and "\n" not in message.subject
        assert "Hello Bcc: victim@example.com" in message.subject
        assert message.bcc == []
        assert len(message.recipients()) == 1
        assert message.recipients()[0] in (reporter.email, responder.email)
        mime = message.message()
        assert mime["Bcc"] is None
        assert mime["Subject"] == message.subject
        assert not re.search(r"^bcc:", header_block(message), re.IGNORECASE | re.MULTILINE)
        assert "victim@example.com" not in mime["To"]
    assert {m.recipients()[0] for m in mailoutbox} == {reporter.email, responder.email}
    assert not OutgoingEmail.objects.filter(to__icontains="victim").exists()
    assert all("\n" not in s for s in OutgoingEmail.objects.values_list("subject", flat=True))


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


# --- Delivery: retries, giving up, the admin's retry, at most once ----------------------


def test_failed_delivery_is_retried_with_backoff_then_given_up_and_requeued_from_the_admin(
    admin_client, run_tasks, mailoutbox, reporter
):
    # given one queued message (no responders: the confirmation only)
    make_incident(reporter)
    email = OutgoingEmail.objects.get()

    with override_settings(EMAIL_BACKEND=FAILING_BACKEND):
        # when the first attempt fails
        assert run_tasks() == 1

        # then it is queued again for a retry within 30 seconds
        email.refresh_from_db()
        now = timezone.now()
        assert email.state == OutgoingEmail.State.QUEUED
        assert email.attempts == 1
        assert now < email.next_attempt_at <= now + timedelta(seconds=30)
        assert email.last_error == "SMTPServerDisconnected: Connection unexpectedly closed"
        (retry,) = DBTaskResult.objects.filter(status=TaskResultStatus.READY)
        assert retry.run_after == email.next_attempt_at
        assert run_tasks() == 0  # not due yet
        assert mailoutbox == []

        # when each later attempt fails too
        delays = [email.next_attempt_at - now]
        for attempt in range(2, delivery.MAX_ATTEMPTS + 1):
            assert make_due() == 1
            assert run_tasks() == 1
            email.refresh_from_db()
            assert email.attempts == attempt
            if attempt < delivery.MAX_ATTEMPTS:
                assert email.state == OutgoingEmail.State.QUEUED
                delays.append(email.next_attempt_at - timezone.now())
                assert run_tasks() == 0

    # then after eight attempts it is given up, with nothing left scheduled
    assert delivery.MAX_ATTEMPTS == 8
    assert email.state == OutgoingEmail.State.FAILED
    assert email.next_attempt_at is None
    assert email.sent_at is None
    assert "SMTPServerDisconnected" in email.last_error
    assert not DBTaskResult.objects.filter(status=TaskResultStatus.READY).exists()
    assert all(earlier < later for earlier, later in zip(delays, delays[1:], strict=False))
    assert sum(delays, timedelta()) < timedelta(hours=2, minutes=30)
    assert mailoutbox == []

    # when staff send it again from the admin
    response = post_form(
        admin_client,
        "/admin/notifications/outgoingemail/",
        {"action": "retry_selected", "_selected_action": [email.pk]},
    )

    # then it is queued from scratch and the (now working) server gets it once
    assert response.status_code == 302
    email.refresh_from_db()
    assert (email.state, email.attempts, email.next_attempt_at) == (OutgoingEmail.State.QUEUED, 0, None)
    assert run_tasks() == 1
    (message,) = mailoutbox
    assert message.to == [reporter.email]
    email.refresh_from_db()
    assert email.state == OutgoingEmail.State.SENT
    assert email.attempts == 1
    assert email.sent_at is not None
    assert email.last_error == ""

    # and a message already sent is never sent again
    assert tasks.deliver_email(email.pk) == "skipped"
    post_form(
        admin_client,
        "/admin/notifications/outgoingemail/",
        {"action": "retry_selected", "_selected_action": [email.pk]},
    )
    assert run_tasks() == 0
    email.refresh_from_db()
    assert email.state == OutgoingEmail.State.SENT
    assert len(mailoutbox) == 1


def test_admin_retry_is_refused_to_an_ordinary_user(client, run_tasks, mailoutbox, reporter, other):
    # given a failed message
    make_incident(reporter)
    email = OutgoingEmail.objects.get()
    OutgoingEmail.objects.filter(pk=email.pk).update(state=OutgoingEmail.State.FAILED)
    settle(run_tasks, mailoutbox)
    client.force_login(other)

    # when an ordinary user tries the admin action
    response = post_form(
        client, "/admin/notifications/outgoingemail/", {"action": "retry_selected", "_selected_action": [email.pk]}
    )

    # then
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    email.refresh_from_db()
    assert email.state == OutgoingEmail.State.FAILED
    assert run_tasks() == 0


def test_delivering_the_same_message_twice_sends_it_once(run_tasks, mailoutbox, reporter):
    # given one queued message, as two workers would each find it
    make_incident(reporter)
    email = OutgoingEmail.objects.get()

    # when
    first = tasks.deliver_email(email.pk)
    second = tasks.deliver_email(email.pk)

    # then
    assert (first, second) == ("sent", "skipped")
    assert len(mailoutbox) == 1
    assert run_tasks() == 1  # the task itself now finds nothing to do
    assert len(mailoutbox) == 1
    email.refresh_from_db()
    assert (email.state, email.attempts) == (OutgoingEmail.State.SENT, 1)


def test_message_claimed_by_another_worker_is_skipped(run_tasks, mailoutbox, reporter):
    # given another worker has claimed the message and is talking to the server
    make_incident(reporter)
    email = OutgoingEmail.objects.get()
    OutgoingEmail.objects.filter(pk=email.pk).update(state=OutgoingEmail.State.SENDING, attempts=1)

    # when
    assert tasks.deliver_email(email.pk) == "skipped"

    # then
    assert mailoutbox == []
    email.refresh_from_db()
    assert (email.state, email.attempts) == (OutgoingEmail.State.SENDING, 1)


def test_delivering_a_missing_message_is_skipped(db, mailoutbox):
    assert tasks.deliver_email(987654) == "skipped"
    assert mailoutbox == []


def test_whole_journey_sends_each_queued_message_exactly_once(
    client, run_tasks, mailoutbox, reporter, other, responder, second_responder, staff
):
    # given a busy incident
    incident = make_incident(reporter, severity=Severity.CRITICAL)
    services.add_response(incident=incident, author=other, description="Evacuating.")
    services.add_response(incident=incident, author=responder, description="Fire brigade called.")
    advance_to(incident, Status.RESOLVED, by=staff)

    # when the worker runs twice
    first = run_tasks()
    second = run_tasks()

    # then
    assert second == 0
    assert first == OutgoingEmail.objects.count() == len(mailoutbox)
    assert not OutgoingEmail.objects.exclude(state=OutgoingEmail.State.SENT).exists()
    expected = sorted(OutgoingEmail.objects.values_list("to", "subject"))
    assert sorted((m.to[0], m.subject) for m in mailoutbox) == expected
    assert staff.email not in {m.to[0] for m in mailoutbox}


def test_retry_leaves_a_message_being_sent_alone_but_recovers_a_stuck_one(run_tasks, mailoutbox, reporter):
    # given two messages claimed by workers: one just now, one whose lease ran out (its worker died)
    make_incident(reporter)
    make_incident(reporter)
    fresh, stuck = OutgoingEmail.objects.order_by("pk")
    now = timezone.now()
    OutgoingEmail.objects.filter(pk=fresh.pk).update(
        state=OutgoingEmail.State.SENDING, claimed_at=now, lease_expires_at=now + timedelta(minutes=1)
    )
    OutgoingEmail.objects.filter(pk=stuck.pk).update(
        state=OutgoingEmail.State.SENDING,
        claimed_at=now - timedelta(minutes=2),
        lease_expires_at=now - timedelta(seconds=1),
    )
    settle(run_tasks, mailoutbox)

    # when staff retry both
    count = outbox.retry(OutgoingEmail.objects.filter(pk__in=[fresh.pk, stuck.pk]))

    # then only the stuck one goes out again; the one in flight is not sent twice
    assert count == 1
    assert run_tasks() == 1
    assert [message.to for message in mailoutbox] == [[stuck.to]]
    fresh.refresh_from_db()
    assert fresh.state == OutgoingEmail.State.SENDING


# --- Surviving database trouble in the worker ---------------------------------------------------


def test_requeue_orphans_gives_a_task_back_to_a_message_whose_worker_died(run_tasks, mailoutbox, reporter):
    # given: three queued messages; the first's task was taken by a worker that then died,
    # long enough ago; the second's likewise but just now; the third still has its task waiting
    for _ in range(3):
        make_incident(reporter)
    orphan, recent, waiting = OutgoingEmail.objects.order_by("pk")
    tasks = {int(task.args_kwargs["args"][0]): task for task in DBTaskResult.objects.all()}
    for email in (orphan, recent):
        DBTaskResult.objects.filter(pk=tasks[email.pk].pk).update(status=TaskResultStatus.RUNNING)
    OutgoingEmail.objects.filter(pk=orphan.pk).update(created_at=timezone.now() - timedelta(minutes=10))

    # when
    count = outbox.requeue_orphans()

    # then only the orphan gets a new task, and everything still waiting goes out once
    assert count == 1
    assert run_tasks() == 2
    assert sorted(message.to[0] for message in mailoutbox) == sorted([orphan.to, waiting.to])
    recent.refresh_from_db()
    assert recent.state == OutgoingEmail.State.QUEUED


def test_a_sent_message_is_recorded_even_if_the_database_blinks(monkeypatch, reporter, mailoutbox):
    # given: the database refuses the first attempt to record the send
    make_incident(reporter)
    email = OutgoingEmail.objects.get()
    real_filter = OutgoingEmail.objects.filter
    refusals = []

    def flaky_filter(*args, **kwargs):
        queryset = real_filter(*args, **kwargs)
        if kwargs == {"pk": email.pk} and not refusals:
            refusals.append(1)

            class Refusing:
                def update(self, **values):
                    raise OperationalError("server has gone away")

            return Refusing()
        return queryset

    monkeypatch.setattr(delivery.time, "sleep", lambda seconds: None)
    # The real connection is fine; recycling it would end the test's own transaction.
    monkeypatch.setattr(delivery.connection, "close_if_unusable_or_obsolete", lambda: None)
    monkeypatch.setattr(OutgoingEmail.objects, "filter", flaky_filter)

    # when
    result = tasks.deliver_email(email.pk)

    # then: sent once and recorded as sent, so no retry would send it again
    assert result == "sent"
    assert refusals == [1]
    assert len(mailoutbox) == 1
    email.refresh_from_db()
    assert email.state == OutgoingEmail.State.SENT


def test_mail_worker_starts_again_after_a_database_error(monkeypatch, reporter, mailoutbox):
    # given: a queued message, and a database that fails the worker's first start
    from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

    from notifications.management.commands import mail_worker

    make_incident(reporter)
    real_handle = DbWorkerCommand.handle
    starts = []

    def failing_once(self, *args, **options):
        starts.append(1)
        if len(starts) == 1:
            raise OperationalError("Can't connect to server")
        return real_handle(self, *args, **options)

    monkeypatch.setattr(DbWorkerCommand, "handle", failing_once)
    monkeypatch.setattr(mail_worker.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(mail_worker.connections, "close_all", lambda: None)
    monkeypatch.setattr("django_tasks_db.management.commands.db_worker.close_old_connections", lambda: None)

    # when
    call_command("mail_worker", "--batch", "--no-startup-delay", "--no-reload", stderr=StringIO())

    # then: it started twice and delivered the message
    assert len(starts) == 2
    assert [message.to for message in mailoutbox] == [[reporter.email]]
