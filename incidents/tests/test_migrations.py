"""Data migrations can be rolled back and replayed without losing anybody's role."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from incidents.models import DEFAULT_TEAM, Team

from .factories import make_responder


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_rolling_back_below_the_responders_migration_keeps_its_members(make_user):
    # given: a member of the response team (the Responders group of earlier versions)
    responder = make_responder(make_user, "rita")
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()

    # when: back below incidents/0002 (the team becomes the group again) and forward again
    migrate([("incidents", "0001_initial")])
    assert list(Group.objects.get(name="Responders").user_set.values_list("username", flat=True)) == ["rita"]
    migrate(latest)

    # then: the team has its member back, and the group is gone again
    team = Team.objects.get(slug=DEFAULT_TEAM)
    assert team.sees_all
    assert list(team.members.values_list("username", flat=True)) == [responder.username]
    assert not Group.objects.filter(name="Responders").exists()
