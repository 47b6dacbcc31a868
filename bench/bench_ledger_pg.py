"""Append throughput of the shared ledger on PostgreSQL, next to SQLite's, on this machine, in one run.

    uv run python bench/bench_ledger_pg.py [N] [--procs P]

Starts a PostgreSQL server of its own (tests/_postgres.py: Debian's postgresql, a temporary directory, a loopback
port, fsync on as in production) and measures, for each store: N appends by one process (each its own committed
transaction: SQLite's synchronous=FULL, PostgreSQL's commit under the advisory lock), the same N split over P
processes appending at once (what a shared ledger is for), and a full verify of the chain. Keyed chains, the
same record as bench/bench_ledger.py.
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _postgres import PgServer, unavailable  # noqa: E402

from proximo.trust._ledger import Actor, Ledger  # noqa: E402
from proximo.trust._pg import close_pools, open_store  # noqa: E402

KEY = b"bench-key" * 4
ACTOR = Actor(token_id="root@pam!proximo", face="cli", client="bench")
PARAMS = {"storage": "local-zfs", "vmid": 104, "delete": "scsi1", "digest": "0" * 40, "password": "x"}
IMPACTS = [{"target": "qemu/104", "effect": "degraded", "reason": "loses scsi1 on local-zfs"}]


def _open(where: str, home: Path) -> Ledger:
    if where.startswith("postgresql://"):
        return Ledger(open_store(where), key=KEY, mark_path=home / "ledger-postgresql.hwm")
    return Ledger(where, key=KEY)


def _append(where: str, home: str, n: int, tag: int) -> None:
    Path(home).mkdir(exist_ok=True)  # each process its own machine's mark of a shared ledger
    with _open(where, Path(home)) as ledger:
        for i in range(n):
            ledger.append("plan", actor=ACTOR, tool="guest.disk.detach", params=PARAMS, plan_id=f"p-{tag:04x}{i:08x}",
                          plan_hash="ab" * 32, impacts=IMPACTS, outcome={"ok": True})
    close_pools()


def _measure(name: str, where: str, home: Path, n: int, procs: int) -> None:
    _open(where, home).close()  # the schema and the first mark, outside the timing
    start = time.perf_counter()
    _append(where, str(home), n, 0)
    one = time.perf_counter() - start
    start = time.perf_counter()
    workers = [multiprocessing.Process(target=_append, args=(where, str(home / f"m{p}"), n // procs, p + 1))
               for p in range(procs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
        assert w.exitcode == 0, f"an appending process failed ({w.exitcode})"
    many = time.perf_counter() - start
    with _open(where, home) as ledger:
        start = time.perf_counter()
        result = ledger.verify()
        walked = time.perf_counter() - start
    assert result.ok and result.records == n + procs * (n // procs), result.reason
    print(f"{name}: 1 process {n / one:.0f} appends/s ({one / n * 1000:.2f} ms each); {procs} processes at once "
          f"{procs * (n // procs) / many:.0f} appends/s in all; verify {result.records} records {walked * 1000:.0f} ms "
          f"({result.records / walked:.0f} records/s)")
    close_pools()


def main() -> None:
    args = sys.argv[1:]
    n = int(next((a for a in args if a.isdigit() and args.index(a) == 0), "2000"))
    procs = int(args[args.index("--procs") + 1]) if "--procs" in args else 4
    multiprocessing.set_start_method("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        _measure("sqlite", str(Path(tmp) / "ledger.sqlite"), Path(tmp), n, procs)
    if (why := unavailable()) is not None:
        raise SystemExit(f"no PostgreSQL server can be started here: {why}")
    server = PgServer(durable=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _measure("postgresql", server.new_database(), Path(tmp), n, procs)
    finally:
        server.close()


if __name__ == "__main__":
    main()
