"""Proximo against the official PVE 9.1 API schema and real responses.

Everything Proximo sends, serves or models is checked against the PVE 9.1 API schema (its endpoints and their
parameters, as ``scripts/gen_api_schema.py`` keeps them from pve-docs' apidata.js): the simulator's GET routes,
the registered semantics, the tool parameters that mirror endpoints, every step and undo step a plan can
produce, the client's and the collector's paths. Real sample responses (``tests/data/pve/samples``) load into
the model and render back. The simulator answers like pve-api-daemon.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from _pve_data import sample_data, samples

import proximo
from proximo.pve._apischema import RELEASES, Endpoint, indexed_spec, schema, validate
from proximo.pve._client import PveClient
from proximo._sources import LiveSource
from proximo._tools import ToolSpec
from proximo.model import Call, ClusterModel, collect, dump_snapshot, from_api, load_snapshot, render, snapshot_paths
from proximo.model._snapshot import CLUSTER_PATHS
from proximo.sim import demo_snapshot
from proximo.testing import TOKEN_ID, World

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def index() -> dict[tuple[str, str], Endpoint]:
    """The 9.1 endpoints by (method, path template); paths are matched below, not by Proximo's matcher."""
    return {(e.method, e.path): e for e in schema().endpoints}


_PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")


def _template(index: dict[tuple[str, str], Endpoint], path: str) -> tuple[str, dict[str, str]] | None:
    """Match a concrete path against the index itself (not Proximo's compact copy): literal segments first."""
    segs = path.strip("/").split("/") if path != "/" else []
    best: tuple[tuple[bool, ...], str, dict[str, str]] | None = None
    for template in {p for _, p in index}:
        tsegs = template.strip("/").split("/")
        if len(tsegs) != len(segs):
            continue
        params: dict[str, str] = {}
        for t, s in zip(tsegs, segs, strict=True):
            m = _PLACEHOLDER.fullmatch(t)
            if m:
                params[m.group(1)] = s
            elif t != s:
                break
        else:
            rank = tuple(bool(_PLACEHOLDER.fullmatch(t)) for t in tsegs)
            if best is None or rank < best[0]:
                best = (rank, template, params)
    return None if best is None else (best[1], best[2])


def _check_call(index: dict[tuple[str, str], Endpoint], method: str, path: str, params: dict[str, Any] | None = None) -> list[str]:
    """Why ``method path params`` is not a call the 9.1 API declares (empty if it is)."""
    base, _, query = path.partition("?")
    params = dict(params or {})
    params.update(urllib.parse.parse_qsl(query, keep_blank_values=True))
    found = _template(index, base)
    if found is None:
        return [f"{method} {base}: no such path in PVE 9.1"]
    template, path_params = found
    endpoint = index.get((method, template))
    if endpoint is None:
        return [f"{method} {template}: no such method on that path in PVE 9.1"]
    # and the values are ones PVE accepts (Proximo's validator, on the compact copy of the same schema)
    compact = schema().endpoint(method, template)
    assert compact is not None
    problems = [f"{method} {template}: parameter {name!r} is not declared" for name in params  # scsi1 is scsi[n]
                if (name not in endpoint.params and indexed_spec(compact, name) is None) or name in path_params]
    _, errors = validate(compact, params, {k: urllib.parse.unquote(v) for k, v in path_params.items()})
    problems += [f"{method} {template}: {name}: {message}" for name, message in errors.items()]
    return problems


# --- the simulator's GET routes ---------------------------------------------------------------------------


def _demo_paths() -> list[str]:
    doc = demo_snapshot()
    return sorted(set(snapshot_paths(load_snapshot(doc))) | set(doc["api"]))


@pytest.mark.parametrize("path", _demo_paths())
def test_demo_get_paths_are_pve_endpoints(index: dict[tuple[str, str], Endpoint], path: str) -> None:
    assert _check_call(index, "GET", path) == []


def test_demo_query_parameters_are_declared(index: dict[tuple[str, str], Endpoint]) -> None:
    queried = [p for p in _demo_paths() if "?" in p]
    assert "/access/users?full=1" in queried and "/pools?poolid=prod" in queried
    for path in queried:
        assert _check_call(index, "GET", path) == []




def _rendered_routes(model: ClusterModel) -> list[str]:
    """GET routes the renderers answer beyond what a snapshot holds (detail views, filters, tasks)."""
    upid = model.start_task("pve1", "qmstart", "104", TOKEN_ID, log=["ok"])
    quoted = urllib.parse.quote(upid, safe=":@!")
    return [
        "/storage/local-zfs", "/storage?type=rbd", "/cluster/resources?type=vm", "/cluster/resources?type=storage",
        "/cluster/resources?type=node", "/cluster/backup/backup-daily", "/cluster/replication/104-0", "/access/users",
        "/access/users?full=0", "/nodes/pve1/storage/local/status", "/nodes/pve1/storage/local/content?content=iso",
        "/nodes/pve1/storage/local/content?vmid=104", "/nodes/pve1/qemu/104/status/current",
        "/nodes/pve2/lxc/202/status/current", "/nodes/pve1/tasks", "/cluster/tasks",
        f"/nodes/pve1/tasks/{quoted}/status", f"/nodes/pve1/tasks/{quoted}/log?start=0&limit=50",
    ]


def test_rendered_detail_routes_are_pve_endpoints(index: dict[tuple[str, str], Endpoint]) -> None:
    m = load_snapshot(demo_snapshot())
    for path in _rendered_routes(m):
        assert _check_call(index, "GET", path) == [], path
        render(m, urllib.parse.unquote(path))  # and the model answers it


def test_a_backup_volume_route_is_a_pve_endpoint_with_its_slash_encoded(index: dict[tuple[str, str], Endpoint]) -> None:
    m = load_snapshot(demo_snapshot())
    path = "/nodes/pve1/storage/local/content/local:backup%2Fvzdump-qemu-105-2026_11_28-02_00_03.vma.zst"
    assert _check_call(index, "GET", path) == []
    assert render(m, path)["format"] == "vma.zst"  # the model answers the segment as the simulator passes it on
    config = "/nodes/pve1/vzdump/extractconfig?volume=" + urllib.parse.quote("local:backup/vzdump-lxc-201-2026_11_28-02_09_51.tar.zst", safe="")
    assert _check_call(index, "GET", urllib.parse.unquote(config)) == []
    assert "hostname: files-01" in render(m, config)


# --- semantics and tool parameters ------------------------------------------------------------------------


def test_every_semantics_is_a_pve_endpoint(tmp_path: Path, index: dict[tuple[str, str], Endpoint]) -> None:
    packs = World(tmp_path).packs
    registered = [(s.method, s.template) for s in packs.semantics]
    assert ("DELETE", "/storage/{storage}") in registered and ("PUT", "/access/acl") in registered
    for method, template in registered:
        assert (method, template) in index, f"{method} {template}"
        assert method != "GET"


# tool id -> the endpoint its parameters mirror (path parameters included)
MIRRORS = {
    "storage.create": ("POST", "/storage"),
    "storage.update": ("PUT", "/storage/{storage}"),
    "storage.delete": ("DELETE", "/storage/{storage}"),
    "storage.list": ("GET", "/storage"),
    "storage.content": ("GET", "/nodes/{node}/storage/{storage}/content"),
    "storage.status": ("GET", "/nodes/{node}/storage/{storage}/status"),
}


def _field_names(tool: ToolSpec) -> set[str]:
    return {f.encode_name for f in msgspec.structs.fields(tool.params)}


@pytest.mark.parametrize("tool_id", sorted(MIRRORS))
def test_storage_tool_params_mirror_their_endpoint(tmp_path: Path, index: dict[tuple[str, str], Endpoint], tool_id: str) -> None:
    """Every supported release's parameters (8.4's maxfiles, 9.1's snapshot-as-volume-chain): the cluster's decides."""
    tool = World(tmp_path).packs.tools.get(tool_id)
    assert tool.owner == "storage"
    every = set().union(*(e.params for r in RELEASES if (e := schema(r).endpoint(*MIRRORS[tool_id])) is not None))
    assert set(index[MIRRORS[tool_id]].params) <= every
    assert _field_names(tool) == every


def test_mutating_storage_tools_are_all_mirrored(tmp_path: Path) -> None:
    tools = [t.id for t in World(tmp_path).packs.tools if t.owner == "storage" and t.mutating]
    assert sorted(tools) == sorted(t for t in MIRRORS if MIRRORS[t][0] != "GET")


# --- every step and undo step a plan can produce ----------------------------------------------------------

FINGERPRINT = ":".join(["ab"] * 32)
PLANS: list[tuple[str, dict[str, Any]]] = [
    ("storage.create", {"storage": "nfs2", "type": "nfs", "server": "10.0.0.9", "export": "/srv/nfs", "content": "backup"}),
    ("storage.create", {"storage": "dir2", "type": "dir", "path": "/srv/dir2", "content": "iso,vztmpl", "nodes": "pve1,pve3"}),
    ("storage.create", {"storage": "pbs2", "type": "pbs", "server": "pbs.lan", "datastore": "ds1", "username": "backup@pbs",
                        "password": "s3cret", "fingerprint": FINGERPRINT}),
    ("storage.create", {"storage": "zfs2", "type": "zfspool", "pool": "tank/vm", "sparse": True, "disable": False}),
    ("storage.update", {"storage": "local-zfs", "disable": True}),
    ("storage.update", {"storage": "ceph-rbd", "disable": True}),
    ("storage.update", {"storage": "ceph-rbd", "content": "images,rootdir", "delete": "krbd"}),
    ("storage.update", {"storage": "nfs-backup", "nodes": "pve1,pve2", "prune-backups": "keep-last=3"}),
    ("storage.update", {"storage": "local", "content": "iso", "max-protected-backups": 2}),
    ("storage.delete", {"storage": "local-zfs"}),
    ("storage.delete", {"storage": "nfs-backup"}),
    ("storage.delete", {"storage": "cifs-iso"}),
    ("storage.delete", {"storage": "ceph-rbd"}),
    ("storage.delete", {"storage": "local"}),
    ("api.call", {"method": "DELETE", "path": "/storage/nfs-backup"}),
    ("api.call", {"method": "PUT", "path": "/storage/cifs-iso", "params": {"disable": 1}}),
    ("api.call", {"method": "POST", "path": "/storage", "params": {"storage": "iso2", "type": "cifs", "server": "10.0.0.61",
                                                                    "share": "iso", "username": "u", "password": "p"}}),
    ("api.call", {"method": "PUT", "path": "/access/acl", "params": {"path": "/storage/local", "roles": "PVEDatastoreUser", "users": "bob@pve"}}),
    ("api.call", {"method": "PUT", "path": "/access/acl", "params": {"path": "/storage/nfs-backup", "roles": "BackupOperator",
                                                                      "groups": "operators", "delete": 1}}),
    ("api.call", {"method": "PUT", "path": "/pools", "params": {"poolid": "prod", "storage": "local"}}),
    ("api.call", {"method": "PUT", "path": "/pools", "params": {"poolid": "prod", "storage": "nfs-backup", "delete": 1}}),
    # the ACL pack (plugins/acl), on the demo cluster's access configuration
    ("access.acl.grant", {"path": "/vms/101", "roles": "PVEVMUser", "users": "bob@pve", "propagate": False}),
    ("access.acl.revoke", {"path": "/pool/prod", "roles": "VMOperator", "groups": "operators"}),
    ("access.user.create", {"userid": "carol@pve", "groups": "operators", "email": "carol@demo.lan"}),
    ("access.user.update", {"userid": "bob@pve", "groups": "admins", "append": True, "comment": "on call"}),
    ("access.user.delete", {"userid": "bob@pve"}),
    ("access.group.create", {"groupid": "auditors", "comment": "read only"}),
    ("access.group.update", {"groupid": "operators", "comment": "ops"}),
    ("access.group.delete", {"groupid": "operators"}),
    ("access.role.create", {"roleid": "Auditors", "privs": "Sys.Audit,VM.Audit"}),
    ("access.role.update", {"roleid": "VMOperator", "privs": "VM.Audit", "append": True}),
    ("access.role.delete", {"roleid": "VMOperator"}),
    ("access.token.create", {"userid": "bob@pve", "tokenid": "ci", "privsep": True, "expire": 0}),
    ("access.token.update", {"userid": "proximo@pve", "tokenid": "agent", "comment": "renamed"}),
    ("access.token.delete", {"userid": "bob@pve", "tokenid": "old"}),  # not Proximo's own token: that one is refused
    # the guests pack (plugins/guests), on the demo cluster's guests
    ("vm.create", {"node": "pve1", "vmid": 150, "scsi0": "local-zfs:4", "net0": "virtio,bridge=vmbr0", "memory": "2048"}),
    ("ct.create", {"node": "pve2", "vmid": 310, "ostemplate": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
                   "rootfs": "local-zfs:4", "net0": "name=eth0,bridge=vmbr0,ip=dhcp"}),
    ("guest.start", {"vmid": 108}),
    ("guest.stop", {"vmid": 104}),
    ("guest.shutdown", {"vmid": 202}),
    ("guest.reboot", {"vmid": 106}),
    ("guest.suspend", {"vmid": 106}),
    ("guest.resume", {"vmid": 106}),
    ("guest.clone", {"vmid": 9000, "newid": 140, "name": "ci-runner-03"}),
    ("guest.config.set", {"vmid": 105, "memory": "8192", "scsi2": "local-zfs:10"}),
    ("guest.config.set", {"vmid": 204, "mp0": "ceph-rbd:2,mp=/srv", "delete": "unused0"}),
    ("guest.snapshot.create", {"vmid": 201, "snapname": "pre_upgrade"}),
    ("guest.snapshot.rollback", {"vmid": 105, "snapname": "before-upgrade"}),
    ("guest.snapshot.delete", {"vmid": 105, "snapname": "before-upgrade"}),
    ("guest.disk.resize", {"vmid": 108, "disk": "scsi0", "size": "+4G"}),
    ("guest.disk.move", {"vmid": 108, "disk": "scsi0", "storage": "ceph-rbd", "delete": 1}),
    ("guest.template", {"vmid": 108}),
    ("guest.destroy", {"vmid": 121, "purge": 1, "destroy-unreferenced-disks": 1}),
    # the firewall pack (plugins/firewall), on the demo cluster's firewall (web-01's rules, group web-in, ipset admins)
    ("firewall.rule.add", {"level": "qemu/104", "type": "in", "action": "ACCEPT", "macro": "DNS", "enable": 1}),
    ("firewall.rule.add", {"level": "group/web-in", "type": "in", "action": "DROP", "proto": "tcp", "dport": "8080"}),
    ("firewall.rule.update", {"level": "qemu/104", "pos": 2, "source": "10.0.1.0/24"}),
    ("firewall.rule.delete", {"level": "qemu/104", "pos": 1}),
    ("firewall.rule.move", {"level": "qemu/104", "pos": 2, "moveto": 0}),
    ("firewall.options.set", {"level": "cluster", "enable": 1}),
    ("firewall.options.set", {"level": "qemu/104", "policy_in": "REJECT"}),
    ("firewall.group.create", {"group": "db-in", "comment": "databases"}),
    ("firewall.group.delete", {"group": "web-in"}),
    ("firewall.ipset.create", {"name": "ipfilter-net0", "level": "qemu/104"}),
    ("firewall.ipset.delete", {"name": "admins", "force": True}),
    ("firewall.ipset.add", {"name": "admins", "cidr": "10.0.0.77"}),
    ("firewall.ipset.remove", {"name": "admins", "cidr": "10.0.0.99"}),
    ("firewall.alias.create", {"name": "lab", "cidr": "10.9.0.0/16"}),
    ("firewall.alias.update", {"name": "office", "cidr": "192.168.2.0/24"}),
    ("firewall.alias.delete", {"name": "office"}),
    # the network pack (plugins/network), on the demo cluster's nodes (nothing pending: apply and revert are blocked)
    ("network.iface.create", {"node": "pve2", "iface": "vmbr2", "type": "bridge", "bridge_vlan_aware": True,
                              "cidr": "10.20.0.12/24", "comments": "storage net"}),
    ("network.iface.update", {"node": "pve1", "iface": "vmbr1", "bridge_vlan_aware": True, "bridge_vids": "2-100"}),
    ("network.iface.delete", {"node": "pve1", "iface": "vmbr1"}),
    ("network.apply", {"node": "pve1"}),
    ("network.revert", {"node": "pve1"}),
    # the migration pack (plugins/migration): migrate and evacuate
    ("guest.migrate", {"vmid": 121, "target": "pve2"}),
    ("guest.migrate", {"vmid": 201, "target": "pve3"}),
    ("node.evacuate", {"node": "pve2", "leave_unmovable": True}),
    # the migration pack: HA (the group tools are PVE 8's: PVE8_PLANS)
    ("ha.resource.add", {"sid": "vm:105", "state": "started"}),
    ("ha.resource.update", {"sid": "vm:104", "max_restart": 2}),
    ("ha.resource.remove", {"sid": "ct:202"}),
    ("ha.resource.migrate", {"sid": "ct:202", "node": "pve3"}),
    ("ha.resource.relocate", {"sid": "ct:202", "node": "pve1"}),
    ("ha.rule.create", {"rule": "proxy-on-pve2", "type": "node-affinity", "nodes": "pve2", "resources": "ct:202"}),
    ("ha.rule.update", {"rule": "web-01-prefer-pve1", "nodes": "pve1:2,pve3:1"}),
    ("ha.rule.delete", {"rule": "web-01-prefer-pve1"}),
    ("ha.group.create", {"group": "web", "nodes": "pve1:2,pve2"}),
    ("ha.group.update", {"group": "db", "restricted": 1}),
    ("ha.group.delete", {"group": "db"}),
    # the migration pack: replication
    ("replication.create", {"id": "104-1", "target": "pve3", "schedule": "*/30", "rate": 50, "comment": "second copy"}),
    ("replication.update", {"id": "104-0", "schedule": "*/5", "comment": "every five minutes"}),
    ("replication.delete", {"id": "104-0", "force": 1}),
    ("replication.schedule_now", {"id": "104-0"}),
    # the backup pack (plugins/backup), on the demo cluster's backups and vzdump jobs; a volume id's slash is %2F
    ("backup.now", {"node": "pve1", "vmid": "104,105", "storage": "nfs-backup", "mode": "snapshot", "compress": "zstd"}),
    ("backup.restore", {"archive": "nfs-backup:backup/vzdump-qemu-104-2026_11_27-21_00_02.vma.zst", "vmid": 140, "unique": True}),
    ("backup.restore", {"archive": "local:backup/vzdump-lxc-201-2026_11_28-02_09_51.tar.zst", "vmid": 240, "storage": "local-zfs"}),
    ("backup.delete", {"volume": "nfs-backup:backup/vzdump-lxc-202-2026_11_22-01_00_51.tar.zst"}),
    ("backup.protect", {"volume": "local:backup/vzdump-qemu-105-2026_11_28-02_00_03.vma.zst", "notes": "before the upgrade"}),
    ("backup.protect", {"volume": "nfs-backup:backup/vzdump-qemu-104-2026_11_22-01_00_04.vma.zst", "protected": False}),
    ("backup.prune", {"storage": "nfs-backup", "prune-backups": "keep-last=2,keep-weekly=1", "type": "qemu"}),
    ("backup.job.create", {"id": "nightly-web", "schedule": "02:30", "vmid": "104,106", "storage": "nfs-backup",
                           "prune-backups": "keep-daily=3", "mode": "snapshot"}),
    ("backup.job.update", {"id": "backup-db", "prune-backups": "keep-last=2", "enabled": False}),
    ("backup.job.update", {"id": "backup-daily", "exclude": "9000,203", "comment": "all but the template and media"}),
    ("backup.job.delete", {"id": "backup-pool"}),
    ("api.call", {"method": "PUT", "path": "/nodes/pve1/storage/local/content/local:backup%2Fvzdump-lxc-201-2026_11_28-02_09_51.tar.zst",
                  "params": {"protected": 1}}),
]


PVE8_ONLY = {"ha.group.create", "ha.group.update", "ha.group.delete"}  # PVE 9 replaced HA groups with rules
PVE9_ONLY = {"ha.rule.create", "ha.rule.update", "ha.rule.delete"}  # HA rules came with PVE 9


@pytest.mark.anyio
async def test_every_plan_step_and_undo_step_is_a_pve_call(tmp_path: Path, index: dict[tuple[str, str], Endpoint]) -> None:
    world = World(tmp_path)
    world.packs.semantics.execute(world.model, "POST", "/access/users/bob@pve/token/old")  # for access.token.delete
    (tmp_path / "pve8").mkdir()
    pve8 = World(tmp_path / "pve8", pve_version="8.4")
    pve8.packs.semantics.execute(pve8.model, "POST", "/cluster/ha/groups", {"group": "db", "nodes": "pve2"})
    # the lxc-exec pack's steps are ssh (pct exec), not PVE calls, and it is off here: plugins/lxc-exec/tests
    mutating = {t.id for t in world.packs.tools if t.mutating and t.owner != "lxc-exec"}
    assert mutating == {tool for tool, _ in PLANS}, "a mutating tool has no case here"
    problems: list[str] = []
    undo_steps = 0
    async with world.host() as host, pve8.host() as host8:
        for tool, params in PLANS:
            plan = await (host8 if tool in PVE8_ONLY else host).plan(tool, params, world.actor)
            assert plan.steps and not plan.blocked, (tool, params, plan.blockers)
            for step in plan.steps:
                assert isinstance(step, proximo.ApiCall)
                problems += _check_call(index, step.method, step.path, step.params)
            for step in plan.undo or []:
                assert isinstance(step, proximo.ApiCall)
                undo_steps += 1
                problems += _check_call(index, step.method, step.path, step.params)
    assert problems == []
    assert undo_steps >= len(PLANS)  # every case here is reversible


@pytest.mark.anyio
async def test_undo_of_an_applied_delete_is_a_pve_call(tmp_path: Path, index: dict[tuple[str, str], Endpoint]) -> None:
    """Apply storage.delete, then plan its undo through the pipeline: those steps must be PVE calls too."""
    world = World(tmp_path)
    async with world.host() as host:
        plan = await host.plan("api.call", {"method": "PUT", "path": "/pools", "params": {"poolid": "prod", "storage": "local"}}, world.actor)
        if host.needs_person(plan):  # the pool's ACL roles now reach /storage/local: a privilege-gain (ACL pack)
            host.approve(plan.plan_id, world.actor, world.person)
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction
        undo = await host.undo(result.ledger.seq, world.actor)
        assert undo.steps
        for step in [*undo.steps, *(undo.undo or [])]:
            assert isinstance(step, proximo.ApiCall)
            assert _check_call(index, step.method, step.path, step.params) == []


# --- the client's and the collector's paths ---------------------------------------------------------------


def test_client_literal_paths_are_pve_endpoints(index: dict[tuple[str, str], Endpoint]) -> None:
    src = (REPO / "proximo" / "pve" / "_client.py").read_text()
    bases = re.findall(r'(\w+) = f"(/[a-z][^"]*)"', src)
    assert bases, "no API path literal found in _client.py"
    checked = 0
    for var, literal in bases:
        concrete = re.sub(r"\{[^}]*\}", "X", literal)
        assert _template(index, concrete) is not None, literal
        for suffix in re.findall(rf'\b{var} \+ "(/[a-z]+)"', src):
            found = _template(index, concrete + suffix)
            assert found is not None and ("GET", found[0]) in index, literal + suffix
            checked += 1
    assert checked >= 2  # the task status and log


@pytest.mark.parametrize("path", CLUSTER_PATHS)
def test_collector_cluster_paths_are_pve_endpoints(index: dict[tuple[str, str], Endpoint], path: str) -> None:
    assert _check_call(index, "GET", path) == []


class Recording(httpx.AsyncBaseTransport):
    """Forwards to the simulator and remembers every request as (method, path after /api2/json, query)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw = request.url.raw_path.decode()
        path, _, query = raw.partition("?")
        self.seen.append((request.method, path.removeprefix("/api2/json"), query))
        return await self.inner.handle_async_request(request)


@pytest.mark.anyio
async def test_collect_reads_only_pve_endpoints(tmp_path: Path, index: dict[tuple[str, str], Endpoint]) -> None:
    world = World(tmp_path)
    recording = Recording(world.transport())
    asked: list[str] = []
    # loopback URL: plain http is refused elsewhere, and the recording wrapper is not an ASGITransport
    async with PveClient("http://127.0.0.1:8006", TOKEN_ID, world.secret, transport=recording) as client:
        source = LiveSource(client, "http://127.0.0.1:8006")

        async def get(path: str) -> Any:
            asked.append(path)
            return await source.get(path)

        api, unseen = await collect(get)
    assert unseen == []
    assert set(api) == set(asked)  # the simulator answered every read
    # per-node, per-guest and per-pool paths, not just the fixed list
    assert {"/nodes/pve1/qemu/104/config", "/nodes/pve2/lxc/202/firewall/rules", "/nodes/pve3/network",
            "/nodes/pve1/storage/local/content", "/pools?poolid=prod"} <= set(asked)
    for path in asked:
        assert _check_call(index, "GET", path) == [], path
    for method, path, query in recording.seen:
        assert method == "GET"
        assert _check_call(index, "GET", urllib.parse.unquote(path) + (f"?{urllib.parse.unquote(query)}" if query else "")) == []


@pytest.mark.anyio
async def test_client_task_calls_are_pve_endpoints(tmp_path: Path, index: dict[tuple[str, str], Endpoint]) -> None:
    world = World(tmp_path)
    upid = world.model.start_task("pve1", "vzdump", "104", TOKEN_ID, log=[f"line {i}" for i in range(7)], polls=2)
    recording = Recording(world.transport())
    async with PveClient("http://127.0.0.1:8006", TOKEN_ID, world.secret, transport=recording, backoff=0) as client:
        client.log_page = 3
        result = await client.wait_task("pve1", upid, poll=0.001)
    assert result.ok and result.log == [f"line {i}" for i in range(7)] + ["TASK OK"]
    assert {p.rsplit("/", 1)[-1] for _, p, _ in recording.seen} == {"status", "log"}
    for method, path, query in recording.seen:
        full = urllib.parse.unquote(path) + (f"?{query}" if query else "")
        assert _check_call(index, method, full) == [], full


# --- real sample responses load into the model and render back --------------------------------------------

# sample -> (GET path its origin names, concretised; context other GETs the model needs to place it)
SAMPLE_PATHS: dict[str, tuple[str, dict[str, Any]]] = {
    "access-acl.go-proxmox": ("/access/acl", {}),
    "cluster-resources-vm.community-proxmox": ("/cluster/resources?type=vm", {}),
    "cluster-resources.go-proxmox": ("/cluster/resources", {}),
    "cluster-resources.pve9.community-proxmox": ("/cluster/resources", {}),
    "cluster-status.go-proxmox": ("/cluster/status", {}),
    "firewall-aliases.community-proxmox": ("/cluster/firewall/aliases", {}),
    "firewall-groups.community-proxmox": ("/cluster/firewall/groups", {}),
    "firewall-ipset-name.community-proxmox": ("/cluster/firewall/ipset/test_ipset", {}),
    "firewall-ipset.community-proxmox": ("/cluster/firewall/ipset", {}),
    "firewall-rules.community-proxmox": ("/cluster/firewall/rules", {}),
    "firewall-rules.doc-sample.community-proxmox": ("/nodes/pve/qemu/100/firewall/rules", {}),
    "lxc-config-101.pvesh-pretty.go-proxmox": ("/nodes/node1/lxc/101/config", {}),
    "lxc-migrate-precondition.SYNTHETIC-WRONG-KEYS.go-proxmox": ("/nodes/node1/lxc/101/migrate", {}),
    "network-list.node1.go-proxmox": ("/nodes/node1/network", {}),
    "network-list.node2-ipv6.go-proxmox": ("/nodes/node2/network", {"/nodes": [{"node": "node2", "status": "online"}]}),
    "network-list.vlans.go-proxmox": ("/nodes/node1/network", {"/nodes": [{"node": "node1", "status": "online"}]}),
    "nodes-lxc-list.pre-8.2-string-vmid.community-proxmox": ("/nodes/pve/lxc", {}),
    "nodes-qemu-list.community-proxmox": ("/nodes/pve/qemu", {}),
    "qemu-config-102.community-proxmox": ("/nodes/pve/qemu/102/config", {}),
    "qemu-config-103.community-proxmox": ("/nodes/pve/qemu/103/config", {}),
    "qemu-migrate-precondition.SYNTHETIC.go-proxmox": ("/nodes/node1/qemu/101/migrate", {}),
    "qemu-status-current.go-proxmox": ("/nodes/node1/qemu/100/status/current", {}),
    "storage-content.SYNTHETIC.go-proxmox": ("/nodes/pve/storage/local/content", {
        "/nodes": [{"node": "pve", "status": "online"}],
        "/storage": [{"storage": "local", "type": "dir", "path": "/var/lib/vz", "content": "iso,vztmpl,backup"}]}),
    "storage-content.pbs.community-proxmox": ("/nodes/pve/storage/datastore/content", {
        "/nodes": [{"node": "pve", "status": "online"}],
        "/storage": [{"storage": "datastore", "type": "pbs", "server": "pbs", "datastore": "ds", "content": "backup"}]}),
    "storage-list.SYNTHETIC.go-proxmox": ("/storage", {}),
}
NOT_RESPONSES = {"error-responses.proxmoxer"}  # envelope shapes, checked against the simulator below
TASK_STATUS = "task-status.proxmoxer"  # several responses of one endpoint, keyed by state


def _coerce(row: Any) -> Any:
    """Numeric-looking vmids as numbers (pre-8.2 container lists send strings)."""
    if isinstance(row, dict) and isinstance(row.get("vmid"), str) and row["vmid"].isdigit():
        return {**row, "vmid": int(row["vmid"])}
    return row


def _contains(rendered: Any, sample: Any) -> list[str]:
    """Sample rows (or the sample object) missing from what the model renders."""
    if isinstance(sample, dict):
        missing = {k: v for k, v in sample.items() if not isinstance(rendered, dict) or rendered.get(k, object()) != v}
        return [f"keys {sorted(missing)}"] if missing else []
    assert isinstance(sample, list) and isinstance(rendered, list)
    rows = [_coerce(r) for r in rendered]
    return [json.dumps(row, sort_keys=True) for row in map(_coerce, sample)
            if not any(isinstance(r, dict) and row.items() <= r.items() for r in rows)]


def test_every_sample_is_covered() -> None:
    assert set(samples()) == set(SAMPLE_PATHS) | NOT_RESPONSES | {TASK_STATUS}


@pytest.mark.parametrize("name", sorted(SAMPLE_PATHS))
def test_sample_path_is_a_pve_get_endpoint(index: dict[tuple[str, str], Endpoint], name: str) -> None:
    path, _ = SAMPLE_PATHS[name]
    assert _check_call(index, "GET", path) == []


@pytest.mark.parametrize("name", sorted(SAMPLE_PATHS))
def test_sample_loads_and_renders_back(name: str) -> None:
    path, context = SAMPLE_PATHS[name]
    data = sample_data(name)
    if path == "/cluster/resources" and any(r["type"] == "storage" for r in data):
        # a real read has /storage beside /cluster/resources: the model needs it to know the storages exist
        context = {"/storage": [{"storage": r["storage"], "type": r["plugintype"], "content": r["content"]}
                                for r in data if r["type"] == "storage"]}
    model = from_api({**context, path: data})
    if path in model.other:
        # not interpreted: kept as it came, served unchanged
        assert render(model, path) == data
    else:
        assert _contains(render(model, path), data) == []
    # and it survives a snapshot round trip
    doc = dump_snapshot(model)
    assert path in doc["api"]
    again = from_api(doc["api"], doc["extra"])
    assert dump_snapshot(again, captured_at=doc["captured_at"]) == doc


def test_sample_cluster_resources_with_storage_config() -> None:
    """Storage rows of /cluster/resources render back once /storage defines the storages (as a real read has it)."""
    rows = sample_data("cluster-resources.go-proxmox")
    storages = {r["storage"]: {"storage": r["storage"], "type": r["plugintype"], "content": r["content"]}
                for r in rows if r["type"] == "storage"}
    model = from_api({"/cluster/resources": rows, "/storage": list(storages.values())})
    assert _contains(render(model, "/cluster/resources"), rows) == []
    assert _contains(render(model, "/cluster/resources?type=vm"), [r for r in rows if r["type"] == "qemu"]) == []
    # without /storage, the node and guest rows still render back
    bare = from_api({"/cluster/resources": rows})
    assert _contains(render(bare, "/cluster/resources"), [r for r in rows if r["type"] != "storage"]) == []


def test_sample_guest_lists_make_guests() -> None:
    """Container lists from before PVE 8.2 send vmid as a string: the model holds (and renders) numbers."""
    lxc = sample_data("nodes-lxc-list.pre-8.2-string-vmid.community-proxmox")
    qemu = sample_data("nodes-qemu-list.community-proxmox")
    model = from_api({"/nodes/pve/lxc": lxc, "/nodes/pve/qemu": qemu})
    assert sorted(model.guests) == sorted(int(r["vmid"]) for r in lxc + qemu)
    assert all(isinstance(r["vmid"], int) for r in render(model, "/nodes/pve/lxc"))
    assert {g.kind for g in model.guests.values() if str(g.vmid) in {str(r["vmid"]) for r in lxc}} == {"lxc"}
    running = {r["vmid"] for r in render(model, "/cluster/resources?type=vm") if r["status"] == "running"}
    assert running == {int(r["vmid"]) for r in lxc + qemu if r["status"] == "running"}


def test_sample_guest_configs_with_their_resource_rows() -> None:
    config = sample_data("qemu-config-103.community-proxmox")
    row = {"id": "qemu/103", "type": "qemu", "vmid": 103, "node": "pve", "status": "stopped", "name": "test-qemu-multi-nic"}
    model = from_api({"/cluster/resources": [row], "/nodes/pve/qemu/103/config": config})
    assert render(model, "/nodes/pve/qemu/103/config") == config
    assert {v.key for v in model.guests[103].volumes()} >= {"scsi0", "scsi1", "scsi2"}


def test_sample_task_status_renders_back() -> None:
    for state, envelope in sample_data(TASK_STATUS).items():
        if state.startswith("_"):
            continue
        data = envelope["data"]
        path = f"/nodes/{data['node']}/tasks/{data['upid']}/status"
        model = from_api({path: data})
        assert render(model, path) == data, state


# --- the simulator over HTTP ------------------------------------------------------------------------------


class StartPack:
    """An inline pack: qemu start as an async call that returns a UPID (enough to test task endpoints)."""

    @proximo.hookimpl
    def proximo_register_semantics(self, register: Any) -> None:
        def start(model: ClusterModel, call: Call) -> str:
            guest = model.guest(call.path_params["vmid"])
            if guest.running:
                raise proximo.PveApiError(500, f"VM {guest.vmid} already running")
            guest.resource["status"] = "running"
            return model.start_task(call.path_params["node"], "qmstart", str(guest.vmid), call.user,
                                    log=[f"start VM {guest.vmid}: UPID"])

        register("POST", "/nodes/{node}/qemu/{vmid}/status/start", start)


# The guests pack owns qemu start; these simulator tests keep their own inline pack, so it is left out here.
_NO_GUESTS = {"PROXIMO_DISABLED_PACKS": "guests"}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, extra_packs=[("test-start", StartPack())], env=_NO_GUESTS)


def _http(world: World, token: str | None = None) -> httpx.AsyncClient:
    headers = {} if token == "" else {"Authorization": token or f"PVEAPIToken={TOKEN_ID}={world.secret}"}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=world.sim.app), base_url="http://pve.sim:8006/api2/json",
                             headers=headers)


@pytest.mark.anyio
async def test_sim_envelope_and_content_type(world: World) -> None:
    async with _http(world) as http:
        r = await http.get("/version")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    body = r.json()
    assert set(body) == {"data"} and body["data"]["version"] == world.model.version["version"]


@pytest.mark.anyio
@pytest.mark.parametrize("auth", ["", "PVEAPIToken=proximo@pve!agent=wrong", "PVEAPIToken=nobody@pve!x=abc", "Bearer abc",
                                  "PVEAuthCookie=abc"])
async def test_sim_refuses_bad_tokens(world: World, auth: str) -> None:
    async with _http(world, token=auth) as http:
        r = await http.get("/version")
    assert r.status_code == 401
    assert r.content == b""  # pve-manager PVE/HTTPServer.pm auth_handler: the reason phrase says it, no body
    assert world.sim.requests == []  # never reached the model


@pytest.mark.anyio
async def test_sim_unknown_path_is_501(world: World) -> None:
    async with _http(world) as http:
        r = await http.get("/nodes/pve1/nonsense")
        r2 = await http.post("/nonsense", data={"a": "1"})
    assert r.status_code == 501 and r2.status_code == 501
    assert r.json()["data"] is None
    assert r.json()["message"].strip() == "Method 'GET /nodes/pve1/nonsense' not implemented"
    assert "Method 'POST /nonsense' not implemented" in r2.json()["message"]


@pytest.mark.anyio
async def test_sim_checks_get_parameters_like_pve(world: World) -> None:
    async with _http(world) as http:
        unknown = await http.get("/version", params={"verbose": "1"})
        enum = await http.get("/cluster/resources", params={"type": "guests"})
        vmid = await http.get("/nodes/pve1/qemu/abc/config")
        sid = await http.get("/nodes/pve1/storage/x/content")
        fine = await http.get("/cluster/resources", params={"type": "vm"})
    assert unknown.status_code == 400 and unknown.json()["errors"] == {
        "verbose": "property is not defined in schema and the schema does not allow additional properties"}
    assert enum.status_code == 400 and enum.json()["errors"] == {
        "type": "value 'guests' does not have a value in the enumeration 'vm, storage, node, sdn'"}
    assert vmid.status_code == 400 and vmid.json()["errors"] == {"vmid": "type check ('integer') failed - got 'abc'"}
    assert sid.status_code == 400 and sid.json()["errors"] == {"storage": "invalid format - storage ID 'x' cannot be shorter than 2 characters"}
    assert fine.status_code == 200 and {r["type"] for r in fine.json()["data"]} == {"qemu", "lxc"}


@pytest.mark.anyio
async def test_sim_does_not_serve_snapshot_paths_outside_the_schema(tmp_path: Path) -> None:
    """A snapshot may carry anything; the simulator serves only what PVE 9.1 has."""
    doc = demo_snapshot()
    doc["api"]["/nodes/pve1/made-up"] = {"x": 1}
    world = World(tmp_path, doc)
    assert "/nodes/pve1/made-up" in world.model.other
    async with _http(world) as http:
        r = await http.get("/nodes/pve1/made-up")
    assert r.status_code == 501 and r.json()["message"].strip() == "Method 'GET /nodes/pve1/made-up' not implemented"


@pytest.mark.anyio
async def test_sim_unknown_parameter_is_400_keyed_by_parameter(world: World) -> None:
    async with _http(world) as http:
        r = await http.post("/storage", data={"storage": "dir9", "type": "dir", "path": "/srv/d", "bogus": "1"})
        r2 = await http.put("/storage/local", data={"disable": "perhaps"})
    assert r.status_code == 400
    body = r.json()
    assert body["data"] is None and body["message"].strip() == "Parameter verification failed."
    assert body["errors"] == {"bogus": "property is not defined in schema and the schema does not allow additional properties"}
    assert r2.status_code == 400 and r2.json()["errors"] == {"disable": "type check ('boolean') failed - got 'perhaps'"}
    assert "dir9" not in world.model.storages


@pytest.mark.anyio
async def test_sim_error_body_has_pves_shape(world: World) -> None:
    shapes = sample_data("error-responses.proxmoxer")
    async with _http(world) as http:
        r = await http.get("/storage/nonexistent")
    assert r.status_code == 500
    # proxmoxer mocks the extjs formatter's body (status, success); the json formatter sends data and message
    # (pve-http-server src/PVE/APIServer/Formatter/Standard.pm prepare_response_data)
    assert set(r.json()) == set(shapes["query-url-metadata_500"]) - {"status", "success"} == {"data", "message"}
    assert r.json()["message"] == "storage 'nonexistent' does not exist\n"


@pytest.mark.anyio
async def test_sim_injected_fault_answers_once(world: World) -> None:
    world.sim.inject_fault("GET", r"^/version$", 503, "service unavailable")
    async with _http(world) as http:
        first = await http.get("/version")
        second = await http.get("/version")
    assert first.status_code == 503
    assert first.json()["data"] is None and first.json()["message"].strip() == "service unavailable"
    assert second.status_code == 200 and second.json()["data"]


@pytest.mark.anyio
async def test_sim_fault_on_a_write_leaves_the_model_alone(world: World) -> None:
    world.sim.inject_fault("DELETE", r"^/storage/", 500, "cfs-lock 'file-storage_cfg' error: got lock request timeout", times=1)
    async with _http(world) as http:
        r = await http.delete("/storage/cifs-iso")
        assert r.status_code == 500 and "cifs-iso" in world.model.storages
        r = await http.delete("/storage/cifs-iso")
    assert r.status_code == 200 and r.json() == {"data": None}
    assert "cifs-iso" not in world.model.storages


@pytest.mark.anyio
async def test_sim_form_and_json_bodies(world: World) -> None:
    async with _http(world) as http:
        form = await http.post("/storage", data={"storage": "dir-form", "type": "dir", "path": "/srv/a", "content": "iso"})
        js = await http.post("/storage", json={"storage": "dir-json", "type": "dir", "path": "/srv/b", "content": "iso", "shared": False})
        put = await http.put("/storage/dir-json", json={"disable": True})
        dele = await http.delete("/storage/dir-form", params={})
        listed = await http.get("/storage", params={"type": "dir"})
    assert [x.status_code for x in (form, js, put, dele)] == [200, 200, 200, 200]
    rows = {r["storage"]: r for r in listed.json()["data"]}
    assert set(rows) == {"local", "dir-json"}
    assert rows["dir-json"]["disable"] == 1 and rows["dir-json"]["shared"] == 0 and rows["dir-json"]["path"] == "/srv/b"


@pytest.mark.anyio
async def test_sim_upid_is_readable(world: World) -> None:
    async with _http(world) as http:
        r = await http.post("/nodes/pve1/qemu/121/status/start")
        assert r.status_code == 200
        upid = r.json()["data"]
        assert upid.startswith("UPID:pve1:") and upid.endswith(f":qmstart:121:{TOKEN_ID}:")
        quoted = urllib.parse.quote(upid, safe=":@!")
        status = await http.get(f"/nodes/pve1/tasks/{quoted}/status")
        log = await http.get(f"/nodes/pve1/tasks/{quoted}/log", params={"start": 0, "limit": 50})
        encoded = await http.get(f"/nodes/pve1/tasks/{urllib.parse.quote(upid, safe='')}/status")
        again = await http.post("/nodes/pve1/qemu/121/status/start")
        wrong_node = await http.get(f"/nodes/pve2/tasks/{quoted}/status")
    assert status.status_code == 200
    assert status.json()["data"]["upid"] == upid
    assert status.json()["data"]["status"] == "stopped" and status.json()["data"]["exitstatus"] == "OK"
    assert log.json()["data"] == [{"n": 1, "t": "start VM 121: UPID"}, {"n": 2, "t": "TASK OK"}]
    assert encoded.status_code == 200 and encoded.json()["data"]["upid"] == upid
    assert again.status_code == 500 and again.json()["message"] == "VM 121 already running\n"
    assert wrong_node.status_code == 500
    assert world.model.guests[121].running


@pytest.mark.anyio
async def test_sim_task_runs_for_a_few_polls(tmp_path: Path) -> None:
    world = World(tmp_path, extra_packs=[("test-start", StartPack())], env=_NO_GUESTS)
    world.sim.task_polls = 2
    async with _http(world) as http:
        upid = (await http.post("/nodes/pve1/qemu/121/status/start")).json()["data"]
        states = [(await http.get(f"/nodes/pve1/tasks/{upid}/status")).json()["data"]["status"] for _ in range(3)]
    assert states == ["running", "stopped", "stopped"]


@pytest.mark.anyio
async def test_sim_through_the_client(world: World) -> None:
    """The client and the simulator agree on the wire: data unwrapped, PVE errors raised with their parameter errors."""
    async with PveClient("http://pve.sim:8006", TOKEN_ID, world.secret, transport=world.transport(), backoff=0) as client:
        assert (await client.get("/version"))["version"]
        upid = await client.send("POST", "/nodes/pve1/qemu/121/status/start")
        result = await client.wait_task("pve1", upid, poll=0.001)
        assert result.ok and result.log[-1] == "TASK OK"
        with pytest.raises(proximo.PveApiError) as err:
            await client.send("POST", "/storage", {"storage": "x", "type": "dir", "path": "/x"})
    assert err.value.status == 400
    assert err.value.errors == {"storage": "invalid format - storage ID 'x' cannot be shorter than 2 characters"}


# --- routes the simulator serves outside the 9.1 schema ---------------------------------------------------


@pytest.mark.anyio
async def test_sim_serves_nothing_outside_the_schema(world: World, index: dict[tuple[str, str], Endpoint]) -> None:
    """Every GET the simulator answers with 200 is a 9.1 endpoint (probe every path it renders, plus detail views)."""
    paths = _demo_paths() + _rendered_routes(world.model)
    async with _http(world) as http:
        for path in paths:
            base, _, query = path.partition("?")
            r = await http.get(base, params=dict(urllib.parse.parse_qsl(query)))
            assert r.status_code == 200, (path, r.text)
            assert _check_call(index, "GET", path) == [], path
