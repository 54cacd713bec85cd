"""Webhooks delivered by real `mail_worker` processes to a real HTTP receiver on loopback:
a receiver down then up gets the message exactly once, and two workers at once deliver
every message once, each incident's in the order its events happened."""

import json
import time

import pytest

from incidents import services
from incidents.models import Severity, Status, WebhookEndpoint
from notifications.models import OutboxMessage, WebhookDelivery

# The real-worker fixtures live with the outbox's own process tests.
from notifications.tests.conftest import shared_database, smtp_sink, wait_for, workers  # noqa: F401
from notifications.tests.receiver import free_port, receiving

from .factories import make_incident, make_responder

pytestmark = pytest.mark.django_db(transaction=True)
State = OutboxMessage.State


@pytest.fixture
def worker_env(monkeypatch):
    """What the worker processes read from the environment: the receiver is on loopback."""
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("WEBHOOK_TIMEOUT", "2")


def test_receiver_down_then_up_gets_it_exactly_once(workers, worker_env, reporter):  # noqa: F811
    port = free_port()
    hook = WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{port}/hook", description="down then up")
    make_incident(reporter)
    (row,) = WebhookDelivery.objects.filter(destination=hook.key)
    with smtp_sink() as (_sink, smtp_port):
        workers.start(smtp_port, "w1")
        wait_for(
            lambda: WebhookDelivery.objects.filter(pk=row.pk, attempts=1, state=State.QUEUED).exists(),
            timeout=20,
            what="the first attempt to fail",
        )
        row.refresh_from_db()
        assert row.state == State.QUEUED and "ConnectionRefusedError" in row.last_error
        with receiving(port=port) as receiver:
            # The first retry is due 15 s after the failure.
            wait_for(lambda: receiver.received, timeout=40, what="the retry")
            time.sleep(2)  # nothing else arrives
        workers.stop_all()
    assert len(receiver.received) == 1
    assert receiver.received[0].headers["webhook-id"] == row.webhook_id
    row.refresh_from_db()
    assert (row.state, row.attempts) == (State.SENT, 2)
    assert WebhookEndpoint.objects.get(pk=hook.pk).consecutive_failures == 0


def test_two_workers_deliver_each_message_once_in_order_per_incident(
    workers,  # noqa: F811
    worker_env,
    reporter,
    make_user,
):
    responder = make_responder(make_user, "rita")
    with receiving() as receiver:
        WebhookEndpoint.objects.create(url=receiver.url, description="two workers")
        incidents = [make_incident(reporter, title=f"Leak {n}") for n in range(4)]
        for incident in incidents:
            services.change_severity(incident=incident, actor=responder, severity=Severity.HIGH)
            services.change_status(incident=incident, actor=responder, status=Status.ACKNOWLEDGED)
        expected = WebhookDelivery.objects.count()
        assert expected == 12
        with smtp_sink() as (_sink, smtp_port):
            workers.start(smtp_port, "w1")
            workers.start(smtp_port, "w2")
            wait_for(
                lambda: WebhookDelivery.objects.filter(state=State.SENT).count() == expected,
                timeout=60,
                what="every delivery",
            )
            time.sleep(1)
            workers.stop_all()
    ids = [received.headers["webhook-id"] for received in receiver.received]
    assert len(ids) == len(set(ids)) == expected
    per_incident = {}
    for received in receiver.received:
        body = json.loads(received.body)
        per_incident.setdefault(body["data"]["incident"]["incident_id"], []).append(body["type"])
    assert per_incident == {
        str(incident.incident_id): ["incident.reported", "incident.severity_changed", "incident.status_changed"]
        for incident in incidents
    }
