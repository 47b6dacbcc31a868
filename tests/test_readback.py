"""After a correct apply, reading the cluster back matches the prediction: no false "differs from the prediction"."""

from __future__ import annotations

from pathlib import Path

import pytest

from proximo.testing import World

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_an_alias_that_sorts_before_an_existing_one_matches_the_prediction(tmp_path: Path) -> None:
    world = World(tmp_path)
    assert [a["name"] for a in world.model.firewall.cluster.aliases] == ["office"]
    async with world.host() as host:
        plan = await host.plan("firewall.alias.create", {"level": "cluster", "name": "aaa", "cidr": "10.1.0.0/16"}, world.actor)
        result = await host.apply(plan.plan_id, world.actor)
    assert result.ok and result.matches_prediction, result.mismatches


async def test_destroying_a_guest_removes_its_firewall_file_as_proxmox_does(tmp_path: Path) -> None:
    """API2/Qemu.pm and API2/LXC.pm destroy_vm call PVE::Firewall::remove_vmfw_conf($vmid) on every destroy."""
    world = World(tmp_path)
    vmid = next(v for v, g in sorted(world.model.guests.items()) if not g.running and not g.template)
    world.model.firewall.guest(vmid).rules.append({"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "22", "enable": 1})
    async with world.host() as host:
        plan = await host.plan("guest.destroy", {"vmid": vmid}, world.actor)
        host.approve(plan.plan_id, world.actor, world.person, typed_target=plan.target)
        result = await host.apply(plan.plan_id, world.actor)
    assert result.ok and result.matches_prediction, result.mismatches
    assert vmid not in world.model.firewall.guests


@pytest.mark.parametrize(("tool", "params"), [
    ("vm.create", {"node": "pve1", "vmid": 150, "name": "t", "memory": "512", "net0": "virtio,bridge=vmbr0,firewall=1"}),
    ("ct.create", {"node": "pve1", "vmid": 151, "ostemplate": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
                   "rootfs": "local-zfs:8", "net0": "name=eth0,bridge=vmbr0,firewall=1"}),
])
async def test_creating_a_guest_matches_the_prediction(tmp_path: Path, tool: str, params: dict[str, object]) -> None:
    """A new guest has no firewall file yet; read back, its firewall paths answer empty lists and options: the same."""
    world = World(tmp_path)
    async with world.host() as host:
        plan = await host.plan(tool, params, world.actor)
        if host.needs_person(plan):
            host.approve(plan.plan_id, world.actor, world.person, typed_target=plan.target)
        result = await host.apply(plan.plan_id, world.actor)
    assert result.ok and result.matches_prediction, result.mismatches
