"""The MCP face through the SDK's own client, on every transport (memory, stdio, HTTP) and both protocol modes.

auto negotiates 2026-07-28 (no handshake; elicitation rides ``input_required`` rounds), legacy negotiates
2025-11-25 (initialize handshake; elicitation is a mid-call ``elicitation/create``). What a client sees must not
depend on how it connects.

Every story runs in memory in both modes. Over HTTP and stdio (both modes) run the stories that exercise what those
transports add: the registry's schemas framed on the wire (tools/list), a plan and its resource (resources/read),
a client that declares no elicitation capability (the terminal path, with the plan store and ledger shared across
processes on stdio), elicitation round trips (accept, decline, a typed target over two connections), and progress
notifications with a task's log. Each of those also is an end-to-end path (plan, approve, apply) per transport and mode.

Not run over HTTP and stdio, and what covers each there:
- ``test_a_read_answers_with_the_ledger_head``: a read's structured answer crosses each transport in
  ``storages()`` (``test_approval_accepted_in_the_client_form``, ``test_a_plan_changes_nothing_and_is_in_the_ledger``);
  the ledger head it carries is built by the server whatever the transport (``structured``), and its ``seq``/``head``
  reach the client over each transport in ``test_a_plan_changes_nothing_and_is_in_the_ledger`` and
  ``test_approval_accepted_in_the_client_form``.
- ``test_unticked_box_is_a_deny_record``: the accept-with-content round trip crosses each transport in
  ``test_approval_accepted_in_the_client_form`` (``{"approve": true}``) and ``test_critical_plan_needs_the_target_typed``;
  the deny record after a form crosses it in ``test_approval_declined_is_a_deny_record[decline]``; turning an unticked
  box into a deny is the server's own logic, the same for every transport.
- ``test_approval_declined_is_a_deny_record[cancel]``: the refused form crosses each transport in
  ``[decline]`` (the same message, another ``action`` value); cancel itself runs in memory in both modes.
- ``test_a_stale_plan_is_refused_with_one_line``: a one-line refusal (an error result) crosses each transport in
  ``test_approval_declined_is_a_deny_record[decline]`` and ``test_client_without_elicitation_waits_for_the_terminal``;
  finding the plan stale is the pipeline's own logic, the same for every transport.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from _mcp_pack import FETCH_TOOL
from _mcp_support import MODES, TRANSPORTS, Face, Person, anyio_backend, open_face, text  # noqa: F401

pytestmark = pytest.mark.anyio


def matrix(kinds: list[str]) -> pytest.MarkDecorator:
    """Both protocol modes on ``kinds``; test ids ``[mode-kind]``."""
    return pytest.mark.parametrize(("mode", "kind"), [pytest.param(m, k, id=f"{m}-{k}") for m in MODES for k in kinds])


WIRE = matrix(TRANSPORTS)  # what a transport adds: every transport, both modes
MEMORY = matrix(["memory"])  # the face's own logic: in memory, both modes (see the docstring for what covers it elsewhere)

FACE_TOOLS = {"proximo_apply", "proximo_undo", "proximo_ledger_verify", "proximo_ledger_tail"}


async def storages(client: Client) -> set[str]:
    result = await client.call_tool("pve_storage_list", {})
    assert not result.is_error, text(result)
    return {row["storage"] for row in result.structured_content["data"]}


async def plan(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, text(result)
    return result.structured_content


def kinds(face: Face, plan_id: str) -> list[str]:
    return [r.kind for r in face.ledger() if r.plan_id == plan_id]


@WIRE
async def test_tools_list_is_the_registry_with_annotations_and_schemas(kind: str, mode: str, tmp_path: Path) -> None:
    async with open_face(kind, mode, tmp_path) as face, face.client() as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
    registry = list(face.world.packs.tools)
    assert set(listed) == {t.mcp_name for t in registry} | FACE_TOOLS
    assert f"pve_{FETCH_TOOL.replace('.', '_')}" in listed  # a pack's tool appears with nothing written for it
    for spec in registry:
        tool = listed[spec.mcp_name]
        hints = tool.annotations
        assert hints is not None and hints.read_only_hint is True and hints.destructive_hint is False  # plans change nothing
        assert hints.open_world_hint is True
        assert tool.input_schema["type"] == "object" and tool.input_schema.get("additionalProperties") is False
        assert tool.meta == {"proximo/tool": spec.id, "proximo/pack": spec.owner}
        assert tool.output_schema is None  # one plan schema, as the resource proximo://schema/plan, not 50 copies
        if spec.mutating:
            assert tool.title.startswith("Plan: ") and hints.idempotent_hint is False
        else:
            assert hints.idempotent_hint is True
    delete = listed["pve_storage_delete"].input_schema
    assert delete["required"] == ["storage"] and set(delete["properties"]) == {"storage"}
    apply = listed["proximo_apply"]
    assert apply.annotations.destructive_hint is True and apply.annotations.read_only_hint is False
    assert apply.input_schema["required"] == ["plan_id"] and set(apply.input_schema["properties"]) == {"plan_id"}
    undo = listed["proximo_undo"].annotations  # undo only plans: annotated as every plan tool is
    assert (undo.read_only_hint, undo.destructive_hint, undo.idempotent_hint) == (True, False, False)
    assert listed["proximo_ledger_tail"].annotations.read_only_hint is True


@MEMORY
async def test_a_read_answers_with_the_ledger_head(kind: str, mode: str, tmp_path: Path) -> None:
    async with open_face(kind, mode, tmp_path) as face, face.client() as client:
        result = await client.call_tool("pve_storage_status", {"storage": "local-zfs", "node": "pve1"})
    assert not result.is_error, text(result)
    body = result.structured_content
    assert body["tool"] == "storage.status" and body["data"][0]["node"] == "pve1" and body["data"][0]["storage"] == "local-zfs"
    assert set(body["ledger"]) == {"seq", "head", "chain"} and body["ledger"]["chain"] == "hmac-sha256"  # keyed by default


@WIRE
async def test_a_plan_changes_nothing_and_is_in_the_ledger(kind: str, mode: str, tmp_path: Path) -> None:
    async with open_face(kind, mode, tmp_path) as face, face.client() as client:
        made = await plan(client, "pve_storage_delete", {"storage": "local-zfs"})
        assert "local-zfs" in await storages(client)  # nothing changed
        resource = await client.read_resource(f"proximo://plan/{made['plan_id']}")
    assert made["risk"] == "HIGH" and made["steps"] == [{"kind": "api", "method": "DELETE", "path": "/storage/local-zfs", "params": {}}]
    assert {i["effect"] for i in made["impacts"]} >= {"wont-boot"} and made["reversible"] is True
    record = face.ledger()[-1]
    assert (record.kind, record.plan_id, record.plan_hash) == ("plan", made["plan_id"], made["hash"])
    assert made["ledger"]["seq"] == record.seq and made["ledger"]["head"] == record.hash
    assert record.actor.face == "mcp"
    stored = json.loads(resource.contents[0].text)
    assert stored["plan"]["hash"] == made["hash"] and stored["ledger"]["seq"] == record.seq


@WIRE
async def test_client_without_elicitation_waits_for_the_terminal(kind: str, mode: str, tmp_path: Path) -> None:
    """The CLI-approval path: the answer says what to run; apply goes ahead only once the approval is recorded."""
    async with open_face(kind, mode, tmp_path) as face, face.client() as client:
        made = await plan(client, "pve_storage_delete", {"storage": "cifs-iso"})
        first = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
        assert first.is_error and f"proximo approve {made['plan_id']}" in text(first)
        assert "cifs-iso" in await storages(client) and kinds(face, made["plan_id"]) == ["plan"]
        await face.approve_at_terminal(made["plan_id"])
        second = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
        assert not second.is_error, text(second)
        assert "cifs-iso" not in await storages(client)
    assert kinds(face, made["plan_id"]) == ["plan", "approve", "apply-start", "apply-result"]
    approval = [r for r in face.ledger() if r.kind == "approve"][0]
    assert approval.actor.face == "terminal" and approval.outcome["by"] == "person"
    assert second.structured_content["ok"] is True and second.structured_content["matches_prediction"] is True


@WIRE
async def test_approval_accepted_in_the_client_form(kind: str, mode: str, tmp_path: Path) -> None:
    person = Person("accept", {"approve": True})
    async with open_face(kind, mode, tmp_path) as face, face.client(person) as client:
        made = await plan(client, "pve_storage_delete", {"storage": "local-zfs"})
        result = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
        assert not result.is_error, text(result)
        assert "local-zfs" not in await storages(client)
    assert len(person.asked) == 1
    question = person.asked[0]
    assert made["plan_id"] in question.message and "DELETE /storage/local-zfs" in question.message and "HIGH" in question.message
    assert set(question.requested_schema["properties"]) == {"approve"}
    assert kinds(face, made["plan_id"]) == ["plan", "approve", "apply-start", "apply-result"]
    approval = [r for r in face.ledger() if r.kind == "approve"][0]
    assert approval.actor.face == "mcp-elicitation"
    assert result.structured_content["ledger"]["seq"] == face.ledger()[-1].seq


@pytest.mark.parametrize(("action", "mode", "kind"), [pytest.param(a, m, k, id=f"{a}-{m}-{k}") for a in ("decline", "cancel")
                                                    for m in MODES for k in (TRANSPORTS if a == "decline" else ["memory"])])
async def test_approval_declined_is_a_deny_record(kind: str, mode: str, action: str, tmp_path: Path) -> None:
    person = Person(action)  # type: ignore[arg-type]
    async with open_face(kind, mode, tmp_path) as face:
        async with face.client(person) as client:
            made = await plan(client, "pve_storage_delete", {"storage": "ceph-rbd"})
            result = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
            assert result.is_error and "nothing was applied" in text(result)
            assert "ceph-rbd" in await storages(client)
        async with face.client(Person("accept", {"approve": True})) as client:  # not asked again (issue 20)
            again = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
            assert again.is_error and "was declined by a person" in text(again) and "make a new plan" in text(again)
            assert "ceph-rbd" in await storages(client)
    assert kinds(face, made["plan_id"])[:2] == ["plan", "deny"] and "approve" not in kinds(face, made["plan_id"])
    assert len(person.asked) == 1


@MEMORY
async def test_unticked_box_is_a_deny_record(kind: str, mode: str, tmp_path: Path) -> None:
    person = Person("accept", {"approve": False})
    async with open_face(kind, mode, tmp_path) as face, face.client(person) as client:
        made = await plan(client, "pve_storage_delete", {"storage": "ceph-rbd"})
        result = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
    assert result.is_error and kinds(face, made["plan_id"]) == ["plan", "deny"]


@WIRE
async def test_critical_plan_needs_the_target_typed(kind: str, mode: str, tmp_path: Path) -> None:
    args = {"node": "pve1", "storage": "local", "template": "wipe-debian-12"}
    wrong, right = Person("accept", {"target": "wipe-debian"}), Person("accept", {"target": "wipe-debian-12"})
    async with open_face(kind, mode, tmp_path) as face:
        async with face.client(wrong) as client:
            made = await plan(client, "pve_mcptest_fetch", args)
            assert made["risk"] == "CRITICAL"
            refused = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
        async with face.client(right) as client:
            applied = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
    assert refused.is_error and "typed exactly" in text(refused)
    assert not applied.is_error, text(applied)
    assert set(wrong.asked[0].requested_schema["properties"]) == {"target"} and "wipe-debian-12" in wrong.asked[0].message
    assert kinds(face, made["plan_id"]) == ["plan", "deny", "approve", "apply-start", "apply-result"]


@MEMORY
async def test_a_stale_plan_is_refused_with_one_line(kind: str, mode: str, tmp_path: Path) -> None:
    async with open_face(kind, mode, tmp_path) as face, face.client() as client:
        older = await plan(client, "pve_storage_update", {"storage": "nfs-backup", "prune-backups": "keep-last=3"})
        newer = await plan(client, "pve_storage_update", {"storage": "local", "prune-backups": "keep-last=2"})
        assert older["risk"] == newer["risk"] == "MEDIUM"  # within auto-approval: no person needed
        applied = await client.call_tool("proximo_apply", {"plan_id": newer["plan_id"]})
        assert not applied.is_error, text(applied)
        stale = await client.call_tool("proximo_apply", {"plan_id": older["plan_id"]})
    assert stale.is_error and "stale" in text(stale) and "\n" not in text(stale)
    recorded = kinds(face, older["plan_id"])
    assert recorded[0] == "plan" and recorded[-1] == "deny" and "apply-start" not in recorded


@WIRE
async def test_progress_while_waiting_on_the_task(kind: str, mode: str, tmp_path: Path) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    async with open_face(kind, mode, tmp_path) as face, face.client() as client:
        made = await plan(client, "pve_mcptest_fetch", {"node": "pve2", "storage": "local", "template": "debian-12"})
        result = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]}, progress_callback=progress)
    assert not result.is_error, text(result)
    step = result.structured_content["steps"][0]
    assert step["upid"].startswith("UPID:pve2:") and step["exitstatus"] == "OK"
    messages = [m for _, _, m in seen]
    assert any("running" in (m or "") for m in messages) and any("stopped" in (m or "") for m in messages)
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)  # progress only goes up


@WIRE
async def test_a_failed_task_answers_with_its_log(kind: str, mode: str, tmp_path: Path) -> None:
    seen: list[str] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    async with open_face(kind, mode, tmp_path) as face, face.client() as client:
        made = await plan(client, "pve_mcptest_fetch", {"node": "pve1", "storage": "local", "template": "broken-image"})
        result = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]}, progress_callback=progress)
    assert result.is_error
    line = text(result).splitlines()[0]
    assert "exit code 8" in line and "404 Not Found" in line  # the task's own log, in the one line the model reads
    assert any("task log" in m and "wget" in m for m in seen)
    assert result.structured_content["ok"] is False
    assert face.ledger()[-1].kind == "apply-result" and face.ledger()[-1].outcome["ok"] is False
