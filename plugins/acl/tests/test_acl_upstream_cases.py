"""Proxmox's own permission tests (pve-access-control perm-test{1,...,8}.pl, api-get-permissions-test.pl).

perm-test6 and perm-test8 (pools, nested pools, tokens) come from tests/data/pve/from-git/pve-access-control.json,
the rest from tests/data/pve/pve-access-control.json.

Kept as test data in tests/data/pve/pve-access-control.json (with its origin): each user.cfg fixture, as the
REST API returns it, becomes a snapshot in real API shapes; every ``roles`` / ``privs`` case goes through the
``access.permissions`` tool on that snapshot, every ``check`` case through ``GET /access/permissions`` as the
simulator answers it, and every computed ``GET /access/permissions?userid=`` answer is compared whole.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from proximo import BadInput
from proximo.errors import PveApiError
from proximo.model import from_api
from proximo.model._access import BUILTIN_ROLES, Access, permissions_answer
from proximo.testing import World, snapshot_from

PVE_DATA = Path(__file__).resolve().parents[3] / "tests" / "data" / "pve"
ACCESS = json.loads((PVE_DATA / "pve-access-control.json").read_text())
FROM_GIT = json.loads((PVE_DATA / "from-git" / "pve-access-control.json").read_text())
assert not set(ACCESS["fixtures"]) & set(FROM_GIT["fixtures"])
FIXTURES: dict[str, dict[str, Any]] = {**ACCESS["fixtures"], **FROM_GIT["fixtures"]}


def _api(fixture: str) -> dict[str, Any]:
    """The fixture's GET answers as a snapshot's ``api`` map (``GET /access/acl`` -> ``/access/acl``)."""
    answers = copy.deepcopy(FIXTURES[fixture])  # the model may keep and change what it is given
    return {key[4:]: value for key, value in answers.items() if key.startswith("GET ") and "/permissions" not in key}


def _cases(kind: str, data: dict[str, Any] = ACCESS) -> list[dict[str, Any]]:
    return [c for c in data["cases"] if c["kind"] == kind]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_every_roles_and_privs_case_through_access_permissions(tmp_path: Path) -> None:
    cases = _cases("roles") + _cases("privs")
    assert len(cases) == 41  # the folder's roles and privs cases (the other 32 of its 73 are checks)
    assert await _failures(tmp_path, cases) == []


@pytest.mark.anyio
async def test_perm_test6_and_8_through_access_permissions(tmp_path: Path) -> None:
    """Pools (nested, a pool's NoAccess, roles a pool gives its members) and tokens, read from git."""
    cases = _cases("roles", FROM_GIT) + _cases("privs", FROM_GIT)
    assert len(cases) == 59 and {c["file"].split(":")[0] for c in cases} == {"src/test/perm-test6.pl", "src/test/perm-test8.pl"}
    assert await _failures(tmp_path, cases) == []


async def _failures(tmp_path: Path, cases: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """Each case through the ``access.permissions`` tool on its fixture: (id, got, want) where they differ."""
    failures = []
    by_fixture: dict[str, list[dict[str, Any]]] = {}
    for case in cases:
        by_fixture.setdefault(case["fixture"], []).append(case)
    for fixture, fixture_cases in sorted(by_fixture.items()):
        home = tmp_path / fixture.replace("/", "_")
        home.mkdir()
        world = World(home, snapshot_from(_api(fixture)))
        async with world.offline() as host:  # proximo read --snapshot FILE
            for case in fixture_cases:
                answer = (await host.read("access.permissions", {"subject": case["subject"], "path": case["path"]}, world.actor)).data
                got = answer["roles"] if case["kind"] == "roles" else answer["privileges"]
                want = case["expect"]["roles" if case["kind"] == "roles" else "privs"]
                if got != want:
                    failures.append((case["id"], got, want))
    assert sum(len(c) for c in by_fixture.values()) == len(cases)
    return failures


@pytest.mark.parametrize("case", _cases("check"), ids=lambda c: c["id"])
def test_get_access_permissions_check_cases(case: dict[str, Any]) -> None:
    """Who may read whose permissions, and the whole answer (api-get-permissions-test.pl)."""
    model = from_api(_api(case["fixture"]))
    params = case["request"]["params"]
    try:
        result = {"allowed": True, "result": permissions_answer(model, case["subject"], params.get("userid"), params.get("path"))}
    except PveApiError as exc:
        assert exc.status == 403 and exc.message == case.get("observed_error_message", exc.message).removeprefix("403 ").strip()
        result = {"allowed": False}
    assert result == case["expect"]


def test_every_computed_permissions_answer_matches() -> None:
    """Each fixture's ``GET /access/permissions?userid=X`` (computed by Proxmox's code) for every user and token."""
    compared = 0
    for fixture, answers in FIXTURES.items():
        model = from_api(_api(fixture))
        for key, expected in answers.items():
            if key.startswith("GET /access/permissions?userid="):
                assert permissions_answer(model, "root@pam", key.split("=", 1)[1]) == expected, (fixture, key)
                compared += 1
    assert compared >= 30


@pytest.mark.anyio
async def test_simulator_serves_permissions_to_the_asking_token(tmp_path: Path) -> None:
    """GET /access/permissions over HTTP: a privsep token reads its own; its owner's needs Sys.Audit on /access."""
    world = World(tmp_path, snapshot_from(_api("api-get-permissions-test.cfg")))
    world.sim.tokens = {"stranger@pve!privsep": "s3cret-for-test"}
    import httpx

    async with httpx.AsyncClient(transport=world.transport(), base_url="http://pve.sim:8006/api2/json",
                                 headers={"Authorization": "PVEAPIToken=stranger@pve!privsep=s3cret-for-test"}) as client:
        own = await client.get("/access/permissions")
        assert own.status_code == 200 and own.json()["data"] == {"/vms": {"VM.Audit": 1, "VM.Console": 1}}
        owner = await client.get("/access/permissions", params={"userid": "stranger@pve"})
        assert owner.status_code == 403 and owner.json()["message"] == "Permission check failed (/access, Sys.Audit)\n"
        one_path = await client.get("/access/permissions", params={"path": "/vms/100"})
        assert one_path.json()["data"] == {"/vms/100": {"VM.Audit": 1, "VM.Console": 1}}


def test_builtin_roles_are_create_roles_of_9_1() -> None:
    facts = ACCESS["builtin_roles"]
    assert {r: sorted(p) for r, p in BUILTIN_ROLES.items()} == {r: sorted(p) for r, p in facts["roles"].items()}
    assert sorted(BUILTIN_ROLES["Administrator"]) == facts["privileges"]


def test_root_has_every_privilege_and_an_unknown_token_none() -> None:
    access = Access(from_api({}))
    assert len(access.privileges_of("root@pam", "/vms/100")) == 47  # RPCEnvironment permissions(): all of 9.1's
    assert access.privileges_of("nobody@pve!ghost", "/") == {}


@pytest.mark.anyio
async def test_access_permissions_refuses_an_unknown_subject(tmp_path: Path) -> None:
    world = World(tmp_path, snapshot_from(_api("test1.cfg")))
    async with world.offline() as host:
        with pytest.raises(BadInput, match="does not exist"):
            await host.read("access.permissions", {"subject": "ghost@pve", "path": "/"}, world.actor)
