"""Every step sends Proxmox's digest where the endpoint takes one (pve-firewall's assert_if_modified), so two
plans made from the same state cannot both land: the second one's step is refused by Proxmox itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from proximo import ApiCall, Plan
from proximo.testing import World

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _get(world: World, path: str) -> Any:
    async with httpx.AsyncClient(transport=world.transport(), base_url="http://pve.sim:8006/api2/json",
                                 headers={"Authorization": f"PVEAPIToken=proximo@pve!agent={world.secret}"}) as client:
        return (await client.get(path)).json()["data"]


async def _send(world: World, step: ApiCall) -> httpx.Response:
    async with httpx.AsyncClient(transport=world.transport(), base_url="http://pve.sim:8006/api2/json",
                                 headers={"Authorization": f"PVEAPIToken=proximo@pve!agent={world.secret}"}) as client:
        return await client.request(step.method, step.path, data={k: str(v) for k, v in step.params.items()})


def _only_step(plan: Plan) -> ApiCall:
    assert not plan.blocked, plan.blockers
    (step,) = plan.steps
    assert isinstance(step, ApiCall)
    return step


async def test_alias_ipset_rule_and_option_steps_carry_the_digest_proxmox_shows(tmp_path: Path) -> None:
    world = World(tmp_path)
    async with world.host() as host:
        await host.apply((await host.plan("firewall.ipset.create", {"level": "cluster", "name": "web"}, world.actor)).plan_id,
                         world.actor)
        await host.apply((await host.plan("firewall.ipset.add", {"level": "cluster", "name": "web", "cidr": "10.0.0.5"},
                                          world.actor)).plan_id, world.actor)
        aliases = await _get(world, "/cluster/firewall/aliases")
        entries = await _get(world, "/cluster/firewall/ipset/web")
        rules = await _get(world, f"/nodes/{world.model.guests[104].node}/qemu/104/firewall/rules")
        options = await _get(world, "/cluster/firewall/options")
        cases = [
            ("firewall.alias.update", {"level": "cluster", "name": "office", "cidr": "192.168.2.0/24"}, aliases[0]["digest"]),
            ("firewall.alias.delete", {"level": "cluster", "name": "office"}, aliases[0]["digest"]),
            ("firewall.ipset.remove", {"level": "cluster", "name": "web", "cidr": "10.0.0.5"}, entries[0]["digest"]),
            ("firewall.rule.delete", {"level": "qemu/104", "pos": 0}, rules[0]["digest"]),
            ("firewall.rule.move", {"level": "qemu/104", "pos": 0, "moveto": 2}, rules[0]["digest"]),
            ("firewall.rule.add", {"level": "qemu/104", "type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "8080"},
             rules[0]["digest"]),
            ("firewall.options.set", {"level": "cluster", "log_ratelimit": "enable=1,rate=2/second"}, options["digest"]),
        ]
        for tool, params, digest in cases:
            step = _only_step(await host.plan(tool, params, world.actor))
            assert step.params.get("digest") == digest, (tool, step)


async def test_of_two_plans_from_the_same_state_proxmox_refuses_the_second(tmp_path: Path) -> None:
    """Last writer does not win: B's step carries the digest A's apply made stale."""
    world = World(tmp_path)
    async with world.host() as host:
        first = await host.plan("firewall.alias.update", {"level": "cluster", "name": "office", "cidr": "192.168.2.0/24"}, world.actor)
        second = await host.plan("firewall.alias.delete", {"level": "cluster", "name": "office"}, world.actor)
        assert (await host.apply(first.plan_id, world.actor)).ok
    response = await _send(world, _only_step(second))  # what the executor would send, past any check of Proximo's
    assert response.status_code == 500
    assert response.json()["message"] == "detected modified configuration - file changed by other user? Try again.\n"
    assert [a["cidr"] for a in world.model.firewall.cluster.aliases] == ["192.168.2.0/24"]


@pytest.mark.parametrize(("method", "path", "params", "status", "message"), [
    # IPSet.pm update_ip / remove_ip, Aliases.pm update_alias / remove_alias: the digest, then the lookup
    ("PUT", "/cluster/firewall/ipset/none/10.9.9.9", {}, 500, "no such IPSet 'none'"),
    ("DELETE", "/cluster/firewall/aliases/nothere", {}, 200, None),
    ("PUT", "/cluster/firewall/aliases/nothere", {"cidr": "10.0.0.1"}, 400, "Parameter verification failed."),
])
async def test_lookups_after_the_digest_answer_as_proxmox_does(tmp_path: Path, method: str, path: str, params: dict[str, Any],
                                                              status: int, message: str | None) -> None:
    world = World(tmp_path)
    response = await _send(world, ApiCall(method, path, params))  # type: ignore[arg-type]
    assert response.status_code == status, response.json()
    if message:
        assert response.json()["message"].strip() == message
