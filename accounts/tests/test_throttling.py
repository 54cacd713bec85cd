"""The API's rate limits (accounts/throttling.py): one small counter per caller and
scope, a sliding window over it, DRF's 429 with Retry-After; on the database cache (the
default) and on a real Redis server (CACHE_URL=redis://...)."""

import shutil
import socket
import subprocess
import time

import pytest
from django.core.cache import cache, caches
from rest_framework.throttling import SimpleRateThrottle

from accounts.throttling import CountingThrottle
from incidents.tests.factories import api_client

KEY = "throttle_count_user_{pk}"


@pytest.fixture
def clock(monkeypatch):
    """The throttles' time, moved by hand (seconds)."""
    now = {"t": 1_000_000.0}
    monkeypatch.setattr(CountingThrottle, "timer", lambda self: now["t"])
    return now


def get(client):
    return client.get("/api/incidents")


def test_the_cache_holds_three_numbers_not_a_history(strict_rates, monkeypatch, reporter):
    # given: a rate the test stays under
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user", "100/min")
    client = api_client(reporter)

    # when
    for _ in range(30):
        assert get(client).status_code == 200

    # then
    start, current, previous = cache.get(KEY.format(pk=reporter.pk))
    assert (current, previous) == (30, 0)
    assert start <= time.time()


def test_a_burst_from_a_quiet_start_is_counted_exactly(strict_rates, clock, reporter):
    # given: 5/min; five requests spread over most of a minute
    client = api_client(reporter)
    for n in range(5):
        clock["t"] += 11
        assert get(client).status_code == 200, n

    # when
    response = get(client)

    # then: refused until the window that holds all five is a minute old (at +11 s)
    assert response.status_code == 429
    assert response["Retry-After"] == str(60 - 44)


def test_the_previous_window_weighs_by_its_overlap(strict_rates, clock, reporter):
    # given: five requests at the start of a window
    client = api_client(reporter)
    for _ in range(5):
        assert get(client).status_code == 200
    start = clock["t"]

    # when / then: at the next window's start the five still weigh fully
    clock["t"] = start + 60
    assert get(client).status_code == 429
    # half-way through it they weigh 2.5: two more fit (2.5 + 2 < 5), not a third
    clock["t"] = start + 90
    assert [get(client).status_code for _ in range(4)] == [200, 200, 200, 429]
    # ... and the wait is until their weight has faded to 5 - 3 = 2: 60% of the window
    clock["t"] = start + 90
    response = get(client)
    assert response.status_code == 429
    assert response["Retry-After"] == str(60 * 60 // 100 - 30)
    # after two quiet windows nothing weighs any more
    clock["t"] = start + 200
    assert [get(client).status_code for _ in range(5)] == [200] * 5
    assert get(client).status_code == 429


@pytest.mark.parametrize("found", [[1e9, 1e9 - 1], "garbage", (1, 2), (1, 2, "3"), None])
def test_an_entry_of_another_shape_counts_as_none(strict_rates, reporter, found):
    # given: DRF's own history under DRF's key (workers of both kinds during a deploy),
    # and something that is not a counter under ours
    cache.set(f"throttle_user_{reporter.pk}", [time.time()] * 50, 60)
    cache.set(KEY.format(pk=reporter.pk), found, 60)
    client = api_client(reporter)

    # when
    codes = [get(client).status_code for _ in range(6)]

    # then
    assert codes == [200] * 5 + [429]
    assert cache.get(KEY.format(pk=reporter.pk))[1:] == (5, 0)


def test_a_refused_request_is_not_counted(strict_rates, clock, reporter):
    # given: the limit reached, then many refused requests
    client = api_client(reporter)
    for _ in range(5):
        get(client)
    for _ in range(20):
        assert get(client).status_code == 429

    # when: two windows later
    clock["t"] += 120.5

    # then: a fresh budget (the refusals did not pile up)
    assert get(client).status_code == 200
    assert cache.get(KEY.format(pk=reporter.pk))[1:] == (1, 0)


def test_signed_out_callers_are_counted_by_address(strict_rates, clock):
    # given: the "auth" scope's 3/min, used up from one address
    client = api_client()
    body = {"username": "nobody", "password": "x"}
    for _ in range(3):
        assert client.post("/api/auth/token", body, REMOTE_ADDR="192.0.2.1").status_code == 401

    # when
    refused = client.post("/api/auth/token", body, REMOTE_ADDR="192.0.2.1")
    elsewhere = client.post("/api/auth/token", body, REMOTE_ADDR="192.0.2.2")

    # then
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    assert elsewhere.status_code == 401


# --- On Redis ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A real redis-server on a free loopback port, for this module only."""
    server = shutil.which("redis-server")
    assert server, "redis-server is needed (apt-get install redis-server)"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(  # noqa: S603
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def redis_cache(settings, redis_url):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    caches["default"].clear()
    # DRF's throttles bind `cache` at import: point them at this one.
    CountingThrottle.cache = caches["default"]
    yield caches["default"]
    caches["default"].clear()
    del CountingThrottle.cache


def test_on_redis_the_rate_holds_and_the_counter_lives_in_redis(strict_rates, redis_cache, reporter, other):
    # given
    client = api_client(reporter)

    # when
    codes = [get(client).status_code for _ in range(6)]

    # then
    assert codes == [200] * 5 + [429]
    assert redis_cache.get(KEY.format(pk=reporter.pk))[1:] == (5, 0)
    # another user has a budget of their own
    assert get(api_client(other)).status_code == 200
