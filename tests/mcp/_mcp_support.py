"""One way to reach the MCP face over each transport, for tests that must behave the same on all of them.

    async with open_face("http", "legacy", tmp_path) as face:
        async with face.client(Person("accept", {"approve": True})) as client:
            ...
        face.approve_at_terminal(plan_id)        # the `proximo approve` path, on the server's own ledger

memory: ``Client(server)`` in-process (auto mode dispatches directly, legacy mode runs the JSON-RPC loop);
http:   the face's streamable HTTP app behind its bearer token, served by uvicorn on a real loopback socket;
stdio:  ``_pack_server.py`` spawned as a subprocess (stdout is the protocol stream).
All three serve a ``World`` (the simulated demo cluster) with the test pack, in ``home``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, ElicitRequestParams, ElicitResult

from _loopback import serve_here
from _mcp_pack import make_world
from proximo.trust._ledger import Actor, LedgerRecord
from proximo._secret import Secret
from proximo.cli import approve_at_terminal
from proximo.mcp import McpSettings, build_server, http_app
from proximo.testing import TOKEN_ID, World

Transport = Literal["memory", "http", "stdio"]
Mode = Literal["auto", "legacy"]
TRANSPORTS: list[Transport] = ["memory", "http", "stdio"]
MODES: list[Mode] = ["auto", "legacy"]
HTTP_TOKEN = "test-token-0123456789abcdef"
HERE = Path(__file__).parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Person:
    """The human at the MCP client: answers each approval form as told, and keeps what they were shown."""

    def __init__(self, action: Literal["accept", "decline", "cancel"] = "accept", content: dict[str, Any] | None = None) -> None:
        self.action = action
        self.content = content
        self.asked: list[ElicitRequestParams] = []

    async def __call__(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params)
        return ElicitResult(action=self.action, content=self.content if self.action == "accept" else None)


class Face:
    def __init__(self, kind: Transport, mode: Mode, home: Path, world: World, url: str = "", toolset: str = "full") -> None:
        self.kind = kind
        self.toolset = toolset  # what the stdio server process is started with (memory and http serve the given server)
        self.mode = mode
        self.home = home
        self.world = world  # in memory and http: the served cluster itself; on stdio, one sharing its ledger
        self.url = url

    @asynccontextmanager
    async def client(self, person: Person | None = None, *, token: str | None = HTTP_TOKEN) -> AsyncIterator[Client]:
        """A client; without ``person`` it declares no elicitation capability (like the Inspector CLI)."""
        target: Any
        async with AsyncExitStack() as stack:
            if self.kind == "memory":
                target = self.server
            elif self.kind == "http":
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                # the transport does not close a client it was given
                http = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=60))
                target = streamable_http_client(self.url, http_client=http)
            else:
                target = StdioServerParameters(command=sys.executable,
                                               args=[str(HERE / "_pack_server.py"), str(self.home), self.toolset])
            client = await stack.enter_async_context(Client(target, mode=self.mode, elicitation_callback=person))
            yield client

    async def approve_at_terminal(self, plan_id: str, answer: str = "yes") -> None:
        """What `proximo approve PLAN_ID` does (cli.approve_at_terminal), answered as a person at the prompt would."""
        async with self.world.host() as host:
            person = self.world.person
            answers = {"Approve": answer, "Passphrase": person.passphrase}
            await approve_at_terminal(host, plan_id, Actor(token_id=TOKEN_ID, face="terminal", client="pytest"),
                                      ask=lambda prompt, hidden: next(v for k, v in answers.items() if prompt.startswith(k)))

    def ledger(self) -> list[LedgerRecord]:
        with self.world.ledger() as book:
            return book.tail(1000)


@asynccontextmanager
async def open_face(kind: Transport, mode: Mode, home: Path, *, settings: McpSettings | None = None) -> AsyncIterator[Face]:
    world = make_world(home)
    settings = settings or McpSettings(toolset="full")
    server = build_server(world.host, settings, tools=world.packs.tools)
    if kind == "http":
        async with serve_http(server) as url:
            face = Face(kind, mode, home, world, url + "/mcp", settings.toolset)
            face.server = server  # type: ignore[attr-defined]
            yield face
        return
    face = Face(kind, mode, home, world, toolset=settings.toolset)
    face.server = server  # type: ignore[attr-defined]
    yield face


@asynccontextmanager
async def serve_http(server: Any, *, token: str = HTTP_TOKEN, allowed_hosts: tuple[str, ...] = ()) -> AsyncIterator[str]:
    """The face's HTTP app on 127.0.0.1 with a free port (the kernel picks it), in this test's task group."""
    app = http_app(server, token=Secret(token), bind_host="127.0.0.1", allowed_hosts=allowed_hosts)
    async with serve_here(lambda base: app) as base:
        yield base


async def apply_twice_at_once(client: Client, plan_id: str) -> list[CallToolResult]:
    """Two ``proximo_apply`` calls of one plan sent together on one session: what each answered."""
    import anyio

    results: list[CallToolResult] = []

    async def apply() -> None:
        results.append(await client.call_tool("proximo_apply", {"plan_id": plan_id}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(apply)
        tg.start_soon(apply)
    return results


def text(result: CallToolResult) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)
