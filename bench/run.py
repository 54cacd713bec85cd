#!/usr/bin/env python
"""`make bench`: is the cost of a request flat from 100 to 100,000 incidents? Measured.

For each size (BENCH_SIZES, default 100 and 100,000; BENCH_SIZE=1000000 replaces the
large one), in one run on one machine:

1. a fresh MariaDB database, migrated, filled by `manage.py seed_load`
   (then ANALYZE TABLE), and the site under gunicorn with production settings
   (`bench.server.running_site`: DEBUG off, collected static files, a random SECRET_KEY,
   ALLOWED_HOSTS=127.0.0.1, API throttles set out of reach);
2. a sign-in for each account an endpoint is measured as, once through the sign-in form
   (a session cookie for the pages) and once through POST /api/auth/token (a token for
   the API): `load-user-00001`, an ordinary user (not a responder), for most endpoints;
   `load-responder-001`, a member of `response` and `load-facilities`, for the team
   queue and "assigned to me";
3. SQL queries per request for every endpoint, as its account (`bench/queries.py`:
   Django's test client and `CaptureQueriesContext` against the same database and
   settings);
4. wrk against every endpoint: a warm-up second, then BENCH_DURATION seconds (default
   12) with BENCH_THREADS threads and BENCH_CONNECTIONS connections, split in
   BENCH_ROUNDS rounds (default 4) in which the sizes take turns, so that a burst of other
   work on the machine weighs on every size alike; the POST last (it adds incidents);
5. each gunicorn worker's peak memory (VmHWM) after the run.

All sizes' sites run at once (databases `irms_bench_<size>`, free ports or BENCH_PORT, +1, ...).

Then a Markdown table with the ratios and targets goes to bench/results/<date>-<size>.md
and stdout. `--smoke` (or BENCH_SMOKE=1): 1,000 incidents, 2 s per endpoint, no file;
exits 1 if any endpoint answered outside 2xx/3xx. In both modes an erroring endpoint
fails the run; missed targets fail it only with --strict (BENCH_STRICT=1).
"""

# A harness: it runs this project's own commands and tools found on PATH (wrk, git) and
# fetches its own local URLs.
# ruff: noqa: S603, S607, S310

import argparse
import collections
import contextlib
import datetime as dt
import http.cookiejar
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import (  # noqa: E402
    DEFAULT_SERVER_URL,
    Site,
    analyze_tables,
    connect,
    free_port,
    redis_server,
    running_site,
    server_version,
)

RESULTS = ROOT / "bench" / "results"
DEFAULT_APP = "irms_site.wsgi:application"
WRK_SCRIPT = ROOT / "bench" / "wrk.lua"
USERNAME = "load-user-00001"  # an ordinary user: most endpoints are measured as them
# A team member: seed_load makes every load responder a member of `response` (which sees
# everything) and of one load team; the first one's is `load-facilities` (LOAD_TEAMS[0]).
RESPONDER = "load-responder-001"
RESPONDER_TEAM = "load-facilities"
# A superuser the bench adds after seeding, for the admin's changelists.
STAFF = "load-staff"
# Search words over seed_load's titles and texts: one in 15 incidents ("leak": "Water leak
# in ..."), one in 225 (a problem at a place), and none.
SEARCH_MANY, SEARCH_FEW, SEARCH_NONE = "leak", "leak+leeds", "zeppelin"
PASSWORD = "bench-load-password-not-secret"  # every load account's (seed_load --password)
# Out of reach, in production's unit (per minute): the throttles keep a counter per caller
# (accounts/throttling.py), so a high rate costs what production's 600/min does, one small
# cache entry read and rewritten per request.
UNTHROTTLED = {
    "API_THROTTLE_USER": "10000000/min",
    "API_THROTTLE_ANON": "10000000/min",
    "API_THROTTLE_AUTH": "10000000/min",
}
TARGET_SIZE_RATIO = 1.3  # p50 at any size / p50 at the smallest
TARGET_METRICS_RATIO = 2.0  # the metrics' (issue #16)
TARGET_DEEP_RATIO = 1.5  # p50 of the deep page / p50 of the first page
TARGET_API_SHARE = 0.2  # API first page req/s / healthz req/s
POST_BODY = json.dumps(
    {
        "title": "Benchmark: badge reader at the north entrance rejects valid cards",
        "description": "Filed by bench/run.py. Noticed at about 9:15; several people have mentioned it.",
        "severity": "Medium",
        "visibility": "public",
    }
)


@dataclass
class Endpoint:
    key: str
    label: str
    path: str
    auth: str | None = None  # "token", "session" or None
    method: str = "GET"
    body: str | None = None
    user: str = USERNAME  # the account it is measured as (when `auth` is set)
    target: float = TARGET_SIZE_RATIO  # p50 at any size / p50 at the smallest, at most


def endpoints(long_thread: str) -> list[Endpoint]:
    """What is measured, in order (the POST last: it adds rows)."""
    return [
        Endpoint("healthz", "`GET /healthz` (no database)", "/healthz"),
        Endpoint("api_first", "`GET /api/publicIncidents` first page (50)", "/api/publicIncidents", "token"),
        Endpoint("api_deep", "`GET /api/publicIncidents` deep page", "", "token"),  # found by walking Link
        Endpoint("api_mine", "`GET /api/incidents`", "/api/incidents", "token"),
        Endpoint("dashboard", "`GET /dashboard/`", "/dashboard/", "session"),
        Endpoint("web_public", "`GET /incidents/public/`", "/incidents/public/", "session"),
        Endpoint("detail", "`GET /incidents/<id>/` (100 responses)", f"/incidents/{long_thread}/", "session"),
        # A team member's working views (RESPONDER: a member of `response` and RESPONDER_TEAM).
        Endpoint(
            "web_team", f"`GET /incidents/?team={RESPONDER_TEAM}` (team member)",
            f"/incidents/?team={RESPONDER_TEAM}", "session", user=RESPONDER,
        ),
        Endpoint(
            "web_assigned", "`GET /incidents/?assignee=me` (team member)",
            "/incidents/?assignee=me", "session", user=RESPONDER,
        ),
        Endpoint(
            "web_my_teams", "`GET /incidents/` (team member: my teams' open incidents, most urgent first)",
            "/incidents/", "session", user=RESPONDER,
        ),
        Endpoint(
            "api_team", f"`GET /api/publicIncidents?team={RESPONDER_TEAM}` (team member)",
            f"/api/publicIncidents?team={RESPONDER_TEAM}", "token", user=RESPONDER,
        ),
        Endpoint(
            "api_assigned", "`GET /api/publicIncidents?assignee=me` (team member)",
            "/api/publicIncidents?assignee=me", "token", user=RESPONDER,
        ),
        # SLA (#14): the queue most urgent first (the team member's default, above), newest
        # first on request, the breached filter, the due order in the API, the SLA counts.
        Endpoint(
            "web_newest", "`GET /incidents/?sort=newest` (team member)",
            "/incidents/?sort=newest", "session", user=RESPONDER,
        ),
        Endpoint(
            "web_breached", "`GET /incidents/?sla=breached&sort=due` (team member)",
            "/incidents/?sla=breached&sort=due", "session", user=RESPONDER,
        ),
        Endpoint(
            "api_due", "`GET /api/publicIncidents?ordering=due` (team member)",
            "/api/publicIncidents?ordering=due", "token", user=RESPONDER,
        ),
        Endpoint("dashboard_team", "`GET /dashboard/` (team member: SLA counts)", "/dashboard/", "session", user=RESPONDER),
        # Issue #15: responses carry their attachments; an incident's attachments list.
        Endpoint(
            "api_responses", "`GET /api/responses/<id>` (100 responses, with attachments)",
            f"/api/responses/{long_thread}", "token",
        ),
        Endpoint(
            "api_attachments", "`GET /api/incidents/<id>/attachments`",
            f"/api/incidents/{long_thread}/attachments", "token",
        ),
        # Issue #16: the metrics for the default 90 days (target: p50 at 100,000 ≤ 2 × at 100),
        # as staff (every team) and as a team member (their teams).
        Endpoint("api_metrics", "`GET /api/metrics` (staff, every team; ≤ 2)", "/api/metrics", "token", user=STAFF, target=TARGET_METRICS_RATIO),
        Endpoint(
            "api_metrics_team", f"`GET /api/metrics?team={RESPONDER_TEAM}` (team member; ≤ 2)",
            f"/api/metrics?team={RESPONDER_TEAM}", "token", user=RESPONDER, target=TARGET_METRICS_RATIO,
        ),
        Endpoint("web_metrics", "`GET /metrics/` (staff; ≤ 2)", "/metrics/", "session", user=STAFF, target=TARGET_METRICS_RATIO),
        # Issue #18: full-text search (a word matching many, few, none) on the API and the
        # web, and the admin's changelists as a superuser.
        *(
            endpoint
            for name, words in (("many", SEARCH_MANY), ("few", SEARCH_FEW), ("none", SEARCH_NONE))
            for endpoint in (
                Endpoint(
                    f"api_search_{name}", f"`GET /api/publicIncidents?search={words}` ({name})",
                    f"/api/publicIncidents?search={words}", "token",
                ),
                Endpoint(
                    f"web_search_{name}", f"`GET /incidents/public/?search={words}` ({name})",
                    f"/incidents/public/?search={words}", "session",
                ),
            )
        ),
        Endpoint("admin_incidents", "`GET /admin/incidents/incident/`", "/admin/incidents/incident/", "session", user=STAFF),
        Endpoint(
            "admin_incidents_status", "`GET /admin/incidents/incident/?status__exact=Closed`",
            "/admin/incidents/incident/?status__exact=Closed", "session", user=STAFF,
        ),
        Endpoint(
            "admin_incidents_search", f"`GET /admin/incidents/incident/?q={SEARCH_MANY}`",
            f"/admin/incidents/incident/?q={SEARCH_MANY}", "session", user=STAFF,
        ),
        Endpoint("admin_responses", "`GET /admin/incidents/response/`", "/admin/incidents/response/", "session", user=STAFF),
        Endpoint(
            "admin_outbox", "`GET /admin/notifications/outgoingemail/`",
            "/admin/notifications/outgoingemail/", "session", user=STAFF,
        ),
        Endpoint("api_post", "`POST /api/incidents`", "/api/incidents", "token", "POST", POST_BODY),
    ]  # fmt: skip


# What the report's summary reads, measured whatever --only says.
ALWAYS = ("healthz", "api_first", "api_deep", "api_team", "api_assigned")


@dataclass
class Measurement:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    status_errors: int
    socket_errors: int
    timeouts: int
    queries: int | None = None
    rows: int | None = None
    cpu_ms: float | None = None  # the gunicorn workers' CPU time per request
    rounds_p50: list[float] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.requests == 0 or self.status_errors > 0 or self.timeouts > 0


@dataclass
class SizeResult:
    size: int
    users: int
    seed_seconds: float = 0.0
    seed_summary: str = ""
    deep_page: int = 0
    measurements: dict[str, Measurement] = field(default_factory=dict)
    peak_memory_kb: dict[int, int] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Config:
    sizes: list[int]
    duration: int
    rounds: int
    warmup: int
    threads: int
    connections: int
    workers: int
    worker_class: str
    gthreads: int
    port: int
    database: str
    deep_page: int
    smoke: bool
    strict: bool
    write: bool
    app: str = DEFAULT_APP
    extra_env: dict[str, str] = field(default_factory=dict)
    label: str = ""  # in the results file name
    redis: bool = False  # the cache (throttle counters) on a redis-server of the run's own
    only: tuple[str, ...] = ()  # endpoint keys to measure (and ALWAYS); empty: all
    server_url: str = DEFAULT_SERVER_URL


# --- Talking to the site ---------------------------------------------------------------


class Browser:
    """urllib with a cookie jar: signs in through the real form, like a person."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def sign_in(self, username: str, password: str) -> str:
        page = self.opener.open(self.base + "/accounts/login/", timeout=30).read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if not csrf:
            raise SystemExit("bench: no CSRF token on the sign-in page")
        data = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": csrf.group(1)}
        ).encode()
        request = urllib.request.Request(
            self.base + "/accounts/login/", data=data, headers={"Referer": self.base + "/accounts/login/"}
        )
        response = self.opener.open(request, timeout=30)
        session = {cookie.name: cookie.value for cookie in self.jar}.get("sessionid")
        if not session or not response.geturl().rstrip("/").endswith("/dashboard"):
            raise SystemExit(f"bench: signing in as {username} failed (landed on {response.geturl()})")
        return session


def api_token(base: str, username: str, password: str) -> str:
    request = urllib.request.Request(
        base + "/api/auth/token",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["token"]


def sign_in_all(base: str, measured: list[Endpoint]) -> dict[tuple[str, str], str]:
    """Each account the endpoints are measured as, signed in once per kind of credential
    they need: {(username, "session"): session id, (username, "token"): token}."""
    credentials = {}
    for username, auth in dict.fromkeys((e.user, e.auth) for e in measured if e.auth):
        if auth == "session":
            credentials[username, auth] = Browser(base).sign_in(username, PASSWORD)
        else:
            credentials[username, auth] = api_token(base, username, PASSWORD)
    return credentials


def headers_for(endpoint: Endpoint, credentials: dict[tuple[str, str], str]) -> dict[str, str]:
    if endpoint.auth == "token":
        return {"Authorization": f"Token {credentials[endpoint.user, 'token']}"}
    if endpoint.auth == "session":
        return {"Cookie": f"sessionid={credentials[endpoint.user, 'session']}"}
    return {}


def fetch(base: str, endpoint: Endpoint, headers: dict[str, str]):
    """One request: (status, parsed JSON or None, Link header)."""
    request = urllib.request.Request(
        base + endpoint.path,
        method=endpoint.method,
        data=endpoint.body.encode() if endpoint.body else None,
        headers={**headers, **({"Content-Type": "application/json"} if endpoint.body else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            content = response.read()
            kind = response.headers.get("Content-Type", "")
            data = json.loads(content) if kind.startswith("application/json") else None
            return response.status, data, response.headers.get("Link", "")
    except urllib.error.HTTPError as error:
        return error.code, None, ""


def next_link(header: str) -> str | None:
    match = re.search(r'<([^>]+)>; rel="next"', header)
    return match.group(1) if match else None


def find_deep_page(base: str, token: str, wanted: int) -> tuple[str, int]:
    """Follow rel="next" from the first page of /api/publicIncidents to page `wanted`, or
    to the last page there is: (its path and query, its number)."""
    path, number = "/api/publicIncidents", 1
    headers = {"Authorization": f"Token {token}"}
    while number < wanted:
        status, _, link = fetch(base, Endpoint("walk", "", path, "token"), headers)
        if status != 200:
            raise SystemExit(f"bench: walking the pages failed at page {number} ({status})")
        following = next_link(link)
        if not following:
            break
        parts = urllib.parse.urlsplit(following)
        path, number = f"{parts.path}?{parts.query}", number + 1
    return path, number


def wrk(config: Config, url: str, endpoint: Endpoint, headers: dict[str, str], seconds: int) -> Measurement:
    command = [
        "wrk",
        f"-t{config.threads}",
        f"-c{config.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url + endpoint.path)
    env = {**os.environ, "WRK_METHOD": endpoint.method, "WRK_BODY": endpoint.body or ""}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 60)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise SystemExit(f"bench: wrk gave no summary for {endpoint.label}:\n{result.stdout}\n{result.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    seconds_run = data["duration_us"] / 1e6
    return Measurement(
        rps=data["requests"] / seconds_run if seconds_run else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        status_errors=data["status_errors"],
        socket_errors=data["connect_errors"] + data["read_errors"] + data["write_errors"],
        timeouts=data["timeouts"],
    )


def count_queries(site: Site, measured: list[Endpoint]) -> dict:
    spec = {
        "endpoints": [
            {"key": e.key, "method": e.method, "path": e.path, "auth": e.auth, "body": e.body, "user": e.user}
            for e in measured
        ],
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "queries.py")],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=site.env,
        cwd=ROOT,
        timeout=300,
    )
    if result.returncode != 0:
        raise SystemExit(f"bench: counting queries failed:\n{result.stderr}")
    return json.loads(result.stdout)


# --- One size ----------------------------------------------------------------------------


def users_for(size: int) -> int:
    """About a hundred incidents per reporter; two at the smallest size, so the bench user
    has a full first page of their own (50 of 100) and others' incidents to list too."""
    return max(2, size // 100)


@dataclass
class Prepared:
    """One size's running site, signed in, with its endpoints resolved."""

    site: Site
    result: SizeResult
    endpoints: list[Endpoint]
    headers: dict[str, dict[str, str]]
    samples: dict[str, list[Measurement]] = field(default_factory=dict)


def seeder(config: Config, result: SizeResult, found: dict):
    def seed(site: Site) -> None:
        started = time.monotonic()
        print(f"\n== {result.size:,} incidents on {site.database}: seeding", flush=True)
        # stderr not captured: seed_load's progress line shows while it runs.
        output = site.manage(
            *("seed_load", "--incidents", str(result.size), "--users", str(result.users), "--responders", "5"),
            *("--responses", "2", "--long-thread", "100", "--password", PASSWORD, "--seed", "1"),
            stdout=subprocess.PIPE,
            capture=False,
        ).stdout
        result.seed_seconds = time.monotonic() - started
        result.seed_summary = output.splitlines()[0] if output else ""
        found["long_thread"] = re.search(r"long-thread incident_id=(\S+)", output).group(1)
        site.manage(
            "shell",
            "-c",
            "from accounts.models import User; "
            f"User.objects.filter(username={STAFF!r}).exists() or "
            f"User.objects.create_superuser({STAFF!r}, {STAFF + '@example.invalid'!r}, {PASSWORD!r})",
        )
        analyze_tables(
            site.database,
            ["incidents_incident", "incidents_response", "incidents_incidentevent", "accounts_user"],
            config.server_url,
        )
        if not config.smoke:
            settle(config)

    return seed


def settle(config: Config, timeout: float = 30.0) -> None:
    """Wait (half a minute at most) until InnoDB has stopped writing out the pages a bulk
    load left dirty (no page flushed for two seconds), so that background flushing does
    not slow the measurements of one size only."""
    connection = connect(config.server_url)
    try:
        cursor = connection.cursor()
        deadline, quiet, last = time.monotonic() + timeout, 0, None
        while time.monotonic() < deadline and quiet < 2:
            cursor.execute(
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
                "WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_FLUSHED'"
            )
            flushed = int(cursor.fetchone()[0])
            quiet = quiet + 1 if flushed == last else 0
            last = flushed
            time.sleep(1)
    finally:
        connection.close()


def start_size(
    config: Config, stack: contextlib.ExitStack, size: int, port: int, cache_env: dict | None = None
) -> Prepared:
    """Seed a fresh database with `size` incidents, serve it, sign in, resolve the URLs."""
    cache_env = cache_env or {}
    result = SizeResult(size=size, users=users_for(size))
    found = {}
    site = stack.enter_context(
        running_site(
            port=port,
            database=f"{config.database}_{size}",
            server_url=config.server_url,
            workers=config.workers,
            worker_class=config.worker_class,
            threads=config.gthreads,
            env={**UNTHROTTLED, **config.extra_env, **cache_env},
            app=config.app,
            prepare=seeder(config, result, found),
        )
    )
    print(f"   {result.seed_summary}\n   serving on {site.url}, pids {site.pids()}", flush=True)
    measured = [e for e in endpoints(found["long_thread"]) if not config.only or e.key in config.only]
    credentials = sign_in_all(site.url, measured)
    deep = next((e for e in measured if e.key == "api_deep"), None)
    if deep is not None:
        deep.path, result.deep_page = find_deep_page(site.url, credentials[deep.user, "token"], config.deep_page)
        deep.label = "`GET /api/publicIncidents` deep page (via `Link`)"
    result.labels = {e.key: e.label for e in measured}
    result.targets = {e.key: e.target for e in measured}
    headers = {e.key: headers_for(e, credentials) for e in measured}
    queries = count_queries(site, measured)
    for endpoint in measured:
        rows = None
        if endpoint.method == "GET":
            status, data, _ = fetch(site.url, endpoint, headers[endpoint.key])
            if status != 200:
                raise SystemExit(f"bench: {endpoint.label} answered {status} at {size:,}")
            rows = len(data) if isinstance(data, list) else None
        result.measurements[endpoint.key] = Measurement(
            0.0, 0.0, 0.0, 0, 0, 0, 0, queries=queries[endpoint.key]["queries"], rows=rows
        )
    return Prepared(site, result, measured, headers)


def combine(samples: list[Measurement], into: Measurement) -> None:
    """Rounds into one figure. Other programs on the machine only ever make a round slower,
    never faster, so req/s and p50 are the best round's (as `timeit` takes the fastest
    run); p99, a tail anyway, is the median round's; CPU per request is over all rounds.
    Every round's figures are in the report's last table."""
    into.requests = sum(m.requests for m in samples)
    into.rps = max(m.rps for m in samples)
    into.p50_ms = min(m.p50_ms for m in samples)
    into.p99_ms = statistics.median(m.p99_ms for m in samples)
    into.rounds_p50 = [m.p50_ms for m in samples]
    into.status_errors = sum(m.status_errors for m in samples)
    into.socket_errors = sum(m.socket_errors for m in samples)
    into.timeouts = sum(m.timeouts for m in samples)
    timed = [m for m in samples if m.cpu_ms is not None]
    requests = sum(m.requests for m in timed)
    into.cpu_ms = sum(m.cpu_ms * m.requests for m in timed) / requests if requests else None


def measure(config: Config, prepared: list[Prepared]) -> None:
    """wrk in rounds, each endpoint at every size in turn (who goes first alternating),
    so that whatever else the machine does in a given minute weighs on every size alike.
    The GETs first; the POST (which adds incidents) after them, in rounds of its own."""
    keys = [e.key for e in prepared[0].endpoints]
    posts = [key for key in keys if key == "api_post"]
    gets = [key for key in keys if key not in posts]
    slice_seconds = max(1, round(config.duration / config.rounds))

    def one(p: Prepared, key: str, seconds: int) -> Measurement:
        endpoint = next(e for e in p.endpoints if e.key == key)
        before = p.site.workers_cpu_seconds()
        measurement = wrk(config, p.site.url, endpoint, p.headers[key], seconds)
        used = p.site.workers_cpu_seconds() - before
        measurement.cpu_ms = 1000 * used / measurement.requests if measurement.requests else None
        return measurement

    for group in (gets, posts):
        if config.warmup:
            for key in group:
                for p in prepared:
                    one(p, key, config.warmup)
        for number in range(config.rounds):
            order = prepared if number % 2 == 0 else prepared[::-1]
            for key in group:
                for p in order:
                    sample = one(p, key, slice_seconds)
                    p.samples.setdefault(key, []).append(sample)
                    print(
                        f"   round {number + 1}/{config.rounds}  {key:<11} @{p.result.size:<9,} "
                        f"{sample.rps:8.1f} req/s  p50 {sample.p50_ms:7.2f} ms  p99 {sample.p99_ms:7.2f} ms  "
                        f"CPU {sample.cpu_ms or 0:6.2f} ms/req"
                        + (f"  {sample.status_errors} non-2xx/3xx" if sample.status_errors else ""),
                        flush=True,
                    )
    for p in prepared:
        for key, samples in p.samples.items():
            combine(samples, p.result.measurements[key])
        p.result.peak_memory_kb = p.site.peak_memory_kb()


def run_all(config: Config) -> list[SizeResult]:
    with contextlib.ExitStack() as stack:
        ports = [config.port + n if config.port else free_port() for n in range(len(config.sizes))]
        # With --redis each size's site has a Redis database of its own (user ids repeat).
        redis = stack.enter_context(redis_server()) if config.redis else None
        prepared = [
            start_size(config, stack, size, port, {"CACHE_URL": f"{redis}/{n}"} if redis else None)
            for n, (size, port) in enumerate(zip(config.sizes, ports, strict=True))
        ]
        print(
            f"\n== measuring: {config.rounds} rounds of {config.duration / config.rounds:.0f} s per endpoint and size"
        )
        measure(config, prepared)
        return [p.result for p in prepared]


# --- The report --------------------------------------------------------------------------


def machine() -> dict[str, str]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor() or "?",
    )
    memory_kb = next(
        int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal:")
    )
    os_name = "?"
    if Path("/etc/os-release").exists():
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0].split(" [")[0]
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    connection = connect()
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT @@innodb_buffer_pool_size")
        buffer_pool = int(cursor.fetchone()[0])
    finally:
        connection.close()
    return {
        "CPU": f"{cpu}, {len(os.sched_getaffinity(0))} cores (nproc)",
        "Memory": f"{memory_kb / 1024 / 1024:.1f} GiB",
        "OS": f"{os_name}, Linux {platform.release()}",
        "Python": platform.python_version(),
        "Django / DRF": f"{version('Django')} / {version('djangorestframework')}",
        "gunicorn": version("gunicorn"),
        "MariaDB": f"{server_version()} (innodb_buffer_pool_size {buffer_pool // 2**20} MiB), mysqlclient {version('mysqlclient')}",
        "wrk": wrk_version,
        "Commit": (git.stdout.strip() or "?") + (" (with uncommitted changes)" if dirty else ""),
    }


def ratio_mark(value: float, limit: float, *, at_most: bool = True) -> str:
    ok = value <= limit if at_most else value >= limit
    return f"{value:.2f} {'✓' if ok else '✗'}"


def report(config: Config, results: list[SizeResult], machine_info: dict, load: tuple, elapsed: float) -> tuple:
    """The Markdown report and whether every target was met."""
    base, sizes = results[0], [r.size for r in results]
    labels = base.labels
    missed = []
    lines = [
        f"# IRMS benchmark, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}" + (" (smoke)" if config.smoke else ""),
        "",
        "| Machine | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in machine_info.items()),
        f"| Load average (1 min) | {load[0]:.2f} before, {load[1]:.2f} after (other work on the machine skews results) |",
        "",
        f"gunicorn: {config.workers} {config.worker_class} workers"
        + (f" × {config.gthreads} threads" if config.worker_class == "gthread" else "")
        + f", one site per size, all up at once; wrk: {config.threads} threads, {config.connections} connections, "
        f"{config.duration} s per endpoint and size in {config.rounds} round(s), sizes taking turns, after "
        f"{config.warmup} s of warm-up; signed in as `{USERNAME}` (an ordinary user, not a responder), "
        f"the endpoints marked *team member* as `{RESPONDER}` (a member of `response`, which sees every "
        f"incident, and of `{RESPONDER_TEAM}`). Cache (API throttle counters): "
        + ("Redis (`--redis`)" if config.redis else "the database cache (the default)")
        + f". Run took {elapsed / 60:.1f} min."
        + (f" **Experiment:** served `{config.app}` {config.extra_env}." if config.app != DEFAULT_APP else ""),
        "",
    ]
    header = "| Endpoint | SQL/req |"
    rule = "|---|---:|"
    for size in sizes:
        header += f" req/s @{size:,} | p50 ms @{size:,} | p99 ms @{size:,} | CPU ms/req @{size:,} |"
        rule += "---:|---:|---:|---:|"
    for size in sizes[1:]:
        header += f" p50 @{size:,} ÷ p50 @{sizes[0]:,} (≤ {TARGET_SIZE_RATIO} unless marked) |"
        rule += "---:|"
    lines += [header, rule]
    for key, label in labels.items():
        cells = []
        queries = sorted({r.measurements[key].queries for r in results})
        cells.append(" / ".join(str(q) for q in queries))
        for r in results:
            m = r.measurements[key]
            errors = f" ({m.status_errors} errors)" if m.status_errors else ""
            cpu = f"{m.cpu_ms:.2f}" if m.cpu_ms is not None else "?"
            cells += [f"{m.rps:,.0f}{errors}", f"{m.p50_ms:.2f}", f"{m.p99_ms:.2f}", cpu]
        for r in results[1:]:
            value = r.measurements[key].p50_ms / base.measurements[key].p50_ms
            target = base.targets.get(key, TARGET_SIZE_RATIO)
            cells.append(ratio_mark(value, target))
            if value > target:
                missed.append(f"{key}: p50 @{r.size:,} is {value:.2f}× p50 @{base.size:,}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| Size | Rows on first / deep API page | Rows on the team member's API pages (team / assigned to me) | "
              "Deep ÷ first page p50 (≤ 1.5) | API first page ÷ /healthz req/s (≥ 0.2) | "
              "Peak RSS per worker (VmHWM) | Seeding |",
              "|---:|---|---|---:|---:|---|---|"]  # fmt: skip
    for r in results:
        # With --only some of these were not measured: their cells say so.
        m = collections.defaultdict(lambda: Measurement(0.0, 0.0, 0.0, 0, 0, 0, 0), r.measurements)
        deep = m["api_deep"].p50_ms / m["api_first"].p50_ms if m["api_first"].p50_ms else float("nan")
        share = m["api_first"].rps / m["healthz"].rps if m["healthz"].rps else float("nan")
        if deep > TARGET_DEEP_RATIO:
            missed.append(f"deep page @{r.size:,}: {deep:.2f}× the first page")
        if share < TARGET_API_SHARE:
            missed.append(f"API first page @{r.size:,}: {share:.2f} of /healthz throughput")
        memory = ", ".join(f"{kb / 1024:.0f} MiB" for kb in r.peak_memory_kb.values()) or "?"
        lines.append(
            f"| {r.size:,} | {m['api_first'].rows} / {m['api_deep'].rows} (page {r.deep_page}) | "
            f"{m['api_team'].rows} / {m['api_assigned'].rows} | "
            f"{ratio_mark(deep, TARGET_DEEP_RATIO) if 'api_deep' in r.measurements else 'not measured'} | "
            f"{ratio_mark(share, TARGET_API_SHARE, at_most=False)} | "
            f"{memory} | {r.seed_seconds:.0f} s, {r.users:,} reporters |"
        )
    lines += [
        "",
        "p50 ms of each round, in the order run:",
        "",
        "| Endpoint | " + " | ".join(f"@{size:,}" for size in sizes) + " |",
        "|---|" + "---|" * len(sizes),
        *(
            f"| {label} | "
            + " | ".join(", ".join(f"{v:.1f}" for v in r.measurements[key].rounds_p50) for r in results)
            + " |"
            for key, label in labels.items()
        ),
    ]
    lines += [
        "",
        "SQL/req: queries one request makes (Django's test client under `CaptureQueriesContext`, same database "
        "and settings; one number when every size agrees). p50/p99: wrk's latency percentiles with "
        f"{config.connections} connections kept busy, so they include queueing for a free worker. req/s and p50 "
        "are the best round's (other programs only ever slow a round down), p99 the median round's. CPU ms/req: the gunicorn workers' CPU time (user + system, from /proc) over the requests "
        "served: unlike latency, it hardly moves when other programs compete for the CPU. MariaDB's own time "
        "is in the latency, not in this column.",
        "",
        "**Targets: " + ("all met.**" if not missed else "missed:** " + "; ".join(missed) + "."),
        "",
    ]
    return "\n".join(lines), not missed


# --- Main --------------------------------------------------------------------------------


def only_keys(text: str) -> tuple[str, ...]:
    if not text.strip():
        return ()
    wanted = [item.strip() for item in text.split(",") if item.strip()]
    keys = [e.key for e in endpoints("")]
    chosen = [
        key
        for key in keys
        if key in ALWAYS or any(key == w or (w.endswith("*") and key.startswith(w[:-1])) for w in wanted)
    ]
    unknown = [w for w in wanted if not w.endswith("*") and w not in keys]
    if unknown:
        raise SystemExit(f"bench: no endpoint {', '.join(unknown)} (known: {', '.join(keys)})")
    return tuple(chosen)


def parse_config(argv) -> Config:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", default=env.get("BENCH_SMOKE", "") not in ("", "0"))
    parser.add_argument("--sizes", default=env.get("BENCH_SIZES"), help="comma-separated, e.g. 100,100000")
    parser.add_argument("--duration", type=int, default=env.get("BENCH_DURATION"), help="seconds per endpoint")
    parser.add_argument("--rounds", type=int, default=env.get("BENCH_ROUNDS"), help="split the seconds in rounds")
    parser.add_argument("--threads", type=int, default=int(env.get("BENCH_THREADS", 2)), help="wrk threads")
    parser.add_argument("--connections", type=int, default=int(env.get("BENCH_CONNECTIONS", 8)))
    parser.add_argument("--workers", type=int, default=int(env.get("BENCH_WORKERS", 2)), help="gunicorn workers")
    parser.add_argument("--worker-class", default=env.get("BENCH_WORKER_CLASS", "sync"), choices=["sync", "gthread"])
    parser.add_argument("--gthreads", type=int, default=int(env.get("BENCH_GTHREADS", 4)), help="gthread threads")
    parser.add_argument(
        "--port", type=int, default=int(env.get("BENCH_PORT", 0)), help="first port; default: free ones"
    )
    parser.add_argument("--database", default=env.get("BENCH_DATABASE", "irms_bench"))
    parser.add_argument("--deep-page", type=int, default=int(env.get("BENCH_DEEP_PAGE", 200)))
    parser.add_argument("--strict", action="store_true", default=env.get("BENCH_STRICT", "") not in ("", "0"))
    parser.add_argument("--no-write", action="store_true", help="print only, no file in bench/results/")
    parser.add_argument(
        "--label", default=env.get("BENCH_LABEL", ""), help="in the results file's name: <date>-<label>-<size>.md"
    )
    parser.add_argument(
        "--app",
        default=env.get("BENCH_APP", DEFAULT_APP),
        help="the WSGI app to serve: a wrapper that patches IRMS, to measure a fix before making it",
    )
    parser.add_argument(
        "--redis",
        action="store_true",
        default=env.get("BENCH_REDIS", "") not in ("", "0"),
        help="keep the cache (throttle counters) in a redis-server of this run's own, not the database",
    )
    parser.add_argument(
        "--only",
        default=env.get("BENCH_ONLY", ""),
        help="comma-separated endpoint keys (or prefixes ending in *) to measure, besides " + ", ".join(ALWAYS),
    )
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE", help="for the server")
    args = parser.parse_args(argv)
    if args.sizes:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    elif args.smoke:
        sizes = [1000]
    else:
        sizes = [100, int(env.get("BENCH_SIZE", 100_000))]
    duration = args.duration or (2 if args.smoke else 12)
    rounds = args.rounds or (1 if args.smoke else 4)
    return Config(
        sizes=sorted(set(sizes)),
        duration=int(duration),
        rounds=int(rounds),
        warmup=0 if args.smoke else 1,
        threads=args.threads,
        connections=args.connections,
        workers=args.workers,
        worker_class=args.worker_class,
        gthreads=args.gthreads if args.worker_class == "gthread" else 1,
        port=args.port,
        database=args.database,
        deep_page=args.deep_page,
        smoke=args.smoke,
        strict=args.strict,
        write=not (args.no_write or args.smoke),
        app=args.app,
        extra_env=dict(item.split("=", 1) for item in args.server_env),
        label=args.label,
        redis=args.redis,
        only=only_keys(args.only),
    )


def main(argv=None) -> int:
    config = parse_config(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install wrk).", file=sys.stderr)
        return 2
    started, load_before = time.monotonic(), os.getloadavg()[0]
    info = machine()
    results = run_all(config)
    text, met = report(config, results, info, (load_before, os.getloadavg()[0]), time.monotonic() - started)
    print("\n" + text)
    if config.write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        label = f"-{config.label}" if config.label else ""
        path = RESULTS / f"{dt.date.today():%Y-%m-%d}{label}-{config.sizes[-1]}.md"
        path.write_text(text)
        print(f"Written to {path.relative_to(ROOT)}")
    failed = [f"{r.size:,}: {key}" for r in results for key, m in r.measurements.items() if m.failed]
    if failed:
        print("bench: endpoints answered with errors (non-2xx/3xx or timeouts): " + ", ".join(failed), file=sys.stderr)
        return 1
    if config.strict and not met:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
