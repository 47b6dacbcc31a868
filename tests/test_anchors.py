"""Ledger anchors: the line, every sink for real (unix datagram sockets, a file, a loopback HTTP collector), sinks that
fail without raising, reading anchors back, and catching a ledger that lost or changed anchored records."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import ssl
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trustme

import proximo
from proximo import BadInput
from proximo.trust._anchors import (
    ANCHOR_PACK,
    Anchor,
    AnchorError,
    AnchorPack,
    FileSink,
    HttpSink,
    JournaldSink,
    SyslogSink,
    anchor_line,
    check_anchors,
    parse_anchors,
    read_anchors,
    sinks_from_spec,
    syslog_message,
)
from proximo.trust._ledger import Actor, Ledger, LedgerRecord
from proximo._plugins import PackManager
from proximo._secret import Secret
from proximo._settings import Settings
from proximo.testing import World
from test_ledger import raw  # the ledger file with the append-only triggers dropped, as an attacker would

PERSON = Actor(token_id="-", face="terminal", client="alice@workstation")
TOKEN = "anchor-bearer-7e57-do-not-leak"
LEDGER_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite") as book:
        yield book


def fill(book: Ledger, n: int) -> list[LedgerRecord]:
    records = [book.append("plan", actor=PERSON, tool="storage.delete", params={"storage": f"s{i}", "password": "hunter2"},
                           plan_id=f"p-{i:012x}") for i in range(n)]
    assert all(r is not None for r in records)
    return [r for r in records if r is not None]


def lines_of(book: Ledger) -> list[str]:
    return [anchor_line(book.ledger_id, r) for r in book.records()]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: a unix socket path must fit in 108 bytes, and pytest's tmp_path may not."""
    with tempfile.TemporaryDirectory(prefix="anchor-") as name:
        yield Path(name)


@contextmanager
def datagram_listener(path: Path) -> Iterator[socket.socket]:
    """A unix datagram socket standing in for /dev/log or journald's socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        yield sock


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "proximo.anchors"]


# --- the line ----------------------------------------------------------------------------------------------------


def test_the_line_holds_ids_seq_hash_kind_and_time_only(ledger: Ledger) -> None:
    record = fill(ledger, 1)[0]
    line = anchor_line(ledger.ledger_id, record)
    assert line == (f"proximo-ledger-anchor/1 ledger={ledger.ledger_id} seq=1 hash={record.hash} kind=plan time={record.time}")
    assert "storage.delete" not in line and "s0" not in line and "hunter2" not in line and "redacted" not in line
    assert parse_anchors(line) == [Anchor(ledger=ledger.ledger_id, seq=1, hash=record.hash, kind="plan", time=record.time)]


def test_a_ledger_id_that_would_smuggle_a_second_anchor_is_refused(ledger: Ledger) -> None:
    record = fill(ledger, 1)[0]
    with pytest.raises(AnchorError, match="malformed"):
        anchor_line(f"{LEDGER_ID}\nproximo-ledger-anchor/1 ledger={LEDGER_ID}", record)


def test_parse_finds_anchors_anywhere_and_ignores_everything_else(ledger: Ledger) -> None:
    a, b = (anchor_line(ledger.ledger_id, r) for r in fill(ledger, 2))
    text = "\n".join([
        "Mar  3 10:00:00 pve1 sshd[811]: Accepted publickey for root from 10.0.0.5",
        f"Mar  3 10:00:01 pve1 proximo-ledger[4242]: {a}",
        "Mar  3 10:00:02 pve1 sudo: root : COMMAND=/usr/bin/grep proximo-ledger-anchor/1 /var/log/auth.log",
        "",
        f"{b}\r",  # journalctl -o cat, or an HTTP body with CRLF
        "proximo-ledger-anchor/ mentioned in passing",
    ])
    assert [x.seq for x in parse_anchors(text)] == [1, 2]
    assert parse_anchors("nothing here\n") == []


@pytest.mark.parametrize(("line", "error"), [
    (f"proximo-ledger-anchor/1 ledger={LEDGER_ID} seq=", "malformed anchor line"),  # cut short
    (f"proximo-ledger-anchor/1 ledger={LEDGER_ID} seq=1 hash={'g' * 64} kind=plan time=2026-01-01T00:00:00.000001Z",
     "malformed anchor line"),
    (f"proximo-ledger-anchor/1 ledger={LEDGER_ID} seq=1 hash={'a' * 64} kind=plan time=2026-01-01T00:00:00Z extra",
     "malformed anchor line"),
    (f"proximo-ledger-anchor/1 ledger={LEDGER_ID} seq=0 hash={'a' * 64} kind=plan time=2026-01-01T00:00:00Z",
     "malformed anchor line"),
    (f"proximo-ledger-anchor/2 ledger={LEDGER_ID} seq=1", "unsupported anchor format '2'"),
])
def test_a_malformed_anchor_line_is_refused_naming_where_it_is(line: str, error: str) -> None:
    with pytest.raises(AnchorError) as info:
        parse_anchors(f"fine\nfine\nJan  1 00:00:00 pve1 proximo-ledger[1]: {line}\n", where="/var/log/auth.log")
    assert str(info.value).startswith("/var/log/auth.log line 3: ") and error in str(info.value)
    assert "\n" not in str(info.value)


# --- configuration -----------------------------------------------------------------------------------------------


def test_a_spec_names_sinks_in_order() -> None:
    sinks = sinks_from_spec(" syslog, journald,syslog:/run/x.sock , file:/mnt/witness/anchors.log,"
                            "https://collector.example/anchors?key=k1,http://127.0.0.1:8080/a,,")
    assert [type(s) for s in sinks] == [SyslogSink, JournaldSink, SyslogSink, FileSink, HttpSink, HttpSink]
    assert [s.name for s in sinks] == ["syslog:/dev/log", "journald:/run/systemd/journal/socket", "syslog:/run/x.sock",
                                       "file:/mnt/witness/anchors.log", "https://collector.example/anchors",
                                       "http://127.0.0.1:8080/a"]
    assert sinks_from_spec("") == [] and sinks_from_spec(" , ") == []


@pytest.mark.parametrize(("spec", "error"), [
    ("sylog", "unknown anchor sink 'sylog'"),
    ("/var/log/anchors", "unknown anchor sink"),
    ("file:", "file: needs an absolute path"),
    ("file:anchors.log", "file: needs an absolute path, not 'anchors.log'"),
    ("journald:run/sock", "journald: needs an absolute path"),
    ("http://collector.example/a", "plain http is allowed only to a loopback address"),
    ("https://", "not a URL"),
    ("https://h:99999/", "not a URL"),
    ("https://alice:s3cr3t-pw@collector.example/a", "must not carry credentials"),
    ("https://s3cr3t@/a", "must not carry credentials"),
    ("https://s3cr3t@[::1/a", "not a URL: '(an unreadable URL)'"),
])
def test_a_bad_spec_is_one_clear_line(spec: str, error: str) -> None:
    with pytest.raises(BadInput) as info:
        sinks_from_spec(f"syslog,{spec}")
    message = str(info.value)
    assert message.startswith("PROXIMO_LEDGER_ANCHOR: ") and error in message and "\n" not in message
    assert "s3cr3t" not in message


def test_settings_read_the_anchor_and_stop_on_a_bad_one(tmp_path: Path) -> None:
    env = {"PROXIMO_HOME": str(tmp_path), "PROXIMO_LEDGER_ANCHOR": " file:/a ", "PROXIMO_LEDGER_ANCHOR_TOKEN": TOKEN}
    settings = Settings.from_env(env)
    assert settings.ledger_anchor == "file:/a" and settings.ledger_anchor_token is not None
    assert settings.ledger_anchor_token.reveal() == TOKEN and TOKEN not in repr(settings)
    assert Settings.from_env({"PROXIMO_HOME": str(tmp_path)}).ledger_anchor == ""
    with pytest.raises(BadInput, match="^PROXIMO_LEDGER_ANCHOR: unknown anchor sink 'nope'"):
        Settings.from_env({**env, "PROXIMO_LEDGER_ANCHOR": "nope"})
    with pytest.raises(BadInput, match="^PROXIMO_LEDGER_ANCHOR_TOKEN must be printable ASCII"):
        Settings.from_env({**env, "PROXIMO_LEDGER_ANCHOR_TOKEN": "two words"})


def test_the_anchor_pack_is_registered_only_when_anchors_are_set(tmp_path: Path) -> None:
    from proximo._host import make_packs

    plain = Settings.from_env({"PROXIMO_HOME": str(tmp_path)})
    anchored = Settings.from_env({"PROXIMO_HOME": str(tmp_path), "PROXIMO_LEDGER_ANCHOR": f"file:{tmp_path / 'a.log'}"})
    assert ANCHOR_PACK not in {p.name for p in make_packs(plain, load_entry_points=False).packs()}
    assert ANCHOR_PACK in {p.name for p in make_packs(anchored, load_entry_points=False).packs()}


def test_prove_passes_the_ledger_id_to_packs_that_take_it(ledger: Ledger) -> None:
    seen: list[tuple[int, str]] = []

    class Witness:
        @proximo.hookimpl
        def proximo_prove(self, record: LedgerRecord, ledger_id: str) -> None:
            seen.append((record.seq, ledger_id))

    record = fill(ledger, 1)[0]
    PackManager(load_entry_points=False, extra=[("witness", Witness())]).prove(record, ledger_id=ledger.ledger_id)
    assert seen == [(1, ledger.ledger_id)]


# --- each sink for real ------------------------------------------------------------------------------------------


@pytest.fixture
def utc() -> Iterator[None]:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


def test_the_syslog_message_is_rfc3164_auth_info(utc: None) -> None:
    when = 1767323045.0  # 2026-01-02 03:04:05 UTC
    assert syslog_message("L", when) == f"<38>Jan  2 03:04:05 proximo-ledger[{os.getpid()}]: L".encode()


def test_syslog_sink_sends_one_datagram_per_record(ledger: Ledger, short_dir: Path) -> None:
    records = fill(ledger, 2)
    with datagram_listener(short_dir / "log") as listener:
        sink = SyslogSink(str(short_dir / "log"))
        assert all(sink.send(ledger.ledger_id, r) for r in records)
        got = [listener.recv(65536) for _ in records]
    months = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
    for datagram, record in zip(got, records, strict=True):
        line = anchor_line(ledger.ledger_id, record).encode()
        assert re.fullmatch(rb"<38>(%s) [ 1-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] proximo-ledger\[%d\]: " % (months.encode(), os.getpid())
                            + re.escape(line), datagram), datagram
    assert sink.failures == 0
    assert [a.seq for a in parse_anchors(b"\n".join(got).decode())] == [1, 2]


def test_journald_sink_sends_native_journal_fields(ledger: Ledger, short_dir: Path) -> None:
    record = fill(ledger, 1)[0]
    with datagram_listener(short_dir / "journal") as listener:
        sink = JournaldSink(str(short_dir / "journal"))
        assert sink.send(ledger.ledger_id, record)
        datagram = listener.recv(65536)
    assert datagram == (
        f"MESSAGE={anchor_line(ledger.ledger_id, record)}\n"
        "SYSLOG_IDENTIFIER=proximo-ledger\nPRIORITY=6\nSYSLOG_FACILITY=4\n"
        f"PROXIMO_LEDGER_ID={ledger.ledger_id}\nPROXIMO_LEDGER_SEQ=1\nPROXIMO_LEDGER_HASH={record.hash}\n"
    ).encode()


def test_file_sink_appends_one_line_per_record_and_creates_the_file_0640(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "witness" / "anchors.log"
    path.parent.mkdir()
    records = fill(ledger, 3)
    old_umask = os.umask(0o022)
    try:
        sink = FileSink(str(path))
        assert sink.send(ledger.ledger_id, records[0])
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    path.chmod(0o600)  # an existing file keeps its mode
    assert all(sink.send(ledger.ledger_id, r) for r in records[1:])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "".join(f"{line}\n" for line in lines_of(ledger))
    assert read_anchors(str(path)) == read_anchors(f"file:{path}") == parse_anchors(path.read_text())


class Collector:
    """A loopback HTTP anchor collector: stores what is POSTed, serves it back (JSON list, or lines at /text)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.posts: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self.status = 201
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                collector.authorizations.append(self.headers.get("Authorization"))
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if collector.status < 300:
                    collector.posts.append(json.loads(body))
                self._answer(collector.status, b"", "text/plain")

            def do_GET(self) -> None:  # noqa: N802
                collector.authorizations.append(self.headers.get("Authorization"))
                if self.path == "/text":
                    self._answer(200, "".join(f"{p['line']}\n" for p in collector.posts).encode(), "text/plain")
                else:
                    self._answer(200, json.dumps(collector.posts).encode(), "application/json")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda *args: None  # type: ignore[method-assign]  # a refused TLS handshake is the point
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Collector:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


def test_http_sink_posts_json_with_the_bearer_token_and_reads_back(ledger: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    records = fill(ledger, 2)
    with Collector() as collector:
        (sink,) = sinks_from_spec(f"{collector.url}/anchors", token=Secret(TOKEN))
        assert all(sink.send(ledger.ledger_id, r) for r in records)
        assert collector.posts == [
            {"line": anchor_line(ledger.ledger_id, r), "ledger": ledger.ledger_id, "seq": r.seq, "hash": r.hash,
             "kind": r.kind, "time": r.time} for r in records
        ]
        from_json = read_anchors(f"{collector.url}/anchors", token=Secret(TOKEN))
        from_text = read_anchors(f"{collector.url}/text")
    assert collector.authorizations[:3] == [f"Bearer {TOKEN}"] * 3 and collector.authorizations[3] is None
    assert from_json == from_text == parse_anchors("\n".join(lines_of(ledger)))
    assert sink.failures == 0
    assert not any(TOKEN in r.getMessage() or TOKEN in str(r.args) for r in caplog.records)


def test_a_json_item_whose_line_and_fields_disagree_is_refused(ledger: Ledger) -> None:
    record = fill(ledger, 1)[0]
    with Collector() as collector:
        collector.posts.append({"line": anchor_line(ledger.ledger_id, record), "ledger": ledger.ledger_id, "seq": 2,
                                "hash": record.hash, "kind": "plan", "time": record.time})
        with pytest.raises(AnchorError, match=r"item 1: its fields and its line disagree"):
            read_anchors(collector.url)


@contextmanager
def hanging_server() -> Iterator[str]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/anchors"


@contextmanager
def refused_url() -> Iterator[str]:
    """A loopback port bound but not listening: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/anchors"


@pytest.fixture(scope="module")
def self_signed() -> ssl.SSLContext:
    """A certificate from a CA the system does not trust: TLS verification must refuse the collector."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


def test_failing_sinks_log_one_line_count_and_never_raise(ledger: Ledger, short_dir: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture, self_signed: ssl.SSLContext) -> None:
    caplog.set_level(logging.DEBUG)
    record = fill(ledger, 1)[0]
    (tmp_path / "a-directory").mkdir()
    with Collector() as failing, Collector(self_signed) as untrusted, hanging_server() as hanging, refused_url() as refused:
        failing.status = 500
        sinks = [
            SyslogSink(str(short_dir / "no-such-socket")),
            JournaldSink(str(short_dir / "no-such-journal")),
            FileSink(str(tmp_path / "no-such-dir" / "anchors.log")),
            FileSink(str(tmp_path / "a-directory")),
            HttpSink(refused, Secret(TOKEN)),
            HttpSink(f"{failing.url}/anchors?key=k1", Secret(TOKEN)),
            HttpSink(untrusted.url, Secret(TOKEN)),
            HttpSink(hanging, Secret(TOKEN)),
        ]
        sinks[-1].timeout = 0.2  # the same bound as the default 2 s, shorter so the test is quick
        for sink in sinks:
            assert sink.send(ledger.ledger_id, record) is False
        assert untrusted.posts == [] and untrusted.authorizations == []  # nothing crossed a connection we could not verify
    assert [s.failures for s in sinks] == [1] * len(sinks)
    warnings = warnings_of(caplog)
    assert len(warnings) == len(sinks)
    for warning, sink in zip(warnings, sinks, strict=True):
        message = warning.getMessage()
        assert warning.levelno == logging.WARNING and warning.exc_info is None and "\n" not in message
        assert message.startswith(f"ledger anchor {sink.name}: record 1 not sent: "), message
        assert "proximo-ledger-anchor/" not in message  # a warning line must never read back as an anchor
    assert "HTTP 500" in warnings[5].getMessage() and "k1" not in warnings[5].getMessage()
    assert "certificate" in warnings[6].getMessage().lower()
    assert not any(TOKEN in r.getMessage() or TOKEN in str(r.args) for r in caplog.records)


def test_a_pack_with_a_failing_sink_still_feeds_the_others(ledger: Ledger, short_dir: Path, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    records = fill(ledger, 2)
    good = FileSink(str(tmp_path / "anchors.log"))
    pack = AnchorPack([SyslogSink(str(short_dir / "missing")), good])
    for record in records:
        pack.proximo_prove(record, ledger.ledger_id)
    assert pack.sinks[0].failures == 2 and good.failures == 0
    assert read_anchors(good.path) == parse_anchors("\n".join(lines_of(ledger)))
    assert len(warnings_of(caplog)) == 2


# --- reading back ------------------------------------------------------------------------------------------------


def test_reading_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AnchorError, match=r"^cannot read anchors from .*nope\.log: No such file or directory$"):
        read_anchors(str(tmp_path / "nope.log"))


def test_reading_a_url_checks_it_and_its_answer(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="plain http is allowed only to a loopback address"):
        read_anchors("http://collector.example/anchors")
    with refused_url() as url, pytest.raises(AnchorError, match=r"^cannot read anchors from http://127\.0\.0\.1:\d+/anchors: "):
        read_anchors(url)


def test_journald_is_read_through_journalctl(ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(ledger, 2)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "journal.txt").write_text("-- Boot 1 --\n" + "\n".join(lines_of(ledger)) + "\n")
    fake = bin_dir / "journalctl"
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/argv\nexec {shutil.which("cat")} {tmp_path}/journal.txt\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert read_anchors("journald") == parse_anchors("\n".join(lines_of(ledger)))
    assert (tmp_path / "argv").read_text() == "-o cat SYSLOG_IDENTIFIER=proximo-ledger --no-pager\n"

    fake.write_text("#!/bin/sh\necho 'Failed to open journal: Permission denied' >&2\nexit 1\n")
    with pytest.raises(AnchorError, match="^journalctl failed: Failed to open journal: Permission denied$"):
        read_anchors("journald")

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(AnchorError, match="^journalctl not found"):
        read_anchors("journald")


# --- checking the ledger against its anchors -----------------------------------------------------------------------


def anchored(tmp_path: Path, n: int = 5) -> tuple[Path, list[Anchor]]:
    """A ledger of ``n`` records and the anchors of every one, as a witness kept them."""
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as book:
        fill(book, n)
        return path, parse_anchors("\n".join(lines_of(book)))


def test_an_intact_ledger_matches_its_anchors(tmp_path: Path) -> None:
    path, anchors = anchored(tmp_path)
    with Ledger(path) as book:
        fill(book, 2)  # records appended after the witness last heard are fine
        report = check_anchors(book, anchors + anchors[:2])  # the same record from two sinks counts once
    assert report.ok and report.checked == 5 and report.other_ledgers == 0 and report.first_problem is None
    assert report.reason.startswith("5 anchors of ledger ") and "reaches anchored record 5" in report.reason


@pytest.mark.parametrize(("tamper", "first_problem", "reason", "chain_sees_it"), [
    ("DELETE FROM records WHERE seq > 3", 4, "record 4: missing; the ledger ends at 3 but record 5 was anchored (plan at ", False),
    ("DELETE FROM records", 1, "record 1: missing; the ledger ends at 0 but record 5 was anchored", False),
    ("UPDATE records SET hash = 'ffffffffffffffff' WHERE seq = 2", 2, "record 2: hash differs from its anchor (ffffffffffff...", True),
    ("DELETE FROM records WHERE seq = 3", 3, "record 3: missing, but it was anchored (plan at ", True),
], ids=["truncated", "emptied", "edited", "middle-deleted"])
def test_a_tampered_ledger_is_caught(tmp_path: Path, tamper: str, first_problem: int, reason: str, chain_sees_it: bool) -> None:
    path, anchors = anchored(tmp_path)
    with raw(path) as db:
        db.execute(tamper)
    with Ledger(path, high_water_mark=False) as book:  # the chain alone; the mark beside it has its own tests
        assert book.verify().ok is not chain_sees_it  # a shorter tail is a valid chain: only a witness sees it
        report = check_anchors(book, anchors)
    assert not report.ok and report.first_problem == first_problem and report.checked == 5
    assert report.reason.startswith(reason), report.reason


def test_an_anchor_that_disagrees_on_kind_or_time_is_caught(tmp_path: Path) -> None:
    path, anchors = anchored(tmp_path)
    forged = msgspec.structs.replace(anchors[1], kind="approve")
    with Ledger(path) as book:
        report = check_anchors(book, [forged])
    assert not report.ok and report.first_problem == 2 and "its anchor says approve at" in report.reason


def test_anchors_of_a_chain_this_one_does_not_name_mean_the_file_was_replaced(tmp_path: Path) -> None:
    """`rm ledger.sqlite*`: Proximo starts a new chain with a new id; the old chain's anchors give it away."""
    path, anchors = anchored(tmp_path)
    _, older = anchored(tmp_path / "older", n=8)  # another chain, never sealed into this one
    with Ledger(path) as book:
        report = check_anchors(book, anchors + older)
    assert not report.ok and report.first_problem == 1 and report.other_ledgers == 8
    assert "which this ledger does not name as the chain it sealed: the ledger file was replaced" in report.reason


def test_anchors_of_the_sealed_chain_are_counted_not_errors(tmp_path: Path) -> None:
    from proximo.trust._ledger import seal

    path, old_anchors = anchored(tmp_path)
    with raw(path) as db:
        db.execute("UPDATE records SET tool = 'forged' WHERE seq = 2")
    record = seal(path, None, actor=PERSON, reason="test")
    with Ledger(path) as book:
        new_anchors = parse_anchors("\n".join(lines_of(book)))
        report = check_anchors(book, old_anchors + new_anchors)
        nothing_of_ours = check_anchors(book, old_anchors)
    assert record.outcome["sealed_head"]["seq"] == 5
    assert report.ok and report.checked == 1 and report.other_ledgers == 5
    assert report.reason.endswith("; 5 anchors of other ledgers not checked")
    assert nothing_of_ours.ok and nothing_of_ours.checked == 0
    assert nothing_of_ours.reason.startswith("no anchor names this ledger (")


def test_a_changed_ledger_id_is_caught(tmp_path: Path) -> None:
    path, anchors = anchored(tmp_path)
    with raw(path) as db:  # truncate, then give the chain a new id so every anchor looks like another ledger's
        db.execute("DELETE FROM records WHERE seq > 3")
        db.execute("UPDATE meta SET value = ? WHERE name = 'ledger_id'", ("e" * 32,))
    with Ledger(path) as book:
        report = check_anchors(book, anchors)
    assert not report.ok and report.first_problem == 1 and report.checked == 0 and report.other_ledgers == 5
    assert report.reason.startswith(f"record 1: anchored under ledger id {anchors[0].ledger}, but this ledger's id is {'e' * 32}")


def test_every_ledger_gets_an_id_that_stays(tmp_path: Path) -> None:
    with Ledger(tmp_path / "a.sqlite") as a, Ledger(tmp_path / "b.sqlite") as b:
        assert re.fullmatch("[0-9a-f]{32}", a.ledger_id) and a.ledger_id != b.ledger_id
        first = a.ledger_id
    with Ledger(tmp_path / "a.sqlite") as again:
        assert again.ledger_id == first
    with raw(tmp_path / "a.sqlite") as db:  # a ledger made before ids existed
        db.execute("DELETE FROM meta WHERE name = 'ledger_id'")
    with Ledger(tmp_path / "a.sqlite") as old:
        assert re.fullmatch("[0-9a-f]{32}", old.ledger_id) and old.ledger_id != first


# --- end to end ----------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_every_record_of_a_storage_change_is_anchored_in_the_file(tmp_path: Path) -> None:
    witness = tmp_path / "witness" / "anchors.log"
    witness.parent.mkdir()
    world = World(tmp_path / "home", env={"PROXIMO_LEDGER_ANCHOR": f"file:{witness}"})
    async with world.host() as host:
        plan = await host.plan("storage.delete", {"storage": "nfs-backup"}, world.actor)
        if host.needs_person(plan):
            host.approve(plan.plan_id, PERSON, world.person)
        result = await host.apply(plan.plan_id, world.actor)
        assert result.ok
        records = list(host.ledger.records())
        assert [r.kind for r in records] == ["plan", "approve", "apply-start", "apply-result"]
        assert witness.read_text() == "".join(f"{anchor_line(host.ledger.ledger_id, r)}\n" for r in records)
        report = check_anchors(host.ledger, read_anchors(str(witness)))
    assert report.ok and report.checked == len(records) == 4
    assert "nfs-backup" not in witness.read_text()
