"""Guest blast radius on a cluster written in real API shapes (see _guests_cluster.py), planned through the host.

Each rule of issue 4's blast-radius list has a test that could fail: the effect, the target, the risk, the
blockers with Proxmox's own refusal, and the undo (or the reason there is none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _guests_cluster import GiB, make_snapshot

from proximo import ApiCall, BadInput, Plan, Risk
from proximo.testing import World

pytestmark = pytest.mark.anyio


async def plan(world: World, tool: str, params: dict[str, Any], **settings: Any) -> Plan:
    async with world.host(**settings) as host:
        return await host.plan(tool, params, world.actor)


def effects(p: Plan) -> list[tuple[str, str]]:
    return sorted((i.target, i.effect) for i in p.impacts)


def reason(p: Plan, target: str, effect: str) -> str:
    return next(i.reason for i in p.impacts if i.target == target and i.effect == effect)


# --- downtime -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tool", "params", "expected"), [
    ("guest.shutdown", {"vmid": 120}, [("qemu/120", "downtime")]),
    ("guest.reboot", {"vmid": 120}, [("qemu/120", "downtime")]),
    ("guest.suspend", {"vmid": 120}, [("qemu/120", "downtime")]),
    ("guest.stop", {"vmid": 201}, []),  # already stopped: Proxmox refuses, nothing goes down
])
async def test_downtime_only_for_a_running_guest(world: World, tool: str, params: dict[str, Any], expected: list[Any]) -> None:
    p = await plan(world, tool, params)
    assert [e for e in effects(p) if e[1] == "downtime"] == expected
    if not expected:
        assert p.blocked and "CT 201 not running" in p.blockers[0]


async def test_ha_stop_goes_through_ha_and_says_ha_sid_changes(world: World) -> None:
    p = await plan(world, "guest.stop", {"vmid": 100})
    assert effects(p) == [("ha/vm:100", "downtime"), ("qemu/100", "downtime")]
    assert any("ha/vm:100 at requested state 'stopped'" in n for n in p.notes)
    assert p.undo == [ApiCall("POST", "/nodes/pve1/qemu/100/status/start")]


async def test_ha_container_shutdown_warns_about_error_state(world: World) -> None:
    p = await plan(world, "guest.shutdown", {"vmid": 200})
    assert any("ha/ct:200 goes to 'error'" in n for n in p.notes)


async def test_reboot_bypasses_ha(world: World) -> None:
    p = await plan(world, "guest.reboot", {"vmid": 100})
    assert ("ha/vm:100", "downtime") not in effects(p)
    assert any("bypasses the HA manager" in n for n in p.notes)


# --- data loss ------------------------------------------------------------------------------------------------


async def test_destroy_is_critical_and_names_the_newest_backup(world: World) -> None:
    p = await plan(world, "guest.destroy", {"vmid": 100, "stop": True, "purge": 1})
    assert p.risk is Risk.CRITICAL and not p.blocked and p.undo is None and "nothing in Proxmox" in p.undo_note
    text = reason(p, "qemu/100", "data-loss")
    assert "vzdump-qemu-100-2026_11_27-21_00_02" in text and "snapshots (pre-update)" in text
    assert ("volume/local-zfs:vm-100-disk-0", "data-loss") in effects(p)
    assert [s.path for s in p.steps] == ["/nodes/pve1/qemu/100/status/stop", "/nodes/pve1/qemu/100"]
    assert any("stops it hard first" in n for n in p.notes)
    assert any("purge removes it from the HA configuration" in n for n in p.notes)


async def test_destroy_without_backup_says_there_is_none(world: World) -> None:
    p = await plan(world, "guest.destroy", {"vmid": 201})
    assert "no backup of it exists" in reason(p, "lxc/201", "data-loss")
    assert ("volume/local-zfs:subvol-201-disk-0", "data-loss") in effects(p)


async def test_snapshot_delete_and_rollback_are_critical_without_undo(world: World) -> None:
    delete = await plan(world, "guest.snapshot.delete", {"vmid": 100, "snapname": "pre-update"})
    assert effects(delete) == [("qemu/100", "data-loss")] and delete.risk is Risk.CRITICAL and delete.undo is None
    rollback = await plan(world, "guest.snapshot.rollback", {"vmid": 100, "snapname": "pre-update"})
    assert effects(rollback) == [("qemu/100", "data-loss"), ("qemu/100", "downtime")]
    assert "everything written since is discarded" in reason(rollback, "qemu/100", "data-loss")
    assert rollback.undo is None and "cannot be undone" in rollback.undo_note


async def test_move_with_delete_is_not_data_loss_and_undo_moves_back(world: World) -> None:
    p = await plan(world, "guest.disk.move", {"vmid": 101, "disk": "scsi1", "storage": "ceph", "delete": 1})
    assert not p.blocked and p.risk is Risk.MEDIUM and effects(p) == []
    assert p.undo == [ApiCall("POST", "/nodes/pve1/qemu/101/move_disk", {"disk": "scsi1", "storage": "local-zfs", "delete": 1})]


async def test_resize_has_no_undo(world: World) -> None:
    p = await plan(world, "guest.disk.resize", {"vmid": 101, "disk": "scsi1", "size": "+10G"})
    assert p.undo is None and "cannot be shrunk" in p.undo_note


# --- destroy blockers ------------------------------------------------------------------------------------------


async def test_destroy_refused_while_protected(world: World) -> None:
    p = await plan(world, "guest.destroy", {"vmid": 101})
    assert p.blocked and p.blockers == ["DELETE /nodes/pve1/qemu/101: Proxmox would refuse: can't remove VM 101 - protection mode enabled"]
    assert any("pool prod" in n for n in p.notes) and any("backup job backup-db names 101" in n for n in p.notes)


async def test_destroy_refused_while_running_unless_the_plan_stops_it(world: World) -> None:
    p = await plan(world, "guest.destroy", {"vmid": 120})
    assert p.blocked and "VM 120 is running - destroy failed" in p.blockers[0]
    stopped = await plan(world, "guest.destroy", {"vmid": 120, "stop": True})
    assert not stopped.blocked and stopped.steps[0] == ApiCall("POST", "/nodes/pve1/qemu/120/status/stop")


async def test_template_with_linked_clones_is_blocked_and_names_them(world: World) -> None:
    p = await plan(world, "guest.destroy", {"vmid": 9000})
    # qemu-server QemuServer.pm destroy_vm refuses it itself (its own wording, "linked cloned")
    assert p.blocked and p.blockers == ["DELETE /nodes/pve1/qemu/9000: Proxmox would refuse: "
                                        "base volume 'local-zfs:base-9000-disk-0' is still in use by linked cloned"]
    assert ("qemu/120", "wont-boot") in effects(p)
    assert "linked clone of template qemu/9000" in reason(p, "qemu/120", "wont-boot")


async def test_ha_and_replication_need_purge_and_purge_lists_what_it_does(world: World) -> None:
    p = await plan(world, "guest.destroy", {"vmid": 200, "stop": True})
    assert p.blocked and "used in HA resources and purge parameter not set" in p.blockers[0]
    purged = await plan(world, "guest.destroy", {"vmid": 200, "stop": True, "purge": 1})
    assert not purged.blocked
    notes = " ".join(purged.notes)
    assert "replication job 200-0" in notes and "purge deletes the job entry" in notes
    assert "backup job backup-db names 200: purge removes it" in notes
    assert "vzdump-lxc-200-2026_11_27" in reason(purged, "lxc/200", "data-loss")


async def test_destroy_without_purge_leaves_a_failing_backup_job(world: World) -> None:
    world.model.guests[101].config.pop("protection")
    p = await plan(world, "guest.destroy", {"vmid": 101})
    assert ("backup/backup-db", "backup-fails") in effects(p) and ("backup/backup-db-only", "backup-fails") in effects(p)
    purged = await plan(world, "guest.destroy", {"vmid": 101, "purge": 1})  # the jobs drop the id: nothing fails, they change
    assert sorted(i.reason for i in purged.impacts if i.effect == "backup-fails") == [
        "backup job backup-db no longer names guest 101 (destroyed with it)", "backup job backup-db-only is removed: it backs up nothing any more"]


# --- disk move checks -----------------------------------------------------------------------------------------


async def test_move_to_storage_without_images_content_is_blocked(world: World) -> None:
    p = await plan(world, "guest.disk.move", {"vmid": 101, "disk": "scsi1", "storage": "isos"})
    assert p.blocked and "does not support content-type 'images'" in p.blockers[0]


async def test_move_to_storage_not_on_the_node_is_blocked(world: World) -> None:
    p = await plan(world, "guest.disk.move", {"vmid": 101, "disk": "scsi1", "storage": "fast"})
    assert p.blocked and "storage 'fast' is not available on node 'pve1'" in p.blockers[0]


async def test_move_that_does_not_fit_is_blocked(tmp_path: Path) -> None:
    world = World(tmp_path, make_snapshot(usage={"ceph": (4000 * GiB, 3950 * GiB)}))
    p = await plan(world, "guest.disk.move", {"vmid": 101, "disk": "scsi1", "storage": "ceph"})
    assert p.blocked and "out of space" in p.blockers[0]


async def test_move_that_leaves_little_space_is_high_with_co_tenants_degraded(tmp_path: Path) -> None:
    world = World(tmp_path, make_snapshot(usage={"ceph": (4000 * GiB, 3850 * GiB)}))  # 150 GiB free, 100 GiB moved in
    p = await plan(world, "guest.disk.move", {"vmid": 101, "disk": "scsi1", "storage": "ceph"})
    assert not p.blocked and p.risk is Risk.HIGH
    assert effects(p) == [("lxc/200", "degraded"), ("qemu/101", "degraded"), ("storage/ceph", "degraded")]
    assert "50.0 GiB" in reason(p, "storage/ceph", "degraded")


# --- config.set effects ---------------------------------------------------------------------------------------


async def test_nic_on_a_missing_bridge_wont_boot(world: World) -> None:
    p = await plan(world, "guest.config.set", {"vmid": 201, "net0": "name=eth0,bridge=vmbr7,hwaddr=BC:24:11:5E:02:01,ip=dhcp,type=veth"})
    assert effects(p) == [("lxc/201", "wont-boot")] and "bridge 'vmbr7' does not exist" in p.impacts[0].reason
    # no digest of its own: the host stamps it from the state the undo is applied to (Host.undo)
    assert p.undo == [ApiCall("PUT", "/nodes/pve2/lxc/201/config",
                              {"net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:5E:02:01,ip=dhcp,type=veth"})]


async def test_removing_protection_is_high_and_never_auto_approved(world: World) -> None:
    p = await plan(world, "guest.config.set", {"vmid": 101, "delete": "protection"}, auto_approve=Risk.HIGH)
    assert p.risk is Risk.HIGH and p.impacts[0].needs_person
    async with world.host(auto_approve=Risk.HIGH) as host:
        assert host.needs_person(p)
        plain = await host.plan("guest.config.set", {"vmid": 101, "memory": "4096"}, world.actor)
        assert not host.needs_person(plain)


async def test_detaching_a_disk_degrades_and_the_boot_disk_wont_boot(world: World) -> None:
    p = await plan(world, "guest.config.set", {"vmid": 101, "delete": "scsi1"})
    assert effects(p) == [("qemu/101", "degraded")] and "kept as unused1" in p.impacts[0].reason
    boot = await plan(world, "guest.config.set", {"vmid": 101, "delete": "scsi0"})
    assert ("qemu/101", "wont-boot") in effects(boot)


async def test_removing_a_nic_loses_network(world: World) -> None:
    p = await plan(world, "guest.config.set", {"vmid": 120, "delete": "net0"})
    assert effects(p) == [("qemu/120", "loses-network")]


async def test_deleting_an_unused_volume_destroys_it_without_undo(world: World) -> None:
    world.model.guests[101].config.pop("protection")  # PVE refuses to remove unused disks of a protected guest
    p = await plan(world, "guest.config.set", {"vmid": 101, "delete": "unused0"})
    assert effects(p) == [("volume/local-zfs:vm-101-disk-2", "data-loss")] and p.risk is Risk.CRITICAL
    assert p.undo is None and "destroys volume local-zfs:vm-101-disk-2" in p.undo_note


async def test_protected_guest_keeps_its_unused_volumes(world: World) -> None:
    p = await plan(world, "guest.config.set", {"vmid": 101, "delete": "unused0"})
    assert p.blocked and "protection mode enabled" in p.blockers[0]


async def test_config_undo_restores_old_values(world: World) -> None:
    p = await plan(world, "guest.config.set", {"vmid": 120, "memory": "4096", "cores": 4})
    assert p.steps == [ApiCall("POST", "/nodes/pve1/qemu/120/config",
                               {"memory": "4096", "cores": 4, "digest": world.model.guests[120].config["digest"]})]
    assert p.undo is not None and p.undo[0].params["memory"] == "2048" and p.undo[0].params["cores"] == 2  # type: ignore[union-attr]
    assert "digest" not in p.undo[0].params  # type: ignore[union-attr]  # stamped when the undo is planned
    assert any("stay pending until its next start" in n for n in p.notes)


async def test_passthrough_device_note(world: World) -> None:
    p = await plan(world, "guest.config.set", {"vmid": 101, "hostpci0": "0000:01:00.0"})
    assert any("cannot live-migrate" in n for n in p.notes)


# --- api.call reports what the named tool reports -------------------------------------------------------------

EQUIVALENCE = [
    ("guest.stop", {"vmid": 100}, {"method": "POST", "path": "/nodes/pve1/qemu/100/status/stop"}),
    ("guest.destroy", {"vmid": 201}, {"method": "DELETE", "path": "/nodes/pve2/lxc/201"}),
    ("guest.destroy", {"vmid": 9000}, {"method": "DELETE", "path": "/nodes/pve1/qemu/9000"}),
    ("guest.snapshot.delete", {"vmid": 100, "snapname": "pre-update"},
     {"method": "DELETE", "path": "/nodes/pve1/qemu/100/snapshot/pre-update"}),
    ("guest.disk.move", {"vmid": 101, "disk": "scsi1", "storage": "ceph", "delete": 1},
     {"method": "POST", "path": "/nodes/pve1/qemu/101/move_disk", "params": {"disk": "scsi1", "storage": "ceph", "delete": 1}}),
    ("guest.clone", {"vmid": 9000, "newid": 130}, {"method": "POST", "path": "/nodes/pve1/qemu/9000/clone", "params": {"newid": 130}}),
]


@pytest.mark.parametrize(("tool", "params", "call"), EQUIVALENCE, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(EQUIVALENCE)])
async def test_api_call_reports_the_same_impacts(world: World, tool: str, params: dict[str, Any], call: dict[str, Any]) -> None:
    async with world.host() as host:
        named = await host.plan(tool, params, world.actor)
        raw = await host.plan("api.call", call, world.actor)
    assert named.impacts == raw.impacts
    assert (named.risk, named.blocked, named.undo) == (raw.risk, raw.blocked, raw.undo)
    assert set(raw.notes) <= set(named.notes)


# --- Proxmox's refusals, as it words them -----------------------------------------------------------------------


async def test_locked_guest_is_refused_and_only_root_may_skip_the_lock(world: World) -> None:
    world.model.guests[120].config["lock"] = "backup"
    p = await plan(world, "guest.stop", {"vmid": 120})
    assert p.blocked and p.blockers == ["POST /nodes/pve1/qemu/120/status/stop: Proxmox would refuse: VM is locked (backup)"]
    # Qemu.pm vm_stop: skiplock is root@pam's alone, and PVE says so before it looks at the lock
    with pytest.raises(BadInput, match=r"400 Parameter verification failed\. \(skiplock: Only root may use this option\.\)"):
        await plan(world, "guest.stop", {"vmid": 120, "skiplock": True})
    world.packs.semantics.execute(world.model.copy(), "POST", "/nodes/pve1/qemu/120/status/stop", {"skiplock": 1}, user="root@pam")


async def test_stale_digest_is_refused_by_proxmox_itself(world: World) -> None:
    p = await plan(world, "guest.config.set", {"vmid": 120, "cores": 4, "digest": "0" * 40})
    assert p.blocked and "detected modified configuration - file changed by other user? Try again." in p.blockers[0]


async def test_running_container_volume_cannot_move(world: World) -> None:
    p = await plan(world, "guest.disk.move", {"vmid": 200, "volume": "mp0", "storage": "ceph"})
    assert p.blocked and "cannot move volumes of a running container" in p.blockers[0]


async def test_destroy_unreferenced_disks_takes_orphans_too(world: World) -> None:
    orphan = {"volid": "local-zfs:subvol-201-disk-7", "content": "rootdir", "format": "subvol", "size": GiB, "vmid": 201}
    world.model.volumes["local-zfs"]["pve2"][orphan["volid"]] = orphan
    plain = await plan(world, "guest.destroy", {"vmid": 201})
    assert ("volume/local-zfs:subvol-201-disk-7", "data-loss") not in effects(plain)
    full = await plan(world, "guest.destroy", {"vmid": 201, "destroy-unreferenced-disks": True})
    assert ("volume/local-zfs:subvol-201-disk-7", "data-loss") in effects(full)


async def test_a_new_vm_that_fills_a_storage_is_high(world: World) -> None:
    p = await plan(world, "vm.create", {"node": "pve1", "vmid": 150, "scsi0": "local-zfs:95"})  # 100 GiB free on local-zfs
    assert p.risk is Risk.HIGH and ("storage/local-zfs", "degraded") in effects(p)
    degraded = {t for t, e in effects(p) if e == "degraded"}
    assert {"qemu/100", "qemu/101", "qemu/120"} <= degraded and "qemu/9000" not in degraded  # a template never writes
    assert "lxc/201" not in {t for t, _ in effects(p)}  # local-zfs is node-local: pve2's guests are not co-tenants
    too_big = await plan(world, "vm.create", {"node": "pve1", "vmid": 150, "scsi0": "local-zfs:101"})
    assert too_big.blocked and "out of space" in too_big.blockers[0]


async def test_plans_work_offline_from_a_snapshot_file(world: World) -> None:
    async with world.offline() as host:
        p = await host.plan("guest.snapshot.rollback", {"vmid": 100, "snapname": "pre-update"}, world.actor)
    assert effects(p) == [("qemu/100", "data-loss"), ("qemu/100", "downtime")] and p.source.startswith("snapshot:")
