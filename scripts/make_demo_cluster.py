#!/usr/bin/env python3
"""Write the built-in demo cluster, ``proximo/sim/demo_cluster.json``.

The file is a snapshot in the format docs/architecture.md describes ("The snapshot file"):
``{"format": "proximo-snapshot/1", "captured_at": ..., "api": {PATH: DATA}, "extra": {}}``,
where DATA is what PVE 9.1 answers as ``data`` for ``GET PATH``. The shapes follow PVE's own handlers
(pve-manager, pve-storage, qemu-server, pve-container, pve-ha-manager, pve-access-control, pve-firewall)
and real API captures (their upstreams are in NOTICE); where a handler copies a config file, the digest is the
SHA-1 of the file text this script renders, so every digest is stable.

The script is deterministic: no clock, no randomness. Guest config files are written by the model's own writer
(``Guest.file_text``, after write_vm_config and write_pct_config), so run it in the project's environment:

    uv run python scripts/make_demo_cluster.py [--output PATH]
"""

from __future__ import annotations

import argparse
import calendar
import hashlib
import json
import pathlib
import sys
import urllib.parse
from typing import Any

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proximo.model import Guest, file_digest  # noqa: E402  (after the path: the script runs from a checkout)
DEFAULT_OUTPUT = REPO / "proximo" / "sim" / "demo_cluster.json"

FORMAT = "proximo-snapshot/1"
CAPTURED_AT = "2026-11-28T09:30:00Z"  # a Saturday; nodes run in UTC
NOW = calendar.timegm((2026, 11, 28, 9, 30, 0))

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

CLUSTER_NAME = "demo"
LOCAL_NODE = "pve1"  # the node the snapshot was read through (``local: 1`` in /cluster/status)


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def mac(seed: str) -> str:
    """A MAC address in Proxmox's OUI (BC:24:11), as PVE >= 8.1 generates them."""
    h = hashlib.sha1(f"mac:{seed}".encode()).digest()
    return "BC:24:11:" + ":".join(f"{b:02X}" for b in h[:3])


def uuid(seed: str) -> str:
    h = hashlib.sha1(f"uuid:{seed}".encode()).hexdigest()
    return f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def format_size(size: int) -> str:
    """PVE::JSONSchema::format_size: the ``size=`` value PVE writes into a drive string."""
    kb, rest = divmod(size, 1024)
    if rest:
        return str(size)
    mb, rest = divmod(kb, 1024)
    if rest:
        return f"{kb}K"
    gb, rest = divmod(mb, 1024)
    if rest:
        return f"{mb}M"
    tb, rest = divmod(gb, 1024)
    if rest:
        return f"{gb}G"
    return f"{tb}T"


def backup_name(kind: str, vmid: int, stamp: str) -> tuple[str, int]:
    """(file name, ctime) of a vzdump archive named ``vzdump-<kind>-<vmid>-YYYY_MM_DD-HH_MM_SS``."""
    ext = "vma.zst" if kind == "qemu" else "tar.zst"
    date, time_ = stamp.split("-")
    y, mo, d = (int(x) for x in date.split("_"))
    h, mi, s = (int(x) for x in time_.split("_"))
    return f"vzdump-{kind}-{vmid}-{stamp}.{ext}", calendar.timegm((y, mo, d, h, mi, s))


# ---------------------------------------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------------------------------------

NODES: dict[str, dict[str, Any]] = {
    "pve1": {"nodeid": 1, "ip": "10.0.0.11", "maxcpu": 32, "maxmem": 135_088_705_536, "mem": 58_211_622_912,
             "cpu": 0.0873, "uptime": 2_371_524, "root_total": 943_982_034_944, "root_used": 11_811_160_064,
             "zfs_total": 1_830_318_161_920, "zfs_used": 172_336_046_080, "bond_primary": "eno1"},
    "pve2": {"nodeid": 2, "ip": "10.0.0.12", "maxcpu": 32, "maxmem": 135_088_713_728, "mem": 41_932_754_944,
             "cpu": 0.0641, "uptime": 2_371_398, "root_total": 943_982_067_712, "root_used": 15_032_385_536,
             "zfs_total": 1_830_318_227_456, "zfs_used": 38_654_705_664, "bond_primary": "eno1"},
    "pve3": {"nodeid": 3, "ip": "10.0.0.13", "maxcpu": 24, "maxmem": 101_200_211_968, "mem": 27_380_432_896,
             "cpu": 0.0418, "uptime": 1_123_877, "root_total": 943_981_969_408, "root_used": 9_663_676_416,
             "zfs_total": 1_830_318_096_384, "zfs_used": 97_710_505_984, "bond_primary": "eno1"},
}
GATEWAY = "10.0.0.1"


# ---------------------------------------------------------------------------------------------------------
# Storage (storage.cfg) and what lives on it
# ---------------------------------------------------------------------------------------------------------

# Section-config order as written in /etc/pve/storage.cfg. ``shared`` is not in the file for dir/zfspool
# (PVE only sets it for shared-by-nature types: nfs, cifs, rbd, ...).
STORAGE_CFG: list[tuple[str, str, list[tuple[str, Any]]]] = [
    ("dir", "local", [("path", "/var/lib/vz"), ("content", "iso,vztmpl,backup")]),
    ("zfspool", "local-zfs", [("pool", "rpool/data"), ("content", "images,rootdir"), ("sparse", 1)]),
    ("rbd", "ceph-rbd", [("content", "images,rootdir"), ("krbd", 0), ("monhost", "10.0.0.21 10.0.0.22 10.0.0.23"),
                         ("pool", "vm-pool"), ("username", "admin")]),
    ("nfs", "nfs-backup", [("export", "/export/backup"), ("path", "/mnt/pve/nfs-backup"), ("server", "10.0.0.50"),
                           ("content", "backup"), ("prune-backups", "keep-daily=7,keep-weekly=4")]),
    ("cifs", "cifs-iso", [("path", "/mnt/pve/cifs-iso"), ("server", "10.0.0.60"), ("share", "iso"),
                          ("content", "iso"), ("nodes", "pve1,pve2"), ("username", "isoreader")]),
]
SHARED_TYPES = {"nfs", "cifs", "rbd", "cephfs", "iscsi", "iscsidirect", "zfs", "drbd", "pbs"}

# Capacity of the shared storages (the same on every node that sees them).
SHARED_STATS = {
    "ceph-rbd": (6_597_069_766_656, 1_379_893_886_976),
    "nfs-backup": (7_999_997_542_400, 2_206_210_834_432),
    "cifs-iso": (1_999_844_147_200, 412_316_860_416),
}


def storage_text() -> str:
    out = []
    for stype, sid, opts in STORAGE_CFG:
        out.append(f"{stype}: {sid}\n" + "".join(f"\t{k} {v}\n" for k, v in opts))
    return "\n".join(out)


def storage_nodes(sid: str) -> list[str]:
    for _, name, opts in STORAGE_CFG:
        if name == sid:
            restricted = dict(opts).get("nodes")
            return restricted.split(",") if restricted else list(NODES)
    raise KeyError(sid)


def storage_type(sid: str) -> str:
    return next(t for t, name, _ in STORAGE_CFG if name == sid)


def storage_content(sid: str) -> str:
    return next(dict(opts)["content"] for _, name, opts in STORAGE_CFG if name == sid)


def storage_shared(sid: str) -> int:
    return 1 if storage_type(sid) in SHARED_TYPES else 0


# ---------------------------------------------------------------------------------------------------------
# Guests
# ---------------------------------------------------------------------------------------------------------
# Each disk: (config key, storage, volname, size in bytes, drive options other than size, volume kind).
# kind: "image" (zvol/rbd image), "subvol" (ZFS dataset of a container), "cloudinit", "iso", "none", "bind".

SSH_KEY = "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIOyJ6r1b3cQ0Q0i8nXl8V1i2mQkq7P2vYc3e9wHfZ0Tq%20ops%40demo.lan%0A"

GUESTS: list[dict[str, Any]] = [
    {
        "vmid": 104, "type": "qemu", "node": "pve1", "name": "web-01", "status": "running",
        "cores": 2, "memory": 4096, "tags": "prod;web", "pool": "prod", "ha": "started", "onboot": 1,
        "disks": [
            ("scsi0", "local-zfs", "vm-104-disk-0", 32 * GiB, "iothread=1", "image"),
            ("ide2", "local", "iso/debian-12.5.0-amd64-netinst.iso", 629 * MiB, "media=cdrom", "iso"),
        ],
        "boot": "order=scsi0;ide2;net0",
        "stats": {"cpu": 0.0412, "mem": 2_812_345_678, "memhost": 3_105_284_096, "uptime": 1_209_614,
                  "netin": 48_213_990_123, "netout": 112_945_338_901, "diskread": 5_316_829_184, "diskwrite": 19_872_251_904},
    },
    {
        "vmid": 105, "type": "qemu", "node": "pve1", "name": "db-01", "status": "running",
        "cores": 4, "memory": 16384, "tags": "db;prod", "pool": "prod", "onboot": 1,
        "disks": [
            ("scsi0", "ceph-rbd", "vm-105-disk-0", 32 * GiB, "iothread=1", "image"),
            ("scsi1", "local-zfs", "vm-105-disk-0", 200 * GiB, "iothread=1", "image"),
            ("ide2", None, "none", 0, "media=cdrom", "none"),
            ("unused0", "local-zfs", "vm-105-disk-1", 50 * GiB, None, "image"),
        ],
        "boot": "order=scsi0;ide2;net0",
        "stats": {"cpu": 0.1837, "mem": 14_226_571_264, "memhost": 16_901_832_704, "uptime": 2_370_982,
                  "netin": 9_887_123_456, "netout": 31_455_987_012, "diskread": 402_953_338_880, "diskwrite": 1_120_043_966_464},
    },
    {
        "vmid": 106, "type": "qemu", "node": "pve2", "name": "web-02", "status": "running",
        "cores": 2, "memory": 4096, "tags": "prod;web", "pool": "prod", "onboot": 1,
        "disks": [
            ("scsi0", "ceph-rbd", "vm-106-disk-0", 32 * GiB, "iothread=1", "image"),
            ("ide2", None, "none", 0, "media=cdrom", "none"),
        ],
        "boot": "order=scsi0;ide2;net0",
        "stats": {"cpu": 0.0387, "mem": 2_654_113_792, "memhost": 2_983_710_720, "uptime": 2_370_455,
                  "netin": 45_102_776_512, "netout": 108_334_110_976, "diskread": 4_922_384_384, "diskwrite": 18_004_221_952},
    },
    {
        "vmid": 107, "type": "qemu", "node": "pve2", "name": "win-ws01", "status": "running",
        "cores": 4, "memory": 8192, "ostype": "win11", "bios": "ovmf", "machine": "pc-q35-9.2+pve1", "cpu": "host",
        "disks": [
            ("efidisk0", "local-zfs", "vm-107-disk-0", 1 * MiB, "efitype=4m,pre-enrolled-keys=1", "image"),
            ("tpmstate0", "local-zfs", "vm-107-disk-1", 4 * MiB, "version=v2.0", "image"),
            ("scsi0", "ceph-rbd", "vm-107-disk-0", 80 * GiB, "cache=writeback,discard=on,iothread=1", "image"),
            ("ide2", "cifs-iso", "iso/Win11_24H2_EnglishInternational_x64.iso", 5550 * MiB, "media=cdrom", "iso"),
            ("ide0", "local", "iso/virtio-win-0.1.271.iso", 709 * MiB, "media=cdrom", "iso"),
        ],
        "boot": "order=scsi0;ide2;ide0;net0",
        "stats": {"cpu": 0.0915, "mem": 6_012_964_864, "memhost": 8_760_459_264, "uptime": 604_877,
                  "netin": 3_211_874_304, "netout": 912_306_176, "diskread": 28_455_010_304, "diskwrite": 14_002_118_656},
    },
    {
        "vmid": 108, "type": "qemu", "node": "pve3", "name": "test-01", "status": "stopped",
        "cores": 1, "memory": 2048,
        "disks": [
            ("scsi0", "local-zfs", "vm-108-disk-0", 16 * GiB, "iothread=1", "image"),
            ("ide2", None, "none", 0, "media=cdrom", "none"),
        ],
        "boot": "order=scsi0;ide2;net0",
    },
    {
        "vmid": 110, "type": "qemu", "node": "pve3", "name": "mon-01", "status": "running",
        "cores": 2, "memory": 8192, "tags": "monitoring", "onboot": 1,
        "disks": [
            ("scsi0", "ceph-rbd", "vm-110-disk-0", 32 * GiB, "iothread=1", "image"),
            ("scsi1", "ceph-rbd", "vm-110-disk-1", 100 * GiB, "iothread=1", "image"),
            ("ide2", None, "none", 0, "media=cdrom", "none"),
        ],
        "boot": "order=scsi0;ide2;net0",
        "stats": {"cpu": 0.0732, "mem": 5_368_709_120, "memhost": 6_120_357_888, "uptime": 1_123_302,
                  "netin": 88_321_554_432, "netout": 7_112_884_224, "diskread": 12_884_901_888, "diskwrite": 301_989_888_000},
    },
    {
        "vmid": 120, "type": "qemu", "node": "pve1", "name": "ci-runner-01", "status": "running",
        "cores": 4, "memory": 8192, "tags": "ci", "cloudinit": True,
        "disks": [
            ("scsi0", "local-zfs", "base-9000-disk-0/vm-120-disk-0", 8 * GiB, "iothread=1", "image"),
            ("ide2", "local-zfs", "vm-120-cloudinit", 4 * MiB, "media=cdrom", "cloudinit"),
        ],
        "boot": "order=scsi0",
        "stats": {"cpu": 0.2214, "mem": 4_831_838_208, "memhost": 5_210_112_000, "uptime": 86_211,
                  "netin": 2_147_483_648, "netout": 402_653_184, "diskread": 1_073_741_824, "diskwrite": 6_442_450_944},
    },
    {
        "vmid": 121, "type": "qemu", "node": "pve1", "name": "ci-runner-02", "status": "stopped",
        "cores": 4, "memory": 8192, "tags": "ci", "cloudinit": True,
        "disks": [
            ("scsi0", "local-zfs", "base-9000-disk-0/vm-121-disk-0", 8 * GiB, "iothread=1", "image"),
            ("ide2", "local-zfs", "vm-121-cloudinit", 4 * MiB, "media=cdrom", "cloudinit"),
        ],
        "boot": "order=scsi0",
    },
    {
        "vmid": 130, "type": "qemu", "node": "pve3", "name": "k8s-node-01", "status": "running",
        "cores": 4, "memory": 16384, "tags": "k8s", "onboot": 1, "cloudinit": True, "ip": "10.0.0.130/24",
        "disks": [
            ("ide2", "local-zfs", "vm-130-cloudinit", 4 * MiB, "media=cdrom", "cloudinit"),
            ("scsi0", "ceph-rbd", "vm-130-disk-0", 40 * GiB, "iothread=1", "image"),
        ],
        "boot": "order=scsi0",
        "stats": {"cpu": 0.3105, "mem": 11_811_160_064, "memhost": 13_421_772_800, "uptime": 1_123_290,
                  "netin": 154_618_822_656, "netout": 139_586_437_120, "diskread": 21_474_836_480, "diskwrite": 257_698_037_760},
    },
    {
        "vmid": 9000, "type": "qemu", "node": "pve1", "name": "debian-12-tmpl", "status": "stopped", "template": 1,
        "cores": 2, "memory": 2048, "tags": "template", "cloudinit": True,
        "disks": [
            ("scsi0", "local-zfs", "base-9000-disk-0", 8 * GiB, "iothread=1", "image"),
            ("ide2", "local-zfs", "vm-9000-cloudinit", 4 * MiB, "media=cdrom", "cloudinit"),
        ],
        "boot": "order=scsi0",
    },
    {
        "vmid": 201, "type": "lxc", "node": "pve1", "name": "files-01", "status": "running",
        "cores": 2, "memory": 1024, "swap": 512, "onboot": 1,
        "disks": [
            ("rootfs", "local-zfs", "subvol-201-disk-0", 8 * GiB, None, "subvol"),
            ("mp0", "ceph-rbd", "vm-201-disk-0", 50 * GiB, "mp=/srv/share", "image"),
        ],
        "stats": {"cpu": 0.0034, "mem": 187_215_872, "memhost": 187_215_872, "uptime": 2_370_801, "disk": 1_342_177_280,
                  "swap": 0, "netin": 7_516_192_768, "netout": 21_474_836_480, "diskread": 3_221_225_472, "diskwrite": 1_610_612_736},
    },
    {
        "vmid": 202, "type": "lxc", "node": "pve2", "name": "proxy-01", "status": "running",
        "cores": 1, "memory": 512, "swap": 512, "tags": "prod;proxy", "pool": "prod", "ha": "started", "onboot": 1,
        "disks": [
            ("rootfs", "ceph-rbd", "vm-202-disk-0", 8 * GiB, None, "image"),
        ],
        "stats": {"cpu": 0.0121, "mem": 98_566_144, "memhost": 98_566_144, "uptime": 2_370_402, "disk": 1_879_048_192,
                  "swap": 0, "netin": 201_863_462_912, "netout": 198_642_237_440, "diskread": 536_870_912, "diskwrite": 268_435_456},
    },
    {
        "vmid": 203, "type": "lxc", "node": "pve3", "name": "media-01", "status": "running",
        "cores": 2, "memory": 2048, "swap": 512, "onboot": 1,
        "disks": [
            ("rootfs", "local-zfs", "subvol-203-disk-0", 8 * GiB, None, "subvol"),
            ("mp0", "local-zfs", "subvol-203-disk-1", 100 * GiB, "mp=/var/lib/media", "subvol"),
            ("mp1", None, "/srv/data", 0, "mp=/data", "bind"),
        ],
        "stats": {"cpu": 0.0089, "mem": 412_090_368, "memhost": 412_090_368, "uptime": 1_123_255, "disk": 2_415_919_104,
                  "swap": 0, "netin": 32_212_254_720, "netout": 96_636_764_160, "diskread": 42_949_672_960, "diskwrite": 4_294_967_296},
    },
    {
        "vmid": 204, "type": "lxc", "node": "pve2", "name": "dev-01", "status": "stopped",
        "cores": 2, "memory": 2048, "swap": 512,
        "disks": [
            ("rootfs", "ceph-rbd", "vm-204-disk-0", 16 * GiB, None, "image"),
            ("unused0", "local-zfs", "subvol-204-disk-0", 8 * GiB, None, "subvol"),
        ],
    },
    {
        "vmid": 205, "type": "lxc", "node": "pve3", "name": "dns-01", "status": "running",
        "cores": 1, "memory": 512, "swap": 256, "tags": "infra", "onboot": 1,
        "disks": [
            ("rootfs", "local-zfs", "subvol-205-disk-0", 4 * GiB, None, "subvol"),
        ],
        "stats": {"cpu": 0.0017, "mem": 61_865_984, "memhost": 61_865_984, "uptime": 1_123_249, "disk": 905_969_664,
                  "swap": 0, "netin": 4_831_838_208, "netout": 5_905_580_032, "diskread": 268_435_456, "diskwrite": 134_217_728},
    },
]

GUEST_BY_ID = {g["vmid"]: g for g in GUESTS}

# Volumes that exist besides the guests' own disks.
EXTRA_ZFS = [
    # 104 is replicated to pve2 (job 104-0): the replica has the same name on the target.
    ("pve2", "vm-104-disk-0", 104, 32 * GiB),
]
ISO_FILES: dict[tuple[str, str], list[tuple[str, int, int]]] = {
    # (storage, node or "" for shared) -> [(file, size, ctime)]
    ("local", "pve1"): [("debian-12.5.0-amd64-netinst.iso", 629 * MiB, 1_740_480_112)],
    ("local", "pve2"): [("debian-12.5.0-amd64-netinst.iso", 629 * MiB, 1_740_480_377),
                        ("virtio-win-0.1.271.iso", 709 * MiB, 1_758_011_204)],
    ("local", "pve3"): [],
    ("cifs-iso", ""): [("Win11_24H2_EnglishInternational_x64.iso", 5550 * MiB, 1_733_390_016),
                       ("proxmox-ve_9.1-1.iso", 1_637_871_616, 1_763_021_455),
                       ("ubuntu-24.04.1-live-server-amd64.iso", 2_773_874_688, 1_725_012_330)],
}
VZTMPL_FILES: dict[str, list[tuple[str, int, int]]] = {
    "pve1": [("debian-12-standard_12.7-1_amd64.tar.zst", 126_458_880, 1_733_001_733)],
    "pve2": [("debian-12-standard_12.7-1_amd64.tar.zst", 126_458_880, 1_733_001_950)],
    "pve3": [("debian-12-standard_12.7-1_amd64.tar.zst", 126_458_880, 1_733_002_011),
             ("ubuntu-24.04-standard_24.04-2_amd64.tar.zst", 147_193_644, 1_736_177_420)],
}
# Backups: (storage, node or "" for shared, kind, vmid, timestamp, size, protected)
BACKUPS: list[tuple[str, str, str, int, str, int, int]] = [
    ("nfs-backup", "", "qemu", 104, "2026_11_22-01_00_04", 3_486_318_592, 1),
    ("nfs-backup", "", "qemu", 104, "2026_11_26-21_00_02", 3_521_085_440, 0),
    ("nfs-backup", "", "qemu", 104, "2026_11_27-21_00_02", 3_525_214_208, 0),
    ("nfs-backup", "", "qemu", 105, "2026_11_22-01_01_37", 61_412_634_624, 0),
    ("nfs-backup", "", "qemu", 105, "2026_11_27-21_01_12", 62_087_905_280, 0),
    ("nfs-backup", "", "qemu", 106, "2026_11_27-21_00_03", 3_298_820_096, 0),
    ("nfs-backup", "", "qemu", 110, "2026_11_27-21_02_48", 18_740_666_368, 0),
    ("nfs-backup", "", "lxc", 202, "2026_11_22-01_00_51", 412_975_104, 0),
    ("nfs-backup", "", "lxc", 202, "2026_11_27-21_00_40", 415_236_096, 0),
    ("nfs-backup", "", "lxc", 203, "2026_11_27-21_03_15", 22_548_578_304, 0),
    ("local", "pve1", "qemu", 105, "2026_11_28-02_00_03", 61_899_112_448, 0),
    ("local", "pve1", "lxc", 201, "2026_11_28-02_09_51", 604_012_544, 0),
]


def config_for(g: dict[str, Any]) -> dict[str, Any]:
    """The guest's config as GET .../config returns it (without ``digest``)."""
    vmid = g["vmid"]
    conf: dict[str, Any] = {}
    for key, sid, volname, size, opts, kind in g["disks"]:
        if kind == "none":
            conf[key] = f"none,{opts}"
        elif kind == "bind":
            conf[key] = f"{volname},{opts}"
        elif key.startswith("unused"):
            conf[key] = f"{sid}:{volname}"
        elif kind == "cloudinit":
            conf[key] = f"{sid}:{volname},{opts}"
        else:
            parts = [f"{sid}:{volname}"]
            extra = [opts] if opts else []
            extra.append(f"size={format_size(size)}")
            conf[key] = ",".join(parts + sorted(",".join(extra).split(",")))
    if g["type"] == "qemu":
        conf.update({
            "boot": g["boot"],
            "cores": g["cores"],
            "cpu": g.get("cpu", "x86-64-v2-AES"),
            "memory": g["memory"],
            "meta": f"creation-qemu=9.2.0,ctime={1_745_000_000 + vmid * 3_613}",
            "name": g["name"],
            "net0": f"virtio={mac(f'{vmid}-0')},bridge=vmbr0,firewall=1",
            "numa": 0,
            "ostype": g.get("ostype", "l26"),
            "scsihw": "virtio-scsi-single",
            "smbios1": f"uuid={uuid(str(vmid))}",
            "sockets": 1,
            "vmgenid": uuid(f"vmgenid-{vmid}"),
        })
        if g.get("ostype", "l26") == "l26":
            conf["agent"] = "1"
        if g.get("bios"):
            conf["bios"] = g["bios"]
            conf["machine"] = g["machine"]
        if g.get("cloudinit"):
            conf["ciuser"] = "debian"
            conf["ipconfig0"] = f"ip={g['ip']},gw={GATEWAY}" if g.get("ip") else "ip=dhcp"
            conf["sshkeys"] = SSH_KEY
            conf["serial0"] = "socket"
            conf["vga"] = "serial0"
        if g.get("template"):
            conf["template"] = 1
    else:
        conf.update({
            "arch": "amd64",
            "cores": g["cores"],
            "features": "nesting=1",
            "hostname": g["name"],
            "memory": g["memory"],
            "net0": f"name=eth0,bridge=vmbr0,firewall=1,hwaddr={mac(f'{vmid}-0')},ip=dhcp,type=veth",
            "ostype": "debian",
            "swap": g["swap"],
            "unprivileged": 1,
        })
    if g.get("onboot"):
        conf["onboot"] = 1
    if g.get("tags"):
        conf["tags"] = g["tags"]
    return conf


def config_digest(g: dict[str, Any], conf: dict[str, Any], snapshots: dict[str, dict[str, Any]]) -> str:
    """The SHA-1 of the config file PVE writes for this config and its snapshot sections: the API ``digest``."""
    guest = Guest(vmid=g["vmid"], kind=g["type"], node=g["node"], resource={}, config=conf, snapshot_configs=snapshots)
    return file_digest(guest.file_text())


def boot_disk_size(g: dict[str, Any]) -> int:
    if g["type"] == "lxc":
        return next(d[3] for d in g["disks"] if d[0] == "rootfs")
    order = g["boot"].split("=", 1)[1].split(";")
    disks = {d[0]: d for d in g["disks"]}
    for dev in order:
        d = disks.get(dev)
        if d and d[5] == "image":
            return d[3]
    return 0


# ---------------------------------------------------------------------------------------------------------
# Building the API
# ---------------------------------------------------------------------------------------------------------


def volumes() -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Content rows per (storage, node); node is "" for shared storages."""
    vols: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def add(sid: str, node: str, row: dict[str, Any]) -> None:
        vols.setdefault((sid, "" if storage_shared(sid) else node), []).append(row)

    def add_image(sid: str, node: str, volname: str, vmid: int, size: int, kind: str) -> None:
        stype = storage_type(sid)
        name = volname.split("/")[-1]
        parent = None
        if "/" in volname:
            parent = volname.split("/")[0] + "@__base__"
        guest = GUEST_BY_ID.get(vmid)
        content = "rootdir" if guest and guest["type"] == "lxc" else "images"
        if stype == "zfspool":
            row = {"volid": f"{sid}:{volname}", "name": name, "size": size, "parent": parent,
                   "format": "subvol" if kind == "subvol" else "raw", "vmid": vmid, "content": content}
        elif stype == "rbd":
            row = {"volid": f"{sid}:{volname}", "name": name, "size": size, "parent": parent,
                   "format": "raw", "vmid": vmid, "content": content}
        else:
            raise ValueError(f"no image support modelled for {stype}")
        add(sid, node, row)

    for g in GUESTS:
        for key, sid, volname, size, opts, kind in g["disks"]:
            if kind in ("image", "subvol", "cloudinit"):
                add_image(sid, g["node"], volname, g["vmid"], size, kind)
    for node, volname, vmid, size in EXTRA_ZFS:
        add_image("local-zfs", node, volname, vmid, size, "image")
    for (sid, node), files in ISO_FILES.items():
        for fn, size, ctime in files:
            add(sid, node, {"volid": f"{sid}:iso/{fn}", "format": "iso", "size": size, "ctime": ctime, "content": "iso"})
    for node, files in VZTMPL_FILES.items():
        for fn, size, ctime in files:
            add("local", node, {"volid": f"local:vztmpl/{fn}", "format": "tzst", "size": size, "ctime": ctime,
                                "content": "vztmpl"})
    for sid, node, kind, vmid, stamp, size, protected in BACKUPS:
        fn, ctime = backup_name(kind, vmid, stamp)
        row = {"volid": f"{sid}:backup/{fn}", "format": fn.split(".", 1)[1], "size": size, "ctime": ctime,
               "subtype": kind, "vmid": vmid, "notes": GUEST_BY_ID[vmid]["name"], "content": "backup"}
        if protected:
            row["protected"] = 1
        add(sid, node, row)
    for rows in vols.values():
        rows.sort(key=lambda r: r["volid"].lower())
    return vols


def storage_stats(sid: str, node: str) -> tuple[int, int]:
    """(total, used) of a storage as seen from a node."""
    if sid in SHARED_STATS:
        return SHARED_STATS[sid]
    n = NODES[node]
    if sid == "local":
        return n["root_total"], n["root_used"]
    if sid == "local-zfs":
        return n["zfs_total"], n["zfs_used"]
    raise KeyError(sid)


def guest_stats(g: dict[str, Any]) -> dict[str, Any]:
    s = g.get("stats") or {}
    return {k: s.get(k, 0) for k in ("cpu", "mem", "memhost", "uptime", "netin", "netout", "diskread", "diskwrite",
                                     "disk", "swap")}


def resource_row(g: dict[str, Any]) -> dict[str, Any]:
    """PVE::API2Tools::extract_vm_stats: the part of a guest row shared by /cluster/resources and pools."""
    s = guest_stats(g)
    return {
        "id": f"{g['type']}/{g['vmid']}", "vmid": g["vmid"], "node": g["node"], "type": g["type"],
        "status": g["status"], "uptime": s["uptime"], "name": g["name"], "template": g.get("template", 0),
        "maxcpu": g["cores"], "cpu": s["cpu"], "maxmem": g["memory"] * MiB, "mem": s["mem"],
        "maxdisk": boot_disk_size(g), "disk": s["disk"] if g["type"] == "lxc" else 0,
        "netin": s["netin"], "netout": s["netout"], "diskread": s["diskread"], "diskwrite": s["diskwrite"],
        "memhost": s["memhost"],
    }


def storage_row(sid: str, node: str) -> dict[str, Any]:
    """PVE::API2Tools::extract_storage_stats."""
    total, used = storage_stats(sid, node)
    return {"id": f"storage/{node}/{sid}", "storage": sid, "node": node, "type": "storage",
            "plugintype": storage_type(sid), "status": "available", "shared": storage_shared(sid),
            "content": storage_content(sid), "maxdisk": total, "disk": used}


def node_list_row(name: str) -> dict[str, Any]:
    n = NODES[name]
    fp = hashlib.sha256(f"ssl:{name}".encode()).hexdigest().upper()
    return {"node": name, "status": "online", "cpu": n["cpu"], "level": "", "maxcpu": n["maxcpu"],
            "maxmem": n["maxmem"], "mem": n["mem"], "disk": n["root_used"], "maxdisk": n["root_total"],
            "uptime": n["uptime"], "id": f"node/{name}", "type": "node",
            "ssl_fingerprint": ":".join(fp[i:i + 2] for i in range(0, 64, 2))}


# Guests with a snapshot: vmid -> (name, description, snaptime)
SNAPSHOTS: dict[int, tuple[str, str, int]] = {105: ("before-upgrade", "Before the PostgreSQL 17 upgrade", 1_795_500_000)}


def node_status(name: str) -> dict[str, Any]:
    """GET /nodes/{node}/status, the parts an operator reads (PVE 9.1 key names)."""
    n = NODES[name]
    return {"cpu": n["cpu"], "uptime": n["uptime"], "loadavg": ["0.42", "0.51", "0.48"], "idle": 0, "wait": 0.0012,
            "cpuinfo": {"cpus": n["maxcpu"], "cores": n["maxcpu"] // 2, "sockets": 1, "mhz": "3000.000",
                        "model": "AMD EPYC 7302P 16-Core Processor", "hvm": "1", "user_hz": 100, "flags": ""},
            "memory": {"total": n["maxmem"], "used": n["mem"], "free": n["maxmem"] - n["mem"],
                       "available": n["maxmem"] - n["mem"]},
            "swap": {"total": 8 * 1024**3, "used": 0, "free": 8 * 1024**3},
            "rootfs": {"total": n["root_total"], "used": n["root_used"], "avail": n["root_total"] - n["root_used"],
                       "free": n["root_total"] - n["root_used"]},
            "kversion": "Linux 6.17.2-1-pve #1 SMP PREEMPT_DYNAMIC PMX 6.17.2-1 (2025-10-21T11:55Z) x86_64",
            "pveversion": "pve-manager/9.1.2/6a3e57f2", "current-kernel": {"sysname": "Linux", "release": "6.17.2-1-pve",
                                                                          "machine": "x86_64", "version": "#1 SMP PREEMPT_DYNAMIC PMX 6.17.2-1"},
            "boot-info": {"mode": "efi", "secureboot": 0}, "ksm": {"shared": 0}}


def node_resource_row(name: str) -> dict[str, Any]:
    n = NODES[name]
    return {"id": f"node/{name}", "node": name, "type": "node", "status": "online", "uptime": n["uptime"],
            "cpu": n["cpu"], "mem": n["mem"], "disk": n["root_used"], "level": "", "maxcpu": n["maxcpu"],
            "maxmem": n["maxmem"], "maxdisk": n["root_total"], "cgroup-mode": 2}


def network_rows(name: str) -> list[dict[str, Any]]:
    n = NODES[name]
    rows: list[dict[str, Any]] = [
        {"iface": "eno1", "type": "eth", "method": "manual", "method6": "manual", "families": ["inet"],
         "priority": 3, "active": 1, "exists": 1},
        {"iface": "eno2", "type": "eth", "method": "manual", "method6": "manual", "families": ["inet"],
         "priority": 4, "active": 1, "exists": 1},
        {"iface": "bond0", "type": "bond", "method": "manual", "method6": "manual", "families": ["inet"],
         "priority": 5, "active": 1, "autostart": 1, "slaves": "eno1 eno2", "bond_mode": "active-backup",
         "bond_miimon": "100", "bond-primary": n["bond_primary"]},
        {"iface": "vmbr0", "type": "bridge", "method": "static", "method6": "manual", "families": ["inet"],
         "priority": 6, "active": 1, "autostart": 1, "address": n["ip"], "netmask": "24", "cidr": f"{n['ip']}/24",
         "gateway": GATEWAY, "bridge_ports": "bond0", "bridge_stp": "off", "bridge_fd": "0"},
    ]
    if name == "pve1":
        rows.append({"iface": "vmbr1", "type": "bridge", "method": "manual", "method6": "manual", "families": ["inet"],
                     "priority": 7, "active": 1, "autostart": 1, "bridge_ports": "", "bridge_stp": "off",
                     "bridge_fd": "0", "comments": "isolated lab bridge\n"})
    return rows


def fw_digest(entries: list[dict[str, Any]]) -> str:
    """pve-firewall copy_list_with_digest / copy_opject_with_digest: SHA-1 over ``key:value\\n``."""
    text = ""
    for e in entries:
        for k in sorted(e):
            if isinstance(e[k], (dict, list)):
                continue
            text += f"{k}:{e[k]}\n"
    return sha1(text)


def fw_rules(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    digest = fw_digest(entries)
    return [{**e, "pos": i, "digest": digest} for i, e in enumerate(entries)]


def fw_options(opts: dict[str, Any]) -> dict[str, Any]:
    return {**opts, "digest": fw_digest([opts]) if opts else sha1("")}


# Guest firewall: web-01 has its own rules; every other guest has no <vmid>.fw.
GUEST_FW: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    104: (
        {"enable": 1},
        [
            {"type": "in", "action": "ACCEPT", "macro": "HTTP", "enable": 1, "log": "nolog"},
            {"type": "in", "action": "ACCEPT", "macro": "HTTPS", "enable": 1, "log": "nolog"},
            {"type": "in", "action": "ACCEPT", "macro": "SSH", "source": "10.0.0.0/24", "enable": 1, "log": "nolog",
             "ipversion": 4},
        ],
    ),
}

BACKUP_JOBS: list[dict[str, Any]] = [
    {"id": "backup-daily", "type": "vzdump", "schedule": "21:00", "storage": "nfs-backup", "all": 1,
     "exclude": "9000", "mode": "snapshot", "compress": "zstd", "enabled": 1, "notes-template": "{{guestname}}",
     "comment": "Nightly backup of all guests but the template", "next-run": calendar.timegm((2026, 11, 28, 21, 0, 0))},
    {"id": "backup-db", "type": "vzdump", "schedule": "sat 02:00", "storage": "local", "vmid": "105,201",
     "mode": "snapshot", "compress": "zstd", "enabled": 1, "notes-template": "{{guestname}}",
     "next-run": calendar.timegm((2026, 12, 5, 2, 0, 0))},
    {"id": "backup-pool", "type": "vzdump", "schedule": "sun 01:00", "storage": "nfs-backup", "pool": "prod",
     "mode": "snapshot", "compress": "zstd", "enabled": 1, "notes-template": "{{guestname}}",
     "next-run": calendar.timegm((2026, 11, 29, 1, 0, 0))},
]

HA_RESOURCES_CFG = [
    ("vm", 104, [("comment", "web frontend"), ("failback", 1), ("max_relocate", 1), ("max_restart", 1),
                 ("state", "started")]),
    ("ct", 202, [("max_relocate", 1), ("max_restart", 1), ("state", "started")]),
]
HA_RULES_CFG = [
    ("node-affinity", "web-01-prefer-pve1", [("comment", "Prefer pve1 then the replica on pve2"),
                                             ("nodes", "pve1:2,pve2:1"), ("resources", "vm:104")]),
]

USERS: list[dict[str, Any]] = [
    {"userid": "alice@pve", "enable": 1, "expire": 0, "firstname": "Alice", "lastname": "Martin",
     "email": "alice@demo.lan", "groups": "admins", "tokens": None, "realm-type": "pve"},
    {"userid": "bob@pve", "enable": 1, "expire": 0, "firstname": "Bob", "lastname": "Keller",
     "email": "bob@demo.lan", "groups": "operators", "tokens": None, "realm-type": "pve"},
    {"userid": "proximo@pve", "enable": 1, "expire": 0, "comment": "Proximo agent", "groups": "",
     "tokens": [{"tokenid": "agent", "expire": 0, "privsep": 1, "comment": "Proximo MCP server"}],
     "realm-type": "pve"},
    {"userid": "root@pam", "enable": 1, "expire": 0, "email": "root@demo.lan", "groups": "", "tokens": None,
     "realm-type": "pam"},
]
GROUPS = [
    {"groupid": "admins", "users": "alice@pve", "comment": "Cluster administrators"},
    {"groupid": "operators", "users": "bob@pve", "comment": "Day-to-day operations"},
]
CUSTOM_ROLES = {
    "VMOperator": ["VM.Audit", "VM.Console", "VM.PowerMgmt"],
    "BackupOperator": ["Datastore.AllocateSpace", "Datastore.Audit", "VM.Audit", "VM.Backup"],
}
ACL = [
    {"path": "/", "type": "group", "ugid": "admins", "roleid": "Administrator", "propagate": 1},
    {"path": "/", "type": "user", "ugid": "alice@pve", "roleid": "Administrator", "propagate": 1},
    # Proximo's token manages everything the demo shows, the cluster firewall (Sys.Modify on /) and ACLs
    # (Permissions.Modify) included: only Administrator has both. Its owner needs them too (privsep=1 intersects).
    {"path": "/", "type": "user", "ugid": "proximo@pve", "roleid": "Administrator", "propagate": 1},
    {"path": "/", "type": "token", "ugid": "proximo@pve!agent", "roleid": "Administrator", "propagate": 1},
    {"path": "/pool/prod", "type": "group", "ugid": "operators", "roleid": "VMOperator", "propagate": 1},
    {"path": "/storage/local-zfs", "type": "group", "ugid": "admins", "roleid": "PVEDatastoreUser", "propagate": 1},
    {"path": "/storage/nfs-backup", "type": "group", "ugid": "operators", "roleid": "BackupOperator", "propagate": 1},
]
POOL = {"poolid": "prod", "comment": "Production services", "storage": ["nfs-backup"]}


def section_text(entries: list[tuple[str, Any, list[tuple[str, Any]]]]) -> str:
    return "\n".join(f"{t}: {i}\n" + "".join(f"\t{k} {v}\n" for k, v in opts) for t, i, opts in entries)


def build() -> dict[str, Any]:
    api: dict[str, Any] = {}
    nodes = list(NODES)

    # --- cluster and nodes -------------------------------------------------------------------------------
    api["/version"] = {"release": "9.1", "version": "9.1.2", "repoid": "6a3e57f2"}
    status = [{"type": "cluster", "id": "cluster", "name": CLUSTER_NAME, "nodes": len(nodes), "version": 3,
               "quorate": 1}]
    for name in nodes:
        n = NODES[name]
        status.append({"type": "node", "id": f"node/{name}", "name": name, "nodeid": n["nodeid"],
                       "local": 1 if name == LOCAL_NODE else 0, "online": 1, "ip": n["ip"], "level": ""})
    api["/cluster/status"] = status
    api["/nodes"] = [node_list_row(name) for name in nodes]
    api["/cluster/config/nodes"] = [
        {"node": name, "name": name, "nodeid": str(NODES[name]["nodeid"]), "quorum_votes": "1",
         "ring0_addr": NODES[name]["ip"]} for name in nodes
    ]
    # The totem section pvecm create writes on PVE 6 and later (pve-cluster src/PVE/Corosync.pm create_conf):
    # no transport key, so corosync uses knet (no multicast).
    api["/cluster/config/totem"] = {"cluster_name": CLUSTER_NAME, "config_version": "3",
                                    "ip_version": "ipv4-6", "link_mode": "passive", "secauth": "on", "version": "2"}
    for name in nodes:
        api[f"/nodes/{name}/network"] = network_rows(name)
        api[f"/nodes/{name}/status"] = node_status(name)

    # --- storage -----------------------------------------------------------------------------------------
    storage_digest = sha1(storage_text())
    rows = []
    for stype, sid, opts in STORAGE_CFG:
        row: dict[str, Any] = {"storage": sid, "type": stype, "digest": storage_digest}
        row.update(dict(opts))
        if stype in SHARED_TYPES:
            row["shared"] = 1
        rows.append(row)
    api["/storage"] = sorted(rows, key=lambda r: r["storage"])
    sids = sorted(sid for _, sid, _ in STORAGE_CFG)
    vols = volumes()
    for name in nodes:
        status_rows = []
        for sid in sids:
            if name not in storage_nodes(sid):
                continue
            total, used = storage_stats(sid, name)
            status_rows.append({"storage": sid, "type": storage_type(sid), "content": storage_content(sid),
                                "active": 1, "enabled": 1, "shared": storage_shared(sid), "total": total,
                                "used": used, "avail": total - used, "used_fraction": round(used / total, 6)})
            key = (sid, "" if storage_shared(sid) else name)
            api[f"/nodes/{name}/storage/{sid}/content"] = [dict(r) for r in vols.get(key, [])]
        api[f"/nodes/{name}/storage"] = status_rows

    # --- guests ------------------------------------------------------------------------------------------
    ha_state = {g["vmid"]: g["ha"] for g in GUESTS if g.get("ha")}
    for name in nodes:
        for kind in ("qemu", "lxc"):
            listing = []
            for g in sorted((g for g in GUESTS if g["node"] == name and g["type"] == kind), key=lambda g: g["vmid"]):
                s = guest_stats(g)
                row = {"vmid": g["vmid"], "name": g["name"], "status": g["status"], "cpus": g["cores"],
                       "maxmem": g["memory"] * MiB, "mem": s["mem"], "maxdisk": boot_disk_size(g),
                       "disk": s["disk"] if kind == "lxc" else 0, "cpu": s["cpu"], "uptime": s["uptime"],
                       "netin": s["netin"], "netout": s["netout"], "diskread": s["diskread"],
                       "diskwrite": s["diskwrite"]}
                if kind == "lxc":
                    row.update({"type": "lxc", "maxswap": g["swap"] * MiB, "swap": s["swap"]})
                if g.get("tags"):
                    row["tags"] = g["tags"]
                if g.get("template"):
                    row["template"] = 1
                if g["status"] == "running":
                    row["pid"] = 1_000 + (g["vmid"] * 7_919) % 900_000
                    row["pressurecpusome"] = round(s["cpu"] / 10, 4)
                    row["pressureiosome"] = 0.0
                    row["pressureiofull"] = 0.0
                    row["pressurememorysome"] = 0.0
                    row["pressurememoryfull"] = 0.0
                    if kind == "qemu":
                        row["memhost"] = s["memhost"]
                        row["pressurecpufull"] = 0.0
                if kind == "qemu" and "serial0" in config_for(g):
                    row["serial"] = 1
                listing.append(row)
            api[f"/nodes/{name}/{kind}"] = listing
    for g in GUESTS:
        conf = config_for(g)
        base = f"/nodes/{g['node']}/{g['type']}/{g['vmid']}"
        snap = SNAPSHOTS.get(g["vmid"])
        snapshot_rows: list[dict[str, Any]] = []
        snapshot_configs: dict[str, dict[str, Any]] = {}
        if snap is not None:  # one snapshot, taken while running, without RAM state
            name, description, snaptime = snap
            snapshot_configs[name] = {**conf, "description": description, "snaptime": snaptime}
            snapshot_rows.append({"name": name, "description": description, "snaptime": snaptime})
            conf = {**conf, "parent": name}
        digest = config_digest(g, conf, snapshot_configs)
        api[f"{base}/config"] = {**conf, "digest": digest}
        for name, snap_conf in snapshot_configs.items():  # AbstractConfig load_snapshot_config adds the file's digest
            api[f"{base}/config?snapshot={name}"] = {**snap_conf, "digest": digest}
        current: dict[str, Any] = {"name": "current", "digest": digest, "description": "You are here!",
                                   "running": 1 if g["status"] == "running" else 0}
        if snap is not None:
            current["parent"] = snap[0]
        api[f"{base}/snapshot"] = snapshot_rows + [current]
        if g["status"] == "running":  # nothing pending: every key of the loaded config, the digest too
            api[f"{base}/pending"] = [{"key": k, "value": v} for k, v in sorted({**conf, "digest": digest}.items())]
        opts, rules = GUEST_FW.get(g["vmid"], ({}, []))
        api[f"{base}/firewall/options"] = fw_options(opts)
        api[f"{base}/firewall/rules"] = fw_rules(rules)
        api[f"{base}/firewall/ipset"] = []  # no guest-level ipsets or aliases (collect reads both)
        api[f"{base}/firewall/aliases"] = []

    # --- /cluster/resources ------------------------------------------------------------------------------
    resources: list[dict[str, Any]] = []
    pool_row: dict[str, Any] = {"id": f"/pool/{POOL['poolid']}", "pool": POOL["poolid"], "type": "pool"}
    resources.append(pool_row)
    for g in sorted(GUESTS, key=lambda g: str(g["vmid"])):
        row = resource_row(g)
        if g.get("pool"):
            row["pool"] = g["pool"]
            if row["uptime"]:
                pool_row["uptime"] = max(pool_row.get("uptime", 0), row["uptime"])
                pool_row["mem"] = pool_row.get("mem", 0) + row["mem"]
                pool_row["maxmem"] = pool_row.get("maxmem", 0) + row["maxmem"]
                old_cpu, old_max = pool_row.get("cpu", 0), pool_row.get("maxcpu", 0)
                pool_row["cpu"] = round((old_cpu * old_max + row["cpu"] * row["maxcpu"]) / (old_max + row["maxcpu"]), 6)
                pool_row["maxcpu"] = old_max + row["maxcpu"]
        if g.get("tags"):
            row["tags"] = g["tags"]
        if g["vmid"] in ha_state:
            row["hastate"] = ha_state[g["vmid"]]
        resources.append(row)
    for name in nodes:
        resources.append(node_resource_row(name))
    for sid in sids:
        for name in nodes:
            if name in storage_nodes(sid):
                resources.append(storage_row(sid, name))
    for name in nodes:
        resources.append({"id": f"sdn/{name}/localnetwork", "sdn": "localnetwork", "node": name, "type": "sdn",
                          "status": "ok"})
    api["/cluster/resources"] = resources

    # --- pools -------------------------------------------------------------------------------------------
    api["/pools"] = [{"poolid": POOL["poolid"], "comment": POOL["comment"]}]
    members = [resource_row(g) for g in sorted(GUESTS, key=lambda g: str(g["vmid"])) if g.get("pool") == POOL["poolid"]]
    for sid in POOL["storage"]:
        allowed = storage_nodes(sid)
        members.append(storage_row(sid, LOCAL_NODE if LOCAL_NODE in allowed else min(allowed)))
    api[f"/pools?poolid={POOL['poolid']}"] = [{"poolid": POOL["poolid"], "comment": POOL["comment"],
                                               "members": members}]

    # --- the config inside each backup (GET /nodes/{node}/vzdump/extractconfig): the guest's config as vzdump
    #     stores it (its main section, no snapshots), read on the first node that sees the storage
    for sid, node, kind, vmid, stamp, _, _ in BACKUPS:
        g = GUEST_BY_ID[vmid]
        fn, _ = backup_name(kind, vmid, stamp)
        reader = node or min(storage_nodes(sid))
        text = Guest(vmid=vmid, kind=kind, node=g["node"], resource={}, config=config_for(g)).file_text()
        api[f"/nodes/{reader}/vzdump/extractconfig?" + urllib.parse.urlencode({"volume": f"{sid}:backup/{fn}"})] = text

    # --- jobs, HA, replication ---------------------------------------------------------------------------
    api["/cluster/backup"] = [dict(j) for j in BACKUP_JOBS]
    api["/cluster/replication"] = [{"id": "104-0", "type": "local", "guest": 104, "jobnum": 0, "target": "pve2",
                                    "schedule": "*/15", "source": "pve1"}]
    ha_digest = sha1(section_text([(t, i, o) for t, i, o in HA_RESOURCES_CFG]))
    ha_rows = []
    for t, vmid, opts in HA_RESOURCES_CFG:
        ha_rows.append({"sid": f"{t}:{vmid}", "type": t, "digest": ha_digest, **dict(opts)})
    api["/cluster/ha/resources"] = sorted(ha_rows, key=lambda r: r["sid"])
    api["/cluster/ha/groups"] = []
    rules_digest = sha1(section_text(HA_RULES_CFG))
    api["/cluster/ha/rules"] = [
        {"rule": rid, "type": t, "digest": rules_digest, "order": i + 1, **dict(opts)}
        for i, (t, rid, opts) in enumerate(HA_RULES_CFG)
    ]
    api["/cluster/tasks"] = []

    # --- access ------------------------------------------------------------------------------------------
    api["/access/users?full=1"] = [dict(u) for u in sorted(USERS, key=lambda u: u["userid"])]
    api["/access/groups"] = [dict(g) for g in GROUPS]
    roles = [{"roleid": r, "privs": ",".join(sorted(p)), "special": 1} for r, p in BUILTIN_ROLES.items()]
    roles += [{"roleid": r, "privs": ",".join(sorted(p)), "special": 0} for r, p in CUSTOM_ROLES.items()]
    api["/access/roles"] = sorted(roles, key=lambda r: r["roleid"])
    api["/access/acl"] = [dict(a) for a in ACL]

    # --- firewall ----------------------------------------------------------------------------------------
    api["/cluster/firewall/options"] = fw_options({"enable": 0, "policy_in": "DROP", "policy_out": "ACCEPT"})
    for sub in ("rules", "groups", "ipset", "aliases"):
        api[f"/cluster/firewall/{sub}"] = []
    # A security group, an ipset and an alias nothing refers to yet (the firewall pack's tools act on them).
    group_rules = [{"type": "in", "action": "ACCEPT", "macro": "HTTPS", "enable": 1, "log": "nolog"},
                   {"type": "in", "action": "ACCEPT", "macro": "HTTP", "enable": 1, "log": "nolog"}]
    api["/cluster/firewall/groups"] = [{"group": "web-in", "comment": "public web", "digest": fw_digest([{"group": "web-in", "comment": "public web"}])}]
    api["/cluster/firewall/groups/web-in"] = fw_rules(group_rules)
    api["/cluster/firewall/ipset"] = [{"name": "admins", "comment": "operator workstations",
                                       "digest": fw_digest([{"name": "admins", "comment": "operator workstations"}])}]
    admins = [{"cidr": "10.0.0.0/24"}, {"cidr": "10.0.0.99", "nomatch": 1, "comment": "kiosk"}]
    api["/cluster/firewall/ipset/admins"] = [{**e, "digest": fw_digest(admins)} for e in admins]
    office = [{"name": "office", "cidr": "192.168.1.0/24", "ipversion": 4, "comment": "office LAN"}]
    api["/cluster/firewall/aliases"] = [{**e, "digest": fw_digest(office)} for e in office]
    for name in nodes:
        api[f"/nodes/{name}/firewall/options"] = fw_options({})
        api[f"/nodes/{name}/firewall/rules"] = []

    return {"format": FORMAT, "captured_at": CAPTURED_AT, "api": api, "extra": {}}


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


# The built-in roles of PVE 9.1, as pve-access-control 5ccd07d9 src/PVE/AccessControl.pm create_roles() makes them
# (written out here so the generator needs nothing outside the repository).
BUILTIN_ROLES: dict[str, list[str]] = {
    "Administrator": [
        "Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit",
        "Group.Allocate", "Mapping.Audit", "Mapping.Modify", "Mapping.Use", "Permissions.Modify", "Pool.Allocate",
        "Pool.Audit", "Realm.Allocate", "Realm.AllocateUser", "SDN.Allocate", "SDN.Audit", "SDN.Use",
        "Sys.AccessNetwork", "Sys.Audit", "Sys.Console", "Sys.Incoming", "Sys.Modify", "Sys.PowerMgmt",
        "Sys.Syslog", "User.Modify", "VM.Allocate", "VM.Audit", "VM.Backup", "VM.Clone", "VM.Config.CDROM",
        "VM.Config.CPU", "VM.Config.Cloudinit", "VM.Config.Disk", "VM.Config.HWType", "VM.Config.Memory",
        "VM.Config.Network", "VM.Config.Options", "VM.Console", "VM.GuestAgent.Audit", "VM.GuestAgent.FileRead",
        "VM.GuestAgent.FileSystemMgmt", "VM.GuestAgent.FileWrite", "VM.GuestAgent.Unrestricted", "VM.Migrate",
        "VM.PowerMgmt", "VM.Replicate", "VM.Snapshot", "VM.Snapshot.Rollback",
    ],
    "NoAccess": [],
    "PVEAdmin": [
        "Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit",
        "Group.Allocate", "Mapping.Audit", "Mapping.Use", "Pool.Allocate", "Pool.Audit", "Realm.AllocateUser",
        "SDN.Allocate", "SDN.Audit", "SDN.Use", "Sys.Audit", "Sys.Console", "Sys.Syslog", "User.Modify",
        "VM.Allocate", "VM.Audit", "VM.Backup", "VM.Clone", "VM.Config.CDROM", "VM.Config.CPU",
        "VM.Config.Cloudinit", "VM.Config.Disk", "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network",
        "VM.Config.Options", "VM.Console", "VM.GuestAgent.Audit", "VM.GuestAgent.FileRead",
        "VM.GuestAgent.FileSystemMgmt", "VM.GuestAgent.FileWrite", "VM.GuestAgent.Unrestricted", "VM.Migrate",
        "VM.PowerMgmt", "VM.Replicate", "VM.Snapshot", "VM.Snapshot.Rollback",
    ],
    "PVEAuditor": [
        "Datastore.Audit", "Mapping.Audit", "Pool.Audit", "SDN.Audit", "Sys.Audit", "VM.Audit",
        "VM.GuestAgent.Audit",
    ],
    "PVEDatastoreAdmin": [
        "Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit",
    ],
    "PVEDatastoreUser": [
        "Datastore.AllocateSpace", "Datastore.Audit",
    ],
    "PVEMappingAdmin": [
        "Mapping.Audit", "Mapping.Modify", "Mapping.Use",
    ],
    "PVEMappingUser": [
        "Mapping.Audit", "Mapping.Use",
    ],
    "PVEPoolAdmin": [
        "Pool.Allocate", "Pool.Audit",
    ],
    "PVEPoolUser": [
        "Pool.Audit",
    ],
    "PVESDNAdmin": [
        "SDN.Allocate", "SDN.Audit", "SDN.Use",
    ],
    "PVESDNUser": [
        "SDN.Audit", "SDN.Use",
    ],
    "PVESysAdmin": [
        "Sys.Audit", "Sys.Console", "Sys.Syslog",
    ],
    "PVETemplateUser": [
        "VM.Audit", "VM.Clone",
    ],
    "PVEUserAdmin": [
        "Group.Allocate", "Realm.AllocateUser", "User.Modify",
    ],
    "PVEVMAdmin": [
        "VM.Allocate", "VM.Audit", "VM.Backup", "VM.Clone", "VM.Config.CDROM", "VM.Config.CPU",
        "VM.Config.Cloudinit", "VM.Config.Disk", "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network",
        "VM.Config.Options", "VM.Console", "VM.GuestAgent.Audit", "VM.GuestAgent.FileRead",
        "VM.GuestAgent.FileSystemMgmt", "VM.GuestAgent.FileWrite", "VM.GuestAgent.Unrestricted", "VM.Migrate",
        "VM.PowerMgmt", "VM.Replicate", "VM.Snapshot", "VM.Snapshot.Rollback",
    ],
    "PVEVMUser": [
        "VM.Audit", "VM.Backup", "VM.Config.CDROM", "VM.Config.Cloudinit", "VM.Console", "VM.GuestAgent.Audit",
        "VM.GuestAgent.FileRead", "VM.GuestAgent.FileSystemMgmt", "VM.GuestAgent.FileWrite", "VM.PowerMgmt",
    ],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT, help="where to write (default: %(default)s)")
    args = parser.parse_args(argv)
    text = render()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text)} bytes)")
    return 0



if __name__ == "__main__":
    sys.exit(main())
