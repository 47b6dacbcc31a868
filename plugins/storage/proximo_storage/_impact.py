"""Blast radius of storage changes, found by comparing two models (never by asking the tool).

Start-time rules (qemu-server src/PVE/QemuServer.pm ``vm_start_nolock``, pve-container src/PVE/LXC.pm
``vm_start``, pve-storage src/PVE/Storage.pm ``activate_volumes``): QEMU and LXC activate every configured volume
(disks, rootfs, mount points, EFI/TPM state, an ISO in a CD-ROM, the cloud-init drive) and die on a
storage that does not exist, is disabled, or is not available on the node; QEMU also checks the storage
allows the volume's content type. ``unusedN`` volumes are not activated, so they never block a start.
"""

from __future__ import annotations

from collections.abc import Iterator

from proximo import Impact, Risk
from proximo.model import ClusterModel, GuestVolume, as_int, job_guests, moved_volumes, split_list

_ROLE_NAMES = {
    "disk": "disk", "efidisk": "EFI disk", "tpmstate": "TPM state", "cdrom": "ISO", "cloudinit": "cloud-init drive",
    "rootfs": "root filesystem", "mp": "mount point", "vmstate": "saved VM state",
}
def _describe(vol: GuestVolume) -> str:
    what = "boot disk" if vol.is_boot else _ROLE_NAMES.get(vol.role, vol.role)
    return f"{what} {vol.key} on {vol.storage}"


def bootability(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Guests that could start before and cannot after: wont-boot (templates: clones fail, degraded)."""
    # start_problems reads the guest, the storage configuration and the node names: where those are the same,
    # so are a guest's problems (most plans change one guest or one storage, not the 4,000 others)
    same_nodes = before.nodes.keys() == after.nodes.keys()
    # a volume id is "<storage>:<name>": an unchanged guest whose config names no changed storage so is unaffected
    moved = [f"{sid}:" for sid in before.storages.keys() | after.storages.keys() if before.storages.get(sid) != after.storages.get(sid)]
    for vmid, old in sorted(before.guests.items()):
        new = after.guests.get(vmid)
        if new is None:
            continue  # a destroyed guest is the guests pack's to report
        if same_nodes and new == old and not any(m in str(v) for v in old.config.values() for m in moved):
            continue
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
        # PVE's own message may already name the node ("... is not available on node 'pve3'"): say it once
        where = "" if f"node '{new.node}'" in detail else f" on node {new.node}"
        yield Impact(new.sid, "wont-boot", f"{detail}{where}; {when}")


def backup_jobs(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Backup jobs whose target storage stops being usable for backups on a node they back up."""
    old_jobs = {str(j.get("id")): j for j in before.backup_jobs}
    for job in after.backup_jobs:
        jid = str(job.get("id"))
        sid = job.get("storage")
        if not sid or not as_int(job.get("enabled", 1)) or jid not in old_jobs:
            continue
        sid = str(sid)
        if before.storages.get(sid) == after.storages.get(sid) and before.nodes.keys() == after.nodes.keys():
            continue  # what is asked below of the storage, on any node, answers the same before and after
        failing: dict[str, list[int]] = {}
        for guest in job_guests(after, job):
            now = after.storage_problem(sid, guest.node) or (None if "backup" in after.storage_content(sid) else f"storage '{sid}' does not allow backups")
            was = before.storage_problem(sid, guest.node) or (None if "backup" in before.storage_content(sid) else "no backups")
            if now and not was:
                failing.setdefault(now, []).append(guest.vmid)
        for message, vmids in sorted(failing.items()):
            yield Impact(f"backup/{jid}", "backup-fails",
                         f"backup job {jid} writes to {sid}: {message}; guests {', '.join(map(str, vmids))} will not be backed up")


def replication_jobs(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Replication jobs with a replicated volume that stops resolving on the source or the target node, or stops being
    replicable (ClusterModel.replication_problem: get_replicatable_volumes, then the storage's activation)."""
    for job in after.replication_jobs:
        vmid = as_int(job.get("guest"))
        old, new = before.guests.get(vmid), after.guests.get(vmid)
        if old is None or new is None or as_int(job.get("disable")):
            continue
        target = str(job.get("target"))
        was_broken = {(vol.key, node) for vol in old.volumes() for node in (old.node, target)
                      if before.replication_problem(old, vol, node)}
        broken = []
        for vol in new.volumes():
            for node in (new.node, target):
                now = after.replication_problem(new, vol, node)
                if now and (vol.key, node) not in was_broken:
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
        # ignored: not HA-managed (pve-ha-manager src/PVE/HA/Config.pm service_is_ha_managed)
        if guest in wont_boot and res.get("state") != "ignored":
            yield Impact(f"ha/{sid}", "ha-error",
                         f"HA manages {guest} (requested state {res.get('state', 'started')}): when HA next starts or "
                         f"recovers it the start fails and, after max_restart/max_relocate tries, the resource goes to 'error'")


def lost_volumes(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Volumes that exist before and not after: data destroyed, not recoverable from Proxmox itself.

    A volume whose data moved to a new volume (a disk move with delete=1, a template conversion) is not lost. A
    backup volume is a copy: its loss is the backup pack's recovery-point-lost, judged on every guest's backups.
    """
    moved = moved_volumes(before, after)
    for sid, by_node in sorted(before.volumes.items()):
        for node, vols in sorted(by_node.items()):
            gone = sorted(set(vols) - set(after.volumes.get(sid, {}).get(node, {})) - set(moved))
            for volid in gone:
                if vols[volid].get("content") == "backup":
                    continue  # a backup is a recovery point, not a guest's data: the backup pack judges its loss
                where = f" on {node}" if node else ""
                yield Impact(f"volume/{volid}", "data-loss", f"volume {volid}{where} is destroyed")


def job_config_changes(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """Backup and replication jobs removed, or backing up fewer guests by name, whatever call did it.

    A destroy with ``purge`` does both (qemu-server API2/Qemu.pm and pve-container API2/LXC.pm destroy_vm call
    PVE::ReplicationConfig::remove_vmid_jobs and PVE::VZDump::Plugin::remove_vmid_from_backup_jobs). remove_vmid_jobs
    deletes the job entries outright (pve-guest-common ReplicationConfig.pm), so no replication run removes the
    replica on the target: it stays there, named here so a person can remove it.
    """
    new_backups = {str(j.get("id")): j for j in after.backup_jobs}
    for job in before.backup_jobs:
        jid = str(job.get("id"))
        now = new_backups.get(jid)
        named = split_list(job.get("vmid"))
        dropped = sorted(set(named) - set(split_list(now.get("vmid"))) if now else named, key=lambda v: as_int(v))
        # What only follows a guest's own removal (purge tidying up) changes nothing that still exists.
        consequence = Risk.MEDIUM if dropped and all(as_int(v, -1) not in after.guests for v in dropped) else None
        if now is None:
            yield Impact(f"backup/{jid}", "backup-fails", f"backup job {jid} is removed: it backs up nothing any more",
                         risk=consequence)
        elif dropped:
            why = " (destroyed with it)" if consequence else ""
            yield Impact(f"backup/{jid}", "backup-fails",
                         f"backup job {jid} no longer names guest{'s' if len(dropped) > 1 else ''} {', '.join(dropped)}{why}",
                         risk=consequence)
    kept = {str(j.get("id")) for j in after.replication_jobs}
    for job in before.replication_jobs:
        jid = str(job.get("id"))
        if jid in kept:
            continue
        vmid, target = as_int(job.get("guest")), str(job.get("target"))
        replicas = after.replicas_on(vmid, target)[0]  # zfspool only: a backup file on the target is no replica
        many = len(replicas) > 1
        left = (f"; its replica{'s' if many else ''} on {target} ({', '.join(replicas)}) "
                f"{'stay' if many else 'stays'} there: no job removes {'them' if many else 'it'} now") if replicas else ""
        yield Impact(f"replication/{jid}", "replication-fails",
                     f"replication job {jid} ({job.get('source', '?')} -> {target}) is removed{left}",
                     risk=Risk.MEDIUM if vmid not in after.guests else None)


def storage_impacts(before: ClusterModel, after: ClusterModel) -> list[Impact]:
    impacts = list(bootability(before, after))
    wont_boot = {i.target for i in impacts if i.effect == "wont-boot"}
    impacts += backup_jobs(before, after)
    impacts += replication_jobs(before, after)
    impacts += ha_resources(before, after, wont_boot)
    impacts += lost_volumes(before, after)
    impacts += job_config_changes(before, after)
    return impacts
