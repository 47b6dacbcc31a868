"""Semantics of the pool-membership write that storage undo needs (PVE::API2::Pool ``PUT /pools``).

Pools group guests and storages; storage.delete's undo puts a storage back into its pools, and backup jobs
select guests by pool, so the core pack keeps ``PUT /pools``. What pool membership means for permissions (pool roles on member guests and storages) is the ACL
pack's evaluator, which sees any pool change through its before/after diff. ``PUT /access/acl`` and the rest
of /access are the ACL pack's (plugins/acl).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proximo import ApiCall, Irreversible, PveApiError, Step
from proximo.model import Call, ClusterModel, split_list
from proximo.model._permissions import Caller, under_user_config_lock


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


def check_pool_update(model: ClusterModel, call: Call, caller: Caller) -> None:
    """pve-manager API2/Pool.pm update_pool: the right to modify permissions on every guest and storage added
    or removed (check_perm_modify), checked inside the user.cfg lock (``update pools failed: ...``)."""
    p = call.params
    if str(p["poolid"]) not in model.pools:
        return  # "pool does not exist" comes first (the semantics raise it)
    try:
        for vmid in split_list(p.get("vms")):
            caller.check_perm_modify(f"/vms/{vmid}")
        for sid in split_list(p.get("storage")):
            caller.check_perm_modify(f"/storage/{sid}")
    except PveApiError as exc:
        raise under_user_config_lock("update pools failed", exc) from None


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
    register("PUT", "/pools", update_pool, inverse=_pool_inverse, check=check_pool_update)
