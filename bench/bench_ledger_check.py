"""What apply's ledger check costs on a big ledger: the incremental check against a full walk.

    uv run python bench/bench_ledger_check.py [N]      # default 1,000,000 records

The N records are written straight into SQLite in one transaction (with correct HMACs and links, as Proximo
would have written them one by one); then, through the real Ledger: one full walk (what `ledger verify` and the
hourly walk cost), then appends with the high-water mark, each followed by the incremental check apply runs.
"""

from __future__ import annotations

import hashlib
import hmac
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from proximo.trust._ledger import _COLUMNS, GENESIS, Actor, Ledger, LedgerRecord, _canonical, _row

KEY = b"bench-key-0123456789abcdef012345"


def build(path: Path, n: int) -> None:
    with Ledger(path, key=KEY, high_water_mark=False) as ledger:  # the schema, meta and key check
        db = ledger._conn()
        actor = Actor(token_id="proximo@pve!agent", face="mcp", client="bench")
        prev = GENESIS
        rows = []
        for seq in range(1, n + 1):
            record = LedgerRecord(seq=seq, time="2026-12-06T00:00:00.000000Z", kind="plan", actor=actor,
                                  tool="storage.delete", params={"storage": f"s{seq}"}, plan_id=f"p-{seq:012x}",
                                  plan_hash="ab" * 32, impacts=[], outcome={"risk": "HIGH"}, prev=prev, hash="")
            prev = hmac.new(KEY, _canonical(record), hashlib.sha256).hexdigest()
            rows.append(_row(msgspec.structs.replace(record, hash=prev)))
        db.execute("BEGIN")
        db.executemany(f"INSERT INTO records ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.execute("COMMIT")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.sqlite"
        start = time.perf_counter()
        build(path, n)
        print(f"built {n} records in {time.perf_counter() - start:.1f} s")
        with Ledger(path, key=KEY) as ledger:  # starts the mark at the head
            start = time.perf_counter()
            full = ledger.verify()
            walked = time.perf_counter() - start
            assert full.ok, full.reason
            print(f"full walk (ledger verify, hourly in check): {walked:.2f} s ({n / walked:,.0f} records/s)")
            actor = Actor(token_id="proximo@pve!agent", face="cli", client="bench")
            appends, checks = [], []
            for i in range(200):
                start = time.perf_counter()
                ledger.append("deny", actor=actor, tool="x", params={"i": i})
                appends.append(time.perf_counter() - start)
                start = time.perf_counter()
                result = ledger.check()
                checks.append(time.perf_counter() - start)
                assert result.ok, result.reason
        print(f"append with the high-water mark: median {statistics.median(appends) * 1000:.2f} ms")
        print(f"incremental check after each append (what apply runs): median {statistics.median(checks) * 1000:.2f} ms, "
              f"max {max(checks) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
