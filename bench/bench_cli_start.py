"""How long `proximo --help` takes, whole process, with the bytecode there is and with none at all.

    uv run python bench/bench_cli_start.py [--runs 7]

- "as installed": this environment as it is (uv writes bytecode for installed packages at install,
  ``compile-bytecode``; the checkout's own modules have bytecode once Python could write it there);
- "no bytecode": ``PYTHONPYCACHEPREFIX`` pointed at an empty directory and ``PYTHONDONTWRITEBYTECODE=1``, so every
  module, the standard library's included, is compiled from source on every run: the worst a first run can see.

Both list the commands from the user's cache (proximo/cli/_listing.py), which the first run writes; "no command
cache" builds the command tree every time (the cache directory cannot be made), as the first ``--help`` after an
install or an upgrade does.
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

GOAL_S = 0.15


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    proximo = str(Path(sys.executable).parent / "proximo")
    with tempfile.TemporaryDirectory() as empty:
        cases = {
            "python -c pass": ([sys.executable, "-c", "pass"], dict(os.environ)),
            "proximo --help, as installed": ([proximo, "--help"], dict(os.environ)),
            "proximo --help, no bytecode": ([proximo, "--help"], {**os.environ, "PYTHONPYCACHEPREFIX": empty,
                                                                    "PYTHONDONTWRITEBYTECODE": "1"}),
            "proximo --help, no command cache": ([proximo, "--help"], {**os.environ, "XDG_CACHE_HOME": os.devnull + "/x"}),
        }
        print(f"{'command':<34} {'median s':>9} {'min s':>7} {'goal':>6}")
        for name, (argv, env) in cases.items():
            timed(argv, env)  # warm the OS file cache
            times = [timed(argv, env) for _ in range(args.runs)]
            goal = f"{GOAL_S:6.2f}" if "help" in name else ""
            print(f"{name:<34} {statistics.median(times):9.3f} {min(times):7.3f} {goal:>6}")


if __name__ == "__main__":
    main()
