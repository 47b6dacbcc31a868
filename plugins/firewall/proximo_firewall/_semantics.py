"""What the firewall endpoints do to the model, after src/PVE/API2/Firewall/{Rules,Cluster,Host,VM,IPSet,Aliases,Groups}.pm.

Rules (Rules.pm register_create_rule, lines 251-317): a new rule is inserted at position 0 whatever ``pos``
says, and is stored disabled unless ``enable`` is passed. ``PUT .../{pos}`` with ``moveto`` moves the rule
before the one at ``moveto`` (at the end when ``moveto`` is past it); other parameters are then ignored.
Every list carries one digest; a given ``digest`` that differs is refused as a concurrent edit.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from typing import Any

from proximo import ApiCall, Irreversible, PveApiError, Step
from proximo.model import Call, ClusterModel, FirewallGroup, FirewallIpset, FirewallLevel, current_digest, split_list

from ._eval import RuleError, Scope, _alias_cidr, _ipset, check_rule, macro_name

RULE_FIELDS = ("type", "action", "macro", "source", "dest", "proto", "dport", "sport", "iface", "log", "comment", "enable", "icmp-type")

GUEST_BASES = ("/nodes/{node}/qemu/{vmid}/firewall", "/nodes/{node}/lxc/{vmid}/firewall")
LEVEL_BASES = ("/cluster/firewall", "/nodes/{node}/firewall", *GUEST_BASES)


def level_of(model: ClusterModel, call: Call) -> tuple[str, FirewallLevel]:
    """The firewall file a call edits: ("cluster" | "node/<n>" | "qemu/<vmid>" | "lxc/<vmid>", its model).

    Node calls and guest options are proxied to the path's node (an unknown node fails its hostname lookup:
    pve-cluster Cluster.pm remote_node_ip). Guest rules, IP sets and aliases are not proxied, and nothing checks
    that the guest exists (Rules.pm VMRules/CTRules load_config): Proxmox writes firewall/<vmid>.fw regardless,
    which the firewall analyser refuses for a guest that does not exist.
    """
    fw = model.firewall
    fw.read = True
    t = call.template
    if t.startswith("/cluster/"):
        return "cluster", fw.cluster
    node = call.path_params["node"]
    guest = "/qemu/" in t or "/lxc/" in t
    if node not in model.nodes and (not guest or t.endswith("/options")):
        raise PveApiError(500, f"hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known")
    if guest:
        vmid = int(call.path_params["vmid"])
        return f"{'qemu' if '/qemu/' in t else 'lxc'}/{vmid}", fw.guest(vmid)
    return f"node/{node}", fw.node(node)


def _rules(model: ClusterModel, call: Call) -> tuple[str, list[dict[str, Any]]]:
    if "group" in call.path_params:
        model.firewall.read = True
        return f"group/{call.path_params['group']}", _group(model, call.path_params["group"]).rules
    name, level = level_of(model, call)
    return name, level.rules


def _check_digest(model: ClusterModel, call: Call) -> None:
    """PVE compares the digest given with the file's: a mismatch is someone else's edit."""
    given = call.params.get("digest")
    if given and given != current_digest(model.firewall, call.path):
        raise PveApiError(500, "detected modified configuration - file changed by other user? Try again.")


def _scope(model: ClusterModel, level: str) -> Scope:
    guest = model.firewall.guests.get(int(level.split("/")[1])) if level.startswith(("qemu/", "lxc/")) else None
    return Scope(guest=guest, cluster=model.firewall.cluster, local_network=None)


# The rule parameters whose registered formats (pve-fw-dport-spec, pve-fw-sport-spec, pve-fw-addr-spec) _verify checks
# as Firewall.pm verify_rule does; proto (pve-fw-protocol-spec: /etc/protocols) and icmp-type are not checked here.
VERIFIED = ("dport", "sport", "source", "dest")


def _verify(model: ClusterModel, level: str, rule: dict[str, Any]) -> None:
    """verify_rule: the checks PVE's API answers with 400 ``Parameter verification failed``."""
    errors: dict[str, str] = {}
    kind = rule.get("type")
    if kind == "group":
        # Firewall.pm verify_rule checks only where a group rule may be and (the schema) the group's name, not that the
        # group exists: the firewall analyser refuses a jump to a group that does not exist.
        if level.startswith("group/"):
            errors["type"] = "invalid rule type 'group' for rule_env 'group'"
    elif rule.get("action") not in ("ACCEPT", "DROP", "REJECT"):
        errors["action"] = f"value '{rule.get('action')}' does not have a value in the enumeration 'ACCEPT, DROP, REJECT'"
    if rule.get("macro"):
        canonical = macro_name(str(rule["macro"]))
        if canonical is None:
            errors["macro"] = f"unknown macro '{rule['macro']}'"
        else:
            rule["macro"] = canonical
    iface = rule.get("iface")
    if iface and level.startswith(("qemu/", "lxc/")) and not (str(iface).startswith("net") and str(iface)[3:].isdigit()):
        errors["iface"] = "invalid interface name"
    try:
        if not errors.get("macro"):
            check_rule(rule)
    except RuleError as exc:
        key, _, msg = str(exc).partition(": ")
        errors[key if key in ("dport", "sport") else "proto"] = msg or str(exc)
    scope = _scope(model, level)
    for key in ("source", "dest"):
        spec = str(rule.get(key) or "")
        if not spec:
            continue
        if spec.startswith("+"):
            try:
                _ipset(scope, spec[1:])
            except RuleError:
                errors[key] = f"no such ipset '{spec[1:]}'"
            continue
        for part in spec.split(","):
            try:
                ipaddress.ip_network(part.split("-")[0].strip(), strict=False)
            except ValueError:
                if _alias_cidr(scope, part) is None and part.lower() != "local_network":
                    errors[key] = f"no such alias '{part}'"
    if errors:
        raise PveApiError(400, "Parameter verification failed.", errors)


def _ipversion(model: ClusterModel, level: str, rule: dict[str, Any]) -> None:
    for key in ("source", "dest"):
        spec = str(rule.get(key) or "")
        if spec and not spec.startswith("+"):
            part = spec.split(",")[0].split("-")[0]
            cidr = part if any(c in part for c in ".:") else (_alias_cidr(_scope(model, level), part) or "")
            if cidr:
                rule["ipversion"] = 6 if ":" in cidr else 4
                return
    if rule.get("proto") == "icmp":
        rule["ipversion"] = 4
    elif rule.get("proto") in ("icmpv6", "ipv6-icmp"):
        rule["ipversion"] = 6


def rule_create(model: ClusterModel, call: Call) -> None:
    level, rules = _rules(model, call)
    _check_digest(model, call)
    rule = {k: v for k, v in call.params.items() if k in RULE_FIELDS}
    if "enable" not in call.params:
        rule["enable"] = 0  # Rules.pm line 306: stored disabled unless enable is passed
    _verify(model, level, rule)
    _ipversion(model, level, rule)
    rules.insert(0, rule)  # Rules.pm line 308: unshift, pos is ignored


def _pos(call: Call, rules: list[dict[str, Any]]) -> int:
    pos = int(call.path_params["pos"])
    if not 0 <= pos < len(rules):  # Rules.pm update_rule / delete_rule: a plain die, so a 500
        raise PveApiError(500, f"no rule at position {pos}")
    return pos


def move(rules: list[dict[str, Any]], pos: int, moveto: int) -> None:
    """Rules.pm update_rule with moveto: the rule goes before the one at ``moveto`` (at the end past it)."""
    if moveto == pos:
        return  # a move onto itself changes nothing (the loop below would lose the rule)
    moved = rules[pos]
    out = []
    for index, rule in enumerate(rules):
        if index == pos:
            continue
        if index == moveto:
            out.append(moved)
        out.append(rule)
    if moveto >= len(rules):
        out.append(moved)
    rules[:] = out


def rule_update(model: ClusterModel, call: Call) -> None:
    level, rules = _rules(model, call)
    _check_digest(model, call)
    pos = _pos(call, rules)
    if call.params.get("moveto") is not None:
        move(rules, pos, int(call.params["moveto"]))
        return
    rule = dict(rules[pos])
    for key in split_list(call.params.get("delete")):
        if key in ("type", "action"):
            raise PveApiError(400, "Parameter verification failed.", {"delete": f"unable to delete required property '{key}'"})
        rule.pop(key, None)
    rule.update({k: v for k, v in call.params.items() if k in RULE_FIELDS})
    rule.pop("ipversion", None)
    _verify(model, level, rule)
    _ipversion(model, level, rule)
    rules[pos] = rule


def rule_delete(model: ClusterModel, call: Call) -> None:
    _, rules = _rules(model, call)
    _check_digest(model, call)
    del rules[_pos(call, rules)]  # the rules after it move up one position


def _base(call: Call) -> str:
    """The collection path of a rule item call (``.../rules/{pos}`` -> ``.../rules``)."""
    return call.path.rsplit("/", 1)[0]


def _rule_create_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    return [ApiCall("DELETE", f"{call.path}/0")]


def recreate(path: str, rule: dict[str, Any], pos: int) -> list[Step]:
    """Put ``rule`` back at ``pos``: create it (it lands at 0, enable explicit), then move it down."""
    params = {k: v for k, v in rule.items() if k in RULE_FIELDS}
    params["enable"] = int(rule.get("enable", 0) or 0)
    steps: list[Step] = [ApiCall("POST", path, params)]
    if pos:
        steps.append(ApiCall("PUT", f"{path}/0", {"moveto": pos + 1}))
    return steps


def _rule_update_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    _, rules = _rules(before.copy(), call)
    pos = _pos(call, rules)
    if call.params.get("moveto") is not None:
        moveto = int(call.params["moveto"])
        now = min(moveto, len(rules)) - 1 if moveto > pos else moveto
        if now == pos:
            return []
        return [ApiCall("PUT", f"{_base(call)}/{now}", {"moveto": pos + 1 if now < pos else pos})]
    old = rules[pos]
    changed = [k for k in call.params if k in RULE_FIELDS] + split_list(call.params.get("delete"))
    params: dict[str, Any] = {k: old[k] for k in dict.fromkeys(changed) if k in old}
    gone = sorted({k for k in changed if k not in old})
    if gone:
        params["delete"] = ",".join(gone)
    return [ApiCall("PUT", call.path, params)] if params else []


def _rule_delete_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    _, rules = _rules(before.copy(), call)
    pos = _pos(call, rules)
    return recreate(_base(call), rules[pos], pos)


def _rule_create_notes(before: ClusterModel, call: Call) -> list[str]:
    if int(call.params.get("enable") or 0) != 1:
        return ["the new rule is stored disabled (no enable=1): it is staged and changes no traffic until enabled"]
    return []


# --- options -------------------------------------------------------------------------------------------


def options_set(model: ClusterModel, call: Call) -> None:
    _, level = level_of(model, call)
    _check_digest(model, call)
    options = dict(level.options)
    for key in split_list(call.params.get("delete")):
        options.pop(key, None)
    for key, value in call.params.items():
        if key in ("delete", "digest", "node", "vmid"):
            continue
        if isinstance(value, bool):
            value = int(value)
        if key in ("policy_in", "policy_out", "policy_forward"):
            value = str(value).upper()
        options[key] = value
    if call.template == "/cluster/firewall/options" and int(options.get("enable", 0) or 0) > 1:
        options["enable"] = int(time.time())  # Cluster.pm: enable > 1 stores the anti-lockout timestamp
    level.options = options


def _options_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    _, level = level_of(before.copy(), call)
    old = level.options
    changed = [k for k in call.params if k not in ("delete", "digest", "node", "vmid")] + split_list(call.params.get("delete"))
    params: dict[str, Any] = {k: old[k] for k in dict.fromkeys(changed) if k in old}
    gone = sorted({k for k in changed if k not in old})
    if gone:
        params["delete"] = ",".join(gone)
    return [ApiCall("PUT", call.path, params)] if params else []


# --- ipsets, aliases, groups ------------------------------------------------------------------------------


def _ipset_level(model: ClusterModel, call: Call) -> FirewallLevel:
    return level_of(model, call)[1]


def norm_cidr(text: str) -> str:
    """IPSet.pm/Aliases.pm: a /32 (/128) is written without the prefix."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text  # an alias name
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _create_or_rename(model: ClusterModel, container: dict[str, Any], key: str, call: Call, what: str,
                      new: Callable[[], Any]) -> None:
    """IPSet.pm / Groups.pm create: ``rename=OLD`` renames (the comment may change too), else a new empty one.

    Their refusals are raise_param_exc on ``key`` (the name parameter): 400s, as Proxmox words them.
    """
    name = str(call.params[key])
    old = str(call.params.get("rename") or "")
    if old:
        _check_digest(model, call)
    if old and old not in container:
        raise _bad(key, f"{what} '{old}' does not exist")
    if old and name in container and name != old:
        raise _bad(key, f"{what} '{name}' does already exist")
    if not old and name in container:
        raise _bad(key, f"{what} '{name}' already exists")
    if old:
        container[name] = container.pop(old)
        if "comment" in call.params:
            container[name].comment = call.params["comment"]
    else:
        container[name] = new()


def _bad(param: str, message: str) -> PveApiError:
    return PveApiError(400, "Parameter verification failed.", {param: message})


def ipset_create(model: ClusterModel, call: Call) -> None:
    _create_or_rename(model, _ipset_level(model, call).ipsets, "name", call, "IPSet",
                      lambda: FirewallIpset(comment=call.params.get("comment")))


def _ipset_create_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    if call.params.get("rename"):
        return [ApiCall("POST", call.path, {"name": call.params["rename"], "rename": call.params["name"]})]
    return [ApiCall("DELETE", f"{call.path}/{call.params['name']}")]


def _level_ipset(level: FirewallLevel, name: str) -> FirewallIpset:
    if name not in level.ipsets:  # IPSet.pm load_config: a plain die, so a 500
        raise PveApiError(500, f"no such IPSet '{name}'")
    return level.ipsets[name]


def ipset_delete(model: ClusterModel, call: Call) -> None:
    level = _ipset_level(model, call)
    ipset = _level_ipset(level, call.path_params["name"])
    if ipset.entries and not call.params.get("force"):
        raise PveApiError(500, f"IPSet '{call.path_params['name']}' is not empty")
    del level.ipsets[call.path_params["name"]]


def _ipset_delete_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    level = _ipset_level(before.copy(), call)
    ipset = _level_ipset(level, call.path_params["name"])
    base = call.path.rsplit("/", 1)[0]
    steps: list[Step] = [ApiCall("POST", base, {"name": call.path_params["name"], **({"comment": ipset.comment} if ipset.comment else {})})]
    steps += [ApiCall("POST", call.path, {k: v for k, v in e.items() if k in ("cidr", "nomatch", "comment")}) for e in ipset.entries]
    return steps


def ipset_add(model: ClusterModel, call: Call) -> None:
    """IPSet.pm create_ip: a duplicate or a zero prefix is a parameter error; the file keeps entries sorted by cidr."""
    level = _ipset_level(model, call)
    ipset = _level_ipset(level, call.path_params["name"])
    cidr = norm_cidr(str(call.params["cidr"]))
    if any(e.get("cidr") == cidr for e in ipset.entries):
        raise _bad("cidr", f"address '{cidr}' already exists")
    if re.search(r"/0+$", cidr):
        raise _bad("cidr", "a zero prefix is not allowed in ipset entries")
    entry: dict[str, Any] = {"cidr": cidr}
    if call.params.get("nomatch"):
        entry["nomatch"] = 1
    if call.params.get("comment"):
        entry["comment"] = call.params["comment"]
    ipset.entries.append(entry)
    ipset.entries.sort(key=lambda e: str(e.get("cidr")))  # Firewall.pm $format_ipsets: `sort keys %$nethash`


def _entry_path(path: str, cidr: str) -> str:
    return f"{path}/{norm_cidr(cidr).replace('/', '%2F')}"


def _ipset_add_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    if "/" in norm_cidr(str(call.params["cidr"])):
        # The entry's path segment would hold a "/" (PVE's GUI sends it URL-encoded); Proximo's client only sends
        # plain path segments, so it cannot address this entry to remove it again.
        return Irreversible(f"removing the network entry {norm_cidr(str(call.params['cidr']))} needs an encoded '/' in the path, "
                            "which Proximo does not send; remove it in the GUI")
    return [ApiCall("DELETE", _entry_path(call.path, str(call.params["cidr"])))]


def _entry(level: FirewallLevel, call: Call) -> tuple[FirewallIpset, dict[str, Any]]:
    ipset = _level_ipset(level, call.path_params["name"])
    cidr = norm_cidr(call.path_params["cidr"].replace("%2F", "/"))
    for entry in ipset.entries:
        if entry.get("cidr") == cidr:
            return ipset, entry
    raise _bad("cidr", "no such IP/Network")  # IPSet.pm update_ip


def ipset_entry_delete(model: ClusterModel, call: Call) -> None:
    """IPSet.pm remove_ip: the digest, then the entries without this one: removing what is not there is no error."""
    ipset = _level_ipset(_ipset_level(model, call), call.path_params["name"])
    _check_digest(model, call)
    cidr = norm_cidr(call.path_params["cidr"].replace("%2F", "/"))
    ipset.entries[:] = [e for e in ipset.entries if e.get("cidr") != cidr]


def _ipset_entry_delete_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    _, entry = _entry(_ipset_level(before.copy(), call), call)
    return [ApiCall("POST", call.path.rsplit("/", 1)[0], {k: v for k, v in entry.items() if k in ("cidr", "nomatch", "comment")})]


def ipset_entry_update(model: ClusterModel, call: Call) -> None:
    _level_ipset(_ipset_level(model, call), call.path_params["name"])
    _check_digest(model, call)  # IPSet.pm update_ip: the digest before the entry is looked for
    _, entry = _entry(_ipset_level(model, call), call)
    if "nomatch" in call.params:
        if call.params["nomatch"]:
            entry["nomatch"] = 1
        else:
            entry.pop("nomatch", None)
    if "comment" in call.params:
        entry["comment"] = call.params["comment"]


def _ipset_entry_update_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    _, entry = _entry(_ipset_level(before.copy(), call), call)
    return [ApiCall("PUT", call.path, {"nomatch": int(entry.get("nomatch", 0) or 0), "comment": entry.get("comment", "")})]


def _alias(level: FirewallLevel, name: str) -> dict[str, Any]:
    for alias in level.aliases:
        if str(alias.get("name", "")).lower() == name.lower():
            return alias
    raise PveApiError(400, f"no such alias '{name}'")


def _alias_row(name: str, cidr: str, comment: Any) -> dict[str, Any]:
    cidr = norm_cidr(cidr)
    row: dict[str, Any] = {"name": name, "cidr": cidr, "ipversion": 6 if ":" in cidr else 4}
    if comment:
        row["comment"] = comment
    return row


def alias_create(model: ClusterModel, call: Call) -> None:
    level = level_of(model, call)[1]
    name = str(call.params["name"])
    if any(str(a.get("name", "")).lower() == name.lower() for a in level.aliases):
        raise PveApiError(500, f"alias '{name}' already exists")
    level.aliases.append(_alias_row(name, str(call.params["cidr"]), call.params.get("comment")))


def alias_update(model: ClusterModel, call: Call) -> None:
    """Aliases.pm update_alias: the digest, then a missing alias is a parameter error."""
    level = level_of(model, call)[1]
    _check_digest(model, call)
    try:
        alias = _alias(level, call.path_params["name"])
    except PveApiError:
        raise _bad("name", "no such alias") from None
    name = str(call.params.get("rename") or alias["name"])
    level.aliases[level.aliases.index(alias)] = _alias_row(name, str(call.params["cidr"]), call.params.get("comment"))


def alias_delete(model: ClusterModel, call: Call) -> None:
    """Aliases.pm remove_alias: the digest, then `delete $aliases->{lc $name}`: a missing alias is no error."""
    level = level_of(model, call)[1]
    _check_digest(model, call)
    name = call.path_params["name"].lower()
    level.aliases[:] = [a for a in level.aliases if str(a.get("name", "")).lower() != name]


def _alias_create_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    return [ApiCall("DELETE", f"{call.path}/{call.params['name']}")]


def _alias_update_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    old = _alias(level_of(before.copy(), call)[1], call.path_params["name"])
    path = call.path if not call.params.get("rename") else f"{call.path.rsplit('/', 1)[0]}/{call.params['rename']}"
    params = {"cidr": old["cidr"], "comment": old.get("comment", "")}
    if call.params.get("rename"):
        params["rename"] = old["name"]
    return [ApiCall("PUT", path, params)]


def _alias_delete_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    old = _alias(level_of(before.copy(), call)[1], call.path_params["name"])
    return [ApiCall("POST", call.path.rsplit("/", 1)[0], {k: old[k] for k in ("name", "cidr", "comment") if k in old})]


def group_create(model: ClusterModel, call: Call) -> None:
    fw = model.firewall
    fw.read = True
    _create_or_rename(model, fw.groups, "group", call, "Security group", lambda: FirewallGroup(comment=call.params.get("comment")))
    old, new = call.params.get("rename"), call.params["group"]
    if old and old != new:  # Groups.pm $rename_fw_rules: every rule that jumps to the group follows it
        for level in (fw.cluster, *fw.nodes.values(), *fw.guests.values()):
            for rule in level.rules:
                if rule.get("type") == "group" and rule.get("action") == old:
                    rule["action"] = new


def _group(model: ClusterModel, name: str) -> FirewallGroup:
    group = model.firewall.groups.get(name)
    if group is None:  # Rules.pm GroupRules load_config: a plain die, so a 500
        raise PveApiError(500, f"no such security group '{name}'")
    return group


def group_delete(model: ClusterModel, call: Call) -> None:
    name = call.path_params["group"]
    if _group(model, name).rules:
        raise PveApiError(500, f"Security group '{name}' is not empty")
    del model.firewall.groups[name]


def _group_create_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    if call.params.get("rename"):
        return [ApiCall("POST", call.path, {"group": call.params["rename"], "rename": call.params["group"]})]
    return [ApiCall("DELETE", f"{call.path}/{call.params['group']}")]


def _group_delete_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    group = _group(before, call.path_params["group"])
    return [ApiCall("POST", "/cluster/firewall/groups", {"group": call.path_params["group"], **({"comment": group.comment} if group.comment else {})})]


def _list_digest(model: ClusterModel, call: Call) -> str | None:
    """The digest of the list (or options) the call's path belongs to: what its handler compares ``digest`` with."""
    return current_digest(model.firewall, call.path)


def _rename_digest(model: ClusterModel, call: Call) -> str | None:
    """IPSet.pm / Groups.pm create compare the digest of the whole list, and only when renaming."""
    return current_digest(model.firewall, call.path) if call.params.get("rename") else None


def register_all(register: Callable[..., None]) -> None:
    for base in LEVEL_BASES:
        register("POST", f"{base}/rules", rule_create, inverse=_rule_create_inverse, notes=_rule_create_notes, digest=_list_digest,
                 verifies=VERIFIED)
        register("PUT", f"{base}/rules/{{pos}}", rule_update, inverse=_rule_update_inverse, digest=_list_digest, verifies=VERIFIED)
        register("DELETE", f"{base}/rules/{{pos}}", rule_delete, inverse=_rule_delete_inverse, digest=_list_digest)
        register("PUT", f"{base}/options", options_set, inverse=_options_inverse, digest=_list_digest)
    register("POST", "/cluster/firewall/groups/{group}", rule_create, inverse=_rule_create_inverse, notes=_rule_create_notes,
             digest=_list_digest, verifies=VERIFIED)
    register("PUT", "/cluster/firewall/groups/{group}/{pos}", rule_update, inverse=_rule_update_inverse, digest=_list_digest,
             verifies=VERIFIED)
    register("DELETE", "/cluster/firewall/groups/{group}/{pos}", rule_delete, inverse=_rule_delete_inverse, digest=_list_digest)
    register("POST", "/cluster/firewall/groups", group_create, inverse=_group_create_inverse, digest=_rename_digest)
    register("DELETE", "/cluster/firewall/groups/{group}", group_delete, inverse=_group_delete_inverse)
    for base in ("/cluster/firewall", *GUEST_BASES):
        register("POST", f"{base}/ipset", ipset_create, inverse=_ipset_create_inverse, digest=_rename_digest)
        register("POST", f"{base}/ipset/{{name}}", ipset_add, inverse=_ipset_add_inverse)
        register("DELETE", f"{base}/ipset/{{name}}", ipset_delete, inverse=_ipset_delete_inverse)
        register("PUT", f"{base}/ipset/{{name}}/{{cidr}}", ipset_entry_update, inverse=_ipset_entry_update_inverse,
                 digest=_list_digest)
        register("DELETE", f"{base}/ipset/{{name}}/{{cidr}}", ipset_entry_delete, inverse=_ipset_entry_delete_inverse,
                 digest=_list_digest)
        register("POST", f"{base}/aliases", alias_create, inverse=_alias_create_inverse)
        register("PUT", f"{base}/aliases/{{name}}", alias_update, inverse=_alias_update_inverse, digest=_list_digest)
        register("DELETE", f"{base}/aliases/{{name}}", alias_delete, inverse=_alias_delete_inverse, digest=_list_digest)
