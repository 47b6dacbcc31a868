"""One A2A server on two simulated clusters (issue 21): the card's clusters skill, requests naming their cluster, a plan
refused on the other cluster, and a parked apply resumed on its own cluster once a person approves there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from _a2a_support import anyio_backend, artifacts, client, data_message, events, final_task_id, state_of, status_texts, subscribed, text_message  # noqa: F401
from _loopback import serve_here
from proximo.a2a import build_app
from proximo.testing import SimClusters
from proximo.trust._ledger import Actor

pytestmark = pytest.mark.anyio
TERMINAL = Actor(token_id="-", face="terminal", client="pytest")


@asynccontextmanager
async def serve(fleet: SimClusters, default: str = "") -> AsyncIterator[str]:
    def make_app(base: str) -> Any:
        return build_app(fleet.factories(), tools=fleet.packs.tools, home=fleet.home, base_url=base, default_cluster=default)

    async with serve_here(make_app) as base:
        yield base


def writes(fleet: SimClusters, name: str) -> list[str]:
    return [method for method, _ in fleet[name].sim.requests if method != "GET"]


async def test_the_card_lists_the_clusters_and_a_plan_is_refused_on_the_other(tmp_path: Path) -> None:
    fleet = SimClusters(tmp_path)
    async with serve(fleet) as base:
        async with httpx.AsyncClient() as http:
            card = (await http.get(base + "/.well-known/agent-card.json")).json()
        skill = next(s for s in card["skills"] if s["id"] == "clusters")
        assert "2 clusters: east, west" in skill["description"] and "no default" in skill["description"]
        async with client(base) as c:
            unnamed = await events(c, data_message({"tool": "guest.list", "params": {}}))
            assert state_of(unnamed[-1]) == "TASK_STATE_REJECTED"
            assert "several clusters are served (east, west)" in " ".join(status_texts(unnamed))
            plan = artifacts(await events(c, data_message({"tool": "storage.update", "cluster": "east",
                                                            "params": {"storage": "nfs-backup", "prune-backups": "keep-last=3"}})))["plan"]
            assert plan["cluster"]["name"] == "east"
            wrong = await events(c, text_message(f"--cluster west apply {plan['plan_id']}"))
            assert state_of(wrong[-1]) == "TASK_STATE_FAILED"
            assert "made on cluster 'east', not 'west'" in " ".join(status_texts(wrong))
            right = await events(c, data_message({"apply": plan["plan_id"], "cluster": "east"}))
            assert state_of(right[-1]) == "TASK_STATE_COMPLETED"
    assert writes(fleet, "west") == [] and writes(fleet, "east") == ["PUT"]


async def test_a_parked_apply_waits_for_a_person_on_its_own_cluster(tmp_path: Path) -> None:
    fleet = SimClusters(tmp_path)
    east = fleet["east"]
    person = east.person
    async with serve(fleet, default="west") as base, client(base) as c:
        plan = artifacts(await events(c, text_message("--cluster east guest.stop vmid=104")))["plan"]
        first = await events(c, data_message({"apply": plan["plan_id"], "cluster": "east"}))
        assert state_of(first[-1]) == "TASK_STATE_INPUT_REQUIRED"
        assert f"proximo approve --cluster east {plan['plan_id']}" in " ".join(status_texts(first))
        async with subscribed(c, final_task_id(first)) as seen:
            async with east.host() as on_east:  # `proximo approve --cluster east PLAN_ID`
                on_east.approve(plan["plan_id"], TERMINAL, person)
    assert state_of(seen[-1]) == "TASK_STATE_COMPLETED" and artifacts(seen)["receipt"]["ok"] is True
    assert writes(fleet, "east") == ["POST"] and writes(fleet, "west") == []
