"""A small cluster written in the shapes the real API answers, for the ACL pack's tests.

``/access/users?full=1`` rows carry ``groups`` as a comma string and ``tokens`` as a list (or null),
``/access/groups`` rows ``users`` as a comma string, ``/access/roles`` rows ``privs`` as a comma string with
``special``, ``/access/acl`` rows ``path, type, ugid, roleid, propagate``, pools ``/pools?poolid=ID`` with
member rows (shapes as the GET handlers answer: pve-access-control src/PVE/API2/{User,Group,Role,ACL}.pm,
pve-manager PVE/API2/Pool.pm).
"""

from __future__ import annotations

import copy
from typing import Any

from proximo.model._access import BUILTIN_ROLES
from proximo.testing import TOKEN_ID, snapshot_from

OPERATOR = TOKEN_ID  # proximo@pve!agent

ROLES = [{"roleid": r, "privs": ",".join(sorted(p)), "special": 1} for r, p in sorted(BUILTIN_ROLES.items())] + [
    {"roleid": "VMOperator", "privs": "VM.Audit,VM.Console,VM.PowerMgmt", "special": 0},
]


def user(userid: str, *, groups: str = "", tokens: list[dict[str, Any]] | None = None, enable: int = 1, expire: int = 0) -> dict[str, Any]:
    realm = userid.rpartition("@")[2]
    return {"userid": userid, "enable": enable, "expire": expire, "groups": groups, "realm-type": realm,
            "tokens": tokens}


def token(name: str, *, privsep: int = 1, expire: int = 0, comment: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"tokenid": name, "privsep": privsep, "expire": expire}
    if comment:
        row["comment"] = comment
    return row


def acl(path: str, kind: str, ugid: str, role: str, propagate: int = 1) -> dict[str, Any]:
    return {"path": path, "propagate": propagate, "roleid": role, "type": kind, "ugid": ugid}


USERS = [
    user("alice@pve", groups="admins"),
    user("bob@pve", groups="operators", tokens=[token("ci", privsep=1, comment="CI pipeline")]),
    user("carol@pve"),
    user("proximo@pve", tokens=[token("agent", privsep=1, comment="Proximo")]),
    {"userid": "root@pam", "enable": 1, "groups": "", "realm-type": "pam", "tokens": None},
]
GROUPS = [
    {"groupid": "admins", "users": "alice@pve", "comment": "Cluster administrators"},
    {"groupid": "operators", "users": "bob@pve"},
]
def operator_acl(role: str) -> list[dict[str, Any]]:
    """Proximo's user and its privilege-separated token, both with ``role`` on /."""
    return [acl("/", "user", "proximo@pve", role), acl("/", "token", OPERATOR, role)]


# The operator manages access, so it holds Permissions.Modify (only Administrator has it); PVEAdmin is the
# doctor's story (cluster(operator_role="PVEAdmin")): everything but Sys.Modify and Permissions.Modify.
ACL = [
    acl("/", "group", "admins", "Administrator"),
    *operator_acl("Administrator"),
    acl("/pool/prod", "group", "operators", "VMOperator"),
    acl("/vms/101", "token", "bob@pve!ci", "PVEVMUser"),
    acl("/storage/local", "user", "carol@pve", "PVEDatastoreUser"),
]


def cluster(*, users: list[dict[str, Any]] | None = None, groups: list[dict[str, Any]] | None = None,
            acl_rows: list[dict[str, Any]] | None = None, operator_role: str = "Administrator") -> dict[str, Any]:
    """A two-node cluster with guests 100-102 (100 and 101 in pool prod), two storages, and the access config above
    (the operator's rows with ``operator_role`` instead of Administrator, unless ``acl_rows`` is given)."""
    if acl_rows is None:
        acl_rows = [a for a in ACL if a not in operator_acl("Administrator")] + operator_acl(operator_role)
    nodes = ("pve1", "pve2")
    guests = [(100, "pve1", "web"), (101, "pve1", "db"), (102, "pve2", "build")]
    api: dict[str, Any] = {
        "/version": {"version": "9.1.1", "release": "9.1", "repoid": "0e2f2a1b"},
        "/cluster/status": [{"type": "cluster", "name": "lab", "nodes": 2, "quorate": 1, "version": 4}]
        + [{"type": "node", "name": n, "nodeid": i + 1, "online": 1, "local": int(i == 0), "ip": f"10.0.0.{i + 11}"} for i, n in enumerate(nodes)],
        "/cluster/resources": [{"id": f"node/{n}", "type": "node", "node": n, "status": "online"} for n in nodes]
        + [{"id": f"qemu/{v}", "type": "qemu", "vmid": v, "node": n, "name": name, "status": "stopped"} for v, n, name in guests],
        "/storage": [{"storage": "local", "type": "dir", "path": "/var/lib/vz", "content": "iso,backup", "digest": "d1"},
                     {"storage": "tank", "type": "zfspool", "pool": "tank", "content": "images", "digest": "d1"}],
        "/access/users?full=1": copy.deepcopy(users if users is not None else USERS),
        "/access/groups": copy.deepcopy(groups if groups is not None else GROUPS),
        "/access/roles": copy.deepcopy(ROLES),
        "/access/acl": copy.deepcopy(acl_rows if acl_rows is not None else ACL),
        "/pools": [{"poolid": "prod", "comment": "Production"}],
        "/pools?poolid=prod": [{"poolid": "prod", "comment": "Production", "members": [
            {"id": "qemu/100", "node": "pve1", "type": "qemu", "vmid": 100, "status": "stopped", "name": "web"},
            {"id": "qemu/101", "node": "pve1", "type": "qemu", "vmid": 101, "status": "stopped", "name": "db"},
        ]}],
    }
    for vmid, node, name in guests:
        api[f"/nodes/{node}/qemu/{vmid}/config"] = {"name": name, "memory": 2048, "digest": f"c{vmid}"}
    return snapshot_from(api)
