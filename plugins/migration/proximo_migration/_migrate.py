"""Moving guests between nodes: the migrate endpoints' semantics, migrate.check, guest.migrate and node.evacuate.

Semantics after qemu-server (e6352be) src/PVE/API2/Qemu.pm ``migrate_vm`` and src/PVE/QemuMigrate.pm, pve-container
(94f5585) src/PVE/API2/LXC.pm ``migrate_vm`` and src/PVE/LXC/Migrate.pm, pve-guest-common AbstractMigrate.pm
``switch_replication_job_target``. A refusal Proxmox makes when the task runs (``prepare``, ``scan_local_volumes``)
is answered at once, as a refused call (the guests pack does the same for a start that fails): the model does not
keep failed tasks' half-done work, and a plan is blocked with Proxmox's text either way.

Proxmox checks no capacity at all (no memory, CPU or space check on the target): the analysers below do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from proximo import ApiCall, BadInput, Change, Draft, Impact, Irreversible, NotModelled, PveApiError, Risk, Step, plan_tool, read_tool, tool_table
from proximo.model import Call, ClusterModel, Guest, as_int
from proximo.model._migration import (ha_managed, ha_sid, local_volume_bytes, lxc_precondition, mapped_devices, qemu_local_disks,
                                      qemu_precondition, storage_refusal)
from proximo.params import NodeName, VmId, api_params, described

from ._ha import ha_request
from ._motion import ha_params, move, storage_map, task_refusal

ROOT = "root@pam"
GiB = 1024**3


def _param_error(key: str, message: str) -> PveApiError:
    return PveApiError(400, "Parameter verification failed.", {key: message})


def _kind(call: Call) -> str:
    return "qemu" if "/qemu/" in call.template else "lxc"


def migrate_refusal(model: ClusterModel, g: Guest, target: str, params: dict[str, Any], user: str = ROOT) -> PveApiError | None:
    """What Proxmox answers a migration of ``g`` to ``target`` with these parameters (None: it goes ahead), in the
    order its API handler and then the task check: the same rules for api.call, the tools and migrate.check."""
    if target == g.node:
        return _param_error("target", "target is local node.")
    if not any(r.get("type") == "cluster" and as_int(r.get("quorate"), 1) for r in model.cluster_status) and model.cluster_status:
        return PveApiError(500, "cluster not ready - no quorum?")  # PVE::Cluster::check_cfs_quorum
    if target not in model.nodes:
        return PveApiError(500, f"no such cluster node '{target}'")  # PVE::Cluster::check_node_exists
    if user != ROOT:
        for key in ("force", "migration_type", "migration_network"):
            if params.get(key):
                return _param_error(key, "Only root may use this option.")
    try:
        g.check_lock()
    except PveApiError as exc:
        return exc
    storagemap = storage_map(params.get("targetstorage") or params.get("target-storage"))
    if g.kind == "qemu":
        if g.running:
            if not as_int(params.get("online")):
                return PveApiError(500, "can't migrate running VM without --online")
            jobs = [j for j in model.replication_jobs if as_int(j.get("guest")) == g.vmid]
            if jobs and not any(j.get("target") == target for j in jobs) and not as_int(params.get("force")):
                return PveApiError(500, f"Cannot live-migrate replicated VM to node '{target}' - not a replication target. "
                                        "Use 'force' to override.")
        if mapped_devices(g.config):
            return PveApiError(501, f"VM {g.vmid} uses mapped devices ({', '.join(mapped_devices(g.config))}): resource "
                                    "mappings are not modelled")
    elif g.running and not as_int(params.get("online")) and not as_int(params.get("restart")):
        return PveApiError(500, "can't migrate running container without --online or --restart")
    problem = storage_refusal(model, g, target, storagemap)
    if problem:
        return PveApiError(500, problem)
    res = ha_managed(model, g)
    if res is not None:  # the HA stack moves it, with its own parameters (PVEVM.pm / PVECT.pm migrate)
        if res.get("state") == "error":
            return PveApiError(500, f"service '{res.get('sid')}' in error state, must be disabled and fixed first")
        return None
    return task_refusal(model, g, target, params)


def migrate(model: ClusterModel, call: Call) -> str:
    kind = _kind(call)
    g = model.guest_on(call.path_params["node"], kind, call.path_params["vmid"])
    target = str(call.params["target"])
    refusal = migrate_refusal(model, g, target, call.params, call.user)
    if refusal is not None:
        raise refusal
    source = g.node
    if ha_managed(model, g) is not None:  # `ha-manager migrate <sid> <target>`: the CRM and the LRM do the rest
        upid = model.start_task(source, "hamigrate", str(g.vmid), call.user)
        ha_request(model, ha_sid(g), target, "migrate")
        return upid
    upid = model.start_task(source, "qmigrate" if kind == "qemu" else "vzmigrate", str(g.vmid), call.user)
    move(model, g, target, storage_map(call.params.get("targetstorage") or call.params.get("target-storage")),
         restart=kind == "lxc")  # a running container migrates in restart mode
    return upid


def _inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    kind = _kind(call)
    g = before.guest_on(call.path_params["node"], kind, call.path_params["vmid"])
    target = str(call.params["target"])
    if ha_managed(before, g) is not None:  # HA may move it back, or elsewhere: undo from where it ends
        after = before.copy()
        migrate(after, call)
        target = after.guests[g.vmid].node
        if target == g.node:
            return []
    params: dict[str, Any] = {"target": g.node}
    if kind == "qemu" and g.running:
        params["online"] = 1
        if qemu_local_disks(before, g):
            params["with-local-disks"] = 1
    if kind == "lxc" and g.running:
        params["restart"] = 1
    back = {dst: src for src, dst in storage_map(call.params.get("targetstorage") or call.params.get("target-storage")).items() if src}
    if back:
        params["targetstorage" if kind == "qemu" else "target-storage"] = ",".join(f"{s}:{d}" for s, d in sorted(back.items()))
    return [ApiCall("POST", f"/nodes/{target}/{kind}/{g.vmid}/migrate", params)]


def _size(n: int) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n / 1024**2:.0f} MiB"


def _notes(before: ClusterModel, call: Call) -> list[str]:
    kind = _kind(call)
    try:
        g = before.guest_on(call.path_params["node"], kind, call.path_params["vmid"])
    except PveApiError:
        return []
    target = str(call.params.get("target"))
    notes = []
    res = ha_managed(before, g)
    if res is not None:
        given = sorted(k for k in call.params if k != "target")
        how = "migrates it online, with force=1 and with-local-disks=1" if kind == "qemu" else "relocates it: shutdown, move, start"
        notes.append(f"{ha_sid(g)} is HA-managed: Proxmox only queues `ha-manager migrate {ha_sid(g)} {target}` (task hamigrate)"
                     + (f" and drops {', '.join(given)}" if given else "") + f"; the HA stack then {how}")
    sizes = local_volume_bytes(before, g)
    if sizes:
        known = sum(s for _, s in sizes if s)
        unknown = [v for v, s in sizes if not s]
        # what the wire carries at best (117 MB/s on 1 Gbit/s, 1.17 GB/s on 10): a floor, not a promise
        notes.append(f"{g.sid} copies {len(sizes)} local volume{'s' if len(sizes) > 1 else ''} to {target}: {_size(known)}"
                     + (f" and {', '.join(unknown)} of unknown size" if unknown else "")
                     + f"; at least {known / 117e6 / 60:.1f} min at 1 Gbit/s, {known / 1.17e9 / 60:.1f} min at 10 Gbit/s")
    for job in before.replication_jobs:
        if as_int(job.get("guest")) != g.vmid or (kind == "lxc" and not any(j.get("target") == target for j in before.replication_jobs
                                                                                 if as_int(j.get("guest")) == g.vmid)):
            continue
        new_target = g.node if job.get("target") == target else job.get("target")
        notes.append(f"replication {job.get('id')} ({g.node} -> {job.get('target')}) becomes {target} -> {new_target}")
    return notes


def register_all(register: Callable[..., None]) -> None:
    for kind in ("qemu", "lxc"):
        register("POST", f"/nodes/{{node}}/{kind}/{{vmid}}/migrate", migrate, inverse=_inverse, notes=_notes)


# --- impacts ---------------------------------------------------------------------------------------------------


def _memory(g: Guest) -> int:
    return as_int(g.resource.get("maxmem"))


def committed(model: ClusterModel, node: str) -> int:
    """The memory of the running guests on ``node`` (their configured maximum, as /cluster/resources says it)."""
    return sum(_memory(g) for g in model.guests.values() if g.node == node and g.running)


def impacts(change: Change, before: ClusterModel, after: ClusterModel) -> list[Impact]:
    return [*_moved(before, after), *_capacity(before, after), *_ha_migrations(change, before, after)]


def _moved(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    for vmid, old in sorted(before.guests.items()):
        new = after.guests.get(vmid)
        if new is None or new.node == old.node:
            continue
        for job in after.replication_jobs:
            was = next((j for j in before.replication_jobs if j.get("id") == job.get("id")), None)
            if as_int(job.get("guest")) == vmid and was is not None and was.get("target") == job.get("target") != old.node \
                    and was.get("source", old.node) != job.get("source"):
                yield Impact(f"replication/{job.get('id')}", "degraded",
                             f"replication {job.get('id')} now runs {new.node} -> {job.get('target')}: {new.node} has no replica "
                             f"state for {job.get('target')}, so the next run is a full sync", risk=Risk.MEDIUM)


def _capacity(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    for name, node in sorted(after.nodes.items()):
        total = as_int(node.resource.get("maxmem"))
        now, was = committed(after, name), committed(before, name)
        if total and now > total and now > was:
            yield Impact(f"node/{name}", "degraded", f"{name} is over-committed: its running guests may use {_size(now)} of "
                                                    f"memory, the node has {_size(total)} (was {_size(was)}); Proxmox checks "
                                                    "no capacity before a migration", risk=Risk.HIGH)


def _ha_migrations(change: Change, before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """An HA guest that a migration request leaves where it was: the migration HA runs would fail (blocked, with the
    reason), or HA moves it back to where its rules want it."""
    for step in change.steps:
        if not (isinstance(step, ApiCall) and step.method == "POST"):
            continue
        parts = step.path.split("/")
        if len(parts) == 6 and parts[1] == "nodes" and parts[5] == "migrate":  # /nodes/{node}/{kind}/{vmid}/migrate
            g, target = before.guests.get(as_int(parts[4], -1)), str(step.params.get("target"))
        elif len(parts) == 6 and parts[1:4] == ["cluster", "ha", "resources"] and parts[5] in ("migrate", "relocate"):
            g, target = before.guests.get(as_int(parts[4].partition(":")[2], -1)), str(step.params.get("node"))
        else:
            continue
        if g is None or ha_managed(before, g) is None or target not in before.nodes or target == g.node:
            continue
        moved = after.guests.get(g.vmid)
        if moved is None or moved.node != g.node:
            continue
        refusal = task_refusal(before, g, target, ha_params(g))
        if refusal is not None:
            yield Impact(f"ha/{ha_sid(g)}", "ha-error", f"the request is queued, but the migration HA then runs fails: "
                                                        f"{refusal.message}; {ha_sid(g)} stays on {g.node}", blocks=True)
        elif before.nodes[target].online:
            yield Impact(f"ha/{ha_sid(g)}", "downtime" if g.kind == "lxc" else "degraded",
                         f"{target} is not where the HA rules of {ha_sid(g)} place it: HA carries the migration out and then "
                         f"moves it back to {g.node}" + (" (two relocations: two restarts)" if g.kind == "lxc" else ""),
                         risk=Risk.MEDIUM)


# --- tools -----------------------------------------------------------------------------------------------------


class MigrateParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    vmid: VmId
    target: NodeName
    online: bool | None = None
    with_local_disks: bool | None = msgspec.field(default=None, name="with-local-disks")
    targetstorage: str | None = None
    restart: bool | None = None
    timeout: int | None = None
    force: bool | None = None
    bwlimit: int | None = None


class CheckParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    vmid: VmId
    target: NodeName | None = None


class EvacuateParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    node: NodeName
    target: NodeName | None = None
    include_stopped: bool = True
    leave_unmovable: bool = False


described(MigrateParams, pve=(("POST", "/nodes/{node}/qemu/{vmid}/migrate"), ("POST", "/nodes/{node}/lxc/{vmid}/migrate")),
          fields={"vmid": "the guest to move", "targetstorage": "storage map (SRC:DST,...), for QEMU; target-storage for a container"})
described(CheckParams, fields={"vmid": "the guest", "target": "one node (default: every other node)"})
described(EvacuateParams, fields={"node": "the node to empty", "target": "move every guest there (default: per guest, the node "
                                  "with the most free memory that takes it)", "include_stopped": "move stopped guests too",
                                  "leave_unmovable": "plan the rest when a guest cannot move (default: the plan is blocked)"})


def _guest(view: ClusterModel, vmid: int) -> Guest:
    g = view.guests.get(vmid)
    if g is None:
        raise BadInput(f"guest {vmid} does not exist (see `proximo read guest.list`)")
    return g


def default_params(model: ClusterModel, g: Guest, target: str) -> dict[str, Any]:
    """How an operator migrates ``g`` now: online (a running VM, with its local disks), restart (a running CT)."""
    params: dict[str, Any] = {"target": target}
    if g.kind == "qemu" and g.running:
        params["online"] = 1
        if any(d["is_attached"] for d in qemu_local_disks(model, g)):
            params["with-local-disks"] = 1
    if g.kind == "lxc" and g.running:
        params["restart"] = 1
    return params


def check_targets(view: ClusterModel, g: Guest, targets: list[str], user: str = ROOT) -> dict[str, str | None]:
    """Each target's refusal (None: it goes) for the usual parameters (default_params); for an HA guest also what the
    HA stack then does with the request (on a copy of the model: its migration fails, or it is moved back)."""
    verdicts: dict[str, str | None] = {}
    for target in targets:
        refusal = migrate_refusal(view, g, target, default_params(view, g, target), user)
        if refusal is None and ha_managed(view, g) is not None:
            trial = view.copy()
            try:
                ha_request(trial, ha_sid(g), target, "migrate")
            except PveApiError as exc:
                refusal = exc
            else:
                ends = trial.guests[g.vmid].node
                if ends != target:
                    refusal = task_refusal(view, g, target, ha_params(g)) or PveApiError(
                        500, f"not where the HA rules of {ha_sid(g)} place it: HA moves it back to {ends}")
        verdicts[target] = refusal.message if refusal is not None else None
    return verdicts


def _precondition_path(g: Guest) -> str:
    return f"/nodes/{g.node}/{g.kind}/{g.vmid}/migrate"


def read_check(p: CheckParams, view: ClusterModel) -> dict[str, Any]:
    g = _guest(view, p.vmid)
    if p.target is not None and p.target not in view.nodes:
        raise BadInput(f"node '{p.target}' does not exist (see `proximo read node.list`)")
    targets = [p.target] if p.target else [n for n in sorted(view.nodes) if n != g.node]
    verdicts = check_targets(view, g, targets)
    answer: dict[str, Any] = {"vmid": g.vmid, "node": g.node, "running": g.running,
                              "allowed": [t for t, why in verdicts.items() if why is None],
                              "refused": {t: why for t, why in verdicts.items() if why is not None},
                              "local_volumes": [{"volid": v, "size": s} for v, s in local_volume_bytes(view, g)]}
    path = _precondition_path(g)
    if path in view.other:
        pve = view.other[path] or {}
        allowed = sorted(pve.get("allowed_nodes", pve.get("allowed-nodes")) or [])
        answer["proxmox"] = pve
        own = sorted(t for t in answer["allowed"] if not p.target or t == p.target)
        # Proxmox's precondition is about storages and HA only; the model's verdict adds what the task refuses
        theirs = [t for t in allowed if not p.target or t == p.target]
        if set(own) - set(theirs) or (set(theirs) - set(own) - set(answer["refused"])):
            answer["disagreement"] = (f"Proxmox allows {', '.join(theirs) or 'no node'}; the model allows "
                                      f"{', '.join(own) or 'no node'}")
    elif path in view.extra:
        answer["proxmox_unavailable"] = str(view.extra[path].get("error"))
    else:
        try:  # offline: the model's own answer to the same GET
            answer["model_precondition"] = qemu_precondition(view, g) if g.kind == "qemu" else lxc_precondition(view, g)
        except (PveApiError, NotModelled) as exc:  # a lock, mapped devices: said, not guessed
            answer["model_precondition_error"] = str(exc)
    return answer


def plan_migrate(p: MigrateParams, view: ClusterModel) -> Draft:
    g = _guest(view, p.vmid)
    if p.target not in view.nodes:
        raise BadInput(f"node '{p.target}' does not exist (see `proximo read node.list`)")
    given = api_params(p)
    given.pop("vmid")
    params = {**default_params(view, g, p.target), **given}
    if g.kind == "qemu":
        for key in ("restart", "timeout"):
            if key in params:
                raise BadInput(f"guest.migrate: {key}= is for containers; {g.sid} is a VM")
    else:
        for key in ("with-local-disks", "force"):
            if key in params:
                raise BadInput(f"guest.migrate: {key}= is for VMs; {g.sid} is a container")
        if "targetstorage" in params:
            params["target-storage"] = params.pop("targetstorage")
    return Draft(steps=[ApiCall("POST", f"/nodes/{g.node}/{g.kind}/{g.vmid}/migrate", params)], target=g.sid)


def plan_evacuate(p: EvacuateParams, view: ClusterModel) -> Draft:
    if p.node not in view.nodes:
        raise BadInput(f"node '{p.node}' does not exist (see `proximo read node.list`)")
    if p.target is not None and (p.target not in view.nodes or p.target == p.node):
        raise BadInput(f"target '{p.target}' must be another node of the cluster")
    candidates = [p.target] if p.target else [n for n, node in sorted(view.nodes.items()) if n != p.node and node.online]
    free = {n: as_int(view.nodes[n].resource.get("maxmem")) - committed(view, n) for n in candidates}
    steps: list[Step] = []
    blockers: list[str] = []
    notes: list[str] = []
    guests = [g for _, g in sorted(view.guests.items()) if g.node == p.node and (g.running or p.include_stopped)]
    # the biggest running guests first: they have the fewest nodes with room
    for g in sorted(guests, key=lambda g: (-int(g.running), -_memory(g), g.vmid)):
        verdicts = check_targets(view, g, candidates)
        able = [t for t, why in verdicts.items() if why is None]
        if not able:
            reasons = "; ".join(f"{t}: {why}" for t, why in verdicts.items()) or "no other online node"
            (notes if p.leave_unmovable else blockers).append(f"{g.sid} ({g.name}) cannot leave {p.node}: {reasons}")
            continue
        target = max(able, key=lambda t: (free[t], t == p.target, t))
        if g.running:
            free[target] -= _memory(g)
        steps.append(ApiCall("POST", f"/nodes/{p.node}/{g.kind}/{g.vmid}/migrate", default_params(view, g, target)))
        notes.append(f"{g.sid} ({g.name}) -> {target}" + (" (through HA)" if ha_managed(view, g) is not None else ""))
    if not guests:
        raise BadInput(f"node {p.node} has no guests to move{'' if p.include_stopped else ' that run'}")
    stay = [g.sid for _, g in sorted(view.guests.items()) if g.node == p.node and not g.running and not p.include_stopped]
    if stay:
        notes.append(f"stopped guests stay on {p.node}: {', '.join(stay)}")
    notes.append(f"HA's maintenance mode (`ha-manager crm-command node-maintenance enable {p.node}`) has no API call: run "
                 f"it on a node so HA does not move guests back to {p.node} while it is down")
    return Draft(steps=steps, blockers=blockers, notes=notes, target=p.node)


def _live_precondition(p: CheckParams, view: ClusterModel) -> list[str]:
    """Proxmox's own precondition answer (GET .../migrate), where the model says the guest is."""
    g = view.guests.get(p.vmid)
    return [_precondition_path(g)] if g is not None and (g.kind == "qemu" or view.release != "8.4") else []


TOOLS = tool_table(
    read_tool("migrate.check", "Migration check", "Where a guest can migrate: the model's verdict per node (Proxmox's API "
              "and task checks), local volumes with sizes, and Proxmox's own GET .../migrate answer beside it when live.",
              CheckParams, read_check, live_reads=_live_precondition),
    plan_tool("guest.migrate", "Plan: migrate a guest", "Plan moving a VM or container to another node (POST .../migrate): "
              "online for a running VM (with its local disks), restart mode for a running container; HA guests go through HA.",
              MigrateParams, plan_migrate),
    plan_tool("node.evacuate", "Plan: evacuate a node", "Plan moving every guest off a node for maintenance: each to the node "
              "with the most free memory that takes it (or to target=); guests that cannot move block the plan with the reason.",
              EvacuateParams, plan_evacuate),
)
