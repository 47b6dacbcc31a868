"""The pack manager: entry points, disabling, duplicates, owner dispatch, and every collecting hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import msgspec
import pytest
from click.testing import CliRunner

import proximo
from proximo import ApiCall, BadInput, Draft, Impact, Irreversible, PackError, ToolSpec
from proximo._plugins import PackManager
from proximo.testing import World

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Ref(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    storage: str


class UndoPack:
    """A pack whose tool has its own undo answer, a ledger sink and a CLI command."""

    def __init__(self, undo: Any) -> None:
        self.undo = undo
        self.proved: list[Any] = []

    @proximo.hookimpl
    def proximo_register_tools(self, register: Any) -> None:
        register(ToolSpec(id="test.disable", title="Plan: disable", description="d", params=Ref, mutating=True))

    @proximo.hookimpl
    def proximo_plan(self, tool: ToolSpec, params: Ref, view: Any) -> Draft:
        return Draft(steps=[ApiCall("PUT", f"/storage/{params.storage}", {"disable": 1})], target=params.storage)

    @proximo.hookimpl
    def proximo_undo(self, change: Any, before: Any, after: Any) -> Any:
        return self.undo

    @proximo.hookimpl
    def proximo_prove(self, record: Any) -> None:
        self.proved.append(record)

    @proximo.hookimpl
    def proximo_register_commands(self, cli: click.Group) -> None:
        @cli.command("hello-pack")
        def hello() -> None:
            click.echo("hello from a pack")


def test_builtin_packs_load_through_entry_points() -> None:
    pm = PackManager()
    names = {p.name: p for p in pm.packs()}
    assert {"core", "storage"} <= set(names)
    assert names["storage"].distribution == "proximo-storage"
    assert "storage.delete" in names["storage"].tools and "DELETE /storage/{storage}" in names["storage"].semantics
    assert "api.call" in names["core"].tools


def test_a_disabled_pack_is_not_loaded() -> None:
    pm = PackManager(disabled=["storage"])
    assert "storage" not in {p.name for p in pm.packs()}
    assert not [t for t in pm.tools if t.id.startswith("storage.")]
    with pytest.raises(proximo.UnknownTool):
        pm.tools.get("storage.delete")


def test_duplicate_tool_ids_stop_start_up_naming_both_packs() -> None:
    class Dup:
        @proximo.hookimpl
        def proximo_register_tools(self, register: Any) -> None:
            register(ToolSpec(id="storage.delete", title="t", description="d", params=Ref, mutating=True))

    with pytest.raises(PackError, match="'storage.delete' is registered by both") as info:
        PackManager(extra=[("dup", Dup())])
    assert "'storage'" in str(info.value) and "'dup'" in str(info.value)


def test_a_badly_named_tool_is_refused() -> None:
    class Bad:
        @proximo.hookimpl
        def proximo_register_tools(self, register: Any) -> None:
            register(ToolSpec(id="Delete Everything", title="t", description="d", params=Ref, mutating=True))

    with pytest.raises(PackError, match="not dotted"):
        PackManager(extra=[("bad", Bad())])


def test_a_hook_the_spec_does_not_know_fails_check_pending() -> None:
    class Typo:
        @proximo.hookimpl
        def proximo_plann(self) -> None: ...

    with pytest.raises(Exception, match="proximo_plann"):
        PackManager(extra=[("typo", Typo())])


def test_semantics_for_an_endpoint_another_pack_owns_are_refused() -> None:
    class Steal:
        @proximo.hookimpl
        def proximo_register_semantics(self, register: Any) -> None:
            register("DELETE", "/storage/{storage}", lambda m, c: None)

    with pytest.raises(PackError, match="has semantics from both") as info:
        PackManager(extra=[("steal", Steal())])
    assert "'storage'" in str(info.value) and "'steal'" in str(info.value)


async def test_an_owner_undo_answer_replaces_the_composed_inverse(tmp_path: Path) -> None:
    pack = UndoPack(Irreversible("the firmware flag cannot be unset"))
    world = World(tmp_path, extra_packs=[("undo-pack", pack)])
    async with world.host() as host:
        plan = await host.plan("test.disable", {"storage": "ceph-rbd"}, world.actor)
    assert plan.undo is None and not plan.reversible
    assert plan.undo_note == "the firmware flag cannot be unset"


async def test_an_owner_returning_none_gets_the_inverse_from_semantics(tmp_path: Path) -> None:
    world = World(tmp_path, extra_packs=[("undo-pack", UndoPack(None))])
    async with world.host() as host:
        plan = await host.plan("test.disable", {"storage": "ceph-rbd"}, world.actor)
    assert plan.undo == [ApiCall("PUT", "/storage/ceph-rbd", {"delete": "disable"})]


async def test_every_ledger_record_reaches_proximo_prove(tmp_path: Path) -> None:
    pack = UndoPack(None)
    world = World(tmp_path, extra_packs=[("undo-pack", pack)])
    async with world.host() as host:
        plan = await host.plan("test.disable", {"storage": "ceph-rbd"}, world.actor)
        host.approve(plan.plan_id, world.actor, world.person)
        await host.apply(plan.plan_id, world.actor)
        with pytest.raises(BadInput):
            await host.plan("test.disable", {"storage": "x", "nope": 1}, world.actor)
        records = list(host.ledger.records())
    assert [r.seq for r in pack.proved] == [r.seq for r in records]
    assert [r.kind for r in pack.proved] == ["plan", "approve", "apply-start", "apply-result", "deny"]


async def test_a_failing_sink_does_not_undo_the_append(tmp_path: Path) -> None:
    class Broken:
        @proximo.hookimpl
        def proximo_prove(self, record: Any) -> None:
            raise RuntimeError("sink down")

    world = World(tmp_path, extra_packs=[("broken", Broken())])
    async with world.host() as host:
        plan = await host.plan("storage.delete", {"storage": "nfs-backup"}, world.actor)
        assert host.ledger.head().seq == plan.ledger.seq == 1


def test_packs_add_cli_commands(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import proximo.cli as cli_module

    original = cli_module.make_packs
    monkeypatch.setattr(cli_module, "make_packs", lambda settings, **kw: original(settings, extra=[("undo-pack", UndoPack(None))]))
    monkeypatch.setenv("PROXIMO_HOME", str(tmp_path))
    result = CliRunner().invoke(cli_module.build_cli(), ["hello-pack"])
    assert result.exit_code == 0 and result.output == "hello from a pack\n"


async def test_impacts_are_collected_from_every_pack(tmp_path: Path) -> None:
    class Extra:
        @proximo.hookimpl
        def proximo_impact(self, change: Any, before: Any, after: Any) -> list[Impact]:
            return [Impact("node/pve1", "quorum-risk", f"seen {len(change.steps)} step(s) of {change.tool}")]

    world = World(tmp_path, extra_packs=[("extra", Extra())])
    async with world.host() as host:
        plan = await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
    effects = {(i.target, i.effect) for i in plan.impacts}
    assert ("node/pve1", "quorum-risk") in effects and ("qemu/104", "wont-boot") in effects


async def test_an_apply_whose_process_died_is_closed_at_the_next_start(tmp_path: Path) -> None:
    world = World(tmp_path)
    async with world.host() as host:
        plan = await host.plan("storage.update", {"storage": "ceph-rbd", "content": "images"}, world.actor)
        # a process that wrote apply-start and died: pid 0 never exists as ours
        host.ledger.append("apply-start", actor=world.actor, tool=plan.tool, plan_id=plan.plan_id, plan_hash=plan.hash,
                           outcome={"pid": 2**22 + 12345, "host": __import__("socket").gethostname(), "started": 0})
        assert len(host.ledger.open_applies()) == 1
    async with world.host() as host:
        assert host.ledger.open_applies() == []
        result = host.ledger.tail(1)[0]
    assert result.kind == "apply-result" and result.plan_id == plan.plan_id
    assert result.outcome["interrupted"] is True and result.outcome["ok"] is False
