"""The OpenAPI schema (/api/schema, YAML or JSON, every path, valid without warnings) and
its docs page (/api/docs: Swagger UI served from this site, no outside host). The outside
linters' verdict on the schema: test_openapi_lint.py."""

import json
import re

import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

PATHS = {
    "/api/incidents",
    "/api/incidents/{incident_id}",
    "/api/publicIncidents",
    "/api/publicIncidents/{incident_id}",
    "/api/responses/{incident_id}",
    "/api/auth/token",
    "/api/categories",
    "/api/teams",
    "/api/incidents/{incident_id}/attachments",
    "/api/incidents/{incident_id}/attachments/{id}/file",
    "/api/incidents/{incident_id}/attachments/{id}/thumbnail",
    "/api/metrics",
}


def test_schema_is_openapi_3_yaml_with_every_path(db):
    # when
    response = APIClient().get("/api/schema")

    # then
    assert response.status_code == 200
    assert "openapi" in response["Content-Type"]
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == PATHS


def test_schema_as_json(db):
    # when
    response = APIClient().get("/api/schema?format=json")

    # then
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == PATHS
    assert {"get", "patch"} <= set(schema["paths"]["/api/incidents/{incident_id}"])


def test_schema_validates_without_warnings(db, tmp_path):
    # given
    target = tmp_path / "s.yaml"

    # when
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    # then
    assert set(yaml.safe_load(target.read_text())["paths"]) == PATHS


def test_docs_page_uses_the_local_swagger_ui(db):
    # given
    client = APIClient()

    # when
    response = client.get("/api/docs")

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert not re.search(r"https?://", html)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    bundle = next(url for url in assets if url.endswith("swagger-ui-bundle.js"))
    assert bundle.startswith("/static/")
    assert all(url.startswith(("/static/", "/api/")) for url in assets), assets
    served = client.get(bundle)
    served.close()  # a streamed file: close it, or it leaks a file handle
    assert served.status_code == 200


def test_docs_script_is_javascript(db):
    # when
    response = APIClient().get("/api/docs?script=")

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in response.content.decode()
