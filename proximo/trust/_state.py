"""The state directory: what an agent must not be able to touch, in one folder only Proximo's user can read.

    $PROXIMO_HOME/            0700
        ledger.sqlite         the PROVE ledger (PROXIMO_LEDGER may put it elsewhere), with ledger.sqlite.hwm beside it
        ledger.key            its HMAC key, made with a new ledger (0600); PROXIMO_LEDGER_KEY overrides it
        plans.sqlite          stored plans (0600)
        ledger-postgresql.hwm with PROXIMO_DB: this machine's high-water mark of the shared ledger (the ledger and
                              the plans are in the database then; every machine needs the same key)
        approvers.json        the people who may approve, as slow hashes and TOTP secrets (0600)

In service mode (``proximo service``) this folder belongs to Proximo's own system user, so an agent running as
another user can read none of it. Run as the agent's own user, it keeps nothing from that user: see
docs/trust-model.md for what holds in which deployment.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from ._ledger import Ledger, LedgerError
from ._planstore import PlanStore
from ._store import Store
from .._settings import Settings
from ..errors import BadInput

KEY_FILE = "ledger.key"
SHARED_MARK_FILE = "ledger-postgresql.hwm"
_PRIVATE_DIR = 0o700


def prepare_home(home: Path) -> Path:
    """Create the state directory owner-only, or tighten one that others could read (it must be ours)."""
    try:
        home.mkdir(mode=_PRIVATE_DIR, parents=True, exist_ok=True)
        mode = stat.S_IMODE(home.stat().st_mode)
        if mode & 0o077:
            os.chmod(home, _PRIVATE_DIR)
    except OSError as exc:
        raise BadInput(f"PROXIMO_HOME {home}: {exc.strerror}") from None
    return home


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, atomically (a reader never sees half of it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def ledger_key(settings: Settings, store: Store | None = None) -> bytes | None:
    """The ledger's HMAC key: PROXIMO_LEDGER_KEY, else the key file, made together with a new ledger.

    A ledger made before keys were the default has no key file and stays unkeyed (``proximo doctor`` says so;
    ``proximo ledger seal`` is how to move to a keyed chain).
    """
    if settings.ledger_key:
        return settings.ledger_key.reveal().encode()
    key_file = settings.home / KEY_FILE
    try:
        return bytes.fromhex(key_file.read_text().strip())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise LedgerError(f"cannot read the ledger key {key_file}: {getattr(exc, 'strerror', None) or exc}") from None
    if settings.db:
        from ._pg import PgStore

        store = store or shared_store(settings)
        assert isinstance(store, PgStore)
        chain = store.chain()
        if chain == "sha256":
            return None  # an existing unkeyed shared ledger
        if chain is not None:  # never a key of our own for a chain others keyed: it would match nothing
            raise LedgerError(f"the shared ledger {store.where} is HMAC-chained and this machine has no key: set "
                              f"PROXIMO_LEDGER_KEY (the same on every machine) or copy {KEY_FILE} from one that has it "
                              f"to {key_file}")
    elif settings.ledger_path.exists() and settings.ledger_path.stat().st_size > 0:
        return None  # an existing unkeyed ledger: opening it keyed would fail
    prepare_home(settings.home)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(key_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return bytes.fromhex(key_file.read_text().strip())
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


def shared_store(settings: Settings) -> Store | None:
    """The PostgreSQL store PROXIMO_DB names (None: the SQLite files in the state directory)."""
    if not settings.db:
        return None
    from ._pg import open_store

    return open_store(settings.db.reveal(), timeout=settings.db_timeout)


def open_plans(settings: Settings, store: Store | None = None) -> PlanStore:
    """The plan store: the shared database's, or plans.sqlite in the state directory."""
    store = store or shared_store(settings)
    return PlanStore(store if store is not None else settings.home / "plans.sqlite")


def open_ledger(settings: Settings, store: Store | None = None) -> Ledger:
    """The ledger, keyed by default, with its high-water mark beside it (a shared one's: in the state directory)."""
    prepare_home(settings.home)
    store = store or shared_store(settings)
    key = ledger_key(settings, store)
    try:
        if store is not None:
            return Ledger(store, key=key, mark_path=settings.home / SHARED_MARK_FILE)
        return Ledger(settings.ledger_path, key=key)
    except LedgerError as exc:
        if "is HMAC-chained" in str(exc):
            raise LedgerError(f"{exc} (or restore its key file {settings.home / KEY_FILE})") from None
        raise


class Unreachable:
    """Stands in for the shared ledger or plan store while their database cannot be reached (at a host's start).

    Every use tries to open the real one again, and is it from then on: a server that started while the database
    was down serves it once it is back. Until then a read tool answers without it (its ledger head says
    "unreachable"), and anything that must be recorded first (a plan, an approval, an apply's apply-start) raises the
    one-line :class:`LedgerUnreachable`: never an apply without its record.
    """

    def __init__(self, open_it: Callable[[], object]) -> None:
        self._open = open_it
        self._real: object | None = None

    def close(self) -> None:
        if self._real is not None:
            self._real.close()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        if self._real is None:
            self._real = self._open()  # LedgerUnreachable while the database is down
        return getattr(self._real, name)
