"""The PROVE ledger: an append-only, hash-chained SQLite (WAL) log of every plan, approval, apply and undo.

Each record's ``hash`` is SHA-256 (or HMAC-SHA256 with a key) over the canonical JSON of all its other fields,
``prev`` and ``seq`` included, so editing, removing or reordering a row breaks the chain at that row and
:meth:`Ledger.verify` names it. Two limits are worth knowing:

- Without a key, anyone who can write the file can rewrite the whole chain consistently. A key (kept away
  from the file) or a head a client saw (``verify(expected_head=...)``) is what makes that detectable.
- Removing records from the end leaves a valid, shorter chain. Every answer to a client carries the head,
  so the client's transcript is the witness: ``verify(expected_head=head)`` checks it is still in the chain.

Secrets never reach the file: :func:`redact` runs on params, outcome and impacts before anything is hashed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, get_args

import msgspec

from .errors import ProximoError

__all__ = [
    "GENESIS",
    "Actor",
    "Ledger",
    "LedgerError",
    "LedgerHead",
    "LedgerKind",
    "LedgerRecord",
    "REDACTED",
    "VerifyResult",
    "is_secret_key",
    "redact",
]

LedgerKind = Literal["plan", "approve", "deny", "apply-start", "apply-result", "undo", "exec"]
_KINDS: frozenset[str] = frozenset(get_args(LedgerKind))

GENESIS = "0" * 64
"""The ``prev`` of record 1, and the head hash of an empty ledger."""

_FORMAT = "proximo-ledger/1"
_KEY_CHECK_MESSAGE = b"proximo-ledger key check"  # never a record's canonical JSON, which starts with "{"
_BATCH = 500
_BUSY_TIMEOUT_MS = 30_000

_COLUMNS = "seq, time, kind, actor, tool, params, plan_id, plan_hash, impacts, outcome, prev, hash"
_SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE records (
        seq INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        tool TEXT NOT NULL,
        params TEXT NOT NULL,
        plan_id TEXT NOT NULL,
        plan_hash TEXT NOT NULL,
        impacts TEXT NOT NULL,
        outcome TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    "CREATE INDEX records_by_plan ON records (plan_id, kind)",
    "CREATE INDEX records_by_kind ON records (kind, plan_id)",
    "CREATE TRIGGER records_no_update BEFORE UPDATE ON records"
    " BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
    "CREATE TRIGGER records_no_delete BEFORE DELETE ON records"
    " BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
)
# The triggers stop accidents, not attackers (they can be dropped); the chain is what detects tampering.


class LedgerError(ProximoError):
    """The ledger cannot be opened, read or written; ``str(error)`` is one line for a person."""


class Actor(msgspec.Struct, frozen=True):
    """Who asked: Proximo's token, through which face, from which client."""

    token_id: str
    face: str  # "cli" | "mcp" | "a2a" | "demo" | ...
    client: str = ""


class LedgerRecord(msgspec.Struct, frozen=True):
    """One entry; ``hash`` covers every other field, so the record is evidence on its own."""

    seq: int
    time: str  # ISO-8601 UTC, "Z"
    kind: LedgerKind
    actor: Actor
    tool: str
    params: dict[str, Any]  # already redacted
    plan_id: str
    plan_hash: str
    impacts: list[dict[str, Any]]
    outcome: dict[str, Any]
    prev: str
    hash: str


class LedgerHead(msgspec.Struct, frozen=True):
    """The last record's seq and hash: what clients keep to witness the chain later."""

    seq: int
    hash: str
    chain: str  # "sha256" | "hmac-sha256"


class VerifyResult(msgspec.Struct, frozen=True):
    """The outcome of walking the chain; ``first_broken`` is the first seq a person should look at."""

    ok: bool
    records: int
    first_broken: int | None
    reason: str
    head: LedgerHead


# --- redaction ----------------------------------------------------------------------------------------

REDACTED = "***redacted***"

# A key is secret when its letters (lower-cased, separators dropped) contain one of these ...
_SECRET_PARTS = (
    "password",  # password, cipassword, confirmation-password, bind_password
    "passwd",
    "passphrase",
    "secret",  # secret, client_secret, token-secret, tokensecret
    "keyring",  # Ceph keyring
    "privatekey",
    "authkey",  # corosync_authkey
    "credential",
    "ticket",  # ticket, vncticket: PVE session tickets
    "cookie",
)
# ... or when its last word is one of these (words split at separators and camelCase; digits ignored),
# unless the word before it says the key is public.
_SECRET_LAST_WORDS = frozenset({"key", "token", "authorization", "otp", "totp"})
_PUBLIC_WORDS = frozenset({"public", "pub"})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
# Strings that carry a PVE credential, whatever key they sit under.
_SECRET_VALUE = re.compile(
    r"PVEAPIToken=|PVEAuthCookie="
    r"|![\w.-]+=[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",  # user@realm!tokenid=UUID
    re.IGNORECASE,
)


def is_secret_key(name: str) -> bool:
    """Whether a parameter name holds a secret.

    Secret: ``password``, ``cipassword``, ``secret``, ``token-secret``, ``keyring``, ``key``,
    ``encryption-key``, ``client-key``, ``eab-hmac-key``, ``apiKey``, ``token``, ``CSRFPreventionToken``,
    ``ticket``, ``otp``. Not secret: ``keys``, ``sshkeys``, ``ssh-public-keys``, ``master-pubkey``,
    ``public_key``, ``keyboard``, ``features.keyctl``, ``tokenid``, ``token_id``, ``tokens``, ``fingerprint``,
    ``digest``.
    """
    letters = "".join(ch for ch in name.lower() if ch.isalnum())
    if any(part in letters for part in _SECRET_PARTS):
        return True
    words = [w.lower() for w in _WORD.findall(name) if not w.isdigit()]
    if not words or words[-1] not in _SECRET_LAST_WORDS:
        return False
    return len(words) < 2 or words[-2] not in _PUBLIC_WORDS


def redact(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with secrets replaced by ``***redacted***``, at any depth.

    Values under a secret key (see :func:`is_secret_key`) are replaced unless they are a bool or null,
    which carry no secret and show whether a secret was set; any string holding a PVE credential
    (``PVEAPIToken=...``, ``PVEAuthCookie=...``, ``user@realm!tokenid=UUID``) is replaced whole. The answer
    to creating an API token (``{"full-tokenid", "info", "value"}``) has its secret under ``value``: redacted.
    """
    token_answer = "full-tokenid" in params and "value" in params
    return {str(k): _redact_value(v, secret=is_secret_key(str(k)) or (token_answer and k == "value")) for k, v in params.items()}


def _redact_value(value: Any, *, secret: bool) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if secret:
        return REDACTED
    if isinstance(value, str):
        return REDACTED if _SECRET_VALUE.search(value) else value
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_redact_value(v, secret=False) for v in value]
    return value


# --- hashing ------------------------------------------------------------------------------------------


def _canonical(record: LedgerRecord) -> bytes:
    """Sorted-key, whitespace-free UTF-8 JSON of every field but ``hash``."""
    fields = msgspec.structs.asdict(record)
    del fields["hash"]
    return msgspec.json.encode(fields, order="sorted")


def _same(a: str, b: str) -> bool:
    """Constant-time equality that survives whatever an edited row holds."""
    return hmac.compare_digest(a.encode(), b.encode())


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_tree(value: Any, what: str) -> Any:
    """Plain JSON data (str keys, lists), exactly as it will read back from the file."""
    try:
        return msgspec.json.decode(msgspec.json.encode(msgspec.to_builtins(value, str_keys=True)))
    except (TypeError, ValueError, msgspec.MsgspecError) as e:
        raise LedgerError(f"cannot record {what}: {_one_line(e)}") from None


def _json_object(value: Any, what: str) -> dict[str, Any]:
    tree = _json_tree(value, what)
    if not isinstance(tree, dict):
        raise LedgerError(f"{what} must be an object, not {type(value).__name__}")
    return tree


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# --- the ledger ---------------------------------------------------------------------------------------


class Ledger:
    """One ledger file. Safe to share between threads; any number of processes may append to one file."""

    def __init__(self, path: str | os.PathLike[str], key: bytes | None = None) -> None:
        self.path = Path(path)
        if key is not None:
            if not isinstance(key, bytes | bytearray | memoryview):
                raise LedgerError("the ledger key must be bytes")
            key = bytes(key)
            if not key:
                raise LedgerError("the ledger key is empty (unset PROXIMO_LEDGER_KEY for an unkeyed ledger)")
        self._key = key
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                # Audit data is nobody else's business; SQLite gives the -wal/-shm files the same mode.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            self._db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            mode = self._switch_to_wal(self._db)
            if mode.lower() != "wal":
                raise LedgerError(f"ledger {self.path}: cannot use WAL mode here (journal mode is {mode})")
            # FULL: a committed apply-start survives power loss, so a crash mid-apply is never silent.
            self._db.execute("PRAGMA synchronous=FULL")
            self.chain, stored_check = self._open_meta()
            self._ledger_id = self._read_ledger_id()
        except LedgerError:
            self.close()
            raise
        except (OSError, sqlite3.Error) as e:
            self.close()
            raise LedgerError(f"cannot open ledger {self.path}: {_one_line(e)}") from None
        self._key_matches = key is None or _same(stored_check, self._key_check())

    @staticmethod
    def _switch_to_wal(db: sqlite3.Connection) -> str:
        """Set WAL mode, retrying: SQLite answers "locked" at once, not after busy_timeout, while another
        process is switching the same new file."""
        deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                return str(db.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _open_meta(self) -> tuple[str, str]:
        """Create the schema on a new file, or check an existing one is a ledger of the right kind."""
        db = self._conn()
        want = "hmac-sha256" if self._key else "sha256"
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                for statement in _SCHEMA:
                    db.execute(statement)
                db.executemany(
                    "INSERT INTO meta (name, value) VALUES (?, ?)",
                    [("format", _FORMAT), ("chain", want), ("key_check", self._key_check() if self._key else "")],
                )
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
            db.execute("COMMIT")
        except BaseException as e:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(e, sqlite3.OperationalError) and "no such table" in str(e):
                raise LedgerError(f"{self.path} is an SQLite file but not a Proximo ledger") from None
            raise
        if meta.get("format") != _FORMAT:
            raise LedgerError(f"{self.path}: unsupported ledger format {meta.get('format')!r} (want {_FORMAT})")
        chain = meta.get("chain")
        if chain != want:
            if chain == "hmac-sha256":
                raise LedgerError(f"ledger {self.path} is HMAC-chained: set PROXIMO_LEDGER_KEY to open it")
            if chain == "sha256":
                raise LedgerError(f"ledger {self.path} is not keyed: unset PROXIMO_LEDGER_KEY to open it")
            raise LedgerError(f"ledger {self.path} has an unknown chain kind {chain!r}")
        return chain, str(meta.get("key_check", ""))

    def _read_ledger_id(self) -> str:
        """This chain's random id (anchors name it); a ledger made before ids existed gets one now."""
        db = self._conn()
        db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('ledger_id', ?)", (secrets.token_hex(16),))
        return str(db.execute("SELECT value FROM meta WHERE name = 'ledger_id'").fetchone()[0])

    @property
    def ledger_id(self) -> str:
        """32 hex characters naming this chain (not part of the chain: anchors are what pin it)."""
        return self._ledger_id

    def _key_check(self) -> str:
        assert self._key is not None
        return hmac.new(self._key, _KEY_CHECK_MESSAGE, hashlib.sha256).hexdigest()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise LedgerError("the ledger is closed")
        if os.getpid() != self._pid:
            raise LedgerError("this ledger was opened in another process: open it again after fork")
        return self._db

    def _digest(self, canonical: bytes) -> str:
        if self._key is None:
            return hashlib.sha256(canonical).hexdigest()
        return hmac.new(self._key, canonical, hashlib.sha256).hexdigest()

    # --- writing --------------------------------------------------------------------------------------

    def append(
        self,
        kind: LedgerKind,
        *,
        actor: Actor,
        tool: str = "",
        params: Mapping[str, Any] | None = None,
        plan_id: str = "",
        plan_hash: str = "",
        impacts: Iterable[Any] = (),
        outcome: Mapping[str, Any] | None = None,
        once: bool = False,
    ) -> LedgerRecord | None:
        """Add one record at the head; secrets in params, outcome and impacts are redacted first.

        With ``once``, the record is added only if the plan has no record of this kind yet, checked under the
        write lock: two processes applying one plan cannot both write its apply-start. Returns None then.
        """
        if kind not in _KINDS:
            raise LedgerError(f"unknown ledger record kind {kind!r} (one of: {', '.join(sorted(_KINDS))})")
        if not isinstance(actor, Actor):
            raise LedgerError(f"actor must be an Actor, not {type(actor).__name__}")
        try:  # a Struct does not check its field types when built; a record must read back
            msgspec.convert(msgspec.to_builtins(actor), Actor)
        except msgspec.ValidationError as e:
            raise LedgerError(f"actor: {_one_line(e)}") from None
        for name, text in (("tool", tool), ("plan_id", plan_id), ("plan_hash", plan_hash)):
            if not isinstance(text, str):
                raise LedgerError(f"{name} must be a string, not {type(text).__name__}")
        if not self._key_matches:
            raise LedgerError(f"the ledger key is not the one ledger {self.path} was created with")
        clean_params = redact(_json_object(params or {}, "params"))
        clean_outcome = redact(_json_object(outcome or {}, "outcome"))
        clean_impacts = [redact(_json_object(i, "each impact")) for i in impacts]
        with self._lock:
            db = self._conn()
            try:
                # IMMEDIATE takes the write lock before reading the head, so concurrent appenders queue up.
                db.execute("BEGIN IMMEDIATE")
                try:
                    if once and db.execute("SELECT 1 FROM records WHERE plan_id = ? AND kind = ? LIMIT 1",
                                           (plan_id, kind)).fetchone():
                        db.execute("ROLLBACK")
                        return None
                    row = db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
                    seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
                    unsigned = LedgerRecord(
                        seq=seq,
                        time=_now(),
                        kind=kind,
                        actor=actor,
                        tool=tool,
                        params=clean_params,
                        plan_id=plan_id,
                        plan_hash=plan_hash,
                        impacts=clean_impacts,
                        outcome=clean_outcome,
                        prev=prev,
                        hash="",
                    )
                    record = msgspec.structs.replace(unsigned, hash=self._digest(_canonical(unsigned)))
                    db.execute(f"INSERT INTO records ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", _row(record))
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise LedgerError(f"cannot append to ledger {self.path}: {_one_line(e)}") from None
        return record

    # --- reading --------------------------------------------------------------------------------------

    def head(self) -> LedgerHead:
        """The last record's seq and hash (seq 0 and :data:`GENESIS` when empty)."""
        row = self._query("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1")
        return LedgerHead(seq=row[0][0], hash=row[0][1], chain=self.chain) if row else self._empty_head()

    def get(self, seq: int) -> LedgerRecord | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM records WHERE seq = ?", (seq,))
        return _decode(rows[0]) if rows else None

    def tail(self, n: int = 20) -> list[LedgerRecord]:
        """The last ``n`` records, newest last."""
        if n <= 0:
            return []
        rows = self._query(f"SELECT {_COLUMNS} FROM records ORDER BY seq DESC LIMIT ?", (n,))
        return [_decode(row) for row in reversed(rows)]

    def records(self, *, since: int = 1) -> Iterator[LedgerRecord]:
        """Every record from seq ``since`` on, read in batches so appends are never held up."""
        after = since - 1
        while True:
            rows = self._query(
                f"SELECT {_COLUMNS} FROM records WHERE seq > ? ORDER BY seq LIMIT ?", (after, _BATCH)
            )
            for row in rows:
                yield _decode(row)
            if len(rows) < _BATCH:
                return
            after = rows[-1][0]

    def find(self, *, plan_id: str, kind: LedgerKind | None = None) -> list[LedgerRecord]:
        """The records of one plan, oldest first, optionally of one kind."""
        if kind is None:
            rows = self._query(f"SELECT {_COLUMNS} FROM records WHERE plan_id = ? ORDER BY seq", (plan_id,))
        else:
            rows = self._query(
                f"SELECT {_COLUMNS} FROM records WHERE plan_id = ? AND kind = ? ORDER BY seq", (plan_id, kind)
            )
        return [_decode(row) for row in rows]

    def open_applies(self) -> list[LedgerRecord]:
        """apply-start records with no apply-result for their plan after them: applies a crash interrupted."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM records AS s WHERE s.kind = 'apply-start' AND NOT EXISTS ("
            " SELECT 1 FROM records AS r"
            " WHERE r.kind = 'apply-result' AND r.plan_id = s.plan_id AND r.seq > s.seq"
            ") ORDER BY s.seq"
        )
        return [_decode(row) for row in rows]

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn().execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise LedgerError(f"cannot read ledger {self.path}: {_one_line(e)}") from None

    def _empty_head(self) -> LedgerHead:
        return LedgerHead(seq=0, hash=GENESIS, chain=self.chain)

    # --- verifying ------------------------------------------------------------------------------------

    def verify(self, expected_head: LedgerHead | None = None) -> VerifyResult:
        """Walk the chain in seq order and name the first broken record.

        ``expected_head`` is a head a client was given earlier; it must still be in the chain, which also
        catches records removed from the end (the chain alone cannot).
        """
        count = 0
        broken: tuple[int, str] | None = None
        witness: tuple[int, str] | None = None
        last_seq, last_hash = 0, GENESIS
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN")  # one snapshot: appends by others during the walk are not seen
                try:
                    cursor = db.execute(f"SELECT {_COLUMNS} FROM records ORDER BY seq")
                    while rows := cursor.fetchmany(_BATCH):
                        for row in rows:
                            count += 1
                            if broken is None:
                                broken = self._check(row, last_seq, last_hash)
                            last_seq, last_hash = row[0], str(row[11])
                    if expected_head is not None:
                        witness = self._check_witness(db, expected_head, last_seq)
                finally:
                    db.execute("COMMIT")
            except sqlite3.Error as e:
                raise LedgerError(f"cannot read ledger {self.path}: {_one_line(e)}") from None
        if witness is not None and (broken is None or witness[0] < broken[0]):
            broken = witness
        head = LedgerHead(seq=last_seq, hash=last_hash, chain=self.chain) if count else self._empty_head()
        if broken is None:
            reason = f"{count} record{'s' if count != 1 else ''}, chain intact" if count else "empty ledger"
            return VerifyResult(ok=True, records=count, first_broken=None, reason=reason, head=head)
        seq, reason = broken
        if not self._key_matches and seq == 1:
            reason += " (the key is not the one this ledger was created with)"
        return VerifyResult(ok=False, records=count, first_broken=seq, reason=reason, head=head)

    def _check(self, row: tuple[Any, ...], last_seq: int, last_hash: str) -> tuple[int, str] | None:
        """The first problem with one row given the row before it, as (seq to name, reason)."""
        seq = row[0]
        if seq != last_seq + 1:
            missing = f"record {last_seq + 1} is" if seq == last_seq + 2 else f"records {last_seq + 1}..{seq - 1} are"
            return seq, f"record {seq}: {missing} missing before it"
        try:
            record = _decode(row)
        except LedgerError as e:
            return seq, str(e)
        if not _same(self._digest(_canonical(record)), record.hash):
            return seq, f"record {seq}: hash does not match its content"
        if record.prev != last_hash:
            if seq == 1:
                return seq, "record 1: prev is not the genesis value"
            return seq, f"record {seq}: prev does not match the hash of record {last_seq}"
        return None

    def _check_witness(self, db: sqlite3.Connection, head: LedgerHead, last_seq: int) -> tuple[int, str] | None:
        """A head handed out earlier must still be in the chain, with the same hash."""
        if head.chain != self.chain:
            return max(head.seq, 1), f"the head a client saw is {head.chain}-chained, this ledger is {self.chain}"
        if head.seq <= 0:
            return None if head.hash == GENESIS else (1, "the empty head a client saw has a non-genesis hash")
        row = db.execute("SELECT hash FROM records WHERE seq = ?", (head.seq,)).fetchone()
        if row is None:
            if head.seq > last_seq:
                return last_seq + 1, (
                    f"record {last_seq + 1}: missing; the ledger ends at {last_seq} but a client saw head {head.seq}"
                )
            return head.seq, f"record {head.seq}: missing, but a client saw it as the head"
        if not _same(str(row[0]), head.hash):
            return head.seq, f"record {head.seq}: hash differs from the head a client saw ({head.hash[:12]}...)"
        return None

    # --- lifetime -------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                if os.getpid() == self._pid:
                    self._db.close()
                self._db = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r}, chain={getattr(self, 'chain', '?')!r})"


def _row(record: LedgerRecord) -> tuple[Any, ...]:
    """A record as the table's columns; JSON columns are canonical so the file reads like the hash input."""

    def canon(value: Any) -> str:
        return msgspec.json.encode(value, order="sorted").decode()

    return (
        record.seq,
        record.time,
        record.kind,
        canon(record.actor),
        record.tool,
        canon(record.params),
        record.plan_id,
        record.plan_hash,
        canon(record.impacts),
        canon(record.outcome),
        record.prev,
        record.hash,
    )


def _decode(row: tuple[Any, ...]) -> LedgerRecord:
    """A row back into a record, checking every type: an edited row may hold anything."""
    try:
        actor, params, impacts, outcome = (msgspec.json.decode(row[i]) for i in (3, 5, 8, 9))
        return msgspec.convert(
            {
                "seq": row[0],
                "time": row[1],
                "kind": row[2],
                "actor": actor,
                "tool": row[4],
                "params": params,
                "plan_id": row[6],
                "plan_hash": row[7],
                "impacts": impacts,
                "outcome": outcome,
                "prev": row[10],
                "hash": row[11],
            },
            LedgerRecord,
        )
    except (TypeError, ValueError, msgspec.MsgspecError) as e:
        raise LedgerError(f"record {row[0]}: unreadable ({_one_line(e)})") from None
