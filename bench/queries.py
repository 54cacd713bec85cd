"""SQL queries per request, for bench/run.py: each endpoint requested once through Django's
test client, in this process, against the bench database with the bench server's
settings, inside `CaptureQueriesContext` (which records queries whatever DEBUG is).

The request is made twice uncounted, as a gunicorn worker that has served a few requests
would run it, then three times counted, and the fewest queries kept (see `count`). It reads
a JSON spec on stdin and writes JSON:

    {"endpoints": [{"key": "api_first", "method": "GET", "path": "/api/publicIncidents",
                    "auth": "token", "body": null, "user": "load-user-00001"}, ...]}
    -> {"api_first": {"queries": 7, "status": 200}, ...}

`auth` is "token" (Authorization: Token), "session" (a signed-in browser) or null; `user`
is the account an endpoint with `auth` is requested as (each gets one client per kind of
credential, made on first use; a spec-level "username" is the default).
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "irms_site.settings")


def count(spec: dict) -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    host = {"HTTP_HOST": "127.0.0.1"}
    clients = {None: Client(**host)}

    def client_for(username: str | None, auth: str | None) -> Client:
        key = (username, auth) if auth else None
        if key not in clients:
            user = get_user_model().objects.get(username=username)
            if auth == "token":
                token, _ = Token.objects.get_or_create(user=user)
                clients[key] = Client(**host, HTTP_AUTHORIZATION=f"Token {token.key}")
            else:
                clients[key] = Client(**host)
                clients[key].force_login(user, backend="accounts.backends.UsernameOrEmailBackend")
        return clients[key]

    results = {}
    for endpoint in spec["endpoints"]:
        client = client_for(endpoint.get("user") or spec.get("username"), endpoint.get("auth"))

        def request(endpoint=endpoint, client=client):
            body = endpoint.get("body")
            if body is None:
                return client.generic(endpoint["method"], endpoint["path"])
            return client.generic(endpoint["method"], endpoint["path"], body, content_type="application/json")

        # Twice: the first request of a process loads code and the throttle's first write is
        # an insert; by the third, a request runs as it does in a worker that has served many.
        request()
        request()
        # The fewest of three: should the throttle's cache entry expire between two requests
        # (it did when the bench's rates were per second), the cache deletes it, one query
        # more that is the machine's doing, not the endpoint's.
        counted = []
        for _ in range(3):
            with CaptureQueriesContext(connection) as queries:
                response = request()
            counted.append(len(queries))
        results[endpoint["key"]] = {"queries": min(counted), "status": response.status_code}
    return results


if __name__ == "__main__":
    json.dump(count(json.load(sys.stdin)), sys.stdout)
