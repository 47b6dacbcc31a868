"""Tool descriptors and the registry the host builds from every pack at start-up."""

from __future__ import annotations

import copy
import fnmatch
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec

from .errors import BadInput, PackError, UnknownTool
from ._form import plain_error, suggest
from ._schema import input_schema, object_schema  # noqa: F401 (object_schema: imported from here by the faces)
from .params import release_problems

_TOOL_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
MAX_STRING = 4096


class ToolSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What a pack registers for one tool. The host runs it; the pack only describes and plans."""

    id: str  # dotted: "storage.delete"
    title: str
    description: str
    params: type[msgspec.Struct]  # the parameter struct; its fields mirror Proxmox's names
    mutating: bool  # True: the tool returns a plan; False: a read (risk LOW), answered at once
    owner: str = ""  # the pack that registered it (set by the host)
    # A read tool that also shows what Proxmox itself answers: (params, view) -> GET paths the host reads live (never
    # from a snapshot) into ``view.other`` before ``proximo_read``; a path it could not read is in ``view.extra``
    # as ``{"error": "..."}`` instead.
    live_reads: Callable[[Any, Any], list[str]] | None = None  # (params, view): the paths may depend on the model
    # The tool's own pure function, ``run(params, view)``: a read's answer, or a mutating tool's Draft. The host calls
    # it directly (as llm hands calls to its Tool objects). None: the owning pack's proximo_read / proximo_plan answers.
    run: Callable[..., Any] | None = None
    # A list read's columns an operator looks for first (``name``, ``node``, ``status``...): what a terminal shows
    # when the rows are too wide for it. Empty: vmid, name, id, node, status where the rows have them.
    columns: tuple[str, ...] = ()

    @property
    def mcp_name(self) -> str:
        return "pve_" + self.id.replace(".", "_")

    @property
    def kind(self) -> str:
        return "plan" if self.mutating else "read"

    @property
    def pve_paths(self) -> list[str]:
        """The PVE API endpoints the tool's parameters mirror (``POST /nodes/{node}/qemu``), where its struct says
        (``/version``, which every release check reads, is not one)."""
        return [f"{method} {template}" for method, template in getattr(self.params, "__pve_endpoints__", ())
                if template != "/version"]

    def parse(self, raw: dict[str, Any]) -> msgspec.Struct:
        """Validate raw parameters: one line naming the problem (in the operator's words, with a suggestion), or
        the typed params."""
        check_strings(raw)
        try:
            return msgspec.convert(raw, type=self.params, strict=True)
        except msgspec.ValidationError as exc:
            raise BadInput(f"{self.id}: {plain_error(exc, raw, self.params)}", about=self.id) from None

    def check_release(self, params: msgspec.Struct, version: dict[str, Any], release: str) -> None:
        """Refuse, in one line, parameters the cluster's PVE release does not have (``proximo.params.release_problems``):
        a tool's struct takes every supported release's parameters, and the cluster decides which apply."""
        problems = release_problems(params, release)
        if problems:
            shown = version.get("version") or release
            raise BadInput(f"{self.id}: this cluster runs PVE {shown}, whose API does not have {'; '.join(problems)}")

    def input_schema(self) -> dict[str, Any]:
        """JSON Schema of the parameters as MCP clients and ``proximo tools TOOL`` show them: an object schema, slim and
        with every property described (``proximo._schema``); the struct itself still decides what ``parse`` takes."""
        return copy.deepcopy(input_schema(self.params))


def search_tools(specs: Iterable[ToolSpec], words: Iterable[str]) -> list[tuple[ToolSpec, int]]:
    """Tools with any of ``words`` in their id, title, description or PVE paths, with how many they have, best first:
    more words, then a word that is one of their PVE paths exactly, then more words in the id or title. No words:
    every tool. ``proximo tools WORD...`` shows those with every word; MCP's ``proximo_search`` ranks them all."""
    wanted = [w.lower() for w in words]
    if not wanted:
        return [(spec, 0) for spec in sorted(specs, key=lambda t: t.id)]
    scored: list[tuple[int, int, int, str, ToolSpec]] = []
    for spec in specs:
        name = f"{spec.id} {spec.title}".lower().replace("_", " ")
        templates = {template.lower() for _, template in getattr(spec.params, "__pve_endpoints__", ())}
        text = f"{name} {spec.description} {' '.join(spec.pve_paths)}".lower()
        found = [w for w in wanted if w in text]
        if found:
            scored.append((-len(found), -sum(w in templates for w in found), -sum(w in name for w in found), spec.id, spec))
    return [(spec, -count) for count, *_, spec in sorted(scored, key=lambda s: s[:4])]


def check_strings(value: Any, where: str = "$") -> None:
    """Refuse control characters, and over-long values, anywhere in the input."""
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise BadInput(f"value at {where} is {len(value)} characters long; the limit is {MAX_STRING}")
        for ch in value:
            if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
                raise BadInput(f"value at {where} contains the control character {ch!r}")
    elif isinstance(value, dict):
        for k, v in value.items():
            check_strings(k, where)
            check_strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_strings(v, f"{where}[{i}]")

def read_tool(id: str, title: str, description: str, params: type[msgspec.Struct], run: Callable[..., Any], *,
              columns: tuple[str, ...] = (), live_reads: Callable[[Any, Any], list[str]] | None = None) -> ToolSpec:
    """A read tool (risk LOW, answered at once from the model): ``run(params, view)`` returns the data; a list's
    ``columns`` are the ones a terminal shows first; ``live_reads(params, view)`` the GET paths whose Proxmox answers
    it compares with (see ToolSpec.live_reads)."""
    return ToolSpec(id=id, title=title, description=description, params=params, mutating=False, run=run, columns=columns,
                    live_reads=live_reads)


def plan_tool(id: str, title: str, description: str, params: type[msgspec.Struct], run: Callable[..., Any]) -> ToolSpec:
    """A mutating tool: ``run(params, view)`` returns a Draft; the host predicts, analyses, stores and applies it."""
    return ToolSpec(id=id, title=title, description=description, params=params, mutating=True, run=run)


def tool_table(*tools: ToolSpec) -> dict[str, ToolSpec]:
    """A pack's tools by id; an id given twice is a bug in the pack, refused at import."""
    table: dict[str, ToolSpec] = {}
    for tool in tools:
        if tool.id in table:
            raise ValueError(f"tool id {tool.id!r} is defined twice")
        table[tool.id] = tool
    return table


class ToolRegistry:
    """Every tool of every loaded pack, by id. Duplicate ids are refused at start-up."""

    def __init__(self) -> None:
        self._tools: dict[str, ToolSpec] = {}

    def registrar(self, owner: str) -> Callable[[ToolSpec], None]:
        def register(tool: ToolSpec) -> None:
            if not _TOOL_ID.match(tool.id):
                raise PackError(f"pack {owner!r}: tool id {tool.id!r} is not dotted lower-case (like 'storage.delete')")
            if tool.id in self._tools:
                raise PackError(f"tool {tool.id!r} is registered by both {self._tools[tool.id].owner!r} and {owner!r}")
            if not (isinstance(tool.params, type) and issubclass(tool.params, msgspec.Struct)):
                raise PackError(f"pack {owner!r}: tool {tool.id!r} params must be a msgspec.Struct type")
            self._tools[tool.id] = msgspec.structs.replace(tool, owner=owner)

        return register

    def get(self, tool_id: str) -> ToolSpec:
        try:
            return self._tools[tool_id]
        except (KeyError, TypeError):
            close = suggest(tool_id, self._tools) if isinstance(tool_id, str) else None
            hint = f" - did you mean {close}?" if close else ""
            raise UnknownTool(f"unknown tool {tool_id!r}{hint}", about="") from None

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(sorted(self._tools.values(), key=lambda t: t.id))

    def __len__(self) -> int:
        return len(self._tools)

    def select(self, patterns: Iterable[str] | None = None, *, read_only: bool = False) -> list[ToolSpec]:
        """Tools matching ids or glob patterns (``storage.*,guest.list``); all when no pattern is given."""
        pats = [p.strip() for p in (patterns or []) if p.strip()]
        chosen = [t for t in self if not pats or any(fnmatch.fnmatchcase(t.id, p) for p in pats)]
        return [t for t in chosen if not (read_only and t.mutating)]
