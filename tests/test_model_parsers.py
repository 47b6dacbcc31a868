"""Conformance tests for the volume, drive and boot-order parsers in ``proximo.model``.

Most cases are Proxmox's own (pve-storage, qemu-server and pve-container test suites), kept as test data in
``tests/data/pve`` with their origin. Each case keeps its upstream ``id`` as the test id. The inline tables
after them cover what the upstream cases do not (block storages, guest_volumes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _pve_data import pve_data, sample_data

from proximo.model._drives import (
    LXC_VOLUME_KEYS,
    QEMU_DRIVE_KEYS,
    DriveError,
    GuestVolume,
    boot_disk,
    boot_indexes,
    boot_order,
    format_size,
    guest_volumes,
    is_lxc_volume_key,
    is_qemu_drive_key,
    is_unused_key,
    parse_guest_config_file,
    parse_lxc_volume,
    parse_property_string,
    parse_qemu_drive,
    parse_size,
    print_property_string,
    write_guest_config_file,
)
from proximo.model._volumes import (
    VolName,
    VolumeError,
    get_subdir,
    is_volume_id,
    parse_block_volname,
    parse_volname,
    parse_volname_for,
    parse_volume_id,
)

PVE_STORAGE = pve_data("pve-storage.json")
QEMU_SERVER = pve_data("qemu-server.json")
PVE_CONTAINER = pve_data("pve-container.json")


def _params(rows: list[dict[str, Any]], id_of: Any = lambda row: row["id"]) -> list[Any]:
    """One pytest param per upstream case, ided as upstream."""
    return [pytest.param(row, id=id_of(row)) for row in rows]


def _error_text(expect: dict[str, Any]) -> str:
    """Upstream messages end with Perl's newline; ours do not."""
    return expect["error"].rstrip("\n")


# --- pve-storage: parse_volname, get_subdir ---------------------------------------------------------------


@pytest.mark.parametrize("case", _params(PVE_STORAGE["parse_volname"]))
def test_parse_volname_matches_pve_storage(case: dict[str, Any]) -> None:
    volname, expect = case["input"]["volname"], case["expect"]
    if "error" in expect:
        with pytest.raises(VolumeError) as raised:
            parse_volname_for(case["input"]["storage_type"], volname)
        assert str(raised.value) == _error_text(expect)
        return
    parsed = parse_volname_for(case["input"]["storage_type"], volname)
    assert parsed == parse_volname(volname)
    assert (parsed.vtype, parsed.name, parsed.vmid, parsed.basename, parsed.basevmid, parsed.format) == (
        expect["vtype"], expect["name"], expect["vmid"], expect["basename"], expect["basevmid"], expect["format"]
    )  # fmt: skip
    assert parsed.is_base == bool(expect["isBase"])  # PVE returns 'base-' or undef


@pytest.mark.parametrize("case", _params(PVE_STORAGE["get_subdir"]))
def test_get_subdir_matches_pve_storage(case: dict[str, Any]) -> None:
    config, vtype, expect = case["input"]["storage_config"], case["input"]["vtype"], case["expect"]
    if "error" in expect:
        with pytest.raises(VolumeError) as raised:
            get_subdir(config, vtype)
        assert str(raised.value) == _error_text(expect)
    else:
        assert get_subdir(config, vtype) == expect["path"]


# --- qemu-server / pve-container: drive and mount-point strings ---------------------------------------------

def _numbered_id(rows: list[dict[str, Any]]) -> Any:
    """These files carry no ids: number the rows and name each by its source and key."""
    positions = {id(row): n for n, row in enumerate(rows, start=1)}
    return lambda row: f"{positions[id(row)]}:{row['source']}:{row['key']}"


@pytest.mark.parametrize("entry", _params(QEMU_SERVER["parse_drive"], _numbered_id(QEMU_SERVER["parse_drive"])))
def test_parse_qemu_drive_matches_qemu_server(entry: dict[str, Any]) -> None:
    expected = dict(entry["parsed"])
    drive = parse_qemu_drive(entry["key"], entry["value"])
    assert drive.key == entry["key"]
    assert drive.interface == expected.pop("interface")
    assert drive.index == int(expected.pop("index"))
    assert drive.file == expected.pop("file")
    assert drive.media == expected.pop("media", "disk")
    assert drive.size == expected.pop("size", None)
    assert drive.options == {key: str(value) for key, value in expected.items()}


@pytest.mark.parametrize("entry", _params(PVE_CONTAINER["parse_volume"], _numbered_id(PVE_CONTAINER["parse_volume"])))
def test_parse_lxc_volume_matches_pve_container(entry: dict[str, Any]) -> None:
    expected = dict(entry["parsed"])
    mount = parse_lxc_volume(entry["key"], entry["value"])
    assert mount.volume == expected.pop("volume")
    assert mount.type == expected.pop("type")
    assert mount.mp == expected.pop("mp", None)
    assert mount.size == expected.pop("size", None)
    assert mount.options == {key: str(value) for key, value in expected.items()}


# --- qemu-server: boot order read from the expected QEMU command lines ---------------------------------------


def _boot_case_config(case: dict[str, Any]) -> dict[str, object]:
    """The case's devices plus ``boot``/``bootdisk``, and ``template`` where the upstream fixture sets it
    (config_to_command starts a template with its disks only)."""
    data = case["input"]
    config: dict[str, object] = dict(data["devices"])
    for key in ("boot", "bootdisk", "template"):
        if data.get(key) is not None:
            config[key] = data[key]
    return config


@pytest.mark.parametrize("case", _params(QEMU_SERVER["boot_order"]))
def test_boot_indexes_match_qemu_command_line(case: dict[str, Any]) -> None:
    config = _boot_case_config(case)
    expected: dict[str, int] = case["expect"]["bootindex"]
    assert boot_indexes(config) == expected
    assert boot_order(config) == sorted(expected, key=expected.__getitem__)


# --- qemu-server: config file round trips --------------------------------------------------------------------


@pytest.mark.parametrize("case", _params(QEMU_SERVER["parse_config"]["cases"]))
def test_config_file_round_trip_matches_qemu_server(case: dict[str, Any]) -> None:
    text, expect = QEMU_SERVER["parse_config"]["configs"][case["config"]], case["expect"]
    vmid = int(Path(case["config_filename"]).stem)
    if "error" in expect:
        with pytest.raises(DriveError) as raised:
            parse_guest_config_file(text, vmid=vmid, strict=case["strict"])
        assert str(raised.value) == _error_text(expect)
        return
    warnings: list[str] = []
    parsed = parse_guest_config_file(text, vmid=vmid, strict=case["strict"], warnings=warnings)
    assert write_guest_config_file(parsed) == expect["written"]
    assert not (case["strict"] and warnings)


# --- volume ids ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("volid", "expected"),
    [
        ("local:iso/debian.iso", ("local", "iso/debian.iso")),
        ("local-lvm:vm-100-disk-0", ("local-lvm", "vm-100-disk-0")),
        ("Ceph_Pool.1:base-9000-disk-0/vm-120-disk-0", ("Ceph_Pool.1", "base-9000-disk-0/vm-120-disk-0")),
        ("nfs:100/vm-100-disk-0.qcow2", ("nfs", "100/vm-100-disk-0.qcow2")),
        ("pbs:backup/vm/100/2024-01-01T00:00:00Z", ("pbs", "backup/vm/100/2024-01-01T00:00:00Z")),
    ],
)
def test_parse_volume_id(volid: str, expected: tuple[str, str]) -> None:
    assert parse_volume_id(volid) == expected
    assert is_volume_id(volid)


@pytest.mark.parametrize(
    "value", ["none", "cdrom", "/dev/sdb", "/mnt/file.raw", "a:x", "1st:x", "local-:x", "local:", ""]
)
def test_not_a_volume_id(value: str) -> None:
    assert not is_volume_id(value)
    with pytest.raises(VolumeError, match=r"^unable to parse volume ID '.*'$"):
        parse_volume_id(value)


# --- block and other storages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("storage_type", "volname", "expected"),
    [
        ("zfspool", "vm-100-disk-0", VolName("images", "vm-100-disk-0", "100", format="raw")),
        ("zfspool", "subvol-101-disk-0", VolName("images", "subvol-101-disk-0", "101", format="subvol")),
        ("zfspool", "base-9000-disk-0", VolName("images", "base-9000-disk-0", "9000", is_base=True, format="raw")),
        ("zfspool", "basevol-9001-disk-0",
         VolName("images", "basevol-9001-disk-0", "9001", is_base=True, format="subvol")),
        ("zfs", "base-9000-disk-0/vm-120-disk-0",
         VolName("images", "vm-120-disk-0", "120", "base-9000-disk-0", "9000", False, "raw")),
        ("rbd", "vm-100-disk-1", VolName("images", "vm-100-disk-1", "100", format="raw")),
        ("rbd", "base-9000-disk-0/vm-120-disk-0",
         VolName("images", "vm-120-disk-0", "120", "base-9000-disk-0", "9000", False, "raw")),
        ("rbd", "vm-100-cloudinit", VolName("images", "vm-100-cloudinit", "100", format="raw")),
        ("lvmthin", "vm-100-disk-0", VolName("images", "vm-100-disk-0", "100", format="raw")),
        ("lvmthin", "base-9000-disk-0", VolName("images", "base-9000-disk-0", "9000", is_base=True, format="raw")),
        ("lvm", "vm-100-disk-0", VolName("images", "vm-100-disk-0", "100", format="raw")),
        ("lvm", "vm-100-disk-0.qcow2", VolName("images", "vm-100-disk-0.qcow2", "100", format="qcow2")),
        ("iscsi", "0.0.2.scsi-36001405abc", VolName("images", "scsi-36001405abc", format="raw")),
        ("iscsidirect", "lun3", VolName("images", "3", format="raw")),
        ("pbs", "backup/vm/100/2024-05-01T10:00:00Z",
         VolName("backup", "vm/100/2024-05-01T10:00:00Z", "100", format="pbs-vm")),
        ("pbs", "backup/host/pve1/2024-05-01T10:00:00Z",
         VolName("backup", "host/pve1/2024-05-01T10:00:00Z", None, format="pbs-host")),
        ("btrfs", "100/vm-100-disk-0.raw", VolName("images", "vm-100-disk-0.raw", "100", format="raw")),
        ("cephfs", "iso/installer.ISO", VolName("iso", "installer.ISO", format="raw")),
        ("dir", "rootdir/101", VolName("rootdir", "101", "101")),
    ],
)  # fmt: skip
def test_parse_volname_for_each_storage_type(storage_type: str, volname: str, expected: VolName) -> None:
    assert parse_volname_for(storage_type, volname) == expected


@pytest.mark.parametrize(
    ("storage_type", "volname", "message"),
    [
        ("zfspool", "disk-0", "unable to parse zfs volume name 'disk-0'"),
        ("zfspool", "100/vm-100-disk-0.raw", "unable to parse zfs volume name '100/vm-100-disk-0.raw'"),
        ("rbd", "images/foo", "unable to parse rbd volume name 'images/foo'"),
        ("lvmthin", "vm-100-disk-0!", "lvm name 'vm-100-disk-0!' contains illegal characters"),
        ("lvm", "base-100-disk-0", "unable to parse lvm volume name 'base-100-disk-0'"),
        ("iscsi", "lun0", "unable to parse iscsi volume name 'lun0'"),
        ("pbs", "backup/vm/100/yesterday", "unable to parse PBS volume name 'backup/vm/100/yesterday'"),
        ("esxi", "ha-datacenter/ds/vm.vmx", "volume names of storage type 'esxi' are not modelled"),
    ],
)
def test_parse_volname_for_refuses(storage_type: str, volname: str, message: str) -> None:
    with pytest.raises(VolumeError) as raised:
        parse_volname_for(storage_type, volname)
    assert str(raised.value) == message


def test_parse_block_volname_is_the_zfs_scheme() -> None:
    assert parse_block_volname("base-9000-disk-0/vm-120-disk-0") == parse_volname_for(
        "zfspool", "base-9000-disk-0/vm-120-disk-0"
    )


# --- property strings and sizes -----------------------------------------------------------------------------


def test_parse_property_string() -> None:
    assert parse_property_string("local:iso/x.iso,media=cdrom", "file") == {"file": "local:iso/x.iso", "media": "cdrom"}
    assert parse_property_string("order=scsi0;net0", "legacy") == {"order": "scsi0;net0"}
    assert parse_property_string("a=b,,c=d=e", None) == {"a": "b", "c": "d=e"}


@pytest.mark.parametrize(
    ("value", "default_key", "message"),
    [
        ("a=1,a=2", None, "duplicate key in comma-separated list property: a"),
        ("x,y", "file", "duplicate key in comma-separated list property: file"),
        ("file=x,y", "file", "duplicate key in comma-separated list property: file"),
        ("x", None, "value without key, but schema does not define a default key"),
        ("a=", None, "missing key in comma-separated list property"),
    ],
)
def test_parse_property_string_refuses(value: str, default_key: str | None, message: str) -> None:
    with pytest.raises(VolumeError) as raised:
        parse_property_string(value, default_key)
    assert str(raised.value) == message


def test_print_property_string_puts_the_default_key_first() -> None:
    assert print_property_string({"size": "4G", "file": "local:100/a.raw", "cache": "none"}, "file") == (
        "local:100/a.raw,cache=none,size=4G"
    )


@pytest.mark.parametrize(
    ("text", "size"),
    [("512", 512), ("4K", 4096), ("104858K", 107374592), ("32G", 32 * 1024**3), ("1.5G", 1610612736),
     ("2T", 2 * 1024**4), ("0.5K", 512)],
)  # fmt: skip
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "1g", "1 G", "-1", "1.G", "G"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(VolumeError):
        parse_size(text)


@pytest.mark.parametrize(
    ("size", "text"),
    [(512, "512"), (107374592, "104858K"), (4 * 1024**2, "4M"), (32 * 1024**3, "32G"), (2 * 1024**4, "2T"),
     (0, "0T"), (1536 * 1024**3, "1536G")],
)  # fmt: skip
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


# --- drive keys and drive strings -------------------------------------------------------------------------


def test_drive_keys() -> None:
    assert len(QEMU_DRIVE_KEYS) == 4 + 31 + 16 + 6 + 2
    assert QEMU_DRIVE_KEYS[:5] == ("ide0", "ide1", "ide2", "ide3", "scsi0")  # PVE's order: ide, scsi, virtio, sata
    assert all(is_qemu_drive_key(k) for k in ("ide3", "sata5", "scsi30", "virtio15", "efidisk0", "tpmstate0"))
    assert not any(is_qemu_drive_key(k) for k in ("ide4", "sata6", "scsi31", "virtio16", "efidisk1", "unused0", "net0"))
    assert is_unused_key("unused0") and is_unused_key("unused255") and not is_unused_key("unused256")
    assert LXC_VOLUME_KEYS[0] == "rootfs" and is_lxc_volume_key("mp255") and not is_lxc_volume_key("mp256")


def test_parse_qemu_drive_details() -> None:
    drive = parse_qemu_drive("scsi1", "volume=local-lvm:vm-100-disk-1,iothread=on,ssd=yes,backup=0,size=1.5G")
    assert drive.file == "local-lvm:vm-100-disk-1" and drive.size == 1610612736
    assert drive.options == {"iothread": "1", "ssd": "1", "backup": "0"}
    assert drive.volid == "local-lvm:vm-100-disk-1" and not drive.is_cdrom and not drive.is_cloudinit
    assert parse_qemu_drive("ide2", "local-lvm:vm-100-cloudinit,media=cdrom").is_cloudinit
    assert parse_qemu_drive("unused3", "local:100/vm-100-disk-3.qcow2").interface == "unused"
    assert parse_qemu_drive("ide2", "cdrom,media=cdrom").volid is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ide4", "local:iso/x.iso", "invalid drive key: ide4"),
        ("ide0", "local:100/vm-100-disk-0.raw,iothread=1", "invalid key in comma-separated list property: iothread"),
        ("virtio0", "local:iso/x.iso,media=cdrom", None),
        ("scsi0", "local:100/vm-100-disk-0.raw,cache=fast", None),
        ("scsi0", "local:100/vm-100-disk-0.raw,ssd=maybe", None),
        ("scsi0", "local:100/vm-100-disk-0.raw,mbps_max=10", "mbps_max requires mbps"),
        ("scsi0", "relative/path.raw", "unable to parse volume ID 'relative/path.raw'"),
        ("unused0", "/dev/sdb", "unable to parse volume ID '/dev/sdb'"),
        ("scsi0", "size=4G", None),
    ],
)
def test_parse_qemu_drive_refuses(key: str, value: str, message: str | None) -> None:
    with pytest.raises(DriveError) as raised:
        parse_qemu_drive(key, value)
    if message is not None:
        assert str(raised.value) == message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("rootfs", "local-zfs:subvol-101-disk-0,size=8G,acl=on", ("local-zfs:subvol-101-disk-0", "/", "volume")),
        ("mp0", "/mnt/data,mp=/data,ro=1", ("/mnt/data", "/data", "bind")),
        ("mp1", "/dev/sdb1,mp=/mnt/usb", ("/dev/sdb1", "/mnt/usb", "device")),
        ("mp2", "volume=ceph:vm-101-disk-1,mp=/srv,backup=1", ("ceph:vm-101-disk-1", "/srv", "volume")),
        ("unused0", "local-zfs:subvol-101-disk-1", ("local-zfs:subvol-101-disk-1", None, "volume")),
    ],
)
def test_parse_lxc_volume(key: str, value: str, expected: tuple[str, str | None, str]) -> None:
    mount = parse_lxc_volume(key, value)
    assert (mount.volume, mount.mp, mount.type) == expected


@pytest.mark.parametrize(
    ("key", "value"),
    [("mp0", "local:vm-101-disk-1"), ("rootfs", "local:vm-101-disk-0,mp=/x"), ("mp0", "/a/../b,mp=/x"),
     ("net0", "name=eth0"), ("unused0", "/mnt/x")],
)  # fmt: skip
def test_parse_lxc_volume_refuses(key: str, value: str) -> None:
    with pytest.raises(DriveError):
        parse_lxc_volume(key, value)


# --- boot order and boot disk -------------------------------------------------------------------------------

_DISKS = {
    "ide2": "local:iso/installer.iso,media=cdrom",
    "scsi0": "local-lvm:vm-100-disk-0,size=32G",
    "virtio0": "local-lvm:vm-100-disk-1,size=8G",
    "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0",
    "net1": "virtio=BC:24:11:00:00:02,bridge=vmbr1",
}


@pytest.mark.parametrize(
    ("extra", "order", "disk"),
    [
        ({"boot": "order=ide2;virtio0;net1"}, ["ide2", "virtio0", "net1"], "virtio0"),
        ({"boot": "order=net0;scsi0;ide2;virtio9"}, ["net0", "scsi0", "ide2"], "scsi0"),
        ({"bootdisk": "virtio0"}, ["virtio0", "ide2", "net0", "net1"], "virtio0"),
        ({"boot": "dc", "bootdisk": "scsi0"}, ["ide2", "scsi0"], "scsi0"),
        ({"boot": "legacy=n"}, ["net0", "net1"], None),
        ({}, ["ide2", "net0", "net1"], None),  # legacy default 'cdn' without a bootdisk
        ({"boot": "", "bootdisk": "scsi0"}, [], "scsi0"),  # PVE's get_bootdisks still reads bootdisk
        ({"boot": "order=ide2"}, ["ide2"], None),  # a CD-ROM is never the boot disk
        ({"template": 1, "boot": "order=net0;scsi0"}, ["ide2"], "scsi0"),  # templates start disks-only
    ],
)
def test_boot_order_and_boot_disk(extra: dict[str, object], order: list[str], disk: str | None) -> None:
    config = _DISKS | extra
    assert boot_order(config) == order
    assert boot_disk(config) == disk


@pytest.mark.parametrize("boot", ["order=efidisk0", "order=floppy0", "legacy=cdnx", "foo=bar"])
def test_boot_refuses_what_pve_refuses(boot: str) -> None:
    with pytest.raises(DriveError):
        boot_indexes(_DISKS | {"boot": boot})


# --- guest_volumes ----------------------------------------------------------------------------------------


def _summary(volumes: list[GuestVolume]) -> list[tuple[str, str, str, bool, bool, int | None]]:
    return [(v.key, v.volid, v.role, v.is_boot, v.needed_at_start, v.size) for v in volumes]


def test_guest_volumes_of_sample_qemu_102() -> None:
    # bootdisk sata0; ide2 is an empty CD-ROM ('none'), which references no volume
    volumes = guest_volumes("qemu", sample_data("qemu-config-102.community-proxmox"))
    assert _summary(volumes) == [("sata0", "storage:vm-102-disk-0", "disk", True, True, 100 * 1024**3)]
    assert volumes[0].storage == "storage"


def test_guest_volumes_of_sample_qemu_103() -> None:
    volumes = guest_volumes("qemu", sample_data("qemu-config-103.community-proxmox"))
    assert _summary(volumes) == [
        ("scsi0", "storage:vm-103-disk-0", "disk", True, True, 10 * 1024**3),
        ("scsi1", "storage:vm-103-disk-3", "disk", False, True, 30 * 1024**3),
        ("scsi2", "storage:vm-103-disk-2", "disk", False, True, 10 * 1024**3),
    ]


def test_guest_volumes_of_sample_lxc_101() -> None:
    # mp0 is a bind mount of a host directory: no storage involved
    volumes = guest_volumes("lxc", sample_data("lxc-config-101.pvesh-pretty.go-proxmox"))
    assert _summary(volumes) == [("rootfs", "vmstore:subvol-101-disk-0", "rootfs", True, True, 30 * 1024**3)]


def test_guest_volumes_of_a_full_qemu_config() -> None:
    config = {
        "boot": "order=ide2;scsi1;scsi0;net0",  # the ISO boots first; the boot disk is the first disk
        "efidisk0": "local-lvm:vm-200-disk-0,efitype=4m,size=4M",
        "tpmstate0": "local-lvm:vm-200-disk-2,size=4M,version=v2.0",
        "ide0": "cdrom,media=cdrom",
        "ide2": "iso-nfs:iso/debian-12.iso,media=cdrom",
        "ide3": "local-lvm:vm-200-cloudinit,media=cdrom",
        "scsi0": "local-lvm:vm-200-disk-1,size=32G",
        "scsi1": "ceph:vm-200-disk-0,size=64G,newer-option=1",  # unknown to our schema: kept anyway
        "scsi2": "/dev/disk/by-id/ata-SAMSUNG,backup=0",
        "sata0": "none,media=cdrom",
        "vmstate": "local-lvm:vm-200-state-suspend-2024-01-01",
        "unused1": "ceph:vm-200-disk-9",
        "unused0": "local-lvm:vm-200-disk-8",
        "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0",
        "template": 0,
    }
    assert _summary(guest_volumes("qemu", config)) == [
        ("ide2", "iso-nfs:iso/debian-12.iso", "cdrom", False, True, None),
        ("ide3", "local-lvm:vm-200-cloudinit", "cloudinit", False, True, None),
        ("scsi0", "local-lvm:vm-200-disk-1", "disk", False, True, 32 * 1024**3),
        ("scsi1", "ceph:vm-200-disk-0", "disk", True, True, 64 * 1024**3),
        ("efidisk0", "local-lvm:vm-200-disk-0", "efidisk", False, True, 4 * 1024**2),
        ("tpmstate0", "local-lvm:vm-200-disk-2", "tpmstate", False, True, 4 * 1024**2),
        ("vmstate", "local-lvm:vm-200-state-suspend-2024-01-01", "vmstate", False, True, None),
        ("unused0", "local-lvm:vm-200-disk-8", "unused", False, False, None),
        ("unused1", "ceph:vm-200-disk-9", "unused", False, False, None),
    ]


def test_guest_volumes_of_a_full_lxc_config() -> None:
    config = {
        "rootfs": "local-zfs:subvol-300-disk-0,size=8G",
        "mp0": "nfs:300/vm-300-disk-1.raw,mp=/data,size=100G,backup=1",
        "mp1": "/srv/shared,mp=/shared",
        "mp2": "/dev/sdc1,mp=/mnt/usb",
        "mp3": "garbage without mp",  # not a volume a start would activate
        "unused0": "local-zfs:subvol-300-disk-2",
    }
    assert _summary(guest_volumes("lxc", config)) == [
        ("rootfs", "local-zfs:subvol-300-disk-0", "rootfs", True, True, 8 * 1024**3),
        ("mp0", "nfs:300/vm-300-disk-1.raw", "mp", False, True, 100 * 1024**3),
        ("unused0", "local-zfs:subvol-300-disk-2", "unused", False, False, None),
    ]


def test_guest_volumes_with_no_volumes() -> None:
    assert guest_volumes("qemu", {"ide2": "none,media=cdrom", "net0": "virtio=BC:24:11:00:00:01"}) == []
    assert guest_volumes("lxc", {"hostname": "ct"}) == []
    with pytest.raises(DriveError):
        guest_volumes("vm", {})  # type: ignore[arg-type]


# --- config file: beyond the upstream round trips ---------------------------------------------------------


def test_config_file_sections_and_types() -> None:
    text = (
        "#first%3A line\n#second\nbootdisk: scsi0\nnuma: on\ncores: 2\ncdrom: local:iso/debian.iso,media=cdrom\n"
        "unused0: local:100/vm-100-disk-0.raw\nscsi0: local:100/vm-100-disk-0.raw,size=1024M\n"
        "\n[PENDING]\ndelete: numa\ncores: 4\n\n[snap1]\ncores: 1\nsnaptime: 1700000000\n"
    )
    conf = parse_guest_config_file(text, vmid=100)
    assert conf["description"] == "first: line\nsecond"
    assert (conf["numa"], conf["cores"], conf["ide2"]) == (1, 2, "local:iso/debian.iso,media=cdrom")
    assert conf["pending"] == {"delete": "numa", "cores": 4}
    assert conf["snapshots"] == {"snap1": {"cores": 1, "snaptime": 1700000000}}
    assert len(str(conf["digest"])) == 40
    assert write_guest_config_file(conf) == (
        "#first%3A line\n#second\nbootdisk: scsi0\ncores: 2\nide2: local:iso/debian.iso,media=cdrom\nnuma: 1\n"
        "scsi0: local:100/vm-100-disk-0.raw,size=1024M\n"  # unused0 dropped: the volume is attached again
        "\n[PENDING]\ncores: 4\ndelete: numa\n\n[snap1]\ncores: 1\nsnaptime: 1700000000\n"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cores: two\n", "vm 7 - unable to parse value of 'cores' - type check ('integer') failed - got 'two'"),
        ("delete: numa\n", "vm 7 - property 'delete' is only allowed in [PENDING]"),
        ("[snap]\n[snap]\n", "vm 7 - duplicate snapshot section: snap"),
        ("Cores: 2\n", "vm 7 - unable to parse config: Cores: 2"),
        ("scsi0: local:100/a.raw,bogus=1\n",
         "vm 7 - unable to parse value of 'scsi0' - invalid key in comma-separated list property: bogus"),
    ],
)  # fmt: skip
def test_config_file_strict_errors(text: str, message: str) -> None:
    with pytest.raises(DriveError) as raised:
        parse_guest_config_file(text, vmid=7, strict=True)
    assert str(raised.value) == message
    warnings: list[str] = []
    parse_guest_config_file(text, vmid=7, warnings=warnings)
    assert warnings == [message]
