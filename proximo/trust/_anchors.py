"""Ledger anchors: each record's (ledger id, seq, hash) kept somewhere the ledger file's writer cannot reach.

The hash chain shows an edited record, but whoever can write the file can delete its last records, or the whole
file, and leave a valid shorter chain. An anchor is a one-line witness of one record kept elsewhere (syslog, the
journal, a file on another mount or made append-only, an HTTP collector); :func:`check_anchors` then finds an
anchored record that is gone or different, and a ledger that ends before the last anchored seq.

Every sink writes the same line, so one parser reads anchors back from a syslog file, ``journalctl`` output or
an HTTP body::

    proximo-ledger-anchor/1 ledger=<32 hex> seq=<n> hash=<64 hex> kind=<record kind> time=<record time>

A line holds the ledger id, seq, hash, kind and time only: never parameters, outcomes or secrets. Sending never
raises and gives up after about two seconds: a failure is one warning line and a count on the sink
(``AnchorSink.failures``), because a witness that is down must not stop the change it would witness.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import httpx
import msgspec

from .. import hookimpl
from ..pve._client import _SECRET_RE, _is_loopback
from ._ledger import Ledger, LedgerError, LedgerRecord, _one_line
from .._secret import Secret
from ..pve._tls import TlsSettings, make_ssl_context
from ..errors import BadInput

__all__ = [
    "ANCHOR_PACK",
    "Anchor",
    "AnchorError",
    "AnchorPack",
    "AnchorPost",
    "AnchorReport",
    "AnchorSink",
    "FileSink",
    "HttpSink",
    "JournaldSink",
    "SyslogSink",
    "anchor_line",
    "check_anchors",
    "parse_anchors",
    "read_anchors",
    "sinks_from_spec",
]

log = logging.getLogger("proximo.anchors")

ANCHOR_PACK = "ledger-anchor"
"""The name the built-in sinks are registered under in the pack manager (``proximo packs`` shows it)."""

SYSLOG_TAG = "proximo-ledger"
DEFAULT_SYSLOG_SOCKET = "/dev/log"
DEFAULT_JOURNAL_SOCKET = "/run/systemd/journal/socket"
SEND_TIMEOUT = 2.0  # seconds a sink may hold up an append
READ_TIMEOUT = 30.0  # seconds `ledger verify --anchor` waits for a source; a person is waiting, not an apply

# Facility auth (4), severity info (6). Ledger records are authorisation events (who planned, approved, applied);
# Debian routes auth to /var/log/auth.log, root-only and kept out of the general syslog, and forwarding rules to
# a log host usually include it. local0's routing differs from site to site.
_SYSLOG_FACILITY = 4
_SYSLOG_SEVERITY = 6
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # not %b: locale

_VERSION = "1"
# A line that names the format and then a ledger is meant as an anchor: it must parse, or the source is refused.
# A mere mention of the format (a grep in a sudo log line) is not followed by " ledger=" and is ignored.
_CANDIDATE = re.compile(r"proximo-ledger-anchor/(?P<version>\S*) ledger=")
_LINE = re.compile(
    r"proximo-ledger-anchor/1 ledger=(?P<ledger>[0-9a-f]{32}) seq=(?P<seq>[1-9][0-9]{0,17}) hash=(?P<hash>[0-9a-f]{64})"
    r" kind=(?P<kind>[a-z][a-z-]{0,31}) time=(?P<time>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z)"
)
_SHOWN = 120  # characters of a refused line shown in the error


class AnchorError(LedgerError):
    """Anchors cannot be read back, or a source holds a malformed anchor line (it is evidence: never skipped)."""


class Anchor(msgspec.Struct, frozen=True):
    """One record as a witness saw it."""

    ledger: str
    seq: int
    hash: str
    kind: str
    time: str


class AnchorPost(Anchor, frozen=True):
    """What the HTTP sink POSTs, and what a collector may serve back as a JSON list: the fields and the line."""

    line: str


class AnchorReport(msgspec.Struct, frozen=True):
    """The ledger compared with its anchors; ``first_problem`` is the first seq a person should look at."""

    ok: bool
    checked: int  # distinct anchors of this ledger's id, each compared with its record
    other_ledgers: int  # distinct anchors naming another ledger id (an earlier, sealed chain): counted, not errors
    first_problem: int | None
    reason: str


# --- the line --------------------------------------------------------------------------------------------------


def anchor_of(ledger_id: str, record: LedgerRecord) -> Anchor:
    return Anchor(ledger=ledger_id, seq=record.seq, hash=record.hash, kind=record.kind, time=record.time)


def anchor_line(ledger_id: str, record: LedgerRecord) -> str:
    """The anchor line of one record; refused unless it reads back the same (no value can smuggle in a second line)."""
    return _line_of(anchor_of(ledger_id, record))


def _line_of(anchor: Anchor) -> str:
    line = (f"proximo-ledger-anchor/{_VERSION} ledger={anchor.ledger} seq={anchor.seq} hash={anchor.hash}"
            f" kind={anchor.kind} time={anchor.time}")
    if _LINE.fullmatch(line) is None:
        raise AnchorError(f"record {anchor.seq}: cannot make an anchor line: ledger id, hash, kind or time is malformed")
    return line


def parse_anchors(text: str, *, where: str = "anchors") -> list[Anchor]:
    """Every anchor line in ``text`` (a syslog file, journalctl output, an HTTP body), in order; other lines are
    ignored. A line that starts an anchor but does not parse raises :class:`AnchorError` naming it."""
    anchors = []
    for number, line in enumerate(text.splitlines(), 1):
        anchor = _parse_line(line, f"{where} line {number}")
        if anchor is not None:
            anchors.append(anchor)
    return anchors


def _parse_line(line: str, where: str) -> Anchor | None:
    start = _CANDIDATE.search(line)
    if start is None:
        return None
    text = line[start.start():].rstrip()
    if start["version"] != _VERSION:
        raise AnchorError(f"{where}: unsupported anchor format {start['version'][:20]!r} (this Proximo reads /{_VERSION})")
    match = _LINE.fullmatch(text)
    if match is None:
        raise AnchorError(f"{where}: malformed anchor line: {text[:_SHOWN]!r}")
    return Anchor(ledger=match["ledger"], seq=int(match["seq"]), hash=match["hash"], kind=match["kind"], time=match["time"])


# --- sending ---------------------------------------------------------------------------------------------------


class AnchorSink:
    """One place anchors go. ``send`` never raises; ``failures`` counts the records it could not deliver."""

    timeout = SEND_TIMEOUT

    def __init__(self, name: str) -> None:
        self.name = name  # for log lines and `proximo doctor`: never holds a token
        self.failures = 0

    def send(self, ledger_id: str, record: LedgerRecord) -> bool:
        try:
            anchor = anchor_of(ledger_id, record)
            self._deliver(anchor, _line_of(anchor))
        except Exception as e:  # whatever goes wrong, the append it witnesses has happened and must stand
            self.failures += 1
            log.warning("ledger anchor %s: record %d not sent: %s", self.name, record.seq, _one_line(e))
            return False
        return True

    def _deliver(self, anchor: Anchor, line: str) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, failures={self.failures})"


class _DatagramSink(AnchorSink):
    """A message per record to a local unix datagram socket."""

    kind: ClassVar[str]
    default_socket: ClassVar[str]

    def __init__(self, socket_path: str = "") -> None:
        self.socket_path = socket_path or self.default_socket
        super().__init__(f"{self.kind}:{self.socket_path}")

    def _deliver(self, anchor: Anchor, line: str) -> None:
        # A socket per record: a restarted syslogd or journald is picked up at once, and nothing stays open to leak.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(self.timeout)  # a full receive queue blocks sendto; this bounds it
            sock.sendto(self._message(anchor, line), self.socket_path)

    def _message(self, anchor: Anchor, line: str) -> bytes:
        raise NotImplementedError


class SyslogSink(_DatagramSink):
    """RFC 3164 as glibc's syslog(3) writes it to /dev/log: what rsyslog's imuxsock and journald's /dev/log both
    parse (neither reads RFC 5424 there by default)."""

    kind = "syslog"
    default_socket = DEFAULT_SYSLOG_SOCKET

    def _message(self, anchor: Anchor, line: str) -> bytes:
        return syslog_message(line)


def syslog_message(line: str, when: float | None = None) -> bytes:
    """``<38>Mmm dd hh:mm:ss proximo-ledger[PID]: LINE``: auth.info, local time, no hostname (a local socket)."""
    t = time.localtime(when)
    stamp = f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"<{_SYSLOG_FACILITY * 8 + _SYSLOG_SEVERITY}>{stamp} {SYSLOG_TAG}[{os.getpid()}]: {line}".encode()


class JournaldSink(_DatagramSink):
    """systemd's native journal protocol: one datagram of ``KEY=value`` lines (no value holds a newline)."""

    kind = "journald"
    default_socket = DEFAULT_JOURNAL_SOCKET

    def _message(self, anchor: Anchor, line: str) -> bytes:
        fields = {
            "MESSAGE": line,
            "SYSLOG_IDENTIFIER": SYSLOG_TAG,
            "PRIORITY": str(_SYSLOG_SEVERITY),
            "SYSLOG_FACILITY": str(_SYSLOG_FACILITY),  # a journal forwarded to syslog lands where the syslog sink's does
            "PROXIMO_LEDGER_ID": anchor.ledger,
            "PROXIMO_LEDGER_SEQ": str(anchor.seq),
            "PROXIMO_LEDGER_HASH": anchor.hash,
        }
        return "".join(f"{name}={value}\n" for name, value in fields.items()).encode()


class FileSink(AnchorSink):
    """One line per record appended to a file, meant to be on another mount or made append-only (``chattr +a``)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"file:{path}")
        self.path = path

    def _deliver(self, anchor: Anchor, line: str) -> None:
        data = f"{line}\n".encode()
        # Opened per record: a rotated file is followed, and O_APPEND writes a line whole even with other writers.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(f"short write to {self.path}")
            os.fsync(fd)  # the witness must outlive a crash as the ledger's own records do (synchronous=FULL)
        finally:
            os.close(fd)


class HttpSink(AnchorSink):
    """POSTs each anchor as JSON (:class:`AnchorPost`); a 2xx answer is delivery, anything else a failure."""

    def __init__(self, url: str, token: Secret | None = None) -> None:
        super().__init__(_shown_url(url))
        self.url = url
        self._token = token

    def _deliver(self, anchor: Anchor, line: str) -> None:
        post = AnchorPost(line=line, **msgspec.structs.asdict(anchor))
        status = _http(self.url, self._token, self.timeout, body=msgspec.json.encode(post)).status_code
        if not 200 <= status < 300:
            raise OSError(f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else ""))


def _http(url: str, token: Secret | None, timeout: float, *, body: bytes | None = None) -> httpx.Response:
    """One request to an anchor collector: POST ``body``, or GET. TLS verified against the system store, no
    redirects (they would carry the token elsewhere), no proxy or netrc from the environment."""
    headers = {"User-Agent": "proximo", "Accept": "application/json, text/plain"}
    if token:
        headers["Authorization"] = f"Bearer {token.reveal()}"
    with httpx.Client(verify=_system_trust(), timeout=timeout, follow_redirects=False, trust_env=False, headers=headers) as http:
        if body is None:
            return http.get(url)
        return http.post(url, content=body, headers={"Content-Type": "application/json"})


@functools.cache
def _system_trust() -> ssl.SSLContext:
    return make_ssl_context(TlsSettings())  # loading the trust store takes a while: once per process


def _shown_url(url: str) -> str:
    """The URL without credentials or query (either may hold a key): what log lines and reports name."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unreadable URL)"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _check_url(url: str) -> None:
    """An http(s) URL for anchors; plain http only to loopback, as for the API (the token would cross in clear)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise BadInput(f"not a URL: {_shown_url(url)!r}") from None
    if "@" in parts.netloc:
        raise BadInput("an anchor URL must not carry credentials: set PROXIMO_LEDGER_ANCHOR_TOKEN instead")
    if not parts.hostname:
        raise BadInput(f"not a URL: {_shown_url(url)!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise BadInput(f"plain http is allowed only to a loopback address: use https for {_shown_url(url)}")


# --- configuration and the plugin ------------------------------------------------------------------------------


def sinks_from_spec(spec: str, *, token: Secret | None = None) -> list[AnchorSink]:
    """The sinks ``PROXIMO_LEDGER_ANCHOR`` names, comma-separated: ``syslog[:/socket]``, ``journald[:/socket]``,
    ``file:/path``, ``http(s)://...``. ``token`` (``PROXIMO_LEDGER_ANCHOR_TOKEN``) is the HTTP sinks' bearer token.
    A bad entry raises :class:`BadInput` with one line."""
    if token and not _SECRET_RE.fullmatch(token.reveal()):
        raise BadInput("PROXIMO_LEDGER_ANCHOR_TOKEN must be printable ASCII without spaces")
    try:
        return [_sink(entry.strip(), token) for entry in spec.split(",") if entry.strip()]
    except BadInput as e:
        raise BadInput(f"PROXIMO_LEDGER_ANCHOR: {e}") from None


def _sink(entry: str, token: Secret | None) -> AnchorSink:
    kind, colon, target = entry.partition(":")
    if kind in ("http", "https"):
        _check_url(entry)
        return HttpSink(entry, token)
    local_sinks: dict[str, type[FileSink | SyslogSink | JournaldSink]] = {"syslog": SyslogSink, "journald": JournaldSink, "file": FileSink}
    if kind in local_sinks:
        if (colon or kind == "file") and not os.path.isabs(target):  # syslog and journald alone mean their usual socket
            raise BadInput(f"{kind}: needs an absolute path, not {target!r}")
        return local_sinks[kind](target)
    raise BadInput(f"unknown anchor sink {entry[:60]!r} (use syslog, journald, file:/PATH or an https:// URL)")


class AnchorPack:
    """The built-in sinks as an internal plugin: every ledger record is anchored in each sink, in order."""

    def __init__(self, sinks: Iterable[AnchorSink]) -> None:
        self.sinks = list(sinks)

    @hookimpl
    def proximo_prove(self, record: LedgerRecord, ledger_id: str) -> None:
        for sink in self.sinks:
            sink.send(ledger_id, record)


# --- reading back and checking ---------------------------------------------------------------------------------


def read_anchors(source: str, *, token: Secret | None = None) -> list[Anchor]:
    """The anchors a source holds: a file (``PATH`` or ``file:PATH``: the file sink's file, or a syslog file such
    as /var/log/auth.log), ``journald`` (through journalctl), or an http(s) URL whose body holds anchor lines or a
    JSON list of :class:`AnchorPost` objects (``token`` is sent as a bearer token)."""
    if source == "journald":
        return parse_anchors(_journal_text(), where="journalctl")
    if source.startswith(("http://", "https://")):
        return _anchors_from_url(source, token)
    path = Path(source.removeprefix("file:"))
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")  # a syslog file may hold anyone's bytes
    except OSError as e:
        raise AnchorError(f"cannot read anchors from {path}: {e.strerror or _one_line(e)}") from None
    return parse_anchors(text, where=str(path))


def _journal_text() -> str:
    command = ["journalctl", "-o", "cat", f"SYSLOG_IDENTIFIER={SYSLOG_TAG}", "--no-pager"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=READ_TIMEOUT * 4, check=False)
    except FileNotFoundError:
        raise AnchorError("journalctl not found: read the anchors from a syslog file or URL instead") from None
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AnchorError(f"journalctl failed: {_one_line(e)}") from None
    if done.returncode != 0:
        detail = " ".join(done.stderr.decode(errors="replace").split()) or f"exit status {done.returncode}"
        raise AnchorError(f"journalctl failed: {detail[:_SHOWN * 2]}")
    return done.stdout.decode("utf-8", errors="replace")


def _anchors_from_url(url: str, token: Secret | None) -> list[Anchor]:
    _check_url(url)
    shown = _shown_url(url)
    try:
        response = _http(url, token, READ_TIMEOUT)
    except httpx.HTTPError as e:
        raise AnchorError(f"cannot read anchors from {shown}: {_one_line(e)}") from None
    if response.status_code != 200:
        raise AnchorError(f"cannot read anchors from {shown}: HTTP {response.status_code}")
    if not response.text.lstrip().startswith("["):
        return parse_anchors(response.text, where=shown)
    try:
        posts = msgspec.json.decode(response.content, type=list[AnchorPost])
    except msgspec.MsgspecError as e:
        raise AnchorError(f"{shown}: not a JSON list of anchors: {_one_line(e)}") from None
    anchors = []
    for number, post in enumerate(posts, 1):
        where = f"{shown} item {number}"
        anchor = Anchor(**{name: getattr(post, name) for name in Anchor.__struct_fields__})
        if _parse_line(post.line, where) != anchor:  # the fields and the line are one witness: they must agree
            raise AnchorError(f"{where}: its fields and its line disagree: {post.line[:_SHOWN]!r}")
        anchors.append(anchor)
    return anchors


def check_anchors(ledger: Ledger, anchors: Iterable[Anchor]) -> AnchorReport:
    """Whether every anchor of this ledger's id still matches the ledger, and the ledger reaches the last one.

    This compares records with their witnesses only; ``Ledger.verify`` walks the chain itself. An anchor of
    another ledger id is counted, not checked, unless it holds this ledger's record: then the id was changed.
    """
    ledger_id = ledger.ledger_id
    unique = set(anchors)  # one record anchored to syslog and to the journal reads back twice from journalctl
    mine = sorted((a for a in unique if a.ledger == ledger_id), key=lambda a: (a.seq, a.hash, a.kind, a.time))
    others = sorted((a for a in unique if a.ledger != ledger_id), key=lambda a: (a.seq, a.ledger))
    end = ledger.head().seq
    problems: list[tuple[int, str]] = []
    for anchor in mine:
        if anchor.seq <= end:
            problem = _mismatch(ledger, anchor)
            if problem:
                problems.append((anchor.seq, problem))
    last = mine[-1] if mine else None
    if last is not None and last.seq > end:
        problems.append((end + 1, f"record {end + 1}: missing; the ledger ends at {end} but record {last.seq} was anchored"
                                  f" ({last.kind} at {last.time})"))
    sealed = _sealed_predecessor(ledger)
    for anchor in others:
        record = ledger.get(anchor.seq) if anchor.seq <= end else None
        if record is not None and record.hash == anchor.hash:
            problems.append((anchor.seq, f"record {anchor.seq}: anchored under ledger id {anchor.ledger}, but this ledger's"
                                         f" id is {ledger_id}: the id was changed"))
        elif sealed is None or anchor.ledger != sealed[0]:
            # A chain this one does not name: the file was deleted and made anew (a seal's first record names the chain
            # it replaces, so an honest restart is never reported here).
            problems.append((1, f"record 1: anchors name ledger {anchor.ledger}, which this ledger does not name as the "
                                "chain it sealed: the ledger file was replaced"))
        elif anchor.seq > sealed[1]:
            problems.append((1, f"record 1: the sealed ledger {anchor.ledger} ended at {sealed[1]} when it was sealed, but "
                                f"its record {anchor.seq} was anchored: records were removed before the seal"))
    others_note = f"; {len(others)} anchor{'s' if len(others) != 1 else ''} of other ledgers not checked" if others else ""
    if problems:
        seq, reason = min(problems, key=lambda p: p[0])
        more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
        return AnchorReport(ok=False, checked=len(mine), other_ledgers=len(others), first_problem=seq, reason=reason + more)
    if last is None:
        reason = f"no anchor names this ledger ({ledger_id}){others_note}"
    else:
        reason = (f"{len(mine)} anchor{'s' if len(mine) != 1 else ''} of ledger {ledger_id} match;"
                  f" the ledger reaches anchored record {last.seq}{others_note}")
    return AnchorReport(ok=True, checked=len(mine), other_ledgers=len(others), first_problem=None, reason=reason)


def _sealed_predecessor(ledger: Ledger) -> tuple[str, int] | None:
    """(id, last seq) of the chain this one sealed, from its first record (kind ``seal``), if it is one."""
    first = ledger.get(1)
    if first is None or first.kind != "seal":
        return None
    head = first.outcome.get("sealed_head") or {}
    seq = head.get("seq") if isinstance(head, dict) else None
    return str(first.outcome.get("sealed_ledger_id", "")), seq if isinstance(seq, int) else 0


def _mismatch(ledger: Ledger, anchor: Anchor) -> str | None:
    record = ledger.get(anchor.seq)
    if record is None:
        return f"record {anchor.seq}: missing, but it was anchored ({anchor.kind} at {anchor.time})"
    if record.hash != anchor.hash:
        return f"record {anchor.seq}: hash differs from its anchor ({record.hash[:12]}... in the ledger, {anchor.hash[:12]}... anchored)"
    if problem := ledger.check_record(record):  # the hash column kept, the content under it edited
        return problem
    if (record.kind, record.time) != (anchor.kind, anchor.time):
        return f"record {anchor.seq}: its anchor says {anchor.kind} at {anchor.time}, the ledger {record.kind} at {record.time}"
    return None
