"""How big the MCP face's ``tools/list`` is, per toolset: what a client puts in its model's context before any work.

Measured in-process through the MCP SDK's own client against the simulated demo cluster with every built-in pack:
the bytes of the ``tools/list`` result as JSON (compact separators, as on the wire), the number of tools, and the
largest tool. ``tests/mcp/test_schemas.py`` holds the same figures to the goals docs/mcp.md states.

Usage: ``uv run python scripts/mcp_sizes.py``
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import msgspec
from mcp import Client

from proximo._world import World
from proximo.mcp import McpSettings, build_server

VARIANTS: dict[str, McpSettings] = {
    "compact": McpSettings(toolset="compact"),
    "compact read-only": McpSettings(toolset="compact", read_only=True),
    "full": McpSettings(toolset="full"),
    "full read-only": McpSettings(toolset="full", read_only=True),
}


class Size(msgspec.Struct, frozen=True):
    name: str
    tools: int
    bytes: int
    largest: str
    largest_bytes: int


def encoded(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


async def measure(world: World, name: str, settings: McpSettings) -> tuple[Size, list[dict[str, Any]]]:
    """The size of ``tools/list`` for ``settings`` on ``world``'s registry, and the tools as listed (JSON)."""
    server = build_server(world.host, settings, tools=world.packs.tools)
    async with Client(server) as client:
        listed = (await client.list_tools()).model_dump(mode="json", by_alias=True, exclude_none=True)
    tools: list[dict[str, Any]] = listed["tools"]
    largest = max(tools, key=encoded)
    return Size(name, len(tools), encoded(listed), largest["name"], encoded(largest)), tools


async def all_sizes(home: Path) -> list[Size]:
    world = World(home)
    return [(await measure(world, name, settings))[0] for name, settings in VARIANTS.items()]


def main() -> int:
    with tempfile.TemporaryDirectory() as home:
        sizes = anyio.run(all_sizes, Path(home))
    width = max(len(s.name) for s in sizes)
    for s in sizes:
        print(f"{s.name:<{width}}  {s.tools:>3} tools  {s.bytes:>7,} bytes  largest: {s.largest} {s.largest_bytes:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
