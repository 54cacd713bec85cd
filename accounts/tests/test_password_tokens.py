"""A password change ends the account's API token, whichever way the password changed: the
site's form, a reset link, the admin, `manage.py changepassword`. The token endpoint then
hands out a new token, never the old one (accounts.auth, User.set_password)."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token

from accounts.models import User

NEW_PASSWORD = "another-Strong-passphrase-77"


def token_for(username, password) -> str:
    """What POST /api/auth/token answers for these credentials (its 200, or the test fails)."""
    response = Client().post("/api/auth/token", {"username": username, "password": password}, "application/json")
    assert response.status_code == 200, response.content
    return response.json()["token"]


def api_answer(token) -> int:
    return Client().get("/api/incidents", HTTP_AUTHORIZATION=f"Token {token}").status_code


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_old_token_revoked_and_a_new_one_issued(old_token):
    assert api_answer(old_token) == 401
    new_token = token_for("alice", NEW_PASSWORD)
    assert new_token != old_token
    assert api_answer(new_token) == 200


def test_web_password_change_revokes_the_token_and_other_sessions(user, password):
    # given
    old_token = token_for("alice", password)
    this_session, other_session = signed_in(user), signed_in(user)

    # when
    response = this_session.post(
        "/accounts/password_change/",
        {"old_password": password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    # then
    assert response.status_code == 302
    assert not Token.objects.filter(user=user).exists()
    assert_old_token_revoked_and_a_new_one_issued(old_token)
    assert this_session.get("/dashboard/").status_code == 200
    assert other_session.get("/dashboard/").status_code == 302


def test_password_reset_by_mail_revokes_the_token(client, user, password, mailoutbox, run_tasks):
    # given: a token, and a reset asked for and mailed
    old_token = token_for("alice", password)
    client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    run_tasks()
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mailoutbox[-1].body).group(1)

    # when
    form_page = client.get(link, follow=True)
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    # then
    assert done.status_code == 302
    assert done["Location"] == "/accounts/reset/done/"
    assert not Token.objects.filter(user=user).exists()
    assert_old_token_revoked_and_a_new_one_issued(old_token)


def test_admin_password_change_revokes_the_token(user, password, make_user):
    # given
    old_token = token_for("alice", password)
    admin = signed_in(make_user("root", is_staff=True, is_superuser=True))

    # when
    response = admin.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    # then
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert_old_token_revoked_and_a_new_one_issued(old_token)


def test_changepassword_command_revokes_the_token(user, password, monkeypatch):
    # given
    old_token = token_for("alice", password)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)

    # when
    call_command("changepassword", "alice", stdout=StringIO())

    # then
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert_old_token_revoked_and_a_new_one_issued(old_token)


def test_a_revoked_token_gets_the_same_answer_as_an_unknown_one(user, password):
    # given
    old_token = token_for("alice", password)
    user.set_password(NEW_PASSWORD)
    user.save()

    # when
    revoked = Client().get("/api/incidents", HTTP_AUTHORIZATION=f"Token {old_token}")
    unknown = Client().get("/api/incidents", HTTP_AUTHORIZATION=f"Token {'0' * 40}")

    # then
    assert revoked.status_code == unknown.status_code == 401
    assert revoked.json()["error"] == unknown.json()["error"]
    assert revoked["WWW-Authenticate"] == unknown["WWW-Authenticate"] == "Token"


def test_a_password_never_changed_keeps_its_token(user, password):
    # given: an account as it was before password_changed_at existed (migrated: null)
    User.objects.filter(pk=user.pk).update(password_changed_at=None)
    token = token_for("alice", password)

    # when
    again = token_for("alice", password)

    # then
    assert again == token
    assert api_answer(token) == 200


def test_only_a_password_change_stamps_the_account(user, password):
    # given
    user.refresh_from_db()
    assert user.password_changed_at is None  # create_user is not a change

    # when
    signed_in(user).post(
        "/accounts/password_change/",
        {"old_password": password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    # then
    user.refresh_from_db()
    assert user.password_changed_at is not None


@pytest.mark.parametrize("action", ["create", "regenerate"])
def test_the_profile_replaces_a_token_the_password_outlived(user, password, action):
    # given: a token issued before a password change made in the admin
    old_token = token_for("alice", password)
    user.set_password(NEW_PASSWORD)
    user.save()
    client = signed_in(user)
    profile = client.get("/accounts/profile/").content.decode()

    # when
    client.post("/accounts/profile/token/", {"action": action})

    # then: the dead token was never shown, and the new one works
    assert old_token not in profile
    assert "You have no API token." in profile
    new_token = Token.objects.get(user=user).key
    assert new_token != old_token
    assert api_answer(new_token) == 200


def test_the_profile_says_a_password_change_revokes_the_token(user):
    # when
    page = signed_in(user).get("/accounts/profile/").content.decode()

    # then
    assert "Changing or resetting your password signs out your other sessions and revokes your API token." in page
