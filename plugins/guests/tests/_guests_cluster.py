"""A two-node cluster written as the real API answers it, for the guests pack's tests.

Configs are shaped like real ``GET .../config`` captures (QEMU and LXC; see NOTICE): drive strings with
``size=``, ``virtio=MAC,bridge=...`` NICs, ``name=eth0,bridge=...,hwaddr=...,type=veth`` container NICs,
digests on every config, snapshot lists ending in the "current" row, storage rows with total/used/avail.
"""

from __future__ import annotations

import copy
from typing import Any

from proximo.testing import operator_access, snapshot_from

GiB = 1024**3
NODES = ("pve1", "pve2")

STORAGES: dict[str, dict[str, Any]] = {
    "local": {"storage": "local", "type": "dir", "path": "/var/lib/vz", "content": "iso,vztmpl,backup"},
    "local-zfs": {"storage": "local-zfs", "type": "zfspool", "pool": "rpool/data", "sparse": 1, "content": "images,rootdir"},
    "ceph": {"storage": "ceph", "type": "rbd", "pool": "vm", "content": "images,rootdir", "shared": 1},
    "isos": {"storage": "isos", "type": "cifs", "server": "10.0.0.60", "share": "iso", "path": "/mnt/pve/isos",
             "content": "iso", "nodes": "pve1", "shared": 1},
    "nfs-backup": {"storage": "nfs-backup", "type": "nfs", "server": "10.0.0.50", "export": "/srv/backup",
                   "path": "/mnt/pve/nfs-backup", "content": "backup", "shared": 1},
    "fast": {"storage": "fast", "type": "lvmthin", "vgname": "pve", "thinpool": "fast", "content": "images,rootdir",
             "nodes": "pve2"},
}
# (total, used) per storage; shared storages report the same on every node
USAGE = {"local": (100 * GiB, 20 * GiB), "local-zfs": (500 * GiB, 400 * GiB), "ceph": (4000 * GiB, 1000 * GiB),
         "isos": (200 * GiB, 50 * GiB), "nfs-backup": (2000 * GiB, 500 * GiB), "fast": (100 * GiB, 10 * GiB)}

GUESTS: list[dict[str, Any]] = [
    {"kind": "qemu", "vmid": 100, "node": "pve1", "status": "running", "uptime": 86400,
     "config": {"name": "web", "memory": "4096", "cores": 2, "sockets": 1, "ostype": "l26", "scsihw": "virtio-scsi-single",
                "scsi0": "local-zfs:vm-100-disk-0,iothread=1,size=32G", "ide2": "isos:iso/debian-12.iso,media=cdrom,size=629M",
                "boot": "order=scsi0;ide2;net0", "net0": "virtio=BC:24:11:5E:00:01,bridge=vmbr0,firewall=1",
                "smbios1": "uuid=6c1e0a2e-1a4c-4a0e-9f43-1a5c7b0a0f01", "vmgenid": "b2f1c7a0-0b0e-4c2a-9d0b-0f7a5f1e2d31",
                "parent": "pre-update"},
     "snapshots": [{"name": "pre-update", "description": "before apt upgrade", "snaptime": 1_764_000_000}],
     "snapshot_configs": {"pre-update": {"name": "web", "memory": "4096", "cores": 2, "sockets": 1, "ostype": "l26",
                                         "scsihw": "virtio-scsi-single", "scsi0": "local-zfs:vm-100-disk-0,iothread=1,size=32G",
                                         "boot": "order=scsi0;net0", "net0": "virtio=BC:24:11:5E:00:01,bridge=vmbr0,firewall=1",
                                         "snaptime": 1_764_000_000, "description": "before apt upgrade"}}},
    {"kind": "qemu", "vmid": 101, "node": "pve1", "status": "stopped", "uptime": 0,
     "config": {"name": "db", "memory": "8192", "cores": 4, "ostype": "l26", "protection": 1,
                "scsi0": "ceph:vm-101-disk-0,size=64G", "scsi1": "local-zfs:vm-101-disk-1,size=100G",
                "unused0": "local-zfs:vm-101-disk-2", "boot": "order=scsi0;net0",
                "net0": "virtio=BC:24:11:5E:00:02,bridge=vmbr0"}},
    {"kind": "qemu", "vmid": 9000, "node": "pve1", "status": "stopped", "uptime": 0, "template": 1,
     "config": {"name": "debian-tmpl", "memory": "2048", "cores": 2, "ostype": "l26", "template": 1,
                "scsi0": "local-zfs:base-9000-disk-0,size=8G", "boot": "order=scsi0",
                "net0": "virtio=BC:24:11:5E:00:90,bridge=vmbr0"}},
    {"kind": "qemu", "vmid": 120, "node": "pve1", "status": "running", "uptime": 3600,
     "config": {"name": "runner", "memory": "2048", "cores": 2, "ostype": "l26",
                "scsi0": "local-zfs:base-9000-disk-0/vm-120-disk-0,size=8G", "boot": "order=scsi0",
                "net0": "virtio=BC:24:11:5E:01:20,bridge=vmbr0"}},
    {"kind": "lxc", "vmid": 200, "node": "pve2", "status": "running", "uptime": 7200,
     "config": {"hostname": "proxy", "arch": "amd64", "ostype": "debian", "memory": 512, "swap": 512, "cores": 1,
                "rootfs": "ceph:vm-200-disk-0,size=8G", "mp0": "fast:vm-200-disk-1,mp=/data,size=20G",
                "net0": "name=eth0,bridge=vmbr0,firewall=1,hwaddr=BC:24:11:5E:02:00,ip=dhcp,type=veth", "unprivileged": 1}},
    {"kind": "lxc", "vmid": 201, "node": "pve2", "status": "stopped", "uptime": 0,
     "config": {"hostname": "files", "arch": "amd64", "ostype": "debian", "memory": 1024, "swap": 512, "cores": 1,
                "rootfs": "local-zfs:subvol-201-disk-0,size=8G",
                "net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:5E:02:01,ip=dhcp,type=veth", "unprivileged": 1}},
]

VOLUMES: dict[tuple[str, str], list[dict[str, Any]]] = {  # GET /nodes/{node}/storage/{storage}/content rows
    ("pve1", "local-zfs"): [
        {"volid": "local-zfs:vm-100-disk-0", "content": "images", "format": "raw", "size": 32 * GiB, "vmid": 100, "name": "vm-100-disk-0", "parent": None},
        {"volid": "local-zfs:vm-101-disk-1", "content": "images", "format": "raw", "size": 100 * GiB, "vmid": 101, "name": "vm-101-disk-1", "parent": None},
        {"volid": "local-zfs:vm-101-disk-2", "content": "images", "format": "raw", "size": 10 * GiB, "vmid": 101, "name": "vm-101-disk-2", "parent": None},
        {"volid": "local-zfs:base-9000-disk-0", "content": "images", "format": "raw", "size": 8 * GiB, "vmid": 9000, "name": "base-9000-disk-0", "parent": None},
        {"volid": "local-zfs:base-9000-disk-0/vm-120-disk-0", "content": "images", "format": "raw", "size": 8 * GiB, "vmid": 120,
         "name": "vm-120-disk-0", "parent": "base-9000-disk-0@__base__"},
    ],
    ("pve2", "local-zfs"): [
        {"volid": "local-zfs:subvol-201-disk-0", "content": "rootdir", "format": "subvol", "size": 8 * GiB, "vmid": 201, "name": "subvol-201-disk-0", "parent": None},
    ],
    ("pve1", "ceph"): [
        {"volid": "ceph:vm-101-disk-0", "content": "images", "format": "raw", "size": 64 * GiB, "vmid": 101, "name": "vm-101-disk-0", "parent": None},
        {"volid": "ceph:vm-200-disk-0", "content": "rootdir", "format": "raw", "size": 8 * GiB, "vmid": 200, "name": "vm-200-disk-0", "parent": None},
    ],
    ("pve2", "fast"): [
        {"volid": "fast:vm-200-disk-1", "content": "rootdir", "format": "raw", "size": 20 * GiB, "vmid": 200, "name": "vm-200-disk-1", "parent": None},
    ],
    ("pve1", "isos"): [{"volid": "isos:iso/debian-12.iso", "content": "iso", "format": "iso", "size": 659_554_304, "ctime": 1_714_000_000}],
    ("pve1", "local"): [{"volid": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst", "content": "vztmpl", "format": "tzst",
                         "size": 126_000_000, "ctime": 1_730_000_000}],
    ("pve2", "local"): [{"volid": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst", "content": "vztmpl", "format": "tzst",
                         "size": 126_000_000, "ctime": 1_730_000_000}],
    ("pve1", "nfs-backup"): [
        {"volid": "nfs-backup:backup/vzdump-qemu-100-2026_11_20-21_00_02.vma.zst", "content": "backup", "format": "vma.zst",
         "size": 9 * GiB, "vmid": 100, "ctime": 1_763_672_402, "subtype": "qemu", "notes": "web"},
        {"volid": "nfs-backup:backup/vzdump-qemu-100-2026_11_27-21_00_02.vma.zst", "content": "backup", "format": "vma.zst",
         "size": 9 * GiB, "vmid": 100, "ctime": 1_764_277_202, "subtype": "qemu", "notes": "web"},
        {"volid": "nfs-backup:backup/vzdump-lxc-200-2026_11_27-21_10_00.tar.zst", "content": "backup", "format": "tar.zst",
         "size": 1 * GiB, "vmid": 200, "ctime": 1_764_277_800, "subtype": "lxc", "notes": "proxy"},
    ],
}


def _network(node: str) -> list[dict[str, Any]]:
    return [
        {"iface": "eno1", "type": "eth", "method": "manual", "families": ["inet"], "active": 1, "exists": 1, "priority": 3},
        {"iface": "vmbr0", "type": "bridge", "method": "static", "families": ["inet"], "active": 1, "autostart": 1,
         "bridge_ports": "eno1", "bridge_stp": "off", "bridge_fd": "0", "address": f"10.0.0.{11 + NODES.index(node)}",
         "netmask": "24", "cidr": f"10.0.0.{11 + NODES.index(node)}/24", "gateway": "10.0.0.1", "priority": 4},
    ]


def make_api(*, usage: dict[str, tuple[int, int]] | None = None) -> dict[str, Any]:
    usage = {**USAGE, **(usage or {})}
    api: dict[str, Any] = {
        "/version": {"version": "9.1.2", "release": "9.1", "repoid": "6a3e57f2"},
        "/cluster/status": [{"id": "cluster", "type": "cluster", "name": "lab", "nodes": 2, "quorate": 1, "version": 4}]
        + [{"id": f"node/{n}", "type": "node", "name": n, "nodeid": i + 1, "ip": f"10.0.0.{11 + i}", "online": 1,
            "local": int(i == 0), "level": ""} for i, n in enumerate(NODES)],
        "/nodes": [{"node": n, "id": f"node/{n}", "type": "node", "status": "online", "level": "", "maxcpu": 16,
                    "maxmem": 68719476736, "mem": 8589934592, "cpu": 0.03, "uptime": 864000} for n in NODES],
        "/storage": [{**cfg, "digest": "3f9a6c1e2b7d4a5c8e0f1a2b3c4d5e6f7a8b9c0d"} for _, cfg in sorted(STORAGES.items())],
        "/cluster/backup": [
            {"id": "backup-db", "type": "vzdump", "enabled": 1, "schedule": "sat 02:00", "storage": "nfs-backup",
             "vmid": "101,200", "mode": "snapshot"},
            {"id": "backup-db-only", "type": "vzdump", "enabled": 1, "schedule": "sun 02:00", "storage": "nfs-backup",
             "vmid": "101", "mode": "snapshot"},
        ],
        "/cluster/replication": [{"id": "200-0", "type": "local", "guest": 200, "jobnum": 0, "target": "pve1",
                                  "schedule": "*/15", "source": "pve2"}],
        "/cluster/ha/resources": [{"sid": "vm:100", "type": "vm", "state": "started", "max_restart": 1, "max_relocate": 1,
                                   "digest": "e6ed97582db58e72af5c40dee8d05df0122fec53"},
                                  {"sid": "ct:200", "type": "ct", "state": "started", "max_restart": 1, "max_relocate": 1,
                                   "digest": "e6ed97582db58e72af5c40dee8d05df0122fec53"}],
        "/cluster/ha/rules": [],
        "/pools": [{"poolid": "prod", "comment": "Production"}],
        "/pools?poolid=prod": [{"poolid": "prod", "comment": "Production", "members": [
            {"id": "qemu/101", "type": "qemu", "vmid": 101, "node": "pve1", "name": "db", "status": "stopped", "template": 0}]}],
        # Proximo's user and token manage guests (PVEAdmin has every VM.*, Datastore.* and SDN.Use privilege)
        "/access/users?full=1": [*operator_access("PVEAdmin")["/access/users?full=1"],
                                 {"userid": "dba@pve", "enable": 1, "expire": 0, "groups": "", "realm-type": "pve", "tokens": None}],
        "/access/acl": [*operator_access("PVEAdmin")["/access/acl"],
                        {"path": "/vms/101", "type": "user", "ugid": "dba@pve", "roleid": "PVEVMUser", "propagate": 1}],
    }
    resources: list[dict[str, Any]] = [{"id": f"node/{n}", "type": "node", "node": n, "status": "online", "level": "",
                                        "maxcpu": 16, "maxmem": 68719476736, "uptime": 864000} for n in NODES]
    for g in GUESTS:
        conf = g["config"]
        resources.append({"id": f"{g['kind']}/{g['vmid']}", "type": g["kind"], "vmid": g["vmid"], "node": g["node"],
                          "name": conf.get("name") or conf["hostname"], "status": g["status"], "template": g.get("template", 0),
                          "maxcpu": conf["cores"], "maxmem": int(conf["memory"]) * 1024 * 1024, "maxdisk": 8 * GiB,
                          "uptime": g["uptime"], "cpu": 0.01 if g["status"] == "running" else 0,
                          **({"hastate": "started"} if g["vmid"] in (100, 200) else {}),
                          **({"pool": "prod"} if g["vmid"] == 101 else {})})
        base = f"/nodes/{g['node']}/{g['kind']}/{g['vmid']}"
        api[f"{base}/config"] = {**conf, "digest": f"{g['vmid']:040x}"}
        rows = [dict(r) for r in g.get("snapshots", [])]
        current: dict[str, Any] = {"name": "current", "digest": f"{g['vmid']:040x}", "description": "You are here!",
                                   "running": int(g["status"] == "running")}
        if conf.get("parent"):
            current["parent"] = conf["parent"]
        api[f"{base}/snapshot"] = rows + [current]
        for name, sconf in g.get("snapshot_configs", {}).items():
            api[f"{base}/config?snapshot={name}"] = dict(sconf)
    for sid, cfg in sorted(STORAGES.items()):
        for n in NODES:
            if cfg.get("nodes") and n not in cfg["nodes"].split(","):
                continue
            total, used = usage[sid]
            resources.append({"id": f"storage/{n}/{sid}", "type": "storage", "storage": sid, "node": n, "status": "available",
                              "plugintype": cfg["type"], "content": cfg["content"], "shared": int(bool(cfg.get("shared"))),
                              "disk": used, "maxdisk": total})
    for n in NODES:
        api[f"/nodes/{n}/network"] = _network(n)
        rows = []
        for sid, cfg in sorted(STORAGES.items()):
            if cfg.get("nodes") and n not in cfg["nodes"].split(","):
                continue
            total, used = usage[sid]
            rows.append({"storage": sid, "type": cfg["type"], "content": cfg["content"], "shared": int(bool(cfg.get("shared"))),
                         "active": 1, "enabled": 1, "total": total, "used": used, "avail": total - used,
                         "used_fraction": round(used / total, 6)})
        api[f"/nodes/{n}/storage"] = rows
    api["/cluster/resources"] = resources
    for (node, sid), rows in VOLUMES.items():
        api[f"/nodes/{node}/storage/{sid}/content"] = copy.deepcopy(rows)
    return api


def make_snapshot(**kwargs: Any) -> dict[str, Any]:
    return snapshot_from(make_api(**kwargs))
