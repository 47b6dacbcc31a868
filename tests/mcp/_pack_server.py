"""The MCP face on stdio over a simulated cluster with the test pack: what the stdio tests spawn.

    python tests/mcp/_pack_server.py HOME [TOOLSET]      (TOOLSET: full, the default here, or compact)

Like ``proximo serve --sim`` (same ``build_server``, same stdio transport), plus the test pack whose tool runs
as a Proxmox task, so progress and task failures can be tested over a real pipe.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from _mcp_pack import make_world
from proximo.mcp import McpSettings, build_server


def main() -> None:
    world = make_world(Path(sys.argv[1]))
    toolset = sys.argv[2] if len(sys.argv) > 2 else "full"
    assert toolset in ("full", "compact")
    server = build_server(world.host, McpSettings(toolset=toolset, approve_command="proximo approve"), tools=world.packs.tools)
    anyio.run(server.run_stdio_async)


if __name__ == "__main__":
    main()
