"""Fixtures shared by every app's tests."""

import pytest

from accounts.models import User

PASSWORD = "correct-horse-battery-42"


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def make_user(db):
    def make(username="alice", email=None, **extra):
        return User.objects.create_user(
            username=username, email=email or f"{username}@example.com", password=PASSWORD, **extra
        )

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")
