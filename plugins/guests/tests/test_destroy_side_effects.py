"""A destroy's side effects on other objects are impacts on those objects, whatever tool made the steps.

qemu-server API2/Qemu.pm destroy_vm: remove_vm_access (ACLs on /vms/<vmid>, pool membership) always; with
``purge``, ReplicationConfig.pm remove_vmid_jobs (deletes the job entries outright, so the replica on the target
stays) and VZDump::Plugin remove_vmid_from_backup_jobs (drops the id from each job; a job left naming no guest goes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proximo.testing import World

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("tool", ["guest.destroy", "api.call"])
async def test_purge_names_the_jobs_it_edits_the_replica_it_leaves_and_the_acl_and_pool_it_drops(tmp_path: Path, tool: str) -> None:
    world = World(tmp_path)
    world.model.guests[104].resource["status"] = "stopped"
    world.model.acl.append({"path": "/vms/104", "type": "user", "ugid": "bob@pve", "roleid": "PVEVMUser", "propagate": 1})
    world.model.backup_jobs.append({"id": "backup-web", "vmid": "104", "storage": "nfs-backup", "schedule": "daily", "enabled": 1})
    node = world.model.guests[104].node
    params = {"vmid": 104, "purge": 1} if tool == "guest.destroy" else {
        "method": "DELETE", "path": f"/nodes/{node}/qemu/104", "params": {"purge": 1}}
    async with world.host() as host:
        plan = await host.plan(tool, params, world.actor)
    found = {(i.target, i.effect): i.reason for i in plan.impacts}
    assert found[("replication/104-0", "replication-fails")] == (
        "replication job 104-0 (pve1 -> pve2) is removed; its replica on pve2 (local-zfs:vm-104-disk-0) stays there: "
        "no job removes it now")
    assert found[("backup/backup-web", "backup-fails")] == "backup job backup-web is removed: it backs up nothing any more"
    assert found[("user/bob@pve", "privilege-loss")] == "the ACL entry PVEVMUser on /vms/104 is removed with its object"
    assert ("pool/prod", "privilege-loss") in found
    assert ("volume/local-zfs:vm-104-disk-0", "data-loss") in found  # its own disk on pve1
    assert plan.risk.value == "CRITICAL"


def test_a_backup_job_edited_to_drop_a_guest_is_a_backup_impact(tmp_path: Path) -> None:
    """Any edit that drops a guest from a job's vmid list (the backups pack's tools, or api.call once modelled)."""
    from proximo_storage._impact import job_config_changes

    before = World(tmp_path).model
    after = before.copy()
    next(j for j in after.backup_jobs if j["id"] == "backup-db")["vmid"] = "105"
    assert [(i.target, i.effect, i.reason) for i in job_config_changes(before, after)] == [
        ("backup/backup-db", "backup-fails", "backup job backup-db no longer names guest 201")]
