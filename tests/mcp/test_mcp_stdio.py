"""``proximo serve --sim`` and ``proximo-proxmox --sim`` as MCP clients spawn them: stdout carries the protocol
and nothing else, and a plan above auto-approval waits for ``proximo approve --sim`` typed in a real terminal.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from _mcp_support import MODES, anyio_backend, text  # noqa: F401

BIN = Path(sys.executable).parent


def command(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"the {name} console script is not installed in this environment")
    return str(path)


def env(home: Path) -> dict[str, str]:
    return {**os.environ, "PROXIMO_HOME": str(home), "PROXIMO_TOOLSET": "full"}  # these tests call pve_* tools by name


def test_stdout_is_only_the_protocol(tmp_path: Path) -> None:
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "pve_storage_delete", "arguments": {"storage": "local-zfs"}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "pve_storage_delete", "arguments": {"storage": "../x"}}},
    ]
    proc = subprocess.Popen([command("proximo"), "serve", "--sim"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env(tmp_path))
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write("".join(json.dumps(r) + "\n" for r in requests).encode())
    proc.stdin.flush()
    raw = b""
    try:
        for _ in range(6000):  # bounded: at most ~60 s; stop once every request is answered
            if select.select([proc.stdout], [], [], 0.01)[0]:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                raw += chunk
            if raw.endswith(b"\n") and sum(1 for line in raw.splitlines() if b'"id"' in line) >= 4:
                break
    finally:
        proc.stdin.close()  # EOF: the server exits
        proc.wait(timeout=30)
    stderr = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    answers = [json.loads(line) for line in raw.decode().splitlines()]  # every line on stdout is a JSON-RPC message
    assert all(a["jsonrpc"] == "2.0" for a in answers)
    assert sorted(a["id"] for a in answers if "id" in a) == [1, 2, 3, 4]
    by_id = {a["id"]: a for a in answers if "id" in a}
    assert by_id[3]["result"]["structuredContent"]["risk"] == "HIGH"
    assert by_id[4]["result"]["isError"] is True
    assert "proximo: MCP server on stdio: " in stderr and "simulated cluster" in stderr


PASSPHRASE = "the person's own passphrase"


def _approve_in_a_terminal(home: Path, plan_id: str, answer: str) -> tuple[int, str]:
    """Run `proximo approve --sim PLAN_ID` on a pseudo-terminal and answer its prompts as a person would."""
    from proximo.trust._approvers import ApproverStore

    store = ApproverStore(home / "sim")
    if not store.names():
        store.add("alice", PASSPHRASE)
    master, slave = os.openpty()
    proc = subprocess.Popen([command("proximo"), "approve", "--sim", plan_id], stdin=slave, stdout=slave, stderr=slave,
                            env={**env(home), "COLUMNS": "200"}, close_fds=True)
    os.close(slave)
    seen = b""
    answered = gave_passphrase = False
    try:
        for _ in range(6000):  # bounded: at most ~60 s of reads, each waits up to 10 ms
            ready, _, _ = select.select([master], [], [], 0.01)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the terminal closed: the command ended
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"type 'yes'" in seen:
                os.write(master, answer.encode() + b"\n")
                answered = True
            if answered and not gave_passphrase and b"Passphrase" in seen:
                os.write(master, PASSPHRASE.encode() + b"\n")
                gave_passphrase = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=30), seen.decode(errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("script", ["proximo", "proximo-proxmox"])
async def test_serve_sim_plan_waits_for_proximo_approve(script: str, mode: str, tmp_path: Path) -> None:
    args = ["serve", "--sim"] if script == "proximo" else ["--sim"]
    server = StdioServerParameters(command=command(script), args=args, env=env(tmp_path))
    async with Client(server, mode=mode) as client:
        tools = (await client.list_tools()).tools
        made = (await client.call_tool("pve_storage_delete", {"storage": "local-zfs"})).structured_content
        waiting = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
        assert waiting.is_error and f"proximo approve --sim {made['plan_id']}" in text(waiting)
        if script == "proximo":
            declined, _ = await anyio.to_thread.run_sync(_approve_in_a_terminal, tmp_path, made["plan_id"], "no")
            assert declined == 3
            still = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
            # a declined plan is dead (issue 20): asking again would wear the person down; a new plan is a new question
            assert still.is_error and "was declined by a person" in text(still) and "make a new plan" in text(still)
            again, _ = await anyio.to_thread.run_sync(_approve_in_a_terminal, tmp_path, made["plan_id"], "yes")
            assert again != 0
            made = (await client.call_tool("pve_storage_delete", {"storage": "local-zfs"})).structured_content
        code, screen = await anyio.to_thread.run_sync(_approve_in_a_terminal, tmp_path, made["plan_id"], "yes")
        assert code == 0, screen
        assert f"approved {made['plan_id']}" in screen and "DELETE /storage/local-zfs" in screen  # the person saw the steps
        applied = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
        listed = await client.call_tool("pve_storage_list", {})
        tail = (await client.call_tool("proximo_ledger_tail", {"n": 10})).structured_content["records"]
    assert len(tools) >= 17 and {"proximo_apply", "pve_storage_delete"} <= {t.name for t in tools}
    assert not applied.is_error, text(applied)
    assert "local-zfs" not in {row["storage"] for row in listed.structured_content["data"]}
    kinds = [r["kind"] for r in tail if r["plan_id"] == made["plan_id"]]
    assert kinds[-3:] == ["approve", "apply-start", "apply-result"]
    approval = [r for r in tail if r["kind"] == "approve"][-1]
    assert approval["actor"]["face"] == "terminal"


def test_serve_without_a_cluster_says_what_is_missing(tmp_path: Path) -> None:
    clean = {k: v for k, v in env(tmp_path).items() if not k.startswith("PROXIMO_") or k == "PROXIMO_HOME"}
    done = subprocess.run([command("proximo-proxmox")], capture_output=True, text=True, env=clean, timeout=120, check=False,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and done.stdout == ""
    assert "proximo serve: no cluster configured: set PROXIMO_URL" in done.stderr


@pytest.mark.anyio
async def test_serve_on_a_live_cluster_over_loopback(tmp_path: Path) -> None:
    """Not --sim: the server talks HTTP to a Proxmox API (the simulator on a loopback socket) with the token."""
    import socket

    import uvicorn

    from proximo.testing import TOKEN_ID, World

    world = World(tmp_path / "cluster")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    web = uvicorn.Server(uvicorn.Config(world.sim.app, log_level="warning", lifespan="off", interface="asgi3"))
    live = {**env(tmp_path / "face"), "PROXIMO_URL": f"http://127.0.0.1:{sock.getsockname()[1]}",
            "PROXIMO_TOKEN_ID": TOKEN_ID, "PROXIMO_TOKEN_SECRET": world.secret}
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: web.serve(sockets=[sock]))
            while not web.started:  # a readiness wait, not a timed assertion
                await anyio.sleep(0.01)
            async with Client(StdioServerParameters(command=command("proximo"), args=["serve"], env=live)) as client:
                listed = await client.call_tool("pve_node_list", {})
                made = await client.call_tool("pve_storage_delete", {"storage": "local-zfs"})
                verify = await client.call_tool("proximo_ledger_verify", {})
            web.should_exit = True
    finally:
        sock.close()
    assert {row["node"] for row in listed.structured_content["data"]} == set(world.model.nodes)
    assert made.structured_content["source"].startswith("live:http://127.0.0.1:")
    assert ("GET", "/cluster/resources") in world.sim.requests and "local-zfs" in world.model.storages
    assert verify.structured_content["ok"] is True and verify.structured_content["records"] == 1
    assert world.secret not in json.dumps(made.structured_content)
