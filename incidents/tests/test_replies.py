"""Reply by e-mail: the signed Reply-To of every incident notification, and
`manage.py mail_ingest` reading replies from standard input (as an MTA pipes them).
Every refusal creates nothing but its record; people (never robots) hear why, once an hour.
The IMAP side is test_mail_ingest_imap.py."""

import io
import os
import subprocess
import sys
import threading
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from incidents import replies, services
from incidents.models import Attachment, InboundMessage, Response, Status, Visibility, attachment_storage
from notifications.models import OutgoingEmail

from . import samples
from .factories import advance_to, category_of, make_incident, make_staff

REPLY_TO = "irms+{token}@example.org"
QUOTE = "On Tue, 1 Dec 2026 at 15:00, IRMS <irms@example.org> wrote:\n> QUOTED-HISTORY from the notification\n> more\n"
SIGNATURE = "--\nAlice Smith\nFacilities, building 2\n"

Reason = InboundMessage.Reason


@pytest.fixture(autouse=True)
def reply_by_mail_on(settings):
    settings.REPLY_TO_ADDRESS = REPLY_TO
    settings.REPLY_TO_MAX_AGE_DAYS = 30


def mail(
    *,
    to: str,
    sender: str,
    body: str = "The valve is closed now.",
    subject: str = "Re: Lift stuck",
    headers: dict | None = None,
    files=(),
    message_id: str | None = None,
) -> bytes:
    """A reply as a mail client writes it: the new text, a signature, the quoted history."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="mail.example.com")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(f"{body}\n\n{SIGNATURE}\n{QUOTE}")
    for name, content, mime in files:
        maintype, subtype = mime.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


def ingest_stdin(raw: bytes, monkeypatch, *args) -> str:
    """Run `manage.py mail_ingest` with `raw` on standard input; returns what it printed."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    out = io.StringIO()
    call_command("mail_ingest", *args, stdout=out)
    return out.getvalue()


def nothing_created(incident) -> None:
    assert not Response.objects.filter(incident=incident).exists()
    assert not Attachment.objects.filter(incident=incident).exists()


def notices() -> list[OutgoingEmail]:
    return list(OutgoingEmail.objects.filter(kind="reply_refused"))


# --- The Reply-To of notifications -------------------------------------------------------


def test_every_incident_notification_has_a_reply_to_of_its_own(run_tasks, mailoutbox, reporter, facilities, fay, fred):
    # when: a report alerts the team and confirms to the reporter
    incident = make_incident(reporter, category=category_of(facilities))
    run_tasks()

    # then: each recipient's mail carries an address signed for this incident and them
    sent = {message.to[0]: message for message in mailoutbox}
    assert set(sent) == {reporter.email, fay.email, fred.email}
    addresses = set()
    for user in (reporter, fay, fred):
        (address,) = sent[user.email].reply_to
        token = replies.find_token(replies.parse(f"To: {address}\n\n".encode()))
        assert replies.read_token(token) == replies.Token(incident.pk, user.pk, replies._today())
        assert sent[user.email].extra_headers["Auto-Submitted"] == "auto-generated"
        assert "Reply to this e-mail to add your answer" in sent[user.email].body
        assert "Reply to this e-mail to add your answer" in sent[user.email].alternatives[0][0]
        addresses.add(address)
    assert len(addresses) == 3


def test_no_reply_to_when_reply_by_mail_is_off(settings, run_tasks, mailoutbox, reporter, facilities):
    settings.REPLY_TO_ADDRESS = ""
    make_incident(reporter, category=category_of(facilities))
    run_tasks()
    assert mailoutbox and all(message.reply_to == [] for message in mailoutbox)
    assert not any("Reply to this e-mail" in message.body for message in mailoutbox)
    # and no blank line is left where the hint would be
    assert all("\n\n— IRMS" in message.body and "\n\n\n— IRMS" not in message.body for message in mailoutbox)
    assert set(OutgoingEmail.objects.values_list("reply_to", flat=True)) == {""}


def test_a_token_names_one_incident_and_one_user_and_cannot_be_altered(reporter, other):
    token = replies.make_token(41, 7)
    assert replies.read_token(token.upper()) == replies.Token(41, 7, replies._today())  # MTAs may fold case
    incident_part, user_part, day, mac = token.split("-")
    for forged in (
        f"{replies._b36(42)}-{user_part}-{day}-{mac}",  # another incident
        f"{incident_part}-{replies._b36(8)}-{day}-{mac}",  # another recipient
        f"{incident_part}-{user_part}-{replies._b36(replies._today() + 5)}-{mac}",  # a longer life
        f"{incident_part}-{user_part}-{day}-{'a' * 24}",
        "not-a-token",
        "",
    ):
        with pytest.raises(replies.TokenError) as refused:
            replies.read_token(forged)
        assert refused.value.reason == Reason.BAD_TOKEN


def test_a_token_expires_and_survives_a_secret_key_rotation(settings):
    old = replies.make_token(1, 2, day=replies._today() - 31)
    with pytest.raises(replies.TokenError) as refused:
        replies.read_token(old)
    assert refused.value.reason == Reason.EXPIRED_TOKEN
    assert replies.read_token(replies.make_token(1, 2, day=replies._today() - 30)).day == replies._today() - 30

    token = replies.make_token(1, 2)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-for-this-test-0123456789-abcdefghijklmnop"
    assert replies.read_token(token).incident_pk == 1
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(replies.TokenError):
        replies.read_token(token)


# --- Accepted replies ----------------------------------------------------------------------


def test_a_reply_from_standard_input_becomes_the_users_response(monkeypatch, run_tasks, mailoutbox, lift, fred):
    # given
    address = replies.reply_address(lift, fred)

    # when
    out = ingest_stdin(mail(to=address, sender="Fred <FRED@Example.COM>"), monkeypatch)

    # then: the response is fred's, without the quoted history or the signature
    assert out.strip() == "Accepted"
    (response,) = Response.objects.filter(incident=lift)
    assert response.author == fred
    assert response.description == "The valve is closed now."
    record = InboundMessage.objects.get()
    assert (record.status, record.reason, record.source) == ("accepted", "", "stdin")
    assert (record.incident, record.user, record.response) == (lift, fred, response)
    # and the others hear of it as of any response, with their own reply addresses
    run_tasks()
    told = {message.to[0]: message for message in mailoutbox if "The valve is closed now." in message.body}
    assert fred.email not in told and lift.reporter.email in told
    assert told[lift.reporter.email].reply_to == [replies.reply_address(lift, lift.reporter)]


def test_attachments_of_a_reply_become_attachments(monkeypatch, lift, fred):
    files = [
        ("pipe.png", samples.image("PNG", gps=True), "image/png"),
        ("sshd.log", samples.TEXT, "text/plain"),
    ]
    ingest_stdin(mail(to=replies.reply_address(lift, fred), sender=fred.email, files=files), monkeypatch)

    (response,) = Response.objects.filter(incident=lift)
    stored = {a.filename: a for a in response.attachments.all()}
    assert set(stored) == {"pipe.png", "sshd.log"}
    assert stored["pipe.png"].content_type == "image/png" and stored["pipe.png"].thumbnail
    assert stored["sshd.log"].file.read() == samples.TEXT
    assert all(a.uploaded_by == fred for a in stored.values())


def test_an_html_only_reply_is_read_as_text(monkeypatch, lift, fred):
    message = EmailMessage()
    message["From"], message["To"] = fred.email, replies.reply_address(lift, fred)
    message["Message-ID"] = make_msgid()
    message.set_content(
        "<div>Power is back &amp; the lift moves.</div><div><br></div>"
        "<div>On Tue, 1 Dec 2026 at 15:00, IRMS &lt;irms@example.org&gt; wrote:</div>"
        "<blockquote>QUOTED-HISTORY</blockquote>",
        subtype="html",
    )
    ingest_stdin(message.as_bytes(), monkeypatch)
    assert Response.objects.get(incident=lift).description == "Power is back & the lift moves."


def test_the_same_message_twice_makes_one_response(monkeypatch, lift, fred):
    raw = mail(to=replies.reply_address(lift, fred), sender=fred.email)
    assert ingest_stdin(raw, monkeypatch).strip() == "Accepted"
    assert ingest_stdin(raw, monkeypatch).strip() == "Already handled."
    assert Response.objects.filter(incident=lift).count() == 1
    assert InboundMessage.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_ingesters_with_the_same_message_at_once_make_one_response(make_user, facilities, fred):
    # given
    incident = make_incident(make_user("ann"), category=category_of(facilities))
    raw = mail(to=replies.reply_address(incident, fred), sender=fred.email)
    results = [None] * 4
    start = threading.Barrier(len(results))

    def ingest(n):
        try:
            start.wait()
            results[n] = services.respond_by_mail(raw=raw, source="stdin")
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=ingest, args=(n,)) for n in range(len(results))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # then: one of them recorded it and responded; the others found it handled
    assert sum(result is not None for result in results) == 1
    assert Response.objects.filter(incident=incident).count() == 1
    assert InboundMessage.objects.get().status == InboundMessage.Status.ACCEPTED


# --- Refusals ------------------------------------------------------------------------------


def refused(reason, incident) -> InboundMessage:
    record = InboundMessage.objects.get()
    assert (record.status, record.reason) == (InboundMessage.Status.REFUSED, reason), record.detail
    nothing_created(incident)
    return record


def test_unknown_sender_is_refused_and_not_answered(monkeypatch, lift, fred):
    ingest_stdin(mail(to=replies.reply_address(lift, fred), sender="mallory@evil.example"), monkeypatch)
    refused(Reason.UNKNOWN_SENDER, lift)
    assert notices() == []  # a stranger gets no mail from IRMS (backscatter)


def test_another_users_address_is_refused_and_that_user_told(monkeypatch, lift, fred, fay):
    # fay replies with the address of fred's notification
    ingest_stdin(mail(to=replies.reply_address(lift, fred), sender=fay.email), monkeypatch)
    refused(Reason.UNKNOWN_SENDER, lift)
    (notice,) = notices()
    assert notice.to == fay.email and notice.reply_to == ""
    assert "only accepted from the address the notification was sent to" in notice.body_text


def test_forged_token_is_refused(monkeypatch, lift, fred):
    good = replies.reply_address(lift, fred)
    forged = good.replace(good.split("-")[-1][:5], "aaaaa")
    ingest_stdin(mail(to=forged, sender=fred.email), monkeypatch)
    refused(Reason.BAD_TOKEN, lift)
    (notice,) = notices()
    assert notice.to == fred.email and "not a valid IRMS reply address" in notice.body_text


def test_a_token_for_another_incident_is_refused(monkeypatch, lift, reporter, fred):
    other_incident = make_incident(reporter, title="Door jammed")
    token = replies.make_token(lift.pk, fred.pk)
    moved = replies._b36(other_incident.pk) + token[token.index("-") :]
    ingest_stdin(mail(to=REPLY_TO.replace("{token}", moved), sender=fred.email), monkeypatch)
    refused(Reason.BAD_TOKEN, lift)
    nothing_created(other_incident)


def test_expired_token_is_refused(monkeypatch, lift, fred):
    token = replies.make_token(lift.pk, fred.pk, day=replies._today() - 31)
    ingest_stdin(mail(to=REPLY_TO.replace("{token}", token), sender=fred.email), monkeypatch)
    record = refused(Reason.EXPIRED_TOKEN, lift)
    (notice,) = notices()
    assert "has expired" in notice.body_text and record.bounced_at is not None


def test_mail_to_no_reply_address_is_refused(monkeypatch, lift, fred):
    ingest_stdin(mail(to="irms@example.org", sender=fred.email), monkeypatch)
    refused(Reason.NO_TOKEN, lift)
    assert notices() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Auto-Submitted": "auto-generated; owner-email=fred@example.com"},
        {"Precedence": "bulk"},
        {"Precedence": "junk"},
        {"Precedence": "list"},
        {"X-Autoreply": "yes"},
        {"X-Autorespond": "Out of office"},
        {"List-Id": "<facilities.example.com>"},
    ],
)
def test_automatic_replies_are_refused_and_never_answered(monkeypatch, lift, fred, headers):
    raw = mail(to=replies.reply_address(lift, fred), sender=fred.email, body="I am out of the office.", headers=headers)
    ingest_stdin(raw, monkeypatch)
    refused(Reason.AUTO_REPLY, lift)
    assert notices() == []


def test_auto_submitted_no_is_a_person(monkeypatch, lift, fred):
    raw = mail(to=replies.reply_address(lift, fred), sender=fred.email, headers={"Auto-Submitted": "no"})
    ingest_stdin(raw, monkeypatch)
    assert Response.objects.filter(incident=lift, author=fred).count() == 1


def delivery_report(to: str, sender: str) -> bytes:
    report = EmailMessage()
    report["From"], report["To"], report["Subject"] = sender, to, "Undelivered Mail Returned to Sender"
    report["Message-ID"] = make_msgid()
    report.set_content("This is the mail system. I'm sorry to have to inform you ...")
    report.add_attachment("Reporting-MTA: dns; mx.example.com\n", subtype="delivery-status")
    report.replace_header("Content-Type", report["Content-Type"].replace("multipart/mixed", "multipart/report"))
    return report.as_bytes()


@pytest.mark.parametrize("kind", ["empty return path", "mailer-daemon", "postmaster", "report", "failed recipients"])
def test_bounces_are_refused_and_never_answered(monkeypatch, lift, fred, kind):
    to = replies.reply_address(lift, fred)
    raw = {
        "empty return path": mail(to=to, sender=fred.email, headers={"Return-Path": "<>"}),
        "mailer-daemon": mail(to=to, sender="MAILER-DAEMON@mx.example.com"),
        "postmaster": mail(to=to, sender="Mail Delivery System <postmaster@example.com>"),
        "report": delivery_report(to, fred.email),
        "failed recipients": mail(to=to, sender=fred.email, headers={"X-Failed-Recipients": "nobody@example.com"}),
    }[kind]
    ingest_stdin(raw, monkeypatch)
    refused(Reason.BOUNCE, lift)
    assert notices() == []


def test_a_reply_to_a_closed_incident_is_refused(monkeypatch, make_user, lift, fred):
    advance_to(lift, Status.CLOSED, by=make_staff(make_user))
    ingest_stdin(mail(to=replies.reply_address(lift, fred), sender=fred.email), monkeypatch)
    refused(Reason.CLOSED, lift)
    (notice,) = notices()
    assert "closed" in notice.body_text and lift.get_absolute_url() in notice.body_text


def test_a_user_who_may_no_longer_see_the_incident_is_refused(monkeypatch, reporter, facilities, fred):
    incident = make_incident(reporter, category=category_of(facilities), visibility=Visibility.PRIVATE)
    address = replies.reply_address(incident, fred)
    facilities.members.remove(fred)  # fred left the team: the private incident is hidden from him
    ingest_stdin(mail(to=address, sender=fred.email), monkeypatch)
    refused(Reason.NOT_ALLOWED, incident)
    (notice,) = notices()
    assert notice.to == fred.email
    assert incident.title not in notice.body_text and str(incident.incident_id) not in notice.body_text


def test_a_deactivated_user_is_refused_and_not_answered(monkeypatch, lift, fred):
    address = replies.reply_address(lift, fred)
    fred.is_active = False
    fred.save()
    ingest_stdin(mail(to=address, sender=fred.email), monkeypatch)
    refused(Reason.NOT_ALLOWED, lift)
    assert notices() == []


def test_a_reply_of_only_quoted_text_is_refused(monkeypatch, lift, fred):
    ingest_stdin(mail(to=replies.reply_address(lift, fred), sender=fred.email, body=""), monkeypatch)
    refused(Reason.EMPTY, lift)


def test_a_refused_attachment_refuses_the_whole_reply(monkeypatch, lift, fred):
    files = [("fine.txt", samples.TEXT, "text/plain"), ("page.html", b"<html><script>x()</script></html>", "text/html")]
    ingest_stdin(mail(to=replies.reply_address(lift, fred), sender=fred.email, files=files), monkeypatch)
    record = refused(Reason.INVALID, lift)
    assert "page.html" in record.detail
    (notice,) = notices()
    assert "page.html" in notice.body_text


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \x00" * 50,
        b"From: =?utf-8?b?broken?=\r\nTo: irms+%%%@example.org\r\nContent-Type: multipart/mixed\r\n\r\n--x",
        b"Content-Type: text/plain; charset=no-such-charset\r\nFrom: fred@example.com\r\n\r\n\xff\xfe",
    ],
)
def test_hostile_input_is_recorded_not_a_crash(monkeypatch, lift, raw):
    assert ingest_stdin(raw, monkeypatch).startswith("Refused")
    assert InboundMessage.objects.get().status == InboundMessage.Status.REFUSED
    nothing_created(lift)


def test_an_oversized_message_is_refused(monkeypatch, settings, lift, fred):
    settings.ATTACHMENT_MAX_FILES, settings.MAX_REQUEST_BODY_BYTES = 1, 1000
    settings.ATTACHMENT_MAX_BYTES = 3000
    big = [("big.txt", b"x" * 6000, "text/plain")]
    ingest_stdin(mail(to=replies.reply_address(lift, fred), sender=fred.email, files=big), monkeypatch)
    refused(Reason.INVALID, lift)


# --- Explanations: once an hour, to people only -------------------------------------------


def test_the_sender_is_told_at_most_once_an_hour(monkeypatch, make_user, lift, fred):
    advance_to(lift, Status.CLOSED, by=make_staff(make_user))
    address = replies.reply_address(lift, fred)
    for _ in range(3):
        ingest_stdin(mail(to=address, sender=fred.email), monkeypatch)
    assert len(notices()) == 1
    assert InboundMessage.objects.filter(status="refused").count() == 3

    # an hour later, the next refusal is explained again
    InboundMessage.objects.update(bounced_at=timezone.now() - timedelta(hours=1, seconds=1))
    ingest_stdin(mail(to=address, sender=fred.email), monkeypatch)
    assert len(notices()) == 2


def test_a_refusal_notice_is_itself_not_replyable(monkeypatch, run_tasks, mailoutbox, make_user, lift, fred):
    advance_to(lift, Status.CLOSED, by=make_staff(make_user))
    run_tasks()
    mailoutbox.clear()
    ingest_stdin(mail(to=replies.reply_address(lift, fred), sender=fred.email), monkeypatch)
    run_tasks()
    (notice,) = mailoutbox
    assert notice.to == [fred.email] and notice.reply_to == []
    assert notice.extra_headers["Auto-Submitted"] == "auto-generated"


# --- The admin -----------------------------------------------------------------------------


def test_staff_see_refused_messages_in_the_admin(monkeypatch, admin_client, lift, fred):
    ingest_stdin(mail(to=replies.reply_address(lift, fred), sender="mallory@evil.example", subject="Hi"), monkeypatch)
    ingest_stdin(mail(to=replies.reply_address(lift, fred), sender=fred.email), monkeypatch)

    page = admin_client.get("/admin/incidents/inboundmessage/?status__exact=refused")
    assert page.status_code == 200
    assert [row.sender for row in page.context["cl"].result_list] == ["mallory@evil.example"]
    record = InboundMessage.objects.get(status="refused")
    detail = admin_client.get(f"/admin/incidents/inboundmessage/{record.pk}/change/")
    assert detail.status_code == 200 and b"Not from the address the notification went to" in detail.content
    assert admin_client.post(f"/admin/incidents/inboundmessage/{record.pk}/delete/").status_code == 403


def test_the_envelope_recipient_given_by_the_mta_counts(monkeypatch, lift, fred):
    # fred's client sent the reply with IRMS in Bcc: only the MTA knows the address
    raw = mail(to="someone-else@example.com", sender=fred.email)
    ingest_stdin(raw, monkeypatch, "--recipient", replies.reply_address(lift, fred))
    assert Response.objects.filter(incident=lift, author=fred).count() == 1


# --- A real pipe, as an MTA runs the command ------------------------------------------------


def database_url() -> str:
    """The test database as a DATABASE_URL, for a `manage.py` run in another process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    return f"mysql://{quote(db['USER'], safe='')}{password}@{db['HOST']}:{db['PORT'] or 3306}/{db['NAME']}"


def run_manage(raw: bytes, database: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "irms_site.test_settings",
        "DATABASE_URL": database,
        "REPLY_TO_ADDRESS": REPLY_TO,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "mail_ingest"],
        input=raw,
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
def test_an_mta_piping_a_reply_to_the_command(lift, fred):
    done = run_manage(mail(to=replies.reply_address(lift, fred), sender=fred.email), database_url())
    assert (done.returncode, done.stdout.strip()) == (0, b"Accepted"), done.stderr
    assert Response.objects.get(incident=lift).author == fred
    # a refusal is recorded, so it is delivered too (exit 0): the MTA must not bounce it
    done = run_manage(mail(to=replies.reply_address(lift, fred), sender="mallory@evil.example"), database_url())
    assert (done.returncode, done.stdout.strip()) == (0, b"Refused: Not from the address the notification went to")


def test_a_database_outage_asks_the_mta_to_retry(tmp_path, lift, fred):
    done = run_manage(
        mail(to=replies.reply_address(lift, fred), sender=fred.email), f"sqlite:///{tmp_path}/no/db.sqlite3"
    )
    assert done.returncode == 75, done.stderr  # EX_TEMPFAIL: the MTA keeps the mail and retries
    assert b"database unavailable" in done.stderr


def test_files_stored_before_a_late_refusal_are_deleted(monkeypatch, lift, fred):
    # given: a refusal that comes after the files were stored (a rule checked last)
    def refuse(response):
        raise services.ValidationError({"description": "Refused at the last moment."})

    monkeypatch.setattr(services.events, "responded", refuse)
    files = [("sshd.log", samples.TEXT, "text/plain")]
    storage = attachment_storage()

    def stored() -> set[str]:
        return set(storage.listdir("attachments")[1]) if storage.exists("attachments") else set()

    before = stored()

    # when
    ingest_stdin(mail(to=replies.reply_address(lift, fred), sender=fred.email, files=files), monkeypatch)

    # then: refused, and no file left behind in storage
    assert refused(Reason.INVALID, lift).detail == "Refused at the last moment."
    assert stored() == before


@pytest.mark.django_db(transaction=True)
def test_two_refusals_at_once_make_one_notice(make_user, facilities, fred):
    incident = make_incident(make_user("ann"), category=category_of(facilities))
    advance_to(incident, Status.CLOSED, by=make_staff(make_user))
    raws = [mail(to=replies.reply_address(incident, fred), sender=fred.email, body=f"Try {n}") for n in range(4)]
    start = threading.Barrier(len(raws))

    def ingest(raw):
        try:
            start.wait()
            services.respond_by_mail(raw=raw, source="imap")
        finally:
            connection.close()

    threads = [threading.Thread(target=ingest, args=(raw,)) for raw in raws]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert InboundMessage.objects.filter(reason=Reason.CLOSED).count() == 4
    assert len(notices()) == 1
