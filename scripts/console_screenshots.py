"""The screenshots of the approval console in docs/console.md, made again from the code as it is.

On the simulated demo cluster (a temporary folder; nothing of yours is touched), an agent makes the two plans of
`proximo demo` a person most wants to look at: deleting the storage local-zfs that boot disks live on, and enabling
the cluster firewall with policy DROP from an operator address the rules do not let in. The console is served on a
loopback port, the system's chromium (Debian's ``chromium``, driven by Playwright, no browser download) signs in as
a demo approver, and each plan page is saved as a PNG under docs/. Also a phone-sized one of the first.

Usage: ``uv run python scripts/console_screenshots.py [OUTPUT_DIR]`` (default: docs)
"""

from __future__ import annotations

import socket
import sys
import tempfile
from pathlib import Path

import anyio
import uvicorn

from proximo._world import World, demo_plans
from proximo.console import build_console

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = {"storage.delete": "console-storage-delete.png", "firewall.options.set": "console-firewall-lockout.png"}
PHONE = "console-phone.png"


async def main(out: Path) -> None:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="proximo-shots-") as home:
        world = World(Path(home) / "world")
        person = world.person
        storage, firewall = await demo_plans(world)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        web = uvicorn.Server(uvicorn.Config(build_console(world.host), log_level="warning", lifespan="on",
                                            timeout_graceful_shutdown=1))
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: web.serve(sockets=[sock]))
            while not web.started:
                await anyio.sleep(0.01)
            async with async_playwright() as driver:
                profile = tempfile.mkdtemp(prefix="proximo-chromium-", dir=home)
                browser = await driver.chromium.launch_persistent_context(
                    profile, executable_path=CHROMIUM, args=ARGS, headless=True, viewport={"width": 1280, "height": 900})
                page = await browser.new_page()
                await page.goto(base + "/signin")
                await page.get_by_label("Approver name").fill(person.name)
                await page.get_by_label("Passphrase").fill(person.passphrase)
                await page.get_by_role("button", name="Sign in").click()
                await page.wait_for_url(base + "/", wait_until="commit", timeout=10000)
                for plan in (storage, firewall):
                    await page.goto(f"{base}/plan/{plan.plan_id}")
                    await page.screenshot(path=str(out / SHOTS[plan.tool]), full_page=True)
                    print(f"{out / SHOTS[plan.tool]}: plan {plan.plan_id} ({plan.tool}, {plan.risk.value})")
                await page.set_viewport_size({"width": 390, "height": 844})
                await page.goto(f"{base}/plan/{storage.plan_id}")
                await page.screenshot(path=str(out / PHONE))
                print(f"{out / PHONE}: the same page at a phone's width (390 px), first screen")
                await browser.close()
            web.should_exit = True
        sock.close()


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1] if len(sys.argv) > 1 else "docs"), backend="asyncio")
