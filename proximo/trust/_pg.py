"""The shared store on PostgreSQL (``PROXIMO_DB=postgresql://...``): one ledger, one plan store, many Proximos.

Every Proximo process on every machine with the same ``PROXIMO_DB`` appends to one chain: an append takes a
transaction-scoped advisory lock (``pg_advisory_xact_lock``) before it reads the head, so appends are serialised
by the database itself, whoever makes them. A partial unique index allows one ``apply-start`` record per plan:
whatever a process does, the database never holds two starts of one plan.

The chain, its verification and the high-water mark are the ledger's own code (``proximo.trust._ledger``); this
module only runs SQL. Connections come from a pool (psycopg 3's), one per DSN and process, so a server that opens
a host per call does not connect per call. The DSN's password never leaves this module: every message names the
DSN with its password replaced (:func:`redact_dsn`).

psycopg is the ``postgres`` extra (``pip install 'proximo-proxmox[postgres]'``): imported only when PROXIMO_DB is set.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import re
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._ledger import REDACTED, LedgerError, LedgerUnreachable, ledger_tables
from ._store import Rows, Tx

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["PgStore", "SCHEMES", "dsn_password", "open_store", "redact_dsn"]

SCHEMES = ("postgresql://", "postgres://")
# One key for the whole ledger: every appender, in every process and on every machine, queues on it. Advisory
# locks belong to one database, so two ledgers in two databases of one server do not wait for each other.
_APPEND_LOCK = 0x70726F78696D6F  # "proximo"
_POOL_MAX = 4

_SCHEMA = (
    *ledger_tables("BIGINT"),
    # Never one plan applied twice, whatever a process does: the database holds one apply-start per plan.
    "CREATE UNIQUE INDEX records_one_apply_start ON records (plan_id) WHERE kind = 'apply-start'",
    "CREATE OR REPLACE FUNCTION proximo_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN RAISE EXCEPTION 'the ledger is append-only'; END $$",
    "CREATE TRIGGER records_no_change BEFORE UPDATE OR DELETE ON records FOR EACH ROW EXECUTE FUNCTION proximo_append_only()",
    "CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON records FOR EACH STATEMENT EXECUTE FUNCTION proximo_append_only()",
)
# As with SQLite, the triggers stop accidents, not the database's owner (who can drop them): the chain, the key and
# the anchors are what detect a rewrite (docs/trust-model.md).
_SEALED_NAMES = ("records", "meta", "records_pkey", "meta_pkey", "records_by_plan", "records_by_kind", "records_one_apply_start")
_SEALED_INDEXES = frozenset(_SEALED_NAMES[2:])


# --- the DSN, kept secret -----------------------------------------------------------------------------

_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def dsn_password(dsn: str) -> str:
    """The password a DSN carries ("" if none), as the server would get it."""
    if dsn.startswith(SCHEMES):
        parts = urllib.parse.urlsplit(dsn)
        query = urllib.parse.parse_qs(parts.query)
        if "password" in query:
            return query["password"][-1]
        return urllib.parse.unquote(parts.password or "")
    found = _KV_PASSWORD.search(dsn)
    return found.group(2).strip("'") if found else ""


def redact_dsn(dsn: str) -> str:
    """The DSN as messages may show it: user, host, port, database and options, the password replaced."""
    if dsn.startswith(SCHEMES):
        parts = urllib.parse.urlsplit(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hosts = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{REDACTED}@{hosts}" if ":" in userinfo else f"{user}@{hosts}"
        query = "&".join(f"{k}={REDACTED if k == 'password' else urllib.parse.quote(v, safe='')}"
                         for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    return _KV_PASSWORD.sub(lambda m: m.group(1) + REDACTED, dsn)


# --- the pool -----------------------------------------------------------------------------------------

# The pool logs each failed connection attempt as a WARNING (libpq's line: host and port, never the password). With no
# logging set up (the CLI), Python would print those to stderr around our one line: they go where logging is set up
# (servers, --debug), and nowhere else.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())

_pools: dict[tuple[str, int], ConnectionPool] = {}
_pools_lock = threading.Lock()


def _pool(dsn: str, timeout: float) -> ConnectionPool:
    """One pool per DSN and process (a forked child must not share its parent's connections)."""
    from psycopg_pool import ConnectionPool

    key = (dsn, os.getpid())
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = ConnectionPool(dsn, min_size=1, max_size=_POOL_MAX, open=True, timeout=timeout, name="proximo",
                                  kwargs={"connect_timeout": max(1, int(timeout)), "application_name": "proximo"},
                                  check=ConnectionPool.check_connection)
            if not _pools:
                atexit.register(_close_pools)
            _pools[key] = pool
        return pool


def _drop_pool(dsn: str, pool: ConnectionPool) -> None:
    """Forget a pool that could not give a connection: the next call makes a new one, which connects at once.

    The old one would retry with a growing back-off (minutes), refusing every plan for a while after the database
    is back.
    """
    with _pools_lock:
        if _pools.get((dsn, os.getpid())) is pool:
            del _pools[(dsn, os.getpid())]
    pool.close(timeout=0)


def _close_pools() -> None:
    with _pools_lock:
        for (_, pid), pool in list(_pools.items()):
            if pid == os.getpid():
                pool.close(timeout=1)
        _pools.clear()


def close_pools() -> None:
    """Close this process's connections (tests stopping a server; the pools also close at exit)."""
    _close_pools()


# --- the store ----------------------------------------------------------------------------------------


def _sql(statement: str) -> str:
    """Our statements use ``?`` (SQLite's); psycopg's placeholder is ``%s``. None of them holds a literal ``?`` or ``%``."""
    return statement.replace("?", "%s")


class _PgTx:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Rows:
        return self._conn.execute(_sql(sql), tuple(args) or None)

    def stream(self, sql: str, args: Sequence[Any] = (), batch: int = 500) -> Iterator[list[Any]]:
        with self._conn.cursor(name="proximo_walk") as cursor:  # server-side: a million records are not all held here
            cursor.execute(_sql(sql), tuple(args) or None)
            while rows := cursor.fetchmany(batch):
                yield rows


class PgStore:
    """One PostgreSQL database holding the ledger and the plans, shared by every Proximo that names it."""

    shared = True
    bytes_type = "BYTEA"

    def __init__(self, dsn: str, *, timeout: float = 5.0) -> None:
        import psycopg
        from psycopg_pool import PoolTimeout

        self._dsn = dsn
        self._password = dsn_password(dsn)
        self.where = redact_dsn(dsn)
        self.errors: tuple[type[Exception], ...] = (psycopg.Error,)
        self._unreachable: tuple[type[Exception], ...] = (psycopg.OperationalError,)
        self._no_connection = PoolTimeout
        self._timeout = timeout
        _pool(dsn, timeout)  # opened now, so it connects while the host gets ready

    def _say(self, error: BaseException) -> str:
        text = " ".join(str(error).split()) or type(error).__name__
        if self._password and len(self._password) >= 4:
            text = text.replace(self._password, REDACTED)
        return text

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        pool = _pool(self._dsn, self._timeout)
        try:
            with pool.connection() as conn:
                yield conn
        except self._unreachable as e:
            _drop_pool(self._dsn, pool)
            if isinstance(e, self._no_connection):  # "couldn't get a connection": ask once ourselves, for libpq's reason
                e = self._why_not() or e
            raise LedgerUnreachable(f"the shared store {self.where} is unreachable ({self._say(e)}): plans and applies are "
                                    "refused until it is back; reads still answer") from None
        except self.errors as e:  # the driver's own text may quote the statement, never the DSN; scrubbed all the same
            raise LedgerError(f"the shared store {self.where}: {self._say(e)}") from None

    def _why_not(self) -> Exception | None:
        """Why a connection fails now (refused, authentication, name resolution), or None if one succeeds."""
        import psycopg

        try:
            psycopg.connect(self._dsn, connect_timeout=max(1, int(self._timeout)), application_name="proximo").close()
        except psycopg.Error as e:
            return e
        return None

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK,))  # released at commit or rollback
            yield _PgTx(conn)

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        with self._connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield _PgTx(conn)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._connection() as conn:
            return conn.execute(_sql(sql), tuple(args) or None).fetchall()

    def has_tables(self, tx: Tx) -> bool:
        return bool(tx.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0])

    def schema(self) -> Sequence[str]:
        return _SCHEMA

    def chain(self) -> str | None:
        """The chain kind of the ledger this database holds (None: no ledger yet), read without creating one."""
        with self._connection() as conn:
            if not conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]:  # type: ignore[index]
                return None
            row = conn.execute("SELECT value FROM meta WHERE name = 'chain'").fetchone()
            return None if row is None else str(row[0])

    def replaced(self) -> bool:
        return False  # a database is not swapped under an open connection the way a file is

    def reopen(self) -> None:
        pass

    def set_aside(self, stamp: str) -> tuple[str, str]:
        """Rename the ledger's tables (and their indexes) to ``<name>_sealed_<stamp>``: kept as evidence, never dropped."""
        suffix = "_sealed_" + stamp.lower()
        with self.write() as tx:
            digest = hashlib.sha256()
            for rows in tx.stream("SELECT hash FROM records ORDER BY seq"):
                for (value,) in rows:
                    digest.update(str(value).encode())
            for name in _SEALED_NAMES:
                what = "INDEX" if name in _SEALED_INDEXES else "TABLE"
                tx.execute(f"ALTER {what} {name} RENAME TO {name}{suffix}")
        return f"{self.where} (tables records{suffix}, meta{suffix})", digest.hexdigest()

    def close(self) -> None:
        pass  # the pool is the process's, shared by every ledger and plan store on this DSN (closed at exit)


def open_store(dsn: str, *, timeout: float = 5.0) -> PgStore:
    try:
        return PgStore(dsn, timeout=timeout)
    except ImportError:
        raise LedgerError("PROXIMO_DB names PostgreSQL, but psycopg is not installed: "
                          "pip install 'proximo-proxmox[postgres]' (or unset PROXIMO_DB for the SQLite ledger)") from None
