"""Several IRMS app servers on loopback, as production runs them behind a balancer: each a
gunicorn of its own (deploy/gunicorn.conf.py, DEBUG off) on its own port, all on the test
database, one cache and one upload directory, with one SECRET_KEY (sessions, CSRF tokens
and signed links made by one must be good on the others).

A plain HTTP client (`Browser`) keeps one cookie jar for all of them: cookies belong to a
host, not a port, so a session made on one server is presented to every other, as a
browser behind a balancer would."""

import http.cookiejar
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from bench.server import collect_static, free_port, stop_process

GUNICORN_CONF = Path(settings.BASE_DIR) / "deploy" / "gunicorn.conf.py"


@dataclass
class AppServer:
    name: str
    url: str
    process: subprocess.Popen
    log: Path

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def cluster_env(database_url: str, *, cache_url: str, media_root: Path, extra: dict | None = None) -> dict[str, str]:
    """What every server of one cluster is given: production settings, shared everything."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DJANGO_SETTINGS_MODULE="irms_site.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        CACHE_URL=cache_url,
        MEDIA_ROOT=str(media_root),
        EMAIL_URL="console://",
        LOG_LEVEL="WARNING",
        WEB_CONCURRENCY="2",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


def start_server(name: str, env: dict[str, str], log_dir: Path, *, timeout: float = 60) -> AppServer:
    """gunicorn with the deployment kit's configuration on a free loopback port; returns
    once /healthz answers."""
    port = free_port()
    log = log_dir / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and config
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(GUNICORN_CONF),
                "--bind",
                f"127.0.0.1:{port}",
                "irms_site.wsgi:application",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = AppServer(name=name, url=f"http://127.0.0.1:{port}", process=process, log=log)
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"{name} exited with {process.returncode}:\n{server.tail()}"
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        assert time.monotonic() < deadline, f"{name} did not come up:\n{server.tail()}"
        time.sleep(0.1)


@contextmanager
def app_servers(count: int, env: dict[str, str], log_dir: Path):
    """`count` servers with the same environment; stopped (by pid) on leaving."""
    collect_static(env)
    started: list[AppServer] = []
    try:
        for index in range(count):
            started.append(start_server(f"app{index + 1}", env, log_dir))
        yield started
    finally:
        for server in started:
            stop_process(server.process, grace=10)


class Browser:
    """urllib with one cookie jar for every server, and no following of redirects (a test
    wants to see the 302 to the sign-in page, not the page after it)."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    def __init__(self):
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), self._NoRedirect())

    def request(self, method: str, url: str, *, data: bytes | None = None, headers: dict | None = None):
        """(status, headers, body) of one request; HTTP errors are answers too."""
        request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def get(self, url: str, **kwargs):
        return self.request("GET", url, **kwargs)

    def post_form(self, url: str, fields: dict, **kwargs):
        body = urllib.parse.urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Referer": url, **kwargs.pop("headers", {})}
        return self.request("POST", url, data=body, headers=headers, **kwargs)

    def json(self, method: str, url: str, payload=None, *, token: str | None = None, headers: dict | None = None):
        """(status, headers, parsed body or None) of one API call."""
        all_headers = {"Accept": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Token {token}"
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            all_headers["Content-Type"] = "application/json"
        status, response_headers, body = self.request(method, url, data=data, headers=all_headers)
        return status, response_headers, (json.loads(body) if body else None)

    def csrf_token(self, url: str) -> str:
        """GET a form page and return its CSRF form token."""
        status, _, body = self.get(url)
        assert status == 200, (status, body[:500])
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        assert match, body[:1000]
        return match.group(1).decode()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type."""
    boundary = secrets.token_hex(16)
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, content, content_type) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        parts.append(head.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
