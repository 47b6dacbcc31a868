"""Power actions checked in the order Proxmox checks them (qemu-server API2/Qemu.pm vm_stop / vm_shutdown and
QemuServer.pm _do_vm_stop; pve-container API2/LXC/Status.pm vm_stop / vm_shutdown)."""

from __future__ import annotations

from pathlib import Path

import pytest

from proximo import BadInput, PveApiError
from proximo.testing import World

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("action", ["stop", "shutdown"])
async def test_stopping_a_stopped_vm_is_a_task_that_ends_ok(tmp_path: Path, action: str) -> None:
    """_do_vm_stop: `return if !$pid` (before the lock is even read): the task ends OK and nothing changes."""
    world = World(tmp_path)
    assert not world.model.guests[108].running
    async with world.host() as host:
        plan = await host.plan(f"guest.{action}", {"vmid": 108}, world.actor)
        assert not plan.blocked, plan.blockers
        result = await host.apply(plan.plan_id, world.actor)
    assert result.ok and result.matches_prediction and result.steps[0].exitstatus == "OK"
    assert not world.model.guests[108].running


@pytest.mark.parametrize("action", ["stop", "shutdown"])
async def test_a_stopped_ha_container_is_refused_before_the_ha_branch(tmp_path: Path, action: str) -> None:
    """LXC/Status.pm: `die "CT $vmid not running"` comes before the HA check, so HA never sees the request."""
    world = World(tmp_path)
    world.model.guests[202].resource["status"] = "stopped"
    assert any(r["sid"] == "ct:202" for r in world.model.ha_resources)
    async with world.host() as host:
        plan = await host.plan(f"guest.{action}", {"vmid": 202}, world.actor)
    assert plan.blocked and f"POST /nodes/{world.model.guests[202].node}/lxc/202/status/{action}: Proxmox would refuse: CT 202 not running" in plan.blockers


@pytest.mark.parametrize("vmid", [104, 202])
async def test_overrule_shutdown_on_an_ha_guest_is_a_parameter_error(tmp_path: Path, vmid: int) -> None:
    """raise_param_exc({'overrule-shutdown' => "Not applicable for HA resources."}): a 400, so bad input."""
    world = World(tmp_path)
    async with world.host() as host:
        with pytest.raises(BadInput, match=r"400 Parameter verification failed\. \(overrule-shutdown: Not applicable for HA resources\.\)"):
            await host.plan("guest.stop", {"vmid": vmid, "overrule-shutdown": 1}, world.actor)


async def test_a_paused_vm_is_not_shut_down_unless_forced(tmp_path: Path) -> None:
    """Qemu.pm vm_shutdown: a paused VM would take the powerdown with it when resumed: refused, or stopped with forceStop.

    Checked on the simulator: the predictor does not learn that a VM is paused (that is GET .../status/current's
    qmpstatus, which the state read does not fetch per guest), so a plan cannot see it; Proxmox refuses at apply.
    """
    world = World(tmp_path)
    node = world.model.guests[105].node
    world.model.guests[105].paused = True
    path = f"/nodes/{node}/qemu/105/status/shutdown"
    with pytest.raises(PveApiError, match="^500 VM is paused - cannot shutdown$"):
        world.packs.semantics.execute(world.model, "POST", path, {})
    world.packs.semantics.execute(world.model, "POST", path, {"forceStop": 1})
    assert not world.model.guests[105].running and not world.model.guests[105].paused
