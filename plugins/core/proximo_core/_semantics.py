"""Semantics of the ACL and pool-membership writes that storage undo needs (PVE::API2::ACL, PVE::API2::Pool).

Only what these endpoints do to ACL entries and pool members is modelled; the ACL pack owns the
permission model that reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proximo import ApiCall, Irreversible, PveApiError, Step
from proximo.model import Call, ClusterModel, split_list

_KINDS = (("users", "user"), ("groups", "group"), ("tokens", "token"))


def _known_role(model: ClusterModel, role: str) -> bool:
    return not model.roles or any(r.get("roleid") == role for r in model.roles)


def update_acl(model: ClusterModel, call: Call) -> None:
    """PUT /access/acl: add (or with delete=1 remove) entries for each role x subject."""
    p = call.params
    path = str(p["path"])
    if not path.startswith("/") or "//" in path or "/../" in path + "/":
        raise PveApiError(400, "Parameter verification failed.", {"path": f"invalid ACL path '{path}'"})
    roles = split_list(p.get("roles"))
    propagate = int(p.get("propagate", 1))
    subjects = [(kind, ugid) for key, kind in _KINDS for ugid in split_list(p.get(key))]
    if not subjects:
        raise PveApiError(400, "Parameter verification failed.", {"users": "no users, groups or tokens specified"})
    for role in roles:
        if not _known_role(model, role):
            raise PveApiError(500, f"role '{role}' does not exist")
    for kind, ugid in subjects:
        for role in roles:
            model.acl[:] = [a for a in model.acl if not (a["path"] == path and a["type"] == kind and a["ugid"] == ugid and a["roleid"] == role)]
            if not int(p.get("delete", 0)):
                model.acl.append({"path": path, "type": kind, "ugid": ugid, "roleid": role, "propagate": propagate})


def _acl_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    p = call.params
    path = str(p["path"])
    steps: list[Step] = []
    for key, kind in _KINDS:
        for ugid in split_list(p.get(key)):
            for role in split_list(p.get("roles")):
                old = next((a for a in before.acl if a["path"] == path and a["type"] == kind and a["ugid"] == ugid and a["roleid"] == role), None)
                if old is None:
                    if not int(p.get("delete", 0)):
                        steps.append(ApiCall("PUT", "/access/acl", {"path": path, "roles": role, key: ugid, "delete": 1}))
                else:
                    steps.append(ApiCall("PUT", "/access/acl", {"path": path, "roles": role, key: ugid, "propagate": int(old.get("propagate", 1))}))
    return steps


def _pool(model: ClusterModel, poolid: str) -> dict[str, Any]:
    pool = model.pools.get(poolid)
    if pool is None:
        raise PveApiError(500, f"pool '{poolid}' does not exist")
    return pool


def storage_members(model: ClusterModel, sid: str) -> list[dict[str, Any]]:
    """How PVE lists a pool's storage member: one row per node where the storage is available."""
    cfg = model.storages[sid]
    return [{"id": f"storage/{node}/{sid}", "node": node, "storage": sid, "type": "storage",
             "plugintype": cfg.get("type"), "content": cfg.get("content", ""), "shared": 1 if model.storage_shared(sid) else 0,
             "status": "available"} for node in sorted(model.storage_nodes(sid)) if model.storage_problem(sid, node) is None]


def update_pool(model: ClusterModel, call: Call) -> None:
    """PUT /pools: add (or with delete=1 remove) storages and guests; only storage members are modelled."""
    p = call.params
    pool = _pool(model, str(p["poolid"]))
    if p.get("vms"):
        raise PveApiError(501, "pool guest membership is not modelled yet")
    members = pool.setdefault("members", [])
    for sid in split_list(p.get("storage")):
        members[:] = [m for m in members if not (m.get("type") == "storage" and m.get("storage") == sid)]
        if not int(p.get("delete", 0)):
            if sid not in model.storages:
                raise PveApiError(500, f"storage '{sid}' does not exist")
            members.extend(storage_members(model, sid))
    if "comment" in p:
        pool["comment"] = p["comment"]


def _pool_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    p = call.params
    pool = before.pools.get(str(p["poolid"]), {})
    steps: list[Step] = []
    for sid in split_list(p.get("storage")):
        was_member = any(m.get("type") == "storage" and m.get("storage") == sid for m in pool.get("members", []))
        if was_member and int(p.get("delete", 0)):
            steps.append(ApiCall("PUT", "/pools", {"poolid": p["poolid"], "storage": sid}))
        elif not was_member and not int(p.get("delete", 0)):
            steps.append(ApiCall("PUT", "/pools", {"poolid": p["poolid"], "storage": sid, "delete": 1}))
    return steps


def register_all(register: Callable[..., None]) -> None:
    register("PUT", "/access/acl", update_acl, inverse=_acl_inverse)
    register("PUT", "/pools", update_pool, inverse=_pool_inverse)
