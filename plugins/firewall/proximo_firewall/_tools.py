"""The firewall tools: reads render what the API answers; mutating tools only describe API calls."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

import msgspec

from proximo import ApiCall, BadInput, Draft, plan_tool, read_tool, tool_table
from proximo.model import ClusterModel, render
from proximo.params import api_params, described, schema_params, struct_from_schema

from ._eval import Packet, evaluate, firewalled_nics, nic_options

Level = Annotated[str, msgspec.Meta(pattern=r"^(cluster|node/[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?|(qemu|lxc)/[1-9][0-9]{2,8})$",
                                    description="cluster, node/<name>, qemu/<vmid> or lxc/<vmid>")]
RuleLevel = Annotated[str, msgspec.Meta(pattern=r"^(cluster|node/[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?|(qemu|lxc)/[1-9][0-9]{2,8}|group/[A-Za-z][A-Za-z0-9_-]+)$",
                                        description="cluster, node/<name>, qemu/<vmid>, lxc/<vmid> or group/<name>")]
Target = Annotated[str, msgspec.Meta(pattern=r"^(node/[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?|(qemu|lxc)/[1-9][0-9]{2,8})$",
                                     description="node/<name>, qemu/<vmid> or lxc/<vmid>")]
FwName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z0-9_-]+$", max_length=64)]
Iface = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,20}$")]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Pos = Annotated[int, msgspec.Meta(ge=0, le=9999)]

_RULE = "/cluster/firewall/rules"
RuleFields = struct_from_schema("FirewallRuleFields", "POST", _RULE, exclude=("pos", "digest"), omit_defaults=True)
RuleUpdateFields = struct_from_schema("FirewallRuleUpdateFields", "PUT", f"{_RULE}/{{pos}}", exclude=("pos", "digest", "moveto"), omit_defaults=True)
RuleAddParams = msgspec.defstruct("RuleAddParams", [("level", RuleLevel)], bases=(RuleFields,), kw_only=True, frozen=True, forbid_unknown_fields=True, omit_defaults=True)
RuleUpdateParams = msgspec.defstruct("RuleUpdateParams", [("level", RuleLevel), ("pos", Pos)], bases=(RuleUpdateFields,),
                                     kw_only=True, frozen=True, forbid_unknown_fields=True, omit_defaults=True)
_OPTION_ENDPOINTS = {"cluster": "/cluster/firewall/options", "node": "/nodes/{node}/firewall/options",
                     "qemu": "/nodes/{node}/qemu/{vmid}/firewall/options", "lxc": "/nodes/{node}/lxc/{vmid}/firewall/options"}
_option_specs = {k: v for t in _OPTION_ENDPOINTS.values() for k, v in schema_params("PUT", t).items() if k not in ("node", "vmid", "digest")}
OptionFields = struct_from_schema("FirewallOptionFields", "PUT", "/cluster/firewall/options", params=_option_specs, omit_defaults=True,
                                  endpoints=[("PUT", t) for t in _OPTION_ENDPOINTS.values()])
OptionsSetParams = msgspec.defstruct("OptionsSetParams", [("level", Level)], bases=(OptionFields,), kw_only=True, frozen=True, forbid_unknown_fields=True, omit_defaults=True)


class LevelParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    level: RuleLevel = "cluster"


class OptionsParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    level: Level = "cluster"


class NoParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class IpsetsParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    level: Level = "cluster"
    name: FwName | None = None


class CheckParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    target: Target
    source: str | None = None
    dest: str | None = None
    iface: Iface | None = None
    direction: Literal["in", "out"] = "in"
    proto: Literal["tcp", "udp", "icmp", "icmpv6", "udplite", "sctp", "dccp", "igmp", "gre", "esp", "ah"] = "tcp"
    dport: Port | None = None
    sport: Port | None = None
    icmp_type: str | None = msgspec.field(default=None, name="icmp-type")


class RuleRef(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    level: RuleLevel
    pos: Pos


class RuleMoveParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    level: RuleLevel
    pos: Pos
    moveto: Pos


class GroupParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    group: FwName
    comment: str | None = None


class GroupRef(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    group: FwName


class IpsetCreateParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: FwName
    level: Level = "cluster"
    comment: str | None = None


class IpsetDeleteParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: FwName
    level: Level = "cluster"
    force: bool = False


class IpsetEntryParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: FwName
    cidr: str
    level: Level = "cluster"
    nomatch: bool = False
    comment: str | None = None


class IpsetEntryRef(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: FwName
    cidr: str
    level: Level = "cluster"


class AliasParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: FwName
    cidr: str
    level: Level = "cluster"
    comment: str | None = None


class AliasRef(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: FwName
    level: Level = "cluster"


# What the tools' JSON schemas say of each field: PVE's own text where the field mirrors a PVE parameter, else ours.
_FIELDS = {"comment": "Free-form comment", "group": "Security group name", "nomatch": "Exclude this entry from the set",
           "force": "Delete the set even if it has entries", "pos": "Rule position (0 is the first rule)",
           "moveto": "Position to move the rule to"}
_ALIASES, _IPSET = ("POST", "/cluster/firewall/aliases"), ("POST", "/cluster/firewall/ipset/{name}")
for _struct, _docs in ((AliasParams, (_ALIASES,)), (AliasRef, (_ALIASES,)), (IpsetsParams, (_IPSET,)),
                       (IpsetCreateParams, (_IPSET,)), (IpsetDeleteParams, (_IPSET,)), (IpsetEntryParams, (_IPSET,)),
                       (IpsetEntryRef, (_IPSET,)), (GroupParams, ()), (GroupRef, ()), (RuleRef, ()), (RuleMoveParams, ())):
    described(_struct, pve=_docs, fields=_FIELDS)
described(CheckParams, fields={
    "source": "Source address of the packet (default: any)", "dest": "Destination address (default: the target's own)",
    "iface": "Interface the packet crosses, e.g. net0", "direction": "in (to the target) or out (from it)",
    "proto": "IP protocol", "dport": "Destination port", "sport": "Source port",
    "icmp-type": "ICMP type, for proto icmp or icmpv6"})


def base_path(view: ClusterModel, level: str) -> str:
    """The firewall base path of a level; refuses levels that do not exist."""
    kind, _, ident = level.partition("/")
    if kind == "cluster":
        return "/cluster/firewall"
    if kind == "group":
        if ident not in view.firewall.groups:
            raise BadInput(f"security group '{ident}' does not exist (see `proximo read firewall.groups`)")
        return f"/cluster/firewall/groups/{ident}"
    if kind == "node":
        if ident not in view.nodes:
            raise BadInput(f"node '{ident}' does not exist (see `proximo read node.list`)")
        return f"/nodes/{ident}/firewall"
    guest = view.guests.get(int(ident))
    if guest is None or guest.kind != kind:
        raise BadInput(f"{level} does not exist (see `proximo read guest.list`)")
    return f"/nodes/{guest.node}/{kind}/{guest.vmid}/firewall"


def rules_path(view: ClusterModel, level: str) -> str:
    base = base_path(view, level)
    return base if level.startswith("group/") else f"{base}/rules"


def _need_read(view: ClusterModel) -> None:
    if not view.firewall.read:
        raise BadInput("this state has no firewall configuration (the snapshot was taken without it)")


# --- reads -------------------------------------------------------------------------------------------------


def read_rules(p: LevelParams, view: ClusterModel) -> Any:
    _need_read(view)
    return render(view, rules_path(view, p.level))


def read_options(p: OptionsParams, view: ClusterModel) -> Any:
    _need_read(view)
    return render(view, f"{base_path(view, p.level)}/options")


def read_groups(p: NoParams, view: ClusterModel) -> Any:
    _need_read(view)
    return [{**row, "rules": render(view, f"/cluster/firewall/groups/{row['group']}")} for row in render(view, "/cluster/firewall/groups")]


def read_ipsets(p: IpsetsParams, view: ClusterModel) -> Any:
    _need_read(view)
    if p.level.startswith("node/"):
        raise BadInput("nodes have no ipsets of their own: use level=cluster or a guest")
    base = base_path(view, p.level)
    if p.name:
        return render(view, f"{base}/ipset/{p.name}")
    return [{**row, "entries": render(view, f"{base}/ipset/{row['name']}")} for row in render(view, f"{base}/ipset")]


def read_aliases(p: OptionsParams, view: ClusterModel) -> Any:
    _need_read(view)
    if p.level.startswith("node/"):
        raise BadInput("nodes have no aliases of their own: use level=cluster or a guest")
    return render(view, f"{base_path(view, p.level)}/aliases")


def _address(text: str | None, what: str) -> str | None:
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise BadInput(f"firewall.check: {what} must be one IP address, not {text!r}") from None


def read_check(p: CheckParams, view: ClusterModel) -> dict[str, Any]:
    _need_read(view)
    base_path(view, p.target)
    iface = p.iface
    if not p.target.startswith("node/"):
        vmid = int(p.target.split("/")[1])
        iface = iface or "net0"
        if nic_options(view.guests[vmid].config, iface) is None:
            raise BadInput(f"{p.target} has no {iface} (NICs with firewall=1: {', '.join(firewalled_nics(view, vmid)) or 'none'})")
    source, dest = _address(p.source, "source"), _address(p.dest, "dest")
    if p.proto not in ("tcp", "udp", "udplite", "sctp", "dccp") and (p.dport or p.sport) and p.proto not in ("icmp", "icmpv6"):
        raise BadInput(f"firewall.check: protocol {p.proto} has no ports")
    pkt = Packet(direction=p.direction, iface=iface, source=source, dest=dest, proto=p.proto, dport=p.dport, sport=p.sport,
                 icmp_type=p.icmp_type)
    verdict = evaluate(view, p.target, pkt)
    return {"target": p.target, "iface": iface, "direction": p.direction, **msgspec.to_builtins(verdict)}


# --- plans ---------------------------------------------------------------------------------------------------


def _rules_now(view: ClusterModel, level: str) -> list[dict[str, Any]]:
    return render(view, rules_path(view, level))  # type: ignore[no-any-return]


def plan_rule_add(p: Any, view: ClusterModel) -> Draft:
    _need_read(view)
    params = api_params(p)
    level = params.pop("level")
    path = rules_path(view, level)
    notes = [] if params.get("enable") == 1 else ["without enable=1 Proxmox stores the rule disabled: it is staged, no traffic changes"]
    return Draft(steps=[ApiCall("POST", path, params)], target=level, notes=notes)


def plan_rule_update(p: Any, view: ClusterModel) -> Draft:
    _need_read(view)
    params = api_params(p)
    level, pos = params.pop("level"), params.pop("pos")
    rules = _rules_now(view, level)
    if pos >= len(rules):
        raise BadInput(f"{level} has no rule at position {pos} (it has {len(rules)})")
    if not params:
        raise BadInput("firewall.rule.update: nothing to change")
    return Draft(steps=[ApiCall("PUT", f"{rules_path(view, level)}/{pos}", params)], target=level)


def plan_rule_delete(p: RuleRef, view: ClusterModel) -> Draft:
    _need_read(view)
    rules = _rules_now(view, p.level)
    if p.pos >= len(rules):
        raise BadInput(f"{p.level} has no rule at position {p.pos} (it has {len(rules)})")
    return Draft(steps=[ApiCall("DELETE", f"{rules_path(view, p.level)}/{p.pos}")], target=p.level)


def plan_rule_move(p: RuleMoveParams, view: ClusterModel) -> Draft:
    _need_read(view)
    rules = _rules_now(view, p.level)
    if p.pos >= len(rules):
        raise BadInput(f"{p.level} has no rule at position {p.pos} (it has {len(rules)})")
    return Draft(steps=[ApiCall("PUT", f"{rules_path(view, p.level)}/{p.pos}", {"moveto": p.moveto})],
                 target=p.level, notes=["Proxmox puts the rule before the one now at moveto (at the end past the last)"])


def plan_options_set(p: Any, view: ClusterModel) -> Draft:
    _need_read(view)
    params = api_params(p)
    level = params.pop("level")
    kind = level.split("/")[0]
    allowed = schema_params("PUT", _OPTION_ENDPOINTS[kind], release=view.release)
    wrong = sorted(k for k in params if k not in allowed)
    if wrong:
        raise BadInput(f"firewall.options.set: {', '.join(wrong)} is not an option at {kind} level")
    if not params:
        raise BadInput("firewall.options.set: nothing to change")
    path = f"{base_path(view, level)}/options"
    return Draft(steps=[ApiCall("PUT", path, params)], target=level if level != "cluster" else "cluster firewall")


def plan_group_create(p: GroupParams, view: ClusterModel) -> Draft:
    if p.group in view.firewall.groups:
        raise BadInput(f"security group '{p.group}' already exists")
    return Draft(steps=[ApiCall("POST", "/cluster/firewall/groups", api_params(p))], target=f"group/{p.group}")


def plan_group_delete(p: GroupRef, view: ClusterModel) -> Draft:
    base_path(view, f"group/{p.group}")
    # A group that rules still jump to: the firewall analyser refuses it, whatever tool made the steps.
    # PVE deletes only an empty group (Groups.pm: "Security group 'x' is not empty"): its rules go first, one by one
    # from the top, so the undo re-creates them in their order.
    count = len(view.firewall.groups[p.group].rules)
    steps: list[ApiCall] = [ApiCall("DELETE", f"/cluster/firewall/groups/{p.group}/0") for _ in range(count)]
    steps.append(ApiCall("DELETE", f"/cluster/firewall/groups/{p.group}"))
    notes = [f"the group's {count} rule(s) are deleted first: Proxmox deletes only an empty security group"] if count else []
    return Draft(steps=list(steps), target=f"group/{p.group}", notes=notes)


def _ipset_base(view: ClusterModel, level: str) -> str:
    if level.startswith("node/"):
        raise BadInput("nodes have no ipsets or aliases of their own: use level=cluster or a guest")
    return base_path(view, level)


def plan_ipset_create(p: IpsetCreateParams, view: ClusterModel) -> Draft:
    base = _ipset_base(view, p.level)
    return Draft(steps=[ApiCall("POST", f"{base}/ipset", {k: v for k, v in api_params(p).items() if k != "level"})], target=p.name)


def plan_ipset_delete(p: IpsetDeleteParams, view: ClusterModel) -> Draft:
    base = _ipset_base(view, p.level)
    params = {"force": 1} if p.force else {}
    return Draft(steps=[ApiCall("DELETE", f"{base}/ipset/{p.name}", params)], target=p.name)


def _cidr(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        if text.replace("-", "").replace("_", "").isalnum() and text[:1].isalpha():
            return text  # an alias name
        raise BadInput(f"'{text}' is not an IP address, network or alias name") from None


def plan_ipset_add(p: IpsetEntryParams, view: ClusterModel) -> Draft:
    base = _ipset_base(view, p.level)
    params = {k: v for k, v in api_params(p).items() if k not in ("level", "name")}
    params["cidr"] = _cidr(p.cidr)
    return Draft(steps=[ApiCall("POST", f"{base}/ipset/{p.name}", params)], target=p.name)


def plan_ipset_remove(p: IpsetEntryRef, view: ClusterModel) -> Draft:
    from ._semantics import _entry_path

    base = _ipset_base(view, p.level)
    cidr = _cidr(p.cidr)
    if "/" in cidr and not cidr.endswith(("/32", "/128")):
        raise BadInput(f"firewall.ipset.remove: a network entry ({cidr}) needs an encoded '/' in the API path, which Proximo "
                       "does not send yet; single addresses and aliases work")
    return Draft(steps=[ApiCall("DELETE", _entry_path(f"{base}/ipset/{p.name}", cidr))], target=p.name)


def plan_alias_create(p: AliasParams, view: ClusterModel) -> Draft:
    base = _ipset_base(view, p.level)
    params = {k: v for k, v in api_params(p).items() if k != "level"}
    params["cidr"] = _cidr(p.cidr)
    return Draft(steps=[ApiCall("POST", f"{base}/aliases", params)], target=p.name)


def plan_alias_update(p: AliasParams, view: ClusterModel) -> Draft:
    base = _ipset_base(view, p.level)
    params = {k: v for k, v in api_params(p).items() if k not in ("level", "name")}
    params["cidr"] = _cidr(p.cidr)
    return Draft(steps=[ApiCall("PUT", f"{base}/aliases/{p.name}", params)], target=p.name)


def plan_alias_delete(p: AliasRef, view: ClusterModel) -> Draft:
    base = _ipset_base(view, p.level)
    return Draft(steps=[ApiCall("DELETE", f"{base}/aliases/{p.name}")], target=p.name)




TOOLS = tool_table(
    read_tool("firewall.rules", "Firewall rules", "Rules of the cluster, a node, a guest or a security group, with positions.",
          LevelParams, read_rules),
    read_tool("firewall.options", "Firewall options", "Firewall options of the cluster, a node or a guest.", OptionsParams, read_options),
    read_tool("firewall.groups", "Security groups", "Security groups and their rules.", NoParams, read_groups),
    read_tool("firewall.ipsets", "IP sets", "IP sets (cluster or guest) with their entries.", IpsetsParams, read_ipsets),
    read_tool("firewall.aliases", "Aliases", "Firewall aliases (cluster or guest).", OptionsParams, read_aliases),
    read_tool("firewall.check", "Would this flow pass?", "Evaluate one packet at one hop (a node, or a guest NIC) as PVE's firewall "
          "would: verdict ACCEPT/DROP/REJECT and the rule or policy that decided.", CheckParams, read_check),
    plan_tool("firewall.rule.add", "Plan: add firewall rule", "Plan a new rule (PVE inserts it at position 0; without enable=1 it is "
          "stored disabled).", RuleAddParams, plan_rule_add),
    plan_tool("firewall.rule.update", "Plan: update firewall rule", "Plan changing the rule at a position.", RuleUpdateParams, plan_rule_update),
    plan_tool("firewall.rule.delete", "Plan: delete firewall rule", "Plan deleting the rule at a position (the rules below move up).",
          RuleRef, plan_rule_delete),
    plan_tool("firewall.rule.move", "Plan: move firewall rule", "Plan moving a rule (PUT with moveto).", RuleMoveParams, plan_rule_move),
    plan_tool("firewall.options.set", "Plan: set firewall options", "Plan changing firewall options (enable, policy_in, policy_out, ...).",
          OptionsSetParams, plan_options_set),
    plan_tool("firewall.group.create", "Plan: create security group", "Plan a new, empty security group.", GroupParams, plan_group_create),
    plan_tool("firewall.group.delete", "Plan: delete security group", "Plan deleting an empty security group.", GroupRef, plan_group_delete),
    plan_tool("firewall.ipset.create", "Plan: create IP set", "Plan a new, empty IP set.", IpsetCreateParams, plan_ipset_create),
    plan_tool("firewall.ipset.delete", "Plan: delete IP set", "Plan deleting an IP set (force=true if it has entries).",
          IpsetDeleteParams, plan_ipset_delete),
    plan_tool("firewall.ipset.add", "Plan: add IP set entry", "Plan adding an address, network or alias to an IP set (nomatch excludes it).",
          IpsetEntryParams, plan_ipset_add),
    plan_tool("firewall.ipset.remove", "Plan: remove IP set entry", "Plan removing an entry from an IP set.", IpsetEntryRef, plan_ipset_remove),
    plan_tool("firewall.alias.create", "Plan: create alias", "Plan a new firewall alias.", AliasParams, plan_alias_create),
    plan_tool("firewall.alias.update", "Plan: update alias", "Plan changing an alias's address.", AliasParams, plan_alias_update),
    plan_tool("firewall.alias.delete", "Plan: delete alias", "Plan deleting an alias.", AliasRef, plan_alias_delete),
)
