"""The killed-worker drill: a batch of mail, `kill -9` of the mail worker in the middle of
one message, and what becomes of every message.

    python bench/load/kill_drill.py [--messages 200] [--victim 5] [--moment before|after|both]
                                    [--workers 1] [--watch 240] [--root DIR] [--out DIR]

On a fresh MariaDB database (`bench.server`), with production settings (EMAIL_TIMEOUT 20 s,
so a 60-s lease), `--messages` welcome mails are queued and `manage.py mail_worker`
(`--workers` of them) delivers them over SMTP to a sink on 127.0.0.1 that this script runs.
The sink stalls on the `--victim`-th message:

- `before`: on DATA, never answering: the server never took the message;
- `after`: it takes the message (250), then stalls the QUIT, so the worker has its 250
  but has not recorded it.

The worker sending it is then killed with SIGKILL. With one worker, a new one starts a
second later (what a process manager does); with more, the others carry on and nothing
is started. The drill then watches the outbox for up to `--watch` seconds: how long
until every row is `sent` (if ever), what is left `queued` or `sending`, which
django-tasks-db tasks are left RUNNING, and how many copies of each message (and how
many distinct Message-IDs) the sink received.

`--root` runs another checkout of IRMS (its `manage.py`, its code), e.g. the commit before
a fix, to measure "before". Results go to `summary.json` in `--out` (or a new temporary
directory), with each worker's log; docs/reliability.md records measured runs.
"""

# A harness: it runs this project's own commands on the local machine.
# ruff: noqa: S603

import argparse
import asyncio
import contextlib
import email
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DOMAIN = "drill.example"
DATABASE = "irms_drill_kill"


# --- The SMTP sink ---------------------------------------------------------------------------


class TrapSink:
    """An SMTP server (aiosmtpd) that keeps (recipient, Message-ID) of every message it
    accepts, and stalls once on the first message to `trap_rcpt` (see the module's
    docstring); `trapped` is set when it does."""

    STALL_SECONDS = 600

    def __init__(self, port: int, *, trap_rcpt: str, moment: str):
        from aiosmtpd.controller import Controller

        self.lock = threading.Lock()
        self.received: list[tuple[str, str, float]] = []
        self.trap_rcpt, self.moment = trap_rcpt, moment
        self.trapped = threading.Event()
        self._trap_session = None
        self.controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server, session, envelope):
        (rcpt,) = envelope.rcpt_tos
        if rcpt == self.trap_rcpt and self.moment == "before" and not self.trapped.is_set():
            self.trapped.set()
            await asyncio.sleep(self.STALL_SECONDS)
            return "451 Too late"
        message_id = email.message_from_bytes(envelope.content).get("Message-ID", "")
        with self.lock:
            self.received.append((rcpt, message_id, time.time()))
        if rcpt == self.trap_rcpt and self.moment == "after" and self._trap_session is None:
            self._trap_session = session
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server, session, envelope):
        if session is self._trap_session and not self.trapped.is_set():
            self.trapped.set()
            await asyncio.sleep(self.STALL_SECONDS)
        return "221 Bye"

    def report(self) -> dict:
        with self.lock:
            copies = Counter(rcpt for rcpt, _, _ in self.received)
            ids = {rcpt: {mid for r, mid, _ in self.received if r == rcpt} for rcpt in copies}
        return {
            "received": sum(copies.values()),
            "recipients": len(copies),
            "doubled": {rcpt: {"copies": n, "message_ids": len(ids[rcpt])} for rcpt, n in copies.items() if n > 1},
        }

    def copies_of(self, rcpt: str) -> list[float]:
        with self.lock:
            return [at for r, _, at in self.received if r == rcpt]

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


# --- The drill ---------------------------------------------------------------------------------


def django(root: Path, env: dict, command: str, *args: str) -> dict:
    """Run `_django <command>` of this file in `root`'s code with the drill's settings."""
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "_django", command, *args],
        cwd=root,
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"_django {command} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def start_worker(root: Path, env: dict, out: Path, name: str) -> subprocess.Popen:
    with open(out / f"worker-{name}.log", "ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "mail_worker",
                "--no-startup-delay",
                "--interval",
                "1",
                "--no-reload",
                "--worker-id",
                name,
            ],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_moment(args, moment: str, out: Path) -> dict:
    from bench.server import create_database, drop_database, free_port, site_env, stop_process

    root = Path(args.root).resolve()
    out = out / moment
    out.mkdir(parents=True, exist_ok=True)
    sink_port = free_port()
    url = create_database(DATABASE)
    env = site_env(
        url,
        port=8000,
        overrides={
            "EMAIL_URL": f"smtp://127.0.0.1:{sink_port}",
            "DEFAULT_FROM_EMAIL": f"IRMS <irms@{DOMAIN}>",
            "LOG_LEVEL": "INFO",
        },
    )
    victim = f"drill{args.victim - 1:03d}@{DOMAIN}"
    workers: dict[str, subprocess.Popen] = {}
    timeline: dict[str, float] = {}
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"], cwd=root, env=env, check=True, capture_output=True
        )
        queued = django(root, env, "queue", str(args.messages))
        with TrapSink(sink_port, trap_rcpt=victim, moment=moment) as sink:
            for n in range(args.workers):
                workers[f"w{n + 1}"] = start_worker(root, env, out, f"w{n + 1}")
            timeline["started"] = time.time()
            if not sink.trapped.wait(120):
                raise RuntimeError("the victim's message never reached the sink")
            timeline["trapped"] = time.time()
            holder = django(root, env, "holder", victim)["worker"]
            os.kill(workers[holder].pid, signal.SIGKILL)
            workers[holder].wait(timeout=10)
            timeline["killed"] = time.time()
            at_kill = django(root, env, "look", victim)
            if args.workers == 1:
                time.sleep(1)
                workers["replacement"] = start_worker(root, env, out, "replacement")
                timeline["replacement_started"] = time.time()
            samples = []
            while time.time() - timeline["killed"] < args.watch:
                state = django(root, env, "look", victim)
                samples.append({"t": round(time.time() - timeline["killed"], 1), **state["states"]})
                if state["victim"]["state"] == "sent" and "all_sent" not in timeline:
                    timeline["victim_sent"] = time.time()
                if not state["unsent"] and "all_sent" not in timeline:
                    timeline["all_sent"] = time.time()
                if "all_sent" in timeline and not state["tasks"].get("RUNNING"):
                    timeline["settled"] = time.time()
                    break
                time.sleep(2)
            final = django(root, env, "look", victim)
            copies = sink.copies_of(victim)
            received = sink.report()
    finally:
        for process in workers.values():
            stop_process(process, grace=10)
        with contextlib.suppress(Exception):
            drop_database(DATABASE)

    since_kill = {key: round(value - timeline["killed"], 1) for key, value in timeline.items() if key != "killed"}
    return {
        "moment": moment,
        "messages": queued["queued"],
        "victim": victim,
        "killed_worker": holder,
        "at_kill": at_kill,
        "final": final,
        "seconds_after_kill": since_kill,
        "victim_copies": len(copies),
        "victim_copies_s_after_kill": [round(at - timeline["killed"], 1) for at in copies],
        "sink": received,
        "samples": samples,
    }


def summarize(result: dict) -> str:
    final, sink = result["final"], result["sink"]
    doubled = ", ".join(
        f"{rcpt}: {d['copies']} copies, {d['message_ids']} Message-ID(s)" for rcpt, d in sink["doubled"].items()
    )
    return (
        f"{result['moment']:>6}: {result['messages']} queued; victim {result['victim']} "
        f"(killed {result['killed_worker']}) at kill {result['at_kill']['victim']}; "
        f"after {result['seconds_after_kill']}: states {final['states']}, tasks {final['tasks']}, "
        f"victim now {final['victim']}; sink got {sink['received']} for {sink['recipients']} recipients"
        + (f"; doubled: {doubled}" if doubled else "; nothing doubled")
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--victim", type=int, default=5, help="which message (1-based) the worker dies on")
    parser.add_argument("--moment", choices=["before", "after", "both"], default="both")
    parser.add_argument("--workers", type=int, default=1, help="1: a replacement starts after the kill")
    parser.add_argument("--watch", type=float, default=240, help="seconds to watch after the kill")
    parser.add_argument("--root", default=str(ROOT), help="the IRMS checkout to run (default: this one)")
    parser.add_argument("--out", help="directory for results and logs (default: a new temporary one)")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="irms-kill-drill-"))
    out.mkdir(parents=True, exist_ok=True)
    from bench.load.run_load import machine

    moments = ["before", "after"] if args.moment == "both" else [args.moment]
    results = [run_moment(args, moment, out) for moment in moments]
    (out / "summary.json").write_text(
        json.dumps({"machine": machine(), "settings": vars(args), "runs": results}, indent=2)
    )
    for result in results:
        print(summarize(result))
    print(f"Summary: {out / 'summary.json'}")
    ok = all(
        not r["final"]["unsent"]
        and not r["final"]["tasks"].get("RUNNING")
        and all(d["message_ids"] == 1 for d in r["sink"]["doubled"].values())
        and set(r["sink"]["doubled"]) <= {r["victim"]}
        for r in results
    )
    print(
        "PASS: every message sent, nothing left RUNNING, a copy only of the victim, with its Message-ID"
        if ok
        else "FAIL"
    )
    return 0 if ok else 1


# --- Django side (run in a subprocess, in the checkout under test) ---------------------------


def _queue(count: str) -> dict:
    from notifications.outbox import queue_email

    for n in range(int(count)):
        queue_email(
            kind="welcome",
            to=f"drill{n:03d}@{DOMAIN}",
            context={"user": {"username": f"drill{n:03d}"}, "dashboard_url": "http://127.0.0.1:8000/"},
        )
    return {"queued": int(count)}


def _holder(address: str) -> dict:
    """The worker whose task is delivering the message to `address` (the last to take it)."""
    from django_tasks_db.models import DBTaskResult

    from notifications.models import OutgoingEmail

    pk = OutgoingEmail.objects.get(to=address).pk
    for task in DBTaskResult.objects.filter(status="RUNNING").order_by("-started_at"):
        if task.args_kwargs["args"][0] == pk:
            return {"worker": task.worker_ids[-1]}
    raise RuntimeError(f"no RUNNING task for {address}")


def _look(address: str) -> dict:
    from django.db.models import Count
    from django_tasks_db.models import DBTaskResult

    from notifications.models import OutgoingEmail

    states = dict(OutgoingEmail.objects.order_by().values_list("state").annotate(n=Count("pk")))
    tasks = dict(DBTaskResult.objects.order_by().values_list("status").annotate(n=Count("pk")))
    victim = OutgoingEmail.objects.get(to=address)
    unsent = list(OutgoingEmail.objects.exclude(state="sent").values_list("to", "state", "attempts"))
    return {
        "states": states,
        "tasks": tasks,
        "victim": {"state": victim.state, "attempts": victim.attempts, "last_error": victim.last_error[:160]},
        "unsent": unsent,
    }


def django_main(argv: list[str]) -> None:
    sys.path.insert(0, os.getcwd())  # the checkout under test, not necessarily this one
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "irms_site.settings")
    import django as django_module

    django_module.setup()
    command, *rest = argv
    handlers = {"queue": _queue, "holder": _holder, "look": _look}
    print(json.dumps(handlers[command](*rest), default=str))


if __name__ == "__main__":
    if sys.argv[1:2] == ["_django"]:
        django_main(sys.argv[2:])
    else:
        sys.exit(main())
