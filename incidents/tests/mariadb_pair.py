"""A MariaDB primary and a replica of it, for the read-replica tests: two `mariadbd`s of
this test's own, each with its own data directory under a temporary folder and its own
loopback port, the second replicating from the first (binary log from its first event).
The machine's shared server (3306) is never touched. Both are stopped (by pid) and their
folder removed on leaving."""

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.server import free_port, stop_process

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"


@dataclass
class Server:
    name: str
    port: int
    datadir: Path
    process: subprocess.Popen

    def url(self, database: str) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str | None = None):
        import MySQLdb

        extra = {"database": database} if database else {}
        return MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", passwd="", autocommit=True, **extra)

    def execute(self, sql: str, database: str | None = None) -> list[tuple]:
        connection = self.connect(database)
        try:
            cursor = connection.cursor()
            cursor.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            connection.close()

    def log(self) -> str:
        path = self.datadir.parent / f"{self.name}.err"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"


def _start(root: Path, name: str, server_id: int, *extra: str) -> Server:
    datadir = root / name
    installed = subprocess.run(  # noqa: S603 - the system's own installer, on our own folder
        [
            INSTALL_DB,
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, f"{name}: mariadb-install-db failed:\n{installed.stdout}\n{installed.stderr}"
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        [
            MARIADBD,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={root / name}.sock",
            f"--pid-file={root / name}.pid",
            f"--log-error={root / name}.err",
            "--user=root",
            f"--server-id={server_id}",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--skip-name-resolve",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = Server(name=name, port=port, datadir=datadir, process=process)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"{name} exited:\n{server.log()}"
        try:
            server.execute("SELECT 1")
            return server
        except Exception:
            assert time.monotonic() < deadline, f"{name} did not start:\n{server.log()}"
            time.sleep(0.2)


@dataclass
class Pair:
    primary: Server
    replica: Server

    def stop_applying(self) -> None:
        """The replica stops applying the primary's changes (it still answers, stale)."""
        self.replica.execute("STOP SLAVE SQL_THREAD")

    def resume_applying(self) -> None:
        self.replica.execute("START SLAVE SQL_THREAD")

    def caught_up(self) -> bool:
        """Has the replica applied everything the primary has written so far?"""
        (gtid,) = self.primary.execute("SELECT @@gtid_binlog_pos")[0]
        (done,) = self.replica.execute(f"SELECT MASTER_GTID_WAIT('{gtid}', 0)")[0]
        return done == 0

    def wait_caught_up(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.caught_up():
            assert time.monotonic() < deadline, self.replica.execute("SHOW SLAVE STATUS")
            time.sleep(0.1)


@contextlib.contextmanager
def mariadb_pair() -> Iterator[Pair]:
    root = Path(tempfile.mkdtemp(prefix="irms-replica-"))
    servers: list[Server] = []
    try:
        primary = _start(root, "primary", 1, f"--log-bin={root / 'primary' / 'binlog'}", "--binlog-format=ROW")
        servers.append(primary)
        replica = _start(root, "replica", 2, "--read-only")
        servers.append(replica)
        # Both start from the same freshly installed system tables: replay the primary's
        # binary log from its very first event.
        replica.execute(
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port}, MASTER_USER='root', "
            "MASTER_PASSWORD='', MASTER_LOG_FILE='binlog.000001', MASTER_LOG_POS=4"
        )
        replica.execute("START SLAVE")
        pair = Pair(primary, replica)
        pair.wait_caught_up()
        yield pair
    finally:
        for server in reversed(servers):
            stop_process(server.process, grace=20)
        shutil.rmtree(root, ignore_errors=True)
