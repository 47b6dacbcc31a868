"""Blast radius of a node's network changes: the active configuration before and after, compared.

Only what the node runs counts: a staging call changes interfaces.new and nothing live (the plan says so in a
note), an apply or a revert of an applied change moves the active configuration. Facts used:

- Guest ports (pve-common src/PVE/Network.pm ``tap_plug``): a NIC joins its bridge when the guest starts (or the
  NIC is hot-plugged); nothing re-plugs it after a reload. PVE's ifupdown2 keeps ``tap``/``veth``/``fwpr`` ports
  on a reloaded bridge and does not delete a bridge that still has them (its patches 0001, 0004, 0006). A tagged
  NIC on a bridge without VLAN awareness goes through ``<bridge>v<tag>`` with ``<port>.<tag>`` devices made at its
  start from the bridge's physical ports (``activate_bridge_vlan``: "no physical interface on bridge" without
  one); on a VLAN-aware bridge the tag is the port's PVID, and ``trunks`` need VLAN awareness.
- The management address (pve-cluster src/PVE/Cluster.pm ``remote_node_ip``): ``/cluster/status`` ``ip``, what
  other nodes, the API proxy, migrations and consoles use to reach the node.
- Corosync links (``/cluster/config/nodes`` ``ringN_addr``): a node that loses all of them leaves the quorate
  partition; with active HA services its LRM stops feeding the watchdog and the node resets itself about 60 s
  later (pve-ha-manager src/PVE/HA/LRM.pm); its HA guests are recovered elsewhere after about 2 minutes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from proximo import Change, Impact, Risk
from proximo.model import ClusterModel, Guest, as_int
from proximo.model._drives import parse_property_string
from proximo.model._network import NetworkUnknown

Rows = list[dict[str, Any]]
# HA states in which a service does not make its node's LRM active (pve-ha-manager PVE/HA/Tools.pm
# count_active_services).
_IDLE_HA_STATES = ("stopped", "freeze", "error", "request_start", "disabled", "ignored")


def _by_name(rows: Rows) -> dict[str, dict[str, Any]]:
    return {str(r["iface"]): r for r in rows}


def uplink(rows: dict[str, dict[str, Any]], iface: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
    """The interfaces under ``iface`` down to the NICs: bridge ports, bond slaves, a VLAN's raw device."""
    row = rows.get(iface)
    if row is None or iface in seen:
        return frozenset()
    seen = seen | {iface}
    below = [*str(row.get("bridge_ports") or "").split(), *str(row.get("slaves") or "").split()]
    if row.get("type") == "vlan" and row.get("vlan-raw-device"):
        below.append(str(row["vlan-raw-device"]))
    found = set(below)
    for port in below:
        found |= uplink(rows, port, seen)
    return frozenset(found)


def _ports(rows: dict[str, dict[str, Any]], bridge: str) -> list[str]:
    return str(rows.get(bridge, {}).get("bridge_ports") or "").split()


def _is_bridge(rows: dict[str, dict[str, Any]], name: str) -> bool:
    return rows.get(name, {}).get("type") in ("bridge", "OVSBridge")


def _aware(rows: dict[str, dict[str, Any]], bridge: str) -> bool:
    return as_int(rows.get(bridge, {}).get("bridge_vlan_aware")) == 1


def guest_nics(guest: Guest) -> Iterator[tuple[str, dict[str, str]]]:
    for key, value in sorted(guest.config.items()):
        if key.startswith("net") and key[3:].isascii() and key[3:].isdigit():
            try:
                yield key, {k: str(v) for k, v in parse_property_string(str(value), "model").items()}
            except ValueError:
                continue


def _names(ports: list[str] | frozenset[str]) -> str:
    return ", ".join(sorted(ports)) or "no ports"


def guest_effects(node: str, old: Rows, new: Rows, before: ClusterModel) -> Iterator[Impact]:
    """Guests on ``node`` whose NICs lose their bridge, its uplink or their VLAN when ``old`` becomes ``new``."""
    a, b = _by_name(old), _by_name(new)
    for _, guest in sorted(before.guests.items()):
        if guest.node != node or guest.template:
            continue
        for key, nic in guest_nics(guest):
            bridge = nic.get("bridge")
            if not bridge or not _is_bridge(a, bridge):
                continue  # not a bridge of this node's configuration (an SDN vnet, or one it never had)
            tag, trunks = nic.get("tag"), nic.get("trunks")
            what = f"{guest.sid} {key} (bridge {bridge}{f', tag {tag}' if tag else ''})"
            if not _is_bridge(b, bridge):
                if guest.running:
                    yield Impact(guest.sid, "loses-network",
                                 f"{what}: {bridge} leaves the configuration of {node}; ifreload leaves it up, unmanaged, "
                                 f"only while guest ports are plugged, and nothing re-creates it")
                if not bridge.startswith("vmbr"):  # vmbrN: the guests pack reports the failing start (bridge_problems)
                    yield Impact(guest.sid, "wont-boot", f"{what}: bridge '{bridge}' does not exist on {node} after the "
                                                         "change; the next start fails")
                continue
            old_up, new_up = uplink(a, bridge), uplink(b, bridge)
            lost = old_up - new_up
            was_aware, is_aware = _aware(a, bridge), _aware(b, bridge)
            if was_aware and not is_aware:
                if guest.running and (tag or trunks):
                    yield Impact(guest.sid, "loses-network",
                                 f"{what}: VLAN awareness of {bridge} goes off: its VLAN filtering stops, so the NIC "
                                 f"no longer gets only {'VLAN ' + tag if tag else 'its trunks'}")
                if trunks:
                    yield Impact(guest.sid, "wont-boot", f"{what}: trunks={trunks} on {bridge}, which is no longer VLAN aware: "
                                                         "the next start fails (vlan aware feature need to be enabled to use trunks)")
            if tag and not is_aware and not _ports(b, bridge):
                yield Impact(guest.sid, "wont-boot", f"{what}: {bridge} has no physical port after the change: a tagged NIC "
                                                     f"on a bridge without VLAN awareness cannot start (no physical interface on bridge '{bridge}')")
            if lost and guest.running:
                if tag and not was_aware:
                    how = (f"tag {tag} runs through {bridge}v{tag} over {_names([f'{p}.{tag}' for p in _ports(a, bridge)])}, "
                           f"made at the guest's start: it keeps that path until the NIC is plugged again (stop and "
                           f"start, an API reboot, a NIC edit), then uses {_names(_ports(b, bridge))}")
                else:
                    how = f"its uplink changes from {_names(old_up)} to {_names(new_up)}"
                yield Impact(guest.sid, "loses-network", f"{what}: {bridge} loses {_names(lost)}: {how}")


def _address_of(row: dict[str, Any], family: str) -> str | None:
    sfx = "" if family == "inet" else "6"
    if row.get(f"method{sfx}") != "static" or not row.get(f"address{sfx}"):
        return None  # an address under `inet manual` (left behind by a PUT without address) is not configured
    return str(row[f"address{sfx}"])


def carrier(rows: Rows, address: str) -> dict[str, Any] | None:
    """The interface whose static address is ``address``."""
    try:
        wanted = ipaddress.ip_address(address)
    except ValueError:
        return None
    for row in rows:
        for family in ("inet", "inet6"):
            value = _address_of(row, family)
            try:
                if value is not None and ipaddress.ip_address(value) == wanted:
                    return row
            except ValueError:
                continue
    return None


def path_change(old: Rows, new: Rows, address: str) -> str | None:
    """How the way to ``address`` on this node changes, or None: it goes, moves to another interface, gets
    another prefix, or its interface's uplink changes."""
    was = carrier(old, address)
    if was is None:
        return None  # not configured here before (DHCP, another file): nothing to compare
    now = carrier(new, address)
    if now is None:
        return f"{address} is no longer configured on {was['iface']} (or any interface)"
    if now["iface"] != was["iface"]:
        up_old, up_new = uplink(_by_name(old), str(was["iface"])), uplink(_by_name(new), str(now["iface"]))
        return f"{address} moves from {was['iface']} ({_names(up_old)}) to {now['iface']} ({_names(up_new)})"
    mask = "netmask6" if ":" in address else "netmask"
    if str(now.get(mask)) != str(was.get(mask)):
        return f"{address} on {was['iface']} gets prefix /{now.get(mask)} (was /{was.get(mask)})"
    up_old, up_new = uplink(_by_name(old), str(was["iface"])), uplink(_by_name(new), str(now["iface"]))
    if up_old - up_new:
        return f"{address} stays on {was['iface']}, whose uplink changes from {_names(up_old)} to {_names(up_new)}"
    return None


def management_effects(change: Change, node: str, old: Rows, new: Rows, before: ClusterModel) -> Iterator[Impact]:
    row = next((r for r in before.cluster_status if r.get("type") == "node" and r.get("name") == node), {})
    ip = str(row.get("ip") or "")
    api = change.operator.api_host
    through = api in (ip, node) if api else False
    proximo = (" Proximo reaches the API through this address: after the apply it cannot reach the cluster to undo it."
               if through else "")
    if ip and (how := path_change(old, new, ip)):
        yield Impact(f"node/{node}", "unreachable", f"{how}: other nodes, the API proxy, migrations and consoles reach "
                                                    f"{node} at {ip} (its /cluster/status ip)")
        yield Impact(f"node/{node}", "lockout", f"the management address of {node} changes ({how}): if the new path does "
                                                f"not reach that network, {node} is cut off and no API call can set it back."
                                                f"{proximo}")
    for sfx, family in (("", "IPv4"), ("6", "IPv6")):
        had = next((r for r in old if r.get(f"gateway{sfx}")), None)
        if had is not None and not any(r.get(f"gateway{sfx}") for r in new if _address_of(r, "inet" if not sfx else "inet6")):
            reason = (f"the {family} default route of {node} (gateway {had[f'gateway{sfx}']} on {had['iface']}) goes: "
                      f"{node} answers only its own subnets.{proximo}")
            yield Impact(f"node/{node}", "unreachable", reason)
            yield Impact(f"node/{node}", "lockout", reason)


def _links(before: ClusterModel, node: str) -> dict[str, str]:
    row = next((r for r in before.corosync_nodes if (r.get("name") or r.get("node")) == node), {})
    return {k: str(v) for k, v in sorted(row.items()) if k.startswith("ring") and k.endswith("_addr") and v}


def corosync_effects(node: str, old: Rows, new: Rows, before: ClusterModel) -> Iterator[Impact]:
    links = _links(before, node)
    broken = {key: how for key, addr in links.items() if (how := path_change(old, new, addr))}
    if not broken:
        return
    detail = "; ".join(f"{key.removesuffix('_addr').replace('ring', 'link')}: {how}" for key, how in broken.items())
    if len(broken) < len(links):
        kept = ", ".join(k.removesuffix("_addr").replace("ring", "link") for k in links if k not in broken)
        yield Impact(f"node/{node}", "quorum-risk", f"corosync on {node}: {detail}; it keeps quorum over {kept} only, "
                                                    "with no redundant link left")
        return
    votes = {str(r.get("name") or r.get("node")): as_int(r.get("quorum_votes"), 1) for r in before.corosync_nodes}
    total = sum(votes.values())
    left = total - votes.get(node, 1)
    quorum = total // 2 + 1
    ha = [res for res in before.ha_resources if res.get("state", "started") not in _IDLE_HA_STATES
          and (g := _ha_guest(before, str(res.get("sid", "")))) is not None and g.node == node]
    fencing = (f" {node} runs {len(ha)} active HA service{'s' if len(ha) != 1 else ''}: its LRM loses its lock and "
               f"the watchdog resets {node} about 60 s later" if ha else "")
    if total > 1 and left < quorum:
        yield Impact("cluster", "quorum-risk",
                     f"corosync on {node}: {detail}. {node} leaves the cluster and the {left} remaining vote{'s' if left != 1 else ''} "
                     f"of {total} are short of quorum ({quorum}): /etc/pve goes read-only on every node, and every node "
                     "with active HA services resets itself", risk=Risk.CRITICAL)
    yield Impact(f"node/{node}", "quorum-risk",
                 f"corosync on {node}: {detail}: every link of {node} is affected, so it drops out of the quorate "
                 f"partition (its /etc/pve goes read-only: no starts, config changes or migrations there).{fencing}")
    for res in ha:
        guest = _ha_guest(before, str(res.get("sid", "")))
        assert guest is not None
        yield Impact(guest.sid, "downtime", f"HA service {res.get('sid')} on {node}: {node} fences itself about 60 s after "
                                            "losing quorum; HA recovers the guest on another node about 2 minutes later")


def _ha_guest(model: ClusterModel, sid: str) -> Guest | None:
    _, _, vmid = sid.partition(":")
    return model.guests.get(as_int(vmid, -1))


def network_impacts(change: Change, before: ClusterModel, after: ClusterModel) -> list[Impact]:
    impacts: list[Impact] = []
    for name in sorted(set(before.nodes) & set(after.nodes)):
        old_node, new_node = before.nodes[name], after.nodes[name]
        if (old_node.network, old_node.network_changes) == (new_node.network, new_node.network_changes):
            continue
        try:
            old, new = old_node.active_network(), new_node.active_network()
        except NetworkUnknown as exc:
            impacts.append(Impact(f"node/{name}", "unreachable", f"the active network configuration of {name} cannot be "
                                  f"derived ({exc}): Proximo cannot judge this change", blocks=True))
            continue
        if old is None or new is None or old == new:
            continue  # staged only: nothing the node runs changes
        impacts += node_effects(change, name, old, new, before)
    return impacts


def node_effects(change: Change, node: str, old: Rows, new: Rows, before: ClusterModel) -> list[Impact]:
    """What running ``new`` instead of ``old`` on ``node`` does: to its guests, its management address, corosync."""
    return [*guest_effects(node, old, new, before), *management_effects(change, node, old, new, before),
            *corosync_effects(node, old, new, before)]
