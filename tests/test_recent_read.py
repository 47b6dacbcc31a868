"""PROXIMO_PLAN_READ_AGE: a long-running server may plan from a recent read of the cluster; apply never does.

A read of a large cluster takes seconds (bench/bench_live.py), so an agent's second plan in a row may use the first
plan's read. What a plan rests on is still checked against a fresh read before anything is sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proximo import BadInput, StalePlan
from proximo._settings import Settings
from proximo.testing import World

pytestmark = pytest.mark.anyio

MEDIUM_PLAN = ("storage.create", {"storage": "scratch", "type": "dir", "path": "/srv/scratch"})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _gets(world: World) -> int:
    return sum(1 for method, _ in world.sim.requests if method == "GET")


async def test_a_second_plan_within_the_age_reads_nothing_and_says_how_old_its_read_is(tmp_path: Path) -> None:
    world = World(tmp_path, env={"PROXIMO_PLAN_READ_AGE": "60"})
    async with world.host() as host:
        first = await host.plan(*MEDIUM_PLAN, world.actor)
        read = _gets(world)
        second = await host.plan("storage.delete", {"storage": "nfs-backup"}, world.actor)
    assert read > 10 and _gets(world) == read, "the second plan sent no GET"
    assert not any("as read" in n for n in first.notes)
    assert any("as read" in n and "PROXIMO_PLAN_READ_AGE" in n for n in second.notes)
    assert second.fingerprint == first.fingerprint


async def test_by_default_every_plan_reads_the_cluster_afresh(tmp_path: Path) -> None:
    world = World(tmp_path)
    async with world.host() as host:
        await host.plan(*MEDIUM_PLAN, world.actor)
        read = _gets(world)
        plan = await host.plan(*MEDIUM_PLAN, world.actor)
    assert _gets(world) >= 2 * read - 2 and not any("as read" in n for n in plan.notes)


async def test_a_plan_from_an_old_read_is_refused_at_apply_and_the_next_plan_sees_the_change(tmp_path: Path) -> None:
    world = World(tmp_path, env={"PROXIMO_PLAN_READ_AGE": "60"})
    async with world.host() as host:
        await host.plan(*MEDIUM_PLAN, world.actor)
        world.sim.model.storages["nfs-backup"]["disable"] = 1  # someone changes the cluster outside Proximo
        stale = await host.plan(*MEDIUM_PLAN, world.actor)  # from the remembered read: it cannot know
        with pytest.raises(StalePlan, match="storage"):
            await host.apply(stale.plan_id, world.actor)
        fresh = await host.plan(*MEDIUM_PLAN, world.actor)  # apply's fresh read is the one remembered now
        result = await host.apply(fresh.plan_id, world.actor)
    assert result.ok and fresh.fingerprint != stale.fingerprint
    assert ("POST", "/storage") in world.sim.requests


async def test_after_an_apply_the_next_plan_reads_afresh(tmp_path: Path) -> None:
    world = World(tmp_path, env={"PROXIMO_PLAN_READ_AGE": "60"})
    async with world.host() as host:
        plan = await host.plan(*MEDIUM_PLAN, world.actor)
        assert (await host.apply(plan.plan_id, world.actor)).ok
        again = await host.plan("storage.delete", {"storage": "scratch"}, world.actor)
    # planned on what the apply left, not on the read from before it: scratch exists now
    assert [s.describe() for s in again.steps] == ["DELETE /storage/scratch"]


@pytest.mark.parametrize("value", ["abc", "-1", "301", "nan", "inf"])
def test_a_bad_read_age_is_one_line_at_start(value: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="PROXIMO_PLAN_READ_AGE must be a number of seconds from 0 to 300"):
        Settings.from_env({"PROXIMO_HOME": str(tmp_path), "PROXIMO_PLAN_READ_AGE": value})


async def test_an_apply_cut_short_leaves_no_remembered_read_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The step reached Proxmox, then the connection was lost before the read back: the read from before the apply
    must not be planned on."""
    world = World(tmp_path, env={"PROXIMO_PLAN_READ_AGE": "60"})
    async with world.host() as host:
        plan = await host.plan(*MEDIUM_PLAN, world.actor)
        executor = host._executor
        assert executor is not None
        sent = executor.run

        async def sent_then_lost(step, *args, **kwargs):  # type: ignore[no-untyped-def]
            await sent(step, *args, **kwargs)
            raise ConnectionError("connection lost")

        monkeypatch.setattr(executor, "run", sent_then_lost)
        with pytest.raises(ConnectionError):
            await host.apply(plan.plan_id, world.actor)
        again = await host.plan("storage.delete", {"storage": "scratch"}, world.actor)
    assert [s.describe() for s in again.steps] == ["DELETE /storage/scratch"]
