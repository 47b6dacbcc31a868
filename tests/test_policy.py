"""The policy file (PROXIMO_POLICY): limits the agent cannot lift, judged on what a plan changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from proximo import BadInput, PolicyDenied
from proximo.trust._ledger import Actor
from proximo.trust._policy import Policy, load_policy
from proximo.testing import World

pytestmark = pytest.mark.anyio
PERSON = Actor(token_id="-", face="terminal", client="alice@workstation")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def world_with(tmp_path: Path, text: str) -> World:
    policy = tmp_path / "policy.toml"
    policy.write_text(text)
    return World(tmp_path / "home", env={"PROXIMO_POLICY": str(policy)})


async def test_a_denied_tool_is_refused_before_planning_and_recorded(tmp_path: Path) -> None:
    world = world_with(tmp_path, 'deny_tools = ["guest.destroy", "storage.*"]\n')
    async with world.host() as host:
        with pytest.raises(PolicyDenied, match=r"storage.delete: the policy file denies this tool \(deny_tools 'storage\.\*'\)"):
            await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
        assert [r.kind for r in host.ledger.tail(5)] == ["deny"]
        plan = await host.plan("guest.stop", {"vmid": 104}, world.actor)  # not denied: planned as usual
    assert not plan.blocked


async def test_a_plan_above_max_risk_is_blocked_and_cannot_be_applied(tmp_path: Path) -> None:
    world = world_with(tmp_path, 'max_risk = "MEDIUM"\n')
    async with world.host() as host:
        plan = await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)  # boot disks: HIGH
        assert plan.blocked and "policy: risk HIGH is above the policy's max_risk MEDIUM" in plan.blockers
        with pytest.raises(Exception, match="blocked"):
            host.approve(plan.plan_id, PERSON, world.person)
    assert "local-zfs" in world.model.storages


@pytest.mark.parametrize(("policy", "tool", "params", "blocker"), [
    ("vmids = [105, \"200-299\"]\n", "guest.stop", {"vmid": 104}, "guest(s) 104 are outside the allowed vmids"),
    ("nodes = [\"pve1\"]\n", "guest.stop", {"vmid": 106}, "node(s) pve2 are outside the allowed nodes"),
    ("storages = [\"nfs-backup\"]\n", "storage.update", {"storage": "local-zfs", "disable": 1},
     "storage(s) local-zfs are outside the allowed storages"),
])
async def test_scope_limits_block_what_a_plan_changes(tmp_path: Path, policy: str, tool: str, params: dict, blocker: str) -> None:
    world = world_with(tmp_path, policy)
    async with world.host() as host:
        plan = await host.plan(tool, params, world.actor)
    assert plan.blocked and f"policy: {blocker}" in plan.blockers


@pytest.mark.parametrize(("policy", "tool", "params"), [
    ("vmids = [104]\nnodes = [\"pve1\"]\n", "guest.stop", {"vmid": 104}),
    ("vmids = [\"200-299\"]\n", "guest.stop", {"vmid": 201}),
    ("storages = [\"local-zfs\"]\n", "storage.update", {"storage": "local-zfs", "disable": 1}),
])
async def test_inside_the_limits_nothing_is_blocked(tmp_path: Path, policy: str, tool: str, params: dict) -> None:
    world = world_with(tmp_path, policy)
    async with world.host() as host:
        plan = await host.plan(tool, params, world.actor)
    assert not any(b.startswith("policy:") for b in plan.blockers)


async def test_a_policy_tightened_after_planning_stops_the_apply(tmp_path: Path) -> None:
    world = World(tmp_path / "home")
    async with world.host() as host:
        plan = await host.plan("guest.stop", {"vmid": 104}, world.actor)
    policy = tmp_path / "policy.toml"
    policy.write_text('deny_tools = ["guest.*"]\n')
    async with world.host(policy_path=policy) as host:
        with pytest.raises(PolicyDenied):
            await host.apply(plan.plan_id, world.actor)
        assert host.ledger.tail(1)[0].kind == "deny"
    assert world.model.guests[104].resource["status"] == "running"


@pytest.mark.parametrize(("text", "error"), [
    ("max_risk = \"EXTREME\"\n", r"Invalid enum value .EXTREME. - at `\$.max_risk`"),
    ("deny = [\"x\"]\n", "unknown field"),
    ("vmids = [\"1٢3\"]\n", "not a vmid or a range"),
    ("vmids = [\"100-\"]\n", "not a vmid or a range"),
    ("nodes = \"pve1\"\n", "Expected `array"),
    ("deny_tools = [\n", "not valid TOML"),
])
def test_a_broken_policy_file_stops_the_host(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(BadInput, match=error):
        load_policy(path)


async def test_a_missing_policy_file_stops_the_host_before_any_read(tmp_path: Path) -> None:
    world = World(tmp_path / "home")
    with pytest.raises(BadInput, match="cannot read"):
        async with world.host(policy_path=tmp_path / "absent.toml"):
            pass


def test_no_policy_means_no_limits() -> None:
    assert load_policy(None) == Policy()


@pytest.mark.parametrize(("text", "code", "line"), [
    ('deny_tools = ["storage.*"]\n', 3, "proximo: storage.delete: the policy file denies this tool (deny_tools 'storage.*')"),
    ('max_risk = LOW\n', 2, "proximo: PROXIMO_POLICY: "),  # not TOML (a bare word): the CLI stops, nothing planned
])
def test_the_cli_says_it_in_one_line_with_the_exit_code(tmp_path: Path, text: str, code: int, line: str) -> None:
    import json

    from click.testing import CliRunner

    from proximo.cli import build_cli
    from proximo.sim import demo_snapshot

    snapshot, policy = tmp_path / "snap.json", tmp_path / "policy.toml"
    snapshot.write_text(json.dumps(demo_snapshot()))
    policy.write_text(text)
    env = {"PROXIMO_HOME": str(tmp_path / "home"), "PROXIMO_POLICY": str(policy)}
    result = CliRunner().invoke(build_cli(), ["plan", "storage.delete", "storage=local-zfs", "--snapshot", str(snapshot)], env=env)
    assert result.exit_code == code and result.stderr.startswith(line) and result.stderr.count("\n") == 1


# --- approval = "person": only a person's own credential or account, not a client's form ------------------------


async def test_approval_person_refuses_a_client_form_for_high_plans(tmp_path: Path) -> None:
    from proximo import NotApproved
    from proximo.trust._pipeline import ClientForm

    world = world_with(tmp_path, 'approval = "person"\n')
    form = ClientForm("mcp-elicitation", "some MCP client 1.0")
    async with world.host() as host:
        high = await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
        with pytest.raises(NotApproved, match=r'the policy \(approval = "person"\) needs a person\'s own credential for HIGH'):
            host.approve(high.plan_id, PERSON, form)
        assert host.ledger.tail(1)[0].kind == "deny"
        host.approve(high.plan_id, PERSON, world.person)  # the approver's passphrase is a person's own credential
        result = await host.apply(high.plan_id, world.actor)
    assert result.ok and "local-zfs" not in world.model.storages


async def test_a_form_approval_from_before_the_policy_is_not_relied_on(tmp_path: Path) -> None:
    from proximo import NotApproved
    from proximo.trust._pipeline import ClientForm

    policy = tmp_path / "policy.toml"
    policy.write_text("")
    world = World(tmp_path / "home", env={"PROXIMO_POLICY": str(policy)})
    async with world.host() as host:
        high = await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
        host.approve(high.plan_id, PERSON, ClientForm("mcp-elicitation", "some MCP client 1.0"))
    policy.write_text('approval = "person"\n')  # the operator tightens the policy before the agent applies
    async with world.host() as host:
        with pytest.raises(NotApproved, match=r"its approval cannot be relied on \(the policy needs a person's own credential"):
            await host.apply(high.plan_id, world.actor)
    assert "local-zfs" in world.model.storages


async def test_approval_person_leaves_plans_within_auto_approval_alone(tmp_path: Path) -> None:
    world = world_with(tmp_path, 'approval = "person"\n')
    async with world.host() as host:
        medium = await host.plan("guest.config.set", {"vmid": 104, "description": "hello"}, world.actor)
        assert (await host.apply(medium.plan_id, world.actor)).ok


async def test_applies_an_hour_are_capped_overall_and_by_risk_and_a_cap_reached_is_recorded(tmp_path: Path) -> None:
    world = world_with(tmp_path, "max_applies_per_hour = 2\nmax_applies_per_hour_by_risk = {HIGH = 0}\n")
    updates = [{"storage": "nfs-backup", "prune-backups": f"keep-last={n}"} for n in (2, 3, 4)]
    async with world.host() as host:
        for params in updates[:2]:
            plan = await host.plan("storage.update", params, world.actor)  # MEDIUM: within auto-approval
            assert (await host.apply(plan.plan_id, world.actor)).ok
        plan = await host.plan("storage.update", updates[2], world.actor)
        with pytest.raises(PolicyDenied, match="the policy allows 2 applies an hour, and 2 started in the last hour"):
            await host.apply(plan.plan_id, world.actor)
        assert host.ledger.tail(1)[0].kind == "deny"
    (tmp_path / "b").mkdir()
    high = world_with(tmp_path / "b", "max_applies_per_hour_by_risk = {HIGH = 0}\n")
    async with high.host() as host:
        plan = await host.plan("storage.delete", {"storage": "local-zfs"}, high.actor)  # HIGH
        host.approve(plan.plan_id, PERSON, high.person)
        with pytest.raises(PolicyDenied, match="the policy allows 0 HIGH applies an hour"):
            await host.apply(plan.plan_id, high.actor)
    assert "local-zfs" in high.model.storages


def test_a_negative_cap_stops_the_host(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("max_applies_per_hour = -1\n")
    with pytest.raises(BadInput, match="max_applies_per_hour"):
        load_policy(policy)


async def test_a_console_session_counts_as_a_persons_own_credential_while_its_approver_stands(tmp_path: Path) -> None:
    """The console's session was opened with the approver's passphrase (Host.sign_in): approval = "person" accepts
    it; an approver removed after approving leaves a record apply no longer relies on."""
    import time

    from proximo import NotApproved
    from proximo.trust._approvers import ApproverStore
    from proximo.trust._pipeline import ConsoleSession

    world = world_with(tmp_path, 'approval = "person"\n')
    person = world.person
    async with world.host() as host:
        assert host.sign_in(person) == person.name
        with pytest.raises(NotApproved):
            host.sign_in(type(person)(person.name, person.passphrase + "x"))
        high = await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
        record = host.approve(high.plan_id, PERSON, ConsoleSession(person.name, time.time()))
        assert record.outcome["channel"] == "console" and record.outcome["approver"] == person.name
        assert host.approval(host.get_plan(high.plan_id)) is not None
        ApproverStore(world.home).remove(person.name)
        with pytest.raises(NotApproved, match="no longer an approver"):
            await host.apply(high.plan_id, world.actor)
        with pytest.raises(NotApproved, match="no longer an approver: sign in again"):
            host.approve(high.plan_id, PERSON, ConsoleSession(person.name, time.time()))
    assert "local-zfs" in world.model.storages
