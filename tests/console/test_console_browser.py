"""The console end to end in a real headless browser (Debian's chromium, driven by Playwright), next to the MCP face
on a real loopback socket: an agent plans through MCP, a person decides in the browser, the agent's apply follows.

The browser tests share one xdist group: a chromium each would fight for the CPU.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from _browser import browser, have_chromium
from _loopback import serve_here
from _mcp_pack import FETCH_TOOL
from _mcp_support import HTTP_TOKEN, anyio_backend, open_face, text  # noqa: F401
from proximo.console import build_console
from proximo.console._auth import MAX_FAILURES

# skipped where there is no chromium, except under CI, where .ci/run installs it and its absence is a failure
pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("browser"),
              pytest.mark.skipif(not have_chromium() and not os.environ.get("CI"),
                                 reason="needs /usr/bin/chromium (apt package chromium; .ci/run installs it)")]

FETCH = "pve_" + FETCH_TOOL.replace(".", "_")  # CRITICAL with a "wipe-" template: its name is typed to approve


@asynccontextmanager
async def setup(home: Path) -> AsyncIterator[tuple[Any, str, Any]]:
    """The MCP face over HTTP and the console on the same simulated cluster and ledger, and a fresh browser."""
    async with open_face("http", "legacy", home) as face:
        app = build_console(face.world.host)
        async with serve_here(lambda base: app) as base, browser() as context:
            yield face, base, context


async def signed_in(context: Any, base: str, face: Any) -> Any:
    page = await context.new_page()
    await page.goto(base + "/")
    assert page.url.startswith(base + "/signin")
    await page.get_by_label("Approver name").fill(face.world.person.name)
    await page.get_by_label("Passphrase").fill(face.world.person.passphrase)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector("text=Plans waiting for a person")
    return page


async def plan_through_mcp(client: Any, tool: str, args: dict[str, Any]) -> str:
    made = await client.call_tool(tool, args)
    assert not made.is_error, text(made)
    return str(made.structured_content["plan_id"])


async def test_sign_in_refuses_a_wrong_passphrase_then_rate_limits(tmp_path: Path) -> None:
    async with setup(tmp_path) as (face, base, context):
        page = await context.new_page()
        await page.goto(base + "/signin")
        for _ in range(MAX_FAILURES):
            await page.get_by_label("Approver name").fill(face.world.person.name)
            await page.get_by_label("Passphrase").fill("not-the-passphrase")
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_selector("[role=alert]")
            assert "passphrase or code is wrong" in await page.inner_text("[role=alert]")
        await page.get_by_label("Passphrase").fill(face.world.person.passphrase)  # the right one, too late
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_selector("text=Too many failed sign-ins")
        assert "/signin" in page.url


async def test_a_plan_made_through_mcp_appears_live_and_approving_lets_the_agents_apply_proceed(tmp_path: Path) -> None:
    async with setup(tmp_path) as (face, base, context):
        page = await signed_in(context, base, face)
        assert "No plan is waiting" in await page.inner_text("tbody")
        await page.evaluate("window.notReloaded = true")
        async with face.client() as agent:  # declares no elicitation: it cannot show a form, so a person decides
            plan_id = await plan_through_mcp(agent, "pve_storage_delete", {"storage": "local-zfs"})
            row = await page.wait_for_selector(f'tr[data-plan="{plan_id}"]')  # pushed by server-sent events
            assert await page.evaluate("window.notReloaded") is True
            assert "HIGH" in await row.inner_text() and "storage.delete" in await row.inner_text()
            waiting = await agent.call_tool("proximo_apply", {"plan_id": plan_id})
            assert waiting.is_error and "waits for a person" in text(waiting)

            await page.click(f'a[href="/plan/{plan_id}"]')
            await page.wait_for_selector("svg.radius")
            plan = face.world.ledger().find(plan_id=plan_id, kind="plan")[0]
            unbootable = sorted(i["target"] for i in plan.impacts if i["effect"] == "wont-boot")
            assert unbootable and "qemu/104" in unbootable
            for target in unbootable:  # each guest that would not boot is drawn, coloured, with an edge to it
                box = page.locator(f'svg.radius g.box[data-target="{target}"]')
                assert await box.get_attribute("data-effect") == "wont-boot"
                assert await page.locator(f'svg.radius path.edge[data-to="{target}"]').count() == 1
            assert await page.locator('svg.radius g.box[data-target="qemu/106"]').get_attribute("data-effect") is None
            assert "yes: the cluster was read just now" in await page.inner_text("#freshness")

            await page.get_by_role("button", name="Approve").click()
            await page.wait_for_selector("text=Approved: ledger record")
            applied = await agent.call_tool("proximo_apply", {"plan_id": plan_id})
        assert not applied.is_error, text(applied)
        assert "local-zfs" not in face.world.model.storages
        [approval] = face.world.ledger().find(plan_id=plan_id, kind="approve")
        assert approval.outcome["channel"] == "console" and approval.outcome["approver"] == face.world.person.name


async def test_deny_in_the_browser_stops_the_agents_apply(tmp_path: Path) -> None:
    async with setup(tmp_path) as (face, base, context):
        page = await signed_in(context, base, face)
        async with face.client() as agent:
            plan_id = await plan_through_mcp(agent, "pve_storage_delete", {"storage": "local-zfs"})
            await page.goto(f"{base}/plan/{plan_id}")
            await page.get_by_label("Reason (kept in the ledger)").fill("guests still boot from it")
            await page.get_by_role("button", name="Deny").click()
            await page.wait_for_selector("text=Denied: ledger record")
            refused = await agent.call_tool("proximo_apply", {"plan_id": plan_id})
        assert refused.is_error and "declined by a person" in text(refused)
        assert "local-zfs" in face.world.model.storages
        await page.goto(base + "/")
        assert await page.locator(f'tr[data-plan="{plan_id}"]').count() == 0


async def test_critical_asks_for_the_targets_name_typed(tmp_path: Path) -> None:
    async with setup(tmp_path) as (face, base, context):
        page = await signed_in(context, base, face)
        async with face.client() as agent:
            plan_id = await plan_through_mcp(agent, FETCH, {"node": "pve1", "storage": "local", "template": "wipe-all"})
            await page.goto(f"{base}/plan/{plan_id}")
            assert "CRITICAL" in await page.inner_text("dl.facts")
            field = page.get_by_label("Type the target's name to approve")
            await page.get_by_role("button", name="Approve").click()  # empty: the browser does not even send it
            assert await page.evaluate("document.getElementById('target').validity.valueMissing") is True
            await field.fill("wipe-al")
            await page.get_by_role("button", name="Approve").click()
            await page.wait_for_selector("text=typed exactly")
            assert not face.world.ledger().find(plan_id=plan_id, kind="approve")
            await page.get_by_label("Type the target's name to approve").fill("wipe-all")
            await page.get_by_role("button", name="Approve").click()
            await page.wait_for_selector("text=Approved: ledger record")
            applied = await agent.call_tool("proximo_apply", {"plan_id": plan_id})
        assert not applied.is_error, text(applied)


async def test_a_stale_plan_is_refused(tmp_path: Path) -> None:
    async with setup(tmp_path) as (face, base, context):
        page = await signed_in(context, base, face)
        async with face.client() as agent:
            plan_id = await plan_through_mcp(agent, "pve_storage_delete", {"storage": "local-zfs"})
            await page.goto(f"{base}/plan/{plan_id}")
            face.world.sim.model.storages["nfs-backup"]["disable"] = 1  # changed outside Proximo after the page opened
            await page.get_by_role("button", name="Approve").click()
            await page.wait_for_selector("text=is stale")
            assert await page.locator("#approve-form").count() == 0
            refused = await agent.call_tool("proximo_apply", {"plan_id": plan_id})
        assert refused.is_error and "stale" in text(refused)
        assert not face.world.ledger().find(plan_id=plan_id, kind="approve")


async def test_a_form_post_without_the_csrf_token_is_refused(tmp_path: Path) -> None:
    async with setup(tmp_path) as (face, base, context):
        page = await signed_in(context, base, face)
        async with face.client() as agent:
            plan_id = await plan_through_mcp(agent, "pve_storage_delete", {"storage": "local-zfs"})
        await page.goto(f"{base}/plan/{plan_id}")
        await page.evaluate("document.querySelector('#approve-form input[name=csrf]').remove()")
        response_status: list[int] = []
        page.on("response", lambda r: response_status.append(r.status) if r.request.method == "POST" else None)
        await page.get_by_role("button", name="Approve").click()
        await page.wait_for_selector("text=CSRF token is missing or wrong")
        assert response_status == [403]
        assert not face.world.ledger().find(plan_id=plan_id, kind="approve")


async def test_the_agents_bearer_token_is_refused(tmp_path: Path) -> None:
    async with setup(tmp_path) as (face, base, context):
        await context.set_extra_http_headers({"Authorization": f"Bearer {HTTP_TOKEN}"})
        page = await context.new_page()
        answer = await page.goto(base + "/")
        assert answer is not None and answer.status == 401
        assert "takes no bearer token" in await page.inner_text("body")
        ledger = await page.goto(base + "/ledger")
        assert ledger is not None and ledger.status == 401


async def test_keyboard_alone_signs_in_and_focus_is_visible_at_a_phones_width(tmp_path: Path) -> None:
    async with setup(tmp_path) as (face, base, context):
        page = await context.new_page()
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto(base + "/signin")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("", "none")  # the focus ring shows where the keyboard is
        while await page.evaluate("document.activeElement.id") != "name":
            await page.keyboard.press("Tab")
        await page.keyboard.type(face.world.person.name)
        await page.keyboard.press("Tab")
        await page.keyboard.type(face.world.person.passphrase)
        await page.keyboard.press("Enter")
        await page.wait_for_selector("text=Plans waiting for a person")
        # nothing wider than the phone's screen but the table and picture, which scroll inside their own boxes
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
