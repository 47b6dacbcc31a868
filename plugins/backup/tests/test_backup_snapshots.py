"""Recovery points and their rules on clusters written from real API shapes: a PBS datastore's content (the
community.proxmox sample of GET /nodes/{node}/storage/{storage}/content on PBS) and a vzdump job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proximo import Risk
from proximo.model import job_prune_preview, load_snapshot, recovery_points
from proximo.testing import World, operator_access, snapshot_from

pytestmark = pytest.mark.anyio

OLD = "datastore:backup/vm/931/2023-12-14T04:34:34Z"
NEW = "datastore:backup/vm/931/2023-12-14T19:36:00Z"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _cluster(job: dict[str, Any] | None = None) -> dict[str, Any]:
    return snapshot_from({
        "/version": {"release": "9.1", "version": "9.1.2", "repoid": "6a3e57f2"},
        "/nodes": [{"node": "pve", "status": "online"}],
        "/cluster/resources": [
            {"id": "node/pve", "type": "node", "node": "pve", "status": "online"},
            {"id": "qemu/931", "type": "qemu", "node": "pve", "vmid": 931, "name": "app", "status": "stopped"},
        ],
        "/storage": [{"storage": "datastore", "type": "pbs", "server": "pbs.lan", "datastore": "main",
                      "content": "backup", "username": "backup@pbs", "shared": 1}],
        "/nodes/pve/qemu/931/config": {"name": "app", "memory": 2048},
        # the sample's rows, as PVE lists a PBS datastore's backups
        "/nodes/pve/storage/datastore/content": [
            {"content": "backup", "ctime": 1702528474, "format": "pbs-vm", "size": 273804166061, "subtype": "qemu",
             "vmid": 931, "volid": OLD},
            {"content": "backup", "ctime": 1702582560, "format": "pbs-vm", "size": 273804166059, "subtype": "qemu",
             "vmid": 931, "volid": NEW},
        ],
        "/cluster/backup": [job] if job else [],
        **operator_access(),
    })


def test_pbs_snapshots_are_a_guests_recovery_points() -> None:
    points = recovery_points(load_snapshot(_cluster()))[931]
    assert [b.volid for b in points.backups] == [NEW, OLD] and points.jobs == []


def test_a_jobs_next_run_on_pbs_prunes_by_the_group() -> None:
    job = {"id": "nightly", "type": "vzdump", "schedule": "21:00", "storage": "datastore", "vmid": "931", "enabled": 1,
           "prune-backups": "keep-last=2", "next-run": 1702670000}
    # the run adds the newest; keep-last=2 keeps it and NEW
    assert job_prune_preview(load_snapshot(_cluster(job)), job) == [OLD]


async def test_deleting_a_pbs_snapshot_names_the_one_that_remains(tmp_path: Path) -> None:
    world = World(tmp_path, _cluster())
    async with world.host() as host:
        plan = await host.plan("backup.delete", {"volume": NEW}, world.actor)
        assert plan.steps[0].path == "/nodes/pve/storage/datastore/content/datastore:backup%2Fvm%2F931%2F2023-12-14T19:36:00Z"
        (lost,) = [i for i in plan.impacts if i.effect == "recovery-point-lost"]
        assert lost.risk is Risk.MEDIUM and f"newest remaining: {OLD}" in lost.reason
        covered = await host.plan("backup.job.create", {"id": "nightly", "schedule": "21:00", "vmid": "931",
                                                        "storage": "datastore"}, world.actor)
        assert not covered.impacts  # a PBS datastore takes backups: nothing fails
