"""Two proximo_apply calls of one plan at once, in one MCP session: the person is asked once (issue 20).

The host keeps one open question per plan (``Host.open_question``): the second caller is refused in one line while
the first waits for the person. What makes this delicate is pinned first: on 2026-07-28 connections the SDK runs the
approval resolver again in the round that brings the person's answer (with ``request_state`` set), so a per-plan
"asking" mark must let the same call's second round through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import AcceptedElicitation, Context, ElicitationResult, Elicit, MCPServer, Resolve
from mcp_types import ElicitRequestParams, ElicitResult
from pydantic import BaseModel

from _mcp_support import MODES, Person, anyio_backend, apply_twice_at_once, open_face, text  # noqa: F401

pytestmark = pytest.mark.anyio


class Ok(BaseModel):
    ok: bool = False


FIRST_ROUND: list[bool] = []  # per run of the pinned resolver: was it the call's first round (no request_state)?


async def _ask(ctx: Context[Any, Any]) -> Elicit[Ok]:
    FIRST_ROUND.append(ctx.request_state is None)
    return Elicit("ok?", Ok)


async def _asked(ctx: Context[Any, Any], answer: Annotated[ElicitationResult[Ok], Resolve(_ask)]) -> str:
    return "yes" if isinstance(answer, AcceptedElicitation) and answer.data.ok else "no"


@pytest.mark.parametrize(("mode", "runs"), [("auto", [True, False]), ("legacy", [True])])
async def test_the_sdk_runs_a_resolver_again_in_the_round_that_brings_the_answer(mode: str, runs: list[bool]) -> None:
    """auto (2026-07-28): two runs for one call, the second with request_state; legacy (2025-11-25): one run."""
    FIRST_ROUND.clear()
    server = MCPServer("pin")
    server.tool(name="asked")(_asked)

    async def person(context: Any, params: ElicitRequestParams) -> ElicitResult:
        return ElicitResult(action="accept", content={"ok": True})

    async with Client(server, mode=mode, elicitation_callback=person) as client:
        result = await client.call_tool("asked", {})
    assert text(result) == "yes" and FIRST_ROUND == runs


class SlowPerson(Person):
    """Accepts, but only once told to: so a second call can arrive while the first is still asking."""

    def __init__(self) -> None:
        super().__init__("accept", {"approve": True})
        self.asking = anyio.Event()
        self.answer = anyio.Event()

    async def __call__(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params)
        self.asking.set()
        if len(self.asked) > 1:  # asked twice: the bug this file is about; answer both rather than wait forever
            self.answer.set()
        await self.answer.wait()
        return ElicitResult(action="accept", content=self.content)


@pytest.mark.parametrize("mode", MODES)
async def test_a_second_call_while_the_person_is_asked_is_refused_in_one_line(mode: str, tmp_path: Path) -> None:
    person = SlowPerson()
    async with open_face("memory", mode, tmp_path) as face, face.client(person) as client:
        made = (await client.call_tool("pve_storage_delete", {"storage": "local-zfs"})).structured_content
        first: dict[str, Any] = {}

        async def apply() -> None:
            first["result"] = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})

        async with anyio.create_task_group() as tg:
            tg.start_soon(apply)
            await person.asking.wait()
            second = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
            person.answer.set()
    assert second.is_error and f"a person is already being asked about plan {made['plan_id']}" in text(second)
    assert "\n" not in text(second)
    assert not first["result"].is_error, text(first["result"])
    assert len(person.asked) == 1
    records = [r.kind for r in face.ledger() if r.plan_id == made["plan_id"]]
    assert records.count("approve") == 1 and records.count("apply-start") == 1


@pytest.mark.parametrize("mode", MODES)
async def test_two_calls_sent_together_ask_once_and_apply_once(mode: str, tmp_path: Path) -> None:
    person = Person("accept", {"approve": True})
    async with open_face("memory", mode, tmp_path) as face, face.client(person) as client:
        made = (await client.call_tool("pve_storage_delete", {"storage": "local-zfs"})).structured_content
        results = await apply_twice_at_once(client, made["plan_id"])
    assert sorted(r.is_error for r in results) == [False, True]
    assert len(person.asked) == 1
    records = [r.kind for r in face.ledger() if r.plan_id == made["plan_id"]]
    assert records.count("approve") == 1 and records.count("apply-start") == 1 and records.count("apply-result") == 1
