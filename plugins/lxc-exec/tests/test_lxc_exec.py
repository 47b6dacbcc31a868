"""The lxc-exec pack against a real sshd on loopback with a ``pct`` stand-in (tests/_sshd.py): off by default, the
CTID allow-list, host keys, hostile arguments, limits, snapshot_first, a stopped container, the ledger, the policy's
reads, and the MCP and CLI faces driving it."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _sshd import SshNode, sshd, sshd_problem  # noqa: E402
from proximo import ApiCall, BadInput, SshExec  # noqa: E402
from proximo.errors import NotApproved, PolicyDenied  # noqa: E402
from proximo.sim import demo_snapshot  # noqa: E402
from proximo.testing import TOKEN_ID, World  # noqa: E402
from proximo.trust._ssh import SshRunner, remote_command  # noqa: E402

pytestmark = pytest.mark.anyio

CT = 201  # on pve1 in the demo cluster, running; pve1's address becomes 127.0.0.1 here
STOPPED = 204  # on pve2, stopped


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshNode]:
    if problem := sshd_problem():
        pytest.skip(problem)
    with sshd(tmp_path_factory.mktemp("sshd")) as running:
        yield running


def cluster() -> dict[str, Any]:
    snapshot = demo_snapshot()
    for row in snapshot["api"]["/cluster/status"]:
        if row.get("type") == "node" and row.get("name") == "pve1":
            row["ip"] = "127.0.0.1"
    return snapshot


def make_world(tmp_path: Path, node: SshNode | None = None, *, restricted: bool = False, **env: str) -> World:
    base = node.env(restricted=restricted) if node else {}
    return World(tmp_path / "world", cluster(), env={"PROXIMO_ENABLE_EXEC": "1", "PROXIMO_EXEC_ALLOW": str(CT), **base, **env})


def records(world: World) -> list[Any]:
    ledger = world.ledger()
    try:
        return [ledger.get(seq) for seq in range(1, ledger.head().seq + 1)]
    finally:
        ledger.close()


async def run(world: World, tool: str, params: dict[str, Any], *, person: bool = True) -> Any:
    async with world.host() as host:
        plan = await host.plan(tool, params, world.actor)
        assert not plan.blocked, plan.blockers
        if person and host.needs_person(plan):
            host.approve(plan.plan_id, world.actor, world.person)
        return plan, await host.apply(plan.plan_id, world.actor)


# --- off, allow-list: refused before anything, as deny records --------------------------------------------------


async def test_exec_is_off_unless_enabled(tmp_path: Path) -> None:
    world = World(tmp_path / "world", cluster())
    async with world.host() as host:
        with pytest.raises(PolicyDenied, match="PROXIMO_ENABLE_EXEC=1"):
            await host.plan("ct.exec", {"vmid": CT, "argv": ["df", "-h"]}, world.actor)
    last = records(world)[-1]
    assert last.kind == "deny" and "off" in last.outcome["reason"] and last.tool == "ct.exec"


@pytest.mark.parametrize("allow", ["", "202,203"])
async def test_a_container_not_allow_listed_is_refused(tmp_path: Path, allow: str) -> None:
    world = make_world(tmp_path, PROXIMO_EXEC_ALLOW=allow)
    async with world.host() as host:
        with pytest.raises(PolicyDenied, match=f"CT {CT} is not in PROXIMO_EXEC_ALLOW"):
            await host.plan("ct.exec", {"vmid": CT, "argv": ["df"]}, world.actor)
        with pytest.raises(PolicyDenied):
            await host.plan("ct.logs", {"vmid": CT, "unit": "nginx.service"}, world.actor)
    assert [r.kind for r in records(world)] == ["deny", "deny"]


async def test_star_allows_every_container_with_a_warning_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    world = make_world(tmp_path, PROXIMO_EXEC_ALLOW="*")
    with caplog.at_level(logging.WARNING, logger="proximo.exec"):
        async with world.host() as host:
            plan = await host.plan("ct.exec", {"vmid": 203, "argv": ["uptime"]}, world.actor)
    assert "PROXIMO_EXEC_ALLOW=*" in caplog.text and "EVERY container" in caplog.text
    assert plan.risk.value == "HIGH" and not plan.blocked


def test_bad_exec_settings_stop_the_host() -> None:
    from proximo._settings import Settings

    for env in ({"PROXIMO_ENABLE_EXEC": "yes"}, {"PROXIMO_EXEC_ALLOW": "201;rm"}, {"PROXIMO_SSH_PORT": "0"}):
        with pytest.raises(BadInput):
            Settings.from_env(env)


# --- the plan: unpredictable, HIGH, a person; a stopped container -----------------------------------------------


async def test_the_plan_says_exec_is_near_root_unpredictable_high_and_needs_a_person(tmp_path: Path) -> None:
    world = make_world(tmp_path, PROXIMO_AUTO_APPROVE="HIGH")
    async with world.host() as host:
        plan = await host.plan("ct.exec", {"vmid": CT, "argv": ["df", "-h"]}, world.actor)
        assert plan.risk.value == "HIGH" and host.needs_person(plan) and not plan.reversible
        assert [(i.target, i.effect) for i in plan.impacts] == [(f"lxc/{CT}", "unpredictable")]
        assert any("near-root" in n for n in plan.notes) and any("cannot be predicted" in n for n in plan.notes)
        assert plan.steps == [SshExec(node="pve1", ctid=CT, argv=["df", "-h"], address="127.0.0.1", timeout=60.0,
                                      max_output=65536)]
        with pytest.raises(NotApproved):
            await host.apply(plan.plan_id, world.actor)
    assert records(world)[-1].kind == "deny"


async def test_a_stopped_container_is_refused_at_plan(tmp_path: Path) -> None:
    world = make_world(tmp_path, PROXIMO_EXEC_ALLOW=f"{CT},{STOPPED}")
    async with world.host() as host:
        with pytest.raises(BadInput, match=f"CT {STOPPED} is not running"):
            await host.plan("ct.exec", {"vmid": STOPPED, "argv": ["df"]}, world.actor)
        with pytest.raises(BadInput, match="no such container"):
            await host.plan("ct.exec", {"vmid": 100, "argv": ["df"]}, world.actor)
        with pytest.raises(BadInput, match="control character"):
            await host.plan("ct.exec", {"vmid": CT, "argv": ["echo", "a\nb"]}, world.actor)


# --- over ssh ---------------------------------------------------------------------------------------------------


async def test_a_command_runs_and_the_ledger_keeps_argv_status_counts_and_hashes_not_the_output(tmp_path: Path, node: SshNode) -> None:
    rootfs = node.container(CT)
    (rootfs / "secret.txt").write_text("the-secret-contents\n")
    world = make_world(tmp_path, node)
    plan, result = await run(world, "ct.exec", {"vmid": CT, "argv": ["cat", "secret.txt"]})
    assert result.ok, result.steps
    assert result.steps[0].output == {"stdout": "the-secret-contents\n", "stderr": ""}
    kinds = [r.kind for r in records(world)]
    assert kinds[-4:] == ["approve", "apply-start", "exec", "apply-result"]
    exec_record = records(world)[-2].outcome
    assert exec_record["argv"] == ["cat", "secret.txt"] and exec_record["exit_status"] == 0
    assert exec_record["stdout_bytes"] == 20 and exec_record["stderr_bytes"] == 0
    assert exec_record["stdout_sha256"] == hashlib.sha256(b"the-secret-contents\n").hexdigest()
    assert "output" not in records(world)[-1].outcome["steps"][0]
    with sqlite3.connect(world.settings.ledger_path) as db:
        dump = "\n".join(db.iterdump())
    assert "the-secret-contents" not in dump


HOSTILE = [";", "; touch pwned1", "$(touch pwned2)", "`touch pwned3`", "a'b\"c", "'", '"', "x y", "*", "", "&& touch pwned4",
           "|", ">pwned5", "$HOME", "\\", "-n", "--", "${IFS}touch${IFS}pwned6"]


@pytest.mark.parametrize("restricted", [False, True], ids=["login-shell", "proximo-exec-only"])
async def test_hostile_arguments_each_reach_the_container_as_one_exact_argument(tmp_path: Path, node: SshNode,
                                                                               restricted: bool) -> None:
    """Through the node's shell (an unrestricted key), and through contrib/proximo-exec-only (a restricted one)."""
    rootfs = node.container(CT)
    world = make_world(tmp_path, node, restricted=restricted)
    _, result = await run(world, "ct.exec", {"vmid": CT, "argv": ["printf", "%s\\0", *HOSTILE]})
    assert result.ok, result.steps
    assert result.steps[0].output["stdout"].split("\0")[:-1] == HOSTILE
    assert not list(rootfs.glob("pwned*")) and not list(node.root.parent.rglob("pwned*"))


@pytest.mark.parametrize("restricted", [False, True], ids=["login-shell", "proximo-exec-only"])
async def test_newlines_and_tabs_are_quoted_too(node: SshNode, tmp_path: Path, restricted: bool) -> None:
    """The tools refuse control characters; the executor's quoting holds for them anyway."""
    node.container(CT)
    args = ["line1\nline2", "\ttab", "end\n; touch pwned7", "$(\ntouch pwned8\n)", "", "'", "a'b"]
    world = make_world(tmp_path, node, restricted=restricted)
    ok, record, output, error = await SshRunner(world.settings).run(
        SshExec(node="pve1", ctid=CT, argv=["printf", "%s\\0", *args], address="127.0.0.1"))
    assert ok, error
    assert output["stdout"].split("\0")[:-1] == args
    assert not list(node.root.rglob("pwned*"))
    assert remote_command(SshExec(node="pve1", ctid=CT, argv=["a b"])) == "timeout -k 5 60 pct exec 201 -- 'a b'"


async def test_a_command_that_hangs_is_cut_at_its_timeout(tmp_path: Path, node: SshNode) -> None:
    node.container(CT)
    world = make_world(tmp_path, node)
    _, result = await run(world, "ct.exec", {"vmid": CT, "argv": ["sleep", "60"], "timeout": 1})
    assert not result.ok and "timeout of 1 s" in result.steps[0].error
    record = records(world)[-2]
    assert record.kind == "exec" and record.outcome["timed_out"] and record.outcome["seconds"] < 30


async def test_a_command_that_floods_is_cut_at_the_output_limit(tmp_path: Path, node: SshNode) -> None:
    node.container(CT)
    world = make_world(tmp_path, node)
    _, result = await run(world, "ct.exec", {"vmid": CT, "argv": ["head", "-c", "5000000", "/dev/zero"], "max_output": 1000})
    assert not result.ok and "limit of 1000 bytes" in result.steps[0].error
    record = records(world)[-2].outcome
    assert record["truncated"] and record["stdout_bytes"] + record["stderr_bytes"] <= 1000


async def test_snapshot_first_takes_an_undo_point_before_the_command(tmp_path: Path, node: SshNode) -> None:
    node.container(CT)
    world = make_world(tmp_path, node)
    plan, result = await run(world, "ct.exec", {"vmid": CT, "argv": ["true"], "snapshot_first": True})
    assert isinstance(plan.steps[0], ApiCall) and plan.steps[0].path == f"/nodes/pve1/lxc/{CT}/snapshot"
    assert isinstance(plan.steps[1], SshExec)
    assert any("snapshot proximo-exec-1 is taken first" in n for n in plan.notes)
    assert plan.reversible and plan.undo == [ApiCall("POST", f"/nodes/pve1/lxc/{CT}/snapshot/proximo-exec-1/rollback", {})]
    assert result.ok, result.steps
    assert ("POST", f"/api2/json/nodes/pve1/lxc/{CT}/snapshot") in world.sim.requests or any(
        m == "POST" and p.endswith(f"/lxc/{CT}/snapshot") for m, p in world.sim.requests)
    assert "proximo-exec-1" in {s.get("name") for s in world.model.guests[CT].snapshots or []}


async def test_a_container_pct_finds_stopped_fails_the_step_as_pct_says(tmp_path: Path, node: SshNode) -> None:
    node.container(CT, running=False)
    try:
        world = make_world(tmp_path, node)
        _, result = await run(world, "ct.exec", {"vmid": CT, "argv": ["df"]})
    finally:
        node.container(CT)
    assert not result.ok and result.steps[0].error == f"exit status 255: container '{CT}' not running!"
    assert records(world)[-2].outcome["exit_status"] == 255


@pytest.mark.parametrize("case", ["unknown", "changed"])
async def test_an_unknown_or_changed_host_key_is_refused(tmp_path: Path, node: SshNode, case: str) -> None:
    rootfs = node.container(CT)
    known = tmp_path / "known_hosts"
    if case == "unknown":
        known.write_text("[127.0.0.1]:1 " + " ".join(node.host_key_line.split()[1:]) + "\n")  # another host's entry
    else:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
        other = " ".join((tmp_path / "other.pub").read_text().split()[:2])
        known.write_text(f"[127.0.0.1]:{node.port} {other}\n")
    world = make_world(tmp_path, node, PROXIMO_SSH_KNOWN_HOSTS=str(known))
    _, result = await run(world, "ct.exec", {"vmid": CT, "argv": ["touch", "ran"]})
    assert not result.ok and "unknown or changed: refused" in result.steps[0].error
    assert not (rootfs / "ran").exists()
    assert known.read_text().count("\n") == 1  # nothing learnt


async def test_no_known_hosts_file_means_nothing_is_sent(tmp_path: Path, node: SshNode) -> None:
    world = make_world(tmp_path, node, PROXIMO_SSH_KNOWN_HOSTS=str(tmp_path / "absent"))
    _, result = await run(world, "ct.exec", {"vmid": CT, "argv": ["true"]})
    assert not result.ok and "no known_hosts file" in result.steps[0].error


# --- the policy's reads -----------------------------------------------------------------------------------------


async def test_policy_listed_commands_and_ct_logs_are_low_reads_without_a_person(tmp_path: Path, node: SshNode) -> None:
    rootfs = node.container(CT)
    (rootfs / "app.log").write_text("".join(f"line {i}\n" for i in range(50)))
    policy = tmp_path / "policy.toml"
    policy.write_text('exec_read_only = ["ct.logs", "df", "systemctl status"]\n')
    world = make_world(tmp_path, node, PROXIMO_POLICY=str(policy), PROXIMO_AUTO_APPROVE="LOW")
    plan, result = await run(world, "ct.logs", {"vmid": CT, "file": f"{rootfs}/app.log", "lines": 3}, person=False)
    assert plan.risk.value == "LOW" and not plan.impacts
    assert result.ok and result.steps[0].output["stdout"] == "line 47\nline 48\nline 49\n"
    assert plan.steps[0].argv == ["tail", "-n", "3", "--", f"{rootfs}/app.log"]
    assert [r.kind for r in records(world)][-4:] == ["approve", "apply-start", "exec", "apply-result"]
    assert records(world)[-4].outcome["by"] == "auto"
    async with world.host() as host:
        df = await host.plan("ct.exec", {"vmid": CT, "argv": ["df", "-h"]}, world.actor)
        other = await host.plan("ct.exec", {"vmid": CT, "argv": ["dfx"]}, world.actor)
        journal = await host.plan("ct.logs", {"vmid": CT, "unit": "nginx.service"}, world.actor)
    assert df.risk.value == "LOW" and other.risk.value == "HIGH" and journal.risk.value == "LOW"
    assert journal.steps[0].argv == ["journalctl", "--no-pager", "-n", "100", "-u", "nginx.service"]


async def test_ct_logs_takes_a_unit_or_a_file(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    async with world.host() as host:
        for params in ({"vmid": CT}, {"vmid": CT, "unit": "a.service", "file": "/var/log/syslog"}):
            with pytest.raises(BadInput, match="one of them"):
                await host.plan("ct.logs", params, world.actor)
        for params in ({"vmid": CT, "unit": "a;b"}, {"vmid": CT, "file": "/var/../etc/shadow"}, {"vmid": CT, "file": "rel"}):
            with pytest.raises(BadInput):
                await host.plan("ct.logs", params, world.actor)


# --- the faces --------------------------------------------------------------------------------------------------


async def test_the_mcp_face_plans_and_applies_it(tmp_path: Path, node: SshNode) -> None:
    from mcp import Client

    from proximo.mcp import McpSettings, build_server

    node.container(CT)
    policy = tmp_path / "policy.toml"
    policy.write_text('exec_read_only = ["df"]\n')
    world = make_world(tmp_path, node, PROXIMO_POLICY=str(policy))
    server = build_server(world.host, McpSettings(toolset="full"), tools=world.packs.tools)
    async with Client(server, mode="legacy") as client:
        made = (await client.call_tool("pve_ct_exec", {"vmid": CT, "argv": ["df", "-P", "."]})).structured_content
        assert made["risk"] == "LOW" and made["steps"][0]["kind"] == "ssh"
        applied = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})
    assert not applied.is_error, applied
    assert applied.structured_content["ok"] and "Filesystem" in applied.structured_content["steps"][0]["output"]["stdout"]


def test_the_cli_plans_it(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from proximo.cli import build_cli
    from proximo.model import dump_snapshot, load_snapshot

    snap = tmp_path / "cluster.json"
    snap.write_text(json.dumps(dump_snapshot(load_snapshot(cluster()))))
    env = {"PROXIMO_HOME": str(tmp_path / "home"), "PROXIMO_ENABLE_EXEC": "1", "PROXIMO_EXEC_ALLOW": str(CT),
           "PROXIMO_URL": None, "PROXIMO_POLICY": None, "PROXIMO_AUTO_APPROVE": None}
    result = CliRunner().invoke(build_cli(), ["plan", "--snapshot", str(snap), "ct.exec", f"vmid={CT}", 'argv=["df","-h"]',
                                              "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["risk"] == "HIGH" and plan["steps"] == [{"kind": "ssh", "node": "pve1", "ctid": CT, "argv": ["df", "-h"],
                                                         "address": "127.0.0.1", "timeout": 60.0, "max_output": 65536}]
    off = CliRunner().invoke(build_cli(), ["plan", "--snapshot", str(snap), "ct.exec", f"vmid={CT}", 'argv=["df"]'],
                             env={**env, "PROXIMO_ENABLE_EXEC": None}, catch_exceptions=False)
    assert off.exit_code == 3 and "PROXIMO_ENABLE_EXEC=1" in off.stderr


def test_the_cli_plans_and_applies_it_and_shows_the_output_safely(tmp_path: Path, node: SshNode) -> None:
    from click.testing import CliRunner

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
    from _loopback import serve

    from proximo.cli import build_cli

    (node.container(CT) / "note.txt").write_text("hello \x1b[31mred\n")
    policy = tmp_path / "policy.toml"
    policy.write_text('exec_read_only = ["cat note.txt"]\n')
    world = make_world(tmp_path, node)
    with serve(world.sim.app) as url:
        env: dict[str, str | None] = {
            "PROXIMO_HOME": str(world.home), "PROXIMO_TOKEN_ID": TOKEN_ID, "PROXIMO_TOKEN_SECRET": world.secret,
            "PROXIMO_ENABLE_EXEC": "1", "PROXIMO_EXEC_ALLOW": str(CT), **node.env(), "PROXIMO_URL": url, "PROXIMO_POLICY": str(policy), "PROXIMO_AUTO_APPROVE": None,
               "PROXIMO_LEDGER": None, "PROXIMO_LEDGER_KEY": None}
        made = CliRunner().invoke(build_cli(), ["plan", "ct.exec", f"vmid={CT}", 'argv=["cat","note.txt"]', "--json"],
                                  env=env, catch_exceptions=False)
        assert made.exit_code == 0, made.output
        plan = json.loads(made.stdout)
        assert plan["risk"] == "LOW"
        applied = CliRunner().invoke(build_cli(), ["apply", plan["plan_id"]], env=env, catch_exceptions=False)
    assert applied.exit_code == 0, applied.output
    assert "hello \ufffd[31mred" in applied.stdout and "\x1b" not in applied.stdout
    assert "exit status 0, 15 bytes of stdout" in applied.stdout


async def test_the_restricted_key_runs_nothing_but_pct_exec_in_its_containers(tmp_path: Path, node: SshNode) -> None:
    """contrib/proximo-exec-only, given CTID 201: another container, or any other command line, is refused on the node."""
    import asyncssh

    node.container(CT)
    node.container(202)
    world = make_world(tmp_path, node, restricted=True, PROXIMO_EXEC_ALLOW=f"{CT},202")  # Proximo allows it; the node does not
    ok, _, _, error = await SshRunner(world.settings).run(SshExec(node="pve1", ctid=202, argv=["true"], address="127.0.0.1"))
    assert not ok and error == "exit status 126: proximo-exec-only: refused: CT 202 is not allowed for this key"
    async with asyncssh.connect("127.0.0.1", port=node.port, username="root", client_keys=[str(node.restricted_key)],
                                known_hosts=str(node.known_hosts), config=None, agent_path=None) as conn:
        for line in ("touch /tmp/pwned9", "timeout -k 5 1 ; touch pwned9 ; pct exec 201 -- true",
                     "timeout -k 5 60 pct exec 201 -- true; touch pwned9", "timeout -k 5 60 pct exec 201 -- $(touch pwned9)"):
            done = await conn.run(line)
            assert done.exit_status == 126, (line, done.stderr)
    assert not list(node.root.rglob("pwned*")) and not Path("/tmp/pwned9").exists()


@pytest.mark.parametrize("change", [{"exec_enabled": False}, {"exec_allow": ["202"]}])
async def test_a_plan_made_while_allowed_does_not_run_after_exec_is_turned_off(tmp_path: Path, node: SshNode,
                                                                                change: dict[str, Any]) -> None:
    rootfs = node.container(CT)
    world = make_world(tmp_path, node)
    async with world.host() as host:
        plan = await host.plan("ct.exec", {"vmid": CT, "argv": ["touch", "ran"]}, world.actor)
        host.approve(plan.plan_id, world.actor, world.person)
    async with world.host(**change) as host:
        with pytest.raises(PolicyDenied):
            await host.apply(plan.plan_id, world.actor)
    assert records(world)[-1].kind == "deny" and not (rootfs / "ran").exists()


async def test_a_node_that_does_not_answer_fails_the_step_and_the_apply_is_recorded(tmp_path: Path, node: SshNode) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    world = make_world(tmp_path, node, PROXIMO_SSH_PORT=str(closed))
    _, result = await run(world, "ct.exec", {"vmid": CT, "argv": ["true"]})
    assert not result.ok and result.steps[0].error.startswith("ssh to 127.0.0.1 (node pve1) failed")
    assert [r.kind for r in records(world)][-2:] == ["exec", "apply-result"]
