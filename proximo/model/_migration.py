"""What Proxmox checks before it moves a guest to another node: the precondition answers and the refusals.

After qemu-server (e6352be) src/PVE/API2/Qemu.pm ``migrate_vm_precondition`` and ``migrate_vm``,
src/PVE/QemuMigrate.pm ``prepare`` and ``scan_local_volumes``, src/PVE/QemuMigrate/Helpers.pm
``check_local_resources``, src/PVE/QemuServer.pm ``check_storage_availability`` and
``check_local_storage_availability``; pve-container (94f5585) src/PVE/API2/LXC.pm and src/PVE/LXC/Migrate.pm
``prepare``; pve-ha-manager src/PVE/HA/Config.pm ``get_resource_motion_info``.

Not modelled, and refused where it would decide the answer: resource mappings (``/cluster/mapping``: a
``mapping=`` device), SEV/TDX, ``clipboard=vnc`` and the running machine version, remote migration.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import NotModelled
from ._cluster import ClusterModel, Guest, as_int, split_list
from ._drives import (DriveError, guest_volumes, is_lxc_volume_key, is_qemu_drive_key, is_unused_key, parse_lxc_volume,
                      parse_property_string, parse_qemu_drive)

# check_local_resources: config keys that tie a VM to its node (usbN with host=spice, serialN with socket excepted)
_LOCAL_DEVICE = re.compile(r"^(?:hostpci\d+|usb\d+|serial\d+|parallel\d+|virtiofs\d+|ivshmem|hostusb|hostpci)$")
# scan_local_volumes: the local storage types a disk can be copied from
MIGRATABLE_LOCAL_TYPES = ("dir", "btrfs", "zfspool", "lvmthin", "lvm")


def ha_sid(g: Guest) -> str:
    return f"{'vm' if g.kind == 'qemu' else 'ct'}:{g.vmid}"


def ha_managed(model: ClusterModel, g: Guest) -> dict[str, Any] | None:
    """The HA resource managing ``g`` (pve-ha-manager Config.pm vm_is_ha_managed: not ``ignored``)."""
    sid = ha_sid(g)
    return next((r for r in model.ha_resources if r.get("sid") == sid and r.get("state", "started") != "ignored"), None)


def mapped_devices(config: dict[str, Any]) -> list[str]:
    """Config keys of devices given by a cluster resource mapping, which the model does not hold: a ``hostpciN`` or
    ``usbN`` with ``mapping=``, and every ``virtiofsN`` (a directory mapping)."""
    found = []
    for key, value in sorted(config.items()):
        if re.match(r"^virtiofs\d+$", key):
            found.append(key)
        elif re.match(r"^(?:hostpci|usb)\d+$", key):
            try:
                if parse_property_string(str(value), "host").get("mapping"):
                    found.append(key)
            except ValueError:
                continue
    return found


def local_resources(config: dict[str, Any]) -> list[str]:
    """check_local_resources: the devices that keep a VM on its node (mapped ones included: the caller decides)."""
    found = []
    for key, value in sorted(config.items()):
        if not _LOCAL_DEVICE.match(key):
            continue
        text = str(value)
        if key.startswith("usb") and "spice" in split_list(text.replace("host=", "")):
            continue
        if key.startswith("serial") and text == "socket":
            continue
        found.append(key)
    return found


def _shared(model: ClusterModel, sid: str) -> bool:
    return sid in model.storages and model.storage_shared(sid)


def qemu_local_disks(model: ClusterModel, g: Guest) -> list[dict[str, Any]]:
    """check_vm_disks_local over foreach_volid: every volume of the current config, its snapshots and unused disks
    that is on a storage not marked shared (and not a drive with shared=1)."""
    found: dict[str, dict[str, Any]] = {}
    configs = [("", g.config)] + [(name, conf) for name, conf in sorted(g.snapshot_configs.items())]
    for snap, config in configs:
        for vol in guest_volumes("qemu", config):
            if _shared(model, vol.storage):
                continue
            entry = found.setdefault(vol.volid, {"volid": vol.volid, "drivename": vol.key, "is_unused": int(vol.role == "unused"),
                                                 "is_attached": 0, "cdrom": int(vol.role in ("cdrom", "cloudinit")),
                                                 "is_cloudinit": int(vol.role == "cloudinit"), "is_vmstate": int(vol.role == "vmstate"),
                                                 "is_tpmstate": int(vol.role == "tpmstate"), "replicate": int(vol.replicate), "shared": 0})
            if vol.size is not None:
                entry["size"] = vol.size
            if snap:
                entry.setdefault("referenced_in_snapshot", {})[snap] = 1
            elif vol.role != "unused":
                entry["is_attached"] = 1
    return [found[v] for v in sorted(found)]


def qemu_precondition(model: ClusterModel, g: Guest) -> dict[str, Any]:
    """GET /nodes/{node}/qemu/{vmid}/migrate, as migrate_vm_precondition answers it."""
    if mapped_devices(g.config):
        raise NotModelled(f"VM {g.vmid} uses mapped devices ({', '.join(mapped_devices(g.config))}): resource mappings are not modelled")
    g.check_lock()
    not_allowed: dict[str, dict[str, Any]] = {}
    for node in sorted(model.nodes):
        if node == g.node:
            continue
        storages = sorted({v.storage for v in g.volumes() if v.role != "unused" and v.storage in model.storages
                           and (as_int(model.storages[v.storage].get("disable")) or
                                (model.storages[v.storage].get("nodes") and node not in split_list(model.storages[v.storage]["nodes"])))})
        entry: dict[str, Any] = {}
        if storages:
            entry["unavailable_storages"] = storages
        blocking = blocking_ha_resources(model, g, node)
        if blocking:
            entry["blocking-ha-resources"] = blocking
        if entry:
            not_allowed[node] = entry
    return {
        "running": int(g.running),
        "allowed_nodes": [n for n in sorted(model.nodes) if n != g.node and n not in not_allowed],
        "not_allowed_nodes": not_allowed,
        "local_disks": qemu_local_disks(model, g),
        "local_resources": local_resources(g.config),
        "mapped-resources": [],
        "mapped-resource-info": {},
        "has-dbus-vmstate": 1,
        "dependent-ha-resources": dependent_ha_resources(model, g),
    }


def lxc_precondition(model: ClusterModel, g: Guest) -> dict[str, Any]:
    """GET /nodes/{node}/lxc/{vmid}/migrate (9.x): only HA blockers, in kebab-case keys."""
    g.check_lock()
    not_allowed = {node: {"blocking-ha-resources": blocking} for node in sorted(model.nodes)
                   if node != g.node and (blocking := blocking_ha_resources(model, g, node))}
    return {"running": int(g.running), "allowed-nodes": [n for n in sorted(model.nodes) if n != g.node and n not in not_allowed],
            "not-allowed-nodes": not_allowed, "dependent-ha-resources": dependent_ha_resources(model, g)}


def _affinity(model: ClusterModel, sid: str, kind: str) -> list[str]:
    """Members of the enabled resource-affinity rules of ``kind`` (positive/negative) that hold ``sid``."""
    members: list[str] = []
    for rule in model.ha_rules or []:
        if rule.get("type") != "resource-affinity" or rule.get("affinity") != kind or as_int(rule.get("disable")):
            continue
        resources = split_list(rule.get("resources"))
        if sid in resources:
            members += [r for r in resources if r != sid and r not in members]
    return members


def _node_of(model: ClusterModel, sid: str) -> str | None:
    _, _, vmid = sid.partition(":")
    g = model.guests.get(as_int(vmid, -1))
    return g.node if g is not None else None


def blocking_ha_resources(model: ClusterModel, g: Guest, node: str) -> list[dict[str, str]]:
    """get_resource_motion_info: HA resources in negative affinity with ``g`` that are on ``node``."""
    if ha_managed(model, g) is None:
        return []
    return [{"sid": sid, "cause": "resource-affinity"} for sid in _affinity(model, ha_sid(g), "negative")
            if _node_of(model, sid) == node]


def dependent_ha_resources(model: ClusterModel, g: Guest) -> list[str]:
    """HA resources in positive affinity with ``g``: HA moves them along."""
    return _affinity(model, ha_sid(g), "positive") if ha_managed(model, g) is not None else []


def storage_refusal(model: ClusterModel, g: Guest, target: str, storagemap: dict[str, str] | None = None) -> str | None:
    """check_storage_availability (VMs, without a storage map) and the target storage checks: every volume's storage
    enabled on both nodes and taking the volume's content type on the target."""
    for vol in g.volumes():
        sid = vol.storage
        for node, name in ((g.node, sid), (target, (storagemap or {}).get(sid, sid) if not _shared(model, sid) else sid)):
            problem = model.storage_problem(name, node)
            if problem:
                return problem
        if g.kind == "lxc" and "rootdir" not in model.storage_content(sid):
            return f"content type 'rootdir' is not available on storage '{sid}'"
    return None


def qemu_volume_errors(model: ClusterModel, g: Guest, target: str, with_local_disks: bool) -> list[str]:
    """scan_local_volumes: the per-volume errors it logs before "can't migrate VM - check log"."""
    errors: list[str] = []
    for key, value in sorted(g.config.items()):
        if not is_qemu_drive_key(key) or is_unused_key(key):
            continue
        try:
            drive = parse_qemu_drive(key, str(value))
        except DriveError:
            continue
        if drive.file == "cdrom":
            errors.append("can't migrate local cdrom drive")
        elif drive.file.startswith("/") and not as_int(drive.options.get("shared")):
            errors.append(f"can't migrate local disk '{drive.file}': local file/device")
    # replicated to the target: its disks' snapshots travel with the replica (QemuMigrate.pm get_replicatable_volumes)
    replicated = any(as_int(j.get("guest")) == g.vmid and j.get("target") == target for j in model.replication_jobs)
    for disk in qemu_local_disks(model, g):
        volid, sid = disk["volid"], disk["volid"].partition(":")[0]
        kind = model.storages.get(sid, {}).get("type", "")
        if disk["cdrom"] and not disk["is_cloudinit"]:
            errors.append(f"can't migrate local disk '{volid}': local cdrom image")
            continue
        if disk.get("referenced_in_snapshot") and not disk["is_vmstate"]:
            if g.running and not replicated:
                errors.append(f"can't migrate local disk '{volid}': online storage migration not possible if "
                              "non-replicated snapshot exists")
            elif kind != "zfspool" and not volid.endswith(".qcow2"):
                errors.append(f"can't migrate local disk '{volid}': non-migratable snapshot exists")
        if disk["is_attached"] and g.running and not with_local_disks:
            errors.append(f"can't migrate local disk '{volid}': can't live migrate attached local disks without "
                          "with-local-disks option")
        if kind and kind not in MIGRATABLE_LOCAL_TYPES:
            errors.append(f"can't migrate '{volid}' - storage type '{kind}' not supported")
    return errors


def lxc_volume_errors(model: ClusterModel, g: Guest) -> list[str]:
    """LXC/Migrate.pm prepare: bind and device mount points stay on the node unless marked shared."""
    errors = []
    for key, value in sorted(g.config.items()):
        if key != "rootfs" and not (is_lxc_volume_key(key) and key.startswith("mp")):
            continue
        try:
            mount = parse_lxc_volume(key, str(value))
        except DriveError:
            continue
        if mount.type != "volume" and not as_int(mount.options.get("shared")):
            errors.append(f"cannot migrate local {mount.type} mount point '{key}'")
    return errors


def local_volume_bytes(model: ClusterModel, g: Guest) -> list[tuple[str, int | None]]:
    """The local volumes a migration copies, with their size where the config or the storage says it."""
    out = []
    for vol in g.volumes():
        if _shared(model, vol.storage):
            continue
        row = model.volumes.get(vol.storage, {}).get(g.node, {}).get(vol.volid, {})
        out.append((vol.volid, vol.size if vol.size is not None else (as_int(row.get("size")) or None)))
    return out
