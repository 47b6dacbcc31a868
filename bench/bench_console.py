"""What the console's live list and ledger page cost on a big ledger.

    uv run python bench/bench_console.py [N]      # default 1,000,000 records

The N records are written straight into SQLite (bench_ledger_check.build: correct HMACs and links). Then, through
the real Ledger: the waiting list's look when nothing changed (what every open page's event stream does twice a
second: the head's seq, one indexed query), the ledger page's filtered searches (newest 200), and where a new
console's first look starts (``Ledger.first_at``: plans older than a day are expired, so it need not read them).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_ledger_check import KEY, build
from proximo.trust._ledger import Ledger


def timed(fn, repeat: int = 20) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger.sqlite"
        build(path, n)
        with Ledger(path, key=KEY) as ledger:
            print(f"{n:,} records")
            print(f"  head (no-change look of the live list): {timed(ledger.head, 1000) * 1e6:.0f} us")
            for label, query in (("newest 200, no filter", {}), ("kind=plan", {"kind": "plan"}),
                                 ("tool=storage.delete", {"tool": "storage.delete"}), ("actor=bench", {"actor": "bench"}),
                                 ("kind=approve (none)", {"kind": "approve"}),
                                 ("since a time", {"since": "2026-12-06T00:00:00"})):
                print(f"  search {label}: {timed(lambda q=query: ledger.search(**q)) * 1000:.1f} ms")
            print(f"  first_at (where a new console's first look starts: a day back): "
                  f"{timed(lambda: ledger.first_at('2026-12-06T00:00:00.5'), 100) * 1e6:.0f} us")
            start = time.perf_counter()
            count = sum(1 for _ in ledger.records())
            print(f"  reading every record instead ({count:,}): {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
