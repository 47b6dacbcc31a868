"""Blast radius of storage changes, found by comparing two models (never by asking the tool).

Start-time rules (guest-start-volume-semantics.md): QEMU and LXC activate every configured volume
(disks, rootfs, mount points, EFI/TPM state, an ISO in a CD-ROM, the cloud-init drive) and die on a
storage that does not exist, is disabled, or is not available on the node; QEMU also checks the storage
allows the volume's content type. ``unusedN`` volumes are not activated, so they never block a start.
"""

from __future__ import annotations

from collections.abc import Iterator

from proximo import Impact
from proximo.model import ClusterModel, Guest, GuestVolume, as_int, split_list

_ROLE_NAMES = {
    "disk": "disk", "efidisk": "EFI disk", "tpmstate": "TPM state", "cdrom": "ISO", "cloudinit": "cloud-init drive",
    "rootfs": "root filesystem", "mp": "mount point", "vmstate": "saved VM state",
}
def _describe(vol: GuestVolume) -> str:
    what = "boot disk" if vol.is_boot else _ROLE_NAMES.get(vol.role, vol.role)
    return f"{what} {vol.key} on {vol.storage}"


def bootability(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Guests that could start before and cannot after: wont-boot (templates: clones fail, degraded)."""
    for vmid, old in sorted(before.guests.items()):
        new = after.guests.get(vmid)
        if new is None:
            continue  # a destroyed guest is the guests pack's to report
        fresh = {k: v for k, v in after.start_problems(new).items() if k not in before.start_problems(old)}
        if not fresh:
            continue
        vols = sorted((vp[0] for vp in fresh.values()), key=lambda v: (not v.is_boot, v.key))
        messages = sorted({msg for _, msg in fresh.values()})
        detail = ", ".join(_describe(v) for v in vols) + ": " + "; ".join(messages)
        if new.template:
            yield Impact(new.sid, "degraded", f"template: {detail}; cloning from it fails")
            continue
        when = ("it is running now and keeps running until it stops; the next start fails" if new.running
                else "its next start fails")
        yield Impact(new.sid, "wont-boot", f"{detail} on node {new.node}; {when}")


def _backup_guests(model: ClusterModel, job: dict[str, object]) -> list[Guest]:
    if as_int(job.get("all")):
        excluded = {as_int(v) for v in split_list(job.get("exclude"))}
        chosen = [g for vmid, g in sorted(model.guests.items()) if vmid not in excluded]
    elif job.get("pool"):
        members = model.pools.get(str(job["pool"]), {}).get("members", [])
        ids = {as_int(m.get("vmid")) for m in members if m.get("type") in ("qemu", "lxc")}
        chosen = [g for vmid, g in sorted(model.guests.items()) if vmid in ids]
    else:
        ids = {as_int(v) for v in split_list(job.get("vmid"))}
        chosen = [g for vmid, g in sorted(model.guests.items()) if vmid in ids]
    node = job.get("node")
    return [g for g in chosen if (not node or g.node == node) and not g.template]


def backup_jobs(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Backup jobs whose target storage stops being usable for backups on a node they back up."""
    old_jobs = {str(j.get("id")): j for j in before.backup_jobs}
    for job in after.backup_jobs:
        jid = str(job.get("id"))
        sid = job.get("storage")
        if not sid or not as_int(job.get("enabled", 1)) or jid not in old_jobs:
            continue
        sid = str(sid)
        failing: dict[str, list[int]] = {}
        for guest in _backup_guests(after, job):
            now = after.storage_problem(sid, guest.node) or (None if "backup" in after.storage_content(sid) else f"storage '{sid}' does not allow backups")
            was = before.storage_problem(sid, guest.node) or (None if "backup" in before.storage_content(sid) else "no backups")
            if now and not was:
                failing.setdefault(now, []).append(guest.vmid)
        for message, vmids in sorted(failing.items()):
            yield Impact(f"backup/{jid}", "backup-fails",
                         f"backup job {jid} writes to {sid}: {message}; guests {', '.join(map(str, vmids))} will not be backed up")


def replication_jobs(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Replication jobs with a volume whose storage becomes unusable on the source or the target node."""
    for job in after.replication_jobs:
        vmid = as_int(job.get("guest"))
        old, new = before.guests.get(vmid), after.guests.get(vmid)
        if old is None or new is None or as_int(job.get("disable")):
            continue
        target = str(job.get("target"))
        broken = []
        for vol in new.volumes():
            if vol.role == "cdrom":
                continue
            for node in (new.node, target):
                now, was = after.storage_problem(vol.storage, node), before.storage_problem(vol.storage, node)
                if now and not was:
                    broken.append(f"{vol.key} on {vol.storage}: {now}")
        if broken:
            yield Impact(f"replication/{job.get('id')}", "replication-fails",
                         f"replication {job.get('id')} ({new.node} -> {target}): " + "; ".join(sorted(set(broken))))


def ha_resources(before: ClusterModel, after: ClusterModel, wont_boot: set[str]) -> Iterator[Impact]:
    """HA-managed guests that will not boot: a start or recovery fails and the resource goes to error."""
    for res in after.ha_resources:
        sid = str(res.get("sid", ""))
        kind, _, vmid = sid.partition(":")
        guest = f"{'qemu' if kind == 'vm' else 'lxc'}/{vmid}"
        if guest in wont_boot and res.get("state") != "ignored":  # ignored: not HA-managed (ha-semantics.md §1)
            yield Impact(f"ha/{sid}", "ha-error",
                         f"HA manages {guest} (requested state {res.get('state', 'started')}): when HA next starts or "
                         f"recovers it the start fails and, after max_restart/max_relocate tries, the resource goes to 'error'")


def lost_volumes(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Volumes that exist before and not after: data destroyed, not recoverable from Proxmox itself."""
    for sid, by_node in sorted(before.volumes.items()):
        for node, vols in sorted(by_node.items()):
            gone = sorted(set(vols) - set(after.volumes.get(sid, {}).get(node, {})))
            for volid in gone:
                where = f" on {node}" if node else ""
                yield Impact(f"volume/{volid}", "data-loss", f"volume {volid}{where} is destroyed")


def storage_impacts(before: ClusterModel, after: ClusterModel) -> list[Impact]:
    impacts = list(bootability(before, after))
    wont_boot = {i.target for i in impacts if i.effect == "wont-boot"}
    impacts += backup_jobs(before, after)
    impacts += replication_jobs(before, after)
    impacts += ha_resources(before, after, wont_boot)
    impacts += lost_volumes(before, after)
    return impacts
