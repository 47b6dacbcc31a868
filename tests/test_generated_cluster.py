"""Plans on a mid-sized generated cluster (bench/gen_cluster.py): the analysers see every guest, node and job.

The benches use the same generator at 32 nodes and 4,000 guests; here 6 nodes and 300 guests keep the test quick.
What the plans must say is counted from the generated API answers, not from the model the plans use.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

from proximo.testing import World

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[1]
NODES, GUESTS, SEED = 6, 300, 7


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cluster", REPO / "bench" / "gen_cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    return _generator().generate(nodes=NODES, guests=GUESTS, seed=SEED)  # type: ignore[no-any-return]


def test_the_generator_is_deterministic_and_sized_as_asked(cluster: dict[str, Any]) -> None:
    gen = _generator()
    assert gen.generate(nodes=NODES, guests=GUESTS, seed=SEED) == cluster
    assert gen.generate(nodes=NODES, guests=GUESTS, seed=SEED + 1) != cluster
    api = cluster["api"]
    assert len(api["/nodes"]) == NODES
    guests = [r for r in api["/cluster/resources"] if r.get("type") in ("qemu", "lxc")]
    assert len(guests) == GUESTS + 15  # the demo's own 15 are kept
    for row in guests:  # every guest has its config where its row says it is
        assert f"/nodes/{row['node']}/{row['type']}/{row['vmid']}/config" in api


def _guests_needing(api: dict[str, Any], storage: str) -> set[str]:
    """Guests (``qemu/<vmid>``) whose config has a volume on ``storage`` that is activated at start (not a CD-ROM
    image on another storage, not ``unusedN``), read from the API answers themselves."""
    found = set()
    for path, config in api.items():
        m = re.fullmatch(r"/nodes/[^/]+/(qemu|lxc)/(\d+)/config", path)
        if not m:
            continue
        for key, value in config.items():
            if re.fullmatch(r"(scsi|virtio|sata|ide|efidisk|tpmstate|mp|rootfs)\d*", key) and str(value).startswith(f"{storage}:"):
                found.add(f"{m.group(1)}/{m.group(2)}")
    return found


async def test_deleting_a_storage_names_every_guest_that_will_not_boot(tmp_path: Path, cluster: dict[str, Any]) -> None:
    world = World(tmp_path, cluster)
    async with world.offline() as host:
        plan = await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
    templates = {f"{r['type']}/{r['vmid']}" for r in cluster["api"]["/cluster/resources"] if r.get("template")}
    expected = _guests_needing(cluster["api"], "local-zfs")
    assert len(expected) > 50
    assert {i.target for i in plan.impacts if i.effect == "wont-boot"} == expected - templates
    assert plan.complete and not plan.unseen


async def test_a_cluster_firewall_rule_reaches_every_node_and_no_guest(tmp_path: Path, cluster: dict[str, Any]) -> None:
    """Cluster rules filter host traffic only (pve-firewall Firewall.pm: ruleset_generate_host_rules reads them,
    ruleset_generate_vm_rules does not): every node's verdict changes, no guest's."""
    world = World(tmp_path, cluster)
    rule = {"level": "cluster", "type": "in", "action": "DROP", "proto": "tcp", "dport": "8006", "enable": 1}
    async with world.offline() as host:
        plan = await host.plan("firewall.rule.add", rule, world.actor)
    blocked = {i.target for i in plan.impacts if i.effect == "traffic-blocked"}
    assert blocked == {f"node/{row['node']}" for row in cluster["api"]["/nodes"]}
    assert all("tcp/8006" in i.reason for i in plan.impacts if i.effect == "traffic-blocked")


def _moved_by_spec(before: Any, after: Any) -> list[int]:
    from proximo_firewall._impact import _guest_inputs

    return [v for v in sorted(set(before.guests) & set(after.guests)) if _guest_inputs(before, v) != _guest_inputs(after, v)]


@pytest.mark.parametrize("edit", ["nothing", "guest-net", "guest-memory", "guest-rule", "group-rule", "node-network",
                                  "node-network-staged", "corosync-address", "cluster-alias", "guest-moves",
                                  "cluster-policy", "cluster-off"])
def test_the_firewall_analyser_finds_the_same_guests_as_comparing_every_guests_inputs(cluster: dict[str, Any], edit: str) -> None:
    """The analyser compares what guests share once (``_guests_whose_inputs_moved``); it must pick exactly the
    guests whose full inputs (``_guest_inputs``, the definition) differ."""
    from proximo_firewall._impact import _guests_whose_inputs_moved

    from proximo.model import from_api
    from proximo.model._firewall import FirewallLevel

    before = from_api(cluster["api"], cluster.get("extra"))
    vmids = sorted(before.guests)
    # one guest uses the security group web-in (pve-firewall: a rule of type group names the group in its action)
    before.firewall.guests[vmids[7]] = FirewallLevel(rules=[{"type": "group", "action": "web-in", "enable": 1, "pos": 0}])
    after = before.copy()
    guest = after.guests[vmids[40]]
    if edit == "guest-net":
        guest.config["net0"] = "virtio=BC:24:11:00:00:01,bridge=vmbr1,firewall=1"
    elif edit == "guest-memory":
        guest.config["memory"] = "8192"
    elif edit == "guest-rule":
        level = next(iter(after.firewall.guests.values()))
        level.rules.append({"type": "in", "action": "DROP", "proto": "tcp", "dport": "22", "enable": 1, "pos": 99})
    elif edit == "group-rule":
        after.firewall.groups["web-in"].rules.append({"type": "in", "action": "DROP", "proto": "udp", "dport": "53", "enable": 1})
    elif edit == "node-network":
        node = after.nodes[guest.node]
        node.network = [*node.network, {"iface": "vmbr9", "type": "bridge", "active": 1}]
    elif edit == "node-network-staged":  # a pending diff: what the node runs differs from the rows GET lists
        node = after.nodes[guest.node]
        node.network_changes = "@@ -1 +1 @@\n-auto lo\n+auto lo\n"
    elif edit == "corosync-address":  # local_network falls back to ring0_addr when /cluster/status has no ip
        for m in (before, after):
            m.cluster_status = [r for r in m.cluster_status if r.get("name") != guest.node]
        row = next(r for r in after.corosync_nodes if (r.get("name") or r.get("node")) == guest.node)
        row["ring0_addr"] = "192.0.2.99"
    elif edit == "cluster-alias":
        after.firewall.cluster.aliases.append({"name": "extra", "cidr": "10.99.0.0/16"})
    elif edit == "guest-moves":
        guest.node = next(n for n in sorted(after.nodes) if n != guest.node)
    elif edit == "cluster-policy":  # the cluster's policies are the host chains': no guest's verdicts move
        after.firewall.cluster.options["policy_in"] = "ACCEPT"
    elif edit == "cluster-off":
        after.firewall.cluster.options["enable"] = 0
    moved = _guests_whose_inputs_moved(before, after)
    assert moved == _moved_by_spec(before, after)
    assert (moved == []) == (edit in ("nothing", "guest-memory", "cluster-policy"))
    if edit == "cluster-off":
        assert moved == sorted(after.guests)
    if edit == "group-rule":
        assert moved == [vmids[7]]


@pytest.mark.parametrize("edit", ["nothing", "guest-net-bridge-gone", "guest-protection-off", "guest-disk-removed",
                                  "node-network", "guest-moves", "guest-memory"])
def test_the_guest_config_analyser_judges_the_same_as_when_it_looks_at_every_guest(cluster: dict[str, Any], edit: str) -> None:
    """``config_effects`` judges only the guests whose struct or node network moved; judging every guest must find
    exactly the same."""
    from proximo_guests._impact import _guests_that_moved, config_effects

    from proximo.model import from_api

    before = from_api(cluster["api"], cluster.get("extra"))
    vmids = sorted(before.guests)
    before.guests[vmids[3]].config["protection"] = 1
    after = before.copy()
    guest = after.guests[vmids[40]]
    if edit == "guest-net-bridge-gone":
        guest.config["net0"] = "virtio=BC:24:11:00:00:01,bridge=vmbr7"
    elif edit == "guest-protection-off":
        after.guests[vmids[3]].config.pop("protection")
    elif edit == "guest-disk-removed":
        key = next(k for k in sorted(guest.config) if k in ("scsi0", "virtio0", "sata0", "rootfs"))
        guest.config.pop(key)
    elif edit == "node-network":  # every guest on the node with a NIC on vmbr0 loses its bridge
        node = after.nodes[guest.node]
        node.network = [row for row in node.network or [] if row.get("iface") != "vmbr0"]
    elif edit == "guest-moves":
        guest.node = next(n for n in sorted(after.nodes) if n != guest.node)
    elif edit == "guest-memory":
        guest.config["memory"] = "8192"
    found = list(config_effects(before, after))
    assert found == list(config_effects(before, after, vmids=before.guests))
    assert (found == []) == (edit in ("nothing", "guest-memory", "guest-moves")), found
    if edit == "node-network":
        assert len({i.target for i in found}) > 1
    assert len(_guests_that_moved(before, after)) <= (1 if edit != "node-network" else GUESTS)


# --- the firewall analyser against a straightforward one -----------------------------------------------------


def _reference_firewall_impacts(change: Any, before: Any, after: Any) -> list[Any]:
    """The firewall analyser written plainly: every node and every guest in both models is probed, every probe
    evaluated on both models, packet by packet (what ``proximo_firewall._impact`` did before it skipped what cannot
    move). The analyser must find exactly these impacts, in this order."""
    from proximo_firewall._eval import Packet, evaluate_guest, firewalled_nics, remembering_local_networks
    from proximo_firewall._impact import (
        _probes,
        _summarise,
        firewall_of_missing_guests,
        jumps_to_missing_groups,
        node_impacts,
    )

    if not (before.firewall.read or after.firewall.read):
        return []
    admin = list(getattr(getattr(change, "operator", None), "admin_sources", []) or [])
    with remembering_local_networks():
        impacts = [*jumps_to_missing_groups(before, after), *firewall_of_missing_guests(before, after)]
        for node in sorted(after.nodes):
            impacts += node_impacts(before, after, node, admin)
        for vmid in sorted(set(before.guests) & set(after.guests)):
            guest = after.guests[vmid]
            sources, ports = _probes(before, after, [], vmid=vmid)
            nics = sorted(set(firewalled_nics(after, vmid)) | set(firewalled_nics(before, vmid)))
            for iface in nics:
                changes = []
                for label, src in sorted(sources.items()):
                    for proto, port in ports:
                        pkt = Packet(direction="in", iface=iface, source=src, proto=proto, dport=port)
                        try:
                            old = evaluate_guest(before, vmid, iface, pkt)
                            new = evaluate_guest(after, vmid, iface, pkt)
                        except KeyError:
                            continue
                        if (old.verdict == "ACCEPT") != (new.verdict == "ACCEPT"):
                            changes.append((label, proto, port, old, new))
                target = guest.sid if iface == "net0" or len(nics) == 1 else f"{guest.sid}/{iface}"
                impacts += _summarise(target, changes)
    return impacts


def _firewall_world(cluster: dict[str, Any]) -> Any:
    """The generated cluster with what makes guests differ: a second firewalled NIC, a NIC without firewall=1 on
    a guest whose firewall is on, a guest firewall off with rules, a jump to a group, a guest alias and IP set."""
    from proximo.model import from_api
    from proximo.model._firewall import FirewallIpset, FirewallLevel

    model = from_api(cluster["api"], cluster.get("extra"))
    fw = model.firewall
    on = [v for v in sorted(fw.guests) if v in model.guests and str(fw.guests[v].options.get("enable")) == "1"]
    assert len(on) > 20
    a, b, c, d, e = on[:5]
    model.guests[a].config["net1"] = "virtio=BC:24:11:00:00:02,bridge=vmbr0,firewall=1"
    model.guests[b].config["net0"] = str(model.guests[b].config["net0"]).replace(",firewall=1", "")
    fw.guests[c].options["enable"] = 0
    fw.guests[d].rules.insert(0, {"type": "group", "action": "web-in", "enable": 1, "pos": 0})
    fw.guests[e].aliases.append({"name": "office", "cidr": "172.16.5.0/24"})
    fw.guests[e].ipsets["friends"] = FirewallIpset(entries=[{"cidr": "172.17.0.0/16"}, {"cidr": "172.17.9.0/24", "nomatch": 1}])
    fw.guests[e].rules.insert(0, {"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "443", "source": "+friends", "enable": 1, "pos": 0})
    fw.guests[e].rules.insert(0, {"type": "in", "action": "REJECT", "proto": "tcp", "dport": "25", "source": "office", "enable": 1, "pos": 0})
    fw.guests[on[5]].rules.insert(0, {"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "8080", "source": "dc/net1", "enable": 1, "pos": 0})
    fw.guests.setdefault(on[-1], FirewallLevel()).options["policy_in"] = "ACCEPT"
    return model


@pytest.mark.parametrize("edit", ["cluster-off", "cluster-on", "cluster-off-timestamp", "cluster-policy-in", "cluster-rule",
                                  "cluster-alias", "guest-rule", "group-rule", "guest-firewall-off", "admin-cluster-off"])
def test_the_firewall_analyser_finds_what_probing_every_guest_finds(cluster: dict[str, Any], edit: str) -> None:
    """Every impact (target, effect, reason, risk) byte for byte as the plain analyser finds them, in the same order,
    for cluster-wide changes (the firewall off and on, a policy, a rule, an alias) and ones that touch a few guests."""
    from proximo_firewall._impact import firewall_impacts

    from proximo import Operator

    before = _firewall_world(cluster)
    fw = before.firewall
    if edit == "cluster-on":
        fw.cluster.options["enable"] = 0
    after = before.copy()
    change = None
    if edit in ("cluster-off", "admin-cluster-off"):
        after.firewall.cluster.options["enable"] = 0
        if edit == "admin-cluster-off":
            change = type("Change", (), {"operator": Operator(admin_sources=["10.0.0.5", "not-an-address"])})()
    elif edit == "cluster-on":
        after.firewall.cluster.options["enable"] = 1
    elif edit == "cluster-off-timestamp":  # the anti-lockout timestamp: off once older than 60 s
        after.firewall.cluster.options["enable"] = 1700000000
    elif edit == "cluster-policy-in":
        after.firewall.cluster.options["policy_in"] = "ACCEPT"
    elif edit == "cluster-rule":
        after.firewall.cluster.rules.insert(0, {"type": "in", "action": "DROP", "proto": "tcp", "dport": "22", "enable": 1, "pos": 0})
    elif edit == "cluster-alias":
        alias = next(a for a in after.firewall.cluster.aliases if a.get("name") == "net1")  # a guest's rule names it
        alias["cidr"] = "10.250.0.0/16"
    elif edit == "guest-rule":
        vmid = next(v for v in sorted(after.firewall.guests) if v in after.guests and after.firewall.guests[v].rules
                    and str(after.firewall.guests[v].options.get("enable")) == "1")
        after.firewall.guests[vmid].rules.insert(0, {"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "1024:65535", "enable": 1, "pos": 0})
    elif edit == "group-rule":
        after.firewall.groups["web-in"].rules.insert(0, {"type": "in", "action": "DROP", "proto": "tcp", "dport": "443", "enable": 1})
    elif edit == "guest-firewall-off":
        vmid = next(v for v in sorted(after.firewall.guests) if v in after.guests and str(after.firewall.guests[v].options.get("enable")) == "1")
        after.firewall.guests[vmid].options["enable"] = 0
    found = firewall_impacts(change, before, after)
    expected = _reference_firewall_impacts(change, before, after)
    assert [msgspec.json.encode(i) for i in found] == [msgspec.json.encode(i) for i in expected]
    assert expected  # something to compare
    if edit.endswith(("cluster-off", "cluster-on", "timestamp")):
        assert len({i.target for i in expected if not i.target.startswith("node/")}) > 50  # many guests' verdicts move


def test_a_verdict_guests_share_is_each_guests_own(cluster: dict[str, Any]) -> None:
    """``SharedChains`` works a packet's verdict out once for the guest NICs whose inbound chains read the same, and
    hands it to each with its own name: it must equal what evaluate_guest answers for that guest, field for field
    (``decided_by``, ``level``, notes, the deciding rule), for every probe the analyser sends."""
    from proximo_firewall._eval import Packet, Verdict, evaluate_guest, firewalled_nics, guest_gate, local_network
    from proximo_firewall._impact import SharedChains, _probes

    model = _firewall_world(cluster)
    fw = model.firewall
    # guests with the same level on one node; some jump to a group that does not exist (a note names the guest)
    plain = [v for v in sorted(fw.guests) if v in model.guests and str(fw.guests[v].options.get("enable")) == "1"
             and not fw.guests[v].rules and firewalled_nics(model, v)]
    node = max({model.guests[v].node for v in plain}, key=lambda n: sum(model.guests[v].node == n for v in plain))
    alike = [v for v in plain if model.guests[v].node == node]
    assert len(alike) >= 4
    for vmid in alike[:2]:
        fw.guests[vmid].rules = [{"type": "group", "action": "nosuch", "enable": 1, "pos": 0},
                                 {"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "22", "enable": 1, "pos": 1}]
    shared, asked, names, chains = SharedChains(), 0, set(), {}
    for vmid in sorted(model.guests):
        sources, ports = _probes(model, model, [], vmid=vmid)
        local = local_network(model, model.guests[vmid].node)
        for iface in firewalled_nics(model, vmid):
            gate = guest_gate(model, vmid, iface)
            if isinstance(gate, Verdict):
                continue
            chain = chains[vmid] = shared.chain(model, gate, iface, local)
            for src in sources.values():
                for proto, port in ports:
                    pkt = Packet(direction="in", iface=iface, source=src, proto=proto, dport=port)
                    got = shared.verdict(model, gate, chain, iface, pkt, local)
                    assert got == evaluate_guest(model, vmid, iface, pkt), (vmid, pkt)
                    asked += 1
                    names.update([got.decided_by, *got.notes])
    assert len(shared._verdicts) < asked * 0.7  # shared: not worked out once per guest
    assert chains[alike[0]] == chains[alike[1]] != chains[alike[2]] == chains[alike[3]]
    for vmid in alike[:2]:
        sid = model.guests[vmid].sid
        assert f"{sid} rule 1" in names and f"{sid} rule 0 jumps to security group 'nosuch', which does not exist" in names
