"""A node's network files as the model keeps them: PVE's writer and reader, the pending diff and its reversal.

The expected file texts follow pve-common (f665029) src/PVE/Network/Interfaces.pm and the cases of its own
test/etc_network_interfaces/ suite (t.update_network.pl, t.create_network.pl), rewritten here without the
``source-directory`` option line those fixtures carry (the API's rows never show such lines).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from _pve_data import sample_data

from proximo.model import ClusterModel, Node, dump_snapshot, from_api, render, render_members
from proximo.model._network import (HEADER, NetworkConfigError, NetworkUnknown, active_rows, check_config, config_diff,
                                    parse_config, reread, reverse_diff, write_config)

SAMPLES = ("network-list.node1.go-proxmox", "network-list.node2-ipv6.go-proxmox", "network-list.vlans.go-proxmox")


def _without(rows: list[dict[str, Any]], *keys: str) -> dict[str, dict[str, Any]]:
    return {r["iface"]: {k: v for k, v in r.items() if k not in keys} for r in rows}


@pytest.mark.parametrize("name", SAMPLES)
def test_real_rows_written_and_read_back_are_the_same_rows(name: str) -> None:
    rows = sample_data(name)
    back = reread(rows)
    # priorities are the file's order as read again, and PVE <= 7 sent exists=null for a VLAN on a bridge (now 0)
    want, got = _without(rows, "priority", "exists"), _without(back, "priority", "exists")
    if name == "network-list.vlans.go-proxmox":  # the sample was edited by hand: its cidr and address disagree
        want["vmbr2.8"]["cidr"] = "172.20.0.1/24"
    assert got == want
    assert [r["iface"] for r in sorted(back, key=lambda r: r["priority"])] == [r["iface"] for r in sorted(rows, key=lambda r: r["priority"])]


def test_the_writer_writes_what_pve_writes_for_a_bridge_and_a_static_nic() -> None:
    # t.update_network.pl's first expectation (eth1 created static, vmbr0 from brbase)
    rows = [
        {"iface": "eth0", "type": "eth", "method": "manual", "families": ["inet"], "exists": 1, "priority": 3},
        {"iface": "eth1", "type": "eth", "method": "static", "address": "192.168.0.2", "netmask": "24", "gateway": "192.168.0.1",
         "families": ["inet"], "autostart": 1},
        {"iface": "vmbr0", "type": "bridge", "method": "static", "address": "10.0.0.2", "netmask": "24", "gateway": "10.0.0.1",
         "bridge_ports": "eth0", "bridge_stp": "off", "bridge_fd": 0, "families": ["inet"], "autostart": 1, "priority": 5},
    ]
    assert write_config(rows) == HEADER + (
        "auto lo\niface lo inet loopback\n\n"
        "iface eth0 inet manual\n\n"
        "auto eth1\niface eth1 inet static\n\taddress 192.168.0.2/24\n\tgateway 192.168.0.1\n\n"
        "auto vmbr0\niface vmbr0 inet static\n\taddress 10.0.0.2/24\n\tgateway 10.0.0.1\n\tbridge-ports eth0\n"
        "\tbridge-stp off\n\tbridge-fd 0\n\n")


def test_an_ipv6_address_is_its_own_stanza_and_goes_when_its_family_goes() -> None:
    rows = [{"iface": "eth1", "type": "eth", "method": "static", "address": "192.168.0.2", "netmask": "24",
             "method6": "static", "address6": "fc05::2", "netmask6": "112", "gateway6": "fc05::1", "families": ["inet", "inet6"]}]
    text = write_config(rows)
    assert "iface eth1 inet static\n\taddress 192.168.0.2/24\n\n" in text
    assert "iface eth1 inet6 static\n\taddress fc05::2/112\n\tgateway fc05::1\n\n" in text
    only4 = reread([{**rows[0], "families": ["inet"]}])  # what update_network does to a PUT without address6
    assert "inet6" not in write_config(only4) and only4[0]["method6"] == "manual" and "address6" not in only4[0]


def test_bridge_vlan_aware_is_written_yes_whatever_its_value_and_read_as_1_whatever_the_file_says() -> None:
    # Interfaces.pm: the writer tests `defined`, the reader sets 1 for any bridge-vlan-aware line (L294-295)
    row = {"iface": "vmbr0", "type": "bridge", "bridge_ports": "", "bridge_vlan_aware": 0, "families": ["inet"], "method": "manual"}
    assert "\tbridge-vlan-aware yes\n\tbridge-vids 2-4094\n" in write_config([row])
    assert reread([row])[0]["bridge_vlan_aware"] == 1
    text = "auto vmbr0\niface vmbr0 inet manual\n\tbridge-ports none\n\tbridge-vlan-aware no\n"
    assert parse_config(text)[0]["bridge_vlan_aware"] == 1


def test_the_reader_lists_physical_nics_the_file_lacks_and_types_what_it_has() -> None:
    text = ("auto bond0\niface bond0 inet manual\n\tbond-slaves eno1 eno2\n\tbond-mode 1\n\n"
            "iface bond0.20 inet static\n\taddress 10.20.0.5/24\n\n"
            "auto vmbr0\niface vmbr0 inet static\n\taddress 10.0.0.5\n\tnetmask 255.255.255.0\n\tbridge_ports bond0\n\n"
            "source /etc/network/interfaces.d/*\n")
    rows = {r["iface"]: r for r in parse_config(text, physical=["eno1", "eno2"], active=["vmbr0"])}
    assert rows["eno1"] == {"iface": "eno1", "exists": 1, "type": "eth", "method": "manual", "method6": "manual", "families": ["inet"]}
    assert rows["bond0"]["type"] == "bond" and rows["bond0"]["bond_mode"] == "active-backup"  # numbers read as names
    assert rows["bond0.20"]["type"] == "vlan" and rows["bond0.20"]["vlan-id"] == "20" and rows["bond0.20"]["vlan-raw-device"] == "bond0"
    assert rows["vmbr0"]["cidr"] == "10.0.0.5/24" and rows["vmbr0"]["netmask"] == "24" and rows["vmbr0"]["active"] == 1
    assert rows["vmbr0"]["bridge_fd"] == 0 and rows["vmbr0"]["bridge_stp"] == "off"  # the reader's bridge defaults


@pytest.mark.parametrize(("rows", "message"), [
    ([{"iface": "vmbr0", "type": "bridge", "bridge_ports": "eno9"}], "bridge 'vmbr0' - unable to find bridge port 'eno9'"),
    ([{"iface": "eno1", "type": "eth", "method": "static", "address": "10.0.0.9"},
      {"iface": "vmbr0", "type": "bridge", "bridge_ports": "eno1"}], "iface eno1 - ip address can't be set on interface if bridged in vmbr0"),
    ([{"iface": "eno1", "type": "eth"}, {"iface": "vmbr0", "type": "bridge", "bridge_ports": "eno1"},
      {"iface": "vmbr1", "type": "bridge", "bridge_ports": "eno1"}], "port 'eno1' is already used on interface 'vmbr0'"),
    ([{"iface": "bond0", "type": "bond", "slaves": "eno1"}], "bond 'bond0' - unable to find slave 'eno1'"),
    ([{"iface": "vlan5", "type": "vlan", "vlan-raw-device": "eno7"}], "vlan 'vlan5' - unable to find parent 'eno7'"),
    ([{"iface": "eno1", "type": "eth", "mtu": 1500}, {"iface": "eno1.5", "type": "vlan", "mtu": 9000}],
     "interface 'eno1' - mtu 1500 is lower than 'eno1.5' - mtu 9000"),
])
def test_the_writer_refuses_what_pve_refuses_with_its_words(rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(NetworkConfigError, match=f"^{message.replace('(', '[(]').replace(')', '[)]')}$"):
        check_config(rows)


def _demo_rows() -> list[dict[str, Any]]:
    return [
        {"iface": "eno1", "type": "eth", "exists": 1, "active": 1, "method": "manual", "method6": "manual", "families": ["inet"], "priority": 3},
        {"iface": "eno2", "type": "eth", "exists": 1, "active": 1, "method": "manual", "method6": "manual", "families": ["inet"], "priority": 4},
        {"iface": "vmbr0", "type": "bridge", "active": 1, "autostart": 1, "bridge_ports": "eno1", "bridge_stp": "off", "bridge_fd": "0",
         "method": "static", "address": "10.0.0.11", "netmask": "24", "cidr": "10.0.0.11/24", "gateway": "10.0.0.1",
         "method6": "manual", "families": ["inet"], "priority": 5},
        {"iface": "vmbr1", "type": "bridge", "active": 1, "autostart": 1, "bridge_ports": "eno2", "bridge_stp": "off", "bridge_fd": "0",
         "method": "manual", "method6": "manual", "families": ["inet"], "comments": "lab\n", "priority": 6},
    ]


EDITS = {
    "a bridge added": lambda rows: rows + [{"iface": "vmbr9", "type": "bridge", "bridge_ports": "", "method": "manual", "families": ["inet"]}],
    "a bridge removed": lambda rows: [r for r in rows if r["iface"] != "vmbr1"],
    "an address moved": lambda rows: [{**r, "method": "manual"} if r["iface"] == "vmbr0" else
                                      {**r, "method": "static", "address": "10.0.0.11", "netmask": "24", "cidr": "10.0.0.11/24"}
                                      if r["iface"] == "vmbr1" else r for r in rows],
    "ports swapped": lambda rows: [{**r, "bridge_ports": {"vmbr0": "eno2", "vmbr1": "eno1"}[r["iface"]]}
                                   if r["iface"] in ("vmbr0", "vmbr1") else r for r in rows],
    "vlan awareness on": lambda rows: [{**r, "bridge_vlan_aware": 1} if r["iface"] == "vmbr1" else r for r in rows],
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_the_active_config_is_the_staged_one_with_the_pending_diff_taken_back(edit: str) -> None:
    active = reread(_demo_rows())
    staged = reread(EDITS[edit](copy.deepcopy(active)))
    changes = config_diff(write_config(active), write_config(staged))
    assert changes is not None and changes.startswith("--- /etc/network/interfaces\t") and "\n+++ /etc/network/interfaces.new\t" in changes
    assert active_rows(staged, changes) == active


def test_source_lines_the_rows_never_show_do_not_stop_the_diff_from_being_taken_back() -> None:
    # A real interfaces.new keeps the installer's `source /etc/network/interfaces.d/*` line after the last stanza,
    # so a hunk near the end carries it as context; the rows (and so the file Proximo writes) do not have it.
    active = reread(_demo_rows())
    staged = reread(EDITS["a bridge added"](copy.deepcopy(active)))
    tail = "\nsource /etc/network/interfaces.d/*\n"
    changes = config_diff(write_config(active) + tail, write_config(staged) + tail)
    assert changes is not None and " source /etc/network/interfaces.d/*" in changes
    assert active_rows(staged, changes) == active


def test_a_diff_that_does_not_fit_the_staged_config_is_refused_not_guessed() -> None:
    staged = reread(_demo_rows())
    foreign = ("--- /etc/network/interfaces\t2026-01-01\n+++ /etc/network/interfaces.new\t2026-01-01\n@@ -1,3 +1,3 @@\n"
               " iface eno7 inet manual\n-\tmtu 1500\n+\tmtu 9000\n")
    with pytest.raises(NetworkUnknown, match="is not in the staged configuration"):
        active_rows(staged, foreign)
    ambiguous = "@@ -1,2 +1,2 @@\n-\tbridge-stp on\n+\tbridge-stp off\n"  # both bridges have the line
    with pytest.raises(NetworkUnknown, match="more than one place"):
        reverse_diff(write_config(staged), ambiguous)
    node = Node(name="pve1", resource={}, index={}, status={}, network=staged, network_changes=foreign)
    assert node.bridge_exists("vmbr0") is None  # unknown, not guessed


def test_identical_files_have_no_pending_diff_as_diff_b_ignores_whitespace() -> None:
    text = write_config(reread(_demo_rows()))
    assert config_diff(text, text.replace("\t", "    ")) is None


def test_a_snapshot_and_the_simulators_get_keep_the_pending_changes_beside_data() -> None:
    active = reread(_demo_rows())
    staged = reread(EDITS["a bridge removed"](copy.deepcopy(active)))
    changes = config_diff(write_config(active), write_config(staged))
    api = {"/nodes": [{"node": "pve1", "status": "online"}], "/nodes/pve1/network": staged}
    model = from_api(api, {"/nodes/pve1/network": {"changes": changes}})
    assert render_members(model, "/nodes/pve1/network") == {"changes": changes}
    assert render(model, "/nodes/pve1/network") == staged
    doc = dump_snapshot(model)
    assert doc["extra"]["/nodes/pve1/network"] == {"changes": changes}
    again = from_api(doc["api"], doc["extra"])
    assert again.nodes["pve1"].network_changes == changes
    assert again.nodes["pve1"].bridge_exists("vmbr1") is True  # the node still runs it: only the staged file lacks it
    assert ClusterModel().fingerprint() != again.fingerprint()
    settled = from_api(doc["api"], {})
    assert settled.fingerprint()["nodes"] != again.fingerprint()["nodes"]  # a plan made with changes pending is not applied without


def test_get_network_filters_by_type_and_refuses_the_sdn_filters_it_cannot_answer() -> None:
    model = from_api({"/nodes": [{"node": "pve1", "status": "online"}], "/nodes/pve1/network": reread(_demo_rows())})
    assert [r["iface"] for r in render(model, "/nodes/pve1/network?type=any_bridge")] == ["vmbr0", "vmbr1"]
    assert [r["iface"] for r in render(model, "/nodes/pve1/network?type=eth")] == ["eno1", "eno2"]
    assert render(model, "/nodes/pve1/network/vmbr1")["comments"] == "lab\n"
    with pytest.raises(Exception, match="SDN is not modelled"):
        render(model, "/nodes/pve1/network?type=vnet")


def test_the_pending_diffs_header_times_are_not_part_of_the_fingerprint() -> None:
    """diff -u heads each file with its mtime (INotify.pm runs `diff -b -N -u`): the same change staged a second later
    is the same change, so a prediction made before the write still matches the cluster read after it; a different
    change is not."""
    from proximo.model._network import without_stamps

    active = reread(_demo_rows())
    staged = reread(EDITS["vlan awareness on"](copy.deepcopy(active)))
    active, staged = write_config(active), write_config(staged)
    early, late = config_diff(active, staged, when=1_000_000), config_diff(active, staged, when=1_000_001)
    assert early != late and without_stamps(early) == without_stamps(late)
    other = config_diff(active, staged.replace("bridge-vlan-aware yes", "bridge-vlan-aware yes\n\tmtu 9000"), when=1_000_000)
    assert without_stamps(other) != without_stamps(early)
