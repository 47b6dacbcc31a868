"""End to end over real HTTP: plan -> approve -> apply -> ledger verify -> undo -> apply, against the simulator.

The simulator runs under uvicorn on a loopback socket; the host talks to it through its real client (httpx
over TCP), exactly as it would talk to a cluster. After every step the simulator's own model is checked:
a plan and an approval change nothing, apply changes exactly what the plan said, and the undo puts back the
storage definition, its ACLs and its pool membership, so every guest can start again.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from _loopback import serve

from proximo import NotApproved, Risk
from proximo.cli._demo import unbootable
from proximo.trust._ledger import Actor
from proximo.model import ClusterModel
from proximo.testing import World

pytestmark = pytest.mark.anyio

PERSON = Actor(token_id="-", face="terminal", client="alice@workstation")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@pytest.fixture
def url(world: World) -> Iterator[str]:
    with serve(world.sim.app) as base:
        yield base


def _config(model: ClusterModel) -> dict[str, Any]:
    """What an operator means by "the cluster's state": definitions, guests, ACLs, pools, jobs (not digests)."""
    return {
        "storages": {sid: {k: v for k, v in cfg.items() if k != "digest"} for sid, cfg in model.storages.items()},
        "guests": {vmid: [g.node, g.resource.get("status"), g.config] for vmid, g in model.guests.items()},
        "acl": sorted(msgspec.json.encode(a, order="sorted") for a in model.acl),
        # membership, not rows: PVE lists a shared storage member once per node it has status for
        "pools": {pid: sorted({f"{m.get('type')}/{m.get('vmid') or m.get('storage')}" for m in pool.get("members", [])})
                  for pid, pool in model.pools.items()},
        "jobs": [model.backup_jobs, model.replication_jobs, model.ha_resources],
        "volumes": model.volumes,
    }


def _writes(world: World) -> list[tuple[str, str]]:
    return [(m, p) for m, p in world.sim.requests if m != "GET"]


@pytest.mark.parametrize(("storage", "acl_ugid", "pool"), [("local-zfs", "admins", None), ("nfs-backup", "operators", "prod")])
async def test_plan_approve_apply_verify_undo_over_loopback(world: World, url: str, storage: str, acl_ugid: str, pool: str | None) -> None:
    original = copy.deepcopy(_config(world.model))
    cfg = {k: v for k, v in world.model.storages[storage].items() if k != "digest"}
    assert any(a["path"] == f"/storage/{storage}" and a["ugid"] == acl_ugid for a in world.model.acl)
    bootable_before = unbootable(world.model)

    async with world.host(url=url) as host:
        assert host.source.name == f"live:{url}"

        # PLAN: a dry run over HTTP; only GETs reach the simulator, nothing changes
        plan = await host.plan("storage.delete", {"storage": storage}, world.actor)
        assert plan.risk is Risk.HIGH and plan.reversible and not plan.blocked and plan.complete
        assert _config(world.model) == original
        assert world.sim.requests and _writes(world) == []
        if storage == "local-zfs":
            assert any(i.effect == "wont-boot" and "boot disk" in i.reason for i in plan.impacts)
        else:
            assert any(i.effect == "backup-fails" for i in plan.impacts)

        # HIGH is above auto-approval: the agent's apply is refused and sends nothing
        assert host.needs_person(plan)
        with pytest.raises(NotApproved):
            await host.apply(plan.plan_id, world.actor)
        assert _config(world.model) == original and _writes(world) == []

        # APPROVE as a person: a ledger record, still nothing sent
        approval = host.approve(plan.plan_id, PERSON, world.person)
        assert approval.kind == "approve" and approval.outcome["by"] == "person"
        assert _config(world.model) == original and _writes(world) == []

        # APPLY: exactly the planned step, over HTTP
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction, result
        assert _writes(world) == [("DELETE", f"/storage/{storage}")]
        assert storage not in world.model.storages
        assert not any(a["path"] == f"/storage/{storage}" for a in world.model.acl)
        if pool:
            assert not any(m.get("storage") == storage for m in world.model.pools[pool]["members"])
        assert world.model.volumes == original["volumes"], "DELETE /storage removes the definition, not the data"
        if storage == "local-zfs":
            broken = unbootable(world.model)
            predicted = {i.target for i in plan.impacts if i.effect == "wont-boot"}
            assert set(broken) - set(bootable_before) == predicted

        # PROVE: the chain verifies; apply-start came before apply-result
        check = host.ledger.verify()
        assert check.ok, check
        kinds = [r.kind for r in host.ledger.find(plan_id=plan.plan_id)]
        assert kinds == ["plan", "deny", "approve", "apply-start", "apply-result"]

        # UNDO: a fresh plan from the apply's ledger record; planning it changes nothing
        after_apply = copy.deepcopy(_config(world.model))
        undo = await host.undo(result.ledger.seq, world.actor)
        assert undo.undo_of == result.ledger.seq and not undo.blocked
        assert undo.steps[0] == msgspec.convert({"kind": "api", "method": "POST", "path": "/storage", "params": cfg},
                                                type=type(undo.steps[0]))
        assert _config(world.model) == after_apply and len(_writes(world)) == 1
        if host.needs_person(undo):
            host.approve(undo.plan_id, PERSON, world.person)
        undone = await host.apply(undo.plan_id, world.actor)
        assert undone.ok and undone.matches_prediction, undone

        # the storage, its ACLs and pool membership are back; every guest can start as before
        assert world.model.storages[storage] | {"digest": ""} == cfg | {"digest": ""}
        assert _config(world.model) == original
        assert unbootable(world.model) == bootable_before
        assert [m for m, _ in _writes(world)][0:2] == ["DELETE", "POST"]
        assert host.ledger.verify().ok

    # a second apply of either plan is refused: a plan runs at most once
    async with world.host(url=url) as host:
        for plan_id in (plan.plan_id, undo.plan_id):
            with pytest.raises(Exception, match="already applied"):
                await host.apply(plan_id, world.actor)
