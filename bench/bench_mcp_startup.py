"""How long an MCP client waits after spawning the stdio server before it has the tool list.

    uv run python bench/bench_mcp_startup.py [--runs 5] [--mode auto|legacy|both] [--command proximo-proxmox]

Each run spawns ``proximo-proxmox --sim`` (what ``uvx proximo-proxmox`` runs; the console script from this
environment) with a fresh PROXIMO_HOME, connects the MCP SDK's own client, and times spawn -> tools/list answer.
It also times the bare interpreter start and the import of ``proximo.mcp``, to show where the time goes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters


async def one_run(command: list[str], mode: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="proximo-bench-") as home:
        server = StdioServerParameters(command=command[0], args=command[1:], env={**os.environ, "PROXIMO_HOME": home})
        started = time.perf_counter()
        async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
            tools = (await client.list_tools()).tools
            elapsed = time.perf_counter() - started
        return elapsed, len(tools)


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mode", choices=["auto", "legacy", "both"], default="both")
    parser.add_argument("--command", default="proximo-proxmox", help="console script in this environment")
    args = parser.parse_args()
    command = [str(Path(sys.executable).parent / args.command), *(["serve"] if args.command == "proximo" else []), "--sim"]
    modes = ["auto", "legacy"] if args.mode == "both" else [args.mode]

    python = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(3))
    imports = statistics.median(timed([sys.executable, "-c", "import proximo.mcp"]) for _ in range(3))
    print(f"python start: {python * 1000:.0f} ms; python + import proximo.mcp: {imports * 1000:.0f} ms (medians of 3)")
    for mode in modes:
        anyio.run(one_run, command, mode)  # warm the OS file cache; not counted
        times: list[float] = []
        count = 0
        for _ in range(args.runs):
            elapsed, count = anyio.run(one_run, command, mode)
            times.append(elapsed)
        print(f"{Path(command[0]).name} {' '.join(command[1:])} [{mode}]: spawn -> tools/list ({count} tools): "
              f"median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
              f"over {args.runs} runs")


if __name__ == "__main__":
    main()
