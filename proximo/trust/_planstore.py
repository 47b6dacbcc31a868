"""Stored plans, by id. The ledger holds each plan's hash, so an edited plan here is caught at apply.

Kept beside the ledger: an SQLite file in the state directory, or the shared PostgreSQL store (``PROXIMO_DB``),
where every Proximo sees every plan.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import msgspec

from .._types import Plan
from ..errors import BadInput, Refused
from ._ledger import LedgerError
from ._store import SqliteStore, Store

PLAN_ID = re.compile(r"p-[0-9a-f]{12}")  # fullmatch: "$" would let a trailing newline through


def new_plan_id() -> str:
    return "p-" + secrets.token_hex(6)


def check_plan_id(plan_id: object) -> str:
    if not isinstance(plan_id, str) or not PLAN_ID.fullmatch(plan_id):
        raise BadInput(f"not a plan id: {str(plan_id)[:40]!r} (plan ids look like p-0123456789ab)")
    return plan_id


class PlanStore:
    def __init__(self, where: Path | Store) -> None:
        if isinstance(where, Path):
            where.parent.mkdir(parents=True, exist_ok=True)
            # Stored steps keep the params apply must send, storage passwords included: owner-only, from the first
            # byte (SQLite gives its -wal and -shm files the database file's mode).
            os.close(os.open(where, os.O_CREAT | os.O_RDWR, 0o600))
            os.chmod(where, 0o600)
            where = SqliteStore(where)
        self._store: Store = where
        self._run("CREATE TABLE IF NOT EXISTS plans (plan_id TEXT PRIMARY KEY, body " + where.bytes_type + " NOT NULL)")

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> None:
        try:
            with self._store.write() as tx:
                tx.execute(sql, args)
        except self._store.errors as e:
            raise LedgerError(f"the plan store {self._store.where}: {' '.join(str(e).split())}") from None

    def put(self, plan: Plan) -> None:
        self._run("INSERT INTO plans (plan_id, body) VALUES (?, ?)", (plan.plan_id, msgspec.json.encode(plan)))

    def get(self, plan_id: str) -> Plan:
        try:
            rows = self._store.query("SELECT body FROM plans WHERE plan_id = ?", (check_plan_id(plan_id),))
        except self._store.errors as e:
            raise LedgerError(f"the plan store {self._store.where}: {' '.join(str(e).split())}") from None
        if not rows:
            raise Refused(f"no plan {plan_id} (plans live where they were made; see `proximo ledger show`)")
        return msgspec.json.decode(bytes(rows[0][0]), type=Plan)

    def close(self) -> None:
        self._store.close()
