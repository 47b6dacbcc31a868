"""Blast radius of storage.delete / storage.update, planned through the real pipeline on hand-written snapshots.

Every snapshot here is written in the shapes the real API answers (``/cluster/resources`` rows, ``/storage``
rows with the storage.cfg digest, guest configs as ``GET .../config`` returns them, ``/cluster/backup``,
``/cluster/replication``, ``/cluster/ha/resources``, ``/access/acl``, ``/pools`` and ``/pools?poolid=ID``).
The rules come from qemu-server src/PVE/QemuServer.pm ``vm_start_nolock``, pve-container src/PVE/LXC.pm
``vm_start`` and pve-storage src/PVE/Storage.pm ``activate_volumes`` (see proximo_storage._impact).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from proximo import Impact, Plan, Risk
from proximo.testing import World, operator_access, snapshot_from

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- a small cluster in real API shapes ------------------------------------------------------------------

NODES = ("pve1", "pve2", "pve3")
CFG_DIGEST = "7c1b9a4e0d2f6a8b3c5e7f9a1b3d5c7e9f0a2b4c"  # storage.cfg's digest: the same on every /storage row

STORAGES: dict[str, dict[str, Any]] = {
    "local": {"storage": "local", "type": "dir", "path": "/var/lib/vz", "content": "iso,vztmpl,backup"},
    "local-zfs": {"storage": "local-zfs", "type": "zfspool", "pool": "rpool/data", "sparse": 1, "content": "images,rootdir"},
    # hyper-converged Ceph: no monhost, the keyring is the cluster's own
    "ceph-vm": {"storage": "ceph-vm", "type": "rbd", "pool": "vm-pool", "krbd": 0, "content": "images,rootdir", "shared": 1},
    "nfs-iso": {"storage": "nfs-iso", "type": "nfs", "server": "10.0.0.50", "export": "/srv/iso", "path": "/mnt/pve/nfs-iso",
                "content": "iso,vztmpl", "options": "vers=4.2", "shared": 1},
    "nfs-backup": {"storage": "nfs-backup", "type": "nfs", "server": "10.0.0.50", "export": "/srv/backup",
                   "path": "/mnt/pve/nfs-backup", "content": "backup", "prune-backups": "keep-last=7", "shared": 1},
    "spare": {"storage": "spare", "type": "dir", "path": "/srv/spare", "content": "images,rootdir", "nodes": "pve1,pve2"},
}


def qemu(vmid: int, node: str, config: dict[str, Any], *, status: str = "stopped", template: int = 0) -> dict[str, Any]:
    return {"kind": "qemu", "vmid": vmid, "node": node, "status": status, "template": template, "config": config}


def lxc(vmid: int, node: str, config: dict[str, Any], *, status: str = "stopped", template: int = 0) -> dict[str, Any]:
    return {"kind": "lxc", "vmid": vmid, "node": node, "status": status, "template": template, "config": config}


def cluster(*guests: dict[str, Any], storages: dict[str, dict[str, Any]] | None = None, backup: list[dict[str, Any]] = (),  # type: ignore[assignment]
            replication: list[dict[str, Any]] = (), ha: list[dict[str, Any]] = (), acl: list[dict[str, Any]] = (),  # type: ignore[assignment]
            pools: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """A snapshot document (docs/architecture.md) of a three-node cluster with these guests and jobs."""
    storages = copy.deepcopy(STORAGES if storages is None else storages)
    api: dict[str, Any] = {
        "/version": {"version": "8.4.1", "release": "8.4", "repoid": "2a5fa54a8503f96d"},
        "/cluster/status": [{"id": "cluster", "type": "cluster", "name": "lab", "nodes": len(NODES), "quorate": 1, "version": 7}]
        + [{"id": f"node/{n}", "type": "node", "name": n, "nodeid": i + 1, "ip": f"10.0.0.{11 + i}", "online": 1,
            "local": int(i == 0), "level": ""} for i, n in enumerate(NODES)],
        "/nodes": [{"node": n, "id": f"node/{n}", "type": "node", "status": "online", "level": "", "maxcpu": 16,
                    "maxmem": 68719476736, "mem": 8589934592, "cpu": 0.03, "uptime": 864000,
                    "disk": 5368709120, "maxdisk": 107374182400} for n in NODES],
        "/storage": [{**cfg, "digest": CFG_DIGEST} for _, cfg in sorted(storages.items())],
        # Proximo's token may manage storage (and, for the undo, the ACLs and pools that go with it)
        "/access/users?full=1": operator_access()["/access/users?full=1"],
        "/access/acl": [*operator_access()["/access/acl"], *acl],
        "/cluster/backup": list(backup),
        "/cluster/replication": list(replication),
        "/cluster/ha/resources": list(ha),
    }
    resources: list[dict[str, Any]] = [
        {"id": f"node/{n}", "type": "node", "node": n, "status": "online", "level": "", "maxcpu": 16, "cpu": 0.03,
         "maxmem": 68719476736, "mem": 8589934592, "disk": 5368709120, "maxdisk": 107374182400, "uptime": 864000}
        for n in NODES
    ]
    for g in guests:
        running = g["status"] == "running"
        resources.append({"id": f"{g['kind']}/{g['vmid']}", "type": g["kind"], "vmid": g["vmid"], "node": g["node"],
                          "name": g["config"].get("name") or g["config"].get("hostname"), "status": g["status"],
                          "template": g["template"], "maxcpu": 2, "cpu": 0.01 if running else 0, "maxmem": 2147483648,
                          "mem": 1073741824 if running else 0, "maxdisk": 34359738368, "disk": 0,
                          "uptime": 3600 if running else 0, "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0})
        config = dict(g["config"])
        if g["template"]:
            config["template"] = 1
        config["digest"] = f"{g['vmid']:040x}"
        api[f"/nodes/{g['node']}/{g['kind']}/{g['vmid']}/config"] = config
    for sid, cfg in sorted(storages.items()):
        shared = cfg.get("type") in ("nfs", "cifs", "rbd", "cephfs", "pbs") or cfg.get("shared")
        for n in NODES:
            if cfg.get("disable") or (cfg.get("nodes") and n not in cfg["nodes"].split(",")):
                continue
            resources.append({"id": f"storage/{n}/{sid}", "type": "storage", "storage": sid, "node": n,
                              "status": "available", "plugintype": cfg["type"], "content": cfg.get("content", ""),
                              "shared": 1 if shared else 0, "disk": 10737418240, "maxdisk": 107374182400})
    api["/cluster/resources"] = resources
    api["/pools"] = [{"poolid": p} for p in sorted(pools or {})]
    for poolid, members in (pools or {}).items():
        api[f"/pools?poolid={poolid}"] = [{"poolid": poolid, "comment": "", "members": members}]
    return snapshot_from(api)


async def plan_of(tmp_path: Path, snapshot: dict[str, Any], tool: str, params: dict[str, Any]) -> Plan:
    world = World(tmp_path, snapshot)
    async with world.host() as host:
        return await host.plan(tool, params, world.actor)


def triples(plan: Plan) -> list[tuple[str, str]]:
    return sorted((i.target, i.effect) for i in plan.impacts)


def impact(plan: Plan, target: str) -> Impact:
    found = [i for i in plan.impacts if i.target == target]
    assert len(found) == 1, (target, plan.impacts)
    return found[0]


def has_words(text: str, *words: str) -> bool:
    return all(w in text for w in words)



# --- the guests the tables use ---------------------------------------------------------------------------

NET = "virtio=BC:24:11:5E:00:01,bridge=vmbr0,firewall=1"
LXC_NET = "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:5E:01:01,ip=dhcp,type=veth"


def vm(vmid: int, node: str = "pve1", *, status: str = "stopped", template: int = 0, boot: str = "order=scsi0;ide2;net0",
       **drives: str) -> dict[str, Any]:
    config = {"name": f"vm{vmid}", "memory": 2048, "cores": 2, "sockets": 1, "ostype": "l26", "scsihw": "virtio-scsi-single",
              "smbios1": f"uuid=6f1c2d3e-4b5a-4c6d-8e7f-{vmid:012d}", "vmgenid": f"0a1b2c3d-0000-4000-8000-{vmid:012d}",
              "net0": NET, "boot": boot, **drives}
    return qemu(vmid, node, config, status=status, template=template)


def ct(vmid: int, node: str = "pve1", *, status: str = "stopped", template: int = 0, **mounts: str) -> dict[str, Any]:
    config = {"hostname": f"ct{vmid}", "arch": "amd64", "ostype": "debian", "memory": 512, "swap": 512, "cores": 1,
              "unprivileged": 1, "features": "nesting=1", "net0": LXC_NET, **mounts}
    return lxc(vmid, node, config, status=status, template=template)


# One guest, one change: (case id, guest, tool, params, expected impacts, words every reason must hold, words it must not).
DELETE_ZFS = ("storage.delete", {"storage": "local-zfs"})
VOLUME_CASES = [
    ("qemu boot disk", vm(100, scsi0="local-zfs:vm-100-disk-0,iothread=1,size=32G"), *DELETE_ZFS,
     [("qemu/100", "wont-boot")], ["boot disk scsi0 on local-zfs", "storage 'local-zfs' does not exist", "node pve1",
                                   "its next start fails"], ["keeps running"]),
    ("qemu data disk is not the boot disk", vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G", scsi1="local-zfs:vm-100-disk-1,size=100G"),
     *DELETE_ZFS, [("qemu/100", "wont-boot")], ["disk scsi1 on local-zfs", "does not exist"], ["boot disk"]),
    ("virtio boot disk named by the legacy bootdisk key", vm(100, boot="", bootdisk="virtio0", virtio0="local-zfs:vm-100-disk-0,size=32G"),
     *DELETE_ZFS, [("qemu/100", "wont-boot")], ["boot disk virtio0 on local-zfs"], []),
    ("efidisk", vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G", bios="ovmf",
                   efidisk0="local-zfs:vm-100-disk-1,efitype=4m,pre-enrolled-keys=1,size=1M"),
     *DELETE_ZFS, [("qemu/100", "wont-boot")], ["EFI disk efidisk0 on local-zfs"], ["boot disk"]),
    ("tpmstate", vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G", tpmstate0="local-zfs:vm-100-disk-2,size=4M,version=v2.0"),
     *DELETE_ZFS, [("qemu/100", "wont-boot")], ["TPM state tpmstate0 on local-zfs"], []),
    ("ISO in a cdrom", vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G", ide2="nfs-iso:iso/debian-12.5.0-amd64-netinst.iso,media=cdrom,size=629M"),
     "storage.delete", {"storage": "nfs-iso"}, [("qemu/100", "wont-boot")], ["ISO ide2 on nfs-iso", "storage 'nfs-iso' does not exist"], []),
    ("cloud-init drive", vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G", ide0="local-zfs:vm-100-cloudinit,media=cdrom",
                            ciuser="debian", ipconfig0="ip=dhcp"),
     *DELETE_ZFS, [("qemu/100", "wont-boot")], ["cloud-init drive ide0 on local-zfs"], []),
    ("saved VM state of a hibernated VM", vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G",
                                            vmstate="local-zfs:vm-100-state-suspend-2024-05-02", lock="suspended"),
     *DELETE_ZFS, [("qemu/100", "wont-boot")], ["vmstate on local-zfs"], []),
    ("lxc rootfs", ct(200, "pve2", rootfs="local-zfs:subvol-200-disk-0,size=8G"), *DELETE_ZFS,
     [("lxc/200", "wont-boot")], ["boot disk rootfs on local-zfs", "node pve2", "does not exist"], []),
    ("lxc mount point", ct(200, "pve2", rootfs="ceph-vm:vm-200-disk-0,size=8G", mp0="local-zfs:subvol-200-disk-1,mp=/data,backup=1,size=50G"),
     *DELETE_ZFS, [("lxc/200", "wont-boot")], ["mount point mp0 on local-zfs"], ["boot disk"]),
    ("a running guest keeps running", vm(100, status="running", scsi0="local-zfs:vm-100-disk-0,size=32G"), *DELETE_ZFS,
     [("qemu/100", "wont-boot")], ["boot disk scsi0", "running now and keeps running until it stops", "next start fails"], []),
    ("a running container keeps running", ct(200, "pve3", status="running", rootfs="local-zfs:subvol-200-disk-0,size=8G"), *DELETE_ZFS,
     [("lxc/200", "wont-boot")], ["rootfs", "keeps running until it stops"], []),
    ("a template cannot be cloned: degraded, not wont-boot", vm(9000, template=1, scsi0="local-zfs:base-9000-disk-0,size=32G"),
     *DELETE_ZFS, [("qemu/9000", "degraded")], ["template", "scsi0 on local-zfs", "cloning from it fails"], []),
    # negatives: what a start does not touch
    ("qemu unused volume only", vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G", unused0="local-zfs:vm-100-disk-1"),
     *DELETE_ZFS, [], [], []),
    ("lxc unused volume only", ct(200, rootfs="ceph-vm:vm-200-disk-0,size=8G", unused0="local-zfs:subvol-200-disk-1"),
     *DELETE_ZFS, [], [], []),
    ("an empty cdrom is no volume", vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G", ide2="none,media=cdrom"),
     "storage.delete", {"storage": "nfs-iso"}, [], [], []),
    ("a physical cdrom is no volume", vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G", ide2="cdrom,media=cdrom"),
     "storage.delete", {"storage": "nfs-iso"}, [], [], []),
    ("a bind mount under the storage's path is no volume",
     ct(200, rootfs="ceph-vm:vm-200-disk-0,size=8G", mp0="/mnt/pve/nfs-iso/shared,mp=/shared"),
     "storage.delete", {"storage": "nfs-iso"}, [], [], []),
    ("a guest on another storage", vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G"), *DELETE_ZFS, [], [], []),
]


@pytest.mark.parametrize(("guest", "tool", "params", "expected", "words", "absent"),
                         [pytest.param(*case[1:], id=case[0]) for case in VOLUME_CASES])
async def test_each_kind_of_volume(tmp_path: Path, guest: dict[str, Any], tool: str, params: dict[str, Any],
                                   expected: list[tuple[str, str]], words: list[str], absent: list[str]) -> None:
    plan = await plan_of(tmp_path, cluster(guest), tool, params)
    assert not plan.blocked and plan.complete
    assert triples(plan) == expected
    for target, _ in expected:
        reason = impact(plan, target).reason
        assert has_words(reason, *words), reason
        assert not any(w in reason for w in absent), reason
        assert "\n" not in reason
    assert plan.risk is (Risk.HIGH if expected else Risk.MEDIUM)
    assert plan.reversible and plan.undo


async def test_delete_reports_every_guest_with_an_active_volume_and_names_all_its_disks(tmp_path: Path) -> None:
    snap = cluster(
        vm(100, "pve1", status="running", scsi0="local-zfs:vm-100-disk-0,size=32G", ide2="nfs-iso:iso/debian-12.iso,media=cdrom",
           efidisk0="local-zfs:vm-100-disk-1,efitype=4m,size=1M", tpmstate0="local-zfs:vm-100-disk-2,size=4M,version=v2.0"),
        vm(101, "pve2", boot="order=virtio0", virtio0="ceph-vm:vm-101-disk-0,size=20G", scsi1="local-zfs:vm-101-disk-1,size=8G",
           ide0="local-zfs:vm-101-cloudinit,media=cdrom"),
        vm(102, "pve3", scsi0="ceph-vm:vm-102-disk-0,size=32G", unused0="local-zfs:vm-102-disk-5"),
        ct(200, "pve2", rootfs="local-zfs:subvol-200-disk-0,size=8G", mp0="ceph-vm:vm-200-disk-1,mp=/data,size=10G",
           mp1="/mnt/bindmounts/shared,mp=/shared"),
        vm(9000, "pve1", template=1, scsi0="local-zfs:base-9000-disk-0,size=32G"),
    )
    plan = await plan_of(tmp_path, snap, "storage.delete", {"storage": "local-zfs"})
    assert triples(plan) == [("lxc/200", "wont-boot"), ("qemu/100", "wont-boot"), ("qemu/101", "wont-boot"), ("qemu/9000", "degraded")]
    assert impact(plan, "qemu/100").reason == (
        "boot disk scsi0 on local-zfs, EFI disk efidisk0 on local-zfs, TPM state tpmstate0 on local-zfs: "
        "storage 'local-zfs' does not exist on node pve1; it is running now and keeps running until it stops; the next start fails")
    r101 = impact(plan, "qemu/101").reason
    assert has_words(r101, "cloud-init drive ide0 on local-zfs", "disk scsi1 on local-zfs", "node pve2", "its next start fails")
    assert "boot disk" not in r101 and "virtio0" not in r101
    assert "mp0" not in impact(plan, "lxc/200").reason and "mp1" not in impact(plan, "lxc/200").reason
    assert plan.risk is Risk.HIGH
    assert all(i.effect != "data-loss" for i in plan.impacts)  # the definition goes, the data stays


# --- disable, nodes, content -------------------------------------------------------------------------------

SPREAD = (
    vm(100, "pve1", scsi0="local-zfs:vm-100-disk-0,size=32G"),
    vm(101, "pve2", status="running", scsi0="ceph-vm:vm-101-disk-0,size=32G", ide2="nfs-iso:iso/alpine.iso,media=cdrom"),
    vm(102, "pve3", scsi0="ceph-vm:vm-102-disk-0,size=32G"),
    ct(200, "pve2", rootfs="local-zfs:subvol-200-disk-0,size=8G"),
    ct(201, "pve3", rootfs="ceph-vm:vm-201-disk-0,size=8G", mp0="local-zfs:subvol-201-disk-1,mp=/srv,size=4G"),
)

CHANGE_CASES = [
    # shared storage: guests on every node
    ("delete shared rbd", "storage.delete", {"storage": "ceph-vm"},
     {("qemu/101", "wont-boot"): "storage 'ceph-vm' does not exist", ("qemu/102", "wont-boot"): "storage 'ceph-vm' does not exist",
      ("lxc/201", "wont-boot"): "storage 'ceph-vm' does not exist"}),
    ("disable shared rbd", "storage.update", {"storage": "ceph-vm", "disable": 1},
     {("qemu/101", "wont-boot"): "storage 'ceph-vm' is disabled", ("qemu/102", "wont-boot"): "storage 'ceph-vm' is disabled",
      ("lxc/201", "wont-boot"): "storage 'ceph-vm' is disabled"}),
    ("disable local zfs", "storage.update", {"storage": "local-zfs", "disable": 1},
     {("qemu/100", "wont-boot"): "storage 'local-zfs' is disabled", ("lxc/200", "wont-boot"): "storage 'local-zfs' is disabled",
      ("lxc/201", "wont-boot"): "storage 'local-zfs' is disabled"}),
    # nodes restriction: only the guests on the nodes removed
    ("restrict shared rbd to pve1,pve2", "storage.update", {"storage": "ceph-vm", "nodes": "pve1,pve2"},
     {("qemu/102", "wont-boot"): "storage 'ceph-vm' is not available on node 'pve3'",
      ("lxc/201", "wont-boot"): "storage 'ceph-vm' is not available on node 'pve3'"}),
    ("restrict local zfs to pve1", "storage.update", {"storage": "local-zfs", "nodes": "pve1"},
     {("lxc/200", "wont-boot"): "storage 'local-zfs' is not available on node 'pve2'",
      ("lxc/201", "wont-boot"): "storage 'local-zfs' is not available on node 'pve3'"}),
    ("restrict to every node: nothing", "storage.update", {"storage": "local-zfs", "nodes": "pve1,pve2,pve3"}, {}),
    # content: QEMU checks the content type, LXC does not (qemu-server QemuServer.pm check_volume_storage_type)
    ("remove images from local zfs", "storage.update", {"storage": "local-zfs", "content": "rootdir"},
     {("qemu/100", "wont-boot"): "storage 'local-zfs' does not support content-type 'images'"}),
    ("remove images from rbd", "storage.update", {"storage": "ceph-vm", "content": "rootdir"},
     {("qemu/101", "wont-boot"): "does not support content-type 'images'", ("qemu/102", "wont-boot"): "content-type 'images'"}),
    ("remove iso from nfs-iso", "storage.update", {"storage": "nfs-iso", "content": "vztmpl"},
     {("qemu/101", "wont-boot"): "ISO ide2 on nfs-iso: storage 'nfs-iso' does not support content-type 'iso'"}),
    ("remove rootdir only: no qemu or lxc impact", "storage.update", {"storage": "local-zfs", "content": "images"}, {}),
    ("a comment changes nothing", "storage.update", {"storage": "ceph-vm", "krbd": 1}, {}),
]


@pytest.mark.parametrize(("tool", "params", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CHANGE_CASES])
async def test_delete_disable_restrict_and_content(tmp_path: Path, tool: str, params: dict[str, Any],
                                                   expected: dict[tuple[str, str], str]) -> None:
    plan = await plan_of(tmp_path, cluster(*SPREAD), tool, params)
    assert not plan.blocked
    assert triples(plan) == sorted(expected)
    for (target, _), words in expected.items():
        assert words in impact(plan, target).reason, impact(plan, target).reason
    assert plan.risk is (Risk.HIGH if expected else Risk.MEDIUM)


async def test_restricting_nodes_names_the_node_and_keeps_guests_on_kept_nodes(tmp_path: Path) -> None:
    plan = await plan_of(tmp_path, cluster(*SPREAD), "storage.update", {"storage": "local-zfs", "nodes": "pve1"})
    assert "qemu/100" not in {i.target for i in plan.impacts}  # pve1 keeps local-zfs
    # the node is named once: PVE's message already says which (it used to read "... node 'pve3' on node pve3")
    assert impact(plan, "lxc/201").reason == ("mount point mp0 on local-zfs: storage 'local-zfs' is not available on node 'pve3'; "
                                              "its next start fails")
    assert plan.undo == [proximo_api("PUT", "/storage/local-zfs", {"delete": "nodes"})]


def proximo_api(method: str, path: str, params: dict[str, Any] | None = None) -> Any:
    from proximo import ApiCall

    return ApiCall(method, path, params or {})  # type: ignore[arg-type]


# --- jobs ----------------------------------------------------------------------------------------------------

JOB_GUESTS = (
    vm(100, "pve1", scsi0="local-zfs:vm-100-disk-0,size=32G"),
    vm(101, "pve2", scsi0="ceph-vm:vm-101-disk-0,size=32G"),
    ct(200, "pve2", rootfs="local-zfs:subvol-200-disk-0,size=8G"),
    ct(201, "pve3", rootfs="ceph-vm:vm-201-disk-0,size=8G"),
)
PROD_MEMBERS = [
    {"id": "qemu/101", "type": "qemu", "vmid": 101, "node": "pve2", "name": "vm101", "status": "stopped", "template": 0,
     "maxcpu": 2, "maxmem": 2147483648, "maxdisk": 34359738368, "cpu": 0, "mem": 0, "disk": 0, "uptime": 0},
    {"id": "lxc/201", "type": "lxc", "vmid": 201, "node": "pve3", "name": "ct201", "status": "stopped", "template": 0,
     "maxcpu": 1, "maxmem": 536870912, "maxdisk": 8589934592, "cpu": 0, "mem": 0, "disk": 0, "uptime": 0},
    {"id": "storage/pve1/local-zfs", "type": "storage", "storage": "local-zfs", "node": "pve1", "plugintype": "zfspool",
     "content": "images,rootdir", "shared": 0, "status": "available", "disk": 10737418240, "maxdisk": 107374182400},
]


def backup_job(jid: str, storage: str = "nfs-backup", **selection: Any) -> dict[str, Any]:
    return {"id": jid, "type": "vzdump", "enabled": 1, "schedule": "21:00", "storage": storage, "mode": "snapshot",
            "compress": "zstd", "notes-template": "{{guestname}}", "next-run": 1795899600, **selection}


BACKUP_JOBS = [
    backup_job("backup-all-but", all=1, exclude="101,200"),
    backup_job("backup-list", vmid="100,200"),
    backup_job("backup-pool", pool="prod"),
    backup_job("backup-pve3", all=1, node="pve3"),
    backup_job("backup-off", all=1, enabled=0),
    backup_job("backup-local", storage="local", all=1),
]

BACKUP_CASES = [
    ("delete the backup storage", "storage.delete", {"storage": "nfs-backup"},
     {"backup-all-but": ("storage 'nfs-backup' does not exist", "guests 100, 201"),
      "backup-list": ("storage 'nfs-backup' does not exist", "guests 100, 200"),
      "backup-pool": ("storage 'nfs-backup' does not exist", "guests 101, 201"),
      "backup-pve3": ("storage 'nfs-backup' does not exist", "guests 201")}),
    ("disable it", "storage.update", {"storage": "nfs-backup", "disable": 1},
     {"backup-all-but": ("is disabled", "guests 100, 201"), "backup-list": ("is disabled", "guests 100, 200"),
      "backup-pool": ("is disabled", "guests 101, 201"), "backup-pve3": ("is disabled", "guests 201")}),
    ("take pve3 off it: only jobs that back up a pve3 guest", "storage.update", {"storage": "nfs-backup", "nodes": "pve1,pve2"},
     {"backup-all-but": ("not available on node 'pve3'", "guests 201"), "backup-pool": ("not available on node 'pve3'", "guests 201"),
      "backup-pve3": ("not available on node 'pve3'", "guests 201")}),
    ("remove backup from its content", "storage.update", {"storage": "nfs-backup", "content": "iso"},
     {"backup-all-but": ("does not allow backups", "guests 100, 201"), "backup-list": ("does not allow backups", "guests 100, 200"),
      "backup-pool": ("does not allow backups", "guests 101, 201"), "backup-pve3": ("does not allow backups", "guests 201")}),
]


@pytest.mark.parametrize(("tool", "params", "expected"), [pytest.param(*c[1:], id=c[0]) for c in BACKUP_CASES])
async def test_backup_jobs_that_write_to_the_storage(tmp_path: Path, tool: str, params: dict[str, Any],
                                                     expected: dict[str, tuple[str, str]]) -> None:
    snap = cluster(*JOB_GUESTS, backup=BACKUP_JOBS, pools={"prod": PROD_MEMBERS})
    plan = await plan_of(tmp_path, snap, tool, params)
    assert triples(plan) == sorted((f"backup/{jid}", "backup-fails") for jid in expected)
    for jid, (problem, guests) in expected.items():
        reason = impact(plan, f"backup/{jid}").reason
        assert has_words(reason, f"backup job {jid} writes to nfs-backup", problem, guests + " will not be backed up"), reason
    assert plan.risk is Risk.HIGH


REPLICATION = [
    {"id": "100-0", "jobnum": 0, "guest": 100, "type": "local", "source": "pve1", "target": "pve2", "schedule": "*/15"},
    {"id": "200-0", "jobnum": 0, "guest": 200, "type": "local", "source": "pve2", "target": "pve1", "schedule": "*/15",
     "disable": 1},
    {"id": "101-0", "jobnum": 0, "guest": 101, "type": "local", "source": "pve2", "target": "pve3", "schedule": "*/30"},
]
REPLICATION_CASES = [
    ("delete the replicated storage", "storage.delete", {"storage": "local-zfs"},
     {"100-0": "scsi0 on local-zfs: storage 'local-zfs' does not exist"}, {"qemu/100", "lxc/200"}),
    ("take the target node off the storage", "storage.update", {"storage": "local-zfs", "nodes": "pve1,pve3"},
     {"100-0": "scsi0 on local-zfs: storage 'local-zfs' is not available on node 'pve2'"}, {"lxc/200"}),
    ("take the source node off the storage", "storage.update", {"storage": "local-zfs", "nodes": "pve2,pve3"},
     {"100-0": "storage 'local-zfs' is not available on node 'pve1'"}, {"qemu/100"}),
]


@pytest.mark.parametrize(("tool", "params", "expected", "wont_boot"), [pytest.param(*c[1:], id=c[0]) for c in REPLICATION_CASES])
async def test_replication_jobs_on_the_source_or_the_target(tmp_path: Path, tool: str, params: dict[str, Any],
                                                            expected: dict[str, str], wont_boot: set[str]) -> None:
    plan = await plan_of(tmp_path, cluster(*JOB_GUESTS, replication=REPLICATION), tool, params)
    assert sorted(i.target for i in plan.impacts if i.effect == "replication-fails") == sorted(f"replication/{j}" for j in expected)
    assert {i.target for i in plan.impacts if i.effect == "wont-boot"} == wont_boot
    for jid, words in expected.items():
        reason = impact(plan, f"replication/{jid}").reason
        assert reason.startswith(f"replication {jid} (pve1 -> pve2): ") and words in reason, reason
    # 200-0 is disabled; 101-0 has nothing on local-zfs
    assert not {"replication/200-0", "replication/101-0"} & {i.target for i in plan.impacts}


HA = [
    {"sid": "vm:100", "type": "vm", "state": "started", "max_restart": 1, "max_relocate": 1, "failback": 1,
     "digest": "e6ed97582db58e72af5c40dee8d05df0122fec53"},
    {"sid": "ct:200", "type": "ct", "state": "stopped", "max_restart": 1, "max_relocate": 1,
     "digest": "e6ed97582db58e72af5c40dee8d05df0122fec53"},
    {"sid": "vm:101", "type": "vm", "state": "started", "max_restart": 1, "max_relocate": 1,
     "digest": "e6ed97582db58e72af5c40dee8d05df0122fec53"},
]


async def test_ha_resources_of_guests_that_will_not_boot(tmp_path: Path) -> None:
    plan = await plan_of(tmp_path, cluster(*JOB_GUESTS, ha=HA), "storage.delete", {"storage": "local-zfs"})
    assert triples(plan) == [("ha/ct:200", "ha-error"), ("ha/vm:100", "ha-error"), ("lxc/200", "wont-boot"), ("qemu/100", "wont-boot")]
    assert has_words(impact(plan, "ha/vm:100").reason, "HA manages qemu/100", "requested state started", "'error'")
    assert has_words(impact(plan, "ha/ct:200").reason, "HA manages lxc/200", "requested state stopped")
    assert plan.risk is Risk.HIGH


async def test_an_ignored_ha_resource_is_not_ha_managed(tmp_path: Path) -> None:
    """state=ignored resources are not HA-managed (pve-ha-manager src/PVE/HA/Config.pm): a failed start is no error."""
    ha = [{**HA[0], "state": "ignored"}]
    plan = await plan_of(tmp_path, cluster(*JOB_GUESTS, ha=ha), "storage.delete", {"storage": "local-zfs"})
    assert triples(plan) == [("lxc/200", "wont-boot"), ("qemu/100", "wont-boot")]


# --- what the plan says: risk, reversibility, notes, undo ---------------------------------------------------


async def test_an_unused_storage_is_medium_with_no_impacts_and_a_recreate_undo(tmp_path: Path) -> None:
    plan = await plan_of(tmp_path, cluster(*SPREAD), "storage.delete", {"storage": "spare"})
    assert plan.impacts == [] and plan.risk is Risk.MEDIUM and plan.reversible and not plan.blocked
    assert plan.undo == [proximo_api("POST", "/storage", {"storage": "spare", "type": "dir", "path": "/srv/spare",
                                                          "content": "images,rootdir", "nodes": "pve1,pve2"})]
    assert plan.notes == ["DELETE /storage/spare removes only the definition: the volumes on it are not deleted (not data loss)."]


async def test_delete_notes_and_undo_restore_acls_and_pool_membership(tmp_path: Path) -> None:
    acl = [
        {"path": "/", "type": "user", "ugid": "alice@pve", "roleid": "Administrator", "propagate": 1},
        {"path": "/storage/local-zfs", "type": "group", "ugid": "admins", "roleid": "PVEDatastoreUser", "propagate": 1},
        {"path": "/storage/local-zfs", "type": "token", "ugid": "ci@pve!deploy", "roleid": "PVEDatastoreAdmin", "propagate": 0},
        {"path": "/storage/local-zfs-old", "type": "user", "ugid": "bob@pve", "roleid": "PVEDatastoreUser", "propagate": 1},
    ]
    snap = cluster(vm(100, scsi0="ceph-vm:vm-100-disk-0,size=32G"), acl=acl, pools={"prod": PROD_MEMBERS})
    plan = await plan_of(tmp_path, snap, "storage.delete", {"storage": "local-zfs"})
    # what goes with the storage is named on its subjects, at MEDIUM: nothing that still exists becomes unreachable
    assert sorted((i.target, i.effect) for i in plan.impacts) == [
        ("group/admins", "privilege-loss"), ("pool/prod", "privilege-loss"), ("token/ci@pve!deploy", "privilege-loss")]
    assert plan.risk is Risk.MEDIUM
    assert plan.notes == [
        "DELETE /storage/local-zfs removes only the definition: the volumes on it are not deleted (not data loss).",
        "It also drops 2 ACL entries on /storage/local-zfs and its membership of pool prod; the undo restores them.",
    ]
    assert plan.undo == [
        proximo_api("POST", "/storage", {"storage": "local-zfs", "type": "zfspool", "pool": "rpool/data", "sparse": 1,
                                         "content": "images,rootdir"}),
        proximo_api("PUT", "/access/acl", {"path": "/storage/local-zfs", "roles": "PVEDatastoreUser", "groups": "admins", "propagate": 1}),
        proximo_api("PUT", "/access/acl", {"path": "/storage/local-zfs", "roles": "PVEDatastoreAdmin", "tokens": "ci@pve!deploy",
                                           "propagate": 0}),
        proximo_api("PUT", "/pools", {"poolid": "prod", "storage": "local-zfs"}),
    ]


CREDENTIAL_CASES = [
    ("cifs with a username", {"storage": "smb", "type": "cifs", "server": "10.0.0.60", "share": "vm", "username": "pve",
                              "domain": "LAB", "content": "images", "path": "/mnt/pve/smb", "shared": 1}, "the CIFS credentials file"),
    ("cifs as guest", {"storage": "smb", "type": "cifs", "server": "10.0.0.60", "share": "vm", "content": "images",
                       "path": "/mnt/pve/smb", "shared": 1}, None),
    ("pbs", {"storage": "smb", "type": "pbs", "server": "10.0.0.70", "datastore": "store1", "username": "backup@pbs",
             "fingerprint": "ab:" * 31 + "ab", "content": "backup", "shared": 1}, "the PBS password, encryption key and master public key"),
    ("external rbd", {"storage": "smb", "type": "rbd", "pool": "vms", "monhost": "10.0.1.1 10.0.1.2", "username": "admin",
                      "content": "images", "shared": 1}, "the Ceph keyring and ceph config"),
    ("hyper-converged rbd", {"storage": "smb", "type": "rbd", "pool": "vms", "content": "images", "shared": 1}, None),
    ("external cephfs", {"storage": "smb", "type": "cephfs", "monhost": "10.0.1.1", "username": "admin", "path": "/mnt/pve/smb",
                         "content": "backup,iso", "shared": 1}, "the CephFS secret"),
    ("nfs", {"storage": "smb", "type": "nfs", "server": "10.0.0.50", "export": "/x", "path": "/mnt/pve/smb", "content": "iso"}, None),
]


@pytest.mark.parametrize(("cfg", "secret"), [pytest.param(*c[1:], id=c[0]) for c in CREDENTIAL_CASES])
async def test_delete_says_which_stored_credentials_no_undo_restores(tmp_path: Path, cfg: dict[str, Any], secret: str | None) -> None:
    plan = await plan_of(tmp_path, cluster(storages={**STORAGES, "smb": cfg}), "storage.delete", {"storage": "smb"})
    assert plan.reversible and plan.undo and plan.undo[0] == proximo_api("POST", "/storage", {k: v for k, v in cfg.items()})
    cred_notes = [n for n in plan.notes if "no undo can restore" in n]
    if secret is None:
        assert cred_notes == []
    else:
        assert cred_notes == [f"Proxmox deletes {secret} it stored for 'smb': no undo can restore them; re-enter them after an undo."]
    assert plan.risk is Risk.MEDIUM


# --- already broken, and the per-volume diff ---------------------------------------------------------------


BROKEN_CASES = [
    ("the storage is already disabled", {**STORAGES, "spare": {**STORAGES["spare"], "disable": 1}},
     vm(100, "pve1", scsi0="spare:100/vm-100-disk-0.qcow2,size=32G"), {"storage": "spare"}),
    ("the guest's node is already off the storage", STORAGES, vm(100, "pve3", scsi0="spare:100/vm-100-disk-0.qcow2,size=32G"),
     {"storage": "spare"}),
    ("the storage already lacks images", {**STORAGES, "spare": {**STORAGES["spare"], "content": "iso"}},
     vm(100, "pve1", scsi0="spare:100/vm-100-disk-0.qcow2,size=32G"), {"storage": "spare"}),
    ("the storage does not exist at all", {k: v for k, v in STORAGES.items() if k != "spare"},
     vm(100, "pve1", scsi0="spare:100/vm-100-disk-0.qcow2,size=32G", scsi1="ceph-vm:vm-100-disk-1,size=8G"), None),
]


@pytest.mark.parametrize(("storages", "guest", "params"), [pytest.param(*c[1:], id=c[0]) for c in BROKEN_CASES])
async def test_a_guest_broken_before_is_not_reported_again(tmp_path: Path, storages: dict[str, Any], guest: dict[str, Any],
                                                           params: dict[str, Any] | None) -> None:
    tool, params = ("storage.delete", params) if params else ("storage.update", {"storage": "ceph-vm", "content": "images"})
    plan = await plan_of(tmp_path, cluster(guest, storages=storages), tool, params)
    assert not plan.blocked
    assert plan.impacts == [] and plan.risk is Risk.MEDIUM


async def test_a_guest_broken_on_one_storage_is_reported_for_the_newly_broken_disk_only(tmp_path: Path) -> None:
    storages = {**STORAGES, "spare": {**STORAGES["spare"], "disable": 1}}
    guest = vm(100, "pve1", scsi0="local-zfs:vm-100-disk-0,size=32G", scsi1="spare:100/vm-100-disk-1.qcow2,size=8G")
    plan = await plan_of(tmp_path, cluster(guest, storages=storages), "storage.delete", {"storage": "local-zfs"})
    assert triples(plan) == [("qemu/100", "wont-boot")]
    reason = impact(plan, "qemu/100").reason
    assert reason.startswith("boot disk scsi0 on local-zfs: storage 'local-zfs' does not exist") and "spare" not in reason
