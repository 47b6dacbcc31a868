"""What the backup endpoints do to a cluster, after pve-manager and pve-storage.

- ``POST /nodes/{node}/vzdump`` (pve-manager PVE/API2/VZDump.pm, PVE/VZDump.pm): backs up the selected guests that
  live on ``node`` (others are skipped; ``get_included_guests``), to ``storage`` (default ``local``), which must
  allow content ``backup`` (``storage_info``: "can't use storage ... for backups - wrong content type") and be
  usable on the node; then prunes each guest's backups on that storage by the retention in force (``remove``).
  ``stop`` mode on an HA-managed started guest dies. A worker's failures are refused here, at plan time.
- ``/cluster/backup`` jobs (PVE/API2/Backup.pm): create (``Job '<id>' already exists``), update (the selection
  keys replace each other), delete.
- ``DELETE .../content/{volume}`` (pve-storage API2/Storage/Content.pm delete -> vdisk_free): a protected backup
  is not removed ("cannot remove protected volume"); ``PUT`` sets ``notes`` and ``protected``
  (update_volume_attribute: ``max-protected-backups``, default 5 for a caller without Datastore.Allocate).
- ``DELETE .../prunebackups`` (API2/Storage/PruneBackups.pm): prune_backups, not a dry run.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

from proximo import ApiCall, Irreversible, NotModelled, PveApiError, Step
from proximo.model import Call, ClusterModel, Guest, as_int, job_guests, job_retention, parse_keep, prune_list, split_list
from proximo.model._backups import check_keep
from proximo.model._permissions import Caller

_COMPRESS_EXT = {"0": "", "gzip": ".gz", "1": ".lzo", "lzo": ".lzo", "zstd": ".zst"}
_DEFAULT_MAX_PROTECTED = 5  # pve-storage Storage.pm get_max_protected_backups, for a caller without Datastore.Allocate
SELECTION = ("vmid", "all", "pool", "exclude")


def decode_volume(call: Call) -> str:
    """The volume path parameter: a volume id whose slash arrives as %2F (as Proxmox clients send it)."""
    return call.path_params["volume"].replace("%2F", "/")


def volume_path(node: str, volid: str) -> str:
    """The content path of a backup volume, its slash encoded."""
    return f"/nodes/{node}/storage/{volid.partition(':')[0]}/content/{volid.replace('/', '%2F')}"


def usable_for_backup(model: ClusterModel, sid: str, node: str) -> str | None:
    """Why ``sid`` cannot take a backup of a guest on ``node`` (PVE's words), or None."""
    problem = model.storage_problem(sid, node)
    if problem:
        return problem
    if "backup" not in model.storage_content(sid):
        return f"can't use storage '{sid}' for backups - wrong content type"
    return None


def _backup_size(model: ClusterModel, g: Guest) -> int:
    """The model's size of a new backup: what its volumes hold (their size as listed; compression is not modelled)."""
    total = 0
    for vol in g.volumes():
        if vol.role in ("cdrom", "cloudinit"):
            continue
        total += vol.size or 0
    return total


def _config_text(g: Guest) -> str:
    """The config vzdump stores in the archive: the guest's current config, no snapshots, nothing pending."""
    bare = Guest(vmid=g.vmid, kind=g.kind, node=g.node, resource=g.resource,
                 config={k: v for k, v in g.current_config().items() if k not in ("digest", "lock")})
    return bare.file_text()


def new_backup_volid(model: ClusterModel, sid: str, g: Guest, at: int, compress: str) -> tuple[str, str]:
    """(volid, format) of a new backup: pve-storage's standard name on a file storage, a PBS snapshot on PBS."""
    stamp = dt.datetime.fromtimestamp(at, dt.UTC)
    if model.storages[sid].get("type") == "pbs":
        kind = "vm" if g.kind == "qemu" else "ct"
        return f"{sid}:backup/{kind}/{g.vmid}/{stamp.strftime('%Y-%m-%dT%H:%M:%SZ')}", f"pbs-{kind}"
    base = "vma" if g.kind == "qemu" else "tar"
    fmt = base + _COMPRESS_EXT.get(compress, ".zst")
    return f"{sid}:backup/vzdump-{g.kind}-{g.vmid}-{stamp.strftime('%Y_%m_%d-%H_%M_%S')}.{fmt}", fmt


def _prune_guest(model: ClusterModel, sid: str, g: Guest, keep: dict[str, int]) -> list[str]:
    bucket = model.volumes_on(sid, g.node)
    marks = prune_list(list(bucket.values()), keep, vmid=g.vmid, kind=g.kind)
    gone = [e["volid"] for e in marks if e.get("mark") == "remove"]
    for volid in gone:
        _drop_backup(model, volid)
    return gone


def _drop_backup(model: ClusterModel, volid: str) -> None:
    for by_node in model.volumes.get(volid.partition(":")[0], {}).values():
        by_node.pop(volid, None)
    model.backup_configs.pop(volid, None)


def verified_keep(call: Call) -> dict[str, int] | None:
    """The call's ``prune-backups``, checked as PVE's parameter verification checks its format (None: not given)."""
    value = call.params.get("prune-backups")
    if value is None:
        return None
    try:
        return check_keep(value)
    except ValueError as exc:
        raise PveApiError(400, "Parameter verification failed.", {"prune-backups": str(exc)}) from None


def vzdump(model: ClusterModel, call: Call) -> str:
    p = call.params
    given = verified_keep(call)
    node = call.path_params["node"]
    model.node(node)
    _check_selection(p)  # API2/VZDump.pm vzdump: verify_vzdump_parameters($param, 1)
    if p.get("stdout") or p.get("dumpdir"):
        raise NotModelled("vzdump to stdout or a dumpdir is not modelled: give a storage")
    chosen = job_guests(model, p)
    local = [g for g in chosen if g.node == node]
    missing = [v for v in split_list(p.get("vmid")) if as_int(v, -1) not in model.guests]
    if not local and not missing and not as_int(p.get("all")):
        return "OK"  # "silent exit if specified VMs run on other nodes"
    if missing:
        raise PveApiError(500, f"unable to find VM '{missing[0]}'")  # PVE/VZDump.pm exec_backup_task, for each one
    sid = str(p.get("storage") or "local")
    if sid not in model.storages:
        raise PveApiError(500, f"could not get storage information for '{sid}': storage '{sid}' does not exist")
    problem = usable_for_backup(model, sid, node)
    if problem:
        raise PveApiError(500, f"could not get storage information for '{sid}': {problem}")
    mode = str(p.get("mode") or "snapshot")
    for g in local:
        ha = next((r for r in model.ha_resources if r.get("sid") in (f"vm:{g.vmid}", f"ct:{g.vmid}", str(g.vmid))), None)
        if mode == "stop" and ha is not None and ha.get("state", "started") == "started":
            raise PveApiError(500, "Cannot execute a backup with stop mode on a HA managed and enabled Service. "
                                   "Use snapshot mode or disable the Service.")
    keep = given if given is not None else job_retention(model, {"storage": sid})
    at = int(time.time())
    log = [f"INFO: starting new backup job: vzdump {' '.join(str(g.vmid) for g in local)} --storage {sid} --mode {mode}"]
    for g in local:
        volid, fmt = new_backup_volid(model, sid, g, at, str(p.get("compress") or "zstd"))
        row: dict[str, Any] = {"volid": volid, "content": "backup", "ctime": at, "format": fmt,
                               "size": _backup_size(model, g), "subtype": g.kind, "vmid": g.vmid}
        if p.get("notes-template"):
            row["notes"] = str(p["notes-template"]).replace("{{guestname}}", g.name).replace("{{vmid}}", str(g.vmid)) \
                .replace("{{node}}", g.node).replace("{{cluster}}", "")
        if as_int(p.get("protected")):
            row["protected"] = 1
        model.volumes_on(sid, g.node)[volid] = row
        model.backup_configs[volid] = _config_text(g)
        log.append(f"INFO: creating vzdump archive '{volid}'")
        if as_int(p.get("remove", 1)) and not as_int(keep.get("keep-all")):
            log += [f"INFO: removing backup '{v}'" for v in _prune_guest(model, sid, g, keep)]
    return model.start_task(node, "vzdump", str(local[0].vmid) if len(local) == 1 else "", call.user, log=log)


# --- jobs ------------------------------------------------------------------------------------------------


def _job(model: ClusterModel, jid: str) -> dict[str, Any]:
    for job in model.backup_jobs:
        if str(job.get("id")) == jid:
            return job
    raise PveApiError(400, "Parameter verification failed.", {"id": f"No such job '{jid}'"})


def _check_selection(job: dict[str, Any]) -> None:
    """PVE/VZDump.pm verify_vzdump_parameters(..., 1): a job selects something, one way."""
    if job.get("vmid") and (as_int(job.get("all")) or job.get("pool")):
        raise PveApiError(400, "Parameter verification failed.", {"vmid": "option conflicts with option 'all'/'pool'"})
    if not job.get("vmid") and not as_int(job.get("all")) and not job.get("pool"):
        raise PveApiError(400, "Parameter verification failed.", {"vmid": "property is missing and it is not optional"})
    if job.get("exclude") and not as_int(job.get("all")):
        raise PveApiError(400, "Parameter verification failed.", {"exclude": "option conflicts with option 'vmid'"})


def job_create(model: ClusterModel, call: Call) -> None:
    verified_keep(call)
    p = dict(call.params)
    if p.get("starttime") or p.get("dow"):
        raise NotModelled("legacy starttime/dow jobs are not modelled: give a schedule")
    if not p.get("schedule"):
        raise PveApiError(400, "Parameter verification failed.", {"schedule": "neither 'starttime' nor 'schedule' were set"})
    if p.get("pool") and str(p["pool"]) not in model.pools:
        raise PveApiError(500, f"pool '{p['pool']}' does not exist")
    jid = str(p.pop("id", None) or uuid.uuid4())
    if any(str(j.get("id")) == jid for j in model.backup_jobs):
        raise PveApiError(500, f"Job '{jid}' already exists")
    _check_selection(p)
    p.setdefault("enabled", 1)
    model.backup_jobs.append({"id": jid, "type": "vzdump", **p})


def job_update(model: ClusterModel, call: Call) -> None:
    verified_keep(call)
    p = {k: v for k, v in call.params.items() if k not in ("id", "delete")}
    deleted = split_list(call.params.get("delete"))
    if not p and not deleted:
        raise PveApiError(500, "no options specified")
    job = _job(model, call.path_params["id"])
    for key in deleted:
        job.pop(key, None)
    job.update(p)
    if job.get("exclude") is not None and not job.get("pool"):
        job["all"] = 1
    if "vmid" in p:  # the selection keys replace each other (Backup.pm update_job)
        for key in ("all", "exclude", "pool"):
            job.pop(key, None)
    elif as_int(p.get("all")):
        for key in ("vmid", "pool"):
            job.pop(key, None)
    elif job.get("pool"):
        for key in ("vmid", "all", "exclude"):
            job.pop(key, None)
    _check_selection(job)


def job_delete(model: ClusterModel, call: Call) -> None:
    job = _job(model, call.path_params["id"])
    model.backup_jobs.remove(job)


def _job_create_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    if not call.params.get("id"):
        return Irreversible("the job's id is generated by Proxmox (a UUID): give id= so the undo can name it")
    return [ApiCall("DELETE", f"/cluster/backup/{call.params['id']}")]


def _recreate(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(job.items()) if k not in ("type", "next-run")}


def _job_update_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    """The job as it was: its values again (a selection key given replaces the new one, as update_job does), and
    ``delete`` for the options the change added."""
    old = _job(before, call.path_params["id"])
    params = {k: v for k, v in _recreate(old).items() if k != "id"}
    added = sorted({k for k in call.params if k not in ("id", "delete", *SELECTION)} - set(old))
    if added:
        params["delete"] = ",".join(added)
    return [ApiCall("PUT", call.path, params)]


def _job_delete_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    return [ApiCall("POST", "/cluster/backup", _recreate(_job(before, call.path_params["id"])))]


# --- backup volumes ----------------------------------------------------------------------------------------


def _backup_row(model: ClusterModel, call: Call) -> tuple[str, dict[str, Any]]:
    sid, node = call.path_params["storage"], call.path_params["node"]
    volid = decode_volume(call)
    if ":" in volid and volid.partition(":")[0] != sid:
        raise PveApiError(400, "Parameter verification failed.",
                          {"volume": f"storage ID mismatch ({volid.partition(':')[0]} != {sid})"})
    if ":" not in volid:
        volid = f"{sid}:{volid}"
    model.storage(sid)
    problem = model.storage_problem(sid, node)
    if problem:
        raise PveApiError(500, problem)
    row = model.volumes_on(sid, node).get(volid)
    if row is None:
        raise PveApiError(500, f"volume '{volid}' does not exist")
    if row.get("content") != "backup":
        raise NotModelled("only backup volumes' content calls are modelled (deleting or editing another volume is not)")
    return volid, row


def content_delete(model: ClusterModel, call: Call) -> str:
    volid, row = _backup_row(model, call)
    if as_int(row.get("protected")):
        # Plugin.pm free_image, in the worker: the task fails and the backup stays
        raise PveApiError(500, f"cannot remove protected volume '{volid.partition(':')[2]}' on '{volid.partition(':')[0]}'")
    _drop_backup(model, volid)
    owner = row.get("vmid")
    return model.start_task(call.path_params["node"], "imgdel", f"{owner}@{volid.partition(':')[0]}" if owner else volid.partition(":")[0],
                            call.user, log=[f"Removed volume '{volid}'"])


def _max_protected(model: ClusterModel, sid: str, caller_can_allocate: bool) -> int:
    cfg = model.storages[sid]
    if cfg.get("max-protected-backups") is not None:
        return as_int(cfg["max-protected-backups"])
    return -1 if caller_can_allocate else _DEFAULT_MAX_PROTECTED


def content_update(model: ClusterModel, call: Call) -> None:
    volid, row = _backup_row(model, call)
    p = call.params
    if as_int(p.get("protected")) and not as_int(row.get("protected")) and row.get("vmid") is not None:
        can_allocate = Caller(model, call.user).check(f"/storage/{volid.partition(':')[0]}", ["Datastore.Allocate"], noerr=True)
        limit = _max_protected(model, volid.partition(":")[0], can_allocate)
        same = [r for r in model.volumes_on(volid.partition(":")[0], call.path_params["node"]).values()
                if r.get("content") == "backup" and as_int(r.get("vmid"), -1) == as_int(row.get("vmid"))
                and as_int(r.get("protected")) and (not row.get("subtype") or r.get("subtype") == row.get("subtype"))]
        if limit > -1 and limit <= len(same):
            raise PveApiError(500, f"The number of protected backups per guest is limited to {limit} on storage '{volid.partition(':')[0]}'")
    if "notes" in p:
        if p["notes"]:
            row["notes"] = str(p["notes"])
        else:
            row.pop("notes", None)
    if "protected" in p:
        if as_int(p["protected"]):
            row["protected"] = 1
        else:
            row.pop("protected", None)


def _content_update_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    _, row = _backup_row(before, call)
    params: dict[str, Any] = {}
    if "notes" in call.params:
        params["notes"] = row.get("notes", "")
    if "protected" in call.params:
        params["protected"] = 1 if as_int(row.get("protected")) else 0
    return [ApiCall("PUT", call.path, params)] if params else []


def prune(model: ClusterModel, call: Call) -> str:
    sid, node = call.path_params["storage"], call.path_params["node"]
    cfg = model.storage(sid)
    if "backup" not in model.storage_content(sid):
        raise PveApiError(500, f"storage '{sid}' does not support backups")
    problem = model.storage_problem(sid, node)
    if problem:
        raise PveApiError(500, problem)
    given = verified_keep(call)
    keep = given if given is not None else parse_keep(cfg.get("prune-backups"))
    if given is None and not cfg.get("prune-backups"):
        raise PveApiError(500, f"no prune-backups options configured for storage '{sid}'")
    vmid = as_int(call.params["vmid"]) if call.params.get("vmid") is not None else None
    marks = prune_list(list(model.volumes_on(sid, node).values()), keep, vmid=vmid, kind=call.params.get("type"))
    gone = [e["volid"] for e in marks if e.get("mark") == "remove"]
    for volid in gone:
        _drop_backup(model, volid)
    return model.start_task(node, "prunebackups", (f"{vmid}@" if vmid is not None else "") + sid, call.user,
                            log=[f"removing backup '{v}'" for v in gone])


# --- the handlers' own permission checks (beyond the schema's ``user => 'all'``) ------------------------------


def _check_common(call: Call, caller: Caller) -> None:
    """pve-manager API2/Backup.pm assert_param_permission_common (root@pam passes everything)."""
    if caller.is_root:
        return
    for key in ("tmpdir", "dumpdir", "script", "job-id"):
        if key in call.params:
            raise PveApiError(400, "Parameter verification failed.", {key: "Only root may set this option."})
    if any(call.params.get(k) is not None for k in ("bwlimit", "ionice", "performance")):
        caller.check("/", ["Sys.Modify"])


def check_vzdump(model: ClusterModel, call: Call, caller: Caller) -> None:
    """API2/VZDump.pm: assert_param_permission_vzdump, Datastore.AllocateSpace on the storage; then VM.Backup on each
    guest it backs up (PVE/VZDump.pm exec_backup checks each one)."""
    _check_common(call, caller)
    sid = str(call.params.get("storage") or "local")
    if call.params.get("prune-backups") is not None:
        caller.check(f"/storage/{sid}", ["Datastore.Allocate"])
    caller.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])
    for g in job_guests(model, call.params):
        if g.node == call.path_params["node"]:
            caller.check(f"/vms/{g.vmid}", ["VM.Backup"])


def check_job_create(model: ClusterModel, call: Call, caller: Caller) -> None:
    """API2/Backup.pm create_job: the pool's VM.Backup, assert_param_permission_create (Datastore.Allocate)."""
    _check_common(call, caller)
    if call.params.get("pool"):
        caller.check(f"/pool/{call.params['pool']}", ["VM.Backup"])
    caller.check(f"/storage/{call.params.get('storage') or 'local'}", ["Datastore.Allocate"])


def check_job_update(model: ClusterModel, call: Call, caller: Caller) -> None:
    """API2/Backup.pm update_job: assert_param_permission_update (a new or removed storage: Datastore.Allocate)."""
    _check_common(call, caller)
    if call.params.get("storage"):
        caller.check(f"/storage/{call.params['storage']}", ["Datastore.Allocate"])


def _owner(model: ClusterModel, call: Call) -> int | None:
    row = model.volumes_on(call.path_params["storage"], call.path_params["node"]).get(
        decode_volume(call) if ":" in decode_volume(call) else f"{call.path_params['storage']}:{decode_volume(call)}")
    return as_int(row["vmid"]) if row is not None and row.get("vmid") is not None else None


def check_content(model: ClusterModel, call: Call, caller: Caller) -> None:
    """pve-storage API2/Storage/Content.pm delete (and check_volume_access for an update): a guest's backup needs
    Datastore.AllocateSpace on the storage and VM.Backup on the guest; anything else Datastore.Allocate."""
    sid = call.path_params["storage"]
    owner = _owner(model, call)
    if call.method == "PUT" and caller.check(f"/storage/{sid}", ["Datastore.Allocate"], noerr=True):
        return
    if owner is not None:
        caller.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])
        caller.check(f"/vms/{owner}", ["VM.Backup"])
    else:
        caller.check(f"/storage/{sid}", ["Datastore.Allocate"])


def check_prune(model: ClusterModel, call: Call, caller: Caller) -> None:
    """API2/Storage/PruneBackups.pm delete: one guest's backups need Datastore.AllocateSpace and VM.Backup; the whole
    storage's, Datastore.Allocate."""
    sid = call.path_params["storage"]
    if call.params.get("vmid") is not None:
        caller.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])
        caller.check(f"/vms/{call.params['vmid']}", ["VM.Backup"])
    else:
        caller.check(f"/storage/{sid}", ["Datastore.Allocate"])


def _irreversible(reason: str) -> Callable[[ClusterModel, Call], Irreversible]:
    return lambda before, call: Irreversible(reason)


def register_all(register: Callable[..., None]) -> None:
    keep = ("prune-backups",)  # its format is checked here, as PVE's parameter verification checks it
    register("POST", "/nodes/{node}/vzdump", vzdump, verifies=keep, check=check_vzdump,
             inverse=_irreversible("a backup run cannot be undone as one step: delete the backups it made "
                                   "(backup.delete), and those it pruned are gone"))
    register("POST", "/cluster/backup", job_create, inverse=_job_create_inverse, verifies=keep, check=check_job_create)
    register("PUT", "/cluster/backup/{id}", job_update, inverse=_job_update_inverse, verifies=keep, check=check_job_update)
    register("DELETE", "/cluster/backup/{id}", job_delete, inverse=_job_delete_inverse)
    register("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}", content_delete, check=check_content,
             inverse=_irreversible("a deleted backup is gone: Proxmox keeps no copy of it"))
    register("PUT", "/nodes/{node}/storage/{storage}/content/{volume}", content_update, inverse=_content_update_inverse,
             check=check_content)
    register("DELETE", "/nodes/{node}/storage/{storage}/prunebackups", prune, verifies=keep, check=check_prune,
             inverse=_irreversible("pruned backups are gone: Proxmox keeps no copy of them"))
