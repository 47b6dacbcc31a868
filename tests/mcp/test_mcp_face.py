"""The MCP face in memory: errors the model reads, resources, the ledger tools, undo, tool selection, and the
promise that no sequence of MCP calls applies a plan above the auto-approve level without a person's record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from _mcp_pack import make_world
from _mcp_support import MODES, Person, anyio_backend, apply_twice_at_once, text  # noqa: F401
from proximo.mcp import McpSettings, build_server
from proximo.errors import BadInput

pytestmark = pytest.mark.anyio


def server_for(tmp_path: Path, settings: McpSettings | None = None, **world: Any) -> tuple[Any, Any]:
    w = make_world(tmp_path, **world)
    return w, build_server(w.host, settings or McpSettings(toolset="full"), tools=w.packs.tools)


def one_line(result: Any) -> str:
    assert result.is_error
    line = text(result)
    assert "\n" not in line and "[ledger #" in line  # the reason, then the ledger head that stands after it
    assert set(result.meta["proximo/ledger"]) == {"seq", "head", "chain"}
    return line


@pytest.mark.parametrize("mode", MODES)
async def test_403_names_the_missing_privilege(mode: str, tmp_path: Path) -> None:
    world, server = server_for(tmp_path)
    # what pve-api-daemon answers when the token lacks the privilege (pve-access-control src/PVE/RPCEnvironment.pm
    # check(); its src/test/api-get-permissions-test.pl refusals read "403 Permission check failed (/access, Sys.Audit)")
    world.sim.inject_fault("PUT", r"^/storage/nfs-backup$", 403, "Permission check failed (/storage/nfs-backup, Datastore.Allocate)")
    async with Client(server, mode=mode) as client:
        made = (await client.call_tool("pve_storage_update", {"storage": "nfs-backup", "prune-backups": "keep-last=3"})).structured_content
        result = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
    line = text(result).splitlines()[0]
    assert result.is_error and "403 Permission check failed (/storage/nfs-backup, Datastore.Allocate)" in line
    assert line.count("PUT /storage/nfs-backup") == 1  # the failed call is named once
    assert world.model.storages["nfs-backup"]["prune-backups"] == "keep-daily=7,keep-weekly=4"


@pytest.mark.parametrize("mode", MODES)
async def test_not_modelled_is_refused_with_one_line(mode: str, tmp_path: Path) -> None:
    world, server = server_for(tmp_path)
    async with Client(server, mode=mode) as client:
        result = await client.call_tool("pve_api_call", {"method": "POST", "path": "/nodes/pve1/subscription", "params": {}})
    assert "not modelled" in one_line(result)


@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    [
        ("pve_storage_delete", {"storage": "../etc"}, "storage.delete"),
        ("pve_storage_delete", {"storage": "local-zfs", "force": True}, "unknown parameter"),
        ("pve_storage_delete", {"storage": 5}, "expected a string"),
        ("pve_storage_delete", {"storage": "local\u200bzfs"}, "control character"),
        ("pve_storage_delete", {"storage": "nope"}, "does not exist"),
        ("pve_storage_list", {"type": "ext4"}, "storage.list"),
        ("proximo_apply", {"plan_id": "p-0123456789ab", "approved": True}, "unknown parameter 'approved'"),
        ("proximo_apply", {"plan_id": "../p-1"}, "not a plan id"),
        ("proximo_apply", {"plan_id": "p-0123456789ab"}, "no plan p-0123456789ab"),
        ("proximo_apply", {}, "missing required parameter 'plan_id'"),
        ("proximo_undo", {"seq": "1"}, "seq: expected an integer, got a string"),
        ("proximo_undo", {"seq": True}, "seq: expected an integer, got true or false"),
        ("proximo_undo", {"seq": 99}, "does not exist"),
        ("proximo_ledger_tail", {"n": 0}, "between 1 and"),
        ("proximo_ledger_tail", {"n": 10**9}, "between 1 and"),
        ("proximo_undo", {"seq": -1}, "not a ledger sequence number"),
        ("pve_storage_delete", {"storage": "%2e%2e"}, "storage.delete"),
        ("pve_storage_delete", {"storage": "local\u0000zfs"}, "control character"),
        ("pve_storage_delete", {"storage": "\uff4c\uff4f\uff43\uff41\uff4c"}, "storage.delete"),  # fullwidth "local"
        ("pve_storage_delete", {"storage": "x" * 5000}, "the limit is 4096"),
    ],
)
async def test_bad_input_is_one_line_and_changes_nothing(tool: str, args: dict[str, Any], expected: str, tmp_path: Path) -> None:
    world, server = server_for(tmp_path)
    before = world.model.fingerprint()
    async with Client(server) as client:
        result = await client.call_tool(tool, args)
    assert expected in one_line(result)
    assert world.model.fingerprint() == before


async def test_resources_plan_and_ledger_record(tmp_path: Path) -> None:
    world, server = server_for(tmp_path)
    async with Client(server, mode="legacy") as client:
        made = (await client.call_tool("pve_storage_delete", {"storage": "local-zfs"})).structured_content
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        plan = json.loads((await client.read_resource(f"proximo://plan/{made['plan_id']}")).contents[0].text)
        record = json.loads((await client.read_resource(f"proximo://ledger/{made['ledger']['seq']}")).contents[0].text)
        with pytest.raises(MCPError):
            await client.read_resource("proximo://ledger/\u0661")  # an Arabic-Indic digit one: not a sequence number
        for hostile in ("p-0123456789ab", "..", "p-%2e%2e", "p-0123456789AB"):
            with pytest.raises(MCPError):
                await client.read_resource(f"proximo://plan/{hostile}")
    assert templates == {"proximo://plan/{plan_id}", "proximo://ledger/{seq}"}
    assert plan["plan"]["plan_id"] == made["plan_id"] and plan["plan"]["hash"] == made["hash"]
    assert record["record"]["kind"] == "plan" and record["record"]["plan_id"] == made["plan_id"]
    assert record["ledger"]["seq"] == made["ledger"]["seq"]


async def test_ledger_tools_and_undo_through_the_face(tmp_path: Path) -> None:
    world, server = server_for(tmp_path)
    person = Person("accept", {"approve": True})
    async with Client(server, elicitation_callback=person) as client:
        made = (await client.call_tool("pve_storage_delete", {"storage": "local-zfs"})).structured_content
        applied = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
        assert "local-zfs" not in world.model.storages
        seq = applied.structured_content["ledger"]["seq"]
        assert f"proximo_undo(seq={seq})" in text(applied)
        undo = await client.call_tool("proximo_undo", {"seq": seq})
        assert not undo.is_error and undo.structured_content["undo_of"] == seq
        assert "local-zfs" not in world.model.storages  # planning the undo changed nothing
        redone = await client.call_tool("proximo_apply", {"plan_id": undo.structured_content["plan_id"]})
        assert not redone.is_error, text(redone)
        verify = await client.call_tool("proximo_ledger_verify", {})
        tail = await client.call_tool("proximo_ledger_tail", {"n": 3})
    assert "local-zfs" in world.model.storages
    assert verify.structured_content["ok"] is True and verify.structured_content["records"] == verify.structured_content["ledger"]["seq"]
    records = tail.structured_content["records"]
    assert [r["kind"] for r in records] == ["approve", "apply-start", "apply-result"]
    assert records[-1]["seq"] == tail.structured_content["ledger"]["seq"]


async def test_tampered_ledger_is_reported_broken(tmp_path: Path) -> None:
    import sqlite3

    world, server = server_for(tmp_path)
    async with Client(server) as client:
        await client.call_tool("pve_storage_delete", {"storage": "local-zfs"})
        await client.call_tool("pve_storage_delete", {"storage": "ceph-rbd"})
        with sqlite3.connect(world.settings.ledger_path) as db:
            db.execute("DROP TRIGGER records_no_update")  # the triggers stop accidents; an attacker drops them
            db.execute("UPDATE records SET tool = 'storage.list' WHERE seq = 1")
        verify = await client.call_tool("proximo_ledger_verify", {})
    assert verify.structured_content["ok"] is False and verify.structured_content["first_broken"] == 1
    assert "BROKEN at record #1" in text(verify)


async def test_tool_selection_globs_and_read_only(tmp_path: Path) -> None:
    world, server = server_for(tmp_path, McpSettings(toolset="full", tools=("storage.*", "guest.list")))
    async with Client(server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == {"pve_storage_content", "pve_storage_create", "pve_storage_delete", "pve_storage_list", "pve_storage_status",
                     "pve_storage_update", "pve_guest_list", "proximo_apply", "proximo_undo", "proximo_ledger_verify",
                     "proximo_ledger_tail"}
    _, server = server_for(tmp_path / "ro", McpSettings(toolset="full", read_only=True))
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        refused = await client.call_tool("proximo_apply", {"plan_id": "p-0123456789ab"})
    assert {t.name for t in tools} == {t.mcp_name for t in world.packs.tools if not t.mutating} | {"proximo_ledger_verify", "proximo_ledger_tail"}
    assert all(t.annotations.read_only_hint for t in tools)
    assert refused.is_error and "Unknown tool" in text(refused)


def test_settings_from_env() -> None:
    s = McpSettings.from_env({"PROXIMO_TOOLS": " storage.* , guest.list,", "PROXIMO_READ_ONLY": "1",
                               "PROXIMO_ALLOWED_HOSTS": "mcp.example.org,10.0.0.5:8765"})
    assert s.tools == ("storage.*", "guest.list") and s.read_only is True
    assert s.allowed_hosts == ("mcp.example.org", "10.0.0.5:8765") and s.http_token is None
    with pytest.raises(BadInput, match="PROXIMO_READ_ONLY"):
        McpSettings.from_env({"PROXIMO_READ_ONLY": "maybe"})
    with pytest.raises(BadInput, match="too short"):
        McpSettings.from_env({"PROXIMO_HTTP_TOKEN": "short"})
    assert "hunter2hunter2hunter2" not in repr(McpSettings.from_env({"PROXIMO_HTTP_TOKEN": "hunter2hunter2hunter2"}))


async def test_an_expired_plan_asks_nobody(tmp_path: Path) -> None:
    world, server = server_for(tmp_path)
    person = Person("accept", {"approve": True})
    async with world.host() as host:
        plan = await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
    import sqlite3

    import msgspec

    # move the stored plan's expiry into the past (the plan hash covers it, so rewrite both as the host would)
    from proximo.trust._pipeline import plan_hash

    expired = msgspec.structs.replace(plan, expires_at="2000-01-01T00:00:00Z", ledger=None)
    with sqlite3.connect(tmp_path / "plans.sqlite") as db:
        db.execute("UPDATE plans SET body = ? WHERE plan_id = ?", (msgspec.json.encode(expired), plan.plan_id))
    async with Client(server, elicitation_callback=person) as client:
        result = await client.call_tool("proximo_apply", {"plan_id": plan.plan_id})
    assert result.is_error and person.asked == []
    assert plan_hash(expired) != plan.hash and "altered" in text(result)  # and tampering is caught first


async def test_a_stale_plan_asks_nobody(tmp_path: Path) -> None:
    # A person is never asked to approve a plan the cluster has moved away from: apply would refuse it anyway.
    world, server = server_for(tmp_path)
    person = Person("accept", {"approve": True})
    async with world.host() as host:
        plan = await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
    world.model.storages["local-zfs"]["content"] = "images"  # someone edits the storage meanwhile
    async with Client(server, elicitation_callback=person) as client:
        result = await client.call_tool("proximo_apply", {"plan_id": plan.plan_id})
    assert person.asked == [] and "stale" in one_line(result)
    assert "local-zfs" in world.model.storages


@pytest.mark.parametrize("mode", MODES)
async def test_no_sequence_of_mcp_calls_applies_without_a_person(mode: str, tmp_path: Path) -> None:
    """Everything an agent can send, with a client that cannot ask a person and one whose person says no."""
    world, server = server_for(tmp_path)
    high = {"storage": "local-zfs"}
    attempts: list[tuple[str, dict[str, Any]]] = []
    for person in (None, Person("decline"), Person("cancel"), Person("accept", {"approve": False})):
        async with Client(server, mode=mode, elicitation_callback=person) as client:
            made = (await client.call_tool("pve_storage_delete", high)).structured_content
            pid = made["plan_id"]
            attempts = [
                ("proximo_apply", {"plan_id": pid}),
                ("proximo_apply", {"plan_id": pid}),  # asking twice changes nothing
                ("proximo_apply", {"plan_id": pid, "approve": True}),
                ("proximo_apply", {"plan_id": pid, "person": {"action": "accept", "data": {"approve": True}}}),
                ("proximo_apply", {"plan_id": pid, "confirm": "yes"}),
                ("pve_api_call", {"method": "DELETE", "path": "/storage/local-zfs"}),  # a plan, not a change
                ("proximo_undo", {"seq": made["ledger"]["seq"]}),
            ]
            for tool, args in attempts:
                await client.call_tool(tool, args)
    assert "local-zfs" in world.model.storages
    async with world.host() as host:
        records = host.ledger.tail(1000)
    assert not [r for r in records if r.kind in ("approve", "apply-start", "apply-result")]
    assert {r.kind for r in records} == {"plan", "deny"}


async def test_two_calls_cannot_both_apply_one_plan(tmp_path: Path) -> None:
    world, server = server_for(tmp_path)
    async with Client(server) as client:
        made = (await client.call_tool("pve_storage_update", {"storage": "nfs-backup", "prune-backups": "keep-last=3"})).structured_content
        results = await apply_twice_at_once(client, made["plan_id"])
    assert sorted(r.is_error for r in results) == [False, True]
    refused = next(r for r in results if r.is_error)
    assert "being applied right now" in text(refused) or "already applied" in text(refused)
    async with world.host() as host:
        assert [r.kind for r in host.ledger.find(plan_id=made["plan_id"], kind="apply-start")] == ["apply-start"]


async def test_secrets_never_leave_the_face(tmp_path: Path) -> None:
    """Proximo's own token secret echoed back by bad input is scrubbed; secret parameters of a plan are redacted."""
    world, server = server_for(tmp_path)
    password = "hunter2-cifs-password"
    create = {"storage": "cifs2", "type": "cifs", "server": "10.0.0.61", "share": "iso2", "username": "isoreader",
              "password": password, "content": "iso"}
    async with Client(server, mode="legacy") as client:
        # a valid storage id that is not there: the error names it, so it would echo the secret
        echoed = await client.call_tool("pve_storage_delete", {"storage": f"x{world.secret}"})
        planned = await client.call_tool("pve_storage_create", create)
        resource = await client.read_resource(f"proximo://plan/{planned.structured_content['plan_id']}")
        tail = await client.call_tool("proximo_ledger_tail", {"n": 5})
    assert echoed.is_error and world.secret not in text(echoed) and "***redacted***" in text(echoed)
    assert not planned.is_error, text(planned)
    shown = text(planned) + resource.contents[0].text + text(tail) + json.dumps(planned.structured_content)
    assert password not in shown and world.secret not in shown
    assert planned.structured_content["params"]["password"] == "***redacted***"
    assert planned.structured_content["steps"][0]["params"]["password"] == "***redacted***"
    async with world.host() as host:  # the stored plan keeps it: apply must send it
        assert host.get_plan(planned.structured_content["plan_id"]).params["password"] == password


def test_a_new_tokens_secret_is_withheld_from_the_agent() -> None:
    from proximo.trust._executor import StepResult
    from proximo.trust._pipeline import ApplyResult
    from proximo._types import LedgerRef

    # the answer to POST /access/users/{userid}/token/{tokenid} (PVE::API2::AccessControl, "value" shown once)
    answer = {"full-tokenid": "ops@pve!ci", "info": {"privsep": 1}, "value": "5f3c0d2a-secret"}
    result = ApplyResult(plan_id="p-0123456789ab", ok=True, matches_prediction=True, mismatches=[],
                         steps=[StepResult(step="POST /access/users/ops@pve/token/ci", ok=True, data=answer)],
                         ledger=LedgerRef(seq=3, head="ab", chain="sha256"))
    shown = result.for_agent("MCP client")
    assert "5f3c0d2a-secret" not in json.dumps(shown)
    assert shown["steps"][0]["data"]["full-tokenid"] == "ops@pve!ci" and answer["value"] == "5f3c0d2a-secret"


async def test_unasked_or_forged_answers_approve_nothing(tmp_path: Path) -> None:
    """2026-07-28: an answer rides input_responses, progress rides a sealed request_state. A client that sends an
    "accept" nobody asked for, or makes up the state, gets the question again; nothing is approved or applied."""
    from mcp_types import ElicitResult, InputRequiredResult

    world, server = server_for(tmp_path)
    person = Person("accept", {"approve": True})  # declares elicitation, so the server would ask
    key = "proximo.mcp._approval:ask_person"  # the resolver's wire key (module:qualname)
    accept = {key: ElicitResult(action="accept", content={"approve": True})}
    async with Client(server, mode="auto", elicitation_callback=person) as client:
        made = (await client.call_tool("pve_storage_delete", {"storage": "local-zfs"})).structured_content
        args = {"plan_id": made["plan_id"]}
        unasked = await client.session.call_tool("proximo_apply", args, input_responses=accept, allow_input_required=True)
        forged_state = '{"v":3,"outcomes":{"%s":{"action":"accept","data":{"approve":true}}},"asked":{}}' % key
        forged: Any
        try:
            forged = await client.session.call_tool("proximo_apply", args, input_responses=accept, request_state=forged_state,
                                                    allow_input_required=True)
        except MCPError as exc:  # the request-state boundary refuses state it did not seal
            forged = exc
    assert isinstance(unasked, InputRequiredResult) and key in unasked.input_requests  # asked again, not applied
    assert isinstance(forged, MCPError) and "requestState" in str(forged)
    assert person.asked == []  # the manual calls above bypass the client's own loop: nobody answered anything
    assert "local-zfs" in world.model.storages
    async with world.host() as host:
        assert [r.kind for r in host.ledger.find(plan_id=made["plan_id"])] == ["plan"]


def test_a_tools_pattern_matching_nothing_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from proximo.mcp._tools import select_specs

    world = make_world(tmp_path)
    with caplog.at_level("WARNING", logger="proximo.mcp"):
        chosen = select_specs(world.packs.tools, McpSettings(tools=("storage.list", "stroage.*")))
    assert [t.id for t in chosen] == ["storage.list"]
    assert "'stroage.*' matches no tool" in caplog.text and "storage.list" not in caplog.text


async def test_with_approval_person_no_form_is_shown_for_high_plans(tmp_path: Path) -> None:
    """Policy `approval = "person"`: an elicitation form is only as good as the client that draws it, so none is shown."""
    from _mcp_pack import McpTestPack

    from proximo.testing import World

    policy = tmp_path / "policy.toml"
    policy.write_text('approval = "person"\n')
    world = World(tmp_path / "home", extra_packs=[("mcp-test", McpTestPack())], env={"PROXIMO_POLICY": str(policy)})
    server = build_server(world.host, McpSettings(toolset="full"), tools=world.packs.tools)
    person = Person("accept", {"approve": True})
    async with Client(server, elicitation_callback=person) as client:
        made = (await client.call_tool("pve_storage_delete", {"storage": "local-zfs"})).structured_content
        result = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
    assert person.asked == [] and "the policy needs a person's own credential for it" in one_line(result)
    assert "local-zfs" in world.model.storages


async def test_ledger_verify_checks_a_head_the_client_kept(tmp_path: Path) -> None:
    world, server = server_for(tmp_path)
    async with Client(server) as client:
        made = (await client.call_tool("pve_storage_delete", {"storage": "local-zfs"})).structured_content
        kept = {"seq": made["ledger"]["seq"], "head": made["ledger"]["head"]}
        good = await client.call_tool("proximo_ledger_verify", {"expected_head": kept})
        bad = await client.call_tool("proximo_ledger_verify", {"expected_head": {**kept, "head": "a" * 64}})
        junk = await client.call_tool("proximo_ledger_verify", {"expected_head": {"seq": -1, "head": "zz"}})
        extra = await client.call_tool("proximo_ledger_verify", {"expected_head": {**kept, "approved": True}})
    assert not good.is_error and good.structured_content["ok"]
    assert not bad.is_error and not bad.structured_content["ok"]
    assert "hash differs from the head a client saw" in bad.structured_content["reason"]
    assert junk.is_error and extra.is_error and "\n" not in text(junk)
    with world.ledger() as book:  # a client's made-up head is not a broken chain: nothing was marked
        assert book.verify().ok
