"""The user model's e-mail rules and the username-or-e-mail backend."""

import pytest
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import RequestFactory

from accounts.models import User


def test_create_user_stores_email_trimmed_and_lower_cased(db, password):
    # when
    user = User.objects.create_user(username="bob", email="  Bob.Smith@Example.COM ", password=password)

    # then
    user.refresh_from_db()
    assert user.email == "bob.smith@example.com"


def test_database_refuses_an_existing_email_in_other_case(user, password):
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(username="bob", email="ALICE@Example.com", password=password)
    assert User.objects.count() == 1


def test_full_clean_reports_an_existing_email_in_other_case_on_the_field(user):
    # given
    bob = User(username="bob", email="Alice@EXAMPLE.com")
    bob.set_password("irrelevant-for-this-test")

    # when
    with pytest.raises(ValidationError) as refused:
        bob.full_clean()

    # then
    assert refused.value.message_dict["email"] == ["An account with this e-mail address already exists."]


def test_backend_prefers_a_username_match_over_an_email_match(make_user, password):
    # given: carol's address is also the username of another account
    make_user("carol", email="shared@example.com")
    lookalike = make_user("shared@example.com", email="other@example.com")

    # when
    signed_in = authenticate(
        RequestFactory().post("/accounts/login/"), username="shared@example.com", password=password
    )

    # then
    assert signed_in.pk == lookalike.pk
