"""Offline plans on a large generated cluster, timed as a person runs them: whole `proximo plan` processes.

    uv run python bench/bench_scale.py [--nodes 32] [--guests 4000] [--seed 1] [--repeat 3]

Writes the cluster of bench/gen_cluster.py to a temporary snapshot file, then, for each tool below, runs
``proximo plan TOOL ... --snapshot FILE --json`` in a new process and reports the best of ``--repeat`` wall times
(start-up, reading the snapshot, planning, the ledger record) and the impacts the plan found. Then the same cluster
firewall change on clusters of 250 to ``--guests`` guests, to show how its cost grows with the guests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_cluster import generate  # noqa: E402

PLANS: list[tuple[str, list[str]]] = [
    ("storage.delete", ["storage=local-zfs"]),
    ("firewall.rule.add", ["level=cluster", "type=in", "action=ACCEPT", "proto=tcp", "dport=8443", "source=10.9.0.0/16", "enable=1"]),
    ("firewall.options.set", ["level=cluster", "enable=0"]),
    ("guest.config.set", ["vmid=1001", "memory=4096"]),
    ("guest.stop", ["vmid=1003"]),
    ("access.acl.grant", ["path=/vms/1010", "roles=PVEVMAdmin", "groups=operators"]),
]
GOAL_PLAN_S = 0.5
GOAL_FIREWALL_S = 2.0


def plan_once(snapshot: Path, home: Path, tool: str, args: list[str]) -> tuple[float, dict[str, Any] | str]:
    env = {"PROXIMO_HOME": str(home), "PATH": "/usr/bin:/bin"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "proximo", "plan", tool, *args, "--snapshot", str(snapshot), "--json"],
                          capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        return elapsed, (done.stderr.strip().splitlines() or ["?"])[-1]
    return elapsed, json.loads(done.stdout)


def best(snapshot: Path, home: Path, tool: str, args: list[str], repeat: int) -> tuple[float, dict[str, Any] | str]:
    runs = [plan_once(snapshot, home, tool, args) for _ in range(repeat)]
    return min(r[0] for r in runs), runs[-1][1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--guests", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        snapshot, home = Path(tmp) / "big.json", Path(tmp) / "home"
        snapshot.write_text(json.dumps(generate(nodes=args.nodes, guests=args.guests, seed=args.seed)))
        print(f"cluster: {args.nodes} nodes, {args.guests + 15} guests, snapshot {snapshot.stat().st_size / 1e6:.1f} MB")
        print(f"{'offline plan (whole process)':<34} {'best s':>8} {'goal':>6}  impacts")
        for tool, tool_args in PLANS:
            elapsed, plan = best(snapshot, home, tool, tool_args, args.repeat)
            found = f"{len(plan['impacts'])} ({plan['risk']})" if isinstance(plan, dict) else f"refused: {plan}"
            print(f"{tool:<34} {elapsed:8.2f} {GOAL_PLAN_S:6.1f}  {found}")
        print(f"\n{'cluster firewall rule, by guests':<34} {'best s':>8} {'goal':>6}")
        sizes = sorted({n for n in (250, 1000, 2000, args.guests) if n <= args.guests})
        for guests in sizes:
            small = Path(tmp) / f"c{guests}.json"
            small.write_text(json.dumps(generate(nodes=args.nodes, guests=guests, seed=args.seed)))
            elapsed, plan = best(small, home, PLANS[1][0], PLANS[1][1], args.repeat)
            if not isinstance(plan, dict):  # a refused plan's time says nothing about the analysis
                raise SystemExit(f"{PLANS[1][0]} on {guests} guests was refused: {plan}")
            print(f"{guests:<34} {elapsed:8.2f} {GOAL_FIREWALL_S if guests == args.guests else '':>6}")


if __name__ == "__main__":
    main()
