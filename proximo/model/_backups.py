"""Backups as Proxmox keeps them: backup volumes, the guests each vzdump job selects, retention as pve-storage prunes.

The view every pack asks (``recovery_points``): for each guest, its backups on every storage the model has read
(newest first, with storage, time and protection) and the enabled jobs that back it up. Retention is pve-storage's
own algorithm (src/PVE/Storage.pm ``prune_mark_backup_group`` and ``$prune_mark``, src/PVE/Storage/Plugin.pm
``prune_backups``), ported line for line; tests/data/pve_prune_backups.json holds Proxmox's own test cases for it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from ._cluster import ClusterModel, Guest, as_int, split_list
from ._drives import parse_property_string

# PVE::Storage::archive_info's standard name: vzdump-<type>-<vmid>-<YYYY_MM_DD-hh_mm_ss>.<ext>
_STD_NAME = re.compile(r"vzdump-(lxc|openvz|qemu)-([1-9][0-9]{2,8})-(\d{4})_(\d{2})_(\d{2})-(\d{2})_(\d{2})_(\d{2})\.(tgz|(?:tar|vma)(?:\.(?:gz|lzo|zst|bz2))?)")
_ANY_NAME = re.compile(r"vzdump-(lxc|openvz|qemu)-.+\.(tgz|(?:tar|vma)(?:\.(?:gz|lzo|zst|bz2))?)")
# a PBS snapshot: backup/<vm|ct>/<id>/<time> (pve-storage PBSPlugin.pm parse_volname)
_PBS_NAME = re.compile(r"backup/(vm|ct)/([1-9][0-9]{2,8})/(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)")
# the prune-backups property string (pve-common PVE/JSONSchema.pm $prune_backups_format)
KEEP_OPTIONS = ("keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly")


class Backup(msgspec.Struct, frozen=True):
    """One backup volume as ``GET .../content?content=backup`` lists it, with where it was found."""

    volid: str
    storage: str
    node: str  # "" for a shared storage
    vmid: int | None
    ctime: int
    protected: bool
    subtype: str  # qemu, lxc ('' when PVE did not say)
    row: dict[str, Any]


class RecoveryPoints(msgspec.Struct, frozen=True):
    """A guest's way back: its backups, newest first, and the enabled vzdump jobs that select it."""

    vmid: int
    backups: list[Backup]
    jobs: list[str]

    @property
    def newest(self) -> Backup | None:
        return self.backups[0] if self.backups else None


def backups(model: ClusterModel) -> list[Backup]:
    """Every backup volume the model has read, newest first (a shared storage's volume once)."""
    found: dict[str, Backup] = {}
    for sid, by_node in model.volumes.items():
        for node, vols in by_node.items():
            for volid, row in vols.items():
                if row.get("content") != "backup" or volid in found:
                    continue
                vmid = row.get("vmid")
                found[volid] = Backup(volid, sid, node, as_int(vmid) if vmid is not None else _name_vmid(volid),
                                      as_int(row.get("ctime")), bool(as_int(row.get("protected"))),
                                      str(row.get("subtype") or _name_type(volid)), row)
    return sorted(found.values(), key=lambda b: (-b.ctime, b.volid))


def _name_vmid(volid: str) -> int | None:
    match = _STD_NAME.search(volid)
    return int(match.group(2)) if match else None


def _name_type(volid: str) -> str:
    match = _ANY_NAME.search(volid)
    return match.group(1) if match else ""


def job_guests(model: ClusterModel, job: dict[str, Any]) -> list[Guest]:
    """The guests a vzdump job backs up, as pve-manager PVE/VZDump.pm get_included_guests picks them: ``pool`` first,
    then ``vmid``, then ``all`` minus ``exclude``; ``node`` narrows. Templates are backed up like any guest."""
    if job.get("pool"):
        members = model.pools.get(str(job["pool"]), {}).get("members", [])
        ids = {as_int(m.get("vmid")) for m in members if m.get("type") in ("qemu", "lxc")}
    elif job.get("vmid"):
        ids = {as_int(v) for v in split_list(job.get("vmid"))}
    elif as_int(job.get("all")):
        excluded = {as_int(v) for v in split_list(job.get("exclude"))}
        ids = {vmid for vmid in model.guests if vmid not in excluded}
    else:
        ids = set()
    node = job.get("node")
    return [g for vmid, g in sorted(model.guests.items()) if vmid in ids and (not node or g.node == node)]


def enabled_jobs(model: ClusterModel) -> list[dict[str, Any]]:
    return [j for j in model.backup_jobs if as_int(j.get("enabled", 1)) and j.get("type", "vzdump") == "vzdump"]


def not_backed_up(model: ClusterModel) -> list[dict[str, Any]]:
    """GET /cluster/backup-info/not-backed-up (pve-manager PVE/API2/Cluster/BackupInfo.pm get_guests_not_in_backup):
    guests no vzdump job includes, enabled or not (get_included_vmids reads every job)."""
    included = {g.vmid for job in model.backup_jobs if job.get("type", "vzdump") == "vzdump" for g in job_guests(model, job)}
    rows = []
    for vmid, g in sorted(model.guests.items()):
        if vmid in included:
            continue
        name = g.config.get("name") if g.kind == "qemu" else g.config.get("hostname")
        rows.append({"vmid": vmid, "type": g.kind, **({"name": name} if name is not None else {})})
    return rows


def recovery_points(model: ClusterModel) -> dict[int, RecoveryPoints]:
    """Every guest's recovery points, and those of backups whose guest no longer exists (keyed by the VMID they name)."""
    by_vmid: dict[int, list[Backup]] = {}
    for b in backups(model):
        if b.vmid is not None:
            by_vmid.setdefault(b.vmid, []).append(b)
    covering: dict[int, list[str]] = {}
    for job in enabled_jobs(model):
        for g in job_guests(model, job):
            covering.setdefault(g.vmid, []).append(str(job.get("id")))
    return {vmid: RecoveryPoints(vmid, by_vmid.get(vmid, []), sorted(covering.get(vmid, [])))
            for vmid in sorted(set(model.guests) | set(by_vmid))}


def recovery_point_note(model: ClusterModel, vmid: int) -> str:
    """One line on a guest's newest backup: what a plan that destroys or overwrites it says."""
    newest = recovery_points(model).get(vmid, RecoveryPoints(vmid, [], [])).newest
    if newest is None:
        return "no backup of it exists on any storage Proximo can see: nothing to recover from"
    return f"recovery point: newest backup {newest.volid} ({when(newest.ctime)})"


def when(ts: Any) -> str:
    return dt.datetime.fromtimestamp(as_int(ts), dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- retention: pve-storage's prune ------------------------------------------------------------------------


def parse_keep(value: Any) -> dict[str, int]:
    """A ``prune-backups`` property string (``keep-daily=7,keep-weekly=4``) as numbers; ``keep-all=1`` kept."""
    if isinstance(value, dict):
        return {k: as_int(v) for k, v in value.items()}
    return {k: as_int(v) for k, v in parse_property_string(str(value or ""), None).items()} if value else {}


def check_keep(value: Any) -> dict[str, int]:
    """A ``prune-backups`` value as PVE verifies it (pve-storage Storage/Plugin.pm $prune_backups_format and
    validate_prune_backups): keep-* counts of 0 or more, keep-all a boolean that no other positive option may
    accompany; the options, or keep-all=1 when none is positive. ValueError with PVE's text otherwise."""
    try:
        raw = parse_property_string(str(value), None)
    except ValueError as exc:
        raise ValueError(f"invalid format - {exc}") from None
    keep: dict[str, int] = {}
    for key, text in raw.items():
        if key != "keep-all" and key not in KEEP_OPTIONS:
            raise ValueError(f"invalid format - format error\n{key}: property is not defined in schema and the schema does not allow additional properties")
        if key == "keep-all":
            if text not in ("0", "1", "yes", "no", "true", "false", "on", "off"):
                raise ValueError(f"invalid format - format error\nkeep-all: type check ('boolean') failed - got '{text}'")
            keep[key] = 1 if text in ("1", "yes", "true", "on") else 0
        elif not text.isdigit():
            raise ValueError(f"invalid format - format error\n{key}: type check ('integer') failed - got '{text}'")
        else:
            keep[key] = int(text)
    keep_all = keep.pop("keep-all", 0)
    if not any(v > 0 for v in keep.values()):
        return {"keep-all": 1}
    if keep_all:
        raise ValueError("invalid format - keep-all cannot be set together with other options.")
    return keep


def job_retention(model: ClusterModel, job: dict[str, Any]) -> dict[str, int]:
    """What a job's run prunes with (PVE/VZDump.pm new): the job's ``prune-backups``, else its storage's, else
    vzdump's default ``keep-all=1`` (/etc/vzdump.conf is not read: a node-wide default there is not seen)."""
    if job.get("prune-backups"):
        return parse_keep(job["prune-backups"])
    sid = str(job.get("storage") or "local")
    if model.storages.get(sid, {}).get("prune-backups"):
        return parse_keep(model.storages[sid]["prune-backups"])
    return {"keep-all": 1}


def _localtime(ctime: int) -> dt.datetime:
    # Proxmox buckets by the node's local time; the model does not know the node's time zone, so it uses UTC
    # (Proxmox's own test cases assume UTC too)
    return dt.datetime.fromtimestamp(ctime, dt.UTC)


def _iso_week(ctime: int) -> str:
    year, week, _ = _localtime(ctime).isocalendar()
    return f"{week}/{year}"


_BUCKETS: list[tuple[str, Callable[[int], str]]] = [
    ("keep-last", lambda c: str(c)),
    ("keep-hourly", lambda c: _localtime(c).strftime("%H/%d/%m/%Y")),
    ("keep-daily", lambda c: _localtime(c).strftime("%d/%m/%Y")),
    ("keep-weekly", _iso_week),
    ("keep-monthly", lambda c: _localtime(c).strftime("%m/%Y")),
    ("keep-yearly", lambda c: _localtime(c).strftime("%Y")),
]


def _prune_mark(entries: list[dict[str, Any]], keep_count: int, id_func: Callable[[int], str]) -> None:
    """pve-storage src/PVE/Storage.pm ``$prune_mark``."""
    if not keep_count:
        return
    already = {id_func(e["ctime"]) for e in entries if e.get("mark") == "keep"}
    newly: set[str] = set()
    for entry in entries:
        ident = id_func(entry["ctime"])
        if entry.get("mark") is not None or ident in already:
            continue
        if ident not in newly:
            if len(newly) >= keep_count:
                break
            newly.add(ident)
            entry["mark"] = "keep"
        else:
            entry["mark"] = "remove"


def prune_mark_backup_group(group: list[dict[str, Any]], keep: dict[str, int]) -> None:
    """pve-storage src/PVE/Storage.pm ``prune_mark_backup_group``: marks each entry keep or remove, in place."""
    positive = [k for k, v in keep.items() if k != "keep-all" and as_int(v) > 0]
    if as_int(keep.get("keep-all")) or not positive:
        for entry in group:
            if entry.get("mark") and entry["mark"] != "remove":
                continue  # preserve 'protected'
            entry["mark"] = "keep"
        return
    ordered = sorted(group, key=lambda e: -e["ctime"])
    for option, id_func in _BUCKETS:
        _prune_mark(ordered, as_int(keep.get(option)), id_func)
    for entry in ordered:
        if entry.get("mark") is None:
            entry["mark"] = "remove"


def archive_ctime(volid: str) -> int | None:
    """archive_info's ctime: the time in a standard name, read as the node's local time (taken as UTC here)."""
    match = _STD_NAME.search(volid.rpartition("/")[2])
    if match is None:
        return None
    y, mo, d, h, mi, s = (int(x) for x in match.groups()[2:8])
    return calendar.timegm((y, mo, d, h, mi, s))


def prune_list(rows: Iterable[dict[str, Any]], keep: dict[str, int], *, vmid: int | None = None,
               kind: str | None = None) -> list[dict[str, Any]]:
    """pve-storage src/PVE/Storage/Plugin.pm ``prune_backups`` (dry run) over one storage's backup rows: each as
    ``{volid, ctime, type, vmid?, mark}``, marks keep/remove/protected/renamed."""
    groups: dict[str, list[dict[str, Any]]] = {}
    out: list[dict[str, Any]] = []
    for row in rows:
        if row.get("content", "backup") != "backup" or (vmid is not None and as_int(row.get("vmid"), -1) != vmid):
            continue
        volid = str(row["volid"])
        if pbs := _PBS_NAME.fullmatch(volid.partition(":")[2]):
            # PBS prunes on the server, group by group (PBSPlugin.pm prune_backups runs 'proxmox-backup-client prune'
            # per <type>/<id>); its options are the same and are taken here to mark the same way (not checked
            # against proxmox-backup's own source)
            btype = "qemu" if pbs.group(1) == "vm" else "lxc"
            if kind is not None and kind != btype:
                continue
            entry = {"ctime": as_int(row.get("ctime")), "type": btype, "volid": volid, "vmid": int(pbs.group(2))}
            groups.setdefault(f"{btype}/{pbs.group(2)}", []).append(entry)
            if as_int(row.get("protected")):
                entry["mark"] = "protected"
            out.append(entry)
            continue
        name = volid.rpartition("/")[2]
        named = _ANY_NAME.fullmatch(name)
        btype = named.group(1) if named else "unknown"
        bvmid = int(m.group(2)) if (m := _STD_NAME.fullmatch(name)) else (as_int(row["vmid"]) if row.get("vmid") is not None else None)
        if kind is not None and kind != btype:
            continue
        entry: dict[str, Any] = {"ctime": as_int(row.get("ctime")), "type": btype, "volid": volid}
        if bvmid is not None:
            entry["vmid"] = bvmid
        if _STD_NAME.fullmatch(name):
            entry["ctime"] = archive_ctime(name)
            groups.setdefault(f"{btype}/{bvmid}", []).append(entry)
        else:
            entry["mark"] = "renamed"  # not the standard naming scheme: never pruned
        if as_int(row.get("protected")):
            entry["mark"] = "protected"
        out.append(entry)
    for group in groups.values():
        prune_mark_backup_group(group, keep)
    return out


def storage_backup_rows(model: ClusterModel, sid: str, node: str) -> list[dict[str, Any]]:
    """The backup rows of ``sid`` as ``node`` lists them."""
    key = "" if model.storage_shared(sid) else node
    return [r for r in model.volumes.get(sid, {}).get(key, {}).values() if r.get("content") == "backup"]


def job_prune_preview(model: ClusterModel, job: dict[str, Any]) -> list[str]:
    """The backups the job's next run removes, by its retention, from the guests it backs up (vzdump prunes each
    guest's group after its backup: PVE/VZDump.pm exec_backup_task, ``remove``). A run adds one backup per guest,
    first, and the marks are for the state after it."""
    keep = job_retention(model, job)
    if as_int(keep.get("keep-all")) or job.get("remove") in (0, "0"):
        return []
    sid = str(job.get("storage") or "local")
    removed: set[str] = set()
    for g in job_guests(model, job):
        rows = storage_backup_rows(model, sid, g.node)
        # the run's own new backup, at the job's next run (PVE lists ``next-run``; else a day after the newest)
        at = as_int(job.get("next-run")) or max((as_int(r.get("ctime")) for r in rows), default=0) + 86400
        stamp = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y_%m_%d-%H_%M_%S")
        ext = "vma.zst" if g.kind == "qemu" else "tar.zst"
        fresh = {"volid": f"{sid}:backup/vzdump-{g.kind}-{g.vmid}-{stamp}.{ext}", "ctime": at, "vmid": g.vmid, "content": "backup"}
        marks = prune_list([*rows, fresh], keep, vmid=g.vmid, kind=g.kind)
        removed |= {e["volid"] for e in marks if e.get("mark") == "remove"}
    return sorted(removed)
