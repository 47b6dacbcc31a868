"""The PROVE ledger: chaining, tamper detection, keys, concurrency and redaction."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from proximo.trust._ledger import (
    GENESIS,
    Actor,
    Ledger,
    LedgerError,
    LedgerHead,
    LedgerRecord,
    is_secret_key,
    redact,
)

CLI = Actor(token_id="root@pam!proximo", face="cli")
MCP = Actor(token_id="root@pam!proximo", face="mcp", client="claude-desktop")
KEY = b"k" * 32


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ledger.sqlite"


@pytest.fixture
def ledger(path: Path) -> Iterator[Ledger]:
    """The chain alone (no high-water mark): what each tamper does to the links. The mark has its own tests."""
    with Ledger(path, high_water_mark=False) as led:
        yield led


def fill(led: Ledger, n: int) -> list[LedgerRecord]:
    return [
        led.append("plan", actor=CLI, tool="storage.delete", params={"storage": f"s{i}"}, plan_id=f"p-{i:012x}")
        for i in range(n)
    ]


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection with the append-only triggers dropped: what an attacker would do."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("DROP TRIGGER IF EXISTS records_no_update")
        db.execute("DROP TRIGGER IF EXISTS records_no_delete")
        yield db
    finally:
        db.close()


def canonical(record: LedgerRecord) -> bytes:
    """The spec's canonical encoding, written independently of the implementation (stdlib json)."""
    fields = msgspec.to_builtins(record)
    del fields["hash"]
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --- appending and reading ----------------------------------------------------------------------------


def test_empty_ledger_has_genesis_head(ledger: Ledger) -> None:
    assert ledger.head() == LedgerHead(seq=0, hash=GENESIS, chain="sha256")
    assert ledger.tail() == []
    assert list(ledger.records()) == []
    assert ledger.get(1) is None
    result = ledger.verify()
    assert result.ok and result.records == 0 and result.first_broken is None
    assert result.head == ledger.head()


def test_append_links_records_and_head_follows(ledger: Ledger) -> None:
    first = ledger.append("plan", actor=MCP, tool="guest.destroy", params={"vmid": 104}, plan_id="p-1",
                          plan_hash="ab" * 32, impacts=[{"target": "qemu/104", "effect": "data-loss", "reason": "x"}])
    second = ledger.append("approve", actor=CLI, plan_id="p-1")
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev == GENESIS
    assert second.prev == first.hash
    assert ledger.head() == LedgerHead(seq=2, hash=second.hash, chain="sha256")
    assert ledger.get(1) == first
    assert ledger.get(2) == second
    assert ledger.get(3) is None
    assert first.actor == MCP and first.tool == "guest.destroy" and first.params == {"vmid": 104}
    assert first.impacts == [{"target": "qemu/104", "effect": "data-loss", "reason": "x"}]
    assert second.params == {} and second.outcome == {} and second.impacts == []
    assert datetime.strptime(first.time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) <= datetime.now(UTC)


def test_hash_is_sha256_over_sorted_compact_json_of_all_other_fields(ledger: Ledger) -> None:
    record = ledger.append("exec", actor=MCP, tool="lxc.exec", params={"b": "ü", "a": [1, 2.5, None]},
                           outcome={"exit": 0})
    body = canonical(record)
    assert b'"prev":"' + GENESIS.encode() in body and b'"seq":1' in body
    assert record.hash == hashlib.sha256(body).hexdigest()


def test_append_returns_exactly_what_reads_back(ledger: Ledger) -> None:
    class Impact(msgspec.Struct):
        target: str
        effect: str

    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    record = ledger.append("plan", actor=CLI, params={"ids": (1, 2), 3: when, "nan": float("nan")},
                           impacts=[Impact("qemu/1", "downtime")])
    assert record.params == {"ids": [1, 2], "3": "2025-01-02T03:04:05Z", "nan": None}
    assert record.impacts == [{"target": "qemu/1", "effect": "downtime"}]
    assert ledger.get(1) == record
    assert ledger.verify().ok


def test_tail_records_and_find(ledger: Ledger) -> None:
    records = fill(ledger, 30)
    assert ledger.tail(3) == records[-3:]
    assert [r.seq for r in ledger.tail()] == list(range(11, 31))
    assert ledger.tail(0) == []
    assert ledger.tail(100) == records
    assert list(ledger.records()) == records
    assert [r.seq for r in ledger.records(since=28)] == [28, 29, 30]
    ledger.append("approve", actor=CLI, plan_id=records[4].plan_id)
    assert [r.kind for r in ledger.find(plan_id=records[4].plan_id)] == ["plan", "approve"]
    assert [r.seq for r in ledger.find(plan_id=records[4].plan_id, kind="approve")] == [31]
    assert ledger.find(plan_id="p-nope") == []


def test_records_pages_through_more_than_one_batch(ledger: Ledger) -> None:
    fill(ledger, 1203)
    assert [r.seq for r in ledger.records()] == list(range(1, 1204))
    assert [r.seq for r in ledger.records(since=1000)] == list(range(1000, 1204))


def test_open_applies_are_starts_without_a_later_result(ledger: Ledger) -> None:
    def add(kind: str, plan: str) -> int:
        return ledger.append(kind, actor=CLI, plan_id=plan).seq  # type: ignore[arg-type]

    add("apply-start", "p-done")
    add("apply-result", "p-done")
    crashed = add("apply-start", "p-crashed")
    add("apply-result", "p-early")  # a result before the start does not close it
    early = add("apply-start", "p-early")
    add("apply-start", "p-retried")
    add("apply-result", "p-retried")
    retried = add("apply-start", "p-retried")
    add("apply-result", "p-other")
    assert [r.seq for r in ledger.open_applies()] == [crashed, early, retried]
    add("apply-result", "p-crashed")
    assert [r.plan_id for r in ledger.open_applies()] == ["p-early", "p-retried"]


def test_bad_input_is_refused_and_nothing_is_written(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="unknown ledger record kind 'delete'"):
        ledger.append("delete", actor=CLI)  # type: ignore[arg-type]
    with pytest.raises(LedgerError, match="actor must be an Actor"):
        ledger.append("plan", actor={"token_id": "x", "face": "cli"})  # type: ignore[arg-type]
    with pytest.raises(LedgerError, match=r"actor: Expected `str`, got `int` - at `\$.token_id`"):
        ledger.append("plan", actor=Actor(token_id=7, face="cli"))  # type: ignore[arg-type]
    with pytest.raises(LedgerError, match="tool must be a string"):
        ledger.append("plan", actor=CLI, tool=3)  # type: ignore[arg-type]
    with pytest.raises(LedgerError, match="cannot record params"):
        ledger.append("plan", actor=CLI, params={"x": object()})
    with pytest.raises(LedgerError, match="each impact must be an object, not str"):
        ledger.append("plan", actor=CLI, impacts=["qemu/1"])
    assert ledger.head().seq == 0


def test_no_method_changes_or_removes_a_record(ledger: Ledger) -> None:
    assert not {"update", "delete", "remove", "edit", "truncate", "set"} & set(dir(ledger))
    fill(ledger, 2)
    db = sqlite3.connect(ledger.path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE records SET tool = 'x' WHERE seq = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM records WHERE seq = 2")
    finally:
        db.close()
    assert ledger.verify().ok


# --- verify and tampering ------------------------------------------------------------------------------


def test_verify_50_records(ledger: Ledger) -> None:
    records = fill(ledger, 50)
    result = ledger.verify()
    assert result.ok and result.records == 50 and result.first_broken is None
    assert result.reason == "50 records, chain intact"
    assert result.head == LedgerHead(seq=50, hash=records[-1].hash, chain="sha256")
    assert ledger.verify(expected_head=ledger.head()).ok
    assert ledger.verify(expected_head=LedgerHead(seq=20, hash=records[19].hash, chain="sha256")).ok


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("params", '{"storage":"s-other"}'),
        ("tool", "storage.create"),
        ("kind", "approve"),
        ("actor", '{"client":"","face":"cli","token_id":"mallory@pve!x"}'),
        ("time", "2020-01-01T00:00:00.000000Z"),
        ("outcome", '{"ok":true}'),
    ],
)
def test_edited_field_names_that_record(ledger: Ledger, path: Path, column: str, value: str) -> None:
    fill(ledger, 10)
    with raw(path) as db:
        db.execute(f"UPDATE records SET {column} = ? WHERE seq = 4", (value,))
    result = ledger.verify()
    assert not result.ok
    assert result.first_broken == 4
    assert result.reason == "record 4: hash does not match its content"
    assert result.records == 10


def test_edited_hash_breaks_that_record_and_a_recomputed_one_breaks_the_next_link(ledger: Ledger, path: Path) -> None:
    fill(ledger, 10)
    with raw(path) as db:
        db.execute("UPDATE records SET hash = ? WHERE seq = 6", ("f" * 64,))
    assert ledger.verify().first_broken == 6

    # Edit record 6 and recompute its hash as an attacker without a key can: the link from 7 breaks.
    with raw(path) as db:
        db.execute("UPDATE records SET params = ? WHERE seq = 6", ('{"storage":"forged"}',))
    forged = ledger.get(6)
    assert forged is not None
    with raw(path) as db:
        db.execute("UPDATE records SET hash = ? WHERE seq = 6", (hashlib.sha256(canonical(forged)).hexdigest(),))
    result = ledger.verify()
    assert result.first_broken == 7
    assert result.reason == "record 7: prev does not match the hash of record 6"


def test_edited_prev_of_first_record(ledger: Ledger, path: Path) -> None:
    fill(ledger, 3)
    first = ledger.get(1)
    assert first is not None
    moved = msgspec.structs.replace(first, prev="1" * 64)
    with raw(path) as db:
        db.execute("UPDATE records SET prev = ?, hash = ? WHERE seq = 1",
                   (moved.prev, hashlib.sha256(canonical(moved)).hexdigest()))
    result = ledger.verify()
    assert (result.first_broken, result.reason) == (1, "record 1: prev is not the genesis value")


def test_deleted_middle_row_names_the_record_after_the_gap(ledger: Ledger, path: Path) -> None:
    fill(ledger, 10)
    with raw(path) as db:
        db.execute("DELETE FROM records WHERE seq = 5")
    result = ledger.verify()
    assert (result.ok, result.first_broken, result.records) == (False, 6, 9)
    assert result.reason == "record 6: record 5 is missing before it"

    with raw(path) as db:
        db.execute("DELETE FROM records WHERE seq IN (1, 2)")
    result = ledger.verify()
    assert (result.first_broken, result.reason) == (3, "record 3: records 1..2 are missing before it")


def test_reordered_rows_name_the_first_moved_record(ledger: Ledger, path: Path) -> None:
    fill(ledger, 10)
    with raw(path) as db:  # swap the seq numbers of records 3 and 4
        db.execute("UPDATE records SET seq = -1 WHERE seq = 3")
        db.execute("UPDATE records SET seq = 3 WHERE seq = 4")
        db.execute("UPDATE records SET seq = 4 WHERE seq = -1")
    assert ledger.verify().first_broken == 3

    with raw(path) as db:  # swap back, then swap everything but seq between rows 7 and 8
        db.execute("UPDATE records SET seq = -1 WHERE seq = 3")
        db.execute("UPDATE records SET seq = 3 WHERE seq = 4")
        db.execute("UPDATE records SET seq = 4 WHERE seq = -1")
        assert ledger.verify().ok
        cols = "time, kind, actor, tool, params, plan_id, plan_hash, impacts, outcome, prev, hash"
        seven, eight = (db.execute(f"SELECT {cols} FROM records WHERE seq = ?", (s,)).fetchone() for s in (7, 8))
        sets = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
        db.execute(f"UPDATE records SET {sets} WHERE seq = 7", eight)
        db.execute(f"UPDATE records SET {sets} WHERE seq = 8", seven)
    result = ledger.verify()
    assert (result.first_broken, result.reason) == (7, "record 7: hash does not match its content")


def test_unreadable_row_is_named_not_crashed_on(ledger: Ledger, path: Path) -> None:
    fill(ledger, 5)
    with raw(path) as db:
        db.execute("UPDATE records SET params = 'not json' WHERE seq = 2")
        db.execute("UPDATE records SET kind = 'teleport' WHERE seq = 4")
    result = ledger.verify()
    assert result.first_broken == 2 and result.reason.startswith("record 2: unreadable (")
    assert "\n" not in result.reason
    with pytest.raises(LedgerError, match=r"^record 2: unreadable"):
        ledger.get(2)
    with pytest.raises(LedgerError, match=r"^record 4: unreadable"):
        ledger.tail(2)


def test_deleted_last_row_passes_the_chain_but_not_the_head_a_client_saw(ledger: Ledger, path: Path) -> None:
    fill(ledger, 10)
    seen = ledger.head()
    with raw(path) as db:
        db.execute("DELETE FROM records WHERE seq IN (9, 10)")
    assert ledger.verify().ok  # the chain alone cannot tell: it is a valid, shorter chain
    result = ledger.verify(expected_head=seen)
    assert (result.ok, result.first_broken) == (False, 9)
    assert result.reason == "record 9: missing; the ledger ends at 8 but a client saw head 10"

    # Appending again refills seq 9 and 10 with other records: the witness still catches the swap.
    fill(ledger, 2)
    assert ledger.verify().ok
    result = ledger.verify(expected_head=seen)
    assert (result.ok, result.first_broken) == (False, 10)
    assert result.reason.startswith("record 10: hash differs from the head a client saw")


def test_witness_reports_the_earlier_of_two_problems(ledger: Ledger, path: Path) -> None:
    records = fill(ledger, 10)
    with raw(path) as db:
        db.execute("UPDATE records SET tool = 'x' WHERE seq = 8")
        db.execute("UPDATE records SET hash = ? WHERE seq = 3", ("e" * 64,))
    early = LedgerHead(seq=3, hash=records[2].hash, chain="sha256")
    assert ledger.verify(expected_head=early).first_broken == 3
    with raw(path) as db:
        db.execute("UPDATE records SET hash = ? WHERE seq = 3", (records[2].hash,))
    assert ledger.verify(expected_head=early).first_broken == 8  # the chain breaks first
    other = ledger.verify(expected_head=LedgerHead(seq=3, hash="a" * 64, chain="sha256"))
    assert other.first_broken == 3  # the witness breaks first
    assert other.reason == "record 3: hash differs from the head a client saw (aaaaaaaaaaaa...)"
    assert not ledger.verify(expected_head=LedgerHead(seq=3, hash=records[2].hash, chain="hmac-sha256")).ok


def test_witness_of_an_empty_ledger(ledger: Ledger) -> None:
    empty = ledger.head()
    fill(ledger, 2)
    assert ledger.verify(expected_head=empty).ok
    assert not ledger.verify(expected_head=LedgerHead(seq=0, hash="1" * 64, chain="sha256")).ok


def forge_records_2_to_5_without_a_key(led: Ledger, p: Path) -> None:
    """Rewrite records 2..5 and re-chain them with plain SHA-256, as anyone who can write the file can."""
    with raw(p) as db:
        prev = led.get(1).hash  # type: ignore[union-attr]
        for seq in range(2, 6):
            rec = led.get(seq)
            assert rec is not None
            forged = msgspec.structs.replace(rec, tool="forged", prev=prev)
            prev = hashlib.sha256(canonical(forged)).hexdigest()
            db.execute("UPDATE records SET tool = ?, prev = ?, hash = ? WHERE seq = ?", ("forged", forged.prev, prev, seq))


def test_plain_chain_can_be_rewritten_whole_hmac_chain_cannot(tmp_path: Path) -> None:
    """Why the key matters: without it, whoever can write the file can forge a consistent chain."""
    for key, forgery_passes in ((None, True), (KEY, False)):
        p = tmp_path / f"{bool(key)}.sqlite"
        with Ledger(p, key=key, high_water_mark=False) as led:
            fill(led, 5)
            seen = led.head()
            forge_records_2_to_5_without_a_key(led, p)
            assert led.verify().ok is forgery_passes
            assert led.verify(expected_head=seen).first_broken in ((5,) if forgery_passes else (2,))


def test_the_high_water_mark_catches_a_consistently_rewritten_unkeyed_chain(tmp_path: Path) -> None:
    """The same forgery as above, on an unkeyed ledger with its mark: the newest hash outside the file differs."""
    p = tmp_path / "ledger.sqlite"
    with Ledger(p) as led:
        fill(led, 5)
        forge_records_2_to_5_without_a_key(led, p)
        result = led.verify()
    assert (result.ok, result.first_broken) == (False, 5)
    assert result.reason.startswith("record 5: differs from the high-water mark's hash")


# --- keys ----------------------------------------------------------------------------------------------


def test_hmac_chain_with_the_right_key(path: Path) -> None:
    with Ledger(path, key=KEY) as led:
        record = led.append("plan", actor=CLI, params={"a": 1})
        assert record.hash == hmac.new(KEY, canonical(record), hashlib.sha256).hexdigest()
        assert led.head().chain == "hmac-sha256"
        fill(led, 9)
    with Ledger(path, key=KEY) as led:
        result = led.verify()
        assert result.ok and result.records == 10 and result.head.chain == "hmac-sha256"


def test_hmac_chain_with_the_wrong_key_fails_at_record_1_and_refuses_appends(path: Path) -> None:
    with Ledger(path, key=KEY) as led:
        fill(led, 5)
    with Ledger(path, key=b"not the key") as led:
        result = led.verify()
        assert (result.ok, result.first_broken, result.records) == (False, 1, 5)
        assert result.reason.startswith("record 1: hash does not match its content")
        with pytest.raises(LedgerError, match="key is not the one"):
            led.append("plan", actor=CLI)
        assert led.head().seq == 5


def test_key_mismatch_on_open_is_one_line_error(path: Path) -> None:
    with Ledger(path, key=KEY) as led:
        fill(led, 1)
    with pytest.raises(LedgerError, match="HMAC-chained: set PROXIMO_LEDGER_KEY") as err:
        Ledger(path)
    assert "\n" not in str(err.value)

    plain = path.with_name("plain.sqlite")
    Ledger(plain).close()
    with pytest.raises(LedgerError, match="not keyed: unset PROXIMO_LEDGER_KEY"):
        Ledger(plain, key=KEY)
    with pytest.raises(LedgerError, match="key is empty"):
        Ledger(plain, key=b"")


# --- files and errors ----------------------------------------------------------------------------------


def test_file_is_wal_private_and_in_created_dirs(path: Path) -> None:
    assert not path.parent.exists()
    with Ledger(path) as led:
        fill(led, 1)
        db = sqlite3.connect(path)
        try:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            db.close()
        assert led.head().seq == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_not_a_ledger_is_a_one_line_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite at all\n" * 100)
    with pytest.raises(LedgerError, match=r"^cannot open ledger .*junk\.sqlite: file is not a database$"):
        Ledger(junk)

    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="is an SQLite file but not a Proximo ledger"):
        Ledger(other)


def test_closed_ledger_refuses_use(path: Path) -> None:
    led = Ledger(path)
    led.close()
    led.close()  # idempotent
    with pytest.raises(LedgerError, match="closed"):
        led.head()
    with pytest.raises(LedgerError, match="closed"):
        led.append("plan", actor=CLI)


# --- concurrency ---------------------------------------------------------------------------------------


def test_two_ledger_objects_on_one_file_interleave(path: Path) -> None:
    with Ledger(path) as a, Ledger(path) as b:
        for i in range(20):
            (a if i % 2 else b).append("plan", actor=CLI, params={"i": i})
        assert a.head() == b.head()
        assert a.verify().ok and a.verify().records == 20
        assert [r.params["i"] for r in b.records()] == list(range(20))


def test_threads_share_one_ledger_and_open_their_own(path: Path) -> None:
    shared = Ledger(path)
    errors: list[BaseException] = []

    def work(own: bool, n: int) -> None:
        try:
            led = Ledger(path) if own else shared
            for i in range(n):
                led.append("exec", actor=CLI, params={"thread": threading.get_ident(), "i": i})
            if own:
                led.close()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i % 2 == 0, 40)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        result = shared.verify()
        assert result.ok and result.records == 240
        assert [r.seq for r in shared.records()] == list(range(1, 241))
    finally:
        shared.close()


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from proximo.trust._ledger import Actor, Ledger
    path, name, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.005)
    with Ledger(path) as led:
        for i in range(100):
            led.append("exec", actor=Actor(token_id=name, face="cli"), params={"i": i})
    """
)


def run_children(path: Path, go: Path) -> None:
    """Start two appending processes, let them go at once, and fail with their stderr if one fails."""
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(path), name, str(go)], stderr=subprocess.PIPE)
        for name in ("one", "two")
    ]
    go.touch()
    failures = []
    for child in children:
        _, err = child.communicate(timeout=120)
        if child.returncode:
            failures.append(err.decode())
    assert failures == []


def test_two_processes_append_100_each(path: Path, tmp_path: Path) -> None:
    Ledger(path).close()  # create it first, so both children open an existing file
    run_children(path, tmp_path / "go")
    with Ledger(path) as led:
        result = led.verify()
        assert result.ok, result.reason
        assert result.records == 200
        records = list(led.records())
    assert [r.seq for r in records] == list(range(1, 201))
    for name in ("one", "two"):
        assert [r.params["i"] for r in records if r.actor.token_id == name] == list(range(100))


def test_two_processes_creating_the_same_new_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "ledger.sqlite"
    run_children(path, tmp_path / "go")
    with Ledger(path) as led:
        assert led.verify().ok and led.head().seq == 200


# --- redaction -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "password", "Password", "cipassword", "confirmation-password", "bind_password", "passwd",
        "passphrase", "secret", "client_secret", "token-secret", "tokensecret", "TokenSecret",
        "keyring", "key", "encryption-key", "client-key", "eab-hmac-key", "api_key", "apiKey", "APIKey",
        "private-key", "ssh_private_key_pem", "corosync_authkey", "token", "api-token", "CSRFPreventionToken",
        "ticket", "vncticket", "otp", "totp", "credentials", "Authorization", "cookie",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_key(name)
    assert redact({name: "s3cr3t"}) == {name: "***redacted***"}


@pytest.mark.parametrize(
    "name",
    [
        "digest", "keep", "kind", "keys", "sshkeys", "ssh-public-keys", "master-pubkey", "public_key",
        "publicKey", "keyboard", "features.keyctl", "pre-enrolled-keys", "tokenid", "token_id", "tokens",
        "full-tokenid", "token-coefficient", "fingerprint", "storage", "monkey", "turkey", "hotkey",
        "config-keys", "vmid", "passthrough", "delete",
    ],
)
def test_not_secret_names(name: str) -> None:
    assert not is_secret_key(name)
    assert redact({name: "visible"}) == {name: "visible"}


def test_redact_is_recursive_and_leaves_the_input_alone() -> None:
    token = "a2bc3d4e-0000-4f1a-9b2c-0123456789ab"
    params = {
        "storage": "pbs1",
        "password": "hunter2",
        "generate-password": True,
        "cipassword": None,
        "nested": {"level": [{"secret": {"deep": 1}}, "PVEAPIToken=root@pam!p=" + token, 7]},
        "note": f"curl -H 'Authorization: PVEAPIToken=root@pam!proximo={token}'",
        "env": [f"root@pam!proximo={token}", "ok"],
        "otp": 123456,
    }
    before = json.dumps(params)
    out = redact(params)
    assert json.dumps(params) == before
    assert out == {
        "storage": "pbs1",
        "password": "***redacted***",
        "generate-password": True,
        "cipassword": None,
        "nested": {"level": [{"secret": "***redacted***"}, "***redacted***", 7]},
        "note": "***redacted***",
        "env": ["***redacted***", "ok"],
        "otp": "***redacted***",
    }


def test_secrets_never_reach_the_file(path: Path) -> None:
    with Ledger(path) as led:
        record = led.append(
            "plan",
            actor=CLI,
            tool="storage.create",
            params={"password": "hunter2", "pbs": {"encryption-key": "hunter3-enc"}},
            outcome={"Authorization": "PVEAPIToken=root@pam!x=hunter4"},
            impacts=[{"target": "storage/pbs1", "effect": "degraded", "reason": "PVEAPIToken=a@b!c=hunter5"}],
        )
        assert record.params == {"password": "***redacted***", "pbs": {"encryption-key": "***redacted***"}}
        assert led.verify().ok
        files = list(path.parent.iterdir())
        assert any(f.name.endswith("-wal") for f in files)
        contents = b"".join(f.read_bytes() for f in files)
        assert b"storage.create" in contents  # we are looking at the right bytes
        for secret in (b"hunter2", b"hunter3", b"hunter4", b"hunter5"):
            assert secret not in contents
    assert b"hunter" not in path.read_bytes()


# --- the high-water mark, the apply checkpoint and sealing ------------------------------------------------


@pytest.fixture
def marked(path: Path) -> Iterator[Ledger]:
    with Ledger(path) as led:
        yield led


def test_truncating_the_file_to_zero_is_caught_by_the_mark(marked: Ledger, path: Path) -> None:
    """`truncate -s0 ledger.sqlite`: SQLite sees a new empty database, but the mark beside it remembers."""
    fill(marked, 7)
    marked.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True) if suffix else path.write_bytes(b"")
    with Ledger(path) as reopened:
        result = reopened.verify()
        assert (result.ok, result.records, result.first_broken) == (False, 0, 1)
        assert "the file was truncated or replaced" in result.reason and "at record 7" in result.reason
        assert not reopened.check().ok
        reopened.append("deny", actor=CLI, tool="x")  # appends still go on, but the evidence in the mark stays
        assert not reopened.check().ok


def test_deleting_the_newest_records_is_caught_by_the_mark(marked: Ledger, path: Path) -> None:
    fill(marked, 10)
    with raw(path) as db:
        db.execute("DELETE FROM records WHERE seq IN (9, 10)")
    result = marked.verify()
    assert (result.ok, result.first_broken) == (False, 9)
    assert result.reason == "record 9: records 9..10 are missing from the end (the high-water mark outside the file says 10 were written)"
    with raw(path) as db:
        db.execute("DELETE FROM records WHERE seq = 8")
    assert marked.check().first_broken == 8


def test_a_removed_mark_is_noticed_and_a_ledger_from_before_marks_gets_one(path: Path) -> None:
    with Ledger(path, high_water_mark=False) as old:  # a ledger written before marks existed
        fill(old, 3)
    with Ledger(path) as led:
        assert led.mark_path is not None and led.mark_path.exists()
        assert led.check().ok and led.verify().ok
        mark_path = led.mark_path
    mark_path.unlink()
    with Ledger(path) as led:
        result = led.verify()
        assert not result.ok and "is missing: truncation can no longer be ruled out" in result.reason


def test_a_first_mark_written_meanwhile_by_another_process_is_read_not_taken_for_removed(path: Path,
                                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes open a new ledger: one reads "no mark yet", the other writes the first mark and commits, then the
    first takes the write lock. The mark is there now: it is read, not reported missing (a false tamper alarm, and
    that process's appends then never moved the mark: test_two_processes_creating_the_same_new_file, now and then)."""
    Ledger(path).close()  # the other process: the new file, its first mark and the row that says it had one
    real = Path.read_bytes
    raced: list[Path] = []

    def read_before_the_other_wrote(self: Path) -> bytes:
        if self.name.endswith(".hwm") and not raced:
            raced.append(self)
            raise FileNotFoundError(self)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_before_the_other_wrote)
    with Ledger(path) as led:
        fill(led, 2)
        result = led.verify()
    assert raced and result.ok, result.reason


def test_check_walks_from_the_checkpoint_and_the_mark_remembers_a_break(marked: Ledger, path: Path) -> None:
    fill(marked, 5)
    first = marked.check()
    assert first.ok and first.reason == "5 records, chain intact"  # no full walk yet: the first check walks it all
    fill(marked, 3)
    second = marked.check()
    assert second.ok and second.reason == "chain intact from record 6 to 8 (3 checked)"
    with raw(path) as db:  # an edit behind the checkpoint: check does not walk there, but full verify does
        db.execute("UPDATE records SET tool = 'forged' WHERE seq = 2")
    assert marked.check().ok
    with Ledger(path, full_walk_every=0) as hourly:  # once the last full walk is old, check walks it all again
        assert hourly.check().first_broken == 2
    again = marked.check()  # ... and from then on the mark holds the break, for every apply
    assert (again.ok, again.first_broken) == (False, 2) and "a person must seal it" in again.reason
    with raw(path) as db:  # putting the row back does not unbreak it: a person looks, and seals
        db.execute("UPDATE records SET tool = 'storage.delete' WHERE seq = 2")
    assert not marked.check().ok


def test_check_catches_an_edit_of_the_checkpoint_record_and_after_it(marked: Ledger, path: Path) -> None:
    fill(marked, 4)
    assert marked.check().ok
    with raw(path) as db:
        db.execute("UPDATE records SET hash = ? WHERE seq = 4", ("f" * 64,))
    result = marked.check()
    assert (result.ok, result.first_broken) == (False, 4)


def test_an_inserted_record_with_a_made_up_hash_fails_the_check(marked: Ledger, path: Path) -> None:
    """Attack 2 of issue 10: INSERT an `approve` row with hash "f"*64."""
    records = fill(marked, 3)
    with raw(path) as db:
        db.execute(
            "INSERT INTO records (seq, time, kind, actor, tool, params, plan_id, plan_hash, impacts, outcome, prev, hash)"
            " VALUES (4, '2026-01-01T00:00:00.000000Z', 'approve', ?, 'storage.delete', '{}', 'p-000000000000', '', '[]', '{}', ?, ?)",
            (json.dumps({"token_id": "x", "face": "terminal", "client": ""}), records[-1].hash, "f" * 64),
        )
    forged = marked.get(4)
    assert forged is not None and marked.check_record(forged) == "record 4: hash does not match its content"
    assert marked.check().first_broken == 4


def test_check_record_checks_both_links(marked: Ledger, path: Path) -> None:
    fill(marked, 5)
    third = marked.get(3)
    assert third is not None and marked.check_record(third) is None
    with raw(path) as db:
        db.execute("UPDATE records SET prev = ? WHERE seq = 4", ("0" * 64,))
    assert marked.check_record(third) == "record 4: prev does not match record 3"


def test_seal_sets_the_broken_ledger_aside_and_starts_a_chain_naming_it(marked: Ledger, path: Path) -> None:
    from proximo.trust._ledger import seal

    fill(marked, 4)
    old_id = marked.ledger_id
    with pytest.raises(LedgerError, match="is intact"):
        seal(path, None, actor=CLI, reason="test")
    with raw(path) as db:
        db.execute("UPDATE records SET tool = 'forged' WHERE seq = 3")
    assert not marked.verify().ok
    marked.close()
    record = seal(path, None, actor=CLI, reason="record 3 edited; reviewed by alice")
    assert (record.seq, record.kind) == (1, "seal")
    assert record.outcome["sealed_ledger_id"] == old_id and record.outcome["first_broken"] == 3
    sealed = Path(record.outcome["sealed_file"])
    assert sealed.exists() and hashlib.sha256(sealed.read_bytes()).hexdigest() == record.outcome["sealed_sha256"]
    with Ledger(path) as fresh:
        assert fresh.ledger_id != old_id and fresh.verify().ok and fresh.check().ok
        assert fresh.head().seq == 1
