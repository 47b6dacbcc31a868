"""The MCP face on stdio over a simulated cluster with the test pack: what the stdio tests spawn.

    python tests/mcp/_pack_server.py HOME

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
    server = build_server(world.host, McpSettings(toolset="full", approve_command="proximo approve"), tools=world.packs.tools)
    anyio.run(server.run_stdio_async)


if __name__ == "__main__":
    main()
