"""The firewall part of the model: cluster, node and guest firewall config as the PVE API shows it.

Rows are kept as the API returns them, minus what PVE computes on every GET (``pos`` and ``digest``), so the
simulator renders them back with PVE's positions and digests. Shapes follow pve-firewall's GET handlers
(src/PVE/API2/Firewall/*.pm at 6f1311f3) and src/PVE/Firewall.pm ``copy_list_with_digest`` (the digest).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec

from ..errors import NotRead, PveApiError


class FirewallIpset(msgspec.Struct):
    comment: str | None = None
    entries: list[dict[str, Any]] = []  # {cidr, nomatch?, comment?} in file order


class FirewallGroup(msgspec.Struct):
    comment: str | None = None
    rules: list[dict[str, Any]] = []


class FirewallLevel(msgspec.Struct):
    """One ``.fw`` file: cluster.fw, host.fw or <vmid>.fw (host.fw has no aliases or ipsets)."""

    options: dict[str, Any] = {}
    rules: list[dict[str, Any]] = []
    aliases: list[dict[str, Any]] = []  # {name, cidr, ipversion?, comment?}
    ipsets: dict[str, FirewallIpset] = {}
    base: str = ""  # guests: "/nodes/{node}/{kind}/{vmid}/firewall" as read (a guest the model does not know keeps its paths)


class Firewall(msgspec.Struct):
    read: bool = False  # False: the firewall was not read (an old snapshot): nothing can be said about it
    cluster: FirewallLevel = msgspec.field(default_factory=FirewallLevel)
    groups: dict[str, FirewallGroup] = {}
    nodes: dict[str, FirewallLevel] = {}
    # Each guest's <vmid>.fw, through ``guests``. A live plan reads them only when it needs them (four GETs a guest):
    # left out, ``guests_read`` is False and touching ``guests`` raises NotRead, so the host reads them and plans again.
    guest_levels: dict[int, FirewallLevel] = msgspec.field(default_factory=dict, name="guests")
    guests_read: bool = True
    # Set when something asked for them unread: the host plans again on a full read even if the NotRead was caught
    asked_unread: bool = False
    # path -> [the digest we compute, the digest PVE sent] for lists read whose digest is not ours (PVE hashes the
    # file's own text in corner cases; a sample may be cut): while the content is unchanged we answer PVE's digest,
    # so a concurrent-edit check against the real cluster passes.
    pve_digests: dict[str, list[str]] = {}

    def node(self, name: str) -> FirewallLevel:
        return self.nodes.setdefault(name, FirewallLevel())

    @property
    def guests(self) -> dict[int, FirewallLevel]:
        if not self.guests_read:
            self.asked_unread = True
            raise NotRead("the guests' firewall configuration was not read for this plan")
        return self.guest_levels

    def guest(self, vmid: int) -> FirewallLevel:
        return self.guests.setdefault(vmid, FirewallLevel())

    def canonical(self) -> list[Any]:
        """What the firewall says, without the order of things PVE keeps unordered (aliases are a map: GET sorts them).

        A node or guest level with nothing in it says what no level says (a new guest's firewall files do not exist
        yet; reading them answers empty lists), and ``base`` is where it was read, not what it says: both are left out.
        """

        def level(lv: FirewallLevel) -> FirewallLevel:
            return msgspec.structs.replace(lv, base="", aliases=sorted(lv.aliases, key=lambda r: str(r.get("name", "")).lower()))

        def levels(by_key: dict[Any, FirewallLevel]) -> dict[str, FirewallLevel]:
            said = {str(key): level(lv) for key, lv in sorted(by_key.items())}
            return {key: lv for key, lv in said.items() if lv != FirewallLevel()}

        return [self.read, level(self.cluster), self.groups, levels(self.nodes),
                levels(self.guest_levels) if self.guests_read else "not read"]


# --- digests: PVE's copy_list_with_digest / copy_opject_with_digest -------------------------------------


def _perl_str(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def fw_digest(rows: list[dict[str, Any]]) -> str:
    """SHA-1 over ``key:value\\n`` of every scalar key of every row (keys sorted, rows in order)."""
    sha = hashlib.sha1()
    for row in rows:
        for key in sorted(row):
            value = row[key]
            if value is None or isinstance(value, (dict, list)):
                continue
            sha.update(f"{key}:{_perl_str(value)}\n".encode())
    return sha.hexdigest()


def with_digest(rows: list[dict[str, Any]], *, positions: bool = False) -> list[dict[str, Any]]:
    digest = fw_digest(rows)
    out = []
    for pos, row in enumerate(rows):
        item = {**row, "digest": digest}
        if positions:
            item["pos"] = pos
        out.append(item)
    return out


def options_digest(options: dict[str, Any]) -> str:
    return fw_digest([options])


# --- paths -------------------------------------------------------------------------------------------

_CLUSTER = re.compile(r"^/cluster/firewall/(options|rules|groups|ipset|aliases)(?:/([^/]+))?(?:/([^/]+))?$")
_NODE = re.compile(r"^/nodes/([^/]+)/firewall/(options|rules)(?:/([^/]+))?$")
_GUEST = re.compile(r"^/nodes/([^/]+)/(qemu|lxc)/(\d+)/firewall/(options|rules|ipset|aliases)(?:/([^/]+))?(?:/([^/]+))?$")


def firewall_path(path: str) -> tuple[str, str, list[str]] | None:
    """(level, section, rest) for a firewall path the model holds: level is ``cluster``, ``node:N`` or ``guest:VMID``."""
    if m := _CLUSTER.match(path):
        return "cluster", m.group(1), [p for p in m.groups()[1:] if p is not None]
    if m := _NODE.match(path):
        return f"node:{m.group(1)}", m.group(2), [p for p in m.groups()[2:] if p is not None]
    if m := _GUEST.match(path):
        return f"guest:{m.group(3)}", m.group(4), [p for p in m.groups()[4:] if p is not None]
    return None


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("pos", "digest")}


def firewall_from_api(api: dict[str, Any], *, guests_read: bool = True) -> Firewall:
    """The firewall section from GET responses; paths it takes are not kept in ``other``. ``guests_read`` False: the
    guests' firewall paths were left out of the read (``collect(..., guest_firewall=False)``)."""
    fw = Firewall()
    for path, data in sorted(api.items()):
        found = firewall_path(path)
        if found is None:
            continue
        level_name, section, rest = found
        fw.read = True
        if level_name == "cluster":
            level = fw.cluster
        elif level_name.startswith("node:"):
            level = fw.node(level_name[5:])
        else:
            level = fw.guest(int(level_name[6:]))
            level.base = path[: path.index("/firewall/") + len("/firewall")]
        if section == "options" and not rest:
            level.options = _strip(dict(data or {}))
        elif section == "rules" and not rest:
            level.rules = [_strip(r) for r in sorted(data or [], key=lambda r: r.get("pos", 0))]
        elif section == "aliases" and not rest:
            level.aliases = [_strip(r) for r in data or []]
        elif section == "ipset" and not rest:
            for row in data or []:
                level.ipsets.setdefault(str(row["name"]), FirewallIpset()).comment = row.get("comment")
        elif section == "ipset" and len(rest) == 1:
            level.ipsets.setdefault(rest[0], FirewallIpset()).entries = [_strip(r) for r in data or []]
        elif section == "groups" and not rest:
            for row in data or []:
                fw.groups.setdefault(str(row["group"]), FirewallGroup()).comment = row.get("comment")
        elif section == "groups" and len(rest) == 1:
            fw.groups.setdefault(rest[0], FirewallGroup()).rules = [_strip(r) for r in sorted(data or [], key=lambda r: r.get("pos", 0))]
    for path, data in sorted(api.items()):
        theirs = _digest_of(data) if firewall_path(path) else None
        if theirs:
            ours = _digest_of(render_firewall(fw, path))
            if ours and ours != theirs:
                fw.pve_digests[path] = [ours, theirs]
    fw.guests_read = guests_read
    return fw


def _digest_of(data: Any) -> str | None:
    if isinstance(data, dict):
        return data.get("digest")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0].get("digest")
    return None


def current_digest(fw: Firewall, path: str) -> str | None:
    """The digest GET answers for the list (or options) ``path`` or an item of it belongs to: what PVE checks."""
    try:
        return _digest_of(render_firewall(fw, _list_path(path)))
    except (LookupError, PveApiError):
        return None


def _list_path(path: str) -> str:
    """The list an item path's digest belongs to (``.../rules/3`` -> ``.../rules``)."""
    found = firewall_path(path)
    if found is None:
        return path
    level, section, rest = found
    keep = 1 if section in ("ipset", "groups") else 0
    return path if len(rest) <= keep else path.rsplit("/", 1)[0]


def firewall_paths(fw: Firewall, guests: dict[int, tuple[str, str]]) -> list[str]:
    """Every firewall GET path a snapshot holds (``guests``: vmid -> (node, kind))."""
    if not fw.read:
        return []
    paths = [f"/cluster/firewall/{s}" for s in ("options", "rules", "groups", "ipset", "aliases")]
    paths += [f"/cluster/firewall/groups/{g}" for g in sorted(fw.groups)]
    paths += [f"/cluster/firewall/ipset/{n}" for n in sorted(fw.cluster.ipsets)]
    for node in sorted(fw.nodes):
        paths += [f"/nodes/{node}/firewall/options", f"/nodes/{node}/firewall/rules"]
    for vmid in sorted(fw.guests):
        if vmid in guests:
            node, kind = guests[vmid]
            base = f"/nodes/{node}/{kind}/{vmid}/firewall"
        elif fw.guests[vmid].base:
            base = fw.guests[vmid].base
        else:
            continue
        paths += [f"{base}/options", f"{base}/rules", f"{base}/ipset", f"{base}/aliases"]
        paths += [f"{base}/ipset/{n}" for n in sorted(fw.guests[vmid].ipsets)]
    return paths


def _find_rule(rules: list[dict[str, Any]], pos: str) -> dict[str, Any]:
    index = int(pos) if pos.isascii() and pos.isdigit() else -1
    if not 0 <= index < len(rules):
        raise PveApiError(400, "Parameter verification failed.", {"pos": "no rule at position " + pos})
    return {**rules[index], "pos": index, "digest": fw_digest(rules)}


def level_for(fw: Firewall, level_name: str, *, create: bool = False) -> FirewallLevel | None:
    if level_name == "cluster":
        return fw.cluster
    if level_name.startswith("node:"):
        name = level_name[5:]
        return fw.node(name) if create else fw.nodes.get(name, FirewallLevel())
    vmid = int(level_name[6:])
    return fw.guest(vmid) if create else fw.guests.get(vmid, FirewallLevel())


def render_firewall(fw: Firewall, path: str) -> Any:
    """GET on a firewall path, as PVE answers it. Raises LookupError for paths this module does not serve."""
    data = _render_firewall(fw, path)
    known = fw.pve_digests.get(_list_path(path))
    if known and _digest_of(data) == known[0]:
        if isinstance(data, dict):
            return {**data, "digest": known[1]}
        return [{**row, "digest": known[1]} for row in data]
    return data


def _render_firewall(fw: Firewall, path: str) -> Any:
    found = firewall_path(path)
    if found is None or not fw.read:
        raise LookupError(path)
    level_name, section, rest = found
    level = level_for(fw, level_name)
    assert level is not None
    if section == "options" and not rest:
        return {**level.options, "digest": options_digest(level.options)}
    if section == "rules":
        if not rest:
            return with_digest(level.rules, positions=True)
        if len(rest) == 1:
            return _find_rule(level.rules, rest[0])
    if section == "aliases":
        rows = sorted(level.aliases, key=lambda r: str(r.get("name", "")).lower())
        if not rest:
            return with_digest(rows)
        if len(rest) == 1:
            for row in rows:
                if str(row.get("name", "")).lower() == rest[0].lower():
                    return {**row, "digest": fw_digest(rows)}
            raise PveApiError(400, f"no such alias '{rest[0]}'")
    if section == "ipset":
        if not rest:
            listed = [{"name": n, **({"comment": s.comment} if s.comment is not None else {})} for n, s in sorted(level.ipsets.items())]
            return with_digest(listed)
        ipset = level.ipsets.get(rest[0])
        if ipset is None:
            raise PveApiError(400, f"no such IPSet '{rest[0]}'")
        if len(rest) == 1:
            return with_digest(ipset.entries)
        for entry in ipset.entries:
            if entry.get("cidr") == rest[1]:
                return {**entry, "digest": fw_digest(ipset.entries)}
        raise PveApiError(400, f"no such IP/Network '{rest[1]}'")
    if section == "groups":
        if not rest:
            listed = [{"group": g, **({"comment": s.comment} if s.comment is not None else {})} for g, s in sorted(fw.groups.items())]
            return with_digest(listed)
        group = fw.groups.get(rest[0])
        if group is None:
            raise PveApiError(400, f"no such security group '{rest[0]}'")
        if len(rest) == 1:
            return with_digest(group.rules, positions=True)
        return _find_rule(group.rules, rest[1])
    raise LookupError(path)
