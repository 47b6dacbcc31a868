"""The network tools: read the staged configuration and its pending diff; stage, apply and revert changes.

The mutating tools only describe API calls; the semantics (``_semantics.py``) and the analysers (``_impact.py``)
judge them, so ``api.call`` on the same endpoints gets the same plan.
"""

from __future__ import annotations

from typing import Any

import msgspec

from proximo import ApiCall, BadInput, Draft, plan_tool, read_tool, tool_table
from proximo.model import ClusterModel, Node, split_list
from proximo.model._network import NetworkUnknown
from proximo.params import IfaceName, NodeName, api_params, described, schema_params, struct_from_schema

from ._semantics import NOT_MODELLED_TYPES

# The tools take the Linux interfaces the model writes: the Open vSwitch parameters and the SDN types are left out
# (api.call still sends them, and the semantics refuse them as not modelled).
# Addresses are given one way, as cidr/cidr6 (PVE's address+netmask pair means the same).
_LEFT_OUT = ("ovs_bonds", "ovs_bridge", "ovs_options", "ovs_ports", "ovs_tag", "address", "netmask", "address6", "netmask6")
MODELLED_TYPES = ["bridge", "bond", "eth", "alias", "vlan"]
# Interfaces.pm $bond_modes: the Linux bond modes (balance-slb and the lacp-* modes are Open vSwitch's)
LINUX_BOND_MODES = ["balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"]


def _linux_only(method: str, template: str, *, type_optional: bool = False) -> dict[str, Any]:
    params = {k: v for k, v in schema_params(method, template).items() if k not in _LEFT_OUT}
    params["type"] = msgspec.structs.replace(params["type"], enum=MODELLED_TYPES, optional=type_optional)
    params["bond_mode"] = msgspec.structs.replace(params["bond_mode"], enum=LINUX_BOND_MODES)
    return params


IfaceCreateParams = struct_from_schema("IfaceCreateParams", "POST", "/nodes/{node}/network",
                                       params=_linux_only("POST", "/nodes/{node}/network"))
# The update takes the interface's type from the staged configuration when it is not given (PVE requires it).
IfaceUpdateParams = struct_from_schema("IfaceUpdateParams", "PUT", "/nodes/{node}/network/{iface}",
                                       params=_linux_only("PUT", "/nodes/{node}/network/{iface}", type_optional=True))


class NetworkListParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    node: NodeName | None = None


class IfaceRef(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    node: NodeName
    iface: IfaceName


class NodeRef(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    node: NodeName


described(NetworkListParams, fields={"node": "one node (default: every node)"})
described(IfaceRef, pve=(("DELETE", "/nodes/{node}/network/{iface}"),))
described(NodeRef, pve=(("PUT", "/nodes/{node}/network"),))


def _node(view: ClusterModel, name: str) -> Node:
    node = view.nodes.get(name)
    if node is None:
        raise BadInput(f"node '{name}' does not exist (see `proximo read node.list`)")
    if node.network is None:
        raise BadInput(f"the network configuration of node '{name}' was not read")
    return node


def _row(node: Node, iface: str) -> dict[str, Any]:
    assert node.network is not None
    for row in node.network:
        if row.get("iface") == iface:
            return row
    raise BadInput(f"interface '{iface}' does not exist on node {node.name} (see `proximo read network.list node={node.name}`)")


# --- reads ----------------------------------------------------------------------------------------------


def read_list(p: NetworkListParams, view: ClusterModel) -> list[dict[str, Any]]:
    names = [p.node] if p.node else sorted(view.nodes)
    out = []
    for name in names:
        node = _node(view, name) if p.node else view.nodes[name]
        if node.network is None:
            out.append({"node": name, "read": False})
            continue
        entry: dict[str, Any] = {"node": name, "interfaces": node.network, "pending": bool(node.network_changes)}
        if node.network_changes:
            entry["changes"] = node.network_changes
            try:
                active = node.active_network() or []
                running = {r["iface"]: r for r in active}
                staged = {r["iface"]: r for r in node.network}
                entry["pending_interfaces"] = {
                    "added": sorted(staged.keys() - running.keys()), "removed": sorted(running.keys() - staged.keys()),
                    "changed": sorted(k for k in staged.keys() & running.keys() if staged[k] != running[k])}
            except NetworkUnknown as exc:
                entry["active_unknown"] = str(exc)
        out.append(entry)
    return out


# --- plans ----------------------------------------------------------------------------------------------


def _refuse_unmodelled(kind: Any, iface: str) -> None:
    if str(kind) in NOT_MODELLED_TYPES:
        raise BadInput(f"interface {iface}: type {kind} ({NOT_MODELLED_TYPES[str(kind)]}) is not modelled; Proximo will not plan it")


def plan_create(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    name, iface = str(params.pop("node")), str(params["iface"])
    node = _node(view, name)
    if any(row.get("iface") == iface for row in node.network or []):
        raise BadInput(f"interface '{iface}' already exists on node {name} (an interface cannot be renamed: create the "
                       "new one and delete the old)")
    return Draft(steps=[ApiCall("POST", f"/nodes/{name}/network", params)], target=f"{name}/{iface}")


def plan_update(p: Any, view: ClusterModel) -> Draft:
    """PVE's update keeps every key the request does not name, but recomputes the addressing from the request alone
    (an address not resent is turned ``inet manual``, an IPv6 address not resent is dropped) and writes
    ``bridge-vlan-aware yes`` for any value: the call resends the interface's addresses with what changes, and
    turns VLAN awareness off with ``delete``."""
    given = api_params(p)
    name, iface = str(given.pop("node")), str(given.pop("iface"))
    node = _node(view, name)
    row = _row(node, iface)
    _refuse_unmodelled(row.get("type"), iface)
    delete = set(split_list(given.pop("delete", None)))
    if given.get("bridge_vlan_aware") == 0:
        given.pop("bridge_vlan_aware")
        delete.add("bridge_vlan_aware")
    if not given and not delete:
        raise BadInput("network.iface.update: nothing to change (give at least one setting, or delete=...)")
    params: dict[str, Any] = {"type": row.get("type")}
    for sfx in ("", "6"):
        if f"address{sfx}" in delete:
            delete.add(f"cidr{sfx}")  # PVE takes the address back from cidr otherwise
        readdressed = given.get(f"cidr{sfx}") or f"cidr{sfx}" in delete
        if row.get(f"cidr{sfx}") and not readdressed:
            params[f"cidr{sfx}"] = row[f"cidr{sfx}"]
    params.update(given)
    if delete:
        params["delete"] = ",".join(sorted(delete))
    return Draft(steps=[ApiCall("PUT", f"/nodes/{name}/network/{iface}", params)], target=f"{name}/{iface}")


def plan_delete(p: IfaceRef, view: ClusterModel) -> Draft:
    node = _node(view, p.node)
    _row(node, p.iface)
    return Draft(steps=[ApiCall("DELETE", f"/nodes/{p.node}/network/{p.iface}")], target=f"{p.node}/{p.iface}")


def plan_apply(p: NodeRef, view: ClusterModel) -> Draft:
    _node(view, p.node)  # with nothing pending it is a plain ifreload, which PVE runs too (the plan's note says so)
    return Draft(steps=[ApiCall("PUT", f"/nodes/{p.node}/network")], target=p.node)


def plan_revert(p: NodeRef, view: ClusterModel) -> Draft:
    _node(view, p.node)
    return Draft(steps=[ApiCall("DELETE", f"/nodes/{p.node}/network")], target=p.node)


TOOLS = tool_table(
    read_tool("network.list", "Node network", "Each node's network configuration as staged (GET /nodes/{node}/network: "
              "interfaces.new when changes are pending) with the pending diff and the interfaces it adds, removes and changes.",
              NetworkListParams, read_list, columns=("node", "pending", "interfaces")),
    plan_tool("network.iface.create", "Plan: create interface", "Plan staging a new interface (POST /nodes/{node}/network; "
              "nothing changes live until network.apply). Parameters as PVE names them.", IfaceCreateParams, plan_create),
    plan_tool("network.iface.update", "Plan: update interface", "Plan staging a change to an interface (PUT "
              "/nodes/{node}/network/{iface}). Only what is given changes: the interface's addresses are resent, as PVE "
              "requires; bridge_vlan_aware=0 is sent as delete=bridge_vlan_aware.", IfaceUpdateParams, plan_update),
    plan_tool("network.iface.delete", "Plan: delete interface", "Plan staging the removal of an interface (DELETE "
              "/nodes/{node}/network/{iface}).", IfaceRef, plan_delete),
    plan_tool("network.apply", "Plan: apply network changes", "Plan applying a node's staged network changes (PUT "
              "/nodes/{node}/network: ifreload). Guests losing their bridge or VLAN, the management address, the default "
              "route and corosync links are judged.", NodeRef, plan_apply),
    plan_tool("network.revert", "Plan: revert network changes", "Plan dropping a node's staged network changes (DELETE "
              "/nodes/{node}/network): nothing live changes.", NodeRef, plan_revert),
)
