"""The team tests' cast: three teams and their people (the role fixtures are the root
conftest's)."""

import os

import pytest

from .factories import category_of, make_incident, make_team


@pytest.fixture
def fay(make_user):
    return make_user("fay")


@pytest.fixture
def fred(make_user):
    return make_user("fred")


@pytest.fixture
def ian(make_user):
    return make_user("ian")


@pytest.fixture
def sue(make_user):
    return make_user("sue")


@pytest.fixture
def facilities(fay, fred):
    """fay (lead) and fred; category `facilities-issues`."""
    return make_team("facilities", members=[fred], leads=[fay])


@pytest.fixture
def helpdesk(ian):
    """ian; category `helpdesk-issues`."""
    return make_team("helpdesk", members=[ian])


@pytest.fixture
def security(sue):
    """sue; a team that sees and works every incident."""
    return make_team("security", members=[sue], sees_all=True)


@pytest.fixture
def lift(reporter, facilities, helpdesk):
    """A public incident of Facilities (Helpdesk exists too)."""
    return make_incident(reporter, title="Lift stuck", category=category_of(facilities))


# Needs the MySQL driver and starts MariaDB servers of its own: part of the suite's
# MariaDB pass (DATABASE_URL=mysql://...), where the driver is installed; the SQLite pass
# installs no driver.
collect_ignore = [] if os.environ.get("DATABASE_URL", "").startswith("mysql") else ["test_replica_live.py"]
