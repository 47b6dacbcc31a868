"""A small inline pack for the MCP tests: a tool whose step runs as a Proxmox task (a UPID the host waits on).

``POST /nodes/{node}/aplinfo`` (download an appliance template) is a real PVE 9.1 endpoint that answers with a
UPID; no built-in pack models it, so the tests can give it semantics without colliding with one. Template
names steer the test: ``broken-*`` makes the task fail (with a log, as ``wget`` failing would), and
``wipe-*`` makes the plan CRITICAL (a ``data-loss`` impact), so approving it needs the target typed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

import proximo
from proximo import ApiCall, Change, Draft, Impact, ToolSpec
from proximo.model import ClusterModel
from proximo.model._semantics import Call
from proximo.params import NodeName, StorageId
from proximo._world import World

FETCH_TOOL = "mcptest.fetch"


class FetchParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    node: NodeName
    storage: StorageId
    template: str


def _download(model: ClusterModel, call: Call) -> str:
    node, template = call.path_params["node"], str(call.params["template"])
    storage = str(call.params["storage"])
    model.storage(storage)  # PVE refuses an unknown storage
    if template.startswith("broken"):
        log = [f"downloading {template} to {storage}", "wget: server returned error: HTTP/1.1 404 Not Found",
               "TASK ERROR: command 'wget' failed: exit code 8"]
        return model.start_task(node, "download", template, call.user, log=log[:-1], exitstatus="command 'wget' failed: exit code 8")
    return model.start_task(node, "download", template, call.user, log=[f"downloading {template} to {storage}", "download finished"])


class McpTestPack:
    @proximo.hookimpl
    def proximo_register_tools(self, register: Any) -> None:
        register(ToolSpec(id=FETCH_TOOL, title="download an appliance template", params=FetchParams, mutating=True,
                          description="Download an appliance template to a storage (a Proxmox task)."))

    @proximo.hookimpl
    def proximo_register_semantics(self, register: Any) -> None:
        register("POST", "/nodes/{node}/aplinfo", _download)

    @proximo.hookimpl
    def proximo_plan(self, tool: ToolSpec, params: Any, view: ClusterModel) -> Draft | None:
        if tool.id != FETCH_TOOL:
            return None
        step = ApiCall("POST", f"/nodes/{params.node}/aplinfo", {"storage": params.storage, "template": params.template})
        return Draft(steps=[step], target=params.template)

    @proximo.hookimpl
    def proximo_impact(self, change: Change, before: ClusterModel, after: ClusterModel) -> list[Impact] | None:
        if change.tool == FETCH_TOOL and str(change.params.get("template", "")).startswith("wipe"):
            return [Impact(f"storage/{change.params['storage']}", "data-loss", "the test template overwrites what is there")]
        return None


def make_world(home: Path, *, task_polls: int = 2) -> World:
    """The demo cluster with this pack, in ``home``: what every MCP test serves."""
    world = World(home, extra_packs=[("mcp-test", McpTestPack())])
    world.sim.task_polls = task_polls  # the first status read says "running" (the read itself counts one down)
    return world
