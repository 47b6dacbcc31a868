"""A live plan reads the guests' firewall files only when something touches them.

Those files are four GETs a guest: over half of what a plan of a large cluster reads (bench/bench_live.py). The
first read of a plan leaves them out; the model then refuses to be asked about them (NotRead), wherever the
asking comes from (a pack's plan, semantics, an analyser), and the pipeline plans again on a read with everything.
So a plan is the same whichever read it was made from; these tests hold every live plan to the offline one (a
snapshot has every file).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

import proximo
from proximo import NotRead
from proximo.model import ClusterModel, from_api
from proximo.testing import World

pytestmark = pytest.mark.anyio

GUEST_FIREWALL = re.compile(r"^/nodes/[^/]+/(qemu|lxc)/[0-9]+/firewall/")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _guest_firewall_gets(world: World, since: int = 0) -> int:
    return sum(1 for method, path in world.sim.requests[since:] if method == "GET" and GUEST_FIREWALL.match(path))


# (tool, params, whether the plan needs the guests' firewall files)
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("storage.delete", {"storage": "local-zfs"}, False),
    ("guest.stop", {"vmid": 104}, False),
    ("guest.destroy", {"vmid": 121}, False),  # remove_vmfw_conf: the file goes, unknown or not
    ("firewall.rule.add", {"level": "cluster", "type": "in", "action": "DROP", "proto": "tcp", "dport": "8006", "enable": 1}, False),
    ("firewall.options.set", {"level": "cluster", "enable": 1}, True),  # the demo's is off: every guest's verdicts move
    ("firewall.rule.add", {"level": "qemu/104", "type": "in", "action": "DROP", "proto": "tcp", "dport": "22", "enable": 1}, True),
    ("firewall.rule.add", {"level": "group/web-in", "type": "in", "action": "DROP", "proto": "tcp", "dport": "443", "enable": 1}, True),
    ("guest.config.set", {"vmid": 105, "net0": "virtio=BC:24:11:13:B6:CF,bridge=vmbr0"}, True),  # its firewall=1 goes
    ("guest.config.set", {"vmid": 105, "memory": "4096"}, False),
]


@pytest.mark.parametrize(("tool", "params", "needs"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
async def test_a_live_plan_reads_guest_firewalls_only_when_it_needs_them_and_equals_the_offline_plan(
        tmp_path: Path, tool: str, params: dict[str, Any], needs: bool) -> None:
    world = World(tmp_path)
    async with world.offline() as host:
        offline = await host.plan(tool, params, world.actor)
    async with world.host() as host:
        live = await host.plan(tool, params, world.actor)
    for key in ("impacts", "risk", "steps", "undo", "blockers", "notes"):
        assert getattr(live, key) == getattr(offline, key), key
    read = _guest_firewall_gets(world)
    if needs:
        assert read > 0 and "unread" not in live.fingerprint
        assert live.fingerprint == offline.fingerprint
    else:
        assert read == 0 and live.fingerprint["unread"] == "guest-firewall"


async def test_applying_a_lean_plan_reads_no_guest_firewall_and_matches_its_prediction(tmp_path: Path) -> None:
    world = World(tmp_path)
    async with world.host() as host:
        plan = await host.plan("guest.config.set", {"vmid": 105, "memory": "4096"}, world.actor)
        # the plan rests on no guest's firewall: a change there does not make it stale
        world.sim.model.firewall.guests[105].options["enable"] = 1
        before = len(world.sim.requests)
        result = await host.apply(plan.plan_id, world.actor)
    assert result.ok and result.matches_prediction
    assert _guest_firewall_gets(world, before) == 0


async def test_a_lean_plan_is_stale_when_what_it_rests_on_changed(tmp_path: Path) -> None:
    from proximo import StalePlan

    world = World(tmp_path)
    async with world.host() as host:
        plan = await host.plan("guest.config.set", {"vmid": 105, "memory": "4096"}, world.actor)
        world.sim.model.firewall.cluster.options["enable"] = 1  # the demo's cluster firewall was off
        with pytest.raises(StalePlan, match="firewall"):
            await host.apply(plan.plan_id, world.actor)


def _lean_model(world: World) -> ClusterModel:
    api = {path: data for path, data in world.snapshot["api"].items() if not GUEST_FIREWALL.match(path)}
    return from_api(api, world.snapshot.get("extra"), guest_firewall=False)


def test_a_lean_model_refuses_every_question_about_guest_firewalls_even_after_a_copy(tmp_path: Path) -> None:
    lean = _lean_model(World(tmp_path))
    for model in (lean, lean.copy(), msgspec.msgpack.decode(msgspec.msgpack.encode(lean), type=ClusterModel)):
        assert model.unread == ["guest-firewall"]
        with pytest.raises(NotRead):
            model.firewall.guests.get(104)
        with pytest.raises(NotRead):
            model.firewall.guest(104)
    assert not isinstance(NotRead("x"), LookupError), "code that tolerates a missing key must not swallow it"


def test_a_full_model_answers_as_before(tmp_path: Path) -> None:
    world = World(tmp_path)
    full = from_api(world.snapshot["api"], world.snapshot.get("extra"))
    assert full.unread == [] and "unread" not in full.fingerprint()
    assert full.firewall.guests[104].options == {"enable": 1}


class _Swallower:
    """A third-party analyser that looks at every guest's firewall file and, on any error, carries on without it."""

    seen: list[int]

    def __init__(self) -> None:
        self.seen = []

    @proximo.hookimpl
    def proximo_impact(self, change: Any, before: ClusterModel, after: ClusterModel) -> list[Any]:
        try:
            self.seen = sorted(after.firewall.guests)
        except Exception:  # noqa: BLE001 (the point: a pack that swallows everything)
            self.seen = []
        return []


async def test_a_pack_that_swallows_the_refusal_still_gets_a_full_read(tmp_path: Path) -> None:
    pack = _Swallower()
    world = World(tmp_path, extra_packs=[("swallower", pack)])
    async with world.host() as host:
        plan = await host.plan("guest.stop", {"vmid": 104}, world.actor)
    assert "unread" not in plan.fingerprint and _guest_firewall_gets(world) > 0
    assert 104 in pack.seen, "its last run saw the guests' firewall files"
