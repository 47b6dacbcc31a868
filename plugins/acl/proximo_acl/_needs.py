"""What Proximo's token needs, per tool, from the 9.1 schema's ``permissions`` of the routes each tool uses.

``ROUTE_NEEDS`` copies each route's permission check from the PVE 9.1 API schema (pve-docs 9.1.3
api-viewer/apidata.js; ``tests/test_acl_needs.py`` compares it with the schema). Checks on a per-object
path (``/vms/{vmid}``) are asked of the parent (``/vms``): a propagating grant there covers every object,
which is what a tool that works on any guest needs. Special checks are translated as RPCEnvironment does
them: ``userid-group`` is User.Modify on /access/groups, ``userid-param Realm.AllocateUser`` is
Realm.AllocateUser on /access/realm, ``perm-modify`` is Permissions.Modify on the path (VM.Allocate,
Datastore.Allocate, Pool.Allocate also do below /vms, /storage, /pool).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from proximo.model import ClusterModel
from proximo.model._access import BUILTIN_ROLES, Access, split_tokenid


class Need(msgspec.Struct, frozen=True):
    path: str
    privileges: tuple[str, ...]
    any: bool = False  # one of the privileges is enough (the schema's ``any => 1``)


_VM_CONFIG = ("VM.Config.Disk", "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Network",
              "VM.Config.HWType", "VM.Config.Options", "VM.Config.Cloudinit")
_DS_READ = ("Datastore.Audit", "Datastore.AllocateSpace")

# (method, template) -> the checks PVE runs, with the per-object path templates of the schema.
ROUTE_NEEDS: dict[tuple[str, str], tuple[Need, ...]] = {
    # reading the state (proximo.model.collect): every tool reads it before it answers or plans
    ("GET", "/cluster/status"): (Need("/", ("Sys.Audit",)),),
    ("GET", "/cluster/config/nodes"): (Need("/", ("Sys.Audit",)),),
    ("GET", "/cluster/backup"): (Need("/", ("Sys.Audit",)),),
    ("GET", "/cluster/ha/resources"): (Need("/", ("Sys.Audit",)),),
    ("GET", "/cluster/ha/rules"): (Need("/", ("Sys.Audit",)),),
    ("GET", "/cluster/firewall/options"): (Need("/", ("Sys.Audit",)),),
    ("GET", "/nodes/{node}/firewall/rules"): (Need("/nodes/{node}", ("Sys.Audit",)),),
    ("GET", "/nodes/{node}/qemu/{vmid}/config"): (Need("/vms/{vmid}", ("VM.Audit",)),),
    ("GET", "/nodes/{node}/lxc/{vmid}/config"): (Need("/vms/{vmid}", ("VM.Audit",)),),
    ("GET", "/nodes/{node}/storage/{storage}/content"): (Need("/storage/{storage}", _DS_READ, any=True),),
    ("GET", "/nodes/{node}/storage/{storage}/status"): (Need("/storage/{storage}", _DS_READ, any=True),),
    # "user: all" listings that PVE filters by privilege (their descriptions say by which)
    ("GET", "/storage"): (Need("/storage/{storage}", _DS_READ, any=True),),
    ("GET", "/nodes/{node}/qemu"): (Need("/vms/{vmid}", ("VM.Audit",)),),
    ("GET", "/access/users"): (Need("/access/groups", ("User.Modify", "Sys.Audit"), any=True),),
    ("GET", "/access/groups"): (Need("/access/groups/{groupid}", ("User.Modify", "Sys.Audit", "Group.Allocate"), any=True),),
    # ACL.pm read_acl: every entry with Sys.Audit on /access; otherwise only those on paths the caller may modify
    ("GET", "/access/acl"): (Need("/access", ("Sys.Audit",)),),
    ("GET", "/pools"): (Need("/pool/{poolid}", ("Pool.Audit",)),),
    # writes
    ("POST", "/storage"): (Need("/storage", ("Datastore.Allocate",)),),
    ("PUT", "/storage/{storage}"): (Need("/storage", ("Datastore.Allocate",)),),
    ("DELETE", "/storage/{storage}"): (Need("/storage", ("Datastore.Allocate",)),),
    ("PUT", "/pools"): (Need("/pool/{poolid}", ("Pool.Allocate",)),),
    ("PUT", "/access/acl"): (Need("{path}", ("Permissions.Modify",)),),
    ("POST", "/access/users"): (Need("/access/realm/{realm}", ("Realm.AllocateUser",)), Need("/access/groups", ("User.Modify",))),
    ("PUT", "/access/users/{userid}"): (Need("/access/groups", ("User.Modify",)),),
    ("DELETE", "/access/users/{userid}"): (Need("/access/realm/{realm}", ("Realm.AllocateUser",)), Need("/access/groups", ("User.Modify",))),
    ("POST", "/access/users/{userid}/token/{tokenid}"): (Need("/access/groups", ("User.Modify",)),),
    ("PUT", "/access/users/{userid}/token/{tokenid}"): (Need("/access/groups", ("User.Modify",)),),
    ("DELETE", "/access/users/{userid}/token/{tokenid}"): (Need("/access/groups", ("User.Modify",)),),
    ("POST", "/access/groups"): (Need("/access/groups", ("Group.Allocate",)),),
    ("PUT", "/access/groups/{groupid}"): (Need("/access/groups", ("Group.Allocate",)),),
    ("DELETE", "/access/groups/{groupid}"): (Need("/access/groups", ("Group.Allocate",)),),
    ("POST", "/access/roles"): (Need("/access", ("Sys.Modify",)),),
    ("PUT", "/access/roles/{roleid}"): (Need("/access", ("Sys.Modify",)),),
    ("DELETE", "/access/roles/{roleid}"): (Need("/access", ("Sys.Modify",)),),
    ("PUT", "/nodes/{node}/qemu/{vmid}/config"): (Need("/vms/{vmid}", _VM_CONFIG, any=True),),
}

ACL_LISTING = ("GET", "/access/acl")
# What Proximo's token must keep on / whatever its tools (the floor): reading guests, storages, nodes.
BASE_NEEDS = {"/": ("Sys.Audit", "VM.Audit", "Datastore.Audit")}
STATE_ROUTES = [r for r in ROUTE_NEEDS if r[0] == "GET" and r != ACL_LISTING]
STATE_CHECK = "(reading the cluster state)"
ACL_CHECK = "(listing every ACL entry: without Sys.Audit on /access, GET /access/acl shows only entries the token may modify)"

# The routes each known tool sends (mutating) beyond reading the state. Tools not listed only read.
TOOL_ROUTES: dict[str, list[tuple[str, str]]] = {
    "storage.create": [("POST", "/storage")],
    "storage.update": [("PUT", "/storage/{storage}")],
    "storage.delete": [("DELETE", "/storage/{storage}"), ("PUT", "/access/acl"), ("PUT", "/pools")],  # its undo restores ACLs and pools
    "access.acl.grant": [("PUT", "/access/acl")],
    "access.acl.revoke": [("PUT", "/access/acl")],
    "access.user.create": [("POST", "/access/users")],
    "access.user.update": [("PUT", "/access/users/{userid}")],
    "access.user.delete": [("DELETE", "/access/users/{userid}")],
    "access.group.create": [("POST", "/access/groups")],
    "access.group.update": [("PUT", "/access/groups/{groupid}")],
    "access.group.delete": [("DELETE", "/access/groups/{groupid}")],
    "access.role.create": [("POST", "/access/roles")],
    "access.role.update": [("PUT", "/access/roles/{roleid}")],
    "access.role.delete": [("DELETE", "/access/roles/{roleid}")],
    "access.token.create": [("POST", "/access/users/{userid}/token/{tokenid}")],
    "access.token.update": [("PUT", "/access/users/{userid}/token/{tokenid}")],
    "access.token.delete": [("DELETE", "/access/users/{userid}/token/{tokenid}")],
}


def generic(path: str) -> str:
    """A per-object check asked of its parent: ``/vms/{vmid}`` -> ``/vms``; ``{path}`` (an ACL path) -> ``/``."""
    if path == "{path}":
        return "/"
    return re.sub(r"(/\{[^}]+\})+$", "", path) or "/"


def needs_of(routes: list[tuple[str, str]]) -> dict[str, dict[str, bool]]:
    """path -> privilege -> any (True when any one of that check's privileges is enough)."""
    out: dict[str, dict[str, bool]] = {}
    for route in routes:
        for need in ROUTE_NEEDS.get(route, ()):
            for priv in need.privileges:
                out.setdefault(generic(need.path), {})[priv] = need.any
    return out


def needed_privileges(model: ClusterModel | None = None, tools: list[str] | None = None) -> dict[str, set[str]]:
    """What Proximo's token must keep: the state reads' needs, and those of every tool it knows (or ``tools``)."""
    wanted = TOOL_ROUTES if tools is None else {t: TOOL_ROUTES.get(t, []) for t in tools}
    routes = list(STATE_ROUTES) + [r for rs in wanted.values() for r in rs]
    out: dict[str, set[str]] = {path: set(privs) for path, privs in BASE_NEEDS.items()}
    for path, privs in needs_of(routes).items():
        exclusive = [p for p, any_ in privs.items() if not any_]
        choices = [p for p, any_ in privs.items() if any_]
        out.setdefault(path, set()).update(exclusive + choices[:1])
    return out


def _lacking(have: set[str] | dict[str, int], privs: dict[str, bool]) -> list[str]:
    """The needed privileges not in ``have``; a check that any one of several satisfies is named as 'A or B'."""
    required = [p for p, any_ in privs.items() if not any_ and p not in have]
    choices = [p for p, any_ in privs.items() if any_]
    if choices and not any(p in have for p in choices):
        required.append(" or ".join(choices))
    return required


def _missing(access: Access, subject: str, path: str, privs: dict[str, bool]) -> list[str]:
    return _lacking(access.privileges_of(subject, path), privs)


def _missing_from_own_acl(access: Access, subject: str, path: str, privs: dict[str, bool]) -> list[str]:
    """What a privilege-separated token's own ACL entries lack, before the intersection with its owner."""
    return _lacking({p for role in access.effective_roles(subject, path) for p in access.roles.get(role, ())}, privs)


def smallest_role(privs: set[str]) -> str | None:
    """The built-in role with the fewest privileges that has all of ``privs`` (Administrator last)."""
    fits = [(len(p), r) for r, p in BUILTIN_ROLES.items() if privs <= p and r != "NoAccess"]
    return min(fits)[1] if fits else None


def fix_commands(subject: str, path: str, privs: list[str], owner_lacks: bool, token_has: bool = False) -> list[str]:
    """The pveum commands that grant ``privs`` on ``path``: to the token (unless its own ACL already has them)
    and, for the privilege-separation trap, to its owner."""
    wanted = {p.split(" or ")[0] for p in privs}
    role = smallest_role(wanted) or "ProximoNeeds"
    lines = [] if role != "ProximoNeeds" else [f"pveum role add ProximoNeeds --privs {','.join(sorted(wanted))}"]
    token = split_tokenid(subject)
    if token is not None:
        if not token_has:
            lines.append(f"pveum acl modify {path} --tokens {subject} --roles {role}")
        if owner_lacks:
            lines.append(f"pveum acl modify {path} --users {token[0]} --roles {role}")
    else:
        lines.append(f"pveum acl modify {path} --users {subject} --roles {role}")
    return lines


def doctor(model: ClusterModel, subject: str, tools: list[str]) -> dict[str, Any]:
    """For each tool: what the subject lacks, where, and the pveum command that fixes it."""
    access = Access(model)
    token = split_tokenid(subject)
    info = access.tokens.get(subject) if token else None
    privsep = bool(info and int(info.get("privsep", 1) or 0))
    checks: list[dict[str, Any]] = []
    for tool in [STATE_CHECK, ACL_CHECK, *tools]:
        routes = {STATE_CHECK: STATE_ROUTES, ACL_CHECK: [ACL_LISTING]}.get(tool) or TOOL_ROUTES.get(tool)
        if routes is None:
            checks.append({"tool": tool, "ok": None, "missing": [], "note": "its routes are not declared to the ACL pack: not checked"})
            continue
        missing = []
        for path, privs in sorted(needs_of(list(routes)).items()):
            lacking = _missing(access, subject, path, privs)
            if not lacking:
                continue
            owner_lacks = bool(token and privsep and _missing(access, token[0], path, privs))
            token_has = owner_lacks and not _missing_from_own_acl(access, subject, path, privs)
            if not owner_lacks:
                why = "not granted"
            elif token_has:
                why = f"privilege separation: the token's own ACL has it, but it gets only what its owner {token[0]} has too"
            else:
                why = f"privilege separation: the token gets only what both it and its owner {token[0]} have; neither has it"
            missing.append({"path": path, "privileges": lacking, "why": why,
                            "fix": fix_commands(subject, path, lacking, owner_lacks, token_has)})
        checks.append({"tool": tool, "ok": not missing, "missing": missing})
    problems_found = [c for c in checks if c["ok"] is False]
    return {"subject": subject, "known": subject in access.tokens or subject in access.users, "privsep": privsep,
            "ok": not problems_found, "checks": checks}
