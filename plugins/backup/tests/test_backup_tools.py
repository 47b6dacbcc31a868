"""The backup pack on the simulated demo cluster (real API shapes: proximo/sim/demo_cluster.json): recovery points,
what deleting, pruning, backing up and restoring do to them, through the named tools and api.call alike, and the
simulator doing what the plan said."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proximo import ApiCall, BadInput, NotModelled, PveApiError, Risk
from proximo.testing import World
from proximo.trust._ledger import Actor

pytestmark = pytest.mark.anyio
PERSON = Actor(token_id="-", face="terminal", client="alice@workstation")
LAST_203 = "nfs-backup:backup/vzdump-lxc-203-2026_11_27-21_03_15.tar.zst"
LOCAL_105 = "local:backup/vzdump-qemu-105-2026_11_28-02_00_03.vma.zst"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


async def plan(world: World, tool: str, params: dict[str, Any]) -> Any:
    async with world.host() as host:
        return await host.plan(tool, params, world.actor)


async def read(world: World, tool: str, params: dict[str, Any]) -> Any:
    async with world.host() as host:
        return (await host.read(tool, params, world.actor)).data


async def apply(world: World, tool: str, params: dict[str, Any]) -> Any:
    async with world.host() as host:
        p = await host.plan(tool, params, world.actor)
        assert not p.blocked, p.blockers
        if host.needs_person(p):
            host.approve(p.plan_id, PERSON, world.person)
        result = await host.apply(p.plan_id, world.actor)
        assert result.ok, result
        return p


def impacts(p: Any, effect: str) -> dict[str, Any]:
    return {i.target: i for i in p.impacts if i.effect == effect}


# --- the view ---------------------------------------------------------------------------------------------------


async def test_recovery_points_name_each_guests_backups_and_the_enabled_jobs_covering_it(world: World) -> None:
    rows = {r["vmid"]: r for r in await read(world, "backup.list", {})}
    # 105 is in backup-daily (all but 9000), backup-db (vmid 105,201) and backup-pool (pool prod)
    assert rows[105]["jobs"] == ["backup-daily", "backup-db", "backup-pool"]
    assert rows[105]["newest"] == LOCAL_105 and rows[105]["count"] == 3
    assert rows[9000]["jobs"] == [] and rows[9000]["count"] == 0  # the excluded template
    # a shared storage's backup is listed by every node: counted once
    assert [b["volid"] for b in rows[203]["backups"]] == [LAST_203]


async def test_not_covered_lists_the_guests_no_enabled_job_selects(world: World) -> None:
    assert [r["vmid"] for r in await read(world, "backup.not_covered", {})] == [9000]
    world.model.backup_jobs[0]["enabled"] = 0  # backup-daily disabled: PVE's not-backed-up still counts it
    rows = {r["vmid"]: r for r in await read(world, "backup.not_covered", {})}
    assert rows[203]["disabled_only"] is True and rows[203]["newest"] == LAST_203
    assert 105 not in rows  # backup-db and backup-pool still cover it
    async with world.host() as host:  # the simulator's own answer, as pve-manager's BackupInfo.pm gives it
        pve = await host.source.get("/cluster/backup-info/not-backed-up")
    assert pve == [{"vmid": 9000, "type": "qemu", "name": world.model.guests[9000].name}]


# --- deleting and pruning -----------------------------------------------------------------------------------------


async def test_deleting_a_guests_last_backup_is_high_and_irreversible(world: World) -> None:
    p = await plan(world, "backup.delete", {"volume": LAST_203})
    assert p.steps == [ApiCall("DELETE", "/nodes/pve1/storage/nfs-backup/content/nfs-backup:backup%2Fvzdump-lxc-203-2026_11_27-21_03_15.tar.zst")]
    lost = impacts(p, "recovery-point-lost")["lxc/203"]
    assert lost.risk is Risk.HIGH and "no backup of it remains" in lost.reason
    assert p.risk is Risk.HIGH and p.undo is None and "gone" in p.undo_note
    assert not impacts(p, "data-loss")  # a backup is a recovery point, not the guest's own data


async def test_deleting_one_of_several_names_the_newest_remaining_through_api_call_too(world: World) -> None:
    path = "/nodes/pve1/storage/local/content/local:backup%2Fvzdump-qemu-105-2026_11_28-02_00_03.vma.zst"
    p = await plan(world, "api.call", {"method": "DELETE", "path": path})
    lost = impacts(p, "recovery-point-lost")["qemu/105"]
    assert lost.risk is Risk.MEDIUM
    assert "newest remaining: nfs-backup:backup/vzdump-qemu-105-2026_11_27-21_01_12.vma.zst" in lost.reason


@pytest.mark.parametrize("path", [
    "/nodes/pve1/storage/local/content/local:backup%2F..%2F..%2Fetc",
    "/nodes/pve1/storage/local/content/local:backup%2F%2e%2e",
    "/nodes/pve1/storage/local/content/local:backup%252Fx",
    "/nodes/pve1/storage/local/content/local%2Fbackup",
    "/nodes/pve1/storage/local/content/local:backup%2fvzdump-qemu-105-2026_11_28-02_00_03.vma.zst",
])
async def test_api_call_takes_only_a_volume_ids_own_encoded_slash(world: World, path: str) -> None:
    with pytest.raises(BadInput):
        await plan(world, "api.call", {"method": "DELETE", "path": path})


async def test_a_protected_backup_is_not_deleted_as_proxmox_refuses(world: World) -> None:
    await apply(world, "backup.protect", {"volume": LAST_203})
    with pytest.raises(BadInput, match="protected"):
        await plan(world, "backup.delete", {"volume": LAST_203})
    raw = await plan(world, "api.call", {"method": "DELETE",
                                         "path": "/nodes/pve2/storage/nfs-backup/content/nfs-backup:backup%2Fvzdump-lxc-203-2026_11_27-21_03_15.tar.zst"})
    assert raw.blocked and "cannot remove protected volume" in " ".join(raw.blockers)


async def test_protection_is_undone_by_clearing_it(world: World) -> None:
    p = await apply(world, "backup.protect", {"volume": LOCAL_105, "notes": "before the upgrade"})
    assert p.undo == [ApiCall("PUT", "/nodes/pve1/storage/local/content/local:backup%2Fvzdump-qemu-105-2026_11_28-02_00_03.vma.zst",
                              {"notes": "db-01", "protected": 0})]
    row = world.model.volumes["local"]["pve1"][LOCAL_105]
    assert row["protected"] == 1 and row["notes"] == "before the upgrade"


async def test_max_protected_backups_is_enforced_as_pve_storage_does(world: World) -> None:
    world.model.storages["nfs-backup"]["max-protected-backups"] = 1
    await apply(world, "backup.protect", {"volume": "nfs-backup:backup/vzdump-lxc-202-2026_11_27-21_00_40.tar.zst"})
    again = await plan(world, "backup.protect", {"volume": "nfs-backup:backup/vzdump-lxc-202-2026_11_22-01_00_51.tar.zst"})
    assert again.blocked and "limited to 1 on storage 'nfs-backup'" in " ".join(again.blockers)


async def test_prune_names_every_guests_loss_and_protected_backups_are_kept(world: World) -> None:
    preview = await read(world, "backup.prune_preview", {"storage": "nfs-backup", "prune-backups": "keep-last=1", "vmid": 202})
    assert [(e["volid"].rpartition("-")[0][-10:], e["mark"]) for e in preview] == [("2026_11_27", "keep"), ("2026_11_22", "remove")]
    p = await plan(world, "backup.prune", {"storage": "nfs-backup", "prune-backups": "keep-last=1"})
    assert set(impacts(p, "recovery-point-lost")) == {"lxc/202", "qemu/104", "qemu/105"}
    assert all(i.risk is Risk.MEDIUM for i in p.impacts)
    await apply(world, "backup.protect", {"volume": "nfs-backup:backup/vzdump-lxc-202-2026_11_22-01_00_51.tar.zst"})
    again = await plan(world, "backup.prune", {"storage": "nfs-backup", "prune-backups": "keep-last=1"})
    assert "lxc/202" not in impacts(again, "recovery-point-lost")  # protected: never pruned


async def test_the_simulator_prunes_what_the_dry_run_marked(world: World) -> None:
    preview = await read(world, "backup.prune_preview", {"storage": "nfs-backup", "prune-backups": "keep-last=1"})
    await apply(world, "backup.prune", {"storage": "nfs-backup", "prune-backups": "keep-last=1"})
    left = set(world.model.volumes["nfs-backup"][""])
    assert {e["volid"] for e in preview if e["mark"] == "remove"} == {e["volid"] for e in preview} - left
    assert left == {e["volid"] for e in preview if e["mark"] in ("keep", "protected")}
    assert "nfs-backup:backup/vzdump-qemu-104-2026_11_22-01_00_04.vma.zst" in left  # the demo's protected backup


async def test_prune_without_retention_is_refused_as_proxmox_does(world: World) -> None:
    with pytest.raises(BadInput, match="no prune-backups options configured for storage 'local'"):
        await plan(world, "backup.prune", {"storage": "local"})
    raw = await plan(world, "api.call", {"method": "DELETE", "path": "/nodes/pve1/storage/local/prunebackups"})
    assert raw.blocked and "no prune-backups options configured" in " ".join(raw.blockers)


# --- jobs ------------------------------------------------------------------------------------------------------


async def test_a_retention_change_names_what_the_next_run_prunes_and_undoes(world: World) -> None:
    p = await plan(world, "backup.job.update", {"id": "backup-db", "prune-backups": "keep-last=1"})
    lost = impacts(p, "recovery-point-lost")["backup/backup-db"]
    # the next run's own backup is the newest: keep-last=1 keeps it and removes the one there now
    assert LOCAL_105 in lost.reason and "local:backup/vzdump-lxc-201-2026_11_28-02_09_51.tar.zst" in lost.reason
    assert p.undo == [ApiCall("PUT", "/cluster/backup/backup-db", {
        "compress": "zstd", "enabled": 1, "mode": "snapshot", "notes-template": "{{guestname}}", "schedule": "sat 02:00",
        "storage": "local", "vmid": "105,201", "delete": "prune-backups"})]


async def test_a_guest_no_enabled_job_covers_any_more_is_named(world: World) -> None:
    p = await plan(world, "backup.job.update", {"id": "backup-daily", "exclude": "9000,203"})
    gone = impacts(p, "backup-fails")["lxc/203"]
    assert "no enabled backup job covers lxc/203" in gone.reason and LAST_203 in gone.reason
    raw = await plan(world, "api.call", {"method": "PUT", "path": "/cluster/backup/backup-daily", "params": {"enabled": 0}})
    assert "lxc/203" in impacts(raw, "backup-fails") and "qemu/107" in impacts(raw, "backup-fails")
    assert impacts(raw, "backup-fails")["qemu/107"].risk is Risk.HIGH  # 107 has no backup at all


async def test_job_create_and_delete_undo_each_other(world: World) -> None:
    created = await apply(world, "backup.job.create", {"id": "nightly-web", "schedule": "02:30", "vmid": "104",
                                                       "storage": "nfs-backup", "prune-backups": "keep-daily=3"})
    assert created.undo == [ApiCall("DELETE", "/cluster/backup/nightly-web")]
    job = next(j for j in world.model.backup_jobs if j["id"] == "nightly-web")
    assert job["enabled"] == 1 and job["type"] == "vzdump"
    deleted = await plan(world, "backup.job.delete", {"id": "nightly-web"})
    assert deleted.undo and deleted.undo[0].method == "POST" and deleted.undo[0].params["id"] == "nightly-web"
    with pytest.raises(BadInput, match="already exists"):
        await plan(world, "backup.job.create", {"id": "nightly-web", "schedule": "02:30", "vmid": "104"})


# --- backing up --------------------------------------------------------------------------------------------------


async def test_stop_mode_is_downtime_for_running_guests_and_a_backup_storage_is_required(world: World) -> None:
    p = await plan(world, "backup.now", {"node": "pve1", "vmid": "104,105", "storage": "nfs-backup", "mode": "stop"})
    down = impacts(p, "downtime")
    assert set(down) == {"qemu/104", "qemu/105"} and "stopped for the backup" in down["qemu/104"].reason
    snap = await plan(world, "backup.now", {"node": "pve1", "vmid": "104", "storage": "nfs-backup"})
    assert not impacts(snap, "downtime")
    # local-zfs takes images only: vzdump's storage_info refuses it, whichever tool made the call
    named = await plan(world, "backup.now", {"node": "pve1", "vmid": "104", "storage": "local-zfs"})
    assert named.blocked and "can't use storage 'local-zfs' for backups - wrong content type" in " ".join(named.blockers)
    raw = await plan(world, "api.call", {"method": "POST", "path": "/nodes/pve1/vzdump", "params": {"vmid": "104", "storage": "local-zfs"}})
    assert raw.blocked and "wrong content type" in " ".join(raw.blockers)


async def test_vzdump_runs_as_a_task_that_creates_the_backup_and_prunes_by_the_storage_retention(world: World) -> None:
    before = {r["vmid"]: r for r in await read(world, "backup.list", {"vmid": 203})}[203]
    await apply(world, "backup.now", {"node": "pve3", "vmid": "203", "storage": "nfs-backup"})
    after = {r["vmid"]: r for r in await read(world, "backup.list", {"vmid": 203})}[203]
    assert after["count"] == before["count"] + 1  # keep-daily=7,keep-weekly=4 keeps yesterday's too
    newest = after["newest"]
    assert newest.startswith("nfs-backup:backup/vzdump-lxc-203-") and newest.endswith(".tar.zst")
    row = next(b for b in after["backups"] if b["volid"] == newest)
    assert row["notes"] is None  # no notes-template given: none
    task = next(t for t in world.model.tasks.values() if t.type == "vzdump")
    assert task.id == "203" and task.exitstatus == "OK"


async def test_a_running_ha_guest_cannot_be_backed_up_in_stop_mode(world: World) -> None:
    world.model.ha_resources.append({"sid": "vm:104", "state": "started", "type": "vm"})
    raw = await plan(world, "api.call", {"method": "POST", "path": "/nodes/pve1/vzdump", "params": {"vmid": "104", "mode": "stop", "storage": "nfs-backup"}})
    assert raw.blocked and "Cannot execute a backup with stop mode on a HA managed" in " ".join(raw.blockers)


# --- restoring -----------------------------------------------------------------------------------------------------


async def test_restore_over_an_existing_guest_is_critical_and_names_its_disks(world: World) -> None:
    await apply(world, "backup.now", {"node": "pve1", "vmid": "104", "storage": "nfs-backup"})
    newest = {r["vmid"]: r for r in await read(world, "backup.list", {"vmid": 104})}[104]["newest"]
    with pytest.raises(BadInput, match="needs force=true"):
        await plan(world, "backup.restore", {"archive": newest, "vmid": 104})
    world.model.guests[104].resource["status"] = "stopped"
    p = await plan(world, "backup.restore", {"archive": newest, "vmid": 104, "force": True})
    assert p.steps == [ApiCall("POST", "/nodes/pve1/qemu", {"vmid": 104, "archive": newest, "force": 1})]
    loss = impacts(p, "data-loss")["qemu/104"]
    assert loss.risk is Risk.CRITICAL and "destroys its current disks" in loss.reason and "the one being restored" in loss.reason
    assert p.risk is Risk.CRITICAL


async def test_restore_of_a_running_guest_is_refused_as_proxmox_does(world: World) -> None:
    await apply(world, "backup.now", {"node": "pve1", "vmid": "104", "storage": "nfs-backup"})
    newest = {r["vmid"]: r for r in await read(world, "backup.list", {"vmid": 104})}[104]["newest"]
    p = await plan(world, "backup.restore", {"archive": newest, "vmid": 104, "force": True})
    assert p.blocked and "unable to restore VM 104 - vm is running" in " ".join(p.blockers)


async def test_restore_to_a_new_vmid_reports_mac_conflicts_unless_unique_and_the_storage_it_fills(world: World) -> None:
    await apply(world, "backup.now", {"node": "pve1", "vmid": "104", "storage": "nfs-backup"})
    newest = {r["vmid"]: r for r in await read(world, "backup.list", {"vmid": 104})}[104]["newest"]
    p = await plan(world, "backup.restore", {"archive": newest, "vmid": 140, "start": True})
    conflict = impacts(p, "loses-network")["qemu/140"]
    assert "of qemu/104" in conflict.reason and "unique=1" in conflict.reason and "starts next to it" in conflict.reason
    assert any(t.startswith("storage/") for t in impacts(p, "degraded"))
    unique = await plan(world, "backup.restore", {"archive": newest, "vmid": 140, "unique": True, "start": True})
    assert not impacts(unique, "loses-network")
    assert "comes up" not in str(unique.impacts) and any("starts next to qemu/104" in i.reason for i in unique.impacts)
    done = await apply(world, "backup.restore", {"archive": newest, "vmid": 140, "unique": True})
    assert done.steps[0].params == {"vmid": 140, "archive": newest, "unique": 1}
    restored = world.model.guests[140]
    assert restored.node == "pve1" and restored.config["name"] == world.model.guests[104].config["name"]
    assert {v.volid.partition(":")[2].split("-disk")[0] for v in restored.volumes() if v.role == "disk"} == {"vm-140"}


async def test_a_backup_whose_config_was_not_read_is_not_restored_by_guess(world: World) -> None:
    world.model.backup_configs.pop(LAST_203)  # GET .../vzdump/extractconfig failed for it when the state was read
    with pytest.raises(NotModelled, match="configuration inside backup .* was not read"):
        await plan(world, "backup.restore", {"archive": LAST_203, "vmid": 260})
    with pytest.raises(NotModelled, match="configuration inside backup .* was not read"):
        await plan(world, "api.call", {"method": "POST", "path": "/nodes/pve3/lxc",
                                       "params": {"vmid": 260, "ostemplate": LAST_203, "restore": 1}})


async def test_a_retention_pve_would_not_parse_is_refused_with_its_answer(world: World) -> None:
    # pve-storage Storage/Plugin.pm validate_prune_backups: keep-all beside a positive option
    with pytest.raises(BadInput, match="keep-all cannot be set together with other options"):
        await plan(world, "backup.job.update", {"id": "backup-db", "prune-backups": "keep-all=1,keep-last=2"})
    with pytest.raises(BadInput, match="keep-forever: property is not defined in schema"):
        await plan(world, "api.call", {"method": "DELETE", "path": "/nodes/pve1/storage/nfs-backup/prunebackups",
                                       "params": {"prune-backups": "keep-forever=1"}})
    # every option 0 is keep-all: nothing is pruned
    p = await plan(world, "backup.prune", {"storage": "nfs-backup", "prune-backups": "keep-last=0,keep-daily=0"})
    assert not p.impacts


async def test_a_container_is_restored_from_the_config_inside_its_backup(world: World) -> None:
    p = await apply(world, "backup.restore", {"archive": LAST_203, "vmid": 260, "storage": "local-zfs", "node": "pve3"})
    assert p.steps == [ApiCall("POST", "/nodes/pve3/lxc", {"vmid": 260, "ostemplate": LAST_203, "restore": 1, "storage": "local-zfs"})]
    ct = world.model.guests[260]
    assert ct.kind == "lxc" and ct.config["hostname"] == "media-01"
    assert ct.config["rootfs"].startswith("local-zfs:subvol-260-disk-")  # allocated anew on the storage asked for


async def test_the_simulator_serves_a_backups_attributes_at_its_encoded_path(world: World) -> None:
    await apply(world, "backup.protect", {"volume": LOCAL_105, "notes": "keep me"})
    async with world.host() as host:
        source = host.source
        info = await source.get("/nodes/pve1/storage/local/content/local:backup%2Fvzdump-qemu-105-2026_11_28-02_00_03.vma.zst")
    assert info == {"size": 61899112448, "used": 61899112448, "format": "vma.zst", "notes": "keep me", "protected": 1,
                    "path": "/var/lib/vz/dump/vzdump-qemu-105-2026_11_28-02_00_03.vma.zst"}


async def test_a_backup_that_may_not_fit_its_storage_is_said_so(world: World) -> None:
    world.model.storage_status["nfs-backup"]["pve1"]["avail"] = 1024**3  # 1 GiB left; db-01's disks are far bigger
    p = await plan(world, "backup.now", {"node": "pve1", "vmid": "105", "storage": "nfs-backup"})
    fit = impacts(p, "backup-fails")["storage/nfs-backup"]
    assert fit.risk is Risk.MEDIUM and "1.0 GiB free on pve1: it may not fit" in fit.reason


async def test_a_job_pointed_at_a_storage_that_takes_no_backups_fails_for_its_guests(world: World) -> None:
    # Proxmox accepts the job (its check_config does not look at the storage); every run then fails in storage_info
    p = await plan(world, "backup.job.create", {"id": "to-zfs", "schedule": "03:00", "vmid": "104,202", "storage": "local-zfs"})
    fails = impacts(p, "backup-fails")["backup/to-zfs"]
    assert "wrong content type" in fails.reason and "qemu/104, lxc/202" in fails.reason
    raw = await plan(world, "api.call", {"method": "PUT", "path": "/cluster/backup/backup-db", "params": {"storage": "local-zfs"}})
    assert "qemu/105, lxc/201 will not be backed up" in impacts(raw, "backup-fails")["backup/backup-db"].reason


def test_proxmoxs_own_permission_checks_on_a_backup(world: World) -> None:
    """bob@pve (group operators: BackupOperator on /storage/nfs-backup, VMOperator on /pool/prod) may allocate space on
    nfs-backup but holds VM.Backup on no guest: Content.pm delete and PruneBackups.pm refuse him, as Proxmox does."""
    semantics, model = world.packs.semantics, world.model
    path = "/nodes/pve1/storage/nfs-backup/content/nfs-backup:backup%2Fvzdump-lxc-203-2026_11_27-21_03_15.tar.zst"
    with pytest.raises(PveApiError, match=r"Permission check failed \(/vms/203, VM.Backup\)"):
        semantics.execute(model, "DELETE", path, user="bob@pve")
    with pytest.raises(PveApiError, match=r"Permission check failed \(/storage/nfs-backup, Datastore.Allocate\)"):
        semantics.execute(model, "DELETE", "/nodes/pve1/storage/nfs-backup/prunebackups", {"prune-backups": "keep-last=1"}, user="bob@pve")
    with pytest.raises(PveApiError, match=r"Permission check failed \(/vms/104, VM.Backup\)"):
        semantics.execute(model, "POST", "/nodes/pve1/vzdump", {"vmid": "104", "storage": "nfs-backup"}, user="bob@pve")
    assert LAST_203 in model.volumes["nfs-backup"][""]  # nothing happened
    semantics.execute(model, "DELETE", path, user="alice@pve")  # an administrator may
    assert LAST_203 not in model.volumes["nfs-backup"][""]


async def test_a_storages_retention_change_names_what_its_jobs_next_runs_prune(world: World) -> None:
    # backup-daily and backup-pool write to nfs-backup without retention of their own: the storage's is theirs
    p = await plan(world, "storage.update", {"storage": "nfs-backup", "prune-backups": "keep-last=1"})
    pruned = impacts(p, "recovery-point-lost")
    assert set(pruned) == {"backup/backup-daily", "backup/backup-pool"}
    assert "nfs-backup:backup/vzdump-lxc-202-2026_11_27-21_00_40.tar.zst" in pruned["backup/backup-daily"].reason
    assert "nfs-backup:backup/vzdump-qemu-104-2026_11_22-01_00_04.vma.zst" not in pruned["backup/backup-daily"].reason  # protected
