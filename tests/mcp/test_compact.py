"""The compact toolset (the default): a few MCP tools that find, describe, read and plan every tool the packs register,
through the same pipeline as the named tools, and only the tools the settings select.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from _mcp_pack import FETCH_TOOL, make_world
from _mcp_support import MODES, TRANSPORTS, Mode, Person, Transport, anyio_backend, open_face, text  # noqa: F401
from proximo.errors import BadInput
from proximo.mcp import McpSettings, build_server
from proximo.mcp._compact import example
from proximo.testing import World

pytestmark = pytest.mark.anyio

COMPACT = {"proximo_search", "proximo_describe", "proximo_read", "proximo_plan", "proximo_apply", "proximo_undo",
           "proximo_ledger_verify", "proximo_ledger_tail"}
LEDGER = {"proximo_ledger_verify", "proximo_ledger_tail"}


def server_for(home: Path, settings: McpSettings | None = None) -> tuple[World, Any]:
    world = make_world(home)
    return world, build_server(world.host, settings or McpSettings(), tools=world.packs.tools)


def kinds(world: World) -> list[str]:
    with world.ledger() as book:
        return [r.kind for r in book.tail(1000)]


def refused(result: Any) -> str:
    assert result.is_error
    line = text(result)
    assert "\n" not in line and "[ledger #" in line
    return line


def test_compact_is_the_default() -> None:
    assert McpSettings().toolset == "compact" and McpSettings.from_env({}).toolset == "compact"
    assert McpSettings.from_env({"PROXIMO_TOOLSET": " Full "}).toolset == "full"
    with pytest.raises(BadInput, match="PROXIMO_TOOLSET must be compact or full"):
        McpSettings.from_env({"PROXIMO_TOOLSET": "all"})


@pytest.mark.parametrize("mode", MODES)
async def test_the_compact_list_and_its_annotations(mode: str, tmp_path: Path) -> None:
    _, server = server_for(tmp_path)
    async with Client(server, mode=mode) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
    assert set(listed) == COMPACT
    plan, undo = listed["proximo_plan"].annotations, listed["proximo_undo"].annotations
    read = listed["proximo_read"].annotations
    # planning changes nothing: proximo_plan and proximo_undo carry what every plan tool carries
    for hints in (plan, undo):
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint) == (True, False, False, True)
    assert read.read_only_hint is True and read.idempotent_hint is True
    assert listed["proximo_apply"].annotations.destructive_hint is True
    assert all(t.output_schema is None for t in listed.values())


async def test_search_finds_tools_by_words_and_paths_one_line_each(tmp_path: Path) -> None:
    world, server = server_for(tmp_path)
    async with Client(server) as client:
        delete = (await client.call_tool("proximo_search", {"query": "storage delete"})).structured_content["matches"]
        by_path = (await client.call_tool("proximo_search", {"query": "/nodes/{node}/qemu"})).structured_content["matches"]
        everything = await client.call_tool("proximo_search", {"limit": 250})
        few = await client.call_tool("proximo_search", {"query": "firewall", "limit": 2})
        nothing = (await client.call_tool("proximo_search", {"query": "zzzz"})).structured_content["matches"]
    assert delete[0] == "storage.delete (plan) delete storage"
    assert by_path[0].startswith("vm.create (plan) ") and by_path[0].endswith("[POST /nodes/{node}/qemu]")
    lines = everything.structured_content["matches"]
    assert len(lines) == len(world.packs.tools) and all("\n" not in line for line in lines)
    assert {line.split(" ", 1)[0] for line in lines} == {t.id for t in world.packs.tools}
    assert len(few.structured_content["matches"]) == 2 and "raise limit" in text(few)
    assert nothing == []


async def test_describe_gives_the_schema_an_example_and_the_tool_to_call(tmp_path: Path) -> None:
    world, server = server_for(tmp_path)
    async with Client(server) as client:
        plan = (await client.call_tool("proximo_describe", {"tool": "storage.delete"})).structured_content
        read = (await client.call_tool("proximo_describe", {"tool": "storage.status"})).structured_content
    spec = world.packs.tools.get("storage.delete")
    assert plan["kind"] == "plan" and plan["call"] == "proximo_plan" and plan["input_schema"] == spec.input_schema()
    assert plan["input_schema"]["properties"]["storage"]["description"]
    assert plan["example"] == {"tool": "storage.delete", "params": {"storage": "local"}}
    assert read["kind"] == "read" and read["call"] == "proximo_read"


def test_every_tools_example_parses(tmp_path: Path) -> None:
    """describe's example is a call the tool's own parse takes (the cluster may still refuse it)."""
    world = make_world(tmp_path)
    for spec in world.packs.tools:
        spec.parse(example(spec).params)


async def test_read_and_plan_run_the_named_tools_pipeline(tmp_path: Path) -> None:
    world, server = server_for(tmp_path / "compact")
    full_world, full = server_for(tmp_path / "full", McpSettings(toolset="full"))
    person = Person("accept", {"approve": True})
    async with Client(server, elicitation_callback=person) as client, Client(full) as named:
        listed = (await client.call_tool("proximo_read", {"tool": "storage.list", "params": {}})).structured_content
        same = (await named.call_tool("pve_storage_list", {})).structured_content
        planned = await client.call_tool("proximo_plan", {"tool": "storage.delete", "params": {"storage": "local-zfs"}})
        named_plan = (await named.call_tool("pve_storage_delete", {"storage": "local-zfs"})).structured_content
        applied = await client.call_tool("proximo_apply", {"plan_id": planned.structured_content["plan_id"]})
    assert listed["data"] == same["data"] and listed["tool"] == "storage.list"
    made = planned.structured_content
    assert "Nothing has changed" in text(planned)
    for key in ("tool", "params", "risk", "steps", "impacts", "undo"):
        assert made[key] == named_plan[key], key
    assert not applied.is_error, text(applied)
    assert len(person.asked) == 1  # HIGH: the person approved it in the client's form
    assert "local-zfs" not in world.model.storages and "local-zfs" in full_world.model.storages
    assert kinds(world)[-4:] == ["plan", "approve", "apply-start", "apply-result"]


async def test_an_unknown_tool_is_one_line_with_suggestions(tmp_path: Path) -> None:
    world, server = server_for(tmp_path)
    before = kinds(world)
    async with Client(server) as client:
        typo = refused(await client.call_tool("proximo_plan", {"tool": "storage.delet", "params": {"storage": "local-zfs"}}))
        far = refused(await client.call_tool("proximo_describe", {"tool": "no.such.thing"}))
    assert "unknown tool 'storage.delet'" in typo and "did you mean storage.delete" in typo
    assert "proximo_search" in far
    assert kinds(world) == before  # no tool was reached


async def test_a_read_given_to_plan_or_a_plan_given_to_read_is_refused(tmp_path: Path) -> None:
    world, server = server_for(tmp_path)
    before = world.model.fingerprint()
    async with Client(server) as client:
        plan_as_read = refused(await client.call_tool("proximo_read", {"tool": "storage.delete",
                                                                       "params": {"storage": "local-zfs"}}))
        read_as_plan = refused(await client.call_tool("proximo_plan", {"tool": "storage.list"}))
    assert "storage.delete is a plan tool: call proximo_plan" in plan_as_read
    assert "storage.list is a read tool: call proximo_read" in read_as_plan
    assert world.model.fingerprint() == before and "plan" not in kinds(world)


@pytest.mark.parametrize(("params", "field"), [({"storge": "local-zfs"}, "storge"), ({"storage": 5}, "storage"),
                                               ({"storage": "local\u200bzfs"}, "control character"), ({}, "storage")])
async def test_wrong_params_are_refused_as_the_named_tool_refuses_them(params: dict[str, Any], field: str,
                                                                       tmp_path: Path) -> None:
    world, server = server_for(tmp_path / "compact")
    full_world, full = server_for(tmp_path / "full", McpSettings(toolset="full"))
    before = world.model.fingerprint()
    async with Client(server) as client, Client(full) as named:
        compact_line = refused(await client.call_tool("proximo_plan", {"tool": "storage.delete", "params": params}))
        named_line = refused(await named.call_tool("pve_storage_delete", params))
    assert field in compact_line
    # one pipeline: the same reason, recorded the same way (a deny record, no plan); compact says where the
    # parameters are (the named tool's client has them in its schema)
    reason = named_line.split(" [ledger #")[0]
    assert compact_line.split(" [ledger #")[0] in (reason, f"{reason} (proximo_describe storage.delete shows its parameters)")
    assert "proximo tools" not in compact_line + named_line, "a CLI command means nothing to an MCP client"
    assert world.model.fingerprint() == before
    assert kinds(world) == kinds(full_world) == ["deny"]


async def test_read_only_compact_serves_no_plan_apply_or_undo(tmp_path: Path) -> None:
    world, server = server_for(tmp_path, McpSettings(read_only=True))
    async with Client(server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        lines = (await client.call_tool("proximo_search", {"limit": 250})).structured_content["matches"]
        hidden = refused(await client.call_tool("proximo_describe", {"tool": "storage.delete"}))
        read = await client.call_tool("proximo_read", {"tool": "storage.list"})
    assert names == {"proximo_search", "proximo_describe", "proximo_read"} | LEDGER
    assert lines and all("(read)" in line for line in lines)
    assert len(lines) == sum(not t.mutating for t in world.packs.tools)
    assert "storage.delete is not served here" in hidden
    assert not read.is_error


async def test_proximo_tools_limits_what_compact_reaches(tmp_path: Path) -> None:
    world, server = server_for(tmp_path, McpSettings(tools=("storage.*",)))
    async with Client(server) as client:
        lines = (await client.call_tool("proximo_search", {"limit": 250})).structured_content["matches"]
        outside = refused(await client.call_tool("proximo_read", {"tool": "guest.list"}))
        inside = await client.call_tool("proximo_plan", {"tool": "storage.delete", "params": {"storage": "local-zfs"}})
    assert {line.split(" ", 1)[0] for line in lines} == {t.id for t in world.packs.tools if t.id.startswith("storage.")}
    assert "guest.list is not served here (PROXIMO_TOOLS" in outside
    assert not inside.is_error


async def test_only_read_tools_selected_means_no_plan_tool(tmp_path: Path) -> None:
    _, server = server_for(tmp_path, McpSettings(tools=("storage.list", "guest.list")))
    async with Client(server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert "proximo_plan" not in names and "proximo_read" in names


@pytest.mark.parametrize("toolset", ["compact", "full"])
@pytest.mark.parametrize("read_only", [False, True])
async def test_a_selection_of_nothing_says_so(toolset: str, read_only: bool, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="proximo.mcp"):
        settings = McpSettings(toolset=toolset, tools=("stroage.*",), read_only=read_only)  # type: ignore[arg-type]
        _, server = server_for(tmp_path, settings)
    async with Client(server, mode="legacy") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        instructions = client.instructions  # what the client (and its model) is told at initialize
    assert names == LEDGER | (set() if read_only else {"proximo_apply", "proximo_undo"})
    assert "selects no tool: this server serves only the ledger tools" in caplog.text
    assert instructions is not None and instructions.startswith("PROXIMO_TOOLS") and "selects no tool" in instructions


async def test_the_test_packs_tool_is_reached_too(tmp_path: Path) -> None:
    """A pack's tool is in the compact set with nothing written for it: found, described, planned."""
    _, server = server_for(tmp_path)
    async with Client(server) as client:
        found = (await client.call_tool("proximo_search", {"query": "appliance template"})).structured_content["matches"]
        planned = await client.call_tool("proximo_plan", {"tool": FETCH_TOOL, "params": {"node": "pve1", "storage": "local",
                                                                                         "template": "debian-12.tar.zst"}})
    assert found[0].startswith(f"{FETCH_TOOL} (plan)")
    assert not planned.is_error, text(planned)


def test_serve_says_at_startup_when_the_selection_leaves_nothing(tmp_path: Path) -> None:
    """`proximo serve`: the option wins over PROXIMO_TOOLSET, and an empty selection is said on stderr at start-up."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PROXIMO_HOME": str(tmp_path), "PROXIMO_TOOLSET": "full", "PROXIMO_TOOLS": "stroage.*"}
    done = subprocess.run([str(Path(sys.executable).parent / "proximo"), "serve", "--sim", "--toolset", "compact"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.stdout == ""  # stdout is the protocol stream: nothing but MCP messages, and none were asked for
    assert "PROXIMO_TOOLS: 'stroage.*' matches no tool" in done.stderr
    assert "PROXIMO_TOOLS selects no tool: this server serves only the ledger tools" in done.stderr
    assert "MCP server on stdio: 4 tools (compact toolset)" in done.stderr


async def test_every_tool_is_reachable_through_the_compact_set(tmp_path: Path) -> None:
    """Each tool the packs register runs through proximo_read / proximo_plan with describe's example: the host answers
    it (a read, a plan, or the host's own refusal, recorded), never the compact layer's 'unknown' or 'wrong kind'."""
    world, server = server_for(tmp_path)
    async with Client(server) as client:
        for spec in world.packs.tools:
            call = "proximo_plan" if spec.mutating else "proximo_read"
            shown = (await client.call_tool("proximo_describe", {"tool": spec.id})).structured_content
            before = len(kinds(world))
            result = await client.call_tool(call, {"tool": spec.id, "params": shown["example"]["params"]})
            said = text(result)
            assert "unknown tool" not in said and "not served here" not in said and " tool: call " not in said, said
            if spec.mutating:  # the plan pipeline ran: a plan record, or a deny record with the host's reason
                assert kinds(world)[before:] in (["plan"], ["deny"]), (spec.id, said)
            else:  # answered; or refused by the pack (a deny record); or the cluster's own answer (a made-up task id)
                assert not result.is_error or kinds(world)[before:] == ["deny"] or "no such task" in said, (spec.id, said)


@pytest.mark.parametrize(("mode", "kind"), [pytest.param(m, k, id=f"{m}-{k}") for m in MODES for k in TRANSPORTS])
async def test_compact_on_every_transport_plan_approve_apply(kind: Transport, mode: Mode, tmp_path: Path) -> None:
    person = Person("accept", {"approve": True})
    async with open_face(kind, mode, tmp_path, settings=McpSettings()) as face, face.client(person) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        planned = await client.call_tool("proximo_plan", {"tool": "storage.delete", "params": {"storage": "local-zfs"}})
        assert not planned.is_error, text(planned)
        applied = await client.call_tool("proximo_apply", {"plan_id": planned.structured_content["plan_id"]})
        listed = await client.call_tool("proximo_read", {"tool": "storage.list"})
    assert names == COMPACT
    assert not applied.is_error, text(applied)
    assert len(person.asked) == 1 and "local-zfs" not in {row["storage"] for row in listed.structured_content["data"]}


async def test_a_compact_tools_own_arguments_are_refused_in_the_same_words(tmp_path: Path) -> None:
    world, server = server_for(tmp_path)
    before = world.model.fingerprint()
    async with Client(server) as client:
        wrong_type = refused(await client.call_tool("proximo_plan", {"tool": 123, "params": {}}))
        not_object = refused(await client.call_tool("proximo_plan", {"tool": "storage.delete", "params": "storage=local"}))
        unknown = refused(await client.call_tool("proximo_plan", {"tool": "storage.delete", "params": {}, "bogus": 1}))
    assert wrong_type.startswith("proximo_plan: tool: expected a string, got an integer (123)")
    assert not_object.startswith("proximo_plan: params: expected a JSON object, got a string")
    assert unknown.startswith("proximo_plan: unknown parameter 'bogus'")
    assert not any("`" in line for line in (wrong_type, not_object, unknown)), "msgspec's wording stays inside"
    assert world.model.fingerprint() == before and "plan" not in kinds(world)
