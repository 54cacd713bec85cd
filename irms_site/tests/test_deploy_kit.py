"""The deployment kit (deploy/) checked by the tools that can run here: Docker cannot, so
the Dockerfile goes through BuildKit's own parser (the `dockerfile` package), compose.yaml
through `docker-compose config`, haproxy.cfg through `haproxy -c` (and then in front of
two real app servers, against slow clients), nginx.conf through `nginx -t`, the systemd
units through `systemd-analyze verify`, and gunicorn.conf.py through gunicorn itself.
The image's and the units' commands are the ones the tests and the drill run."""

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import dockerfile
import pytest
import yaml
from django.conf import settings

from bench.server import free_port, stop_process

from .cluster import GUNICORN_CONF, cluster_env
from .test_scale_out import cluster, member, redis_url, shared_database  # noqa: F401 - fixtures

ROOT = Path(settings.BASE_DIR)
DEPLOY = ROOT / "deploy"
# What the app servers of the tests (cluster.py) and the drill run, less the address.
WEB_COMMAND = ["python", "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "irms_site.wsgi:application"]
WORKER_COMMAND = ["python", "manage.py", "mail_worker", "--no-reload"]


def run(*command, env=None, cwd=DEPLOY):
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)  # noqa: S603


# --- Dockerfile and compose.yaml ----------------------------------------------------------------


def test_the_dockerfile_builds_in_stages_and_runs_as_a_user_with_a_healthcheck():
    commands = dockerfile.parse_file(str(DEPLOY / "Dockerfile"))
    stages = [command for command in commands if command.cmd == "FROM"]
    final = commands[commands.index(stages[-1]) :]

    assert len(stages) >= 2
    assert any("--from=build" in command.flags for command in final if command.cmd == "COPY")
    users = [command.value[0] for command in final if command.cmd == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any("collectstatic" in command.value[0] for command in final if command.cmd == "RUN")
    assert any("/healthz" in " ".join(command.value) for command in final if command.cmd == "HEALTHCHECK")
    (cmd,) = [command for command in final if command.cmd == "CMD"]
    assert cmd.json and list(cmd.value) == WEB_COMMAND


def test_the_cluster_tests_run_the_images_command():
    # cluster.py starts `sys.executable -m gunicorn -c <deploy/gunicorn.conf.py> --bind ... app`
    assert GUNICORN_CONF == DEPLOY / "gunicorn.conf.py"
    import inspect

    from . import cluster as cluster_module

    source = inspect.getsource(cluster_module.start_server)
    for part in ('"-m"', '"gunicorn"', '"-c"', "str(GUNICORN_CONF)", '"irms_site.wsgi:application"'):
        assert part in source


def test_compose_validates_and_runs_two_webs_a_worker_and_an_upload_volume():
    env = {**os.environ, "SECRET_KEY": "x" * 50, "MARIADB_PASSWORD": "secret"}
    checked = run("docker-compose", "-f", "compose.yaml", "config", env=env)
    assert checked.returncode == 0, checked.stderr

    config = yaml.safe_load(checked.stdout)
    services = config["services"]
    assert {"mariadb", "redis", "migrate", "web1", "web2", "worker", "haproxy"} <= set(services)
    assert services["worker"]["command"] == WORKER_COMMAND
    for name in ("web1", "web2", "worker"):
        assert [volume.split(":")[:2] for volume in services[name]["volumes"]] == [["media", "/srv/irms/media"]]
        assert services[name]["environment"]["CACHE_URL"].startswith("redis://redis:6379/")
    assert "media" in config["volumes"]


def test_compose_refuses_to_start_without_a_secret_key():
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    env["MARIADB_PASSWORD"] = "secret"
    checked = run("docker-compose", "-f", "compose.yaml", "config", "-q", env=env)
    assert checked.returncode != 0
    assert "SECRET_KEY" in checked.stderr


# --- systemd, gunicorn -----------------------------------------------------------------------------


def test_the_systemd_units_verify_and_run_the_same_commands(tmp_path):
    # given the units with this machine's interpreter and folders for the deployment's
    env_file = tmp_path / "irms.env"
    env_file.write_text("SECRET_KEY=x\n")
    for name in ("irms-web.service", "irms-worker@.service"):
        text = (DEPLOY / "systemd" / name).read_text()
        command = next(line for line in text.splitlines() if line.startswith("ExecStart="))
        argv = shlex.split(command.removeprefix("ExecStart="))
        assert Path(argv[0]).name == "python"
        expected = WEB_COMMAND[1:] if name == "irms-web.service" else [*WORKER_COMMAND[1:], "--worker-id", "%H-%i"]
        assert argv[1:] == expected
        assert "NoNewPrivileges=yes" in text and "ProtectSystem=strict" in text and "Restart=always" in text
        text = (
            text.replace("/srv/irms/venv/bin/python", sys.executable)
            .replace("/srv/irms/app", str(ROOT))
            .replace("/etc/irms/irms.env", str(env_file))
        )
        (tmp_path / name).write_text(text)

    # then systemd finds nothing wrong with them
    verified = run("systemd-analyze", "verify", "--man=no", "irms-web.service", "irms-worker@.service", cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == "", verified.stderr


def test_gunicorn_reads_its_configuration():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "irms_site.settings", "DEBUG": "true"}
    env.update(WEB_CONCURRENCY="3", GUNICORN_TIMEOUT="25")
    printed = run(
        sys.executable, *WEB_COMMAND[1:4], str(GUNICORN_CONF), "--print-config", WEB_COMMAND[-1], env=env, cwd=ROOT
    )
    assert printed.returncode == 0, printed.stderr
    config = {
        name.strip(): value.strip()
        for name, value in (line.split(" = ", 1) for line in printed.stdout.splitlines() if " = " in line)
    }
    assert (config["workers"], config["timeout"], config["worker_class"]) == ("3", "25", "sync")
    assert config["bind"] == "['127.0.0.1:8000']"
    assert "x-request-id" in config["access_log_format"]
    assert config["accesslog"] == "-"


# --- The proxies -----------------------------------------------------------------------------------


def haproxy_env(**extra) -> dict:
    return {**os.environ, "IRMS_APP1": "127.0.0.1:1", "IRMS_APP2": "127.0.0.1:2", **extra}


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=irms.test",
        "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return key, cert


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_the_haproxy_configuration_is_valid(tmp_path, tls):
    extra = {}
    if tls:
        key, cert = self_signed(tmp_path)
        pem = tmp_path / "irms.pem"
        pem.write_bytes(cert.read_bytes() + key.read_bytes())
        extra["IRMS_TLS_CERT"] = str(pem)
    checked = run("haproxy", "-c", "-f", "haproxy.cfg", env=haproxy_env(**extra))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Configuration file is valid" in checked.stdout


def test_the_nginx_example_is_valid(tmp_path):
    key, cert = self_signed(tmp_path)
    site = (
        (DEPLOY / "nginx.conf")
        .read_text()
        .replace("/etc/ssl/irms/fullchain.pem", str(cert))
        .replace("/etc/ssl/irms/privkey.pem", str(key))
    )
    (tmp_path / "irms.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n access_log off;\n client_body_temp_path {tmp_path}/body;\n include {tmp_path}/irms.conf;\n}}\n"
    )
    checked = run("nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"))
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


# --- Slow clients ------------------------------------------------------------------------------------


class Slowloris:
    """`count` connections that each send a request line and then one header line every
    `every` seconds, never finishing; a closed one is opened again at once."""

    def __init__(self, port: int, count: int, every: float = 2.0):
        self.port, self.count, self.every = port, count, every
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.hold, daemon=True) for _ in range(count)]

    def hold(self):
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
                    connection.sendall(b"GET /incidents/ HTTP/1.1\r\nHost: localhost\r\n")
                    while not self.stop.wait(self.every):
                        connection.sendall(b"X-Slow: still-here\r\n")
            except OSError:
                self.stop.wait(0.1)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        time.sleep(1)  # every connection open and holding
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)


def healthz_times(url: str, seconds: float) -> list[float]:
    """Time /healthz every 0.25 s for `seconds`; a timeout (1 s) or error counts as 1 s."""
    times = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:  # noqa: S310
                response.read()
                times.append(time.monotonic() - started if response.status == 200 else 1.0)
        except OSError:
            times.append(1.0)
        time.sleep(0.25)
    return times


def test_slow_clients_exhaust_bare_gunicorn_but_not_haproxy_in_front_of_it(cluster, member, tmp_path):  # noqa: F811
    # given two app servers (2 sync workers each) and the kit's HAProxy in front of them
    a, b = cluster()
    port = free_port()
    env = haproxy_env(
        IRMS_APP1=a.url.removeprefix("http://"),
        IRMS_APP2=b.url.removeprefix("http://"),
        IRMS_LISTEN=f"127.0.0.1:{port}",
    )
    with open(tmp_path / "haproxy.log", "ab") as log:
        balancer = subprocess.Popen(  # noqa: S603
            ["haproxy", "-db", "-f", str(DEPLOY / "haproxy.cfg")], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        front = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while max(healthz_times(front, 0.1)) >= 1:
            assert time.monotonic() < deadline, (tmp_path / "haproxy.log").read_text()

        # when 50 slow clients hold connections to the balancer for 12 s
        with Slowloris(port, 50):
            through_balancer = healthz_times(front, 12)

        # then /healthz through it always answers within a second
        assert len(through_balancer) > 10
        assert max(through_balancer) < 1, through_balancer

        # while three slow clients straight at one server's gunicorn (2 workers) stop it answering
        with Slowloris(int(a.url.rsplit(":", 1)[1]), 3):
            bare = healthz_times(a.url, 4)
        assert max(bare) >= 1, bare
    finally:
        stop_process(balancer, grace=5)


def test_a_server_started_the_images_way_serves(shared_database, tmp_path):  # noqa: F811
    # the container's environment: GUNICORN_BIND instead of --bind
    env = cluster_env(shared_database, cache_url=redis_url(), media_root=tmp_path / "media")
    port = free_port()
    env["GUNICORN_BIND"] = f"127.0.0.1:{port}"
    with open(tmp_path / "web.log", "ab") as log:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, *WEB_COMMAND[1:]], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:  # noqa: S310
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "web.log").read_text()
                time.sleep(0.2)
        # gunicorn writes its access-log line just after the answer has gone out
        deadline = time.monotonic() + 10
        while "rid=" not in (tmp_path / "web.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "web.log").read_text()
            time.sleep(0.1)
    finally:
        stop_process(process, grace=5)


def test_the_image_leaves_local_state_and_secrets_out():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "node_modules", ".env", "media", "db.sqlite3*"} <= ignored


# --- A server that dies ------------------------------------------------------------------------------


def start_haproxy(a, b, tmp_path, config: Path = DEPLOY / "haproxy.cfg") -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = haproxy_env(
        IRMS_APP1=a.url.removeprefix("http://"),
        IRMS_APP2=b.url.removeprefix("http://"),
        IRMS_LISTEN=f"127.0.0.1:{port}",
    )
    with open(tmp_path / "haproxy.log", "ab") as log:
        balancer = subprocess.Popen(  # noqa: S603
            ["haproxy", "-db", "-f", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    front = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while max(healthz_times(front, 0.1)) >= 1:
        assert time.monotonic() < deadline, (tmp_path / "haproxy.log").read_text()
    time.sleep(4.5)  # both servers up (rise 2, inter 2 s)
    return balancer, front


def statuses_for(url: str, seconds: float, users: int = 8) -> Counter:
    """`users` clients asking for `url` one request after another for `seconds`."""
    seen, lock = Counter(), threading.Lock()
    deadline = time.monotonic() + seconds

    def ask():
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError as error:
                status = type(error).__name__
            with lock:
                seen[status] += 1

    threads = [threading.Thread(target=ask) for _ in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seen


def test_requests_arriving_just_after_a_server_dies_go_to_the_other(cluster, member, tmp_path):  # noqa: F811
    # given two app servers behind the kit's HAProxy
    a, b = cluster()
    balancer, front = start_haproxy(a, b, tmp_path)
    try:
        # when one server is killed outright, and clients keep asking before any health check has noticed
        os.killpg(a.process.pid, signal.SIGKILL)
        a.process.wait(timeout=10)
        seen = statuses_for(front + "/healthz", 2.0)

        # then every request is answered by the other one: a refused connection takes the dead server
        # out at once, so the balancer's retry is not sent back to it (`leastconn` would: it has the
        # fewest connections)
        assert set(seen) == {200}, (seen, (tmp_path / "haproxy.log").read_text()[-3000:])
        assert sum(seen.values()) > 20
    finally:
        stop_process(balancer, grace=5)
