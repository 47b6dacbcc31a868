"""A part of the cluster the token cannot read makes every plan incomplete, and at least HIGH."""

from __future__ import annotations

from pathlib import Path

import pytest

from proximo import Risk
from proximo.testing import World

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_403_on_a_read_makes_the_plan_incomplete_and_high(tmp_path: Path) -> None:
    world = World(tmp_path)
    # nfs-backup backs up guests through backup jobs: a token that cannot read /cluster/backup would miss that
    world.sim.inject_fault("GET", r"^/cluster/backup$", 403, "Permission check failed (/, Sys.Audit)")
    async with world.host() as host:
        plan = await host.plan("storage.update", {"storage": "cifs-iso", "content": "iso,vztmpl"}, world.actor)
    assert plan.complete is False
    assert plan.unseen == ["/cluster/backup"]
    assert plan.risk is Risk.HIGH  # would be MEDIUM with full visibility


async def test_the_same_plan_with_full_visibility_is_medium(tmp_path: Path) -> None:
    world = World(tmp_path)
    async with world.host() as host:
        plan = await host.plan("storage.update", {"storage": "cifs-iso", "content": "iso,vztmpl"}, world.actor)
    assert plan.complete is True and plan.unseen == [] and plan.risk is Risk.MEDIUM and plan.impacts == []


async def test_a_server_error_on_a_read_fails_the_plan_instead_of_under_reporting(tmp_path: Path) -> None:
    from proximo import PveApiError

    world = World(tmp_path)
    world.sim.inject_fault("GET", r"^/storage$", 500, "pvestatd is down", times=10)
    async with world.host() as host:
        with pytest.raises(PveApiError, match="pvestatd is down"):
            await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
