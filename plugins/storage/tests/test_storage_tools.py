"""The storage tools end to end: api.call equivalence, plan -> approve -> apply -> undo on the simulator, reads, bad input.

Snapshots are written in the real API's shapes (see test_storage_impacts.py for the same conventions).
"""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from proximo import ApiCall, BadInput, Risk
from proximo.errors import Refused
from proximo.model._access import BUILTIN_ROLES
from proximo.testing import World, operator_access, snapshot_from

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


NODES = ("pve1", "pve2", "pve3")
CFG_DIGEST = "3f9a6c1e2b7d4a5c8e0f1a2b3c4d5e6f7a8b9c0d"

STORAGES: dict[str, dict[str, Any]] = {
    "local": {"storage": "local", "type": "dir", "path": "/var/lib/vz", "content": "iso,vztmpl,backup"},
    "local-zfs": {"storage": "local-zfs", "type": "zfspool", "pool": "rpool/data", "sparse": 1, "content": "images,rootdir"},
    "ceph-vm": {"storage": "ceph-vm", "type": "rbd", "pool": "vm-pool", "krbd": 0, "content": "images,rootdir", "shared": 1},
    "nfs-backup": {"storage": "nfs-backup", "type": "nfs", "server": "10.0.0.50", "export": "/srv/backup",
                   "path": "/mnt/pve/nfs-backup", "content": "backup", "prune-backups": "keep-last=7", "shared": 1},
    "cifs-iso": {"storage": "cifs-iso", "type": "cifs", "server": "10.0.0.60", "share": "iso", "username": "isoreader",
                 "path": "/mnt/pve/cifs-iso", "content": "iso", "nodes": "pve1,pve2", "shared": 1},
}

GUESTS: list[dict[str, Any]] = [
    {"kind": "qemu", "vmid": 100, "node": "pve1", "status": "running",
     "config": {"name": "web", "memory": 2048, "cores": 2, "ostype": "l26", "scsihw": "virtio-scsi-single",
                "scsi0": "local-zfs:vm-100-disk-0,iothread=1,size=32G", "ide2": "cifs-iso:iso/debian-12.iso,media=cdrom,size=629M",
                "efidisk0": "local-zfs:vm-100-disk-1,efitype=4m,size=1M", "bios": "ovmf",
                "boot": "order=scsi0;ide2;net0", "net0": "virtio=BC:24:11:5E:00:01,bridge=vmbr0,firewall=1"}},
    {"kind": "qemu", "vmid": 101, "node": "pve2", "status": "stopped",
     "config": {"name": "db", "memory": 8192, "cores": 4, "ostype": "l26", "scsi0": "ceph-vm:vm-101-disk-0,size=64G",
                "unused0": "local-zfs:vm-101-disk-9", "boot": "order=scsi0;net0", "net0": "virtio=BC:24:11:5E:00:02,bridge=vmbr0"}},
    {"kind": "lxc", "vmid": 200, "node": "pve2", "status": "running",
     "config": {"hostname": "proxy", "arch": "amd64", "ostype": "debian", "memory": 512, "swap": 512, "cores": 1,
                "rootfs": "local-zfs:subvol-200-disk-0,size=8G", "mp0": "ceph-vm:vm-200-disk-1,mp=/data,size=10G",
                "net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:5E:01:01,ip=dhcp,type=veth", "unprivileged": 1}},
]

VOLUMES = {  # GET /nodes/{node}/storage/{storage}/content rows
    ("pve1", "local-zfs"): [
        {"volid": "local-zfs:vm-100-disk-0", "content": "images", "format": "raw", "size": 34359738368, "vmid": 100, "used": 4294967296},
        {"volid": "local-zfs:vm-100-disk-1", "content": "images", "format": "raw", "size": 1048576, "vmid": 100, "used": 1048576},
    ],
    ("pve2", "local-zfs"): [
        {"volid": "local-zfs:subvol-200-disk-0", "content": "rootdir", "format": "subvol", "size": 8589934592, "vmid": 200,
         "used": 1073741824},
        {"volid": "local-zfs:vm-101-disk-9", "content": "images", "format": "raw", "size": 1073741824, "vmid": 101, "used": 0},
    ],
    ("pve1", "ceph-vm"): [
        {"volid": "ceph-vm:vm-101-disk-0", "content": "images", "format": "raw", "size": 68719476736, "vmid": 101},
        {"volid": "ceph-vm:vm-200-disk-1", "content": "rootdir", "format": "raw", "size": 10737418240, "vmid": 200},
    ],
    ("pve1", "cifs-iso"): [
        {"volid": "cifs-iso:iso/debian-12.iso", "content": "iso", "format": "iso", "size": 659554304, "ctime": 1714000000},
    ],
}

ACL = [
    *operator_access("PVEAdmin")["/access/acl"],  # Proximo's user and token: storage, pools and their ACLs
    {"path": "/storage/nfs-backup", "type": "group", "ugid": "operators", "roleid": "PVEDatastoreUser", "propagate": 1},
    {"path": "/storage/nfs-backup", "type": "user", "ugid": "bob@pve", "roleid": "PVEDatastoreAdmin", "propagate": 0},
]
POOL = {"poolid": "prod", "comment": "Production", "members": [  # PVE lists a storage member once per node
    *({"id": f"storage/{n}/nfs-backup", "type": "storage", "storage": "nfs-backup", "node": n, "plugintype": "nfs",
       "content": "backup", "shared": 1, "status": "available", "disk": 10737418240, "maxdisk": 107374182400} for n in NODES),
    {"id": "qemu/101", "type": "qemu", "vmid": 101, "node": "pve2", "name": "db", "status": "stopped", "template": 0},
]}


def make_snapshot() -> dict[str, Any]:
    api: dict[str, Any] = {
        "/version": {"version": "8.4.1", "release": "8.4", "repoid": "2a5fa54a8503f96d"},
        "/cluster/status": [{"id": "cluster", "type": "cluster", "name": "lab", "nodes": 3, "quorate": 1, "version": 7}]
        + [{"id": f"node/{n}", "type": "node", "name": n, "nodeid": i + 1, "ip": f"10.0.0.{11 + i}", "online": 1,
            "local": int(i == 0), "level": ""} for i, n in enumerate(NODES)],
        "/nodes": [{"node": n, "id": f"node/{n}", "type": "node", "status": "online", "level": "", "maxcpu": 16,
                    "maxmem": 68719476736, "mem": 8589934592, "cpu": 0.03, "uptime": 864000} for n in NODES],
        "/storage": [{**cfg, "digest": CFG_DIGEST} for _, cfg in sorted(STORAGES.items())],
        "/access/users?full=1": [*operator_access()["/access/users?full=1"],
                                 {"userid": "bob@pve", "enable": 1, "expire": 0, "groups": "operators", "realm-type": "pve", "tokens": None}],
        "/access/groups": [{"groupid": "operators", "users": "bob@pve"}],
        "/access/acl": copy.deepcopy(ACL),
        "/access/roles": [{"roleid": r, "privs": ",".join(sorted(BUILTIN_ROLES[r])), "special": 1}
                          for r in ("Administrator", "PVEAdmin", "PVEDatastoreUser", "PVEDatastoreAdmin")],
        "/pools": [{"poolid": "prod", "comment": "Production"}],
        "/pools?poolid=prod": [copy.deepcopy(POOL)],
        "/cluster/backup": [{"id": "backup-nightly", "type": "vzdump", "enabled": 1, "schedule": "21:00", "storage": "nfs-backup",
                             "all": 1, "mode": "snapshot", "compress": "zstd"}],
        "/cluster/replication": [],
        "/cluster/ha/resources": [],
    }
    resources: list[dict[str, Any]] = [{"id": f"node/{n}", "type": "node", "node": n, "status": "online", "level": "",
                                        "maxcpu": 16, "maxmem": 68719476736, "uptime": 864000} for n in NODES]
    for g in GUESTS:
        resources.append({"id": f"{g['kind']}/{g['vmid']}", "type": g["kind"], "vmid": g["vmid"], "node": g["node"],
                          "name": g["config"].get("name") or g["config"]["hostname"], "status": g["status"], "template": 0,
                          "maxcpu": 2, "maxmem": 2147483648, "maxdisk": 34359738368, "uptime": 3600 if g["status"] == "running" else 0})
        api[f"/nodes/{g['node']}/{g['kind']}/{g['vmid']}/config"] = {**g["config"], "digest": f"{g['vmid']:040x}"}
    for sid, cfg in sorted(STORAGES.items()):
        for n in NODES:
            if cfg.get("nodes") and n not in cfg["nodes"].split(","):
                continue
            resources.append({"id": f"storage/{n}/{sid}", "type": "storage", "storage": sid, "node": n, "status": "available",
                              "plugintype": cfg["type"], "content": cfg["content"], "shared": int(bool(cfg.get("shared"))),
                              "disk": 10737418240, "maxdisk": 107374182400})
    api["/cluster/resources"] = resources
    for (node, sid), rows in VOLUMES.items():
        api[f"/nodes/{node}/storage/{sid}/content"] = copy.deepcopy(rows)
    return snapshot_from(api)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, make_snapshot())


def non_gets(world: World) -> list[tuple[str, str]]:
    return [r for r in world.sim.requests if r[0] != "GET"]


def ledger_kinds(world: World) -> list[str]:
    with sqlite3.connect(world.settings.ledger_path) as db:
        return [row[0] for row in db.execute("SELECT kind FROM records ORDER BY seq")]


def deny_reasons(world: World) -> list[str]:
    with sqlite3.connect(world.settings.ledger_path) as db:
        return [row[0] for row in db.execute("SELECT json_extract(outcome, '$.reason') FROM records WHERE kind = 'deny' ORDER BY seq")]


def ledger_bytes(world: World) -> bytes:
    path = world.settings.ledger_path
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))  # the file, its -wal and -shm


def config_of(world: World, sid: str) -> dict[str, Any]:
    return {k: v for k, v in world.sim.model.storages[sid].items() if k != "digest"}


# --- api.call is the same plan as the named tool --------------------------------------------------------------

EQUIVALENCE = [
    ("delete local zfs", "storage.delete", {"storage": "local-zfs"}, {"method": "DELETE", "path": "/storage/local-zfs"}),
    ("delete with ACLs, pool and a backup job", "storage.delete", {"storage": "nfs-backup"},
     {"method": "DELETE", "path": "/storage/nfs-backup"}),
    ("delete cifs with stored credentials", "storage.delete", {"storage": "cifs-iso"}, {"method": "DELETE", "path": "/storage/cifs-iso"}),
    ("disable", "storage.update", {"storage": "ceph-vm", "disable": 1},
     {"method": "PUT", "path": "/storage/ceph-vm", "params": {"disable": 1}}),
    ("restrict nodes", "storage.update", {"storage": "local-zfs", "nodes": "pve1"},
     {"method": "PUT", "path": "/storage/local-zfs", "params": {"nodes": "pve1"}}),
    ("remove images", "storage.update", {"storage": "local-zfs", "content": "rootdir"},
     {"method": "PUT", "path": "/storage/local-zfs", "params": {"content": "rootdir"}}),
    ("remove a restriction", "storage.update", {"storage": "cifs-iso", "delete": "nodes"},
     {"method": "PUT", "path": "/storage/cifs-iso", "params": {"delete": "nodes"}}),
]


@pytest.mark.parametrize(("tool", "params", "call"), [pytest.param(*c[1:], id=c[0]) for c in EQUIVALENCE])
async def test_api_call_reports_exactly_what_the_storage_tool_reports(world: World, tool: str, params: dict[str, Any],
                                                                      call: dict[str, Any]) -> None:
    async with world.host() as host:
        named = await host.plan(tool, params, world.actor)
        raw = await host.plan("api.call", call, world.actor)
    assert named.impacts == raw.impacts
    assert named.risk is raw.risk
    assert named.undo == raw.undo and named.undo
    assert named.notes == raw.notes
    assert (named.reversible, named.blocked, named.complete) == (raw.reversible, raw.blocked, raw.complete) == (True, False, True)
    assert [(s.method, s.path) for s in named.steps] == [(s.method, s.path) for s in raw.steps] == [(call["method"], call["path"])]
    assert non_gets(world) == []


async def test_the_equivalence_is_not_vacuous(world: World) -> None:
    async with world.host() as host:
        delete = await host.plan("api.call", {"method": "DELETE", "path": "/storage/local-zfs"}, world.actor)
        disable = await host.plan("api.call", {"method": "PUT", "path": "/storage/nfs-backup", "params": {"disable": 1}}, world.actor)
    assert sorted((i.target, i.effect) for i in delete.impacts) == [("lxc/200", "wont-boot"), ("qemu/100", "wont-boot")]
    assert delete.risk is Risk.HIGH
    assert [(i.target, i.effect) for i in disable.impacts] == [("backup/backup-nightly", "backup-fails")]
    assert disable.undo == [ApiCall("PUT", "/storage/nfs-backup", {"delete": "disable"})]


# --- create, update, delete: plan -> approve -> apply -> undo on the simulator ------------------------------------


async def test_create_then_undo(world: World) -> None:
    params = {"storage": "scratch", "type": "dir", "path": "/srv/scratch", "content": "iso,backup", "nodes": "pve1,pve3"}
    async with world.host() as host:
        plan = await host.plan("storage.create", params, world.actor)
        assert plan.risk is Risk.MEDIUM and plan.impacts == [] and not plan.blocked
        assert plan.steps == [ApiCall("POST", "/storage", params)]
        assert plan.undo == [ApiCall("DELETE", "/storage/scratch", {})]
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction, result
        assert config_of(world, "scratch") == params
        digests = {cfg["digest"] for cfg in world.sim.model.storages.values()}
        assert len(digests) == 1 and digests != {CFG_DIGEST}  # one storage.cfg, one new digest
        undo = await host.undo(result.ledger.seq, world.actor)
        assert undo.steps == [ApiCall("DELETE", "/storage/scratch", {})] and undo.risk is Risk.MEDIUM
        assert (await host.apply(undo.plan_id, world.actor)).ok
    assert "scratch" not in world.sim.model.storages
    assert non_gets(world) == [("POST", "/storage"), ("DELETE", "/storage/scratch")]


async def test_a_network_storage_gets_pve_defaults(world: World) -> None:
    async with world.host() as host:
        plan = await host.plan("storage.create", {"storage": "nfs-iso", "type": "nfs", "server": "10.0.0.51", "export": "/srv/iso"},
                               world.actor)
        assert (await host.apply(plan.plan_id, world.actor)).ok
    assert config_of(world, "nfs-iso") == {"storage": "nfs-iso", "type": "nfs", "server": "10.0.0.51", "export": "/srv/iso",
                                           "content": "images", "path": "/mnt/pve/nfs-iso", "shared": 1}


async def test_update_then_undo_restores_old_values_and_deletes_added_keys(world: World) -> None:
    before = config_of(world, "local")
    params = {"storage": "local", "content": "iso,vztmpl,backup,snippets", "prune-backups": "keep-last=2", "nodes": "pve1,pve2"}
    async with world.host() as host:
        plan = await host.plan("storage.update", params, world.actor)
        assert plan.steps == [ApiCall("PUT", "/storage/local", {"content": "iso,vztmpl,backup,snippets", "prune-backups": "keep-last=2",
                                                                 "nodes": "pve1,pve2", "digest": CFG_DIGEST})]
        assert plan.undo == [ApiCall("PUT", "/storage/local", {"content": "iso,vztmpl,backup", "delete": "nodes,prune-backups"})]
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction
        assert config_of(world, "local") == {**before, "content": "iso,vztmpl,backup,snippets", "prune-backups": "keep-last=2",
                                             "nodes": "pve1,pve2"}
        undo = await host.undo(result.ledger.seq, world.actor)
        assert (await host.apply(undo.plan_id, world.actor)).ok
    assert config_of(world, "local") == before


async def test_update_with_delete_then_undo_puts_the_deleted_key_back(world: World) -> None:
    before = config_of(world, "cifs-iso")
    async with world.host() as host:
        plan = await host.plan("storage.update", {"storage": "cifs-iso", "delete": "nodes"}, world.actor)
        assert plan.undo == [ApiCall("PUT", "/storage/cifs-iso", {"nodes": "pve1,pve2"})]
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and "nodes" not in world.sim.model.storages["cifs-iso"]
        undo = await host.undo(result.ledger.seq, world.actor)
        assert (await host.apply(undo.plan_id, world.actor)).ok
    assert config_of(world, "cifs-iso") == before


async def test_delete_needs_a_person_then_undo_recreates_it_with_acls_and_pool_membership(world: World) -> None:
    before_cfg = config_of(world, "nfs-backup")
    before_acl = [a for a in world.sim.model.acl if a["path"] == "/storage/nfs-backup"]
    members = lambda: sorted(m["id"] for m in world.sim.model.pools["prod"]["members"])  # noqa: E731
    before_members = members()
    async with world.host() as host:
        plan = await host.plan("storage.delete", {"storage": "nfs-backup"}, world.actor)
        assert plan.risk is Risk.HIGH and [i.target for i in plan.impacts if i.effect != "privilege-loss"] == ["backup/backup-nightly"]
        # the ACL entries and pool membership that go with the storage are impacts on their subjects, at MEDIUM
        dropped = [i for i in plan.impacts if i.effect == "privilege-loss"]
        assert dropped and all(i.floor() is Risk.MEDIUM and "nfs-backup" in i.reason for i in dropped)
        with pytest.raises(Refused, match="a person must approve it"):
            await host.apply(plan.plan_id, world.actor)
        assert non_gets(world) == []
        host.approve(plan.plan_id, world.actor, world.person)
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction, result.mismatches
        assert "nfs-backup" not in world.sim.model.storages
        assert [a for a in world.sim.model.acl if a["path"].startswith("/storage/nfs-backup")] == []
        assert members() == ["qemu/101"]
        undo = await host.undo(result.ledger.seq, world.actor)
        assert undo.steps == [
            ApiCall("POST", "/storage", {"storage": "nfs-backup", "type": "nfs", "server": "10.0.0.50", "export": "/srv/backup",
                                         "path": "/mnt/pve/nfs-backup", "content": "backup", "prune-backups": "keep-last=7", "shared": 1}),
            ApiCall("PUT", "/access/acl", {"path": "/storage/nfs-backup", "roles": "PVEDatastoreUser", "groups": "operators", "propagate": 1}),
            ApiCall("PUT", "/access/acl", {"path": "/storage/nfs-backup", "roles": "PVEDatastoreAdmin", "users": "bob@pve", "propagate": 0}),
            ApiCall("PUT", "/pools", {"poolid": "prod", "storage": "nfs-backup"}),
        ]
        assert undo.impacts == [] and undo.risk is Risk.MEDIUM
        undone = await host.apply(undo.plan_id, world.actor)
        assert undone.ok and undone.matches_prediction, undone.mismatches
    assert config_of(world, "nfs-backup") == before_cfg
    assert sorted(map(str, (a for a in world.sim.model.acl if a["path"] == "/storage/nfs-backup"))) == sorted(map(str, before_acl))
    assert members() == before_members


async def test_delete_keeps_the_volumes(world: World) -> None:
    async with world.host() as host:
        plan = await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
        assert not [i for i in plan.impacts if i.effect == "data-loss"]
        host.approve(plan.plan_id, world.actor, world.person)
        assert (await host.apply(plan.plan_id, world.actor)).ok
        assert "local-zfs" not in world.sim.model.storages
        assert sorted(world.sim.model.volumes["local-zfs"]["pve1"]) == ["local-zfs:vm-100-disk-0", "local-zfs:vm-100-disk-1"]
        undo = await host.undo(host.ledger.head().seq, world.actor)
        assert undo.steps == [ApiCall("POST", "/storage", {"storage": "local-zfs", "type": "zfspool", "pool": "rpool/data", "sparse": 1,
                                                           "content": "images,rootdir"})]
        assert (await host.apply(undo.plan_id, world.actor)).ok
        listed = await host.read("storage.content", {"storage": "local-zfs", "node": "pve2"}, world.actor)
    assert [r["volid"] for r in listed.data] == ["local-zfs:subvol-200-disk-0", "local-zfs:vm-101-disk-9"]


# --- PVE's refusals ---------------------------------------------------------------------------------------------


async def test_a_stale_digest_is_refused_as_proxmox_refuses_it(world: World) -> None:
    stale = "0" * 40
    async with world.host() as host:
        plan = await host.plan("storage.update", {"storage": "local", "content": "iso", "digest": stale}, world.actor)
        assert plan.blocked
        assert plan.blockers == ["PUT /storage/local: Proxmox would refuse: detected modified configuration - "
                                 "file changed by other user? Try again."]
        with pytest.raises(Refused, match="detected modified configuration"):
            await host.apply(plan.plan_id, world.actor)
    assert non_gets(world) == []
    assert config_of(world, "local")["content"] == "iso,vztmpl,backup"


async def test_the_simulator_refuses_a_stale_digest_with_pves_message(world: World) -> None:
    import httpx

    async with httpx.AsyncClient(transport=world.transport(), base_url="http://pve.sim:8006/api2/json",
                                 headers={"Authorization": f"PVEAPIToken={world.settings.token_id}={world.secret}"}) as http:
        r = await http.put("/storage/local", data={"content": "iso", "digest": "0" * 40})
        ok = await http.put("/storage/local", data={"content": "iso", "digest": CFG_DIGEST})
    assert r.status_code == 500 and r.json()["message"] == "detected modified configuration - file changed by other user? Try again.\n"
    assert ok.status_code == 200 and world.sim.model.storages["local"]["content"] == "iso"


async def test_a_change_made_after_planning_makes_the_plan_stale(world: World) -> None:
    async with world.host() as host:
        plan = await host.plan("storage.update", {"storage": "local", "content": "iso"}, world.actor)
        assert plan.steps[0].params["digest"] == CFG_DIGEST  # Proxmox itself would refuse a concurrent edit
        world.sim.semantics.execute(world.sim.model, "PUT", "/storage/cifs-iso", {"nodes": "pve1"})  # someone else, meanwhile
        with pytest.raises(Refused, match="stale"):
            await host.apply(plan.plan_id, world.actor)
    assert non_gets(world) == [] and config_of(world, "local")["content"] == "iso,vztmpl,backup"


async def test_create_of_an_existing_id(world: World) -> None:
    async with world.host() as host:
        with pytest.raises(BadInput, match="storage 'local' already exists"):
            await host.plan("storage.create", {"storage": "local", "type": "dir", "path": "/srv/x"}, world.actor)
        raw = await host.plan("api.call", {"method": "POST", "path": "/storage", "params": {"storage": "local", "type": "dir",
                                                                                          "path": "/srv/x"}}, world.actor)
    assert raw.blocked and raw.blockers == ["POST /storage: Proxmox would refuse: create storage failed: storage ID 'local' already defined"]
    assert non_gets(world) == [] and config_of(world, "local")["path"] == "/var/lib/vz"
    assert deny_reasons(world) == ["storage 'local' already exists"]


REQUIRED = [
    ("dir", {}, "path"),
    ("nfs", {"server": "10.0.0.50"}, "export"),
    ("cifs", {"server": "10.0.0.60"}, "share"),
    ("zfspool", {}, "pool"),
    ("lvmthin", {"vgname": "pve"}, "thinpool"),
    ("lvm", {}, "vgname"),
    ("pbs", {"server": "10.0.0.70"}, "datastore"),
]


@pytest.mark.parametrize(("kind", "given", "missing"), REQUIRED, ids=[r[0] for r in REQUIRED])
async def test_required_options_per_type(world: World, kind: str, given: dict[str, Any], missing: str) -> None:
    async with world.host() as host:
        with pytest.raises(BadInput) as err:
            await host.plan("storage.create", {"storage": "new", "type": kind, **given}, world.actor)
    message = str(err.value)
    assert f"missing value for required option '{missing}'" in message and "\n" not in message
    assert "new" not in world.sim.model.storages and non_gets(world) == []
    assert len(deny_reasons(world)) == 1


# --- secrets ------------------------------------------------------------------------------------------------------

PASSWORD = "S3cr3t-Hunter2-Pa55"


async def test_passwords_are_never_in_the_config_nor_in_the_ledger(world: World) -> None:
    params = {"storage": "smb", "type": "cifs", "server": "10.0.0.61", "share": "vm", "username": "svc", "password": PASSWORD,
              "domain": "LAB", "content": "images"}
    async with world.host() as host:
        plan = await host.plan("storage.create", params, world.actor)
        assert plan.undo == [ApiCall("DELETE", "/storage/smb", {})]
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction
        assert PASSWORD not in repr(result)
        update = await host.plan("storage.update", {"storage": "smb", "password": PASSWORD + "-new"}, world.actor)
        assert update.undo is None or all("password" not in s.params for s in update.undo)  # nothing PVE can give back
        assert (await host.apply(update.plan_id, world.actor)).ok
        delete = await host.plan("storage.delete", {"storage": "smb"}, world.actor)
        assert any("the CIFS credentials file" in n and "no undo can restore" in n for n in delete.notes)
        assert all("password" not in s.params for s in delete.undo or [])
    cfg = world.sim.model.storages["smb"]
    assert "password" not in cfg and PASSWORD not in repr(cfg)
    assert cfg["username"] == "svc"
    data = ledger_bytes(world)
    assert data and PASSWORD.encode() not in data
    assert b"***redacted***" in data


# --- reads ----------------------------------------------------------------------------------------------------------


async def test_storage_list_says_where_each_storage_is_available(world: World) -> None:
    async with world.host() as host:
        rows = (await host.read("storage.list", {}, world.actor)).data
        nfs = (await host.read("storage.list", {"type": "nfs"}, world.actor)).data
    by_id = {r["storage"]: r for r in rows}
    assert sorted(by_id) == sorted(STORAGES)
    assert by_id["cifs-iso"]["available_on"] == ["pve1", "pve2"]
    assert by_id["local-zfs"]["available_on"] == ["pve1", "pve2", "pve3"]
    assert {k: v for k, v in by_id["ceph-vm"].items() if k not in ("digest", "available_on")} == STORAGES["ceph-vm"]
    assert by_id["ceph-vm"]["digest"] == CFG_DIGEST
    assert [r["storage"] for r in nfs] == ["nfs-backup"]
    assert non_gets(world) == []


async def test_storage_status(world: World) -> None:
    async with world.host() as host:
        rows = (await host.read("storage.status", {"storage": "cifs-iso"}, world.actor)).data
        off = (await host.read("storage.status", {"storage": "cifs-iso", "node": "pve3"}, world.actor)).data
    assert [(r["node"], r["active"], r["enabled"], r["type"]) for r in rows] == [("pve1", 1, 1, "cifs"), ("pve2", 1, 1, "cifs")]
    assert off == [{"node": "pve3", "storage": "cifs-iso", "active": 0, "enabled": 0,
                    "problem": "storage 'cifs-iso' is not available on node 'pve3'"}]


async def test_storage_content_local_needs_a_node_shared_does_not(world: World) -> None:
    async with world.host() as host:
        with pytest.raises(BadInput, match=r"local to each node: name one with node= \(pve1, pve2, pve3\)"):
            await host.read("storage.content", {"storage": "local-zfs"}, world.actor)
        pve1 = (await host.read("storage.content", {"storage": "local-zfs", "node": "pve1"}, world.actor)).data
        vm101 = (await host.read("storage.content", {"storage": "local-zfs", "node": "pve2", "vmid": 101}, world.actor)).data
        shared = (await host.read("storage.content", {"storage": "ceph-vm"}, world.actor)).data
        rootdir = (await host.read("storage.content", {"storage": "ceph-vm", "content": "rootdir"}, world.actor)).data
        iso = (await host.read("storage.content", {"storage": "cifs-iso", "node": "pve2"}, world.actor)).data
        with pytest.raises(BadInput, match="storage 'cifs-iso' is not available on node 'pve3'"):
            await host.read("storage.content", {"storage": "cifs-iso", "node": "pve3"}, world.actor)
    assert [r["volid"] for r in pve1] == ["local-zfs:vm-100-disk-0", "local-zfs:vm-100-disk-1"]
    assert [r["volid"] for r in vm101] == ["local-zfs:vm-101-disk-9"]
    assert [r["volid"] for r in shared] == ["ceph-vm:vm-101-disk-0", "ceph-vm:vm-200-disk-1"]
    assert [r["volid"] for r in rootdir] == ["ceph-vm:vm-200-disk-1"]
    assert [r["volid"] for r in iso] == ["cifs-iso:iso/debian-12.iso"]
    assert non_gets(world) == []


HOSTILE = ["..", "a/b", "%2e%2e", "１２３", "local\nzfs", "x" * 5000, "local-zfs/../local", "", "-local", "local zfs"]
HOSTILE_IDS = ["dotdot", "slash", "percent", "fullwidth-digits", "newline", "5000-chars", "traversal", "empty", "dash", "space"]
CALLS = [
    ("storage.status", lambda sid: {"storage": sid}),
    ("storage.content", lambda sid: {"storage": sid, "node": "pve1"}),
    ("storage.delete", lambda sid: {"storage": sid}),
    ("storage.update", lambda sid: {"storage": sid, "disable": 1}),
    ("storage.create", lambda sid: {"storage": sid, "type": "dir", "path": "/srv/x"}),
]


@pytest.mark.parametrize("sid", HOSTILE, ids=HOSTILE_IDS)
@pytest.mark.parametrize(("tool", "make"), CALLS, ids=[c[0] for c in CALLS])
async def test_hostile_storage_ids_are_bad_input_with_a_deny_record_and_nothing_sent(world: World, tool: str, make: Any,
                                                                                    sid: str) -> None:
    async with world.host() as host:
        with pytest.raises(BadInput) as err:
            if tool in ("storage.status", "storage.content"):
                await host.read(tool, make(sid), world.actor)
            else:
                await host.plan(tool, make(sid), world.actor)
    message = str(err.value)
    assert message and "\n" not in message and len(message) < 400
    assert len(deny_reasons(world)) == 1 and ledger_kinds(world) == ["deny"]
    assert non_gets(world) == []
    assert sorted(world.sim.model.storages) == sorted(STORAGES)


@pytest.mark.parametrize(("tool", "params"), [
    ("storage.status", {"storage": "nope"}),
    ("storage.content", {"storage": "nope", "node": "pve1"}),
    ("storage.delete", {"storage": "nope"}),
    ("storage.update", {"storage": "nope", "disable": 1}),
    ("storage.status", {"storage": "local", "node": "pve9"}),
    ("storage.content", {"storage": "local", "node": "pve9"}),
], ids=["status", "content", "delete", "update", "status-unknown-node", "content-unknown-node"])
async def test_unknown_storage_or_node(world: World, tool: str, params: dict[str, Any]) -> None:
    async with world.host() as host:
        with pytest.raises(BadInput) as err:
            if tool.startswith("storage.s") or tool == "storage.content":
                await host.read(tool, params, world.actor)
            else:
                await host.plan(tool, params, world.actor)
    message = str(err.value)
    assert "\n" not in message and ("storage 'nope' does not exist" in message or "node 'pve9' does not exist" in message)
    assert deny_reasons(world) == [message]
    assert non_gets(world) == []


@pytest.mark.parametrize("path", ["/storage/..", "/storage/%2e%2e", "/storage/a/b", "/storage/local/../local-zfs"])
async def test_hostile_api_call_paths_send_nothing(world: World, path: str) -> None:
    async with world.host() as host:
        try:
            plan = await host.plan("api.call", {"method": "DELETE", "path": path}, world.actor)
        except BadInput as exc:
            assert "\n" not in str(exc)
            assert ledger_kinds(world) == ["deny"]
        else:
            assert plan.blocked, plan
            with pytest.raises(Refused):
                await host.apply(plan.plan_id, world.actor)
    assert non_gets(world) == []
    assert sorted(world.sim.model.storages) == sorted(STORAGES)


@pytest.mark.parametrize(("method", "params"), [("DELETE", {}), ("PUT", {"disable": 1})])
async def test_api_call_on_an_unknown_storage_is_blocked_with_pves_message(world: World, method: str, params: dict[str, Any]) -> None:
    async with world.host() as host:
        plan = await host.plan("api.call", {"method": method, "path": "/storage/nope", "params": params}, world.actor)
        # Config.pm update/delete look it up inside lock_storage_config(..., "update storage failed" / "delete storage failed")
        verb = "delete" if method == "DELETE" else "update"
        assert plan.blocked and plan.blockers == [f"{method} /storage/nope: Proxmox would refuse: {verb} storage failed: storage 'nope' does not exist"]
        assert plan.undo is None and plan.impacts == []
        with pytest.raises(Refused, match="is blocked"):
            await host.apply(plan.plan_id, world.actor)
    assert non_gets(world) == []


async def test_a_storage_that_is_the_base_of_another_cannot_be_deleted(tmp_path: Path) -> None:
    snap = make_snapshot()
    snap["api"]["/storage"] += [
        {"storage": "san", "type": "iscsi", "portal": "10.0.0.80", "target": "iqn.2003-01.org.linux-iscsi.san:vm", "content": "none",
         "digest": CFG_DIGEST},
        {"storage": "san-lvm", "type": "lvm", "vgname": "san-vg", "base": "san:0.0.0.scsi-36001405a1b2c3d4e5f60718293a4b5c6",
         "content": "images,rootdir", "shared": 1, "saferemove": 0, "digest": CFG_DIGEST},
    ]
    world = World(tmp_path, snap)
    async with world.host() as host:
        plan = await host.plan("storage.delete", {"storage": "san"}, world.actor)
        assert plan.blocked and plan.blockers == [
            "DELETE /storage/san: Proxmox would refuse: can't remove storage - storage is used as base of another storage"]
        with pytest.raises(Refused):
            await host.apply(plan.plan_id, world.actor)
    assert "san" in world.sim.model.storages and non_gets(world) == []
