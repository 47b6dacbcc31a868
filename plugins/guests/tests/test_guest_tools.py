"""Every guest tool through the whole pipeline against the simulator over a real loopback socket, and bad input.

plan -> (a person approves where needed) -> apply -> the simulator's own model is checked, the apply matches
the prediction, and the undo (where there is one) is planned afresh and applied.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proximo import BadInput, Plan, Risk
from proximo.trust._ledger import Actor
from proximo.trust._pipeline import Host
from proximo.testing import World

pytestmark = pytest.mark.anyio

PERSON = Actor(token_id="-", face="terminal", client="alice@workstation")


def _load_loopback() -> Any:
    """The repository's loopback server helper (tests/_loopback.py): one helper for every loopback test."""
    path = Path(__file__).resolve().parents[3] / "tests" / "_loopback.py"
    spec = importlib.util.spec_from_file_location("_proximo_loopback", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def url(world: World) -> Iterator[str]:
    with _load_loopback().serve(world.sim.app) as base:
        yield base


def writes(world: World) -> list[tuple[str, str]]:
    return [r for r in world.sim.requests if r[0] != "GET"]


async def run(host: Host, world: World, tool: str, params: dict[str, Any]) -> Plan:
    """Plan, approve as a person if needed, apply; the apply must do exactly what the plan predicted."""
    plan = await host.plan(tool, params, world.actor)
    assert not plan.blocked, plan.blockers
    return await apply(host, plan, world)


async def apply(host: Host, plan: Plan, world: World) -> Plan:
    if host.needs_person(plan):
        host.approve(plan.plan_id, PERSON, world.person, typed_target=plan.target)
    result = await host.apply(plan.plan_id, PERSON)
    assert result.ok and result.matches_prediction, result
    return plan


async def undo(host: Host, plan: Plan, world: World) -> Plan:
    assert plan.ledger is not None
    records = host.ledger.find(plan_id=plan.plan_id, kind="apply-result")
    u = await host.undo(records[-1].seq, PERSON)
    assert not u.blocked, u.blockers
    return await apply(host, u, world)


# --- end to end: create -> start -> snapshot -> config.set -> undo ------------------------------------------


async def test_create_start_snapshot_config_then_undo_everything(world: World, url: str) -> None:
    m = world.model
    async with world.host(url=url) as host:
        create = await run(host, world, "vm.create", {"node": "pve1", "vmid": 150, "name": "new", "memory": "2048",
                                                     "scsi0": "local-zfs:4", "net0": "virtio,bridge=vmbr0",
                                                     "ide2": "isos:iso/debian-12.iso,media=cdrom", "boot": "order=scsi0;ide2"})
        g = m.guests[150]
        assert g.config["scsi0"].startswith("local-zfs:vm-150-disk-0,") and "size=4G" in g.config["scsi0"]
        assert "local-zfs:vm-150-disk-0" in m.volumes["local-zfs"]["pve1"] and not g.running
        assert g.config["net0"].startswith("virtio=BC:24:11:") and create.undo is not None

        start = await run(host, world, "guest.start", {"vmid": 150})
        assert m.guests[150].running and any(t.type == "qmstart" and t.id == "150" for t in m.tasks.values())

        snap = await run(host, world, "guest.snapshot.create", {"vmid": 150, "snapname": "clean", "description": "fresh install"})
        assert [r["name"] for r in m.guests[150].snapshots or []] == ["clean"] and m.guests[150].config["parent"] == "clean"

        change = await run(host, world, "guest.config.set", {"vmid": 150, "memory": "4096", "scsi1": "local-zfs:2"})
        assert m.guests[150].config["memory"] == "4096" and "local-zfs:vm-150-disk-1" in m.volumes["local-zfs"]["pve1"]
        assert any(r.get("key") == "memory" and r.get("pending") == "4096" for r in m.guests[150].pending or [])

        config_undo = await undo(host, change, world)  # old memory back, the new disk destroyed: CRITICAL, a person typed 150
        assert config_undo.risk is Risk.CRITICAL and m.guests[150].config["memory"] == "2048"
        assert "scsi1" not in m.guests[150].config and "local-zfs:vm-150-disk-1" not in m.volumes["local-zfs"]["pve1"]

        await undo(host, snap, world)
        assert not [r for r in m.guests[150].snapshots or [] if r.get("name") != "current"]
        await undo(host, start, world)
        assert not m.guests[150].running
        destroy = await undo(host, create, world)  # the undo of a create destroys it, planned afresh: CRITICAL
        assert destroy.risk is Risk.CRITICAL and 150 not in m.guests
        assert "local-zfs:vm-150-disk-0" not in m.volumes["local-zfs"]["pve1"]
        assert host.ledger.verify().ok


# --- each tool over loopback -----------------------------------------------------------------------------------


async def test_ct_create_from_a_vztmpl_and_destroy(world: World, url: str) -> None:
    async with world.host(url=url) as host:
        await run(host, world, "ct.create", {"node": "pve2", "vmid": 300, "hostname": "ct300",
                                            "ostemplate": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
                                            "rootfs": "local-zfs:8", "net0": "name=eth0,bridge=vmbr0,ip=dhcp"})
        g = world.model.guests[300]
        assert g.kind == "lxc" and g.config["rootfs"].startswith("local-zfs:subvol-300-disk-0,")
        await run(host, world, "guest.destroy", {"vmid": 300})
        assert 300 not in world.model.guests
        bad = await host.plan("ct.create", {"node": "pve2", "vmid": 301, "ostemplate": "local:vztmpl/nope.tar.zst"}, world.actor)
        assert bad.blocked and "volume 'local:vztmpl/nope.tar.zst' does not exist" in bad.blockers[0]


async def test_power_actions_are_tasks_with_upids(world: World, url: str) -> None:
    async with world.host(url=url) as host:
        await run(host, world, "guest.suspend", {"vmid": 120})
        assert world.model.guests[120].paused
        await run(host, world, "guest.resume", {"vmid": 120})
        await run(host, world, "guest.reboot", {"vmid": 120})
        await run(host, world, "guest.shutdown", {"vmid": 120})
        assert not world.model.guests[120].running
        await run(host, world, "guest.start", {"vmid": 100})  # already running, but HA: an HA request
        await run(host, world, "guest.stop", {"vmid": 100})
        ha = next(r for r in world.model.ha_resources if r["sid"] == "vm:100")
        assert ha["state"] == "stopped" and not world.model.guests[100].running
    types = sorted({t.type for t in world.model.tasks.values()})
    assert types == ["hastart", "hastop", "qmreboot", "qmresume", "qmshutdown", "qmsuspend"]
    assert all(t.upid.startswith("UPID:pve1:") for t in world.model.tasks.values())


async def test_linked_clone_then_template_destroy_is_blocked(world: World, url: str) -> None:
    async with world.host(url=url) as host:
        clone = await run(host, world, "guest.clone", {"vmid": 9000, "newid": 130, "name": "runner-2"})
        assert world.model.guests[130].config["scsi0"].startswith("local-zfs:base-9000-disk-0/vm-130-disk-0,")
        assert any("linked clone needs a template" in n for n in clone.notes)
        p = await host.plan("guest.destroy", {"vmid": 9000}, world.actor)
        assert ("qemu/130", "wont-boot") in [(i.target, i.effect) for i in p.impacts]
        full = await run(host, world, "guest.clone", {"vmid": 101, "newid": 131, "full": 1, "storage": "ceph"})
        assert world.model.guests[131].config["scsi1"].startswith("ceph:vm-131-disk-1,") and full.undo is not None
        linked = await host.plan("guest.clone", {"vmid": 101, "newid": 132, "full": 0}, world.actor)
        assert linked.blocked and any("not a template" in n for n in linked.notes)


async def test_snapshot_rollback_and_delete(world: World, url: str) -> None:
    async with world.host(url=url) as host:
        await run(host, world, "guest.config.set", {"vmid": 100, "cores": 8})
        await run(host, world, "guest.snapshot.rollback", {"vmid": 100, "snapname": "pre-update"})
        g = world.model.guests[100]
        assert g.config["cores"] == 2 and not g.running and "ide2" not in g.config
        await run(host, world, "guest.snapshot.delete", {"vmid": 100, "snapname": "pre-update"})
        assert "parent" not in world.model.guests[100].config


async def test_disk_resize_move_and_move_back(world: World, url: str) -> None:
    async with world.host(url=url) as host:
        await run(host, world, "guest.disk.resize", {"vmid": 101, "disk": "scsi1", "size": "+10G"})
        assert "size=110G" in world.model.guests[101].config["scsi1"]
        used = world.model.storage_status["ceph"]["pve1"]["used"]
        move = await run(host, world, "guest.disk.move", {"vmid": 101, "disk": "scsi1", "storage": "ceph", "delete": 1})
        assert world.model.guests[101].config["scsi1"].startswith("ceph:vm-101-disk-1,")
        assert world.model.storage_status["ceph"]["pve2"]["used"] == used + 110 * 1024**3  # shared: every node's row
        assert "local-zfs:vm-101-disk-1" not in world.model.volumes["local-zfs"]["pve1"]
        await undo(host, move, world)
        assert world.model.guests[101].config["scsi1"].startswith("local-zfs:")
        await run(host, world, "guest.disk.move", {"vmid": 201, "volume": "rootfs", "storage": "fast"})
        assert world.model.guests[201].config["rootfs"].startswith("fast:vm-201-disk-")
        assert world.model.guests[201].config["unused0"] == "local-zfs:subvol-201-disk-0"  # kept without delete=1


async def test_template_conversion_renames_volumes_and_is_irreversible(world: World, url: str) -> None:
    async with world.host(url=url) as host:
        p = await run(host, world, "guest.template", {"vmid": 201})
        assert p.undo is None and not [i for i in p.impacts if i.effect == "data-loss"]
        g = world.model.guests[201]
        assert g.template and g.config["rootfs"].startswith("local-zfs:basevol-201-disk-0")


async def test_reads(world: World, url: str) -> None:
    async with world.host(url=url) as host:
        status = (await host.read("guest.status", {"vmid": 100}, world.actor)).data
        assert status["status"] == "running" and status["qmpstatus"] == "running" and status["ha"]["sid"] == "vm:100"
        config = (await host.read("guest.config", {"vmid": 100}, world.actor)).data
        assert config["config"]["name"] == "web" and config["pending"] == []
        snaps = (await host.read("guest.snapshots", {"vmid": 100}, world.actor)).data
        assert [s["name"] for s in snaps] == ["pre-update", "current"]
        backups = (await host.read("guest.backups", {"vmid": 100}, world.actor)).data
        assert [b["ctime"] for b in backups] == [1_764_277_202, 1_763_672_402]
        node = (await host.read("node.status", {"node": "pve2"}, world.actor)).data
        assert node["memory"]["total"] == 68719476736
    assert writes(world) == []


# --- bad input: one clear error, nothing planned ----------------------------------------------------------------

BAD = [
    ("guest.stop", {"vmid": 99}, "vmid"),
    ("guest.stop", {"vmid": 1_000_000_000}, "vmid"),
    ("guest.stop", {"vmid": "100"}, "expected an integer"),
    ("guest.stop", {"vmid": "١٠٠"}, "expected an integer"),
    ("guest.stop", {"vmid": True}, "expected an integer"),
    ("guest.stop", {"vmid": 555}, "guest 555 does not exist"),
    ("guest.stop", {"vmid": 100, "bogus": 1}, "unknown parameter 'bogus'"),
    ("guest.config.set", {"vmid": 100, "scsi99": "local-zfs:1"}, "unknown parameter 'scsi99'"),
    ("guest.config.set", {"vmid": 100, "rootfs": "local-zfs:1"}, "rootfs"),  # a container key on a VM
    ("guest.config.set", {"vmid": 100}, "nothing to change"),
    ("guest.disk.resize", {"vmid": 100, "disk": "scsi7", "size": "1G"}, "has no disk 'scsi7'"),
    ("guest.disk.resize", {"vmid": 100, "disk": "ide2", "size": "1G"}, "not a storage volume"),
    ("guest.disk.resize", {"vmid": 100, "disk": "scsi0", "size": "lots"}, "does not parse"),
    ("guest.disk.resize", {"vmid": 100, "disk": "scsi0", "size": "8G"}, "shrinking a disk is not supported"),
    ("guest.disk.move", {"vmid": 100, "disk": "scsi0", "storage": "nowhere"}, "storage 'nowhere' does not exist"),
    ("guest.disk.move", {"vmid": 100, "disk": "../x", "storage": "ceph"}, "'../x' is not one of the allowed values"),
    ("guest.disk.move", {"vmid": 200, "volume": "mp9", "storage": "ceph"}, "has no disk 'mp9'"),
    ("guest.snapshot.create", {"vmid": 100, "snapname": ".."}, "invalid configuration ID"),
    ("guest.snapshot.delete", {"vmid": 100, "snapname": "%2e%2e"}, "has no snapshot"),
    ("guest.snapshot.rollback", {"vmid": 100, "snapname": "a/b"}, "has no snapshot"),
    ("guest.clone", {"vmid": 9000, "newid": 100}, "already exists"),
    ("vm.create", {"node": "pve9", "vmid": 150}, "node 'pve9' does not exist"),
    ("vm.create", {"node": "pve1", "vmid": 150, "cores": 0, "scsi0": "local-zfs:4"}, "cores"),
    ("vm.create", {"node": "pve1", "vmid": 150, "scsi0": "nowhere:4"}, "storage 'nowhere' does not exist"),
]


@pytest.mark.parametrize(("tool", "params", "message"), BAD, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(BAD)])
async def test_bad_input_is_one_clear_error_and_nothing_is_planned(world: World, tool: str, params: dict[str, Any], message: str) -> None:
    async with world.host() as host:
        with pytest.raises(BadInput) as exc:
            await host.plan(tool, params, world.actor)
    assert message in str(exc.value) and "\n" not in str(exc.value)
    with sqlite3.connect(world.settings.ledger_path) as db:
        kinds = [row[0] for row in db.execute("SELECT kind FROM records")]
    assert kinds == ["deny"] and writes(world) == []


async def test_a_snapshot_taken_seconds_after_its_prediction_still_matches_it(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """PVE stamps snaptime when the snapshot is taken (pve-guest-common AbstractConfig snapshot_prepare: time()), and
    the config digest covers it: the prediction, made before, cannot know that second. Every call of the clock here
    is a second later than the last, as on a cluster where the task runs a while after the plan."""
    import itertools
    import time

    import proximo_guests._semantics as semantics

    clock = itertools.count(1_800_000_000)

    class OneSecondLaterEachCall:  # the guests pack's clock only: the ledger's and the plan's expiry keep the real one
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        def time(self) -> float:
            return float(next(clock))

    monkeypatch.setattr(semantics, "time", OneSecondLaterEachCall())
    async with world.host() as host:
        plan = await host.plan("guest.snapshot.create", {"vmid": 100, "snapname": "later"}, world.actor)
        if host.needs_person(plan):
            host.approve(plan.plan_id, PERSON, world.person, typed_target=plan.target)
        result = await host.apply(plan.plan_id, PERSON)
    taken = next(r for r in world.sim.model.guests[100].snapshots or [] if r.get("name") == "later")
    assert result.ok and result.matches_prediction, result.mismatches
    assert taken["snaptime"] >= 1_800_000_001  # stamped by the simulator's run, after the prediction's
