"""An apply whose process is killed mid-request: the next start records whether the write landed, with evidence.

The applying process is a forked child that talks to the simulator over loopback HTTP and dies (os._exit) either
before its synchronous PUT leaves, or right after Proxmox (the simulator) has carried it out but before the answer
is read: exactly the case where nothing in the ledger can say which happened. The next host compares the cluster
with the predictions the apply-start recorded for each step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from _loopback import serve

from proximo._host import open_host
from proximo.testing import World
from proximo.trust._pipeline import landed_steps

CHANGE = ("guest.config.set", {"vmid": 201, "description": "set by a process that is killed"})  # lxc: a synchronous PUT


class DiesAtTheWrite(httpx.AsyncBaseTransport):
    """Reads pass; at the first write the process ends, before sending it or after Proxmox answered it."""

    def __init__(self, *, after_it_lands: bool) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.after_it_lands = after_it_lands

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return await self.inner.handle_async_request(request)
        if self.after_it_lands:
            response = await self.inner.handle_async_request(request)
            await response.aread()
        os._exit(0)  # killed: no apply-result, no cleanup


def apply_in_a_process_that_dies(world: World, url: str, plan_id: str, *, after_it_lands: bool) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            async def go() -> None:
                settings = msgspec.structs.replace(world.settings, url=url)
                async with open_host(settings, transport=DiesAtTheWrite(after_it_lands=after_it_lands),
                                     packs=world.packs) as host:
                    await host.apply(plan_id, world.actor)

            anyio.run(go)
        finally:
            os._exit(3)  # the apply was supposed to die at the write, not finish
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child should have died at the write"


async def _plan(world: World, url: str) -> Any:
    async with world.host(url=url) as host:
        return await host.plan(*CHANGE, world.actor)


async def _reopen(world: World, url: str) -> Any:
    async with world.host(url=url) as host:  # start-up reconciles what a dead process left open
        return host.ledger.tail(1)[0]


@pytest.mark.parametrize("after_it_lands", [True, False], ids=["landed", "never-sent"])
def test_the_next_start_records_whether_the_killed_write_landed(tmp_path: Path, after_it_lands: bool) -> None:
    world = World(tmp_path)
    with serve(world.sim.app) as url:
        plan = anyio.run(_plan, world, url)
        assert plan.risk.value == "MEDIUM" and len(plan.steps) == 1
        apply_in_a_process_that_dies(world, url, plan.plan_id, after_it_lands=after_it_lands)
        assert (world.model.guests[201].config.get("description") == CHANGE[1]["description"]) is after_it_lands
        result = anyio.run(_reopen, world, url)
    assert result.kind == "apply-result" and result.plan_id == plan.plan_id
    assert result.outcome["interrupted"] is True and result.outcome["ok"] is False
    if after_it_lands:
        assert result.outcome["landed_steps"] == 1
        assert result.outcome["evidence"] == "the cluster matches the prediction after every step"
    else:
        assert result.outcome["landed_steps"] == 0
        assert result.outcome["evidence"] == "the cluster still looks as it did before the apply: no step landed"


def test_a_cluster_that_matches_no_prediction_says_which_sections_differ() -> None:
    before = {"storage": "a", "qemu/104": "b", "lxc/201": "c"}
    milestones = [{"lxc/201": "d"}, {"lxc/201": "e", "storage": "f"}]
    assert landed_steps(before, {**before, "lxc/201": "d"}, milestones) == (
        1, "the cluster matches the prediction after step 1 of 2")
    assert landed_steps(before, {**before, "lxc/201": "e", "storage": "f"}, milestones)[0] == 2
    steps, evidence = landed_steps(before, {**before, "qemu/104": "x"}, milestones)
    assert steps is None and evidence.startswith("the cluster matches no predicted state: ") and "qemu/104" in evidence
