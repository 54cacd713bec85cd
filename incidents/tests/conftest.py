"""Fixtures for the incident tests: one user per role and an incident of each visibility.

Users come from the root conftest's `make_user`; incidents from `factories.make_incident`.
Note the root `user` fixture is also named alice: use `reporter` here, not both.
"""

import pytest
from django.contrib.auth.models import AnonymousUser

from incidents.models import Visibility

from .factories import make_incident, make_responder, make_staff


@pytest.fixture
def reporter(make_user):
    """A signed-in user with no special role; reports `public_incident` and `private_incident`."""
    return make_user("alice")


@pytest.fixture
def other(make_user):
    """Another signed-in user with no special role, who reported neither incident."""
    return make_user("bob")


@pytest.fixture
def responder(make_user):
    """A member of the Responders group (not staff)."""
    return make_responder(make_user, "rita")


@pytest.fixture
def staff(make_user):
    """A staff user (not a superuser)."""
    return make_staff(make_user, "sam")


@pytest.fixture
def anonymous():
    return AnonymousUser()


@pytest.fixture
def inactive(make_user):
    """A deactivated account that was staff and a responder: being inactive must outweigh both."""
    return make_responder(make_user, "ivan", is_staff=True, is_active=False)


@pytest.fixture
def public_incident(reporter):
    return make_incident(reporter, title="Printer on fire")


@pytest.fixture
def private_incident(reporter):
    return make_incident(reporter, title="Badge lost in the car park", visibility=Visibility.PRIVATE)
