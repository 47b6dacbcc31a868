"""Property strings are checked key by key, per release, in the check every call goes through, as Proxmox checks them.

``scsi1=local-zfs:4,bogus=1`` is not a MEDIUM plan: Proxmox answers 400 "Parameter verification failed." with
``scsi1: invalid format - format error`` and ``scsi1.bogus: property is not defined in schema and the schema does not
allow additional properties`` (pve-common src/PVE/JSONSchema.pm: parse_property_string dies with PVE::Exception
"format error" carrying check_object's errors; check_prop adds it as "invalid format - $@", and PVE::Exception
prints its errors a line each). Valid strings of every kind, from the demo cluster and real configs, still pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from proximo.errors import BadInput
from proximo.model import load_snapshot
from proximo.pve import RELEASES, schema
from proximo.pve._apischema import indexed_spec
from proximo.pve._propstring import PropertyStringError, QUIRKS, split_property_string
from proximo.sim import demo_snapshot
from proximo.testing import TOKEN_ID, World

FORMAT_ERROR = "invalid format - format error"
UNDEFINED = "property is not defined in schema and the schema does not allow additional properties"
QEMU_CONFIG = ("POST", "/nodes/{node}/qemu/{vmid}/config")
LXC_CONFIG = ("PUT", "/nodes/{node}/lxc/{vmid}/config")

# (guest, key, value, PVE's error for the key) on every release; the demo cluster: 105 is a QEMU VM, 204 a container
REFUSED: list[tuple[int, str, str, str]] = [
    (105, "scsi1", "local-zfs:4,bogus=1", f"{FORMAT_ERROR}\nscsi1.bogus: {UNDEFINED}"),
    (105, "net1", "virtio,bridge=vmbr0,bogus=1", f"{FORMAT_ERROR}\nnet1.bogus: {UNDEFINED}"),
    (105, "scsi1", "local-zfs:4,iothread=maybe", f"{FORMAT_ERROR}\nscsi1.iothread: type check ('boolean') failed - got 'maybe'"),
    (105, "agent", "enabled=1,bogus=2", f"{FORMAT_ERROR}\nagent.bogus: {UNDEFINED}"),
    (204, "mp1", "local-zfs:4,mp=/srv/data,bogus=1", f"{FORMAT_ERROR}\nmp1.bogus: {UNDEFINED}"),
    # more of what check_object and the registered formats say
    (105, "net1", "bridge=vmbr0", f"{FORMAT_ERROR}\nnet1.model: property is missing and it is not optional"),
    (105, "net1", "virtio,bridge=vmbr0,tag=5000", f"{FORMAT_ERROR}\nnet1.tag: value must have a maximum value of 4094"),
    (105, "net1", "virtio=ff:ff:ff:ff:ff:ff,bridge=vmbr0",
     f"{FORMAT_ERROR}\nnet1.macaddr: invalid format - value does not look like a valid unicast MAC address"),
    (105, "scsi1", "local-zfs:4,cache=fast,ssd=2", f"{FORMAT_ERROR}\nscsi1.cache: value 'fast' does not have a value in the "
                                                   "enumeration 'none, writethrough, writeback, unsafe, directsync'\n"
                                                   "scsi1.ssd: type check ('boolean') failed - got '2'"),
    (105, "scsi1", "nonsense", f"{FORMAT_ERROR}\nscsi1.file: invalid format - unable to parse volume ID 'nonsense'"),
    (105, "scsi1", "local-zfs:4,size=4X", f"{FORMAT_ERROR}\nscsi1.size: invalid format - value does not look like a valid disk size: 4X"),
    (105, "scsi1", "local-zfs:4,local-zfs:5", "invalid format - duplicate key in comma-separated list property: file"),
    (105, "scsi1", "local-zfs:4,=1", "invalid format - missing key in comma-separated list property"),
    (105, "scsi1", "local-zfs:4,iothread=1,iothread=0", "invalid format - duplicate key in comma-separated list property: iothread"),
    (105, "vga", "std,qxl", "invalid format - duplicate key in comma-separated list property: type"),
    (105, "net1", "virtio,e1000=BC:24:11:00:00:01", "invalid format - key alias 'model' is already defined"),
    (204, "mp1", "local-zfs:4", f"{FORMAT_ERROR}\nmp1.mp: property is missing and it is not optional"),
    (204, "mp1", "local-zfs:4,mp=/srv/../etc", f"{FORMAT_ERROR}\nmp1.mp: invalid format - /srv/../etc contains illegal character sequences"),
    (204, "net1", "name=eth1,bridge=vmbr0,ip=10.0.0.5", f"{FORMAT_ERROR}\nnet1.ip: invalid format - value does not look like a valid "
                                                        "ipv4 network configuration"),
    (204, "features", "nesting=1,bogus=1", f"{FORMAT_ERROR}\nfeatures.bogus: {UNDEFINED}"),
]
# 9.1 removed drive geometry (cyls, heads, secs, trans): 8.4 takes it
CYLS = (105, "scsi1", "local-zfs:4,cyls=2", f"{FORMAT_ERROR}\nscsi1.cyls: {UNDEFINED}")

# Valid strings of each kind besides the demo cluster's: real configs (ansible-collections community.proxmox
# tests/unit/plugins/inventory/test_proxmox.py, VMs 102 and 103; luthermonson/go-proxmox tests/mocks/pve7x/nodes.go,
# container 101) and the forms qemu-server and pve-container document.
VALID: list[tuple[str, str]] = [
    ("sata0", "storage:vm-102-disk-0,size=100G"),
    ("ide2", "none,media=cdrom"),
    ("agent", "1"),
    ("agent", "1,type=virtio"),
    ("agent", "enabled=1,fstrim_cloned_disks=1"),
    ("scsi1", "storage:vm-103-disk-3,size=30G"),
    ("scsi0", "local-zfs:vm-105-disk-0,iothread=1,discard=on,ssd=1,cache=writeback,aio=io_uring,backup=0,replicate=0"),
    ("scsi2", "local-zfs:8,format=raw,serial=ABC123,mbps_rd=100,iops_wr=500,bps_rd_length=5"),
    ("virtio0", "local-zfs:vm-105-disk-1,iothread=1,size=32G"),
    ("virtio1", "/dev/disk/by-id/ata-ST4000DM004-2CV104_ZFN0XXXX,backup=0"),
    ("sata1", "local:iso/debian-12.iso,media=cdrom"),
    ("ide0", "cdrom,media=cdrom"),
    ("efidisk0", "local-zfs:1,efitype=4m,pre-enrolled-keys=1"),
    ("tpmstate0", "local-zfs:1,version=v2.0"),
    ("net0", "virtio=BC:24:11:2E:4F:01,bridge=vmbr0"),
    ("net1", "virtio,bridge=vmbr1,firewall=1,tag=20,queues=4,rate=12.5,mtu=1500"),
    ("net2", "model=e1000,bridge=vmbr0,link_down=1,trunks=10;20-30"),
    ("net3", "e1000=BC:24:11:2E:4F:02,bridge=vmbr0"),
    ("vga", "std,memory=32"),
    ("memory", "4096"),
]
VALID_LXC: list[tuple[str, str]] = [
    ("features", "fuse=1,mknod=1,nesting=1"),
    ("rootfs", "vmstore:subvol-101-disk-0,size=30G"),
    ("mp0", "/mnt/foo/bar,mp=/storage"),
    ("mp1", "local-zfs:8,mp=/srv/data,backup=1,acl=0,mountoptions=noatime;nodev,ro=1"),
    ("net0", "name=eth0,bridge=vmbr0,firewall=1,hwaddr=BC:24:11:2E:4F:03,ip=dhcp,type=veth"),
    ("net1", "name=eth1,bridge=vmbr1,ip=10.0.0.5/24,gw=10.0.0.1,ip6=auto,tag=30,mtu=9000"),
]


def _validate(release: str, method_template: tuple[str, str], params: dict[str, Any]) -> dict[str, str]:
    api = schema(release)
    endpoint = api.endpoint(*method_template)
    assert endpoint is not None
    return api.validate(endpoint, params, {"node": "pve1", "vmid": "105"})[1]


def _config(vmid: int) -> tuple[str, str]:
    return QEMU_CONFIG if vmid < 200 else LXC_CONFIG


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize(("vmid", "key", "value", "error"), REFUSED)
def test_a_bad_property_string_gets_proxmoxs_answer(release: str, vmid: int, key: str, value: str, error: str) -> None:
    assert _validate(release, _config(vmid), {key: value}) == {key: error}


@pytest.mark.parametrize("release", RELEASES)
def test_drive_geometry_is_84s_only(release: str) -> None:
    vmid, key, value, error = CYLS
    assert _validate(release, _config(vmid), {key: value}) == ({} if release == "8.4" else {key: error})


@pytest.mark.parametrize("release", RELEASES)
def test_valid_strings_of_every_kind_pass(release: str) -> None:
    for key, value in VALID:
        assert _validate(release, QEMU_CONFIG, {key: value}) == {}, (key, value)
    for key, value in VALID_LXC:
        assert _validate(release, LXC_CONFIG, {key: value}) == {}, (key, value)


@pytest.mark.parametrize("release", RELEASES)
def test_every_property_string_of_the_demo_cluster_passes(release: str) -> None:
    """Every guest config value of the demo cluster that is a property string, written back as it is."""
    model = load_snapshot(demo_snapshot())
    kinds: set[tuple[str, str]] = set()
    for guest in model.guests.values():
        method_template = QEMU_CONFIG if guest.kind == "qemu" else LXC_CONFIG
        endpoint = schema(release).endpoint(*method_template)
        assert endpoint is not None
        for key, value in guest.config.items():
            spec = endpoint.params.get(key) or indexed_spec(endpoint, key)
            if spec is None or spec.format_props is None:
                continue
            kinds.add((guest.kind, key.rstrip("0123456789")))
            assert _validate(release, method_template, {key: value}) == {}, (guest.vmid, key, value)
    assert {("qemu", k) for k in ("scsi", "ide", "efidisk", "tpmstate", "net", "agent", "unused")} <= kinds
    assert {("lxc", k) for k in ("rootfs", "mp", "net", "features", "unused")} <= kinds


# --- in a plan, through the pipeline; and in the simulator, as Proxmox answers -------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _error_line(key: str, error: str) -> str:
    """How a plan's BadInput and the CLI show PVE's error for one key: on one line."""
    return f"{key}: {error}".replace("\n", "; ")


@pytest.mark.anyio
@pytest.mark.parametrize("release", RELEASES)
async def test_plans_with_a_bad_property_string_are_refused(tmp_path: Path, release: str) -> None:
    world = World(tmp_path, pve_version=release)
    cases = [*REFUSED[:5], *([CYLS] if release == "9.1" else [])]
    async with world.host() as host:
        for vmid, key, value, error in cases:
            guest = world.model.guests[vmid]
            for tool, params in [("guest.config.set", {"vmid": vmid, key: value}),
                                 ("api.call", {"method": "PUT", "path": f"/nodes/{guest.node}/{guest.kind}/{vmid}/config",
                                               "params": {key: value}})]:
                with pytest.raises(BadInput) as info:
                    await host.plan(tool, params, world.actor)
                assert f"400 Parameter verification failed. ({_error_line(key, error)})" in str(info.value), (tool, str(info.value))
        if release == "8.4":  # 8.4 takes drive geometry
            plan = await host.plan("guest.config.set", {"vmid": 105, "scsi1": "local-zfs:4,cyls=2"}, world.actor)
            assert plan.steps and not plan.blocked


@pytest.mark.anyio
async def test_the_simulator_answers_a_bad_property_string_as_proxmox_does(tmp_path: Path) -> None:
    world = World(tmp_path)
    auth = {"Authorization": f"PVEAPIToken={TOKEN_ID}={world.secret}"}
    async with httpx.AsyncClient(transport=world.transport(), base_url="http://pve.sim:8006") as client:
        answer = await client.put("/api2/json/nodes/pve1/qemu/105/config", data={"scsi9": "local-zfs:4,bogus=1"}, headers=auth)
    assert answer.status_code == 400
    assert answer.json() == {"data": None, "message": "Parameter verification failed.\n",  # pve-http-server Formatter/Standard.pm
                             "errors": {"scsi9": f"{FORMAT_ERROR}\nscsi9.bogus: {UNDEFINED}"}}
    assert "scsi9" not in world.model.guests[105].config


# --- the split itself, and where the releases' pve-common differ --------------------------------------------


def test_alias_conflicts_are_91s_and_boolean_default_keys_too() -> None:
    """pve-common 5d84387 (alias conflicts) and ac547b8 (a bare boolean value) are in 9.1, not in 8.4's stable-bookworm."""
    aliases = {"bps_rd_length": "bps_rd_max_length"}
    text = "local-zfs:4,bps_rd_max_length=2,bps_rd_length=1"
    with pytest.raises(PropertyStringError, match=r"^key 'bps_rd_max_length' is already defined \(via alias\)$"):
        split_property_string(text, default_key="file", aliases=aliases, quirks=QUIRKS["9.1"])
    assert split_property_string(text, default_key="file", aliases=aliases, quirks=QUIRKS["8.4"])["bps_rd_max_length"] == "1"
    assert split_property_string("on", default_key="enabled", booleans={"enabled"}, quirks=QUIRKS["9.1"]) == {"enabled": "1"}
    assert split_property_string("on", default_key="enabled", booleans={"enabled"}, quirks=QUIRKS["8.4"]) == {"enabled": "on"}
    assert _validate("9.1", QEMU_CONFIG, {"agent": "on"}) == {}
    assert _validate("8.4", QEMU_CONFIG, {"agent": "on"}) == {"agent": f"{FORMAT_ERROR}\nagent.enabled: type check ('boolean') failed - got 'on'"}


def test_the_default_key_takes_a_bare_value_once() -> None:
    assert split_property_string("enabled=0,1", default_key="enabled", booleans={"enabled"}) == {"enabled": "1"}  # a false value is replaced
    for text in ("enabled=1,1", "0,1"):  # a true one is not; nor is a second bare value
        with pytest.raises(PropertyStringError, match="^duplicate key in comma-separated list property: enabled$"):
            split_property_string(text, default_key="enabled", booleans={"enabled"})
    with pytest.raises(PropertyStringError, match="^value without key, but schema does not define a default key$"):
        split_property_string("x", default_key=None)
    assert split_property_string(" ,a=b,, ,", default_key=None) == {"a": "b"}  # blank parts are skipped (keys are not trimmed)


# --- formats Proximo does not check are named in the plan, not passed silently -----------------------------


UNCHECKED_NOTE = "Proximo does not check the format of"


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "params", "unchecked"), [
    # qemu-server registers pve-qm-boot and pve-vm-cpu-conf with verifiers of its own: the schema only names them
    ("guest.config.set", {"vmid": 105, "boot": "order=scsi0;net0"}, "boot (pve-qm-boot)"),
    ("guest.config.set", {"vmid": 105, "cpu": "host"}, "cpu (pve-vm-cpu-conf)"),
    # pve-fw-protocol-spec reads /etc/protocols; the firewall pack checks ports and addresses as verify_rule does
    ("firewall.rule.add", {"level": "cluster", "type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "22",
                           "source": "10.0.0.0/8", "enable": 1}, "proto (pve-fw-protocol-spec)"),
])
async def test_a_value_whose_format_is_not_checked_is_named_in_the_plan(tmp_path: Path, tool: str, params: dict[str, Any],
                                                                        unchecked: str) -> None:
    world = World(tmp_path)
    async with world.host() as host:
        plan = await host.plan(tool, params, world.actor)
    [note] = [n for n in plan.notes if UNCHECKED_NOTE in n]
    assert f"{UNCHECKED_NOTE} {unchecked};" in note, note
    assert "dport" not in note and "source" not in note  # checked by the firewall pack: not named


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "params"), [
    ("guest.config.set", {"vmid": 105, "memory": "2048", "scsi1": "local-zfs:4,iothread=1", "net1": "virtio,bridge=vmbr0"}),
    ("guest.config.set", {"vmid": 105, "description": "web"}),
])
async def test_checked_values_carry_no_such_note(tmp_path: Path, tool: str, params: dict[str, Any]) -> None:
    world = World(tmp_path)
    async with world.host() as host:
        plan = await host.plan(tool, params, world.actor)
    assert not [n for n in plan.notes if UNCHECKED_NOTE in n], plan.notes
