"""Where the host reads cluster state from: a live cluster (through the client) or a snapshot file."""

from __future__ import annotations

import hashlib
import time
import urllib.parse
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Protocol

import msgspec

from ._parsed_cache import ParsedSnapshot, ParsedSnapshotCache
from .errors import BadInput
from .model import (READ_PARTS, ClusterModel, GuestVolume, collect, from_api, load_snapshot, missing_reads,
                    remember_volumes, render)


class State(msgspec.Struct):
    model: ClusterModel
    unseen: list[str]
    age: float = 0.0  # seconds since the cluster was read (a recent read reused: ``read_state(max_age=...)``)


class Source(Protocol):
    name: str  # recorded in every plan: a plan applies only to the source it was made from
    writable: bool
    local_addresses: list[str]  # the addresses this host reaches the API from, where known (lockout analysis)

    async def read_state(self, max_age: float = 0.0, unread: Collection[str] = ()) -> State:
        """The cluster now, as a model of its own for each call: the caller may change it. ``max_age`` > 0: a read
        made at most that many seconds ago may be answered again (its ``age`` says how old it is). ``unread``: parts
        (``proximo.model.READ_PARTS``) a live read may leave out; a source that has them anyway includes them."""
        ...

    def forget(self) -> None:
        """Drop any remembered read: the cluster is being changed."""
        ...

    async def get(self, path: str) -> Any: ...


class LiveSource:
    """A Proxmox VE cluster (or the simulator) over its REST API. Only GETs go through here."""

    writable = True

    def __init__(self, client: Any, url: str, *, remember: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self.name = f"live:{url}"
        self._remember = remember  # keep the newest read for read_state(max_age=...): costs one encode per read
        self._clock = clock
        self._last: tuple[float, frozenset[str], bytes, list[str]] | None = None  # the newest read: when, its unread parts, the model, unseen

    @property
    def local_addresses(self) -> list[str]:
        """The local address of the API connection, once the client has made one (empty before, or in-process)."""
        return list(getattr(self._client, "local_addresses", []))

    async def get(self, path: str) -> Any:
        base, _, query = path.partition("?")
        # Decode the query: the client encodes params itself (a pool id "a/b" must not go out as a%252Fb).
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True)) if query else None
        return await self._client.get(base, params)

    async def envelope(self, path: str) -> dict[str, Any]:
        """The whole answer to ``GET path``: ``data`` and what PVE puts beside it (a network's pending ``changes``)."""
        base, _, query = path.partition("?")
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True)) if query else None
        body = await self._client.get(base, params, envelope=True)
        return body if isinstance(body, dict) else {"data": body}

    async def read_state(self, max_age: float = 0.0, unread: Collection[str] = ()) -> State:
        left_out = frozenset(unread)
        if left_out - READ_PARTS:
            raise ValueError(f"no such part of a read: {', '.join(sorted(left_out - READ_PARTS))}")
        last = self._last
        # a remembered read serves a request that leaves out at least what it left out
        if max_age > 0 and last is not None and last[1] <= left_out and (age := self._clock() - last[0]) <= max_age:
            return State(model=msgspec.msgpack.decode(last[2], type=ClusterModel), unseen=list(last[3]), age=age)
        started = self._clock()
        firewall = "guest-firewall" not in left_out
        extra: dict[str, dict[str, Any]] = {}
        api, unseen = await collect(self.get, guest_firewall=firewall, envelope=self.envelope, extra=extra)
        model = from_api(api, extra, guest_firewall=firewall)
        if self._remember:  # its age counts from before the read
            self._last = (started, left_out, msgspec.msgpack.encode(model), list(unseen))
        return State(model=model, unseen=unseen)

    def forget(self) -> None:
        self._last = None


def _parsed_volumes(model: ClusterModel) -> dict[int, list[GuestVolume]]:
    """Each guest's volumes, for the parsed-snapshot cache; a config that does not parse is left to the analysis."""
    found: dict[int, list[GuestVolume]] = {}
    for vmid, guest in model.guests.items():
        try:
            found[vmid] = guest.volumes()
        except ValueError:  # DriveError and kin: the plan that touches it says so
            continue
    return found


class SnapshotSource:
    """A snapshot file: plans and reads work offline; apply refuses (nothing is there to change)."""

    writable = False
    local_addresses: list[str] = []  # offline: nobody reaches an API; PROXIMO_ADMIN_SOURCES names the operator

    def __init__(self, path: str | Path, *, cache: ParsedSnapshotCache | None = None) -> None:
        raw = Path(path).read_bytes() if Path(path).is_file() else None
        if raw is None:
            raise BadInput(f"snapshot {path}: no such file")
        digest = hashlib.sha256(raw).hexdigest()
        self.name = "snapshot:" + digest[:16]
        hit = cache.get(digest) if cache is not None else None
        self._model: ClusterModel | None = None  # what reads render, decoded on the first GET (a plan needs none)
        # A model decoded here and not yet handed out: the first read_state takes it instead of decoding again.
        self._unclaimed: ClusterModel | None = None
        if hit is not None:
            self._unclaimed, entry = hit
            for vmid, volumes in entry.volumes.items():
                if (guest := self._unclaimed.guests.get(vmid)) is not None:
                    remember_volumes(guest.kind, guest.config, volumes)
        else:
            try:
                doc = msgspec.json.decode(raw)
                self._model = load_snapshot(doc)
                entry = ParsedSnapshot(model=msgspec.msgpack.encode(self._model), missing=missing_reads(doc.get("api") or {}),
                                       volumes=_parsed_volumes(self._model) if cache is not None else {})
            except (msgspec.DecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise BadInput(f"snapshot {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
            if cache is not None:
                cache.put(digest, entry)
        self._encoded, self._missing = entry.model, entry.missing

    async def get(self, path: str) -> Any:
        if self._model is None:
            self._model = msgspec.msgpack.decode(self._encoded, type=ClusterModel)
        return render(self._model, path)

    async def read_state(self, max_age: float = 0.0, unread: Collection[str] = ()) -> State:  # never ages; has every part
        model, self._unclaimed = self._unclaimed, None
        if model is None:
            model = msgspec.msgpack.decode(self._encoded, type=ClusterModel)
        return State(model=model, unseen=list(self._missing))

    def forget(self) -> None:  # nothing changes a snapshot
        pass
