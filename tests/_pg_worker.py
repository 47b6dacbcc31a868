"""One Proximo process of tests/test_pg_store.py's race, on the shared store its environment names.

    python tests/_pg_worker.py INDEX WORKERS COORD_DIR VMID...

Settings come from the environment (PROXIMO_HOME, PROXIMO_DB, PROXIMO_URL, ...), as a real process's would. One
round per VMID: the round's owner (round number modulo WORKERS) plans a change to that guest while every other
process plans one on the side (appends to the one chain at the same time), then every process tries to apply the
round's plan at once; a barrier ends the round, so the next plan is made on the cluster as the round left it (a
plan is stale once anything it read changed). At the end each process loads every plan any of them made. It writes
COORD_DIR/result-INDEX.json: its plans, what each apply said (applied, already, or the error's class and line), and
which plans it could load.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import anyio

from proximo._host import open_host
from proximo._settings import Settings
from proximo.errors import AlreadyApplied, ProximoError
from proximo.trust._ledger import Actor


def _publish(path: Path, data: object) -> None:
    tmp = path.with_name("." + path.name)
    tmp.write_text(json.dumps(data))
    tmp.rename(path)  # whole or not at all: a reader never sees half of it


async def _wait_for(coord: Path, pattern: str, count: int) -> list[Path]:
    deadline = time.monotonic() + 120  # a readiness wait for the other processes, not a timed assertion
    while len(found := sorted(coord.glob(pattern))) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the other workers never wrote {pattern}")
        await anyio.sleep(0.02)
    return found


async def main(index: int, workers: int, coord: Path, vmids: list[int]) -> None:
    settings = Settings.from_env()
    actor = Actor(token_id=settings.token_id, face="test", client=f"worker-{index}")
    made: list[str] = []
    applies: dict[str, str] = {}
    async with open_host(settings) as host:
        for round_, vmid in enumerate(vmids):
            if round_ % workers == index:
                plan = await host.plan("guest.config.set", {"vmid": vmid, "description": f"round {round_}"}, actor)
                _publish(coord / f"round-{round_}.json", plan.plan_id)
            else:
                plan = await host.plan("guest.config.set", {"vmid": vmid, "description": f"aside {index}"}, actor)
            made.append(plan.plan_id)
            (path,) = await _wait_for(coord, f"round-{round_}.json", 1)
            plan_id = json.loads(path.read_text())
            try:
                result = await host.apply(plan_id, actor)
                applies[plan_id] = "applied" if result.ok and result.matches_prediction else f"failed: {result.mismatches}"
            except AlreadyApplied:
                applies[plan_id] = "already"
            except ProximoError as exc:
                applies[plan_id] = f"{type(exc).__name__}: {exc}"
            _publish(coord / f"done-{round_}-{index}.json", True)
            await _wait_for(coord, f"done-{round_}-*.json", workers)
        _publish(coord / f"made-{index}.json", made)
        seen: dict[str, bool] = {}
        for path in await _wait_for(coord, "made-*.json", workers):
            for plan_id in json.loads(path.read_text()):
                try:
                    seen[plan_id] = host.get_plan(plan_id).plan_id == plan_id
                except ProximoError:
                    seen[plan_id] = False
    _publish(coord / f"result-{index}.json", {"made": made, "applies": applies, "seen": seen})


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), [int(v) for v in sys.argv[4:]])
