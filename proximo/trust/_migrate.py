"""``proximo ledger migrate``: an SQLite ledger (and its stored plans) copied into the shared PostgreSQL store.

Rows are copied as they are stored, so every record keeps its seq, hash and prev: the chain is the same chain, with
the same ledger id, so heads clients kept and anchors already sent still check against it. The source is verified
before (a broken chain is not copied: seal it first) and the target after, by the same code as ``ledger verify``,
and its head must be the source's. The copy is one transaction: a failure leaves the target as it was. The SQLite
files are left in place.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from ._ledger import _COLUMNS, Ledger, LedgerError, LedgerHead
from ._pg import PgStore
from ._planstore import PlanStore
from ._store import SqliteStore


class Migrated(msgspec.Struct, frozen=True):
    records: int
    plans: int
    head: LedgerHead
    target: str  # the DSN, its password redacted


def migrate(source: Ledger, plans_path: Path, target: PgStore, *, key: bytes | None, mark_path: Path) -> Migrated:
    checked = source.verify()
    if not checked.ok:
        raise LedgerError(f"the SQLite ledger {source.where} is broken ({checked.reason}): a broken chain is not copied; "
                          "seal it first (proximo ledger seal)")
    PlanStore(target)  # the plans table, if it is not there yet
    copied_plans = 0
    with target.write() as tx:
        if target.has_tables(tx):
            held = int(tx.execute("SELECT count(*) FROM records").fetchone()[0])
            if held:
                raise LedgerError(f"{target.where} already holds a ledger ({held} records): migrate into a database "
                                  "without one")
            tx.execute("DELETE FROM meta")  # an empty ledger's: its id and key check give way to the copied chain's
        else:
            for statement in target.schema():
                tx.execute(statement)
        for name, value in source.store.query("SELECT name, value FROM meta"):
            if name != "marked":  # the file's mark is the file's; each machine starts its own mark of the shared one
                tx.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (name, value))
        with source.store.snapshot() as rows:
            for batch in rows.stream(f"SELECT {_COLUMNS} FROM records ORDER BY seq"):
                for row in batch:
                    tx.execute(f"INSERT INTO records ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)
        if plans_path.exists():
            plans = SqliteStore(plans_path)
            try:
                for plan_id, body in plans.query("SELECT plan_id, body FROM plans"):
                    tx.execute("INSERT INTO plans (plan_id, body) VALUES (?, ?) ON CONFLICT (plan_id) DO NOTHING",
                               (plan_id, bytes(body)))
                    copied_plans += 1
            finally:
                plans.close()
    with Ledger(target, key=key, mark_path=mark_path) as copy:
        after = copy.verify()
    if not after.ok or after.head != checked.head:
        raise LedgerError(f"the copy in {target.where} does not verify as the source did ({after.reason}; head "
                          f"#{after.head.seq}, the source's #{checked.head.seq})")
    return Migrated(records=after.records, plans=copied_plans, head=after.head, target=target.where)
