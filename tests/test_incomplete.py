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


def pool_token_world(home: Path) -> World:
    """The demo cluster with Proximo's token (and its user) limited to the pool ``prod``: PVEVMAdmin there, nothing
    else. Pool ``prod`` holds guests 104, 105, 106 and 202 and the storage nfs-backup."""
    import copy

    from proximo.sim import demo_snapshot
    from proximo.testing import TOKEN_ID

    doc = copy.deepcopy(demo_snapshot())
    owner = TOKEN_ID.split("!")[0]
    acl = [a for a in doc["api"]["/access/acl"] if a["ugid"] not in (owner, TOKEN_ID)]
    acl += [{"path": "/pool/prod", "type": kind, "ugid": ugid, "roleid": "PVEVMAdmin", "propagate": 1}
            for kind, ugid in (("user", owner), ("token", TOKEN_ID))]
    doc["api"]["/access/acl"] = acl
    return World(home, doc)


async def test_a_token_limited_to_one_pool_makes_the_plan_incomplete_and_names_what_it_cannot_see(tmp_path: Path) -> None:
    world = pool_token_world(tmp_path)
    async with world.host() as host:
        state = await host.state()
        plan = await host.plan("guest.config.set", {"vmid": 105, "description": "pool-scoped"}, world.actor)
    # PVE lists to this token only what it may audit, without a 403: the guests of pool prod, no storage outside it
    assert sorted(state.model.guests) == [104, 105, 106, 202]
    assert plan.complete is False and plan.risk >= Risk.HIGH
    assert "guests it may not audit (no VM.Audit on /vms)" in plan.unseen
    assert "storages it may not audit (no Datastore.Audit on /storage)" in plan.unseen
    assert "pools it may not audit (no Pool.Audit on /pool)" in plan.unseen


async def test_the_simulator_refuses_a_guest_the_pool_token_may_not_audit(tmp_path: Path) -> None:
    from proximo.testing import TOKEN_ID

    world = pool_token_world(tmp_path)
    headers = {"authorization": f"PVEAPIToken={TOKEN_ID}={world.secret}"}
    status, body = await world.sim.handle("GET", "/api2/json/nodes/pve3/qemu/110/config", "", headers, b"")
    assert status == 403 and body["message"] == "Permission check failed (/vms/110, VM.Audit)\n"
    status, body = await world.sim.handle("GET", "/api2/json/nodes/pve1/qemu/105/config", "", headers, b"")
    assert status == 200 and body["data"]["name"] == "db-01"
