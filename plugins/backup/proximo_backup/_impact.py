"""Blast radius on recovery points, found by comparing two models (``proximo.model.recovery_points``).

Whatever call did it (a named tool, ``api.call``, a storage or guest change): a guest whose backups drop, a guest
no enabled job covers any more, the backups a changed job's next run prunes. Steps are read only for what no state
diff shows: a backup's downtime (its mode) and where a restore came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from proximo import ApiCall, Impact, Risk
from proximo.model import ClusterModel, RecoveryPoints, as_int, backups, job_guests, job_prune_preview, recovery_points
from proximo.model._backups import when
from proximo.model._drives import parse_property_string

from ._semantics import usable_for_backup


def _gib(size: int) -> str:
    return f"{size / 1024**3:.1f} GiB"


def _label(model: ClusterModel, vmid: int) -> str:
    g = model.guests.get(vmid)
    return f"{g.sid} ({g.name})" if g is not None else f"guest {vmid}"


def _target(model: ClusterModel, vmid: int) -> str:
    g = model.guests.get(vmid)
    return g.sid if g is not None else f"backup/{vmid}"


def recovery_point_losses(before: ClusterModel, after: ClusterModel, old: dict[int, RecoveryPoints],
                          new: dict[int, RecoveryPoints]) -> Iterator[Impact]:
    """Guests whose backups are gone after the change: HIGH when none remain, else the newest remaining named."""
    for vmid, was in old.items():
        now = new.get(vmid, RecoveryPoints(vmid, [], []))
        left = {b.volid for b in now.backups}
        lost = [b for b in was.backups if b.volid not in left]
        if not lost or (vmid in before.guests and vmid not in after.guests):
            continue  # a destroyed guest's backups are the guests pack's to name
        names = ", ".join(f"{b.volid} ({when(b.ctime)})" for b in lost)
        if now.newest is None:
            yield Impact(_target(after, vmid), "recovery-point-lost",
                         f"{_label(before, vmid)} loses its backup{'s' if len(lost) > 1 else ''} {names}: no backup of it "
                         "remains on any storage Proximo can see, nothing to restore it from", risk=Risk.HIGH)
        else:
            yield Impact(_target(after, vmid), "recovery-point-lost",
                         f"{_label(before, vmid)} loses {names}; newest remaining: {now.newest.volid} "
                         f"({when(now.newest.ctime)}) on {now.newest.storage}", risk=Risk.MEDIUM)


def coverage_losses(before: ClusterModel, after: ClusterModel, old: dict[int, RecoveryPoints],
                    new: dict[int, RecoveryPoints]) -> Iterator[Impact]:
    """Guests an enabled job backed up before and none does after (pve-manager's not-backed-up view counts disabled
    jobs too: this is the stricter question, whether any job will run for it)."""
    for vmid, was in old.items():
        now = new.get(vmid)
        if not was.jobs or now is None or now.jobs or vmid not in after.guests:
            continue
        yield Impact(after.guests[vmid].sid, "backup-fails",
                     f"no enabled backup job covers {_label(after, vmid)} any more (it was backed up by "
                     f"{', '.join(was.jobs)}); its newest backup stays "
                     + (f"{now.newest.volid} ({when(now.newest.ctime)})" if now.newest else "none: it has no backup at all"),
                     risk=Risk.MEDIUM if now.newest else Risk.HIGH)


_RETENTION_KEYS = ("prune-backups", "storage", "vmid", "all", "exclude", "pool", "node", "remove", "enabled")


def retention_changes(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """A job created or changed in what it selects, where it writes, or how it prunes: the backups its next run
    removes that the job as it was would have kept (pve-storage prune_mark_backup_group on each guest's group)."""
    old_jobs = {str(j.get("id")): j for j in before.backup_jobs}
    storages_changed = {sid for sid in before.storages.keys() | after.storages.keys()
                        if before.storages.get(sid, {}).get("prune-backups") != after.storages.get(sid, {}).get("prune-backups")}
    for job in after.backup_jobs:
        jid = str(job.get("id"))
        was = old_jobs.get(jid)
        same = was is not None and all(was.get(k) == job.get(k) for k in _RETENTION_KEYS)
        if same and str(job.get("storage") or "local") not in storages_changed:
            continue
        if not as_int(job.get("enabled", 1)):
            continue
        removes = set(job_prune_preview(after, job))
        if was is not None and as_int(was.get("enabled", 1)):
            removes -= set(job_prune_preview(before, was))
        if not removes:
            continue
        yield Impact(f"backup/{jid}", "recovery-point-lost",
                     f"backup job {jid}'s next run prunes {len(removes)} backup{'s' if len(removes) > 1 else ''} the job "
                     f"{'as it was would have kept' if was else 'did not exist to remove'}: {', '.join(sorted(removes))}",
                     risk=Risk.MEDIUM)


def job_targets(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """A job created, or pointed at another storage, that cannot write there for some of its guests (vzdump's
    storage_info and activate_storage fail the run). An existing job's storage breaking is the storage pack's."""
    old_jobs = {str(j.get("id")): j for j in before.backup_jobs}
    for job in after.backup_jobs:
        jid, sid = str(job.get("id")), str(job.get("storage") or "local")
        was = old_jobs.get(jid)
        if not as_int(job.get("enabled", 1)) or (was is not None and str(was.get("storage") or "local") == sid
                                                 and as_int(was.get("enabled", 1))):
            continue
        failing: dict[str, list[str]] = {}
        for g in job_guests(after, job):
            problem = usable_for_backup(after, sid, g.node)
            if problem:
                failing.setdefault(problem, []).append(g.sid)
        for problem, sids in sorted(failing.items()):
            yield Impact(f"backup/{jid}", "backup-fails", f"backup job {jid} writes to {sid}: {problem}; "
                         f"{', '.join(sids)} will not be backed up")


def _calls(steps: list[Any]) -> Iterator[ApiCall]:
    return (s for s in steps if isinstance(s, ApiCall))


def backup_runs(steps: list[Any], before: ClusterModel) -> Iterator[Impact]:
    """A vzdump in stop or suspend mode is downtime for each running guest it backs up (PVE/VZDump.pm: stop_vm,
    or suspend, for the whole backup); a storage that may not hold it."""
    for call in _calls(steps):
        parts = call.path.strip("/").split("/")
        if call.method != "POST" or len(parts) != 3 or parts[0] != "nodes" or parts[2] != "vzdump":
            continue
        node = parts[1]
        mode = str(call.params.get("mode") or "snapshot")
        guests = [g for g in job_guests(before, dict(call.params)) if g.node == node]
        if mode in ("stop", "suspend"):
            for g in guests:
                if g.running:
                    how = "stopped for the backup and started again after it" if mode == "stop" else \
                        "suspended (containers: frozen after a first copy) while the backup runs"
                    yield Impact(g.sid, "downtime", f"{g.sid} ({g.name}) is {how} (mode {mode})")
        sid = str(call.params.get("storage") or "local")
        status = before.storage_status.get(sid, {}).get(node, {})
        need = sum(v.size or 0 for g in guests for v in g.volumes() if v.role not in ("cdrom", "cloudinit"))
        if "avail" in status and need and as_int(status["avail"]) < need:
            yield Impact(f"storage/{sid}", "backup-fails",
                         f"the backup of {', '.join(g.sid for g in guests)} needs up to {_gib(need)} before compression; "
                         f"{sid} has {_gib(as_int(status['avail']))} free on {node}: it may not fit", risk=Risk.MEDIUM)


def _macs(config: dict[str, Any]) -> set[str]:
    found = set()
    for key, value in config.items():
        if key.startswith("net") and key[3:].isdigit():
            props = parse_property_string(str(value), "model" if "hwaddr" not in str(value) else None)
            for k, v in props.items():
                if k == "hwaddr" or (isinstance(v, str) and v.count(":") == 5 and len(v) == 17):
                    found.add(str(v).upper())
    return found


def restores(steps: list[Any], before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """A restore over an existing guest (``force``) destroys its disks; one to a new VMID fills a storage, may share
    MACs with the guest it was taken from (unless ``unique``), and with ``start`` comes up next to it."""
    for call in _calls(steps):
        parts = call.path.strip("/").split("/")
        if call.method != "POST" or len(parts) != 3 or parts[0] != "nodes" or parts[2] not in ("qemu", "lxc"):
            continue
        archive = call.params.get("archive") if parts[2] == "qemu" else (
            call.params.get("ostemplate") if as_int(call.params.get("restore")) else None)
        if not archive:
            continue
        vmid = as_int(call.params.get("vmid"), -1)
        old, new = before.guests.get(vmid), after.guests.get(vmid)
        if new is None:
            continue
        if old is not None:
            disks = [f"{v.key} {v.volid}" for v in old.volumes() if v.role not in ("cdrom", "cloudinit")]
            rp = recovery_points(before).get(vmid)
            newest = rp.newest if rp else None
            state = (f"the newest backup of it is {newest.volid} ({when(newest.ctime)})"
                     + (" — the one being restored" if newest.volid == archive else ": what was written since is lost")
                     if newest else "no backup of its current state exists")
            yield Impact(old.sid, "data-loss",
                         f"restoring {archive} over {old.sid} ({old.name}) destroys its current disks "
                         f"({', '.join(disks) or 'none'}); {state}", risk=Risk.CRITICAL)
            continue
        added: dict[str, int] = {}
        for vol in new.volumes():
            if vol.role in ("cdrom", "cloudinit"):
                continue
            added[vol.storage] = added.get(vol.storage, 0) + (vol.size or 0)
        for sid, size in sorted(added.items()):
            status = after.storage_status.get(sid, {}).get(new.node, {})
            free = f"; {_gib(as_int(status['avail']))} free there after it" if "avail" in status else ""
            yield Impact(f"storage/{sid}", "degraded", f"the restore of {new.sid} fills {_gib(size)} on {sid} ({new.node}){free}",
                         risk=Risk.MEDIUM)
        mine = _macs(new.config)
        for other_id, other in sorted(after.guests.items()):
            if other_id == vmid:
                continue
            shared = mine & _macs(other.config)
            if shared:
                yield Impact(new.sid, "loses-network",
                             f"{new.sid} is restored with the MAC{'s' if len(shared) > 1 else ''} {', '.join(sorted(shared))} "
                             f"of {other.sid} ({other.name}) (unique=1 gives it new ones)"
                             + ("; it starts next to it: both on the same network conflict" if new.running and other.running else ""))
        origin = next((b.vmid for b in backups(before) if b.volid == archive), None)
        if new.running and origin is not None and origin in after.guests and after.guests[origin].running and not mine & _macs(after.guests[origin].config):
            yield Impact(new.sid, "degraded",
                         f"{new.sid} starts next to {after.guests[origin].sid}, the guest its backup was taken from: the same "
                         "hostname and addresses inside the guest may conflict", risk=Risk.MEDIUM)


def backup_impacts(change: Any, before: ClusterModel, after: ClusterModel) -> list[Impact]:
    old, new = recovery_points(before), recovery_points(after)
    impacts = list(recovery_point_losses(before, after, old, new))
    impacts += coverage_losses(before, after, old, new)
    impacts += retention_changes(before, after)
    impacts += job_targets(before, after)
    steps = list(getattr(change, "steps", []) or [])
    impacts += backup_runs(steps, before)
    impacts += restores(steps, before, after)
    return impacts

