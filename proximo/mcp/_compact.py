"""The compact toolset (``PROXIMO_TOOLSET=compact``, the default): a few MCP tools that reach every tool served.

One MCP tool per Proximo tool costs a client the whole ``tools/list`` (80 tools, hundreds of options) in every
conversation. Here the model finds a tool by words (``proximo_search``), reads its parameters
(``proximo_describe``), and runs it by id (``proximo_read`` / ``proximo_plan``), through :func:`._tools.dispatch`,
the same path the named tools take: same ``ToolSpec.parse``, release check, ledger records. Only the tools the
settings select (``PROXIMO_TOOLS``, ``PROXIMO_READ_ONLY``) can be found or run.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, ToolAnnotations

from .._schema import example_value
from .._form import suggestions
from .._tools import ToolSpec, search_tools
from .._types import LedgerRef
from ._results import face, failure, structured
from ._tools import FaceTool, annotations, dispatch

MAX_LINES = 250  # every tool of the built-in packs (103) on one page, with room for more packs
ToolId = Annotated[str, msgspec.Meta(max_length=100, description="a tool id")]


class SearchParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    query: Annotated[str, msgspec.Meta(max_length=200, description="words; none: all")] = ""
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LINES, description="most lines")] = 40


class DescribeParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    tool: ToolId


class CallParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    tool: ToolId
    params: Annotated[dict[str, Any], msgspec.Meta(description="its parameters")] = {}


class SearchAnswer(msgspec.Struct, frozen=True):
    matches: list[str]
    ledger: LedgerRef


class Example(msgspec.Struct, frozen=True):
    tool: str
    params: dict[str, Any]


class DescribeAnswer(msgspec.Struct, frozen=True):
    tool: str
    kind: str  # "read" or "plan"
    call: str  # the compact tool that runs it
    title: str
    description: str
    input_schema: dict[str, Any]
    example: Example
    ledger: LedgerRef


def _call(spec: ToolSpec) -> str:
    return "proximo_plan" if spec.mutating else "proximo_read"


def line(spec: ToolSpec) -> str:
    """One line per tool: id, read/plan, title, and the PVE endpoint it mirrors."""
    where = spec.pve_paths
    title = spec.title.removeprefix("Plan: ")  # "(plan)" says it
    return f"{spec.id} ({spec.kind}) {title}" + (f" [{where[0]}{' ...' if len(where) > 1 else ''}]" if where else "")


_WORD = re.compile(r"[^\s,;]+")


def search(specs: list[ToolSpec], query: str) -> list[ToolSpec]:
    """Tools matching the most words of ``query``, best first (``proximo._tools.search_tools``)."""
    return [spec for spec, _ in search_tools(specs, _WORD.findall(query))]


def example(spec: ToolSpec) -> Example:
    """A call of ``spec`` with its required parameters filled in (values that parse; the cluster may still say no)."""
    schema = spec.input_schema()
    props = schema.get("properties", {})
    return Example(tool=spec.id, params={name: _or_placeholder(example_value(name, props.get(name, {})))
                                         for name in schema.get("required", [])})


def _or_placeholder(value: Any) -> Any:
    return "example" if value is None else value


class Catalogue:
    """The tools this server serves, by id, with the ones a mistyped id was probably meant to be."""

    def __init__(self, specs: list[ToolSpec], registered: set[str]) -> None:
        self.specs = specs
        self.by_id = {spec.id: spec for spec in specs}
        self.withheld = registered - set(self.by_id)  # registered, but not selected (PROXIMO_TOOLS, PROXIMO_READ_ONLY)

    def find(self, tool_id: str, context: Context[Any, Any], *, want: str | None = None) -> ToolSpec | CallToolResult:
        """The served tool ``tool_id``, or a one-line error (did you mean ...; or which tool runs it)."""
        host = face(context).host
        spec = self.by_id.get(tool_id)
        if spec is None and tool_id in self.withheld:  # so the model stops trying it
            return failure(host, f"{tool_id} is not served here (PROXIMO_TOOLS / PROXIMO_READ_ONLY leave it out)")
        if spec is None:
            close = suggestions(tool_id, self.by_id)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; proximo_search finds tools by words"
            return failure(host, f"unknown tool {tool_id!r}{hint}")
        if want is not None and spec.kind != want:
            return failure(host, f"{spec.id} is a {spec.kind} tool: call {_call(spec)} with it, not proximo_{want}")
        return spec


def compact_tools(specs: list[ToolSpec], *, read_only: bool, registered: set[str]) -> list[FaceTool]:
    """search and describe (when anything is served), read (when a read tool is), plan (when a plan tool is).

    ``specs``: the tools served; ``registered``: every tool id the packs registered."""
    if not specs:
        return []
    catalogue = Catalogue(specs, registered)
    count = {k: sum(s.kind == k for s in specs) for k in ("read", "plan")}

    async def proximo_search(ctx: Context[Any, Any], query: str = "", limit: int = 40) -> CallToolResult:
        found = search(catalogue.specs, query)
        shown = [line(spec) for spec in found[:limit]]
        more = f" (showing {len(shown)}; raise limit or add words)" if len(found) > len(shown) else ""
        host = face(ctx).host
        return structured(host, SearchAnswer(matches=shown, ledger=host.head()),
                          summary=f"{len(found)} of {len(catalogue.specs)} tools match{more}.")

    async def proximo_describe(tool: str, ctx: Context[Any, Any]) -> CallToolResult:
        spec = catalogue.find(tool, ctx)
        if isinstance(spec, CallToolResult):
            return spec
        host = face(ctx).host
        answer = DescribeAnswer(tool=spec.id, kind=spec.kind, call=_call(spec), title=spec.title, description=spec.description,
                                input_schema=spec.input_schema(), example=example(spec), ledger=host.head())
        after = " It returns a plan (schema: proximo://schema/plan); proximo_apply(plan_id) runs it." if spec.mutating else ""
        return structured(host, answer, summary=f"{spec.id} ({spec.kind}): call {_call(spec)} with tool and params.{after}")

    async def proximo_read(tool: str, ctx: Context[Any, Any], params: dict[str, Any] | None = None) -> CallToolResult:
        spec = catalogue.find(tool, ctx, want="read")
        if isinstance(spec, CallToolResult):
            return spec
        return await dispatch(ctx, spec, params or {}, "proximo_read")

    async def proximo_plan(tool: str, ctx: Context[Any, Any], params: dict[str, Any] | None = None) -> CallToolResult:
        spec = catalogue.find(tool, ctx, want="plan")
        if isinstance(spec, CallToolResult):
            return spec
        return await dispatch(ctx, spec, params or {}, "proximo_plan")

    lookup = dict(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    tools = [
        FaceTool.build(proximo_search, name="proximo_search", title="Find tools",
                       description=f"Find tools (of {len(specs)}) by words in ids, titles, PVE API paths: one line each.",
                       params=SearchParams, hints=ToolAnnotations(**lookup), needs_cluster=False),
        FaceTool.build(proximo_describe, name="proximo_describe", title="Describe a tool",
                       description="A tool's parameters (JSON schema) and an example call.",
                       params=DescribeParams, hints=ToolAnnotations(**lookup), needs_cluster=False),
    ]
    if count["read"]:
        tools.append(FaceTool.build(
            proximo_read, name="proximo_read", title="Run a read tool",
            description="Run a read tool: answered at once; changes nothing.",
            params=CallParams, hints=annotations(plans=False), passthrough=("params",)))
    if count["plan"] and not read_only:
        tools.append(FaceTool.build(
            proximo_plan, name="proximo_plan", title="Plan: a change",
            description="Run a plan tool: a plan (API calls, blast radius, risk, undo); changes nothing. "
                        "proximo_apply runs it.",
            params=CallParams, hints=annotations(plans=True), passthrough=("params",)))
    return tools
