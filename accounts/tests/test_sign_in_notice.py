"""One sign-in notice per successful sign-in, whichever door: the site, the admin, the
API's token endpoint (all queued by `accounts.services.record_sign_in`)."""

import pytest
from django.test import Client

from notifications.models import OutgoingEmail


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
