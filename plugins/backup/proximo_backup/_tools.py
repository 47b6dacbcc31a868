"""The backup tools: recovery points, backup now, restore, delete, protect, prune, jobs. Plans only describe calls."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from proximo import ApiCall, BadInput, Draft, plan_tool, read_tool, tool_table
from proximo.model import ClusterModel, as_int, backups, job_guests, job_retention, not_backed_up, prune_list, recovery_points
from proximo.model._backups import check_keep, storage_backup_rows, when
from proximo.params import NodeName, StorageId, VmId, api_params, described, struct_from_schema

from ._semantics import volume_path

VolumeId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*[A-Za-z0-9]:[A-Za-z0-9_.:+=@/-]+$", max_length=255,
                                       description="backup volume id, e.g. nfs-bak:backup/vzdump-qemu-101-2026_11_28-02_00_03.vma.zst")]

# vzdump's node is where it runs: required here (PVE takes it from the path)
VzdumpParams = struct_from_schema("VzdumpParams", "POST", "/nodes/{node}/vzdump", require=("node",),
                                  exclude=("stdout", "dumpdir", "tmpdir", "script", "mailto", "mailnotification", "maxfiles",
                                           "quiet", "stop", "lockwait", "job-id", "exclude-path"))
JobCreateParams = struct_from_schema("JobCreateParams", "POST", "/cluster/backup", require=("id",),
                                     exclude=("dumpdir", "tmpdir", "script", "starttime", "dow", "maxfiles", "quiet", "stop", "exclude-path"))
JobUpdateParams = struct_from_schema("JobUpdateParams", "PUT", "/cluster/backup/{id}",
                                     exclude=("dumpdir", "tmpdir", "script", "starttime", "dow", "maxfiles", "quiet", "stop", "exclude-path"))


class ListParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    vmid: VmId | None = None


class NoParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class VolumeRef(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    volume: VolumeId
    node: NodeName | None = None


class ProtectParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    volume: VolumeId
    protected: bool = True
    notes: str | None = None
    node: NodeName | None = None


class PruneParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    storage: StorageId
    prune_backups: str | None = msgspec.field(default=None, name="prune-backups")
    vmid: VmId | None = None
    type: Literal["qemu", "lxc"] | None = None
    node: NodeName | None = None


class RestoreParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    archive: VolumeId
    vmid: VmId
    node: NodeName | None = None
    storage: StorageId | None = None
    force: bool = False
    unique: bool = False
    start: bool = False
    bwlimit: int | None = None
    live_restore: bool = msgspec.field(default=False, name="live-restore")


class JobRef(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=64)]


described(ListParams, fields={"vmid": "Only this guest's recovery points"})
described(JobRef, pve=(("DELETE", "/cluster/backup/{id}"),))
described(VolumeRef, fields={"volume": "The backup's volume id", "node": "A node that sees the storage (default: one that does)"})
described(ProtectParams, pve=(("PUT", "/nodes/{node}/storage/{storage}/content/{volume}"),),
          fields={"volume": "The backup's volume id", "node": "A node that sees the storage (default: one that does)"})
described(PruneParams, pve=(("DELETE", "/nodes/{node}/storage/{storage}/prunebackups"),),
          fields={"node": "A node that sees the storage (default: one that does)"})
described(RestoreParams, pve=(("POST", "/nodes/{node}/qemu"),),
          fields={"archive": "The backup to restore", "node": "Where the restored guest lives (default: the guest's node, "
                  "else a node that sees the backup's storage)"})


# --- where a volume is seen ---------------------------------------------------------------------------------


def _find(view: ClusterModel, volid: str) -> tuple[str, dict[str, Any]]:
    for b in backups(view):
        if b.volid == volid:
            return b.node, b.row
    raise BadInput(f"backup '{volid}' does not exist on any storage Proximo can see (see `proximo read backup.list`)")


def _node_for(view: ClusterModel, sid: str, node: str | None, found: str = "") -> str:
    if node is not None:
        return node
    if found:
        return found
    usable = sorted(n for n in view.storage_nodes(sid) if view.storage_problem(sid, n) is None and view.nodes[n].online)
    if not usable:
        raise BadInput(f"storage '{sid}' is not available on any online node")
    return usable[0]


# --- reads ------------------------------------------------------------------------------------------------------


def read_list(p: ListParams, view: ClusterModel) -> list[dict[str, Any]]:
    rows = []
    for vmid, rp in recovery_points(view).items():
        if p.vmid is not None and vmid != p.vmid:
            continue
        g = view.guests.get(vmid)
        rows.append({"vmid": vmid, "name": g.name if g else None, "exists": g is not None,
                     "count": len(rp.backups), "newest": rp.newest.volid if rp.newest else None,
                     "newest_time": when(rp.newest.ctime) if rp.newest else None, "jobs": rp.jobs,
                     "backups": [{"volid": b.volid, "storage": b.storage, "ctime": b.ctime, "time": when(b.ctime),
                                  "protected": int(b.protected), "size": b.row.get("size"), "notes": b.row.get("notes")}
                                 for b in rp.backups]})
    return rows


def read_jobs(p: NoParams, view: ClusterModel) -> list[dict[str, Any]]:
    return [{**job, "guests": [g.vmid for g in job_guests(view, job)],
             "retention": ",".join(f"{k}={v}" for k, v in sorted(job_retention(view, job).items()))}
            for job in view.backup_jobs]


def read_not_covered(p: NoParams, view: ClusterModel) -> list[dict[str, Any]]:
    """Guests no enabled vzdump job selects: PVE's not-backed-up rows (jobs enabled or not), and the guests whose only
    jobs are disabled (``disabled_only``), each with its newest backup."""
    points = recovery_points(view)
    pve = {row["vmid"] for row in not_backed_up(view)}
    return [{"vmid": vmid, "type": g.kind, "name": g.name, "disabled_only": vmid not in pve,
             "newest": points[vmid].newest.volid if points[vmid].newest else None}
            for vmid, g in sorted(view.guests.items()) if not points[vmid].jobs]


# --- plans --------------------------------------------------------------------------------------------------------


def plan_now(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    node = str(params.pop("node"))
    local = [g for g in job_guests(view, params) if g.node == node]
    if any(params.get(k) for k in ("vmid", "all", "pool")) and not local and node in view.nodes:
        raise BadInput(f"backup.now: none of the selected guests is on node {node} (vzdump backs up the guests of the node it runs on)")
    return Draft(steps=[ApiCall("POST", f"/nodes/{node}/vzdump", params)], target=",".join(str(g.vmid) for g in local))


def plan_restore(p: RestoreParams, view: ClusterModel) -> Draft:
    found, row = _find(view, p.archive)
    subtype = str(row.get("subtype") or ("qemu" if "-qemu-" in p.archive or "/vm/" in p.archive else "lxc"))
    existing = view.guests.get(p.vmid)
    if existing is not None and not p.force:
        raise BadInput(f"{existing.sid} exists: restoring over it needs force=true (its disks are destroyed)")
    if existing is not None and existing.kind != subtype:
        raise BadInput(f"{p.archive} is a {subtype} backup; {existing.sid} is a {existing.kind} guest")
    sid = p.archive.partition(":")[0]
    node = p.node or (existing.node if existing else _node_for(view, sid, None, found))
    params: dict[str, Any] = {"vmid": p.vmid}
    if subtype == "qemu":
        params["archive"] = p.archive
        if p.live_restore:
            params["live-restore"] = 1
    else:
        params.update(ostemplate=p.archive, restore=1)
        if p.live_restore:
            params["live-restore"] = 1  # not a container option: Proxmox's parameter check refuses it
    for key, value in (("storage", p.storage), ("bwlimit", p.bwlimit)):
        if value is not None:
            params[key] = value
    for key, flag in (("force", p.force), ("unique", p.unique), ("start", p.start)):
        if flag:
            params[key] = 1
    return Draft(steps=[ApiCall("POST", f"/nodes/{node}/{subtype}", params)], target=f"{subtype}/{p.vmid}")


def plan_delete(p: VolumeRef, view: ClusterModel) -> Draft:
    found, row = _find(view, p.volume)
    if as_int(row.get("protected")):
        raise BadInput(f"{p.volume} is protected: Proxmox refuses to delete it (backup.protect protected=false first)")
    node = _node_for(view, p.volume.partition(":")[0], p.node, found)
    return Draft(steps=[ApiCall("DELETE", volume_path(node, p.volume))], target=p.volume)


def plan_protect(p: ProtectParams, view: ClusterModel) -> Draft:
    found, _ = _find(view, p.volume)
    node = _node_for(view, p.volume.partition(":")[0], p.node, found)
    params: dict[str, Any] = {"protected": 1 if p.protected else 0}
    if p.notes is not None:
        params["notes"] = p.notes
    return Draft(steps=[ApiCall("PUT", volume_path(node, p.volume), params)], target=p.volume)


def _prune_call(p: PruneParams, view: ClusterModel) -> tuple[str, dict[str, Any]]:
    if p.storage not in view.storages:
        raise BadInput(f"storage '{p.storage}' does not exist (see `proximo read storage.list`)")
    if "backup" not in view.storage_content(p.storage):
        raise BadInput(f"storage '{p.storage}' does not support backups")
    if not p.prune_backups and not view.storages[p.storage].get("prune-backups"):
        raise BadInput(f"no prune-backups options configured for storage '{p.storage}': give prune-backups=...")
    node = _node_for(view, p.storage, p.node)
    params = {k: v for k, v in (("prune-backups", p.prune_backups), ("vmid", p.vmid), ("type", p.type)) if v is not None}
    return node, params


def read_prune(p: PruneParams, view: ClusterModel) -> list[dict[str, Any]]:
    """GET /nodes/{node}/storage/{storage}/prunebackups: what a prune would keep and remove (the dry run)."""
    node, params = _prune_call(p, view)
    try:
        keep = check_keep(params.get("prune-backups") or view.storages[p.storage].get("prune-backups"))
    except ValueError as exc:
        raise BadInput(f"prune-backups: {exc}") from None
    return sorted(prune_list(storage_backup_rows(view, p.storage, node), keep, vmid=p.vmid, kind=p.type),
                  key=lambda e: (e.get("vmid") or 0, -e["ctime"]))


def plan_prune(p: PruneParams, view: ClusterModel) -> Draft:
    node, params = _prune_call(p, view)
    return Draft(steps=[ApiCall("DELETE", f"/nodes/{node}/storage/{p.storage}/prunebackups", params)], target=p.storage)


def _existing_job(view: ClusterModel, jid: str) -> dict[str, Any]:
    job = next((j for j in view.backup_jobs if str(j.get("id")) == jid), None)
    if job is None:
        raise BadInput(f"backup job '{jid}' does not exist (see `proximo read backup.job.list`)")
    return job


def plan_job_create(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    if any(str(j.get("id")) == str(params["id"]) for j in view.backup_jobs):
        raise BadInput(f"backup job '{params['id']}' already exists")
    return Draft(steps=[ApiCall("POST", "/cluster/backup", params)], target=str(params["id"]))


def plan_job_update(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    jid = str(params.pop("id"))
    _existing_job(view, jid)
    if not params:
        raise BadInput("backup.job.update: nothing to change: no options specified")
    return Draft(steps=[ApiCall("PUT", f"/cluster/backup/{jid}", params)], target=jid)


def plan_job_delete(p: JobRef, view: ClusterModel) -> Draft:
    _existing_job(view, p.id)
    return Draft(steps=[ApiCall("DELETE", f"/cluster/backup/{p.id}")], target=p.id)


TOOLS = tool_table(
    read_tool("backup.list", "Recovery points", "Every guest's backups (storage, time, protected) and the enabled jobs "
              "that back it up; backups of guests that no longer exist too.", ListParams, read_list,
              columns=("vmid", "name", "count", "newest", "newest_time", "jobs")),
    read_tool("backup.not_covered", "Guests no backup job covers", "Guests no enabled vzdump job selects "
              "(GET /cluster/backup-info/not-backed-up counts disabled jobs; disabled_only says which those are).",
              NoParams, read_not_covered, columns=("vmid", "type", "name", "disabled_only", "newest")),
    read_tool("backup.job.list", "Backup jobs", "vzdump jobs (GET /cluster/backup) with the guests each selects and the "
              "retention its runs prune with.", NoParams, read_jobs,
              columns=("id", "enabled", "schedule", "storage", "guests", "retention")),
    read_tool("backup.prune_preview", "Prune dry run", "What a prune of a storage would keep and remove "
              "(GET /nodes/{node}/storage/{storage}/prunebackups), as pve-storage marks it.", PruneParams, read_prune,
              columns=("volid", "vmid", "type", "mark")),
    plan_tool("backup.now", "Plan: back up now", "Plan a vzdump (POST /nodes/{node}/vzdump) of guests on that node: "
              "stop/suspend mode downtime, the storage's fitness and the backups its retention prunes are reported.",
              VzdumpParams, plan_now),
    plan_tool("backup.restore", "Plan: restore a backup", "Plan a restore (POST /nodes/{node}/qemu archive=, or "
              "/lxc restore=1): over an existing guest (force) its disks are destroyed; to a new VMID the storage it "
              "fills and MAC conflicts (unless unique) are reported.", RestoreParams, plan_restore),
    plan_tool("backup.delete", "Plan: delete a backup", "Plan deleting a backup volume: guests left with fewer or no "
              "recovery points are reported. Irreversible.", VolumeRef, plan_delete),
    plan_tool("backup.protect", "Plan: protect a backup", "Plan setting (or clearing) a backup's protection and notes "
              "(PUT .../content/{volume}); a protected backup is never pruned or deleted.", ProtectParams, plan_protect),
    plan_tool("backup.prune", "Plan: prune backups", "Plan a prune of the backups on one storage (.../prunebackups) with "
              "its retention or the one given; names every backup removed and each guest's newest remaining. "
              "The dry run is backup.prune_preview.", PruneParams, plan_prune),
    plan_tool("backup.job.create", "Plan: create a backup job", "Plan a vzdump job (POST /cluster/backup).",
              JobCreateParams, plan_job_create),
    plan_tool("backup.job.update", "Plan: change a backup job", "Plan a change to a vzdump job (PUT /cluster/backup/{id}): "
              "guests no job covers any more and the backups its next run prunes are reported.", JobUpdateParams, plan_job_update),
    plan_tool("backup.job.delete", "Plan: delete a backup job", "Plan removing a vzdump job (DELETE /cluster/backup/{id}).",
              JobRef, plan_job_delete),
)
