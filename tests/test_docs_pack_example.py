"""The example pack in docs/writing-a-pack.md runs as written: a reader who copies it gets a working pack."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from proximo.trust._ledger import Actor
from proximo.testing import World

pytestmark = pytest.mark.anyio

PERSON = Actor(token_id="-", face="terminal", client="alice@workstation")
DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-a-pack.md"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _example_pack() -> types.ModuleType:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    source = next(b for b in blocks if "proximo_register_semantics" in b)
    module = types.ModuleType("proximo_backupjobs")
    exec(compile(source, str(DOC), "exec"), module.__dict__)
    return module


async def test_the_documented_pack_plans_applies_and_undoes(tmp_path: Path) -> None:
    # the built-in backup pack models the same endpoint: the example stands in for it, as the doc says
    world = World(tmp_path, extra_packs=[("backupjobs", _example_pack())], env={"PROXIMO_DISABLED_PACKS": "backup"})
    async with world.host() as host:
        plan = await host.plan("backup.job.disable", {"id": "backup-daily"}, world.actor)
        assert [(i.target, i.effect) for i in plan.impacts] == [("backup/backup-daily", "backup-fails")]
        assert plan.undo is not None and plan.undo[0].params == {"enabled": 1}
        assert plan.risk.value == "HIGH"  # a job stops running: held for a person
        host.approve(plan.plan_id, PERSON, world.person)
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction
    job = next(j for j in world.model.backup_jobs if j["id"] == "backup-daily")
    assert job["enabled"] == 0
