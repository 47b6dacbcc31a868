"""What ``/nodes/{node}/network`` writes do to a node, after pve-manager PVE/API2/Network.pm (14a22df).

Create, update and delete of an interface only write ``/etc/network/interfaces.new`` (the staged file): the node
runs what it ran before. ``PUT /nodes/{node}/network`` applies (a ``srvreload`` task renames the staged file over
the live one and runs ``ifreload -a``, with no rollback); ``DELETE /nodes/{node}/network`` unlinks the staged
file. The model keeps what GET shows (the staged rows and the pending ``changes``); the active configuration is
derived from them (proximo.model._network), so each write here is: take the staged rows, change them as the
handler does, write and re-read them as PVE does (the writer's checks and quirks included), and diff them
against the active configuration.

Quirks reproduced, as the handlers have them:
- update_network recomputes ``families``, ``method`` and ``method6`` from the request alone: a PUT without
  ``address``/``cidr`` makes the stanza ``inet manual`` (its address line stays in the file), one without
  ``address6``/``cidr6`` drops the ``inet6`` stanza;
- the writer emits ``bridge-vlan-aware yes`` whenever the key is set, so ``bridge_vlan_aware=0`` still writes
  yes (``delete=bridge_vlan_aware`` turns it off);
- ``delete=address`` alone keeps the address (the writer takes it back from ``cidr``): ``delete=cidr`` removes it;
- ``bridge_vids`` is normalised on create only (update copies the request before normalising);
- no rename: the interface name is the path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from proximo import ApiCall, Change, Irreversible, NotModelled, PveApiError, Step
from proximo.model import Call, ClusterModel, Node, split_list
from proximo.model._network import (NetworkConfigError, NetworkUnknown, check_config, config_diff, reread,
                                    write_config)

from ._impact import node_effects

Rows = list[dict[str, Any]]
# Types whose stanzas Proximo does not write: OVS ports and bonds (their bridge's ovs_ports and options), SDN vnets
# and fabrics (written by pve-network, not by this endpoint's writer).
NOT_MODELLED_TYPES = {"OVSBridge": "Open vSwitch", "OVSBond": "Open vSwitch", "OVSPort": "Open vSwitch",
                      "OVSIntPort": "Open vSwitch", "vnet": "SDN", "fabric": "SDN", "unknown": "an unknown type"}
# Keys of a row the create and update endpoints take (the rest, such as bridge_stp or extra option lines, are kept
# by PVE across updates but cannot be set through the API).
SETTABLE = ("autostart", "bond-primary", "bond_mode", "bond_xmit_hash_policy", "bridge_ports", "bridge_vids",
            "bridge_vlan_aware", "cidr", "cidr6", "comments", "comments6", "gateway", "gateway6", "mtu", "slaves",
            "vlan-id", "vlan-raw-device")


def _param_error(key: str, message: str) -> PveApiError:
    """raise_param_exc: a 400 with the message on the parameter."""
    return PveApiError(400, "Parameter verification failed.", {key: message})


def _rows(model: ClusterModel, name: str) -> tuple[Node, Rows, Rows]:
    """The node, a copy of its staged rows, and its active rows; NotModelled where the model cannot say."""
    node = model.node(name)
    if node.network is None:
        raise NotModelled(f"the network configuration of node {name} was not read (GET /nodes/{name}/network)")
    try:
        active = node.active_network() or []
    except NetworkUnknown as exc:
        raise NotModelled(f"node {name}: its active network configuration cannot be derived from the pending "
                          f"changes ({exc}); Proximo will not plan network writes there") from None
    return node, [dict(row) for row in node.network], active


def _written(rows: Rows) -> Rows:
    """PVE::INotify::write_file('interfaces', ...): the writer's checks (a refusal is the call's 500), then
    interfaces.new written and read back as GET lists it."""
    try:
        check_config(rows)
        return reread(rows)
    except NetworkConfigError as exc:
        raise PveApiError(500, str(exc)) from None


def _check_duplicate(rows: Rows, iface: str, key: str, name: str) -> None:
    for row in rows:
        if row["iface"] != iface and row.get(key):
            raise _param_error(key, f"{name} already exists on interface '{row['iface']}'.")


def _check_duplicate_ports(rows: Rows, iface: str, params: dict[str, Any]) -> None:
    keys = [k for k in ("bridge_ports", "ovs_ports", "slaves", "ovs_bonds") if params.get(k)]
    new = set(split_list(" ".join(str(params[k]) for k in keys)))
    if not new:
        return
    for row in rows:
        if row["iface"] == iface:
            continue
        for port in split_list(" ".join(str(row.get(k) or "") for k in ("bridge_ports", "ovs_ports", "slaves", "ovs_bonds"))):
            if port in new:
                raise _param_error(keys[0], f"{port} is already used on interface '{row['iface']}'.")


def _map_cidr(params: dict[str, Any]) -> None:
    """$map_cidr_to_address_netmask."""
    for sfx in ("", "6"):
        cidr = params.pop(f"cidr{sfx}", None)
        if not cidr:
            continue
        if params.get(f"address{sfx}"):
            raise _param_error(f"address{sfx}", f"address{sfx} conflicts with cidr{sfx}")
        if params.get(f"netmask{sfx}"):
            raise _param_error(f"netmask{sfx}", f"netmask{sfx} conflicts with cidr{sfx}")
        address, _, mask = str(cidr).rpartition("/")
        params[f"address{sfx}"], params[f"netmask{sfx}"] = address, mask


def _check_ipv6(address: str, netmask: Any) -> None:
    """$check_ipv6_settings: a host address (Net::IP's GLOBAL, UNIQUE-LOCAL or LINK-LOCAL unicast types)."""
    try:
        mask = int(netmask or 0)
    except ValueError:
        mask = -1
    if not 0 <= mask <= 128:
        raise _param_error("netmask", f"{netmask} is not a valid subnet length for ipv6")
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        raise _param_error("address", f"{address} is not a valid host IPv6 address.") from None
    network = ipaddress.IPv6Network(f"{address}/{mask}", strict=False)
    kind = ("ANYCAST" if ip == network.network_address and mask < 128 else "MULTICAST" if ip.is_multicast
            else "LOOPBACK" if ip.is_loopback else "UNSPECIFIED" if ip.is_unspecified else "RESERVED" if ip.is_reserved else None)
    if kind is not None:
        raise _param_error("address", f"{address} with type '{kind}', cannot be used as host IPv6 address.")


def _refuse_unmodelled(kind: Any) -> None:
    if str(kind) in NOT_MODELLED_TYPES:
        raise NotModelled(f"interfaces of type {kind} ({NOT_MODELLED_TYPES[str(kind)]}) are not modelled")


# --- the handlers, on rows -----------------------------------------------------------------------------------


def create_rows(rows: Rows, params: dict[str, Any]) -> Rows:
    """create_network on the staged rows: the new rows (PveApiError as the handler refuses)."""
    p = {k: v for k, v in params.items() if k != "node"}
    iface = str(p.pop("iface"))
    if any(row["iface"] == iface for row in rows):
        raise _param_error("iface", "interface already exists")
    if p.get("gateway"):
        _check_duplicate(rows, iface, "gateway", "Default gateway")
    if p.get("gateway6"):
        _check_duplicate(rows, iface, "gateway6", "Default ipv6 gateway")
    _check_duplicate_ports(rows, iface, p)
    _map_cidr(p)
    if p.get("address6"):
        _check_ipv6(str(p["address6"]), p.get("netmask6"))
    p["families"] = [f for f, key in (("inet", "address"), ("inet6", "address6")) if p.get(key)] or ["inet"]
    p["method"] = "static" if p.get("address") else "manual"
    p["method6"] = "static" if p.get("address6") else "manual"
    _refuse_unmodelled(p.get("type"))
    if "bridge_vids" in p and p["bridge_vids"]:
        vids = split_list(p["bridge_vids"])
        if not vids:
            raise _param_error("bridge_vids", "VLAN list items are empty")
        p["bridge_vids"] = " ".join(vids)
    return [*rows, {**p, "iface": iface}]


def update_rows(rows: Rows, params: dict[str, Any]) -> Rows:
    """update_network on the staged rows, quirks included (see the module's docstring)."""
    p = {k: v for k, v in params.items() if k != "node"}
    iface = str(p.pop("iface"))
    delete = split_list(p.pop("delete", None))
    found = [row for row in rows if row["iface"] == iface]
    if not found:
        raise _param_error("iface", "interface does not exist")
    row = dict(found[0])
    _refuse_unmodelled(row.get("type"))
    _refuse_unmodelled(p.get("type"))
    for key in delete:
        row.pop(key, None)
        if key in ("cidr", "cidr6"):
            sfx = key[4:]
            row.pop(f"netmask{sfx}", None)
            row.pop(f"address{sfx}", None)
    _map_cidr(p)
    others = [r for r in rows if r["iface"] != iface]
    if p.get("gateway"):
        _check_duplicate(others, iface, "gateway", "Default gateway")
    if p.get("gateway6"):
        _check_duplicate(others, iface, "gateway6", "Default ipv6 gateway")
    _check_duplicate_ports(others, iface, p)
    if p.get("address6"):
        _check_ipv6(str(p["address6"]), p.get("netmask6"))
    # families and methods from this request alone: what the request does not carry is dropped
    p["families"] = [f for f, key in (("inet", "address"), ("inet6", "address6")) if p.get(key)] or ["inet"]
    p["method"] = "static" if p.get("address") else "manual"
    p["method6"] = "static" if p.get("address6") else "manual"
    row.update(p)
    if "bridge_vids" in p and p["bridge_vids"] and not split_list(p["bridge_vids"]):
        raise _param_error("bridge_vids", "VLAN list items are empty")
    return [row if r["iface"] == iface else r for r in rows]


def delete_rows(rows: Rows, params: dict[str, Any]) -> Rows:
    """delete_network on the staged rows."""
    iface = str(params["iface"])
    if not any(row["iface"] == iface for row in rows):
        raise _param_error("iface", "interface does not exist")
    return [row for row in rows if row["iface"] != iface]


_ROW_HANDLERS: dict[tuple[str, str], Callable[[Rows, dict[str, Any]], Rows]] = {
    ("POST", "/nodes/{node}/network"): create_rows,
    ("PUT", "/nodes/{node}/network/{iface}"): update_rows,
    ("DELETE", "/nodes/{node}/network/{iface}"): delete_rows,
}


def staged_after(rows: Rows, call: Call) -> Rows:
    """The staged rows after a staging call (as written and read back)."""
    return _written(_ROW_HANDLERS[(call.method, call.template)](rows, {**call.params, **call.path_params}))


def stage(model: ClusterModel, call: Call) -> None:
    node, rows, active = _rows(model, call.path_params["node"])
    node.network = staged_after(rows, call)
    node.network_changes = config_diff(write_config(active), write_config(node.network))


def apply_staged(model: ClusterModel, call: Call) -> str:
    """reload_network_config: a srvreload task; interfaces.new becomes interfaces; ``ifreload -a`` brings up every
    ``auto`` interface. (It needs PVE's ifupdown2, which PVE 8 and 9 install by default.)"""
    node, rows, active = _rows(model, call.path_params["node"])
    for row in rows:
        if row.get("autostart"):
            row["active"] = 1
    node.network = rows
    node.network_changes = None
    return model.start_task(node.name, "srvreload", "networking", call.user)


def revert_staged(model: ClusterModel, call: Call) -> None:
    """revert_network_changes: interfaces.new is unlinked; GET shows the active configuration again."""
    node, _, active = _rows(model, call.path_params["node"])
    node.network = [dict(row) for row in active]
    node.network_changes = None


# --- undo: the calls that stage a given configuration -------------------------------------------------------


def _settable(row: dict[str, Any]) -> dict[str, Any]:
    """The row's values as create and update take them (a comment without the reader's closing newline)."""
    found = {k: row[k] for k in SETTABLE if row.get(k) not in (None, "")}
    for key in ("comments", "comments6"):
        if key in found:
            found[key] = str(found[key]).removesuffix("\n")
    return found


def _unsettable(row: dict[str, Any]) -> list[str]:
    """What a row holds that no create or update call can set (PVE keeps it across updates, never re-creates it)."""
    found = [k for k in ("options", "options6") if row.get(k)]
    found += [k for k in ("comments", "comments6") if "\n" in str(row.get(k) or "").removesuffix("\n")]  # one line per call
    if row.get("type") == "bridge":
        if str(row.get("bridge_stp", "off")) != "off":
            found.append("bridge_stp")
        if str(row.get("bridge_fd", "0")) != "0":
            found.append("bridge_fd")
    if row.get("type") == "bond" and str(row.get("bond_miimon", "100")) != "100":
        found.append("bond_miimon")
    return found


def restage(node: str, current: Rows, target: Rows) -> list[Step] | Irreversible:
    """The interface calls that turn the staged configuration ``current`` into ``target``, in an order each of
    which PVE accepts (the writer checks the whole file after each). Irreversible when no order works or a row
    holds what the API cannot set."""
    now = {r["iface"]: r for r in current}
    want = {r["iface"]: r for r in target}
    calls: list[ApiCall] = []
    for name in sorted(now.keys() - want.keys()):
        calls.append(ApiCall("DELETE", f"/nodes/{node}/network/{name}"))
    for name in sorted(want.keys() & now.keys()):
        old, new = now[name], want[name]
        if _settable(old) == _settable(new) and old.get("type") == new.get("type"):
            continue
        if lost := _unsettable(new):
            if [k for k in lost if new.get(k) != old.get(k)]:
                return Irreversible(f"interface {name} on {node} had {', '.join(lost)}, which the API cannot set")
        params: dict[str, Any] = {"type": new.get("type"), **_settable(new)}
        gone = sorted(k for k in _settable(old) if k not in params)
        if gone:
            params["delete"] = ",".join(gone)
        calls.append(ApiCall("PUT", f"/nodes/{node}/network/{name}", params))
    for name in sorted(want.keys() - now.keys()):
        row = want[name]
        if lost := _unsettable(row):
            return Irreversible(f"interface {name} on {node} had {', '.join(lost)}, which the API cannot set again")
        calls.append(ApiCall("POST", f"/nodes/{node}/network", {"iface": name, "type": row.get("type"), **_settable(row)}))
    # Order: the first call the writer accepts, again and again (a port freed before it is taken, a parent made
    # before its VLAN, a bridge removed before its port).
    ordered: list[Step] = []
    rows = [dict(r) for r in current]
    pending = list(calls)
    while pending:
        for step in pending:
            try:
                handler = _ROW_HANDLERS[(step.method, "/nodes/{node}/network" if step.method == "POST" else "/nodes/{node}/network/{iface}")]
                iface = step.params.get("iface") or step.path.rsplit("/", 1)[1]
                written = _written(handler(rows, {**step.params, "iface": iface}))
            except (PveApiError, NotModelled):
                continue
            rows = written
            ordered.append(step)
            pending.remove(step)
            break
        else:
            return Irreversible(f"the earlier network configuration of {node} cannot be staged again call by call "
                                f"(no order of {len(pending)} interface change{'s' if len(pending) > 1 else ''} passes PVE's checks)")
    return ordered


def _staging_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    node, rows, _ = _rows(before, call.path_params["node"])
    if not node.network_changes:  # nothing was pending: dropping interfaces.new restores exactly that
        return [ApiCall("DELETE", f"/nodes/{node.name}/network")]
    return restage(node.name, staged_after(rows, call), rows)


def _apply_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    node, rows, active = _rows(before, call.path_params["node"])
    if not node.network_changes:
        return []  # nothing was pending: the reload changed nothing
    steps = restage(node.name, rows, active)
    if isinstance(steps, Irreversible):
        return steps
    return [*steps, ApiCall("PUT", f"/nodes/{node.name}/network")]


def _revert_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    node, rows, active = _rows(before, call.path_params["node"])
    if not node.network_changes:
        return []
    return restage(node.name, active, rows)


# --- notes: what the plan says that no diff of the live state shows ---------------------------------------


def _diff_lines(old: Rows, new: Rows) -> list[str]:
    diff = config_diff(write_config(old), write_config(new)) or ""
    return [line[0] + " ".join(line[1:].split()) for line in diff.splitlines()[2:] if line[:1] in "+-" and line[1:].strip()]


def _staging_notes(before: ClusterModel, call: Call) -> list[str]:
    """The staged file's change, and what applying the staged file would then do (the apply plan judges it again)."""
    name = call.path_params["node"]
    try:
        _, rows, active = _rows(before, name)
        after = staged_after(rows, call)
    except (PveApiError, NotModelled):
        return []
    lines = _diff_lines(rows, after)
    shown = "; ".join(lines[:24]) + (f"; ... ({len(lines) - 24} more lines)" if len(lines) > 24 else "")
    notes = [f"{call.method} {call.path} is staged in /etc/network/interfaces.new on {name}: no live effect until the "
             f"network is applied (network.apply, PUT /nodes/{name}/network)" + (f"; it changes the staged file: {shown}" if shown else "")]
    preview = node_effects(Change(tool="network.apply", params={"node": name}, steps=[]), name, active, after, before)
    if preview:
        found = "; ".join(sorted({f"{i.effect} {i.target}" for i in preview}))
        notes.append(f"if {name}'s staged network were applied now: {found} (network.apply node={name} shows why)")
    return notes


def _pending_note(before: ClusterModel, call: Call, idle: str, busy: str) -> list[str]:
    name = call.path_params["node"]
    node = before.nodes.get(name)
    pending = node is not None and bool(node.network_changes)
    return [f"{call.method} /nodes/{name}/network " + (busy if pending else idle).format(node=name)]


def _apply_notes(before: ClusterModel, call: Call) -> list[str]:
    return _pending_note(before, call, "on {node}: nothing is pending; ifreload runs and changes nothing",
                         "renames interfaces.new over interfaces and runs ifreload -a on {node}: there is no rollback if "
                         "the reload fails halfway (pve-manager PVE/API2/Network.pm reload_network_config)")


def _revert_notes(before: ClusterModel, call: Call) -> list[str]:
    return _pending_note(before, call, "on {node}: nothing is pending; there is no staged file to drop",
                         "drops every change staged on {node} (interfaces.new), whoever staged it; nothing live changes")


def register_all(register: Callable[..., None]) -> None:
    register("POST", "/nodes/{node}/network", stage, inverse=_staging_inverse, notes=_staging_notes)
    register("PUT", "/nodes/{node}/network/{iface}", stage, inverse=_staging_inverse, notes=_staging_notes)
    register("DELETE", "/nodes/{node}/network/{iface}", stage, inverse=_staging_inverse, notes=_staging_notes)
    register("PUT", "/nodes/{node}/network", apply_staged, inverse=_apply_inverse, notes=_apply_notes)
    register("DELETE", "/nodes/{node}/network", revert_staged, inverse=_revert_inverse, notes=_revert_notes)
