"""The webhook channel against a real HTTP receiver on loopback: signatures (checked with
the standardwebhooks package and with plain HMAC per the spec), retries, timeouts,
redirects, the SSRF rules and per-group order. The destinations are this module's own
(settings.WEBHOOK_DESTINATIONS points here): the channel knows no domain app."""

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notifications import delivery, outbox, webhooks
from notifications.models import OutboxMessage, WebhookAttempt, WebhookDelivery
from notifications.tests.receiver import Answer, free_port, receiving

State = OutboxMessage.State
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()


class FakeDestinations:
    """Destinations for these tests: key -> secrets; records each attempt's result."""

    def __init__(self):
        self.known = {"dest:1": [SECRET]}
        self.results = []

    def secrets(self, key):
        return self.known.get(key)

    def attempted(self, key, *, ok):
        self.results.append((key, ok))


known = FakeDestinations()


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.WEBHOOK_DESTINATIONS = f"{__name__}.known"
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.WEBHOOK_TIMEOUT = 10
    known.__init__()
    return settings


def queue(url, *, body=None, ordering_key="", destination="dest:1", event="incident.reported"):
    return outbox.queue_webhook(
        event=event,
        destination=destination,
        url=url,
        body=body or json.dumps({"type": event, "n": 1}),
        ordering_key=ordering_key,
    )


def make_due():
    """Make every waiting task due now (the retry delays are real minutes)."""
    DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(run_after=timezone.now() - timedelta(seconds=1))


def plain_hmac_ok(secret: str, received) -> bool:
    """The spec's check written out: HMAC-SHA256 over "id.timestamp.body" with the
    base64-decoded key after `whsec_`, base64, compared to each `v1,` signature."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}.".encode() + received.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1)[1] for part in received.headers["webhook-signature"].split(" ")]
    return any(hmac.compare_digest(expected, signature) for signature in offered)


# --- The retry schedule ------------------------------------------------------------------------


def test_the_retry_schedule_meets_the_issue():
    assert delivery.RETRY_DELAYS[0] <= timedelta(seconds=30)
    assert delivery.MAX_ATTEMPTS >= 8
    assert sum(delivery.RETRY_DELAYS, timedelta()) >= timedelta(hours=1)


# --- Delivery and signatures ---------------------------------------------------------------------


def test_a_delivery_is_posted_once_and_signed(run_tasks):
    with receiving() as receiver:
        row = queue(receiver.url, body='{"type":"incident.reported","data":{"x":"é"}}')
        run_tasks()
        run_tasks()
    (received,) = receiver.received
    assert received.path == "/hook"
    assert received.body == '{"type":"incident.reported","data":{"x":"é"}}'.encode()
    assert received.headers["content-type"] == "application/json"
    assert received.headers["webhook-id"] == row.webhook_id
    assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 60
    # The maintained library and the spec by hand agree.
    assert Webhook(SECRET).verify(received.body, received.headers) == {"type": "incident.reported", "data": {"x": "é"}}
    assert plain_hmac_ok(SECRET, received)
    assert not plain_hmac_ok(OLD_SECRET, received)
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_status_code) == (State.SENT, 1, 204)
    (attempt,) = WebhookAttempt.objects.filter(delivery=row)
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 204, "")
    assert known.results == [("dest:1", True)]


def test_every_signature_is_sent_and_each_secret_verifies(run_tasks):
    known.known["dest:1"] = [SECRET, OLD_SECRET]
    with receiving() as receiver:
        queue(receiver.url)
        run_tasks()
    (received,) = receiver.received
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, OLD_SECRET):
        Webhook(secret).verify(received.body, received.headers)
        assert plain_hmac_ok(secret, received)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(received.body, received.headers)


def test_receiver_down_then_up_gets_it_exactly_once(run_tasks):
    port = free_port()
    row = queue(f"http://127.0.0.1:{port}/hook")
    run_tasks()  # nobody listens: connection refused
    row.refresh_from_db()
    assert row.state == State.QUEUED and row.attempts == 1
    assert "ConnectionRefusedError" in row.last_error
    assert row.next_attempt_at - timezone.now() <= timedelta(seconds=30)
    with receiving(port=port) as receiver:
        make_due()
        run_tasks()
        make_due()
        run_tasks()
    assert len(receiver.received) == 1
    row.refresh_from_db()
    assert (row.state, row.attempts) == (State.SENT, 2)
    assert known.results == [("dest:1", False), ("dest:1", True)]
    # The same message both times: a receiver that saw it already can tell.
    assert receiver.received[0].headers["webhook-id"] == row.webhook_id


@pytest.mark.parametrize("status", [500, 404, 429, 301])
def test_any_non_2xx_is_a_failure_retried(run_tasks, status):
    with receiving(Answer(status=status, body=b"nope"), Answer(status=200)) as receiver:
        row = queue(receiver.url)
        run_tasks()
        row.refresh_from_db()
        assert row.state == State.QUEUED and row.last_status_code == status
        attempt = WebhookAttempt.objects.get(delivery=row)
        assert (attempt.status_code, attempt.response_excerpt) == (status, "nope")
        make_due()
        run_tasks()
    row.refresh_from_db()
    assert row.state == State.SENT and len(receiver.received) == 2


def test_a_slow_receiver_times_out_and_is_tried_again(run_tasks, settings):
    settings.WEBHOOK_TIMEOUT = 1
    with receiving(Answer(delay=3), Answer()) as receiver:
        row = queue(receiver.url)
        started = time.monotonic()
        run_tasks()
        assert time.monotonic() - started < 2.5
        row.refresh_from_db()
        assert row.state == State.QUEUED and row.last_error.startswith("TimeoutError")
        make_due()
        run_tasks()
    row.refresh_from_db()
    assert row.state == State.SENT and row.attempts == 2


def test_the_timeout_bounds_the_whole_attempt():
    """A receiver that answers its headers quickly but trickles the body still ends the
    attempt at the timeout (not per read)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def trickle():
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(30):
            try:
                connection.sendall(b"x")
            except OSError:
                break
            time.sleep(0.3)
        connection.close()

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    with override_settings(WEBHOOK_TIMEOUT=1, WEBHOOK_ALLOW_HTTP=True, WEBHOOK_ALLOW_PRIVATE=True):
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            webhooks.post(f"http://127.0.0.1:{port}/", b"{}", {})
        assert time.monotonic() - started < 2
    listener.close()


def test_redirects_are_not_followed(run_tasks):
    with receiving() as elsewhere, receiving(Answer(status=302, location=elsewhere.url)) as receiver:
        row = queue(receiver.url)
        run_tasks()
    assert len(receiver.received) == 1 and elsewhere.received == []
    row.refresh_from_db()
    assert row.state == State.QUEUED and row.last_status_code == 302
    assert "302" in row.last_error


def test_a_disabled_or_gone_destination_is_given_up_without_a_request(run_tasks):
    with receiving() as receiver:
        row = queue(receiver.url, destination="dest:gone")
        run_tasks()
    assert receiver.connections == 0
    row.refresh_from_db()
    assert row.state == State.FAILED and "disabled or gone" in row.last_error
    assert known.results == []


def test_after_the_last_attempt_it_is_given_up(run_tasks):
    with receiving(Answer(status=503)) as receiver:
        row = queue(receiver.url)
        for _ in range(delivery.MAX_ATTEMPTS + 2):
            make_due()
            run_tasks()
    row.refresh_from_db()
    assert row.state == State.FAILED and row.attempts == delivery.MAX_ATTEMPTS
    assert len(receiver.received) == delivery.MAX_ATTEMPTS
    assert WebhookAttempt.objects.filter(delivery=row).count() == delivery.MAX_ATTEMPTS


# --- Order within a group -------------------------------------------------------------------------


def test_one_groups_deliveries_arrive_in_order_even_when_the_first_fails(run_tasks):
    with receiving(Answer(status=500), Answer()) as receiver:
        rows = [queue(receiver.url, body=json.dumps({"n": n}), ordering_key="incident-1") for n in range(3)]
        other = queue(receiver.url, body=json.dumps({"n": "other"}), ordering_key="incident-2")
        run_tasks()
        # The first failed; the two behind it wait (no attempt spent); another group goes on.
        assert [json.loads(r.body)["n"] for r in receiver.received] == [0, "other"]
        assert [WebhookDelivery.objects.get(pk=row.pk).attempts for row in rows] == [1, 0, 0]
        for _ in range(10):
            make_due()
            run_tasks()
    assert [json.loads(r.body)["n"] for r in receiver.received] == [0, "other", 0, 1, 2]
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {State.SENT}
    assert WebhookDelivery.objects.get(pk=other.pk).attempts == 1


def test_a_given_up_delivery_no_longer_holds_its_group_back(run_tasks):
    with receiving() as receiver:
        first = queue(receiver.url, ordering_key="incident-1")
        second = queue(receiver.url, ordering_key="incident-1")
        WebhookDelivery.objects.filter(pk=first.pk).update(state=State.FAILED)
        run_tasks()
    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.get(pk=second.pk).state == State.SENT


# --- Staff's redeliver -------------------------------------------------------------------------------


def test_redeliver_sends_a_finished_delivery_again_once(run_tasks):
    with receiving() as receiver:
        row = queue(receiver.url)
        run_tasks()
        assert outbox.redeliver(WebhookDelivery.objects.filter(pk=row.pk)) == 1
        assert outbox.redeliver(WebhookDelivery.objects.filter(pk=row.pk)) == 0  # a copy exists
        run_tasks()
    assert [r.headers["webhook-id"] for r in receiver.received] == [row.webhook_id, row.webhook_id]


def test_redeliver_leaves_pending_deliveries_alone(db):
    row = queue("http://127.0.0.1:9/hook")
    assert outbox.redeliver(WebhookDelivery.objects.filter(pk=row.pk)) == 0


# --- The SSRF rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/hook",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://10.1.2.3/",
        "https://192.168.0.10/",
        "https://172.16.0.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/",
        "https://224.0.0.1/",
        "https://[ff02::1]/",
        "https://0.0.0.0/",
        "https://100.64.0.1/",
        "https://[::ffff:127.0.0.1]/",
    ],
)
def test_urls_resolving_to_private_addresses_are_refused(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError) as refused:
        webhooks.check_url(url)
    assert refused.value.code == "private_address"


def test_private_addresses_are_allowed_with_the_setting():
    webhooks.check_url("http://localhost:8080/hook")


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://203.0.113.1/", "scheme"),
        ("https://user:pw@8.8.8.8/", "credentials"),
        ("https:///nohost", "invalid"),
        ("https://8.8.8.8:99999/", "invalid"),
        ("https://no-such-host.invalid/", "unresolvable"),
    ],
)
def test_bad_urls_are_refused(url, code, monkeypatch):
    real_getaddrinfo = socket.getaddrinfo

    def no_dns(host, *args, **kwargs):  # no query leaves the machine: the name does not exist
        if host == "no-such-host.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(ValidationError) as refused:
        webhooks.check_url(url)
    assert refused.value.code == code


def test_http_needs_the_setting(settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    with pytest.raises(ValidationError) as refused:
        webhooks.check_url("http://8.8.8.8/")
    assert refused.value.code == "scheme"
    webhooks.check_url("https://8.8.8.8/")  # a literal: no lookup, no traffic


def test_delivery_to_a_name_resolving_to_loopback_is_refused(run_tasks, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with receiving() as receiver:
        row = queue(f"http://localhost:{receiver.port}/hook")
        run_tasks()
    assert receiver.received == []
    row.refresh_from_db()
    assert row.state == State.QUEUED and "BlockedAddress" in row.last_error
    assert WebhookAttempt.objects.get(delivery=row).error.startswith("BlockedAddress")


def test_http_delivery_is_refused_without_the_setting(run_tasks, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    with receiving() as receiver:
        row = queue(receiver.url)
        run_tasks()
    assert receiver.connections == 0
    row.refresh_from_db()
    assert "https only" in row.last_error


def test_dns_rebinding_is_caught_at_connect_time(run_tasks, settings, monkeypatch):
    """The name resolves to a public address when the URL is checked, to loopback when the
    worker connects: the address actually connected to is what is judged."""
    settings.WEBHOOK_ALLOW_PRIVATE = False
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["8.8.8.8"])

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            address = next(answers, "127.0.0.1")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with receiving() as receiver:
        url = f"http://rebind.test:{receiver.port}/hook"
        webhooks.check_url(url)  # passes: the first answer is public
        row = queue(url)
        run_tasks()
    assert receiver.received == []
    row.refresh_from_db()
    assert "connected to 127.0.0.1" in row.last_error


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.2", False),
        ("::1", False),
        ("fd00::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:10.0.0.1", False),
        ("239.1.1.1", False),
        ("192.0.2.1", False),
        # IPv6 spellings of IPv4 addresses: judged as the IPv4 address they reach.
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254 (cloud metadata)
        ("64:ff9b:1::a00:1", False),  # local-use NAT64 prefix
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo of 10.0.0.1
    ],
)
def test_address_allowed(settings, address, allowed):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    assert webhooks.address_allowed(address) is allowed
