"""One sign-in notice per successful sign-in, whichever door: the site, the admin, the
API's token endpoint (all queued by `accounts.services.record_sign_in`)."""

import pytest
from django.test import Client

from notifications.models import OutgoingEmail
from notifications.tests.mailbox import html_of, post_form

PASSWORD = "correct-horse-battery-42"  # the root conftest's password for every user


def sign_in_by_site(user, password):
    return Client().post("/accounts/login/", {"username": user.username, "password": password})


def sign_in_by_admin(user, password):
    return Client().post("/admin/login/?next=/admin/", {"username": user.username, "password": password})


def sign_in_by_token(user, password):
    return Client().post(
        "/api/auth/token", {"username": user.email, "password": password}, content_type="application/json"
    )


DOORS = [
    pytest.param(sign_in_by_site, 302, id="site"),
    pytest.param(sign_in_by_admin, 302, id="admin"),
    pytest.param(sign_in_by_token, 200, id="token"),
]


@pytest.mark.parametrize(("sign_in", "status"), DOORS)
def test_each_door_queues_one_sign_in_notice(make_user, password, sign_in, status):
    # given
    user = make_user("sam", is_staff=True)

    # when
    response = sign_in(user, password)

    # then
    assert response.status_code == status
    notices = OutgoingEmail.objects.filter(kind="sign_in")
    assert [(notice.to, notice.state) for notice in notices] == [(user.email, "queued")]


@pytest.mark.parametrize(("sign_in", "status"), DOORS)
def test_a_failed_sign_in_queues_no_notice(make_user, sign_in, status):
    # given
    user = make_user("sam", is_staff=True)

    # when
    response = sign_in(user, "not-the-password")

    # then
    assert response.status_code != status
    assert not OutgoingEmail.objects.filter(kind="sign_in").exists()


@pytest.mark.parametrize(("sign_in", "status"), DOORS)
def test_no_notice_for_someone_who_turned_them_off(make_user, password, sign_in, status):
    # given
    user = make_user("sam", is_staff=True, email_on_sign_in=False)

    # when
    response = sign_in(user, password)

    # then
    assert response.status_code == status
    assert not OutgoingEmail.objects.filter(kind="sign_in").exists()


# --- What the notice says, and when there is none -----------------------------------------

IP = "203.0.113.9"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) IRMS-Test/1.0"


def sign_in_by_web_form(client, user):
    response = post_form(
        client,
        "/accounts/login/",
        {"username": user.username, "password": PASSWORD},
        REMOTE_ADDR=IP,
        HTTP_USER_AGENT=BROWSER,
    )
    assert response.status_code == 302
    return response


def sign_in_by_api_token(client, user):
    response = client.post(
        "/api/auth/token",
        {"username": user.username, "password": PASSWORD},
        content_type="application/json",
        REMOTE_ADDR=IP,
        HTTP_USER_AGENT=BROWSER,
    )
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("sign_in", [sign_in_by_web_form, sign_in_by_api_token], ids=["web", "token"])
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


@pytest.mark.parametrize("sign_in", [sign_in_by_web_form, sign_in_by_api_token], ids=["web", "token"])
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
