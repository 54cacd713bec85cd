"""Account pages and site-wide access rules, through the test client."""

import re
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.test import Client, RequestFactory
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import User
from incidents.tests.factories import make_incident
from notifications.models import OutgoingEmail
from notifications.tests.mailbox import by_recipient, html_of, post_form

PASSWORD = "correct-horse-battery-42"  # the root conftest's password for every user
NEW_PASSWORD = "another-Strong-passphrase-77"


def signed_in_user(client):
    """The account the client's session belongs to (AnonymousUser when signed out)."""
    return get_user(client)


def rendered_form_errors(response):
    """The error box the sign-in page shows above its fields."""
    found = re.search(r'<div class="alert alert-block alert-danger">.*?</div>', response.content.decode(), re.S)
    return found.group(0) if found else ""


def registration(**overrides):
    data = {
        "username": "carol",
        "email": "carol@example.com",
        "password1": "correct-horse-battery-42",
        "password2": "correct-horse-battery-42",
    }
    data.update(overrides)
    return data


# --- Registration ---------------------------------------------------------------------


def test_register_creates_account_signs_in_and_lower_cases_email(client, db):
    # given
    data = registration(email="Carol.Smith@Example.COM")

    # when
    response = client.post("/accounts/register/", data)

    # then
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    carol = User.objects.get(username="carol")
    assert carol.email == "carol.smith@example.com"
    assert carol.check_password(data["password1"])
    assert signed_in_user(client).pk == carol.pk


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"username": "alice"}, "username", id="duplicate-username"),
        pytest.param({"username": "ALICE"}, "username", id="duplicate-username-other-case"),
        pytest.param({"email": "ALICE@Example.com"}, "email", id="duplicate-email-other-case"),
        pytest.param({"password2": "correct-horse-battery-43"}, "password2", id="passwords-differ"),
        pytest.param({"password1": "123", "password2": "123"}, "password2", id="weak-numeric-short"),
        pytest.param({"password1": "password", "password2": "password"}, "password2", id="weak-common"),
        pytest.param({"email": "not-an-address"}, "email", id="invalid-email"),
    ],
)
def test_register_refuses_invalid_input_with_error_on_the_field(client, user, overrides, field):
    # given
    users_before = User.objects.count()

    # when
    response = client.post("/accounts/register/", registration(**overrides))

    # then
    assert response.status_code == 400
    assert list(response.context["form"].errors) == [field]
    assert User.objects.count() == users_before
    assert not signed_in_user(client).is_authenticated


def test_register_and_sign_in_both_strip_spaces_around_username(client, db, password):
    # given
    client.post("/accounts/register/", registration(username="  carol "))
    client.post("/accounts/logout/")

    # when
    response = client.post("/accounts/login/", {"username": " carol  ", "password": password})

    # then
    assert User.objects.filter(username="carol").exists()
    assert response.status_code == 302
    assert signed_in_user(client).username == "carol"


# --- Sign in --------------------------------------------------------------------------


def test_sign_in_with_username(client, user, password):
    # when
    response = client.post("/accounts/login/", {"username": "alice", "password": password})

    # then
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert signed_in_user(client).pk == user.pk


def test_sign_in_with_email_in_any_case(client, user, password):
    # when
    response = client.post("/accounts/login/", {"username": "ALICE@Example.COM", "password": password})

    # then
    assert response.status_code == 302
    assert signed_in_user(client).pk == user.pk


def test_wrong_password_and_unknown_user_get_the_same_error(client, user, password):
    # when
    wrong_password = client.post("/accounts/login/", {"username": "alice", "password": password + "x"})
    unknown_user = client.post("/accounts/login/", {"username": "nobody", "password": password})

    # then
    errors = wrong_password.context["form"].non_field_errors()
    assert errors
    assert unknown_user.context["form"].non_field_errors() == errors
    shown = rendered_form_errors(wrong_password)
    assert errors[0] in shown
    assert rendered_form_errors(unknown_user) == shown
    assert not signed_in_user(client).is_authenticated


def test_inactive_user_cannot_sign_in(client, make_user, password):
    # given
    make_user("dora", is_active=False)

    # when
    response = client.post("/accounts/login/", {"username": "dora", "password": password})

    # then
    assert response.status_code == 400
    assert response.context["form"].non_field_errors()
    assert not signed_in_user(client).is_authenticated


def test_sign_in_follows_a_local_next(client, user, password):
    # when
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": password, "next": "/accounts/profile/"}
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == "/accounts/profile/"


def test_sign_in_ignores_an_external_next(client, user, password):
    # when
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": password, "next": "https://evil.example/"}
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert signed_in_user(client).pk == user.pk


# --- Sign out -------------------------------------------------------------------------


def test_sign_out_get_asks_for_confirmation_and_keeps_the_session(client, user):
    # given
    client.force_login(user)

    # when
    response = client.get("/accounts/logout/")

    # then
    assert response.status_code == 200
    assert re.search(r'<form method="post" action="/accounts/logout/">', response.content.decode())
    assert signed_in_user(client).pk == user.pk


def test_sign_out_post_signs_out_and_goes_home(client, user):
    # given
    client.force_login(user)

    # when
    response = client.post("/accounts/logout/")

    # then
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert not signed_in_user(client).is_authenticated


def test_sign_out_page_answers_anonymous_visitors(client, db):
    # when
    response = client.get("/accounts/logout/")

    # then
    assert response.status_code == 200
    assert "You are not signed in" in response.content.decode()


# --- Password reset -------------------------------------------------------------------


def test_password_reset_end_to_end_and_link_works_once(client, user, mailoutbox, run_tasks):
    # given
    client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert mailoutbox == []  # queued, not sent inside the request
    run_tasks()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["alice@example.com"]
    link = re.search(r"http://testserver/accounts/reset/\S+/", mailoutbox[0].body).group(0)
    link_path = link.removeprefix("http://testserver")

    # when
    form_page = client.get(link_path, follow=True)
    set_password_url = form_page.redirect_chain[-1][0]
    done = client.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    second_use = client.get(link_path)

    # then
    assert form_page.context["validlink"] is True
    assert done.status_code == 302
    assert done["Location"] == "/accounts/reset/done/"
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert client.login(request=RequestFactory().post("/accounts/login/"), username="alice", password=NEW_PASSWORD)
    assert second_use.status_code == 200
    assert second_use.context["validlink"] is False
    assert "This link no longer works" in second_use.content.decode()


def test_password_reset_for_unknown_address_looks_the_same_and_sends_nothing(client, user, mailoutbox, run_tasks):
    # when
    known = client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    run_tasks()
    mailoutbox.clear()
    unknown = client.post("/accounts/password_reset/", {"email": "nobody@example.com"})
    run_tasks()

    # then
    assert unknown.status_code == known.status_code == 302
    assert unknown["Location"] == known["Location"] == "/accounts/password_reset/done/"
    assert mailoutbox == []


@pytest.mark.parametrize(
    ("age_beyond_timeout", "accepted"),
    [pytest.param(-60, True, id="just-in-time"), pytest.param(60, False, id="expired")],
)
def test_password_reset_link_expires_after_the_timeout(client, user, password, age_beyond_timeout, accepted):
    # given a link issued PASSWORD_RESET_TIMEOUT + age_beyond_timeout seconds ago
    issued_at = datetime.now() - timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + age_beyond_timeout)

    class IssuedEarlier(PasswordResetTokenGenerator):
        def _now(self):
            return issued_at

    token = IssuedEarlier().make_token(user)
    uid = urlsafe_base64_encode(force_bytes(user.pk))

    # when
    response = client.get(f"/accounts/reset/{uid}/{token}/", follow=True)
    if accepted:
        client.post(response.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    # then
    assert response.context["validlink"] is accepted
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD if accepted else password)


# --- Password change and profile ------------------------------------------------------


def test_password_change_keeps_the_user_signed_in(client, user, password):
    # given
    client.force_login(user)

    # when
    response = client.post(
        "/accounts/password_change/",
        {"old_password": password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == "/accounts/profile/"
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert signed_in_user(client).pk == user.pk
    assert client.get("/dashboard/").status_code == 200


def test_profile_changes_email_in_lower_case(client, user, password, mailoutbox, run_tasks):
    # given
    client.force_login(user)

    # when: the change is asked for, then confirmed by the link sent to the new address
    response = client.post("/accounts/profile/", {"email": "Alice.New@Example.COM", "current_password": password})
    run_tasks()
    confirmation = next(message for message in mailoutbox if message.to == ["alice.new@example.com"])
    link = re.search(r"http://testserver(/accounts/profile/email/\S+/)", confirmation.body).group(1)
    client.post(link)

    # then
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email == "alice.new@example.com"


def test_profile_refuses_another_users_email_in_other_case(client, user, make_user, password):
    # given
    make_user("bob")
    client.force_login(user)

    # when
    response = client.post("/accounts/profile/", {"email": "BOB@Example.com", "current_password": password})

    # then
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["email"]
    user.refresh_from_db()
    assert user.email == "alice@example.com"
    assert User.objects.get(username="bob").email == "bob@example.com"


# --- Deny by default ------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/dashboard/", "/accounts/profile/"])
def test_private_pages_send_anonymous_visitors_to_sign_in(client, db, url):
    # when
    response = client.get(url)

    # then
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


@pytest.mark.parametrize(
    "url",
    ["/", "/accounts/login/", "/accounts/register/", "/accounts/password_reset/", "/healthz", "/static/css/irms.css"],
)
def test_public_pages_answer_anonymous_visitors(client, db, url):
    # when
    response = client.get(url)

    # then
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body


def test_admin_sends_anonymous_visitors_to_admin_sign_in(client, db):
    # when
    response = client.get("/admin/", follow=True)

    # then
    assert response.redirect_chain == [("/admin/login/?next=/admin/", 302)]
    assert response.status_code == 200


# --- Original paths -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/register", "/accounts/register/"),
        ("/login", "/accounts/login/"),
        ("/logout", "/accounts/logout/"),
        ("/forgot_password", "/accounts/password_reset/"),
        ("/dashboard", "/dashboard/"),
    ],
)
def test_original_paths_redirect_permanently(client, db, old, new):
    # when
    response = client.get(old)

    # then
    assert response.status_code == 301
    assert response["Location"] == new


# --- Error pages and CSRF -------------------------------------------------------------


def test_unknown_url_shows_the_site_404_page(client, user):
    # given
    client.force_login(user)

    # when
    response = client.get("/no-such-page/")

    # then
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body
    assert 'href="/"' in body


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/accounts/login/", {"username": "alice", "password": "correct-horse-battery-42"}),
        ("/accounts/register/", registration()),
    ],
)
def test_post_without_csrf_token_is_refused(db, user, url, data):
    # given
    client = Client(enforce_csrf_checks=True)
    users_before = User.objects.count()

    # when
    response = client.post(url, data)

    # then
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert User.objects.count() == users_before
    assert not signed_in_user(client).is_authenticated


def test_post_with_csrf_token_is_accepted(db):
    # given
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/register/")
    token = client.cookies[settings.CSRF_COOKIE_NAME].value

    # when
    response = client.post("/accounts/register/", registration(csrfmiddlewaretoken=token))

    # then
    assert response.status_code == 302
    assert User.objects.filter(username="carol").exists()


# --- No account enumeration ----------------------------------------------------------


def test_sign_in_error_is_the_same_for_an_unknown_account_and_a_wrong_password(client, reporter):
    # when
    wrong_password = client.post("/accounts/login/", {"username": "alice", "password": "not-the-password"})
    unknown_user = client.post("/accounts/login/", {"username": "nobody", "password": "not-the-password"})
    unknown_email = client.post("/accounts/login/", {"username": "nobody@example.com", "password": "not-the-password"})

    # then
    errors = [response.context["form"].errors for response in (wrong_password, unknown_user, unknown_email)]
    assert wrong_password.status_code == unknown_user.status_code == unknown_email.status_code
    assert errors[0] == errors[1] == errors[2]
    assert "do not match an account" in str(errors[0])


def test_password_reset_answers_the_same_for_known_and_unknown_addresses(client, reporter):
    # when
    known = client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    unknown = client.post("/accounts/password_reset/", {"email": "nobody@example.com"})

    # then
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == "/accounts/password_reset/done/"
    # The mail goes only to the real account, queued: neither answer waits on SMTP.
    assert list(OutgoingEmail.objects.filter(kind="password_reset").values_list("to", flat=True)) == [
        "alice@example.com"
    ]


# --- Mail: the welcome, the reset link, the preferences -----------------------------------

PREFERENCES = (
    "email_on_sign_in",
    "email_on_my_report",
    "email_on_new_incident",
    "email_on_response",
    "email_on_status_change",
)


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
