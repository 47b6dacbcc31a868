"""Guest blast radius, found by comparing the models before and after a plan (never by asking the tool).

Every plan is seen, so ``api.call`` on a guest endpoint reports what the named tool reports. The storage
pack already reports every destroyed volume (``volume/<volid>`` data-loss) and guests whose volumes stop
resolving; this module adds what only a guest view shows: downtime, destroyed guests with their recovery
point, lost snapshots and rolled-back state, NICs on missing bridges, detached disks, removed protection,
storages that fill up, and the jobs that still name a destroyed guest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from proximo import ApiCall, Change, Impact, Risk
from proximo.model import ClusterModel, Guest, as_int, split_list

from ._semantics import is_volume_key, linked_clones, volume_of
from ._volumes import recovery_point, when
from proximo.model._drives import is_unused_key

GiB = 1024**3
LOW_SPACE_FRACTION = 0.10
LOW_SPACE_BYTES = 10 * GiB


def _what(g: Guest) -> str:
    return f"{g.sid} ({g.name})"


def downtime(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    for vmid, old in sorted(before.guests.items()):
        new = after.guests.get(vmid)
        if new is None or not old.running or old.paused:
            continue
        if new.rolled_back_to and not old.rolled_back_to:
            how = "running again from the snapshot's RAM state" if new.running else "stopped"
            yield Impact(new.sid, "downtime", f"{_what(new)} is rolled back to snapshot '{new.rolled_back_to}': {how}")
        elif not new.running:
            yield Impact(new.sid, "downtime", f"{_what(new)} is stopped on node {new.node}")
        elif new.paused:
            yield Impact(new.sid, "downtime", f"{_what(new)} is suspended (paused in RAM) until it is resumed")
        elif as_int(new.resource.get("uptime")) == 0 and as_int(old.resource.get("uptime")) != 0:
            moved = (f" on {new.node}: a container migrates in restart mode (shut down, not killed: one that does not stop "
                     f"in time fails the migration; copied from {old.node}; started there)") if new.node != old.node else ""
            yield Impact(new.sid, "downtime", f"{_what(new)} is restarted{moved} (its services are down while it boots)")


def ha_requests(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """HA resources whose requested state goes from started to stopped: HA no longer keeps the guest up."""
    now = {r.get("sid"): r for r in after.ha_resources}
    for res in before.ha_resources:
        new = now.get(res.get("sid"))
        if new is not None and res.get("state", "started") == "started" and new.get("state") == "stopped":
            yield Impact(f"ha/{res['sid']}", "downtime",
                         f"HA requested state started -> stopped: HA will not restart or recover {res['sid']} until it is started again")


def destroyed(change: Change, before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    for vmid, old in sorted(before.guests.items()):
        if vmid in after.guests:
            continue
        disks = [v.key for v in old.volumes() if v.role != "cdrom"]
        snaps = [r["name"] for r in old.snapshots or [] if r.get("name") != "current"]
        what = f"{_what(old)} is destroyed with its disks ({', '.join(disks) or 'none'})"
        if snaps:
            what += f" and snapshots ({', '.join(snaps)})"
        yield Impact(old.sid, "data-loss", f"{what}; {recovery_point(before, vmid)}")
        for job in after.backup_jobs:
            if str(vmid) in split_list(job.get("vmid")):
                yield Impact(f"backup/{job.get('id')}", "backup-fails",
                             f"backup job {job.get('id')} still lists {vmid}, which no longer exists: each run reports an error for it")


def blocked_template_destroy(change: Change, before: ClusterModel) -> Iterator[Impact]:
    """A template with linked clones: Proxmox refuses; had it gone ahead, the clones could not start."""
    for step in change.steps:
        if not isinstance(step, ApiCall) or step.method != "DELETE":
            continue
        parts = step.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "nodes" or parts[2] not in ("qemu", "lxc"):
            continue
        g = before.guests.get(as_int(parts[3], -1))
        if g is None or not g.template:
            continue
        for vmid, keys in linked_clones(before, g).items():
            clone = before.guests[vmid]
            yield Impact(clone.sid, "wont-boot",
                         f"{_what(clone)} is a linked clone of template {g.sid}: its {', '.join(keys)} read from the "
                         f"template's base volume; destroying the template would leave it unable to start")


def snapshots(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    for vmid, old in sorted(before.guests.items()):
        new = after.guests.get(vmid)
        if new is None:
            continue
        kept = {r.get("name") for r in new.snapshots or []}
        for row in old.snapshots or []:
            name = row.get("name")
            if name == "current" or name in kept:
                continue
            state = " and its saved RAM state" if as_int(row.get("vmstate")) else ""
            yield Impact(new.sid, "data-loss", f"snapshot '{name}' of {_what(new)} (taken {when(row.get('snaptime'))}) is "
                                               f"deleted: the disk state{state} it preserved is gone")
        if new.rolled_back_to and not old.rolled_back_to:
            snap = next((r for r in old.snapshots or [] if r.get("name") == new.rolled_back_to), {})
            yield Impact(new.sid, "data-loss", f"{_what(new)} is rolled back to snapshot '{new.rolled_back_to}' "
                                               f"(taken {when(snap.get('snaptime'))}): everything written since is discarded")


def config_effects(before: ClusterModel, after: ClusterModel, vmids: Iterable[int] | None = None) -> Iterator[Impact]:
    """What a guest's own config change does to it. ``vmids``: the guests to judge; by default those that may have
    an effect (``_guests_that_moved``): each finding here depends only on the guest and its node's network."""
    for vmid in sorted(_guests_that_moved(before, after) if vmids is None else vmids):
        old, new = before.guests.get(vmid), after.guests.get(vmid)
        if old is None or new is None:
            continue
        fresh = {k: m for k, m in after.bridge_problems(new).items() if k not in before.bridge_problems(old)}
        if fresh and not new.template:
            when = "it keeps running until it stops; the next start fails" if new.running else "its next start fails"
            detail = "; ".join(f"{k}: {m} on node {new.node}" for k, m in sorted(fresh.items()))
            yield Impact(new.sid, "wont-boot", f"{detail}; {when}")
        if as_int(old.config.get("protection")) and not as_int(new.config.get("protection")):
            yield Impact(new.sid, "degraded", f"protection is removed from {_what(new)}: its disks and the guest itself can "
                                              "then be destroyed; never approved on the agent's word", risk=Risk.HIGH, needs_person=True)
        for key in sorted(set(old.config) - set(new.config)):
            if key.startswith("net") and key[3:].isdigit():
                yield Impact(new.sid, "loses-network", f"{_what(new)} loses NIC {key} ({old.config[key]})")
            elif is_volume_key(old.kind, key) and not is_unused_key(key):
                volume, props = volume_of(old.kind, old.config[key])
                if props.get("media") == "cdrom" or volume in ("none", "cdrom", ""):
                    continue
                attached = {v.volid: v.key for v in new.volumes() if v.role != "unused"}
                if volume in attached:
                    continue  # still attached, under another key (a rollback can do that)
                kept = next((k for k, v in new.config.items() if is_unused_key(k) and v == volume), None)
                where = f"kept as {kept}" if kept else "its volume is destroyed"
                was_boot = any(v.key == key and v.is_boot for v in old.volumes())
                if was_boot and not any(v.is_boot for v in new.volumes()):
                    yield Impact(new.sid, "wont-boot", f"{_what(new)} loses its boot disk {key} ({where})")
                else:
                    yield Impact(new.sid, "degraded", f"{_what(new)} loses disk {key} ({where})")


def _guests_that_moved(before: ClusterModel, after: ClusterModel) -> list[int]:
    """Guests whose struct changed, or whose node's network did (the bridges their NICs need)."""
    nodes = set(before.nodes) | set(after.nodes)
    def network(model: ClusterModel, name: str) -> tuple[Any, Any]:  # staged rows and pending diff: the active config
        node = model.nodes.get(name)
        return (node.network, node.network_changes) if node is not None else (None, None)

    networks = {n for n in nodes if network(before, n) != network(after, n)}
    return [vmid for vmid, old in before.guests.items()
            if (new := after.guests.get(vmid)) is not None and (new != old or new.node in networks)]


def storage_space(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """A storage left with under 10% or under 10 GiB free: HIGH, and the guests on it are degraded."""
    reported: set[str] = set()
    for sid, rows in sorted(after.storage_status.items()):
        for node, row in sorted(rows.items()):
            old = before.storage_status.get(sid, {}).get(node, {})
            if sid in reported or "avail" not in row or "avail" not in old:
                continue
            free, total = as_int(row["avail"]), as_int(row.get("total"))
            if free >= as_int(old["avail"]):
                continue
            if not (free < LOW_SPACE_BYTES or (total and free < LOW_SPACE_FRACTION * total)):
                continue
            reported.add(sid)
            pct = f" ({100 * free / total:.1f}%)" if total else ""
            left = f"{free / GiB:.1f} GiB{pct} left"
            yield Impact(f"storage/{sid}", "degraded", f"storage {sid} fills: {left} after this change", risk=Risk.HIGH)
            shared = before.storage_shared(sid)
            for vmid, g in sorted(after.guests.items()):
                if vmid not in before.guests or g.template or (not shared and g.node != node):
                    continue  # new guests are the change itself; a template never writes
                keys = [v.key for v in g.volumes() if v.storage == sid and v.role not in ("cdrom", "unused")]
                if keys:
                    yield Impact(g.sid, "degraded", f"{_what(g)} writes to {sid} ({', '.join(keys)}): the storage fills, "
                                                    f"{left}; writes may fail", risk=Risk.HIGH)


def guest_impacts(change: Change, before: ClusterModel, after: ClusterModel) -> list[Impact]:
    impacts: list[Impact] = []
    impacts += downtime(before, after)
    impacts += ha_requests(before, after)
    impacts += destroyed(change, before, after)
    impacts += blocked_template_destroy(change, before)
    impacts += snapshots(before, after)
    impacts += config_effects(before, after)
    impacts += storage_space(before, after)
    return impacts
