"""How long planning takes on a large cluster: model load, copy, fingerprint, a full storage.delete plan, a guest
config change with property strings (each checked key by key against the cluster's release), and that check alone.

    uv run python bench/bench_plan.py [--guests 3000] [--nodes 20]

The cluster is the demo cluster's shapes multiplied: every node gets a share of qemu guests with disks on
local-zfs and ceph-rbd, plus backup jobs. Runs in-process against the simulator (no network cost).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from proximo.model import file_digest, from_api
from proximo.sim import demo_snapshot
from proximo.testing import World, snapshot_from


def big_cluster(guests: int, nodes: int) -> dict[str, Any]:
    api = copy.deepcopy(demo_snapshot()["api"])
    names = [f"pve{i}" for i in range(1, nodes + 1)]
    template_node = api["/cluster/resources"][0]
    api["/nodes"] = [{"node": n, "status": "online", "type": "node", "id": f"node/{n}"} for n in names]
    resources = [dict(template_node, node=n, id=f"node/{n}") for n in names]
    for row in api["/cluster/resources"]:
        if row.get("type") == "storage":
            for n in names:
                resources.append(dict(row, node=n, id=f"storage/{n}/{row['storage']}"))
    for i in range(guests):
        vmid, node = 1000 + i, names[i % nodes]
        resources.append({"id": f"qemu/{vmid}", "type": "qemu", "vmid": vmid, "node": node, "name": f"vm{vmid}",
                          "status": "running" if i % 2 else "stopped", "template": 0, "maxmem": 2 << 30, "cpu": 0.01})
        api[f"/nodes/{node}/qemu/{vmid}/config"] = {
            "boot": "order=scsi0;net0", "scsi0": f"local-zfs:vm-{vmid}-disk-0,size=32G",
            "scsi1": f"ceph-rbd:vm-{vmid}-disk-1,size=100G", "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0",
            "memory": 2048, "name": f"vm{vmid}", "digest": f"{vmid:040x}",
        }
    api["/cluster/resources"] = resources
    return snapshot_from(api)


def timed(label: str, fn: Any, repeat: int = 3) -> Any:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    print(f"{label:<34} {best * 1000:9.1f} ms")
    return result


async def main(guests: int, nodes: int) -> None:
    doc = big_cluster(guests, nodes)
    print(f"cluster: {nodes} nodes, {guests} guests, {len(doc['api'])} API paths")
    model = timed("model from API responses", lambda: from_api(doc["api"]))
    timed("model copy (predictor)", model.copy)
    timed("fingerprint", model.fingerprint)
    # what the model does only for a config it writes (Guest.write_config), here for every guest at once
    timed("config file text + digest, all", lambda: [file_digest(g.file_text()) for g in model.guests.values()])
    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp), doc)
        async with world.host() as host:
            for _ in range(3):
                start = time.perf_counter()
                plan = await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
                elapsed = time.perf_counter() - start
            print(f"{'plan storage.delete (in-process)':<34} {elapsed * 1000:9.1f} ms  ({len(plan.impacts)} impacts)")
            change = {"vmid": 1001, "scsi2": "local-zfs:8,iothread=1,discard=on,ssd=1", "net1": "virtio,bridge=vmbr0,firewall=1,tag=20",
                      "agent": "enabled=1,fstrim_cloned_disks=1"}
            for _ in range(3):
                start = time.perf_counter()
                plan = await host.plan("guest.config.set", change, world.actor)
                elapsed = time.perf_counter() - start
            print(f"{'plan guest.config.set (3 strings)':<34} {elapsed * 1000:9.1f} ms  ({len(plan.impacts)} impacts)")
    api, endpoint = model.api, model.api.endpoint("POST", "/nodes/{node}/qemu/{vmid}/config")
    assert endpoint is not None
    step = {k: v for k, v in change.items() if k != "vmid"}
    timed("validate that step, x1000", lambda: [api.validate(endpoint, step, {"node": "pve2", "vmid": "1001"}) for _ in range(1000)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--guests", type=int, default=3000)
    parser.add_argument("--nodes", type=int, default=20)
    args = parser.parse_args()
    anyio.run(main, args.guests, args.nodes)
