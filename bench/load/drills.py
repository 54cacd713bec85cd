"""Fault drills under load (issue #6). Each takes two to three minutes.

    python bench/load/drills.py db-outage [--mariadb private|shared] [--down 10]
    python bench/load/drills.py db-outage --how freeze [--down 40] [--db-read-timeout 5]
    python bench/load/drills.py smtp-outage

db-outage    While 10 users load the site (`locustfile.py`, POSTs retried with the same
             Idempotency-Key for up to 30 s), MariaDB is shut down for 10 seconds and
             started again. Pass: during the outage every answer is a 503 (JSON with an
             `error` for the API, the 503 page for the web; pages that need no database
             may still answer 200) and arrives within 5 s, with no traceback and no
             hung or refused connection; the site answers 2xx again within 10 s of
             MariaDB answering, with no error after that; no acknowledged write is lost
             or doubled. MariaDB is always started again and waited for, whatever
             happens (try/finally).

             `--mariadb private` (the default) runs the drill on a MariaDB server of its
             own (a throw-away data directory on a free port), so stopping it cannot
             disturb anybody else's tests or benchmarks on the machine's server.
             `--mariadb shared` stops and restarts the machine's server on 127.0.0.1:3306
             (`mariadb-admin shutdown`, then `start-stop-daemon --start ... mariadbd`).
             `--how freeze` (private only) hangs the server with SIGSTOP instead, like a
             stalled host or a network that drops packets, and SIGCONTs it afterwards;
             `--db-read-timeout N` gives the site's connections MySQL read/write timeouts
             (through DATABASE_URL) to try the fix for what that drill finds.

smtp-outage  The load runs with the mail worker pointed at a port where nothing listens:
             every message fails and is rescheduled, and no request notices. Then an SMTP
             sink starts on that port, the delayed retries are brought forward (their
             django-tasks-db run_after set to now), and the outbox drains. Pass: no request
             failed, nothing was sent during the outage, and afterwards every OutgoingEmail
             row is "sent" and the sink received exactly one message per row (per recipient).
"""

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.load.run_load import (  # noqa: E402
    NO_THROTTLE,
    MailSink,
    by_endpoint,
    django_call,
    free_port,
    is_failure,
    machine,
    prepare,
    print_table,
    read_jsonl,
    recorded_all,
    start_locust,
    summarize,
    wait_for_mail,
    wait_locust,
)
from bench.server import database_url, running_site  # noqa: E402

MARIADBD = "/usr/sbin/mariadbd"
# During the outage, every answer must come this fast (the site's connect timeout is 3 s).
OUTAGE_MAX_SECONDS = 5.0
# After MariaDB answers again, the site must answer 2xx within this.
RECOVERY_MAX_SECONDS = 10.0


# --- MariaDB servers that can be stopped and started -------------------------------------


class MariaDB:
    port = 3306

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}"

    def ping(self) -> bool:
        result = subprocess.run(  # noqa: S603
            ["mariadb-admin", "-h127.0.0.1", f"-P{self.port}", "-uroot", "--connect-timeout=2", "ping"],  # noqa: S607
            capture_output=True,
            timeout=10,
        )
        return result.returncode == 0

    def wait_answering(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return
            time.sleep(0.2)
        raise RuntimeError(f"MariaDB on port {self.port} did not answer within {timeout:.0f} s")

    def shutdown_command(self) -> bool:
        result = subprocess.run(  # noqa: S603
            ["mariadb-admin", "-h127.0.0.1", f"-P{self.port}", "-uroot", "--connect-timeout=2", "shutdown"],  # noqa: S607
            capture_output=True,
            timeout=60,
        )
        return result.returncode == 0

    def wait_down(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.ping():
                return
            time.sleep(0.1)
        raise RuntimeError(f"MariaDB on port {self.port} still answers {timeout:.0f} s after shutdown")


class SharedMariaDB(MariaDB):
    """The machine's server on 3306, started the way the project's CI starts it."""

    def setup(self) -> None:
        if not self.ping():
            self.start()
        self.wait_answering()

    def _pids(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "exe") == MARIADBD:
                        pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        pids = self._pids()
        if not self.shutdown_command():
            for pid in pids:  # only the mariadbd processes found above, by pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        self.wait_down()
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)

    def start(self) -> None:
        subprocess.run(  # noqa: S603
            ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", MARIADBD],  # noqa: S607
            check=True,
            timeout=30,
        )

    def ensure_running(self) -> None:
        if not self.ping():
            self.start()
        self.wait_answering()

    teardown = ensure_running


class PrivateMariaDB(MariaDB):
    """A MariaDB server of the drill's own: a fresh data directory, a free port."""

    def __init__(self):
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="irms-drill-mariadb-"))
        self.process: subprocess.Popen | None = None

    def setup(self) -> None:
        mysql = pwd.getpwnam("mysql")
        os.chown(self.base, mysql.pw_uid, mysql.pw_gid)
        subprocess.run(  # noqa: S603
            [  # noqa: S607
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.base / 'data'}",
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.start()
        self.wait_answering()

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        with open(self.base / "mariadbd.out", "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [
                    MARIADBD,
                    "--no-defaults",
                    f"--datadir={self.base / 'data'}",
                    f"--port={self.port}",
                    "--bind-address=127.0.0.1",
                    f"--socket={self.base / 'mariadbd.sock'}",
                    f"--pid-file={self.base / 'mariadbd.pid'}",
                    f"--log-error={self.base / 'error.log'}",
                    "--user=mysql",
                    "--innodb-buffer-pool-size=256M",
                    "--max-connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.process is None:
            return
        if not self.shutdown_command():
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.wait_down()

    def freeze(self) -> None:
        """The server hangs (SIGSTOP) instead of going away: connections stay open and
        nothing answers, like a database host that stalls or a network that drops packets."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def ensure_running(self) -> None:
        self.thaw()
        if self.process is None or self.process.poll() is not None:
            self.start()
        self.wait_answering()

    def teardown(self) -> None:
        with contextlib.suppress(Exception):
            self.thaw()
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


# --- Reading the requests log ------------------------------------------------------------


def outage_report(records: list[dict], timeline: dict) -> dict:
    """Everything in flight between the shutdown command and MariaDB answering again,
    then how and when the site came back."""
    begin, answering = timeline["stop_issued"], timeline["answering"]
    during = [r for r in records if r["t"] < answering and r["t"] + r["ms"] / 1000 > begin]
    statuses = {}
    for record in during:
        key = f"{record['name']} -> {record['status'] or record['error']}"
        statuses[key] = statuses.get(key, 0) + 1
    unavailable = [r for r in during if r["status"] == 503]
    bad = [r for r in during if not (r["status"] == 503 or 200 <= r["status"] < 300)]
    api_503 = [r for r in unavailable if " /api/" in r["name"]]
    web_503 = [r for r in unavailable if " /api/" not in r["name"]]
    after = sorted((r for r in records if r["t"] >= timeline["start_issued"]), key=lambda r: r["t"] + r["ms"] / 1000)
    first_ok = next((r for r in after if 200 <= r["status"] < 300 and r["name"] != "GET /"), None)
    recovered_at = first_ok["t"] + first_ok["ms"] / 1000 if first_ok else None
    failures_after = [r for r in records if recovered_at and r["t"] > recovered_at and is_failure(r)]
    return {
        "requests_during_outage": len(during),
        "statuses_during_outage": dict(sorted(statuses.items())),
        "max_ms_during_outage": max((r["ms"] for r in during), default=0),
        "not_503_or_2xx": len(bad),
        "api_503_without_json_error": sum(1 for r in api_503 if not r["json_error"]),
        "web_503_not_html": sum(1 for r in web_503 if not r["html"]),
        "tracebacks": sum(1 for r in records if r["traceback"]),
        "first_2xx_after_start_s": round(recovered_at - timeline["start_issued"], 2) if recovered_at else None,
        "first_2xx_after_answering_s": round(recovered_at - answering, 2) if recovered_at else None,
        "failures_after_recovery": len(failures_after),
        "failures_after_recovery_by_kind": sorted(
            {f"{r['name']} -> {r['status'] or r['error']}" for r in failures_after}
        ),
    }


def finish(out: Path, summary: dict, checks: dict) -> int:
    summary["checks"] = checks
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(f"Summary: {out / 'summary.json'}")
    return 0 if all(checks.values()) else 1


# --- The drills --------------------------------------------------------------------------


def db_outage(args, out: Path) -> int:
    server = PrivateMariaDB() if args.mariadb == "private" else SharedMariaDB()
    timeline: dict[str, float] = {}
    sink_port = free_port()
    env = {**NO_THROTTLE, "EMAIL_URL": f"smtp://127.0.0.1:{sink_port}", "EMAIL_TIMEOUT": "10"}
    try:
        server.setup()
        if args.db_read_timeout:
            # MySQLdb's read/write timeouts, through DATABASE_URL's query (django-environ
            # puts unknown parameters into OPTIONS, which settings.py extends).
            seconds = args.db_read_timeout
            env["DATABASE_URL"] = (
                f"{database_url('irms_drill_db', server.url)}?read_timeout={seconds}&write_timeout={seconds}"
            )
        with (
            MailSink(sink_port) as sink,
            running_site(
                port=free_port(),
                database="irms_drill_db",
                server_url=server.url,
                workers=args.workers,
                env=env,
                db_worker=True,
                log_dir=out / "logs",
            ) as site,
        ):
            prepared = prepare(site, out, accounts=args.users, responders=max(1, args.users // 5), seed_incidents=2000)
            print(f"Site {site.url} on MariaDB {server.url} ({args.mariadb}); {prepared}")
            locust = start_locust(site, out, users=args.users, seconds=args.seconds, retry_seconds=30)
            down, up = (server.stop, server.start) if args.how == "stop" else (server.freeze, server.thaw)
            try:
                time.sleep(args.warmup)
                print(f"MariaDB: {args.how} for {args.down} s")
                try:
                    timeline["stop_issued"] = time.time()
                    down()
                    timeline["stopped"] = time.time()
                    time.sleep(max(0.0, args.down - (timeline["stopped"] - timeline["stop_issued"])))
                    timeline["start_issued"] = time.time()
                    up()
                    server.wait_answering()
                    timeline["answering"] = time.time()
                finally:
                    # Whatever happened above, MariaDB is running and answering again.
                    server.ensure_running()
                print(f"MariaDB answering again after {timeline['answering'] - timeline['stop_issued']:.1f} s")
            finally:
                wait_locust(locust, timeout=args.seconds + 120)
            worker = {"alive": site.db_worker_pid is not None}
            if not worker["alive"]:
                # What an operator's process manager would do; reported as a finding.
                worker["exit_code"] = site.db_worker.returncode if site.db_worker else None
                worker["log_tail"] = site.log("db_worker", lines=6)
                site.db_worker = None
                site.start_db_worker()
            mail = wait_for_mail(site, timeout=90)
            report = django_call(site, "verify", str(out / "ledger.jsonl"), json.dumps(sink.per_recipient()))
    finally:
        server.teardown()

    records = read_jsonl(out / "requests.jsonl")
    stats = summarize(records)
    print_table(
        f"{args.users} users, {args.seconds} s, MariaDB {args.how} for {args.down} s", stats, by_endpoint(records)
    )
    outage = outage_report(records, timeline)
    print(json.dumps(outage, indent=2))
    print(f"Writes: {json.dumps(report['counts'])}")
    print(f"Mail worker after the outage: {worker}")
    summary = {
        "drill": "db-outage",
        "machine": machine(),
        "settings": vars(args),
        "timeline": {k: round(v - timeline["stop_issued"], 2) for k, v in timeline.items()},
        "stats": stats,
        "outage": outage,
        "verify": report,
        "mail": mail,
        "db_worker": worker,
    }
    return finish(
        out,
        summary,
        {
            "every request recorded (our log has locust's count or more)": recorded_all(out, stats),
            "requests were answered during the outage": outage["requests_during_outage"] > 0,
            "every answer during the outage is 503 (or 2xx from a page that needs no database)": outage[
                "not_503_or_2xx"
            ]
            == 0,
            f"every answer during the outage within {OUTAGE_MAX_SECONDS:.0f} s": outage["max_ms_during_outage"]
            <= OUTAGE_MAX_SECONDS * 1000,
            "API 503s are JSON with an error, web 503s the HTML page": outage["api_503_without_json_error"] == 0
            and outage["web_503_not_html"] == 0,
            "no traceback in any body": outage["tracebacks"] == 0,
            f"2xx again within {RECOVERY_MAX_SECONDS:.0f} s of MariaDB answering": outage["first_2xx_after_answering_s"]
            is not None
            and outage["first_2xx_after_answering_s"] <= RECOVERY_MAX_SECONDS,
            "no failed request after recovery": outage["failures_after_recovery"] == 0,
            "no acknowledged write lost or doubled": report["nothing_lost_or_doubled"],
            "every e-mail sent exactly once (after the worker was running again)": report["mail"]["ok"],
        },
    )


def smtp_outage(args, out: Path) -> int:
    dead_port = free_port()  # nothing listens here until the sink starts
    env = {**NO_THROTTLE, "EMAIL_URL": f"smtp://127.0.0.1:{dead_port}", "EMAIL_TIMEOUT": "10"}
    with running_site(
        port=free_port(),
        database="irms_drill_smtp",
        workers=args.workers,
        env=env,
        db_worker=True,
        log_dir=out / "logs",
    ) as site:
        prepared = prepare(site, out, accounts=args.users, responders=max(1, args.users // 5), seed_incidents=2000)
        print(f"Site {site.url}; mail to 127.0.0.1:{dead_port}, where nothing listens; {prepared}")
        locust = start_locust(site, out, users=args.users, seconds=args.seconds)
        wait_locust(locust, timeout=args.seconds + 120)
        time.sleep(3)  # let the worker try the last messages once
        during = django_call(site, "mail", "look")
        print(f"After the load, SMTP down: {during}")
        with MailSink(dead_port) as sink:
            started = time.monotonic()
            mail = wait_for_mail(site, timeout=args.drain_timeout, bring_forward=True)
            drained_s = round(time.monotonic() - started, 1)
            report = django_call(site, "verify", str(out / "ledger.jsonl"), json.dumps(sink.per_recipient()))
        worker_alive = site.db_worker_pid is not None

    records = read_jsonl(out / "requests.jsonl")
    stats = summarize(records)
    print_table(f"{args.users} users, {args.seconds} s, SMTP down", stats, by_endpoint(records))
    print(f"After the sink started: {mail}, drained in {drained_s} s")
    print(f"Mail check: {json.dumps(report['mail'])}")
    summary = {
        "drill": "smtp-outage",
        "machine": machine(),
        "settings": vars(args),
        "stats": stats,
        "mail_during_outage": during,
        "mail_after": mail,
        "drained_s": drained_s,
        "verify": report,
    }
    return finish(
        out,
        summary,
        {
            "every request recorded (our log has locust's count or more)": recorded_all(out, stats),
            "no failed request while SMTP was down": stats["errors"] == 0 and stats["requests"] > 0,
            "nothing sent, nothing given up on during the outage": not during["states"].get("sent")
            and not during["states"].get("failed")
            and during["states"].get("queued", 0) > 0,
            "every acknowledged write stored exactly once": report["ok"],
            "every OutgoingEmail row sent": mail["states"].keys() <= {"sent"},
            "the sink got exactly one message per row, per recipient": report["mail"]["ok"],
            "mail worker still running": worker_alive,
        },
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="drill", required=True)
    db = sub.add_parser("db-outage", help="stop MariaDB for a while under load")
    db.add_argument("--mariadb", choices=["private", "shared"], default="private")
    db.add_argument(
        "--how",
        choices=["stop", "freeze"],
        default="stop",
        help="stop: shut the server down and start it again; freeze: SIGSTOP it, then SIGCONT (private only)",
    )
    db.add_argument(
        "--db-read-timeout",
        type=int,
        default=0,
        metavar="SECONDS",
        help="give the site's database connections read/write timeouts (to try the fix for a frozen server)",
    )
    db.add_argument("--users", type=int, default=10)
    db.add_argument("--seconds", type=int, default=40)
    db.add_argument("--warmup", type=float, default=12, help="seconds of load before MariaDB stops")
    db.add_argument("--down", type=float, default=10, help="seconds MariaDB stays down")
    smtp = sub.add_parser("smtp-outage", help="deliver mail to a dead port under load, then recover")
    smtp.add_argument("--users", type=int, default=20)
    smtp.add_argument("--seconds", type=int, default=40)
    smtp.add_argument("--drain-timeout", type=float, default=120)
    for each in (db, smtp):
        each.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
        each.add_argument("--out", help="directory for logs and results (default: a new temporary one)")
    args = parser.parse_args(argv)
    if args.drill == "db-outage" and args.how == "freeze" and args.mariadb == "shared":
        parser.error("--how freeze hangs every client of the server: only with --mariadb private")
    out = Path(args.out or tempfile.mkdtemp(prefix=f"irms-{args.drill}-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"Output in {out}")
    return db_outage(args, out) if args.drill == "db-outage" else smtp_outage(args, out)


if __name__ == "__main__":
    sys.exit(main())
