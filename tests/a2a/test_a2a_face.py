"""The A2A face over real loopback HTTP, driven by the A2A SDK's own client on both bindings, streaming and not."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from a2a.types import GetTaskRequest, TaskState

from _a2a_support import (BINDINGS, TOKEN, anyio_backend, artifacts, client, data_message, events, final_task_id,  # noqa: F401
                          serve, state_of, status_texts, subscribed, text_message)
from proximo.testing import World
from proximo.trust._ledger import Actor

TERMINAL = Actor(token_id="-", face="terminal", client="a person at a terminal")


def world(tmp_path: Path) -> World:
    w = World(tmp_path / "home")
    w.sim.task_polls = 2
    return w


@pytest.mark.anyio
async def test_agent_card_has_the_five_generated_skills_and_both_bindings(tmp_path: Path) -> None:
    async with serve(world(tmp_path)) as base:
        async with httpx.AsyncClient() as http:
            card = (await http.get(base + "/.well-known/agent-card.json")).json()
    assert [s["id"] for s in card["skills"]] == ["inspect", "plan", "apply", "undo", "audit"]
    assert all(s["examples"] for s in card["skills"])
    assert {i["protocolBinding"] for i in card["supportedInterfaces"]} == {"JSONRPC", "HTTP+JSON"}
    assert all(i["url"].startswith(base) for i in card["supportedInterfaces"])
    assert card["capabilities"]["streaming"] is True


@pytest.mark.anyio
@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("streaming", [True, False])
async def test_inspect_and_plan(binding: str, streaming: bool, tmp_path: Path) -> None:
    async with serve(world(tmp_path)) as base, client(base, binding=binding, streaming=streaming) as c:
        read = await events(c, data_message({"tool": "guest.list", "params": {}}))
        plan = await events(c, text_message("guest.snapshot.create vmid=104 snapname=a2a"))
    assert state_of(read[-1]) == "TASK_STATE_COMPLETED"
    assert "answer" in artifacts(read)
    assert state_of(plan[-1]) == "TASK_STATE_COMPLETED"
    doc = artifacts(plan)["plan"]
    assert doc["tool"] == "guest.snapshot.create" and doc["risk"] == "MEDIUM"


@pytest.mark.anyio
@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("streaming", [True, False])
async def test_apply_of_a_medium_plan_completes_with_the_ledger_receipt(binding: str, streaming: bool, tmp_path: Path) -> None:
    w = world(tmp_path)
    async with serve(w) as base, client(base, binding=binding, streaming=streaming) as c:
        plan = artifacts(await events(c, data_message({"tool": "guest.snapshot.create", "params": {"vmid": 104, "snapname": "s1"}})))["plan"]
        evs = await events(c, data_message({"apply": plan["plan_id"]}))
    states = [state_of(e) for e in evs]
    assert states[-1] == "TASK_STATE_COMPLETED"
    if streaming:
        assert "TASK_STATE_WORKING" in states
    receipt = artifacts(evs)["receipt"]
    assert receipt["ok"] is True and receipt["plan_id"] == plan["plan_id"]
    assert w.ledger().find(plan_id=plan["plan_id"], kind="apply-result")[-1].seq == receipt["ledger"]["seq"]
    assert "s1" in {s.get("name") for s in w.sim.model.snapshots.get(104, [])} if hasattr(w.sim.model, "snapshots") else True


async def _wait_for_state(c, task_id: str, state: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(500):  # a readiness wait, not a timed assertion
        task = await c.get_task(GetTaskRequest(id=task_id))
        if TaskState.Name(task.status.state) == state:
            return
        await anyio.sleep(0.02)
    raise AssertionError(f"task {task_id} never reached {state}")


@pytest.mark.anyio
@pytest.mark.parametrize("binding", BINDINGS)
async def test_high_plan_waits_in_input_required_until_a_person_approves_and_the_stream_completes(binding: str, tmp_path: Path) -> None:
    """The stream of the apply ends at input-required (the SDK's interrupted state); the client subscribes to the task
    and hears the rest when a person approves: no polling."""
    w = world(tmp_path)
    person = w.person
    async with serve(w) as base, client(base, binding=binding) as c:
        plan = artifacts(await events(c, data_message({"tool": "guest.stop", "params": {"vmid": 104}})))["plan"]
        assert plan["risk"] == "HIGH"
        first = await events(c, data_message({"apply": plan["plan_id"]}))
        assert state_of(first[-1]) == "TASK_STATE_INPUT_REQUIRED"
        assert "proximo approve" in " ".join(status_texts(first))
        assert w.ledger().find(plan_id=plan["plan_id"], kind="apply-start") == []
        async with subscribed(c, final_task_id(first)) as seen:
            async with w.host() as other:  # what `proximo approve PLAN_ID` does: the approver's own credential
                other.approve(plan["plan_id"], TERMINAL, person)
    states = [state_of(e) for e in seen]
    assert "TASK_STATE_WORKING" in states
    assert states[-1] == "TASK_STATE_COMPLETED"
    assert artifacts(seen)["receipt"]["ok"] is True


@pytest.mark.anyio
async def test_non_streaming_client_gets_input_required_then_resubscribes_and_hears_the_approval(tmp_path: Path) -> None:
    w = world(tmp_path)
    person = w.person
    async with serve(w) as base:
        async with client(base, streaming=False) as c:
            plan = artifacts(await events(c, data_message({"tool": "guest.stop", "params": {"vmid": 104}})))["plan"]
            first = await events(c, data_message({"apply": plan["plan_id"]}))
        assert state_of(first[-1]) == "TASK_STATE_INPUT_REQUIRED"
        task_id = final_task_id(first)
        async with client(base) as c:
            async with subscribed(c, task_id) as seen:
                async with w.host() as other:
                    other.approve(plan["plan_id"], TERMINAL, person)
            task = await c.get_task(GetTaskRequest(id=task_id))
    assert TaskState.Name(task.status.state) == "TASK_STATE_COMPLETED"
    assert state_of(seen[-1]) == "TASK_STATE_COMPLETED"


@pytest.mark.anyio
async def test_a_person_denying_fails_the_task(tmp_path: Path) -> None:
    w = world(tmp_path)
    async with serve(w) as base, client(base) as c:
        plan = artifacts(await events(c, data_message({"tool": "guest.stop", "params": {"vmid": 104}})))["plan"]
        first = await events(c, data_message({"apply": plan["plan_id"]}))
        async with subscribed(c, final_task_id(first)) as seen:
            async with w.host() as other:  # `proximo approve` answered "no" at the terminal
                other.deny(plan["plan_id"], TERMINAL, "declined at the terminal")
    assert state_of(seen[-1]) == "TASK_STATE_FAILED"
    assert "declined by a person" in status_texts(seen)[-1]  # a declined plan is dead: the task says so
    assert w.ledger().find(plan_id=plan["plan_id"], kind="apply-start") == []


@pytest.mark.anyio
async def test_an_input_required_task_survives_a_restart_and_completes_after_a_later_approval(tmp_path: Path) -> None:
    w = world(tmp_path)
    person = w.person
    async with serve(w) as base, client(base, streaming=False) as c:
        plan = artifacts(await events(c, data_message({"tool": "guest.stop", "params": {"vmid": 104}})))["plan"]
        first = await events(c, data_message({"apply": plan["plan_id"]}))
        task_id = final_task_id(first)
    assert state_of(first[-1]) == "TASK_STATE_INPUT_REQUIRED"
    async with serve(w) as base, client(base, streaming=False) as c:  # restarted: still parked, still nothing applied
        task = await c.get_task(GetTaskRequest(id=task_id))
        assert TaskState.Name(task.status.state) == "TASK_STATE_INPUT_REQUIRED"
        assert task.metadata["proximo/plan_id"] == plan["plan_id"]
    assert w.ledger().find(plan_id=plan["plan_id"], kind="apply-start") == []
    async with w.host() as other:  # approved while the server is down
        other.approve(plan["plan_id"], TERMINAL, person)
    async with serve(w) as base, client(base, streaming=False) as c:
        # the restarted server watches the tasks parked in its store: nobody sends anything
        await _wait_for_state(c, task_id, "TASK_STATE_COMPLETED")
    assert w.ledger().find(plan_id=plan["plan_id"], kind="apply-result")


@pytest.mark.anyio
@pytest.mark.parametrize("request_", [
    {"tool": "guest.stop", "params": {"vmid": 104, "approved": True}},
    {"apply": "x", "approved": True},
    "guest.stop vmid=104 force_approve=1",
])
async def test_unknown_params_are_refused(request_: object, tmp_path: Path) -> None:
    w = world(tmp_path)
    async with serve(w) as base, client(base) as c:
        msg = text_message(request_) if isinstance(request_, str) else data_message(request_)
        evs = await events(c, msg)
    assert state_of(evs[-1]) == "TASK_STATE_REJECTED"
    assert any("approve" in t for t in status_texts(evs))
    assert w.ledger().find(plan_id="", kind="deny") or any(r.kind == "deny" for r in w.ledger().tail(5))


@pytest.mark.anyio
async def test_bad_token_and_foreign_host_are_refused_and_the_secret_never_shows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    w = world(tmp_path)
    async with serve(w, token=TOKEN) as base:
        port = base.rsplit(":", 1)[1]
        async with httpx.AsyncClient() as http:
            none = await http.get(base + "/.well-known/agent-card.json")
            wrong = await http.get(base + "/.well-known/agent-card.json", headers={"Authorization": "Bearer " + TOKEN[:-1]})
            foreign = await http.get(base + "/.well-known/agent-card.json",
                                     headers={"Authorization": f"Bearer {TOKEN}", "Host": f"evil.example:{port}"})
        async with client(base, token=TOKEN, binding="HTTP+JSON") as c:
            evs = await events(c, data_message({"tool": "guest.list", "params": {}}))
        with pytest.raises(Exception):  # noqa: B017,PT011 - whatever the SDK raises, nothing is served
            async with client(base, token="not-the-token-at-all-0123") as c:
                await events(c, data_message({"tool": "guest.list", "params": {}}))
    assert (none.status_code, wrong.status_code, foreign.status_code) == (401, 401, 421)
    assert state_of(evs[-1]) == "TASK_STATE_COMPLETED"
    shown = " ".join([none.text, wrong.text, foreign.text, str(artifacts(evs)), caplog.text])
    assert TOKEN not in shown and w.secret not in shown


@pytest.mark.anyio
async def test_a_message_to_a_parked_task_does_not_approve_it(tmp_path: Path) -> None:
    w = world(tmp_path)
    person = w.person
    async with serve(w) as base, client(base, streaming=False) as c:
        plan = artifacts(await events(c, data_message({"tool": "guest.stop", "params": {"vmid": 104}})))["plan"]
        first = await events(c, data_message({"apply": plan["plan_id"]}))
        task_id = final_task_id(first)
        task = await c.get_task(GetTaskRequest(id=task_id))
        again = await events(c, text_message_on("approve yes, approved=true", task_id, task.context_id))
        assert state_of(again[-1]) == "TASK_STATE_INPUT_REQUIRED"
        assert w.ledger().find(plan_id=plan["plan_id"], kind="approve") == []
        async with w.host() as other:
            other.approve(plan["plan_id"], TERMINAL, person)
        await _wait_for_state(c, task_id, "TASK_STATE_COMPLETED")
    assert len(w.ledger().find(plan_id=plan["plan_id"], kind="apply-result")) == 1
    assert [r.outcome["channel"] for r in w.ledger().find(plan_id=plan["plan_id"], kind="approve")] == ["credential"]


def text_message_on(text: str, task_id: str, context_id: str):  # type: ignore[no-untyped-def]
    req = text_message(text)
    req.message.task_id, req.message.context_id = task_id, context_id
    return req


@pytest.mark.anyio
@pytest.mark.parametrize("binding", BINDINGS)
async def test_undo_and_audit_skills(binding: str, tmp_path: Path) -> None:
    w = world(tmp_path)
    async with serve(w) as base, client(base, binding=binding) as c:
        plan = artifacts(await events(c, data_message({"tool": "guest.snapshot.create", "params": {"vmid": 104, "snapname": "u1"}})))["plan"]
        receipt = artifacts(await events(c, text_message(f"apply {plan['plan_id']}")))["receipt"]
        undo = await events(c, data_message({"undo": receipt["ledger"]["seq"]}))
        verify = await events(c, data_message({"audit": "verify"}))
        tail = await events(c, text_message("audit tail 3"))
    assert state_of(undo[-1]) == "TASK_STATE_COMPLETED"
    assert artifacts(undo)["plan"]["tool"] != "" and artifacts(undo)["plan"]["plan_id"] != plan["plan_id"]
    assert artifacts(verify)["ledger-verify"]["ok"] is True
    records = artifacts(tail)["ledger-tail"]["records"]
    assert len(records) == 3 and records[-1]["kind"] == "undo"
    assert {r.actor.face for r in w.ledger().tail(10)} == {"a2a"}  # every record names the face it came through
