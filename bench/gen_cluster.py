"""A large cluster, deterministic from a seed: the demo cluster with more nodes and guests in its shapes.

    uv run python bench/gen_cluster.py --nodes 32 --guests 4000 --seed 1 -o big.json   # a snapshot file
    from gen_cluster import generate; doc = generate(nodes=32, guests=4000, seed=1)     # the same document

The demo cluster (3 nodes, 15 guests, its storages, firewall, ACL, pools, HA, jobs) is kept whole, so every
reference in it stays valid. Nodes pve4..pveN are copies of pve1 (own address, own node firewall); guests 1000.. are
copies of the demo's guests (a qemu or lxc picked by the seed; templates and guests with snapshots are not copied),
each with its own volumes (named after its vmid, listed in its storage's content on its node, or on every node for a
shared storage), MAC addresses, name, and firewall files (the template's, with ``enable=1`` for a share of them and an
IP set or address rule for some). Across the cluster: a cluster firewall that is on, an alias and an IP set entry per
50 guests, an ACL entry per 10 guests on ``/vms/<vmid>``, every 20th guest in pool ``prod``, and a backup job per 500
guests listing them. The answers are the shapes Proximo reads (``proximo snapshot``'s paths); the figures (memory,
CPU) are the template's.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

from proximo.sim import demo_snapshot

FIRST_VMID = 1000
TEMPLATE_NODE = "pve1"
_GUEST_PATH = re.compile(r"^/nodes/([^/]+)/(qemu|lxc)/(\d+)(/.*)?$")


def _node_ip(index: int) -> str:
    """pve1..pve3 are 10.0.0.11-13 in the demo; the node with 1-based ``index`` gets 10.0.<hi>.<lo> after them."""
    n = index + 10
    return f"10.0.{n // 250}.{n % 250 + (1 if n % 250 == 0 else 0)}"


def _rewrite(value: Any, old: str, new: str) -> Any:
    """``value`` (a JSON document) with every string ``old`` in it replaced by ``new`` (keys too)."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_rewrite(v, old, new) for v in value]
    if isinstance(value, dict):
        return {(k.replace(old, new) if isinstance(k, str) else k): _rewrite(v, old, new) for k, v in value.items()}
    return value


def _mac(rng: random.Random) -> str:
    return "BC:24:11:" + ":".join(f"{rng.randrange(256):02X}" for _ in range(3))


def generate(*, nodes: int = 32, guests: int = 4000, seed: int = 1) -> dict[str, Any]:
    """A snapshot document (``proximo snapshot``'s format) of ``nodes`` nodes and the demo's 15 guests plus ``guests``."""
    if nodes < 3:
        raise ValueError("the demo cluster has 3 nodes: ask for 3 or more")
    rng = random.Random(seed)
    doc = demo_snapshot()
    api: dict[str, Any] = doc["api"]
    names = [f"pve{i}" for i in range(1, nodes + 1)]
    new_nodes = names[3:]

    # --- nodes: copies of pve1, each with its own address --------------------------------------------------------
    node_paths = {p: v for p, v in api.items() if p.startswith(f"/nodes/{TEMPLATE_NODE}/") and not _GUEST_PATH.match(p)}
    template_row = next(r for r in api["/nodes"] if r["node"] == TEMPLATE_NODE)
    status = api["/cluster/status"]
    template_status = next(r for r in status if r.get("name") == TEMPLATE_NODE)
    template_corosync = next(r for r in api["/cluster/config/nodes"] if r["name"] == TEMPLATE_NODE)
    resources = api["/cluster/resources"]
    template_resource = next(r for r in resources if r.get("type") == "node" and r["node"] == TEMPLATE_NODE)
    template_storages = [r for r in resources if r.get("type") == "storage" and r["node"] == TEMPLATE_NODE]
    for index, name in enumerate(new_nodes, start=4):
        ip = _node_ip(index)
        for path, value in node_paths.items():
            if "/content" in path:
                continue  # written below from the guests' volumes
            api[path.replace(f"/nodes/{TEMPLATE_NODE}/", f"/nodes/{name}/", 1)] = _rewrite(copy.deepcopy(value), "10.0.0.11", ip)
        api["/nodes"].append(dict(template_row, node=name, id=f"node/{name}"))
        status.append(dict(template_status, id=f"node/{name}", name=name, ip=ip, nodeid=index, local=0))
        api["/cluster/config/nodes"].append(dict(template_corosync, name=name, node=name, nodeid=str(index), ring0_addr=ip))
        resources.append(dict(template_resource, node=name, id=f"node/{name}"))
        resources.extend(dict(r, node=name, id=f"storage/{name}/{r['storage']}") for r in template_storages)
    for row in status:
        if row.get("type") == "cluster":
            row["nodes"] = nodes
    api["/cluster/config/totem"] = dict(api.get("/cluster/config/totem") or {})

    # --- guests: copies of the demo's ordinary guests ------------------------------------------------------------
    by_guest: dict[tuple[str, int], dict[str, Any]] = {}
    for path, value in api.items():
        m = _GUEST_PATH.match(path)
        if m and "?" not in path:
            by_guest.setdefault((m.group(2), int(m.group(3))), {})[m.group(4) or ""] = value
    rows = {(r["type"], r["vmid"]): r for r in resources if r.get("type") in ("qemu", "lxc")}
    templates = sorted(key for key, paths in by_guest.items()
                       if key in rows and not rows[key].get("template") and len(paths.get("/snapshot", [])) <= 1
                       and "/config" in paths)
    shared = {r["storage"] for r in template_storages if r.get("shared")}
    content: dict[tuple[str, str], list[dict[str, Any]]] = {}
    aliases, admin_entries, acl, pool_members = [], [], [], []
    jobs: list[list[int]] = []
    for i in range(guests):
        kind, source = templates[rng.randrange(len(templates))]
        vmid, node = FIRST_VMID + i, names[i % nodes]
        row = rows[(kind, source)]
        base = f"/nodes/{node}/{kind}/{vmid}"
        for suffix, value in by_guest[(kind, source)].items():
            value = _rewrite(copy.deepcopy(value), f"-{source}-", f"-{vmid}-")
            api[base + suffix] = value
        config = api[base + "/config"]
        name = f"{'vm' if kind == 'qemu' else 'ct'}{vmid}"
        config["name" if kind == "qemu" else "hostname"] = name
        config["digest"] = f"{rng.getrandbits(160):040x}"
        for key in [k for k in config if re.fullmatch(r"net\d+", k)]:
            config[key] = re.sub(r"([0-9A-F]{2}:){5}[0-9A-F]{2}", lambda _m: _mac(rng), str(config[key]), flags=re.I)
        api[base + "/pending"] = [{"key": k, "value": v} for k, v in sorted(config.items())]
        api[base + "/snapshot"] = [{"description": "You are here!", "digest": config["digest"], "name": "current",
                                    **({"running": 1} if row.get("status") == "running" else {})}]
        for key, text in config.items():  # its volumes, in its storages' content
            if not re.fullmatch(r"(scsi|virtio|sata|ide|efidisk|tpmstate|mp|rootfs|unused)\d*", key) or "media=cdrom" in str(text):
                continue
            volid = str(text).split(",")[0]
            storage, _, volname = volid.partition(":")
            if not volname or "/" in volname:
                continue
            size = 8 << 30
            entry = {"content": "images" if kind == "qemu" else "rootdir", "format": "raw", "name": volname, "parent": None,
                     "size": size, "vmid": vmid, "volid": volid}
            for holder in (names if storage in shared else [node]):
                content.setdefault((holder, storage), []).append(entry)
        fw_options = api.get(base + "/firewall/options")
        if isinstance(fw_options, dict) and rng.random() < 0.3:
            fw_options["enable"] = 1
            if rng.random() < 0.5:
                api[base + "/firewall/rules"] = [*api.get(base + "/firewall/rules", []),
                                                 {"action": "ACCEPT", "enable": 1, "pos": len(api.get(base + "/firewall/rules", [])),
                                                  "proto": "tcp", "dport": str(1024 + vmid % 5000), "source": f"10.{20 + i % 200}.{i % 250}.0/24",
                                                  "type": "in", "log": "nolog", "digest": ""}]
        resources.append(dict(row, vmid=vmid, node=node, name=name, id=f"{kind}/{vmid}"))
        list_path = f"/nodes/{node}/{kind}"
        template_list_row = next((r for r in api.get(f"/nodes/{row['node']}/{kind}", []) if r.get("vmid") == source), None)
        if template_list_row is not None:
            api.setdefault(list_path, []).append(dict(template_list_row, vmid=vmid, name=name))
        if i % 50 == 0:
            aliases.append({"name": f"net{i // 50}", "cidr": f"10.{100 + (i // 50) % 100}.{(i // 50) // 100}.0/24",
                            "comment": f"guests {vmid}..", "digest": ""})
            admin_entries.append({"cidr": f"192.168.{(i // 50) % 250}.{10 + (i // 50) // 250}", "nomatch": 0, "digest": ""})
        if i % 10 == 0:
            acl.append({"path": f"/vms/{vmid}", "propagate": 1, "roleid": "PVEVMUser", "type": "group", "ugid": "operators"})
        if i % 20 == 0:
            pool_members.append(dict(row, vmid=vmid, node=node, name=name, id=f"{kind}/{vmid}"))
        if i % 500 == 0:
            jobs.append([])
        jobs[-1].append(vmid)

    # --- storage content: the template node's non-guest items, and each node's guest volumes -----------------------
    for path, value in node_paths.items():
        m = re.fullmatch(rf"/nodes/{TEMPLATE_NODE}/storage/([^/]+)/content", path)
        if not m:
            continue
        storage = m.group(1)
        for name in names:
            own = f"/nodes/{name}/storage/{storage}/content"
            kept = api.get(own) if name in names[:3] else [e for e in value if e.get("content") not in ("images", "rootdir")]
            api[own] = [*(kept or []), *content.get((name, storage), [])]

    # --- cluster-wide: firewall on, aliases, IP set entries, ACL, pool, backup jobs ---------------------------------
    api["/cluster/firewall/options"]["enable"] = 1
    api["/cluster/firewall/aliases"] = [*api["/cluster/firewall/aliases"], *aliases]
    if "/cluster/firewall/ipset/admins" in api:
        api["/cluster/firewall/ipset/admins"] = [*api["/cluster/firewall/ipset/admins"], *admin_entries]
    api["/access/acl"] = [*api["/access/acl"], *acl]
    for path in [p for p in api if p.startswith("/pools?poolid=prod")]:
        api[path][0]["members"] = [*api[path][0]["members"], *pool_members]
    api["/cluster/backup"] = [*api["/cluster/backup"], *({
        "id": f"backup-bulk-{n}", "type": "vzdump", "enabled": 1, "schedule": "sun 03:00", "storage": "nfs-backup",
        "mode": "snapshot", "compress": "zstd", "vmid": ",".join(map(str, vmids))} for n, vmids in enumerate(jobs))]
    doc["extra"] = {**doc.get("extra", {}), "generated": {"nodes": nodes, "guests": guests, "seed": seed}}
    return doc


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--guests", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    doc = generate(nodes=args.nodes, guests=args.guests, seed=args.seed)
    args.output.write_text(json.dumps(doc))
    print(f"wrote {args.output}: {args.nodes} nodes, {args.guests + 15} guests, {len(doc['api'])} API paths, "
          f"{args.output.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
