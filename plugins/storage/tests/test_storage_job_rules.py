"""Which volumes replication and backup jobs really use, after Proxmox's source; and POST /storage's errors.

Replication (get_replicatable_volumes in qemu-server PVE/QemuConfig.pm and pve-container src/PVE/LXC/Config.pm):
QEMU skips CD-ROMs (cloud-init drives are CD-ROMs) and ``replicate=0`` drives before it looks the storage
up; it then dies on a storage that does not exist, skips shared storages and volumes owned by another guest,
and activates the rest on the source and the target. LXC looks the storage up before it reads ``replicate``,
so a container's ``replicate=0`` mount point on a removed storage still fails the job. ``unusedN`` volumes are
replicated. Backups (PVE::VZDump::get_included_guests): ``pool``, else ``vmid``, else ``all`` minus
``exclude``; templates are backed up like any guest.

The snapshots are the real API shapes of test_storage_impacts (``cluster``, ``vm``, ``ct``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_storage_impacts import backup_job, cluster, ct, impact, plan_of, vm

from proximo import BadInput, PveApiError, Risk
from proximo.model import load_snapshot
from proximo.testing import World

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def job(guest: int, source: str, target: str) -> dict[str, Any]:
    return {"id": f"{guest}-0", "jobnum": 0, "guest": guest, "type": "local", "source": source, "target": target,
            "schedule": "*/15"}


TARGET_OFF = ("storage.update", {"storage": "local-zfs", "nodes": "pve1,pve3"})  # pve2, the target, loses local-zfs
DELETE_ZFS = ("storage.delete", {"storage": "local-zfs"})
DELETE_CEPH = ("storage.delete", {"storage": "ceph-vm"})
DISABLE_CEPH = ("storage.update", {"storage": "ceph-vm", "disable": 1})
DISABLE_ZFS = ("storage.update", {"storage": "local-zfs", "disable": 1})

# (case, guest, job, change, replication fails?, words of the reason)
REPLICATION_RULES = [
    ("a replicated qemu disk", vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G", scsi1="local-zfs:vm-100-disk-1,size=10G"),
     job(100, "pve1", "pve2"), TARGET_OFF, True, "scsi1 on local-zfs: storage 'local-zfs' is not available on node 'pve2'"),
    ("a qemu disk with replicate=0", vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G",
                                        scsi1="local-zfs:vm-100-disk-1,replicate=0,size=10G"),
     job(100, "pve1", "pve2"), TARGET_OFF, False, ""),
    ("a qemu replicate=0 disk on a deleted storage: skipped before the lookup",
     vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G", scsi1="local-zfs:vm-100-disk-1,replicate=no,size=10G"),
     job(100, "pve1", "pve2"), DELETE_ZFS, False, ""),
    ("a cloud-init drive is a CD-ROM: not replicated",
     vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G", ide0="local-zfs:vm-100-cloudinit,media=cdrom", ciuser="debian"),
     job(100, "pve1", "pve2"), TARGET_OFF, False, ""),
    ("an unused volume is replicated", vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G", unused0="local-zfs:vm-100-disk-1"),
     job(100, "pve1", "pve2"), TARGET_OFF, True, "unused0 on local-zfs"),
    ("a disk on shared storage is not replicated: disabling it", vm(100, scsi0="local-zfs:vm-100-disk-0,size=32G",
                                                                   scsi1="ceph-vm:vm-100-disk-1,size=32G"),
     job(100, "pve1", "pve2"), DISABLE_CEPH, False, ""),
    ("a disk on shared storage: deleting the storage fails the lookup",
     vm(100, scsi0="local-zfs:vm-100-disk-0,size=32G", scsi1="ceph-vm:vm-100-disk-1,size=32G"),
     job(100, "pve1", "pve2"), DELETE_CEPH, True, "scsi1 on ceph-vm: storage 'ceph-vm' does not exist"),
    ("another guest's volume is not this guest's to replicate",
     vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G", scsi1="local-zfs:vm-105-disk-0,size=10G"),
     job(100, "pve1", "pve2"), TARGET_OFF, False, ""),
    ("a linked clone's own volume is replicated",
     vm(100, scsi0="local-zfs:base-9000-disk-0/vm-100-disk-0,size=32G"),
     job(100, "pve1", "pve2"), TARGET_OFF, True, "scsi0 on local-zfs"),
    ("an lxc mount point with replicate=0 on a deleted storage: looked up first, fails",
     ct(200, "pve2", rootfs="ceph-vm:vm-200-disk-0,size=8G", mp0="local-zfs:subvol-200-disk-1,mp=/data,replicate=0,size=8G"),
     job(200, "pve2", "pve1"), DELETE_ZFS, True, "mp0 on local-zfs: storage 'local-zfs' does not exist"),
    ("an lxc mount point with replicate=0 on a disabled storage: skipped",
     ct(200, "pve2", rootfs="ceph-vm:vm-200-disk-0,size=8G", mp0="local-zfs:subvol-200-disk-1,mp=/data,replicate=0,size=8G"),
     job(200, "pve2", "pve1"), DISABLE_ZFS, False, ""),
    ("an lxc rootfs on local ZFS", ct(200, "pve2", rootfs="local-zfs:subvol-200-disk-0,size=8G"),
     job(200, "pve2", "pve1"), DISABLE_ZFS, True, "rootfs on local-zfs: storage 'local-zfs' is disabled"),
]


@pytest.mark.parametrize(("guest", "rjob", "change", "fails", "words"), [pytest.param(*c[1:], id=c[0]) for c in REPLICATION_RULES])
async def test_replication_uses_only_what_proxmox_replicates(tmp_path: Path, guest: dict[str, Any], rjob: dict[str, Any],
                                                             change: tuple[str, dict[str, Any]], fails: bool, words: str) -> None:
    plan = await plan_of(tmp_path, cluster(guest, replication=[rjob]), *change)
    target = f"replication/{rjob['id']}"
    found = [i for i in plan.impacts if i.effect == "replication-fails"]
    assert [i.target for i in found] == ([target] if fails else []), plan.impacts
    if fails:
        reason = impact(plan, target).reason
        assert reason.startswith(f"replication {rjob['id']} ({rjob['source']} -> {rjob['target']}): ") and words in reason, reason
        assert plan.risk is Risk.HIGH


async def test_a_job_that_fails_before_is_not_reported_again(tmp_path: Path) -> None:
    """The target lacked local-zfs already: replication was failing; deleting the storage changes nothing for it."""
    storages = {**__import__("test_storage_impacts").STORAGES}
    storages["local-zfs"] = {**storages["local-zfs"], "nodes": "pve1,pve3"}
    guest = vm(100, scsi0="local-zfs:vm-100-disk-0,size=32G")
    plan = await plan_of(tmp_path, cluster(guest, storages=storages, replication=[job(100, "pve1", "pve2")]), *TARGET_OFF)
    assert [i for i in plan.impacts if i.effect == "replication-fails"] == []


# --- backups --------------------------------------------------------------------------------------------------------


async def test_backups_include_templates(tmp_path: Path) -> None:
    guests = (vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G"), vm(9000, template=1, scsi0="ceph-vm:base-9000-disk-0,size=32G"))
    jobs = [backup_job("backup-all", all=1), backup_job("backup-list", vmid="9000")]
    plan = await plan_of(tmp_path, cluster(*guests, backup=jobs), "storage.delete", {"storage": "nfs-backup"})
    assert "guests 100, 9000 will not be backed up" in impact(plan, "backup/backup-all").reason
    assert "guests 9000 will not be backed up" in impact(plan, "backup/backup-list").reason


async def test_a_backup_job_picks_its_pool_before_its_vmid_list(tmp_path: Path) -> None:
    guests = (vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G"), vm(101, scsi0="ceph-vm:vm-101-disk-0,size=32G"))
    members = [{"id": "qemu/101", "type": "qemu", "vmid": 101, "node": "pve1", "name": "vm101", "status": "stopped", "template": 0}]
    jobs = [backup_job("backup-pool", pool="prod", vmid="100"), backup_job("backup-vmid", vmid="100", all=1)]
    plan = await plan_of(tmp_path, cluster(*guests, backup=jobs, pools={"prod": members}), "storage.delete", {"storage": "nfs-backup"})
    assert "guests 101 will not be backed up" in impact(plan, "backup/backup-pool").reason
    assert "guests 100 will not be backed up" in impact(plan, "backup/backup-vmid").reason


# --- reasons name the node once -------------------------------------------------------------------------------------


async def test_reasons_name_the_node_once(tmp_path: Path) -> None:
    guests = (vm(100, "pve3", scsi0="local-zfs:vm-100-disk-0,size=32G"), ct(200, "pve3", rootfs="local-zfs:subvol-200-disk-0,size=8G"),
              vm(101, "pve2", scsi0="local-zfs:vm-101-disk-0,size=32G"))
    plan = await plan_of(tmp_path, cluster(*guests), "storage.update", {"storage": "local-zfs", "nodes": "pve1,pve2"})
    for target in ("qemu/100", "lxc/200"):
        reason = impact(plan, target).reason
        assert reason.count("pve3") == 1 and "not available on node 'pve3'" in reason, reason
    plan = await plan_of(tmp_path / "b", cluster(*guests), "storage.delete", {"storage": "local-zfs"})
    assert "does not exist on node pve2" in impact(plan, "qemu/101").reason


# --- POST /storage without a required option ------------------------------------------------------------------------


def test_post_storage_without_a_required_option_is_a_500_as_in_pve(tmp_path: Path) -> None:
    """PVE::SectionConfig::check_config dies before the storage lock: a plain error, HTTP 500, no prefix."""
    world = World(tmp_path)
    with pytest.raises(PveApiError) as caught:
        world.packs.semantics.execute(world.model, "POST", "/storage", {"storage": "d1", "type": "dir"})
    assert caught.value.status == 500 and caught.value.message == "missing value for required option 'path'"
    assert "d1" not in world.model.storages


async def test_the_simulator_answers_it_over_http(tmp_path: Path) -> None:
    from proximo.pve._client import PveClient
    from proximo.testing import TOKEN_ID

    world = World(tmp_path)
    async with PveClient("http://pve.sim:8006", TOKEN_ID, world.secret, transport=world.transport()) as client:
        with pytest.raises(PveApiError) as caught:
            await client.send("POST", "/storage", {"storage": "n1", "type": "nfs", "server": "10.0.0.5"})
    assert caught.value.status == 500 and caught.value.message == "missing value for required option 'export'"


async def test_planning_it_is_bad_input_or_a_blocked_call(tmp_path: Path) -> None:
    world = World(tmp_path)
    async with world.host() as host:
        with pytest.raises(BadInput, match=r"^storage.create: missing value for required option 'path'"):
            await host.plan("storage.create", {"storage": "d1", "type": "dir"}, world.actor)
        plan = await host.plan("api.call", {"method": "POST", "path": "/storage", "params": {"storage": "d1", "type": "dir"}},
                               world.actor)
    assert plan.blocked and plan.blockers == ["POST /storage: Proxmox would refuse: missing value for required option 'path'"]
    assert load_snapshot(world.snapshot).storages.keys() == world.model.storages.keys()
