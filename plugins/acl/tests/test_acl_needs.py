"""The privileges each tool needs come from the 9.1 schema's ``permissions`` of the routes it uses.

``ROUTE_NEEDS`` is compared with the 9.1 schema's ``permissions`` (``check`` and ``user`` as the compact schema
keeps them; the descriptions of ``user: all`` listings from tests/data/pve/pve-docs.json): plain ``perm``
checks must match exactly; ``user: all`` listings must say in their description which privilege filters
them; the special checks (``userid-group``, ``userid-param``, ``perm-modify``) must be the ones the table
translates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proximo.pve._apischema import schema
from proximo_acl._needs import ROUTE_NEEDS, TOOL_ROUTES, generic, needed_privileges, smallest_role
from proximo_acl._tools import TOOLS

PVE_DOCS = Path(__file__).resolve().parents[3] / "tests" / "data" / "pve" / "pve-docs.json"


@pytest.fixture(scope="module")
def permissions() -> dict[tuple[str, str], dict[str, Any]]:
    """Each 9.1 method's ``permissions`` as the schema writes them: ``check``, ``user``, ``description``."""
    descriptions = json.loads(PVE_DOCS.read_text())["user_all_permission_descriptions"]
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for endpoint in schema().endpoints:
        spec, route = endpoint.permissions, f"{endpoint.method} {endpoint.path}"
        written = {} if spec is None else {key: value for key, value in (("check", spec.check), ("user", spec.user)) if value is not None}
        if route in descriptions:
            written["description"] = descriptions[route]
        out[(endpoint.method, endpoint.path)] = written
    return out


def _flatten(check: list[Any]) -> list[list[Any]]:
    if check and check[0] in ("and", "or"):
        return [leaf for sub in check[1:] for leaf in _flatten(sub)]
    return [check]


@pytest.mark.parametrize("route", sorted(ROUTE_NEEDS), ids=lambda r: f"{r[0]} {r[1]}")
def test_route_needs_follow_the_schema(permissions: dict[tuple[str, str], dict[str, Any]], route: tuple[str, str]) -> None:
    assert route in permissions, route
    perm = permissions[route]
    needs = ROUTE_NEEDS[route]
    check = perm.get("check")
    if check is None:
        assert perm.get("user") == "all"
        described = perm.get("description", "")
        for need in needs:  # the listing is filtered by exactly these privileges, on this kind of path
            assert all(p in described for p in need.privileges) or route == ("GET", "/access/acl"), (route, described)
        return
    leaves = _flatten(check)
    if leaves[0][0] == "perm":
        assert len(needs) == 1
        _, path, privs, *options = leaves[0]
        assert (needs[0].path, list(needs[0].privileges), needs[0].any) == (path, privs, bool(options and options[0] == "any"))
    else:
        kinds = {leaf[0] for leaf in leaves}
        paths = {n.path for n in needs}
        if "userid-group" in kinds:
            assert "/access/groups" in paths and any("User.Modify" in n.privileges for n in needs)
        if "userid-param" in kinds and any(leaf[1] == "Realm.AllocateUser" for leaf in leaves):
            assert "/access/realm/{realm}" in paths
        if "perm-modify" in kinds:
            assert paths == {"{path}"}


def test_every_route_is_in_the_compact_schema() -> None:
    for method, template in ROUTE_NEEDS:
        assert schema().endpoint(method, template) is not None, (method, template)


def test_every_mutating_acl_tool_declares_its_routes() -> None:
    for tool_id, tool in TOOLS.items():
        if tool.mutating:
            assert TOOL_ROUTES[tool_id], tool_id
            assert all(route in ROUTE_NEEDS for route in TOOL_ROUTES[tool_id])


def test_needs_are_asked_of_the_parent_path() -> None:
    assert generic("/vms/{vmid}") == "/vms" and generic("{path}") == "/" and generic("/access/realm/{realm}") == "/access/realm"
    base = needed_privileges(tools=[])
    assert {"Sys.Audit"} <= base["/"] and "VM.Audit" in base["/vms"] and "Datastore.Audit" in base["/storage"]
    assert smallest_role({"Datastore.Allocate"}) == "PVEDatastoreAdmin" and smallest_role({"Sys.Modify"}) == "Administrator"
