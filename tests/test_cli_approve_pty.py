"""``proximo approve PLAN_ID`` is for a person at a terminal: refused without a TTY, asked at a pseudo-terminal.

The command runs in a child process whose stdin, stdout and stderr are a pty (``os.openpty``), so
``isatty()`` is true exactly as for a person; the test types the answers. The plans are made in-process
against the simulator on a loopback socket, in the same PROXIMO_HOME the child uses. Storage tools never
make a CRITICAL plan (deleting a storage keeps its data), so a small test pack makes one: its tool's
impact is data loss, and approving it needs the target's name typed.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from _loopback import serve


import proximo
from proximo import ApiCall, Draft, Impact, Plan, Risk, ToolSpec
from proximo.model import ClusterModel
from proximo.testing import TOKEN_ID, World

pytestmark = pytest.mark.anyio

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class NoParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class WipePack:
    """A tool whose plan destroys a volume: CRITICAL, so a person must type the target's name."""

    @proximo.hookimpl
    def proximo_register_tools(self, register: Any) -> None:
        register(ToolSpec(id="wipe.volume", title="wipe", description="test: destroys a volume", params=NoParams, mutating=True))

    @proximo.hookimpl
    def proximo_plan(self, tool: ToolSpec, params: Any, view: ClusterModel) -> Draft:
        return Draft(steps=[ApiCall("DELETE", "/storage/nfs-backup")], target="nfs-backup")

    @proximo.hookimpl
    def proximo_impact(self, change: Any, before: ClusterModel, after: ClusterModel) -> list[Impact]:
        if change.tool != "wipe.volume":
            return []
        return [Impact("volume/nfs-backup:backup/vzdump-qemu-104.vma.zst", "data-loss", "test pack: the backup is destroyed")]


class Session:
    def __init__(self, world: World, url: str) -> None:
        self.world = world
        self.url = url
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_")},
                    "PROXIMO_URL": url, "PROXIMO_TOKEN_ID": TOKEN_ID, "PROXIMO_TOKEN_SECRET": world.secret,
                    "PROXIMO_HOME": str(world.home), "TERM": "dumb", "COLUMNS": "200"}

    async def plan(self, tool: str, params: dict[str, Any]) -> Plan:
        async with self.world.host(url=self.url) as host:
            return await host.plan(tool, params, self.world.actor)

    def command(self, plan_id: str) -> list[str]:
        return [sys.executable, "-c", "from proximo.cli import main; main()", "approve", plan_id]

    def at_terminal(self, plan_id: str, answers: list[tuple[str, str]]) -> tuple[int, str]:
        return at_terminal(self.command(plan_id), self.env, answers)


def at_terminal(command: list[str], env: dict[str, str], answers: list[tuple[str, str]]) -> tuple[int, str]:
    """Run ``command`` on a pty; when a ``prompt`` appears, type its ``answer``. Returns the exit code and the screen."""
    primary, secondary = os.openpty()
    proc = subprocess.Popen(command, stdin=secondary, stdout=secondary, stderr=secondary, env=env,
                            start_new_session=True, close_fds=True)
    os.close(secondary)
    screen = ""
    pending = list(answers)
    deadline = time.monotonic() + 60  # a bound on a hung child, not a timed assertion
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            screen += ANSI.sub("", chunk.decode(errors="replace"))
            if pending and pending[0][0] in screen:
                os.write(primary, (pending.pop(0)[1] + "\n").encode())
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    return code, screen


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    world = World(tmp_path, extra_packs=[("wipe", WipePack())])
    world.person  # an approver exists: the person at the terminal knows its passphrase, the agent does not
    with serve(world.sim.app) as url:
        yield Session(world, url)


def _kinds(world: World, plan_id: str) -> list[tuple[str, str]]:
    with world.ledger() as book:
        return [(r.kind, r.actor.face) for r in book.find(plan_id=plan_id)]


async def test_approve_without_a_tty_is_refused(session: Session) -> None:
    plan = await session.plan("storage.delete", {"storage": "local-zfs"})
    done = subprocess.run(session.command(plan.plan_id), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=session.env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == ("proximo: approve needs a person at an interactive terminal "
                                                    "(stdin is not a TTY)")
    assert _kinds(session.world, plan.plan_id) == [("plan", "test")]


async def test_approve_high_plan_at_a_terminal(session: Session) -> None:
    plan = await session.plan("storage.delete", {"storage": "local-zfs"})
    assert plan.risk is Risk.HIGH
    code, screen = session.at_terminal(plan.plan_id, [("type 'yes'", "yes"), ("Passphrase", session.world.person.passphrase)])
    assert code == 0, screen
    assert "RISK_HIGH" in screen and "wont-boot" in screen, "the person saw the blast radius before answering"
    assert f"approved {plan.plan_id}" in screen
    assert _kinds(session.world, plan.plan_id) == [("plan", "test"), ("approve", "terminal")]
    async with session.world.host(url=session.url) as host:
        result = await host.apply(plan.plan_id, session.world.actor)
    assert result.ok and "local-zfs" not in session.world.model.storages


async def test_a_stale_plan_is_refused_before_the_person_is_asked(session: Session) -> None:
    """approve reads the cluster first (issue 20): a plan the cluster no longer matches is worth no one's approval."""
    plan = await session.plan("storage.delete", {"storage": "local-zfs"})
    other = await session.plan("storage.update", {"storage": "local", "prune-backups": "keep-last=2"})  # MEDIUM: auto
    async with session.world.host(url=session.url) as host:
        assert (await host.apply(other.plan_id, session.world.actor)).ok
    code, screen = session.at_terminal(plan.plan_id, [("type 'yes'", "yes"), ("Passphrase", session.world.person.passphrase)])
    assert code == 3, screen
    assert f"plan {plan.plan_id} is stale" in screen and "type 'yes'" not in screen and "Passphrase" not in screen
    assert "RISK_HIGH" not in screen, "the stale plan was not shown either"
    assert _kinds(session.world, plan.plan_id) == [("plan", "test")]


async def test_declining_at_a_terminal_records_a_deny(session: Session) -> None:
    plan = await session.plan("storage.delete", {"storage": "local-zfs"})
    code, screen = session.at_terminal(plan.plan_id, [("type 'yes'", "no")])
    assert code == 3, screen
    assert "declined" in screen
    assert _kinds(session.world, plan.plan_id) == [("plan", "test"), ("deny", "terminal")]
    assert "local-zfs" in session.world.model.storages


async def test_critical_plan_with_the_wrong_name_is_refused(session: Session) -> None:
    plan = await session.plan("wipe.volume", {})
    assert plan.risk is Risk.CRITICAL and plan.target == "nfs-backup"
    # another name asks again (bounded), then declines: no passphrase is asked for a plan no one confirmed
    code, screen = session.at_terminal(plan.plan_id, [("type the target's name", "local-zfs"), ("2 tries left", "local-zfs"),
                                                      ("1 try left", "local-zfs")])
    assert code == 3, screen
    assert screen.count("type the target's name (nfs-backup)") == 3 and "that is not 'nfs-backup'" in screen
    assert "no clear answer after 3 tries" in screen and "declined" in screen and "Passphrase" not in screen
    assert _kinds(session.world, plan.plan_id) == [("plan", "test"), ("deny", "terminal")]
    async with session.world.host(url=session.url) as host:
        with pytest.raises(proximo.Refused, match="was declined by a person"):  # noqa: PT012
            await host.apply(plan.plan_id, session.world.actor)
    assert all(m == "GET" for m, _ in session.world.sim.requests)
    # a declined plan is dead: the terminal refuses to ask about it again, before showing it
    again, screen = session.at_terminal(plan.plan_id, [])
    assert again == 3 and "was declined by a person" in screen and "type the target's name" not in screen  # Refused


async def test_an_unclear_answer_asks_again(session: Session) -> None:
    """`y` is not `yes`: the prompt asks again (and again), rather than taking it as a no."""
    plan = await session.plan("storage.delete", {"storage": "local-zfs"})
    code, screen = session.at_terminal(plan.plan_id, [("type 'yes'", "y"), ("please answer yes or no (2 tries left)", "yes"),
                                                      ("Passphrase", session.world.person.passphrase)])
    assert code == 0, screen
    assert screen.count("type 'yes' or 'no'") == 2 and f"approved {plan.plan_id}" in screen
    assert _kinds(session.world, plan.plan_id) == [("plan", "test"), ("approve", "terminal")]


async def test_three_unclear_answers_decline(session: Session) -> None:
    plan = await session.plan("storage.delete", {"storage": "local-zfs"})
    code, screen = session.at_terminal(plan.plan_id, [("type 'yes'", "y"), ("2 tries left", "ok"), ("1 try left", "sure")])
    assert code == 3, screen
    assert screen.count("type 'yes' or 'no'") == 3 and "no clear answer after 3 tries" in screen
    assert _kinds(session.world, plan.plan_id) == [("plan", "test"), ("deny", "terminal")]


async def test_critical_plan_with_the_right_name_is_approved(session: Session) -> None:
    plan = await session.plan("wipe.volume", {})
    code, screen = session.at_terminal(plan.plan_id, [("type the target's name", "nfs-backup"),
                                                      ("Passphrase", session.world.person.passphrase)])
    assert code == 0, screen
    assert "RISK_CRITICAL" in screen and "data-loss" in screen
    assert _kinds(session.world, plan.plan_id) == [("plan", "test"), ("approve", "terminal")]


# --- issue 10, attack 1: a pseudo-terminal is not a person --------------------------------------------------------


async def test_a_pseudo_terminal_that_types_yes_approves_nothing_without_the_passphrase(session: Session) -> None:
    """What an agent with a shell does: drive `proximo approve` on a pty and type "yes" (and guess)."""
    plan = await session.plan("storage.delete", {"storage": "local-zfs"})
    code, screen = session.at_terminal(plan.plan_id, [("type 'yes'", "yes"), ("Passphrase", "yes")])
    assert code == 3, screen
    assert "the approver name, passphrase or code is wrong: nothing was approved" in screen
    assert _kinds(session.world, plan.plan_id) == [("plan", "test"), ("deny", "terminal")]
    async with session.world.host(url=session.url) as host:
        with pytest.raises(proximo.NotApproved):
            await host.apply(plan.plan_id, session.world.actor)
    assert all(m == "GET" for m, _ in session.world.sim.requests)


async def test_script_piping_yes_into_approve_approves_nothing(session: Session) -> None:
    """The issue's own attack, verbatim: `(sleep 3; echo yes) | script -qec "proximo approve PLAN" /dev/null`."""
    import shlex
    import shutil

    script = shutil.which("script")
    assert script is not None, "util-linux `script` is needed for this test (.ci/run installs bsdutils)"
    plan = await session.plan("wipe.volume", {})  # CRITICAL: the agent types the target's name too
    inner = shlex.join([*session.command(plan.plan_id)])
    done = subprocess.run(["sh", "-c", f"(sleep 2; echo nfs-backup; echo yes) | {shlex.quote(script)} -qec {shlex.quote(inner)} /dev/null"],
                          env=session.env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stdout
    kinds = _kinds(session.world, plan.plan_id)
    assert ("approve", "terminal") not in kinds and kinds[0] == ("plan", "test")
    async with session.world.host(url=session.url) as host:
        with pytest.raises(proximo.NotApproved):
            await host.apply(plan.plan_id, session.world.actor)


# --- the whole story, every step its own `proximo` process, against `proximo sim` ------------------------------------


def test_the_whole_story_in_separate_processes(sim_process: dict[str, str | None], tmp_path: Path) -> None:
    """plan -> apply refused -> approve at a terminal -> apply -> ledger verify -> undo -> apply, as a person types it."""
    import json

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_")},
           **{k: str(v) for k, v in sim_process.items()}, "PROXIMO_HOME": str(tmp_path / "home"), "TERM": "dumb", "COLUMNS": "200"}

    def proximo(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", "from proximo.cli import main; main()", *args], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)

    def storages() -> set[str]:
        done = proximo("read", "storage.list", "--json")
        assert done.returncode == 0, done.stderr
        return {row["storage"] for row in json.loads(done.stdout)["data"]}

    assert "local-zfs" in storages()
    made = proximo("plan", "storage.delete", "storage=local-zfs", "--json")
    assert made.returncode == 0, made.stderr
    plan = json.loads(made.stdout)
    assert plan["risk"] == "HIGH"
    refused = proximo("apply", plan["plan_id"])
    assert refused.returncode == 3 and "a person must approve it" in refused.stderr
    from proximo.trust._approvers import ApproverStore

    ApproverStore(tmp_path / "home").add("alice", "a passphrase only alice knows")  # once, by the person, at set-up
    code, screen = at_terminal([sys.executable, "-c", "from proximo.cli import main; main()", "approve", plan["plan_id"]], env,
                               [("type 'yes'", "yes"), ("Passphrase", "a passphrase only alice knows")])
    assert code == 0, screen
    applied = proximo("apply", plan["plan_id"], "--json")
    assert applied.returncode == 0, applied.stderr
    result = json.loads(applied.stdout)
    assert result["ok"] and result["matches_prediction"]
    assert "local-zfs" not in storages()
    assert proximo("ledger", "verify").returncode == 0
    undo = proximo("undo", str(result["ledger"]["seq"]), "--json")
    assert undo.returncode == 0, undo.stderr
    undo_id = json.loads(undo.stdout)["plan_id"]
    assert proximo("apply", undo_id).returncode == 0
    assert "local-zfs" in storages()
    shown = proximo("ledger", "show", "-n", "50", "--json")
    kinds = [r["kind"] for r in json.loads(shown.stdout)]
    assert kinds.count("apply-result") == 2 and "approve" in kinds and kinds[0] == "plan"
    assert proximo("ledger", "verify").returncode == 0


def test_the_demo_asks_the_person_and_y_does_not_end_it(tmp_path: Path) -> None:
    """At a terminal the demo asks, as `proximo approve` does; `y` asks again instead of ending the demo."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_")}, "PROXIMO_HOME": str(tmp_path / "home"),
           "TERM": "dumb", "COLUMNS": "200"}
    code, screen = at_terminal([sys.executable, "-c", "from proximo.cli import main; main()", "demo"], env,
                               [("Approve storage.delete (HIGH)? type 'yes' or 'no'", "y"),
                                ("please answer yes or no (2 tries left)", "yes"),  # the undo is MEDIUM: not asked
                                ("Approve node.evacuate (HIGH)?", "yes")])
    assert code == 0, screen
    assert "3. APPLY" in screen and "every one" in screen and "now runs only lxc/203" in screen and "done in" in screen


def test_declining_in_the_demo_applies_nothing(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_")}, "PROXIMO_HOME": str(tmp_path / "home"),
           "TERM": "dumb", "COLUMNS": "200"}
    code, screen = at_terminal([sys.executable, "-c", "from proximo.cli import main; main()", "demo"], env,
                               [("Approve storage.delete (HIGH)? type 'yes' or 'no'", "no")])
    assert code == 0, screen
    assert "Declined: recorded in the ledger, and nothing is applied." in screen and "3. APPLY" not in screen
