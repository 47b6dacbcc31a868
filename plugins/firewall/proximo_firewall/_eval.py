"""A pure PVE firewall evaluator: one hop (a node's or a guest NIC's chain), one packet, one verdict.

It follows the iptables backend of pve-firewall (src/PVE/Firewall.pm @ 6f1311f3: ``enable_host_firewall``
for a node's chains, ``ruleset_generate_vm_rules`` and ``generate_tap_rules_direction`` for a guest NIC's,
``ruleset_create_vm_chain`` for the built-in guest rules): the order of the built-in rules, node rules before
cluster rules, the management ipset after the user rules, security groups expanded in place, macros,
aliases and ipsets (with ``nomatch``), and the enable switches at each level. Conntrack is not modelled:
every packet is the first of a new connection.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import ipaddress
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

import msgspec

from proximo.model import ClusterModel, FirewallLevel, as_int
from proximo.model._network import NetworkUnknown

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Firewall.pm enable_host_firewall (F:2949-2957): what the management ipset may reach under any policy.
MANAGEMENT_PORTS: list[tuple[int, int, str]] = [
    (8006, 8006, "API/GUI"), (5900, 5999, "VNC"), (3128, 3128, "SPICE proxy"), (22, 22, "SSH"), (60000, 60050, "migration"),
]
# HOST-OUT accepts to local_network (F:3043-3059): no migration range.
LOCAL_NETWORK_OUT_PORTS: list[tuple[int, int]] = [(8006, 8006), (22, 22), (5900, 5999), (3128, 3128)]
COROSYNC_PORTS = (5404, 5405)
_LINK_ADDR = re.compile(r"(ring|link)\d+_addr")  # pve-cluster PVE::Corosync $link_addr_re
# /etc/protocols numbers PVE accepts for proto.
PROTO_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "icmpv6", "2": "igmp", "47": "gre", "50": "esp", "51": "ah",
                 "41": "ipv6", "89": "ospf", "94": "ipip", "132": "sctp", "33": "dccp"}
PROTO_ALIASES = {"ipv6-icmp": "icmpv6"}
PORT_PROTOS = frozenset({"tcp", "udp", "udplite", "sctp", "dccp"})
ICMP_PROTOS = frozenset({"icmp", "icmpv6"})
# /etc/services names rules commonly use; a name outside this table is an error (the rule is skipped, as PVE
# skips a rule whose port does not resolve).
SERVICE_PORTS = {"ssh": 22, "http": 80, "https": 443, "smtp": 25, "domain": 53, "ftp": 21, "telnet": 23,
                 "ntp": 123, "snmp": 161, "ldap": 389, "ldaps": 636, "imap": 143, "imaps": 993, "pop3": 110,
                 "pop3s": 995, "submission": 587, "mysql": 3306, "postgresql": 5432, "rdp": 3389, "ms-wbt-server": 3389,
                 "bootps": 67, "bootpc": 68, "tftp": 69, "microsoft-ds": 445, "netbios-ssn": 139, "nfs": 2049}
# PVEFW-Drop / PVEFW-Reject let these ICMP types through before the policy (firewall-builtin.json standard_chains).
POLICY_ICMP_ACCEPT = {"icmp": {"fragmentation-needed", "3/4", "time-exceeded", "11"},
                      "icmpv6": {"destination-unreachable", "1", "time-exceeded", "3", "packet-too-big", "2"}}
NDP_TYPES = {"router-solicitation", "router-advertisement", "neighbor-solicitation", "neighbour-solicitation",
             "neighbor-advertisement", "neighbour-advertisement", "133", "134", "135", "136"}

Action = Literal["ACCEPT", "DROP", "REJECT"]


class Packet(msgspec.Struct, frozen=True, kw_only=True):
    """One packet at one hop. ``None`` means "not given": a rule that restricts that field does not match."""

    direction: Literal["in", "out"] = "in"
    iface: str | None = None  # guests: netN; nodes: the interface (in: where it arrives; out: where it leaves)
    source: str | None = None
    dest: str | None = None
    proto: str | None = None
    dport: int | None = None
    sport: int | None = None
    icmp_type: str | None = None


class Verdict(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    verdict: Action
    decided_by: str  # human words: "node pve1 rule 3", "group web-in rule 2 (from cluster rule 0)", "policy_in DROP"
    level: str = ""  # "cluster", "node/<n>", "qemu/<vmid>", "group/<name>", "builtin" or "policy"
    pos: int | None = None
    group: str | None = None
    rule: dict[str, Any] | None = None
    notes: list[str] = []


class RuleError(ValueError):
    """A rule PVE would refuse (or skip when reading the file)."""


@cache
def macros() -> dict[str, Any]:
    data = json.loads((Path(__file__).parent / "macros.json").read_text())
    data["by_lower"] = {name.lower(): name for name in data["macros"]}
    return data  # type: ignore[no-any-return]


def macro_name(name: str) -> str | None:
    """PVE's preferred spelling of a macro (names match case-insensitively), or None."""
    return macros()["by_lower"].get(name.lower())  # type: ignore[no-any-return]


def macro_rules(name: str, ipversion: int) -> list[dict[str, str]]:
    canonical = macro_name(name)
    if canonical is None:
        raise RuleError(f"unknown macro '{name}'")
    data = macros()
    if ipversion == 6 and canonical in data["ipv6_overrides"]:
        return list(data["ipv6_overrides"][canonical])
    spec = data["macros"][canonical]
    if spec["ipversion"] == 6 and ipversion != 6:
        return []  # apply_macro skips IPv6-only macros for IPv4
    return list(spec["rules"])


# --- small parsers ------------------------------------------------------------------------------------


def norm_proto(proto: Any) -> str | None:
    if type(proto) is str:  # an analyser asks for the same few names hundreds of thousands of times
        return _norm_proto_text(proto)
    return _norm_proto(proto)


@functools.lru_cache(maxsize=1024)
def _norm_proto_text(proto: str) -> str | None:
    return _norm_proto(proto)


def _norm_proto(proto: Any) -> str | None:
    if proto is None or proto == "":
        return None
    text = str(proto).lower()
    return PROTO_ALIASES.get(text, PROTO_NUMBERS.get(text, text))


def _port(text: str) -> int:
    text = text.strip()
    if text.isascii() and text.isdigit():
        value = int(text)
    elif text.lower() in SERVICE_PORTS:
        value = SERVICE_PORTS[text.lower()]
    else:
        raise RuleError(f"invalid port '{text}'")
    if not 0 <= value <= 65535:
        raise RuleError(f"invalid port '{text}'")
    return value


def port_ranges(spec: Any) -> list[tuple[int, int]]:
    """``22``, ``80,443``, ``5900:5999`` (iptables syntax) as ranges; PVE allows up to 15 entries."""
    if type(spec) is str:  # each rule's ports are asked for once per probe
        found = _port_ranges_text(spec)
        if isinstance(found, RuleError):
            raise RuleError(*found.args)
        return list(found)
    return _port_ranges(spec)


@functools.lru_cache(maxsize=4096)
def _port_ranges_text(spec: str) -> tuple[tuple[int, int], ...] | RuleError:
    try:
        return tuple(_port_ranges(spec))
    except RuleError as exc:
        return exc


def _port_ranges(spec: Any) -> list[tuple[int, int]]:
    ranges = []
    for part in str(spec).split(","):
        low, sep, high = part.partition(":")
        a = _port(low)
        b = _port(high) if sep else a
        if b < a:
            raise RuleError(f"invalid port range '{part}'")
        ranges.append((a, b))
    return ranges


def parse_address(text: str) -> Address:
    return ipaddress.ip_address(text.strip())


def _network(text: str) -> list[Network] | None:
    """A literal IP, CIDR or ``a-b`` range as networks; None when ``text`` is not a literal."""
    found = _parsed_network(text)
    return None if found is None else list(found)


@functools.lru_cache(maxsize=65536)  # an analyser asks for the same few addresses thousands of times
def _parsed_network(text: str) -> tuple[Network, ...] | None:
    text = text.strip()
    try:
        if "-" in text:
            a, b = (ipaddress.ip_address(x) for x in text.split("-", 1))
            return tuple(ipaddress.summarize_address_range(a, b))  # type: ignore[arg-type]
        return (ipaddress.ip_network(text, strict=False),)
    except ValueError:
        return None


# --- the world one hop sees ------------------------------------------------------------------------------


class Scope(msgspec.Struct, frozen=True):
    """Where names resolve: a guest's own aliases/ipsets first, then the cluster's (Firewall.pm resolve_alias)."""

    guest: FirewallLevel | None
    cluster: FirewallLevel
    local_network: Network | None


# Within one analysis the models do not change, so each node's local_network is worked out once per model
# (analysing a cluster-wide change asked for it four times per guest). Off outside ``remembering_local_networks``.
_LOCAL_NETWORKS: contextvars.ContextVar[dict[tuple[int, str], Network | None] | None] = contextvars.ContextVar(
    "local_networks", default=None)


# Likewise each rule's checks and expansion (check_rule, _expand: pure functions of the rule), by the rule's identity:
# a cluster-wide change walks the same rules tens of thousands of times.
_RULE_FORMS: contextvars.ContextVar[dict[int, tuple[dict[str, Any], RuleError | None, dict[int, list[dict[str, Any]]]]] | None] = (
    contextvars.ContextVar("rule_forms", default=None))


@contextlib.contextmanager
def remembering_local_networks() -> Iterator[None]:
    """Remember local_network answers and each rule's checked forms until the block ends: only for models (and
    rules) that do not change inside it."""
    token = _LOCAL_NETWORKS.set({})
    forms = _RULE_FORMS.set({})
    try:
        yield
    finally:
        _RULE_FORMS.reset(forms)
        _LOCAL_NETWORKS.reset(token)


def local_network(model: ClusterModel, node: str) -> Network | None:
    """Firewall.pm local_network(): the cluster alias ``local_network``, else the node's network that holds its IP."""
    memo = _LOCAL_NETWORKS.get()
    if memo is None:
        return _local_network(model, node)
    key = (id(model), node)
    if key not in memo:
        memo[key] = _local_network(model, node)
    return memo[key]


def _local_network(model: ClusterModel, node: str) -> Network | None:
    for alias in model.firewall.cluster.aliases:
        if str(alias.get("name", "")).lower() == "local_network":
            nets = _network(str(alias.get("cidr", "")))
            return nets[0] if nets else None
    ip: Address | None = None
    for row in model.cluster_status:
        if row.get("type") == "node" and row.get("name") == node and row.get("ip"):
            ip = _safe_ip(row["ip"])
    if ip is None:
        for row in model.corosync_nodes:
            if row.get("name") == node or row.get("node") == node:
                ip = _safe_ip(row.get("ring0_addr"))
    n = model.nodes.get(node)
    if ip is None or n is None or n.network is None:
        return None
    # PVE reads the kernel's routes: the configuration the node runs, not the staged one (interfaces.new)
    try:
        running = n.active_network() or []
    except NetworkUnknown:  # the pending diff does not fit: the staged file is the nearest the model has
        running = n.network
    for row in running:
        for key in ("cidr", "cidr6"):
            if row.get(key):
                try:
                    iface = ipaddress.ip_interface(str(row[key]))
                except ValueError:
                    continue
                if ip in iface.network and iface.network.prefixlen >= (8 if iface.version == 4 else 1):
                    return iface.network
    return None


def _safe_ip(value: Any) -> Address | None:
    return _parsed_ip(str(value))


@functools.lru_cache(maxsize=65536)
def _parsed_ip(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _alias_cidr(scope: Scope, name: str) -> str | None:
    lower = name.lower()
    only = None
    if lower.startswith("dc/"):
        lower, only = lower[3:], "dc"
    elif lower.startswith("guest/"):
        lower, only = lower[6:], "guest"
    levels = [scope.guest] if only == "guest" else [scope.cluster] if only == "dc" else [scope.guest, scope.cluster]
    for level in levels:
        for alias in level.aliases if level else []:
            if str(alias.get("name", "")).lower() == lower:
                return str(alias.get("cidr"))
    if lower == "local_network" and only != "guest" and scope.local_network is not None:
        return str(scope.local_network)
    return None


def _ipset(scope: Scope, name: str) -> tuple[list[dict[str, Any]], bool]:
    """Entries of an ipset (guest first, then cluster); the flag says whether it is the cluster's."""
    only = None
    if name.startswith("dc/"):
        name, only = name[3:], "dc"
    elif name.startswith("guest/"):
        name, only = name[6:], "guest"
    name = name.lower()
    if only != "dc" and scope.guest is not None and name in scope.guest.ipsets:
        return scope.guest.ipsets[name].entries, False
    if only != "guest" and name in scope.cluster.ipsets:
        return scope.cluster.ipsets[name].entries, True
    if name == "management" and only != "guest":
        return [], True
    raise RuleError(f"no such ipset '{name}'")


def in_ipset(scope: Scope, name: str, addr: Address) -> bool:
    """hash:net semantics: the most specific entry that holds ``addr`` decides; a ``nomatch`` entry excludes."""
    entries, cluster = _ipset(scope, name)
    entries = list(entries)
    if cluster and name.lower().removeprefix("dc/") == "management" and scope.local_network is not None:
        entries.append({"cidr": str(scope.local_network)})  # compile() always appends local_network
    return in_entries(scope, entries, addr)


def in_entries(scope: Scope, entries: list[dict[str, Any]], addr: Address) -> bool:
    """Whether ``addr`` is in a set of ipset entries (hash:net: the most specific holding entry decides)."""
    best: tuple[int, bool] | None = None
    for entry in entries:
        cidr = str(entry.get("cidr", ""))
        nets = _network(cidr)
        if nets is None:
            resolved = _alias_cidr(scope, cidr)
            nets = _network(resolved) if resolved else None
        for net in nets or []:
            if net.version == addr.version and addr in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, as_int(entry.get("nomatch")) == 1)
    return best is not None and not best[1]


def address_matches(scope: Scope, spec: str, addr: Address) -> bool:
    spec = spec.strip()
    if spec.startswith("+"):
        return in_ipset(scope, spec[1:], addr)
    literal = _literal_holds(spec, addr)
    if literal is not None:
        return literal
    for part in spec.split(","):
        nets = _network(part)
        if nets is None:
            cidr = _alias_cidr(scope, part)
            if cidr is None:
                raise RuleError(f"no such alias '{part}'")
            nets = _network(cidr) or []
        if any(n.version == addr.version and addr in n for n in nets):
            return True
    return False


@functools.lru_cache(maxsize=65536)  # the same few rule addresses are matched against each probe source many times
def _literal_holds(spec: str, addr: Address) -> bool | None:
    """address_matches for a spec of literal addresses only (no alias: nothing in the scope is read), else None."""
    parts = [_parsed_network(part) for part in spec.split(",")]
    if any(nets is None for nets in parts):
        return None
    return any(n.version == addr.version and addr in n for nets in parts for n in nets or ())


# --- rule matching ---------------------------------------------------------------------------------------


def _expand(rule: dict[str, Any], ipversion: int) -> list[dict[str, Any]]:
    """A rule as the match(es) it compiles to: a macro becomes one match per macro line."""
    if rule.get("macro"):
        base = {k: v for k, v in rule.items() if k not in ("macro",)}
        out = []
        for line in macro_rules(str(rule["macro"]), ipversion):
            merged = dict(base)
            for key in ("proto", "dport", "sport"):  # the rule's own values override the macro's (apply_macro)
                if not rule.get(key) and line.get(key):
                    merged[key] = line[key]
            out.append(merged)
        return out
    return [rule]


def check_rule(rule: dict[str, Any]) -> None:
    """What verify_rule refuses about ports and protocols (the API answers 400; the file parser skips the rule)."""
    proto = norm_proto(rule.get("proto"))
    for key in ("dport", "sport"):
        if rule.get(key) in (None, ""):
            continue
        if proto is None and not rule.get("macro"):
            raise RuleError(f"{key}: protocol '' does not support ports")
        if proto in ICMP_PROTOS:
            continue  # the ICMP type is written in dport (fwtester cases)
        if proto is not None and proto not in PORT_PROTOS:
            raise RuleError(f"{key}: protocol '{proto}' does not support ports")
        port_ranges(rule[key])
    if rule.get("macro") and macro_name(str(rule["macro"])) is None:
        raise RuleError(f"unknown macro '{rule['macro']}'")


def _rule_matches(scope: Scope, rule: dict[str, Any], pkt: Packet, addr_src: Address | None, addr_dst: Address | None) -> bool:
    proto = norm_proto(rule.get("proto"))
    if proto is not None and proto != norm_proto(pkt.proto):
        return False
    if rule.get("iface") and rule["iface"] != pkt.iface:
        return False
    for key, addr in (("source", addr_src), ("dest", addr_dst)):
        if rule.get(key):
            if addr is None or not address_matches(scope, str(rule[key]), addr):
                return False
    if proto in ICMP_PROTOS:
        wanted = rule.get("icmp-type") or rule.get("dport")
        if wanted not in (None, "") and str(wanted) != str(pkt.icmp_type if pkt.icmp_type is not None else pkt.dport):
            return False
        return True
    for key, value in (("dport", pkt.dport), ("sport", pkt.sport)):
        if rule.get(key) not in (None, ""):
            if not value:  # fwtester: a port of 0 (or none) is "no port"
                return False
            if not any(a <= value <= b for a, b in port_ranges(rule[key])):
                return False
    return True


def _usable(rule: dict[str, Any], types: tuple[str, ...]) -> bool:
    return as_int(rule.get("enable")) == 1 and not rule.get("errors") and rule.get("type") in types


def _rule_forms(rule: dict[str, Any], ipversion: int) -> list[dict[str, Any]]:
    """check_rule, then _expand (RuleError as they raise it); remembered inside ``remembering_local_networks``."""
    memo = _RULE_FORMS.get()
    if memo is None:
        check_rule(rule)
        return _expand(rule, ipversion)
    entry = memo.get(id(rule))
    if entry is None or entry[0] is not rule:
        error: RuleError | None = None
        try:
            check_rule(rule)
        except RuleError as exc:
            error = exc
        entry = memo[id(rule)] = (rule, error, {})  # holding the rule: its id is not reused while remembered
    if entry[1] is not None:
        raise RuleError(*entry[1].args)
    forms = entry[2].get(ipversion)
    if forms is None:
        forms = entry[2][ipversion] = _expand(rule, ipversion)
    return forms


class _Walk:
    """Evaluate a rule list in order; the first terminal match decides."""

    def __init__(self, model: ClusterModel, scope: Scope, pkt: Packet) -> None:
        self.model, self.scope, self.pkt = model, scope, pkt
        self.src = _safe_ip(pkt.source) if pkt.source else None
        self.dst = _safe_ip(pkt.dest) if pkt.dest else None
        self.ipversion = (self.src or self.dst).version if (self.src or self.dst) else (6 if norm_proto(pkt.proto) == "icmpv6" else 4)
        self.notes: list[str] = []

    def matches(self, rule: dict[str, Any], scope: Scope | None = None) -> bool:
        try:
            return any(_rule_matches(scope or self.scope, r, self.pkt, self.src, self.dst) for r in _rule_forms(rule, self.ipversion))
        except RuleError as exc:
            self.notes.append(f"skipped a rule PVE would not compile: {exc}")
            return False

    def rules(self, rules: list[dict[str, Any]], level: str, words: str, group_scope: Scope | None = None) -> Verdict | None:
        kind = "in" if self.pkt.direction == "in" else "out"
        for pos, rule in enumerate(rules):
            if not _usable(rule, (kind, "group")):
                continue
            if rule["type"] == "group":
                if rule.get("iface") and rule["iface"] != self.pkt.iface:
                    continue
                name = str(rule.get("action", ""))
                group = self.model.firewall.groups.get(name)
                if group is None:
                    self.notes.append(f"{words} rule {pos} jumps to security group '{name}', which does not exist")
                    continue
                # Group chains are compiled once from cluster.fw: their names resolve in the cluster scope only.
                cluster_scope = msgspec.structs.replace(self.scope, guest=None)
                for gpos, grule in enumerate(group.rules):
                    if _usable(grule, (kind,)) and self.matches(grule, cluster_scope):
                        return Verdict(verdict=grule["action"], decided_by=f"group {name} rule {gpos} (from {words} rule {pos})",
                                       level=f"group/{name}", pos=gpos, group=name, rule=grule)
                continue
            if self.matches(rule) and rule.get("action") in ("ACCEPT", "DROP", "REJECT"):
                return Verdict(verdict=rule["action"], decided_by=f"{words} rule {pos}", level=level, pos=pos, rule=rule)
        return None


def _in_ports(dport: int | None, ranges: list[tuple[int, int]] | list[tuple[int, int, str]]) -> bool:
    return dport is not None and any(r[0] <= dport <= r[1] for r in ranges)


def _policy(walk: _Walk, policy: str, words: str) -> Verdict:
    policy = policy.upper()
    proto = norm_proto(walk.pkt.proto)
    icmp = str(walk.pkt.icmp_type if walk.pkt.icmp_type is not None else walk.pkt.dport)
    if policy in ("DROP", "REJECT") and proto in POLICY_ICMP_ACCEPT and icmp in POLICY_ICMP_ACCEPT[proto]:
        return Verdict(verdict="ACCEPT", decided_by=f"built-in PVEFW-{policy.title()}: ICMP {icmp} is let through", level="builtin")
    return Verdict(verdict=policy if policy in ("ACCEPT", "DROP", "REJECT") else "DROP", decided_by=f"{words} {policy}", level="policy",  # type: ignore[arg-type]
                   notes=walk.notes)


def cluster_enabled(model: ClusterModel) -> bool:
    # A value > 1 is the anti-lockout timestamp: 0 once older than 60 s (parse_clusterfw_option).
    return as_int(model.firewall.cluster.options.get("enable")) == 1


def node_enabled(model: ClusterModel, node: str) -> bool:
    level = model.firewall.nodes.get(node)
    value = level.options.get("enable") if level else None
    return value is None or as_int(value, 1) != 0


def _with_notes(v: Verdict, notes: list[str]) -> Verdict:
    return msgspec.structs.replace(v, notes=list(dict.fromkeys([*v.notes, *notes])))


_UNSET: Any = object()


def node_gate(model: ClusterModel, node: str) -> Verdict | None:
    """evaluate_node's checks before it looks at the packet: the verdict of every packet when no host chain filters
    (the firewall configuration not read, the cluster's or the node's firewall off), else None."""
    if not model.firewall.read:
        return Verdict(verdict="ACCEPT", decided_by="firewall configuration not read", level="builtin",
                       notes=["this state has no firewall configuration: nothing can be said about filtering"])
    if not cluster_enabled(model):
        return Verdict(verdict="ACCEPT", decided_by="cluster firewall disabled (enable is not 1)", level="cluster")
    if not node_enabled(model, node):
        return Verdict(verdict="ACCEPT", decided_by=f"node {node} firewall disabled (enable: 0)", level=f"node/{node}")
    return None


def evaluate_node(model: ClusterModel, node: str, pkt: Packet, *, local: Network | None = _UNSET) -> Verdict:
    """PVEFW-HOST-IN (``direction='in'``) or PVEFW-HOST-OUT of ``node`` for one packet. ``local``: the node's
    local_network when the caller has it (an analyser probing one node many times), else it is looked up."""
    gate = node_gate(model, node)
    if gate is not None:
        return gate
    net = local_network(model, node) if local is _UNSET else local
    scope = Scope(guest=None, cluster=model.firewall.cluster, local_network=net)
    walk = _Walk(model, scope, pkt)
    if net is None:
        walk.notes.append(f"local_network of node {node} is unknown (no local_network alias, node address or network not read): "
                          "the management ipset holds only its own entries here")
    options = model.firewall.nodes.get(node, FirewallLevel()).options
    cluster_opts = model.firewall.cluster.options
    proto = norm_proto(pkt.proto)
    icmp = str(pkt.icmp_type if pkt.icmp_type is not None else pkt.dport)
    if pkt.iface == "lo":
        return _with_notes(Verdict(verdict="ACCEPT", decided_by="built-in: loopback", level="builtin"), walk.notes)
    if proto == "icmpv6" and icmp in NDP_TYPES and as_int(options.get("ndp"), 1) != 0:
        return _with_notes(Verdict(verdict="ACCEPT", decided_by="built-in: IPv6 neighbour discovery", level="builtin"), walk.notes)
    if pkt.direction == "in" and walk.src is not None and "blacklist" in model.firewall.cluster.ipsets and in_ipset(scope, "blacklist", walk.src):
        return _with_notes(Verdict(verdict="DROP", decided_by="built-in: source in ipset blacklist", level="builtin"), walk.notes)
    if proto == "igmp":
        return _with_notes(Verdict(verdict="ACCEPT", decided_by="built-in: igmp", level="builtin"), walk.notes)
    node_rules = model.firewall.nodes.get(node, FirewallLevel()).rules
    decided = walk.rules(node_rules, f"node/{node}", f"node {node}") or walk.rules(model.firewall.cluster.rules, "cluster", "cluster")
    if decided is not None:
        return _with_notes(decided, walk.notes)
    if pkt.direction == "in":
        if proto == "tcp" and walk.src is not None and _in_ports(pkt.dport, MANAGEMENT_PORTS) and in_ipset(scope, "management", walk.src):
            port = next(name for a, b, name in MANAGEMENT_PORTS if a <= (pkt.dport or -1) <= b)
            return _with_notes(Verdict(verdict="ACCEPT", decided_by=f"built-in: management ipset may reach tcp/{pkt.dport} ({port})",
                                       level="builtin"), walk.notes)
        if proto == "udp" and pkt.dport in COROSYNC_PORTS and (why := _corosync(model, node, peer=walk.src, local=walk.dst, dst=walk.dst)):
            return _with_notes(Verdict(verdict="ACCEPT", decided_by=f"built-in: corosync {why}", level="builtin"), walk.notes)
        return _policy(walk, str(cluster_opts.get("policy_in", "DROP")), "cluster policy_in")
    if proto == "tcp" and walk.dst is not None and net is not None and walk.dst in net and _in_ports(pkt.dport, LOCAL_NETWORK_OUT_PORTS):
        return _with_notes(Verdict(verdict="ACCEPT", decided_by=f"built-in: tcp/{pkt.dport} to local_network", level="builtin"), walk.notes)
    if proto == "udp" and pkt.dport in COROSYNC_PORTS and (why := _corosync(model, node, peer=walk.dst, local=walk.src, dst=walk.dst)):
        return _with_notes(Verdict(verdict="ACCEPT", decided_by=f"built-in: corosync {why}", level="builtin"), walk.notes)
    return _policy(walk, str(cluster_opts.get("policy_out", "ACCEPT")), "cluster policy_out")


def _corosync(model: ClusterModel, node: str, *, peer: Address | None, local: Address | None, dst: Address | None) -> str:
    """Why corosync traffic between ``local`` (this node) and ``peer`` is accepted, or "" (Firewall.pm
    ruleset_generate_host_rules): to a multicast ``dst`` when the totem transport is ``udp``; else only between this
    node's address and another node's address on the same ring (``-d $local -s $peer`` for each ringN_addr)."""
    if not model.corosync_nodes:
        return ""  # no corosync.conf: a node outside a cluster gets no corosync rules
    totem = model.other.get("/cluster/config/totem")
    if isinstance(totem, dict) and totem.get("transport") == "udp" and dst is not None and dst.is_multicast:
        return "multicast (totem transport udp)"
    if peer is None or local is None:
        return ""
    # PVE::Corosync for_all_corosync_addresses: every ringN_addr or linkN_addr ($link_addr_re) that is an address
    # (a hostname is resolved there, on the node; not here)
    rings = {row.get("name") or row.get("node"): {k: _safe_ip(v) for k, v in row.items() if _LINK_ADDR.fullmatch(k)}
             for row in model.corosync_nodes}
    mine = rings.get(node, {})
    for name, addrs in rings.items():
        if name == node:
            continue
        for key, addr in addrs.items():
            if addr is not None and addr == peer and mine.get(key) == local:
                return f"with {name} on {key.removesuffix('_addr')}"
    return ""


def nic_options(config: dict[str, Any], iface: str) -> dict[str, str] | None:
    """The ``netN`` property string as a dict (the model is the first bare ``model=MAC`` pair), or None."""
    raw = config.get(iface)
    return None if raw is None else dict(_nic_pairs(str(raw)))


@functools.lru_cache(maxsize=16384)
def _nic_pairs(raw: str) -> tuple[tuple[str, str], ...]:  # a guest's NIC is probed dozens of times per analysis
    out: dict[str, str] = {}
    for part in raw.split(","):
        key, sep, value = part.partition("=")
        out[key.strip()] = value.strip() if sep else ""
    return tuple(out.items())


class GuestNic(NamedTuple):
    """What a guest NIC's chain needs, once its packet-independent checks passed (``guest_gate``)."""

    guest: Any  # proximo.model Guest
    nic: dict[str, str]
    level: FirewallLevel


def guest_gate(model: ClusterModel, vmid: int, iface: str) -> Verdict | GuestNic:
    """evaluate_guest's checks before it looks at the packet. A Verdict when they decide every packet on this NIC
    (the firewall configuration not read, the cluster's or the guest's firewall off, the NIC without ``firewall=1``),
    else what ``evaluate_guest_nic`` needs to walk the chain packet by packet. KeyError as evaluate_guest: no such
    guest or NIC."""
    guest = model.guests[vmid]
    sid = guest.sid
    if not model.firewall.read:
        return Verdict(verdict="ACCEPT", decided_by="firewall configuration not read", level="builtin",
                       notes=["this state has no firewall configuration: nothing can be said about filtering"])
    nic = nic_options(guest.config, iface)
    if nic is None:
        raise KeyError(f"{sid} has no {iface}")
    level = model.firewall.guests.get(vmid, FirewallLevel())
    if not cluster_enabled(model):
        return Verdict(verdict="ACCEPT", decided_by="cluster firewall disabled (enable is not 1)", level="cluster")
    if as_int(level.options.get("enable")) != 1:
        return Verdict(verdict="ACCEPT", decided_by=f"{sid} firewall disabled (enable is not 1)", level=sid)
    if as_int(nic.get("firewall")) != 1:
        return Verdict(verdict="ACCEPT", decided_by=f"{sid} {iface} has no firewall=1", level=sid)
    return GuestNic(guest, nic, level)


def evaluate_guest(model: ClusterModel, vmid: int, iface: str, pkt: Packet, *, local: Network | None = _UNSET) -> Verdict:
    """tap<vmid>i<n>-IN (``direction='in'``: traffic to the guest) or -OUT of one guest NIC (``local`` as for
    evaluate_node: the guest's node's local_network)."""
    gate = guest_gate(model, vmid, iface)
    return gate if isinstance(gate, Verdict) else evaluate_guest_nic(model, gate, iface, pkt, local=local)


def evaluate_guest_nic(model: ClusterModel, gate: GuestNic, iface: str, pkt: Packet, *, local: Network | None = _UNSET,
                       sid: str | None = None) -> Verdict:
    """evaluate_guest past its packet-independent checks (``gate`` from guest_gate on the same model and NIC): an
    analyser probing one NIC with many packets checks them once. ``sid``: the name the verdict gives the guest
    (its own by default)."""
    guest, nic, level = gate
    sid = guest.sid if sid is None else sid
    scope = Scope(guest=level, cluster=model.firewall.cluster,
                  local_network=local_network(model, guest.node) if local is _UNSET else local)
    walk = _Walk(model, scope, pkt)
    proto = norm_proto(pkt.proto)
    icmp = str(pkt.icmp_type if pkt.icmp_type is not None else pkt.dport)
    opts = level.options
    if pkt.direction == "in":
        if walk.src is not None and "blacklist" in model.firewall.cluster.ipsets and in_ipset(Scope(None, model.firewall.cluster, None), "blacklist", walk.src):
            return Verdict(verdict="DROP", decided_by="built-in: source in ipset blacklist", level="builtin")
        if as_int(opts.get("dhcp"), 1) != 0 and proto == "udp" and (pkt.sport, pkt.dport) in ((67, 68), (547, 546)):
            return Verdict(verdict="ACCEPT", decided_by="built-in: DHCP reply", level="builtin")
        if proto == "icmpv6" and icmp in NDP_TYPES and as_int(opts.get("ndp"), 1) != 0:
            return Verdict(verdict="ACCEPT", decided_by="built-in: IPv6 neighbour discovery", level="builtin")
    else:
        if as_int(opts.get("dhcp"), 1) != 0 and proto == "udp" and (pkt.sport, pkt.dport) in ((68, 67), (546, 547)):
            return Verdict(verdict="ACCEPT", decided_by="built-in: DHCP request", level="builtin")
        if proto == "icmpv6" and icmp in ("router-advertisement", "134") and as_int(opts.get("radv")) != 1:
            return Verdict(verdict="DROP", decided_by="built-in: router advertisement from a guest (radv is not 1)", level="builtin")
        ipfilter = f"ipfilter-{iface}"
        if walk.src is not None and (as_int(opts.get("ipfilter")) == 1 or ipfilter in level.ipsets):
            own = level.ipsets.get(ipfilter)
            entries = [*(own.entries if own else []), *device_ips(guest.kind, nic)]
            if not in_entries(scope, entries, walk.src):
                return Verdict(verdict="DROP", decided_by=f"built-in: source not in ipset {ipfilter} (ipfilter)", level="builtin")
        if proto == "icmpv6" and icmp in NDP_TYPES and as_int(opts.get("ndp"), 1) != 0:
            return Verdict(verdict="ACCEPT", decided_by="built-in: IPv6 neighbour discovery", level="builtin")
    decided = walk.rules(level.rules, sid, sid)
    if decided is not None:
        return _with_notes(decided, walk.notes)
    key = "policy_in" if pkt.direction == "in" else "policy_out"
    return _policy(walk, str(opts.get(key, "DROP" if pkt.direction == "in" else "ACCEPT")), f"{sid} {key}")


_MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")
_IPV4 = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3})(?:/\d+)?$")
_IPV6 = re.compile(r"^([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)(?:/\d+)?$")


def mac_to_linklocal(mac: str) -> str:
    """pve-firewall Firewall.pm mac_to_linklocal: fe80:: with the modified EUI-64 of the MAC (RFC 4291)."""
    parts = mac.lower().split(":")
    parts[0] = f"{int(parts[0], 16) ^ 0x02:02x}"
    return f"fe80::{parts[0]}{parts[1]}:{parts[2]}ff:fe{parts[3]}:{parts[4]}{parts[5]}"


def device_ips(kind: str, nic: dict[str, str]) -> list[dict[str, Any]]:
    """What compile_ipsets adds to a NIC's ipfilter set: the NIC's own link-local address, no other link-local
    address (fe80::/10 nomatch), and for a container the configured ``ip``/``ip6`` (the address, not its network)."""
    # qemu: `<model>=<MAC>` or macaddr=; containers: hwaddr=
    candidates = [nic.get("hwaddr"), nic.get("macaddr"), *(nic.values() if kind == "qemu" else ())]
    mac = next((m for m in candidates if m and _MAC.fullmatch(m)), None)
    entries: list[dict[str, Any]] = []
    if mac:
        entries.append({"cidr": mac_to_linklocal(mac)})
    entries.append({"cidr": "fe80::/10", "nomatch": 1})
    if kind == "lxc":
        for key, pattern in (("ip", _IPV4), ("ip6", _IPV6)):
            if match := pattern.match(nic.get(key) or ""):
                entries.append({"cidr": match.group(1)})
    return entries


def firewalled_nics(model: ClusterModel, vmid: int) -> list[str]:
    guest = model.guests[vmid]
    return sorted((k for k in guest.config if k.startswith("net") and k[3:].isdigit()
                   and as_int((nic_options(guest.config, k) or {}).get("firewall")) == 1), key=lambda k: int(k[3:]))


def evaluate(model: ClusterModel, target: str, pkt: Packet) -> Verdict:
    """One hop: ``node/<name>`` or ``qemu/<vmid>``/``lxc/<vmid>`` (``pkt.iface`` picks the NIC, default net0)."""
    kind, _, ident = target.partition("/")
    if kind == "node":
        return evaluate_node(model, ident, pkt)
    vmid = int(ident)
    iface = pkt.iface or "net0"
    return evaluate_guest(model, vmid, iface, msgspec.structs.replace(pkt, iface=iface))
