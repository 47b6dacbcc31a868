"""Replication jobs on a simulated cluster: Proxmox's rules for create, update, delete and schedule_now, the blast
radius of each (replicas a removal deletes, jobs made to fail, guests left unreplicated), undo, and api.call getting
the same plan as the named tools, on PVE 8.4 and 9.1.

The cluster is written in the real API's shapes: /cluster/replication rows as ReplicationConfig.pm's index lists
them (guest, jobnum, id, type, target, source, schedule...), /nodes/{node}/replication as API2/Replication.pm status
answers (the job's config plus last_sync, last_try, next_sync, fail_count, duration), storage content rows as
GET /nodes/{node}/storage/{storage}/content answers them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from proximo import ApiCall, BadInput, Risk
from proximo.errors import Refused
from proximo.model import ClusterModel, load_snapshot
from proximo.model._access import BUILTIN_ROLES
from proximo.testing import World, operator_access, snapshot_from
from proximo_migration import _replication

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


NODES = ("pve1", "pve2", "pve3")
GiB = 1 << 30

STORAGES: list[dict[str, Any]] = [
    {"storage": "local", "type": "dir", "path": "/var/lib/vz", "content": "iso,vztmpl,backup"},
    {"storage": "local-zfs", "type": "zfspool", "pool": "rpool/data", "sparse": 1, "content": "images,rootdir"},
    {"storage": "local-lvm", "type": "lvmthin", "vgname": "pve", "thinpool": "data", "content": "images,rootdir"},
    {"storage": "tank", "type": "zfspool", "pool": "tank/vm", "content": "images", "nodes": "pve1,pve2"},
    {"storage": "ceph-vm", "type": "rbd", "pool": "vm", "content": "images,rootdir", "shared": 1},
]

GUESTS: list[dict[str, Any]] = [
    {"kind": "qemu", "vmid": 100, "node": "pve1", "status": "running", "config": {
        "name": "web", "memory": 4096, "cores": 2, "ostype": "l26", "bios": "ovmf", "scsihw": "virtio-scsi-single",
        "scsi0": "local-zfs:vm-100-disk-0,iothread=1,size=32G", "efidisk0": "local-zfs:vm-100-disk-1,efitype=4m,size=1M",
        "ide2": "local:iso/debian-12.iso,media=cdrom,size=629M", "boot": "order=scsi0;ide2;net0",
        "net0": "virtio=BC:24:11:5E:00:01,bridge=vmbr0"}},
    {"kind": "qemu", "vmid": 101, "node": "pve1", "status": "stopped", "config": {
        "name": "db", "memory": 8192, "scsi0": "ceph-vm:vm-101-disk-0,size=64G", "net0": "virtio=BC:24:11:5E:00:02,bridge=vmbr0"}},
    {"kind": "qemu", "vmid": 102, "node": "pve1", "status": "stopped", "config": {
        "name": "mixed", "memory": 2048, "scsi0": "local-zfs:vm-102-disk-0,size=8G", "scsi1": "local-lvm:vm-102-disk-1,size=16G",
        "net0": "virtio=BC:24:11:5E:00:03,bridge=vmbr0"}},
    {"kind": "qemu", "vmid": 103, "node": "pve1", "status": "stopped", "config": {
        "name": "tanked", "memory": 2048, "scsi0": "tank:vm-103-disk-0,size=10G", "net0": "virtio=BC:24:11:5E:00:04,bridge=vmbr0"}},
    {"kind": "lxc", "vmid": 200, "node": "pve2", "status": "running", "config": {
        "hostname": "proxy", "arch": "amd64", "ostype": "debian", "memory": 512, "swap": 512, "cores": 1, "unprivileged": 1,
        "rootfs": "local-zfs:subvol-200-disk-0,size=8G", "net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:5E:01:01,ip=dhcp,type=veth"}},
]

JOBS = [  # GET /cluster/replication
    {"id": "100-0", "type": "local", "guest": 100, "jobnum": 0, "target": "pve2", "source": "pve1", "schedule": "*/15"},
    {"id": "200-0", "type": "local", "guest": 200, "jobnum": 0, "target": "pve3", "source": "pve2", "schedule": "*/30",
     "rate": 10, "comment": "proxy copy"},
]


def _image(volid: str, vmid: int, size: int, content: str = "images", fmt: str = "raw") -> dict[str, Any]:
    return {"volid": volid, "content": content, "format": fmt, "size": size, "vmid": vmid, "used": size // 4}


VOLUMES = {  # GET /nodes/{node}/storage/{storage}/content
    ("pve1", "local-zfs"): [_image("local-zfs:vm-100-disk-0", 100, 32 * GiB), _image("local-zfs:vm-100-disk-1", 100, 1 << 20),
                            _image("local-zfs:vm-102-disk-0", 102, 8 * GiB)],
    ("pve2", "local-zfs"): [_image("local-zfs:vm-100-disk-0", 100, 32 * GiB), _image("local-zfs:vm-100-disk-1", 100, 1 << 20),
                            _image("local-zfs:subvol-200-disk-0", 200, 8 * GiB, "rootdir", "subvol")],
    ("pve3", "local-zfs"): [_image("local-zfs:subvol-200-disk-0", 200, 8 * GiB, "rootdir", "subvol")],
    ("pve2", "local"): [{"volid": "local:backup/vzdump-qemu-100-2026_11_27-21_00_02.vma.zst", "content": "backup", "format": "vma.zst",
                         "size": 2 * GiB, "vmid": 100, "ctime": 1764273602}],
    ("pve1", "local-lvm"): [_image("local-lvm:vm-102-disk-1", 102, 16 * GiB)],
    ("pve1", "tank"): [_image("tank:vm-103-disk-0", 103, 10 * GiB)],
}

STATE_PVE1 = [  # GET /nodes/pve1/replication: the job's config and its state on the guest's node
    {"id": "100-0", "guest": 100, "jobnum": 0, "type": "local", "target": "pve2", "source": "pve1", "schedule": "*/15",
     "vmtype": "qemu", "last_sync": 1764280800, "last_try": 1764280800, "next_sync": 1764281700, "duration": 3.41, "fail_count": 0},
]


def make_snapshot(version: str = "9.1.2") -> dict[str, Any]:
    access = operator_access()
    api: dict[str, Any] = {
        "/version": {"version": version, "release": version.rsplit(".", 1)[0], "repoid": "6a3e57f2"},
        "/cluster/status": [{"id": "cluster", "type": "cluster", "name": "lab", "nodes": 3, "quorate": 1, "version": 5}]
        + [{"id": f"node/{n}", "type": "node", "name": n, "nodeid": i + 1, "ip": f"10.0.0.{11 + i}", "online": 1,
            "local": int(i == 0), "level": ""} for i, n in enumerate(NODES)],
        "/nodes": [{"node": n, "id": f"node/{n}", "type": "node", "status": "online", "level": "", "maxcpu": 16,
                    "maxmem": 68719476736, "mem": 8589934592, "cpu": 0.03, "uptime": 864000} for n in NODES],
        "/storage": [{**cfg, "digest": "9c1e0b7f3a2d4c5e6f708192a3b4c5d6e7f80912"} for cfg in STORAGES],
        "/cluster/replication": copy.deepcopy(JOBS),
        "/cluster/backup": [],
        "/cluster/ha/resources": [{"sid": "vm:100", "type": "vm", "state": "started", "max_restart": 1, "max_relocate": 1,
                                   "digest": "e6ed97582db58e72af5c40dee8d05df0122fec53"}],
        "/access/users?full=1": access["/access/users?full=1"],
        "/access/acl": access["/access/acl"],
        "/access/roles": [{"roleid": r, "privs": ",".join(sorted(BUILTIN_ROLES[r])), "special": 1} for r in ("Administrator", "PVEAuditor")],
        "/nodes/pve1/replication": copy.deepcopy(STATE_PVE1),
    }
    resources: list[dict[str, Any]] = [{"id": f"node/{n}", "type": "node", "node": n, "status": "online", "level": "",
                                        "maxcpu": 16, "maxmem": 68719476736, "uptime": 864000} for n in NODES]
    for g in GUESTS:
        resources.append({"id": f"{g['kind']}/{g['vmid']}", "type": g["kind"], "vmid": g["vmid"], "node": g["node"],
                          "name": g["config"].get("name") or g["config"]["hostname"], "status": g["status"], "template": 0,
                          "maxcpu": 2, "maxmem": 4294967296, "maxdisk": 34359738368})
        api[f"/nodes/{g['node']}/{g['kind']}/{g['vmid']}/config"] = {**g["config"], "digest": f"{g['vmid']:040x}"}
    api["/cluster/resources"] = resources
    for (node, sid), rows in VOLUMES.items():
        api[f"/nodes/{node}/storage/{sid}/content"] = copy.deepcopy(rows)
    for node in NODES:  # every zfspool storage's content on every node it is on, so replicas can be named
        for cfg in STORAGES:
            if cfg["type"] == "zfspool" and node in cfg.get("nodes", node):
                api.setdefault(f"/nodes/{node}/storage/{cfg['storage']}/content", [])
    return snapshot_from(api)


@pytest.fixture(params=["8.4.1", "9.1.2"], ids=["pve8.4", "pve9.1"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> World:
    return World(tmp_path, make_snapshot(request.param))


def non_gets(world: World) -> list[tuple[str, str]]:
    return [r for r in world.sim.requests if r[0] != "GET"]


def job(world: World, jid: str) -> dict[str, Any] | None:
    return _replication.find_job(world.sim.model, jid)


def effects(plan: Any) -> list[tuple[str, str]]:
    return sorted((i.target, i.effect) for i in plan.impacts)


# --- api.call is the same plan as the named tool ----------------------------------------------------------------

EQUIVALENCE = [
    ("delete: the replicas go", "replication.delete", {"id": "100-0"}, ("DELETE", "/cluster/replication/100-0", {})),
    ("delete, keep the replicas", "replication.delete", {"id": "100-0", "keep": 1}, ("DELETE", "/cluster/replication/100-0", {"keep": 1})),
    ("delete at once, no cleanup", "replication.delete", {"id": "200-0", "force": 1}, ("DELETE", "/cluster/replication/200-0", {"force": 1})),
    ("disable", "replication.update", {"id": "100-0", "disable": 1}, ("PUT", "/cluster/replication/100-0", {"disable": 1})),
    ("reschedule", "replication.update", {"id": "200-0", "schedule": "*/5", "delete": "rate"},
     ("PUT", "/cluster/replication/200-0", {"schedule": "*/5", "delete": "rate"})),
    ("create", "replication.create", {"id": "100-1", "target": "pve3", "rate": 50},
     ("POST", "/cluster/replication", {"id": "100-1", "type": "local", "target": "pve3", "rate": 50})),
    ("create where the first run fails", "replication.create", {"id": "103-0", "target": "pve3"},
     ("POST", "/cluster/replication", {"id": "103-0", "type": "local", "target": "pve3"})),
    ("schedule now", "replication.schedule_now", {"id": "100-0"}, ("POST", "/nodes/pve1/replication/100-0/schedule_now", {})),
]


@pytest.mark.parametrize(("tool", "params", "call"), [pytest.param(*c[1:], id=c[0]) for c in EQUIVALENCE])
async def test_api_call_reports_exactly_what_the_replication_tool_reports(world: World, tool: str, params: dict[str, Any],
                                                                          call: tuple[str, str, dict[str, Any]]) -> None:
    method, path, call_params = call
    async with world.host() as host:
        named = await host.plan(tool, params, world.actor)
        raw = await host.plan("api.call", {"method": method, "path": path, "params": call_params}, world.actor)
    assert named.impacts == raw.impacts
    assert (named.risk, named.undo, named.undo_note, named.notes, named.blockers) == (raw.risk, raw.undo, raw.undo_note, raw.notes, raw.blockers)
    assert named.steps == raw.steps == [ApiCall(method, path, call_params)]
    assert not named.blocked
    assert non_gets(world) == []


async def test_a_delete_names_the_replicas_its_run_deletes_and_cannot_be_undone(world: World) -> None:
    async with world.host() as host:
        plan = await host.plan("replication.delete", {"id": "100-0"}, world.actor)
    assert plan.risk is Risk.CRITICAL and plan.target == "100-0"
    assert effects(plan) == [("qemu/100", "degraded"), ("volume/local-zfs:vm-100-disk-0", "data-loss"),
                             ("volume/local-zfs:vm-100-disk-1", "data-loss")]
    lost = [i.reason for i in plan.impacts if i.effect == "data-loss"]
    assert all("replica of qemu/100 on pve2" in r and "marked for removal" in r for r in lost)
    # a backup file of the guest on the target's dir storage is no replica
    assert not any("vzdump" in r for r in lost)
    degraded = next(i for i in plan.impacts if i.effect == "degraded")
    assert degraded.floor() is Risk.HIGH and "HA recovers it" in degraded.reason  # vm:100 is HA-managed
    assert plan.undo is None and "no undo can bring them back" in plan.undo_note and "(local-zfs:vm-100-disk-0, " in plan.undo_note


async def test_keep_leaves_the_replicas_and_says_a_new_job_needs_them_gone(world: World) -> None:
    async with world.host() as host:
        plan = await host.plan("replication.delete", {"id": "100-0", "keep": 1}, world.actor)
        assert effects(plan) == [("qemu/100", "degraded")]
        assert plan.notes == ["keep=1: the job's next run removes only the local replication snapshots; the replicas on pve2 stay "
                              "there, unmanaged."]
        assert "'No common base snapshot'" in plan.undo_note and plan.undo is None
        host.approve(plan.plan_id, world.actor, world.person)
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction
        with pytest.raises(Refused, match="has no undo"):
            await host.undo(result.ledger.seq, world.actor)
    assert job(world, "100-0") == {**JOBS[0], "remove_job": "local"}


async def test_a_forced_delete_is_undone_by_recreating_the_job(world: World) -> None:
    async with world.host() as host:
        plan = await host.plan("replication.delete", {"id": "200-0", "force": 1}, world.actor)
        # the storage pack's rule for a job removed outright, on the same replicas: they stay
        assert [i.reason for i in plan.impacts if i.target == "replication/200-0"] == [
            "replication job 200-0 (pve2 -> pve3) is removed; its replica on pve3 (local-zfs:subvol-200-disk-0) stays there: "
            "no job removes it now"]
        assert not [i for i in plan.impacts if i.effect == "data-loss"]
        assert effects(plan) == [("lxc/200", "degraded"), ("replication/200-0", "replication-fails")]
        assert plan.undo == [ApiCall("POST", "/cluster/replication", {"id": "200-0", "type": "local", "target": "pve3",
                                                                      "schedule": "*/30", "rate": 10, "comment": "proxy copy"})]
        host.approve(plan.plan_id, world.actor, world.person)
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction and job(world, "200-0") is None
        undo = await host.undo(result.ledger.seq, world.actor)
        assert not undo.blocked and undo.impacts == []
        assert (await host.apply(undo.plan_id, world.actor)).ok
    assert job(world, "200-0") == JOBS[1]
    assert non_gets(world) == [("DELETE", "/cluster/replication/200-0"), ("POST", "/cluster/replication")]


async def test_a_marked_job_that_is_then_forced_keeps_its_replicas(world: World) -> None:
    """force on a job marked for removal cancels the cleanup: the storage pack says the replicas stay, and nothing
    says they are deleted."""
    world.packs.semantics.execute(world.model, "DELETE", "/cluster/replication/100-0")
    async with world.host() as host:
        plan = await host.plan("replication.delete", {"id": "100-0", "force": 1}, world.actor)
    assert effects(plan) == [("replication/100-0", "replication-fails")]  # 100 had no working job left to lose
    assert "stay there" in plan.impacts[0].reason
    assert plan.undo == [ApiCall("POST", "/cluster/replication", {"id": "100-0", "type": "local", "target": "pve2",
                                                                  "schedule": "*/15", "remove_job": "full"})]


# --- create -----------------------------------------------------------------------------------------------------


async def test_create_then_undo(world: World) -> None:
    async with world.host() as host:
        plan = await host.plan("replication.create", {"id": "100-1", "target": "pve3", "schedule": "*/30", "comment": "dr"}, world.actor)
        assert plan.risk is Risk.MEDIUM and plan.impacts == [] and not plan.blocked
        assert plan.notes[0] == ("The job's first run (schedule */30) copies 2 volumes of qemu/100 in full to pve3 (32.0 GiB as "
                                 "the config records it); later runs send only what changed.")
        assert "Proximo does not check the format of schedule (pve-calendar-event)" in plan.notes[1]
        assert plan.undo == [ApiCall("DELETE", "/cluster/replication/100-1", {})]
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction
        assert job(world, "100-1") == {"id": "100-1", "type": "local", "guest": 100, "jobnum": 1, "target": "pve3",
                                       "schedule": "*/30", "comment": "dr", "source": "pve1"}
        listed = await host.read("replication.list", {"guest": 100}, world.actor)
        assert [r["id"] for r in listed.data] == ["100-0", "100-1"]
        undo = await host.undo(result.ledger.seq, world.actor)
        assert undo.steps == [ApiCall("DELETE", "/cluster/replication/100-1", {})] and undo.impacts == []
        assert (await host.apply(undo.plan_id, world.actor)).ok
    assert job(world, "100-1")["remove_job"] == "full"  # type: ignore[index]  # marked: pvesr's next run removes it


async def test_a_new_job_whose_storage_is_not_on_the_target_fails_its_first_run(world: World) -> None:
    async with world.host() as host:
        plan = await host.plan("replication.create", {"id": "103-0", "target": "pve3"}, world.actor)
    assert not plan.blocked  # Proxmox checks the target's storages only when the job runs
    assert [(i.target, i.effect, i.reason) for i in plan.impacts] == [
        ("replication/103-0", "replication-fails",
         "replication job 103-0 (pve1 -> pve3): its first run fails: scsi0 on tank: storage 'tank' is not available on node 'pve3'")]


@pytest.mark.parametrize(("params", "message"), [
    ({"id": "102-0", "target": "pve2"}, "missing replicate feature on volume 'local-lvm:vm-102-disk-1'"),
    ({"id": "101-0", "target": "pve2"}, "No replicatable volumes found"),
    ({"id": "999-0", "target": "pve2"}, "Guest '999' does not exist."),
    ({"id": "100-1", "target": "pve1"}, "Source and target must not be identical"),
    ({"id": "100-1", "target": "pve2"}, "replication job for guest '100' to target 'local/pve2' already exists"),
    ({"id": "100-0", "target": "pve3"}, "replication job '100-0' already exists"),
    ({"id": "100-1", "target": "pve7"}, "Target 'pve7' does not exist."),
])
async def test_create_is_refused_as_proxmox_refuses_it(world: World, params: dict[str, Any], message: str) -> None:
    async with world.host() as host:
        named = await host.plan("replication.create", params, world.actor)
        raw = await host.plan("api.call", {"method": "POST", "path": "/cluster/replication",
                                           "params": {**params, "type": "local"}}, world.actor)
    assert named.blockers == raw.blockers == [f"POST /cluster/replication: Proxmox would refuse: {message}"]


async def test_replicate_0_leaves_a_non_zfs_disk_out(world: World) -> None:
    world.model.guests[102].config["scsi1"] = "local-lvm:vm-102-disk-1,replicate=0,size=16G"
    async with world.host() as host:
        plan = await host.plan("replication.create", {"id": "102-0", "target": "pve2"}, world.actor)
    assert not plan.blocked and "copies 1 volume of qemu/102" in plan.notes[0]


# --- update, disable ---------------------------------------------------------------------------------------------


async def test_update_then_undo_restores_old_values_and_deletes_added_keys(world: World) -> None:
    async with world.host() as host:
        plan = await host.plan("replication.update", {"id": "200-0", "schedule": "*/5", "disable": 1, "delete": "comment"}, world.actor)
        assert plan.undo == [ApiCall("PUT", "/cluster/replication/200-0", {"comment": "proxy copy", "schedule": "*/30", "delete": "disable"})]
        assert effects(plan) == [("lxc/200", "degraded"), ("replication/200-0", "replication-fails")]
        disabled = next(i for i in plan.impacts if i.effect == "replication-fails")
        assert disabled.floor() is Risk.MEDIUM and "is disabled" in disabled.reason
        assert plan.risk is Risk.MEDIUM  # 200 is not HA-managed: pausing its only job is not HIGH
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction
        assert job(world, "200-0") == {**{k: v for k, v in JOBS[1].items() if k != "comment"}, "schedule": "*/5", "disable": 1}
        undo = await host.undo(result.ledger.seq, world.actor)
        assert (await host.apply(undo.plan_id, world.actor)).ok
    assert job(world, "200-0") == JOBS[1]


@pytest.mark.parametrize(("params", "message"), [
    ({"id": "100-0", "delete": "target"}, "unable to delete required option 'target'"),
    ({"id": "100-0", "delete": "guest"}, "no such option 'guest'"),
    ({"id": "100-7", "comment": "x"}, "no such job '100-7'"),
])
async def test_update_is_refused_as_proxmox_refuses_it(world: World, params: dict[str, Any], message: str) -> None:
    async with world.host() as host:
        plan = await host.plan("replication.update", params, world.actor)
    assert plan.blockers == [f"PUT /cluster/replication/{params['id']}: Proxmox would refuse: {message}"]


async def test_the_target_is_fixed(world: World) -> None:
    async with world.host() as host:
        with pytest.raises(BadInput, match="target"):
            await host.plan("replication.update", {"id": "100-0", "target": "pve3"}, world.actor)
        with pytest.raises(BadInput, match=r"400 Parameter verification failed. \(target: property is not defined in schema"):
            await host.plan("api.call", {"method": "PUT", "path": "/cluster/replication/100-0", "params": {"target": "pve3"}}, world.actor)


async def test_marking_through_put_is_the_same_removal(world: World) -> None:
    async with world.host() as host:
        put = await host.plan("api.call", {"method": "PUT", "path": "/cluster/replication/100-0", "params": {"remove_job": "full"}}, world.actor)
        delete = await host.plan("replication.delete", {"id": "100-0"}, world.actor)
    assert put.impacts == delete.impacts and put.undo is None and put.undo_note == delete.undo_note


# --- delete refusals ----------------------------------------------------------------------------------------------


async def test_keep_and_force_conflict_as_proxmox_says(world: World) -> None:
    async with world.host() as host:
        for tool, params in (("replication.delete", {"id": "100-0", "keep": 1, "force": 1}),
                             ("api.call", {"method": "DELETE", "path": "/cluster/replication/100-0", "params": {"keep": 1, "force": 1}})):
            with pytest.raises(BadInput, match=r"400 Parameter verification failed. \(keep: conflicts with parameter 'force'\)"):
                await host.plan(tool, params, world.actor)
    assert non_gets(world) == []


async def test_delete_of_a_job_that_does_not_exist(world: World) -> None:
    async with world.host() as host:
        plain = await host.plan("replication.delete", {"id": "100-7"}, world.actor)
        forced = await host.plan("replication.delete", {"id": "100-7", "force": 1}, world.actor)
    assert plain.blockers == ["DELETE /cluster/replication/100-7: Proxmox would refuse: no such job '100-7'"]
    assert not forced.blocked and forced.impacts == []  # force deletes whatever is there: nothing, and says nothing


@pytest.mark.parametrize("bad", ["..", "../100-0", "%2e%2e", "100-0/..", "١٠٠-0", "100-01", "99-0", "100-0 ", "100_0", ""])
@pytest.mark.parametrize("tool", ["replication.delete", "replication.update", "replication.schedule_now"])
async def test_hostile_ids_are_refused_in_one_line_before_any_request(world: World, tool: str, bad: str) -> None:
    async with world.host() as host:
        with pytest.raises(BadInput) as caught:
            await host.plan(tool, {"id": bad, **({"comment": "x"} if tool == "replication.update" else {})}, world.actor)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(f"{tool}: ")
    assert world.sim.requests == [] or non_gets(world) == []


@pytest.mark.parametrize("bad", ["..", "%2e%2e", "١٠٠-0", "99-0"])
async def test_hostile_ids_in_an_api_call_are_refused_too(world: World, bad: str) -> None:
    async with world.host() as host:
        with pytest.raises(BadInput):
            await host.plan("api.call", {"method": "DELETE", "path": f"/cluster/replication/{bad}"}, world.actor)
    assert non_gets(world) == []


# --- schedule_now ---------------------------------------------------------------------------------------------------


async def test_schedule_now_runs_the_job_on_the_guests_node(world: World) -> None:
    async with world.host() as host:
        plan = await host.plan("replication.schedule_now", {"id": "100-0"}, world.actor)
        assert plan.steps == [ApiCall("POST", "/nodes/pve1/replication/100-0/schedule_now", {})]
        assert plan.impacts == [] and plan.risk is Risk.MEDIUM and plan.undo is None
        assert plan.notes == ["pvesr on pve1 runs job 100-0 within a minute: it sends what changed since the last sync to pve2; "
                              "no configuration changes."]
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction
        listed = await host.read("replication.list", {"node": "pve1"}, world.actor)
    assert listed.data[0]["last_try"] == 0 and listed.data[0]["last_sync"] == 1764280800


async def test_schedule_now_elsewhere_changes_nothing_and_says_so(world: World) -> None:
    async with world.host() as host:
        plan = await host.plan("replication.schedule_now", {"id": "100-0", "node": "pve2"}, world.actor)
        bad = await host.plan("replication.schedule_now", {"id": "100-0", "node": "pve9"}, world.actor)
        marked = world.model.copy()
    assert plan.notes == ["The job's state lives on qemu/100's node pve1: on pve2 Proxmox finds none and changes nothing."]
    assert bad.blockers == ["POST /nodes/pve9/replication/100-0/schedule_now: Proxmox would refuse: hostname lookup 'pve9' "
                            "failed - failed to get address info for: pve9: Name or service not known"]
    assert marked.replication_jobs == JOBS


# --- permissions ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "needed"), [("9.1.2", "/vms/{vmid}, VM.Replicate"), ("8.4.1", "/storage, Datastore.Allocate")])
async def test_every_write_needs_vm_replicate_on_the_guest_and_on_8_4_datastore_allocate(tmp_path: Path, version: str,
                                                                                        needed: str) -> None:
    snap = make_snapshot(version)
    for row in snap["api"]["/access/acl"]:
        row["roleid"] = "PVEAuditor"
    world = World(tmp_path, snap)
    async with world.host() as host:
        for tool, params, step in (("replication.create", {"id": "100-1", "target": "pve3"}, "POST /cluster/replication"),
                                   ("replication.delete", {"id": "200-0"}, "DELETE /cluster/replication/200-0"),
                                   ("replication.schedule_now", {"id": "100-0"}, "POST /nodes/pve1/replication/100-0/schedule_now")):
            plan = await host.plan(tool, params, world.actor)
            vmid = params["id"].split("-")[0]
            assert any(b.startswith(f"{step}: Proxmox would refuse: ") and f"({needed.format(vmid=vmid)})" in b for b in plan.blockers), plan.blockers


# --- the list ----------------------------------------------------------------------------------------------------


async def test_list_shows_guest_node_target_schedule_replicas_and_state(world: World) -> None:
    async with world.host() as host:
        listed = await host.read("replication.list", {}, world.actor)
        on_pve1 = await host.read("replication.list", {"node": "pve1"}, world.actor)
        on_pve2 = await host.read("replication.list", {"node": "pve2"}, world.actor)
    assert [r.get("state") for r in listed.data] == ["not read (replication.list node=pve1 reads it)",
                                                     "not read (replication.list node=pve2 reads it)"]
    first, second = on_pve1.data[0], listed.data[1]
    assert first == {"id": "100-0", "guest": 100, "guest_type": "qemu", "name": "web", "node": "pve1", "source": "pve1",
                     "target": "pve2", "schedule": "*/15", "disable": 0, "last_sync": 1764280800, "last_try": 1764280800,
                     "next_sync": 1764281700, "fail_count": 0, "duration": 3.41,
                     "replicated_volumes": ["local-zfs:vm-100-disk-0", "local-zfs:vm-100-disk-1"],
                     "replicas_on_target": ["local-zfs:vm-100-disk-0", "local-zfs:vm-100-disk-1"]}
    assert second["state"].startswith("not read") and second["rate"] == 10 and second["schedule"] == "*/30"
    assert [r["id"] for r in on_pve2.data] == ["200-0"]
    assert on_pve2.data[0]["state"].startswith("not read: ")  # read live; this simulated node has no state to serve
    assert on_pve2.data[0]["replicas_on_target"] == ["local-zfs:subvol-200-disk-0"]


# --- the analysers, on model diffs no tool of this part makes --------------------------------------------------------


def _model() -> ClusterModel:
    return load_snapshot(make_snapshot())


def _job(model: ClusterModel, jid: str) -> dict[str, Any]:
    found = _replication.find_job(model, jid)
    assert found is not None
    return found


def test_a_changed_target_is_a_full_sync_and_a_migration_switch_is_not() -> None:
    before = _model()
    after = before.copy()
    _job(after, "100-0")["target"] = "pve3"
    found = _replication.impacts(None, before, after)
    assert [(i.target, i.effect, i.floor()) for i in found] == [("replication/100-0", "degraded", Risk.MEDIUM)]
    assert "sends 2 volumes (32.0 GiB) in full" in found[0].reason and "replicas on pve2 stay there" in found[0].reason
    # migrate 100 to pve2: the job becomes pve2 -> pve1 (switch_replication_job_target_nolock), incremental
    switched = before.copy()
    switched.guests[100].node = "pve2"
    _job(switched, "100-0").update(target="pve1", source="pve2")
    assert [i for i in _replication.impacts(None, before, switched) if i.target == "replication/100-0"] == []


def test_a_target_that_leaves_the_cluster_fails_the_job() -> None:
    before = _model()
    after = before.copy()
    del after.nodes["pve3"]
    found = [i for i in _replication.impacts(None, before, after) if i.target == "replication/200-0"]
    assert [(i.effect, i.reason) for i in found] == [
        ("replication-fails", "replication job 200-0: its target pve3 is no longer a cluster node; every run fails")]


def test_a_non_zfs_disk_added_to_a_replicated_guest_fails_its_job_once() -> None:
    """The storage pack's job analyser, on ClusterModel.replication_problem, reports it; this part does not again."""
    from proximo_storage._impact import storage_impacts

    before = _model()
    after = before.copy()
    after.guests[100].config["scsi1"] = "local-lvm:vm-100-disk-2,size=4G"
    found = [i for i in [*storage_impacts(before, after), *_replication.impacts(None, before, after)] if i.effect == "replication-fails"]
    assert [(i.target, i.reason) for i in found] == [
        ("replication/100-0", "replication 100-0 (pve1 -> pve2): scsi1 on local-lvm: missing replicate feature on volume "
                              "'local-lvm:vm-100-disk-2'")]


def test_replicas_on_unread_storage_contents_are_still_data_loss() -> None:
    before = _model()
    del before.volumes["local-zfs"]["pve2"]
    after = before.copy()
    _job(after, "100-0")["remove_job"] = "full"
    found = [i for i in _replication.impacts(None, before, after) if i.effect == "data-loss"]
    assert [(i.target, i.floor()) for i in found] == [("replication/100-0", Risk.CRITICAL)]
    assert "contents of local-zfs on pve2 were not read" in found[0].reason
