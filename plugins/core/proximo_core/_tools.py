"""The core tools: what every operator asks first, answered from the model (so they work offline too)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from proximo import ApiCall, Draft, plan_tool, read_tool, tool_table
from proximo.model import ClusterModel, render
from proximo.params import ApiPath, GuestKind, NodeName, Upid, described



class NoParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class ResourcesParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    type: Literal["vm", "storage", "node", "sdn", "pool"] | None = None


class GuestListParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    node: NodeName | None = None
    kind: GuestKind | None = None


class TaskParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    node: NodeName
    upid: Upid


class TaskLogParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    node: NodeName
    upid: Upid
    start: int = 0
    limit: int = 50


class ApiCallParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    method: Literal["POST", "PUT", "DELETE"]
    path: ApiPath
    params: dict[str, str | int | float | bool] = {}


described(ResourcesParams, pve=(("GET", "/cluster/resources"),))
described(GuestListParams, fields={"kind": "Only VMs (qemu) or containers (lxc)"})
described(TaskLogParams, pve=(("GET", "/nodes/{node}/tasks/{upid}/log"),))
described(ApiCallParams, fields={"method": "HTTP method of the call", "params": "The call's parameters, as PVE names them"})


def _guest_list(p: GuestListParams, view: ClusterModel) -> list[dict[str, Any]]:
    rows = render(view, "/cluster/resources?type=vm")
    return [r for r in rows if (p.node is None or r["node"] == p.node) and (p.kind is None or r["type"] == p.kind)]


def _node_list(p: NoParams, view: ClusterModel) -> list[dict[str, Any]]:
    return render(view, "/nodes")


def _task_log(p: TaskLogParams, view: ClusterModel) -> list[dict[str, Any]]:
    return render(view, f"/nodes/{p.node}/tasks/{p.upid}/log?start={max(p.start, 0)}&limit={min(max(p.limit, 1), 5000)}")



def _api_call(p: ApiCallParams, view: ClusterModel) -> Draft:
    """Exactly the one call asked for: the host predicts it, and every pack's analysers judge it like any other."""
    return Draft(steps=[ApiCall(method=p.method, path=p.path, params=dict(p.params))])


TOOLS = tool_table(
    read_tool("cluster.status", "Cluster status", "Quorum, nodes and their addresses (GET /cluster/status).",
          NoParams, lambda p, v: render(v, "/cluster/status"), columns=("name", "type", "online", "ip", "quorate", "nodes")),
    read_tool("cluster.resources", "Cluster resources", "Every node, guest and storage with usage (GET /cluster/resources).",
          ResourcesParams, lambda p, v: render(v, "/cluster/resources" + (f"?type={p.type}" if p.type else "")),
          columns=("id", "type", "name", "node", "status")),
    read_tool("node.list", "Nodes", "The cluster's nodes with status and load (GET /nodes).", NoParams, _node_list,
          columns=("node", "status", "cpu", "maxcpu", "mem", "maxmem", "uptime")),
    read_tool("guest.list", "Guests", "VMs and containers, optionally on one node or of one kind.", GuestListParams, _guest_list,
          columns=("vmid", "name", "node", "status", "type", "maxmem", "maxcpu")),
    read_tool("task.status", "Task status", "Status of a Proxmox task by UPID.", TaskParams,
          lambda p, v: render(v, f"/nodes/{p.node}/tasks/{p.upid}/status")),
    read_tool("task.log", "Task log", "Log lines of a Proxmox task by UPID.", TaskLogParams, _task_log),
    plan_tool("api.call", "Plan: any API call",
              "Plan any state-changing PVE API call (POST, PUT or DELETE) that Proximo models. "
              "It gets the same blast radius, risk and undo as the named tools.", ApiCallParams, _api_call),
)
