"""Permission blast radius through the real pipeline, on a snapshot in real API shapes (see _acl_cluster.py).

Each rule is checked through a named tool and through ``api.call`` on the same endpoint: the analysers diff
before and after, so both must report the same impacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _acl_cluster import OPERATOR, acl, cluster, token, user

from proximo import NotApproved, Plan, Risk
from proximo.testing import World

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _plan(tmp_path: Path, tool: str, params: dict[str, Any], snapshot: dict[str, Any] | None = None, **env: str) -> Plan:
    world = World(tmp_path, snapshot or cluster(), env=env or None)
    async with world.host() as host:
        return await host.plan(tool, params, world.actor)


def _effects(plan: Plan) -> list[tuple[str, str]]:
    return sorted((i.target, i.effect) for i in plan.impacts)


def _impact(plan: Plan, target: str, effect: str) -> str:
    found = [i.reason for i in plan.impacts if i.target == target and i.effect == effect]
    assert found, f"no {effect} on {target}: {_effects(plan)}"
    return found[0]


# --- lockout ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool,params", [
    ("access.acl.revoke", {"path": "/", "roles": "Administrator", "tokens": OPERATOR}),
    ("api.call", {"method": "PUT", "path": "/access/acl", "params": {"path": "/", "roles": "Administrator", "tokens": OPERATOR, "delete": 1}}),
])
async def test_operator_token_losing_what_it_needs_is_a_critical_lockout(tmp_path: Path, tool: str, params: dict[str, Any]) -> None:
    plan = await _plan(tmp_path, tool, params)
    reason = _impact(plan, f"token/{OPERATOR}", "lockout")
    assert "Sys.Audit" in reason and "Datastore" in reason
    assert plan.risk is Risk.CRITICAL


async def test_privsep_trap_owner_losing_the_role_locks_the_token_out(tmp_path: Path) -> None:
    """A privsep token keeps its own ACL but gets only what its owner has too: revoking the owner's role is a lockout."""
    plan = await _plan(tmp_path, "access.acl.revoke", {"path": "/", "roles": "Administrator", "users": "proximo@pve"})
    assert ("token/" + OPERATOR, "lockout") in _effects(plan)
    assert plan.risk is Risk.CRITICAL


async def test_deleting_proximos_own_token_is_refused(tmp_path: Path) -> None:
    plan = await _plan(tmp_path, "access.token.delete", {"userid": "proximo@pve", "tokenid": "agent"})
    assert "is deleted: Proximo could not act afterwards" in _impact(plan, f"token/{OPERATOR}", "lockout")
    assert plan.blocked and any("is deleted: Proximo could not act afterwards" in b for b in plan.blockers)
    assert any("NEW" in n and "secret" in n for n in plan.notes)


async def test_disabling_the_operators_user_is_a_lockout_a_person_may_approve(tmp_path: Path) -> None:
    plan = await _plan(tmp_path, "access.user.update", {"userid": "proximo@pve", "enable": False})
    assert "can no longer authenticate (disabled or expired)" in _impact(plan, "token/" + OPERATOR, "lockout")
    assert plan.risk is Risk.CRITICAL and not plan.blocked  # the token and its secret survive: it can be enabled again


async def test_nobody_but_root_keeping_permissions_modify_is_refused(tmp_path: Path) -> None:
    """Only a holder of Permissions.Modify on / may revoke it there, so the last one can only be the operator's own."""
    snapshot = cluster(acl_rows=[a for a in cluster()["api"]["/access/acl"] if a["ugid"] != "admins"])
    plan = await _plan(tmp_path, "access.acl.revoke", {"path": "/", "roles": "Administrator", "users": "proximo@pve"}, snapshot)
    assert "nobody but root@pam" in _impact(plan, "user/root@pam", "lockout")
    assert "proximo@pve" in _impact(plan, "user/root@pam", "lockout")
    assert plan.risk is Risk.CRITICAL and plan.blocked


async def test_someone_else_keeping_permissions_modify_is_no_lockout(tmp_path: Path) -> None:
    snapshot = cluster(acl_rows=[*cluster()["api"]["/access/acl"], acl("/", "user", "carol@pve", "Administrator")])
    plan = await _plan(tmp_path, "access.acl.revoke", {"path": "/", "roles": "Administrator", "groups": "admins"}, snapshot)
    assert not any(i.effect == "lockout" for i in plan.impacts)
    assert ("user/alice@pve", "privilege-loss") in _effects(plan)
    assert plan.risk is Risk.HIGH


# --- escalation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool,params", [
    ("access.acl.grant", {"path": "/", "roles": "Administrator", "users": "carol@pve"}),
    ("api.call", {"method": "PUT", "path": "/access/acl", "params": {"path": "/", "roles": "Administrator", "users": "carol@pve"}}),
])
async def test_granting_administrator_is_escalation_and_never_auto_approved(tmp_path: Path, tool: str, params: dict[str, Any]) -> None:
    world = World(tmp_path, cluster(), env={"PROXIMO_AUTO_APPROVE": "HIGH"})
    async with world.host() as host:
        plan = await host.plan(tool, params, world.actor)
        assert plan.risk is Risk.HIGH  # HIGH is within PROXIMO_AUTO_APPROVE=HIGH here ...
        assert "ESCALATION" in _impact(plan, "user/carol@pve", "privilege-gain")
        assert any(i.needs_person for i in plan.impacts)
        assert host.needs_person(plan)  # ... and still a person must approve it
        with pytest.raises(NotApproved):
            await host.apply(plan.plan_id, world.actor)
        assert not any(a["ugid"] == "carol@pve" and a["path"] == "/" for a in world.model.acl)


async def test_granting_a_role_with_sys_modify_to_an_empty_group_is_still_escalation(tmp_path: Path) -> None:
    snapshot = cluster(groups=[*cluster()["api"]["/access/groups"], {"groupid": "empty", "users": ""}])
    plan = await _plan(tmp_path, "access.acl.grant", {"path": "/nodes", "roles": "PVESysAdmin,Administrator", "groups": "empty"}, snapshot)
    reasons = [i.reason for i in plan.impacts if i.target == "group/empty"]
    assert any("Administrator role" in r for r in reasons)
    assert all(i.needs_person for i in plan.impacts if i.target == "group/empty")


async def test_an_ordinary_grant_is_a_privilege_gain_summarised_by_paths(tmp_path: Path) -> None:
    plan = await _plan(tmp_path, "access.acl.grant", {"path": "/vms", "roles": "PVEVMUser", "users": "carol@pve"})
    reason = _impact(plan, "user/carol@pve", "privilege-gain")
    assert "VM.PowerMgmt" in reason and "/vms/100" in reason and "/vms/102" in reason
    assert "ESCALATION" not in reason and not any(i.needs_person for i in plan.impacts)
    assert len(plan.impacts) == 1  # one line per subject, not one per path


async def test_updating_a_role_changes_every_holder(tmp_path: Path) -> None:
    plan = await _plan(tmp_path, "access.role.update", {"roleid": "VMOperator", "privs": "VM.Audit"})
    reason = _impact(plan, "user/bob@pve", "privilege-loss")
    assert "VM.Console, VM.PowerMgmt on /pool/prod, /vms/100, /vms/101" in reason  # the pool and its members


# --- group membership -------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool,params", [
    ("access.user.update", {"userid": "carol@pve", "groups": "admins", "append": True}),
    ("api.call", {"method": "PUT", "path": "/access/users/carol@pve", "params": {"groups": "admins", "append": 1}}),
])
async def test_joining_the_admins_group_is_escalation(tmp_path: Path, tool: str, params: dict[str, Any]) -> None:
    plan = await _plan(tmp_path, tool, params)
    assert "ESCALATION" in _impact(plan, "user/carol@pve", "privilege-gain")
    assert plan.undo is not None and plan.undo[0].params == {"groups": ""}  # carol was in no group


async def test_leaving_a_group_by_replacing_groups_loses_its_pool_roles(tmp_path: Path) -> None:
    plan = await _plan(tmp_path, "access.user.update", {"userid": "bob@pve", "groups": "admins"})
    assert ("user/bob@pve", "privilege-gain") in _effects(plan)  # joins admins
    plan2 = await _plan(tmp_path / "b", "api.call", {"method": "PUT", "path": "/access/users/bob@pve", "params": {"groups": ""}})
    assert "VM.PowerMgmt on /pool/prod, /vms/100, /vms/101" in _impact(plan2, "user/bob@pve", "privilege-loss")
    # bob@pve!ci is privilege-separated: its own PVEVMUser on /vms/101 was capped by bob's, so it loses there too
    assert "on /vms/101" in _impact(plan2, "token/bob@pve!ci", "privilege-loss")
    assert plan2.undo is not None and plan2.undo[0].params == {"groups": "operators"}


async def test_deleting_a_group_removes_its_members_roles(tmp_path: Path) -> None:
    plan = await _plan(tmp_path, "access.group.delete", {"groupid": "operators"})
    assert ("user/bob@pve", "privilege-loss") in _effects(plan)
    assert plan.undo is not None
    assert [s.describe() for s in plan.undo] == [
        "POST /access/groups groupid=operators",
        "PUT /access/users/bob@pve append=1 groups=operators",
        "PUT /access/acl groups=operators path=/pool/prod propagate=1 roles=VMOperator",
    ]


# --- user deletion ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool,params", [
    ("access.user.delete", {"userid": "bob@pve"}),
    ("api.call", {"method": "DELETE", "path": "/access/users/bob@pve"}),
])
async def test_deleting_a_user_lists_each_of_its_tokens(tmp_path: Path, tool: str, params: dict[str, Any]) -> None:
    plan = await _plan(tmp_path, tool, params)
    assert "deleted with its user" in _impact(plan, "token/bob@pve!ci", "privilege-loss")
    assert "deleted" in _impact(plan, "user/bob@pve", "privilege-loss")
    assert any("bob@pve!ci" in n and "NEW secrets" in n for n in plan.notes)
    assert plan.undo is not None
    undo = [s.describe() for s in plan.undo]
    assert undo[0].startswith("POST /access/users ") and "groups=operators" in undo[0] and "userid=bob@pve" in undo[0]
    assert "POST /access/users/bob@pve/token/ci comment=CI pipeline expire=0 privsep=1" in undo
    assert "PUT /access/acl path=/vms/101 propagate=1 roles=PVEVMUser tokens=bob@pve!ci" in undo


async def test_deleting_a_user_with_no_privileges_still_lists_its_tokens(tmp_path: Path) -> None:
    users = [*cluster()["api"]["/access/users?full=1"], user("dave@pve", tokens=[token("idle")])]
    plan = await _plan(tmp_path, "access.user.delete", {"userid": "dave@pve"}, cluster(users=users))
    assert "had no privileges" in _impact(plan, "token/dave@pve!idle", "privilege-loss")
    assert plan.risk is Risk.MEDIUM  # listed, but nothing beyond the named user is affected


async def test_deleting_proximos_user_is_refused(tmp_path: Path) -> None:
    plan = await _plan(tmp_path, "access.user.delete", {"userid": "proximo@pve"})
    assert f"and its token {OPERATOR} with it" in _impact(plan, "user/proximo@pve", "lockout")
    assert plan.blocked and plan.risk is Risk.CRITICAL and plan.target == "proximo@pve"


async def test_changes_elsewhere_report_no_privilege_impacts(tmp_path: Path) -> None:
    plan = await _plan(tmp_path, "access.group.update", {"groupid": "admins", "comment": "renamed"})
    assert plan.impacts == [] and plan.risk is Risk.MEDIUM
    plan2 = await _plan(tmp_path / "s", "storage.update", {"storage": "tank", "content": "images,rootdir"})
    assert not any(i.effect.startswith("privilege") for i in plan2.impacts)
