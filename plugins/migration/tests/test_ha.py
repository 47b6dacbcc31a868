"""The HA part of the migration pack: tools, semantics and impacts on snapshots in the real API's shapes.

Each rule is checked through the named tool and through ``api.call`` with the same steps (the same plan), on
PVE 9.1 (rules) and 8.4 (groups) where they differ, and plan -> apply -> undo runs on the simulator.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from proximo import ApiCall, BadInput, Plan, Risk
from proximo.testing import World, operator_access, snapshot_from
from proximo_migration import _ha

pytestmark = pytest.mark.anyio

GiB = 1024**3
NODES = ("pve1", "pve2", "pve3")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# guests: vmid -> (kind, node, status, maxmem GiB)
GUESTS: dict[int, tuple[str, str, str, int]] = {
    100: ("qemu", "pve1", "running", 4), 101: ("qemu", "pve2", "running", 4), 102: ("qemu", "pve3", "stopped", 2),
    200: ("lxc", "pve2", "running", 1), 201: ("lxc", "pve3", "running", 1),
}
RESOURCES = [  # GET /cluster/ha/resources rows (PVE adds the file's digest to each)
    {"sid": "vm:100", "type": "vm", "state": "started", "max_restart": 1, "max_relocate": 1},
    {"sid": "vm:101", "type": "vm", "state": "started", "comment": "db"},
    {"sid": "ct:200", "type": "ct", "state": "started"},
]
RULES = [  # GET /cluster/ha/rules rows (9.x)
    {"rule": "db-on-pve2", "type": "node-affinity", "nodes": "pve2", "resources": "vm:101", "strict": 1, "order": 1},
]


def make_snapshot(release: str = "9.1", *, groups: list[dict[str, Any]] | None = None,
                  resources: list[dict[str, Any]] | None = None, node_gib: int = 32) -> dict[str, Any]:
    version = {"9.1": "9.1.2", "8.4": "8.4.1"}[release]
    digest = "0a" * 20
    api: dict[str, Any] = {
        "/version": {"version": version, "release": release, "repoid": "2a5fa54a8503f96d"},
        "/cluster/status": [{"id": "cluster", "type": "cluster", "name": "lab", "nodes": 3, "quorate": 1, "version": 7}]
        + [{"id": f"node/{n}", "type": "node", "name": n, "nodeid": i + 1, "ip": f"10.0.0.{11 + i}", "online": 1,
            "local": int(i == 0), "level": ""} for i, n in enumerate(NODES)],
        "/nodes": [{"node": n, "id": f"node/{n}", "type": "node", "status": "online", "level": "", "maxcpu": 16,
                    "maxmem": node_gib * GiB, "mem": 4 * GiB, "cpu": 0.03, "uptime": 864000} for n in NODES],
        "/storage": [{"storage": "ceph-vm", "type": "rbd", "pool": "vm-pool", "content": "images,rootdir", "shared": 1,
                      "digest": "3f" * 20}],
        **operator_access(),
        "/cluster/backup": [], "/cluster/replication": [],
        "/cluster/ha/resources": [{**r, "digest": digest} for r in copy.deepcopy(resources if resources is not None else RESOURCES)],
    }
    if release == "8.4":
        api["/cluster/ha/groups"] = [{**g, "digest": "1b" * 20} for g in copy.deepcopy(groups or [])]
    else:
        api["/cluster/ha/rules"] = [{**r, "digest": "2c" * 20} for r in copy.deepcopy(RULES)]
    rows: list[dict[str, Any]] = [{"id": f"node/{n}", "type": "node", "node": n, "status": "online", "level": "", "maxcpu": 16,
                                   "maxmem": node_gib * GiB, "mem": 4 * GiB, "uptime": 864000} for n in NODES]
    for vmid, (kind, node, status, mem) in GUESTS.items():
        rows.append({"id": f"{kind}/{vmid}", "type": kind, "vmid": vmid, "node": node, "name": f"g{vmid}", "status": status,
                     "template": 0, "maxcpu": 2, "maxmem": mem * GiB, "maxdisk": 8 * GiB, "uptime": 3600 if status == "running" else 0})
        disk = {"scsi0": f"ceph-vm:vm-{vmid}-disk-0,size=8G", "name": f"g{vmid}", "memory": mem * 1024, "ostype": "l26"} \
            if kind == "qemu" else {"rootfs": f"ceph-vm:vm-{vmid}-disk-0,size=8G", "hostname": f"g{vmid}", "memory": mem * 1024,
                                    "ostype": "debian", "arch": "amd64"}
        api[f"/nodes/{node}/{kind}/{vmid}/config"] = {**disk, "digest": f"{vmid:040x}"}
    for n in NODES:
        rows.append({"id": f"storage/{n}/ceph-vm", "type": "storage", "storage": "ceph-vm", "node": n, "status": "available",
                     "plugintype": "rbd", "content": "images,rootdir", "shared": 1, "disk": GiB, "maxdisk": 100 * GiB})
    api["/cluster/resources"] = rows
    api["/nodes/pve1/storage/ceph-vm/content"] = [
        {"volid": f"ceph-vm:vm-{v}-disk-0", "content": "images" if k == "qemu" else "rootdir", "format": "raw", "size": 8 * GiB,
         "vmid": v} for v, (k, *_) in GUESTS.items()]
    return snapshot_from(api)


def world_of(tmp_path: Path, release: str = "9.1", **kw: Any) -> World:
    return World(tmp_path, make_snapshot(release, **kw))


async def plan_of(world: World, tool: str, params: dict[str, Any]) -> Plan:
    async with world.host() as host:
        return await host.plan(tool, params, world.actor)


def effects(plan: Plan) -> list[tuple[str, str]]:
    return sorted((i.target, i.effect) for i in plan.impacts)


def non_gets(world: World) -> list[tuple[str, str]]:
    return [r for r in world.sim.requests if r[0] != "GET"]


# --- the named tool and api.call give the same plan ---------------------------------------------------------------

EQUIVALENCE: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    ("9.1", "stop through HA", "ha.resource.update", {"sid": "vm:100", "state": "stopped"},
     {"method": "PUT", "path": "/cluster/ha/resources/vm:100", "params": {"state": "stopped"}}),
    ("9.1", "disable", "ha.resource.update", {"sid": "100", "state": "disabled"},
     {"method": "PUT", "path": "/cluster/ha/resources/vm:100", "params": {"state": "disabled"}}),
    ("9.1", "add a stopped VM started", "ha.resource.add", {"sid": "vm:102"},
     {"method": "POST", "path": "/cluster/ha/resources", "params": {"sid": "vm:102"}}),
    ("9.1", "remove", "ha.resource.remove", {"sid": "ct:200"}, {"method": "DELETE", "path": "/cluster/ha/resources/ct:200"}),
    ("9.1", "migrate a VM", "ha.resource.migrate", {"sid": "vm:100", "node": "pve3"},
     {"method": "POST", "path": "/cluster/ha/resources/vm:100/migrate", "params": {"node": "pve3"}}),
    ("9.1", "relocate a CT", "ha.resource.relocate", {"sid": "ct:200", "node": "pve1"},
     {"method": "POST", "path": "/cluster/ha/resources/ct:200/relocate", "params": {"node": "pve1"}}),
    ("9.1", "rule moves a VM", "ha.rule.update", {"rule": "db-on-pve2", "nodes": "pve3"},
     {"method": "PUT", "path": "/cluster/ha/rules/db-on-pve2", "params": {"type": "node-affinity", "nodes": "pve3"}}),
    ("9.1", "rule moves a CT", "ha.rule.create", {"rule": "ct-pve1", "type": "node-affinity", "nodes": "pve1", "resources": "ct:200"},
     {"method": "POST", "path": "/cluster/ha/rules",
      "params": {"rule": "ct-pve1", "type": "node-affinity", "nodes": "pve1", "resources": "ct:200"}}),
    ("9.1", "rule deleted", "ha.rule.delete", {"rule": "db-on-pve2"}, {"method": "DELETE", "path": "/cluster/ha/rules/db-on-pve2"}),
    ("8.4", "group created", "ha.group.create", {"group": "front", "nodes": "pve3:2,pve1"},
     {"method": "POST", "path": "/cluster/ha/groups", "params": {"group": "front", "nodes": "pve3:2,pve1"}}),
    ("8.4", "resource joins a group", "ha.resource.update", {"sid": "vm:100", "group": "front"},
     {"method": "PUT", "path": "/cluster/ha/resources/vm:100", "params": {"group": "front"}}),
]
FRONT = [{"group": "front", "type": "group", "nodes": "pve3:2,pve1"}]


@pytest.mark.parametrize(("release", "tool", "params", "call"), [pytest.param(*c[:1], *c[2:], id=c[1]) for c in EQUIVALENCE])
async def test_api_call_reports_exactly_what_the_ha_tool_reports(tmp_path: Path, release: str, tool: str, params: dict[str, Any],
                                                                 call: dict[str, Any]) -> None:
    world = world_of(tmp_path, release, groups=FRONT if "group" in params and tool != "ha.group.create" else None)
    async with world.host() as host:
        named = await host.plan(tool, params, world.actor)
        raw = await host.plan("api.call", call, world.actor)
    assert not named.blocked, named.blockers
    assert named.impacts == raw.impacts and named.risk is raw.risk
    assert named.undo == raw.undo and named.undo
    assert named.notes == raw.notes and named.steps == raw.steps
    assert non_gets(world) == []


# --- requested states ---------------------------------------------------------------------------------------------


async def test_stop_through_ha_then_undo_starts_it_again(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    async with world.host() as host:
        plan = await host.plan("ha.resource.update", {"sid": "vm:100", "state": "stopped"}, world.actor)
        assert effects(plan) == [("ha/vm:100", "downtime"), ("qemu/100", "downtime")]  # the guests pack's, on HA's effect
        assert plan.steps[0].params["digest"] == "0a" * 20  # Proxmox's own concurrent-edit check
        assert plan.undo == [ApiCall("PUT", "/cluster/ha/resources/vm:100", {"state": "started"})]
        if host.needs_person(plan):
            host.approve(plan.plan_id, world.actor, world.person)
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction
        assert world.model.guests[100].resource["status"] == "stopped"
        undo = await host.undo(result.ledger.seq, world.actor)
        assert not undo.impacts
        assert (await host.apply(undo.plan_id, world.actor)).ok
    assert world.model.guests[100].running and _ha._resource(world.model, "vm:100")["state"] == "started"


async def test_disabled_and_ignored_say_what_ha_stops_doing(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    disabled = await plan_of(world, "ha.resource.update", {"sid": "vm:100", "state": "disabled"})
    reason = next(i.reason for i in disabled.impacts if i.target == "ha/vm:100")
    assert "neither restarts nor recovers it" in reason and disabled.risk is Risk.HIGH
    ignored = await plan_of(world, "ha.resource.update", {"sid": "ct:200", "state": "ignored"})
    assert effects(ignored) == [("ha/ct:200", "degraded")] and ignored.risk is Risk.MEDIUM


async def test_adding_a_stopped_guest_started_starts_it_and_the_undo_stops_it(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    async with world.host() as host:
        plan = await host.plan("ha.resource.add", {"sid": "102"}, world.actor)
        assert plan.steps == [ApiCall("POST", "/cluster/ha/resources", {"sid": "vm:102"})]
        assert plan.undo == [ApiCall("DELETE", "/cluster/ha/resources/vm:102", {}),
                             ApiCall("POST", "/nodes/pve3/qemu/102/status/stop", {})]
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and world.model.guests[102].running
        undo = await host.undo(result.ledger.seq, world.actor)
        if host.needs_person(undo):
            host.approve(undo.plan_id, world.actor, world.person)
        assert (await host.apply(undo.plan_id, world.actor)).ok
    assert not world.model.guests[102].running and _ha._resource(world.model, "vm:102") is None


async def test_removing_a_resource_leaves_the_guest_running_unmanaged_and_purges_its_rules(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    async with world.host() as host:
        plan = await host.plan("ha.resource.remove", {"sid": "vm:101"}, world.actor)
        assert effects(plan) == [("ha/vm:101", "degraded")] and plan.risk is Risk.MEDIUM
        assert "keeps running on pve2, unmanaged" in plan.impacts[0].reason
        assert plan.undo == [ApiCall("POST", "/cluster/ha/resources", {"sid": "vm:101", "type": "vm", "state": "started", "comment": "db"}),
                             ApiCall("POST", "/cluster/ha/rules", {"rule": "db-on-pve2", "type": "node-affinity",
                                                                   "resources": "vm:101", "nodes": "pve2", "strict": 1})]
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction
        assert world.model.ha_rules == [] and world.model.guests[101].running  # purge (PVE 9's default) took the rule
        undo = await host.undo(result.ledger.seq, world.actor)
        assert (await host.apply(undo.plan_id, world.actor)).ok
    assert [r["rule"] for r in world.model.ha_rules or []] == ["db-on-pve2"]


async def test_pve_refusals_are_blockers_in_proxmox_words(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    cases = [
        ({"method": "POST", "path": "/cluster/ha/resources", "params": {"sid": "vm:100"}},
         "create resource failed: resource ID 'vm:100' already defined"),
        ({"method": "POST", "path": "/cluster/ha/resources", "params": {"sid": "ct:100"}},
         "resource 'ct:100' - guest with ID 100 is not a container"),
        ({"method": "POST", "path": "/cluster/ha/resources", "params": {"sid": "999"}},
         "unable to detect SID from VMID - VM/CT 999 does not exist"),
        ({"method": "DELETE", "path": "/cluster/ha/resources/vm:102"}, "cannot delete service 'vm:102', not HA managed!"),
        ({"method": "POST", "path": "/cluster/ha/resources/vm:102/migrate", "params": {"node": "pve1"}},
         "resource 'vm:102' is not HA managed"),
        ({"method": "PUT", "path": "/cluster/ha/resources/vm:100", "params": {"group": "web"}},
         "invalid parameter 'group': ha groups have been migrated to rules"),
        ({"method": "POST", "path": "/cluster/ha/rules",
          "params": {"rule": "rr", "type": "node-affinity", "nodes": "pve9", "resources": "vm:100"}},
         "create ha rule failed: cannot use non-existent node(s) pve9."),
        ({"method": "POST", "path": "/cluster/ha/rules",
          "params": {"rule": "rr", "type": "resource-affinity", "affinity": "positive", "resources": "vm:100,vm:102"}},
         "create ha rule failed: cannot use unmanaged resource(s) vm:102."),
        ({"method": "POST", "path": "/cluster/ha/rules", "params": {"rule": "rr", "type": "node-affinity", "resources": "vm:100"}},
         "missing value for required option 'nodes'"),
        ({"method": "PUT", "path": "/cluster/ha/resources/vm:100", "params": {"state": "stopped", "digest": "ff" * 20}},
         "detected modified configuration - file changed by other user? Try again."),
    ]
    for call, text in cases:
        plan = await plan_of(world, "api.call", call)
        assert f"{call['method']} {call['path']}: Proxmox would refuse: {text}" in plan.blockers, (call, plan.blockers)


# --- placement: rules, moves, affinity --------------------------------------------------------------------------------


async def test_a_rule_change_moves_a_vm_live_and_relocates_a_container(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    vm = await plan_of(world, "ha.rule.update", {"rule": "db-on-pve2", "nodes": "pve3"})
    assert effects(vm) == [("ha/vm:101", "degraded")] and vm.risk is Risk.MEDIUM
    assert "live-migrates vm:101 (g101) from pve2 to pve3" in vm.impacts[0].reason
    ct = await plan_of(world, "ha.rule.create", {"rule": "ct-pve1", "type": "node-affinity", "nodes": "pve1", "resources": "ct:200"})
    assert effects(ct) == [("ha/ct:200", "downtime")] and "shut down, moved and started again" in ct.impacts[0].reason


async def test_migrate_outside_a_strict_rule_is_moved_back(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    plan = await plan_of(world, "ha.resource.migrate", {"sid": "vm:101", "node": "pve1"})
    assert not plan.blocked and not plan.undo  # HA moves it back: it ends where it was
    assert effects(plan) == [("ha/vm:101", "degraded")]  # the same impact a guest's own migrate call gets
    assert any("moves it back to pve2" in n for n in plan.notes)


async def test_migrate_and_relocate_move_the_guest_and_undo_moves_it_back(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    async with world.host() as host:
        plan = await host.plan("ha.resource.relocate", {"sid": "ct:200", "node": "pve1"}, world.actor)
        assert effects(plan) == [("lxc/200", "downtime")]  # relocate: the container restarts on pve1
        assert plan.undo == [ApiCall("POST", "/cluster/ha/resources/ct:200/relocate", {"node": "pve2"})]
        if host.needs_person(plan):
            host.approve(plan.plan_id, world.actor, world.person)
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction and world.model.guests[200].node == "pve1"
        live = await host.plan("ha.resource.migrate", {"sid": "vm:100", "node": "pve2"}, world.actor)
        assert effects(live) == []  # a live migration: no restart
        undo = await host.undo(result.ledger.seq, world.actor)
        if host.needs_person(undo):
            host.approve(undo.plan_id, world.actor, world.person)
        assert (await host.apply(undo.plan_id, world.actor)).ok
    assert world.model.guests[200].node == "pve2"


async def test_negative_affinity_on_the_target_makes_the_crm_refuse(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    world.packs.semantics.execute(world.model, "POST", "/cluster/ha/rules",
                                  {"rule": "apart", "type": "resource-affinity", "affinity": "negative", "resources": "vm:100,ct:200"})
    named = await plan_of(world, "ha.resource.migrate", {"sid": "vm:100", "node": "pve2"})
    raw = await plan_of(world, "api.call", {"method": "POST", "path": "/cluster/ha/resources/vm:100/migrate", "params": {"node": "pve2"}})
    text = ("POST /cluster/ha/resources/vm:100/migrate: Proxmox would refuse: crm command 'migrate vm:100 pve2' error - "
            "service 'ct:200' on node 'pve2' in negative affinity with service 'vm:100'")
    assert named.blockers == raw.blockers == [text]


async def test_positive_affinity_comigrates(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    world.packs.semantics.execute(world.model, "POST", "/cluster/ha/rules",
                                  {"rule": "pair", "type": "resource-affinity", "affinity": "positive", "resources": "vm:100,ct:200"})
    assert {world.model.guests[v].node for v in (100, 200)} == {"pve1", "pve2"}  # HA would gather them: the rule's plan says so
    world.model.guests[200].node = "pve1"
    world.model.guests[200].resource["node"] = "pve1"
    plan = await plan_of(world, "ha.resource.migrate", {"sid": "vm:100", "node": "pve3"})
    assert effects(plan) == [("lxc/200", "downtime")]  # the container goes with it (relocated)


async def test_infeasible_rules_are_refused_and_rules_pve_would_drop_are_named(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    second = await plan_of(world, "ha.rule.create", {"rule": "db-2", "type": "node-affinity", "nodes": "pve1", "resources": "vm:101"})
    assert second.blockers == ["POST /cluster/ha/rules: Proxmox would refuse: create ha rule failed: 400 Rule 'db-2' is invalid. "
                               "resources: resource 'vm:101' is already used in another node affinity rule"]
    # a resource-affinity rule left with one resource: PVE keeps it in rules.cfg and drops it when it compiles
    world.packs.semantics.execute(world.model, "POST", "/cluster/ha/rules",
                                  {"rule": "pair", "type": "resource-affinity", "affinity": "positive", "resources": "vm:100,ct:200"})
    plan = await plan_of(world, "ha.resource.remove", {"sid": "ct:200"})  # purge leaves 'pair' with vm:100 alone
    assert ("ha-rule/pair", "ha-error") in effects(plan)
    assert "Drop rule 'pair', because rule is ineffective as there are less than two resources." in \
        next(i.reason for i in plan.impacts if i.target == "ha-rule/pair")


async def test_a_node_left_with_more_ha_load_than_the_others_can_take(tmp_path: Path) -> None:
    world = world_of(tmp_path, node_gib=5)  # pve1 runs 4 GiB of HA guests; pve2 is full, pve3 has 4 GiB free
    plan = await plan_of(world, "ha.resource.add", {"sid": "vm:102"})  # HA starts vm:102 (2 GiB) on pve3
    fence = next(i for i in plan.impacts if i.target == "node/pve1")
    assert fence.effect == "degraded" and fence.risk is Risk.HIGH
    assert "4.0 GiB of HA guests" in fence.reason and "2.0 GiB free" in fence.reason
    assert not [i for i in (await plan_of(world_of(tmp_path / "big"), "ha.resource.add", {"sid": "vm:102"})).impacts
                if i.target.startswith("node/")]


# --- releases: groups on 8.4, rules on 9.x ---------------------------------------------------------------------------------


async def test_groups_on_84_place_resources_and_undo(tmp_path: Path) -> None:
    world = world_of(tmp_path, "8.4", groups=FRONT)
    async with world.host() as host:
        plan = await host.plan("ha.resource.update", {"sid": "vm:100", "group": "front"}, world.actor)
        assert effects(plan) == [("ha/vm:100", "degraded")] and "from pve1 to pve3" in plan.impacts[0].reason
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok
        delete = await host.plan("ha.group.delete", {"group": "front"}, world.actor)
        assert delete.blockers == ["DELETE /cluster/ha/groups/front: Proxmox would refuse: delete ha group failed: "
                                   "ha group is used by service 'vm:100'"]
        update = await host.plan("ha.group.update", {"group": "front", "nofailback": 1}, world.actor)
        assert update.undo == [ApiCall("PUT", "/cluster/ha/groups/front", {"delete": "nofailback"})]
        assert effects(update) == []  # without failback it stays where it is


async def test_release_decides_groups_or_rules(tmp_path: Path) -> None:
    on9 = world_of(tmp_path / "9", "9.1")
    with pytest.raises(BadInput, match="replaced HA groups with HA rules"):
        await plan_of(on9, "ha.group.create", {"group": "front", "nodes": "pve1"})
    on8 = world_of(tmp_path / "8", "8.4")
    with pytest.raises(BadInput, match="PVE 9.1"):
        await plan_of(on8, "ha.rule.create", {"rule": "rr", "type": "node-affinity", "nodes": "pve1", "resources": "vm:100"})
    with pytest.raises(BadInput, match="not implemented"):
        await plan_of(on8, "api.call", {"method": "DELETE", "path": "/cluster/ha/rules/rr"})
    with pytest.raises(BadInput, match="failback"):  # a PVE 9 parameter
        await plan_of(on8, "api.call", {"method": "PUT", "path": "/cluster/ha/resources/vm:100", "params": {"failback": 0}})


@pytest.fixture(params=["8", "9"])
def both(request: pytest.FixtureRequest) -> str:
    return {"8": "8.4", "9": "9.1"}[request.param]


@pytest.mark.parametrize("bad", ["..", "vm:..", "vm:%2e", "vm:1/2", "ct:١٠٠", "vm:100/../101", "x:100"])
async def test_hostile_ids_are_refused_before_any_request(tmp_path: Path, bad: str) -> None:
    world = world_of(tmp_path)
    for tool, params in (("ha.resource.update", {"sid": bad, "state": "stopped"}), ("ha.resource.remove", {"sid": bad}),
                         ("ha.resource.migrate", {"sid": bad, "node": "pve2"}), ("ha.rule.delete", {"rule": bad}),
                         ("ha.group.delete", {"group": bad})):
        with pytest.raises(BadInput) as refused:
            await plan_of(world, tool, params)
        assert "\n" not in str(refused.value)
    assert non_gets(world) == []


async def test_status_shows_requested_state_and_where_ha_places_each(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    world.model.ha_rules.append({"rule": "front", "type": "node-affinity", "nodes": "pve3", "resources": "vm:100", "order": 2})
    async with world.host() as host:
        rows = (await host.read("ha.status", {}, world.actor)).data
    by_sid = {r["sid"]: r for r in rows}
    assert by_sid["vm:100"]["node"] == "pve1" and by_sid["vm:100"]["ha_node"] == "pve3"
    assert by_sid["vm:101"]["node_affinity"] == "db-on-pve2" and by_sid["ct:200"]["state"] == "started"
