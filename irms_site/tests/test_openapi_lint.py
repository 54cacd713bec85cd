"""The published OpenAPI schema passes two outside linters with no error and no warning:
Redocly CLI's `recommended` rules and Spectral's `spectral:oas` ruleset (npm packages;
their configurations are .ci/redocly.yaml and .ci/spectral.yaml). `make check-schema`
runs this module alone.
"""

import json
import os
import subprocess

import pytest
from django.conf import settings
from django.core.management import call_command

from .checkers import REDOCLY, SPECTRAL, require

CONFIG = settings.BASE_DIR / ".ci"
# Neither linter phones home from a test run.
QUIET = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}


@pytest.fixture
def schema(db, tmp_path):
    """The schema exactly as `manage.py spectacular` writes it (and /api/schema serves it)."""
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    return target


def lint(*command) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=QUIET, cwd=settings.BASE_DIR)


def test_schema_passes_redocly_recommended_rules(schema):
    # given
    require("node", REDOCLY)

    # when
    run = lint(str(REDOCLY), "lint", "--config", str(CONFIG / "redocly.yaml"), "--format", "json", str(schema))

    # then
    report = json.loads(run.stdout)
    problems = [
        f"{problem['severity']} {problem['ruleId']}: {problem['message']} at {problem['location'][0]['pointer']}"
        for problem in report["problems"]
    ]
    assert report["totals"]["errors"] == report["totals"]["warnings"] == 0, "\n".join(problems)
    assert run.returncode == 0, run.stderr


def test_schema_passes_spectral_oas_ruleset(schema):
    # given
    require("node", SPECTRAL)

    # when: any result, down to a hint, fails
    run = lint(
        str(SPECTRAL), "lint", "--ruleset", str(CONFIG / "spectral.yaml"), "--fail-severity", "hint", str(schema)
    )

    # then
    assert run.returncode == 0, run.stdout + run.stderr
