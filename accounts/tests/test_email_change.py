"""Changing one's e-mail address on the profile: it takes the current password (wrong ones
count toward the sign-in lockout), the current address is told, and the new one must be
confirmed by a link (once, before it expires, by the signed-in owner) before it counts."""

import re
import time

import pytest
from django.core import signing
from django.test import Client

from accounts import services
from accounts.models import User
from notifications.models import OutgoingEmail

NEW = "alice.new@example.org"
ADDRESS = "203.0.113.7"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def ask_for_change(client, password, email=NEW):
    return client.post(
        "/accounts/profile/",
        {"email": email, "current_password": password},
        REMOTE_ADDR=ADDRESS,
        HTTP_USER_AGENT=BROWSER,
    )


def mail_to(mailoutbox, address):
    (message,) = [message for message in mailoutbox if message.to == [address]]
    return message


def confirmation_link(mailoutbox, address=NEW) -> str:
    body = mail_to(mailoutbox, address).body
    return re.search(r"http://testserver(/accounts/profile/email/\S+/)", body).group(1)


def account_row(user) -> dict:
    return User.objects.filter(pk=user.pk).values().get()


def page(response) -> str:
    return response.content.decode()


@pytest.fixture
def link(user, password, mailoutbox, run_tasks):
    """alice has asked for NEW, and the confirmation mail has gone out: its link."""
    ask_for_change(signed_in(user), password)
    run_tasks()
    return confirmation_link(mailoutbox)


# --- Asking for the change -------------------------------------------------------------------


@pytest.mark.parametrize("given", [None, "", "not-the-password"], ids=["missing", "empty", "wrong"])
def test_the_current_password_is_required(user, given):
    # given
    client = signed_in(user)
    before = account_row(user)
    data = {"email": NEW} if given is None else {"email": NEW, "current_password": given}

    # when
    response = client.post("/accounts/profile/", data)

    # then
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["current_password"]
    assert account_row(user) == before
    assert not OutgoingEmail.objects.exists()


def test_wrong_passwords_on_the_profile_count_toward_the_lockout(user, password):
    # given: nine wrong passwords on the profile
    client = signed_in(user)
    for attempt in range(9):
        response = ask_for_change(client, f"wrong-{attempt}")
        assert response.status_code == 400

    # when: the tenth, then the right one
    tenth = ask_for_change(client, "wrong-9")
    right = ask_for_change(client, password)

    # then: locked out here and at the sign-in page, from that address; nothing changed
    assert tenth.status_code == right.status_code == 429
    assert "Too many failed sign-in attempts" in page(right)
    assert User.objects.get(pk=user.pk).email == "alice@example.com"
    assert not OutgoingEmail.objects.exists()
    sign_in = Client().post("/accounts/login/", {"username": "alice", "password": password}, REMOTE_ADDR=ADDRESS)
    assert sign_in.status_code == 429


def test_the_current_address_is_refused_as_a_new_one(user, password):
    # when
    response = ask_for_change(signed_in(user), password, email="Alice@Example.com")

    # then
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["email"]
    assert not OutgoingEmail.objects.exists()


def test_asking_changes_nothing_yet_and_mails_both_addresses(user, password, mailoutbox, run_tasks):
    # given
    client = signed_in(user)
    before = account_row(user)

    # when
    response = ask_for_change(client, password, email="Alice.New@Example.ORG")
    run_tasks()

    # then: the address is the old one until the new one is confirmed
    assert response.status_code == 302
    assert response["Location"] == "/accounts/profile/"
    assert account_row(user) == before
    assert sorted(message.to[0] for message in mailoutbox) == sorted(["alice@example.com", NEW])
    # the new address gets the link
    confirm = mail_to(mailoutbox, NEW)
    assert confirm.subject == "Confirm your new IRMS e-mail address"
    assert confirmation_link(mailoutbox) in confirm.alternatives[0][0]
    # the old one is told what, when, from where, and what to do if it wasn't them
    notice = mail_to(mailoutbox, "alice@example.com")
    assert notice.subject == "Your IRMS e-mail address is about to change"
    for detail in (NEW, ADDRESS, BROWSER, "http://testserver/accounts/password_reset/", "When:"):
        assert detail in notice.body


def test_until_confirmed_sign_in_and_reset_use_the_old_address(client, user, password, link, mailoutbox, run_tasks):
    # given: a change asked for, not confirmed (the `link` fixture)
    mailoutbox.clear()

    # when
    with_new = Client().post("/accounts/login/", {"username": NEW, "password": password})
    with_old = Client().post("/accounts/login/", {"username": "alice@example.com", "password": password})
    client.post("/accounts/password_reset/", {"email": NEW})
    client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    run_tasks()

    # then
    assert with_new.status_code == 400
    assert with_old.status_code == 302
    resets = [message.to for message in mailoutbox if message.subject == "Reset your IRMS password"]
    assert resets == [["alice@example.com"]]


def test_the_profile_shows_the_pending_change(user, password):
    # given
    client = signed_in(user)
    ask_for_change(client, password)

    # when
    profile = page(client.get("/accounts/profile/"))

    # then
    assert "Waiting for confirmation: <strong>alice.new@example.org</strong>" in profile
    assert "alice@example.com stays your address" in profile


# --- Confirming it -----------------------------------------------------------------------------


def test_the_link_shows_the_change_then_makes_it_once(user, link):
    # given
    client = signed_in(user)

    # when
    shown = client.get(link)
    email_after_showing = User.objects.get(pk=user.pk).email
    confirmed = client.post(link, follow=True)
    again = client.post(link)

    # then: opening the link (as a mail scanner would) changes nothing; the button does
    assert shown.status_code == 200
    assert NEW in page(shown)
    assert email_after_showing == "alice@example.com"
    assert confirmed.redirect_chain == [("/accounts/profile/", 302)]
    assert f"Your e-mail address is now {NEW}." in page(confirmed)
    assert "Waiting for confirmation" not in page(confirmed)
    assert User.objects.get(pk=user.pk).email == NEW
    assert again.status_code == 400
    assert "already been used" in page(again)
    assert User.objects.get(pk=user.pk).email == NEW


def test_after_the_change_sign_in_uses_the_new_address(user, password, link):
    # given
    signed_in(user).post(link)

    # when
    with_new = Client().post("/accounts/login/", {"username": NEW, "password": password})
    with_old = Client().post("/accounts/login/", {"username": "alice@example.com", "password": password})

    # then
    assert with_new.status_code == 302
    assert with_old.status_code == 400


def test_signed_out_the_link_asks_to_sign_in_then_confirms(client, user, password, link):
    # when
    asked = client.get(link)
    signed = client.post(asked["Location"], {"username": "alice", "password": password})
    shown = client.get(signed["Location"])
    confirmed = client.post(link)

    # then
    assert asked.status_code == 302
    assert asked["Location"].startswith("/accounts/login/?next=")
    assert signed["Location"] == link
    assert shown.status_code == 200
    assert confirmed.status_code == 302
    assert User.objects.get(pk=user.pk).email == NEW


@pytest.mark.parametrize(
    ("age_beyond_timeout", "accepted"),
    [pytest.param(-60, True, id="just-in-time"), pytest.param(60, False, id="expired")],
)
def test_the_link_expires(user, password, mailoutbox, run_tasks, monkeypatch, age_beyond_timeout, accepted):
    # given a link issued EMAIL_CHANGE_TIMEOUT + age_beyond_timeout seconds ago
    issued_at = int(time.time() - services.email_change_timeout().total_seconds() - age_beyond_timeout)
    client = signed_in(user)
    with monkeypatch.context() as past:
        past.setattr(signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(issued_at))
        ask_for_change(client, password)
    run_tasks()

    # when
    response = client.post(confirmation_link(mailoutbox))

    # then
    assert response.status_code == (302 if accepted else 400)
    assert User.objects.get(pk=user.pk).email == (NEW if accepted else "alice@example.com")
    if not accepted:
        assert "This link has expired" in page(response)


def test_the_timeout_is_a_setting(settings):
    # given
    settings.EMAIL_CHANGE_TIMEOUT = 3600

    # then
    assert services.email_change_timeout().total_seconds() == 3600


def tampered(link: str) -> str:
    token = link.split("/")[-2]
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    return link.replace(token, flipped)


@pytest.mark.parametrize(
    ("alter", "reason"),
    [
        pytest.param(tampered, "not valid", id="tampered"),
        pytest.param(lambda link: link[:-12] + "/", "not valid", id="cut-short"),
        pytest.param(lambda link: "/accounts/profile/email/not-a-token/", "not valid", id="garbage"),
    ],
)
def test_an_altered_link_is_refused(user, link, alter, reason):
    # given
    client = signed_in(user)
    before = account_row(user)

    # when
    shown = client.get(alter(link))
    posted = client.post(alter(link))

    # then
    assert shown.status_code == posted.status_code == 400
    assert reason in page(shown)
    assert "Your e-mail address has not changed" in page(posted)
    assert account_row(user) == before


def test_another_accounts_link_is_refused(user, make_user, link):
    # given: bob, signed in, opens alice's link
    bob = make_user("bob")
    client = signed_in(bob)
    before = [account_row(user), account_row(bob)]

    # when
    shown = client.get(link)
    posted = client.post(link)

    # then
    assert shown.status_code == posted.status_code == 400
    assert "This link is for another IRMS account" in page(posted)
    assert [account_row(user), account_row(bob)] == before


def test_the_link_is_refused_once_someone_else_has_the_address(user, make_user, link):
    # given: carol registered the address since
    make_user("carol", email=NEW)
    client = signed_in(user)

    # when
    shown = client.get(link)
    posted = client.post(link)

    # then
    assert shown.status_code == posted.status_code == 400
    assert "Another account now uses that e-mail address" in page(posted)
    assert User.objects.get(pk=user.pk).email == "alice@example.com"


def test_a_password_change_cancels_the_pending_change(user, password, link):
    # given
    client = signed_in(user)
    client.post(
        "/accounts/password_change/",
        {
            "old_password": password,
            "new_password1": "a-sturdy-new-passphrase-77",
            "new_password2": "a-sturdy-new-passphrase-77",
        },
    )

    # when
    response = client.post(link)

    # then
    assert response.status_code == 400
    assert User.objects.get(pk=user.pk).email == "alice@example.com"


def test_a_later_change_spends_an_earlier_link(user, password, mailoutbox, run_tasks):
    # given: two changes asked for; the second is confirmed
    client = signed_in(user)
    ask_for_change(client, password, email="first@example.org")
    ask_for_change(client, password, email="second@example.org")
    run_tasks()
    client.post(confirmation_link(mailoutbox, "second@example.org"))

    # when
    response = client.post(confirmation_link(mailoutbox, "first@example.org"))

    # then
    assert response.status_code == 400
    assert User.objects.get(pk=user.pk).email == "second@example.org"
