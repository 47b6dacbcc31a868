"""An independent client: the MCP Inspector CLI from the npm registry drives ``proximo serve --sim`` over stdio
(and the HTTP face with its bearer token).

Skipped only where ``npx`` is missing and ``CI`` is not set: under CI it must run (``.ci/run`` installs node and
warms the npx cache, and ``npm_config_prefer_offline`` keeps the test on that cache once it is warm).
The Inspector declares no elicitation capability, so applying a HIGH plan through it must wait for a person.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from _mcp_pack import make_world
from _mcp_support import HTTP_TOKEN, anyio_backend, serve_http  # noqa: F401
from proximo.trust._ledger import Ledger
from proximo._settings import Settings
from proximo.trust._state import open_ledger
from proximo.mcp import McpSettings, build_server

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"  # pinned: a newer CLI may change its output

# npx unpacks into one shared cache: two npx runs of the same package at once can trip over each other there, so one
# pytest-xdist worker runs this module's tests one after the other (ONE_WORKER in conftest.py).


def npx() -> str:
    found = shutil.which("npx")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but npx is missing: .ci/run installs node and npm")
        pytest.skip("npx is not installed (set CI=1 to make this a failure)")
    return found


def inspector_env() -> dict[str, str]:
    return {**os.environ, "npm_config_prefer_offline": "true", "npm_config_update_notifier": "false", "NO_COLOR": "1"}


def inspect(home: Path, *args: str, toolset: str = "full") -> tuple[int, Any, str]:
    server = [str(Path(sys.executable).parent / "proximo"), "serve", "--sim"]
    # the Inspector starts the server with a minimal environment: PROXIMO_HOME goes in with -e, as in a client config
    cmd = [npx(), "-y", INSPECTOR, "--cli", "-e", f"PROXIMO_HOME={home}", "-e", f"PROXIMO_TOOLSET={toolset}", *server, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=inspector_env(), timeout=300, check=False)
    try:
        return done.returncode, json.loads(done.stdout), done.stderr
    except ValueError:
        pytest.fail(f"the Inspector did not answer JSON (exit {done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")


def test_inspector_lists_and_plans_over_stdio(tmp_path: Path) -> None:
    code, listed, stderr = inspect(tmp_path, "--method", "tools/list", "--strict")
    assert code == 0, stderr  # --strict exits 6 on an error-severity schema portability problem
    tools = {t["name"]: t for t in listed["tools"]}
    assert {"proximo_apply", "proximo_undo", "proximo_ledger_verify", "proximo_ledger_tail", "pve_storage_delete"} <= set(tools)
    assert tools["pve_storage_delete"]["annotations"]["readOnlyHint"] is True
    assert tools["pve_storage_delete"]["title"].startswith("Plan: ")
    assert tools["proximo_apply"]["annotations"]["destructiveHint"] is True
    assert tools["pve_storage_delete"]["inputSchema"]["required"] == ["storage"]

    code, planned, stderr = inspect(tmp_path, "--method", "tools/call", "--tool-name", "pve_storage_delete",
                                    "--tool-arg", "storage=local-zfs")
    assert code == 0, stderr
    plan = planned["structuredContent"]
    assert planned.get("isError") is not True and plan["risk"] == "HIGH"
    assert plan["steps"] == [{"kind": "api", "method": "DELETE", "path": "/storage/local-zfs", "params": {}}]
    with sim_ledger(tmp_path) as book:
        record = book.get(plan["ledger"]["seq"])
    assert record is not None and record.plan_id == plan["plan_id"] and record.kind == "plan"
    assert record.actor.face == "mcp" and "inspector" in record.actor.client.lower()

    code, applied, stderr = inspect(tmp_path, "--method", "tools/call", "--tool-name", "proximo_apply",
                                    "--tool-arg", f"plan_id={plan['plan_id']}")
    text = " ".join(c.get("text", "") for c in applied.get("content", []))
    assert applied.get("isError") is True and f"proximo approve --sim {plan['plan_id']}" in text, (code, applied, stderr)
    with sim_ledger(tmp_path) as book:
        assert [r.kind for r in book.find(plan_id=plan["plan_id"])] == ["plan"]  # nothing approved, nothing applied


def sim_ledger(home: Path) -> Ledger:
    """The ledger `proximo serve --sim` keeps in PROXIMO_HOME/sim, opened as the server opens it."""
    return open_ledger(Settings.from_env({"PROXIMO_HOME": str(home / "sim")}))


@pytest.mark.anyio
async def test_inspector_over_http_with_the_bearer_token(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    server = build_server(world.host, McpSettings(toolset="full"), tools=world.packs.tools)
    async with serve_http(server) as base:
        cmd = [npx(), "-y", INSPECTOR, "--cli", base + "/mcp", "--transport", "http", "--method", "tools/call",
               "--tool-name", "pve_storage_status", "--tool-arg", "storage=local", "--tool-arg", "node=pve1",
               "--stored-auth-only"]  # a 401 must not start an interactive OAuth flow
        right = await anyio.run_process([*cmd, "--header", f"Authorization: Bearer {HTTP_TOKEN}"], env=inspector_env(),
                                        check=False)
        wrong = await anyio.run_process([*cmd, "--header", "Authorization: Bearer nope-nope-nope-nope"], env=inspector_env(),
                                        check=False)
    answer = json.loads(right.stdout)
    assert right.returncode == 0 and answer["structuredContent"]["data"][0]["storage"] == "local"
    assert wrong.returncode != 0 and b"auth_required" in wrong.stdout + wrong.stderr and not wrong.stdout


# What a model does with the compact set, one walk per pack: find the tool by words, read its schema, plan, apply.
WALKS = [
    ("storage delete", "storage.delete", {"storage": "local-zfs"}),  # HIGH: a person approves at a terminal
    ("stop guest", "guest.stop", {"vmid": 104}),  # HIGH
    ("firewall alias create", "firewall.alias.create", {"name": "lab", "cidr": "192.0.2.0/24"}),  # within auto-approval
    ("acl grant", "access.acl.grant", {"path": "/vms/104", "roles": "PVEVMUser", "users": "alice@pve"}),
]
COMPACT = {"proximo_search", "proximo_describe", "proximo_read", "proximo_plan", "proximo_apply", "proximo_undo",
           "proximo_ledger_verify", "proximo_ledger_tail"}


def call(home: Path, mcp_tool: str, **args: Any) -> Any:
    pairs = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in args.items()]
    code, answer, stderr = inspect(home, "--method", "tools/call", "--tool-name", mcp_tool,
                                   *[a for pair in pairs for a in ("--tool-arg", pair)], toolset="compact")
    assert code == (5 if answer.get("isError") else 0), stderr  # the Inspector exits 5 on a tool error
    return answer


def test_inspector_walks_the_compact_set_to_an_applied_change(tmp_path: Path) -> None:
    from test_mcp_stdio import _approve_in_a_terminal  # `proximo approve --sim` on a pseudo-terminal, as a person

    code, listed, stderr = inspect(tmp_path, "--method", "tools/list", "--strict", toolset="compact")
    assert code == 0, stderr  # the compact set is portable too (--strict exits 6 otherwise)
    assert {t["name"] for t in listed["tools"]} == COMPACT
    assert len(json.dumps(listed, separators=(",", ":"), ensure_ascii=False).encode()) < 4_000
    for words, tool, params in WALKS:
        found = call(tmp_path, "proximo_search", query=words)["structuredContent"]["matches"]
        assert found[0].startswith(f"{tool} (plan) "), found
        described = call(tmp_path, "proximo_describe", tool=tool)["structuredContent"]
        assert described["call"] == "proximo_plan" and set(params) <= set(described["input_schema"]["properties"])
        planned = call(tmp_path, "proximo_plan", tool=tool, params=params)
        plan = planned["structuredContent"]
        assert planned.get("isError") is not True and plan["tool"] == tool and not plan["blocked"], planned
        applied = call(tmp_path, "proximo_apply", plan_id=plan["plan_id"])
        if plan["risk"] == "HIGH":  # the Inspector shows no form: the plan waits for a person at a terminal
            said = " ".join(c.get("text", "") for c in applied["content"])
            assert applied.get("isError") is True and f"proximo approve --sim {plan['plan_id']}" in said
            approved, screen = _approve_in_a_terminal(tmp_path, plan["plan_id"], "yes")
            assert approved == 0, screen
            applied = call(tmp_path, "proximo_apply", plan_id=plan["plan_id"])
        assert applied.get("isError") is not True, applied
        with sim_ledger(tmp_path) as book:
            records = book.find(plan_id=plan["plan_id"])
        assert [r.kind for r in records][-2:] == ["apply-start", "apply-result"]
        by_person = [r for r in records if r.kind == "approve" and r.actor.face == "terminal"]
        assert bool(by_person) == (plan["risk"] == "HIGH")  # within auto-approval the host approves it itself
        assert records[0].actor.face == "mcp" and "inspector" in records[0].actor.client.lower()
