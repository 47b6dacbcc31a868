"""The access tools end to end on the simulator: reads (live and --snapshot), plan -> apply -> undo, the token
secret's one showing, ``proximo token-check``, and bad input (one clear line, nothing changed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _acl_cluster import OPERATOR, acl, cluster
from click.testing import CliRunner

from proximo import BadInput, Risk
from proximo.cli import build_cli
from proximo.model import dump_snapshot
from proximo.testing import World
from proximo_acl._tools import PermissionsParams, read_permissions

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, cluster())


def _acl_of(world: World, ugid: str) -> list[tuple[str, str]]:
    return sorted((a["path"], a["roleid"]) for a in world.model.acl if a["ugid"] == ugid)


# --- reads ------------------------------------------------------------------------------------------------


async def test_reads_answer_in_api_shapes_without_secrets(world: World) -> None:
    async with world.host() as host:
        users = (await host.read("access.users", {}, world.actor)).data
        tokens = (await host.read("access.tokens", {"userid": "bob@pve"}, world.actor)).data
        roles = (await host.read("access.roles", {}, world.actor)).data
        acl_rows = (await host.read("access.acl", {"path": "/pool/prod"}, world.actor)).data
        groups = (await host.read("access.groups", {}, world.actor)).data
    assert next(u for u in users if u["userid"] == "bob@pve")["tokens"] == ["ci"]
    assert tokens == [{"tokenid": "bob@pve!ci", "userid": "bob@pve", "privsep": 1, "expire": 0, "comment": "CI pipeline"}]
    assert {"roleid": "VMOperator", "privs": "VM.Audit,VM.Console,VM.PowerMgmt", "special": 0} in roles
    assert acl_rows == [acl("/pool/prod", "group", "operators", "VMOperator")]
    assert [g["groupid"] for g in groups] == ["admins", "operators"]


async def test_permissions_live_compares_with_proxmox(world: World) -> None:
    async with world.host() as host:
        answer = (await host.read("access.permissions", {"subject": "bob@pve", "path": "/vms/100"}, world.actor)).data
    assert answer["roles"] == [] and answer["pool_roles"] == ["VMOperator"]  # from /pool/prod, not an ACL on the VM
    assert answer["privileges"] == ["VM.Audit", "VM.Console", "VM.PowerMgmt"]
    assert answer["proxmox"] == answer["privileges"] and answer["agrees_with_proxmox"] is True
    assert ("GET", "/access/permissions") in world.sim.requests


async def test_permissions_live_says_when_proxmox_cannot_be_asked(world: World) -> None:
    # both reads of it fail: the state's (the token's own permissions) and the tool's live one
    world.sim.inject_fault("GET", r"^/access/permissions$", 403, "Permission check failed (/access, Sys.Audit)", times=2)
    async with world.host() as host:
        answer = (await host.read("access.permissions", {"subject": "carol@pve", "path": "/storage/local"}, world.actor)).data
    assert answer["privileges"] == ["Datastore.AllocateSpace", "Datastore.Audit"]
    assert answer["proxmox"] is None and "403 Permission check failed" in answer["proxmox_unavailable"]


def test_permissions_reports_a_disagreement(world: World) -> None:
    view = world.model.copy()
    view.other["/access/permissions?userid=carol@pve&path=/storage/local"] = {"/storage/local": {"Datastore.Audit": 1}}
    answer = read_permissions(PermissionsParams(subject="carol@pve", path="/storage/local"), view)
    assert answer["agrees_with_proxmox"] is False and "Proxmox says Datastore.Audit" in answer["disagreement"]


def test_read_permissions_offline_through_the_cli(tmp_path: Path, world: World) -> None:
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(dump_snapshot(world.model)))
    result = CliRunner().invoke(build_cli(), ["read", "access.permissions", "subject=bob@pve!ci", "path=/vms/101", "--snapshot", str(snap), "--json"],
                                env={"PROXIMO_HOME": str(tmp_path / "home")})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["data"]
    # the token's own PVEVMUser on /vms/101, capped by its owner bob (VMOperator through pool prod)
    assert data["roles"] == ["PVEVMUser"] and data["privsep"] == 1
    assert data["privileges"] == ["VM.Audit", "VM.Console", "VM.PowerMgmt"] and "proxmox" not in data


# --- plan -> apply -> undo on the simulator ----------------------------------------------------------------


async def test_grant_apply_undo_round_trip(world: World) -> None:
    async with world.host() as host:
        plan = await host.plan("access.acl.grant", {"path": "/vms/102", "roles": "PVEVMAdmin", "users": "carol@pve", "propagate": False}, world.actor)
        assert plan.risk is Risk.HIGH and plan.steps[0].params == {"path": "/vms/102", "roles": "PVEVMAdmin", "users": "carol@pve", "propagate": 0}
        host.approve(plan.plan_id, world.actor, world.person)
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction
        assert ("/vms/102", "PVEVMAdmin") in _acl_of(world, "carol@pve")
        undo = await host.undo(result.ledger.seq, world.actor)
        assert [s.describe() for s in undo.steps] == ["PUT /access/acl delete=1 path=/vms/102 roles=PVEVMAdmin users=carol@pve"]
        assert ("user/carol@pve", "privilege-loss") in [(i.target, i.effect) for i in undo.impacts]
        host.approve(undo.plan_id, world.actor, world.person)
        assert (await host.apply(undo.plan_id, world.actor)).ok
    assert _acl_of(world, "carol@pve") == [("/storage/local", "PVEDatastoreUser")]


async def test_user_delete_and_undo_bring_back_memberships_acls_and_tokens(world: World) -> None:
    before = world.model.copy()
    async with world.host() as host:
        plan = await host.plan("access.user.delete", {"userid": "bob@pve"}, world.actor)
        host.approve(plan.plan_id, world.actor, world.person)
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction
        assert "bob@pve" not in world.model.groups[1]["users"] and not _acl_of(world, "bob@pve!ci")
        undo = await host.undo(result.ledger.seq, world.actor)
        host.approve(undo.plan_id, world.actor, world.person)
        back = await host.apply(undo.plan_id, world.actor)
        assert back.ok and back.matches_prediction
    new_secret = [s.data for s in back.steps if isinstance(s.data, dict) and "value" in s.data]
    assert [d["full-tokenid"] for d in new_secret] == ["bob@pve!ci"]  # a NEW secret, shown once
    rows = lambda acl: sorted(tuple(sorted(a.items())) for a in acl)  # noqa: E731
    assert world.model.groups == before.groups and rows(world.model.acl) == rows(before.acl)
    assert world.model.users == before.users


async def test_token_secret_is_shown_once_and_stored_nowhere(world: World, tmp_path: Path) -> None:
    async with world.host() as host:
        plan = await host.plan("access.token.create", {"userid": "carol@pve", "tokenid": "backup", "privsep": True, "comment": "nightly"}, world.actor)
        assert plan.risk is Risk.MEDIUM and any("shown once" in n for n in plan.notes)
        result = await host.apply(plan.plan_id, world.actor)
        secret = result.steps[0].data["value"]
        assert result.steps[0].data["full-tokenid"] == "carol@pve!backup" and len(secret) == 36
        records = host.ledger.tail(5)
    assert secret not in json.dumps([r.outcome for r in records])
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in json.dumps(dump_snapshot(world.model))


async def test_role_and_group_lifecycle(world: World) -> None:
    async with world.host() as host:
        for tool, params in [("access.role.create", {"roleid": "Auditors", "privs": "Sys.Audit,VM.Audit"}),
                             ("access.group.create", {"groupid": "audit", "comment": "read only"}),
                             ("access.user.create", {"userid": "erin@pve", "groups": "audit", "email": "erin@lab"}),
                             ("access.acl.grant", {"path": "/", "roles": "Auditors", "groups": "audit"})]:
            plan = await host.plan(tool, params, world.actor)
            assert not plan.blocked, plan.blockers
            if host.needs_person(plan):
                host.approve(plan.plan_id, world.actor, world.person)
            result = await host.apply(plan.plan_id, world.actor)
            assert result.ok and result.matches_prediction, (tool, result)
        answer = (await host.read("access.permissions", {"subject": "erin@pve", "path": "/nodes/pve1"}, world.actor)).data
        assert answer["privileges"] == ["Sys.Audit", "VM.Audit"] and answer["agrees_with_proxmox"]
        plan = await host.plan("access.role.delete", {"roleid": "Auditors"}, world.actor)
        assert ("user/erin@pve", "privilege-loss") in [(i.target, i.effect) for i in plan.impacts]
        assert plan.undo is not None and [s.describe() for s in plan.undo][-1] == "PUT /access/acl groups=audit path=/ propagate=1 roles=Auditors"


# --- doctor -----------------------------------------------------------------------------------------------


async def test_doctor_names_a_missing_privilege_after_it_is_revoked(tmp_path: Path) -> None:
    rows = [*cluster(operator_role="PVEAdmin")["api"]["/access/acl"], acl("/", "user", "proximo@pve", "Administrator"),
            acl("/access", "token", OPERATOR, "Administrator")]
    world = World(tmp_path, cluster(acl_rows=rows))
    async with world.host() as host:
        report = (await host.read("access.doctor", {"tools": ["access.role.create"]}, world.actor)).data
        assert next(c for c in report["checks"] if c["tool"] == "access.role.create")["ok"] is True
        plan = await host.plan("access.acl.revoke", {"path": "/access", "roles": "Administrator", "tokens": OPERATOR}, world.actor)
        assert plan.risk is Risk.CRITICAL and "Sys.Modify on /access" in next(i.reason for i in plan.impacts if i.effect == "lockout")
        host.approve(plan.plan_id, world.actor, world.person, typed_target="/access")
        assert (await host.apply(plan.plan_id, world.actor)).ok
        report = (await host.read("access.doctor", {"tools": ["access.role.create", "storage.delete"]}, world.actor)).data
    role = next(c for c in report["checks"] if c["tool"] == "access.role.create")
    assert role["ok"] is False
    gap = role["missing"][0]
    assert gap["path"] == "/access" and gap["privileges"] == ["Sys.Modify"] and gap["why"] == "not granted"
    assert gap["fix"] == [f"pveum acl modify /access --tokens {OPERATOR} --roles Administrator"]
    assert report["proxmox_on_root"] and "Sys.Modify" not in report["proxmox_on_root"]


async def test_doctor_names_the_privilege_separation_trap(world: World) -> None:
    async with world.host() as host:
        report = (await host.read("access.doctor", {"subject": "bob@pve!ci", "tools": ["storage.create"]}, world.actor)).data
    gap = next(c for c in report["checks"] if c["tool"] == "storage.create")["missing"][0]
    assert gap["path"] == "/storage" and gap["privileges"] == ["Datastore.Allocate"]
    assert "privilege separation" in gap["why"]
    assert gap["fix"] == ["pveum acl modify /storage --tokens bob@pve!ci --roles PVEDatastoreAdmin",
                          "pveum acl modify /storage --users bob@pve --roles PVEDatastoreAdmin"]


def test_doctor_command_on_a_snapshot(tmp_path: Path, world: World) -> None:
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(dump_snapshot(world.model)))
    env = {"PROXIMO_HOME": str(tmp_path / "home"), "PROXIMO_TOKEN_ID": "bob@pve!ci"}
    result = CliRunner().invoke(build_cli(), ["token-check", "--snapshot", str(snap)], env=env)
    assert result.exit_code == 1  # bob's CI token cannot do most of what Proximo's tools need
    assert "!! storage.delete: missing Datastore.Allocate on /storage" in result.stdout
    assert "fix: pveum acl modify /storage --tokens bob@pve!ci --roles PVEDatastoreAdmin" in result.stdout
    ok = CliRunner().invoke(build_cli(), ["token-check", "--snapshot", str(snap), "--token-id", "root@pam", "--json"], env=env)
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True


# --- bad input: one clear line, nothing changed ----------------------------------------------------------

BAD: list[tuple[str, dict[str, Any]]] = [
    ("access.user.delete", {"userid": ".."}),
    ("access.user.delete", {"userid": "../etc@pve"}),
    ("access.user.delete", {"userid": "%2e%2e@pve"}),
    ("access.user.delete", {"userid": "a/b@pve"}),
    ("access.user.create", {"userid": "\u0661\u0662@pve"}),
    ("access.user.create", {"userid": "ok@pve", "enable": "maybe"}),
    ("access.user.create", {"userid": "ok@pve", "shell": "/bin/sh"}),
    ("access.user.update", {"userid": "carol@pve"}),
    ("access.acl.grant", {"path": "/vms/\u0661\u0660\u0660", "roles": "PVEVMUser", "users": "carol@pve"}),
    ("access.acl.grant", {"path": "/../etc", "roles": "PVEVMUser", "users": "carol@pve"}),
    ("access.acl.grant", {"path": "/vms", "roles": "NoSuchRole", "users": "carol@pve"}),
    ("access.acl.grant", {"path": "/vms", "roles": "PVEVMUser"}),
    ("access.acl.grant", {"path": "/vms", "roles": "PVEVMUser", "tokens": "carol@pve"}),
    ("access.acl.grant", {"path": "/vms", "roles": "PVEVMUser", "users": ["carol@pve"]}),
    ("access.acl.revoke", {"path": "/vms", "roles": "PVEVMUser", "users": "carol@pve"}),
    ("access.token.create", {"userid": "carol@pve", "tokenid": ".."}),
    ("access.token.delete", {"userid": "carol@pve", "tokenid": "nope"}),
    ("access.role.update", {"roleid": "PVEAdmin", "privs": "Sys.Modify"}),
    ("access.role.create", {"roleid": "X", "privs": "Sys.Everything"}),
    ("access.group.delete", {"groupid": "../admins"}),
    ("api.call", {"method": "PUT", "path": "/access/acl", "params": {"path": "/vms", "roles": "PVEVMUser", "users": "carol@pve", "bogus": 1}}),
    ("api.call", {"method": "DELETE", "path": "/access/users/%2e%2e"}),
]


@pytest.mark.parametrize("tool,params", BAD, ids=[f"{t}-{i}" for i, (t, _) in enumerate(BAD)])
async def test_bad_input_is_one_line_and_changes_nothing(world: World, tool: str, params: dict[str, Any]) -> None:
    before = world.model.copy()
    async with world.host() as host:
        with pytest.raises(BadInput) as info:
            await host.plan(tool, params, world.actor)
        assert host.ledger.tail(1)[0].kind == "deny"
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
    assert msgspec_equal(world.model, before)
    assert [m for m, _ in world.sim.requests if m != "GET"] == []


async def test_bad_read_input(world: World) -> None:
    async with world.host() as host:
        for params in ({"subject": "..", "path": "/"}, {"subject": "bob@pve", "path": "/vms/1\u0660"},
                       {"subject": "bob@pve", "path": 5}, {"subject": "bob@pve", "depth": 1}):
            with pytest.raises(BadInput):
                await host.read("access.permissions", params, world.actor)


def msgspec_equal(a: Any, b: Any) -> bool:
    import msgspec

    return msgspec.json.encode(a) == msgspec.json.encode(b)


async def test_simulator_lists_acl_entries_as_pve_does_for_the_asking_token(tmp_path: Path) -> None:
    """ACL.pm read_acl: all entries with Sys.Audit on /access; otherwise only paths the token may modify."""
    import httpx

    rows = [*cluster()["api"]["/access/acl"], acl("/vms/101", "user", "bob@pve", "PVEVMAdmin"),
            acl("/vms/101", "token", "bob@pve!ci", "PVEVMAdmin")]
    world = World(tmp_path, cluster(acl_rows=rows))
    world.sim.tokens["bob@pve!ci"] = "ci-secret-for-test"
    async with httpx.AsyncClient(transport=world.transport(), base_url="http://pve.sim:8006/api2/json") as client:
        mine = await client.get("/access/acl", headers={"Authorization": f"PVEAPIToken={OPERATOR}={world.secret}"})
        ci = await client.get("/access/acl", headers={"Authorization": "PVEAPIToken=bob@pve!ci=ci-secret-for-test"})
    assert len(mine.json()["data"]) == len(rows)  # Administrator on / has Sys.Audit on /access
    assert {a["path"] for a in ci.json()["data"]} == {"/vms/101"}  # VM.Allocate there, nothing else
    async with world.host() as host:
        report = (await host.read("access.doctor", {"subject": "bob@pve!ci", "tools": []}, world.actor)).data
    listing = next(c for c in report["checks"] if c["tool"].startswith("(listing every ACL entry"))
    assert listing["ok"] is False and listing["missing"][0]["privileges"] == ["Sys.Audit"] and listing["missing"][0]["path"] == "/access"


async def test_doctor_when_only_the_owner_lacks_it_fixes_only_the_owner(tmp_path: Path) -> None:
    """The privilege-separation trap proper: the token's own ACL grants it, its owner has nothing there."""
    rows = [*cluster()["api"]["/access/acl"], acl("/storage", "token", "bob@pve!ci", "PVEDatastoreAdmin")]
    world = World(tmp_path, cluster(acl_rows=rows))
    async with world.host() as host:
        report = (await host.read("access.doctor", {"subject": "bob@pve!ci", "tools": ["storage.create"]}, world.actor)).data
    gap = next(c for c in report["checks"] if c["tool"] == "storage.create")["missing"][0]
    assert "the token's own ACL has it" in gap["why"]
    assert gap["fix"] == ["pveum acl modify /storage --users bob@pve --roles PVEDatastoreAdmin"]


def test_proximo_token_check_against_the_simulator_over_loopback(tmp_path: Path) -> None:
    """`proximo token-check` (the CLI, through the host) on a simulated cluster served on 127.0.0.1, before and after
    a revoke that the simulator applies: the second run names the missing privilege and its fix."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_loopback", Path(__file__).resolve().parents[3] / "tests" / "_loopback.py")
    assert spec is not None and spec.loader is not None
    loopback = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loopback)
    rows = [*cluster(operator_role="PVEAdmin")["api"]["/access/acl"], acl("/access", "token", OPERATOR, "Administrator"),
            acl("/access", "user", "proximo@pve", "Administrator")]
    world = World(tmp_path, cluster(acl_rows=rows))
    with loopback.serve(world.sim.app) as url:
        env = {"PROXIMO_HOME": str(tmp_path / "cli"), "PROXIMO_URL": url, "PROXIMO_TOKEN_ID": OPERATOR,
               "PROXIMO_TOKEN_SECRET": world.secret}
        first = CliRunner().invoke(build_cli(), ["token-check", "--json"], env=env)
        assert first.exit_code in (0, 1), first.output
        roles_ok = next(c for c in json.loads(first.stdout)["checks"] if c["tool"] == "access.role.create")
        assert roles_ok["ok"] is True
        world.sim.model.acl[:] = [a for a in world.sim.model.acl if not (a["path"] == "/access" and a["type"] == "token")]
        second = CliRunner().invoke(build_cli(), ["token-check"], env=env)
    assert second.exit_code == 1
    assert "!! access.role.create: missing Sys.Modify on /access (not granted)" in second.stdout
    assert f"fix: pveum acl modify /access --tokens {OPERATOR} --roles Administrator" in second.stdout
    assert world.secret not in first.output + second.output


async def test_a_token_made_on_the_simulator_logs_in_until_it_is_deleted(world: World) -> None:
    import httpx

    async with world.host() as host:
        plan = await host.plan("access.token.create", {"userid": "carol@pve", "tokenid": "probe"}, world.actor)
        secret = (await host.apply(plan.plan_id, world.actor)).steps[0].data["value"]
        auth = {"Authorization": f"PVEAPIToken=carol@pve!probe={secret}"}
        async with httpx.AsyncClient(transport=world.transport(), base_url="http://pve.sim:8006/api2/json") as client:
            assert (await client.get("/version", headers=auth)).status_code == 200
            plan = await host.plan("access.token.delete", {"userid": "carol@pve", "tokenid": "probe"}, world.actor)
            assert (await host.apply(plan.plan_id, world.actor)).ok
            assert (await client.get("/version", headers=auth)).status_code == 401
            assert (await client.get("/version", headers={"Authorization": f"PVEAPIToken={OPERATOR}={world.secret}"})).status_code == 200
