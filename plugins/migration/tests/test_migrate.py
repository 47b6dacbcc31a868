"""Migration and evacuation on the simulated demo cluster (its API shapes are real: proximo/sim/demo_cluster.json):
Proxmox's own refusals, what it never checks, HA's way of migrating, and api.call getting the same plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proximo import ApiCall, BadInput, Risk
from proximo.model import dump_snapshot
from proximo.testing import World

pytestmark = pytest.mark.anyio
GiB = 1024**3


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def effects(plan: Any) -> set[tuple[str, str]]:
    return {(i.target, i.effect) for i in plan.impacts}


def refusal(plan: Any) -> str:
    assert plan.blocked, plan
    return " | ".join(plan.blockers)


async def plan(world: World, tool: str, params: dict[str, Any]) -> Any:
    async with world.host() as host:
        return await host.plan(tool, params, world.actor)


# --- what Proxmox refuses, through the tool and through api.call alike -------------------------------------------


async def test_a_running_vm_needs_online_and_the_tool_sends_it(world: World) -> None:
    raw = await plan(world, "api.call", {"method": "POST", "path": "/nodes/pve1/qemu/120/migrate", "params": {"target": "pve2"}})
    assert "can't migrate running VM without --online" in refusal(raw)
    named = await plan(world, "guest.migrate", {"vmid": 120, "target": "pve2"})
    # its disks are on local-zfs: a live migration copies them, which Proxmox refuses without with-local-disks
    assert named.steps == [ApiCall("POST", "/nodes/pve1/qemu/120/migrate", {"target": "pve2", "online": 1, "with-local-disks": 1})]
    assert not named.blocked and named.risk is Risk.MEDIUM and named.impacts == []  # live: no downtime
    assert any(n.startswith("qemu/120 copies 2 local volumes to pve2") and "min at 1 Gbit/s" in n for n in named.notes)


async def test_local_devices_block_and_force_is_root_only(world: World) -> None:
    world.model.guests[121].config["hostpci0"] = "0000:01:00.0,pcie=1"
    blocked = await plan(world, "guest.migrate", {"vmid": 121, "target": "pve2"})
    assert "can't migrate VM which uses local devices: hostpci0" in refusal(blocked)
    with pytest.raises(BadInput, match="force: Only root may use this option."):
        await plan(world, "guest.migrate", {"vmid": 121, "target": "pve2", "force": True})


async def test_a_local_iso_blocks_a_vm_and_its_migration(world: World) -> None:
    world.model.guests[120].config["ide2"] = "local:iso/debian-12.5.0-amd64-netinst.iso,media=cdrom"
    blocked = await plan(world, "guest.migrate", {"vmid": 120, "target": "pve2"})
    assert "local cdrom image" in refusal(blocked)


async def test_a_running_container_moves_in_restart_mode_never_online(world: World) -> None:
    raw = await plan(world, "api.call", {"method": "POST", "path": "/nodes/pve1/lxc/201/migrate", "params": {"target": "pve3", "online": 1}})
    assert "lxc live migration is currently not implemented" in refusal(raw)
    none = await plan(world, "api.call", {"method": "POST", "path": "/nodes/pve1/lxc/201/migrate", "params": {"target": "pve3"}})
    assert "can't migrate running container without --online or --restart" in refusal(none)
    named = await plan(world, "guest.migrate", {"vmid": 201, "target": "pve3"})
    assert named.steps[0].params == {"target": "pve3", "restart": 1}
    down = next(i for i in named.impacts if i.effect == "downtime")
    assert down.target == "lxc/201" and "restart mode" in down.reason
    assert not any(i.effect == "data-loss" for i in named.impacts)  # its local volume moved, it did not vanish


async def test_a_bind_mount_keeps_a_container_on_its_node(world: World) -> None:
    blocked = await plan(world, "guest.migrate", {"vmid": 203, "target": "pve1"})
    assert "cannot migrate local bind mount point 'mp1'" in refusal(blocked)


async def test_a_storage_the_target_lacks_blocks(world: World) -> None:
    world.model.guests[120].config["ide2"] = "cifs-iso:iso/debian-12.5.0-amd64-netinst.iso,media=cdrom"
    blocked = await plan(world, "guest.migrate", {"vmid": 120, "target": "pve3"})
    assert "storage 'cifs-iso' is not available on node 'pve3'" in refusal(blocked)


async def test_a_missing_bridge_on_the_target_aborts_a_live_migration_and_breaks_a_cold_ones_start(world: World) -> None:
    network = world.model.nodes["pve3"].network or []
    world.model.nodes["pve3"].network = [r for r in network if r["iface"] != "vmbr0"]
    live = await plan(world, "guest.migrate", {"vmid": 120, "target": "pve3"})
    assert "bridge 'vmbr0' does not exist" in refusal(live)
    cold = await plan(world, "guest.migrate", {"vmid": 121, "target": "pve3"})
    assert not cold.blocked and ("qemu/121", "wont-boot") in effects(cold)


async def test_proxmox_checks_no_capacity_and_the_plan_does(world: World) -> None:
    world.model.nodes["pve2"].resource["maxmem"] = 16 * GiB  # running there now: 12.5 GiB
    over = await plan(world, "guest.migrate", {"vmid": 120, "target": "pve2"})
    node = next(i for i in over.impacts if i.target == "node/pve2")
    assert node.effect == "degraded" and node.risk is Risk.HIGH and over.risk is Risk.HIGH
    assert "may use 20.5 GiB of memory, the node has 16.0 GiB (was 12.5 GiB)" in node.reason


async def test_a_replicated_vm_live_migrates_only_to_its_replication_target(world: World) -> None:
    world.model.guests[104].config.pop("ide2")
    world.model.ha_resources.clear()
    blocked = await plan(world, "guest.migrate", {"vmid": 104, "target": "pve3"})
    assert "Cannot live-migrate replicated VM to node 'pve3' - not a replication target" in refusal(blocked)
    ok = await plan(world, "guest.migrate", {"vmid": 104, "target": "pve2"})
    assert not ok.blocked
    assert any("replication 104-0 (pve1 -> pve2) becomes pve2 -> pve1" in n for n in ok.notes)


async def test_moving_a_cold_vm_away_from_its_replication_pair_makes_the_next_run_a_full_sync(world: World) -> None:
    world.model.replication_jobs.append({"id": "121-0", "guest": 121, "jobnum": 0, "source": "pve1", "target": "pve3",
                                         "schedule": "*/15", "type": "local"})
    moved = await plan(world, "guest.migrate", {"vmid": 121, "target": "pve2"})
    full = next(i for i in moved.impacts if i.target == "replication/121-0")
    assert "full sync" in full.reason and full.risk is Risk.MEDIUM


# --- HA -------------------------------------------------------------------------------------------------------


async def test_an_ha_guest_is_moved_by_ha_with_its_own_parameters(world: World) -> None:
    world.model.guests[104].config.pop("ide2")
    world.model.ha_rules = []  # its rule prefers pve1 (failback): HA would move it back, see below
    async with world.host() as host:
        p = await host.plan("guest.migrate", {"vmid": 104, "target": "pve2"}, world.actor)
        assert any("Proxmox only queues `ha-manager migrate vm:104 pve2`" in n and "drops online, with-local-disks" in n
                   for n in p.notes)
        result = await host.apply(p.plan_id, world.actor)
        assert result.ok and result.matches_prediction
    sim = world.sim.model
    assert sim.guests[104].node == "pve2"
    assert any(t.type == "hamigrate" for t in sim.tasks.values())
    job = next(j for j in sim.replication_jobs if j["id"] == "104-0")
    assert (job["source"], job["target"]) == ("pve2", "pve1")  # switch_replication_job_target


async def test_ha_moves_a_guest_back_where_its_rules_want_it(world: World) -> None:
    world.model.guests[104].config.pop("ide2")
    # its rule prefers pve1 (pve1:2,pve2:1, not strict) and failback is on: HA migrates it to pve2, then back
    back = await plan(world, "guest.migrate", {"vmid": 104, "target": "pve2"})
    impact = next(i for i in back.impacts if i.target == "ha/vm:104")
    assert "not where the HA rules of vm:104 place it" in impact.reason and "moves it back to pve1" in impact.reason
    assert not back.undo and not back.blocked  # it ends where it was: nothing to undo
    async with world.host() as host:
        check = (await host.read("migrate.check", {"vmid": 104}, world.actor)).data
    assert "HA moves it back to pve1" in check["refused"]["pve2"]


async def test_a_migration_ha_would_fail_is_blocked_with_the_reason(world: World) -> None:
    failing = await plan(world, "guest.migrate", {"vmid": 104, "target": "pve2"})  # its ISO is on local storage
    assert "local cdrom image" in refusal(failing) and "vm:104 stays on pve1" in refusal(failing)


# --- apply, undo, evacuate ----------------------------------------------------------------------------------------


async def test_migrate_then_undo_on_the_simulator(world: World) -> None:
    async with world.host() as host:
        p = await host.plan("guest.migrate", {"vmid": 201, "target": "pve3"}, world.actor)
        host.approve(p.plan_id, world.actor, world.person)
        result = await host.apply(p.plan_id, world.actor)
        assert result.ok and result.matches_prediction
        assert world.sim.model.guests[201].node == "pve3"
        assert "local-zfs:subvol-201-disk-0" in world.sim.model.volumes["local-zfs"]["pve3"]
        undo = await host.undo(result.ledger.seq, world.actor)
        assert undo.steps == [ApiCall("POST", "/nodes/pve3/lxc/201/migrate", {"target": "pve1", "restart": 1})]
        host.approve(undo.plan_id, world.actor, world.person)
        assert (await host.apply(undo.plan_id, world.actor)).ok
    assert world.sim.model.guests[201].node == "pve1"


async def test_evacuate_moves_every_guest_that_can_move_and_names_the_one_that_cannot(world: World) -> None:
    p = await plan(world, "node.evacuate", {"node": "pve3"})
    assert any("lxc/203 (media-01) cannot leave pve3" in b and "bind mount point 'mp1'" in b for b in p.blockers)
    moved = {s.path.split("/")[4]: s.params["target"] for s in p.steps}
    assert set(moved) == {"108", "110", "130", "205"}
    assert all(t in ("pve1", "pve2") for t in moved.values())


async def test_evacuate_applies_and_empties_the_node(world: World) -> None:
    world.model.guests[203].config.pop("mp1")
    async with world.host() as host:
        p = await host.plan("node.evacuate", {"node": "pve3"}, world.actor)
        assert not p.blocked, p.blockers
        host.approve(p.plan_id, world.actor, world.person)
        assert (await host.apply(p.plan_id, world.actor)).ok
    assert [g.sid for g in world.sim.model.guests.values() if g.node == "pve3"] == []


# --- migrate.check, live and offline ---------------------------------------------------------------------------------


async def test_migrate_check_shows_proxmoxs_own_answer_beside_the_models(world: World) -> None:
    async with world.host() as host:
        answer = (await host.read("migrate.check", {"vmid": 104}, world.actor)).data
    assert answer["proxmox"]["allowed_nodes"] == ["pve2", "pve3"]  # Proxmox's precondition knows storages and HA only
    assert "local cdrom image" in answer["refused"]["pve2"]
    assert "not a replication target" in answer["refused"]["pve3"]


async def test_migrate_check_offline_gives_the_models_precondition(world: World, tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(dump_snapshot(world.model)))
    async with world.offline(path) as host:
        answer = (await host.read("migrate.check", {"vmid": 201}, world.actor)).data
    assert answer["model_precondition"]["allowed-nodes"] == ["pve2", "pve3"]  # kebab-case, as PVE 9 answers for a CT
    assert answer["allowed"] == ["pve2", "pve3"]


# --- one plan whatever the tool, and bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(("params", "call"), [
    ({"vmid": 120, "target": "pve2"}, {"method": "POST", "path": "/nodes/pve1/qemu/120/migrate",
                                       "params": {"target": "pve2", "online": 1, "with-local-disks": 1}}),
    ({"vmid": 201, "target": "pve2"}, {"method": "POST", "path": "/nodes/pve1/lxc/201/migrate", "params": {"target": "pve2", "restart": 1}}),
    ({"vmid": 121, "target": "pve3"}, {"method": "POST", "path": "/nodes/pve1/qemu/121/migrate", "params": {"target": "pve3"}}),
])
async def test_api_call_reports_exactly_what_guest_migrate_reports(world: World, params: dict[str, Any], call: dict[str, Any]) -> None:
    named = await plan(world, "guest.migrate", params)
    raw = await plan(world, "api.call", call)
    assert raw.steps == named.steps
    assert (raw.impacts, raw.risk, raw.undo, raw.blockers, raw.notes) == (named.impacts, named.risk, named.undo, named.blockers, named.notes)


@pytest.mark.parametrize("params", [{"vmid": 120, "target": "pve1/../x"}, {"vmid": 120, "target": "pve\u0663"},
                                    {"vmid": "120/../1", "target": "pve2"}, {"vmid": 120, "target": "pve9"},
                                    {"vmid": 120, "target": "pve2", "restart": True}, {"vmid": 201, "target": "pve2", "force": True}])
async def test_bad_input_is_refused_before_any_request(world: World, params: dict[str, Any]) -> None:
    with pytest.raises(BadInput):
        await plan(world, "guest.migrate", params)
    assert [r for r in world.sim.requests if r[0] != "GET"] == []


async def test_evacuate_can_leave_what_cannot_move_and_says_so(world: World) -> None:
    p = await plan(world, "node.evacuate", {"node": "pve3", "leave_unmovable": True})
    assert not p.blocked and len(p.steps) == 4
    assert any("lxc/203 (media-01) cannot leave pve3" in n for n in p.notes)


async def test_evacuate_spreads_running_guests_by_free_memory(world: World) -> None:
    for name, node in world.model.nodes.items():
        node.resource["maxmem"] = {"pve1": 64, "pve2": 40, "pve3": 64}[name] * GiB
    p = await plan(world, "node.evacuate", {"node": "pve3", "leave_unmovable": True})
    placed = {s.path.split("/")[4]: s.params["target"] for s in p.steps}
    # pve1 runs 29 GiB of 64 (35 free), pve2 12.5 of 40 (27.5 free): 130 (16 GiB) goes to pve1, then 110 (8 GiB) to
    # pve2 (27.5 > 18), then 205 (0.5 GiB) to pve2 (19.5 > 18)
    assert placed["130"] == "pve1" and placed["110"] == "pve2" and placed["205"] == "pve2"


# --- 8.4 and 9.1 where they differ --------------------------------------------------------------------------------


async def test_on_84_a_containers_check_is_the_models_alone_and_ha_groups_place(tmp_path: Path) -> None:
    world = World(tmp_path, pve_version="8.4")
    world.model.ha_rules = None  # 8.4 has groups, not rules
    world.model.ha_groups = [{"group": "web", "nodes": "pve1", "restricted": 1, "nofailback": 0, "type": "group"}]
    world.model.ha_resources[1]["group"] = "web"  # vm:104
    world.model.guests[104].config.pop("ide2")  # its local ISO would fail the migration first
    async with world.host() as host:
        answer = (await host.read("migrate.check", {"vmid": 201}, world.actor)).data
        assert "proxmox" not in answer and "proxmox_unavailable" not in answer  # no GET .../lxc/{vmid}/migrate on 8.4
        back = await host.plan("guest.migrate", {"vmid": 104, "target": "pve2"}, world.actor)
    assert any(i.target == "ha/vm:104" and "moves it back to pve1" in i.reason for i in back.impacts)
