"""The emergency stop (issue 20): `proximo freeze` stops every apply on the ledger until a person unfreezes."""

from __future__ import annotations

from pathlib import Path

import pytest

from proximo.cli._approve import unfreeze_at_terminal
from proximo.errors import NotApproved, Refused
from proximo.testing import World
from proximo.trust._ledger import Actor
from proximo.trust._pipeline import ClientForm

pytestmark = pytest.mark.anyio
TERMINAL = Actor(token_id="-", face="terminal", client="pytest")
MEDIUM = ("storage.update", {"storage": "nfs-backup", "prune-backups": "keep-last=3"})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_freeze_stops_every_apply_until_a_person_unfreezes(tmp_path: Path) -> None:
    world = World(tmp_path)
    person = world.person  # an approver exists: the person knows the passphrase, the agent does not
    async with world.host() as host:
        plan = await host.plan(*MEDIUM, world.actor)
        frozen = host.freeze(world.actor, "something looks wrong")  # anyone may stop: the agent too
        with pytest.raises(Refused, match=rf"^applies are frozen since ledger #{frozen.seq} \(something looks wrong\)"):
            await host.apply(plan.plan_id, world.actor)
        async with world.host() as other:  # another process on the same ledger: frozen too
            with pytest.raises(Refused, match="applies are frozen"):
                await other.apply(plan.plan_id, world.actor)
        # the agent's own MCP form is no person's credential
        with pytest.raises(NotApproved, match="only a person's own credential"):
            host.unfreeze(world.actor, ClientForm("mcp-elicitation", "some client"))
        assert host.frozen() is not None
        unfreeze_at_terminal(host, TERMINAL, ask=lambda prompt, secret: person.passphrase)
        assert host.frozen() is None
        assert (await host.apply(plan.plan_id, world.actor)).ok
    kinds = [r.kind for r in world.ledger().tail(20)]
    assert kinds.count("freeze") == 1 and kinds.count("unfreeze") == 1 and kinds.count("deny") >= 3
    assert [m for m, _ in world.sim.requests if m != "GET"] == ["PUT"]  # the one apply after the unfreeze


async def test_an_unfreeze_record_that_is_no_persons_leaves_the_freeze_standing(tmp_path: Path) -> None:
    world = World(tmp_path)
    async with world.host() as host:
        host.freeze(world.actor, "stop")
        # what an agent with a shell could add: an unfreeze record that names no person's channel
        world.ledger().append("unfreeze", actor=world.actor, outcome={"by": "person", "channel": "mcp-elicitation"})
        assert host.frozen() is not None
        plan = await host.plan(*MEDIUM, world.actor)
        with pytest.raises(Refused, match="applies are frozen"):
            await host.apply(plan.plan_id, world.actor)


async def test_unfreeze_when_nothing_is_frozen_is_refused(tmp_path: Path) -> None:
    world = World(tmp_path)
    async with world.host() as host:
        with pytest.raises(Refused, match="^applies are not frozen$"):
            unfreeze_at_terminal(host, TERMINAL, ask=lambda prompt, secret: "")
