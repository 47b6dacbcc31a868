"""Destroying a guest whose volumes are on a storage that was deleted, as each Proxmox release does it.

qemu-server up to 9.1 (src/PVE/QemuServer.pm destroy_vm: volume_is_base_and_used for a template, PVE::Storage::path
for the others) and pve-container (src/PVE/LXC.pm delete_mountpoint_volume: parse_volname) die in pve-storage's
storage_config: "storage 'x' does not exist". qemu-server 9.2 (59e11235; 2e85e6d7, "fix #3711: make removal of VM
possible if store does not exist anymore") warns instead, destroys the guest and leaves those volumes where they are.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from proximo.testing import TOKEN_ID, World

pytestmark = pytest.mark.anyio


def _without_local_zfs(tmp_path: Path, release: str) -> World:
    world = World(tmp_path)  # the demo cluster: template 9000 and its linked clones 120, 121 on local-zfs
    world.model.version["release"] = release
    world.packs.semantics.execute(world.model, "DELETE", "/storage/local-zfs")
    assert "local-zfs" not in world.model.storages and world.model.volumes["local-zfs"]  # the definition, not the data
    return world


async def test_a_template_on_a_deleted_storage_is_not_destroyed_by_pve_9_1(tmp_path: Path) -> None:
    world = _without_local_zfs(tmp_path, "9.1")
    async with world.host() as host:
        template = await host.plan("guest.destroy", {"vmid": 9000}, world.actor)
        clone = await host.plan("guest.destroy", {"vmid": 121}, world.actor)
    assert template.blocked and template.blockers == [
        "DELETE /nodes/pve1/qemu/9000: Proxmox would refuse: storage 'local-zfs' does not exist"]
    assert clone.blocked and "storage 'local-zfs' does not exist" in clone.blockers[0]


async def test_a_container_on_a_deleted_storage_is_not_destroyed(tmp_path: Path) -> None:
    world = _without_local_zfs(tmp_path, "9.2")  # pve-container has no such fix: parse_volname dies
    ct = next(g for g in world.model.guests.values() if g.kind == "lxc" and any(v.storage == "local-zfs" for v in g.volumes()))
    ct.resource["status"] = "stopped"
    async with world.host() as host:
        plan = await host.plan("guest.destroy", {"vmid": ct.vmid}, world.actor)
    assert plan.blocked and "storage 'local-zfs' does not exist" in plan.blockers[0]


async def test_pve_9_2_destroys_the_template_and_leaves_its_volumes(tmp_path: Path) -> None:
    world = _without_local_zfs(tmp_path, "9.2")
    async with world.host() as host:
        plan = await host.plan("guest.destroy", {"vmid": 9000}, world.actor)
    assert not plan.blocked
    assert any("local-zfs:base-9000-disk-0: its storage 'local-zfs' does not exist, so Proxmox leaves it" in n for n in plan.notes)
    assert not any(i.target == "volume/local-zfs:base-9000-disk-0" for i in plan.impacts)  # not destroyed
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=world.sim.app), base_url="http://pve.sim/api2/json",
                                 headers={"Authorization": f"PVEAPIToken={TOKEN_ID}={world.secret}"}) as http:
        upid = (await http.delete("/nodes/pve1/qemu/9000")).json()["data"]
        status = (await http.get(f"/nodes/pve1/tasks/{upid}/status")).json()["data"]
        log = (await http.get(f"/nodes/pve1/tasks/{upid}/log")).json()["data"]
    # the template's linked-clone check warns once for its base volume; removing its drives warns for both volumes
    assert status["exitstatus"] == "WARNINGS: 3"
    assert log[0]["t"] == ("WARN: failed to check if volume 'local-zfs:base-9000-disk-0' is used by linked clones: "
                           "storage 'local-zfs' does not exist")
    assert log[-1]["t"] == "TASK WARNINGS: 3"
    assert 9000 not in world.model.guests
    assert "local-zfs:base-9000-disk-0" in world.model.volumes["local-zfs"]["pve1"]
