"""A real headless browser for the console's tests: Debian's chromium, driven by Playwright, with no download.

Playwright brings only its driver here (``playwright install`` is never run); the browser is the system's
``/usr/bin/chromium`` (``.ci/run`` installs the ``chromium`` package). The flags keep it off the network: without
the background-networking ones chromium reaches for Google's services, which this closed network refuses.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def have_chromium() -> bool:
    return Path(CHROMIUM).exists()


@asynccontextmanager
async def browser(**context: Any) -> AsyncIterator[Any]:
    """A fresh browser context (its own user data directory) of the system's chromium."""
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="proximo-chromium-") as profile:
        async with async_playwright() as driver:
            ctx = await driver.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=ARGS,
                                                                  headless=True, **context)
            try:
                yield ctx
            finally:
                await ctx.close()
