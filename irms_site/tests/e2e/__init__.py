"""End-to-end journeys: Debian's Chromium, driven by Playwright, against a live server.

The journeys need that browser and nothing else from the machine: without it they are
skipped (with the reason), never half-run. Playwright never downloads a browser here.
"""

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}  # an iPhone 12-15 in CSS pixels

requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"end-to-end journeys need Debian's Chromium at {CHROMIUM} (apt-get install chromium)",
)
