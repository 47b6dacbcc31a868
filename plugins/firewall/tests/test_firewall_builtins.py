"""Built-in rules Proxmox compiles that no .fw file shows, checked on the world of Proxmox's own test suite.

pve-firewall src/PVE/Firewall.pm: ruleset_generate_host_rules (corosync: multicast when the totem transport is udp;
otherwise only between this node's and a peer's address on the same ring), and compile_ipsets (an ipfilter-netN
set holds its entries plus the NIC's link-local address, fe80::/10 as nomatch, and a container's own ip/ip6
address, not its network).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from test_pve_cases import _model

from proximo.model import ClusterModel
from proximo_firewall._eval import Packet, evaluate, mac_to_linklocal


def _host_in(model: ClusterModel, source: str, dest: str, dport: int = 5405) -> str:
    return evaluate(model, "node/proxself", Packet(direction="in", source=source, dest=dest, proto="udp", dport=dport)).verdict


def _host_out(model: ClusterModel, source: str, dest: str, dport: int = 5405) -> str:
    return evaluate(model, "node/proxself", Packet(direction="out", source=source, dest=dest, proto="udp", dport=dport)).verdict


@pytest.mark.parametrize(("source", "dest", "verdict"), [
    ("172.16.1.11", "172.16.1.2", "ACCEPT"),  # ring0 to ring0
    ("172.16.2.11", "172.16.2.2", "ACCEPT"),  # ring1: a peer outside the local network, on its own ring
    ("172.16.2.11", "172.16.1.2", "DROP"),    # a ring1 peer to this node's ring0 address: not the same ring
    ("172.16.1.2", "172.16.1.2", "DROP"),     # this node is not its own peer
    ("10.9.9.9", "172.16.1.2", "DROP"),       # not a cluster node
])
def test_corosync_between_this_node_and_a_peer_on_the_same_ring_only(source: str, dest: str, verdict: str) -> None:
    model = _model("test-basic1")
    model.firewall.cluster.options["policy_in"] = "DROP"
    assert _host_in(model, source, dest) == verdict


def test_corosync_links_written_as_link_n_addr_count_as_rings() -> None:
    """PVE::Corosync $link_addr_re: a nodelist may name its links linkN_addr (pvecm's newer spelling)."""
    model = _model("test-basic1")
    model.firewall.cluster.options["policy_in"] = "DROP"
    model.corosync_nodes = [{("link1_addr" if key == "ring1_addr" else key): value for key, value in row.items()}
                            for row in model.corosync_nodes]
    assert _host_in(model, "172.16.2.11", "172.16.2.2") == "ACCEPT"
    assert _host_in(model, "172.16.2.11", "172.16.1.2") == "DROP"


def test_corosync_out_follows_the_same_rings_when_policy_out_drops() -> None:
    model = _model("test-basic1")
    model.firewall.cluster.options["policy_out"] = "DROP"
    assert _host_out(model, "172.16.2.2", "172.16.2.11") == "ACCEPT"
    assert _host_out(model, "172.16.1.2", "172.16.2.11") == "DROP"


@pytest.mark.parametrize(("transport", "verdict"), [("udp", "ACCEPT"), ("knet", "DROP"), (None, "DROP")])
def test_corosync_multicast_only_with_the_udp_transport(transport: str | None, verdict: str) -> None:
    model = _model("test-basic1")
    model.firewall.cluster.options["policy_in"] = "DROP"
    if transport is None:
        model.other.pop("/cluster/config/totem", None)
    else:
        model.other["/cluster/config/totem"] = {**model.other["/cluster/config/totem"], "transport": transport}
    assert _host_in(model, "172.16.1.11", "239.192.1.1") == verdict


def _ct_out(model: ClusterModel, source: str) -> str:
    return evaluate(model, "lxc/200", Packet(direction="out", iface="net0", source=source, dest="10.0.0.1", proto="tcp",
                                             dport=80)).verdict


def _ipfilter(model: ClusterModel, entries: list[dict[str, Any]] | None = None) -> ClusterModel:
    level = model.firewall.guest(200)
    level.options["ipfilter"] = 1
    level.options["policy_out"] = "ACCEPT"
    if entries is not None:
        from proximo.model import FirewallIpset

        level.ipsets["ipfilter-net0"] = FirewallIpset(entries=entries)
    return model


def test_a_containers_ipfilter_holds_its_address_not_its_network() -> None:
    model = _ipfilter(_model("test-basic1"))  # ct200 net0: ip=10.0.200.1/24, hwaddr=0E:18:24:41:2C:43
    assert _ct_out(model, "10.0.200.1") == "ACCEPT"
    assert _ct_out(model, "10.0.200.7") == "DROP"  # the /24 is not the container's to send from


def test_the_nics_own_link_local_address_passes_and_no_other() -> None:
    model = _ipfilter(_model("test-basic1"))
    own = mac_to_linklocal("0E:18:24:41:2C:43")
    assert ipaddress.ip_address(own) == ipaddress.ip_address("fe80::c18:24ff:fe41:2c43")  # EUI-64, U/L bit flipped
    assert _ct_out(model, own) == "ACCEPT"
    assert _ct_out(model, "fe80::1") == "DROP"


def test_a_nomatch_entry_excludes_an_address_a_wider_entry_holds() -> None:
    model = _ipfilter(_model("test-basic1"), [{"cidr": "10.0.200.0/24"}, {"cidr": "10.0.200.66", "nomatch": 1}])
    assert _ct_out(model, "10.0.200.65") == "ACCEPT"
    assert _ct_out(model, "10.0.200.66") == "DROP"
