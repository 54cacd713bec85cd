"""Run IRMS as production runs it, on a fresh MariaDB database: for benchmarks, load
tests and fault drills.

    from bench.server import running_site

    with running_site(workers=2, db_worker=True, env={"API_THROTTLE_USER": "1000000/min"}) as site:
        site.manage("seed_load", "--incidents", "1000")  # manage.py against the site's database
        urllib.request.urlopen(site.url + "/healthz")
        site.pids()  # {"master": ..., "workers": [...], "db_worker": ...}
        site.peak_memory_kb()  # {worker pid: VmHWM in kB}

`running_site` creates the database (dropping one of that name first), migrates, collects
static files into the project's `staticfiles/`, starts gunicorn (DEBUG off, a random
SECRET_KEY, ALLOWED_HOSTS=127.0.0.1,localhost) and, when asked, `manage.py db_worker`
beside it, waits until /healthz answers, and on leaving stops both (SIGTERM, then SIGKILL
after a grace period, by pid only) and drops the database.

As a command it serves until Ctrl-C:

    python -m bench.server --workers 2 --db-worker --seed 1000 --env LOG_LEVEL=DEBUG
"""

# A harness: it runs this project's own commands and fetches its own local URLs.
# ruff: noqa: S603, S310

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
# The MariaDB server (no database name) that bench databases are created on.
DEFAULT_SERVER_URL = os.environ.get("BENCH_MARIADB_URL", "mysql://root@127.0.0.1:3306")
_DATABASE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class SiteError(RuntimeError):
    """The site could not be prepared or did not come up; the message has the log's tail."""


# --- The database ------------------------------------------------------------------------


def connect(server_url: str = DEFAULT_SERVER_URL, database: str | None = None):
    """A MySQLdb connection to the server (and `database`), outside Django."""
    import MySQLdb  # only needed here; importing bench.server must not require it

    parts = urlsplit(server_url)
    extra = {"database": _check_name(database)} if database else {}
    return MySQLdb.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        passwd=unquote(parts.password or ""),
        charset="utf8mb4",
        **extra,
    )


def _check_name(database: str) -> str:
    if not _DATABASE_NAME.match(database):
        raise ValueError(f"Not a safe database name: {database!r} (letters, digits and _ only).")
    return database


def create_database(database: str, server_url: str = DEFAULT_SERVER_URL) -> str:
    """Drop `database` if it exists and create it empty; returns its DATABASE_URL."""
    database = _check_name(database)
    connection = connect(server_url)
    try:
        cursor = connection.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        connection.close()
    return database_url(database, server_url)


def drop_database(database: str, server_url: str = DEFAULT_SERVER_URL) -> None:
    database = _check_name(database)
    connection = connect(server_url)
    try:
        connection.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
    finally:
        connection.close()


def database_url(database: str, server_url: str = DEFAULT_SERVER_URL) -> str:
    return f"{server_url.rstrip('/')}/{_check_name(database)}"


def analyze_tables(database: str, tables: Sequence[str], server_url: str = DEFAULT_SERVER_URL) -> None:
    """ANALYZE TABLE after a bulk load, so the optimizer's statistics describe the data
    (InnoDB refreshes them by itself, but in the background and some time later)."""
    connection = connect(server_url, database)
    try:
        cursor = connection.cursor()
        for table in tables:
            cursor.execute(f"ANALYZE TABLE `{_check_name(table)}`")
            cursor.fetchall()
    finally:
        connection.close()


def server_version(server_url: str = DEFAULT_SERVER_URL) -> str:
    connection = connect(server_url)
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT VERSION()")
        return cursor.fetchone()[0]
    finally:
        connection.close()


# --- Processes ---------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (gunicorn's workers, for its master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        # The command name (field 2) is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far, or None once it has exited."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_memory_kb(pid: int) -> int | None:
    """A process's peak resident set size (VmHWM, kB), or None once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def stop_process(process: subprocess.Popen, *, grace: float = 10.0, extra_pids: Sequence[int] = ()) -> None:
    """SIGTERM `process`, wait up to `grace` seconds, then SIGKILL it and any of
    `extra_pids` (its children) still alive. Only these pids are ever signalled."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=5)
    for pid in extra_pids:
        if Path(f"/proc/{pid}").exists():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def redis_server(*, port: int | None = None) -> Iterator[str]:
    """A throw-away redis-server on loopback (no persistence), for `CACHE_URL`: yields its
    URL without a database number (`redis://127.0.0.1:<port>`); stopped by pid on leaving."""
    import shutil
    import socket

    executable = shutil.which("redis-server")
    if executable is None:
        raise SiteError("redis-server is not installed (apt-get install redis-server).")
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="irms-redis-") as folder:
        process = subprocess.Popen(
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                with socket.socket() as attempt:
                    if attempt.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SiteError(f"redis-server did not start on port {port}.")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}"
        finally:
            stop_process(process)


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- The site ----------------------------------------------------------------------------


@dataclass
class Site:
    """A running IRMS: its address, its database, its processes and their environment."""

    url: str
    port: int
    database: str
    database_url: str
    env: dict[str, str]
    log_dir: Path
    gunicorn: subprocess.Popen | None = None
    db_worker: subprocess.Popen | None = None
    db_worker_args: tuple[str, ...] = ("--no-startup-delay", "--interval", "1", "--no-reload")
    worker_command: str = "mail_worker"  # db_worker, restarted after database errors
    _known_workers: set[int] = field(default_factory=set)

    @property
    def master_pid(self) -> int | None:
        return self.gunicorn.pid if self.gunicorn else None

    @property
    def db_worker_pid(self) -> int | None:
        return self.db_worker.pid if self.db_worker and self.db_worker.poll() is None else None

    def worker_pids(self) -> list[int]:
        """gunicorn's current worker processes (a killed worker's replacement included)."""
        if self.gunicorn is None or self.gunicorn.poll() is not None:
            return []
        pids = children(self.gunicorn.pid)
        self._known_workers.update(pids)
        return pids

    def pids(self) -> dict:
        return {"master": self.master_pid, "workers": self.worker_pids(), "db_worker": self.db_worker_pid}

    def peak_memory_kb(self) -> dict[int, int]:
        """VmHWM of each live gunicorn worker, in kB. Read it before leaving the context."""
        return {pid: kb for pid in self.worker_pids() if (kb := peak_memory_kb(pid)) is not None}

    def workers_cpu_seconds(self) -> float:
        """CPU time the current gunicorn workers have used so far (for CPU per request)."""
        return sum(seconds for pid in self.worker_pids() if (seconds := cpu_seconds(pid)) is not None)

    def manage(self, *args: str, check: bool = True, capture: bool = True, **kwargs) -> subprocess.CompletedProcess:
        """Run `python manage.py <args>` against this site's database and settings."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            text=True,
            capture_output=capture,
            **kwargs,
        )
        if check and result.returncode != 0:
            raise SiteError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stderr or ''}")
        return result

    def start_db_worker(self) -> int:
        """Start `manage.py <worker_command>` (`mail_worker` by default: db_worker, restarted
        after database errors; the mail queue) beside the web server; its pid. Its output
        goes to db_worker.log."""
        if self.db_worker_pid:
            return self.db_worker_pid
        log = open(self.log_dir / "db_worker.log", "ab")  # noqa: SIM115 - the child owns it
        self.db_worker = subprocess.Popen(
            [sys.executable, "manage.py", self.worker_command, *self.db_worker_args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self.db_worker.pid

    def stop_db_worker(self, grace: float = 10.0) -> None:
        if self.db_worker is not None:
            stop_process(self.db_worker, grace=grace)
            self.db_worker = None

    def log(self, name: str = "gunicorn", lines: int = 40) -> str:
        """The tail of `gunicorn.log` or `db_worker.log`."""
        return _tail(self.log_dir / f"{name}.log", lines)


def site_env(database_url: str, *, port: int, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Production settings: DEBUG off, a fresh random SECRET_KEY, the local host only."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "irms_site.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SITE_URL": f"http://127.0.0.1:{port}",
            "DATABASE_URL": database_url,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides or {})
    return env


def _static_fingerprint() -> str:
    """What collectstatic's output depends on: the project's static files and the pinned
    packages (whose static files the admin, DRF and Swagger UI bring)."""
    digest = hashlib.sha256(sys.version.encode())
    for name in ("requirements.txt", "requirements-dev.txt"):
        path = ROOT / name
        digest.update(path.read_bytes() if path.exists() else b"")
    sources = [ROOT / "static", *(path for path in ROOT.glob("*/static") if path.parent.name != "staticfiles")]
    for source in sources:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.relative_to(ROOT)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def collect_static(env: Mapping[str, str]) -> None:
    """`collectstatic` into the project's staticfiles/ with the production storage (hashed,
    compressed names), one process at a time since two runs may start together. Skipped
    when nothing it reads has changed since the last run: compressing ~800 files takes
    about 35 s."""
    digest = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"irms-collectstatic-{digest}.lock"
    stamp = ROOT / "staticfiles" / ".bench-fingerprint"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fingerprint = _static_fingerprint()
        manifest = ROOT / "staticfiles" / "staticfiles.json"
        if manifest.exists() and stamp.exists() and stamp.read_text() == fingerprint:
            return
        result = subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--no-input"],
            cwd=ROOT,
            env=dict(env),
            text=True,
            capture_output=True,
        )
        if result.returncode != 0:
            raise SiteError(f"collectstatic failed:\n{result.stderr}")
        stamp.write_text(fingerprint)


def wait_until_healthy(site: Site, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if site.gunicorn.poll() is not None:
            raise SiteError(f"gunicorn exited with {site.gunicorn.returncode}:\n{site.log()}")
        try:
            with urllib.request.urlopen(site.url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise SiteError(f"/healthz did not answer within {timeout:.0f} s:\n{site.log()}")


@contextlib.contextmanager
def running_site(
    *,
    port: int | None = None,
    database: str = "irms_bench",
    server_url: str = DEFAULT_SERVER_URL,
    workers: int = 2,
    worker_class: str = "sync",
    threads: int = 1,
    env: Mapping[str, str] | None = None,
    db_worker: bool = False,
    db_worker_args: Sequence[str] = ("--no-startup-delay", "--interval", "1", "--no-reload"),
    worker_command: str = "mail_worker",  # db_worker, restarted after database errors
    fresh: bool = True,
    keep_database: bool = False,
    prepare=None,
    app: str = "irms_site.wsgi:application",
    gunicorn_args: Sequence[str] = (),
    startup_timeout: float = 60.0,
    log_dir: str | Path | None = None,
) -> Iterator[Site]:
    """Serve IRMS under gunicorn on 127.0.0.1:`port` (default: a free one); yields a `Site`.

    `fresh` (the default) drops and creates `database`, then migrates; with
    `fresh=False` an existing database is migrated and reused. `env` overrides any
    setting's environment variable. `prepare(site)` runs after migrate and before the
    server starts (to seed data, say). `app` is the WSGI application gunicorn serves (a
    wrapper around IRMS's, for an experiment; put its directory on PYTHONPATH through
    `env`). The database is dropped on exit unless
    `keep_database` or not `fresh`. `db_worker` starts `manage.py <worker_command>
    <db_worker_args>` beside gunicorn. Logs go to `log_dir` (default: a temporary
    directory removed on exit).
    """
    port = port or free_port()
    if _port_in_use(port):
        raise SiteError(f"Port {port} is already in use.")
    own_log_dir = log_dir is None
    logs = Path(tempfile.mkdtemp(prefix="irms-site-")) if own_log_dir else Path(log_dir)
    logs.mkdir(parents=True, exist_ok=True)
    url = create_database(database, server_url) if fresh else database_url(database, server_url)
    site = Site(
        url=f"http://127.0.0.1:{port}",
        port=port,
        database=database,
        database_url=url,
        env=site_env(url, port=port, overrides=env),
        log_dir=logs,
        db_worker_args=tuple(db_worker_args),
        worker_command=worker_command,
    )
    try:
        site.manage("migrate", "--no-input")
        collect_static(site.env)
        if prepare is not None:
            prepare(site)
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--threads",
            str(threads),
            "--graceful-timeout",
            "5",
            *gunicorn_args,
        ]
        with open(logs / "gunicorn.log", "ab") as log:
            # A session of its own: a Ctrl-C in the caller's terminal reaches us, not
            # gunicorn directly, so the shutdown below stays orderly.
            site.gunicorn = subprocess.Popen(
                command, cwd=ROOT, env=site.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until_healthy(site, startup_timeout)
        site.worker_pids()
        if db_worker:
            site.start_db_worker()
        yield site
    finally:
        site.stop_db_worker()
        if site.gunicorn is not None:
            workers_seen = set(site._known_workers) | set(site.worker_pids())
            stop_process(site.gunicorn, grace=10.0, extra_pids=sorted(workers_seen))
        if fresh and not keep_database:
            with contextlib.suppress(Exception):
                drop_database(database, server_url)
        if own_log_dir:
            for path in logs.iterdir():
                path.unlink()
            logs.rmdir()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve IRMS under gunicorn on a fresh MariaDB database.")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--database", default="irms_bench")
    parser.add_argument("--server-url", default=DEFAULT_SERVER_URL, help="MariaDB server URL, no database name")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--db-worker", action="store_true", help="also run the task worker (the mail queue)")
    parser.add_argument("--worker-command", default="mail_worker", help="mail_worker (default) or db_worker")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="reuse the database instead of creating it afresh")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed_load N incidents before serving")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="a setting's variable")
    parser.add_argument("--log-dir", help="keep the logs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.env)

    def seed(site: Site) -> None:
        if args.seed:
            site.manage("seed_load", "--incidents", str(args.seed), capture=False)

    with running_site(
        port=args.port,
        database=args.database,
        server_url=args.server_url,
        workers=args.workers,
        worker_class=args.worker_class,
        threads=args.threads,
        env=overrides,
        db_worker=args.db_worker,
        worker_command=args.worker_command,
        fresh=not args.reuse,
        keep_database=args.keep_database,
        prepare=seed,
        log_dir=args.log_dir,
    ) as site:
        print(f"IRMS at {site.url} on database {site.database}; pids {site.pids()}; logs in {site.log_dir}")
        print("Ctrl-C stops it.", flush=True)
        try:
            while site.gunicorn.poll() is None:
                time.sleep(0.5)
            print(f"gunicorn exited with {site.gunicorn.returncode}:\n{site.log()}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
