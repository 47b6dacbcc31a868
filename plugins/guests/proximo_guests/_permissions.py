"""The guest handlers' own permission checks, beyond the schema's ``permissions``.

After qemu-server e6352be6 (src/PVE/API2/Qemu.pm), pve-container 94f55852 (src/PVE/LXC.pm,
src/PVE/API2/LXC.pm, src/PVE/API2/LXC/Config.pm), pve-storage 0c56bad8 (PVE::Storage::check_volume_access)
and pve-guest-common 4a8f6cbf (PVE::GuestHelpers::check_vnet_access, assert_tag_permissions). Each is the
``check`` of an endpoint: it runs after the schema's check and before the endpoint's semantics, and raises
what the handler raises: a 403 ``Permission check failed (...)``, a 400 ``Only root may use this option.``,
or a plain 500 where the handler just dies (``only root can set 'args' config``). Where PVE checks a guest's
existence, lock or digest first, the check does too (with the semantics' own helpers), so the first error is
PVE's.

Not modelled, and what happens instead:
- PVE walks a hash of options in Perl's random order; these checks go in sorted order, so with several
  refusals the one reported may differ (the plan is refused either way).
- SDN vnets are not in the model: every bridge is checked on ``/sdn/zones/localnetwork/<bridge>``.
- datacenter.cfg's tag rules are not in the model: PVE's defaults (any tag, none registered) are assumed.
- Checks PVE makes in a task worker (``POST .../config``) refuse the call here, where PVE starts a task
  that then fails: the plan is blocked either way.
- Restore, ``import-from``, ``target-vmid`` and cloning from a snapshot are not modelled by the semantics;
  only the checks PVE makes before them run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from proximo import NotModelled, PveApiError
from proximo.model import Call, ClusterModel, Guest, as_int, split_list
from proximo.model._drives import (
    DriveError,
    is_qemu_drive_key,
    is_unused_key,
    parse_lxc_volume,
    parse_property_string,
    parse_qemu_drive,
)
from proximo.model._permissions import Caller, permission_error
from proximo.model._volumes import BLOCK_STORAGE_TYPES, FILE_STORAGE_TYPES, VolumeError, parse_volname_for, parse_volume_id

from . import _volumes as vols
from ._config import check_digest, check_lock, check_options_given, guest_at

CheckFn = Callable[[ClusterModel, Call, Caller], None]

_SIZE_GIB = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # the size part of $NEW_DISK_RE (qemu-server and pve-container)

# Parameters POST /nodes/{node}/qemu extracts before the rest is config (Qemu.pm create_vm).
_QEMU_CREATE_PARAMS = frozenset({"node", "vmid", "archive", "bwlimit", "force", "pool", "start", "ha-managed", "storage",
                                 "unique", "live-restore", "import-working-storage"})
# ... and POST /nodes/{node}/lxc (LXC.pm create_vm), before check_ct_modify_config_perm sees the rest.
_LXC_CREATE_PARAMS = frozenset({"node", "vmid", "ignore-unpack-errors", "bwlimit", "start", "ha-managed", "unprivileged",
                                "restore", "unique", "force", "password", "ssh-public-keys", "pool", "ostemplate", "storage"})
# ... and PUT/POST .../qemu/{vmid}/config (update_vm_api), before check_vm_modify_config_perm sees the rest.
_QEMU_UPDATE_PARAMS = frozenset({"node", "vmid", "digest", "background_delay", "skip_cloud_init", "import-working-storage",
                                 "skiplock", "delete", "revert", "force"})

# Qemu.pm: the option classes of $check_vm_modify_config_perm
_CPU_OPTIONS = frozenset({"cores", "cpu", "runningcpu", "cpulimit", "cpuunits", "numa", "smp", "sockets", "vcpus"})
_MEMORY_OPTIONS = frozenset({"memory", "balloon", "shares", "allow-ksm"})
_HWTYPE_OPTIONS = frozenset({"acpi", "hotplug", "kvm", "machine", "runningmachine", "scsihw", "smbios1", "tablet", "vga",
                             "watchdog", "audio0", "rng0"})
_GENERAL_OPTIONS = frozenset({"agent", "autostart", "bios", "description", "keyboard", "localtime", "migrate_downtime",
                              "migrate_speed", "name", "onboot", "ostype", "protection", "reboot", "startdate", "startup",
                              "tdf", "template"})
_POWER_OPTIONS = frozenset({"freeze"})
_DISK_OPTIONS = frozenset({"boot", "bootdisk", "vmstatestorage"})
_CLOUDINIT_OPTIONS = frozenset({"cicustom", "cipassword", "citype", "ciuser", "ciupgrade", "nameserver", "searchdomain", "sshkeys"})


def _perl_true(value: Any) -> bool:
    return value is not None and value is not False and str(value) not in ("", "0")


def _numbered(key: str, prefix: str) -> bool:
    return key.startswith(prefix) and key[len(prefix):].isascii() and key[len(prefix):].isdigit()


def _props(value: Any, default_key: str | None) -> dict[str, str]:
    """A property string as PVE parses it; one PVE cannot parse is left to the semantics to refuse."""
    try:
        return parse_property_string(str(value), default_key)
    except DriveError:
        return {}


# --- shared: volumes, bridges, root-only parameters -------------------------------------------------------


def check_volume_access(model: ClusterModel, caller: Caller, vmid: Any, volid: str, content: str | None = None) -> None:
    """PVE::Storage::check_volume_access: Datastore.Allocate on the storage is enough; else by content type."""
    try:
        sid, volname = parse_volume_id(volid)
    except VolumeError:
        if not caller.is_root:  # PVE dies without a newline here: Perl appends " at .../PVE/Storage.pm line N."
            raise PveApiError(500, "Only root can pass arbitrary filesystem paths.") from None
        return
    if sid not in model.storages:
        raise PveApiError(500, f"storage '{sid}' does not exist")
    storage_type = vols.storage_type(model, sid)
    if storage_type not in FILE_STORAGE_TYPES | BLOCK_STORAGE_TYPES:  # a volume name this model cannot parse
        if caller.check(f"/storage/{sid}", ["Datastore.Allocate"], noerr=True) and content is None:
            return
        raise NotModelled(f"access to {volid} cannot be checked: volume names of storage type '{storage_type}' are not modelled")
    try:
        parsed = parse_volname_for(storage_type, volname)
    except VolumeError as exc:  # PVE's parse_volname dies with the same text
        raise PveApiError(500, str(exc)) from None
    if content is not None and parsed.vtype != content and not (content == "rootdir" and parsed.vtype == "images"):
        raise PveApiError(500, f"unable to use volume {volid} - content type needs to be '{content}'")
    if caller.check(f"/storage/{sid}", ["Datastore.Allocate"], noerr=True):
        return
    owner = parsed.vmid
    if parsed.vtype in ("iso", "vztmpl", "import"):  # templates and ISOs may be sensitive: at least read access
        caller.check_any(f"/storage/{sid}", ["Datastore.AllocateSpace", "Datastore.Audit"])
    elif owner is not None and vmid is not None and as_int(owner, -1) == as_int(vmid, -2):
        pass  # the guest's own volume
    elif parsed.vtype == "backup" and owner:
        caller.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])
        caller.check(f"/vms/{owner}", ["VM.Backup"])
    elif parsed.vtype in ("images", "rootdir") and owner:
        caller.check(f"/storage/{sid}", ["Datastore.Audit"])
        caller.check(f"/vms/{owner}", ["VM.Config.Disk"])
    else:
        raise PveApiError(500, f"missing privileges to access {volid}")


def check_vnet_access(caller: Caller, bridge: str, tag: Any, trunks: Any) -> None:
    """PVE::GuestHelpers::check_vnet_access: SDN.Use on the bridge, or on each VLAN a NIC uses of it."""
    base = f"/sdn/zones/localnetwork/{bridge}"  # SDN vnets (other zones) are not in the model
    if _perl_true(tag):
        caller.check(f"{base}/{tag}", ["SDN.Use"])
    if _perl_true(trunks):
        tags: set[str] = set()
        for trunk in str(trunks).split(";"):  # get_tags_from_trunk: "10;20-22"
            first, _, last = trunk.partition("-")
            if last and as_int(last) > as_int(first):
                tags.update(str(t) for t in range(as_int(first), as_int(last) + 1))
            else:
                tags.add(first)
        for vlan in sorted(tags):  # Perl's sort keys: as strings
            caller.check(f"{base}/{vlan}", ["SDN.Use"])
    if not (_perl_true(tag) or _perl_true(trunks)):
        caller.check(base, ["SDN.Use"])


def check_bridge_access(caller: Caller, kind: str, settings: Mapping[str, Any]) -> None:
    """QemuServer::check_bridge_access / LXC::check_bridge_access: every NIC's bridge (root@pam: none)."""
    if caller.is_root:
        return
    for key in sorted(settings):
        if _numbered(key, "net"):
            nic = _props(settings[key], "model" if kind == "qemu" else None)
            if nic.get("bridge") is not None:
                check_vnet_access(caller, nic["bridge"], nic.get("tag"), nic.get("trunks"))


def root_only_options(*names: str) -> CheckFn:
    """Parameters a handler takes only from root@pam (``skiplock``, ``keepActive``, ...): a 400 naming the first."""
    def check(model: ClusterModel, call: Call, caller: Caller) -> None:
        if caller.is_root:
            return
        for name in names:
            if _perl_true(call.params.get(name)):
                raise PveApiError(400, "Parameter verification failed.", {name: "Only root may use this option."})

    return check


def both(*checks: CheckFn) -> CheckFn:
    def check(model: ClusterModel, call: Call, caller: Caller) -> None:
        for one in checks:
            one(model, call, caller)

    return check


# --- QEMU: configuration (Qemu.pm) ------------------------------------------------------------------------


def check_vm_modify_config_perm(caller: Caller, vmid: Any, pool: str | None, keys: Iterable[str]) -> None:
    """Qemu.pm $check_vm_modify_config_perm: the privilege each option class needs; an unknown option is root's."""
    if caller.is_root:
        return
    for opt in keys:
        if is_qemu_drive_key(opt) or opt == "cdrom" or opt == "tags" or any(
                _numbered(opt, p) for p in ("unused", "serial", "usb", "hostpci", "virtiofs")):
            continue  # value-dependent: checked where the value is known
        if opt in _CPU_OPTIONS or _numbered(opt, "numa"):
            caller.check_vm_perm(vmid, pool, ["VM.Config.CPU"])
        elif opt in _MEMORY_OPTIONS:
            caller.check_vm_perm(vmid, pool, ["VM.Config.Memory"])
        elif opt in _HWTYPE_OPTIONS:
            caller.check_vm_perm(vmid, pool, ["VM.Config.HWType"])
        elif opt in _GENERAL_OPTIONS:
            caller.check_vm_perm(vmid, pool, ["VM.Config.Options"])
            if opt == "startup":  # it changes host behaviour
                caller.check_full("/", ["Sys.Modify"])
        elif opt in _POWER_OPTIONS:
            caller.check_vm_perm(vmid, pool, ["VM.PowerMgmt"])
        elif opt in _DISK_OPTIONS:
            caller.check_vm_perm(vmid, pool, ["VM.Config.Disk"])
        elif _numbered(opt, "net") or opt == "running-nets-host-mtu":
            caller.check_vm_perm(vmid, pool, ["VM.Config.Network"])
        elif opt in _CLOUDINIT_OPTIONS or _numbered(opt, "ipconfig"):
            caller.check_vm_perm(vmid, pool, ["VM.Config.Cloudinit", "VM.Config.Network"], any=True)
        elif opt == "vmstate":
            caller.check_vm_perm(vmid, pool, ["VM.Config.Disk", "VM.PowerMgmt"])
        else:  # args, hookscript, affinity, lock, vmgenid, ... and every option added later
            raise PveApiError(500, f"only root can set '{opt}' config")


def _qemu_drive(key: str, value: Any) -> Any:
    try:
        return parse_qemu_drive(key, str(value))
    except DriveError:
        return None


def check_storage_access(model: ClusterModel, caller: Caller, vmid: Any, settings: Mapping[str, Any], default_storage: Any = None) -> None:
    """Qemu.pm $check_storage_access: a new disk needs Datastore.AllocateSpace, an existing volume access to it."""
    for key in sorted(settings):
        if not is_qemu_drive_key(key) or (drive := _qemu_drive(key, settings[key])) is None:
            continue
        volid = drive.file
        if not volid or volid in ("none", "cloudinit") or volid.endswith(":cloudinit"):
            continue
        if drive.is_cdrom and volid == "cdrom":  # the host's drive
            caller.check("/", ["Sys.Console"])
        elif not drive.is_cdrom and (sid := _new_disk_storage(volid, default_storage)):
            caller.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])
        else:
            check_volume_access(model, caller, vmid, volid)
    for key in sorted(settings):
        if is_unused_key(key):
            check_volume_access(model, caller, vmid, str(settings[key]), "images")
    if settings.get("vmstatestorage") is not None:
        caller.check(f"/storage/{settings['vmstatestorage']}", ["Datastore.AllocateSpace"])


def _new_disk_storage(volid: str, default_storage: Any) -> str | None:
    """QemuServer::Drive $NEW_DISK_RE: ``STORAGE:SIZE`` (or a bare size, on the create call's ``storage``)."""
    request = vols.new_disk_request(volid)
    if request is not None:
        return request[0]
    if not _SIZE_GIB.fullmatch(volid):
        return None
    if not default_storage:
        raise PveApiError(500, "no storage ID specified (and no default storage)")
    return str(default_storage)


def _check_drive_perms(caller: Caller, vmid: Any, key: str, value: Any) -> None:
    """update_vm_api $check_drive_perms: a cloud-init drive, a CD-ROM, or a disk."""
    drive = _qemu_drive(key, value)
    if drive is None:
        return
    if drive.is_cloudinit:
        caller.check_vm_perm(vmid, None, ["VM.Config.Cloudinit", "VM.Config.CDROM"])
    elif drive.is_cdrom:
        caller.check_vm_perm(vmid, None, ["VM.Config.CDROM"])
    else:
        caller.check_vm_perm(vmid, None, ["VM.Config.Disk"])


def _check_usb(caller: Caller, vmid: Any, pool: str | None, key: str, value: Any) -> None:
    """Qemu.pm check_usb_perm: a USB host device is root's, a mapped one needs Mapping.Use."""
    if caller.is_root:
        return
    caller.check_vm_perm(vmid, pool, ["VM.Config.HWType"])
    device = _props(value, "host")
    if device.get("host"):
        if device["host"].lower() != "spice":
            raise PveApiError(500, f"only root can set '{key}' config for real devices")
    elif device.get("mapping"):
        caller.check_full(f"/mapping/usb/{device['mapping']}", ["Mapping.Use"])
    else:
        raise PveApiError(500, "either 'host' or 'mapping' must be set.")


def _check_hostpci(caller: Caller, vmid: Any, pool: str | None, key: str, value: Any) -> None:
    """Qemu.pm check_hostpci_perm: an unmapped PCI device and a ROM file are root's."""
    if caller.is_root:
        return
    device = _props(value, "host")
    if device.get("host"):
        raise PveApiError(500, f"only root can set '{key}' config for non-mapped devices")
    if device.get("mapping"):
        caller.check_full(f"/mapping/pci/{device['mapping']}", ["Mapping.Use"])
        caller.check_vm_perm(vmid, pool, ["VM.Config.HWType"])
    else:
        raise PveApiError(500, "either 'host' or 'mapping' must be set.")
    if device.get("romfile") is not None:
        raise PveApiError(400, "Parameter verification failed.", {key: "only root@pam can set 'romfile' option"})


def _check_rng(caller: Caller, vmid: Any, pool: str | None, key: str, value: Any) -> None:
    """Qemu.pm check_rng_perm: the host's hardware RNG needs Mapping.Use on /mapping/hwrng."""
    if caller.is_root:
        return
    caller.check_vm_perm(vmid, pool, ["VM.Config.HWType"])
    if _props(value, "source").get("source") == "/dev/hwrng":
        caller.check_full("/mapping/hwrng", ["Mapping.Use"])


def _check_virtiofs(caller: Caller, vmid: Any, pool: str | None, key: str, value: Any) -> None:
    """Qemu.pm check_dir_perm: a shared directory needs VM.Config.Disk and Mapping.Use on it."""
    if caller.is_root:
        return
    caller.check_vm_perm(vmid, pool, ["VM.Config.Disk"])
    caller.check_full(f"/mapping/dir/{_props(value, 'dirid').get('dirid')}", ["Mapping.Use"])


# The devices whose permission depends on the value (usb host vs mapping, ...), by key prefix.
_DEVICE_CHECKS: dict[str, Callable[[Caller, Any, str | None, str, Any], None]] = {
    "usb": _check_usb, "hostpci": _check_hostpci, "rng": _check_rng, "virtiofs": _check_virtiofs}


def _device_check(key: str) -> Callable[[Caller, Any, str | None, str, Any], None] | None:
    return next((check for prefix, check in _DEVICE_CHECKS.items() if _numbered(key, prefix)), None)


def _check_cpu_model(caller: Caller, new: Mapping[str, Any], existing: Mapping[str, Any] | None) -> None:
    """Qemu.pm $check_cpu_model_access: a new custom CPU model needs Mapping.Use on /mapping/cpu/<name>."""
    if new.get("cpu") is None:
        return
    cputype = _props(new["cpu"], "cputype").get("cputype")
    if not cputype:
        return
    if existing and existing.get("cpu") and _props(existing["cpu"], "cputype").get("cputype") == cputype:
        return
    if cputype.startswith("custom-"):
        caller.check(f"/mapping/cpu/{cputype.removeprefix('custom-')}", ["Mapping.Use"])


def _check_tags(caller: Caller, vmid: Any) -> None:
    """GuestHelpers::assert_tag_permissions with datacenter.cfg's defaults (any tag; none registered)."""
    caller.check_vm_perm(vmid, None, ["VM.Config.Options"])


def _config_settings(params: Mapping[str, Any], extracted: frozenset[str]) -> dict[str, Any]:
    """The options a call sets, ``cdrom`` as ``ide2`` ($resolve_cdrom_alias)."""
    settings = {k: v for k, v in params.items() if k not in extracted}
    if _perl_true(settings.get("cdrom")):
        value = str(settings.pop("cdrom"))
        settings["ide2"] = value if "media=" in value else f"{value},media=cdrom"
    return settings


def _check_allocate(caller: Caller, vmid: Any, pool: Any, restore_over: bool = False) -> None:
    """create_vm (both): VM.Allocate on the new guest or on its pool, else a bare raise_perm_exc(); restoring over
    an existing guest (archive/restore with force) is enough with VM.Backup on it."""
    if restore_over and caller.check(f"/vms/{vmid}", ["VM.Backup"], noerr=True):
        return
    if not (caller.check(f"/vms/{vmid}", ["VM.Allocate"], noerr=True)
            or pool and caller.check(f"/pool/{pool}", ["VM.Allocate"], noerr=True)):
        raise permission_error()


def check_qemu_create(model: ClusterModel, call: Call, caller: Caller) -> None:
    """Qemu.pm create_vm: VM.Allocate on the guest or its pool, then what each option needs."""
    p = call.params
    vmid, pool = p["vmid"], p.get("pool")
    if pool is not None:
        caller.check_pool_exist(str(pool))
    if p.get("storage") is not None:
        caller.check(f"/storage/{p['storage']}", ["Datastore.AllocateSpace"])
    if _perl_true(p.get("ha-managed")):
        caller.check("/", ["Sys.Console"])
    if _perl_true(p.get("start")):  # the create worker starts it directly: VM.PowerMgmt up front
        caller.check_vm_perm(vmid, pool, ["VM.PowerMgmt"])
    _check_allocate(caller, vmid, pool, _perl_true(p.get("archive")) and _perl_true(p.get("force")) and as_int(vmid) in model.guests)
    if _perl_true(p.get("archive")):
        return
    settings = _config_settings(p, _QEMU_CREATE_PARAMS)
    if not settings:
        return
    check_storage_access(model, caller, vmid, settings, p.get("storage"))
    check_vm_modify_config_perm(caller, vmid, pool, sorted(settings))
    if not caller.is_root:
        for key in sorted(settings):
            if _numbered(key, "serial"):  # $check_vm_create_serial_perm
                if settings[key] != "socket":
                    raise PveApiError(500, f"only root can set '{key}' config for real devices")
                caller.check_vm_perm(vmid, pool, ["VM.Config.HWType"])
        for key in sorted(settings):
            if _numbered(key, "usb"):
                _check_usb(caller, vmid, pool, key, settings[key])
        for key in sorted(settings):
            if _numbered(key, "hostpci"):
                _check_hostpci(caller, vmid, pool, key, settings[key])
        if settings.get("rng0"):
            _check_rng(caller, vmid, pool, "rng0", settings["rng0"])
        for key in sorted(settings):
            if _numbered(key, "virtiofs") and settings[key]:
                _check_virtiofs(caller, vmid, pool, key, settings[key])
    check_bridge_access(caller, "qemu", settings)
    _check_cpu_model(caller, settings, None)


def check_qemu_config(model: ClusterModel, call: Call, caller: Caller) -> None:
    """Qemu.pm update_vm_api (PUT and POST .../config): each option's class, volumes and bridges, then,
    with the config loaded, what the old and new values of drives and devices need."""
    root_only_options("skiplock")(model, call, caller)  # extracted and checked first, then "no options specified"
    check_options_given(call)
    p = call.params
    vmid = call.path_params["vmid"]
    settings = _config_settings(p, _QEMU_UPDATE_PARAMS)
    deletes = ["ide2" if key == "cdrom" else key for key in split_list(p.get("delete"))]
    check_vm_modify_config_perm(caller, vmid, None, deletes)
    check_vm_modify_config_perm(caller, vmid, None, sorted(settings))
    check_storage_access(model, caller, vmid, settings)
    check_bridge_access(caller, "qemu", settings)
    g = guest_at(model, call)  # load_config: the errors PVE gives before the checks below
    check_digest(g, call)
    _check_cpu_model(caller, settings, g.config)
    check_lock(g, call)
    if caller.is_root:
        return
    conf = g.config
    for key in deletes:  # the delete loop of $updatefn
        value = conf.get(key)
        if value is None:
            continue
        if is_unused_key(key):
            caller.check_vm_perm(vmid, None, ["VM.Config.Disk"])
        elif is_qemu_drive_key(key):
            _check_drive_perms(caller, vmid, key, value)
        elif _numbered(key, "serial"):
            if value == "socket":
                caller.check_vm_perm(vmid, None, ["VM.Config.HWType"])
            else:
                raise PveApiError(500, f"only root can delete '{key}' config for real devices")
        elif (device := _device_check(key)) is not None:
            device(caller, vmid, None, key, value)
        elif key == "tags":
            _check_tags(caller, vmid)
        elif _numbered(key, "net"):
            check_bridge_access(caller, "qemu", {key: value})
    for key in sorted(settings):  # the add/change loop
        value, old = settings[key], conf.get(key)
        if is_qemu_drive_key(key):
            if old:
                _check_drive_perms(caller, vmid, key, old)
            _check_drive_perms(caller, vmid, key, value)
        elif _numbered(key, "serial"):
            if (old is None or old == "socket") and value == "socket":
                caller.check_vm_perm(vmid, None, ["VM.Config.HWType"])
            else:
                raise PveApiError(500, f"only root can modify '{key}' config for real devices")
        elif (device := _device_check(key)) is not None:
            for each in ([old] if old else []) + [value]:  # the old device too: replacing it needs its privilege
                device(caller, vmid, None, key, each)
        elif key == "tags":
            _check_tags(caller, vmid)
        elif _numbered(key, "net") and old:
            check_bridge_access(caller, "qemu", {key: old})


# --- QEMU: other endpoints ----------------------------------------------------------------------------------


def check_qemu_resize(model: ClusterModel, call: Call, caller: Caller) -> None:
    """Qemu.pm resize_vm: Datastore.AllocateSpace on the disk's storage (after its config checks)."""
    root_only_options("skiplock")(model, call, caller)
    g = guest_at(model, call)
    check_digest(g, call)
    check_lock(g, call)
    drive = _qemu_drive(str(call.params["disk"]), g.config.get(str(call.params["disk"]), ""))
    if drive is not None and not drive.is_cdrom:
        try:
            sid, _ = parse_volume_id(drive.file)
        except VolumeError:
            return
        caller.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])


def check_move_disk(model: ClusterModel, call: Call, caller: Caller) -> None:
    """Qemu.pm move_vm_disk / LXC.pm move_volume: VM.Config.Disk on a target guest, AllocateSpace on a target storage."""
    p = call.params
    if p.get("target-vmid") and p.get("storage"):
        return  # PVE's parameter error, which the semantics give too
    if p.get("target-vmid"):
        if not caller.is_root:
            caller.check_vm_perm(p["target-vmid"], None, ["VM.Config.Disk"])
    elif p.get("storage"):
        caller.check(f"/storage/{p['storage']}", ["Datastore.AllocateSpace"])


def check_rollback(model: ClusterModel, call: Call, caller: Caller) -> None:
    """Qemu.pm rollback: starting the VM afterwards needs VM.PowerMgmt too (the worker starts it directly)."""
    if _perl_true(call.params.get("start")):
        caller.check(f"/vms/{call.path_params['vmid']}", ["VM.PowerMgmt"])


def check_qemu_clone(model: ClusterModel, call: Call, caller: Caller) -> None:
    """Qemu.pm clone_vm: the pool, then every volume's storage, mapped devices, bridges and the CPU model."""
    p = call.params
    if p.get("pool") is not None:
        caller.check_pool_exist(str(p["pool"]))
    g = guest_at(model, call)
    check_lock(g, call)
    conf = g.config
    storage = p.get("storage")
    for key in sorted(conf):  # $check_storage_access_clone
        drive = _qemu_drive(key, conf[key]) if is_qemu_drive_key(key) else None
        if drive is None or not drive.file or drive.file == "none":
            continue
        if drive.is_cdrom:
            if drive.file == "cdrom":
                caller.check("/", ["Sys.Console"])
            continue
        try:
            sid = str(storage) if storage else parse_volume_id(drive.file)[0]
        except VolumeError:
            raise PveApiError(500, f"unable to parse volume ID '{drive.file}'") from None
        caller.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])
    if conf.get("vmstatestorage") is not None:
        caller.check(f"/storage/{conf['vmstatestorage']}", ["Datastore.AllocateSpace"])
    if not caller.is_root:  # QemuServer::check_mapping_access
        for key in sorted(conf):
            if _numbered(key, "usb"):
                device = _props(conf[key], "host")
                if device.get("host") and device["host"].lower() != "spice":
                    raise PveApiError(500, f"only root can set '{key}' config for real devices")
                if device.get("mapping"):
                    caller.check_full(f"/mapping/usb/{device['mapping']}", ["Mapping.Use"])
            elif _numbered(key, "hostpci"):
                device = _props(conf[key], "host")
                if device.get("host"):
                    raise PveApiError(500, f"only root can set '{key}' config for non-mapped devices")
                if device.get("mapping"):
                    caller.check_full(f"/mapping/pci/{device['mapping']}", ["Mapping.Use"])
    check_bridge_access(caller, "qemu", conf)
    _check_cpu_model(caller, conf, None)


# --- containers (PVE/LXC.pm, API2/LXC.pm, API2/LXC/Config.pm) ----------------------------------------------


def _features(value: Any) -> dict[str, str]:
    return _props(value, None) if value else {}


def check_ct_modify_config_perm(model: ClusterModel, caller: Caller, vmid: Any, pool: str | None, old: Mapping[str, Any] | None,
                                new: Mapping[str, Any], deletes: list[str], unprivileged: bool) -> None:
    """PVE::LXC::check_ct_modify_config_perm: each option's privilege; bind mounts, devices, hook scripts and
    feature flags (but nesting) are root@pam's, and so is every feature of a privileged container."""
    if caller.is_root:
        return

    def check(opt: str, delete: bool) -> None:
        if opt in ("cores", "cpuunits", "cpulimit"):
            caller.check_vm_perm(vmid, pool, ["VM.Config.CPU"])
        elif opt == "rootfs" or _numbered(opt, "mp"):
            caller.check_vm_perm(vmid, pool, ["VM.Config.Disk"])
            if delete:
                return
            try:
                mount = parse_lxc_volume(opt, str(new[opt]))
            except DriveError:
                return  # the semantics refuse the value as PVE's parser does
            if mount.type != "volume":
                raise permission_error(f"mount point type {mount.type} is only allowed for root@pam")
            if (request := _lxc_new_disk(mount.volume)) is not None:
                caller.check(f"/storage/{request}", ["Datastore.AllocateSpace"])
            else:
                check_volume_access(model, caller, vmid, mount.volume, "rootdir")
        elif opt in ("memory", "swap"):
            caller.check_vm_perm(vmid, pool, ["VM.Config.Memory"])
        elif _numbered(opt, "net"):
            caller.check_vm_perm(vmid, pool, ["VM.Config.Network"])
            for conf in (old, new):
                if conf and conf.get(opt):
                    check_bridge_access(caller, "lxc", {opt: conf[opt]})
        elif _numbered(opt, "dev"):
            raise permission_error("configuring device passthrough is only allowed for root@pam")
        elif opt in ("nameserver", "searchdomain", "hostname"):
            caller.check_vm_perm(vmid, pool, ["VM.Config.Network"])
        elif opt == "features":
            if not unprivileged:
                raise permission_error("changing feature flags for privileged container is only allowed for root@pam")
            before, after = _features((old or {}).get(opt)), ({} if delete else _features(new.get(opt)))
            if delete or not before:
                changed = set(after if not delete else before)
            else:
                changed = {f for f in set(before) | set(after) if before.get(f, "") != after.get(f, "")}
            if changed - {"nesting"}:
                raise permission_error("changing feature flags (except nesting) is only allowed for root@pam")
            if changed:
                caller.check_vm_perm(vmid, pool, ["VM.Allocate"])
        elif opt == "hookscript":
            raise permission_error("changing the hookscript is only allowed for root@pam")
        elif opt == "tags":
            _check_tags(caller, vmid)
        else:
            caller.check_vm_perm(vmid, pool, ["VM.Config.Options"])

    for opt in sorted(new):
        check(opt, False)
    for opt in deletes:
        check(opt, True)


def _lxc_new_disk(volume: str) -> str | None:
    """PVE::LXC $NEW_DISK_RE (``STORAGE:SIZE``): the storage a new volume is allocated on."""
    sid, colon, size = volume.partition(":")
    return sid if colon and sid and not any(c.isspace() for c in sid) and _SIZE_GIB.fullmatch(size) else None


def check_lxc_create(model: ClusterModel, call: Call, caller: Caller) -> None:
    """LXC.pm create_vm: a privileged container needs Sys.Modify on /, then VM.Allocate, each option,
    the template, and AllocateSpace on every storage a volume is allocated on."""
    p = call.params
    vmid, pool = p["vmid"], p.get("pool")
    restore = _perl_true(p.get("restore"))
    unprivileged = p.get("unprivileged")
    if not restore:
        unprivileged = 1 if unprivileged is None else unprivileged
        if not _perl_true(unprivileged):
            caller.check("/", ["Sys.Modify"])
    if _perl_true(p.get("ha-managed")):
        caller.check("/", ["Sys.Console"])
    if pool is not None:
        caller.check_pool_exist(str(pool))
    _check_allocate(caller, vmid, pool, restore and _perl_true(p.get("force")) and as_int(vmid) in model.guests)
    settings = {k: v for k, v in p.items() if k not in _LXC_CREATE_PARAMS}
    check_ct_modify_config_perm(model, caller, vmid, pool, None, settings, [], _perl_true(unprivileged))
    check_volume_access(model, caller, vmid, str(p["ostemplate"]), "backup" if restore else "vztmpl")
    storage = str(p.get("storage") or "local")
    volumes = [k for k in settings if k == "rootfs" or _numbered(k, "mp")]
    for key in sorted(volumes):  # $check_and_activate_storage for each volume mount point
        value = str(settings[key])
        try:
            mount = parse_lxc_volume(key, f"{storage}:{value}" if _SIZE_GIB.fullmatch(value) else value)
        except DriveError:
            continue
        if mount.type != "volume":
            if not caller.is_root:
                raise PveApiError(500, "Only root can pass arbitrary filesystem paths.")
            continue
        try:
            sid, _ = parse_volume_id(mount.volume)
        except VolumeError:
            continue
        caller.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])
    if "rootfs" not in settings:  # the default storage holds the root file system
        caller.check(f"/storage/{storage}", ["Datastore.AllocateSpace"])


def check_lxc_config(model: ClusterModel, call: Call, caller: Caller) -> None:
    """LXC/Config.pm update_vm: with the config loaded and checked, what deleting, reverting and setting needs."""
    check_options_given(call)
    g = guest_at(model, call)
    check_lock(g, call)
    check_digest(g, call)
    p = call.params
    unprivileged = _perl_true(g.config.get("unprivileged"))
    vmid = g.vmid
    check_ct_modify_config_perm(model, caller, vmid, None, g.config, {}, split_list(p.get("delete")), unprivileged)
    check_ct_modify_config_perm(model, caller, vmid, None, g.config, {}, split_list(p.get("revert")), unprivileged)
    settings = {k: v for k, v in p.items() if k not in ("delete", "revert", "digest")}
    check_ct_modify_config_perm(model, caller, vmid, None, g.config, settings, [], unprivileged)


def check_lxc_resize(model: ClusterModel, call: Call, caller: Caller) -> None:
    """LXC.pm resize_vm: ``disk`` goes through check_ct_modify_config_perm (so VM.Config.Options), then
    Datastore.AllocateSpace on the volume's storage."""
    g = guest_at(model, call)
    check_lock(g, call)
    disk = str(call.params["disk"])
    check_ct_modify_config_perm(model, caller, g.vmid, None, g.config, {"disk": disk}, [], _perl_true(g.config.get("unprivileged")))
    check_digest(g, call)
    try:
        mount = parse_lxc_volume(disk, str(g.config.get(disk, "")))
        sid, _ = parse_volume_id(mount.volume)
    except (DriveError, VolumeError):
        return
    caller.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])


def check_lxc_clone(model: ClusterModel, call: Call, caller: Caller) -> None:
    """LXC.pm clone_vm: the pool, then Datastore.AllocateSpace on each volume's (or the target) storage."""
    p = call.params
    if p.get("pool") is not None:
        caller.check_pool_exist(str(p["pool"]))
    g: Guest = guest_at(model, call)
    for key in sorted(g.config):
        if key != "rootfs" and not _numbered(key, "mp"):
            continue
        try:
            mount = parse_lxc_volume(key, str(g.config[key]))
            sid = str(p["storage"]) if p.get("storage") is not None else parse_volume_id(mount.volume)[0]
        except (DriveError, VolumeError):
            continue
        if mount.type == "volume":
            caller.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])
