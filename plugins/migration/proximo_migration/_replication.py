"""Replication jobs: tools, semantics and blast radius.

Proxmox's rules, from pve-guest-common src/PVE/ReplicationConfig.pm, src/PVE/Replication.pm and
src/PVE/ReplicationState.pm, pve-manager PVE/API2/ReplicationConfig.pm, PVE/API2/Replication.pm and PVE/CLI/pvesr.pm:

- A job is ``<vmid>-<n>`` of type ``local``: one guest, one fixed ``target`` node, at most one job per guest and
  target. ``source`` is set to the guest's node on create (for internal use: it detects a stolen guest).
- DELETE only marks the job (``remove_job=full``; ``local`` with ``keep=1``): the job's next run, which pvesr starts
  within a minute, removes the local replication snapshots, with ``full`` also the replicas on the target (``pvesr
  prepare-local-job --force`` there frees the guest's volumes on the scanned zfspool storages), and then the job
  entry. With ``force=1`` the entry goes at once and nothing is cleaned up.
- ``schedule_now`` only sets the job's ``last_try`` in the state file of the node it is sent to (the guest's node
  holds it), so that pvesr runs the job at once; it changes no configuration.

The model is the configuration as the API leaves it: the background runs (syncs and removals) are not simulated,
so a job marked for removal stays in the model, marked, and its replicas stay in ``volumes``; the analysers say what
its run will do. Replica volumes are named from the target's storage contents as read (``ClusterModel.replicas_on``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

import msgspec

from proximo import ApiCall, Draft, Impact, Irreversible, PveApiError, Risk, Step, plan_tool, read_tool, tool_table
from proximo.model import Call, ClusterModel, Guest, as_int, guest_volumes, split_list
from proximo.model._drives import DriveError, is_lxc_volume_key, is_qemu_drive_key, parse_lxc_volume, parse_qemu_drive
from proximo.model._access import builtin_roles
from proximo.model._permissions import Caller
from proximo.params import NodeName, VmId, api_params, described, struct_from_schema

# pve-replication-id is [1-9][0-9]{2,8}-\d{1,9}; ASCII digits only, and no leading zero in the job number (PVE
# would store 104-07 as 104-7: parse_section_header re-reads it as integers)
JobId = Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]{2,8}-(0|[1-9][0-9]{0,8})$", max_length=19,
                                    description="replication job id <guest>-<job number>, e.g. 104-0")]

DEFAULT_SCHEDULE = "*/15"  # ReplicationConfig.pm schedule default
CFG = "/cluster/replication"
# ReplicationConfig::Cluster options: target is fixed and required, the rest optional
_OPTIONS = {"target": "fixed", "disable": "", "comment": "", "rate": "", "schedule": "", "remove_job": "", "source": ""}
# the job's own settings, as a re-create takes them (id, type, guest and jobnum are the job's identity)
_SETTINGS = ("target", "schedule", "rate", "comment", "disable", "remove_job")


def guest_of(jid: str) -> int:
    """ReplicationConfig::parse_replication_job_id: the guest id (PVE's pattern has passed, so it parses)."""
    return int(jid.split("-", 1)[0])


def normalized(jid: str) -> str:
    """The id as PVE writes and re-reads it: both numbers as integers (parse_section_header)."""
    guest, num = jid.split("-", 1)
    return f"{int(guest)}-{int(num)}"


def find_job(model: ClusterModel, jid: str) -> dict[str, Any] | None:
    return next((job for job in model.replication_jobs if str(job.get("id")) == jid), None)


def _marked(job: dict[str, Any] | None, mode: str = "full") -> bool:
    return job is not None and job.get("remove_job") == mode


def _active(job: dict[str, Any]) -> bool:
    """A job that will replicate: not disabled, not marked for removal."""
    return not as_int(job.get("disable")) and not job.get("remove_job")


def _human(size: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


# --- what replication takes of a guest ----------------------------------------------------------------------


def _configs(guest: Guest) -> list[dict[str, Any]]:
    """The config sections get_replicatable_volumes walks that the model holds: the guest's config (pending applied)
    and each snapshot's config that was read."""
    return [guest.config, *guest.snapshot_configs.values()]


def _path_errors(guest: Guest, conf: dict[str, Any]) -> Iterator[str]:
    """get_replicatable_volumes on what is not a storage volume: a QEMU drive on a host path (QemuConfig.pm:
    "unable to replicate local file/device") and an LXC bind or device mount (LXC/Config.pm: "unable to replicate
    mountpoint type"), unless ``replicate=0``."""
    for key, value in conf.items():
        try:
            if guest.kind == "qemu" and is_qemu_drive_key(key):
                drive = parse_qemu_drive(key, str(value))
                if drive.file.startswith("/") and not drive.is_cdrom and drive.options.get("replicate", "1") != "0":
                    yield f"unable to replicate local file/device '{drive.file}'"
            elif guest.kind == "lxc" and is_lxc_volume_key(key) and not key.startswith("unused"):
                mount = parse_lxc_volume(key, str(value))
                if mount.type != "volume" and mount.options.get("replicate", "1") != "0":
                    yield f"unable to replicate mountpoint type '{mount.type}'"
        except DriveError:
            continue  # a config PVE accepted but the model cannot parse: its volumes are judged below, as read


def replicated_volumes(model: ClusterModel, guest: Guest) -> tuple[list[str], list[str]]:
    """The volids replication takes of ``guest`` and PVE's errors (get_replicatable_volumes; the first error refuses a
    create, pve-manager PVE/API2/ReplicationConfig.pm create, and stops every run). When several volumes fail, PVE
    names the first of its own walk; the model's walk may name another."""
    taken: list[str] = []
    errors: list[str] = []
    for conf in _configs(guest):
        errors += _path_errors(guest, conf)
        for vol in guest_volumes(guest.kind, conf):
            verdict = model.replicate_verdict(guest, vol)
            if verdict is True and vol.volid not in taken:
                taken.append(vol.volid)
            elif isinstance(verdict, str):
                errors.append(verdict)
    return taken, list(dict.fromkeys(errors))


def _replicated_size(model: ClusterModel, guest: Guest) -> tuple[int, int]:
    """How many volumes a full sync sends and the bytes their configs record."""
    sizes = {v.volid: v.size or 0 for v in guest.volumes() if model.replicate_verdict(guest, v) is True}
    return len(sizes), sum(sizes.values())


def replicas(model: ClusterModel, job: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The job's replicas on its target, as read (the removal frees the guest's volumes on the zfspool storages it
    scans there, those of its replicated volumes: Replication.pm replicate, pvesr.pm prepare_local_job), and the
    storages whose contents on the target were not read."""
    vmid, target = as_int(job.get("guest")), str(job.get("target"))
    guest = model.guests.get(vmid)
    scanned = {v.storage for v in guest.volumes()} if guest else set()
    named, unread = model.replicas_on(vmid, target)
    usable = lambda sid: sid in scanned and model.storage_problem(sid, target) is None  # noqa: E731
    return [v for v in named if usable(v.split(":", 1)[0])], [sid for sid in unread if usable(sid)]


# --- semantics ----------------------------------------------------------------------------------------------


def _job_or_fail(model: ClusterModel, jid: str, message: str) -> dict[str, Any]:
    job = find_job(model, jid)
    if job is None:
        raise PveApiError(500, message)
    return job


def check_replicate(model: ClusterModel, call: Call, caller: Caller) -> None:
    """Every write checks VM.Replicate on the job's guest first (``$rpcenv->check``, the handlers above): PVE 9's
    privilege (pve-manager c81fe5cc); before it, the schema's Datastore.Allocate on /storage, which the host checks."""
    if "VM.Replicate" not in builtin_roles(model)["Administrator"]:
        return
    caller.check(f"/vms/{guest_of(call.params.get('id') or call.path_params['id'])}", ["VM.Replicate"])


def create(model: ClusterModel, call: Call) -> None:
    p = dict(call.params)
    jid = normalized(str(p.pop("id")))
    vmid = guest_of(jid)
    guest = model.guests.get(vmid)
    target = str(p["target"])
    # pve-manager PVE/API2/ReplicationConfig.pm create, in its order
    if guest is None:
        raise PveApiError(500, f"Guest '{vmid}' does not exist.")
    if target not in model.nodes:
        raise PveApiError(500, f"Target '{target}' does not exist.")
    if p.get("source") is not None and p["source"] != guest.node:
        raise PveApiError(500, f"Source '{p['source']}' does not match current node of guest '{vmid}' ({guest.node})")
    if target == guest.node:
        raise PveApiError(500, "Source and target must not be identical")
    taken, errors = replicated_volumes(model, guest)
    if errors:
        raise PveApiError(500, errors[0])
    if not taken:
        raise PveApiError(500, "No replicatable volumes found")
    if find_job(model, jid) is not None:
        raise PveApiError(500, f"replication job '{jid}' already exists")
    # ReplicationConfig.pm write_config: one job per guest and target (get_unique_target_id: local/<target>)
    if any(as_int(j.get("guest")) == vmid and j.get("target") == target for j in model.replication_jobs):
        raise PveApiError(500, f"replication job for guest '{vmid}' to target 'local/{target}' already exists")
    p.pop("type", None)
    p["source"] = guest.node
    row = {"id": jid, "type": "local", "guest": vmid, "jobnum": int(jid.split("-")[1]), **p}
    # GET /cluster/replication lists the jobs sorted by id (API2/ReplicationConfig.pm index)
    model.replication_jobs[:] = sorted([*model.replication_jobs, row], key=lambda j: str(j.get("id")))


def update(model: ClusterModel, call: Call) -> None:
    jid = call.path_params["id"]
    p = {k: v for k, v in call.params.items() if k not in ("id", "digest", "delete")}
    job = _job_or_fail(model, jid, f"no such job '{jid}'")  # API2/ReplicationConfig.pm update
    deletes = split_list(call.params.get("delete"))
    for key in deletes:  # checked before anything is written: the handler dies inside the lock
        kind = _OPTIONS.get(key)
        if kind is None:
            raise PveApiError(500, f"no such option '{key}'")
        if kind == "fixed":  # target: required (checked first) and fixed
            raise PveApiError(500, f"unable to delete required option '{key}'")
    job.update(p)
    for key in deletes:
        job.pop(key, None)


def delete(model: ClusterModel, call: Call) -> None:
    jid = call.path_params["id"]
    p = call.params
    # API2/ReplicationConfig.pm delete
    if as_int(p.get("force")):
        if as_int(p.get("keep")):
            raise PveApiError(400, "Parameter verification failed.", {"keep": "conflicts with parameter 'force'"})
        model.replication_jobs[:] = [j for j in model.replication_jobs if str(j.get("id")) != jid]
        return
    job = _job_or_fail(model, jid, f"no such job '{jid}'")
    job["remove_job"] = "full" if not as_int(p.get("keep")) and job.get("type", "local") == "local" else "local"


def _state_rows(model: ClusterModel, node: str) -> list[dict[str, Any]] | None:
    """GET /nodes/{node}/replication as read (the node's replication state file, with each job's config); None:
    not read."""
    rows = model.other.get(f"/nodes/{node}/replication")
    return rows if isinstance(rows, list) else None


def schedule_now(model: ClusterModel, call: Call) -> None:
    node = model.node(call.path_params["node"]).name  # proxyto node
    jid = call.path_params["id"]
    _job_or_fail(model, jid, f"no such replication job '{jid}'")  # API2/Replication.pm schedule_now
    # ReplicationState.pm schedule_job_now: last_try := 0 in the state this node holds; none there: nothing changes
    rows = _state_rows(model, node)
    if rows is not None:
        model.other[f"/nodes/{node}/replication"] = [{**row, "last_try": 0} if row.get("id") == jid else row for row in rows]


# --- undo ---------------------------------------------------------------------------------------------------


def _recreate(job: dict[str, Any]) -> ApiCall:
    """The POST that re-creates a job as it was (its source is the guest's node, which the create sets)."""
    return ApiCall("POST", CFG, {"id": str(job["id"]), "type": "local",
                                 **{k: job[k] for k in _SETTINGS if job.get(k) is not None}})


def _removal_is_final(before: ClusterModel, jid: str, mode: str) -> Irreversible:
    """A job marked for removal cannot be had back: its next run, within a minute, does the removal."""
    job = find_job(before, jid) or {}
    target = job.get("target", "its target")
    if mode == "full":
        named, _ = replicas(before, job)
        what = f"deletes the replicas on {target}" + (f" ({', '.join(named)})" if named else "")
        again = "re-creating the job (replication.create) copies every volume in full again"
    else:
        what = f"removes the local replication snapshots (the replicas on {target} stay, unmanaged)"
        again = (f"a new job to {target} fails its first run ('No common base snapshot') until those volumes are "
                 f"removed from {target}")
    return Irreversible(f"replication job {jid} is marked for removal: its next run (pvesr, within a minute) {what} "
                        f"and then the job itself, so no undo can bring them back; {again}")


def _create_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    # a plain delete: the job's next run also removes the replicas it made on the target by then
    return [ApiCall("DELETE", f"{CFG}/{normalized(str(call.params['id']))}")]


def _update_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    jid = call.path_params["id"]
    old = find_job(before, jid) or {}
    if call.params.get("remove_job") and not old.get("remove_job"):
        return _removal_is_final(before, jid, str(call.params["remove_job"]))
    changed = [k for k in call.params if k not in ("id", "digest", "delete")]
    deleted = split_list(call.params.get("delete"))
    params: dict[str, Any] = {k: old[k] for k in sorted({*changed, *deleted}) if k in old}
    added = sorted(k for k in changed if k not in old)
    if added:
        params["delete"] = ",".join(added)
    return [ApiCall("PUT", f"{CFG}/{jid}", params)] if params else []


def _delete_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    jid = call.path_params["id"]
    job = find_job(before, jid)
    if as_int(call.params.get("force")):
        # only the entry went: both sides kept their replication snapshots, so the re-created job resumes
        return [_recreate(job)] if job else []
    return _removal_is_final(before, jid, "local" if as_int(call.params.get("keep")) else "full")


def _schedule_now_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    return Irreversible("schedule_now starts a replication run, which cannot be taken back (it changes no configuration)")


# --- notes: what no state diff shows --------------------------------------------------------------------------


def _create_notes(before: ClusterModel, call: Call) -> list[str]:
    guest = before.guests.get(guest_of(str(call.params["id"])))
    if guest is None:
        return []
    count, size = _replicated_size(before, guest)
    return [f"The job's first run (schedule {call.params.get('schedule', DEFAULT_SCHEDULE)}) copies {count} volume"
            f"{'s' if count != 1 else ''} of {guest.sid} in full to {call.params['target']} ({_human(size)} as the config "
            "records it); later runs send only what changed."]


def _delete_notes(before: ClusterModel, call: Call) -> list[str]:
    jid = call.path_params["id"]
    job = find_job(before, jid)
    if job is None:
        return []
    target = job.get("target")
    if as_int(call.params.get("force")):
        return [f"force=1 removes only the job entry: no cleanup runs, so the replication snapshots on the guest's "
                f"volumes and its replicas on {target} stay."]
    if as_int(call.params.get("keep")):
        return [f"keep=1: the job's next run removes only the local replication snapshots; the replicas on {target} "
                f"stay there, unmanaged."]
    return []


def _schedule_now_notes(before: ClusterModel, call: Call) -> list[str]:
    jid, node = call.path_params["id"], call.path_params["node"]
    job = find_job(before, jid)
    guest = before.guests.get(guest_of(jid))
    if job is None:
        return []
    if guest is not None and guest.node != node:
        return [f"The job's state lives on {guest.sid}'s node {guest.node}: on {node} Proxmox finds none and changes nothing."]
    if job.get("remove_job"):
        return [f"Job {jid} is marked for removal (remove_job={job['remove_job']}): the run it starts is the removal."]
    if as_int(job.get("disable")):
        return [f"Job {jid} is disabled: pvesr skips it, so nothing runs until it is enabled."]
    return [f"pvesr on {node} runs job {jid} within a minute: it sends what changed since the last sync to "
            f"{job.get('target')}; no configuration changes."]


def register_all(register: Callable[..., None]) -> None:
    # the id's format (pve-replication-job-id) is parse_replication_job_id, which PVE's pattern already implies
    register("POST", CFG, create, inverse=_create_inverse, notes=_create_notes, check=check_replicate, verifies=("id",))
    register("PUT", f"{CFG}/{{id}}", update, inverse=_update_inverse, check=check_replicate, verifies=("id",))
    register("DELETE", f"{CFG}/{{id}}", delete, inverse=_delete_inverse, notes=_delete_notes, check=check_replicate,
             verifies=("id",))
    register("POST", "/nodes/{node}/replication/{id}/schedule_now", schedule_now, inverse=_schedule_now_inverse,
             notes=_schedule_now_notes, check=check_replicate, verifies=("id",))


# --- blast radius: a pure diff of two models ------------------------------------------------------------------


def removed_replicas(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Jobs newly marked for full removal: their next run deletes the guest's replicas on the target (data-loss).

    Not when the guest is gone (job_status skips the job, so nothing runs) or runs on the target itself (replicate
    skips the remote cleanup when the target is the local node)."""
    for job in after.replication_jobs:
        jid = str(job.get("id"))
        if not _marked(job) or _marked(find_job(before, jid)):
            continue
        guest = after.guests.get(as_int(job.get("guest")))
        target = str(job.get("target"))
        if guest is None or guest.node == target:
            continue
        named, unread = replicas(after, job)
        if not named and not unread:
            continue  # nothing of the guest's on the target's replicated storages: no replica to lose
        run = f"replication job {jid} is marked for removal: its next run (pvesr, within a minute) deletes"
        for volid in named:
            yield Impact(f"volume/{volid}", "data-loss",
                         f"{run} {volid}, the replica of {guest.sid} on {target} (the copy a recovery on {target} starts from)")
        if unread:
            yield Impact(f"replication/{jid}", "data-loss",
                         f"{run} the replicas of {guest.sid} on {target}; the contents of {', '.join(unread)} on {target} "
                         "were not read, so Proximo cannot name them")


def failing_jobs(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Jobs that will not replicate after and did before: disabled, their target gone from the cluster, or new jobs
    whose volumes cannot be activated on the source or the target (PVE checks neither at create).

    A volume that stops resolving or being replicable in an existing job is the storage pack's (``replication_jobs``,
    on the same ClusterModel.replication_problem)."""
    for job in after.replication_jobs:
        jid, target = str(job.get("id")), str(job.get("target"))
        old = find_job(before, jid)
        if job.get("remove_job"):
            continue
        if as_int(job.get("disable")) and old is not None and not as_int(old.get("disable")):
            yield Impact(f"replication/{jid}", "replication-fails",
                         f"replication job {jid} (-> {target}) is disabled: it does not run until enabled, and the "
                         f"replica on {target} ages from its last sync", risk=Risk.MEDIUM)
            continue
        if as_int(job.get("disable")):
            continue
        if target not in after.nodes and target in before.nodes:
            yield Impact(f"replication/{jid}", "replication-fails",
                         f"replication job {jid}: its target {target} is no longer a cluster node; every run fails")
            continue
        guest = after.guests.get(as_int(job.get("guest")))
        if old is not None or guest is None:
            continue
        broken = sorted({f"{vol.key} on {vol.storage}: {problem}" for vol in guest.volumes() for node in (guest.node, target)
                         if (problem := after.replication_problem(guest, vol, node))})
        if broken:
            yield Impact(f"replication/{jid}", "replication-fails",
                         f"replication job {jid} ({guest.node} -> {target}): its first run fails: " + "; ".join(broken))


def target_changes(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """A job whose target changes sends every volume in full to the new target (no replication snapshot is shared
    there); the old target keeps its replicas, which no job removes. Not the switch a migration to the target makes
    (the old source becomes the target: ReplicationConfig.pm switch_replication_job_target_nolock), whose next run
    is incremental."""
    for job in after.replication_jobs:
        jid, target = str(job.get("id")), str(job.get("target"))
        old = find_job(before, jid)
        was = before.guests.get(as_int(job.get("guest")))
        guest = after.guests.get(as_int(job.get("guest")))
        if old is None or guest is None or old.get("target") == target or (was is not None and was.node == target):
            continue
        count, size = _replicated_size(after, guest)
        yield Impact(f"replication/{jid}", "degraded",
                     f"replication job {jid} now targets {target} instead of {old.get('target')}: its next run sends "
                     f"{count} volume{'s' if count != 1 else ''} ({_human(size)}) in full; until it completes "
                     f"{guest.sid} has no current replica on {target}, and the replicas on {old.get('target')} stay there",
                     risk=Risk.MEDIUM)


def unprotected_guests(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Guests that had a working replication job and have none after (removed, marked, or disabled): no copy of their
    local disks on another node. HIGH for an HA-managed guest, whose recovery on another node needs one."""
    def protected(model: ClusterModel) -> set[int]:
        return {as_int(j.get("guest")) for j in model.replication_jobs if _active(j)}

    ha = {str(r.get("sid", "")).partition(":")[2] for r in after.ha_resources if r.get("state") != "ignored"}
    for vmid in sorted(protected(before) - protected(after)):
        guest = after.guests.get(vmid)
        if guest is None:
            continue  # destroyed: the guests pack reports it
        managed = str(vmid) in ha
        yield Impact(guest.sid, "degraded",
                     f"{guest.sid} is left without any working replication job: no copy of its local disks is kept on "
                     "another node" + ("; HA recovers it on another node after a failure, where its disks are missing"
                                       if managed else ""), risk=None if managed else Risk.MEDIUM)


def impacts(change: Any, before: ClusterModel, after: ClusterModel) -> list[Impact]:
    if before.replication_jobs == after.replication_jobs and before.nodes.keys() == after.nodes.keys():
        return []  # every rule below starts from a job that changed, or a node that left
    return [*removed_replicas(before, after), *failing_jobs(before, after), *target_changes(before, after),
            *unprotected_guests(before, after)]


# --- tools --------------------------------------------------------------------------------------------------


def _with_id(name: str, method: str, template: str, exclude: tuple[str, ...]) -> type[msgspec.Struct]:
    """The endpoint's parameters (struct_from_schema) with ``id`` as JobId: PVE's pattern takes other scripts' digits."""
    base = struct_from_schema(f"_{name}", method, template, exclude=("id", *exclude))
    return msgspec.defstruct(name, [("id", JobId)], bases=(base,), kw_only=True, frozen=True, forbid_unknown_fields=True,
                             module=__name__)


# type is always local; source is internal (the create sets it); remove_job is what replication.delete does
ReplicationCreateParams = _with_id("ReplicationCreateParams", "POST", CFG, ("type", "source", "remove_job"))
ReplicationUpdateParams = _with_id("ReplicationUpdateParams", "PUT", f"{CFG}/{{id}}", ("source", "remove_job"))
ReplicationDeleteParams = _with_id("ReplicationDeleteParams", "DELETE", f"{CFG}/{{id}}", ())


class ReplicationListParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    guest: VmId | None = None
    node: NodeName | None = None


class ScheduleNowParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: JobId
    node: NodeName | None = None


described(ReplicationListParams, fields={"guest": "only this guest's jobs",
                                         "node": "only the jobs of guests on this node (its replication state is read live)"})
described(ScheduleNowParams, pve=(("POST", "/nodes/{node}/replication/{id}/schedule_now"),),
          fields={"node": "the node to send it to (default: the guest's node, which holds the job's state)"})


def _live_state(p: ReplicationListParams, view: ClusterModel) -> list[str]:
    return [f"/nodes/{p.node}/replication"] if p.node else []


def _row(view: ClusterModel, job: dict[str, Any]) -> dict[str, Any]:
    vmid, target = as_int(job.get("guest")), str(job.get("target"))
    guest = view.guests.get(vmid)
    row: dict[str, Any] = {
        "id": job.get("id"), "guest": vmid, "guest_type": guest.kind if guest else None, "name": guest.name if guest else None,
        "node": guest.node if guest else None, "source": job.get("source"), "target": target,
        "schedule": job.get("schedule", DEFAULT_SCHEDULE), "rate": job.get("rate"), "disable": as_int(job.get("disable")),
        "comment": job.get("comment"), "remove_job": job.get("remove_job"),
    }
    state = next((r for r in _state_rows(view, guest.node) or [] if r.get("id") == job.get("id")), None) if guest else None
    if state is not None:
        row.update({k: state[k] for k in ("last_sync", "last_try", "next_sync", "fail_count", "error", "duration") if k in state})
    elif guest is not None and isinstance(err := view.extra.get(f"/nodes/{guest.node}/replication", {}).get("error"), str):
        row["state"] = f"not read: {err}"
    else:
        row["state"] = f"not read (replication.list node={guest.node} reads it)" if guest else "not read"
    if guest is not None:
        row["replicated_volumes"], errors = replicated_volumes(view, guest)
        problems = [*errors, *sorted({p for v in guest.volumes() for n in (guest.node, target)
                                      if (p := view.replication_problem(guest, v, n)) and p not in errors})]
        if target not in view.nodes:
            problems.append(f"target {target} is not a cluster node")
        if problems:
            row["problems"] = problems
    row["replicas_on_target"] = replicas(view, job)[0]
    return {k: v for k, v in row.items() if v is not None}


def read_list(p: ReplicationListParams, view: ClusterModel) -> list[dict[str, Any]]:
    rows = []
    for job in view.replication_jobs:
        guest = view.guests.get(as_int(job.get("guest")))
        if p.guest is not None and as_int(job.get("guest")) != p.guest:
            continue
        if p.node is not None and (guest is None or guest.node != p.node):
            continue
        rows.append(_row(view, job))
    return rows


def plan_create(p: Any, view: ClusterModel) -> Draft:
    params = {"type": "local", **api_params(p)}
    return Draft(steps=[ApiCall("POST", CFG, params)], target=str(params["id"]))


def plan_update(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    jid = str(params.pop("id"))
    return Draft(steps=[ApiCall("PUT", f"{CFG}/{jid}", params)], target=jid)


def plan_delete(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    jid = str(params.pop("id"))
    return Draft(steps=[ApiCall("DELETE", f"{CFG}/{jid}", params)], target=jid)


def plan_schedule_now(p: ScheduleNowParams, view: ClusterModel) -> Draft:
    guest = view.guests.get(guest_of(p.id))
    # the guest's node holds the job's state; for a guest that does not exist any node answers alike
    node = p.node or (guest.node if guest else min(view.nodes))
    return Draft(steps=[ApiCall("POST", f"/nodes/{node}/replication/{p.id}/schedule_now")], target=p.id)


TOOLS = tool_table(
    msgspec.structs.replace(read_tool("replication.list", "Replication jobs",
              "Replication jobs (GET /cluster/replication) with each job's guest, its node, target, schedule, "
              "the volumes it replicates, its replicas on the target, what would make it fail, and its state (last "
              "sync, failures) where the node's replication status was read (given node=, it is read live).",
              ReplicationListParams, read_list, columns=("id", "guest", "node", "target", "schedule", "disable", "state")),
        live_reads=_live_state),
    plan_tool("replication.create", "Plan: create replication job",
              "Plan a replication job (POST /cluster/replication): guest <id's vmid> to node <target> every "
              "<schedule> (default */15). Only local zfspool volumes replicate; Proxmox refuses a guest with any other "
              "local volume. The first run copies everything in full.", ReplicationCreateParams, plan_create),
    plan_tool("replication.update", "Plan: update replication job",
              "Plan a change to a replication job (PUT /cluster/replication/{id}): schedule, rate, comment, disable. "
              "The target is fixed: delete the job and create one to the new target.", ReplicationUpdateParams, plan_update),
    plan_tool("replication.delete", "Plan: delete replication job",
              "Plan removing a replication job (DELETE /cluster/replication/{id}). Without force the job is marked and "
              "its next run deletes its replicas on the target (keep=1: they stay) and then itself: data-loss of those "
              "copies, named, and no undo. force=1 drops the entry at once with no cleanup (undo re-creates it).",
              ReplicationDeleteParams, plan_delete),
    plan_tool("replication.schedule_now", "Plan: run replication job now",
              "Plan running a replication job at once (POST /nodes/{node}/replication/{id}/schedule_now, on the guest's "
              "node by default). Changes no configuration.", ScheduleNowParams, plan_schedule_now),
)
