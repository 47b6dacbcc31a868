"""What was not read is not "nothing there": a plan made without it is incomplete and names it; analysers fall back
to what Proxmox always gives (/cluster/resources) before giving up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proximo._host import open_host
from proximo.sim import demo_snapshot
from proximo.testing import World

pytestmark = pytest.mark.anyio
GiB = 1024**3


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _plan_offline(world: World, doc: dict[str, Any], tool: str, params: dict[str, Any]) -> Any:
    path = world.home / "snapshot.json"
    path.write_text(json.dumps(doc))
    async with open_host(world.settings, snapshot=path, packs=world.packs) as host:
        return await host.plan(tool, params, world.actor)


async def test_a_guest_whose_config_was_not_read_is_not_a_guest_without_disks(tmp_path: Path) -> None:
    world = World(tmp_path)
    doc = demo_snapshot()
    del doc["api"]["/nodes/pve1/qemu/104/config"]
    plan = await _plan_offline(world, doc, "guest.destroy", {"vmid": 104})
    assert not plan.complete and "/nodes/pve1/qemu/104/config" in plan.unseen
    assert plan.risk.value in ("HIGH", "CRITICAL")
    whole = await _plan_offline(world, demo_snapshot(), "guest.destroy", {"vmid": 104})
    assert whole.complete and whole.unseen == []


async def test_without_the_node_storage_rows_capacity_comes_from_cluster_resources(tmp_path: Path) -> None:
    """A disk move onto a storage that cannot hold it is refused, though /nodes/{node}/storage was not read."""
    world = World(tmp_path)
    doc = demo_snapshot()
    for node in ("pve1", "pve2", "pve3"):
        doc["api"].pop(f"/nodes/{node}/storage", None)
    for row in doc["api"]["/cluster/resources"]:
        if row.get("type") == "storage" and row["storage"] == "ceph-rbd":
            row["maxdisk"], row["disk"] = 20 * GiB, 19 * GiB  # 1 GiB free; scsi0 of 104 is 32G
    plan = await _plan_offline(world, doc, "guest.disk.move", {"vmid": 104, "disk": "scsi0", "storage": "ceph-rbd"})
    assert plan.blocked and any("out of space" in b for b in plan.blockers), plan.blockers
