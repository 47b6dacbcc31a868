"""Streamable HTTP on a real loopback socket: the bearer token, DNS-rebinding protection, and refusing to bind
to a reachable address without a token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from click.testing import CliRunner
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from _mcp_pack import make_world
from _mcp_support import HTTP_TOKEN, anyio_backend, serve_http  # noqa: F401
from proximo._secret import Secret
from proximo.cli import serve_command
from proximo.errors import BadInput
from proximo.mcp import McpSettings, build_server, is_loopback
from proximo.mcp._http import check_bind, transport_security

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def server_for(tmp_path: Path) -> Any:
    world = make_world(tmp_path)
    return build_server(world.host, McpSettings(toolset="full"), tools=world.packs.tools)


async def post(url: str, headers: dict[str, str]) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(url, json=INITIALIZE, headers={**HEADERS, **headers})


@pytest.mark.anyio
@pytest.mark.parametrize(("authorization", "reason"), [
    (None, "missing bearer token"),
    ("Bearer wrong-token-0123456789", "wrong bearer token"),
    (f"Bearer {HTTP_TOKEN}x", "wrong bearer token"),
    (f"Bearer {HTTP_TOKEN[:-1]}", "wrong bearer token"),
    (f"Basic {HTTP_TOKEN}", "wrong bearer token"),
    (HTTP_TOKEN, "wrong bearer token"),
])
async def test_bearer_token_missing_or_wrong_is_401(authorization: str | None, reason: str, tmp_path: Path) -> None:
    async with serve_http(server_for(tmp_path)) as base:
        response = await post(base + "/mcp", {"Authorization": authorization} if authorization else {})
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "error_description": reason}
    assert response.headers["www-authenticate"] == 'Bearer realm="proximo"'
    assert HTTP_TOKEN not in response.text


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_right_token_serves_and_wrong_token_fails_the_sdk_client(mode: str, tmp_path: Path) -> None:
    async with serve_http(server_for(tmp_path)) as base:
        async with httpx2.AsyncClient(headers={"Authorization": f"bearer {HTTP_TOKEN}"}) as http:
            async with Client(streamable_http_client(base + "/mcp", http_client=http), mode=mode) as client:
                tools = (await client.list_tools()).tools
        raw = await post(base + "/mcp", {"Authorization": f"Bearer {HTTP_TOKEN}"})
        with pytest.raises(Exception):  # noqa: B017,PT011 - whatever the SDK raises, the session never opens
            async with httpx2.AsyncClient(headers={"Authorization": "Bearer not-the-token-at-all"}) as http:
                async with Client(streamable_http_client(base + "/mcp", http_client=http), mode=mode) as client:
                    await client.list_tools()
    assert "proximo_apply" in {t.name for t in tools}
    assert raw.status_code == 200


@pytest.mark.anyio
async def test_foreign_host_header_is_rejected(tmp_path: Path) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example (and its Origin)."""
    auth = {"Authorization": f"Bearer {HTTP_TOKEN}"}
    async with serve_http(server_for(tmp_path)) as base:
        port = base.rsplit(":", 1)[1]
        foreign = await post(base + "/mcp", {**auth, "Host": f"evil.example:{port}"})
        bare = await post(base + "/mcp", {**auth, "Host": "evil.example"})
        origin = await post(base + "/mcp", {**auth, "Origin": "http://evil.example"})
        local = await post(base + "/mcp", {**auth, "Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"})
    assert foreign.status_code == 421 and bare.status_code == 421
    assert origin.status_code == 403
    assert local.status_code == 200


@pytest.mark.anyio
async def test_allowed_hosts_are_configurable(tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {HTTP_TOKEN}"}
    async with serve_http(server_for(tmp_path), allowed_hosts=("mcp.example.org",)) as base:
        named = await post(base + "/mcp", {**auth, "Host": "mcp.example.org:8443", "Origin": "https://mcp.example.org:8443"})
        other = await post(base + "/mcp", {**auth, "Host": "mcp.example.org.evil.example"})
    assert named.status_code == 200 and other.status_code == 421


def test_transport_security_names() -> None:
    wide = transport_security("0.0.0.0", ("mcp.example.org", "10.0.0.5:8765"))
    assert "mcp.example.org" in wide.allowed_hosts and "mcp.example.org:*" in wide.allowed_hosts
    assert "10.0.0.5:8765" in wide.allowed_hosts and "10.0.0.5:*" not in wide.allowed_hosts
    assert "0.0.0.0" not in wide.allowed_hosts and "0.0.0.0:*" not in wide.allowed_hosts  # a wildcard bind is no name
    bound = transport_security("192.168.1.20")
    assert "192.168.1.20:*" in bound.allowed_hosts and bound.enable_dns_rebinding_protection is True
    assert "[fd00::1]:*" in transport_security("fd00::1").allowed_hosts


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
                                               ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
                                               ("pve-admin.lan", False), ("localhost.evil.example", False)])
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_non_loopback_bind_needs_a_token() -> None:
    with pytest.raises(BadInput, match="refusing to listen on 0.0.0.0 without PROXIMO_HTTP_TOKEN"):
        check_bind("0.0.0.0", None)
    given = Secret("a-long-enough-token-value")
    assert check_bind("0.0.0.0", given) is given
    made = check_bind("127.0.0.1", None)  # loopback: a one-run token, shown on stderr
    assert len(made.reveal()) >= 32 and made.reveal() != check_bind("127.0.0.1", None).reveal()


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::"])
def test_serve_refuses_a_reachable_bind_without_token(host: str, tmp_path: Path) -> None:
    env = {"PROXIMO_HOME": str(tmp_path), "PROXIMO_HTTP_TOKEN": ""}
    result = CliRunner().invoke(serve_command(), ["--transport", "http", "--host", host, "--sim"], env=env)
    assert result.exit_code == 2
    assert f"refusing to listen on {host} without PROXIMO_HTTP_TOKEN" in result.output
    assert not (tmp_path / "sim").exists()  # refused before anything was set up


@pytest.mark.anyio
@pytest.mark.parametrize("token", [HTTP_TOKEN, ""])
async def test_proximo_serve_transport_http(token: str, tmp_path: Path) -> None:
    """The real command: `proximo serve --transport http --sim` on a loopback port, then the SDK client over it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PROXIMO_HOME": str(tmp_path), "PROXIMO_HTTP_TOKEN": token}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "proximo"), "serve", "--transport", "http", "--sim",
                             "--port", "0", "--toolset", "full"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)  # 0: the kernel picks
    try:
        stderr = b""
        for _ in range(3000):  # bounded wait for the start-up line (a readiness wait, not a timed assertion)
            line = await anyio.to_thread.run_sync(proc.stderr.readline)
            stderr += line
            if b"/mcp (bearer token required)" in line or not line:
                break
        text_err = stderr.decode()
        assert "MCP server at http://127.0.0.1:" in text_err, text_err
        port = int(text_err.split("MCP server at http://127.0.0.1:", 1)[1].split("/", 1)[0])
        assert port > 0
        used = token or text_err.split("this run's bearer token is: ", 1)[1].split()[0]
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {used}"}) as http:
            async with Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client:
                made = await client.call_tool("pve_storage_delete", {"storage": "local-zfs"})
        refused = await post(f"http://127.0.0.1:{port}/mcp", {})
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert made.structured_content["risk"] == "HIGH"
    assert refused.status_code == 401
    assert out == b""  # nothing on stdout, even over HTTP
    assert (token == "") == ("this run's bearer token is" in text_err)


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {"PROXIMO_HOME": str(tmp_path), "PROXIMO_HTTP_TOKEN": HTTP_TOKEN}
        result = CliRunner().invoke(serve_command(), ["--transport", "http", "--sim", "--port", str(port)], env=env)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == f"proximo serve: cannot listen on 127.0.0.1:{port}: Address already in use"
