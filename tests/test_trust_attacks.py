"""Issue 10's attacks by an agent with a shell as the same account, each one stopped (and the tamper matrix).

Attack 1 (a pseudo-terminal typing "yes") is in test_cli_approve_pty.py; attack 5 (api.call and root-only options)
in test_one_rule.py and test_permissions.py; the two-account tests in test_service.py. Here: 2 (a row inserted
into the ledger), 3 (a rewritten stored plan), 4 (truncation and tail deletion, and the heads a client keeps), 6
(huge refused input), and every kind of ledger tampering, each checked against verify, the anchors and apply.

Every "agent" step here is what a shell can do to the state directory: sqlite3, truncate, rm, rewriting files,
and reading the ledger key (it is this account's own file in local mode; service mode is what keeps it out).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from test_ledger import canonical
from test_ledger import raw as raw_ledger

from proximo import NotApproved, Refused, StalePlan
from proximo.trust._anchors import check_anchors, read_anchors
from proximo.trust._ledger import GENESIS, Actor, LedgerRecord, Mark, Position, seal
from proximo.trust._pipeline import plan_hash
from proximo._types import ApiCall, Plan
from proximo.cli import build_cli
from proximo.testing import World

pytestmark = pytest.mark.anyio

MEDIUM = ("guest.config.set", {"vmid": 104, "description": "hello"})  # a MEDIUM plan: auto-approved
HIGH = ("storage.delete", {"storage": "local-zfs"})  # a HIGH plan: a person must approve


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "home", env={"PROXIMO_LEDGER_ANCHOR": f"file:{tmp_path / 'anchors.log'}"})


# --- what an agent with this account's shell can do --------------------------------------------------------------


def raw(world: World) -> AbstractContextManager[sqlite3.Connection]:
    return raw_ledger(world.settings.ledger_path)


def stolen_key(world: World) -> bytes:
    return bytes.fromhex((world.home / "ledger.key").read_text())


def resign(world: World, *, from_seq: int, mark: bool = True) -> None:
    """Re-sign the chain from ``from_seq`` with the stolen key, and (``mark``) rewrite the high-water mark to match."""
    key = stolen_key(world)
    with world.ledger() as book:
        records = list(book.records())
    prev = records[from_seq - 2].hash if from_seq > 1 else GENESIS
    with raw(world) as db:
        for record in records[from_seq - 1:]:
            fixed = msgspec.structs.replace(record, prev=prev, hash="")
            prev = hmac.new(key, canonical(fixed), hashlib.sha256).hexdigest()
            db.execute("UPDATE records SET prev = ?, hash = ? WHERE seq = ?", (fixed.prev, prev, record.seq))
    if mark:
        path = Path(f"{world.settings.ledger_path}.hwm")
        old = msgspec.json.decode(path.read_bytes(), type=Mark)
        head = Position(records[-1].seq, prev)
        path.write_bytes(msgspec.json.encode(msgspec.structs.replace(old, high_water=head, verified=head, broken=None)))


def insert_approval(world: World, plan_id: str, *, hash_value: str | None = None) -> None:
    """INSERT an `approve` row at the head: with a made-up hash, or (hash_value=None) HMAC'd with the stolen key."""
    with world.ledger() as book:
        head = book.head()
        plan = book.find(plan_id=plan_id)[0]
    forged = LedgerRecord(seq=head.seq + 1, time="2026-12-06T00:00:00.000000Z", kind="approve",
                          actor=Actor(token_id="-", face="terminal", client="alice@workstation"), tool=plan.tool, params={},
                          plan_id=plan_id, plan_hash=plan.plan_hash, impacts=[],
                          outcome={"risk": "HIGH", "by": "person", "channel": "credential", "approver": "tester"},
                          prev=head.hash, hash="")
    digest = hash_value or hmac.new(stolen_key(world), canonical(forged), hashlib.sha256).hexdigest()
    row = msgspec.structs.replace(forged, hash=digest)
    with raw(world) as db:
        db.execute("INSERT INTO records (seq, time, kind, actor, tool, params, plan_id, plan_hash, impacts, outcome, prev, hash)"
                   " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                   (row.seq, row.time, row.kind, json.dumps(msgspec.to_builtins(row.actor)), row.tool, "{}", row.plan_id,
                    row.plan_hash, "[]", json.dumps(row.outcome, sort_keys=True, separators=(",", ":")), row.prev, row.hash))


def writes(world: World) -> list[tuple[str, str]]:
    return [(m, p) for m, p in world.sim.requests if m != "GET"]


async def plan(world: World, which: tuple[str, dict[str, Any]]) -> Plan:
    async with world.host() as host:
        return await host.plan(which[0], which[1], world.actor)


async def apply(world: World, plan_id: str) -> Any:
    async with world.host() as host:  # a new process, as `proximo apply` would be
        return await host.apply(plan_id, world.actor)


# --- attack 2: a row inserted into the ledger ---------------------------------------------------------------------


@pytest.mark.parametrize("env_key", [False, True], ids=["key-file", "PROXIMO_LEDGER_KEY"])
async def test_an_inserted_approve_row_with_a_made_up_hash_does_not_approve(tmp_path: Path, env_key: bool) -> None:
    world = World(tmp_path, env={"PROXIMO_LEDGER_KEY": "k" * 32} if env_key else {})
    made = await plan(world, HIGH)
    with world.ledger() as book:
        assert book.chain == "hmac-sha256"
    assert "k" * 32 not in repr(world.settings)
    insert_approval(world, made.plan_id, hash_value="f" * 64)
    with pytest.raises(Refused, match=r"the ledger is broken \(record 2: "):
        await apply(world, made.plan_id)
    assert writes(world) == []


async def test_an_inserted_approve_row_signed_with_the_stolen_key_is_caught_by_the_mark(world: World) -> None:
    made = await plan(world, HIGH)
    insert_approval(world, made.plan_id)  # a perfect HMAC: the agent read ledger.key
    with pytest.raises(Refused, match="not written by Proximo"):
        await apply(world, made.plan_id)
    assert writes(world) == []


async def test_after_an_edit_no_plan_applies_until_a_person_seals(world: World) -> None:
    first = await plan(world, MEDIUM)
    assert (await apply(world, first.plan_id)).ok
    with raw(world) as db:  # edit an old record, behind apply's checkpoint
        db.execute("UPDATE records SET tool = 'nothing.to.see' WHERE seq = 1")
    with world.ledger() as book:
        assert book.check().ok  # the incremental check starts after the checkpoint ...
        assert not book.verify().ok  # ... a full walk finds it, and from now on every apply stops
    fresh = await plan(world, ("guest.config.set", {"vmid": 104, "description": "again"}))
    with pytest.raises(Refused, match="the ledger is broken .* a person must seal it"):
        await apply(world, fresh.plan_id)
    record = seal(world.settings.ledger_path, stolen_key(world), actor=world.actor, reason="record 1 edited; alice looked")
    assert record.kind == "seal" and record.outcome["first_broken"] == 1
    with pytest.raises(Refused, match="has no plan record in this ledger"):  # plans of the sealed chain stay there
        await apply(world, fresh.plan_id)
    again = await plan(world, ("guest.config.set", {"vmid": 104, "description": "after the seal"}))
    assert (await apply(world, again.plan_id)).ok


# --- attack 3: a stored plan rewritten ----------------------------------------------------------------------------


def rewrite_stored_plan(world: World, plan_id: str) -> Plan:
    """Make the stored plan delete bob@pve, and fix up its hash and the ledger's plan_hash."""
    db = sqlite3.connect(world.home / "plans.sqlite", isolation_level=None)
    try:
        stored = msgspec.json.decode(db.execute("SELECT body FROM plans WHERE plan_id = ?", (plan_id,)).fetchone()[0], type=Plan)
        forged = msgspec.structs.replace(stored, steps=[ApiCall("DELETE", "/access/users/bob@pve")], undo=None)
        forged = msgspec.structs.replace(forged, hash=plan_hash(forged))
        db.execute("UPDATE plans SET body = ? WHERE plan_id = ?", (msgspec.json.encode(forged), plan_id))
    finally:
        db.close()
    with raw(world) as ledger_db:
        ledger_db.execute("UPDATE records SET plan_hash = ? WHERE plan_id = ? AND kind = 'plan'", (forged.hash, plan_id))
    return forged


async def test_a_rewritten_plan_with_its_ledger_hash_fixed_up_is_refused(world: World) -> None:
    made = await plan(world, MEDIUM)
    rewrite_stored_plan(world, made.plan_id)
    with pytest.raises(Refused, match="the ledger is broken|its plan record is not sound"):
        await apply(world, made.plan_id)
    assert writes(world) == [] and "bob@pve" in {u["userid"] for u in world.model.users}


async def test_a_rewritten_plan_in_a_perfectly_resigned_ledger_is_judged_again_and_refused(world: World) -> None:
    """The strongest same-account forgery: plan, ledger chain and mark all consistent. Apply judges the steps again."""
    made = await plan(world, MEDIUM)
    assert made.risk.value == "MEDIUM"
    rewrite_stored_plan(world, made.plan_id)
    resign(world, from_seq=made.ledger.seq if made.ledger else 1)
    with world.ledger() as book:
        assert book.verify().ok  # nothing local can tell: the anchors can (see the tamper matrix)
    with pytest.raises(StalePlan, match=r"risk MEDIUM -> HIGH, impacts differ \(1 new, 0 gone\)"):
        await apply(world, made.plan_id)
    assert writes(world) == [] and "bob@pve" in {u["userid"] for u in world.model.users}


# --- attack 4: truncation, tail deletion, and the heads clients keep ----------------------------------------------


def cli(world: World, *args: str) -> Any:
    env = {"PROXIMO_HOME": str(world.home), "PROXIMO_LEDGER": None, "PROXIMO_LEDGER_KEY": None, "PROXIMO_POLICY": None,
           "PROXIMO_LEDGER_ANCHOR": None}
    return CliRunner().invoke(build_cli(), list(args), env=env, catch_exceptions=False)


async def test_truncating_the_ledger_fails_verify_and_apply(world: World) -> None:
    made = await plan(world, MEDIUM)
    with world.ledger() as book:
        head = book.head()
    os.truncate(world.settings.ledger_path, 0)
    for suffix in ("-wal", "-shm"):
        Path(f"{world.settings.ledger_path}{suffix}").unlink(missing_ok=True)
    result = cli(world, "ledger", "verify")
    assert result.exit_code == 1 and "the file was truncated or replaced" in result.stdout and "ledger OK" not in result.stdout
    kept = cli(world, "ledger", "verify", "--head", f"{head.seq}:{head.hash}")
    assert kept.exit_code == 1
    with pytest.raises(Refused):
        await apply(world, made.plan_id)
    assert writes(world) == []


async def test_deleting_the_newest_record_fails_verify(world: World) -> None:
    await plan(world, MEDIUM)
    await plan(world, MEDIUM)
    with world.ledger() as book:
        head = book.head()
    with raw(world) as db:
        db.execute("DELETE FROM records WHERE seq = ?", (head.seq,))
    result = cli(world, "ledger", "verify")
    assert result.exit_code == 1 and f"record {head.seq} is missing from the end" in result.stdout


async def test_ledger_verify_checks_a_head_a_client_kept(world: World) -> None:
    made = await plan(world, MEDIUM)
    assert made.ledger is not None
    good = cli(world, "ledger", "verify", "--head", f"{made.ledger.seq}:{made.ledger.head}")
    assert good.exit_code == 0 and "ledger OK" in good.stdout
    bad = cli(world, "ledger", "verify", "--head", f"{made.ledger.seq}:{'a' * 64}")
    assert bad.exit_code == 1 and "hash differs from the head a client saw" in bad.stdout
    for junk in ("12", "x:abc", f"-1:{'a' * 64}", f"١:{'a' * 64}", f"1:{'A' * 64}", "1:" + "a" * 63):
        refused = cli(world, "ledger", "verify", "--head", junk)
        assert refused.exit_code == 2 and refused.stderr.count("\n") == 1 and "expected SEQ:HASH" in refused.stderr


# --- attack 6: huge refused input ----------------------------------------------------------------------------------


async def test_a_5_million_character_vmid_is_refused_without_growing_the_ledger(world: World) -> None:
    before = world.settings.ledger_path.stat().st_size if world.settings.ledger_path.exists() else 0
    huge = "9" * 5_000_000
    async with world.host() as host:
        with pytest.raises(Exception) as refused:
            await host.plan("guest.start", {"vmid": huge}, world.actor)
        assert len(str(refused.value)) < 500
        tail = host.ledger.tail(1)[0]
    assert tail.kind == "deny" and len(msgspec.json.encode(tail)) < 4096
    assert tail.params["truncated"]["bytes"] > 5_000_000 and len(tail.params["truncated"]["sha256"]) == 64
    with world.ledger() as book:  # WAL included: the file did not take the input in
        book.verify()
    grown = sum(Path(f"{world.settings.ledger_path}{s}").stat().st_size
                for s in ("", "-wal") if Path(f"{world.settings.ledger_path}{s}").exists()) - before
    assert grown < 200_000


async def test_identical_denials_are_counted_not_repeated(world: World) -> None:
    async with world.host() as host:
        for _ in range(50):
            with pytest.raises(Exception):
                await host.plan("storage.nuke", {"storage": "x"}, world.actor)
        await host.plan(*MEDIUM, world.actor)
        records = [r for r in host.ledger.records() if r.kind == "deny"]
    assert len(records) == 2
    assert "repeated" not in records[0].outcome and records[1].outcome["repeated"] == 49
    assert records[1].outcome["first"] == records[0].seq


# --- the tamper matrix --------------------------------------------------------------------------------------------

Tamper = Callable[[World, Plan], None]


def _sql(statement: str) -> Tamper:
    def tamper(world: World, _: Plan) -> None:
        with raw(world) as db:
            db.execute(statement)
    return tamper


def _truncate(world: World, _: Plan) -> None:
    os.truncate(world.settings.ledger_path, 0)
    for suffix in ("-wal", "-shm"):
        Path(f"{world.settings.ledger_path}{suffix}").unlink(missing_ok=True)


def _remove(world: World, _: Plan) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{world.settings.ledger_path}{suffix}").unlink(missing_ok=True)


def _remove_with_mark(world: World, p: Plan) -> None:
    _remove(world, p)
    Path(f"{world.settings.ledger_path}.hwm").unlink()


def _remove_mark(world: World, _: Plan) -> None:
    Path(f"{world.settings.ledger_path}.hwm").unlink()


def _forged_insert(world: World, p: Plan) -> None:
    insert_approval(world, p.plan_id, hash_value="f" * 64)


def _signed_insert(world: World, p: Plan) -> None:
    insert_approval(world, p.plan_id)


def _signed_insert_and_mark(world: World, p: Plan) -> None:
    insert_approval(world, p.plan_id)
    with world.ledger() as book:
        head = book.head()
    resign(world, from_seq=head.seq)


def _tail_and_mark(world: World, p: Plan) -> None:
    with world.ledger() as book:
        head = book.head().seq
    with raw(world) as db:
        db.execute("DELETE FROM records WHERE seq >= ?", (head - 1,))
    resign(world, from_seq=head - 2)


def _edited_and_resigned(world: World, p: Plan) -> None:
    with raw(world) as db:
        db.execute("UPDATE records SET tool = 'nothing.to.see' WHERE seq = 1")
    resign(world, from_seq=1)


def _reordered(world: World, _: Plan) -> None:
    with raw(world) as db:
        db.execute("UPDATE records SET seq = -1 WHERE seq = 2")
        db.execute("UPDATE records SET seq = 2 WHERE seq = 3")
        db.execute("UPDATE records SET seq = 3 WHERE seq = -1")


# (name, tamper, caught by a local `ledger verify`, caught by the anchors, apply refused before any full verify)
MATRIX: list[tuple[str, Tamper, bool, bool, bool]] = [
    ("edited field of an old record", _sql("UPDATE records SET tool = 'x' WHERE seq = 1"), True, True, False),
    ("edited outcome of the plan record", _sql("UPDATE records SET outcome = '{\"risk\":\"LOW\"}' WHERE kind = 'plan'"),
     True, True, True),
    ("edited hash", _sql(f"UPDATE records SET hash = '{'e' * 64}' WHERE seq = 2"), True, True, True),
    ("inserted row, made-up hash", _forged_insert, True, False, True),
    ("inserted row, HMAC with the stolen key", _signed_insert, True, False, True),
    ("deleted middle record", _sql("DELETE FROM records WHERE seq = 2"), True, True, True),
    ("deleted newest record", _sql("DELETE FROM records WHERE seq = (SELECT max(seq) FROM records)"), True, True, True),
    ("reordered records", _reordered, True, True, True),
    ("truncated file (truncate -s0)", _truncate, True, True, True),
    ("deleted file", _remove, True, True, True),
    ("deleted high-water mark", _remove_mark, True, False, True),
    # What only an agent that can read the key and rewrite the mark can do: local mode's limit (service mode keeps the
    # state directory out of the agent's reach, see test_service.py).
    ("inserted row, stolen key, mark rewritten", _signed_insert_and_mark, False, False, False),
    ("tail deleted, mark rewritten", _tail_and_mark, False, True, True),
    ("old record edited, chain re-signed with the stolen key, mark rewritten", _edited_and_resigned, False, True, False),
    ("deleted file and mark", _remove_with_mark, False, True, True),
]


@pytest.mark.parametrize(("name", "tamper", "local", "anchors", "refused"), MATRIX, ids=[m[0] for m in MATRIX])
async def test_tamper_matrix(world: World, tmp_path: Path, name: str, tamper: Tamper, local: bool, anchors: bool,
                             refused: bool) -> None:
    """Each tampering: does a local verify see it, do the anchors see it, does apply refuse (before and after a verify)?

    The figures docs/trust-model.md quotes are computed from MATRIX (test_the_trust_model_states_the_matrix_figures).
    """
    applied = await plan(world, MEDIUM)
    assert (await apply(world, applied.plan_id)).ok
    waiting = await plan(world, HIGH)
    async with world.host() as host:
        host.approve(waiting.plan_id, world.actor, world.person)
    writes_before = len(writes(world))
    tamper(world, waiting)
    direct = await _refusal(world, waiting.plan_id)
    assert bool(direct) is refused, direct
    if direct:
        assert len(writes(world)) == writes_before
    with world.ledger() as book:
        verified = book.verify()
        anchored = check_anchors(book, read_anchors(str(tmp_path / "anchors.log")))
    assert verified.ok is not local, verified.reason
    assert anchored.ok is not anchors, anchored.reason
    if local and not direct:  # the full walk found it: from now on every apply stops
        fresh = await plan(world, ("guest.config.set", {"vmid": 104, "description": "after"}))
        assert "the ledger is broken" in await _refusal(world, fresh.plan_id)


async def _refusal(world: World, plan_id: str) -> str:
    try:
        await apply(world, plan_id)
    except (Refused, NotApproved) as exc:
        return str(exc)
    return ""


def test_the_trust_model_states_the_matrix_figures() -> None:
    """docs/trust-model.md quotes the matrix: its figures are computed here from the cases above."""
    local = sum(1 for *_, caught, _, _ in MATRIX if caught)
    anchors = sum(1 for *_, seen, _ in MATRIX if seen)
    either = sum(1 for _, _, caught, seen, _ in MATRIX if caught or seen)
    at_once = sum(1 for *_, refused in MATRIX if refused)
    after_walk = sum(1 for _, _, caught, _, refused in MATRIX if refused or caught)
    doc = " ".join((Path(__file__).parents[1] / "docs" / "trust-model.md").read_text().split())
    assert (f"A local verify catches {local} of {len(MATRIX)}, the anchors {anchors}, one or the other {either}; apply "
            f"refuses {at_once} at once and {after_walk} after the next full walk.") in doc
