"""What the client checks and decodes without talking to anyone: API paths, task ids (UPIDs), the write permit.

Apart from ``proximo.pve._client`` so that what plans need of it (``check_api_path``; the executor's ``writing``)
does not import the HTTP stack: an offline plan never sends a request (issue 14: start-up).
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec

from ..errors import ProximoError, Refused

API_PREFIX = "/api2/json"

# user@realm!tokenid, as PVE::AccessControl accepts them (user: no whitespace, ':' or '/'; realm and
# token name: a letter, then letters, digits, '.', '-', '_'). '!' and '=' are kept out of the user part
# so the header value cannot be read two ways.
_TOKEN_ID_RE = re.compile(r"[^\s:/!=]+@[A-Za-z][A-Za-z0-9._-]+![A-Za-z][A-Za-z0-9._-]+")
_SECRET_RE = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: nothing to inject into a header

# RFC 3986 path characters (unreserved, sub-delims, ':', '@', '%XX') plus '/': anything else means the
# caller did not quote a path parameter, or is trying something.
_PATH_CHARS_RE = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*")
_PCT_RE = re.compile(r"%(.{0,2})")
# Bytes that must not arrive percent-encoded: '.', '/', '\', '%', '?', '#' and control characters.
_FORBIDDEN_ENCODED = {ord(c) for c in "./\\%?#"} | set(range(0x20)) | {0x7F}

# The segments that may carry an encoded slash, exactly as Proxmox clients send them (uppercase %2F, nothing else
# encoded): a volume id (``nfs-bak:backup%2Fvzdump-qemu-101-...vma.zst``; pve-storage's storage id, then ':') and an
# ipset CIDR (``10.0.0.0%2F24``).
_ENCODED_SLASH_SEGMENT_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-_.]*[A-Za-z0-9]:[A-Za-z0-9\-._~+=@:]+(?:%2F[A-Za-z0-9\-._~+=@:]+)+"
                                       r"|[0-9A-Fa-f:.]+%2F[0-9]{1,3}")

# UPID:node:pid:pstart:starttime:type:id:user:  (PVE::Tools::upid_decode; pstart may have 9 digits)
_UPID_RE = re.compile(
    r"UPID:(?P<node>[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?):(?P<pid>[0-9A-Fa-f]{8}):"
    r"(?P<pstart>[0-9A-Fa-f]{8,9}):(?P<starttime>[0-9A-Fa-f]{8}):(?P<type>[^:\s]+):(?P<id>[^:\s]*):"
    r"(?P<user>[^:\s]+):"
)
_NODE_RE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?")


# The write permit the running code holds. Only the executor sets it, around one step (``writing``). A task
# or thread that other code starts (a pack's hook scheduling a request) copies the context it started in,
# which holds none, so its writes are refused before a byte is sent.
_write_permit: contextvars.ContextVar[object | None] = contextvars.ContextVar("proximo_write_permit", default=None)


class WriteRefused(Refused):
    """A non-GET request from outside the executor: the client refuses to send it."""


@contextmanager
def writing(permit: object) -> Iterator[None]:
    """Let the current task send writes with ``permit`` (from ``PveClient.take_write_permit``) until the block ends."""
    token = _write_permit.set(permit)
    try:
        yield
    finally:
        _write_permit.reset(token)


class Upid(msgspec.Struct, frozen=True):
    """A decoded PVE task id: which node runs it, which process, what it does, and for whom."""

    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str


def parse_upid(upid: str) -> Upid:
    """Decode ``UPID:node:pid:pstart:starttime:type:id:user:`` exactly as PVE does; ValueError otherwise."""
    m = _UPID_RE.fullmatch(upid) if isinstance(upid, str) else None
    if m is None:
        shown = upid[:120] if isinstance(upid, str) else type(upid).__name__
        raise ValueError(f"not a PVE task id (UPID): {shown!r}")
    return Upid(
        node=m["node"],
        pid=int(m["pid"], 16),
        pstart=int(m["pstart"], 16),
        starttime=int(m["starttime"], 16),
        type=m["type"],
        id=m["id"],
        user=m["user"],
    )


def is_upid(value: object) -> bool:
    """True if ``value`` is a string PVE would accept as a task id (API calls return one for long jobs)."""
    return isinstance(value, str) and _UPID_RE.fullmatch(value) is not None


class TaskResult(msgspec.Struct, frozen=True):
    """How a PVE task ended, with its whole log: the executor puts this in the ledger."""

    upid: str
    node: str
    status: str  # "stopped"
    exitstatus: str  # "OK", "WARNINGS: n", or the error
    ok: bool
    log: list[str]


class TaskTimeoutError(ProximoError, TimeoutError):
    """A task was still running when ``wait_task`` gave up; it may still finish (or fail) on its own."""

    def __init__(self, node: str, upid: str, timeout: float, log: list[str]) -> None:
        self.node = node
        self.upid = upid
        self.log = log
        super().__init__(f"task {upid} on {node} still running after {timeout:g}s")


def check_api_path(path: str) -> None:
    """Refuse a path that could resolve to anything other than what it says (raises ValueError)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError("API path must be a string starting with '/'")
    if "?" in path or "#" in path:
        raise ValueError("API path must not carry a query or fragment: pass params instead")
    if not _PATH_CHARS_RE.fullmatch(path):
        raise ValueError("API path has characters that must be percent-encoded (quote path parameters)")
    if "//" in path:
        raise ValueError("API path must not contain '//'")
    segments = path.split("/")
    if any(seg in (".", "..") for seg in segments):
        raise ValueError("API path must not contain '.' or '..' segments")
    for segment in segments:
        slashed = _ENCODED_SLASH_SEGMENT_RE.fullmatch(segment) is not None
        if slashed and any(part in ("", ".", "..") for part in segment.split("%2F")[1:]):
            raise ValueError("API path has an encoded slash that leads out of its segment ('', '.' or '..' after it)")
        for m in _PCT_RE.finditer(segment):
            digits = m.group(1)
            if len(digits) != 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("API path has a malformed percent-escape")
            if slashed and digits == "2F":
                continue  # a volume id's or a CIDR's own slash, encoded as Proxmox clients send it
            if int(digits, 16) in _FORBIDDEN_ENCODED:
                raise ValueError("API path must not percent-encode dots, slashes, '%', '?', '#' or control characters "
                                 "(a volume id or CIDR segment may carry its slash as %2F)")
