"""The outside checkers the tests run: npm's packages (package.json, installed by `npm ci`
into node_modules/) and Debian's Java for the Nu HTML Checker.

On a developer's machine without them, a test that needs one is skipped and says how to
install it. Under CI (`CI=true`, set by .ci/run's runner and by GitHub) and in the
`make check-*` targets (`IRMS_REQUIRE_CHECKERS=true`) it fails instead: a check that
quietly stopped running would look the same as one that passes.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

NODE_MODULES = Path(settings.BASE_DIR) / "node_modules"
VNU_JAR = NODE_MODULES / "vnu-jar" / "build" / "dist" / "vnu.jar"
AXE_JS = NODE_MODULES / "axe-core" / "axe.min.js"
REDOCLY = NODE_MODULES / ".bin" / "redocly"
SPECTRAL = NODE_MODULES / ".bin" / "spectral"

INSTALL = {
    "java": "apt-get install default-jre-headless",
    "node": "apt-get install nodejs npm",
}


def require(*tools: str | Path) -> None:
    """Skip (fail under CI) unless every tool is there: a path under node_modules, or a
    command on PATH."""
    missing = []
    for tool in tools:
        if isinstance(tool, Path):
            if not tool.exists():
                shown = tool.relative_to(settings.BASE_DIR) if tool.is_relative_to(settings.BASE_DIR) else tool
                missing.append(f"{shown} (run `npm ci`)")
        elif shutil.which(tool) is None:
            missing.append(f"{tool} ({INSTALL.get(tool, 'install it')})")
    if not missing:
        return
    reason = "needs " + ", ".join(missing)
    if any(os.environ.get(name, "").lower() in ("1", "true", "yes") for name in ("CI", "IRMS_REQUIRE_CHECKERS")):
        pytest.fail(f"{reason}: this run must have it (.ci/run and `make check-*` install it)", pytrace=False)
    pytest.skip(reason)
