"""The figures of docs/security.md, measured: runs the generated and fault tests and counts what they did.

    uv run python bench/security_figures.py                  # the suite's own counts (what CI runs)
    uv run python bench/security_figures.py --examples 400 --sequences 100      # a longer run

The tests count into ``tests/_hostile.FIGURES`` (cases generated, refusals, sequences, steps, faults, tampers,
applies, writes) and write them out at exit when ``PROXIMO_FIGURES_FILE`` is set; this script adds them up. Writes
without an approved plan are not counted by a counter: every sequence checks it after every step and one would fail
the run, so the figure is 0 exactly when the run passed, and the script says which.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ["tests/test_property_hostile.py", "tests/test_model_based.py", "tests/test_sim_faults.py",
           "tests/mcp/test_mcp_concurrent_approval.py", "tests/test_incomplete.py"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--examples", type=int, default=None, help="hypothesis examples per generated test (default: the profile's 40)")
    parser.add_argument("--sequences", type=int, default=None, help="model-based sequences (default: 12)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PROXIMO_FIGURES_FILE": str(Path(folder) / "figures")}
        if args.examples:
            env["PROXIMO_HYPOTHESIS_EXAMPLES"] = str(args.examples)
        if args.sequences:
            env["PROXIMO_HYPOTHESIS_SEQUENCES"] = str(args.sequences)
        started = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *MODULES],
                             cwd=ROOT, env=env, capture_output=True, text=True)
        took = time.monotonic() - started
        figures: Counter[str] = Counter()
        for path in glob.glob(str(Path(folder) / "figures.*")):
            figures.update(json.loads(Path(path).read_text()))
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr.strip()[-300:]
    passed = run.returncode == 0
    tests = re.search(r"(\d+) passed", summary)
    print(f"tests: {summary} in {took:.0f} s ({' '.join(MODULES)})")
    rows = [
        ("hostile or random inputs generated (in process, CLI, MCP; every tool and api.call)", figures["cases"]),
        ("... of which refused cleanly (one line, nothing sent)", figures["refusals"]),
        ("model-based sequences run", figures["sequences"]),
        ("... steps in them", figures["steps"]),
        ("... applies that ran, and the writes they sent", f"{figures['applies']} / {figures['writes']}"),
        ("... of those applies, through the MCP face", figures["mcp_applies"]),
        ("... applies refused in them (stale, unapproved, declined, applied, faulty reads, tampered ledger)",
         figures["sequence_refusals"]),
        ("... faults injected in them", figures["faults"]),
        ("... ledger rows tampered with (each found, its plan refused)", figures["tampers"]),
        ("tests run (generated, faults, concurrent approval, completeness)", tests.group(1) if tests else "?"),
        ("writes without an approved plan", 0 if passed else "the run FAILED: see the test output"),
    ]
    for label, value in rows:
        print(f"  {label:<84} {value}")
    if not passed:
        print(run.stdout[-4000:])
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
