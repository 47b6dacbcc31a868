"""How fast the PROVE ledger appends and verifies: every append is one fsync'd transaction (synchronous=FULL).

    uv run python bench/bench_ledger.py [N] [--key]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from proximo.trust._ledger import Actor, Ledger


def main() -> None:
    args = sys.argv[1:]
    n = int(next((a for a in args if a.isdigit()), "2000"))
    key = b"bench-key" * 4 if "--key" in args else None
    actor = Actor(token_id="root@pam!proximo", face="cli", client="bench")
    params = {"storage": "local-zfs", "vmid": 104, "delete": "scsi1", "digest": "0" * 40, "password": "x"}
    impacts = [{"target": "qemu/104", "effect": "degraded", "reason": "loses scsi1 on local-zfs"}]
    with tempfile.TemporaryDirectory() as tmp, Ledger(Path(tmp) / "ledger.sqlite", key=key) as ledger:
        start = time.perf_counter()
        for i in range(n):
            ledger.append("plan", actor=actor, tool="guest.disk.detach", params=params, plan_id=f"p-{i:012x}",
                          plan_hash="ab" * 32, impacts=impacts, outcome={"ok": True})
        appended = time.perf_counter() - start
        start = time.perf_counter()
        result = ledger.verify()
        verified = time.perf_counter() - start
    assert result.ok and result.records == n, result.reason
    print(f"chain {result.head.chain}: {n} appends in {appended:.2f} s = {n / appended:.0f} appends/s")
    print(f"verify {n} records: {verified * 1000:.0f} ms ({n / verified:.0f} records/s)")


if __name__ == "__main__":
    main()
