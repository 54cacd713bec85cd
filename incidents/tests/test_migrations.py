"""Data migrations can be rolled back and replayed without losing anybody's role."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from incidents.models import RESPONDERS_GROUP

from .factories import make_responder


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_rolling_back_below_the_responders_migration_keeps_its_members(make_user):
    # given
    responder = make_responder(make_user, "rita")
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()

    # when: back below incidents/0002 and forward again
    migrate([("incidents", "0001_initial")])
    migrate(latest)

    # then
    assert list(Group.objects.get(name=RESPONDERS_GROUP).user_set.values_list("username", flat=True)) == [
        responder.username
    ]
