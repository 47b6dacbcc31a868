"""Faults as a feature of the simulator (``proximo.sim._faults``): the client and the pipeline meet each one with a
clean one-line error, never send a write twice, and a crash mid-apply is recorded by the next start."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from click.testing import CliRunner
from _loopback import serve

from proximo.cli import build_cli
from proximo.errors import AlreadyApplied, BadInput, PveApiError, PveConnectionError
from proximo.pve._calls import TaskTimeoutError
from proximo.pve._client import PveClient
from proximo.sim import Fault, Faults, load_faults
from proximo.testing import TOKEN_ID, World

pytestmark = pytest.mark.anyio

SNAPSHOT = ("guest.snapshot.create", {"vmid": 105, "snapname": "rehearsal"})  # a task on pve1, MEDIUM
ON_PVE3 = ("guest.snapshot.create", {"vmid": 110, "snapname": "rehearsal"})  # 110 runs on pve3


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def writes(world: World) -> list[tuple[str, str]]:
    return [r for r in world.sim.requests if r[0] != "GET"]


async def plan_and_apply(world: World, tool: tuple[str, dict[str, Any]]) -> tuple[Any, Any]:
    async with world.host() as host:
        plan = await host.plan(*tool, world.actor)
        return plan, await host.apply(plan.plan_id, world.actor)


def client(world: World) -> PveClient:
    return PveClient("http://pve.sim:8006", TOKEN_ID, world.secret, transport=world.transport(), get_retries=0)


@pytest.mark.parametrize(("status", "message"), [(400, "Parameter verification failed."), (401, "permission denied - invalid PVE ticket"),
                                                 (403, "Permission check failed (/storage, Datastore.Audit)"),
                                                 (500, "cfs-lock 'file-storage_cfg' error: got lock request timeout"),
                                                 (503, "service unavailable")])
async def test_an_error_answers_in_pves_shape_and_the_client_says_it_in_one_line(tmp_path: Path, status: int, message: str) -> None:
    world = World(tmp_path)
    world.sim.inject_fault("GET", r"^/storage$", status, message)
    raw = await world.sim.handle("GET", "/api2/json/storage", "", {"authorization": f"PVEAPIToken={TOKEN_ID}={world.secret}"}, b"")
    assert raw == (status, {"data": None, "message": message + "\n"})  # pve-http-server's JSON error body
    world.sim.inject_fault("GET", r"^/storage$", status, message)
    async with client(world) as pve:
        with pytest.raises(PveApiError) as caught:
            await pve.get("/storage")
        assert [r["storage"] for r in await pve.get("/storage")]  # times = 1: the next request is answered
    assert caught.value.status == status and message in str(caught.value) and "\n" not in str(caught.value)
    assert world.sim.faults.injected["error"] == 2


async def test_a_write_that_fails_is_recorded_once_and_never_sent_again(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.sim.inject_fault("POST", r"/snapshot$", 500, "snapshot feature is not available", times=None)
    plan, result = await plan_and_apply(world, SNAPSHOT)
    assert result.ok is False and "snapshot feature is not available" in result.steps[0].error
    assert "\n" not in result.steps[0].error
    async with world.host() as host:
        with pytest.raises(AlreadyApplied):
            await host.apply(plan.plan_id, world.actor)
    assert writes(world) == [("POST", "/nodes/pve1/qemu/105/snapshot")]
    kinds = [r.kind for r in world.ledger().find(plan_id=plan.plan_id)]
    assert kinds == ["plan", "approve", "apply-start", "apply-result", "deny"]


@pytest.mark.parametrize("kind", ["timeout", "reset"])
@pytest.mark.parametrize("landed", [True, False], ids=["landed", "lost"])
async def test_a_lost_answer_to_a_write_says_it_may_have_landed_and_is_not_repeated(tmp_path: Path, kind: str, landed: bool) -> None:
    world = World(tmp_path)
    world.sim.inject_fault("POST", r"/snapshot$", kind=kind, landed=landed)
    plan, result = await plan_and_apply(world, SNAPSHOT)
    error = result.steps[0].error
    assert result.ok is False and "may have been applied, check before repeating it" in error and "\n" not in error
    assert ("rehearsal" in {s.get("name") for s in world.model.guests[105].snapshots or []}) is landed
    async with world.host() as host:
        with pytest.raises(AlreadyApplied):
            await host.apply(plan.plan_id, world.actor)
    assert len(writes(world)) == 1


async def test_reads_are_retried_through_a_reset_and_a_lasting_one_fails_the_plan_in_one_line(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.sim.inject_fault("GET", r"^/cluster/resources$", kind="reset", times=1)
    async with world.host() as host:  # the client retries a GET (it changes nothing)
        assert (await host.plan(*SNAPSHOT, world.actor)).risk.value == "MEDIUM"
    world.sim.inject_fault("GET", r"^/cluster/resources$", kind="timeout", times=None)
    async with world.host() as host:
        with pytest.raises(PveConnectionError) as caught:
            await host.plan(*SNAPSHOT, world.actor)
    assert "timed out" in str(caught.value) and "\n" not in str(caught.value)
    assert writes(world) == []


async def test_a_slow_answer_still_answers(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.sim.inject_fault("GET", r"^/version$", kind="slow", delay=0.05)
    async with client(world) as pve:
        assert (await pve.get("/version"))["release"] == "9.1"
    assert world.sim.faults.injected == {"slow": 1}


async def test_a_task_that_fails_halfway_is_a_failed_apply_with_its_log(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.sim.task_polls = 2
    world.sim.inject_fault("POST", r"/snapshot$", kind="task-fail", message="VM 105 qmp command 'savevm-start' failed - timeout")
    plan, result = await plan_and_apply(world, SNAPSHOT)
    step = result.steps[0]
    assert result.ok is False and step.upid.startswith("UPID:pve1:")
    assert step.error == "task failed: VM 105 qmp command 'savevm-start' failed - timeout"
    assert step.log_tail[-1] == "TASK ERROR: VM 105 qmp command 'savevm-start' failed - timeout"
    assert len(writes(world)) == 1


async def test_a_task_that_hangs_keeps_running(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.sim.inject_fault("POST", r"/snapshot$", kind="task-hang")
    auth = {"Authorization": f"PVEAPIToken={TOKEN_ID}={world.secret}"}
    async with httpx.AsyncClient(transport=world.transport(), base_url="http://pve.sim:8006") as raw:
        answer = await raw.post("/api2/json/nodes/pve1/qemu/105/snapshot", data={"snapname": "rehearsal"}, headers=auth)
    assert answer.status_code == 200, answer.text
    upid = answer.json()["data"]
    async with client(world) as pve:
        with pytest.raises(TaskTimeoutError):
            await pve.wait_task("pve1", upid, poll=0.01, timeout=0.2)
        assert (await pve.get(f"/nodes/pve1/tasks/{upid}/status"))["status"] == "running"


def test_a_crash_while_a_task_hangs_is_recorded_by_the_next_start(tmp_path: Path) -> None:
    """The applying process is killed while it waits on a task that never ends; the next start closes its apply."""
    world = World(tmp_path)
    world.sim.inject_fault("POST", r"/snapshot$", kind="task-hang")
    with serve(world.sim.app) as url:
        async def make() -> Any:
            async with world.host(url=url) as host:
                return await host.plan(*SNAPSHOT, world.actor)

        plan = anyio.run(make)
        pid = os.fork()
        if pid == 0:
            try:
                async def apply() -> None:
                    settings = msgspec.structs.replace(world.settings, url=url)
                    from proximo._host import open_host

                    async with open_host(settings, packs=world.packs) as host:
                        await host.apply(plan.plan_id, world.actor)

                anyio.run(apply)
            finally:
                os._exit(3)
        for _ in range(600):  # a readiness wait (the child reaches its write), not a timed assertion
            if writes(world):
                break
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

        async def reopen() -> Any:
            async with world.host(url=url) as host:
                return host.ledger.tail(1)[0]

        record = anyio.run(reopen)
    assert record.kind == "apply-result" and record.plan_id == plan.plan_id
    assert record.outcome["interrupted"] is True and record.outcome["landed_steps"] == 1
    assert any(str(t).startswith("UPID:pve1:") for t in record.outcome["tasks_since_start"])
    assert len(writes(world)) == 1


async def test_an_offline_node_fails_its_endpoints_and_shows_offline(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.sim.inject_fault(kind="node-offline", node="pve3", times=None)
    async with client(world) as pve:
        with pytest.raises(PveApiError) as caught:
            await pve.get("/nodes/pve3/qemu/110/config")
        resources = await pve.get("/cluster/resources")
        status = await pve.get("/cluster/status")
        nodes = await pve.get("/nodes")
        assert (await pve.get("/nodes/pve1/status"))["uptime"] > 0  # the other nodes answer
    assert caught.value.status == 595 and "No route to host" in str(caught.value)
    pve3 = next(r for r in resources if r["id"] == "node/pve3")
    assert pve3["status"] == "offline" and "uptime" not in pve3
    assert {r["status"] for r in resources if r.get("node") == "pve3" and r["type"] in ("qemu", "lxc")} == {"unknown"}
    assert next(r for r in status if r.get("name") == "pve3")["online"] == 0
    assert next(r for r in status if r.get("name") == "pve1")["online"] == 1
    assert next(r for r in nodes if r["node"] == "pve3")["status"] == "offline"
    async with world.host() as host:  # a change on the offline node: a one-line refusal, nothing sent
        with pytest.raises(PveApiError) as planned:
            await host.plan(*ON_PVE3, world.actor)
    assert "No route to host" in str(planned.value) and "\n" not in str(planned.value) and writes(world) == []


def test_a_probability_is_drawn_from_the_seed() -> None:
    def run(seed: int) -> list[bool]:
        faults = Faults([Fault(path="^/version$", probability=0.5)], seed=seed)
        return [faults.hit("GET", "/version") is not None for _ in range(40)]

    assert run(7) == run(7) and run(7) != run(8) and 5 < sum(run(7)) < 35


def test_the_faults_file_is_toml_and_a_bad_one_is_refused_in_one_line(tmp_path: Path) -> None:
    good = tmp_path / "faults.toml"
    good.write_text('seed = 3\n[[fault]]\nmethod = "delete"\npath = "^/storage/"\nstatus = 503\ntimes = 2\n'
                    '[[fault]]\nkind = "node-offline"\nnode = "pve2"\n')
    faults = load_faults(good)
    assert faults.seed == 3 and [r.kind for r in faults.rules] == ["error", "node-offline"]
    assert faults.rules[0].method == "DELETE" and faults.rules[0].message == "service unavailable"
    for text, said in [('[[fault]]\npath = "("\n', "not a regular expression"), ('[[fault]]\nkind = "meteor"\n', "kind"),
                       ('[[fault]]\nkind = "node-offline"\n', "names its node"), ('[[fault]]\nstatus = 200\n', "400 to 599"),
                       ('[[fault]]\nprobability = 2.0\n', "between 0 and 1"), ("faults = 1\n", "unknown key"),
                       ("[[fault]\n", "not TOML"), ('[[fault]]\nmethod = "PATCH"\n', "method")]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(BadInput) as caught:
            load_faults(bad)
        assert said in str(caught.value) and "\n" not in str(caught.value), text


@pytest.mark.parametrize("sim_process", [["--faults", str(Path(__file__).parent / "data" / "faults-rehearsal.toml")]], indirect=True)
def test_proximo_sim_serves_the_faults_file_of_the_rehearsal(sim_process: dict[str, str], tmp_path: Path) -> None:
    """The rehearsal docs/quickstart.md shows: the first storage change fails on a cfs lock, once, cleanly."""
    env = {**{k: None for k in os.environ if k.startswith("PROXIMO_")}, **sim_process, "PROXIMO_HOME": str(tmp_path / "home")}

    def proximo(*args: str) -> Any:
        return CliRunner().invoke(build_cli(), list(args), env=env, catch_exceptions=False)

    def plan() -> str:
        made = proximo("plan", "storage.update", "storage=nfs-backup", "prune-backups=keep-last=3", "--json")
        assert made.exit_code == 0, made.output
        return str(json.loads(made.stdout)["plan_id"])

    first = plan()
    failed = proximo("apply", first)
    assert failed.exit_code != 0 and "cfs-lock 'file-storage_cfg' error: got lock request timeout" in failed.output
    again = proximo("apply", first)
    assert again.exit_code == 3 and "already applied" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    applied = proximo("apply", plan())
    assert applied.exit_code == 0, applied.output
