"""Proxmox volume ids (``storeid:volname``) and volume names, parsed exactly as pve-storage parses them.

Pure functions only: nothing here looks at a storage configuration's contents or a filesystem. The
regular expressions are pve-storage's own (commit 0c56bad8, PVE 9.1), cited at each function; the
conformance tests in ``tests/test_model_parsers.py`` run Proxmox's own test cases against them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import msgspec

__all__ = [
    "BLOCK_STORAGE_TYPES",
    "FILE_STORAGE_TYPES",
    "VTYPE_SUBDIRS",
    "VolName",
    "VolumeError",
    "get_subdir",
    "is_volume_id",
    "parse_block_volname",
    "parse_volname",
    "parse_volname_for",
    "parse_volume_id",
]


class VolumeError(ValueError):
    """A volume id, volume name or drive string Proxmox itself would reject; the text is Proxmox's."""


class VolName(msgspec.Struct, frozen=True):
    """What ``$plugin->parse_volname`` returns: (vtype, name, vmid, basename, basevmid, isBase, format)."""

    vtype: str  # images, rootdir, iso, vztmpl, backup, snippets, import
    name: str
    vmid: str | None = None  # the owning guest, as text (PVE compares it as a string)
    basename: str | None = None  # linked clones: the base volume this one is cloned from
    basevmid: str | None = None
    is_base: bool = False  # a template's base volume
    format: str | None = None  # raw, qcow2, vmdk, subvol, ova+vmdk, pbs-vm, ... (None: PVE says undef)


# PVE::JSONSchema::parse_id (the pve-storage-id format) is /i; so is parse_volume_id's copy of it.
_STORAGE_ID = r"[a-z][a-z0-9\-\_\.]*[a-z0-9]"
_VOLUME_ID_RE = re.compile(rf"({_STORAGE_ID}):(.+)", re.IGNORECASE | re.ASCII)


def parse_volume_id(volid: str) -> tuple[str, str]:
    """Split ``storeid:volname``. PVE::Storage::Plugin::parse_volume_id (PVE::Storage::parse_volume_id)."""
    match = _VOLUME_ID_RE.fullmatch(volid)
    if match is None:
        raise VolumeError(f"unable to parse volume ID '{volid}'")
    return match.group(1), match.group(2)


def is_volume_id(value: str) -> bool:
    """True for a storage-managed volume; False for ``none``, ``cdrom`` and absolute paths (/dev/sdb).

    This is the test ``parse_volume_id($volid, 1)`` makes wherever PVE decides whether a drive
    touches a storage (get_current_vm_volumes, get_vm_volumes).
    """
    return _VOLUME_ID_RE.fullmatch(value) is not None


# --- file-based storages: PVE::Storage::Plugin->parse_volname -------------------------------------------

# PVE::Storage: the trailing digit is the number of capture groups. Only the embedded qr// carries /i.
_ISO_EXT = r"(?i:\.(?:iso|img))"  # $ISO_EXT_RE_0
# $VZTMPL_EXT_RE_1 = qr/\.(?|(tar)(?!\.)|tar\.(gz|xz|zst|bz2))/i (Python has no branch reset; no group is read)
_VZTMPL_EXT = r"(?i:\.(?:tar(?!\.)|tar\.(?:gz|xz|zst|bz2)))"
_COMPRESSOR = r"gz|lzo|zst|bz2"  # PVE::Storage::Plugin::COMPRESSOR_RE (KNOWN_COMPRESSION_FORMATS)
_BACKUP_EXT = rf"\.(tgz|(?:tar|vma)(?:\.({_COMPRESSOR}))?)"  # $BACKUP_EXT_RE_2
_IMPORT_EXT = r"\.(ova|ovf|qcow2|raw|vmdk)"  # $IMPORT_EXT_RE_1
_SAFE_CHAR_WS = r"[ a-zA-Z0-9\-\.\+\=\_]"  # $SAFE_CHAR_WITH_WHITESPACE_CLASS_RE
_OVA_CONTENT = rf"{_SAFE_CHAR_WS}+\.(qcow2|raw|vmdk)"  # $OVA_CONTENT_RE_1

_A = re.ASCII
_LINKED_CLONE_RE = re.compile(r"(\d+)/(\S+)/(\d+)/(\S+)", _A)
_IMAGE_RE = re.compile(r"(\d+)/(\S+)", _A)
_ISO_RE = re.compile(rf"iso/([^/]+{_ISO_EXT})", _A)
_VZTMPL_RE = re.compile(rf"vztmpl/([^/]+{_VZTMPL_EXT})", _A)
_ROOTDIR_RE = re.compile(r"rootdir/(\d+)", _A)
_BACKUP_RE = re.compile(rf"backup/([^/]+{_BACKUP_EXT})", _A)
_BACKUP_OWNER_RE = re.compile(r"vzdump-(openvz|lxc|qemu)-(\d+)-.+", _A)
_SNIPPETS_RE = re.compile(r"snippets/([^/]+)", _A)
_IMPORT_OVA_MEMBER_RE = re.compile(rf"import/({_SAFE_CHAR_WS}+\.ova/{_OVA_CONTENT})", _A)
_IMPORT_RE = re.compile(rf"import/({_SAFE_CHAR_WS}+{_IMPORT_EXT})", _A)

# PVE::Storage::Plugin::parse_name_dir
_NAME_DIR_RE = re.compile(r"((vm-|base-|subvol-)(\d+)-[^/\s]+\.(raw|qcow2|vmdk|subvol))", _A)


def _parse_name_dir(name: str) -> tuple[str, bool]:
    """(format, is_base) of an image file name. PVE::Storage::Plugin::parse_name_dir."""
    match = _NAME_DIR_RE.fullmatch(name)
    if match is None:
        # PVE only warns for the legacy names it no longer supports; the result is the same error.
        raise VolumeError(f"unable to parse volume filename '{name}'")
    return match.group(4), match.group(2) == "base-"


def parse_volname(volname: str) -> VolName:
    """Volume name on a file-based storage (dir, nfs, cifs, cephfs, glusterfs, btrfs).

    PVE::Storage::Plugin->parse_volname; the branches are tried in PVE's order.
    """
    if match := _LINKED_CLONE_RE.fullmatch(volname):
        basevmid, basename, vmid, name = match.groups()
        _parse_name_dir(basename)
        fmt, is_base = _parse_name_dir(name)
        return VolName("images", name, vmid, basename, basevmid, is_base, fmt)
    if match := _IMAGE_RE.fullmatch(volname):
        vmid, name = match.groups()
        fmt, is_base = _parse_name_dir(name)
        return VolName("images", name, vmid, None, None, is_base, fmt)
    if match := _ISO_RE.fullmatch(volname):
        return VolName("iso", match.group(1), format="raw")
    if match := _VZTMPL_RE.fullmatch(volname):
        return VolName("vztmpl", match.group(1), format="raw")
    if match := _ROOTDIR_RE.fullmatch(volname):
        return VolName("rootdir", match.group(1), match.group(1))  # PVE returns no format here
    if match := _BACKUP_RE.fullmatch(volname):
        filename = match.group(1)
        owner = _BACKUP_OWNER_RE.fullmatch(filename)
        return VolName("backup", filename, owner.group(2) if owner else None, format="raw")
    if match := _SNIPPETS_RE.fullmatch(volname):
        return VolName("snippets", match.group(1), format="raw")
    if match := _IMPORT_OVA_MEMBER_RE.fullmatch(volname):
        return VolName("import", match.group(1), format=f"ova+{match.group(2)}")
    if match := _IMPORT_RE.fullmatch(volname):
        return VolName("import", match.group(1), format=match.group(2))
    raise VolumeError(f"unable to parse directory volume name '{volname}'")


# --- block storages ---------------------------------------------------------------------------------

# PVE::Storage::ZFSPoolPlugin->parse_volname (ZFSPlugin, ZFS over iSCSI, inherits it unchanged).
_ZFS_RE = re.compile(r"(((base|basevol)-(\d+)-\S+)/)?((base|basevol|vm|subvol)-(\d+)-\S+)", _A)


def parse_block_volname(volname: str) -> VolName:
    """A guest volume on a ZFS pool: ``vm-100-disk-0``, ``subvol-101-disk-0``, ``base-9000-disk-0``,
    and linked clones ``base-9000-disk-0/vm-120-disk-0``.

    PVE::Storage::ZFSPoolPlugin->parse_volname. It is the most general of the block-storage naming
    schemes; use :func:`parse_volname_for` when the storage type is known (RBD, LVM and iSCSI differ).
    """
    match = _ZFS_RE.fullmatch(volname)
    if match is None:
        raise VolumeError(f"unable to parse zfs volume name '{volname}'")
    kind = match.group(6)
    fmt = "subvol" if kind in ("subvol", "basevol") else "raw"
    return VolName(
        "images", match.group(5), match.group(7), match.group(2), match.group(4), kind in ("base", "basevol"), fmt
    )


# PVE::Storage::RBDPlugin->parse_volname
_RBD_RE = re.compile(r"((base-(\d+)-\S+)/)?((base)?(vm)?-(\d+)-\S+)", _A)


def _parse_rbd_volname(volname: str) -> VolName:
    match = _RBD_RE.fullmatch(volname)
    if match is None:
        raise VolumeError(f"unable to parse rbd volume name '{volname}'")
    return VolName(
        "images", match.group(4), match.group(7), match.group(2), match.group(3), bool(match.group(5)), "raw"
    )


# PVE::Storage::Plugin::parse_lvm_name, called first by the LVM plugins
_LVM_NAME_RE = re.compile(r"[a-z0-9][a-z0-9\-\_\.]*[a-z0-9]", re.IGNORECASE | re.ASCII)


def _check_lvm_name(name: str) -> None:
    if _LVM_NAME_RE.fullmatch(name) is None:
        raise VolumeError(f"lvm name '{name}' contains illegal characters")


# PVE::Storage::LvmThinPlugin->parse_volname: linked clones are not encoded in the name on LVM-thin.
_LVMTHIN_RE = re.compile(r"((vm|base)-(\d+)-\S+)", _A)


def _parse_lvmthin_volname(volname: str) -> VolName:
    _check_lvm_name(volname)
    match = _LVMTHIN_RE.fullmatch(volname)
    if match is None:
        raise VolumeError(f"unable to parse lvm volume name '{volname}'")
    return VolName("images", match.group(1), match.group(3), is_base=match.group(2) == "base", format="raw")


# PVE::Storage::LVMPlugin->parse_volname (qcow2 on LVM: snapshot-as-volume-chain, PVE 9)
_LVM_RE = re.compile(r"(vm-(\d+)-\S+)", _A)


def _parse_lvm_volname(volname: str) -> VolName:
    _check_lvm_name(volname)
    match = _LVM_RE.fullmatch(volname)
    if match is None:
        raise VolumeError(f"unable to parse lvm volume name '{volname}'")
    fmt = "qcow2" if volname.endswith(".qcow2") else "raw"
    return VolName("images", match.group(1), match.group(2), format=fmt)


# PVE::Storage::ISCSIPlugin->parse_volname: LUNs named by /dev/disk/by-id, owned by no guest
_ISCSI_RE = re.compile(r"\d+\.\d+\.\d+\.([^/\s]+)", _A)


def _parse_iscsi_volname(volname: str) -> VolName:
    match = _ISCSI_RE.fullmatch(volname)
    if match is None:
        raise VolumeError(f"unable to parse iscsi volume name '{volname}'")
    return VolName("images", match.group(1), format="raw")


# PVE::Storage::ISCSIDirectPlugin->parse_volname
_ISCSIDIRECT_RE = re.compile(r"lun(\d+)", _A)


def _parse_iscsidirect_volname(volname: str) -> VolName:
    match = _ISCSIDIRECT_RE.fullmatch(volname)
    if match is None:
        raise VolumeError(f"unable to parse iscsi volume name '{volname}'")
    return VolName("images", match.group(1), format="raw")


# PVE::Storage::PBSPlugin->parse_volname: backup snapshots only
_PBS_RE = re.compile(r"backup/([^\s_]+)/([^\s_]+)/([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)", _A)


def _parse_pbs_volname(volname: str) -> VolName:
    match = _PBS_RE.fullmatch(volname)
    if match is None:
        raise VolumeError(f"unable to parse PBS volume name '{volname}'")
    btype, bid, btime = match.groups()
    owner = bid if re.fullmatch(r"\d+", bid, _A) else None
    return VolName("backup", f"{btype}/{bid}/{btime}", owner, format=f"pbs-{btype}")


# Storage types whose plugin keeps PVE::Storage::Plugin->parse_volname.
FILE_STORAGE_TYPES = frozenset({"dir", "nfs", "cifs", "cephfs", "glusterfs", "btrfs"})

_BLOCK_PARSERS: dict[str, Callable[[str], VolName]] = {
    "zfspool": parse_block_volname,
    "zfs": parse_block_volname,  # ZFS over iSCSI
    "rbd": _parse_rbd_volname,
    "lvmthin": _parse_lvmthin_volname,
    "lvm": _parse_lvm_volname,
    "iscsi": _parse_iscsi_volname,
    "iscsidirect": _parse_iscsidirect_volname,
    "pbs": _parse_pbs_volname,
}
BLOCK_STORAGE_TYPES = frozenset(_BLOCK_PARSERS)


def parse_volname_for(storage_type: str, volname: str) -> VolName:
    """Parse ``volname`` as the plugin of ``storage_type`` would (PVE::Storage::parse_volname's dispatch).

    Types without a parser here (esxi, third-party plugins) are refused: fail closed.
    """
    if storage_type in FILE_STORAGE_TYPES:
        return parse_volname(volname)
    parser = _BLOCK_PARSERS.get(storage_type)
    if parser is None:
        raise VolumeError(f"volume names of storage type '{storage_type}' are not modelled")
    return parser(volname)


# --- directories -------------------------------------------------------------------------------------

# PVE::Storage::Plugin $vtype_subdirs
VTYPE_SUBDIRS: Mapping[str, str] = {
    "images": "images",
    "rootdir": "private",
    "iso": "template/iso",
    "vztmpl": "template/cache",
    "backup": "dump",
    "snippets": "snippets",
    "import": "import",
}


def get_subdir(storage_config: Mapping[str, object], vtype: str) -> str:
    """The directory of a content type on a path-based storage. PVE::Storage::Plugin->get_subdir.

    ``storage_config`` is the storage's section (``path`` and, as parsed, a ``content-dirs`` mapping
    that overrides the default sub-directory per content type).
    """
    path = storage_config.get("path")
    if not path:
        raise VolumeError("storage definition has no path")
    if vtype not in VTYPE_SUBDIRS:
        raise VolumeError(f"unknown vtype '{vtype}'")
    overrides = storage_config.get("content-dirs")
    override = overrides.get(vtype) if isinstance(overrides, Mapping) else None
    return f"{path}/{override if override is not None else VTYPE_SUBDIRS[vtype]}"
