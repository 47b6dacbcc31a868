"""Blast radius of firewall changes: lockout and reach, found by evaluating probe flows on both models.

Only the nodes and guests whose verdicts can change are analysed (what each one's packets can meet changed), and
each is probed with the flows that can tell the two models apart for it: every source address the rules it meets
name (through aliases and IP sets as they resolve for it; plus one internet address that none of them holds, the
operator's addresses and local_network), and every port those rules or their macros name (plus the management and
sensitive ports). A flow whose verdict differs between before and after is reported; nothing else is guessed.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import msgspec

from proximo import Impact, NotRead, Risk
from proximo.model import ClusterModel, FirewallLevel

from ._eval import (
    MANAGEMENT_PORTS,
    GuestNic,
    Packet,
    RuleError,
    Scope,
    Verdict,
    _alias_cidr,
    _ipset,
    _network,
    _safe_ip,
    cluster_enabled,
    evaluate_node,
    firewalled_nics,
    evaluate_guest_nic,
    guest_gate,
    local_network,
    macro_rules,
    node_gate,
    port_ranges,
    remembering_local_networks,
)

API_PORT = 8006
SSH_PORT = 22
# Opening these to the whole internet is HIGH: remote shells/desktops, the PVE API, and databases.
SENSITIVE_PORTS: dict[int, str] = {22: "SSH", 23: "telnet", 3389: "RDP", 8006: "PVE API", 3306: "MySQL", 5432: "PostgreSQL",
                                   6379: "Redis", 27017: "MongoDB", 1433: "MS SQL", 9200: "Elasticsearch", 11211: "memcached",
                                   445: "SMB", 2375: "Docker API", 111: "rpcbind", 2049: "NFS"}
SENSITIVE_RANGES = [(5900, 5999, "VNC")]
INTERNET_CANDIDATES = ("198.51.100.77", "203.0.113.77", "192.0.2.77", "100.64.77.77", "8.8.4.4")
INTERNET = "0.0.0.0/0"


def sensitive(port: int) -> str | None:
    if port in SENSITIVE_PORTS:
        return SENSITIVE_PORTS[port]
    return next((name for a, b, name in SENSITIVE_RANGES if a <= port <= b), None)


def labelled_levels(model: ClusterModel, *, guests: bool = True) -> Iterator[tuple[str, FirewallLevel]]:
    """Every firewall file with a name for people: cluster, node/<n>, qemu/<vmid> (guest <vmid> when it does not exist)."""
    fw = model.firewall
    yield "cluster", fw.cluster
    yield from ((f"node/{n}", level) for n, level in sorted(fw.nodes.items()))
    if guests:
        yield from ((model.guests[v].sid if v in model.guests else f"guest {v}", level) for v, level in sorted(fw.guests.items()))


def _levels(model: ClusterModel, *, guests: bool = True) -> Iterator[FirewallLevel]:
    fw = model.firewall  # what labelled_levels yields, without the names
    yield fw.cluster
    yield from fw.nodes.values()
    if guests:
        yield from fw.guests.values()


# --- what one target's packets can meet ------------------------------------------------------------------
# A node's packets meet the cluster's rules and its own (Firewall.pm ruleset_generate_host_rules); a guest's meet only
# its own (ruleset_generate_vm_rules reads the guest's file: cluster rules never filter guest traffic); either meets
# the security groups those rules jump to (a group cannot jump further: verify_rule refuses type group in a group).
# Names resolve in the guest's aliases and IP sets, then the cluster's (resolve_alias). So a target is analysed only
# when what it can meet changed, and probed only with the addresses and ports that can decide its verdicts: an
# address no rule it meets names behaves like the internet probe.


def _groups_used(rule_lists: list[list[dict[str, Any]]]) -> list[str]:
    return sorted({str(r.get("action")) for rules in rule_lists for r in rules if r.get("type") == "group"})


def _met_rules(model: ClusterModel, own: FirewallLevel | None, *, host: bool) -> list[list[dict[str, Any]]]:
    """The rule lists a node's (``host``) or a guest's packets can meet: its own, the cluster's for a node, the groups."""
    fw = model.firewall
    lists = [own.rules if own else [], *([fw.cluster.rules] if host else [])]
    return lists + [fw.groups[g].rules for g in _groups_used(lists) if g in fw.groups]


def _named_networks(model: ClusterModel, rule_lists: list[list[dict[str, Any]]], own: FirewallLevel | None) -> dict[str, str]:
    """label -> a representative address, for every address the rules name (through aliases and IP sets as they
    resolve for this target) and every alias and IP set entry of the target's own level."""
    scope = Scope(guest=own, cluster=model.firewall.cluster, local_network=None)
    specs: list[str] = []
    for rules in rule_lists:
        for rule in rules:
            for key in ("source", "dest"):
                spec = str(rule.get(key) or "").strip()
                if spec.startswith("+"):
                    try:
                        specs += [str(e.get("cidr")) for e in _ipset(scope, spec[1:])[0]]
                    except RuleError:
                        continue
                elif spec:
                    for part in spec.split(","):
                        specs.append(part if _network(part) else str(_alias_cidr(scope, part) or ""))
    if own is not None:
        specs += [str(a.get("cidr")) for a in own.aliases]
        specs += [str(e.get("cidr")) for s in own.ipsets.values() for e in s.entries]
    out: dict[str, str] = {}
    for spec in specs:
        nets = _network(spec) if spec else None
        if nets:
            out[spec] = _representative(nets[0])
    return out


def _representative(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return str(net.network_address + 1 if net.num_addresses > 2 else net.network_address)


def _ports(rule_lists: list[list[dict[str, Any]]]) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for rules in rule_lists:
        for rule in rules:
            lines = [rule]
            if rule.get("macro"):
                try:
                    lines = [{**line, **{k: v for k, v in rule.items() if k in ("proto", "dport") and v}} for line in macro_rules(str(rule["macro"]), 4)]
                except RuleError:
                    continue
            for line in lines:
                proto = str(line.get("proto") or "tcp")
                if proto not in ("tcp", "udp") or not line.get("dport"):
                    continue
                try:
                    for a, b in port_ranges(line["dport"]):
                        found |= {(proto, a), (proto, b)}
                except RuleError:
                    continue
    return found


def _builtin_networks(m: ClusterModel, *, node: str | None, vmid: int | None) -> dict[str, str]:
    """The addresses the built-in rules name (Firewall.pm ruleset_generate_host_rules, ruleset_add_guest_default_rules):
    the target's local_network; the cluster IP sets ``blacklist`` and, for a node, ``management``; a node's corosync
    peers."""
    guest = m.guests.get(vmid) if vmid is not None else None
    where = node if node is not None else guest.node if guest is not None else None
    specs = [str(e.get("cidr")) for name in ("blacklist", *(("management",) if node is not None else ()))
             if name in m.firewall.cluster.ipsets for e in m.firewall.cluster.ipsets[name].entries]
    network = local_network(m, where) if where is not None else None
    specs += [str(network)] if network is not None else []
    if node is not None:
        specs += [str(v) for row in m.corosync_nodes for k, v in row.items() if re.fullmatch(r"(ring|link)\d+_addr", k)]
    out: dict[str, str] = {}
    for spec in specs:
        nets = _network(spec)
        if nets:
            out[spec] = _representative(nets[0])
    return out


def _probes(before: ClusterModel, after: ClusterModel, admin: list[str], *, node: str | None = None,
            vmid: int | None = None) -> tuple[dict[str, str], list[tuple[str, int]]]:
    """The flows that can tell ``before`` and ``after`` apart for one node or one guest."""
    sources: dict[str, str] = {}
    ports: set[tuple[str, int]] = set()
    for m in (before, after):
        own = m.firewall.nodes.get(node) if node is not None else m.firewall.guests.get(vmid) if vmid is not None else None
        met = _met_rules(m, own, host=node is not None)
        sources.update(_named_networks(m, met, own if node is None else None))
        ports |= _ports(met)
        sources.update(_builtin_networks(m, node=node, vmid=vmid))
    held = [n for spec in sources for n in (_network(spec) or [])]
    internet = next(c for c in INTERNET_CANDIDATES if not any(ipaddress.ip_address(c) in n for n in held if n.version == 4))
    sources[INTERNET] = internet
    for spec in admin:
        nets = _network(spec)
        if nets:
            sources[spec] = _representative(nets[0])
    ports |= {("tcp", a) for a, _, _ in MANAGEMENT_PORTS} | {("tcp", p) for p in SENSITIVE_PORTS} | {("tcp", 5900)}
    return sources, sorted(ports)


def node_ip(model: ClusterModel, node: str) -> str | None:
    for row in model.cluster_status:
        if row.get("type") == "node" and row.get("name") == node and row.get("ip"):
            return str(row["ip"])
    return None


def _node_iface(model: ClusterModel, node: str) -> str | None:
    """The interface holding the node's address: where the operator's packets arrive."""
    ip = _safe_ip(node_ip(model, node))
    n = model.nodes.get(node)
    for row in (n.network or []) if n and ip else []:
        for key in ("cidr", "cidr6"):
            try:
                if row.get(key) and ip in ipaddress.ip_interface(str(row[key])).network:
                    return str(row.get("iface"))
            except ValueError:
                continue
    return None


def _used_groups(m: ClusterModel, own: FirewallLevel | None, *, host: bool) -> dict[str, Any]:
    fw = m.firewall
    return {g: fw.groups.get(g) for g in _groups_used([own.rules if own else [], *([fw.cluster.rules] if host else [])])}


def _node_inputs(m: ClusterModel, node: str) -> Any:
    fw = m.firewall
    n = m.nodes.get(node)
    own = fw.nodes.get(node)
    return (fw.read, fw.cluster, _used_groups(m, own, host=True), own, m.corosync_nodes,
            (n.network, n.network_changes) if n else None, node_ip(m, node))


def _guest_inputs(m: ClusterModel, vmid: int) -> Any:
    """What a guest's verdicts depend on: not the cluster's rules (they filter only host traffic), and of the
    cluster's options only whether its firewall is on (the policies are the host chains'; evaluate_guest reads no
    other)."""
    fw = m.firewall
    g = m.guests.get(vmid)
    own = fw.guests.get(vmid)
    n = m.nodes.get(g.node) if g else None
    # the node's network as it runs (staged rows and the pending diff) and local_network itself: it falls back to
    # the node's corosync ring0_addr when /cluster/status has no address for it
    return (fw.read, cluster_enabled(m), fw.cluster.aliases, fw.cluster.ipsets, _used_groups(m, own, host=False), own,
            _nets(g.config if g else {}), g.node if g else None,
            (n.network, n.network_changes) if n else None, node_ip(m, g.node) if g else None,
            str(local_network(m, g.node)) if g else None)


def _word(v: Verdict) -> str:
    return {"ACCEPT": "accepted", "DROP": "dropped", "REJECT": "rejected"}[v.verdict]


def _summarise(target: str, changes: list[tuple[str, str, int, Verdict, Verdict]]) -> Iterator[Impact]:
    """One impact per (change, deciding rule, set of ports): "tcp/443 from 0.0.0.0/0 now dropped by group web-in rule 2"."""
    per_source: dict[tuple[str, str, str, str], set[tuple[str, int]]] = defaultdict(set)
    for label, proto, port, _old, new in changes:
        effect = "traffic-opened" if new.verdict == "ACCEPT" else "traffic-blocked"
        per_source[(effect, _word(new), new.decided_by, label)].add((proto, port))
    buckets: dict[tuple[str, str, str, tuple[tuple[str, int], ...]], list[str]] = defaultdict(list)
    for (effect, word, by, label), flows in per_source.items():
        buckets[(effect, word, by, tuple(sorted(flows)))].append(label)
    for (effect, word, by, flows), labels in sorted(buckets.items()):
        ports = [f"{p}/{n}" for p, n in flows]
        sources = sorted(labels)
        reason = (f"{', '.join(ports[:10])}{f' and {len(ports) - 10} more ports' if len(ports) > 10 else ''} from "
                  f"{', '.join(sources[:6])}{' ...' if len(sources) > 6 else ''} now {word} by {by}")
        risky = sorted({f"{p}/{n} ({sensitive(n)})" for p, n in flows if p == "tcp" and sensitive(n)}) if INTERNET in labels else []
        if effect == "traffic-opened" and risky:
            yield Impact(target, "traffic-opened", f"{reason}; opens {', '.join(risky)} to the whole internet", risk=Risk.HIGH)
        else:
            yield Impact(target, effect, reason, risk=Risk.MEDIUM)  # type: ignore[arg-type]


def node_impacts(before: ClusterModel, after: ClusterModel, node: str, admin: list[str]) -> Iterator[Impact]:
    sources, ports = _probes(before, after, admin, node=node)
    iface = _node_iface(after, node)
    dest = node_ip(after, node)

    local = {id(m): local_network(m, node) for m in (before, after)}
    gates = {id(m): node_gate(m, node) for m in (before, after)}  # one verdict for every packet, when no chain filters

    def verdict(m: ClusterModel, src: str, proto: str, port: int) -> Verdict:
        gate = gates[id(m)]
        if gate is not None:
            return gate
        return evaluate_node(m, node, Packet(direction="in", iface=iface, source=src, dest=dest, proto=proto, dport=port),
                             local=local[id(m)])

    target = f"node/{node}"
    for spec in admin:
        nets = _network(spec)
        if not nets:
            yield Impact(target, "lockout", f"cannot check lockout: PROXIMO_ADMIN_SOURCES entry {spec!r} is not an address or network", risk=Risk.HIGH)
            continue
        src = sources[spec]
        api_old, api_new = verdict(before, src, "tcp", API_PORT), verdict(after, src, "tcp", API_PORT)
        if api_old.verdict == "ACCEPT" and api_new.verdict != "ACCEPT":
            yield Impact(target, "lockout", f"the operator ({spec}) can no longer reach the API on tcp/{API_PORT}: "
                         f"{_word(api_new)} by {api_new.decided_by}", risk=Risk.CRITICAL, needs_person=True)
        elif api_new.verdict == "ACCEPT":
            ssh_old, ssh_new = verdict(before, src, "tcp", SSH_PORT), verdict(after, src, "tcp", SSH_PORT)
            if ssh_old.verdict == "ACCEPT" and ssh_new.verdict != "ACCEPT":
                yield Impact(target, "traffic-blocked", f"the operator ({spec}) loses SSH (tcp/22): {_word(ssh_new)} by {ssh_new.decided_by}; "
                             f"the API on tcp/{API_PORT} stays reachable", risk=Risk.HIGH)
    changes = []
    for label, src in sorted(sources.items()):
        for proto, port in ports:
            old, new = verdict(before, src, proto, port), verdict(after, src, proto, port)
            if (old.verdict == "ACCEPT") != (new.verdict == "ACCEPT"):
                changes.append((label, proto, port, old, new))
    # Addresses no rule names behave like the internet probe, so without changes on 8006/22 no one can be locked out.
    management_changed = any(proto == "tcp" and port in (API_PORT, SSH_PORT) for _, proto, port, _, _ in changes)
    if not admin and management_changed:
        everyone_lost = all(verdict(before, s, "tcp", API_PORT).verdict == "ACCEPT" and verdict(after, s, "tcp", API_PORT).verdict != "ACCEPT"
                            for s in sources.values())
        if everyone_lost:
            new = verdict(after, sources[INTERNET], "tcp", API_PORT)
            yield Impact(target, "lockout", f"no address Proximo knows of can reach the API on tcp/{API_PORT} any more ({_word(new)} by "
                         f"{new.decided_by})", risk=Risk.CRITICAL, needs_person=True)
        else:
            yield Impact(target, "lockout", "could not check lockout: the operator's address is unknown; set PROXIMO_ADMIN_SOURCES "
                         "(or --admin-source) to the addresses you manage the cluster from", risk=Risk.HIGH)
    yield from _summarise(target, changes)


# Stands for a guest's name in a verdict that guests share (random: no firewall file can hold it by chance).
_SID = f"\x00guest-{uuid.uuid4().hex}\x00"


class SharedChains:
    """Verdicts of inbound packets on guest NICs, worked out once for all the NICs whose chains read the same.

    For a packet coming in, evaluate_guest_nic reads of a guest only its own firewall level (options, rules, aliases,
    IP sets; not the path it was read from), the NIC's name and its node's local_network, besides what every guest
    of the model shares (the cluster's aliases and IP sets, the security groups) and the guest's name, which it
    writes into the verdict (``decided_by``, ``level``, notes). So a verdict is computed once per (model, those
    inputs, packet) with a stand-in name and handed to each guest with its own. Only while the models do not change.
    """

    def __init__(self) -> None:
        self._chains: dict[tuple[int, bytes, str, Any], int] = {}
        self._verdicts: dict[tuple[int, Packet], Verdict] = {}

    def chain(self, model: ClusterModel, gate: GuestNic, iface: str, local: Any) -> int:
        """A number for what the NIC's inbound chain reads (besides the packet and the guest's name)."""
        level = gate.level
        key = id(model), msgspec.json.encode((level.options, level.rules, level.aliases, level.ipsets)), iface, local
        return self._chains.setdefault(key, len(self._chains))

    def verdict(self, model: ClusterModel, gate: GuestNic, chain: int, iface: str, pkt: Packet, local: Any) -> Verdict:
        if pkt.direction != "in":  # outbound chains read the NIC's addresses and the guest's kind too
            return evaluate_guest_nic(model, gate, iface, pkt, local=local)
        found = self._verdicts.get((chain, pkt))
        if found is None:
            found = self._verdicts[(chain, pkt)] = evaluate_guest_nic(model, gate, iface, pkt, local=local, sid=_SID)
        return _named(found, gate.guest.sid)


def _named(v: Verdict, sid: str) -> Verdict:
    """A shared verdict with the guest's own name for the stand-in."""
    if _SID not in v.decided_by and _SID not in v.level and not any(_SID in note for note in v.notes):
        return v
    return msgspec.structs.replace(v, decided_by=v.decided_by.replace(_SID, sid), level=v.level.replace(_SID, sid),
                                   notes=[note.replace(_SID, sid) for note in v.notes])


def guest_impacts(before: ClusterModel, after: ClusterModel, vmid: int, shared: SharedChains | None = None) -> Iterator[Impact]:
    """The changed verdicts of one guest's NICs, summarised (``shared``: verdicts shared across one analysis's guests)."""
    shared = shared if shared is not None else SharedChains()
    guest = after.guests[vmid]
    nics = sorted(set(firewalled_nics(after, vmid)) | (set(firewalled_nics(before, vmid)) if vmid in before.guests else set()))
    if vmid not in before.guests:
        return  # nothing to compare with
    local = {id(m): local_network(m, m.guests[vmid].node) for m in (before, after)}
    probes: tuple[dict[str, str], list[tuple[str, int]]] | None = None
    for iface in nics:
        # A NIC no chain filters in a model (its firewall or the cluster's off, ...) has one verdict there for every
        # packet; one missing in either model has none to compare (evaluate_guest raises KeyError for every packet).
        try:
            old_gate, new_gate = guest_gate(before, vmid, iface), guest_gate(after, vmid, iface)
        except KeyError:
            continue
        if isinstance(old_gate, Verdict) and isinstance(new_gate, Verdict) and (old_gate.verdict == "ACCEPT") == (new_gate.verdict == "ACCEPT"):
            continue  # no packet's verdict moves
        if probes is None:
            probes = _probes(before, after, [], vmid=vmid)
        sources, ports = probes
        old_chain = None if isinstance(old_gate, Verdict) else shared.chain(before, old_gate, iface, local[id(before)])
        new_chain = None if isinstance(new_gate, Verdict) else shared.chain(after, new_gate, iface, local[id(after)])
        changes = []
        for label, src in sorted(sources.items()):
            for proto, port in ports:
                pkt = Packet(direction="in", iface=iface, source=src, proto=proto, dport=port)
                try:
                    old = old_gate if isinstance(old_gate, Verdict) else shared.verdict(before, old_gate, old_chain, iface, pkt, local[id(before)])
                    new = new_gate if isinstance(new_gate, Verdict) else shared.verdict(after, new_gate, new_chain, iface, pkt, local[id(after)])
                except KeyError:
                    continue
                if (old.verdict == "ACCEPT") != (new.verdict == "ACCEPT"):
                    changes.append((label, proto, port, old, new))
        target = guest.sid if iface == "net0" or len(nics) == 1 else f"{guest.sid}/{iface}"
        yield from _summarise(target, changes)


def _jumps_to_missing_groups(model: ClusterModel, *, guests: bool = True) -> dict[tuple[str, str], list[str]]:
    """(group, level) -> ["<level> rule <pos>", ...] for every rule that jumps to a security group that does not exist."""
    groups = model.firewall.groups
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    if not any(r.get("type") == "group" and r.get("action") not in groups for level in _levels(model, guests=guests) for r in level.rules):
        return found  # the usual case, found without naming every level of a large cluster
    for label, level in labelled_levels(model, guests=guests):
        for pos, rule in enumerate(level.rules):
            if rule.get("type") == "group" and rule.get("action") not in groups:
                found[(str(rule.get("action")), label)].append(f"{label} rule {pos}")
    return found


def jumps_to_missing_groups(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Proximo's own rule: no new rule jumps to a security group that does not exist. Proxmox allows it (Rules.pm
    delete_security_group checks only that the group is empty, Firewall.pm verify_rule only the group's name): such a
    rule does nothing, until a group of that name is created and silently applies there."""
    # The guests' files unread (and so unchanged: a step on one raises NotRead) and the groups unchanged: no guest's
    # jumps can be new. Groups changed: which guests jump to them is in their files (touching them raises NotRead).
    guests = _guest_levels_read(before, after) or before.firewall.groups != after.firewall.groups
    now = _jumps_to_missing_groups(after, guests=guests)
    if not now:
        return
    was = _jumps_to_missing_groups(before, guests=guests)
    fresh: dict[str, list[str]] = defaultdict(list)
    for (group, level), where in sorted(now.items()):
        if len(where) > len(was.get((group, level), [])):  # counted per level: positions move when rules are added
            fresh[group] += where
    for group, where in sorted(fresh.items()):
        if group in before.firewall.groups:
            reason = (f"security group '{group}' is deleted while {', '.join(where)} still jump{'s' if len(where) == 1 else ''} to it: remove or change "
                      "those rules first (Proxmox allows it; they would jump to nothing, then to any group later given the name)")
        else:
            reason = (f"{', '.join(where)} would jump to security group '{group}', which does not exist (Proxmox allows it; "
                      "the rule would do nothing, then apply any group later given the name)")
        yield Impact(f"group/{group}", "degraded", reason, blocks=True)


def firewall_of_missing_guests(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Proximo's own rule: Proxmox writes firewall/<vmid>.fw for a guest that does not exist (Rules.pm VMRules
    load_config checks nothing), and whatever guest is later created with that VMID inherits it."""
    if not _guest_levels_read(before, after):
        return  # no step changed them (a step on one raises NotRead): none of them moved
    for vmid in sorted(set(after.firewall.guests) - set(after.guests)):
        if after.firewall.guests[vmid] != before.firewall.guests.get(vmid, FirewallLevel()):
            yield Impact(f"guest/{vmid}", "degraded", f"guest {vmid} does not exist: Proxmox would still write its firewall "
                         f"configuration, and whatever guest is later created as {vmid} would inherit it", blocks=True)


def firewall_impacts(change: Any, before: ClusterModel, after: ClusterModel) -> list[Impact]:
    if not (before.firewall.read or after.firewall.read):
        return []
    with remembering_local_networks():  # neither model changes while they are analysed
        return _firewall_impacts(change, before, after)


def _firewall_impacts(change: Any, before: ClusterModel, after: ClusterModel) -> list[Impact]:
    admin = list(getattr(getattr(change, "operator", None), "admin_sources", []) or [])
    impacts: list[Impact] = [*jumps_to_missing_groups(before, after), *firewall_of_missing_guests(before, after)]
    for node in sorted(after.nodes):
        if _node_inputs(before, node) != _node_inputs(after, node):
            impacts += node_impacts(before, after, node, admin)
    shared = SharedChains()
    for vmid in _guests_whose_inputs_moved(before, after):
        impacts += guest_impacts(before, after, vmid, shared)
    return impacts


def _guests_whose_inputs_moved(before: ClusterModel, after: ClusterModel) -> list[int]:
    """The guests (in both models) whose ``_guest_inputs`` differ, without building them for every guest: what
    guests share (the cluster's options, aliases and ipsets, each node's network and address, each group) is
    compared once, then each guest's own parts."""
    common = sorted(set(before.guests) & set(after.guests))
    b, a = before.firewall, after.firewall
    if (b.read, cluster_enabled(before), b.cluster.aliases, b.cluster.ipsets) != (a.read, cluster_enabled(after), a.cluster.aliases, a.cluster.ipsets):
        return common  # every guest's verdicts may move
    def node_part(m: ClusterModel, node: str) -> Any:  # what _guest_inputs reads of a guest's node
        n = m.nodes.get(node)
        return ((n.network, n.network_changes) if n else None, node_ip(m, node), str(local_network(m, node)))

    moved_nodes = {node for node in set(before.nodes) | set(after.nodes) if node_part(before, node) != node_part(after, node)}
    moved_groups = {g for g in set(b.groups) | set(a.groups) if b.groups.get(g) != a.groups.get(g)}
    levels_read = _guest_levels_read(before, after)
    if moved_groups and not levels_read:
        raise NotRead("which guests use a changed security group is in their firewall files, which were not read")
    moved: list[int] = []
    for vmid in common:
        g0, g1 = before.guests[vmid], after.guests[vmid]
        # unread, each guest's own file is the same in both models: no step changed it (a step on one raises NotRead)
        own0, own1 = (b.guests.get(vmid), a.guests.get(vmid)) if levels_read else (None, None)
        if (g0.node != g1.node or own0 != own1 or g1.node in moved_nodes
                or (moved_groups and moved_groups & set(_groups_used([own1.rules] if own1 else [])))
                or (g0.config != g1.config and _nets(g0.config) != _nets(g1.config))):
            moved.append(vmid)
    return moved


def _guest_levels_read(before: ClusterModel, after: ClusterModel) -> bool:
    """Whether the guests' firewall files are in the models (a lean live read leaves them out of both)."""
    if before.firewall.guests_read != after.firewall.guests_read:
        raise NotRead("the guests' firewall files are in one model and not the other")
    return after.firewall.guests_read


def _nets(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k.startswith("net")}
