"""Mixed read/write load on IRMS, for `bench/load/run_load.py` and `bench/load/drills.py`.

Run by the drivers (`locust --headless -f bench/load/locustfile.py ...`), never by hand
against a real site: it writes. Configuration comes from the environment:

  IRMS_LOAD_FIXTURES  JSON written by the driver: accounts (token, session, role) and
                      the incidents to read and respond to.
  IRMS_LOAD_OUT       a directory; this file writes there
                        ledger.jsonl    every write the site acknowledged (201 / 200),
                                        and every write attempt it did not;
                        requests.jsonl  every request: start, duration, status, and
                                        whether its body was the site's error shape.
  IRMS_LOAD_RETRY_SECONDS  how long a user keeps retrying a failed POST with the same
                      Idempotency-Key (0: never retry). The outage drill uses it to show
                      that a retried write is applied once.

Each locust user is one IRMS account. Reporters browse and report and respond; responders
also move their own incidents along the workflow with PATCH, so two users never race for
the same status change (which the site would rightly refuse with a 400).
"""

import contextlib
import json
import os
import random
import time
import uuid
from itertools import count
from pathlib import Path

import gevent
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

FIXTURES = json.loads(Path(os.environ["IRMS_LOAD_FIXTURES"]).read_text())
OUT = Path(os.environ["IRMS_LOAD_OUT"])
RETRY_SECONDS = float(os.environ.get("IRMS_LOAD_RETRY_SECONDS", "0"))
# A request that takes longer than this is a failure (a hung worker), not a slow success.
TIMEOUT = float(os.environ.get("IRMS_LOAD_TIMEOUT", "15"))
WAIT_MIN = float(os.environ.get("IRMS_LOAD_WAIT_MIN", "0.2"))
WAIT_MAX = float(os.environ.get("IRMS_LOAD_WAIT_MAX", "1.0"))

# Incidents anyone may read and respond to (public, not closed): the seeded ones, and
# every one the load reports. Shared by all users of this process.
open_incidents: list[str] = list(FIXTURES["incidents"])
accounts = count()
_files = {}


def _log(name: str, record: dict) -> None:
    """Append one JSON line. One process, cooperative greenlets: lines never interleave."""
    handle = _files.get(name)
    if handle is None:
        handle = _files[name] = (OUT / name).open("a", buffering=1)
    handle.write(json.dumps(record, separators=(",", ":")) + "\n")


@events.request.add_listener
def record_request(request_type, name, response_time, response, exception, start_time, **kwargs):
    # A refused or timed-out request has a response object that fails on almost any use
    # (even truth-testing it): read it defensively, and record the request whatever happens.
    status, body, content_type = 0, b"", ""
    with contextlib.suppress(Exception):
        status = int(getattr(response, "status_code", 0) or 0)
        if status:
            body = response.content or b""
            content_type = response.headers.get("Content-Type", "") or ""
    _log(
        "requests.jsonl",
        {
            "t": round(start_time, 4),
            "ms": round(response_time or 0, 1),
            "method": request_type,
            "name": name,
            "status": status,
            "error": None if exception is None else type(exception).__name__,
            # What a person or a client would see on an error: never a traceback.
            "traceback": b"Traceback" in body or b'File "/' in body,
            "json_error": status >= 400 and "json" in content_type and b'"error"' in body,
            "html": "text/html" in content_type,
        },
    )


@events.quitting.add_listener
def close_files(environment, **kwargs):
    for handle in _files.values():
        handle.close()


class IrmsUser(FastHttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)
    network_timeout = TIMEOUT
    connection_timeout = TIMEOUT

    def on_start(self):
        account = FIXTURES["accounts"][next(accounts) % len(FIXTURES["accounts"])]
        self.username = account["username"]
        self.responder = account["responder"]
        self.api = {"Authorization": f"Token {account['token']}", "Accept": "application/json"}
        self.web = {"Cookie": f"sessionid={account['session']}", "Accept": "text/html"}
        # This responder's own incidents and the status each was last acknowledged at.
        self.mine: dict[str, str] = {}

    # --- helpers ---------------------------------------------------------------------

    def pick(self) -> str:
        return random.choice(open_incidents)

    def post_once(self, kind: str, path: str, body: dict, name: str) -> dict | None:
        """POST with an Idempotency-Key; on failure, retry with the same key (if enabled)
        until acknowledged or RETRY_SECONDS have passed. Records the outcome either way."""
        key = uuid.uuid4().hex
        body = {**body, "description": f"load-key={key} {body['description']}"}
        headers = {**self.api, "Idempotency-Key": key}
        deadline = time.monotonic() + RETRY_SECONDS
        for attempt in range(1, 1000):
            with self.client.post(path, json=body, headers=headers, name=name, catch_response=True) as response:
                if response.status_code == 201:
                    data = response.json()
                    _log(
                        "ledger.jsonl",
                        {
                            "kind": kind,
                            "key": key,
                            "id": data["incident_id" if kind == "incident" else "id"],
                            "incident": data["incident_id"],
                            "attempt": attempt,
                            "replayed": response.headers.get("Idempotent-Replayed") == "true",
                        },
                    )
                    return data
                response.failure(f"{response.status_code}")
            if time.monotonic() >= deadline:
                _log("ledger.jsonl", {"kind": f"{kind}-unacknowledged", "key": key, "status": response.status_code})
                return None
            gevent.sleep(1)
        return None

    # --- reads -----------------------------------------------------------------------

    @task(3)
    def api_my_incidents(self):
        self.client.get("/api/incidents?page_size=20", headers=self.api, name="GET /api/incidents")

    @task(3)
    def api_public_incidents(self):
        self.client.get("/api/publicIncidents?page_size=20", headers=self.api, name="GET /api/publicIncidents")

    @task(2)
    def api_incident(self):
        self.client.get(f"/api/incidents/{self.pick()}", headers=self.api, name="GET /api/incidents/<id>")

    @task(2)
    def api_responses(self):
        self.client.get(f"/api/responses/{self.pick()}", headers=self.api, name="GET /api/responses/<id>")

    @task(1)
    def web_dashboard(self):
        self.client.get("/dashboard/", headers=self.web, name="GET /dashboard/")

    @task(1)
    def web_public_list(self):
        self.client.get("/incidents/public/", headers=self.web, name="GET /incidents/public/")

    @task(1)
    def web_incident(self):
        self.client.get(f"/incidents/{self.pick()}/", headers=self.web, name="GET /incidents/<id>/")

    @task(1)
    def web_home(self):
        self.client.get("/", headers={"Accept": "text/html"}, name="GET /")

    # --- writes ----------------------------------------------------------------------

    @task(3)
    def report_incident(self):
        data = self.post_once(
            "incident",
            "/api/incidents",
            {
                "title": f"Load test incident by {self.username}",
                "description": "Reported by the load test.",
                "severity": random.choice(["Low", "Medium", "High", "Critical"]),
                "visibility": "public",
            },
            name="POST /api/incidents",
        )
        if data:
            open_incidents.append(data["incident_id"])
            if self.responder:
                self.mine[data["incident_id"]] = data["status"]

    @task(3)
    def respond(self):
        self.post_once(
            "response",
            f"/api/responses/{self.pick()}",
            {"description": "Looking into it (load test)."},
            name="POST /api/responses/<id>",
        )

    @task(2)
    def move_along(self):
        """A responder moves one of their own incidents one step: Reported → Acknowledged
        → In Progress → Resolved. Reporters read instead."""
        following = {"Reported": "Acknowledged", "Acknowledged": "In Progress", "In Progress": "Resolved"}
        candidates = [i for i, status in self.mine.items() if status in following]
        if not self.responder or not candidates:
            self.api_public_incidents()
            return
        incident_id = random.choice(candidates)
        status = following[self.mine[incident_id]]
        with self.client.patch(
            f"/api/incidents/{incident_id}",
            json={"status": status},
            headers=self.api,
            name="PATCH /api/incidents/<id>",
            catch_response=True,
        ) as response:
            if response.status_code == 200 and response.json()["status"] == status:
                self.mine[incident_id] = status
                _log("ledger.jsonl", {"kind": "status", "id": incident_id, "status": status})
            else:
                response.failure(f"{response.status_code}")
                # Whether it applied is unknown: stop moving it, and say so to the checker.
                del self.mine[incident_id]
                _log("ledger.jsonl", {"kind": "status-unknown", "id": incident_id, "status": status})
