"""The rules of pve-access-control's ``roles()`` (src/PVE/AccessControl.pm) and ``permissions()``
(src/PVE/RPCEnvironment.pm) at 5ccd07d9 that Proxmox's own tests do not cover, each set up in API shapes.

Each expected answer was found by running that code on the same configuration; a test's number (1a, 3b, ...)
is the case's number in that run."""

from __future__ import annotations

from typing import Any

import pytest

from proximo.model import from_api
from proximo.model._access import BUILTIN_ROLES, Access

VM_USER = sorted(BUILTIN_ROLES["PVEVMUser"])
VM_ADMIN = sorted(BUILTIN_ROLES["PVEVMAdmin"])
AUDITOR = sorted(BUILTIN_ROLES["PVEAuditor"])


def _access(acl: list[tuple[str, str, str, str, int]], *, pools: dict[str, list[int]] | None = None,
            tokens: list[dict[str, Any]] | None = None, groups: dict[str, str] | None = None) -> Access:
    api: dict[str, Any] = {
        "/access/users?full=1": [{"userid": "u@pve", "enable": 1, "groups": "", "tokens": tokens}],
        "/access/groups": [{"groupid": g, "users": members} for g, members in (groups or {}).items()],
        "/access/acl": [{"path": p, "type": t, "ugid": who, "roleid": role, "propagate": prop} for p, t, who, role, prop in acl],
        "/pools": [{"poolid": p} for p in pools or {}],
    }
    for pool, vmids in (pools or {}).items():
        api[f"/pools?poolid={pool.replace('/', '%2F')}"] = [{"poolid": pool, "members": [
            {"id": f"qemu/{v}", "type": "qemu", "vmid": v, "node": "pve"} for v in vmids]}]
    return Access(from_api(api))


def privs(access: Access, subject: str, path: str) -> list[str]:
    return sorted(access.privileges_of(subject, path))


def test_1a_deepest_level_wins_not_a_union() -> None:
    a = _access([("/", "user", "u@pve", "PVEAuditor", 1), ("/vms", "user", "u@pve", "PVEVMUser", 1)])
    assert sorted(a.roles_of("u@pve", "/vms/100")) == ["PVEVMUser"] and privs(a, "u@pve", "/storage/local") == AUDITOR


@pytest.mark.parametrize("path,roles", [("/vms", ["PVEAuditor"]), ("/vms/100", ["Administrator"])])
def test_2c_2d_non_propagating_entry_counts_only_on_its_own_path(path: str, roles: list[str]) -> None:
    a = _access([("/", "user", "u@pve", "Administrator", 1), ("/vms", "user", "u@pve", "PVEAuditor", 0)])
    assert sorted(a.roles_of("u@pve", path)) == roles


def test_3b_a_deeper_group_entry_beats_a_user_entry_above() -> None:
    a = _access([("/", "user", "u@pve", "Administrator", 1), ("/vms", "group", "g", "PVEAuditor", 1)], groups={"g": "u@pve"})
    assert sorted(a.roles_of("u@pve", "/vms/100")) == ["PVEAuditor"]


@pytest.mark.parametrize("path,want", [("/vms/100", VM_USER), ("/vms/101", [])])
def test_4c_4d_a_deeper_grant_beats_noaccess_above(path: str, want: list[str]) -> None:
    a = _access([("/vms", "user", "u@pve", "NoAccess", 1), ("/vms/100", "user", "u@pve", "PVEVMUser", 1)])
    assert privs(a, "u@pve", path) == want


def test_6a_privsep_token_is_capped_by_its_owner() -> None:
    a = _access([("/vms", "user", "u@pve", "PVEVMUser", 1), ("/vms", "token", "u@pve!tk", "PVEVMAdmin", 1)],
                tokens=[{"tokenid": "tk", "privsep": 1}])
    assert privs(a, "u@pve!tk", "/vms/100") == VM_USER


def test_6b_6d_non_privsep_token_is_its_owner_and_privsep_without_acl_is_nothing() -> None:
    a = _access([("/vms", "user", "u@pve", "PVEVMUser", 1)], tokens=[{"tokenid": "tk2", "privsep": 0}, {"tokenid": "tk", "privsep": 1}])
    assert privs(a, "u@pve!tk2", "/vms/100") == VM_USER and privs(a, "u@pve!tk", "/vms/100") == []


@pytest.mark.parametrize("prop", [1, 0])
def test_7a_7d_pool_roles_reach_members_even_without_propagation(prop: int) -> None:
    a = _access([("/pool/p1", "user", "u@pve", "PVEVMAdmin", prop)], pools={"p1": [100]})
    assert privs(a, "u@pve", "/vms/100") == VM_ADMIN and privs(a, "u@pve", "/vms/101") == []


def test_7e_7f_noaccess_between_pool_and_guest() -> None:
    vm_noaccess = _access([("/pool/p1", "user", "u@pve", "Administrator", 1), ("/vms/100", "user", "u@pve", "NoAccess", 1)], pools={"p1": [100]})
    pool_noaccess = _access([("/pool/p1", "user", "u@pve", "NoAccess", 1), ("/vms/100", "user", "u@pve", "PVEVMAdmin", 1)], pools={"p1": [100]})
    assert privs(vm_noaccess, "u@pve", "/vms/100") == [] and privs(pool_noaccess, "u@pve", "/vms/100") == []


def test_7h_7i_a_pool_member_gets_roots_roles_back_through_its_pool() -> None:
    a = _access([("/", "user", "u@pve", "PVEVMAdmin", 1), ("/vms", "user", "u@pve", "PVEAuditor", 1)], pools={"p1": [100]})
    assert privs(a, "u@pve", "/vms/100") == sorted(set(VM_ADMIN) | set(AUDITOR))
    assert privs(a, "u@pve", "/vms/101") == AUDITOR


def test_7j_nested_pools_inherit_through_propagation() -> None:
    a = _access([("/pool/p1", "user", "u@pve", "PVEVMUser", 1)], pools={"p1": [], "p1/sub": [100]})
    assert privs(a, "u@pve", "/vms/100") == VM_USER


def test_8_privsep_token_through_pool_acls() -> None:
    a = _access([("/pool/p1", "user", "u@pve", "PVEVMAdmin", 1), ("/pool/p1", "token", "u@pve!tk", "PVEVMUser", 1)],
                pools={"p1": [100]}, tokens=[{"tokenid": "tk", "privsep": 1}])
    assert privs(a, "u@pve!tk", "/vms/100") == VM_USER


def test_effective_roles_show_what_a_pool_adds() -> None:
    a = _access([("/pool/p1", "user", "u@pve", "PVEVMUser", 1), ("/vms/100", "user", "u@pve", "PVEAuditor", 1)], pools={"p1": [100]})
    assert a.roles_of("u@pve", "/vms/100") == {"PVEAuditor": 1}
    assert a.effective_roles("u@pve", "/vms/100") == {"PVEAuditor": 1, "PVEVMUser": 0}  # 7g: the union, never propagated


def test_a_one_letter_token_name_is_no_token_id() -> None:
    """pve-tokenid's name part is [A-Za-z][A-Za-z0-9.-_]+ (two characters at least): 'u@pve!t' is neither a
    token nor a user, and has no privileges, as RPCEnvironment::permissions answers."""
    a = _access([("/vms", "token", "u@pve!t", "PVEVMAdmin", 1)], tokens=[{"tokenid": "t", "privsep": 1}])
    assert privs(a, "u@pve!t", "/vms/100") == []
