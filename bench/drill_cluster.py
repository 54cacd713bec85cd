"""`make drill-cluster` (issue #19): IRMS on several hosts, one fails, nothing is lost.

    python bench/drill_cluster.py [--users 50] [--seconds 60] [--seed-incidents 1000] [--out DIR]

Runs as root. Every host is a network namespace of its own (`irmsdrill-*`), each with one
veth into a bridge that lives in a hub namespace, on the drill's private subnet
10.213.0.0/24; nothing is added to the machine's own namespace and no packet leaves the
drill's namespaces:

    lb   10.213.0.2   HAProxy (deploy/haproxy.cfg), health-checking /healthz
    app1 10.213.0.11  gunicorn -c deploy/gunicorn.conf.py (2 sync workers)
    app2 10.213.0.12  the same
    w1   10.213.0.21  manage.py mail_worker
    w2   10.213.0.22  the same
    db   10.213.0.31  the drill's own mariadbd (data directory in a temp dir) and redis-server
    sink 10.213.0.41  an SMTP sink (aiosmtpd) and an HTTP webhook receiver, counting deliveries
    load 10.213.0.51  locust (bench/load/locustfile.py), the /healthz probe, the slow clients

Under the load mix it
  1. SIGKILLs app1's gunicorn (master and workers) for 20 s, then starts it again;
  2. SIGKILLs worker w1 while mail and webhook deliveries are in hand, then starts it again;
  3. (the replica link cut is not run: the drill runs without a replica);
  4. holds 50 slowloris connections against the balancer for 30 s while timing /healthz.
Pass: every failed request was in flight when app1 died; every acknowledged write is stored
exactly once (and nothing is doubled); every mail and every webhook is delivered exactly
once (a copy of one in flight on the killed worker, under its one Message-ID / webhook-id,
is counted and reported); throughput after the restart is back to at least 70% of before;
/healthz under the slow clients stays under 1 s. Everything (namespaces, processes, temp
dirs) is removed in a `finally`, whatever happens.
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
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PREFIX = "irmsdrill-"
SUBNET = "10.213.0"
HOSTS = {
    "lb": 2,
    "app1": 11,
    "app2": 12,
    "w1": 21,
    "w2": 22,
    "db": 31,
    "sink": 41,
    "load": 51,
}
HUB = PREFIX + "hub"
LB_PORT, APP_PORT, DB_PORT, REDIS_PORT, SMTP_PORT, HOOK_PORT = 8080, 8000, 3306, 6379, 2525, 8090
PY = sys.executable


def ip(name: str) -> str:
    return f"{SUBNET}.{HOSTS[name]}"


def ns(name: str) -> str:
    return PREFIX + name


def sh(*command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)  # noqa: S603
    if check and result.returncode:
        raise RuntimeError(f"{' '.join(command)} exited with {result.returncode}:\n{result.stderr[-2000:]}")
    return result


def in_ns(name: str, *command: str) -> list[str]:
    return ["ip", "netns", "exec", ns(name), *command]


# --- The network ---------------------------------------------------------------------------------


def our_namespaces() -> list[str]:
    listed = sh("ip", "netns", "list").stdout.split()
    return [word for word in listed if word.startswith(PREFIX)]


def kill_namespace_processes(name: str) -> None:
    """Every process still in one of our namespaces (nothing else can be in them)."""
    pids = sh("ip", "netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def network_down() -> None:
    for name in our_namespaces():
        kill_namespace_processes(name)
    time.sleep(0.3)
    for name in our_namespaces():
        # Deleting a namespace deletes its end of the veth, and so the pair.
        sh("ip", "netns", "del", name, check=False)


def network_up() -> None:
    sh("ip", "netns", "add", HUB)
    sh("ip", "-n", HUB, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", HUB, "link", "set", "br0", "up")
    for name in HOSTS:
        sh("ip", "netns", "add", ns(name))
        # Made inside the hub, so the machine's own namespace never holds either end.
        sh("ip", "-n", HUB, "link", "add", f"v-{name}", "type", "veth", "peer", "name", "eth0", "netns", ns(name))
        sh("ip", "-n", HUB, "link", "set", f"v-{name}", "master", "br0", "up")
        sh("ip", "-n", ns(name), "addr", "add", f"{ip(name)}/24", "dev", "eth0")
        sh("ip", "-n", ns(name), "link", "set", "eth0", "up")
        sh("ip", "-n", ns(name), "link", "set", "lo", "up")


# --- Processes -----------------------------------------------------------------------------------


class Procs:
    """Every process the drill starts, each in a session of its own (so a SIGKILL to its
    group takes gunicorn's workers too)."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.all: dict[str, subprocess.Popen] = {}

    def start(self, label: str, host: str, command: list[str], env: dict | None = None) -> subprocess.Popen:
        with open(self.logs / f"{label}.log", "ab") as log:
            process = subprocess.Popen(  # noqa: S603
                in_ns(host, *command),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.all[label] = process
        return process

    def kill(self, label: str, sig: int = signal.SIGKILL) -> None:
        process = self.all[label]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    def stop_all(self) -> None:
        for label in list(self.all):
            process = self.all[label]
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.all.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def tail(self, label: str, lines: int = 30) -> str:
        path = self.logs / f"{label}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def wait_for(predicate, timeout: float, what: str, every: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s")


def answers(host: str, url: str, timeout: float = 2) -> bool:
    # The Host the balancer's health check sends (one of ALLOWED_HOSTS).
    probe = sh(
        *in_ns(
            host,
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-m",
            str(timeout),
            "-H",
            "Host: localhost",
            url,
        ),
        check=False,
    )
    return probe.stdout.strip() == "200"


def manage(host: str, env: dict, *args: str, timeout: float = 600) -> str:
    result = subprocess.run(  # noqa: S603
        in_ns(host, PY, "manage.py", *args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)}:\n{result.stderr[-3000:]}")
    return result.stdout


def django(host: str, env: dict, script: str, command: str, *args: str, timeout: float = 300) -> dict:
    result = subprocess.run(  # noqa: S603
        in_ns(host, PY, script, "_django", command, *args),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode:
        raise RuntimeError(f"_django {command}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- The database host ---------------------------------------------------------------------------


def start_database(procs: Procs, base: Path) -> None:
    mysql = pwd.getpwnam("mysql")
    os.chown(base, mysql.pw_uid, mysql.pw_gid)
    sh(
        "mariadb-install-db",
        "--no-defaults",
        f"--datadir={base / 'data'}",
        "--user=mysql",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        timeout=180,
    )
    socket_path = base / "mariadbd.sock"
    procs.start(
        "mariadbd",
        "db",
        [
            "/usr/sbin/mariadbd",
            "--no-defaults",
            f"--datadir={base / 'data'}",
            f"--port={DB_PORT}",
            f"--bind-address={ip('db')}",
            f"--socket={socket_path}",
            f"--pid-file={base / 'mariadbd.pid'}",
            f"--log-error={base / 'error.log'}",
            "--user=mysql",
            "--innodb-buffer-pool-size=256M",
            "--max-connections=300",
            "--skip-name-resolve",
        ],
    )
    procs.start(
        "redis",
        "db",
        ["redis-server", "--bind", ip("db"), "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no"]
        + ["--protected-mode", "no", "--dir", str(base)],
    )

    def ready() -> bool:
        return (
            sh("mariadb", f"--socket={socket_path}", "-uroot", "-e", "SELECT 1", check=False, timeout=10).returncode
            == 0
        )

    wait_for(ready, 60, "mariadbd answering")
    sh(
        "mariadb",
        f"--socket={socket_path}",
        "-uroot",
        "-e",
        f"CREATE DATABASE irms CHARACTER SET utf8mb4; CREATE USER 'irms'@'{SUBNET}.%' IDENTIFIED BY 'drill';"
        f" GRANT ALL ON irms.* TO 'irms'@'{SUBNET}.%';",
    )


# --- The sink host: SMTP and webhooks, counted ---------------------------------------------------


def sink_main(out: str) -> None:
    """Run in the sink namespace: count every mail (by recipient and Message-ID) and every
    webhook (by webhook-id); write the counts to `out` every second and on SIGTERM."""
    import email
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from aiosmtpd.controller import Controller

    lock = threading.Lock()
    mails: list[tuple[str, str]] = []
    hooks: list[str] = []

    class Smtp:
        async def handle_DATA(self, server, session, envelope):
            message_id = email.message_from_bytes(envelope.content).get("Message-ID", "")
            with lock:
                mails.extend((address.lower(), message_id) for address in envelope.rcpt_tos)
            return "250 Message accepted for delivery"

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                hooks.append(self.headers.get("webhook-id", ""))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    def dump():
        with lock:
            data = {"mail": list(mails), "hooks": list(hooks)}
        Path(out + ".tmp").write_text(json.dumps(data))
        os.replace(out + ".tmp", out)

    controller = Controller(Smtp(), hostname=ip("sink"), port=SMTP_PORT)
    controller.start()
    http = ThreadingHTTPServer((ip("sink"), HOOK_PORT), Hook)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    while not stop.wait(1):
        dump()
    dump()
    controller.stop()


# --- Probes from the load host: /healthz and slow clients ----------------------------------------


def probe_main(out: str, seconds: str, slow: str) -> None:
    """Run in the load namespace: time /healthz through the balancer every 0.25 s for
    `seconds`, with `slow` slowloris connections held open meanwhile."""
    import socket
    import urllib.request

    stop = threading.Event()

    def hold():
        while not stop.is_set():
            try:
                with socket.create_connection((ip("lb"), LB_PORT), timeout=5) as connection:
                    connection.sendall(b"GET /incidents/ HTTP/1.1\r\nHost: localhost\r\n")
                    while not stop.wait(2):
                        connection.sendall(b"X-Slow: still-here\r\n")
            except OSError:
                stop.wait(0.1)

    threads = [threading.Thread(target=hold, daemon=True) for _ in range(int(slow))]
    for thread in threads:
        thread.start()
    time.sleep(1)
    times = []
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(f"http://{ip('lb')}:{LB_PORT}/healthz", timeout=1) as response:  # noqa: S310
                response.read()
                times.append(time.monotonic() - started if response.status == 200 else 1.0)
        except OSError:
            times.append(1.0)
        time.sleep(0.25)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    Path(out).write_text(json.dumps(times))


# --- Django side ---------------------------------------------------------------------------------


def _webhook(url: str) -> dict:
    from incidents.models import WebhookEndpoint

    WebhookEndpoint.objects.create(url=url, description="cluster drill receiver")
    return {"ok": True}


def _holding(worker: str, seconds: str, pgid: str) -> dict:
    """Wait (up to `seconds`) until `worker` is running a delivery task, then SIGKILL its
    process group `pgid` at once (from here: the kill lands while that delivery is in
    hand, not a process start later); what it held."""
    from django.db import connection
    from django_tasks_db.models import DBTaskResult

    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        held = [
            (path.rsplit(".", 1)[-1], args["args"][0])
            for path, args, ids in DBTaskResult.objects.filter(status="RUNNING").values_list(
                "task_path", "args_kwargs", "worker_ids"
            )
            if ids and ids[-1] == worker
        ]
        if held:
            os.killpg(int(pgid), signal.SIGKILL)
            return {"holding": held}
        connection.close()  # a fresh snapshot each poll (REPEATABLE READ)
        time.sleep(0.05)
    return {"holding": []}


def _outbox() -> dict:
    from django.db.models import Count

    from notifications.models import OutgoingEmail, WebhookDelivery

    result = {}
    for name, model in (("mail", OutgoingEmail), ("webhook", WebhookDelivery)):
        result[name] = dict(model.objects.order_by().values_list("state").annotate(n=Count("pk")))
    from django_tasks_db.models import DBTaskResult

    for name, model in (("mail", OutgoingEmail), ("webhook", WebhookDelivery)):
        result[f"{name}_rows_tried_twice_or_more"] = model.objects.filter(attempts__gt=1).count()
    result["tasks_failed_worker_lost"] = DBTaskResult.objects.filter(
        status="FAILED", exception_class_path__endswith="WorkerLost"
    ).count()
    result["webhook_ids_sent"] = list(WebhookDelivery.objects.filter(state="sent").values_list("webhook_id", flat=True))
    result["message_ids_sent"] = list(OutgoingEmail.objects.filter(state="sent").values_list("message_id", flat=True))
    return result


def django_main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "irms_site.settings")
    import django as dj

    dj.setup()
    command, *args = argv
    print(json.dumps({"webhook": _webhook, "outbox": _outbox, "holding": _holding}[command](*args), default=str))


# --- The drill -----------------------------------------------------------------------------------


def app_env(base: Path, media: Path) -> dict:
    from bench.load.run_load import NO_THROTTLE

    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env.update(
        NO_THROTTLE,
        DJANGO_SETTINGS_MODULE="irms_site.settings",
        DEBUG="false",
        SECRET_KEY="drill-" + os.urandom(24).hex(),
        ALLOWED_HOSTS=f"{ip('lb')},localhost",
        SITE_URL=f"http://{ip('lb')}:{LB_PORT}",
        DATABASE_URL=f"mysql://irms:drill@{ip('db')}:{DB_PORT}/irms",
        CACHE_URL=f"redis://{ip('db')}:{REDIS_PORT}/0",
        MEDIA_ROOT=str(media),
        EMAIL_URL=f"smtp://{ip('sink')}:{SMTP_PORT}",
        # A lease is 3 x the timeout: 15 s, so a killed worker's message is back within a
        # lease and a sweep, inside the drill's time.
        EMAIL_TIMEOUT="5",
        WEBHOOK_TIMEOUT="5",
        WEBHOOK_ALLOW_HTTP="true",
        WEBHOOK_ALLOW_PRIVATE="true",
        LOG_LEVEL="WARNING",
        WEB_CONCURRENCY="2",
        GUNICORN_GRACEFUL_TIMEOUT="5",
        FORWARDED_ALLOW_IPS=ip("lb"),
        PYTHONUNBUFFERED="1",
    )
    return env


def start_app(procs: Procs, name: str, env: dict) -> None:
    procs.start(
        name,
        name,
        [PY, "-m", "gunicorn", "-c", str(ROOT / "deploy/gunicorn.conf.py"), "--bind", f"{ip(name)}:{APP_PORT}"]
        + ["irms_site.wsgi:application"],
        env,
    )


def start_worker(procs: Procs, name: str, env: dict, worker_id: str) -> None:
    procs.start(
        name,
        name,
        [PY, "manage.py", "mail_worker", "--no-startup-delay", "--interval", "1", "--no-reload"]
        + ["--recover-every", "10", "--worker-id", worker_id],
        env,
    )


def rate(records: list[dict], start: float, end: float) -> float:
    n = sum(1 for r in records if start <= r["t"] < end)
    return round(n / max(end - start, 1e-9), 1)


def run(args) -> int:
    from bench.load.run_load import (
        by_endpoint,
        is_failure,
        machine,
        print_table,
        read_jsonl,
        recorded_all,
        start_locust,
        summarize,
    )
    from bench.server import collect_static

    # A SIGTERM (a CI timeout, say) tears down as a Ctrl-C does, through the `finally`.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if os.geteuid() != 0:
        print("The cluster drill makes network namespaces: run it as root.")
        return 2
    base = Path(tempfile.mkdtemp(prefix="irms-drill-cluster-"))
    base.chmod(0o711)  # the database's own user reaches its data directory inside
    # Results are kept (like `make load`'s); everything else under `base` is removed.
    out = Path(args.out or tempfile.mkdtemp(prefix="irms-drill-cluster-out-"))
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    procs = Procs(logs)
    timeline: dict[str, float] = {}
    print(f"Output in {out}")
    t0 = time.monotonic()
    try:
        network_down()  # a namespace left by a run that was itself killed -9
        network_up()
        dbdir = base / "db"
        dbdir.mkdir()
        start_database(procs, dbdir)
        media = base / "media"
        media.mkdir()
        env = app_env(base, media)
        manage("w2", env, "migrate", "--no-input")
        collect_static(env)
        manage("w2", env, "seed_load", "--incidents", str(args.seed_incidents))
        from bench.load import run_load

        django(
            "w2", env, run_load.__file__, "fixtures", str(out / "fixtures.json"), str(args.users), str(args.users // 5)
        )
        django("w2", env, __file__, "webhook", f"http://{ip('sink')}:{HOOK_PORT}/hook")
        procs.start("sink", "sink", [PY, __file__, "_sink", str(out / "sink.json")], env)
        for name in ("app1", "app2"):
            start_app(procs, name, env)
        for name in ("app1", "app2"):
            wait_for(lambda n=name: answers("load", f"http://{ip(n)}:{APP_PORT}/healthz"), 90, f"{name} up")
        lb_env = {
            **os.environ,
            "IRMS_APP1": f"{ip('app1')}:{APP_PORT}",
            "IRMS_APP2": f"{ip('app2')}:{APP_PORT}",
            "IRMS_LISTEN": f"{ip('lb')}:{LB_PORT}",
            "IRMS_HOST": "localhost",
        }
        procs.start("haproxy", "lb", ["haproxy", "-db", "-f", str(ROOT / "deploy/haproxy.cfg")], lb_env)
        wait_for(lambda: answers("load", f"http://{ip('lb')}:{LB_PORT}/healthz"), 30, "balancer up")
        for name in ("w1", "w2"):
            start_worker(procs, name, env, name)
        time.sleep(3)  # both backends marked up (rise 2, inter 2 s)
        timeline["setup_s"] = round(time.monotonic() - t0, 1)
        print(f"Cluster up in {timeline['setup_s']} s; load: {args.users} users, {args.seconds} s")

        class Site:  # what start_locust needs
            url = f"http://{ip('lb')}:{LB_PORT}"

        locust = start_locust(
            Site, out, users=args.users, seconds=args.seconds, retry_seconds=15, prefix=tuple(in_ns("load"))
        )
        load_start = time.time()

        def at(offset: float) -> None:
            delay = load_start + offset - time.time()
            if delay > 0:
                time.sleep(delay)

        # Fault 1: app1's gunicorn, master and workers, SIGKILL; back 20 s later.
        at(args.kill_app_at)
        timeline["app1_killed"] = time.time()
        procs.kill("app1")
        timeline["app1_dead"] = time.time()  # its master has exited
        # Fault 2: worker w1 SIGKILL the moment it is running a delivery (the load queues
        # mail and webhooks continuously, so there is a backlog behind it).
        at(args.kill_app_at + 5)
        backlog = django("w2", env, __file__, "outbox")
        held = django("w2", env, __file__, "holding", "w1", "10", str(procs.all["w1"].pid))
        procs.kill("w1")  # done already if it held a delivery; otherwise now
        timeline["w1_killed"] = time.time()
        timeline["backlog_at_worker_kill"] = {k: backlog[k] for k in ("mail", "webhook")}
        timeline["w1_held_at_kill"] = held["holding"]
        at(args.kill_app_at + 20)
        start_app(procs, "app1", env)
        timeline["app1_restarted"] = time.time()
        wait_for(lambda: answers("load", f"http://{ip('app1')}:{APP_PORT}/healthz"), 60, "app1 back")
        timeline["app1_answering"] = time.time()
        start_worker(procs, "w1", env, "w1-restarted")
        timeline["w1_restarted"] = time.time()
        # The control: /healthz under the load alone, no slow clients.
        at(args.kill_app_at + 24)
        control = subprocess.run(  # noqa: S603
            in_ns("load", PY, __file__, "_probe", str(out / "probe-control.json"), "6", "0"),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if control.returncode:
            raise RuntimeError(f"probe failed: {control.stderr[-2000:]}")
        # Fault 4: slow clients against the balancer, /healthz timed meanwhile.
        at(args.kill_app_at + 32)
        timeline["slowloris_start"] = time.time()
        probe = subprocess.run(  # noqa: S603
            in_ns("load", PY, __file__, "_probe", str(out / "probe.json"), str(args.slow_seconds), str(args.slow)),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=args.slow_seconds + 60,
        )
        timeline["slowloris_end"] = time.time()
        if probe.returncode:
            raise RuntimeError(f"probe failed: {probe.stderr[-2000:]}")
        locust.wait(timeout=args.seconds + 120)
        timeline["load_end"] = time.time()

        # Drain: every mail and webhook sent (the killed worker's leased rows come back
        # after their lease, 15 s, at the next sweep).
        deadline = time.monotonic() + args.drain_timeout
        while True:
            outbox = django("w2", env, __file__, "outbox")
            pending = sum(
                n for kind in ("mail", "webhook") for state, n in outbox[kind].items() if state in ("queued", "sending")
            )
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(3)
        timeline["drained_s_after_load"] = round(time.time() - timeline["load_end"], 1)
        time.sleep(2)  # the sink writes its counts every second
        sink = json.loads((out / "sink.json").read_text())
        per_recipient = dict(Counter(address for address, _ in sink["mail"]))
        report = django("w2", env, run_load.__file__, "verify", str(out / "ledger.jsonl"), json.dumps(per_recipient))
    finally:
        procs.stop_all()
        network_down()
        left = our_namespaces()
        shutil.rmtree(base, ignore_errors=True)
        print(f"Torn down in {round(time.monotonic() - t0, 1)} s since start; namespaces left: {left or 'none'}")

    # --- The verdict -------------------------------------------------------------------------------
    records = read_jsonl(out / "requests.jsonl")
    stats, endpoints = summarize(records), by_endpoint(records)
    print_table(f"{args.users} users, {args.seconds} s, through HAProxy to 2 x 2 sync workers", stats, endpoints)
    killed = timeline["app1_killed"]
    failures = [r for r in records if is_failure(r)]
    # The host dies over a few milliseconds (SIGKILL to the group, then the kernel closes
    # the listening socket): in flight is a request under way at any moment of that.
    dead = timeline["app1_dead"] + 0.1
    in_flight = [r for r in failures if r["t"] <= dead and r["t"] + r["ms"] / 1000 + 0.05 >= killed]
    other = [r for r in failures if r not in in_flight]
    before = rate(records, load_start + 3, killed)
    during = rate(records, killed, timeline["app1_answering"])
    after = rate(records, timeline["app1_answering"] + 2, timeline["slowloris_start"])
    under_slow = rate(records, timeline["slowloris_start"], timeline["slowloris_end"])
    probe_times = json.loads((out / "probe.json").read_text())
    control_times = json.loads((out / "probe-control.json").read_text())
    mail_ids = Counter(message_id for _, message_id in sink["mail"])
    hook_ids = Counter(sink["hooks"])
    sent_mail_ids, sent_hook_ids = set(outbox["message_ids_sent"]), set(outbox["webhook_ids_sent"])
    mail_dupes = {k: n for k, n in mail_ids.items() if n > 1}
    hook_dupes = {k: n for k, n in hook_ids.items() if n > 1}
    rows_pending = {kind: {s: n for s, n in outbox[kind].items() if s != "sent"} for kind in ("mail", "webhook")}
    numbers = {
        "requests": stats["requests"],
        "req_per_s": stats["req_per_s"],
        "p50_p95_p99_ms": [stats["p50_ms"], stats["p95_ms"], stats["p99_ms"]],
        "failed_requests": len(failures),
        "failed_in_flight_on_app1_at_kill": len(in_flight),
        "failed_otherwise": len(other),
        "failures_by_kind": dict(Counter(f"{r['name']} -> {r['status'] or r['error']}" for r in failures)),
        "req_per_s_before_kill": before,
        "req_per_s_app1_down": during,
        "req_per_s_after_restart": after,
        "req_per_s_under_slowloris": under_slow,
        "app1_down_s": round(timeline["app1_answering"] - killed, 1),
        "healthz_control_no_slow_clients_median_max_ms": [
            round(sorted(control_times)[len(control_times) // 2] * 1000, 1),
            round(max(control_times) * 1000, 1),
        ],
        "healthz_probes": len(probe_times),
        "healthz_median_ms": round(sorted(probe_times)[len(probe_times) // 2] * 1000, 1) if probe_times else None,
        "healthz_max_ms": round(max(probe_times) * 1000, 1) if probe_times else None,
        "writes": report["counts"],
        "mail_rows_sent": len(sent_mail_ids),
        "mail_received": len(sink["mail"]),
        "mail_doubled_same_message_id": len(mail_dupes),
        "webhooks_sent": len(sent_hook_ids),
        "webhooks_received": len(sink["hooks"]),
        "webhooks_doubled_same_id": len(hook_dupes),
        "outbox_not_sent": rows_pending,
        "backlog_at_worker_kill": timeline["backlog_at_worker_kill"],
        "w1_running_at_kill": timeline["w1_held_at_kill"],
        "tasks_failed_worker_lost": outbox["tasks_failed_worker_lost"],
        "rows_tried_twice_or_more": {k: outbox[f"{k}_rows_tried_twice_or_more"] for k in ("mail", "webhook")},
        "drained_s_after_load": timeline["drained_s_after_load"],
        "setup_s": timeline["setup_s"],
    }
    checks = {
        "every request recorded": recorded_all(out, stats),
        "no failed request but those in flight on app1 when it died": not other,
        "no traceback in any body": stats["tracebacks"] == 0,
        "every acknowledged write stored exactly once, nothing doubled": report["nothing_lost_or_doubled"],
        "every outbox row sent": not any(rows_pending.values()),
        "every mail received, once per row (a copy only of one in flight at the kill, same Message-ID)": (
            set(mail_ids) == sent_mail_ids and len(mail_dupes) <= 1 and report["mail"]["recipients_short"] == 0
        ),
        "every webhook received, once per row (a copy only of one in flight at the kill, same webhook-id)": (
            set(hook_ids) == sent_hook_ids and len(hook_dupes) <= 1
        ),
        "worker w1 was killed while running a delivery": bool(timeline["w1_held_at_kill"]),
        "throughput after the restart >= 70% of before": after >= 0.7 * before,
        "/healthz under 50 slow clients always < 1 s": bool(probe_times) and max(probe_times) < 1,
    }
    summary = {
        "machine": machine(),
        "settings": vars(args),
        "numbers": numbers,
        "timeline_s_into_load": {
            k: round(v - load_start, 2) for k, v in timeline.items() if isinstance(v, float) and v > 1e9
        },
        "checks": checks,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(numbers, indent=2, default=str))
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(f"Summary: {out / 'summary.json'}")
    return 0 if all(checks.values()) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=70)
    parser.add_argument("--seed-incidents", type=int, default=2000)
    parser.add_argument("--kill-app-at", type=float, default=5, help="seconds into the load")
    parser.add_argument("--slow", type=int, default=50, help="slowloris connections")
    parser.add_argument("--slow-seconds", type=float, default=30)
    parser.add_argument("--drain-timeout", type=float, default=120)
    parser.add_argument("--out", help="results and logs (default: a new temporary directory, kept)")
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    if sys.argv[1:2] == ["_django"]:
        django_main(sys.argv[2:])
    elif sys.argv[1:2] == ["_sink"]:
        sink_main(sys.argv[2])
    elif sys.argv[1:2] == ["_probe"]:
        probe_main(*sys.argv[2:5])
    else:
        sys.exit(main())
