"""What the guest endpoints do to a cluster, after qemu-server (API2/Qemu.pm) and pve-container (API2/LXC*.pm).

Every call here returns what PVE returns (a UPID for worker tasks, null for the synchronous ones) and raises
PVE's own error where PVE refuses: a locked guest (``VM is locked (backup)``), protection, a running guest,
a missing or unsuitable storage, no room. What is not modelled (restore from a backup, ``import-from``,
suspend to disk, ``revert``, moving a disk to another guest) raises ``NotModelled``: fail closed.

HA (qemu-server src/PVE/API2/Qemu.pm and pve-container src/PVE/API2/LXC/Status.pm ``vm_start``, ``vm_stop``,
``vm_shutdown``): for a guest HA manages (its resource is not ``ignored``) start becomes an HA request
(task ``hastart``, requested state ``started``); stop and shutdown go through the HA manager (task ``hastop``)
and leave the requested state at ``stopped``; reboot, reset, suspend and resume bypass HA.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from proximo import ApiCall, Irreversible, NotModelled, PveApiError, Step
from proximo.model import Call, ClusterModel, Guest, as_int, guest_volumes, split_list
from proximo.model._drives import (
    DriveError,
    format_size,
    is_lxc_volume_key,
    is_qemu_drive_key,
    is_unused_key,
    parse_property_string,
    parse_size,
    print_property_string,
)
from proximo.model._volumes import is_volume_id

from . import _permissions as perm
from . import _volumes as vols
from ._config import Kind, check_digest, check_lock, check_options_given, config_digest_of, guest_at, kind_of, label



# --- finding the guest a call is about ---------------------------------------------------------------


def ha_resource(model: ClusterModel, g: Guest) -> dict[str, Any] | None:
    """The HA resource that manages this guest; ``ignored`` ones are not (pve-ha-manager src/PVE/HA/Config.pm
    ``service_is_ha_managed``)."""
    sid = f"{'vm' if g.kind == 'qemu' else 'ct'}:{g.vmid}"
    for res in model.ha_resources:
        if res.get("sid") == sid and res.get("state", "started") != "ignored":
            return res
    return None


def task(model: ClusterModel, g: Guest, call: Call, qemu_type: str, lxc_type: str) -> str:
    return model.start_task(g.node, qemu_type if g.kind == "qemu" else lxc_type, str(g.vmid), call.user)


def _running_or_fail(g: Guest) -> None:
    if not g.running:
        raise PveApiError(500, f"{label(g.kind)} {g.vmid} not running")


# --- volumes in a config ---------------------------------------------------------------------------------


def is_volume_key(kind: Kind, key: str) -> bool:
    return (is_qemu_drive_key(key) if kind == "qemu" else is_lxc_volume_key(key)) or is_unused_key(key)


def _default_key(kind: Kind) -> str:
    return "file" if kind == "qemu" else "volume"


def volume_of(kind: Kind, value: str) -> tuple[str, dict[str, str]]:
    """The volume (or ``none``/``cdrom``/a path) a drive or mount point names, and its other properties."""
    try:
        props = parse_property_string(str(value), _default_key(kind))
    except DriveError as exc:
        raise PveApiError(400, "Parameter verification failed.", {"value": str(exc)}) from None
    return str(props.get(_default_key(kind), "")), props


def with_volume(kind: Kind, props: dict[str, str], volid: str, size: int | None = None) -> str:
    props = {**props, _default_key(kind): volid}
    if size is not None:
        props["size"] = format_size(size)
    return print_property_string(props, _default_key(kind))


def owned_volumes(model: ClusterModel, g: Guest) -> list[tuple[str, str]]:
    """(key, volid) of every volume the guest owns: its disks and unused volumes, not ISOs or other guests' bases."""
    out = []
    for v in g.volumes():
        if vols.owner_of(model, v.volid) == g.vmid:
            out.append((v.key, v.volid))
    return out


def _is_cdrom(kind: Kind, props: dict[str, str]) -> bool:
    return kind == "qemu" and props.get("media") == "cdrom"


def materialize(model: ClusterModel, g: Guest, key: str, value: Any) -> str:
    """A disk value as PVE stores it: ``STORAGE:SIZE`` allocates a new volume; an existing volume must exist."""
    if not is_volume_key(g.kind, key) or is_unused_key(key):
        return str(value)
    volume, props = volume_of(g.kind, value)
    if "import-from" in props:
        raise NotModelled("import-from (importing a disk image) is not modelled")
    request = vols.new_disk_request(volume)
    if request is not None and not _is_cdrom(g.kind, props):
        sid, size = request
        if key == "efidisk0":
            size = 4 * 1024 * 1024 if size == 0 else size  # PVE sizes the EFI vars disk itself
        elif key == "tpmstate0":
            size = 4 * 1024 * 1024
        volid = vols.allocate(model, sid, g.node, g.vmid, g.kind, size)
        return with_volume(g.kind, props, volid, size)
    if is_volume_id(volume) and not volume.startswith("/"):
        sid = volume.partition(":")[0]
        if sid not in model.storages:
            raise PveApiError(500, f"storage '{sid}' does not exist")
        if vols.find_volume(model, volume) is None and model.volumes.get(sid):
            raise PveApiError(500, f"volume '{volume}' does not exist")
    return str(value)


def add_unused(g: Guest, volid: str) -> str:
    """PVE::AbstractConfig::add_unused_volume: the first free unusedN (unless the volume is already listed)."""
    for key, value in g.config.items():
        if is_unused_key(key) and value == volid:
            return key
    n = 0
    while f"unused{n}" in g.config:
        n += 1
    g.config[f"unused{n}"] = volid
    return f"unused{n}"


def _detach(model: ClusterModel, g: Guest, key: str, *, destroy: bool) -> None:
    """Remove a disk key: its volume becomes unusedN (or is destroyed: unusedN, force=1)."""
    value = g.config.pop(key)
    if is_unused_key(key):
        if vols.owner_of(model, str(value)) == g.vmid:
            vols.free(model, str(value), g.node)
        return
    volume, props = volume_of(g.kind, value)
    if not is_volume_id(volume) or _is_cdrom(g.kind, props) or vols.owner_of(model, volume) != g.vmid:
        return
    if destroy:
        vols.free(model, volume, g.node)
    else:
        add_unused(g, volume)


# --- guest config (POST/PUT .../config) ----------------------------------------------------------------

# Options PVE changes on a running guest at once (qemu-server $fast_plug_option, LXC's equivalent);
# the others wait in [PENDING] until the next start, unless hotplug covers them.
FAST_PLUG = frozenset({"name", "onboot", "shares", "startup", "description", "protection", "vmstatestorage",
                       "hookscript", "tags", "lock", "hostname", "cpulimit", "cpuunits", "memory", "swap"})
CONFIG_CONTROL = ("delete", "revert", "digest", "skiplock", "force", "background_delay")


def _hot(g: Guest, key: str) -> bool:
    if key in FAST_PLUG and (g.kind == "lxc" or key not in ("cpulimit", "cpuunits", "memory", "swap", "hostname")):
        return True
    if g.kind == "lxc":
        return key.startswith("net") or key.startswith("mp")
    hotplug = split_list(g.config.get("hotplug", "network,disk,usb"))
    return ((key.startswith("net") and "network" in hotplug) or (is_qemu_drive_key(key) and "disk" in hotplug)
            or (key.startswith("usb") and "usb" in hotplug) or is_unused_key(key))


def _mark_pending(g: Guest, key: str, old: Any, new: Any | None) -> None:
    """The change waits in the pending section: ``new`` (None: a delete) for ``key``, whose value in the file's main
    section (the row's ``value``) stays as it was."""
    rows = g.pending if g.pending is not None else []
    row = next((r for r in rows if r.get("key") == key), None)
    if row is None:
        row = {"key": key}
        if old is not None:
            row["value"] = old  # no pending row yet: the config's value is the file's
        rows.append(row)
        rows.sort(key=lambda r: str(r.get("key")))
    row.pop("pending", None)
    row.pop("delete", None)
    if new is None:
        row["delete"] = 1
    else:
        row["pending"] = new
    g.pending = rows


def _settle_pending(g: Guest, applied: set[str]) -> None:
    """What is left pending after a config write.

    A stopped guest gets every pending change applied (qemu-server vmconfig_apply_pending, pve-container
    vmconfig_apply_pending); a running one gets the hot-plugged keys applied, and AbstractConfig cleanup_pending
    drops pending values equal to the current ones and deletes of keys that are not set.
    """
    if g.pending is None:
        return
    rows = [] if not g.running else [r for r in g.pending if r.get("key") not in applied]
    for row in rows:
        if "pending" in row and "value" in row and str(row["pending"]) == str(row["value"]):
            del row["pending"]
        if row.get("delete") and "value" not in row:
            del row["delete"]
    g.pending = rows if any("pending" in r or r.get("delete") for r in rows) else None


def config_set(model: ClusterModel, call: Call) -> Any:
    p = call.params
    check_options_given(call)
    g = guest_at(model, call)
    check_lock(g, call)
    check_digest(g, call)
    if p.get("revert"):
        raise NotModelled("revert of pending changes is not modelled")
    deletes = split_list(p.get("delete"))
    applied: set[str] = set()  # keys written to the config's main section at once
    for key in deletes:
        if key in p:
            raise PveApiError(400, "Parameter verification failed.", {key: f"unable to delete and set '{key}' at once"})
        if key not in g.config:
            continue  # PVE ignores deleting what is not set
        if key == "protection" or not is_volume_key(g.kind, key):
            old = g.config.pop(key)
        else:
            if as_int(g.config.get("protection")) and is_unused_key(key):
                raise PveApiError(500, f"can't remove unused disk '{g.config[key]}' - protection mode enabled")
            old = g.config.get(key)
            _detach(model, g, key, destroy=bool(as_int(p.get("force"))) or is_unused_key(key))
        if g.running and not _hot(g, key):
            _mark_pending(g, key, old, None)
        else:
            applied.add(key)
    for key, value in p.items():
        if key in CONFIG_CONTROL:
            continue
        old = g.config.get(key)
        new = materialize(model, g, key, value)
        if old is not None and is_volume_key(g.kind, key) and not is_unused_key(key):
            old_volume, old_props = volume_of(g.kind, old)
            new_volume, _ = volume_of(g.kind, new)
            if old_volume != new_volume and is_volume_id(old_volume) and not _is_cdrom(g.kind, old_props) \
                    and vols.owner_of(model, old_volume) == g.vmid:
                add_unused(g, old_volume)  # a replaced disk is kept as unusedN
        g.config[key] = new if isinstance(value, str) else value
        if g.running and not _hot(g, key):
            _mark_pending(g, key, old, g.config[key])
        else:
            applied.add(key)
    _settle_pending(g, applied)
    if "name" in p or "hostname" in p:
        g.resource["name"] = p.get("name", p.get("hostname"))
    g.write_config()
    if call.method == "POST":
        return task(model, g, call, "qmconfig", "vzconfig")
    return None


def _changed_keys(call: Call) -> list[str]:
    return [k for k in call.params if k not in CONFIG_CONTROL]


def config_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    g = guest_at(before, call)
    after = before.copy()
    config_set(after, call)
    new = after.guests[g.vmid]
    restore: dict[str, Any] = {}
    remove: list[str] = []
    destroy_new: list[str] = []
    for key in _changed_keys(call):
        if key in g.config:
            restore[key] = g.config[key]
        else:
            remove.append(key)
            volume = volume_of(g.kind, new.config.get(key, ""))[0] if is_volume_key(g.kind, key) else ""
            if volume and vols.owner_of(after, volume) == g.vmid and vols.find_volume(before, volume) is None:
                destroy_new.append(key)  # a disk this call allocated: undo destroys it
    for key in split_list(call.params.get("delete")):
        if key in g.config:
            if is_unused_key(key) or (as_int(call.params.get("force")) and is_volume_key(g.kind, key)):
                return Irreversible(f"deleting {key} destroys volume {g.config[key]}: its data is gone")
            restore[key] = g.config[key]
            if is_volume_key(g.kind, key):  # the volume went to unusedN; put it back where it was
                volume = volume_of(g.kind, g.config[key])[0]
                unused = next((k for k, v in new.config.items() if is_unused_key(k) and v == volume), None)
                if unused:
                    remove.append(unused)
    # replaced disks went to unusedN: drop those entries when the old volume comes back
    for key, value in restore.items():
        if is_volume_key(g.kind, key) and not is_unused_key(key):
            volume = volume_of(g.kind, value)[0]
            unused = next((k for k, v in new.config.items() if is_unused_key(k) and v == volume and k not in g.config), None)
            if unused and unused not in remove:
                remove.append(unused)
    params: dict[str, Any] = dict(sorted(restore.items()))
    if remove:
        params["delete"] = ",".join(sorted(set(remove)))
    if not params:
        return []
    steps: list[Step] = []  # the host stamps each with the digest of the state it applies to (SemanticsRegistry.stamp)
    if destroy_new and g.kind == "qemu":
        params["force"] = 1  # physical removal of the disks this change created
    steps.append(ApiCall(call.method, call.path, params))  # type: ignore[arg-type]
    if destroy_new and g.kind == "lxc":  # no force for containers: the detached volume is unusedN, then deleted
        tmp = after.copy()
        config_set(tmp, Call("PUT", call.path, call.template, call.path_params, params, call.user))
        unused = [k for k, v in tmp.guests[g.vmid].config.items() if is_unused_key(k) and k not in new.config]
        if unused:
            steps.append(ApiCall("PUT", call.path, {"delete": ",".join(sorted(unused))}))
    return steps


def config_notes(before: ClusterModel, call: Call) -> list[str]:
    g = before.guests.get(as_int(call.path_params.get("vmid"), -1))
    if g is None:
        return []
    notes = []
    keys = _changed_keys(call) + split_list(call.params.get("delete"))
    pending = sorted(k for k in keys if g.running and not _hot(g, k))
    if pending:
        notes.append(f"{g.sid} is running: {', '.join(pending)} stay pending until its next start (PVE cannot apply them live).")
    passthrough = sorted(k for k in keys if k.startswith("hostpci") or k.startswith("usb"))
    if passthrough:
        notes.append(f"{', '.join(passthrough)}: host devices tie {g.sid} to node {g.node}: it cannot live-migrate, and "
                     "HA recovery on a node without the device fails to start it.")
    return notes


# --- create ----------------------------------------------------------------------------------------------

# Parameters of POST /nodes/{node}/{qemu,lxc} that are not config keys.
_CREATE_ONLY = {"vmid", "node", "start", "pool", "unique", "archive", "storage", "force", "bwlimit", "live-restore",
                "restore", "ignore-unpack-errors", "password", "ssh-public-keys", "ha-managed", "ostemplate",
                "import-working-storage"}


def _vmid_taken(model: ClusterModel, vmid: int) -> str | None:
    """PVE::Cluster::check_vmid_unused: a VMID is unique across the cluster, whatever the guest's type."""
    g = model.guests.get(vmid)
    return None if g is None else f"{label(g.kind)} {vmid} already exists on node '{g.node}'"


def _new_guest(model: ClusterModel, node: str, kind: Kind, vmid: int, taken: str = "{why}") -> Guest:
    """A new guest's model; ``taken`` words the refusal of a VMID in use (``{why}``) as the calling endpoint does."""
    in_use = _vmid_taken(model, vmid)
    if in_use:
        raise PveApiError(500, taken.format(why=in_use))
    if node not in model.nodes:
        raise PveApiError(500, f"hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known")
    resource = {"id": f"{kind}/{vmid}", "type": kind, "vmid": vmid, "node": node, "status": "stopped", "template": 0,
                "uptime": 0, "cpu": 0, "mem": 0, "disk": 0, "maxdisk": 0, "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0}
    return Guest(vmid=vmid, kind=kind, node=node, resource=resource, config={})  # type: ignore[arg-type]


def _stable_uuid(*parts: object) -> str:
    """Generated ids (smbios1 uuid, vmgenid) derived from the guest, so prediction and simulation agree."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "proximo:" + ":".join(map(str, parts))))


def _mac(*parts: object) -> str:
    digest = uuid.uuid5(uuid.NAMESPACE_URL, "proximo-mac:" + ":".join(map(str, parts))).hex
    return "BC:24:11:" + ":".join(digest[i:i + 2].upper() for i in (0, 2, 4))


_QEMU_NIC_MODELS = ("virtio", "e1000", "e1000e", "rtl8139", "vmxnet3", "ne2k_pci", "pcnet", "i82551", "i82557b", "i82559er", "ne2k_isa")


def _is_nic(key: str) -> bool:
    return key.startswith("net") and key[3:].isascii() and key[3:].isdigit()


def nic_with_mac(kind: Kind, value: str, mac: str, *, keep: bool) -> str:
    """A NIC as PVE stores it, with a MAC: QEMU ``virtio=MAC,bridge=...`` (the model key first), LXC ``hwaddr=MAC``.

    ``keep``: a MAC already given stays (create); otherwise it is replaced (clone).
    """
    if kind == "lxc":
        props = parse_property_string(value, None)
        if not keep or not props.get("hwaddr"):
            props["hwaddr"] = mac
        props.setdefault("type", "veth")
        return print_property_string(props, None)
    props = parse_property_string(value, "model")
    model_name = props.pop("model", None) or next((m for m in _QEMU_NIC_MODELS if m in props), None)
    if model_name is None:
        return value  # no model: PVE's own check refuses it
    current = props.pop(model_name, "") or ""
    rest = [f"{k}={v}" for k, v in props.items()]
    return ",".join([f"{model_name}={current if keep and current else mac}", *rest])


def _add_to_pool(model: ClusterModel, poolid: str | None, g: Guest) -> None:
    if not poolid:
        return
    pool = model.pools.get(poolid)
    if pool is None:
        raise PveApiError(500, f"pool '{poolid}' does not exist")
    pool.setdefault("members", []).append({"id": g.sid, "type": g.kind, "vmid": g.vmid, "node": g.node,
                                            "name": g.name, "status": g.resource.get("status"), "template": 0})
    g.resource["pool"] = poolid


def _finish_new(model: ClusterModel, g: Guest, call: Call) -> None:
    g.resource["name"] = g.name
    g.resource["maxmem"] = as_int(str(g.config.get("memory", 2048 if g.kind == "qemu" else 512)).split(",")[0].replace("current=", "")) * 1024 * 1024
    g.resource["maxcpu"] = as_int(g.config.get("cores", 1)) * as_int(g.config.get("sockets", 1), 1)
    boot = next((v for v in g.volumes() if v.is_boot), None)
    g.resource["maxdisk"] = boot.size or 0 if boot else 0
    g.write_config()
    model.guests[g.vmid] = g
    _add_to_pool(model, call.params.get("pool"), g)
    if as_int(call.params.get("start")):
        _do_start(model, g, call)


def create_qemu(model: ClusterModel, call: Call) -> str:
    p = call.params
    if p.get("archive"):
        return restore(model, call, "qemu")
    # Qemu.pm create_vm: create_and_lock_config (check_vmid_unused) fails under "unable to create VM <vmid> -"
    g = _new_guest(model, call.path_params["node"], "qemu", as_int(p["vmid"]), f"unable to create VM {p['vmid']} - {{why}}")
    for key, value in sorted(p.items()):
        if key in _CREATE_ONLY:
            continue
        if key == "cdrom":
            key, value = "ide2", f"{value},media=cdrom" if "media=" not in str(value) else value
        g.config[key] = materialize(model, g, key, value) if isinstance(value, str) else value
    g.config.setdefault("smbios1", f"uuid={_stable_uuid('smbios1', g.vmid)}")
    g.config.setdefault("vmgenid", _stable_uuid("vmgenid", g.vmid))
    g.config.setdefault("meta", "creation-qemu=9.2.0")
    for key in [k for k in g.config if _is_nic(k)]:
        g.config[key] = nic_with_mac("qemu", str(g.config[key]), _mac(g.vmid, key), keep=True)
    upid = model.start_task(g.node, "qmcreate", str(g.vmid), call.user)
    _finish_new(model, g, call)
    return upid


def create_lxc(model: ClusterModel, call: Call) -> str:
    p = call.params
    if as_int(p.get("restore")):
        return restore(model, call, "lxc")
    node = call.path_params["node"]
    g = _new_guest(model, node, "lxc", as_int(p["vmid"]))  # LXC.pm create_vm: check_vmid_unused first, as it words it
    template = str(p["ostemplate"])
    tsid = template.partition(":")[0]
    if tsid not in model.storages:
        raise PveApiError(500, f"storage '{tsid}' does not exist")
    row = vols.find_volume(model, template)
    if row is None or row.get("content") != "vztmpl":
        raise PveApiError(500, f"volume '{template}' does not exist")
    problem = model.storage_problem(tsid, node)
    if problem:
        raise PveApiError(500, problem)
    config = {k: v for k, v in p.items() if k not in _CREATE_ONLY}
    config.setdefault("rootfs", f"{p.get('storage', 'local')}:4")  # PVE's default: 4 GiB on 'storage'
    for key, value in sorted(config.items()):
        g.config[key] = materialize(model, g, key, value) if isinstance(value, str) else value
    g.config.setdefault("arch", "amd64")
    g.config.setdefault("ostype", "debian" if "debian" in template else "unmanaged")
    for key in [k for k in g.config if _is_nic(k)]:
        g.config[key] = nic_with_mac("lxc", str(g.config[key]), _mac(g.vmid, key), keep=True)
    upid = model.start_task(node, "vzcreate", str(g.vmid), call.user)
    _finish_new(model, g, call)
    return upid


# --- restore from a backup -------------------------------------------------------------------------------
#
# Restore from a backup: ``POST /nodes/{node}/qemu`` with ``archive``, ``POST /nodes/{node}/lxc`` with ``restore=1``.
#
# qemu-server src/PVE/API2/Qemu.pm create_vm and pve-container src/PVE/API2/LXC.pm create_vm: check_vmid_unused
# (``force`` allows an existing guest on this node only), then, for an existing guest, its protection and that it is
# not running; the old disks are destroyed (restore_destroy_volumes; LXC destroys the old rootfs and mount points);
# each disk of the backup's config is allocated anew on ``storage`` (or where it was, when that storage is usable on
# the node); ``unique`` gives new MACs; ``start`` starts it. The config comes from the archive (``backup_configs``,
# GET /nodes/{node}/vzdump/extractconfig): a backup whose config was not read is refused as not modelled.


def _config_lines(text: str) -> dict[str, Any]:
    """The main section of a config file's text: ``key: value`` lines up to the first ``[section]``."""
    config: dict[str, Any] = {}
    for line in text.splitlines():
        if line.startswith("["):
            break
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if sep:
            config[key.strip()] = value.strip()
    return config


def restore(model: ClusterModel, call: Call, kind: str) -> str:
    p = call.params
    node = call.path_params["node"]
    vmid = as_int(p["vmid"])
    archive = str(p["archive"] if kind == "qemu" else p["ostemplate"])
    emsg = f"unable to restore {'VM' if kind == 'qemu' else 'CT'} {vmid} -"
    row = vols.find_volume(model, archive)
    if row is None or row.get("content") != "backup":
        raise PveApiError(500, f"{emsg} volume '{archive}' does not exist")
    problem = model.storage_problem(archive.partition(":")[0], node)
    if problem:
        raise PveApiError(500, f"{emsg} {problem}")
    text = model.backup_configs.get(archive)
    if text is None:
        raise NotModelled(f"the configuration inside backup '{archive}' was not read "
                          "(GET /nodes/{node}/vzdump/extractconfig): Proximo cannot predict what restoring it creates")
    old = model.guests.get(vmid)
    if old is not None:
        if not as_int(p.get("force")) or old.node != node:
            raise PveApiError(500, f"{emsg} {label(old.kind)} {vmid} already exists on node '{old.node}'")
        if old.kind != kind:
            raise PveApiError(500, f"{emsg} {label(old.kind)} {vmid} already exists on node '{old.node}'")
        old.check_lock()
        if as_int(old.config.get("protection")):
            raise PveApiError(500, f"{emsg} protection mode enabled")
        if old.running:
            raise PveApiError(500, f"{emsg} vm is running" if kind == "qemu" else "can't overwrite running container")
        for _, volid in owned_volumes(model, old):
            vols.free(model, volid, old.node)
        del model.guests[vmid]
    g = _new_guest(model, node, kind, vmid, f"{emsg} {{why}}")  # type: ignore[arg-type]
    target = p.get("storage")
    for key, value in _config_lines(text).items():
        if key in ("digest", "lock", "parent") or key.startswith("unused"):
            continue  # a restore brings no snapshot tree and no unused volumes (they are not in the archive)
        if is_volume_key(kind, key) and isinstance(value, str):  # type: ignore[arg-type]
            volume, props = volume_of(kind, value)  # type: ignore[arg-type]
            if not _is_cdrom(kind, props) and ":" in volume and not volume.startswith("/"):  # type: ignore[arg-type]
                sid = str(target or volume.partition(":")[0])
                if target is None and model.storage_problem(sid, node):
                    raise PveApiError(500, f"{emsg} {model.storage_problem(sid, node)}")
                size = parse_size(props["size"]) if props.get("size") else 0
                volid = vols.allocate(model, sid, node, vmid, kind, size)
                value = with_volume(kind, props, volid, size)  # type: ignore[arg-type]
        g.config[key] = value
    if as_int(p.get("unique")):
        for key in [k for k in g.config if _is_nic(k)]:
            g.config[key] = nic_with_mac(kind, str(g.config[key]), _mac(vmid, key, "restore"), keep=False)  # type: ignore[arg-type]
    upid = model.start_task(node, "qmrestore" if kind == "qemu" else "vzrestore", str(vmid), call.user,
                            log=[f"restore {archive} to {kind}/{vmid}"])
    _finish_new(model, g, call)
    return upid


def _destroy_new_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    kind = kind_of(call)
    vmid = call.params.get("vmid") or call.params.get("newid")
    node = call.params.get("target") or call.path_params["node"]
    steps: list[Step] = []
    if as_int(call.params.get("start")):
        steps.append(ApiCall("POST", f"/nodes/{node}/{kind}/{vmid}/status/stop"))
    steps.append(ApiCall("DELETE", f"/nodes/{node}/{kind}/{vmid}", {"purge": 1}))
    return steps


# --- destroy ---------------------------------------------------------------------------------------------


def linked_clones(model: ClusterModel, g: Guest) -> dict[int, list[str]]:
    """Guests with a volume cloned from one of this template's base volumes: vmid -> their disk keys."""
    bases = {volid for _, volid in owned_volumes(model, g)}
    found: dict[int, list[str]] = {}
    for vmid, other in sorted(model.guests.items()):
        if vmid == g.vmid:
            continue
        for v in other.volumes():
            if vols.base_of(model, v.volid) in bases:
                found.setdefault(vmid, []).append(v.key)
    return found


def replication_jobs_of(model: ClusterModel, vmid: int) -> list[dict[str, Any]]:
    return [j for j in model.replication_jobs if as_int(j.get("guest")) == vmid]


def backup_jobs_naming(model: ClusterModel, vmid: int) -> list[dict[str, Any]]:
    """Backup jobs whose vmid list (or exclude list) names the guest (what purge edits)."""
    return [j for j in model.backup_jobs
            if str(vmid) in split_list(j.get("vmid")) or str(vmid) in split_list(j.get("exclude"))]


def pools_of(model: ClusterModel, vmid: int) -> list[str]:
    return sorted(pid for pid, pool in model.pools.items()
                  if any(as_int(m.get("vmid"), -1) == vmid for m in pool.get("members", [])))


def destroy(model: ClusterModel, call: Call) -> str:
    g = guest_at(model, call)
    p = call.params
    check_lock(g, call)
    if as_int(g.config.get("protection")):
        raise PveApiError(500, f"can't remove {label(g.kind)} {g.vmid} - protection mode enabled")
    if g.running and not (g.kind == "lxc" and as_int(p.get("force"))):
        raise PveApiError(500, f"VM {g.vmid} is running - destroy failed" if g.kind == "qemu"
                          else f"unable to destroy CT {g.vmid} - container is running")
    purge = as_int(p.get("purge"))
    ha = ha_resource(model, g) or next((r for r in model.ha_resources if r.get("sid") == f"{'vm' if g.kind == 'qemu' else 'ct'}:{g.vmid}"), None)
    if not purge:
        if ha is not None:
            raise PveApiError(500, f"unable to remove {label(g.kind)} {g.vmid} - used in HA resources and purge parameter not set.")
        if replication_jobs_of(model, g.vmid):
            raise PveApiError(500, f"There are replication jobs for guest '{g.vmid}' - please remove them first.")
    clones = linked_clones(model, g)
    used = {vols.base_of(model, v.volid) for vmid in clones for v in model.guests[vmid].volumes()}
    refusal, warnings = _destroy_volume_checks(model, g, used)
    if refusal:
        raise PveApiError(500, refusal)
    upid = task(model, g, call, "qmdestroy", "vzdestroy")
    if warnings:  # PVE::RESTEnvironment log_warn: "WARN: ..." lines, and the task ends "WARNINGS: <count>"
        model.tasks[upid].exitstatus = f"WARNINGS: {len(warnings)}"
        model.tasks[upid].log = [f"WARN: {w}" for w in warnings] + [f"TASK WARNINGS: {len(warnings)}"]
    doomed = {volid for _, volid in owned_volumes(model, g)}
    for snap in g.snapshot_configs.values():
        state = snap.get("vmstate")
        if state:
            doomed.add(str(state))
    if as_int(p.get("destroy-unreferenced-disks")):
        for sid, buckets in model.volumes.items():
            if model.storage_problem(sid, g.node):
                continue
            for volid, row in buckets.get("" if model.storage_shared(sid) else g.node, {}).items():
                if as_int(row.get("vmid"), -1) == g.vmid and row.get("content") in ("images", "rootdir"):
                    doomed.add(volid)
    for volid in sorted(doomed):
        vols.free(model, volid, g.node)
    del model.guests[g.vmid]
    # PVE::AccessControl::remove_vm_access (always): ACLs on /vms/<vmid> and pool membership
    model.acl[:] = [a for a in model.acl if a.get("path") != f"/vms/{g.vmid}"]
    for pool in model.pools.values():
        pool["members"] = [m for m in pool.get("members", []) if as_int(m.get("vmid"), -1) != g.vmid]
    # PVE::Firewall::remove_vmfw_conf (always; API2/Qemu.pm destroy_vm, API2/LXC.pm destroy_vm): <vmid>.fw goes
    if model.firewall.guests_read:  # a read without the guests' firewall files leaves them unknown, removed or not
        model.firewall.guests.pop(g.vmid, None)
    base = f"/nodes/{g.node}/{g.kind}/{g.vmid}/"
    for path in [path for path in model.firewall.pve_digests if path.startswith(base)]:
        del model.firewall.pve_digests[path]
    for path in [path for path in model.other if path.startswith(base)]:
        del model.other[path]
    if purge:
        model.replication_jobs[:] = [j for j in model.replication_jobs if as_int(j.get("guest")) != g.vmid]
        for job in list(model.backup_jobs):
            for key in ("vmid", "exclude"):
                ids = split_list(job.get(key))
                if str(g.vmid) in ids:
                    rest = [i for i in ids if i != str(g.vmid)]
                    if rest:
                        job[key] = ",".join(rest)
                    else:
                        job.pop(key)
                        if key == "vmid" and not as_int(job.get("all")) and not job.get("pool"):
                            model.backup_jobs.remove(job)  # a job left with no guest is removed
        if ha is not None:
            model.ha_resources.remove(ha)
    return upid


def pve_release(model: ClusterModel) -> tuple[int, int]:
    """The Proxmox VE release the cluster runs (GET /version ``release``, else ``version``); 9.1 when it was not
    read, the release of the API schema the model follows."""
    text = str(model.version.get("release") or model.version.get("version") or "9.1")
    parts = [as_int(p, 0) for p in text.split(".")[:2]]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


def _destroy_volume_checks(model: ClusterModel, g: Guest, used_bases: set[str | None]) -> tuple[str | None, list[str]]:
    """What destroying the guest's volumes meets, walking them in PVE's order (foreach_volume_full with the unused
    ones, then the snapshots' RAM states): PVE's error, else the warnings it logs.

    A base volume linked clones use is refused (qemu-server src/PVE/QemuServer.pm destroy_vm checks every base
    volume of a template first; pve-container src/PVE/LXC.pm destroy_lxc_container frees volume by volume and
    pve-storage src/PVE/Storage.pm vdisk_free refuses the base one, by volname). A volume on a storage that does not
    exist fails storage_config ("storage 'x' does not exist"): in pve-container's parse_volname, and in qemu-server
    up to 9.1 (volume_is_base_and_used for a template, PVE::Storage::path for the others); qemu-server 9.2 only
    warns and leaves the volume where it is (59e11235, and 2e85e6d7 "fix #3711: make removal of VM possible if store
    does not exist anymore"). PVE fails in the worker, after freeing the volumes before that one; the model
    refuses the request up front.
    """
    tolerant = g.kind == "qemu" and pve_release(model) >= (9, 2)
    walk = [(v.volid, v.role) for v in g.volumes() if not (g.kind == "qemu" and v.role == "cdrom")]
    walk += [(str(snap["vmstate"]), "vmstate") for _, snap in sorted(g.snapshot_configs.items()) if snap.get("vmstate")]
    checks: list[str] = []  # qemu-server's template check runs over every volume before any is removed
    removals: list[str] = []
    for volid, role in walk:
        sid = volid.partition(":")[0]
        if sid not in model.storages:
            if not tolerant:
                return f"storage '{sid}' does not exist", []
            if g.template and role != "cloudinit":  # the template check skips every CD-ROM drive, cloud-init's too
                checks.append(f"failed to check if volume '{volid}' is used by linked clones: storage '{sid}' does not exist")
            removals.append(f"failed to get path and owner of volume '{volid}': storage '{sid}' does not exist")
        elif volid in used_bases:
            if g.kind == "qemu":
                return f"base volume '{volid}' is still in use by linked cloned", []
            return f"base volume '{volid.partition(':')[2]}' is still in use by linked clones", []
    return None, checks + removals


def destroy_notes(before: ClusterModel, call: Call) -> list[str]:
    g = before.guests.get(as_int(call.path_params.get("vmid"), -1))
    if g is None:
        return []
    purge = as_int(call.params.get("purge"))
    notes = []
    sid = f"{'vm' if g.kind == 'qemu' else 'ct'}:{g.vmid}"
    if any(r.get("sid") == sid for r in before.ha_resources):
        notes.append(f"HA resource {sid}: " + ("purge removes it from the HA configuration." if purge
                                                else "without purge Proxmox refuses the destroy."))
    for job in replication_jobs_of(before, g.vmid):
        notes.append(f"replication job {job.get('id')} ({g.node} -> {job.get('target')}): " +
                     ("purge deletes the job entry (ReplicationConfig.pm remove_vmid_jobs): no replication run removes the "
                      "replica on the target, it stays there." if purge
                      else "without purge Proxmox refuses the destroy."))
    for job in backup_jobs_naming(before, g.vmid):
        notes.append(f"backup job {job.get('id')} names {g.vmid}: " +
                     ("purge removes it from the job's list." if purge else "without purge the job keeps the id of a guest that no longer exists."))
    for pool in pools_of(before, g.vmid):
        notes.append(f"pool {pool}: the guest leaves the pool (Proxmox removes pool membership and /vms/{g.vmid} ACLs on every destroy).")
    _, warnings = _destroy_volume_checks(before, g, set())
    for volid in dict.fromkeys(w.split("'")[1] for w in warnings):
        notes.append(f"volume {volid}: its storage '{volid.partition(':')[0]}' does not exist, so Proxmox leaves it where "
                     "it is, unreferenced (the destroy ends with warnings).")
    notes.append(f"{g.sid}: {vols.recovery_point(before, g.vmid)}.")
    return notes


# --- power -----------------------------------------------------------------------------------------------


def _start_error(model: ClusterModel, g: Guest) -> str | None:
    """Why the start fails, in PVE's order: QEMU checks volumes before bridges, LXC bridges first."""
    volume_problems = [msg for _, msg in model.start_problems(g).values()]
    bridge_problems = list(model.bridge_problems(g).values())
    ordered = volume_problems + bridge_problems if g.kind == "qemu" else bridge_problems + volume_problems
    return ordered[0] if ordered else None


def _apply_pending(g: Guest) -> None:
    """vm_start applies [PENDING] (qemu-server vmconfig_apply_pending, pve-container vmconfig_apply_pending) and
    writes the config: the view already holds the new values, the file and its digest change."""
    if g.pending is not None and any("pending" in r or as_int(r.get("delete")) for r in g.pending):
        g.pending = None
        g.write_config()
    g.pending = None


def _do_start(model: ClusterModel, g: Guest, call: Call) -> None:
    g.resource["status"] = "running"
    g.resource["uptime"] = 0
    g.paused = False
    _apply_pending(g)


def start(model: ClusterModel, call: Call) -> str:
    g = guest_at(model, call)
    if g.template:
        raise PveApiError(500, f"you can't start a {'vm' if g.kind == 'qemu' else 'CT'} if it's a template")
    check_lock(g, call)
    ha = ha_resource(model, g)
    if ha is not None:  # an HA request (``ha-manager set <sid> --state started``): the HA manager starts it
        ha["state"] = "started"
        upid = model.start_task(g.node, "hastart", str(g.vmid), call.user)
    else:
        if g.running:
            raise PveApiError(500, f"{label(g.kind)} {g.vmid} already running")
        upid = task(model, g, call, "qmstart", "vzstart")
    problem = _start_error(model, g)
    if problem:
        raise PveApiError(500, problem)
    _do_start(model, g, call)
    return upid


def _stop(model: ClusterModel, call: Call, qemu_type: str, lxc_type: str, *, shutdown: bool) -> str:
    """vm_stop / vm_shutdown of API2/Qemu.pm and API2/LXC/Status.pm, in their order of checks."""
    g = guest_at(model, call)
    p = call.params
    if g.kind == "lxc":
        _running_or_fail(g)  # "CT <vmid> not running", before the HA branch
    elif shutdown and g.paused:
        # a paused VM would take the powerdown request with it when resumed
        if not as_int(p.get("forceStop")):
            raise PveApiError(500, "VM is paused - cannot shutdown")
    ha = ha_resource(model, g)
    if ha is not None and p.get("migratedfrom") is None:
        if as_int(p.get("overrule-shutdown")):
            raise PveApiError(400, "Parameter verification failed.", {"overrule-shutdown": "Not applicable for HA resources."})
        ha["state"] = "stopped"  # the CRM rewrites the resource to state: stopped (Manager.pm)
        upid = model.start_task(g.node, "hastop", str(g.vmid), call.user)
    elif g.kind == "qemu" and not g.running:
        # QemuServer.pm _do_vm_stop: "return if !$pid" before the lock is looked at: the task ends OK
        return task(model, g, call, qemu_type, lxc_type)
    else:
        if g.kind == "qemu" or shutdown or g.config.get("lock") != "mounted":  # LXC stop lets a 'mounted' lock through
            check_lock(g, call)
        upid = task(model, g, call, qemu_type, lxc_type)
    g.resource["status"] = "stopped"
    g.resource["uptime"] = 0
    g.paused = False
    return upid


def stop(model: ClusterModel, call: Call) -> str:
    return _stop(model, call, "qmstop", "vzstop", shutdown=False)


def shutdown(model: ClusterModel, call: Call) -> str:
    return _stop(model, call, "qmshutdown", "vzshutdown", shutdown=True)


def reboot(model: ClusterModel, call: Call) -> str:
    g = guest_at(model, call)
    _running_or_fail(g)
    upid = task(model, g, call, "qmreboot", "vzreboot")
    if _start_error(model, g):  # the restart half fails: the guest stays down
        g.resource["status"] = "stopped"
        model.tasks[upid].exitstatus = _start_error(model, g) or "OK"
    else:
        _do_start(model, g, call)
    return upid


def reset(model: ClusterModel, call: Call) -> str:
    g = guest_at(model, call)
    check_lock(g, call)
    _running_or_fail(g)
    upid = task(model, g, call, "qmreset", "vzreset")
    g.resource["uptime"] = 0
    return upid


def suspend(model: ClusterModel, call: Call) -> str:
    g = guest_at(model, call)
    if as_int(call.params.get("todisk")):
        if ha_resource(model, g) is not None:
            raise PveApiError(500, "Cannot suspend HA managed VM to disk")
        raise NotModelled("suspend to disk (hibernate) is not modelled")
    if g.kind == "qemu":
        check_lock(g, call)
    _running_or_fail(g)
    g.paused = True
    return task(model, g, call, "qmsuspend", "vzsuspend")


def resume(model: ClusterModel, call: Call) -> str:
    g = guest_at(model, call)
    if g.kind == "qemu":
        check_lock(g, call)
    _running_or_fail(g)
    g.paused = False  # PVE sends 'cont' to a VM that is not paused too: no error
    return task(model, g, call, "qmresume", "vzresume")


def _power_inverse(target: str) -> Callable[[ClusterModel, Call], list[Step] | Irreversible]:
    def inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
        g = guest_at(before, call)
        base = f"/nodes/{g.node}/{g.kind}/{g.vmid}/status"
        if target == "start" and not g.running:
            return []  # it was stopped already: nothing to put back
        if target == "stop" and g.running:
            return []
        return [ApiCall("POST", f"{base}/{target}")]

    return inverse


def _stop_notes(before: ClusterModel, call: Call) -> list[str]:
    g = before.guests.get(as_int(call.path_params.get("vmid"), -1))
    if g is None:
        return []
    ha = ha_resource(before, g)
    if ha is None:
        return []
    notes = [f"HA manages {g.sid}: the request goes through the HA manager (task hastop) and leaves "
             f"ha/{ha['sid']} at requested state 'stopped' (was '{ha.get('state', 'started')}'); "
             "HA will not restart or recover it until it is started again."]
    if g.kind == "lxc" and call.path.endswith("/shutdown"):
        notes.append(f"A container that ignores the shutdown is not killed under HA (no forceStop for CTs): "
                     f"the stop fails and ha/{ha['sid']} goes to 'error'.")
    return notes


def _start_notes(before: ClusterModel, call: Call) -> list[str]:
    g = before.guests.get(as_int(call.path_params.get("vmid"), -1))
    ha = ha_resource(before, g) if g else None
    if g is None or ha is None:
        return []
    return [f"HA manages {g.sid}: start becomes an HA request (task hastart): ha/{ha['sid']} requested state "
            f"'{ha.get('state', 'started')}' -> 'started'; the HA manager starts it (and may place it by its rules)."]


def _bypass_notes(before: ClusterModel, call: Call) -> list[str]:
    g = before.guests.get(as_int(call.path_params.get("vmid"), -1))
    if g is None or ha_resource(before, g) is None:
        return []
    return [f"HA manages {g.sid}, but {call.path.rsplit('/', 1)[-1]} bypasses the HA manager."]


# --- snapshots -------------------------------------------------------------------------------------------


def _snapshot_capable(model: ClusterModel, g: Guest) -> None:
    """PVE checks every volume can snapshot: zfs, rbd, lvm-thin, btrfs, or a qcow2 file."""
    for v in g.volumes():
        if v.role in ("cdrom", "unused", "vmstate", "cloudinit"):
            continue
        stype = vols.storage_type(model, v.storage)
        if stype in vols.SNAPSHOT_TYPES or v.volid.endswith(".qcow2"):
            continue
        raise PveApiError(500, "snapshot feature is not available")


def snapshot_create(model: ClusterModel, call: Call) -> str:
    g = guest_at(model, call)
    name = str(call.params["snapname"])
    check_lock(g, call)
    if name == "current":
        raise PveApiError(400, "Parameter verification failed.", {"snapname": "invalid snapshot name 'current'"})
    if any(r.get("name") == name for r in g.snapshots or []):
        raise PveApiError(500, f"snapshot name '{name}' already used")
    _snapshot_capable(model, g)
    upid = task(model, g, call, "qmsnapshot", "vzsnapshot")
    snap = _snapshot_copy_config(g.current_config())
    row: dict[str, Any] = {"name": name, "description": call.params.get("description", ""), "snaptime": int(time.time())}
    if g.config.get("parent"):
        row["parent"] = g.config["parent"]
    if g.kind == "qemu" and as_int(call.params.get("vmstate")) and g.running:
        boot = next((v for v in g.volumes() if v.role == "disk"), None)
        sid = str(g.config.get("vmstatestorage") or (boot.storage if boot else ""))
        size = as_int(str(g.config.get("memory", 2048)).replace("current=", "").split(",")[0]) * 1024 * 1024 * 2
        volid = vols.allocate(model, sid, g.node, g.vmid, "qemu", size, volname=f"vm-{g.vmid}-state-{name}")
        snap["vmstate"] = volid
        row["vmstate"] = 1
    snap["snaptime"] = row["snaptime"]
    if row["description"]:
        snap["description"] = row["description"]
    g.snapshots = [r for r in g.snapshots or [] if r.get("name") != "current"] + [row]
    g.snapshot_configs[name] = snap
    g.config["parent"] = name
    g.write_config()
    return upid


# pve-guest-common src/PVE/AbstractConfig.pm __snapshot_copy_config: what a snapshot does not copy from the config
_NOT_SNAPSHOTTED = frozenset({"snapshots", "snapstate", "snaptime", "vmstate", "lock", "digest", "description"})


def _snapshot_copy_config(source: dict[str, Any]) -> dict[str, Any]:
    """__snapshot_copy_config: every key of the file's main section but the snapshot bookkeeping, the lock, the
    digest, the description and the unusedN volumes (a snapshot's config has its own description)."""
    return {k: v for k, v in source.items() if k not in _NOT_SNAPSHOTTED and not is_unused_key(k)}


def _snapshot_or_fail(g: Guest, name: str) -> dict[str, Any]:
    row = next((r for r in g.snapshots or [] if r.get("name") == name and name != "current"), None)
    if row is None:
        raise PveApiError(500, f"snapshot '{name}' does not exist")
    return row


def snapshot_delete(model: ClusterModel, call: Call) -> str:
    g = guest_at(model, call)
    name = call.path_params["snapname"]
    row = _snapshot_or_fail(g, name)
    if not as_int(call.params.get("force")):
        check_lock(g, call)
    upid = task(model, g, call, "qmdelsnapshot", "vzdelsnapshot")
    state = g.snapshot_configs.get(name, {}).get("vmstate")
    if state:
        vols.free(model, str(state), g.node)
    parent = row.get("parent")
    g.snapshots = [r for r in g.snapshots or [] if r.get("name") != name]
    for other in g.snapshots:
        if other.get("parent") == name:
            other.pop("parent", None) if parent is None else other.__setitem__("parent", parent)
    for conf in g.snapshot_configs.values():
        if conf.get("parent") == name:
            conf.pop("parent", None) if parent is None else conf.__setitem__("parent", parent)
    g.snapshot_configs.pop(name, None)
    if g.config.get("parent") == name:
        if parent is None:
            g.config.pop("parent")
        else:
            g.config["parent"] = parent
    g.write_config()
    return upid


def snapshot_rollback(model: ClusterModel, call: Call) -> str:
    g = guest_at(model, call)
    name = call.path_params["snapname"]
    _snapshot_or_fail(g, name)
    check_lock(g, call)
    snap = g.snapshot_configs.get(name)
    if snap is None:
        raise NotModelled(f"the config of snapshot '{name}' was not read, so a rollback cannot be predicted")
    upid = task(model, g, call, "qmrollback", "vzrollback")
    # the config's volumes, in foreach_volume's order, that the snapshot lacks: __snapshot_rollback_get_unused
    current_volumes = [v.volid for v in guest_volumes(g.kind, g.current_config()) if v.role not in ("cdrom", "unused")]
    # AbstractConfig snapshot_rollback -> __snapshot_apply_config: the current description and unusedN entries stay,
    # the snapshot's config is copied over them (__snapshot_copy_config), pending changes are dropped
    kept_keys = {k: v for k, v in g.current_config().items() if k == "description" or is_unused_key(k)}
    g.config = {**kept_keys, **_snapshot_copy_config(snap)}
    g.config["parent"] = name
    g.pending = None
    kept = {v.volid for v in g.volumes()}
    for volid in current_volumes:  # volumes added since the snapshot stay, as unusedN
        if volid not in kept and vols.owner_of(model, volid) == g.vmid:
            add_unused(g, volid)
    g.rolled_back_to = name
    if snap.get("vmstate"):  # the RAM state comes back: the guest runs as it did then
        _do_start(model, g, call)
    else:
        g.resource["status"] = "stopped"
        g.resource["uptime"] = 0
        if as_int(call.params.get("start")):
            _do_start(model, g, call)
    g.write_config()
    return upid


def _snapshot_create_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    g = guest_at(before, call)
    return [ApiCall("DELETE", f"/nodes/{g.node}/{g.kind}/{g.vmid}/snapshot/{call.params['snapname']}")]


# --- disks: resize, move, template ---------------------------------------------------------------------

_RESIZE = re.compile(r"^(\+)?([0-9]+(?:\.[0-9]+)?[KMGT]?)$")


def disk_resize(model: ClusterModel, call: Call) -> str:
    g = guest_at(model, call)
    check_lock(g, call)
    check_digest(g, call)
    key = str(call.params["disk"])
    if not is_volume_key(g.kind, key) or is_unused_key(key) or key not in g.config:
        raise PveApiError(500, f"disk '{key}' does not exist" if g.kind == "qemu" else f"unable to parse config key '{key}'")
    volume, props = volume_of(g.kind, g.config[key])
    if _is_cdrom(g.kind, props) or not is_volume_id(volume):
        raise PveApiError(500, "you can't resize a cdrom" if _is_cdrom(g.kind, props) else f"disk '{key}' has no volume")
    match = _RESIZE.fullmatch(str(call.params["size"]))
    if match is None:
        raise PveApiError(400, "Parameter verification failed.", {"size": "value does not match the regex pattern"})
    row = vols.find_volume(model, volume)
    current = parse_size(props["size"]) if props.get("size") else as_int((row or {}).get("size"))
    amount = parse_size(match.group(2))
    new = current + amount if match.group(1) else amount
    if new < current:
        raise PveApiError(500, "shrinking disks is not supported")
    vols.resize(model, volume, g.node, new)
    g.config[key] = with_volume(g.kind, props, volume, new)
    g.write_config()
    return task(model, g, call, "qmresize", "resize")


def disk_move(model: ClusterModel, call: Call) -> str:
    g = guest_at(model, call)
    p = call.params
    if p.get("target-vmid") or p.get("target-disk") or p.get("target-volume"):
        raise NotModelled("moving a disk to another guest (reassign) is not modelled")
    key = str(p.get("disk") or p.get("volume"))
    sid = p.get("storage")
    if not sid:  # Qemu.pm move_vm_disk, LXC.pm move_volume: neither a storage nor a target guest
        why = "both 'storage' and 'target-vmid' missing, either needs to be set"
        raise PveApiError(400, "Parameter verification failed.", {"target-vmid": why, "storage": why})
    check_lock(g, call)
    check_digest(g, call)
    if g.kind == "lxc" and g.running:
        raise PveApiError(500, "cannot move volumes of a running container")
    if not is_volume_key(g.kind, key) or key not in g.config:
        raise PveApiError(500, f"disk '{key}' does not exist" if g.kind == "qemu" else f"Volume '{key}' does not exist")
    volume, props = volume_of(g.kind, g.config[key])
    if _is_cdrom(g.kind, props) or not is_volume_id(volume):
        raise PveApiError(500, "you can't move a cdrom" if _is_cdrom(g.kind, props) else f"disk '{key}' has no volume")
    old_sid = volume.partition(":")[0]
    if old_sid == sid and not p.get("format"):
        raise PveApiError(500, "you can't move to the same storage with same format")
    if as_int(p.get("delete")) and any(key in conf for conf in g.snapshot_configs.values()):
        raise PveApiError(500, "you can't move a disk with snapshots and delete the source")
    row = vols.find_volume(model, volume)
    size = parse_size(props["size"]) if props.get("size") else as_int((row or {}).get("size"))
    upid = task(model, g, call, "qmmove", "move_volume")
    new = vols.allocate(model, str(sid), g.node, g.vmid, g.kind, size)
    g.config[key] = with_volume(g.kind, props, new, size)
    if as_int(p.get("delete")):
        vols.free(model, volume, g.node)
    elif vols.owner_of(model, volume) == g.vmid:
        add_unused(g, volume)
    g.write_config()
    return upid


def _move_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    g = guest_at(before, call)
    key = str(call.params.get("disk") or call.params.get("volume"))
    volume, _ = volume_of(g.kind, g.config.get(key, ""))
    old_sid = volume.partition(":")[0]
    name = "disk" if g.kind == "qemu" else "volume"
    return [ApiCall("POST", call.path, {name: key, "storage": old_sid, "delete": 1})]


def template(model: ClusterModel, call: Call) -> str | None:
    g = guest_at(model, call)
    check_lock(g, call)
    if g.template:
        raise PveApiError(500, "you can't convert a template to a template")
    if g.running:
        raise PveApiError(500, f"you can't convert a {label(g.kind)} to template if {label(g.kind)} is running")
    if call.params.get("disk"):
        raise NotModelled("converting a single disk to a base volume is not modelled")
    for key, volid in owned_volumes(model, g):
        if is_unused_key(key):
            continue
        sid, volname = volid.split(":", 1)
        new_name = volname.replace(f"vm-{g.vmid}-", f"base-{g.vmid}-").replace(f"subvol-{g.vmid}-", f"basevol-{g.vmid}-")
        new = vols.rename(model, volid, g.node, new_name)
        g.config[key] = str(g.config[key]).replace(volid, new, 1)
    g.config["template"] = 1
    g.resource["template"] = 1
    g.write_config()
    if g.kind == "qemu":
        return model.start_task(g.node, "qmtemplate", str(g.vmid), call.user)
    return None  # POST /lxc/{vmid}/template is synchronous


# --- clone -----------------------------------------------------------------------------------------------


def clone(model: ClusterModel, call: Call) -> str:
    src = guest_at(model, call)
    p = call.params
    if p.get("snapname"):
        raise NotModelled("cloning from a snapshot is not modelled")
    newid = as_int(p["newid"])
    target = str(p.get("target") or src.node)
    full = as_int(p.get("full"), 0 if src.template else 1)
    if not src.template and not full:
        raise PveApiError(500, "Linked clone feature is not supported for running or non-template guests; use full=1")
    if src.kind == "lxc" and src.running:
        raise PveApiError(500, "cannot clone a running container (take a snapshot first)")
    check_lock(src, call)
    if target != src.node:
        local = [v for v in src.volumes() if v.role != "cdrom" and not model.storage_shared(v.storage)]
        if local:
            raise PveApiError(500, f"can't clone to node '{target}' (VM uses local storage)")
    # Qemu.pm clone_vm refuses a config file that exists (on this node); LXC.pm clone_vm: create_and_lock_config
    g = _new_guest(model, target, src.kind, newid, f"unable to create VM {newid}: config file already exists" if src.kind == "qemu" else "{why}")
    upid = model.start_task(src.node, "qmclone" if src.kind == "qemu" else "vzclone", str(src.vmid), call.user)
    skip = ("digest", "parent", "template", "lock", "snapshots", "pending")
    for key, value in src.config.items():
        if key in skip or is_unused_key(key):
            continue
        g.config[key] = value
    for v in src.volumes():
        if v.role in ("unused", "cdrom", "vmstate"):
            continue
        _, props = volume_of(src.kind, src.config[v.key])
        row = vols.find_volume(model, v.volid)
        size = v.size or as_int((row or {}).get("size"))
        stype = vols.storage_type(model, v.storage)
        if v.role == "cloudinit":
            new = vols.allocate(model, v.storage, target, newid, src.kind, size or 4 * 1024 * 1024,
                                volname=f"vm-{newid}-cloudinit")
            g.config[v.key] = with_volume(src.kind, props, new)
            continue
        if full:
            sid = str(p.get("storage") or v.storage)
            new = vols.allocate(model, sid, target, newid, src.kind, size)
        else:
            if stype not in vols.LINKED_CLONE_TYPES:
                raise PveApiError(500, f"linked clone feature is not supported for '{v.volid}'")
            base_name = v.volid.partition(":")[2]
            name = vols.next_volname(model, v.storage, target, newid, src.kind)
            if stype in ("zfspool", "zfs", "rbd"):
                volname = f"{base_name}/{name}"
            elif stype in vols.FILE_STORAGE_TYPES:
                volname = f"{src.vmid}/{base_name.rsplit('/', 1)[-1]}/{name}"
            else:
                volname = name
            new = vols.allocate(model, v.storage, target, newid, src.kind, size, volname=volname,
                                parent=f"{base_name.rsplit('/', 1)[-1]}@__base__")
        g.config[v.key] = with_volume(src.kind, props, new, size)
    if src.kind == "qemu":
        g.config["name"] = p.get("name") or f"Copy-of-VM-{src.name}"
        g.config["smbios1"] = f"uuid={_stable_uuid('smbios1', newid)}"
        if "vmgenid" in g.config:
            g.config["vmgenid"] = _stable_uuid("vmgenid", newid)
    else:
        g.config["hostname"] = p.get("hostname") or f"Copy-of-CT-{src.name}"
    if p.get("description"):
        g.config["description"] = p["description"]
    for key in [k for k in g.config if _is_nic(k)]:  # a clone gets new MAC addresses
        g.config[key] = nic_with_mac(src.kind, str(g.config[key]), _mac(newid, key), keep=False)
    _finish_new(model, g, Call(call.method, call.path, call.template, call.path_params, {"pool": p.get("pool")}, call.user))
    return upid


def _clone_notes(before: ClusterModel, call: Call) -> list[str]:
    g = before.guests.get(as_int(call.path_params.get("vmid"), -1))
    if g is None:
        return []
    full = as_int(call.params.get("full"), 0 if g.template else 1)
    if full:
        return []
    return [f"linked clone of template {g.sid}: the new guest's disks depend on the template's base volumes; "
            "the template cannot be destroyed while this clone exists."]


# --- registration ------------------------------------------------------------------------------------


def _irreversible(reason: str) -> Callable[[ClusterModel, Call], Irreversible]:
    return lambda before, call: Irreversible(reason)


def register_all(register: Callable[..., None]) -> None:
    for kind in ("qemu", "lxc"):
        base = f"/nodes/{{node}}/{kind}/{{vmid}}"
        qemu = kind == "qemu"
        register("POST", f"/nodes/{{node}}/{kind}", create_qemu if qemu else create_lxc,
                 inverse=_destroy_new_inverse, check=perm.check_qemu_create if qemu else perm.check_lxc_create)
        register("DELETE", base, destroy, notes=destroy_notes,
                 inverse=_irreversible("destroying a guest deletes its disks: nothing in Proxmox brings them back "
                                       "(restore from a backup is a new guest)"),
                 check=perm.root_only_options("skiplock") if qemu else None)
        register("PUT", f"{base}/config", config_set, inverse=config_inverse, notes=config_notes,
                 check=perm.check_qemu_config if qemu else perm.check_lxc_config, digest=config_digest_of)
        register("POST", f"{base}/status/start", start, inverse=_power_inverse("stop"), notes=_start_notes,
                 check=perm.root_only_options("stateuri", "skiplock", "migratedfrom", "migration_type", "migration_network",
                                              "targetstorage", "force-cpu", "with-conntrack-state", "nets-host-mtu")
                 if qemu else perm.root_only_options("skiplock"))
        register("POST", f"{base}/status/stop", stop, inverse=_power_inverse("start"), notes=_stop_notes,
                 check=perm.root_only_options("skiplock", "keepActive", "migratedfrom") if qemu else perm.root_only_options("skiplock"))
        register("POST", f"{base}/status/shutdown", shutdown, inverse=_power_inverse("start"), notes=_stop_notes,
                 check=perm.root_only_options("skiplock", "keepActive") if qemu else None)
        register("POST", f"{base}/status/reboot", reboot, inverse=lambda b, c: [], notes=_bypass_notes)
        register("POST", f"{base}/status/suspend", suspend, inverse=_power_inverse("resume"), notes=_bypass_notes,
                 check=perm.root_only_options("skiplock") if qemu else None)
        register("POST", f"{base}/status/resume", resume, inverse=_power_inverse("suspend"), notes=_bypass_notes,
                 check=perm.root_only_options("skiplock", "nocheck") if qemu else None)
        register("POST", f"{base}/snapshot", snapshot_create, inverse=_snapshot_create_inverse)
        register("DELETE", f"{base}/snapshot/{{snapname}}", snapshot_delete,
                 inverse=_irreversible("a deleted snapshot cannot be re-created: the state it held is gone"))
        register("POST", f"{base}/snapshot/{{snapname}}/rollback", snapshot_rollback,
                 inverse=_irreversible("a rollback discards everything written since the snapshot: it cannot be undone"),
                 check=perm.check_rollback if qemu else None)
        register("PUT", f"{base}/resize", disk_resize,
                 inverse=_irreversible("a disk cannot be shrunk (Proxmox refuses): a resize has no undo"),
                 check=perm.check_qemu_resize if qemu else perm.check_lxc_resize, digest=config_digest_of)
        register("POST", f"{base}/template", template,
                 inverse=_irreversible("a template cannot be turned back into a guest through the API"))
        register("POST", f"{base}/clone", clone, inverse=_clone_inverse, notes=_clone_notes,
                 check=perm.check_qemu_clone if qemu else perm.check_lxc_clone)
    register("POST", "/nodes/{node}/qemu/{vmid}/config", config_set, inverse=config_inverse, notes=config_notes,
             check=perm.check_qemu_config, digest=config_digest_of)
    register("POST", "/nodes/{node}/qemu/{vmid}/status/reset", reset, inverse=lambda b, c: [], notes=_bypass_notes,
             check=perm.root_only_options("skiplock"))
    register("POST", "/nodes/{node}/qemu/{vmid}/move_disk", disk_move, inverse=_move_inverse, check=perm.check_move_disk,
             digest=config_digest_of)
    register("POST", "/nodes/{node}/lxc/{vmid}/move_volume", disk_move, inverse=_move_inverse, check=perm.check_move_disk,
             digest=config_digest_of)


def _clone_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    g = guest_at(before, call)
    node = call.params.get("target") or g.node
    return [ApiCall("DELETE", f"/nodes/{node}/{g.kind}/{call.params['newid']}", {"purge": 1})]
