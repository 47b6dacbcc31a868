"""``proximo tools [WORDS|TOOL]`` and ``proximo plan|read TOOL --help``: which tools there are, and each one's
parameters as its JSON schema (``ToolSpec.input_schema()``, what MCP clients see too) describes them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from .._form import Param, params_of
from .._tools import ToolSpec, search_tools


def matching(tools: Iterable[ToolSpec], words: Iterable[str]) -> list[ToolSpec]:
    """Tools with every word in their id, title, description or PVE paths (``proximo._tools.search_tools``), by id."""
    wanted = list(words)
    return sorted((tool for tool, found in search_tools(tools, wanted) if found == len(wanted)), key=lambda t: t.id)


def tool_row(tool: ToolSpec) -> dict[str, Any]:
    return {"id": tool.id, "mcp_name": tool.mcp_name, "kind": tool.kind, "pack": tool.owner,
            "title": tool.title}


def print_tools(console: Console, tools: list[ToolSpec]) -> None:
    table = Table("TOOL", "KIND", "PACK", "TITLE", box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    for tool in tools:
        table.add_row(tool.id, tool.kind, tool.owner, tool.title)
    console.print(table)
    console.print(Text(f"{len(tools)} tool{'' if len(tools) == 1 else 's'}. `proximo tools TOOL` shows a tool's parameters; "
                       "`proximo tools WORD...` finds tools by id, title or PVE path.", style="dim"))


def tool_detail(tool: ToolSpec) -> dict[str, Any]:
    return {**tool_row(tool), "description": tool.description, "paths": tool.pve_paths,
            "params": msgspec.to_builtins(params_of(tool.input_schema())), "example": example_command(tool)}


def example_command(tool: ToolSpec) -> str:
    """A command line to start from: the tool with an example value for each required parameter."""
    required = [p for p in params_of(tool.input_schema()) if p.required]
    return " ".join(["proximo", tool.kind, tool.id, *(f"{p.name}={p.example or p.name.upper()}" for p in required)])


def print_tool(console: Console, tool: ToolSpec) -> None:
    console.print(Text(f"{tool.id} ({'plan' if tool.mutating else 'read'}, pack {tool.owner}): {tool.title}", style="bold"))
    console.print(tool.description, markup=False, soft_wrap=False)
    if paths := tool.pve_paths:
        console.print(f"PVE API: {', '.join(paths)}", markup=False)
    params = params_of(tool.input_schema())
    # one line per parameter, its description indented below: readable at 80 columns, whatever the names' length
    name_w = min(max([len("PARAMETER"), *(len(p.name) for p in params)]), 24)
    type_w = min(max([len("TYPE"), *(len(p.type) for p in params)]), 16)
    console.print(Text(f"{'PARAMETER':<{name_w}}  {'TYPE':<{type_w}}  NEED / DEFAULT", style="bold") if params
                  else Text("no parameters"))
    for p in params:
        line = Text(f"{p.name:<{name_w}}", style="bold" if p.required else "")
        line.append(f"  {p.type:<{type_w}}  {_need(p)}" + (f"  e.g. {p.example}" if p.example else ""))
        console.print(line)
        if p.description:
            console.print(Padding(Text(p.description, style="dim"), (0, 0, 0, 4)), soft_wrap=False)
    console.print(f"example: {example_command(tool)}", markup=False)


def _need(param: Param) -> str:
    if param.required:
        return "required"
    return "optional" if param.default is None else f"default {param.default}"
