"""`make load`: IRMS as production runs it, under mixed read/write load, and nothing lost.

    python bench/load/run_load.py [--users 50] [--seconds 60] [--workers 4]

Starts the site on a fresh MariaDB database (`bench.server.running_site`: gunicorn, DEBUG
off, and the mail worker `db_worker`), with e-mail going to an SMTP sink on 127.0.0.1 that
this script runs and API throttling set out of the way. Seeds history (`seed_load`, 5,000
incidents), creates one account (API token and web session) per simulated user, then lets
locust (`locustfile.py`) drive the users headless: API and web lists and pages, incident
reports (POST /api/incidents), responses (POST /api/responses/<id>), status changes by
responders (PATCH /api/incidents/<id>), every POST with an Idempotency-Key.

Afterwards it waits for the mail queue to drain and checks the database against what the
site acknowledged:
  * every 201 incident and response exists exactly once, nothing unacknowledged was
    written, nothing is doubled (every POST carries its key in the text it stored);
  * every acknowledged status change is the incident's status now;
  * every OutgoingEmail row is "sent" and the sink got exactly one message per row
    (per recipient).
It prints requests, req/s, p50/p95/p99 and errors, writes `summary.json` into the output
directory, and exits 1 if any request failed or any check did not hold.

The same file holds the Django-side helpers the drivers run in a subprocess with the
site's environment (`_django fixtures|verify|mail`), so the driver itself never holds a
database connection (the outage drill stops the database under it). Results and logs go
to a new temporary directory (or `--out`); docs/reliability.md records measured runs.
"""

import argparse
import contextlib
import email
import json
import math
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: `python bench/load/run_load.py`
    sys.path.insert(0, str(ROOT))

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
# Out of the way of 50 busy users; the drill for throttling itself is elsewhere.
NO_THROTTLE = {"API_THROTTLE_USER": "100000000/min", "API_THROTTLE_ANON": "100000000/min"}


# --- Small tools -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def cpu_ticks(pid: int | None = None) -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine, or (user+system, 0) of one process."""
    try:
        if pid is None:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            idle = fields[3] + fields[4]  # idle + iowait
            return sum(fields) - idle, sum(fields)
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return int(fields[11]) + int(fields[12]), 0
    except (OSError, ValueError, IndexError):
        return 0, 0


class CpuMeter:
    """How busy the machine was while the load ran, and how much of it was the site
    (gunicorn workers), the mail worker and the load generator (locust): on a shared
    machine, work by other processes shows up as the difference."""

    def __init__(self, processes: dict[str, list[int]]):
        self.processes = processes
        self.started = time.monotonic()
        self.machine = cpu_ticks()
        self.each = {name: sum(cpu_ticks(pid)[0] for pid in pids) for name, pids in processes.items()}
        # The load generator exits before we look: count it as a reaped child instead.
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children = usage.ru_utime + usage.ru_stime

    def result(self, *, child: str = "locust") -> dict:
        """Call after the one child (locust) was reaped and before any other is."""
        ticks = os.sysconf("SC_CLK_TCK")
        seconds = time.monotonic() - self.started
        busy, total = (a - b for a, b in zip(cpu_ticks(), self.machine, strict=True))
        cores = os.cpu_count() or 1
        result = {"machine_busy_pct": round(100 * busy / max(total, 1), 1)}
        for name, pids in self.processes.items():
            used = sum(cpu_ticks(pid)[0] for pid in pids) - self.each[name]
            result[f"{name}_pct_of_machine"] = round(100 * used / ticks / seconds / cores, 1)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = usage.ru_utime + usage.ru_stime - self.children
        result[f"{child}_pct_of_machine"] = round(100 * used / seconds / cores, 1)
        return result


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_gb = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        # Other work on the machine skews every number: say how busy it was.
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class MailSink:
    """An SMTP server on 127.0.0.1 (aiosmtpd) that keeps (recipient, subject) of every
    message it accepts."""

    def __init__(self, port: int):
        from aiosmtpd.controller import Controller

        self.port = port
        self.lock = threading.Lock()
        self.received: list[tuple[str, str]] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server, session, envelope):
        subject = email.message_from_bytes(envelope.content).get("Subject", "")
        with self.lock:
            self.received.extend((address.lower(), subject) for address in envelope.rcpt_tos)
        return "250 Message accepted for delivery"

    def per_recipient(self) -> dict[str, int]:
        with self.lock:
            return dict(Counter(address for address, _ in self.received))

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def django_call(site, command: str, *args: str, timeout: float = 120) -> dict:
    """Run `_django <command>` of this file with the site's settings; its JSON answer."""
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(Path(__file__).resolve()), "_django", command, *args],
        cwd=ROOT,
        env=site.env,
        text=True,
        capture_output=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"_django {command} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- Preparing the site ------------------------------------------------------------------


def prepare(site, out: Path, *, accounts: int, responders: int, seed_incidents: int) -> dict:
    """History to read (`seed_load`: incidents with responses and timelines, no mail),
    then the load's own accounts."""
    started = time.monotonic()
    site.manage("seed_load", "--incidents", str(seed_incidents))
    prepared = django_call(site, "fixtures", str(out / "fixtures.json"), str(accounts), str(responders))
    return {**prepared, "seconds": round(time.monotonic() - started, 1)}


# --- Running locust ----------------------------------------------------------------------


def start_locust(
    site,
    out: Path,
    *,
    users: int,
    seconds: int,
    spawn_rate: float = 25,
    retry_seconds: float = 0,
    wait: tuple[float, float] = (0.2, 1.0),
    prefix: tuple[str, ...] = (),
) -> subprocess.Popen:
    """locust headless against `site.url`; `prefix` runs it through a wrapper (the
    cluster drill's `ip netns exec <load host>`)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IRMS_LOAD_")},
        "IRMS_LOAD_FIXTURES": str(out / "fixtures.json"),
        "IRMS_LOAD_OUT": str(out),
        "IRMS_LOAD_RETRY_SECONDS": str(retry_seconds),
        "IRMS_LOAD_WAIT_MIN": str(wait[0]),
        "IRMS_LOAD_WAIT_MAX": str(wait[1]),
    }
    for name in ("requests.jsonl", "ledger.jsonl"):
        (out / name).unlink(missing_ok=True)
    command = [
        *prefix,
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(spawn_rate),
        "--run-time",
        f"{seconds}s",
        # Let each user finish the request in hand, so no write is cut off unrecorded.
        "--stop-timeout",
        str(int(retry_seconds) + 30),
        "--host",
        site.url,
        "--csv",
        str(out / "locust"),
        "--only-summary",
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "WARNING",
    ]
    with open(out / "locust.log", "ab") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


def wait_locust(process: subprocess.Popen, timeout: float) -> None:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        raise RuntimeError("locust did not finish in time") from None


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def locust_total(out: Path) -> int | None:
    """The request count locust itself reports (its stats CSV), to check our own log against."""
    import csv

    with contextlib.suppress(OSError, KeyError, ValueError), open(out / "locust_stats.csv") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                return int(row["Request Count"])
    return None


def recorded_all(out: Path, stats: dict) -> bool:
    """Our per-request log misses nothing: the recorder never raised, and it holds at least
    as many requests as locust counted (locust's final CSV can miss the last few, written
    while the users finish their last task)."""
    log = (out / "locust.log").read_text(errors="replace") if (out / "locust.log").exists() else ""
    total = locust_total(out)
    return "Uncaught exception in event handler" not in log and total is not None and stats["requests"] >= total


def is_failure(record: dict) -> bool:
    """Any error status, a connection error or timeout, or a response the user marked bad."""
    return record["error"] is not None or not 200 <= record["status"] < 400


def summarize(records: list[dict]) -> dict:
    """Totals, req/s over the run's span, latency percentiles (ms), failures by kind."""
    if not records:
        return {"requests": 0, "req_per_s": 0, "p50_ms": 0, "p95_ms": 0, "p99_ms": 0, "max_ms": 0, "errors": 0}
    durations = sorted(r["ms"] for r in records)
    first = min(r["t"] for r in records)
    last = max(r["t"] + r["ms"] / 1000 for r in records)
    failures = [r for r in records if is_failure(r)]
    return {
        "requests": len(records),
        "seconds": round(last - first, 1),
        "req_per_s": round(len(records) / max(last - first, 1e-9), 1),
        "p50_ms": round(percentile(durations, 50), 1),
        "p95_ms": round(percentile(durations, 95), 1),
        "p99_ms": round(percentile(durations, 99), 1),
        "max_ms": round(durations[-1], 1),
        "errors": len(failures),
        "errors_by_kind": dict(Counter(f"{r['name']} -> {r['status'] or r['error']}" for r in failures)),
        "tracebacks": sum(1 for r in records if r["traceback"]),
    }


def by_endpoint(records: list[dict]) -> dict:
    groups = defaultdict(list)
    for record in records:
        groups[record["name"]].append(record)
    return {name: summarize(group) for name, group in sorted(groups.items())}


def print_table(title: str, stats: dict, endpoints: dict) -> None:
    print(f"\n{title}")
    print(f"{'endpoint':<32} {'requests':>8} {'req/s':>7} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'errors':>6}")
    for name, row in [*endpoints.items(), ("TOTAL", stats)]:
        print(
            f"{name:<32} {row['requests']:>8} {row['req_per_s']:>7} {row['p50_ms']:>7} {row['p95_ms']:>7} "
            f"{row['p99_ms']:>7} {row['max_ms']:>7} {row['errors']:>6}"
        )


# --- Mail --------------------------------------------------------------------------------


def wait_for_mail(site, timeout: float, *, bring_forward: bool = False, stall: float = 15) -> dict:
    """Poll the outbox until nothing is queued or sending (or `timeout`); with
    `bring_forward`, due-later retries are made due now on each poll. A backlog that
    has not moved for `stall` seconds is stuck (a worker died holding it): waiting
    longer changes nothing. (Every drill delivers to a listening sink by then, so no
    row is merely waiting for a scheduled retry.)"""
    started = time.monotonic()
    state, moved, first_backlog, last, last_change = {}, 0, None, None, time.monotonic()
    while time.monotonic() - started < timeout:
        state = django_call(site, "mail", "bring-forward" if bring_forward else "look")
        moved += state.pop("moved")
        backlog = (state["states"].get("queued", 0), state["states"].get("sending", 0))
        first_backlog = sum(backlog) if first_backlog is None else first_backlog
        if not sum(backlog):
            break
        if backlog != last:
            last, last_change = backlog, time.monotonic()
        elif time.monotonic() - last_change > stall:
            break
        time.sleep(2)
    state["waited_s"] = round(time.monotonic() - started, 1)
    state["retries_brought_forward"] = moved
    state["backlog_at_start"] = first_backlog
    return state


# --- The whole run -----------------------------------------------------------------------


def run(args) -> int:
    from bench.server import running_site

    out = Path(args.out or tempfile.mkdtemp(prefix="irms-load-"))
    out.mkdir(parents=True, exist_ok=True)
    sink_port = free_port()
    env = {**NO_THROTTLE, "EMAIL_URL": f"smtp://127.0.0.1:{sink_port}", "EMAIL_TIMEOUT": "10"}
    print(f"Output in {out}")
    phases = {"start": time.monotonic()}
    with (
        MailSink(sink_port) as sink,
        running_site(
            port=args.port or free_port(),
            database="irms_load",
            workers=args.workers,
            env=env,
            db_worker=True,
            log_dir=out / "logs",
        ) as site,
    ):
        phases["site up"] = time.monotonic()
        prepared = prepare(
            site, out, accounts=args.users, responders=max(1, args.users // 5), seed_incidents=args.seed_incidents
        )
        print(f"Site {site.url}, pids {site.pids()}; prepared {prepared}")
        phases["seeded"] = time.monotonic()
        locust = start_locust(site, out, users=args.users, seconds=args.seconds)
        meter = CpuMeter({"gunicorn": site.worker_pids(), "db_worker": [site.db_worker_pid]})
        wait_locust(locust, timeout=args.seconds + 120)
        cpu = meter.result()
        phases["load done"] = time.monotonic()
        worker_alive = site.db_worker_pid is not None
        mail = wait_for_mail(site, timeout=args.mail_timeout)
        report = django_call(site, "verify", str(out / "ledger.jsonl"), json.dumps(sink.per_recipient()))
        phases["verified"] = time.monotonic()
    phases["stopped"] = time.monotonic()
    phases = {name: round(t - phases["start"], 1) for name, t in phases.items() if name != "start"}

    records = read_jsonl(out / "requests.jsonl")
    stats, endpoints = summarize(records), by_endpoint(records)
    print_table(f"{args.users} users, {args.seconds} s, {args.workers} gunicorn workers", stats, endpoints)
    checks = {
        "every request recorded (our log has locust's count or more)": recorded_all(out, stats),
        "no failed request": stats["errors"] == 0 and stats["requests"] > 0,
        "no traceback in any body": stats["tracebacks"] == 0,
        "every acknowledged write stored exactly once": report["ok"],
        "mail worker still running": worker_alive,
        "every e-mail sent exactly once": mail["states"].keys() <= {"sent"} and report["mail"]["ok"],
    }
    summary = {
        "machine": machine(),
        "settings": vars(args),
        "stats": stats,
        "endpoints": endpoints,
        "cpu_during_load": cpu,
        "phases_s": phases,
        "verify": report,
        "mail": mail,
        "checks": checks,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nCPU during the load (2 cores = 100%): {cpu}; load average now {os.getloadavg()[:3]}")
    print(f"Phases (s since start): {phases}")
    print(f"Writes: {json.dumps(report['counts'])}")
    print(
        f"Mail: {report['mail']['rows']} rows, states {mail['states']}; {mail['backlog_at_start']} still queued "
        f"when the load stopped, drained {mail['waited_s']} s later"
    )
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    if not report["ok"]:
        print(json.dumps(report["problems"], indent=2)[:4000])
    print(f"Summary: {out / 'summary.json'}")
    return 0 if all(checks.values()) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--seed-incidents", type=int, default=5000, help="history in the database before the load")
    parser.add_argument("--mail-timeout", type=float, default=90, help="seconds to wait for the outbox to drain")
    parser.add_argument("--out", help="directory for logs and results (default: a new temporary one)")
    args = parser.parse_args(argv)
    return run(args)


# --- Django side (run in a subprocess with the site's environment) ----------------------


def _fixtures(path: str, accounts: str, responders: str) -> dict:
    """One account per simulated user, with an API token and a signed-in web session.
    Mail preferences are set so that the load queues mail of every kind without every
    response mailing every earlier responder (the queue would be the bottleneck)."""
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from accounts.models import User
    from incidents.models import DEFAULT_TEAM, Incident, Status, Team, Visibility

    team = Team.objects.get(slug=DEFAULT_TEAM)
    rows = []
    for n in range(int(accounts)):
        responder = n < int(responders)
        user = User(
            username=f"load{n:03d}",
            email=f"load{n:03d}@load.example",
            email_on_sign_in=False,
            email_on_my_report=True,
            email_on_new_incident=responder and n < 2,
            email_on_response=n % 5 == 0,
            email_on_status_change=True,
        )
        user.set_unusable_password()  # never signs in with a password: no hashing cost
        user.save()
        if responder:
            team.members.add(user)
        client = Client()
        client.force_login(user, backend="accounts.backends.UsernameOrEmailBackend")
        rows.append(
            {
                "username": user.username,
                "responder": responder,
                "token": Token.objects.create(user=user).key,
                "session": client.cookies["sessionid"].value,
            }
        )
    incidents = [
        str(i)
        for i in Incident.objects.filter(visibility=Visibility.PUBLIC)
        .exclude(status=Status.CLOSED)
        .values_list("incident_id", flat=True)
    ]
    Path(path).write_text(json.dumps({"accounts": rows, "incidents": incidents}))
    return {"accounts": len(rows), "incidents": len(incidents)}


def _mail(action: str) -> dict:
    """The outbox by state; with `bring-forward`, first make every delayed retry due now
    (what an operator does after fixing the mail server, instead of waiting)."""
    from django.db.models import Count
    from django.utils import timezone as dj_timezone
    from django_tasks_db.models import DBTaskResult, get_date_max

    from notifications.models import OutgoingEmail

    moved = 0
    if action == "bring-forward":
        now = dj_timezone.now()
        moved = (
            DBTaskResult.objects.filter(status="READY", run_after__gt=now)
            .exclude(run_after=get_date_max())
            .update(run_after=now)
        )
    states = dict(OutgoingEmail.objects.order_by().values_list("state").annotate(n=Count("pk")))
    attempts = dict(OutgoingEmail.objects.order_by().values_list("attempts").annotate(n=Count("pk")))
    tasks = dict(DBTaskResult.objects.order_by().values_list("status").annotate(n=Count("pk")))
    return {"states": states, "attempts": {str(k): v for k, v in attempts.items()}, "tasks": tasks, "moved": moved}


def _key(text: str) -> str | None:
    if text.startswith("load-key="):
        return text[len("load-key=") :].split(" ", 1)[0]
    return None


def _verify(ledger_path: str, sink_json: str) -> dict:
    """Compare what the site acknowledged (the ledger) with what the database holds."""
    from django.db.models import Count

    from incidents.models import Incident, Response
    from notifications.models import OutgoingEmail

    ledger = read_jsonl(Path(ledger_path))
    problems: list[str] = []
    counts = {}
    for kind, rows in (
        (
            "incident",
            Incident.objects.filter(description__startswith="load-key=").values_list("description", "incident_id"),
        ),
        ("response", Response.objects.filter(description__startswith="load-key=").values_list("description", "pk")),
    ):
        stored = defaultdict(list)
        for text, pk in rows:
            stored[_key(text)].append(str(pk))
        acknowledged: dict[str, str] = {}
        replays = 0
        for entry in ledger:
            if entry["kind"] != kind:
                continue
            replays += entry["replayed"]
            if acknowledged.setdefault(entry["key"], str(entry["id"])) != str(entry["id"]):
                problems.append(f"doubled: {kind} key {entry['key']} acknowledged as two different rows")
        given_up = {e["key"] for e in ledger if e["kind"] == f"{kind}-unacknowledged"}
        doubled = {key: ids for key, ids in stored.items() if len(ids) > 1}
        missing = {key: pk for key, pk in acknowledged.items() if stored.get(key) != [pk]}
        unacknowledged = set(stored) - set(acknowledged)
        problems += [f"doubled: {kind} key {key} stored {len(ids)} times" for key, ids in doubled.items()]
        problems += [f"lost: {kind} {pk} acknowledged (201) but not stored as such" for pk in missing.values()]
        problems += [
            f"unacknowledged: {kind} key {key} stored although never acknowledged"
            + (" (the client gave up on it)" if key in given_up else "")
            for key in unacknowledged
        ]
        counts[kind] = {
            "acknowledged": len(acknowledged),
            "stored": sum(len(ids) for ids in stored.values()),
            "replayed_201s": replays,
            "gave_up": len(given_up),
            "doubled": len(doubled),
            "missing": len(missing),
            "stored_unacknowledged": len(unacknowledged),
        }

    last_status: dict[str, str] = {}
    unknown = set()
    for entry in ledger:
        if entry["kind"] == "status":
            last_status[entry["id"]] = entry["status"]
        elif entry["kind"] == "status-unknown":
            unknown.add(entry["id"])
    checked = {i: s for i, s in last_status.items() if i not in unknown}
    actual = dict(Incident.objects.filter(incident_id__in=list(checked)).values_list("incident_id", "status"))
    actual = {str(k): v for k, v in actual.items()}
    wrong = {i: (s, actual.get(i)) for i, s in checked.items() if actual.get(i) != s}
    problems += [f"lost: incident {i} acknowledged as {s}, stored as {a}" for i, (s, a) in wrong.items()]
    counts["status"] = {"acknowledged_changes": sum(e["kind"] == "status" for e in ledger), "wrong": len(wrong)}

    sink = {address.lower(): n for address, n in json.loads(sink_json).items()}
    sent = dict(
        OutgoingEmail.objects.filter(state=OutgoingEmail.State.SENT)
        .order_by()
        .values_list("to")
        .annotate(n=Count("pk"))
    )
    sent = {address.lower(): n for address, n in sent.items()}
    mail_problems = [
        f"{address}: {sent.get(address, 0)} rows sent, {sink.get(address, 0)} messages received"
        for address in sorted(set(sent) | set(sink))
        if sent.get(address, 0) != sink.get(address, 0)
    ]
    every = dict(OutgoingEmail.objects.order_by().values_list("to").annotate(n=Count("pk")))
    every = {address.lower(): n for address, n in every.items()}
    rows = sum(every.values())
    mail = {
        "rows": rows,
        "sent_rows": sum(sent.values()),
        "received": sum(sink.values()),
        "recipients": len(every),
        "retried_rows": OutgoingEmail.objects.filter(attempts__gt=1).count(),
        "ok": not mail_problems and sum(sent.values()) == rows,
        # Told apart when it is not: a message never received, one received twice, or
        # one received whose row does not say "sent" (a retry from the admin would
        # then send it again).
        "recipients_short": sum(1 for a, n in every.items() if sink.get(a, 0) < n),
        "recipients_doubled": sum(1 for a, n in sink.items() if n > every.get(a, 0)),
        "rows_not_sent": dict(
            OutgoingEmail.objects.exclude(state=OutgoingEmail.State.SENT)
            .order_by()
            .values_list("state")
            .annotate(n=Count("pk"))
        ),
        "problems": mail_problems[:50],
    }
    return {
        "ok": not problems,
        # The outage drill's test: an unacknowledged write may or may not have happened.
        "nothing_lost_or_doubled": not any(p.startswith(("lost", "doubled")) for p in problems),
        "counts": counts,
        "problems": problems[:200],
        "mail": mail,
    }


def django_main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "irms_site.settings")
    import django

    django.setup()
    command, *args = argv
    handlers = {"fixtures": _fixtures, "verify": _verify, "mail": _mail}
    print(json.dumps(handlers[command](*args), default=str))


if __name__ == "__main__":
    if sys.argv[1:2] == ["_django"]:
        django_main(sys.argv[2:])
    else:
        sys.exit(main())
