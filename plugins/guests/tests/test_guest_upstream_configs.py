"""Guest plans on configs from Proxmox's own tests (qemu-server run_parse_config_tests.pl fixtures).

``snapshots.conf`` is a real VM with a chain of seven snapshots on dir (qcow2), LVM-thin, RBD and an ISO
storage, on an SDN vnet. It is read with the host's parser (itself checked against the upstream expectations
in tests/test_model_parsers.py), served as the API would (config, snapshot list, per-snapshot configs), and
planned through the host. The file is kept as test data in tests/data/pve/qemu-server.json, with its origin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proximo import Risk
from proximo.model._drives import parse_guest_config_file
from proximo.testing import World, snapshot_from

pytestmark = pytest.mark.anyio

QEMU_SERVER = Path(__file__).resolve().parents[3] / "tests" / "data" / "pve" / "qemu-server.json"
GiB = 1024**3


def _api(conf_text: str, vmid: int, status: str) -> dict[str, Any]:
    parsed = parse_guest_config_file(conf_text, vmid=vmid)
    snapshots: dict[str, dict[str, Any]] = parsed.pop("snapshots")  # type: ignore[assignment]
    for key in ("pending", "special-sections"):
        parsed.pop(key, None)
    storages = {"dir": ("dir", "images,iso,backup"), "lvmthinbig": ("lvmthin", "images,rootdir"), "rbd": ("rbd", "images"),
                "sani": ("dir", "iso"), "nfs": ("nfs", "images"), "lvm": ("lvm", "images")}
    base = f"/nodes/pve1/qemu/{vmid}"
    api: dict[str, Any] = {
        "/nodes": [{"node": "pve1", "status": "online"}],
        "/storage": [{"storage": sid, "type": t, "content": c} for sid, (t, c) in storages.items()],
        "/cluster/resources": [{"id": "node/pve1", "type": "node", "node": "pve1", "status": "online"},
                               {"id": f"qemu/{vmid}", "type": "qemu", "vmid": vmid, "node": "pve1", "status": status,
                                "name": parsed.get("name"), "uptime": 100 if status == "running" else 0, "template": 0}],
        f"{base}/config": parsed,
        f"{base}/snapshot": [{"name": name, "snaptime": snap.get("snaptime"), **({"parent": snap["parent"]} if snap.get("parent") else {})}
                             for name, snap in snapshots.items()] + [{"name": "current", "running": int(status == "running"),
                                                                      "parent": parsed.get("parent"), "description": "You are here!"}],
        "/nodes/pve1/storage": [{"storage": sid, "type": t, "content": c, "active": 1, "enabled": 1, "total": 1000 * GiB,
                                 "used": 100 * GiB, "avail": 900 * GiB} for sid, (t, c) in storages.items()],
    }
    for name, snap in snapshots.items():
        api[f"{base}/config?snapshot={name}"] = snap
    return api


@pytest.fixture
def snapshots_conf() -> str:
    """src/test/parse-config-input/snapshots.conf of qemu-server."""
    return str(json.loads(QEMU_SERVER.read_text())["parse_config"]["configs"]["snapshots.conf"])


async def test_deleting_a_snapshot_in_the_middle_of_a_chain(tmp_path: Path, snapshots_conf: str) -> None:
    world = World(tmp_path, snapshot_from(_api(snapshots_conf, 111, "running")))
    async with world.host() as host:
        p = await host.plan("guest.snapshot.delete", {"vmid": 111, "snapname": "win19_5_2"}, world.actor)
        snaps = (await host.read("guest.snapshots", {"vmid": 111}, world.actor)).data
    assert [(i.target, i.effect) for i in p.impacts] == [("qemu/111", "data-loss")] and p.risk is Risk.CRITICAL
    assert "2025-01-15 14:18 UTC" in p.impacts[0].reason  # snaptime 1736950690
    assert [s["name"] for s in snaps][-1] == "current" and len(snaps) == 8
    g = world.model.copy()
    from proximo_guests._semantics import snapshot_delete
    from proximo.model import Call

    snapshot_delete(g, Call("DELETE", "/nodes/pve1/qemu/111/snapshot/win19_5_2", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}",
                            {"node": "pve1", "vmid": "111", "snapname": "win19_5_2"}, {}))
    child = next(r for r in g.guests[111].snapshots or [] if r["name"] == "win19_5_2_plus_stuff")
    assert child["parent"] == "machine_version_5_1_with_virtio"  # the chain is re-linked, as PVE does


async def test_rollback_restores_the_snapshot_config_and_keeps_newer_disks(tmp_path: Path, snapshots_conf: str) -> None:
    world = World(tmp_path, snapshot_from(_api(snapshots_conf, 111, "running")))
    async with world.host() as host:
        p = await host.plan("guest.snapshot.rollback", {"vmid": 111, "snapname": "machine_version_5_1"}, world.actor)
    reasons = {(i.effect, i.reason.split(") ", 1)[1]) for i in p.impacts}
    # the disks and the NIC added after the snapshot leave the config; scsi1's volume comes back as ide0 and boots
    assert reasons == {("data-loss", "is rolled back to snapshot 'machine_version_5_1' (taken 2025-01-15 11:05 UTC): everything written since is discarded"),
                       ("downtime", "is rolled back to snapshot 'machine_version_5_1': stopped"),
                       # unused0 (rbd:vm-111-disk-0) stays; the config's volumes the snapshot lacks follow in
                       # foreach_volume's order (AbstractConfig __snapshot_apply_config, QemuConfig __snapshot_rollback_get_unused)
                       # (ide0's own volume, replaced by the snapshot's ide0, is unused1)
                       ("degraded", "loses disk scsi0 (kept as unused2)"), ("degraded", "loses disk virtio0 (kept as unused3)"),
                       ("loses-network", "loses NIC net1 (e1000=BC:24:11:79:D5:65,bridge=vnet0,firewall=1)")}
    m = world.model.copy()
    from proximo_guests._semantics import snapshot_rollback
    from proximo.model import Call

    snapshot_rollback(m, Call("POST", "/nodes/pve1/qemu/111/snapshot/machine_version_5_1/rollback",
                              "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback",
                              {"node": "pve1", "vmid": "111", "snapname": "machine_version_5_1"}, {}))
    conf = m.guests[111].config
    assert conf["ide0"] == "lvmthinbig:vm-111-disk-0,size=32G" and conf["parent"] == "machine_version_5_1"
    assert "snaptime" not in conf and not m.guests[111].running
    unused = sorted(v for k, v in conf.items() if k.startswith("unused"))
    assert "dir:111/vm-111-disk-0.qcow2" in unused and "dir:111/vm-111-disk-1.qcow2" in unused  # newer disks kept
    assert conf["unused0"] == "rbd:vm-111-disk-0"  # and what was unused before stays unused
    assert [conf[f"unused{i}"] for i in (1, 2, 3)] == [
        "dir:111/vm-111-disk-2.qcow2", "dir:111/vm-111-disk-1.qcow2", "dir:111/vm-111-disk-0.qcow2"]  # ide0, scsi0, virtio0


async def test_a_start_on_an_sdn_vnet_is_not_refused(tmp_path: Path, snapshots_conf: str) -> None:
    """net0 is on bridge=vnet0, an SDN vnet Proximo does not model: it must not be judged a missing bridge."""
    api = _api(snapshots_conf, 111, "stopped")
    api["/nodes/pve1/network"] = [{"iface": "vmbr0", "type": "bridge", "active": 1}]
    world = World(tmp_path, snapshot_from(api))
    async with world.host() as host:
        p = await host.plan("guest.start", {"vmid": 111}, world.actor)
    assert not p.blocked and p.impacts == []
