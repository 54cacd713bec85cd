"""What a message says (notifications/mail.py and templates/emails/): every kind has a text
and an HTML body whose links come from SITE_URL, never from the request's host; text users
typed is escaped in HTML and left alone in text; and no title can add a header. The
messages are the ones the site's own flows queue (registering, signing in, reporting,
responding, moving an incident, resetting a password), delivered by the real task code to
Django's locmem backend."""

import re

from django.test import Client, override_settings

from incidents import services
from incidents.models import Incident, Severity, Status, Visibility
from notifications.models import OutgoingEmail
from notifications.tests.mailbox import by_recipient, html_of, post_form

PASSWORD = "correct-horse-battery-42"  # the root conftest's password for every user
IP = "203.0.113.9"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) IRMS-Test/1.0"


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


def report_by_web(client, reporter, **fields) -> Incident:
    client.force_login(reporter)
    data = {"title": fields["title"], "description": fields["description"], "severity": fields["severity"]}
    if fields.get("visibility") == Visibility.PRIVATE:
        data["private"] = "on"
    response = post_form(client, "/incidents/new/", data)
    assert response.status_code == 302
    return Incident.objects.get()


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
