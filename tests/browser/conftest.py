"""Headless Chromium (Debian's `chromium` package, driven by playwright) and a folder for screenshots in the test's
temp folder.

The browser is the system's, never one that playwright downloads. Without it the tests fail, they do not skip:
`apt-get install chromium` (.ci/run does it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Without the networking switches Chromium phones home at start, which the closed test network refuses noisily.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT = 30_000  # ms, for actions and expectations alike: generous, other suites share this machine

expect.set_options(timeout=TIMEOUT)


@pytest.fixture
def browser(database_url: str) -> Iterator[Browser]:
    """Chromium. Playwright's sync API runs an event loop in this thread while the browser is open, and the test
    database is made and dropped with asyncio.run, so the database comes first and goes last (hence the argument)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """The test's own folder for screenshots (kept with the run's temp folder when the run fails)."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder
