"""The storage tools: their parameters mirror PVE's, and the mutating ones only describe API calls."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from proximo import ApiCall, BadInput, Draft, plan_tool, read_tool, tool_table
from proximo.model import ClusterModel, render
from ._semantics import missing_required
from proximo.params import NodeName, StorageId, VmId, api_params, described, struct_from_schema

StorageCreateParams = struct_from_schema("StorageCreateParams", "POST", "/storage")
StorageUpdateParams = struct_from_schema("StorageUpdateParams", "PUT", "/storage/{storage}")

_TYPES = Literal["btrfs", "cephfs", "cifs", "dir", "esxi", "iscsi", "iscsidirect", "lvm", "lvmthin", "nfs", "pbs", "rbd", "zfs", "zfspool"]
_CONTENT = Literal["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"]


class StorageListParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    type: _TYPES | None = None


class StorageRef(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    storage: StorageId


class StorageStatusParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    storage: StorageId
    node: NodeName | None = None


class StorageContentParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    storage: StorageId
    node: NodeName | None = None
    content: _CONTENT | None = None
    vmid: VmId | None = None


# the fields' descriptions in the tools' JSON schemas: PVE's own, from the endpoints these reads mirror
described(StorageListParams, pve=(("GET", "/storage"),))
described(StorageContentParams, pve=(("GET", "/nodes/{node}/storage/{storage}/content"),))


def _existing(view: ClusterModel, sid: str) -> dict[str, Any]:
    if sid not in view.storages:
        raise BadInput(f"storage '{sid}' does not exist (see `proximo read storage.list`)")
    return view.storages[sid]


def _node(view: ClusterModel, node: str | None) -> str | None:
    if node is not None and node not in view.nodes:
        raise BadInput(f"node '{node}' does not exist (see `proximo read node.list`)")
    return node


# --- reads ----------------------------------------------------------------------------------------------


def read_list(p: StorageListParams, view: ClusterModel) -> list[dict[str, Any]]:
    rows = render(view, "/storage" + (f"?type={p.type}" if p.type else ""))
    return [{**row, "available_on": sorted(n for n in view.storage_nodes(row["storage"])
                                           if view.storage_problem(row["storage"], n) is None)} for row in rows]


def read_status(p: StorageStatusParams, view: ClusterModel) -> list[dict[str, Any]]:
    _existing(view, p.storage)
    nodes = [n] if (n := _node(view, p.node)) else sorted(view.storage_nodes(p.storage))
    rows = []
    for node in nodes:
        problem = view.storage_problem(p.storage, node)
        if problem:
            rows.append({"node": node, "storage": p.storage, "active": 0, "enabled": 0, "problem": problem})
        else:
            rows.append({"node": node, **render(view, f"/nodes/{node}/storage/{p.storage}/status")})
    return rows


def read_content(p: StorageContentParams, view: ClusterModel) -> list[dict[str, Any]]:
    _existing(view, p.storage)
    node = _node(view, p.node)
    if node is None:
        available = sorted(n for n in view.storage_nodes(p.storage) if view.storage_problem(p.storage, n) is None)
        if not available:
            raise BadInput(f"storage '{p.storage}' is not available on any node")
        if not view.storage_shared(p.storage) and len(available) > 1:
            raise BadInput(f"storage '{p.storage}' is local to each node: name one with node= ({', '.join(available)})")
        node = available[0]
    problem = view.storage_problem(p.storage, node)
    if problem:
        raise BadInput(problem)
    query = "&".join(f"{k}={v}" for k, v in (("content", p.content), ("vmid", p.vmid)) if v is not None)
    return render(view, f"/nodes/{node}/storage/{p.storage}/content" + (f"?{query}" if query else ""))


# --- plans ----------------------------------------------------------------------------------------------


def plan_create(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    if params["storage"] in view.storages:
        raise BadInput(f"storage '{params['storage']}' already exists")
    missing = missing_required(str(params["type"]), params)
    if missing:  # PVE answers this with a 500 after the schema passed; it is the caller's input that is wrong
        raise BadInput(f"storage.create: missing value for required option '{missing}' (storage type {params['type']})")
    if "nodes" in params:
        for node in str(params["nodes"]).split(","):
            _node(view, node.strip() or None)
    return Draft(steps=[ApiCall("POST", "/storage", params)], target=str(params["storage"]))


def plan_update(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    sid = str(params.pop("storage"))
    cfg = _existing(view, sid)
    if not any(k for k in params if k != "digest"):
        raise BadInput("storage.update: nothing to change (give at least one option, or delete=...)")
    params.setdefault("digest", cfg.get("digest"))  # so Proxmox itself refuses a concurrent edit
    if params["digest"] is None:
        params.pop("digest")
    return Draft(steps=[ApiCall("PUT", f"/storage/{sid}", params)], target=sid)


def plan_delete(p: StorageRef, view: ClusterModel) -> Draft:
    _existing(view, p.storage)
    return Draft(steps=[ApiCall("DELETE", f"/storage/{p.storage}")], target=p.storage)




TOOLS = tool_table(
    read_tool("storage.list", "Storages", "Storage definitions (GET /storage) with the nodes each is available on.",
          StorageListParams, read_list, columns=("storage", "type", "content", "shared", "available_on", "path")),
    read_tool("storage.status", "Storage status", "Usage and state of a storage on each node (or one node).",
          StorageStatusParams, read_status),
    read_tool("storage.content", "Storage content", "Volumes on a storage: images, ISOs, templates, backups.",
          StorageContentParams, read_content, columns=("volid", "content", "format", "size", "vmid")),
    plan_tool("storage.create", "Plan: create storage", "Plan a new storage definition (POST /storage); parameters as PVE names them.",
          StorageCreateParams, plan_create),
    plan_tool("storage.update", "Plan: update storage", "Plan a change to a storage definition (PUT /storage/{storage}): "
          "content types, nodes, disable, ... Guests whose volumes stop resolving are reported.",
          StorageUpdateParams, plan_update),
    plan_tool("storage.delete", "Plan: delete storage", "Plan removing a storage definition (DELETE /storage/{storage}). "
          "The data stays; every guest, backup and replication job that needs the storage is reported.",
          StorageRef, plan_delete),
)
