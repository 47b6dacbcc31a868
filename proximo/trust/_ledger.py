"""The PROVE ledger: an append-only, hash-chained log of every plan, approval, apply and undo.

It is kept in a store (``proximo.trust._store``): an SQLite file in WAL mode by default, or a PostgreSQL database
shared by many Proximo processes on many machines (``PROXIMO_DB``, ``proximo.trust._pg``). The chain logic below
is the same for both; a store only runs the SQL.

Each record's ``hash`` is SHA-256 (or HMAC-SHA256 with a key) over the canonical JSON of all its other fields,
``prev`` and ``seq`` included, so editing, removing or reordering a row breaks the chain at that row and
:meth:`Ledger.verify` names it. What the chain alone cannot see, and what covers it:

- Without a key, anyone who can write the file can rewrite the whole chain consistently. Proximo keys its
  ledger by default (the key lives in the state directory, see ``proximo.trust._state``); a head a client saw
  (``verify(expected_head=...)``) and the anchors (``proximo.trust._anchors``) witness it from outside.
- Removing records from the end, or truncating the file, leaves a valid, shorter chain. The *high-water mark*
  (``<ledger>.hwm``, outside the SQLite file) keeps the ledger's id and the highest seq and hash ever written,
  so both are caught; so does a head a client kept, and the anchors.

Apply relies on the ledger, so it calls :meth:`Ledger.check`: an incremental walk from the last verified
checkpoint (kept in the mark) to the head. A break found by ``check`` or by a full :meth:`Ledger.verify` is
written into the mark and stops every apply until a person seals the ledger (:func:`seal`: a new chain whose
first record names the broken one).

Secrets never reach the file: :func:`redact` runs on params, outcome and impacts before anything is hashed.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, get_args

import msgspec

from ..errors import ProximoError
from ._store import SqliteStore, Store, Tx, set_aside_file

__all__ = [
    "GENESIS",
    "Actor",
    "Ledger",
    "LedgerError",
    "LedgerHead",
    "LedgerKind",
    "LedgerRecord",
    "LedgerUnreachable",
    "REDACTED",
    "VerifyResult",
    "is_secret_key",
    "redact",
    "seal",
]

LedgerKind = Literal["plan", "approve", "deny", "apply-start", "apply-result", "undo", "exec", "seal", "approver",
                     "freeze", "unfreeze"]
_KINDS: frozenset[str] = frozenset(get_args(LedgerKind))

GENESIS = "0" * 64
"""The ``prev`` of record 1, and the head hash of an empty ledger."""

_FORMAT = "proximo-ledger/1"
_MARK_FORMAT = "proximo-ledger-mark/1"
FULL_WALK_EVERY = 3600.0
"""Seconds between full walks of the chain by :meth:`Ledger.check` (apply's check is incremental in between)."""
_KEY_CHECK_MESSAGE = b"proximo-ledger key check"  # never a record's canonical JSON, which starts with "{"
_BATCH = 500

_COLUMNS = "seq, time, kind, actor, tool, params, plan_id, plan_hash, impacts, outcome, prev, hash"


def ledger_tables(seq_type: str) -> tuple[str, ...]:
    """The tables and indexes every store's ledger has; ``seq_type`` is the store's 64-bit integer (SQLite's INTEGER).

    The JSON columns are TEXT in every store: they must read back byte for byte as they were hashed (see _row).
    """
    return (
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE records (
        seq {seq_type} PRIMARY KEY,
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
    )


_SCHEMA = (
    *ledger_tables("INTEGER"),
    "CREATE TRIGGER records_no_update BEFORE UPDATE ON records"
    " BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
    "CREATE TRIGGER records_no_delete BEFORE DELETE ON records"
    " BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
)
# The triggers stop accidents, not attackers (they can be dropped); the chain is what detects tampering.


class LedgerError(ProximoError):
    """The ledger cannot be opened, read or written; ``str(error)`` is one line for a person."""


class LedgerUnreachable(LedgerError):
    """A shared ledger's database cannot be reached: reads answer without it, nothing is planned or applied."""


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


class Position(msgspec.Struct, frozen=True):
    seq: int
    hash: str


class Breakage(msgspec.Struct, frozen=True):
    seq: int
    reason: str
    found: str  # when it was found (ISO-8601 UTC)


class Mark(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The high-water mark, kept in a file beside the ledger: what truncating or replacing the SQLite file cannot hide.

    ``high_water`` is the newest record ever appended; ``verified`` is how far :meth:`Ledger.check` has walked
    the chain (apply's incremental check starts there); ``broken`` is set once a break is found and stays
    until :func:`seal`.
    """

    format: str
    ledger_id: str
    chain: str
    high_water: Position
    verified: Position
    broken: Breakage | None = None
    full_walk: str = ""  # when verify last walked the whole chain (ISO-8601 UTC); check walks it all when this is old


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


@functools.lru_cache(maxsize=4096)  # a plan's 3,000 impacts repeat a few keys: decide each name once
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
    return ledger_time(datetime.now(UTC))


def ledger_time(when: datetime) -> str:
    """A time as ledger records carry it: fixed width, so that text order is time order."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    """One ledger. Safe to share between threads; any number of processes may append to one ledger.

    ``where`` is an SQLite file's path, or a store (:class:`proximo.trust._store.Store`: the PostgreSQL one is made
    by ``proximo.trust._pg.open_store``). ``mark_path`` is where the high-water mark is kept when it is not beside
    the file (a shared store's is on each machine; see :meth:`_mark_findings`).
    """

    def __init__(self, where: str | os.PathLike[str] | Store, key: bytes | None = None, *, high_water_mark: bool = True,
                 full_walk_every: float = FULL_WALK_EVERY, mark_path: str | os.PathLike[str] | None = None) -> None:
        self._given: Store | None = None if isinstance(where, str | os.PathLike) else where
        self.path: Path | None = Path(where) if isinstance(where, str | os.PathLike) else None
        self.where = str(self.path) if self.path is not None else where.where  # type: ignore[union-attr]
        self.full_walk_every = full_walk_every
        # The mark lives beside the file, not in it: truncating or swapping the SQLite file leaves it behind.
        if mark_path is None and self.path is not None:
            mark_path = self.path.with_name(self.path.name + ".hwm")
        self.mark_path: Path | None = Path(mark_path) if high_water_mark and mark_path is not None else None
        self._mark: Mark | None = None
        self._mark_problem = ""  # why the mark and the file disagree, found at open (a replaced or truncated file)
        if key is not None:
            if not isinstance(key, bytes | bytearray | memoryview):
                raise LedgerError("the ledger key must be bytes")
            key = bytes(key)
            if not key:
                raise LedgerError("the ledger key is empty (unset PROXIMO_LEDGER_KEY for an unkeyed ledger)")
        self._key = key
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._store: Store | None = None
        self._open()
        self._key_matches = key is None or _same(self._stored_check, self._key_check())

    def _open(self) -> None:
        try:
            if self._store is not None:
                self._store.reopen()
            elif self._given is not None:
                self._store = self._given
            else:
                assert self.path is not None
                self._store = SqliteStore(self.path, schema=_SCHEMA)
            self.chain, self._stored_check, self.ledger_id = self._open_meta()
            self._mark, self._mark_problem = None, ""
            self._open_mark()
        except LedgerError:
            self.close()
            raise
        except (OSError, *self._errors()) as e:
            self.close()
            raise LedgerError(f"cannot open ledger {self.where}: {_one_line(e)}") from None

    def _errors(self) -> tuple[type[Exception], ...]:
        store = self._store or self._given
        return store.errors if store is not None else SqliteStore.errors

    @property
    def store(self) -> Store:
        if self._store is None:
            raise LedgerError("the ledger is closed")
        return self._store

    def _follow_replacement(self) -> None:
        """Reopen when the file at our path is another file now (a seal set the old one aside).

        Writing on through the old handle would put records in the sealed file, or SQLite's -wal of the new one.
        A file swapped by someone else is reopened too: its mark then names another ledger, and the check says so.
        """
        if self._store is not None and self._store.replaced():
            self._open()
            self._key_matches = self._key is None or _same(self._stored_check, self._key_check())

    def _open_meta(self) -> tuple[str, str, str]:
        """Create the schema on a new file, or check an existing one is a ledger of the right kind.

        Returns the chain kind, the stored key check and the ledger's id (one chain, one id; a sealed ledger's
        successor gets a new one).
        """
        store = self.store
        want = "hmac-sha256" if self._key else "sha256"
        try:
            with store.write() as db:
                if not store.has_tables(db):
                    for statement in store.schema():
                        db.execute(statement)
                    for row in (("format", _FORMAT), ("chain", want), ("key_check", self._key_check() if self._key else "")):
                        db.execute("INSERT INTO meta (name, value) VALUES (?, ?)", row)
                meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
                if "ledger_id" not in meta and meta.get("format") == _FORMAT:  # new, or made before ledgers had ids
                    meta["ledger_id"] = secrets.token_hex(16)
                    db.execute("INSERT INTO meta (name, value) VALUES ('ledger_id', ?)", (meta["ledger_id"],))
        except store.errors as e:
            if "no such table" in str(e):
                raise LedgerError(f"{self.where} is an SQLite file but not a Proximo ledger") from None
            raise
        if meta.get("format") != _FORMAT:
            raise LedgerError(f"{self.where}: unsupported ledger format {meta.get('format')!r} (want {_FORMAT})")
        chain = meta.get("chain")
        if chain != want:
            if chain == "hmac-sha256":
                raise LedgerError(f"ledger {self.where} is HMAC-chained: set PROXIMO_LEDGER_KEY to open it")
            if chain == "sha256":
                raise LedgerError(f"ledger {self.where} is not keyed: unset PROXIMO_LEDGER_KEY to open it")
            raise LedgerError(f"ledger {self.where} has an unknown chain kind {chain!r}")
        return chain, str(meta.get("key_check", "")), str(meta["ledger_id"])

    # --- the high-water mark --------------------------------------------------------------------------

    def _open_mark(self) -> None:
        """Read the mark, or start one; a mark naming another ledger, or ahead of this one, is a problem to report."""
        if self.mark_path is None:
            return
        try:
            raw = self.mark_path.read_bytes()
        except FileNotFoundError:
            raw = None
        except OSError as e:
            raise LedgerError(f"cannot read the high-water mark {self.mark_path}: {e.strerror}") from None
        if raw is None:
            # A shared store's mark is this machine's (others append too): a new machine starts its own mark, so only
            # a file's mark can be known to have existed.
            shared = self.store.shared
            with self._lock, self.store.write() as db:  # no appender moves the head while the first mark is written
                if self.mark_path.exists():
                    # Another process wrote the first mark (and its 'marked' row) between our read and this lock:
                    # read below. Checking the row first took that mark for a removed one.
                    pass
                elif not shared and db.execute("SELECT 1 FROM meta WHERE name = 'marked'").fetchone():  # had one: removed
                    self._mark_problem = (f"the high-water mark {self.mark_path} is missing: "
                                          "truncation can no longer be ruled out")
                else:
                    # A new ledger, or one from before marks existed: the mark starts here; the first check walks it all.
                    self._write_mark(Mark(format=_MARK_FORMAT, ledger_id=self.ledger_id, chain=self.chain,
                                          high_water=_head_in(db), verified=Position(0, GENESIS)))
                    if not shared:
                        db.execute("INSERT INTO meta (name, value) VALUES ('marked', '1')")
            if self._mark is None and not self._mark_problem:
                self._reload_mark()  # another process wrote the first mark meanwhile
            return
        head = self._head_position()
        try:
            mark = msgspec.json.decode(raw, type=Mark)
        except msgspec.MsgspecError as e:
            self._mark_problem = f"the high-water mark {self.mark_path} is unreadable ({_one_line(e)})"
            return
        if mark.ledger_id != self.ledger_id and self.store.shared and self._seals(mark.ledger_id):
            # Another machine sealed the shared ledger this mark is of: the mark is kept, as that chain's, and this
            # machine starts one of the new chain (a file's seal moves its own mark; a database's cannot reach ours).
            assert self.mark_path is not None
            os.replace(self.mark_path, self.mark_path.with_name(f"{self.mark_path.name}.sealed-{mark.ledger_id[:12]}"))
            self._open_mark()
            return
        self._mark = mark
        if mark.ledger_id != self.ledger_id:
            what = "the file" if self.path is not None else "the database"
            self._mark_problem = (f"{what} holds ledger {self.ledger_id[:12]} with {head.seq} records, but its high-water "
                                  f"mark is ledger {mark.ledger_id[:12]} at record {mark.high_water.seq}: "
                                  f"{what} was truncated or replaced")

    def _seals(self, ledger_id: str) -> bool:
        """Whether this chain starts with a sound seal record of the ledger ``ledger_id`` (made with the key)."""
        first = self.get(1)
        return (first is not None and first.kind == "seal" and first.prev == GENESIS
                and first.outcome.get("sealed_ledger_id") == ledger_id and _same(self._digest(_canonical(first)), first.hash))

    def _head_position(self) -> Position:
        rows = self._query("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1")
        return Position(int(rows[0][0]), str(rows[0][1])) if rows else Position(0, GENESIS)

    def _write_mark(self, mark: Mark) -> None:
        """Atomically (write, then rename); owner-only, like the ledger."""
        assert self.mark_path is not None
        tmp = self.mark_path.with_name(f".{self.mark_path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(msgspec.json.encode(mark))
            os.replace(tmp, self.mark_path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise LedgerError(f"cannot write the high-water mark {self.mark_path}: {e.strerror}") from None
        self._mark = mark

    def _reload_mark(self) -> Mark | None:
        """The mark as it is on disk now (another process may have appended since we read it)."""
        if self.mark_path is None or self._mark_problem:
            return None
        try:
            mark = msgspec.json.decode(self.mark_path.read_bytes(), type=Mark)
        except FileNotFoundError:
            self._mark_problem = f"the high-water mark {self.mark_path} is missing: truncation can no longer be ruled out"
            return None
        except (OSError, msgspec.MsgspecError) as e:
            self._mark_problem = f"the high-water mark {self.mark_path} is unreadable ({_one_line(e)})"
            return None
        if mark.ledger_id != self.ledger_id:
            self._mark_problem = f"the high-water mark now names ledger {mark.ledger_id[:12]}, not this one"
            return None
        self._mark = mark
        return mark

    def _mark_findings(self, mark: Mark | None, head: Position, hash_at: Any) -> tuple[int, str] | None:
        """What the mark says is wrong with a ledger whose head is ``head`` (``hash_at(seq)`` reads one record's hash)."""
        if self._mark_problem:
            return 1, f"record 1: {self._mark_problem}"
        if mark is None:
            return None
        if mark.broken is not None:
            return mark.broken.seq, (f"record {mark.broken.seq}: found broken at {mark.broken.found} ({mark.broken.reason}); "
                                     "a person must seal it: proximo ledger seal")
        hw = mark.high_water
        if head.seq < hw.seq:
            missing = f"record {hw.seq} is" if head.seq + 1 == hw.seq else f"records {head.seq + 1}..{hw.seq} are"
            return head.seq + 1, (f"record {head.seq + 1}: {missing} missing from the end (the high-water mark outside the "
                                  f"file says {hw.seq} were written)")
        # Every Proximo append moves the mark under the write lock: this row came another way. (A shared store's
        # mark is one machine's: the others append beyond it, so there it only rules out what is below it.)
        if head.seq > hw.seq and not self.store.shared:
            return hw.seq + 1, (f"record {hw.seq + 1}: not written by Proximo (the high-water mark outside the file stops "
                                f"at {hw.seq})")
        if hw.seq > 0:
            found = hash_at(hw.seq)
            if found is None or not _same(str(found), hw.hash):
                return hw.seq, f"record {hw.seq}: differs from the high-water mark's hash ({hw.hash[:12]}...)"
        return None

    def _settled(self, found: tuple[int, str]) -> tuple[int, str] | None:
        """``found`` as it stands with no appender in the middle of an append.

        An appender moves the mark before it commits (see :meth:`append`), so a reader in another process can read a
        mark one record ahead of the head its snapshot shows, or snapshot before a commit and read the mark after it:
        a truncation that is not there. Under the write lock no append is half done, so the mark and the head are
        read again there and only what still holds is reported. A reader that may not take the write lock (a
        read-only copy, say) reports what it found.
        """
        store = self._conn()
        try:
            with store.write() as db:
                return self._mark_findings(self._reload_mark(), _head_in(db), lambda seq: _hash_at(db, seq))
        except store.errors:
            return found

    def _note_broken(self, seq: int, reason: str) -> None:
        """Keep a break in the mark, so every apply stops until a person seals the ledger."""
        mark = self._reload_mark()
        if mark is None or mark.broken is not None:
            return
        with self._lock, self._conn().write():  # serialised with appenders, who rewrite the mark
            current = self._reload_mark()
            if current is not None and current.broken is None:
                self._write_mark(msgspec.structs.replace(current, broken=Breakage(seq, reason, _now())))

    def _key_check(self) -> str:
        assert self._key is not None
        return hmac.new(self._key, _KEY_CHECK_MESSAGE, hashlib.sha256).hexdigest()

    def _conn(self) -> Store:
        if self._store is None:
            raise LedgerError("the ledger is closed")
        if os.getpid() != self._pid:
            raise LedgerError("this ledger was opened in another process: open it again after fork")
        self._follow_replacement()
        return self.store

    @property
    def key(self) -> bytes | None:
        return self._key

    def _digest(self, canonical: bytes) -> str:
        if self._key is None:
            return hashlib.sha256(canonical).hexdigest()
        return hmac.digest(self._key, canonical, "sha256").hex()

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
            raise LedgerError(f"the ledger key is not the one ledger {self.where} was created with")
        clean_params = redact(_json_object(params or {}, "params"))
        clean_outcome = redact(_json_object(outcome or {}, "outcome"))
        clean_impacts = [redact(_json_object(i, "each impact")) for i in impacts]
        written: Mark | None = None  # the mark as it was, while ours for this record is written but not committed
        with self._lock:
            store = self._conn()
            try:
                with store.write() as db:  # the head is read and the record added under the one write lock
                    if once and db.execute("SELECT 1 FROM records WHERE plan_id = ? AND kind = ? LIMIT 1",
                                           (plan_id, kind)).fetchone():
                        return None
                    head = _head_in(db)
                    seq, prev = head.seq + 1, head.hash
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
                    # Under the write lock, so marks from concurrent appenders land in seq order. Written last, before
                    # the commit: a mark ahead of the store (a crash in between) is a false alarm, never a missed truncation.
                    previous = self._reload_mark()
                    if previous is not None:
                        moved = msgspec.structs.replace(previous, high_water=Position(seq, record.hash))
                        found = self._mark_findings(previous, Position(seq - 1, prev), lambda s: _hash_at(db, s))
                        if found is not None and previous.broken is None:
                            # The head is not where Proximo left it: appending on must not paper over that.
                            moved = msgspec.structs.replace(moved, broken=Breakage(found[0], found[1], _now()))
                        self._write_mark(moved)
                        written = previous
            except BaseException as e:
                if written is not None:  # the commit failed: the record is not there, so the mark must not say it is
                    self._write_mark(written)
                if isinstance(e, store.errors):
                    raise LedgerError(f"cannot append to ledger {self.where}: {_one_line(e)}") from None
                raise
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

    def since(self, kind: LedgerKind, start: str) -> list[LedgerRecord]:
        """Records of one kind written at or after ``start`` (a time as the ledger writes them), oldest first."""
        rows = self._query(f"SELECT {_COLUMNS} FROM records WHERE kind = ? AND time >= ? ORDER BY seq", (kind, start))
        return [_decode(row) for row in rows]

    def latest(self, *kinds: LedgerKind) -> LedgerRecord | None:
        """The newest record of any of these kinds (the kind index answers it, however long the ledger)."""
        marks = ", ".join("?" for _ in kinds)
        rows = self._query(f"SELECT {_COLUMNS} FROM records WHERE kind IN ({marks}) ORDER BY seq DESC LIMIT 1", tuple(kinds))
        return _decode(rows[0]) if rows else None

    def search(self, *, kind: str = "", tool: str = "", actor: str = "", since: str = "", until: str = "",
               limit: int = 200) -> list[LedgerRecord]:
        """The newest ``limit`` records matching every filter given, newest first: ``kind`` and ``tool`` exactly,
        ``actor`` within the actor (token, face, client) or as the approver a record names, and a time range as the
        ledger writes times (``since`` inclusive, ``until`` exclusive)."""
        where, args = [], []
        if kind:  # the kind index finds its seqs; sorting those alone is far cheaper than sorting whole records
            where.append(f"seq IN (SELECT seq FROM records WHERE kind = ? ORDER BY seq DESC{'' if tool or actor or since or until else ' LIMIT ?'})")
            args += [kind] if tool or actor or since or until else [kind, max(1, limit)]
        if tool:
            where.append("tool = ?")
            args.append(tool)
        if actor:
            where.append("(instr(actor, ?) > 0 OR json_extract(outcome, '$.approver') = ?)")
            args += [json.dumps(actor)[1:-1], actor]
        if since:
            where.append("time >= ?")
            args.append(since)
        if until:
            where.append("time < ?")
            args.append(until)
        sql = f"SELECT {_COLUMNS} FROM records {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY seq DESC LIMIT ?"
        return [_decode(row) for row in self._query(sql, (*args, max(1, limit)))]

    def first_at(self, start: str) -> int:
        """The first seq written at or after ``start`` (a time as the ledger writes them), or the next seq to come:
        a binary search on seq, since records are appended in time order (no index on time is needed)."""
        low, high = 1, self.head().seq + 1
        while low < high:
            middle = (low + high) // 2
            rows = self._query("SELECT time FROM records WHERE seq = ?", (middle,))
            if rows and str(rows[0][0]) >= start:
                high = middle
            else:
                low = middle + 1
        return low

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
            store = self._conn()
            try:
                return store.query(sql, args)
            except store.errors as e:
                raise LedgerError(f"cannot read ledger {self.where}: {_one_line(e)}") from None

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
            store = self._conn()
            try:
                with store.snapshot() as db:  # one snapshot: appends by others during the walk are not seen
                    for rows in db.stream(f"SELECT {_COLUMNS} FROM records ORDER BY seq", (), _BATCH):
                        for row in rows:
                            count += 1
                            if broken is None:
                                broken = self._check(row, last_seq, last_hash)
                            last_seq, last_hash = row[0], str(row[11])
                    if expected_head is not None:
                        witness = self._check_witness(db, expected_head, last_seq)
                    marked = self._mark_findings(self._reload_mark(), Position(last_seq, last_hash), lambda seq: _hash_at(db, seq))
                if marked is not None:
                    marked = self._settled(marked)
            except store.errors as e:
                raise LedgerError(f"cannot read ledger {self.where}: {_one_line(e)}") from None
        if broken is not None:  # the chain itself is broken: kept in the mark (a client's head is not: anyone can claim one)
            self._note_broken(*broken)
        for found in (witness, marked):
            if found is not None and (broken is None or found[0] < broken[0]):
                broken = found
        head = LedgerHead(seq=last_seq, hash=last_hash, chain=self.chain) if count else self._empty_head()
        if broken is None:
            self._move_checkpoint(Position(last_seq, last_hash), full_walk=True)
            reason = f"{count} record{'s' if count != 1 else ''}, chain intact" if count else "empty ledger"
            return VerifyResult(ok=True, records=count, first_broken=None, reason=reason, head=head)
        seq, reason = broken
        if not self._key_matches and seq == 1:
            reason += " (the key is not the one this ledger was created with)"
        return VerifyResult(ok=False, records=count, first_broken=seq, reason=reason, head=head)

    def check(self) -> VerifyResult:
        """What apply relies on: the chain from the last verified checkpoint to the head, and the high-water mark.

        Incremental, so it stays fast at a million records: records before the checkpoint were walked by an
        earlier check (or ``verify``); the checkpoint record itself must still hold the hash it had. On success
        the checkpoint moves to the head; a break is kept in the mark, so every later check fails too.
        Without a mark (``high_water_mark=False``) this is a full :meth:`verify`.
        """
        mark = self._reload_mark()
        if mark is None and not self._mark_problem or mark is not None and _older_than(mark.full_walk, self.full_walk_every):
            return self.verify()  # no mark to start from, or the last full walk is old: walk it all (edits of old records)
        start = mark.verified if mark is not None else Position(0, GENESIS)
        count = 0
        broken: tuple[int, str] | None = None
        last_seq, last_hash = start.seq, start.hash
        with self._lock:
            store = self._conn()
            try:
                with store.snapshot() as db:
                    if start.seq > 0 and not _same(str(_hash_at(db, start.seq) or ""), start.hash):
                        broken = (start.seq, f"record {start.seq}: changed since it was verified ({start.hash[:12]}...)")
                    for rows in db.stream(f"SELECT {_COLUMNS} FROM records WHERE seq > ? ORDER BY seq", (start.seq,), _BATCH):
                        for row in rows:
                            count += 1
                            broken = self._check(row, last_seq, last_hash)
                            if broken is not None:
                                break
                            last_seq, last_hash = row[0], str(row[11])
                        if broken is not None:
                            break
                    head = _head_in(db)
                    marked = self._mark_findings(mark, head, lambda seq: _hash_at(db, seq))
                if marked is not None:
                    marked = self._settled(marked)
            except store.errors as e:
                raise LedgerError(f"cannot read ledger {self.where}: {_one_line(e)}") from None
        if marked is not None and (broken is None or marked[0] <= broken[0]):
            broken = marked
        result_head = LedgerHead(seq=head.seq, hash=head.hash, chain=self.chain)
        if broken is not None:
            if broken is not marked:
                self._note_broken(*broken)
            return VerifyResult(ok=False, records=head.seq, first_broken=broken[0], reason=broken[1], head=result_head)
        if mark is not None and last_seq > start.seq:
            self._move_checkpoint(Position(last_seq, last_hash))
        return VerifyResult(ok=True, records=head.seq, first_broken=None,
                            reason=f"chain intact from record {start.seq + 1} to {last_seq} ({count} checked)", head=result_head)

    def _move_checkpoint(self, to: Position, *, full_walk: bool = False) -> None:
        store = self._conn()
        try:
            with self._lock, store.write():
                current = self._reload_mark()
                if current is not None and current.broken is None and (full_walk or current.verified.seq < to.seq):
                    moved = msgspec.structs.replace(current, verified=max(to, current.verified, key=lambda p: p.seq))
                    if store.shared and to.seq > moved.high_water.seq:  # this machine has seen the chain this far now
                        moved = msgspec.structs.replace(moved, high_water=to)
                    self._write_mark(msgspec.structs.replace(moved, full_walk=_now()) if full_walk else moved)
        except store.errors as e:
            raise LedgerError(f"cannot write to ledger {self.where}: {_one_line(e)}") from None

    def check_record(self, record: LedgerRecord) -> str | None:
        """Why one record is not evidence (its own hash, or its links to the records beside it), or None.

        Apply checks the records it acts on (the plan's ``plan`` record, its ``approve`` record) this way, in
        full, whatever the incremental checkpoint says.
        """
        if not _same(self._digest(_canonical(record)), record.hash):
            return f"record {record.seq}: hash does not match its content"
        before = self.get(record.seq - 1) if record.seq > 1 else None
        if record.seq == 1 and record.prev != GENESIS or before is not None and not _same(before.hash, record.prev):
            return f"record {record.seq}: prev does not match the record before it"
        if record.seq > 1 and before is None:
            return f"record {record.seq}: the record before it is missing"
        after = self.get(record.seq + 1)
        if after is not None and not _same(after.prev, record.hash):
            return f"record {record.seq + 1}: prev does not match record {record.seq}"
        return None

    def _check(self, row: tuple[Any, ...], last_seq: int, last_hash: str) -> tuple[int, str] | None:
        """The first problem with one row given the row before it, as (seq to name, reason)."""
        seq = row[0]
        if seq != last_seq + 1:
            missing = f"record {last_seq + 1} is" if seq == last_seq + 2 else f"records {last_seq + 1}..{seq - 1} are"
            return seq, f"record {seq}: {missing} missing before it"
        # Fast path: the row's columns are the canonical encoding's parts already (see _row), so an intact row
        # hashes without being decoded. Anything else takes the slow path, which names what is wrong.
        if not _same(self._digest(_canonical_row(row)), str(row[11])):
            try:
                record = _decode(row)
            except LedgerError as e:
                return seq, str(e)
            if not _same(self._digest(_canonical(record)), record.hash):
                return seq, f"record {seq}: hash does not match its content"
        if row[10] != last_hash:
            if seq == 1:
                return seq, "record 1: prev is not the genesis value"
            return seq, f"record {seq}: prev does not match the hash of record {last_seq}"
        return None

    def _check_witness(self, db: Tx, head: LedgerHead, last_seq: int) -> tuple[int, str] | None:
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
            if self._store is not None:
                if os.getpid() == self._pid:
                    self._store.close()
                self._store = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.where!r}, chain={getattr(self, 'chain', '?')!r})"


def _older_than(stamp: str, seconds: float) -> bool:
    if not stamp:
        return True
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return True
    return (datetime.now(UTC) - then).total_seconds() > seconds


def _hash_at(db: Tx, seq: int) -> str | None:
    row = db.execute("SELECT hash FROM records WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else str(row[0])


def _head_in(db: Tx) -> Position:
    row = db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    return Position(int(row[0]), str(row[1])) if row else Position(0, GENESIS)


def seal(where: str | os.PathLike[str] | Store, key: bytes | None, *, actor: Actor, reason: str,
         mark_path: str | os.PathLike[str] | None = None) -> LedgerRecord:
    """Set a broken ledger aside and start a new chain whose first record names it (kind ``seal``).

    The broken ledger is kept, never deleted: it is the evidence (a file is renamed with its -wal/-shm and its
    mark; a database's tables are renamed). Only a ledger that is broken can be sealed. Plans recorded in the old
    chain cannot be applied from the new one.
    """
    name = str(where) if isinstance(where, str | os.PathLike) else where.where
    old: Ledger | None
    try:
        old = Ledger(where, key=key, mark_path=mark_path)
    except LedgerError as e:  # not even a ledger any more: seal it all the same, saying so
        if not isinstance(where, str | os.PathLike):
            raise  # a database that cannot be opened is unreachable more likely than broken: nothing is set aside
        old, result, old_id, opened = None, None, "", str(e)
    else:
        result, old_id, opened = old.verify(), old.ledger_id, ""
        if result.ok:
            old.close()
            raise LedgerError(f"ledger {name} is intact ({result.records} records): there is nothing to seal")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        if old is not None:
            with old:
                sealed, digest = old.store.set_aside(stamp)
                mark = old.mark_path
        else:
            sealed, digest = set_aside_file(Path(name), stamp)
            mark = Path(name).with_name(Path(name).name + ".hwm")
        if mark is not None and mark.exists():
            file_based = isinstance(where, str | os.PathLike)
            os.replace(mark, Path(sealed + ".hwm") if file_based else mark.with_name(f"{mark.name}.sealed-{stamp}"))
    except OSError as e:
        raise LedgerError(f"cannot set {name} aside: {e.strerror}") from None
    except LedgerError:
        raise
    except Exception as e:  # the store's driver: one line
        raise LedgerError(f"cannot set {name} aside: {_one_line(e)}") from None
    outcome: dict[str, Any] = {
        "reason": reason, "sealed_file": sealed, "sealed_sha256": digest, "sealed_ledger_id": old_id,
        "first_broken": result.first_broken if result else None,
        "broken_because": result.reason if result else opened,
        "sealed_head": msgspec.to_builtins(result.head) if result else None,
    }
    with Ledger(where, key=key, mark_path=mark_path) as fresh:
        record = fresh.append("seal", actor=actor, outcome=outcome)
    assert record is not None
    return record


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


_CANONICAL_ROW = (b'{"actor":%s,"impacts":%s,"kind":%s,"outcome":%s,"params":%s,"plan_hash":%s,"plan_id":%s,"prev":%s,'
                  b'"seq":%s,"time":%s,"tool":%s}')


def _canonical_row(row: tuple[Any, ...]) -> bytes:
    """What _canonical gives for the record in ``row``, built from the stored columns without decoding them.

    The JSON columns hold canonical JSON already (see _row); a column of another type makes bytes that match nothing.
    """
    seq, time_, kind, actor, tool, params, plan_id, plan_hash, impacts, outcome, prev, _ = row
    json_encode = msgspec.json.encode
    return _CANONICAL_ROW % (_raw(actor), _raw(impacts), json_encode(kind), _raw(outcome), _raw(params),
                             json_encode(plan_hash), json_encode(plan_id), json_encode(prev), json_encode(seq),
                             json_encode(time_), json_encode(tool))


def _raw(column: Any) -> bytes:
    return column.encode() if isinstance(column, str) else b"\0"


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
