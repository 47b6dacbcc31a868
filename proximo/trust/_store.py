"""Where the ledger and the plans are kept: the small interface both stores give, and the SQLite one.

The chain (hashing, verifying, the high-water mark) is the ledger's own code (``proximo.trust._ledger``); a store
only runs SQL. Statements are written once, with ``?`` placeholders, in the SQL both SQLite and PostgreSQL take;
the PostgreSQL store (``proximo.trust._pg``, ``PROXIMO_DB=postgresql://...``) turns them into its own.

What a store promises:

- ``write()``: a transaction serialised with every other ``write()`` on the same ledger, in any process on any
  machine that can reach it (SQLite: ``BEGIN IMMEDIATE`` on the file; PostgreSQL: an advisory transaction lock).
  The ledger reads the head and appends under it, so two appenders never take the same seq.
- ``snapshot()``: one consistent view for a walk of the chain (appends by others meanwhile are not seen).
- ``query()``: one read on its own.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Rows", "SqliteStore", "Store", "Tx", "set_aside_file"]

_BUSY_TIMEOUT_MS = 30_000


class Rows(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Tx(Protocol):
    """One transaction (or one connection outside any): statements with ``?`` placeholders."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Rows: ...

    def stream(self, sql: str, args: Sequence[Any] = (), batch: int = 500) -> Iterator[list[Any]]:
        """The rows of one query in batches, without holding them all (a million-record walk)."""
        ...


class Store(Protocol):
    where: str  # what messages name: a file path, or a DSN without its password
    shared: bool  # appended to from several machines: no local file can say where the head must be
    bytes_type: str  # the column type for bytes (a stored plan's body)
    errors: tuple[type[Exception], ...]  # what its driver raises

    def write(self) -> Any: ...  # a context manager giving a Tx, serialised with every appender

    def snapshot(self) -> Any: ...  # a context manager giving a Tx that sees one state

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]: ...

    def has_tables(self, tx: Tx) -> bool: ...

    def schema(self) -> Sequence[str]: ...

    def replaced(self) -> bool: ...  # another file at its path now (a seal set the old one aside): reopen

    def reopen(self) -> None: ...

    def set_aside(self, stamp: str) -> tuple[str, str]: ...  # keep a broken ledger as evidence: (its name, a digest)

    def close(self) -> None: ...


class _SqliteTx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Rows:
        return self._db.execute(sql, tuple(args))

    def stream(self, sql: str, args: Sequence[Any] = (), batch: int = 500) -> Iterator[list[Any]]:
        cursor = self._db.execute(sql, tuple(args))
        while rows := cursor.fetchmany(batch):
            yield rows


class SqliteStore:
    """One SQLite file in WAL mode, owner-only; any number of processes on this machine may share it."""

    shared = False
    bytes_type = "BLOB"
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, path: str | os.PathLike[str], *, schema: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self._schema = tuple(schema)
        self._db: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self.reopen()

    def reopen(self) -> None:
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Audit data and stored plans are nobody else's business; SQLite gives the -wal/-shm files the same mode.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        self._db = db
        info = os.stat(self.path)
        self._identity = (info.st_dev, info.st_ino)
        db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        mode = _switch_to_wal(db)
        if mode.lower() != "wal":
            raise sqlite3.OperationalError(f"cannot use WAL mode here (journal mode is {mode})")
        # FULL: a committed apply-start survives power loss, so a crash mid-apply is never silent.
        db.execute("PRAGMA synchronous=FULL")

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("the store is closed")
        return self._db

    @contextmanager
    def write(self) -> Iterator[Tx]:
        # IMMEDIATE takes the write lock before anything is read, so concurrent appenders queue up.
        yield from self._transaction("BEGIN IMMEDIATE")

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        yield from self._transaction("BEGIN")

    def _transaction(self, begin: str) -> Iterator[Tx]:
        db = self._conn()
        db.execute(begin)
        try:
            yield _SqliteTx(db)
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._conn().execute(sql, tuple(args)).fetchall()

    def has_tables(self, tx: Tx) -> bool:
        return bool(tx.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])

    def schema(self) -> Sequence[str]:
        return self._schema

    def replaced(self) -> bool:
        if self._db is None or self._db.in_transaction:
            return False
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (info.st_dev, info.st_ino) != self._identity

    def set_aside(self, stamp: str) -> tuple[str, str]:
        self.close()
        return set_aside_file(self.path, stamp)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def set_aside_file(path: Path, stamp: str) -> tuple[str, str]:
    """Rename an SQLite file (with its -wal and -shm) to ``<name>.sealed-<stamp>``; never delete it: it is the evidence."""
    sealed = path.with_name(f"{path.name}.sealed-{stamp}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            os.replace(f"{path}{suffix}", f"{sealed}{suffix}")
    return str(sealed), digest


def _switch_to_wal(db: sqlite3.Connection) -> str:
    """Set WAL mode, retrying: SQLite answers "locked" at once, not after busy_timeout, while another process is
    switching the same new file."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return str(db.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
