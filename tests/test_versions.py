"""Version-aware planning: a cluster's ``/version`` chooses the API every call is checked against (PVE 8.4 or 9.1).

What 8.4 refuses and 9.1 accepts (``allow-ksm``, ``ha-managed``, ``env``, ``host-managed`` NICs,
``snapshot-as-volume-chain``), and what 8.4 accepts and 9.1 refuses (glusterfs storages, ``maxfiles``, drive
geometry), on a simulated cluster of each release, live and offline; a release Proximo does not know is refused
for plans and read as usual; every plan tool's steps and undo steps are calls of each release's API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_conformance import PLANS, PVE8_ONLY, PVE9_ONLY

import proximo
from proximo.errors import BadInput, UnknownRelease
from proximo.model import ClusterModel
from proximo.params import release_problems
from proximo.pve import RELEASES, release_of, schema, schema_for
from proximo.pve._apischema import indexed_spec
from proximo.sim import demo_snapshot
from proximo.testing import World

PARAMETER_ERROR = "Parameter verification failed."
UNDEFINED = "property is not defined in schema and the schema does not allow additional properties"
VM = {"node": "pve1", "vmid": 150, "scsi0": "local-zfs:4", "net0": "virtio,bridge=vmbr0", "memory": "2048"}
CT = {"node": "pve2", "vmid": 310, "ostemplate": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst", "rootfs": "local-zfs:4",
      "net0": "name=eth0,bridge=vmbr0,ip=dhcp"}
LVM = {"storage": "lvm2", "type": "lvm", "vgname": "vg2", "content": "images"}
GLUSTER = {"storage": "gluster2", "type": "glusterfs", "server": "10.0.0.70", "volume": "gv0", "content": "images"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- which release a /version answer names --------------------------------------------------------------


@pytest.mark.parametrize(("version", "release"), [
    ({"version": "8.4.1", "release": "8.4", "repoid": "2a5fa54a8503f96d"}, "8.4"),
    ({"version": "8.4.14", "release": "8.4"}, "8.4"),  # every 8.4.x is 8.4
    ({"version": "9.1.2", "release": "9.1"}, "9.1"),
    ({"version": "9.1.10", "release": "9.1"}, "9.1"),
    ({"release": "9.1"}, "9.1"),  # no version: its release
    ({"version": "9.0.6", "release": "9.0"}, "9.0"),  # not 9.1: see docs/compatibility.md
    ({"version": "8.3.5", "release": "8.3"}, "8.3"),
    ({"version": "7.4-17", "release": "7.4"}, "7.4"),  # PVE 7's pve-manager versions have a hyphen
    ({"version": "10.0.1", "release": "10.0"}, "10.0"),
    ({}, "9.1"),  # no /version (a hand-written snapshot): the default
    ({"version": "devel"}, "devel"),
])
def test_release_of_a_version_answer(version: dict[str, Any], release: str) -> None:
    assert release_of(version) == release
    assert ClusterModel(version=version).release == release


@pytest.mark.parametrize("version", [{"version": "7.4-17", "release": "7.4"}, {"version": "9.0.6", "release": "9.0"},
                                     {"version": "10.0.1", "release": "10.0"}, {"version": "8.3.5"}])
def test_a_release_without_a_schema_names_the_ones_proximo_knows(version: dict[str, Any]) -> None:
    with pytest.raises(UnknownRelease) as info:
        schema_for(version)
    message = str(info.value)
    assert version["version"] in message and "8.4 and 9.1" in message and "reads still work" in message
    assert "\n" not in message
    with pytest.raises(UnknownRelease):
        ClusterModel(version=version).api  # noqa: B018


def test_each_release_has_its_own_schema() -> None:
    assert RELEASES == ("8.4", "9.1")
    assert (schema("8.4").release, schema("8.4").version) == ("8.4", "8.4.2")
    assert (schema("9.1").release, schema("9.1").version) == ("9.1", "9.1.3")
    assert schema("8.4").source == {"repository": "proxmox/pve-docs", "file": "api-viewer/apidata.js",
                                    "commit": "ae1bf37ed06b2fab39c9fa28a0e6c18e6435b7de"}
    assert schema("9.1").source["commit"] == "a8736b6d6169ea9679ee02285ea36fdab42e85c3"
    assert len(schema("8.4").endpoints) == 605 and len(schema("9.1").endpoints) == 649
    assert schema_for({"version": "8.4.1"}) is schema("8.4") and schema_for({"version": "9.1.2"}) is schema("9.1")
    # what differs, for what Proximo models (docs/compatibility.md)
    create_84, create_91 = schema("8.4").endpoint("POST", "/nodes/{node}/qemu"), schema("9.1").endpoint("POST", "/nodes/{node}/qemu")
    assert create_84 is not None and create_91 is not None
    assert {"allow-ksm", "ha-managed", "intel-tdx"} <= set(create_91.params) - set(create_84.params)
    assert "cyls" in (create_84.params["scsi[n]"].format_props or {}) and "cyls" not in (create_91.params["scsi[n]"].format_props or {})
    assert schema("9.1").endpoint("POST", "/cluster/ha/rules") is not None and schema("8.4").endpoint("POST", "/cluster/ha/rules") is None


# --- the examples, on an 8.4 cluster and on a 9.1 cluster ----------------------------------------------

# (tool, params, the part of the refusal that names what is wrong); each refused on one release and planned on the other
ONLY_ON_91: list[tuple[str, dict[str, Any], str]] = [
    ("vm.create", {**VM, "allow-ksm": 0}, "allow-ksm (a PVE 9.1 parameter of POST /nodes/{node}/qemu)"),
    ("vm.create", {**VM, "ha-managed": 1}, "ha-managed (a PVE 9.1 parameter of POST /nodes/{node}/qemu)"),
    ("ct.create", {**CT, "env": "TZ=UTC"}, "env (a PVE 9.1 parameter of POST /nodes/{node}/lxc)"),
    ("guest.config.set", {"vmid": 104, "allow-ksm": 0}, "allow-ksm (a PVE 9.1 parameter of POST /nodes/{node}/qemu/{vmid}/config)"),
    ("storage.create", {**LVM, "snapshot-as-volume-chain": 1}, "snapshot-as-volume-chain (a PVE 9.1 parameter of POST /storage)"),
    ("storage.update", {"storage": "local-zfs", "snapshot-as-volume-chain": 1}, "snapshot-as-volume-chain (a PVE 9.1 parameter of PUT /storage/{storage})"),
]
ONLY_ON_84: list[tuple[str, dict[str, Any], str]] = [
    ("storage.update", {"storage": "nfs-backup", "maxfiles": 3}, "maxfiles (a PVE 8.4 parameter of PUT /storage/{storage})"),
    ("storage.create", GLUSTER, "volume (a PVE 8.4 parameter of POST /storage)"),
]
# refused by Proxmox's own parameter check, against the release's API, when the step is predicted
PVE_ONLY_ON_91: list[tuple[str, dict[str, Any], str]] = [
    ("ct.create", {**CT, "net0": "name=eth0,bridge=vmbr0,ip=dhcp,host-managed=1"},
     f"net0: invalid format - format error; net0.host-managed: {UNDEFINED}"),
    ("guest.config.set", {"vmid": 204, "net1": "name=eth1,bridge=vmbr0,host-managed=1"},
     f"net1: invalid format - format error; net1.host-managed: {UNDEFINED}"),
    ("api.call", {"method": "POST", "path": "/nodes/pve1/qemu", "params": {**{k: v for k, v in VM.items() if k != "node"}, "allow-ksm": 0}},
     f"allow-ksm: {UNDEFINED}"),
    ("api.call", {"method": "POST", "path": "/storage", "params": {**LVM, "snapshot-as-volume-chain": 1}},
     f"snapshot-as-volume-chain: {UNDEFINED}"),
]
PVE_ONLY_ON_84: list[tuple[str, dict[str, Any], str]] = [
    ("storage.create", {**{k: v for k, v in GLUSTER.items() if k != "volume"}, "storage": "gluster3"}, "type: value 'glusterfs' does not have a value in the enumeration 'btrfs, cephfs, cifs, dir, esxi, "
                                "iscsi, iscsidirect, lvm, lvmthin, nfs, pbs, rbd, zfs, zfspool'"),
    ("guest.config.set", {"vmid": 105, "scsi2": "local-zfs:10,cyls=2"}, f"scsi2: invalid format - format error; scsi2.cyls: {UNDEFINED}"),
    ("api.call", {"method": "PUT", "path": "/storage/nfs-backup", "params": {"maxfiles": 3}}, f"maxfiles: {UNDEFINED}"),
]


def _cases(release: str) -> list[tuple[str, dict[str, Any], str, bool]]:
    """(tool, params, refusal, refused by the host) for what ``release`` refuses."""
    host, pve = (ONLY_ON_91, PVE_ONLY_ON_91) if release == "8.4" else (ONLY_ON_84, PVE_ONLY_ON_84)
    return [(t, p, why, True) for t, p, why in host] + [(t, p, why, False) for t, p, why in pve]


def _accepted(release: str) -> list[tuple[str, dict[str, Any]]]:
    return [(t, p) for t, p, _, _ in _cases("9.1" if release == "8.4" else "8.4")]


def _world(tmp_path: Path, release: str) -> World:
    world = World(tmp_path / release, pve_version=release)
    if release == "8.4":  # an 8.4 cluster could have a glusterfs storage; 9.1 has none
        world.model.storages["gluster"] = {"storage": "gluster", "type": "glusterfs", "server": "10.0.0.70", "volume": "gv0",
                                           "content": "images", "digest": "0" * 40}
    return world


@pytest.mark.anyio
@pytest.mark.parametrize("release", ["8.4", "9.1"])
async def test_what_a_release_refuses_is_refused_in_one_line(tmp_path: Path, release: str) -> None:
    world = _world(tmp_path, release)
    shown = world.model.version["version"]
    async with world.host() as host:
        for tool, params, why, by_host in _cases(release):
            with pytest.raises(BadInput) as info:
                await host.plan(tool, params, world.actor)
            message = str(info.value)
            assert why in message, (tool, params, message)
            assert "\n" not in message
            if by_host:  # before the tool ran, naming the cluster's version
                assert message.startswith(f"{tool}: this cluster runs PVE {shown}, whose API does not have "), message
            else:  # Proxmox's answer to the step, as the release gives it
                assert f"400 {PARAMETER_ERROR}" in message, message
    refusals = [r for r in world.ledger().records() if r.kind == "deny"]
    assert len(refusals) == len(_cases(release))  # each one a deny record


@pytest.mark.anyio
@pytest.mark.parametrize("release", ["8.4", "9.1"])
async def test_what_a_release_accepts_is_planned_and_applied_as_predicted(tmp_path: Path, release: str) -> None:
    world = _world(tmp_path, release)
    async with world.host() as host:
        for tool, params in _accepted(release):
            plan = await host.plan(tool, params, world.actor)
            assert plan.steps and not plan.blocked, (tool, params, plan.blockers)
        # and the simulated cluster of that release takes them, as predicted
        for tool, params in [(t, p) for t, p in _accepted(release) if t.startswith("storage.")]:
            plan = await host.plan(tool, params, world.actor)
            if host.needs_person(plan):
                host.approve(plan.plan_id, world.actor, world.person, typed_target=plan.target)
            result = await host.apply(plan.plan_id, world.actor)
            assert result.ok and result.matches_prediction, (tool, result)


def test_a_tool_struct_takes_every_release_and_names_what_one_lacks(tmp_path: Path) -> None:
    tools = World(tmp_path).packs.tools
    update = tools.get("storage.update").parse({"storage": "nfs-backup", "maxfiles": 3})
    assert release_problems(update, "8.4") == []
    assert release_problems(update, "9.1") == ["maxfiles (a PVE 8.4 parameter of PUT /storage/{storage})"]
    create = tools.get("vm.create").parse({**VM, "allow-ksm": 0})
    assert release_problems(create, "9.1") == []
    assert release_problems(create, "8.4") == ["allow-ksm (a PVE 9.1 parameter of POST /nodes/{node}/qemu)"]
    assert release_problems(tools.get("vm.create").parse(VM), "8.4") == []  # only what is given counts


# --- a release Proximo does not know --------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("version", [{"version": "7.4-17", "release": "7.4", "repoid": "6f2a3ca7"},
                                     {"version": "10.0.1", "release": "10.0", "repoid": "0123abcd"}])
async def test_an_unknown_release_is_read_but_never_planned(tmp_path: Path, version: dict[str, Any]) -> None:
    doc = demo_snapshot()
    doc["api"]["/version"] = version
    world = World(tmp_path, doc)  # the simulator serves it as recorded: reads only
    assert world.model.release == version["release"]
    async with world.host() as host:
        answer = await host.read("storage.list", {}, world.actor)
        assert {row["storage"] for row in answer.data} >= {"local-zfs", "ceph-rbd"}
        assert (await host.read("guest.list", {}, world.actor)).data
        for tool, params in [("storage.update", {"storage": "ceph-rbd", "disable": 1}), ("guest.start", {"vmid": 108}),
                             ("api.call", {"method": "DELETE", "path": "/storage/nfs-backup"})]:
            with pytest.raises(UnknownRelease) as info:
                await host.plan(tool, params, world.actor)
            assert f"this cluster runs PVE {version['version']}" in str(info.value) and "8.4 and 9.1" in str(info.value)
            assert info.value.exit_code == 3
    denials = [r for r in world.ledger().records() if r.kind == "deny"]
    assert [r.outcome["reason"] for r in denials[:1]] == [str(info.value)]
    # the simulator takes no write for a release it has no schema for
    async with httpx.AsyncClient(transport=world.transport(), base_url="http://pve.sim:8006") as client:
        auth = {"Authorization": f"PVEAPIToken={proximo.testing.TOKEN_ID}={world.secret}"}
        got = await client.get("/api2/json/version", headers=auth)
        assert got.status_code == 200 and got.json()["data"] == version
        put = await client.put("/api2/json/storage/ceph-rbd", data={"disable": "1"}, headers=auth)
        assert put.status_code == 501 and "does not know" in put.json()["message"]


@pytest.mark.anyio
async def test_an_unknown_release_offline_is_refused_too(tmp_path: Path) -> None:
    world = World(tmp_path, pve_version="9.1")
    world.model.version = {"version": "9.0.6", "release": "9.0", "repoid": "49c767b7"}
    async with world.offline() as host:
        assert (await host.read("storage.list", {}, world.actor)).data
        with pytest.raises(UnknownRelease, match=r"runs PVE 9\.0\.6, a release Proximo does not know"):
            await host.plan("storage.delete", {"storage": "nfs-backup"}, world.actor)


# --- the simulator, World and snapshots take the release ---------------------------------------------------


@pytest.mark.anyio
async def test_the_simulator_simulates_84_its_version_and_its_api(tmp_path: Path) -> None:
    world = World(tmp_path, pve_version="8.4")
    auth = {"Authorization": f"PVEAPIToken={proximo.testing.TOKEN_ID}={world.secret}"}
    async with httpx.AsyncClient(transport=world.transport(), base_url="http://pve.sim:8006") as client:
        version = (await client.get("/api2/json/version", headers=auth)).json()["data"]
        assert version == {"release": "8.4", "version": "8.4.1", "repoid": "2a5fa54a8503f96d"}
        # /cluster/ha/rules came with 9.0: on 8.4 it is no route
        assert (await client.get("/api2/json/cluster/ha/rules", headers=auth)).status_code == 501
        create = await client.post("/api2/json/nodes/pve1/qemu", data={"vmid": "150", "allow-ksm": "0"}, headers=auth)
        assert create.status_code == 400 and create.json()["errors"] == {"allow-ksm": UNDEFINED}
        disk = await client.put("/api2/json/nodes/pve1/qemu/105/config", data={"scsi2": "local-zfs:1,cyls=2"}, headers=auth)
        assert disk.status_code == 200, disk.json()  # drive geometry: 8.4 still has it
    assert World(tmp_path / "w2", pve_version="8.4.3").model.version["version"] == "8.4.3"
    assert World(tmp_path / "w3").model.version["version"] == "9.1.2"  # the demo cluster: 9.1
    with pytest.raises(BadInput, match=r"the simulator simulates PVE 8\.4 and 9\.1, not 9\.0"):
        World(tmp_path / "w4", pve_version="9.0")


@pytest.mark.anyio
async def test_an_offline_plan_follows_the_snapshots_version(tmp_path: Path) -> None:
    """``proximo snapshot`` records /version; a plan from the file is checked against that release."""
    world = World(tmp_path, pve_version="8.4")
    path = tmp_path / "taken.json"
    async with world.offline(path) as host:
        plan = await host.plan("storage.update", {"storage": "nfs-backup", "maxfiles": 3}, world.actor)
        assert not plan.blocked and plan.source.startswith("snapshot:")
        with pytest.raises(BadInput, match="allow-ksm"):
            await host.plan("vm.create", {**VM, "allow-ksm": 0}, world.actor)
    assert json.loads(path.read_text())["api"]["/version"]["release"] == "8.4"


@pytest.mark.anyio
async def test_a_plan_made_on_one_release_is_stale_on_another(tmp_path: Path) -> None:
    world = World(tmp_path, pve_version="8.4")
    async with world.host() as host:
        plan = await host.plan("storage.update", {"storage": "ceph-rbd", "disable": 1}, world.actor)
        world.model.version = {"release": "9.1", "version": "9.1.2", "repoid": "6a3e57f2"}  # upgraded meanwhile
        with pytest.raises(proximo.StalePlan, match="nodes changed"):
            await host.apply(plan.plan_id, world.actor)


# --- every plan tool's steps, against each release's API ---------------------------------------------------


def _problems(release: str, step: proximo.ApiCall) -> list[str]:
    api = schema(release)
    found = api.match(step.path)
    if found is None:
        return [f"{step.method} {step.path}: no such path in PVE {release}"]
    template, path_params = found
    endpoint = api.endpoint(step.method, template)
    if endpoint is None:
        return [f"{step.method} {template}: no such method in PVE {release}"]
    problems = [f"{step.method} {template}: {name!r} is not a PVE {release} parameter" for name in step.params
                if name not in endpoint.params and indexed_spec(endpoint, name) is None]
    _, errors = api.validate(endpoint, dict(step.params), path_params)
    return problems + [f"{step.method} {template}: {name}: {message}" for name, message in errors.items()]


@pytest.mark.anyio
@pytest.mark.parametrize("release", ["8.4", "9.1"])
async def test_every_plan_step_and_undo_step_is_a_call_of_each_release(tmp_path: Path, release: str) -> None:
    """tests/test_conformance.py's cases, on a cluster of each release, checked against that release's schema."""
    world = World(tmp_path, pve_version=release)
    world.packs.semantics.execute(world.model, "POST", "/access/users/bob@pve/token/old")  # for access.token.delete
    if release == "8.4":  # for ha.group.update and delete
        world.packs.semantics.execute(world.model, "POST", "/cluster/ha/groups", {"group": "db", "nodes": "pve2"})
    # the lxc-exec pack's steps are ssh, not PVE calls (its snapshot_first step is applied on the simulator in its tests)
    assert {t.id for t in world.packs.tools if t.mutating and t.owner != "lxc-exec"} == {tool for tool, _ in PLANS}
    other_release = PVE9_ONLY if release == "8.4" else PVE8_ONLY  # tools of the other release only
    problems: list[str] = []
    async with world.host() as host:
        for tool, params in PLANS:
            if tool in other_release:
                continue
            plan = await host.plan(tool, params, world.actor)
            assert plan.steps and not plan.blocked, (release, tool, params, plan.blockers)
            for step in [*plan.steps, *(plan.undo or [])]:
                assert isinstance(step, proximo.ApiCall)
                problems += _problems(release, step)
    assert problems == []


def test_semantics_are_registered_for_endpoints_both_releases_have(tmp_path: Path) -> None:
    for entry in World(tmp_path).packs.semantics:
        for release in RELEASES:
            if release == "8.4" and entry.template.startswith("/cluster/ha/rules"):
                continue  # HA rules came with PVE 9 (they replaced HA groups): an 8.4 cluster answers 501, as the model does
            assert schema(release).endpoint(entry.method, entry.template) is not None, (release, entry.method, entry.template)


# --- privileges: pve-access-control's stable-bookworm (8.4) has VM.Monitor, 9.1 has VM.GuestAgent.* instead ----------


def test_each_release_has_its_own_privileges() -> None:
    from proximo.model._access import builtin_roles

    v84, v91 = builtin_roles(ClusterModel(version={"version": "8.4.1"})), builtin_roles(ClusterModel(version={"version": "9.1.2"}))
    assert v84["Administrator"] - v91["Administrator"] == {"VM.Monitor"}
    assert v91["Administrator"] - v84["Administrator"] == {"VM.GuestAgent.Audit", "VM.GuestAgent.FileRead", "VM.GuestAgent.FileSystemMgmt",
                                                          "VM.GuestAgent.FileWrite", "VM.GuestAgent.Unrestricted", "VM.Replicate"}
    assert "VM.Monitor" in v84["PVEVMAdmin"] and "VM.Monitor" in v84["PVEAdmin"] and "VM.Monitor" not in v84["PVEVMUser"]
    assert set(v84) == set(v91)  # the same roles


@pytest.mark.anyio
@pytest.mark.parametrize("release", ["8.4", "9.1"])
async def test_a_role_takes_the_privileges_of_the_clusters_release(tmp_path: Path, release: str) -> None:
    world = World(tmp_path, pve_version=release)
    ours, theirs = ("VM.Monitor", "VM.GuestAgent.Audit") if release == "8.4" else ("VM.GuestAgent.Audit", "VM.Monitor")
    async with world.host() as host:
        plan = await host.plan("access.role.create", {"roleid": "Monitors", "privs": f"VM.Audit,{ours}"}, world.actor)
        assert plan.steps and not plan.blocked
        with pytest.raises(BadInput, match=f"privs: invalid format - invalid privilege '{theirs}'"):
            await host.plan("access.role.create", {"roleid": "Monitors", "privs": f"VM.Audit,{theirs}"}, world.actor)
