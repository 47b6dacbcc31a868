"""The guest semantics' small pure pieces, on values shaped as PVE stores them."""

from __future__ import annotations

from _guests_cluster import make_snapshot

from proximo.model import load_snapshot, moved_volumes
from proximo_guests._semantics import nic_with_mac
from proximo_guests._volumes import base_of, new_disk_request, owner_of

MAC = "BC:24:11:AA:BB:CC"


def test_nic_mac_is_generated_kept_or_replaced() -> None:
    assert nic_with_mac("qemu", "virtio,bridge=vmbr0", MAC, keep=True) == f"virtio={MAC},bridge=vmbr0"
    assert nic_with_mac("qemu", "model=e1000,bridge=vmbr1,tag=5", MAC, keep=True) == f"e1000={MAC},bridge=vmbr1,tag=5"
    old = "virtio=BC:24:11:5E:00:01,bridge=vmbr0,firewall=1"
    assert nic_with_mac("qemu", old, MAC, keep=True) == old
    assert nic_with_mac("qemu", old, MAC, keep=False) == f"virtio={MAC},bridge=vmbr0,firewall=1"
    lxc = nic_with_mac("lxc", "name=eth0,bridge=vmbr0,ip=dhcp", MAC, keep=True)
    assert f"hwaddr={MAC}" in lxc and "type=veth" in lxc


def test_new_disk_requests_are_storage_colon_gib() -> None:
    assert new_disk_request("local-zfs:32") == ("local-zfs", 32 * 1024**3)
    assert new_disk_request("local-zfs:0.5") == ("local-zfs", 512 * 1024**2)
    assert new_disk_request("local-zfs:vm-100-disk-0") is None
    assert new_disk_request("/dev/sdb") is None


def test_owners_and_linked_clone_bases_follow_pve_volume_names() -> None:
    model = load_snapshot(make_snapshot())
    assert owner_of(model, "local-zfs:base-9000-disk-0/vm-120-disk-0") == 120
    assert owner_of(model, "isos:iso/debian-12.iso") is None
    assert base_of(model, "local-zfs:base-9000-disk-0/vm-120-disk-0") == "local-zfs:base-9000-disk-0"
    assert base_of(model, "local-zfs:vm-100-disk-0") is None


def test_bridges_are_only_judged_where_the_network_was_read() -> None:
    model = load_snapshot(make_snapshot())
    guest = model.guests[120]
    guest.config["net1"] = "virtio=BC:24:11:00:00:01,bridge=vmbr9"
    guest.config["net2"] = "e1000=BC:24:11:00:00:02"  # user-mode networking: no bridge needed
    assert model.bridge_problems(guest) == {"net1": "bridge 'vmbr9' does not exist"}
    model.nodes["pve1"].network = None
    assert model.bridge_problems(guest) == {}


def test_a_moved_disk_is_not_a_lost_volume() -> None:
    before = load_snapshot(make_snapshot())
    after = before.copy()
    g = after.guests[101]
    g.config["scsi1"] = "ceph:vm-101-disk-1,size=100G"
    after.volumes["local-zfs"]["pve1"].pop("local-zfs:vm-101-disk-1")
    after.volumes["ceph"][""]["ceph:vm-101-disk-1"] = {"volid": "ceph:vm-101-disk-1", "content": "images", "vmid": 101}
    assert moved_volumes(before, after) == {"local-zfs:vm-101-disk-1": "ceph:vm-101-disk-1"}
    after.guests[101].config.pop("scsi1")  # detached and gone: that is loss, not a move
    assert moved_volumes(before, after) == {}
