"""SQL queries per request, for bench/run.py: each endpoint requested once through Django's
test client, in this process, against the bench database with the bench server's
settings, inside `CaptureQueriesContext` (which records queries whatever DEBUG is).

The request is made three times and the last one counted, as a gunicorn worker that has
served a few requests would run it. It reads a JSON spec on stdin and writes JSON:

    {"username": "load-user-00001",
     "endpoints": [{"key": "api_first", "method": "GET", "path": "/api/publicIncidents",
                    "auth": "token", "body": null}, ...]}
    -> {"api_first": {"queries": 7, "status": 200}, ...}

`auth` is "token" (Authorization: Token), "session" (a signed-in browser) or null.
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

    user = get_user_model().objects.get(username=spec["username"])
    token, _ = Token.objects.get_or_create(user=user)
    host = {"HTTP_HOST": "127.0.0.1"}
    clients = {
        None: Client(**host),
        "token": Client(**host, HTTP_AUTHORIZATION=f"Token {token.key}"),
        "session": Client(**host),
    }
    clients["session"].force_login(user, backend="accounts.backends.UsernameOrEmailBackend")
    results = {}
    for endpoint in spec["endpoints"]:
        client = clients[endpoint.get("auth")]

        def request(endpoint=endpoint, client=client):
            body = endpoint.get("body")
            if body is None:
                return client.generic(endpoint["method"], endpoint["path"])
            return client.generic(endpoint["method"], endpoint["path"], body, content_type="application/json")

        # Twice: the first request of a process loads code and the throttle's first write is
        # an insert; by the third, a request runs as it does in a worker that has served many.
        request()
        request()
        with CaptureQueriesContext(connection) as queries:
            response = request()
        results[endpoint["key"]] = {"queries": len(queries), "status": response.status_code}
    return results


if __name__ == "__main__":
    json.dump(count(json.load(sys.stdin)), sys.stdout)
