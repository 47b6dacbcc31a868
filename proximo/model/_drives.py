"""Guest drives, mount points and boot order, parsed exactly as qemu-server and pve-container parse them.

The blast-radius analysers ask one question of a guest config: which volumes does it reference, and
which of them does it need to start and to boot? ``guest_volumes`` answers it as qemu-server
(src/PVE/QemuServer.pm ``get_current_vm_volumes``) and pve-container (src/PVE/LXC/Config.pm
``get_vm_volumes``) collect the volumes they activate at start; everything else here is the parsing it
rests on (property strings, sizes, QEMU drives, LXC mount points, QEMU boot order) plus a reader and
writer for the qemu-server config file format. Pure functions only; each cites the Proxmox function
it mirrors (qemu-server e6352be6, pve-container 94f55852, pve-common). The conformance tests in
``tests/test_model_parsers.py`` run Proxmox's own cases against them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Literal

import msgspec

from ..pve._propstring import PropertyStringError, parse_boolean, perl_true, split_property_string
from ._volumes import VolumeError, is_volume_id, parse_volume_id

__all__ = [
    "LXC_VOLUME_KEYS",
    "QEMU_DRIVE_KEYS",
    "UNUSED_KEYS",
    "DriveError",
    "GuestVolume",
    "LxcMount",
    "QemuDrive",
    "boot_disk",
    "boot_indexes",
    "boot_order",
    "format_size",
    "guest_volumes",
    "is_lxc_volume_key",
    "is_qemu_drive_key",
    "is_unused_key",
    "parse_guest_config_file",
    "parse_lxc_volume",
    "parse_property_string",
    "parse_qemu_drive",
    "parse_size",
    "print_property_string",
    "write_guest_config_file",
    "write_pct_config_file",
]


class DriveError(VolumeError):
    """A drive, mount point, property string or config line Proxmox would reject."""


# --- property strings (PVE::JSONSchema) ------------------------------------------------------------

def _split_property_string(value: str, default_key: str | None, aliases: Mapping[str, str]) -> dict[str, str]:
    """The lexical half of PVE::JSONSchema::parse_property_string (proximo.pve._propstring, shared with the API
    schema's check of every call), with its exact error texts, as DriveError."""
    try:
        return split_property_string(value, default_key=default_key, aliases=aliases)
    except PropertyStringError as exc:
        raise DriveError(str(exc)) from None


def parse_property_string(value: str, default_key: str | None) -> dict[str, str]:
    """``a=b,c=d`` to a dict; a bare value goes to ``default_key``. PVE::JSONSchema::parse_property_string
    without a schema: any key is accepted, values stay text."""
    return _split_property_string(value, default_key, {})


def print_property_string(values: Mapping[str, object], default_key: str | None) -> str:
    """The inverse, as PVE::JSONSchema::print_property_string orders it: the default key's bare value
    first, then the other keys sorted. ``None`` values are left out."""
    parts = [str(values[default_key])] if default_key and values.get(default_key) is not None else []
    for key in sorted(values):
        if key != default_key and values[key] is not None:
            text = str(values[key])
            if "," in text:
                raise DriveError(f"illegal value with commas for {key}")
            parts.append(f"{key}={text}")
    return ",".join(parts)


_INTEGER_RE = re.compile(r"[+-]?\d+", re.ASCII)
_NUMBER_RE = re.compile(r"[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?", re.ASCII)


def _parse_boolean(value: str) -> str:
    """PVE::JSONSchema::parse_boolean, falling back to the text itself as parse_property_string does."""
    return parse_boolean(value) or value


@dataclasses.dataclass(frozen=True)
class _Schema:
    """Just enough of a PVE JSON schema to accept and refuse what Proxmox accepts and refuses."""

    keys: frozenset[str]
    default_key: str
    required: frozenset[str] = frozenset()
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)
    booleans: frozenset[str] = frozenset()
    integers: frozenset[str] = frozenset()
    numbers: frozenset[str] = frozenset()
    enums: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    sizes: frozenset[str] = frozenset({"size"})  # format 'disk-size'


def _type_error(key: str, value: str, schema: _Schema) -> str | None:
    """PVE::JSONSchema::check_type / check_prop for one key, or None when the value is fine."""
    if key in schema.booleans and value not in ("0", "1"):
        return f"type check ('boolean') failed - got '{value}'"
    if key in schema.integers and not _INTEGER_RE.fullmatch(value):
        return f"type check ('integer') failed - got '{value}'"
    if key in schema.numbers and not _NUMBER_RE.fullmatch(value):
        return f"type check ('number') failed - got '{value}'"
    if key in schema.enums and value not in schema.enums[key]:
        choices = ", ".join(sorted(schema.enums[key]))
        return f"value '{value}' does not have a value in the enumeration '{choices}'"
    if key in schema.sizes and _SIZE_RE.fullmatch(value) is None:
        return f"invalid format - value '{value}' does not look like a valid disk size"
    return None


def _parse_with_schema(value: str, schema: _Schema) -> dict[str, str]:
    """PVE::JSONSchema::parse_property_string against ``schema``: unknown keys, missing required keys,
    booleans (normalised to "1"/"0"), integers, numbers, enumerations and sizes are checked."""
    raw = _split_property_string(value, schema.default_key, schema.aliases)
    result: dict[str, str] = {}
    for key, val in raw.items():
        if key not in schema.keys:
            raise DriveError(f"invalid key in comma-separated list property: {key}")
        result[key] = _parse_boolean(val) if key in schema.booleans else val
    errors = [f"{key}: property is missing and it is not optional" for key in sorted(schema.required - set(result))]
    errors += [f"{key}: {err}" for key, val in result.items() if (err := _type_error(key, val, schema))]
    if errors:
        raise DriveError("format error - " + "; ".join(errors))
    return result


# --- sizes (PVE::JSONSchema::parse_size / format_size) ------------------------------------------------

_SIZE_RE = re.compile(r"(\d+(\.\d+)?)([KMGT])?", re.ASCII)
_SIZE_FACTORS = {None: 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """``32G`` to bytes. Plain numbers are bytes, K/M/G/T are powers of 1024, decimals are allowed and
    the result is truncated to whole bytes, as PVE::JSONSchema::parse_size does."""
    match = _SIZE_RE.fullmatch(text)
    if match is None:
        raise DriveError(f"unable to parse size '{text}'")
    number, decimals, unit = match.groups()
    if decimals is None:
        return int(number) * _SIZE_FACTORS[unit]  # integer math, exact as Perl's
    return int(float(number) * _SIZE_FACTORS[unit])


def format_size(size: int) -> str:
    """Bytes to the largest exact unit, as PVE prints sizes: ``32G``, ``104858K``, ``512`` (bytes).

    PVE::JSONSchema::format_size; note it prints 0 as ``0T``, and so does this.
    """
    value = int(size)
    for unit in ("", "K", "M", "G"):
        if value % 1024:
            return f"{value}{unit}"
        value //= 1024
    return f"{value}T"


# --- drive keys (PVE::QemuServer::Drive, PVE::LXC::Config) -------------------------------------------

_MAX_IDE, _MAX_SATA, _MAX_SCSI, _MAX_VIRTIO, _MAX_UNUSED = 4, 6, 31, 16, 256
_MAX_NETS = 32  # PVE::QemuServer $MAX_NETS
_MAX_MOUNT_POINTS = 256  # PVE::LXC::Config $MAX_MOUNT_POINTS

# PVE::QemuServer::Drive::valid_drive_names, in its order: "order is important - used to autoselect
# boot disk" (resolve_first_disk, bootorder_from_legacy).
QEMU_DRIVE_KEYS: tuple[str, ...] = (
    *(f"ide{i}" for i in range(_MAX_IDE)),
    *(f"scsi{i}" for i in range(_MAX_SCSI)),
    *(f"virtio{i}" for i in range(_MAX_VIRTIO)),
    *(f"sata{i}" for i in range(_MAX_SATA)),
    "efidisk0",
    "tpmstate0",
)
_QEMU_DRIVE_KEY_SET = frozenset(QEMU_DRIVE_KEYS)
UNUSED_KEYS: tuple[str, ...] = tuple(f"unused{i}" for i in range(_MAX_UNUSED))
_UNUSED_KEY_SET = frozenset(UNUSED_KEYS)
# PVE::LXC::Config::valid_volume_keys: rootfs first, then the mount points.
LXC_VOLUME_KEYS: tuple[str, ...] = ("rootfs", *(f"mp{i}" for i in range(_MAX_MOUNT_POINTS)))
_LXC_VOLUME_KEY_SET = frozenset(LXC_VOLUME_KEYS)
_KEY_ORDER = {key: n for keys in (QEMU_DRIVE_KEYS, UNUSED_KEYS, LXC_VOLUME_KEYS) for n, key in enumerate(keys)}


def _present(config: Mapping[str, object], keys: frozenset[str]) -> list[str]:
    """The keys of ``keys`` that ``config`` has, in PVE's order for them: a config has a dozen keys, where the
    possible ones run to hundreds (unused0..unused255, mp0..mp255), so the config's are the ones walked."""
    return sorted((key for key in config if key in keys), key=_KEY_ORDER.__getitem__)


def is_qemu_drive_key(key: str) -> bool:
    """ide0-3, scsi0-30, virtio0-15, sata0-5, efidisk0, tpmstate0 (PVE's is_valid_drivename)."""
    return key in _QEMU_DRIVE_KEY_SET


def is_unused_key(key: str) -> bool:
    """unused0-255: volumes a guest owns but does not attach."""
    return key in _UNUSED_KEY_SET


def is_lxc_volume_key(key: str) -> bool:
    """rootfs and mp0-255."""
    return key in _LXC_VOLUME_KEY_SET


# --- QEMU drives (PVE::QemuServer::Drive::parse_drive) -------------------------------------------------

_THROTTLE_INTEGERS = frozenset(
    f"{what}{direction}{suffix}"
    for what in ("bps", "iops")
    for direction in ("", "_rd", "_wr")
    for suffix in ("", "_max", "_max_length")
) - {"bps_max", "bps_rd_max", "bps_wr_max"}  # the byte pools exist only as mbps_*_max
_THROTTLE_NUMBERS = frozenset(f"mbps{d}{s}" for d in ("", "_rd", "_wr") for s in ("", "_max"))
_DRIVE_ENUMS: Mapping[str, frozenset[str]] = {
    "media": frozenset({"cdrom", "disk"}),
    "trans": frozenset({"none", "lba", "auto"}),
    "cache": frozenset({"none", "writethrough", "writeback", "unsafe", "directsync"}),
    "format": frozenset({"raw", "qcow", "qed", "qcow2", "vmdk", "cloop"}),
    "rerror": frozenset({"ignore", "report", "stop"}),
    "werror": frozenset({"enospc", "ignore", "report", "stop"}),
    "aio": frozenset({"native", "threads", "io_uring"}),
    "discard": frozenset({"ignore", "on"}),
    "efitype": frozenset({"2m", "4m"}),
    "ms-cert": frozenset({"2011", "2023", "2023w"}),
    "version": frozenset({"v1.2", "v2.0"}),
}
_DRIVE_BOOLEANS = frozenset(
    [
        "snapshot",
        "backup",
        "replicate",
        "detect_zeroes",
        "shared",
        "iothread",
        "ro",
        "scsiblock",
        "ssd",
        "pre-enrolled-keys",
    ]
)
# %drivedesc_base, with the legacy throttle aliases
_BASE_DRIVE_KEYS = (
    frozenset(
        [
            "file",
            "media",
            "cyls",
            "heads",
            "secs",
            "trans",
            "snapshot",
            "cache",
            "format",
            "size",
            "backup",
            "replicate",
            "rerror",
            "werror",
            "aio",
            "discard",
            "detect_zeroes",
            "serial",
            "shared",
        ]
    )
    | _THROTTLE_INTEGERS
    | _THROTTLE_NUMBERS
)
_DRIVE_ALIASES = {
    "volume": "file",
    "bps_rd_length": "bps_rd_max_length",
    "bps_wr_length": "bps_wr_max_length",
    "iops_rd_length": "iops_rd_max_length",
    "iops_wr_length": "iops_wr_max_length",
}


def _drive_schema(keys: frozenset[str]) -> _Schema:
    return _Schema(
        keys=keys,
        default_key="file",
        required=frozenset({"file"}),
        aliases=_DRIVE_ALIASES,
        booleans=_DRIVE_BOOLEANS & keys,
        integers=(_THROTTLE_INTEGERS | {"cyls", "heads", "secs", "queues"}) & keys,
        numbers=_THROTTLE_NUMBERS & keys,
        enums={k: v for k, v in _DRIVE_ENUMS.items() if k in keys},
    )


# $ide_fmt, $scsi_fmt, $sata_fmt, $virtio_fmt, $efidisk_fmt, $tpmstate_fmt, $unused_fmt
_DRIVE_SCHEMAS: Mapping[str, _Schema] = {
    "ide": _drive_schema(_BASE_DRIVE_KEYS | {"model", "ssd", "wwn"}),
    "scsi": _drive_schema(
        _BASE_DRIVE_KEYS | {"iothread", "product", "queues", "ro", "scsiblock", "ssd", "vendor", "wwn"}
    ),
    "sata": _drive_schema(_BASE_DRIVE_KEYS | {"ssd", "wwn"}),
    "virtio": _drive_schema(_BASE_DRIVE_KEYS | {"iothread", "ro"}),
    "efidisk": _drive_schema(frozenset({"file", "format", "size", "efitype", "pre-enrolled-keys", "ms-cert"})),
    "tpmstate": _drive_schema(frozenset({"file", "size", "version"})),
    "unused": _drive_schema(frozenset({"file"})),
}

# PVE::QemuServer::Drive::drive_is_cloudinit ($QEMU_FORMAT_RE = raw|qcow|qcow2|qed|vmdk|cloop)
_CLOUDINIT_RE = re.compile(r"[:/](?:vm-\d+-)?cloudinit(?:\.(?:raw|qcow|qcow2|qed|vmdk|cloop))?$", re.ASCII)
_DRIVE_KEY_RE = re.compile(r"([^\d]+)(\d+)", re.ASCII)


class QemuDrive(msgspec.Struct, frozen=True):
    """One parsed QEMU drive line (``scsi0: local-lvm:vm-100-disk-0,size=32G``)."""

    key: str  # scsi0
    interface: str  # ide, scsi, virtio, sata, efidisk, tpmstate, unused
    index: int
    file: str  # a volume id, 'none', 'cdrom' or an absolute path
    media: Literal["disk", "cdrom"] = "disk"
    size: int | None = None  # bytes
    options: dict[str, str] = {}  # every other property, booleans as "1"/"0"

    @property
    def is_cdrom(self) -> bool:
        """PVE::QemuServer::Drive::drive_is_cdrom."""
        return self.media == "cdrom"

    @property
    def is_cloudinit(self) -> bool:
        """PVE::QemuServer::Drive::drive_is_cloudinit: a cloud-init image, e.g. ``vm-100-cloudinit``."""
        return _CLOUDINIT_RE.search(self.file) is not None

    @property
    def volid(self) -> str | None:
        """The storage volume behind the drive, or None for ``none``, ``cdrom`` and paths."""
        return self.file if is_volume_id(self.file) else None


def _split_drive_key(key: str) -> tuple[str, int]:
    match = _DRIVE_KEY_RE.fullmatch(key)
    if match is None or not (is_qemu_drive_key(key) or is_unused_key(key)):
        raise DriveError(f"invalid drive key: {key}")
    return match.group(1), int(match.group(2))


def _qemu_drive_properties(key: str, value: str) -> dict[str, str]:
    """Schema-level parse of a drive string (what check_format does when a config is read)."""
    interface, _ = _split_drive_key(key)
    props = _parse_with_schema(value, _DRIVE_SCHEMAS[interface])
    file = props["file"]
    if interface == "unused" and not is_volume_id(file):  # format pve-volume-id
        raise DriveError(f"unable to parse volume ID '{file}'")
    if file not in ("none", "cdrom") and not file.startswith("/") and not is_volume_id(file):
        # format pve-volume-id-or-qm-path (verify_volume_id_or_qm_path)
        raise DriveError(f"unable to parse volume ID '{file}'")
    return props


# parse_drive: "can't use the schema's 'requires' because of the mbps* => bps* transforming aliases"
_THROTTLE_REQUIREMENTS = (
    ("mbps_max", "mbps"), ("mbps_rd_max", "mbps_rd"), ("mbps_wr_max", "mbps_wr"),
    ("bps_max_length", "mbps_max"), ("bps_rd_max_length", "mbps_rd_max"), ("bps_wr_max_length", "mbps_wr_max"),
    ("iops_max_length", "iops_max"), ("iops_rd_max_length", "iops_rd_max"), ("iops_wr_max_length", "iops_wr_max"),
)  # fmt: skip
_THROTTLE_CONFLICTS = (("mbps_rd", "mbps"), ("mbps_wr", "mbps"), ("iops_rd", "iops"), ("iops_wr", "iops"))
_CDROM_FORBIDDEN = ("snapshot", "trans", "format", "heads", "secs", "cyls")


def _check_drive_semantics(interface: str, props: Mapping[str, str]) -> None:
    """The checks parse_drive makes after the schema (PVE returns undef for these; we say why)."""
    for option, requires in _THROTTLE_REQUIREMENTS:
        if perl_true(props.get(option)) and not perl_true(props.get(requires)):
            raise DriveError(f"{option} requires {requires}")
    for one, other in _THROTTLE_CONFLICTS:
        if perl_true(props.get(one)) and perl_true(props.get(other)):
            raise DriveError(f"{one} and {other} are mutually exclusive")
    if props.get("media") != "cdrom":
        return
    if interface == "virtio":
        raise DriveError("a CD-ROM cannot be a virtio drive")
    if forbidden := [k for k in _CDROM_FORBIDDEN if perl_true(props.get(k))]:
        raise DriveError(f"a CD-ROM cannot have {', '.join(forbidden)}")


def parse_qemu_drive(key: str, value: str) -> QemuDrive:
    """Parse a QEMU drive line: PVE::QemuServer::Drive::parse_drive ($with_alloc unset). ``unusedN``
    values are bare volume ids (PVE::QemuConfig->parse_volume). Raises DriveError where PVE returns
    undef or dies.

    Not modelled: PVE rewrites ``bps*`` into ``mbps*`` (with a bug that yields 0.000); they are kept as
    written in ``options``.
    """
    interface, index = _split_drive_key(key)
    props = _qemu_drive_properties(key, value)
    _check_drive_semantics(interface, props)
    size = parse_size(props["size"]) if "size" in props else None
    media = "cdrom" if props.get("media") == "cdrom" else "disk"
    options = {k: v for k, v in props.items() if k not in ("file", "media", "size")}
    return QemuDrive(key, interface, index, props["file"], media, size, options)


# --- LXC mount points (PVE::LXC::Config->parse_volume) --------------------------------------------------

_LXC_BOOLEANS = frozenset({"acl", "ro", "quota", "replicate", "shared", "backup"})
_ROOTFS_KEYS = frozenset({"volume", "size", "acl", "mountoptions", "ro", "quota", "replicate", "shared"})
_ROOTFS_SCHEMA = _Schema(
    keys=_ROOTFS_KEYS, default_key="volume", required=frozenset({"volume"}), booleans=_LXC_BOOLEANS & _ROOTFS_KEYS
)  # $rootfs_desc
_MP_SCHEMA = _Schema(
    keys=_ROOTFS_KEYS | {"backup", "mp"},
    default_key="volume",
    required=frozenset({"volume", "mp"}),
    booleans=_LXC_BOOLEANS,
)  # $mp_desc
_LXC_UNUSED_SCHEMA = _Schema(keys=frozenset({"volume"}), default_key="volume", required=frozenset({"volume"}))
# PVE::LXC::Config::verify_lxc_mp_string and the mountoptions pattern
_MP_STRING_BAD_RE = re.compile(r"/\.\.?/|/\.\.?$|^/?\.\.?/")
_MOUNT_OPTION = r"(discard|lazytime|noatime|nodev|noexec|nosuid)"
_MOUNT_OPTIONS_RE = re.compile(rf"{_MOUNT_OPTION}(;{_MOUNT_OPTION})*")


class LxcMount(msgspec.Struct, frozen=True):
    """One parsed container volume line (``rootfs``, ``mpN`` or ``unusedN``)."""

    key: str
    volume: str  # a volume id, a host directory (bind) or a /dev node (device)
    mp: str | None = None  # the path inside the container ('/' for rootfs, None for unusedN)
    type: Literal["volume", "bind", "device"] = "volume"
    size: int | None = None  # bytes
    options: dict[str, str] = {}  # every other property, booleans as "1"/"0"


def _classify_mountpoint(volume: str) -> Literal["volume", "bind", "device"]:
    """PVE::LXC::Config->classify_mountpoint: absolute paths are bind mounts, except /dev/ nodes."""
    if volume.startswith("/"):
        return "device" if volume.startswith("/dev/") else "bind"
    return "volume"


def parse_lxc_volume(key: str, value: str) -> LxcMount:
    """Parse a container volume line: PVE::LXC::Config->parse_volume (and __parse_ct_mountpoint_full)."""
    if key == "rootfs":
        schema = _ROOTFS_SCHEMA
    elif key.startswith("mp") and is_lxc_volume_key(key):
        schema = _MP_SCHEMA
    elif is_unused_key(key):
        schema = _LXC_UNUSED_SCHEMA
    else:
        raise DriveError(f"parse_volume - unknown type: {key}")
    props = _parse_with_schema(value, schema)
    for field in ("volume", "mp"):
        if field in props and _MP_STRING_BAD_RE.search(props[field]):
            raise DriveError(f"{props[field]} contains illegal character sequences")
    if "mountoptions" in props and not _MOUNT_OPTIONS_RE.fullmatch(props["mountoptions"]):
        raise DriveError("format error - mountoptions: value does not match the regex pattern")
    volume = props["volume"]
    if schema is _LXC_UNUSED_SCHEMA and not is_volume_id(volume):
        raise DriveError(f"unable to parse volume ID '{volume}'")
    mp = "/" if key == "rootfs" else props.get("mp")
    size = parse_size(props["size"]) if "size" in props else None
    options = {k: v for k, v in props.items() if k not in ("volume", "mp", "size")}
    return LxcMount(key, volume, mp, _classify_mountpoint(volume), size, options)


# --- QEMU boot order (PVE::QemuServer device_bootorder, bootorder_from_legacy) ----------------------------

_BOOT_SCHEMA = _Schema(keys=frozenset({"legacy", "order"}), default_key="legacy", sizes=frozenset())  # $boot_fmt
_LEGACY_BOOT_RE = re.compile(r"[acdn]{1,4}")
_OTHER_BOOT_DEVICE_RE = re.compile(r"(net|usb|hostpci)\d+", re.ASCII)


def _split_list(text: str) -> list[str]:
    """PVE::Tools::split_list: items separated by commas, semicolons or white space."""
    return [item for item in re.split(r"[\s,;]+", text) if item]


def _is_set(value: object) -> bool:
    """Perl truthiness of a config value: absent, empty and '0' are false."""
    return value is not None and str(value) not in ("", "0")


def _parse_boot(value: str) -> dict[str, str]:
    """The ``boot`` property ($boot_fmt): ``order=scsi0;net0`` or the deprecated ``legacy=cdn``/``cdn``."""
    boot = _parse_with_schema(value, _BOOT_SCHEMA)
    if "legacy" in boot and not _LEGACY_BOOT_RE.fullmatch(boot["legacy"]):
        raise DriveError("format error - legacy: value does not match the regex pattern")
    for device in _split_list(boot.get("order", "")):  # verify_bootdev
        if device in ("efidisk0", "tpmstate0") or not (
            is_qemu_drive_key(device) or _OTHER_BOOT_DEVICE_RE.fullmatch(device)
        ):
            raise DriveError(f"invalid boot device '{device}'")
    return boot


def _lenient_size(text: str | None) -> int | None:
    try:
        return parse_size(text) if text is not None else None
    except VolumeError:
        return None


def _tolerant_qemu_drive(key: str, value: str) -> QemuDrive | None:
    """parse_qemu_drive, falling back to the bare property string when our schema refuses the value.

    A config read from Proxmox passed Proxmox's own schema, so a refusal here means a drive option
    newer than this model; dropping the drive would under-report the blast radius.
    """
    try:
        return parse_qemu_drive(key, value)
    except VolumeError:
        pass
    try:
        interface, index = _split_drive_key(key)
        props = _split_property_string(value, "file", {"volume": "file"})
    except VolumeError:
        return None
    if not props.get("file"):
        return None
    media = "cdrom" if props.get("media") == "cdrom" else "disk"
    options = {k: v for k, v in props.items() if k not in ("file", "media", "size")}
    return QemuDrive(key, interface, index, props["file"], media, _lenient_size(props.get("size")), options)


def _parsed_drives(config: Mapping[str, object], keys: tuple[str, ...] = QEMU_DRIVE_KEYS) -> Iterator[QemuDrive]:
    """PVE::QemuConfig->foreach_volume: the drives present, in key order (see _tolerant_qemu_drive)."""
    for key in (_present(config, _QEMU_DRIVE_KEY_SET) if keys is QEMU_DRIVE_KEYS else keys):
        value = config.get(key)
        if value is not None and (drive := _tolerant_qemu_drive(key, str(value))) is not None:
            yield drive


def _bootorder_from_legacy(config: Mapping[str, object], legacy: str | None) -> dict[str, int]:
    """PVE::QemuServer::bootorder_from_legacy: c = the ``bootdisk`` only, d = every CD-ROM, n = every NIC.

    Each letter's block starts at its position * 100; every disk (efidisk and tpmstate too, and
    cloud-init drives, which count as disks here) advances the c counter even when it is not the
    bootdisk, as PVE does.
    """
    next_index = {letter: (position + 1) * 100 for position, letter in enumerate(legacy or "cdn")}
    order: dict[str, int] = {}
    for drive in _parsed_drives(config):
        if drive.is_cdrom and not drive.is_cloudinit:  # drive_is_cdrom($drive, 1)
            if "d" in next_index:
                order[drive.key] = next_index["d"]
                next_index["d"] += 1
        elif "c" in next_index:
            if str(config.get("bootdisk") or "") == drive.key:
                order[drive.key] = next_index["c"]
            next_index["c"] += 1
    if "n" in next_index:
        for i in range(_MAX_NETS):
            if _is_set(config.get(f"net{i}")):
                order[f"net{i}"] = next_index["n"]
                next_index["n"] += 1
    return order


def _device_bootorder(config: Mapping[str, object]) -> dict[str, int]:
    """PVE::QemuServer::device_bootorder: the boot index each device name is given (present or not)."""
    if config.get("boot") is None:
        return _bootorder_from_legacy(config, None)
    boot = _parse_boot(str(config["boot"]))
    if _is_set(boot.get("legacy")):
        return _bootorder_from_legacy(config, boot["legacy"])
    order: dict[str, int] = {}
    for index, device in enumerate(_split_list(boot.get("order", "")), start=100):
        order[device] = index  # "start at 100 to allow user to insert devices before us with -args"
    return order


def _as_started(config: Mapping[str, object]) -> Mapping[str, object]:
    """config_to_command starts a template with its disks only ("they can only start for backup"):
    no NICs, no passthrough, and the default boot order."""
    if not _is_set(config.get("template")):
        return config
    return {key: config[key] for key in QEMU_DRIVE_KEYS if key in config} | {"template": 1}


def _gets_bootindex(config: Mapping[str, object], device: str) -> bool:
    """Whether config_to_command puts a ``bootindex`` on this device: a parseable drive other than
    efidisk0/tpmstate0, or a NIC, USB or PCI device that is configured."""
    if is_qemu_drive_key(device):
        if device in ("efidisk0", "tpmstate0"):
            return False
        return any(True for _ in _parsed_drives(config, (device,)))
    return _OTHER_BOOT_DEVICE_RE.fullmatch(device) is not None and _is_set(config.get(device))


def boot_indexes(config: Mapping[str, object]) -> dict[str, int]:
    """The QEMU ``bootindex`` each device of a VM gets, as config_to_command assigns them.

    ``boot: order=a;b;c`` numbers the listed devices from 100; the deprecated ``boot: cdn`` (also the
    default when ``boot`` is absent) numbers the ``bootdisk`` (c, 100), the CD-ROMs (d, 200...) and
    the NICs (n, 300...) by letter position; ``boot:`` empty gives no device a boot index.
    """
    started = _as_started(config)
    return {dev: idx for dev, idx in _device_bootorder(started).items() if _gets_bootindex(started, dev)}


def boot_order(config: Mapping[str, object]) -> list[str]:
    """The devices the firmware tries, in order (``-boot strict=on``: no others are tried)."""
    indexes = boot_indexes(config)
    return sorted(indexes, key=indexes.__getitem__)


def boot_disk(config: Mapping[str, object]) -> str | None:
    """The drive PVE calls the VM's boot disk: the first of ``boot: order=`` (or, with no order, the
    ``bootdisk`` key) that is configured, parses, is not a CD-ROM and has a file.

    PVE::QemuServer::Drive::get_bootdisks and bootdisk_size (the disk whose size is ``maxdisk``). A VM
    with neither an order nor a bootdisk has no boot disk, as in PVE.
    """
    boot = config.get("boot")
    parsed = _parse_boot(str(boot)) if _is_set(boot) else None
    if parsed is None or _is_set(parsed.get("legacy")):
        candidates = [str(config["bootdisk"])] if _is_set(config.get("bootdisk")) else []
    else:
        candidates = [dev for dev in _split_list(parsed.get("order", "")) if is_qemu_drive_key(dev)]
    for key in candidates:
        for drive in _parsed_drives(config, (key,)):
            if not drive.is_cdrom and drive.file:
                return key
    return None


# --- the volumes a guest references (QemuServer.pm get_current_vm_volumes, LXC/Config.pm get_vm_volumes) --

VolumeRole = Literal["disk", "efidisk", "tpmstate", "cdrom", "cloudinit", "rootfs", "mp", "unused", "vmstate"]


class GuestVolume(msgspec.Struct, frozen=True):
    """A storage volume a guest config references."""

    key: str  # the config key: scsi0, ide2, efidisk0, vmstate, rootfs, mp1, unused0, ...
    volid: str
    storage: str
    role: VolumeRole
    is_boot: bool = False  # the VM's boot disk (see boot_disk) or a container's rootfs
    needed_at_start: bool = True  # activated by vm_start/vzstart: a missing storage stops the start
    size: int | None = None  # bytes, as the config records it
    replicate: bool = True  # the drive's/mount point's ``replicate`` option (default 1); unusedN always 1


def _qemu_role(drive: QemuDrive) -> VolumeRole:
    if drive.interface in ("efidisk", "tpmstate"):
        return drive.interface  # type: ignore[return-value]
    if drive.is_cloudinit:
        return "cloudinit"
    return "cdrom" if drive.is_cdrom else "disk"


def _present_unused(config: Mapping[str, object]) -> Iterator[tuple[str, str]]:
    for key in _present(config, _UNUSED_KEY_SET):
        value = config.get(key)
        if value is not None and is_volume_id(str(value)):
            yield key, str(value)


def _qemu_volumes(config: Mapping[str, object]) -> Iterator[GuestVolume]:
    """get_current_vm_volumes: every drive with a volume id (ISOs and cloud-init included; none,
    cdrom and paths skipped) plus ``vmstate``; then the unusedN volumes, which a start ignores."""
    boot = boot_disk(config)
    for drive in _parsed_drives(config):
        if drive.volid is not None:
            storage = parse_volume_id(drive.volid)[0]
            yield GuestVolume(drive.key, drive.volid, storage, _qemu_role(drive), drive.key == boot, True, drive.size,
                              _parse_boolean(drive.options.get("replicate", "1")) != "0")
    vmstate = config.get("vmstate")
    if vmstate is not None and is_volume_id(str(vmstate)):
        yield GuestVolume("vmstate", str(vmstate), parse_volume_id(str(vmstate))[0], "vmstate")
    for key, volid in _present_unused(config):
        yield GuestVolume(key, volid, parse_volume_id(volid)[0], "unused", needed_at_start=False)


def _tolerant_lxc_volume(key: str, value: str) -> LxcMount | None:
    """parse_lxc_volume, falling back to the bare property string (see _tolerant_qemu_drive)."""
    try:
        return parse_lxc_volume(key, value)
    except VolumeError:
        pass
    try:
        props = _split_property_string(value, "volume", {})
    except VolumeError:
        return None
    volume = props.get("volume")
    if not volume:
        return None
    mp = "/" if key == "rootfs" else props.get("mp")
    return LxcMount(key, volume, mp, _classify_mountpoint(volume), _lenient_size(props.get("size")))


def _lxc_volumes(config: Mapping[str, object]) -> Iterator[GuestVolume]:
    """get_vm_volumes: rootfs and mount points of type volume (bind and device mounts skipped)."""
    for key in _present(config, _LXC_VOLUME_KEY_SET):
        value = config.get(key)
        if value is None:
            continue
        mount = _tolerant_lxc_volume(key, str(value))
        if mount is None:
            continue
        if mount.type == "volume" and is_volume_id(mount.volume):
            role: VolumeRole = "rootfs" if key == "rootfs" else "mp"
            storage = parse_volume_id(mount.volume)[0]
            yield GuestVolume(key, mount.volume, storage, role, key == "rootfs", True, mount.size,
                              _parse_boolean(mount.options.get("replicate", "1")) != "0")
    for key, volid in _present_unused(config):
        yield GuestVolume(key, volid, parse_volume_id(volid)[0], "unused", needed_at_start=False)


def guest_volumes(kind: Literal["qemu", "lxc"], config: Mapping[str, object]) -> list[GuestVolume]:
    """Every storage volume a guest config references, in PVE's key order.

    ``needed_at_start`` is what vm_start/vzstart activate (a missing, disabled or offline storage
    fails the start); unusedN volumes are owned by the guest but never needed to start it.
    """
    if kind not in ("qemu", "lxc"):
        raise DriveError(f"unknown guest type '{kind}'")
    try:
        key = _volumes_key(kind, config)
    except TypeError:  # a value msgpack cannot hold (not from JSON): parse without the cache
        return list(_qemu_volumes(config) if kind == "qemu" else _lxc_volumes(config))
    found = _VOLUMES.get(key)
    if found is None:
        if len(_VOLUMES) >= _VOLUMES_KEPT:
            _VOLUMES.clear()
        found = _VOLUMES[key] = tuple(_qemu_volumes(config) if kind == "qemu" else _lxc_volumes(config))
    return list(found)


# Parsing drive strings dominates blast-radius time on big clusters: configs repeat across the before/after models of
# every plan, so the parse is kept by the config's content; a parsed snapshot brings its guests' parses along
# (remember_volumes), so an offline plan parses only what its steps changed.
_VOLUMES: dict[tuple[str, bytes], tuple[GuestVolume, ...]] = {}
_VOLUMES_KEPT = 1 << 16


def _volumes_key(kind: str, config: Mapping[str, object]) -> tuple[str, bytes]:
    """The config's content as msgpack, in its own key order: the same content in another order is only a miss."""
    return kind, msgspec.msgpack.encode(config)


def remember_volumes(kind: str, config: Mapping[str, object], volumes: list[GuestVolume]) -> None:
    """Take ``volumes`` as what ``config`` parses to (a parsed snapshot's own earlier parse of that same config)."""
    if len(_VOLUMES) < _VOLUMES_KEPT:
        try:
            _VOLUMES[_volumes_key(kind, config)] = tuple(volumes)
        except TypeError:
            pass


# --- the qemu-server config file (PVE::QemuServer::parse_vm_config / write_vm_config) --------------------

# The few $confdesc types a config file's values are checked against; other keys are accepted as text.
_QEMU_BOOLEAN_KEYS = frozenset(
    [
        "onboot",
        "autostart",
        "reboot",
        "numa",
        "keephugepages",
        "acpi",
        "kvm",
        "tdf",
        "localtime",
        "freeze",
        "template",
        "tablet",
        "protection",
        "ciupgrade",
    ]
)
_QEMU_INTEGER_KEYS = frozenset(
    ["balloon", "shares", "smp", "sockets", "cores", "vcpus", "migrate_speed", "snaptime", "cpuunits"]
)
_QEMU_NUMBER_KEYS = frozenset({"cpulimit", "migrate_downtime"})
_SPECIAL_SECTIONS = ("cloudinit", "fleecing")
_FLEECING_KEYS = frozenset({"fleecing-images"})

_PENDING_RE = re.compile(r"\[PENDING\]\s*", re.IGNORECASE)
_SPECIAL_RE = re.compile(r"\[special:(cloudinit|fleecing)\]\s*", re.IGNORECASE)
_SNAPSHOT_RE = re.compile(r"\[([a-z][a-z0-9_\-]+)\]\s*", re.IGNORECASE)
_UNKNOWN_SECTION_RE = re.compile(r"\[([^\]]*)\]\s*")
_COMMENT_RE = re.compile(r"#(.*)")
_DESCRIPTION_RE = re.compile(r"(description):\s*(.*\S)\s*")
_SNAPSTATE_RE = re.compile(r"snapstate:\s*(prepare|delete)\s*$")
_ARGS_RE = re.compile(r"(args):\s*(.*\S)\s*")
_DELETE_RE = re.compile(r"delete:\s*(.*\S)\s*")
_KEY_LINE_RE = re.compile(r"([a-z][a-z_\-]*\d*):\s*(.+?)\s*")


def _decode_text(text: str) -> str:
    """PVE::Tools::decode_text: percent-decoding of UTF-8."""
    return urllib.parse.unquote(text, errors="replace")


def _encode_text(text: str) -> str:
    """PVE::Tools::encode_text (pve-common src/PVE/ParseUtils.pm): percent-encode control characters, '%', ':' and
    everything above '~' ('%' since pve-common 06f436f, "fix #5486", PVE 8.2)."""
    return "".join(chr(b) if 0x20 <= b <= 0x24 or 0x26 <= b <= 0x39 or 0x3B <= b <= 0x7E else f"%{b:02X}"
                   for b in text.encode("utf-8"))


def _perl_text(value: object) -> str:
    """A config value as Perl interpolates it into the file ("$key: $value"): a number as Perl prints it (%.15g:
    2.0 is "2"), a JSON boolean as 1 or the empty string."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, float):
        return format(value, ".15g")
    return str(value)


def _check_config_value(key: str, value: str, section: str) -> object:
    """PVE::QemuServer::check_type for a config line; returns the value as PVE stores it."""
    if "\n" in value or "\r" in value:
        raise DriveError("property contains a line feed")
    if section == "fleecing" and key not in _FLEECING_KEYS:
        raise DriveError(f"unknown setting '{key}'")
    if key in _QEMU_BOOLEAN_KEYS:
        normalized = _parse_boolean(value)
        if normalized not in ("0", "1"):
            raise DriveError(f"type check ('boolean') failed - got '{value}'")
        return int(normalized)
    if key in _QEMU_INTEGER_KEYS:
        if not re.fullmatch(r"\d+", value, re.ASCII):
            raise DriveError(f"type check ('integer') failed - got '{value}'")
        return int(value)
    if key in _QEMU_NUMBER_KEYS and not re.fullmatch(r"\d+(\.\d+)?", value, re.ASCII):
        raise DriveError(f"type check ('number') failed - got '{value}'")
    if is_qemu_drive_key(key) or is_unused_key(key) or key == "cdrom":
        _qemu_drive_properties("ide2" if key == "cdrom" else key, value)
    return value


def _filename_to_volume_id(vmid: int, file: str, media: str | None) -> str | None:
    """PVE::QemuServer::filename_to_volume_id: old-style bare file names become ``local:`` volumes."""
    if file in ("none", "cdrom") or re.match(r"/dev/.+", file) or re.fullmatch(r"([^:]+):(.+)", file, re.DOTALL):
        return file
    if "/" in file:
        return None
    return f"local:iso/{file}" if media == "cdrom" else f"local:{vmid}/{file}"


def _normalize_cdrom_alias(vmid: int, value: str) -> str | None:
    """The ``cdrom:`` alias of ide2 is re-printed (the only drive key whose schema format is a name)."""
    props = _qemu_drive_properties("ide2", value)
    file = _filename_to_volume_id(vmid, props["file"], props.get("media"))
    if file is None:
        return None
    props["file"] = file
    if "size" in props:
        props["size"] = format_size(parse_size(props["size"]))
    return print_property_string(props, "file")


def parse_guest_config_file(
    text: str, *, vmid: int = 0, strict: bool = False, warnings: list[str] | None = None
) -> dict[str, object]:
    """Read a qemu-server config file (``/etc/pve/qemu-server/<vmid>.conf``): PVE::QemuServer::parse_vm_config.

    Returns the main section's keys plus ``digest``, ``description``, ``pending``, ``snapshots``
    (name -> keys) and ``special-sections`` (``cloudinit``/``fleecing`` -> keys). Problems raise
    DriveError with PVE's text when ``strict``; otherwise they are appended to ``warnings`` and the
    line or section is skipped, as PVE warns and skips. Booleans and integers become ints as in the API.

    Not modelled: the full qemu-server schema (unknown keys are accepted, string formats other than
    drives are not checked, quoted plain strings are not unquoted) and LXC's pct config format.
    """
    result: dict[str, object] = {
        "digest": hashlib.sha1(text.encode("utf-8")).hexdigest(),
        "snapshots": {},
        "pending": None,
        "special-sections": {},
    }
    snapshots: dict[str, dict[str, object]] = result["snapshots"]  # type: ignore[assignment]
    specials: dict[str, dict[str, object]] = result["special-sections"]  # type: ignore[assignment]

    def problem(message: str) -> None:
        if strict:
            raise DriveError(message)
        if warnings is not None:
            warnings.append(message)

    conf: dict[str, object] = result
    section: tuple[str, str] | None = ("", "main")  # (name, type)
    description: str | None = None

    def finish_description() -> None:
        nonlocal description
        if description is not None:
            conf["description"] = description.rstrip()
        description = None

    for line in text.split("\n"):
        if not line.strip():
            continue
        if _PENDING_RE.fullmatch(line):
            section = ("pending", "pending")
            finish_description()
            if result["pending"] is not None:
                problem(f"vm {vmid} - duplicate section: pending")
            conf = result["pending"] = {}
            continue
        if match := _SPECIAL_RE.fullmatch(line):
            section = (match.group(1), "special")
            finish_description()
            if match.group(1) in specials:
                problem(f"vm {vmid} - duplicate special section: {match.group(1)}")
            conf = specials[match.group(1)] = {}
            continue
        if match := _SNAPSHOT_RE.fullmatch(line):
            section = (match.group(1), "snapshot")
            finish_description()
            if match.group(1) in snapshots:
                problem(f"vm {vmid} - duplicate snapshot section: {match.group(1)}")
            conf = snapshots[match.group(1)] = {}
            continue
        if match := _UNKNOWN_SECTION_RE.fullmatch(line):
            section = None
            finish_description()
            problem(f"vm {vmid} - skipping unknown section: '{match.group(1)}'")
            continue
        if section is None:
            continue

        if match := _COMMENT_RE.fullmatch(line):
            description = (description or "") + _decode_text(match.group(1)) + "\n"
        elif match := _DESCRIPTION_RE.fullmatch(line):
            description = (description or "") + _decode_text(match.group(2))
        elif match := _SNAPSTATE_RE.search(line):
            conf["snapstate"] = match.group(1)
        elif match := _ARGS_RE.fullmatch(line):
            conf["args"] = match.group(2)
        elif match := _DELETE_RE.fullmatch(line):
            if section == ("pending", "pending"):
                conf["delete"] = match.group(1)
            else:
                problem(f"vm {vmid} - property 'delete' is only allowed in [PENDING]")
        elif match := _KEY_LINE_RE.fullmatch(line):
            key, value = match.groups()
            if section == ("cloudinit", "special"):
                conf[key] = value  # "ignore validation only used for informative purpose"
                continue
            try:
                checked = _check_config_value(key, value, section[0] if section[1] == "special" else "")
            except VolumeError as err:
                problem(f"vm {vmid} - unable to parse value of '{key}' - {err}")
                continue
            if key == "cdrom":
                key, checked = "ide2", _normalize_cdrom_alias(vmid, value)
                if checked is None:
                    problem(f"vm {vmid} - unable to parse value of 'ide2'")
                    continue
            conf[key] = checked
        else:
            problem(f"vm {vmid} - unable to parse config: {line}")

    finish_description()
    result.pop("snapstate", None)
    if result["pending"] is None:
        result["pending"] = {}
    return result


_NOT_CONFIG_KEYS = frozenset({"digest", "description", "pending", "snapshots", "special-sections"})
# pve-container src/PVE/LXC/Config.pm write_pct_config: the keys its generate_raw_config leaves out of "key: value" lines
_NOT_PCT_CONFIG_KEYS = frozenset({"digest", "description", "pending", "snapshots", "snapname", "env", "lxc"})


def _has_cloudinit(config: Mapping[str, object]) -> bool:
    """PVE::QemuConfig->has_cloudinit: a cloud-init drive is attached."""
    return any(drive.is_cloudinit for drive in _parsed_drives(config))


def _comment_lines(description: object) -> list[str]:
    """The description as the file's ``#`` lines: split on newlines as Perl's split does (trailing empty fields
    dropped), each line encode_text'ed."""
    lines = str(description).split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    return [f"#{_encode_text(line)}" for line in lines]


def _raw_section(config: Mapping[str, object], pending: bool = False) -> str:
    """write_vm_config's generate_raw_config: the description as comments, then the keys sorted."""
    lines: list[str] = []
    description = config.get("description")
    if description is not None:
        if _is_set(description):
            lines += _comment_lines(description)
        elif pending:
            lines.append("#")
    lines += [f"{key}: {_perl_text(config[key])}" for key in sorted(config) if key not in _NOT_CONFIG_KEYS]
    return "".join(f"{line}\n" for line in lines)


def write_guest_config_file(config: Mapping[str, object]) -> str:
    """Render a config as parse_guest_config_file returns it: PVE::QemuServer::write_vm_config.

    As PVE does, ``cdrom`` becomes ``ide2``, ``smp`` becomes ``sockets`` and ``unusedN`` entries whose
    volume is attached again are dropped; the special ``cloudinit`` section is written only while a
    cloud-init drive is attached.
    """
    conf = {k: v for k, v in config.items() if k != "snapstate"}
    if conf.get("cdrom"):
        if conf.get("ide2"):
            raise DriveError("option ide2 conflicts with cdrom")
        conf["ide2"] = conf.pop("cdrom")
    if conf.get("sockets"):
        conf.pop("smp", None)
    elif conf.get("smp"):
        conf["sockets"] = conf.pop("smp")
        conf.pop("cores", None)
    if "delete" in conf:
        raise DriveError("propertry 'delete' is only allowed in [PENDING]")  # sic, PVE's spelling
    pending: Mapping[str, object] = conf.get("pending") or {}  # type: ignore[assignment]
    snapshots: Mapping[str, Mapping[str, object]] = conf.get("snapshots") or {}  # type: ignore[assignment]
    specials: Mapping[str, Mapping[str, object]] = conf.get("special-sections") or {}  # type: ignore[assignment]

    used = {d.file for section in (conf, pending) for d in _parsed_drives(section) if d.file}
    conf = {k: v for k, v in conf.items() if not (k.startswith("unused") and str(v) in used)}

    raw = _raw_section(conf)
    if pending:
        raw += "\n[PENDING]\n" + _raw_section(pending, pending=True)
    for name in sorted(specials):
        if name == "cloudinit" and not _has_cloudinit(conf):
            continue
        raw += f"\n[special:{name}]\n" + _raw_section(specials[name])
    for name in sorted(snapshots):
        if name.lower() == "pending":
            raise DriveError(f"internal error: snapshot name '{name}' is forbidden")
        raw += f"\n[{name}]\n" + _raw_section(snapshots[name])
    return raw


def _raw_pct_section(config: Mapping[str, object]) -> str:
    """write_pct_config's generate_raw_config: the description as comments, the keys sorted, then the
    ``lxc.environment.runtime`` lines of ``env`` (NUL-separated) and the raw ``lxc.*`` lines in their order."""
    lines = _comment_lines(config["description"]) if _is_set(config.get("description")) else []
    for key in sorted(config):
        if key in _NOT_PCT_CONFIG_KEYS:
            continue
        value = _perl_text(config[key])
        if "\n" in value:
            raise DriveError(f"detected invalid newline inside property '{key}'")
        lines.append(f"{key}: {value}")
    env = config.get("env")
    if _is_set(env):
        lines += [f"lxc.environment.runtime: {variable}" for variable in str(env).split("\0") if variable]
    for entry in config.get("lxc") or []:  # type: ignore[attr-defined]
        key, value = entry
        if key != "lxc.environment.runtime":  # written from env, above
            lines.append(f"{key}: {value}")
    return "".join(f"{line}\n" for line in lines)


def write_pct_config_file(config: Mapping[str, object]) -> str:
    """Render a container config (main keys plus ``pending`` and ``snapshots``): pve-container src/PVE/LXC/Config.pm
    ``write_pct_config``. ``unusedN`` entries whose volume is mounted again are dropped, as PVE drops them; the
    pending section is ``[pve:pending]``."""
    conf = {k: v for k, v in config.items() if k != "snapstate"}
    used = {vol.volid for vol in _lxc_volumes(conf) if vol.role != "unused"}  # get_vm_volumes: rootfs and mount points
    conf = {k: v for k, v in conf.items() if not (k.startswith("unused") and str(v) in used)}
    pending: Mapping[str, object] = conf.get("pending") or {}  # type: ignore[assignment]
    snapshots: Mapping[str, Mapping[str, object]] = conf.get("snapshots") or {}  # type: ignore[assignment]
    raw = _raw_pct_section(conf)
    if pending:
        raw += "\n[pve:pending]\n" + _raw_pct_section(pending)
    for name in sorted(snapshots):
        raw += f"\n[{name}]\n" + _raw_pct_section(snapshots[name])
    return raw
