"""Stored plans, by id. The ledger holds each plan's hash, so an edited plan here is caught at apply."""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
from pathlib import Path

import msgspec

from .._types import Plan
from ..errors import BadInput, Refused

PLAN_ID = re.compile(r"p-[0-9a-f]{12}")  # fullmatch: "$" would let a trailing newline through


def new_plan_id() -> str:
    return "p-" + secrets.token_hex(6)


def check_plan_id(plan_id: object) -> str:
    if not isinstance(plan_id, str) or not PLAN_ID.fullmatch(plan_id):
        raise BadInput(f"not a plan id: {str(plan_id)[:40]!r} (plan ids look like p-0123456789ab)")
    return plan_id


class PlanStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Stored steps keep the params apply must send, storage passwords included: owner-only, from the first
        # byte (SQLite gives its -wal and -shm files the database file's mode).
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("CREATE TABLE IF NOT EXISTS plans (plan_id TEXT PRIMARY KEY, body BLOB NOT NULL)")

    def put(self, plan: Plan) -> None:
        self._db.execute("INSERT INTO plans (plan_id, body) VALUES (?, ?)", (plan.plan_id, msgspec.json.encode(plan)))

    def get(self, plan_id: str) -> Plan:
        row = self._db.execute("SELECT body FROM plans WHERE plan_id = ?", (check_plan_id(plan_id),)).fetchone()
        if row is None:
            raise Refused(f"no plan {plan_id} (plans live where they were made; see `proximo ledger show`)")
        return msgspec.json.decode(row[0], type=Plan)

    def close(self) -> None:
        self._db.close()
