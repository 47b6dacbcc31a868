"""Guest volumes on storages: allocate, free, rename and find them in the model, with storage usage kept.

PVE names new volumes ``vm-<vmid>-disk-<n>`` (``subvol-`` for containers on ZFS/dir-like storages, ``base-``
once a template), checks the storage allows the content type and is available on the node, and fails when
the storage has no room. Usage is the ``/nodes/{node}/storage`` row (``used``/``avail``), so the same
figures answer ``GET /nodes/{node}/storage/{storage}/status`` before and after a plan; where that row was not
read, the storage's ``/cluster/resources`` row (``disk``/``maxdisk``), which Proxmox gives for every storage.
"""

from __future__ import annotations

import re
from typing import Any

from proximo import NotModelled, PveApiError
from proximo.model import ClusterModel, as_int, recovery_point_note, recovery_points
from proximo.model._backups import when
from proximo.model._volumes import FILE_STORAGE_TYPES, VolumeError, parse_volname_for, parse_volume_id

# Storages on which PVE makes snapshots of raw volumes (PVE::Storage::<Plugin>->volume_has_feature snapshot).
SNAPSHOT_TYPES = frozenset({"zfspool", "zfs", "rbd", "lvmthin", "btrfs"})
# Storages on which a template's base volume can back a linked clone (volume_has_feature clone).
LINKED_CLONE_TYPES = frozenset({"zfspool", "zfs", "rbd", "lvmthin", "btrfs", *FILE_STORAGE_TYPES})
# Container volumes on these storages are directories (subvol-*), not images.
SUBVOL_TYPES = frozenset({"zfspool", "dir", "nfs", "cifs", "cephfs", "glusterfs", "btrfs"})

# Storages whose volume allocation (names, sizes) is modelled.
ALLOCATING_TYPES = frozenset({*FILE_STORAGE_TYPES, "zfspool", "zfs", "rbd", "lvmthin", "lvm"})

_NEW_DISK = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*[A-Za-z0-9]):([0-9]+(?:\.[0-9]+)?)$")
GiB = 1024**3


def new_disk_request(volume: str) -> tuple[str, int] | None:
    """``local-zfs:32`` (STORAGE_ID:SIZE_IN_GiB, how PVE asks for a new volume): (storage, bytes), else None."""
    match = _NEW_DISK.fullmatch(volume)
    if match is None:
        return None
    return match.group(1), int(float(match.group(2)) * GiB)


def storage_type(model: ClusterModel, sid: str) -> str:
    return str(model.storages.get(sid, {}).get("type", ""))


def owner_of(model: ClusterModel, volid: str) -> int | None:
    """The vmid that owns a volume (PVE's parse_volname), or None (ISOs, templates, unparseable)."""
    try:
        sid, volname = parse_volume_id(volid)
        parsed = parse_volname_for(storage_type(model, sid), volname)
    except VolumeError:
        return None
    return as_int(parsed.vmid, -1) if parsed.vmid is not None else None


def base_of(model: ClusterModel, volid: str) -> str | None:
    """For a linked clone's volume, the base volume id it is cloned from (or None)."""
    sid = volid.partition(":")[0]
    try:
        parsed = parse_volname_for(storage_type(model, sid), parse_volume_id(volid)[1])
    except VolumeError:
        parsed = None
    if parsed is not None and parsed.basename:
        base = parsed.basename
        if storage_type(model, sid) in FILE_STORAGE_TYPES and parsed.basevmid:
            base = f"{parsed.basevmid}/{base}"
        return f"{sid}:{base}"
    row = find_volume(model, volid)
    parent = str((row or {}).get("parent") or "")
    if parent:  # LVM-thin and the content listing: "base-9000-disk-0@__base__"
        return f"{sid}:{parent.split('@', 1)[0]}"
    return None


def find_volume(model: ClusterModel, volid: str) -> dict[str, Any] | None:
    sid = volid.partition(":")[0]
    for bucket in model.volumes.get(sid, {}).values():
        if volid in bucket:
            return bucket[volid]
    return None


def check_target(model: ClusterModel, sid: str, node: str, content: str) -> None:
    """PVE's refusals for allocating ``content`` on a storage from ``node``."""
    problem = model.storage_problem(sid, node)
    if problem:
        raise PveApiError(500, problem)
    if content not in model.storage_content(sid):
        raise PveApiError(500, f"storage '{sid}' does not support content-type '{content}'")


def _rows_together(rows: dict[str, dict[str, Any]], shared: bool, node: str) -> list[dict[str, Any]]:
    """The rows that change together: every node's for a shared storage, else the node's."""
    return list(rows.values()) if shared else ([rows[node]] if node in rows else [])


def avail(model: ClusterModel, sid: str, node: str) -> int | None:
    row = model.storage_status.get(sid, {}).get(node)
    if row is not None and "avail" in row:
        return as_int(row["avail"])
    resource = model.storage_resources.get(sid, {}).get(node)  # /cluster/resources has every storage on every node
    if resource is not None and as_int(resource.get("maxdisk")) > 0:
        return as_int(resource["maxdisk"]) - as_int(resource.get("disk"))
    return None


def _account(model: ClusterModel, sid: str, node: str, delta: int) -> None:
    shared = model.storage_shared(sid)
    for row in _rows_together(model.storage_status.setdefault(sid, {}), shared, node):
        if "avail" in row:
            row["used"] = as_int(row.get("used")) + delta
            row["avail"] = as_int(row.get("avail")) - delta
            total = as_int(row.get("total"))
            if total:
                row["used_fraction"] = round(as_int(row["used"]) / total, 6)
    for resource in _rows_together(model.storage_resources.get(sid, {}), shared, node):
        if "disk" in resource:
            resource["disk"] = as_int(resource["disk"]) + delta


def reserve(model: ClusterModel, sid: str, node: str, size: int) -> None:
    """Take ``size`` bytes from the storage, or fail as the storage would when it has no room."""
    free = avail(model, sid, node)
    if free is not None and size > free:
        raise PveApiError(500, f"storage '{sid}': out of space (need {size} bytes, {free} available)")
    _account(model, sid, node, size)


def next_volname(model: ClusterModel, sid: str, node: str, vmid: int, kind: str, *, prefix: str | None = None) -> str:
    """The next free ``<prefix>-<vmid>-disk-<n>`` name, as PVE::Storage::Plugin::find_free_diskname does."""
    stype = storage_type(model, sid)
    if prefix is None:
        prefix = "subvol" if kind == "lxc" and stype in SUBVOL_TYPES else "vm"
    used = {volid.partition(":")[2].rsplit("/", 1)[-1].split(".")[0] for volid in model.volumes_on(sid, node)}
    n = 0
    while f"{prefix}-{vmid}-disk-{n}" in used or f"base-{vmid}-disk-{n}" in used or f"vm-{vmid}-disk-{n}" in used:
        n += 1
    name = f"{prefix}-{vmid}-disk-{n}"
    if stype in FILE_STORAGE_TYPES:
        ext = "raw" if prefix == "subvol" or kind == "lxc" else "qcow2"
        return f"{vmid}/{name}.{'subvol' if prefix == 'subvol' else ext}"
    return name


def allocate(model: ClusterModel, sid: str, node: str, vmid: int, kind: str, size: int, *,
             volname: str | None = None, parent: str | None = None) -> str:
    """Create a guest volume (content images/rootdir) and return its volid."""
    content = "rootdir" if kind == "lxc" else "images"
    check_target(model, sid, node, content)
    if storage_type(model, sid) not in ALLOCATING_TYPES:
        raise NotModelled(f"allocating volumes on storage type '{storage_type(model, sid)}' is not modelled")
    reserve(model, sid, node, 0 if parent else size)  # a linked clone shares its base's blocks
    name = volname or next_volname(model, sid, node, vmid, kind)
    volid = f"{sid}:{name}"
    fmt = "subvol" if "subvol-" in name else ("qcow2" if name.endswith(".qcow2") else "raw")
    row: dict[str, Any] = {"volid": volid, "content": content, "format": fmt, "size": size, "vmid": vmid,
                           "name": name.rsplit("/", 1)[-1], "parent": parent}
    model.volumes_on(sid, node)[volid] = row
    return volid


def free(model: ClusterModel, volid: str, node: str) -> None:
    """Destroy a volume: it leaves the storage's content and its space is returned."""
    sid = volid.partition(":")[0]
    bucket = model.volumes.get(sid, {}).get("" if model.storage_shared(sid) else node, {})
    row = bucket.pop(volid, None)
    if row is None:
        for other in model.volumes.get(sid, {}).values():  # a node-local storage read from another node
            row = other.pop(volid, None)
            if row is not None:
                break
    if row is not None and not row.get("parent"):
        _account(model, sid, node, -as_int(row.get("size")))


def rename(model: ClusterModel, volid: str, node: str, new_volname: str) -> str:
    """Rename a volume in place (template conversion: vm-* -> base-*)."""
    sid = volid.partition(":")[0]
    bucket = model.volumes_on(sid, node)
    row = bucket.pop(volid, None) or {"content": "images", "format": "raw", "size": 0}
    new = f"{sid}:{new_volname}"
    bucket[new] = {**row, "volid": new, "name": new_volname.rsplit("/", 1)[-1]}
    return new


def resize(model: ClusterModel, volid: str, node: str, size: int) -> None:
    row = find_volume(model, volid)
    old = as_int((row or {}).get("size"))
    sid = volid.partition(":")[0]
    reserve(model, sid, node, size - old)
    if row is not None:
        row["size"] = size


def backups_of(model: ClusterModel, vmid: int) -> list[dict[str, Any]]:
    """Every backup of the guest on every storage the model has read, newest first (the model's recovery points)."""
    points = recovery_points(model).get(vmid)
    return [{**b.row, "storage": b.storage, "node": b.node or None} for b in points.backups] if points else []


def recovery_point(model: ClusterModel, vmid: int) -> str:
    return recovery_point_note(model, vmid)
