"""The A2A face on a real loopback socket in the test's task group, and the A2A SDK's own client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, create_client
from a2a.helpers import new_data_part, new_text_part
from a2a.types import Message, Role, SendMessageRequest, StreamResponse, SubscribeToTaskRequest, TaskState
from google.protobuf.json_format import MessageToDict

from _loopback import serve_here

from proximo._secret import Secret
from proximo.a2a import build_app
from proximo.testing import World

TOKEN = "a2a-test-token-3f9c1e7b2d4a6f80"
BINDINGS = ["JSONRPC", "HTTP+JSON"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def serve(world: World, *, token: str | None = None, allowed_hosts: tuple[str, ...] = ()) -> AsyncIterator[str]:
    def make_app(base: str) -> Any:
        return build_app(world.host, tools=world.packs.tools, home=world.home, base_url=base,
                         token=Secret(token) if token else None, allowed_hosts=allowed_hosts)

    async with serve_here(make_app) as base:
        yield base


@asynccontextmanager
async def client(base: str, *, binding: str = "JSONRPC", streaming: bool = True, token: str | None = None) -> AsyncIterator[Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        card = await A2ACardResolver(http, base).get_agent_card()
        config = ClientConfig(streaming=streaming, httpx_client=http, supported_protocol_bindings=[binding])
        c = await create_client(card, client_config=config)
        try:
            yield c
        finally:
            await c.close()


def data_message(data: Any, *, task_id: str = "", context_id: str = "") -> SendMessageRequest:
    import uuid

    msg = Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[new_data_part(data)], task_id=task_id,
                  context_id=context_id)
    return SendMessageRequest(message=msg)


def text_message(text: str) -> SendMessageRequest:
    import uuid

    return SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[new_text_part(text)]))


async def events(c: Any, request: SendMessageRequest) -> list[StreamResponse]:
    return [ev async for ev in c.send_message(request)]


def state_of(ev: StreamResponse) -> str | None:
    if ev.HasField("task"):
        return TaskState.Name(ev.task.status.state)
    if ev.HasField("status_update"):
        return TaskState.Name(ev.status_update.status.state)
    return None


def final_task_id(evs: list[StreamResponse]) -> str:
    for ev in evs:
        if ev.HasField("task"):
            return ev.task.id
        if ev.HasField("status_update"):
            return ev.status_update.task_id
    raise AssertionError("no task in the events")


def artifacts(evs: list[StreamResponse]) -> dict[str, Any]:
    """Artifact name -> its data part, from a stream's artifact updates or a final task."""
    out: dict[str, Any] = {}
    for ev in evs:
        arts = [ev.artifact_update.artifact] if ev.HasField("artifact_update") else list(ev.task.artifacts) if ev.HasField("task") else []
        for art in arts:
            for part in art.parts:
                if part.HasField("data"):
                    out[art.name] = MessageToDict(part.data)
    return out


def status_texts(evs: list[StreamResponse]) -> list[str]:
    out = []
    for ev in evs:
        status = ev.status_update.status if ev.HasField("status_update") else ev.task.status if ev.HasField("task") else None
        if status is not None:
            out += [p.text for p in status.message.parts if p.HasField("text")]
    return out


@asynccontextmanager
async def subscribed(c: Any, task_id: str) -> AsyncIterator[list[Any]]:
    """A task's events, collected in the background once its stream has begun (the block runs after the first one);
    leaving the block waits for the stream to end."""
    seen: list[Any] = []

    async def consume() -> None:
        async for ev in c.subscribe(SubscribeToTaskRequest(id=task_id)):
            seen.append(ev)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        while not seen:  # a readiness wait, not a timed assertion
            await anyio.sleep(0.02)
        yield seen

