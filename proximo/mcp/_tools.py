"""MCP tools generated from the host's tool registry, and the small base the face's own tools share.

Why Tool subclasses, not ``MCPServer.add_tool``: ``add_tool`` derives the input schema and a pydantic
argument model from a Python signature, and validates arguments with it before the handler runs. Proximo's
tools are described by msgspec structs that the *host* must validate (``ToolSpec.parse``: one-line
``BadInput``, and a ``deny`` record in the ledger), and generating one Python signature per tool would be
writing each tool twice. ``Tool`` is the SDK's own registration record (``MCPServer(tools=[...])`` takes a
list of them), so :class:`HostTool` is one: its ``parameters`` are ``ToolSpec.input_schema()`` (fitted to a
per-tool budget, see ``proximo._schema``) and its ``run``
hands the raw arguments to :func:`dispatch`, the one path to the host the compact toolset's read and plan tools
take too. No tool carries an output schema: the plan's, the same on 50 tools, was half of ``tools/list``; it is
the resource ``proximo://schema/plan`` instead.

The face's own tools (``proximo_apply`` and friends) keep ``Tool.from_function``, because ``proximo_apply``
needs the SDK's resolver machinery (elicitation on both protocol versions); :class:`FaceTool` only swaps
in a msgspec schema and checks the arguments against it first, so no argument the schema does not name
(``approved=true``, say) is ever silently dropped or accepted.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import logging
from collections.abc import Callable
from typing import Any

import msgspec
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from ..trust._pipeline import Host
from .._render import plan_document
from .._form import plain_error
from .._schema import input_schema
from .._tools import ToolRegistry, ToolSpec, check_strings
from .._types import Plan
from ..errors import BadInput, PackError, ProximoError
from ._results import actor, face, failure, structured
from ._settings import McpSettings

log = logging.getLogger("proximo.mcp")

# The most bytes one tool may take in tools/list (the goal: none over 8,000); its schema gets what the rest leaves.
TOOL_BUDGET = 7_900
# Said once per plan tool (50 of them): short. The server instructions say the rest (PLAN -> APPROVE -> APPLY).
PLAN_NOTE = " Only plans; proximo_apply runs the plan."


def plan_summary(host: Host, plan: Plan) -> str:
    """The line the model reads before the plan JSON: what it is, and what applying it will take."""
    flags = [f"risk {plan.risk.value}"]
    if not plan.complete:
        flags.append("INCOMPLETE (the token cannot see everything)")
    flags.append("reversible" if plan.reversible else "no undo")
    on = f" on cluster {plan.cluster.name}" if plan.cluster is not None and host.settings.clusters else ""
    head = f"Plan {plan.plan_id}{on}: {plan.tool}, {', '.join(flags)}, {len(plan.impacts)} impacts. Nothing has changed."
    if plan.blocked:
        return f"{head} It is BLOCKED and cannot be applied: {'; '.join(plan.blockers)}"
    auto = host.settings.auto_approve.value
    if host.needs_person(plan):
        how = (f"{plan.risk.value} is above auto-approval ({auto}): proximo_apply will ask a person to approve it"
               + (f" by typing {plan.target!r}" if plan.risk.value == "CRITICAL" else "") + ".")
    else:
        how = f"{plan.risk.value} is within auto-approval ({auto}): proximo_apply(plan_id) runs it."
    return f"{head} {how}"


def plan_result(host: Host, plan: Plan) -> CallToolResult:
    """The plan document (docs/architecture.md), as every face shows it (secret params redacted), after its summary."""
    return structured(host, plan_document(plan), summary=plan_summary(host, plan))


def plan_title(spec: ToolSpec) -> str:
    return spec.title if spec.title.lower().startswith("plan") else f"Plan: {spec.title}"


async def dispatch(context: Context[Any, Any], spec: ToolSpec, arguments: dict[str, Any], name: str) -> CallToolResult:
    """Run one tool through the host: a read's answer or a plan, or a one-line tool error. Every MCP tool that reaches a
    pack's tool comes here (the named ``pve_*`` tools and the compact ``proximo_read`` / ``proximo_plan``), so
    parameters meet the same ``ToolSpec.parse``, release check and ledger whichever toolset is served."""
    host = face(context).host
    try:
        if spec.mutating:
            return plan_result(host, await host.plan(spec.id, arguments, actor(context)))
        return structured(host, await host.read(spec.id, arguments, actor(context)))
    except ProximoError as exc:
        about = getattr(exc, "about", None)  # compact: the parameters are behind proximo_describe; full: in the tool
        see = f" (proximo_describe {about} shows its parameters)" if about and face(context).settings.toolset == "compact" else ""
        return failure(host, str(exc) + see)
    except MCPError:
        raise
    except Exception as exc:  # a crash: its text stays in the server's log, not in the model's context
        raise UnexpectedToolError(f"Error executing tool {name}") from exc


def annotations(*, plans: bool) -> ToolAnnotations:
    """What a read tool or a plan tool declares. Planning changes nothing (it writes a plan record to the ledger, not
    to the cluster): read-only, not destructive; not idempotent, as each call makes a new plan. No title: the tool's
    own title says it, once per tool rather than twice."""
    return ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=not plans,
                           open_world_hint=True)


async def _never_called(**_: Any) -> None:  # HostTool.run replaces the SDK's call path entirely
    raise AssertionError("HostTool runs through the host")


class HostTool(Tool):
    """One Proximo tool (read or plan), generated from its ``ToolSpec``; the host does everything."""

    spec: Any = Field(default=None, exclude=True)

    @classmethod
    def from_spec(cls, spec: ToolSpec, *, reserve: int = 0) -> HostTool:
        """``reserve``: bytes the schema leaves for what the face adds (the ``cluster`` parameter)."""
        if spec.mutating:
            title, description = plan_title(spec), spec.description + PLAN_NOTE
        else:
            title, description = spec.title, spec.description
        hints, meta = annotations(plans=spec.mutating), {"proximo/tool": spec.id, "proximo/pack": spec.owner}
        rest = {"name": spec.mcp_name, "title": title, "description": description, "inputSchema": {}, "_meta": meta,
                "annotations": hints.model_dump(by_alias=True, exclude_none=True)}
        budget = TOOL_BUDGET - reserve - len(json.dumps(rest, separators=(",", ":"), ensure_ascii=False).encode())
        return cls(
            fn=_never_called, name=spec.mcp_name, title=title, description=description,
            # what ToolSpec.input_schema() gives, its descriptions cut to fit the budget in the few largest tools
            parameters=copy.deepcopy(input_schema(spec.params, budget)),
            fn_metadata=FuncMetadata(arg_model=ArgModelBase, output_schema=None),
            is_async=True, annotations=hints, spec=spec, meta=meta,
        )

    async def run(self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool = False) -> Any:
        rest, host = on_cluster(context, arguments, needed=True)
        if isinstance(host, CallToolResult):
            return host
        with face(context).on(host):
            return await dispatch(context, self.spec, rest, self.name)


class FaceTool(Tool):
    """A tool of the face itself: the SDK's function tool, with arguments checked against a msgspec struct."""

    params_struct: Any = Field(default=None, exclude=True)
    # arguments handed on to a pack's tool as they came (compact read/plan's ``params``): the host checks them, as it
    # checks a named tool's, and records what it refuses
    passthrough: tuple[str, ...] = Field(default=(), exclude=True)
    # whether the tool works on one cluster (read, plan, apply, undo), or on what every cluster shares (the ledger,
    # the tool catalogue): those take no cluster unless given one
    needs_cluster: bool = Field(default=True, exclude=True)

    @classmethod
    def build(cls, fn: Callable[..., Any], *, name: str, title: str, description: str, params: type[msgspec.Struct],
              hints: ToolAnnotations, passthrough: tuple[str, ...] = (), needs_cluster: bool = True) -> FaceTool:
        base = Tool.from_function(fn, name=name, title=title, description=description, annotations=hints)
        return cls(
            fn=base.fn, name=base.name, title=base.title, description=base.description,
            parameters=copy.deepcopy(input_schema(params)),
            fn_metadata=base.fn_metadata.model_copy(update={"output_schema": None}),
            is_async=base.is_async, context_kwarg=base.context_kwarg, resolved_params=base.resolved_params,
            resolver_plans=base.resolver_plans, annotations=base.annotations, params_struct=params, passthrough=passthrough,
            needs_cluster=needs_cluster,
        )

    async def run(self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool = False) -> Any:
        arguments, host = on_cluster(context, arguments, needed=self.needs_cluster)
        if isinstance(host, CallToolResult):
            return host
        with face(context).on(host):
            return await self._checked(arguments, context, convert_result)

    async def _checked(self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool) -> Any:
        try:
            check_strings({k: v for k, v in arguments.items() if k not in self.passthrough})
            msgspec.convert(arguments, self.params_struct, strict=True)
        except BadInput as exc:
            return failure(face(context).host, f"{self.name}: {exc}")
        except msgspec.ValidationError as exc:  # in the words a tool's own parameters get (proximo._form)
            return failure(face(context).host, f"{self.name}: {plain_error(exc, arguments, self.params_struct)}")
        return await super().run(arguments, context, convert_result)


CLUSTER = "cluster"  # the argument every tool takes when several clusters are served (no pack tool may have it)


def on_cluster(context: Context[Any, Any], arguments: dict[str, Any], *, needed: bool) -> tuple[dict[str, Any], Host | CallToolResult]:
    """The call's arguments without ``cluster``, and the host of the cluster it names (the default where none is; a
    tool that ``needed`` none takes any); a one-line tool error for a cluster that is not served, or none where
    several are and none is the default."""
    state = face(context)
    rest = {k: v for k, v in arguments.items() if k != CLUSTER}
    named = arguments.get(CLUSTER)
    try:
        return rest, state.choose(named) if named is not None or needed else state.host
    except BadInput as exc:
        return rest, failure(state.host, str(exc))


def add_cluster_parameter(tools: list[Tool], names: list[str], *, required: bool) -> None:
    """Each tool's schema with the ``cluster`` parameter (several clusters are served): one of ``names``, and where
    no cluster is the default, required by the tools that work on one."""
    prop = cluster_property(names)
    for tool in tools:
        props = tool.parameters.setdefault("properties", {})
        if CLUSTER in props:
            raise PackError(f"{tool.name}: a tool parameter is named {CLUSTER!r}, which the face takes for the cluster")
        props[CLUSTER] = prop
        if required and getattr(tool, "needs_cluster", True):
            tool.parameters["required"] = [*tool.parameters.get("required", []), CLUSTER]


def cluster_property(names: list[str]) -> dict[str, Any]:
    return {"type": "string", "enum": names, "description": "the cluster"}


def cluster_bytes(names: list[str]) -> int:
    """What :func:`add_cluster_parameter` adds to a tool at most: kept out of a full tool's schema budget."""
    return len(json.dumps({CLUSTER: cluster_property(names)}, separators=(",", ":"))) + len(',"cluster"') + 1


def select_specs(registry: ToolRegistry, settings: McpSettings) -> list[ToolSpec]:
    """``PROXIMO_TOOLS`` and ``PROXIMO_READ_ONLY`` applied to the registry (a pattern matching nothing is logged)."""
    for pattern in settings.tools:
        if not any(fnmatch.fnmatchcase(t.id, pattern) for t in registry):
            log.warning("PROXIMO_TOOLS: %r matches no tool (see `proximo tools`)", pattern)
    return registry.select(settings.tools, read_only=settings.read_only)

