"""HA resources, groups (PVE 8) and rules (PVE 9): tools, semantics and blast radius.

After pve-ha-manager (``src/PVE/API2/HA/{Resources,Groups,Rules}.pm``, ``src/PVE/HA/{Config,Groups,Rules}.pm``,
``src/PVE/HA/Rules/{NodeAffinity,ResourceAffinity}.pm``, ``src/PVE/HA/Manager.pm``): 4.0.7 for PVE 8.4, 5.x for 9.x.

The model holds the configuration (``ha_resources``, ``ha_groups``, ``ha_rules``), not the CRM's manager status:
what HA does with it is derived here. ``placement`` follows ``select_service_node`` with the ``basic`` scheduler
(fewest HA services); a write's eventual effect is applied to the model (a resource requested ``stopped`` is
stopped, a migrated one moves), so the analysers compare states, as for every other pack. Not modelled: the CRM's
service states (``error``, ``fence``, ``recovery``: GET /cluster/ha/status is not read), the ``static`` and
``dynamic`` schedulers and auto-rebalancing, maintenance mode and disarming the stack.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, NamedTuple

import msgspec

from proximo import ApiCall, BadInput, Draft, Impact, Irreversible, NotModelled, PveApiError, Risk, Step, plan_tool, read_tool, tool_table
from proximo.model import Call, ClusterModel, Guest, as_int, split_list
from proximo.params import api_params, described, schema_params, struct_from_schema

from ._motion import ha_params, move, task_refusal

GiB = 1024**3

# --- ids ------------------------------------------------------------------------------------------------------

# What the tools take in a path: a VM/CT's HA id (vm:100, ct:100) or its bare VMID, and pve-configid for rule and
# group ids. ASCII only ([0-9], never \d), so '..', '/', '%2e' and other scripts' digits never reach a path.
HaSid = Annotated[str, msgspec.Meta(pattern=r"^(?:(?:vm|ct):)?[1-9][0-9]{2,8}$",
                                    description="HA resource id: vm:<vmid>, ct:<vmid>, or the bare VMID")]
ConfigId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z0-9_-]+$", max_length=128,
                                       description="a pve-configid: a letter, then letters, digits, '-' or '_'")]

_HA_NODE = re.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)(:\d+)?$")  # HA/Tools.pm pve_verify_ha_node
_RESOURCE_ID = re.compile(r"^[a-z]+:\S+$")  # HA/Tools.pm pve_verify_ha_resource_id
_KIND = {"vm": "qemu", "ct": "lxc"}
_HA_TYPE = {"qemu": "vm", "lxc": "ct"}


def pve9(model: ClusterModel) -> bool:
    return as_int(model.release.split(".")[0]) >= 9


def groups_migrated(model: ClusterModel) -> bool:
    """HA/Config.pm have_groups_been_migrated: PVE 9 moves groups to rules and then answers the group calls with an
    error (a snapshot reads that as no groups); PVE 8 has no rules."""
    return pve9(model) and not model.ha_groups


def _parse_sid(model: ClusterModel, text: str) -> tuple[str, str, str]:
    """HA/Config.pm parse_sid: (sid, type, name); a bare VMID takes the guest's type."""
    if re.fullmatch(r"[0-9]+", text):
        g = model.guests.get(int(text))
        if g is None:
            # 4.0.7 (PVE 8) wrote "unable do detect"
            raise PveApiError(500, f"unable {'to' if pve9(model) else 'do'} detect SID from VMID - VM/CT {text} does not exist")
        return f"{_HA_TYPE[g.kind]}:{text}", _HA_TYPE[g.kind], text
    match = re.fullmatch(r"(\S+):(\S+)", text)
    if match is None:
        raise PveApiError(500, f"unable to parse service id '{text}'")
    return text, match.group(1), match.group(2)


def _resource(model: ClusterModel, sid: str) -> dict[str, Any] | None:
    return next((r for r in model.ha_resources if r.get("sid") == sid), None)


def _guest_of(model: ClusterModel, sid: str) -> Guest | None:
    kind, _, vmid = sid.partition(":")
    g = model.guests.get(as_int(vmid, -1))
    return g if g is not None and _KIND.get(kind) == g.kind else None


def requested(res: dict[str, Any]) -> str:
    """The requested state with PVE's defaults (Config.pm read_and_check_resources_config: enabled is started)."""
    state = str(res.get("state") or "started")
    return "started" if state == "enabled" else state


def _node_prios(text: Any) -> dict[str, int]:
    """``node[:prio]`` lists (HA/Tools.pm parse_node_priority): node -> priority (0 when not given)."""
    out: dict[str, int] = {}
    for entry in split_list(text):
        node, _, prio = entry.partition(":")
        out[node] = as_int(prio, 0)
    return out


# --- the configuration files: digests as SectionConfig computes them (SHA-1 of the file) -------------------------

_KEYS = {"ha_resources": "sid", "ha_groups": "group", "ha_rules": "rule"}
_NOT_WRITTEN = {"digest", "sid", "group", "rule", "type", "order", "errors"}


def file_digest(rows: list[dict[str, Any]], key: str) -> str:
    text = ""
    for row in rows:
        name = str(row[key]).partition(":")[2] if key == "sid" else row[key]
        text += f"{row.get('type', 'group')}: {name}\n"
        text += "".join(f"\t{k} {v}\n" for k, v in row.items() if k not in _NOT_WRITTEN) + "\n"
    return hashlib.sha1(text.encode()).hexdigest()


def _write(model: ClusterModel, what: str) -> None:
    rows = getattr(model, what)
    digest = file_digest(rows, _KEYS[what])
    for row in rows:
        row["digest"] = digest
    if pve9(model) and model.ha_rules is not None:  # GET /cluster/ha/rules shows each rule's feasibility errors
        errors = compile_rules(model).dropped
        for row in model.ha_rules:
            row.pop("errors", None)
            if row["rule"] in errors:
                row["errors"] = {"resources": errors[row["rule"]]}


def _digest_of(what: str) -> Callable[[ClusterModel, Call], str | None]:
    def digest(model: ClusterModel, call: Call) -> str | None:
        rows = getattr(model, what) or []
        return str(rows[0]["digest"]) if rows and rows[0].get("digest") else None

    return digest


def _check_digest(model: ClusterModel, call: Call, what: str) -> None:
    """PVE::Tools::assert_if_modified."""
    given = call.params.get("digest")
    current = _digest_of(what)(model, call)
    if given and current and given != current:
        raise PveApiError(500, "detected modified configuration - file changed by other user? Try again.")


def _verify_format(value: Any, check: re.Pattern[str], message: str, param: str) -> None:
    """The formats PVE's schema check runs and proximo.pve does not: pve-ha-node(-list), pve-ha-resource-id-list."""
    for item in split_list(value):
        if not check.match(item):
            raise PveApiError(400, "Parameter verification failed.", {param: f"invalid format - {message}"})


def _verify_nodes(params: dict[str, Any]) -> None:
    if "nodes" in params:
        _verify_format(params["nodes"], _HA_NODE, "value does not look like a valid ha node", "nodes")


def _verify_resources(params: dict[str, Any]) -> None:
    if "resources" in params:
        _verify_format(params["resources"], _RESOURCE_ID, "value does not look like a valid ha resource id", "resources")


# --- rules as the CRM compiles them (HA/Rules.pm transform and compile, PVE 9; groups on PVE 8) ---------------------


class Rule(NamedTuple):
    id: str
    type: str  # node-affinity | resource-affinity
    resources: frozenset[str]
    nodes: dict[str, int]
    strict: bool
    affinity: str


class Compiled(NamedTuple):
    node_affinity: dict[str, Rule]  # sid -> its node affinity rule (or PVE 8 group)
    positive: dict[str, set[str]]  # sid -> the resources it must be with
    negative: dict[str, set[str]]  # sid -> the resources it must be apart from
    dropped: dict[str, list[str]]  # rule id -> why PVE drops it ("Drop rule '<id>', because <why>.")
    failback: dict[str, bool]


def _rules(model: ClusterModel) -> list[Rule]:
    """The enabled rules: rules.cfg, plus the node affinity rules PVE 9 makes of groups not migrated yet (and, on
    PVE 8, the groups themselves, which act the same: Groups.pm migrate_groups_to_rules)."""
    out: list[Rule] = []
    for row in sorted(model.ha_rules or [] if pve9(model) else [], key=lambda r: (as_int(r.get("order")), str(r["rule"]))):
        if as_int(row.get("disable")):
            continue
        out.append(Rule(str(row["rule"]), str(row.get("type")), frozenset(split_list(row.get("resources"))),
                        _node_prios(row.get("nodes")), bool(as_int(row.get("strict"))), str(row.get("affinity", ""))))
    members: dict[str, set[str]] = {}
    for res in model.ha_resources:
        if res.get("group"):
            members.setdefault(str(res["group"]), set()).add(str(res["sid"]))
    for group in model.ha_groups or []:
        sids = members.get(str(group["group"]))
        if sids:
            out.append(Rule(f"ha-group-{group['group']}", "node-affinity", frozenset(sids), _node_prios(group.get("nodes")),
                            bool(as_int(group.get("restricted"))), ""))
    return out


def _components(rules: list[Rule]) -> list[tuple[list[str], set[str]]]:
    """Rules/Helpers.pm find_disjoint_rules_resource_sets: rules joined by shared resources."""
    found: list[tuple[list[str], set[str]]] = []
    for rule in sorted(rules, key=lambda r: (min(r.resources, default=""), r.id)):
        entry = next((e for e in found if e[1] & rule.resources), None)
        if entry is None:
            found.append(([rule.id], set(rule.resources)))
        else:
            entry[0].append(rule.id)
            entry[1].update(rule.resources)
    return found


def _feasibility(rules: list[Rule], nodes: list[str]) -> dict[str, list[str]]:
    """HA/Rules.pm check_feasibility: every registered check, with PVE's own messages."""
    errors: dict[str, list[str]] = {}

    def blame(rule_id: str, message: str) -> None:
        errors.setdefault(rule_id, []).append(message)

    node_aff = [r for r in rules if r.type == "node-affinity"]
    res_aff = [r for r in rules if r.type == "resource-affinity"]
    positive = [r for r in res_aff if r.affinity == "positive"]
    negative = [r for r in res_aff if r.affinity == "negative"]
    # NodeAffinity.pm check_single_resource_reference
    for sid in sorted({s for r in node_aff for s in r.resources}):
        using = [r for r in node_aff if sid in r.resources]
        for r in using if len(using) > 1 else []:
            blame(r.id, f"resource '{sid}' is already used in another node affinity rule")
    # ResourceAffinity.pm check_resource_affinity_resources_count, check_negative_resource_affinity_resources_count
    for r in res_aff:
        if len(r.resources) < 2:
            blame(r.id, "rule is ineffective as there are less than two resources")
    for r in negative:
        if len(r.resources) > len(nodes):
            blame(r.id, "rule defines more resources than available nodes")
    # ResourceAffinity.pm check_inter_resource_affinity_rules_consistency
    for ids, together in _components(positive):
        for r in negative:
            if len(together & r.resources) >= 2:
                blame(r.id, "rule shares two or more resources with a positive resource affinity rule")
                for pid in ids:
                    blame(pid, "rule shares two or more resources with a negative resource affinity rule")
    # Rules.pm check_single_priority_node_affinity_in_resource_affinity_rules
    for r in res_aff:
        paired = [n for n in node_aff if n.resources & r.resources]
        if any(len(set(n.nodes.values())) > 1 for n in paired):
            blame(r.id, "resources are in node affinity rules with multiple priorities")
            for n in paired:
                blame(n.id, "resources are in a resource affinity rule and cannot be in a node affinity rule with multiple priorities")
    # Rules.pm check_single_node_affinity_per_positive_resource_affinity_rule
    for ids, together in _components(positive):
        paired = [n for n in node_aff if n.resources & together]
        if len(paired) > 1:
            for pid in ids:
                blame(pid, "resources are in multiple node affinity rules")
            for n in paired:
                blame(n.id, "at least one resource is in a positive resource affinity rule and there are other resources "
                            "in at least one other node affinity rule already")
    # Rules.pm check_negative_resource_affinity_node_affinity_consistency
    for r in negative:
        paired = [n for n in node_aff if n.resources & r.resources]
        located = set().union(*(n.resources & r.resources for n in paired)) if paired else set()
        allowed = set().union(*(set(n.nodes) for n in paired)) if paired else set()
        if len(allowed) < len(located):
            blame(r.id, "two or more resources are restricted to less nodes than available to the resources")
            for n in paired:
                blame(n.id, "at least one resource is in a negative resource affinity rule and this rule would restrict "
                            "these to less nodes than available to the resources")
    return errors


def compile_rules(model: ClusterModel) -> Compiled:
    """What the CRM schedules with: infeasible rules dropped, connected positive rules merged, positive groups sharing
    their node affinity rule and their members' negative ones (Rules.pm transform, ResourceAffinity.pm transforms)."""
    rules = _rules(model)
    dropped = _feasibility(rules, sorted(model.nodes)) if pve9(model) else {}
    rules = [r for r in rules if r.id not in dropped]
    node_affinity: dict[str, Rule] = {}
    for rule in rules:
        if rule.type == "node-affinity":
            for sid in rule.resources:
                node_affinity[sid] = rule
    positive: dict[str, set[str]] = {}
    negative: dict[str, set[str]] = {}
    for _, together in _components([r for r in rules if r.type == "resource-affinity" and r.affinity == "positive"]):
        located = next((node_affinity[s] for s in sorted(together) if s in node_affinity), None)
        for sid in together:
            positive[sid] = together - {sid}
            if located is not None:
                node_affinity[sid] = located
    for rule in rules:
        if rule.type == "resource-affinity" and rule.affinity == "negative":
            for sid in rule.resources:
                negative.setdefault(sid, set()).update(rule.resources - {sid})
    for sid, partners in list(positive.items()):  # create_implicit_negative_resource_affinity_rules
        apart = set().union(*(negative.get(p, set()) for p in partners | {sid}))
        if apart:
            negative[sid] = negative.get(sid, set()) | apart
            for other in apart:
                negative.setdefault(other, set()).add(sid)
    groups = {str(g["group"]): g for g in model.ha_groups or []}
    failback: dict[str, bool] = {}
    for res in model.ha_resources:
        group = groups.get(str(res.get("group") or ""))
        # Groups.pm migrate_groups_to_resources (and PVE 8's nofailback): a group's nofailback decides
        failback[str(res["sid"])] = not as_int(group.get("nofailback")) if group else bool(as_int(res.get("failback", 1)))
    return Compiled(node_affinity, positive, negative, dropped, failback)


# --- where HA places each resource (Manager.pm select_service_node, preference 'none', basic scheduler) -----------


class Placement(NamedTuple):
    node: dict[str, str | None]  # sid -> where HA settles it (None: no node its rules allow is online)
    active: set[str]  # resources HA keeps running (requested started, guest present)


def placement(model: ClusterModel) -> Placement:
    """Where the CRM settles every HA resource it runs, from where each guest is now: rounds over the resources in
    sid order, as the CRM's manage loop goes, until nothing moves."""
    compiled = compile_rules(model)
    online = sorted(n for n, node in model.nodes.items() if node.online)
    where: dict[str, str] = {}
    active: set[str] = set()
    for res in model.ha_resources:
        sid = str(res["sid"])
        g = _guest_of(model, sid)
        if g is not None and requested(res) == "started":
            where[sid] = g.node
            active.add(sid)
    settled: dict[str, str | None] = dict(where)
    for _ in range(len(active) + 1):
        moved = False
        for sid in sorted(active):
            current = where[sid]
            rule = compiled.node_affinity.get(sid)
            nodes = dict(rule.nodes) if rule else {n: 0 for n in online}
            if rule and not rule.strict:  # NodeAffinity.pm plugin_compile: other nodes at priority -1
                nodes.update({n: -1 for n in online if n not in nodes})
            allowed = {n: p for n, p in nodes.items() if n in online}
            if not allowed:
                settled[sid] = None
                continue
            top = max(allowed.values())
            preferred = {n for n, p in allowed.items() if p == top}
            together: dict[str, int] = {}
            for other in compiled.positive.get(sid, set()) & active:
                together[where[other]] = together.get(where[other], 0) + 1
            apart = {where[o] for o in compiled.negative.get(sid, set()) & active}
            if not compiled.failback.get(sid, True) and current in allowed and (together.get(current) or current not in apart):
                settled[sid] = current
                continue
            preferred -= apart
            majority = sorted((n for n in together if n in preferred), key=lambda n: (-together[n], n))
            if majority:
                preferred = {majority[0]}
            if not preferred:
                settled[sid] = None
                continue
            if current in preferred:
                settled[sid] = current
                continue
            load = {n: sum(1 for s in active if where[s] == n) for n in preferred}
            target = min(preferred, key=lambda n: (load[n], n))
            where[sid] = settled[sid] = target
            moved = True
        if not moved:
            break
    return Placement(settled, active)


# --- the eventual effect on guests ----------------------------------------------------------------------------------


def _start_problem(model: ClusterModel, g: Guest) -> str | None:
    problems = [msg for _, msg in model.start_problems(g).values()] + list(model.bridge_problems(g).values())
    return problems[0] if problems else None


def _settle_state(model: ClusterModel, sid: str) -> None:
    """What the CRM does with a requested state: starts a stopped guest (if it can start), stops a running one."""
    res = _resource(model, sid)
    g = _guest_of(model, sid)
    if res is None or g is None or g.template:
        return
    state = requested(res)
    if state == "started" and not g.running and _start_problem(model, g) is None:
        g.resource["status"] = "running"
        g.resource["uptime"] = 0
    elif state in ("stopped", "disabled") and g.running:
        g.resource["status"] = "stopped"
        g.resource["uptime"] = 0
        g.paused = False


# --- semantics: /cluster/ha/resources -------------------------------------------------------------------------------

_RESOURCE_OPTIONS = ("state", "group", "failback", "max_restart", "max_relocate", "comment")


def _group_param(model: ClusterModel, params: dict[str, Any], *, must_exist: bool) -> None:
    group = params.get("group")
    if group is None:
        return
    if groups_migrated(model):  # API2/HA/Resources.pm create/update
        raise PveApiError(500, "invalid parameter 'group': ha groups have been migrated to rules")
    if must_exist and not any(g.get("group") == group for g in model.ha_groups or []):
        raise PveApiError(500, f"HA group '{group}' does not exist")


def _plugin(kind: str) -> None:
    if kind not in _KIND:  # SectionConfig lookup
        raise PveApiError(500, f"unknown section type '{kind}'")


def resource_create(model: ClusterModel, call: Call) -> None:
    p = dict(call.params)
    sid, kind, name = _parse_sid(model, str(p.pop("sid")))
    given_type = p.pop("type", None)
    if given_type and given_type != kind:
        raise PveApiError(500, "types does not match")
    _group_param(model, p, must_exist=False)
    _plugin(kind)
    if not re.fullmatch(r"[1-9][0-9]+", name):  # PVEVM.pm / PVECT.pm verify_name
        raise PveApiError(500, "invalid VMID")
    g = model.guests.get(int(name))
    if g is None:  # PVEVM.pm / PVECT.pm exists
        raise PveApiError(500, f"resource '{sid}' does not exist in cluster")
    if _HA_TYPE[g.kind] != kind:
        raise PveApiError(500, f"resource '{sid}' - guest with ID {name} is not a {'VM' if kind == 'vm' else 'container'}")
    if _resource(model, sid) is not None:
        raise PveApiError(500, f"create resource failed: resource ID '{sid}' already defined")
    model.ha_resources.append({"sid": sid, "type": kind, **{k: p[k] for k in _RESOURCE_OPTIONS if k in p}})
    _write(model, "ha_resources")
    _settle_state(model, sid)


def _delete_keys(row: dict[str, Any], delete: Any, required: tuple[str, ...], known: tuple[str, ...]) -> None:
    """SectionConfig.pm delete_from_config (and the loops that copy it in HA/Config.pm and API2/HA/Groups.pm)."""
    for key in split_list(delete):
        if key not in known and key not in required:
            raise PveApiError(500, f"no such option '{key}'")
        if key in required:
            raise PveApiError(500, f"unable to delete required option '{key}'")
        row.pop(key, None)


def resource_update(model: ClusterModel, call: Call) -> None:
    p = dict(call.params)
    sid, kind, _ = _parse_sid(model, call.path_params["sid"])
    given_type = p.pop("type", None)
    if given_type and given_type != kind:
        raise PveApiError(500, "types does not match")
    _group_param(model, p, must_exist=True)
    _check_digest(model, call, "ha_resources")
    row = _resource(model, sid)
    if row is None:  # HA/Config.pm update_resources_config (PVE 8: "update resource failed")
        raise PveApiError(500, f"{'update resources config' if pve9(model) else 'update resource'} failed: no such resource '{sid}'")
    _plugin(kind)
    delete = p.pop("delete", None)
    p.pop("digest", None)
    row.update(p)
    _delete_keys(row, delete, (), _RESOURCE_OPTIONS)
    _write(model, "ha_resources")
    _settle_state(model, sid)


def resource_delete(model: ClusterModel, call: Call) -> None:
    sid, _, _ = _parse_sid(model, call.path_params["sid"])
    row = _resource(model, sid)
    if row is None:
        raise PveApiError(500, f"cannot delete service '{sid}', not HA managed!")
    model.ha_resources.remove(row)
    _write(model, "ha_resources")
    # HA/Config.pm delete_service_from_config: purge (PVE 9, default 1) takes it out of every rule, and a rule left
    # without resources goes
    if pve9(model) and as_int(call.params.get("purge", 1)) and model.ha_rules:
        for rule in list(model.ha_rules):
            members = split_list(rule.get("resources"))
            if sid in members:
                rest = [m for m in members if m != sid]
                if rest:
                    rule["resources"] = ",".join(sorted(rest))
                else:
                    model.ha_rules.remove(rule)
        _write(model, "ha_rules")


def _resource_params(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in _RESOURCE_OPTIONS if k in row}


def _resource_create_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    sid, _, _ = _parse_sid(before, str(call.params["sid"]))
    steps: list[Step] = [ApiCall("DELETE", f"/cluster/ha/resources/{sid}")]
    g = _guest_of(before, sid)
    if g is not None and not g.running and requested(call.params) == "started":
        # the undo's DELETE leaves the guest running unmanaged: stop it directly, as it was
        steps.append(ApiCall("POST", f"/nodes/{g.node}/{g.kind}/{g.vmid}/status/stop"))
    return steps


def _resource_update_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    sid, _, _ = _parse_sid(before, call.path_params["sid"])
    row = _resource(before, sid)
    if row is None:
        return []
    return _restore(f"/cluster/ha/resources/{sid}", row, call.params, ("sid", "type"))


def _restore(path: str, row: dict[str, Any], params: dict[str, Any], fixed: tuple[str, ...]) -> list[Step]:
    """The PUT that puts back what a PUT changed: old values, and ``delete`` for keys it added."""
    changed = [k for k in params if k not in ("digest", "delete", *fixed)]
    deleted = split_list(params.get("delete"))
    restore = {k: row[k] for k in changed + deleted if k in row}
    remove = sorted({k for k in changed if k not in row})
    out: dict[str, Any] = dict(sorted(restore.items()))
    if remove:
        out["delete"] = ",".join(remove)
    return [ApiCall("PUT", path, out)] if out else []


def _resource_delete_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    sid, kind, _ = _parse_sid(before, call.path_params["sid"])
    row = _resource(before, sid)
    if row is None:
        return []
    params = _resource_params(row)
    if groups_migrated(before):
        params.pop("group", None)
    steps: list[Step] = [ApiCall("POST", "/cluster/ha/resources", {"sid": sid, "type": kind, **params})]
    if pve9(before) and as_int(call.params.get("purge", 1)):
        for rule in before.ha_rules or []:
            if sid not in split_list(rule.get("resources")):
                continue
            if split_list(rule.get("resources")) == [sid]:
                steps.append(ApiCall("POST", "/cluster/ha/rules", _rule_params(rule)))
            else:
                steps.append(ApiCall("PUT", f"/cluster/ha/rules/{rule['rule']}", {"type": rule["type"], "resources": rule["resources"]}))
    return steps


def _resource_notes(before: ClusterModel, call: Call) -> list[str]:
    sid = call.path_params.get("sid") or str(call.params.get("sid", ""))
    try:
        sid, _, _ = _parse_sid(before, sid)
    except PveApiError:
        return []
    if call.method == "DELETE":
        g = _guest_of(before, sid)
        what = f"{g.sid} keeps {'running' if g.running else 'its state'} on {g.node}" if g else "the guest is not touched"
        return [f"DELETE /cluster/ha/resources/{sid}: {what}; HA no longer restarts it or recovers it when its node fails."]
    return ["Proximo does not read the CRM's service states (GET /cluster/ha/status): a resource in 'error' makes "
            "Proxmox refuse every change but state=disabled (API2/HA/Resources.pm check_service_state)."]


# --- semantics: migrate and relocate (a CRM command; the LRM moves the guest later) -----------------------------------


def ha_request(model: ClusterModel, sid: str, target: str, task: str) -> dict[str, Any]:
    """What the CRM makes of ``migrate`` or ``relocate <sid> <target>`` (however it was asked: the HA endpoint, or a
    guest's own migrate call on an HA guest): the LRM moves the service and its positive-affinity partners, each
    only if its migration task would pass (task_refusal), and HA then settles every service where its rules want
    it (moving it back from a node outside them). Raises PveApiError where the CRM refuses the command."""
    g = _guest_of(model, sid)
    node = model.nodes.get(target)
    before_place = placement(model)
    compiled = compile_rules(model)
    answer: dict[str, Any] = {"sid": sid, "requested-node": target}
    if g is None or node is None or not node.online or g.node == target:
        return answer  # Manager.pm update_crm_commands: "node not online", "service already on target node": nothing happens
    for other in sorted(compiled.negative.get(sid, set()) & before_place.active):
        where = _guest_of(model, other)
        if where is not None and where.node == target:
            # Manager.pm queue_resource_motion: the CRM refuses the command (the API queued it)
            raise PveApiError(500, f"crm command '{task} {sid} {target}' error - service '{other}' on node '{target}' "
                                   f"in negative affinity with service '{sid}'")
    movers = [sid] + sorted(s for s in compiled.positive.get(sid, set()) & before_place.active
                            if (o := _guest_of(model, s)) is not None and o.node != target)
    restart = {m: task == "relocate" or (o := _guest_of(model, m)) is None or o.kind == "lxc" for m in movers}
    for mover in movers:
        guest = _guest_of(model, mover)
        assert guest is not None
        if task_refusal(model, guest, target, ha_params(guest)) is None:  # else the LRM's task fails and it stays
            # VMs: migrate = live, relocate = stop, move, start; containers always relocate
            move(model, guest, target, restart=restart[mover])
    settle = placement(model).node
    for mover in movers:  # outside a strict (or, with failback, a preferred) node affinity HA moves it back
        guest = _guest_of(model, mover)
        back = settle.get(mover)
        if guest is not None and back and back != guest.node:
            move(model, guest, back, restart=restart[mover])
    if len(movers) > 1:
        answer["comigrated-resources"] = movers[1:]
    return answer


def _motion(task: str) -> Callable[[ClusterModel, Call], Any]:
    def apply(model: ClusterModel, call: Call) -> Any:
        sid, _, _ = _parse_sid(model, call.path_params["sid"])
        row = _resource(model, sid)
        if row is None or requested(row) == "ignored":  # HA/Config.pm service_is_ha_managed
            raise PveApiError(500, f"resource '{sid}' is not HA managed")
        answer = ha_request(model, sid, str(call.params["node"]), task)
        return answer if pve9(model) else None

    return apply


def _motion_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    """Move it back if it moved (HA may have moved it back already, or not moved it); co-migrated ones follow it."""
    after = before.copy()
    _motion(call.path.rsplit("/", 1)[-1])(after, call)
    sid = _parse_sid(before, call.path_params["sid"])[0]
    g, moved = _guest_of(before, sid), _guest_of(after, sid)
    return [ApiCall("POST", call.path, {"node": g.node})] if g and moved and moved.node != g.node else []


def _motion_notes(before: ClusterModel, call: Call) -> list[str]:
    try:
        sid, _, _ = _parse_sid(before, call.path_params["sid"])
    except PveApiError:
        return []
    g = _guest_of(before, sid)
    target = str(call.params.get("node"))
    notes = [f"{call.method} {call.path} only queues a CRM command and returns at once; HA moves {sid} later"]
    if g is not None:
        how = ("live migration (online, with-local-disks, force)" if g.kind == "qemu" and call.path.endswith("/migrate")
               else "relocate: shut down (60 s, no forced stop for containers), moved offline, started on the target")
        notes[0] += f" by {how}."
    node = before.nodes.get(target)
    if node is None or not node.online:
        notes.append(f"node {target} is not online: the CRM ignores the command (Manager.pm update_crm_commands).")
    elif g is not None and g.node == target:
        notes.append(f"{sid} is on {target} already: the CRM ignores the command.")
    after = before.copy()
    try:
        _motion(call.path.rsplit("/", 1)[-1])(after, call)
    except PveApiError:
        return notes
    moved = _guest_of(after, sid)
    if g is not None and moved is not None and moved.node != target and g.node != target and node is not None and node.online:
        notes.append(f"{target} is not where its node affinity puts it: HA carries out the move and then moves it back to "
                     f"{moved.node} (Manager.pm select_service_node).")
    return notes


# --- semantics: groups (PVE 8; PVE 9 until they are migrated) ----------------------------------------------------------

_GROUP_OPTIONS = ("nodes", "restricted", "nofailback", "comment")


def _groups_open(model: ClusterModel, verb: str) -> list[dict[str, Any]]:
    if groups_migrated(model):  # API2/HA/Groups.pm create/update/delete
        raise PveApiError(500, f"cannot {verb} group: ha groups have been migrated to rules")
    if model.ha_groups is None:
        raise NotModelled("the HA groups (GET /cluster/ha/groups) were not read")
    return model.ha_groups


def _group(model: ClusterModel, name: str) -> dict[str, Any] | None:
    return next((g for g in model.ha_groups or [] if g.get("group") == name), None)


def group_create(model: ClusterModel, call: Call) -> None:
    groups = _groups_open(model, "create")
    p = dict(call.params)
    name = str(p.pop("group"))
    if p.pop("type", "group") != "group":
        raise PveApiError(500, "types does not match")
    _verify_nodes(p)
    if _group(model, name) is not None:
        raise PveApiError(500, f"create ha group failed: ha group ID '{name}' already defined")
    groups.append({"group": name, "type": "group", **{k: p[k] for k in _GROUP_OPTIONS if k in p}})
    _write(model, "ha_groups")


def group_update(model: ClusterModel, call: Call) -> None:
    _groups_open(model, "update")
    p = dict(call.params)
    _verify_nodes(p)
    _check_digest(model, call, "ha_groups")
    name = call.path_params["group"]
    row = _group(model, name)
    if row is None:
        raise PveApiError(500, f"update ha group failed: no such ha group '{name}'")
    delete = p.pop("delete", None)
    p.pop("digest", None)
    row.update(p)
    _delete_keys(row, delete, ("nodes",), _GROUP_OPTIONS)
    _write(model, "ha_groups")


def group_delete(model: ClusterModel, call: Call) -> None:
    groups = _groups_open(model, "delete")
    name = call.path_params["group"]
    user = next((r["sid"] for r in model.ha_resources if r.get("group") == name), None)
    if user is not None:
        raise PveApiError(500, f"delete ha group failed: ha group is used by service '{user}'")
    groups[:] = [g for g in groups if g.get("group") != name]
    _write(model, "ha_groups")


def _group_create_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    return [ApiCall("DELETE", f"/cluster/ha/groups/{call.params['group']}")]


def _group_update_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    row = _group(before, call.path_params["group"])
    return _restore(call.path, row, call.params, ("group", "type")) if row else []


def _group_delete_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    row = _group(before, call.path_params["group"])
    if row is None:
        return []
    return [ApiCall("POST", "/cluster/ha/groups", {"group": row["group"], **{k: row[k] for k in _GROUP_OPTIONS if k in row}})]


# --- semantics: rules (PVE 9) -------------------------------------------------------------------------------------------

_RULE_OPTIONS = {  # NodeAffinity.pm / ResourceAffinity.pm options: name -> required
    "node-affinity": {"resources": True, "nodes": True, "strict": False, "disable": False, "comment": False},
    "resource-affinity": {"resources": True, "affinity": True, "disable": False, "comment": False},
}


def _rules_open(model: ClusterModel, verb: str) -> list[dict[str, Any]]:
    if model.ha_groups:  # API2/HA/Rules.pm create_rule / update_rule
        raise PveApiError(500, f"cannot {verb} ha rule: ha groups have not been migrated yet")
    if model.ha_rules is None:
        raise NotModelled("the HA rules (GET /cluster/ha/rules) were not read")
    return model.ha_rules


def _check_rule_options(kind: str, params: dict[str, Any], *, create: bool) -> None:
    """SectionConfig.pm check_config / check_value for the rule's type."""
    options = _RULE_OPTIONS.get(kind)
    if options is None:
        raise PveApiError(500, f"unknown section type '{kind}'")
    for key in params:
        if key not in options:
            raise PveApiError(500, f"unexpected property '{key}'")
    for key, required in options.items() if create else ():
        if required and key not in params:
            raise PveApiError(500, f"missing value for required option '{key}'")


def _check_rule_refs(model: ClusterModel, params: dict[str, Any], errmsg: str) -> None:
    """API2/HA/Rules.pm assert_valid_resources_param and assert_valid_nodes_param."""
    if "resources" in params:
        resources = sorted(set(split_list(params["resources"])))
        if not resources:
            raise PveApiError(500, f"{errmsg}: no resources were specified")
        unmanaged = [sid for sid in resources if _resource(model, sid) is None]
        if unmanaged:
            raise PveApiError(500, f"{errmsg}: cannot use unmanaged resource(s) {', '.join(unmanaged)}.")
    if "nodes" in params:
        nodes = sorted(_node_prios(params["nodes"]))
        if not nodes:
            raise PveApiError(500, f"{errmsg}: no nodes were specified")
        missing = [n for n in nodes if n not in model.nodes]
        if missing:
            raise PveApiError(500, f"{errmsg}: cannot use non-existent node(s) {', '.join(missing)}.")


def _assert_feasible(model: ClusterModel, rule_id: str, errmsg: str) -> None:
    """API2/HA/Rules.pm assert_feasibility: a 400 PVE::Exception, stringified by lock_ha_domain into its message."""
    errors = compile_rules(model).dropped.get(rule_id)
    if errors:
        raise PveApiError(500, f"{errmsg}: 400 Rule '{rule_id}' is invalid. resources: {', '.join(errors)}")


def _rule(model: ClusterModel, rule_id: str) -> dict[str, Any] | None:
    return next((r for r in model.ha_rules or [] if r.get("rule") == rule_id), None)


def _normalise_rule(row: dict[str, Any]) -> None:
    """Rules.pm encode_value: resources sorted; nodes sorted, a priority written only when not 0."""
    if "resources" in row:
        row["resources"] = ",".join(sorted(set(split_list(row["resources"]))))
    if "nodes" in row:
        row["nodes"] = ",".join(f"{n}:{p}" if p else n for n, p in sorted(_node_prios(row["nodes"]).items()))
    if not as_int(row.get("disable")):
        row.pop("disable", None)  # create_rule / update_rule: "delete $param->{disable} if !$param->{disable}"


def rule_create(model: ClusterModel, call: Call) -> None:
    rules = _rules_open(model, "create")
    p = dict(call.params)
    kind = str(p.pop("type"))
    rule_id = str(p.pop("rule"))
    _verify_resources(p)
    _verify_nodes(p)
    _check_rule_options(kind, p, create=True)
    errmsg = "create ha rule failed"
    if _rule(model, rule_id) is not None:
        raise PveApiError(500, f"{errmsg}: HA rule '{rule_id}' already defined")
    _check_rule_refs(model, p, errmsg)
    # Rules.pm get_next_ordinal: one more than the lowest order in use (as PVE computes it)
    order = (min((as_int(r.get("order")) for r in rules), default=0)) + 1
    row = {"rule": rule_id, "type": kind, **p, "order": order}
    _normalise_rule(row)
    rules.append(row)
    try:
        _assert_feasible(model, rule_id, errmsg)
    except PveApiError:
        rules.remove(row)  # PVE checks before it writes rules.cfg
        raise
    _write(model, "ha_rules")


def rule_update(model: ClusterModel, call: Call) -> None:
    _rules_open(model, "update")
    p = dict(call.params)
    p.pop("type")
    delete = p.pop("delete", None)
    rule_id = call.path_params["rule"]
    _verify_resources(p)
    _verify_nodes(p)
    errmsg = "update HA rules failed"
    _check_digest(model, call, "ha_rules")
    p.pop("digest", None)
    row = _rule(model, rule_id)
    if row is None:
        raise PveApiError(500, f"{errmsg}: HA rule '{rule_id}' does not exist")
    old = dict(row)
    kind = str(row["type"])
    _check_rule_options(kind, p, create=False)
    _check_rule_refs(model, p, errmsg)
    options = _RULE_OPTIONS[kind]
    for key in split_list(delete):  # SectionConfig.pm delete_from_config
        if key not in options:
            raise PveApiError(500, f"{errmsg}: no such option '{key}'")
        if options[key]:
            raise PveApiError(500, f"{errmsg}: unable to delete required option '{key}'")
        if key in p:
            raise PveApiError(500, f"{errmsg}: cannot set and delete property '{key}' at the same time!")
        row.pop(key, None)
    row.update(p)
    _normalise_rule(row)
    try:
        _assert_feasible(model, rule_id, errmsg)
    except PveApiError:
        row.clear()
        row.update(old)  # PVE checks before it writes rules.cfg
        raise
    _write(model, "ha_rules")


def rule_delete(model: ClusterModel, call: Call) -> None:
    if model.ha_rules is None:
        raise NotModelled("the HA rules (GET /cluster/ha/rules) were not read")
    model.ha_rules[:] = [r for r in model.ha_rules if r.get("rule") != call.path_params["rule"]]  # absent: no error
    _write(model, "ha_rules")


def _rule_params(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("rule", "type", *_RULE_OPTIONS.get(str(row.get("type")), {}))
    return {k: row[k] for k in keys if k in row}


def _rule_create_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    return [ApiCall("DELETE", f"/cluster/ha/rules/{call.params['rule']}")]


def _rule_update_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    row = _rule(before, call.path_params["rule"])
    if row is None:
        return []
    steps = _restore(call.path, row, call.params, ("rule", "type"))
    return [ApiCall("PUT", s.path, {"type": row["type"], **s.params}) for s in steps if isinstance(s, ApiCall)]


def _rule_delete_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    row = _rule(before, call.path_params["rule"])
    return [ApiCall("POST", "/cluster/ha/rules", _rule_params(row))] if row else []


def _rule_notes(before: ClusterModel, call: Call) -> list[str]:
    return ["HA applies rules when the CRM next reads them (about every 10 s): placements below are where it settles "
            "each resource by its rules with the basic scheduler (fewest HA services)."]


def register_all(register: Callable[..., None]) -> None:
    verifies_nodes = ("nodes",)
    register("POST", "/cluster/ha/resources", resource_create, inverse=_resource_create_inverse, notes=_resource_notes,
             verifies=("sid",))
    register("PUT", "/cluster/ha/resources/{sid}", resource_update, inverse=_resource_update_inverse, notes=_resource_notes,
             digest=_digest_of("ha_resources"), verifies=("sid",))
    register("DELETE", "/cluster/ha/resources/{sid}", resource_delete, inverse=_resource_delete_inverse, notes=_resource_notes,
             verifies=("sid",))
    for task in ("migrate", "relocate"):
        register("POST", f"/cluster/ha/resources/{{sid}}/{task}", _motion(task), inverse=_motion_inverse, notes=_motion_notes,
                 verifies=("sid",))
    register("POST", "/cluster/ha/groups", group_create, inverse=_group_create_inverse, verifies=verifies_nodes)
    register("PUT", "/cluster/ha/groups/{group}", group_update, inverse=_group_update_inverse, digest=_digest_of("ha_groups"),
             verifies=verifies_nodes)
    register("DELETE", "/cluster/ha/groups/{group}", group_delete, inverse=_group_delete_inverse)
    register("POST", "/cluster/ha/rules", rule_create, inverse=_rule_create_inverse, notes=_rule_notes,
             verifies=("nodes", "resources"))
    register("PUT", "/cluster/ha/rules/{rule}", rule_update, inverse=_rule_update_inverse, notes=_rule_notes,
             digest=_digest_of("ha_rules"), verifies=("nodes", "resources"))
    register("DELETE", "/cluster/ha/rules/{rule}", rule_delete, inverse=_rule_delete_inverse, notes=_rule_notes)


# --- impacts --------------------------------------------------------------------------------------------------------


def _label(model: ClusterModel, sid: str) -> str:
    g = _guest_of(model, sid)
    return f"{sid} ({g.name})" if g else sid


def requested_states(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Requested-state changes the guests pack does not report (it reports started -> stopped): disabled, ignored,
    and a start HA will try and fail."""
    old = {str(r["sid"]): requested(r) for r in before.ha_resources}
    for res in after.ha_resources:
        sid, state = str(res["sid"]), requested(res)
        was = old.get(sid)
        g = _guest_of(after, sid)
        if was == state or g is None:
            continue
        if state == "disabled" and was in ("started", None):
            yield Impact(f"ha/{sid}", "downtime", f"HA requested state {was or 'none'} -> disabled: HA stops {_label(after, sid)} "
                                                  "and neither restarts nor recovers it (not even when its node fails)")
        elif state == "ignored":
            yield Impact(f"ha/{sid}", "degraded", f"HA requested state {was} -> ignored: HA no longer manages {_label(after, sid)} "
                                                  "(no restart, no recovery when its node fails); API calls act on it directly",
                         risk=Risk.MEDIUM if g.running else Risk.LOW)
        elif state == "started" and not g.running and not g.template and (problem := _start_problem(after, g)):
            yield Impact(f"ha/{sid}", "ha-error", f"HA will start {_label(after, sid)} on {g.node} and the start fails: {problem}; "
                                                  "after max_restart/max_relocate tries the resource goes to 'error'")


def removed_resources(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    kept = {str(r["sid"]) for r in after.ha_resources}
    for res in before.ha_resources:
        sid = str(res["sid"])
        g = _guest_of(after, sid)
        if sid in kept or g is None:
            continue  # a destroyed guest is the guests pack's to report
        state = "keeps running" if g.running else "stays stopped"
        yield Impact(f"ha/{sid}", "degraded", f"{_label(after, sid)} is no longer HA managed: it {state} on {g.node}, unmanaged; "
                                              "no restart when it fails and no recovery when its node fails",
                     risk=Risk.MEDIUM if g.running else Risk.LOW)


def dropped_rules(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Rules PVE will drop as infeasible (Rules.pm transform: "Drop rule '<id>', because <why>.")."""
    was = compile_rules(before).dropped
    for rule_id, reasons in sorted(compile_rules(after).dropped.items()):
        fresh = [r for r in reasons if r not in was.get(rule_id, [])]
        if fresh:
            yield Impact(f"ha-rule/{rule_id}", "ha-error",
                         "; ".join(f"Drop rule '{rule_id}', because {r}." for r in fresh)
                         + " HA places its resources as if the rule did not exist")


def moves(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Where HA settles each resource it runs: a new destination is a move HA makes on its own."""
    old, new = placement(before), placement(after)
    for sid in sorted(new.active):
        g = _guest_of(after, sid)
        dest = new.node.get(sid)
        if g is None:
            continue
        if dest is None:
            if old.node.get(sid) is not None or sid not in old.active:
                yield Impact(f"ha/{sid}", "ha-error", f"no online node is allowed for {_label(after, sid)} by its HA rules: HA leaves "
                                                      f"it where it is ({g.node}) and cannot recover it if that node fails")
            continue
        if dest == g.node or (dest == old.node.get(sid) and sid in old.active):
            continue
        if g.kind == "lxc":
            yield Impact(f"ha/{sid}", "downtime", f"HA relocates {_label(after, sid)} from {g.node} to {dest} by its rules: the "
                                                  "container is shut down, moved and started again")
        else:
            yield Impact(f"ha/{sid}", "degraded", f"HA live-migrates {_label(after, sid)} from {g.node} to {dest} by its rules "
                                                  "(memory copied while it runs, a short pause at the switch-over)",
                         risk=Risk.MEDIUM)


def _fencing_shortfall(model: ClusterModel) -> dict[str, tuple[int, int]]:
    """Node -> (memory of the HA guests HA runs there, memory the other online nodes have free) where the first is
    larger: if that node is fenced, HA recovers its guests onto nodes that cannot hold them. PVE checks no capacity
    (the basic scheduler counts services), so this is Proximo's estimate: guests' and nodes' maxmem."""
    place = placement(model)
    online = [n for n, node in model.nodes.items() if node.online]
    used = {n: 0 for n in online}
    ha_load = {n: 0 for n in online}
    for g in model.guests.values():
        sid = f"{_HA_TYPE[g.kind]}:{g.vmid}"
        node = place.node.get(sid) or g.node if sid in place.active else g.node
        if node not in used or not (g.running or sid in place.active):
            continue
        used[node] += as_int(g.resource.get("maxmem"))
        if sid in place.active:
            ha_load[node] += as_int(g.resource.get("maxmem"))
    free = {n: max(as_int(model.nodes[n].resource.get("maxmem")) - used[n], 0) for n in online}
    return {n: (ha_load[n], sum(f for m, f in free.items() if m != n)) for n in online
            if ha_load[n] and ha_load[n] > sum(f for m, f in free.items() if m != n)}


def fencing_capacity(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    if before.ha_resources == after.ha_resources and before.ha_rules == after.ha_rules and before.ha_groups == after.ha_groups \
            and {v: (g.node, g.running) for v, g in before.guests.items()} == {v: (g.node, g.running) for v, g in after.guests.items()}:
        return  # nothing HA places or counts changed
    was = _fencing_shortfall(before)
    for node, (load, room) in sorted(_fencing_shortfall(after).items()):
        old = was.get(node)
        if old is not None and old[0] - old[1] >= load - room:
            continue
        yield Impact(f"node/{node}", "degraded",
                     f"node {node} would carry {load / GiB:.1f} GiB of HA guests (maxmem) while the other online nodes have "
                     f"{room / GiB:.1f} GiB free: if {node} is fenced, HA recovers its guests onto nodes that cannot hold them "
                     "(Proxmox checks no capacity)", risk=Risk.HIGH)


def impacts(change: Any, before: ClusterModel, after: ClusterModel) -> list[Impact]:
    if not (before.ha_resources or after.ha_resources):
        return []
    found: list[Impact] = []
    found += requested_states(before, after)
    found += removed_resources(before, after)
    found += dropped_rules(before, after)
    found += moves(before, after)
    found += fencing_capacity(before, after)
    return found


# --- tools ----------------------------------------------------------------------------------------------------------


def _ids(base: type[msgspec.Struct], **ids: Any) -> type[msgspec.Struct]:
    """The endpoint's struct with its path ids narrowed to what is safe in a path (HaSid, ConfigId)."""
    fields = {name: (kind, msgspec.field(name=name)) for name, kind in ids.items()}
    return msgspec.defstruct(base.__name__, [(n, t, f) for n, (t, f) in fields.items()], bases=(base,),
                             module=__name__)


ResourceAddParams = _ids(struct_from_schema("HaResourceAddParams", "POST", "/cluster/ha/resources"), sid=HaSid)
ResourceUpdateParams = _ids(struct_from_schema("HaResourceUpdateParams", "PUT", "/cluster/ha/resources/{sid}"), sid=HaSid)
ResourceRemoveParams = _ids(struct_from_schema("HaResourceRemoveParams", "DELETE", "/cluster/ha/resources/{sid}"), sid=HaSid)
ResourceMotionParams = _ids(struct_from_schema("HaResourceMotionParams", "POST", "/cluster/ha/resources/{sid}/migrate"),
                            sid=HaSid)
GroupCreateParams = _ids(struct_from_schema("HaGroupCreateParams", "POST", "/cluster/ha/groups"), group=ConfigId)
GroupUpdateParams = _ids(struct_from_schema("HaGroupUpdateParams", "PUT", "/cluster/ha/groups/{group}"), group=ConfigId)
GroupRef = _ids(struct_from_schema("HaGroupRef", "DELETE", "/cluster/ha/groups/{group}"), group=ConfigId)
RuleCreateParams = _ids(struct_from_schema("HaRuleCreateParams", "POST", "/cluster/ha/rules"), rule=ConfigId)
# the update takes the rule's type from rules.cfg when it is not given (PVE requires it)
_rule_update = schema_params("PUT", "/cluster/ha/rules/{rule}")
_rule_update["type"] = msgspec.structs.replace(_rule_update["type"], optional=True)
RuleUpdateParams = _ids(struct_from_schema("HaRuleUpdateParams", "PUT", "/cluster/ha/rules/{rule}", params=_rule_update),
                        rule=ConfigId)
RuleRef = _ids(struct_from_schema("HaRuleRef", "DELETE", "/cluster/ha/rules/{rule}"), rule=ConfigId)


class StatusParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    sid: HaSid | None = None


described(StatusParams, fields={"sid": "one resource (default: every HA resource)"})


def _sid(view: ClusterModel, text: str) -> str:
    """vm:/ct: as given; a bare VMID as PVE resolves it (a VMID no guest has is PVE's to refuse)."""
    g = view.guests.get(int(text)) if text.isdigit() else None
    return f"{_HA_TYPE[g.kind]}:{text}" if g is not None else text


def read_status(p: StatusParams, view: ClusterModel) -> list[dict[str, Any]]:
    place = placement(view)
    compiled = compile_rules(view)
    rows = []
    for res in sorted(view.ha_resources, key=lambda r: str(r["sid"])):
        sid = str(res["sid"])
        if p.sid is not None and sid != _sid(view, p.sid):
            continue
        g = _guest_of(view, sid)
        rule = compiled.node_affinity.get(sid)
        rows.append({
            "sid": sid, "state": requested(res), "node": g.node if g else None,
            "status": g.resource.get("status") if g else "missing",
            "ha_node": place.node.get(sid) if sid in place.active else (g.node if g else None),
            "node_affinity": rule.id if rule else None,
            "together": sorted(compiled.positive.get(sid, ())), "apart": sorted(compiled.negative.get(sid, ())),
            "failback": int(compiled.failback.get(sid, True)),
        })
    return rows


def _changes(params: dict[str, Any], tool: str, fixed: tuple[str, ...]) -> None:
    if not any(k for k in params if k not in ("digest", *fixed)):
        raise BadInput(f"{tool}: nothing to change (give at least one option, or delete=...)")


def plan_resource_add(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    params["sid"] = _sid(view, str(params["sid"]))
    return Draft(steps=[ApiCall("POST", "/cluster/ha/resources", params)], target=params["sid"])


def plan_resource_update(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    sid = _sid(view, str(params.pop("sid")))
    _changes(params, "ha.resource.update", ())
    return Draft(steps=[ApiCall("PUT", f"/cluster/ha/resources/{sid}", params)], target=sid)


def plan_resource_remove(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    sid = _sid(view, str(params.pop("sid")))
    return Draft(steps=[ApiCall("DELETE", f"/cluster/ha/resources/{sid}", params)], target=sid)


def _plan_motion(task: str) -> Callable[[Any, ClusterModel], Draft]:
    def plan(p: Any, view: ClusterModel) -> Draft:
        sid = _sid(view, p.sid)
        return Draft(steps=[ApiCall("POST", f"/cluster/ha/resources/{sid}/{task}", {"node": p.node})], target=sid)

    plan.__name__ = f"plan_resource_{task}"
    return plan


def _groups_allowed(view: ClusterModel) -> None:
    if groups_migrated(view):
        raise BadInput(f"PVE {view.release} replaced HA groups with HA rules (its groups are migrated): use ha.rule.create, "
                       "ha.rule.update, ha.rule.delete")


def plan_group_create(p: Any, view: ClusterModel) -> Draft:
    _groups_allowed(view)
    params = api_params(p)
    return Draft(steps=[ApiCall("POST", "/cluster/ha/groups", params)], target=str(params["group"]))


def plan_group_update(p: Any, view: ClusterModel) -> Draft:
    _groups_allowed(view)
    params = api_params(p)
    group = str(params.pop("group"))
    _changes(params, "ha.group.update", ())
    return Draft(steps=[ApiCall("PUT", f"/cluster/ha/groups/{group}", params)], target=group)


def plan_group_delete(p: Any, view: ClusterModel) -> Draft:
    _groups_allowed(view)
    return Draft(steps=[ApiCall("DELETE", f"/cluster/ha/groups/{p.group}")], target=p.group)


def plan_rule_create(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    return Draft(steps=[ApiCall("POST", "/cluster/ha/rules", params)], target=str(params["rule"]))


def plan_rule_update(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    rule_id = str(params.pop("rule"))
    _changes(params, "ha.rule.update", ("type",))
    if "type" not in params:
        row = _rule(view, rule_id)
        if row is None:
            raise BadInput(f"HA rule '{rule_id}' does not exist (see `proximo read ha.status`)")
        params = {"type": row["type"], **params}
    return Draft(steps=[ApiCall("PUT", f"/cluster/ha/rules/{rule_id}", params)], target=rule_id)


def plan_rule_delete(p: Any, view: ClusterModel) -> Draft:
    return Draft(steps=[ApiCall("DELETE", f"/cluster/ha/rules/{p.rule}")], target=p.rule)


TOOLS = tool_table(
    read_tool("ha.status", "HA status", "HA resources with their requested state, where each guest is, and the node HA "
              "settles it on by its rules (node affinity, resource affinity; PVE 8 groups), per the model.",
              StatusParams, read_status, columns=("sid", "state", "node", "status", "ha_node", "node_affinity")),
    plan_tool("ha.resource.add", "Plan: add an HA resource", "Plan POST /cluster/ha/resources: HA then manages the guest "
              "(state started: HA starts it; stopped/disabled: HA stops it).", ResourceAddParams, plan_resource_add),
    plan_tool("ha.resource.update", "Plan: update an HA resource", "Plan PUT /cluster/ha/resources/{sid}: requested state, "
              "failback, max_restart, max_relocate, comment (group on PVE 8).", ResourceUpdateParams, plan_resource_update),
    plan_tool("ha.resource.remove", "Plan: remove an HA resource", "Plan DELETE /cluster/ha/resources/{sid}: the guest keeps "
              "running, unmanaged (PVE 9: purge takes it out of its rules).", ResourceRemoveParams, plan_resource_remove),
    plan_tool("ha.resource.migrate", "Plan: HA migrate", "Plan POST /cluster/ha/resources/{sid}/migrate: HA live-migrates a VM "
              "(a container is relocated); a node outside its node affinity gets it moved back.",
              ResourceMotionParams, _plan_motion("migrate")),
    plan_tool("ha.resource.relocate", "Plan: HA relocate", "Plan POST /cluster/ha/resources/{sid}/relocate: HA stops the guest, "
              "moves it offline and starts it on the node.", ResourceMotionParams, _plan_motion("relocate")),
    plan_tool("ha.group.create", "Plan: create an HA group (PVE 8)", "Plan POST /cluster/ha/groups (PVE 8; PVE 9 uses rules).",
              GroupCreateParams, plan_group_create),
    plan_tool("ha.group.update", "Plan: update an HA group (PVE 8)", "Plan PUT /cluster/ha/groups/{group}: where HA places "
              "its resources afterwards is reported.", GroupUpdateParams, plan_group_update),
    plan_tool("ha.group.delete", "Plan: delete an HA group (PVE 8)", "Plan DELETE /cluster/ha/groups/{group}.",
              GroupRef, plan_group_delete),
    plan_tool("ha.rule.create", "Plan: create an HA rule (PVE 9)", "Plan POST /cluster/ha/rules: node affinity (nodes, strict) "
              "or resource affinity (positive, negative); PVE's feasibility checks decide.", RuleCreateParams, plan_rule_create),
    plan_tool("ha.rule.update", "Plan: update an HA rule (PVE 9)", "Plan PUT /cluster/ha/rules/{rule}: where HA places its "
              "resources afterwards is reported.", RuleUpdateParams, plan_rule_update),
    plan_tool("ha.rule.delete", "Plan: delete an HA rule (PVE 9)", "Plan DELETE /cluster/ha/rules/{rule}.", RuleRef,
              plan_rule_delete),
)
