"""Concurrent PATCHes of one incident: each is decided under the row lock, against the
state the one before it left (an attack run found 200s that had applied nothing)."""

import threading

import pytest
from django.db import connection

from incidents.models import EventKind, IncidentEvent, Status

from .factories import api_client, make_incident, make_staff

pytestmark = pytest.mark.django_db(transaction=True)

MOVES = [Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED, Status.IN_PROGRESS]


def test_twenty_concurrent_patches_each_answer_what_they_did(make_user, reporter):
    # given: staff may make every workflow move, so only the workflow itself can refuse
    staff = make_staff(make_user)
    incident = make_incident(reporter)
    url = f"/api/incidents/{incident.incident_id}"
    asked = [MOVES[n % len(MOVES)] for n in range(20)]
    answers: list[tuple[str, int, dict]] = [None] * len(asked)
    start = threading.Barrier(len(asked))

    def patch(n):
        client = api_client(staff)
        try:
            start.wait()
            response = client.patch(url, {"status": asked[n]}, format="json")
            answers[n] = (asked[n], response.status_code, response.json())
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=patch, args=(n,)) for n in range(len(asked))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # then: the timeline is one valid chain of moves
    moves = list(
        IncidentEvent.objects.filter(incident=incident, kind=EventKind.STATUS_CHANGED)
        .order_by("created_at", "id")
        .values_list("old_value", "new_value")
    )
    assert moves, "some move was applied"
    chain = [Status.REPORTED] + [new for _, new in moves]
    assert [old for old, _ in moves] == chain[:-1]
    incident.refresh_from_db()
    assert incident.status == chain[-1]
    # each 200 shows the status it asked for, reached by a move on the timeline; every
    # refusal is a 409 (a move the workflow does not have from the state it found)
    assert all(answer is not None for answer in answers)
    for status, code, body in answers:
        assert code in (200, 409), (status, code, body)
        if code == 200:
            assert body["status"] == status
            assert status in chain[1:]
    assert sum(code == 200 for _, code, _ in answers) >= len(moves)
