"""The compact toolset (``PROXIMO_TOOLSET=compact``, the default): a few MCP tools that reach every tool served.

One MCP tool per Proximo tool costs a client the whole ``tools/list`` (80 tools, hundreds of options) in every
conversation. Here the model finds a tool by words (``proximo_search``), reads its parameters
(``proximo_describe``), and runs it by id (``proximo_read`` / ``proximo_plan``), through :func:`._tools.dispatch`,
the same path the named tools take: same ``ToolSpec.parse``, release check, ledger records. Only the tools the
settings select (``PROXIMO_TOOLS``, ``PROXIMO_READ_ONLY``) can be found or run.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any

import msgspec
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, ToolAnnotations

from .._schema import example_value
from .._tools import ToolSpec
from .._types import LedgerRef
from ._results import face, failure, structured
from ._tools import FaceTool, annotations, dispatch

MAX_LINES = 100
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


def kind(spec: ToolSpec) -> str:
    return "plan" if spec.mutating else "read"


def _call(spec: ToolSpec) -> str:
    return "proximo_plan" if spec.mutating else "proximo_read"


def paths(spec: ToolSpec) -> list[str]:
    """The PVE API endpoints a tool's parameters mirror (``POST /nodes/{node}/qemu``), for search and its line."""
    return [f"{method} {template}" for method, template in getattr(spec.params, "__pve_endpoints__", ())
            if template != "/version"]


def line(spec: ToolSpec) -> str:
    """One line per tool: id, read/plan, title, and the PVE endpoint it mirrors."""
    where = paths(spec)
    title = spec.title.removeprefix("Plan: ")  # "(plan)" says it
    return f"{spec.id} ({kind(spec)}) {title}" + (f" [{where[0]}{' ...' if len(where) > 1 else ''}]" if where else "")


_WORD = re.compile(r"[^\s,;]+")


def search(specs: list[ToolSpec], query: str) -> list[ToolSpec]:
    """Tools matching the most words of ``query`` (in the id, title, description or PVE paths), best first: then those
    with a word that is one of their PVE paths exactly, then those with more words in their id or title."""
    words = [w.lower() for w in _WORD.findall(query)]
    if not words:
        return list(specs)
    scored: list[tuple[int, int, int, str, ToolSpec]] = []
    for spec in specs:
        name = f"{spec.id} {spec.title}".lower().replace("_", " ")
        templates = {template.lower() for _, template in getattr(spec.params, "__pve_endpoints__", ())}
        text = f"{name} {spec.description} {' '.join(paths(spec))}".lower()
        found = [w for w in words if w in text]
        if found:
            scored.append((-len(found), -sum(w in templates for w in found), -sum(w in name for w in found), spec.id, spec))
    return [spec for *_, spec in sorted(scored, key=lambda s: s[:4])]


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
            close = difflib.get_close_matches(tool_id, list(self.by_id), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; proximo_search finds tools by words"
            return failure(host, f"unknown tool {tool_id!r}{hint}")
        if want is not None and kind(spec) != want:
            return failure(host, f"{spec.id} is a {kind(spec)} tool: call {_call(spec)} with it, not proximo_{want}")
        return spec


def compact_tools(specs: list[ToolSpec], *, read_only: bool, registered: set[str]) -> list[FaceTool]:
    """search and describe (when anything is served), read (when a read tool is), plan (when a plan tool is).

    ``specs``: the tools served; ``registered``: every tool id the packs registered."""
    if not specs:
        return []
    catalogue = Catalogue(specs, registered)
    count = {k: sum(kind(s) == k for s in specs) for k in ("read", "plan")}

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
        answer = DescribeAnswer(tool=spec.id, kind=kind(spec), call=_call(spec), title=spec.title, description=spec.description,
                                input_schema=spec.input_schema(), example=example(spec), ledger=host.head())
        after = " It returns a plan (schema: proximo://schema/plan); proximo_apply(plan_id) runs it." if spec.mutating else ""
        return structured(host, answer, summary=f"{spec.id} ({kind(spec)}): call {_call(spec)} with tool and params.{after}")

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
                       params=SearchParams, hints=ToolAnnotations(**lookup)),
        FaceTool.build(proximo_describe, name="proximo_describe", title="Describe a tool",
                       description="A tool's parameters (JSON schema) and an example call.",
                       params=DescribeParams, hints=ToolAnnotations(**lookup)),
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
