"""Parsed snapshots, kept beside the ledger so that an offline plan does not parse the same file twice.

Reading a snapshot of 4,000 guests is a 24 MB JSON parse and a model built from it (about 0.8 s); the model
encoded as msgpack decodes in a tenth of that. An entry is keyed by the snapshot's SHA-256 and by the code that
builds models (the size and modification time of every file of the ``proximo`` package), so a change to the
file or to Proximo makes a new entry, never a stale model.

Trust: an entry is a file in ``PROXIMO_HOME``; whoever can write there can make offline plans wrong, as they
could by editing the snapshot itself. Offline plans are never applied (a snapshot source is not writable),
and in service mode ``PROXIMO_HOME`` belongs to the service's user, not the agent's.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
from pathlib import Path

import msgspec

from .model import ClusterModel, GuestVolume

log = logging.getLogger(__name__)
KEEP = 4  # entries kept; older ones are removed when a new one is written


class ParsedSnapshot(msgspec.Struct, frozen=True):
    model: bytes  # the ClusterModel as msgpack: decoding it is also the cheapest copy
    missing: list[str]
    # each guest's volumes as its config parses (proximo.model._drives): most of a big cluster's analysis time
    volumes: dict[int, list[GuestVolume]] = {}


@functools.cache
def _code_key() -> str:
    """What changes when the code that reads snapshots changes: every file of the package, by size and mtime."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        st = path.stat()
        h.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class ParsedSnapshotCache:
    """Entries under ``directory``, one file each; a broken or unreadable entry is a miss, never an error."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, snapshot_sha256: str) -> Path:
        return self.directory / f"{snapshot_sha256}-{_code_key()}.msgpack"

    def get(self, snapshot_sha256: str) -> tuple[ClusterModel, ParsedSnapshot] | None:
        """The model and its entry, or None for a miss (no entry, or one this code cannot read)."""
        try:
            entry = msgspec.msgpack.decode(self._path(snapshot_sha256).read_bytes(), type=ParsedSnapshot)
            return msgspec.msgpack.decode(entry.model, type=ClusterModel), entry
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            return None

    def put(self, snapshot_sha256: str, entry: ParsedSnapshot) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".parsed-", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(msgspec.msgpack.encode(entry))
            os.replace(tmp, self._path(snapshot_sha256))  # readers see a whole entry or none
            entries = sorted(self.directory.glob("*.msgpack"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
            for old in entries[KEEP:]:
                old.unlink(missing_ok=True)
        except OSError as exc:  # a read-only home: plans still work, only slower
            log.debug("parsed snapshot not cached: %s", exc)
