"""The shared store on a real PostgreSQL server (PROXIMO_DB): one chain for many processes, one apply per plan.

A server per test worker (tests/_postgres.py: a cluster in a temporary directory on a loopback port, as the
``postgres`` account when run as root), a database per test. Skipped, with the reason, only where no server can be
started; under CI (.ci/run installs Debian's postgresql) that is a failure instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from _postgres import PgServer, unavailable
from proximo.cli import build_cli
from proximo.errors import AlreadyApplied
from proximo.testing import World
from proximo.trust._ledger import REDACTED, Ledger, LedgerUnreachable, seal
from proximo.trust._pg import close_pools, open_store, redact_dsn

_WHY = unavailable()
if _WHY is not None and os.environ.get("CI"):
    raise RuntimeError(f"CI must run the PostgreSQL tests: {_WHY}")
pytestmark = [pytest.mark.skipif(_WHY is not None, reason=f"no PostgreSQL server can be started here: {_WHY}"),
              pytest.mark.anyio]

KEY = "shared-ledger-key-" + "5" * 24


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One server for this test worker's session (each test has a database of its own on it)."""
    server = PgServer()
    try:
        yield server
    finally:
        close_pools()
        server.close()


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> str:
    return pg_server.new_database()


def _world(tmp_path: Path, dsn: str, name: str = "home", **env: str) -> World:
    return World(tmp_path / name, env={"PROXIMO_DB": dsn, "PROXIMO_LEDGER_KEY": KEY, **env})


# --- many processes, one chain ----------------------------------------------------------------------


def test_four_processes_on_two_hosts_append_to_one_chain_and_apply_each_plan_once(
        pg_dsn: str, sim_process: dict[str, str | None], tmp_path: Path) -> None:
    coord = tmp_path / "coord"
    coord.mkdir()
    guests = ["104", "105", "106", "107", "108", "110", "120", "121"]  # one round each, each process owning two
    base = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_")}
    workers = []
    for index in range(4):
        home = tmp_path / ("host-a" if index < 2 else "host-b")  # two machines' worth of state directories
        env = {**base, **{k: str(v) for k, v in sim_process.items()}, "PROXIMO_HOME": str(home), "PROXIMO_DB": pg_dsn,
               "PROXIMO_LEDGER_KEY": KEY}
        workers.append(subprocess.Popen([sys.executable, str(Path(__file__).with_name("_pg_worker.py")), str(index), "4",
                                         str(coord), *guests], env=env, stderr=subprocess.PIPE, text=True))
    for proc in workers:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
    results = [json.loads((coord / f"result-{i}.json").read_text()) for i in range(4)]
    made = [p for r in results for p in r["made"]]
    raced = [json.loads((coord / f"round-{n}.json").read_text()) for n in range(len(guests))]
    assert len(made) == len(set(made)) == 4 * len(guests)

    # every plan, made by any process, visible to every process
    assert all(r["seen"] == {p: True for p in made} for r in results)
    # each raced plan applied by exactly one process; each of the three others refused, as already applied (its
    # apply-start was there, or the database took the winner's first) or, had it read the cluster after the winner's
    # change landed, as stale
    for plan_id in raced:
        outcomes = [r["applies"][plan_id] for r in results]
        assert outcomes.count("applied") == 1, outcomes
        assert all(o in ("applied", "already") or o.startswith("StalePlan: ") for o in outcomes), outcomes

    # one chain, intact, with exactly one apply-start and one apply-result for each raced plan and none for the others
    with Ledger(open_store(pg_dsn), key=KEY.encode(), mark_path=tmp_path / "checker.hwm") as ledger:
        result = ledger.verify()
        assert result.ok, result.reason
        for plan_id in made:
            kinds = [r.kind for r in ledger.find(plan_id=plan_id)]
            applied = 1 if plan_id in raced else 0
            assert kinds.count("plan") == 1 and kinds.count("apply-start") == kinds.count("apply-result") == applied, kinds
        assert {r.actor.client for r in ledger.records()} == {f"worker-{i}" for i in range(4)}
        assert [r.seq for r in ledger.records()] == list(range(1, result.records + 1))
        assert not ledger.open_applies()
    # each machine keeps its own high-water mark of the shared chain
    assert (tmp_path / "host-a" / "ledger-postgresql.hwm").exists() and (tmp_path / "host-b" / "ledger-postgresql.hwm").exists()


async def test_a_second_apply_start_is_refused_by_the_database_itself(pg_dsn: str, tmp_path: Path) -> None:
    """Even a writer that skips Proximo's own check (``once``) cannot start one plan twice: the unique index says no."""
    world = _world(tmp_path, pg_dsn)
    async with world.host() as host:
        plan = await host.plan("guest.config.set", {"vmid": 104, "description": "once"}, world.actor)
        await host.apply(plan.plan_id, world.actor)
        with pytest.raises(AlreadyApplied):
            await host.apply(plan.plan_id, world.actor)
        with pytest.raises(Exception, match="duplicate key|records_one_apply_start"):
            host.ledger.append("apply-start", actor=world.actor, plan_id=plan.plan_id, plan_hash=plan.hash)
        assert host.ledger.verify().ok


async def test_plans_made_by_one_host_are_seen_and_applied_by_another(pg_dsn: str, tmp_path: Path) -> None:
    world = _world(tmp_path, pg_dsn, "host-a")
    async with world.host() as host_a:
        plan = await host_a.plan("guest.config.set", {"vmid": 105, "description": "made on a"}, world.actor)
    async with world.host(home=tmp_path / "host-b") as host_b:  # one cluster, another machine's state directory
        assert host_b.get_plan(plan.plan_id).hash == plan.hash
        result = await host_b.apply(plan.plan_id, world.actor)
        assert result.ok and result.matches_prediction
    assert world.sim.model.guests[105].config["description"] == "made on a"
    assert (tmp_path / "host-b" / "ledger-postgresql.hwm").exists()


# --- the database going away --------------------------------------------------------------------------


async def test_the_database_stopped_mid_apply_refuses_in_one_line_and_is_reconciled_after_restart(tmp_path: Path) -> None:
    server = PgServer()  # its own server: this test stops it
    try:
        dsn = server.new_database()
        world = _world(tmp_path, dsn, PROXIMO_DB_TIMEOUT="1")
        async with world.host() as host:  # a long-lived host (an MCP server's), across the whole outage
            plan = await host.plan("guest.config.set", {"vmid": 106, "description": "cut short"}, world.actor)

            def stop_at_first_step(event: Any) -> None:
                if type(event).__name__ == "StepStarted":
                    server.stop()

            with pytest.raises(LedgerUnreachable) as cut:
                await host.apply(plan.plan_id, world.actor, events=stop_at_first_step)
            message = str(cut.value)
            assert "\n" not in message and "reconciled like a crash" in message and server.password not in message
            assert world.sim.model.guests[106].config["description"] == "cut short"  # the step ran; its result is unrecorded

            # while it is down: a read answers (unwitnessed), a plan and an apply refuse in one line, and nothing runs;
            # a host opened now (a server started during the outage) does the same
            async with world.host(home=tmp_path / "started-while-down") as late:
                for each in (host, late):
                    answer = await each.read("guest.list", {}, world.actor)
                    assert answer.data and answer.ledger.chain == "unreachable"
                    with pytest.raises(LedgerUnreachable) as refused:
                        await each.plan("guest.config.set", {"vmid": 107, "description": "no"}, world.actor)
                    assert "\n" not in str(refused.value) and server.password not in str(refused.value)
                    before = msgspec.json.encode(world.sim.model.guests[104].config)
                    with pytest.raises(LedgerUnreachable):
                        await each.apply(plan.plan_id, world.actor)
                    assert msgspec.json.encode(world.sim.model.guests[104].config) == before
                runner = CliRunner()
                env = {"PROXIMO_HOME": str(world.home), "PROXIMO_DB": dsn, "PROXIMO_LEDGER_KEY": KEY, "PROXIMO_DB_TIMEOUT": "1"}
                shown = runner.invoke(build_cli(), ["ledger", "verify"], env=env)
                assert shown.exit_code != 0 and "unreachable" in shown.output and server.password not in shown.output
                assert len(shown.output.strip().splitlines()) == 1

                # back: the host started during the outage serves the store now; the long-lived one closes the cut-short
                # apply like a crash's (with what landed) before its next apply runs
                server.start()
                after = await late.plan("guest.config.set", {"vmid": 107, "description": "after"}, world.actor)
            assert not host.ledger.find(plan_id=plan.plan_id, kind="apply-result")
            result = await host.apply(after.plan_id, world.actor)
            assert result.ok
            closed = host.ledger.find(plan_id=plan.plan_id, kind="apply-result")
            assert len(closed) == 1 and closed[0].outcome["interrupted"] is True
            assert closed[0].outcome["landed_steps"] == 1 and "could not be reached" in closed[0].outcome["reason"]
            assert closed[0].seq < host.ledger.find(plan_id=after.plan_id, kind="apply-start")[0].seq
            assert host.ledger.verify().ok and not host.ledger.open_applies()
    finally:
        close_pools()
        server.close()


# --- migration ----------------------------------------------------------------------------------------


async def test_migrating_a_sqlite_ledger_keeps_its_chain_and_its_plans(pg_dsn: str, tmp_path: Path) -> None:
    from proximo.cli._trust import migrate_locally

    world = World(tmp_path / "home", env={"PROXIMO_LEDGER_KEY": KEY})  # SQLite, the default
    async with world.host() as host:
        applied = await host.plan("guest.config.set", {"vmid": 104, "description": "before"}, world.actor)
        await host.apply(applied.plan_id, world.actor)
        pending = await host.plan("guest.config.set", {"vmid": 105, "description": "after"}, world.actor)
    with world.ledger() as sqlite_ledger:
        before = [(r.seq, r.hash) for r in sqlite_ledger.records()]
        ledger_id = sqlite_ledger.ledger_id

    said = migrate_locally(world.settings, pg_dsn)
    assert f"migrated {len(before)} records and 2 plans" in said and "chain verified" in said
    assert REDACTED in said and pg_dsn.split(":")[2].split("@")[0] not in said  # the password is not shown

    shared = msgspec.structs.replace(world.settings, db=World(tmp_path / "x", env={"PROXIMO_DB": pg_dsn}).settings.db)
    async with world.host(db=shared.db) as host:
        assert host.ledger.path is None and host.ledger.ledger_id == ledger_id  # the same chain, now in PostgreSQL
        assert [(r.seq, r.hash) for r in host.ledger.records()] == before
        result = await host.apply(pending.plan_id, world.actor)  # a plan made before the move applies after it
        assert result.ok
        assert host.ledger.verify().ok
    # once is all: a second copy into the same database is refused in one line, the password not in it
    env = {"PROXIMO_HOME": str(world.home), "PROXIMO_LEDGER_KEY": KEY, "PROXIMO_DB": pg_dsn}
    again = CliRunner().invoke(build_cli(), ["ledger", "migrate"], env=env)
    assert again.exit_code == 1 and "already holds a ledger" in again.output, again.output
    assert len(again.output.strip().splitlines()) == 1 and REDACTED in again.output
    assert pg_dsn.split(":")[2].split("@")[0] not in again.output


async def test_ledger_verify_and_seal_work_the_same_on_postgresql(pg_dsn: str, tmp_path: Path) -> None:
    import psycopg

    world = _world(tmp_path, pg_dsn)
    async with world.host() as host:
        plan = await host.plan("guest.config.set", {"vmid": 104, "description": "x"}, world.actor)
    other = tmp_path / "other-machine"
    async with world.host(home=other) as host:  # a second machine, with its own mark of the chain
        assert host.ledger.verify().ok
    runner = CliRunner()
    env = {"PROXIMO_HOME": str(world.home), "PROXIMO_DB": pg_dsn, "PROXIMO_LEDGER_KEY": KEY}
    ok = runner.invoke(build_cli(), ["ledger", "verify", "--json"], env=env)
    assert ok.exit_code == 0 and json.loads(ok.output)["ok"] is True
    # whoever owns the database can edit a row (the triggers are theirs to drop): the chain says where
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE records DISABLE TRIGGER records_no_change")
        conn.execute("UPDATE records SET tool = 'guest.destroy' WHERE plan_id = %s AND kind = 'plan'", (plan.plan_id,))
    broken = runner.invoke(build_cli(), ["ledger", "verify", "--json"], env=env)
    assert broken.exit_code == 1 and json.loads(broken.output)["first_broken"] == 1
    async with world.host() as host:
        with pytest.raises(Exception, match="the ledger is broken"):
            await host.apply(plan.plan_id, world.actor)
    with world.ledger() as ledger:
        where, mark = ledger.store, ledger.mark_path
    record = seal(where, KEY.encode(), actor=world.actor, reason="edited row found", mark_path=mark)
    assert record.seq == 1 and "records_sealed_" in record.outcome["sealed_file"] and pg_dsn not in record.outcome["sealed_file"]
    with psycopg.connect(pg_dsn) as conn:  # the broken chain is kept, as evidence
        assert conn.execute(f"SELECT count(*) FROM records_sealed_{record.outcome['sealed_file'].split('records_sealed_')[1].split(',')[0]}").fetchone()[0] >= 1
    with world.ledger() as ledger:
        assert ledger.verify().ok and ledger.head().seq == 1
    # the other machine's mark is of the sealed chain: the new chain's seal record (made with the key) says so, so
    # that mark is kept aside and a new one starts, instead of the new chain being taken for a replaced one
    async with world.host(home=other) as host:
        assert host.ledger.verify().ok and host.ledger.ledger_id == ledger.ledger_id
    assert list(other.glob("ledger-postgresql.hwm.sealed-*"))


# --- the DSN's password -------------------------------------------------------------------------------


def test_the_dsn_password_is_redacted_everywhere_it_could_show() -> None:
    assert redact_dsn("postgresql://proximo:s3cret-pw@db.example:5432/ledger?sslmode=require") == \
        f"postgresql://proximo:{REDACTED}@db.example:5432/ledger?sslmode=require"
    assert redact_dsn("postgresql://proximo@db/ledger?password=s3cret-pw&sslmode=verify-full") == \
        f"postgresql://proximo@db/ledger?password={REDACTED}&sslmode=verify-full"
    assert "s3cret" not in redact_dsn("host=db user=proximo password='s3cret pw' dbname=ledger")
    world = World(Path("/nonexistent"), env={"PROXIMO_DB": "postgresql://proximo:s3cret-pw@127.0.0.1:1/ledger"})
    assert "s3cret" not in repr(world.settings)


async def test_no_password_in_records_marks_or_errors(pg_server: PgServer, pg_dsn: str, tmp_path: Path) -> None:
    world = _world(tmp_path, pg_dsn)
    async with world.host() as host:
        await host.plan("guest.config.set", {"vmid": 104, "description": pg_dsn}, world.actor)  # pasted as a value
    import psycopg

    with psycopg.connect(pg_dsn) as conn:
        stored = json.dumps(conn.execute("SELECT * FROM records").fetchall())
    assert pg_server.password not in stored and REDACTED in stored  # the pasted DSN is in the record, its password not
    assert pg_server.password not in (world.home / "ledger-postgresql.hwm").read_text()
    # a wrong password and an unreachable server, in a real `proximo` process: one line on stderr (the pool's own
    # warnings stay out of it), naming the DSN without the password
    wrong = pg_dsn.replace(pg_server.password, "wrong-password-123")
    base = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_")}
    for dsn, why in ((wrong, "password authentication failed"), (pg_dsn.replace(f":{pg_server.port}/", ":1/"), "refused")):
        env = {**base, "PROXIMO_HOME": str(tmp_path / "other"), "PROXIMO_DB": dsn, "PROXIMO_LEDGER_KEY": KEY,
               "PROXIMO_DB_TIMEOUT": "1"}
        shown = subprocess.run([sys.executable, "-m", "proximo", "ledger", "show"], env=env, capture_output=True, text=True)
        assert shown.returncode == 1 and shown.stdout == "" and len(shown.stderr.splitlines()) == 1, shown.stderr
        assert REDACTED in shown.stderr and "unreachable" in shown.stderr and why in shown.stderr  # libpq's reason
        assert "wrong-password-123" not in shown.stderr and pg_server.password not in shown.stderr


# --- through a face -----------------------------------------------------------------------------------


async def test_an_mcp_server_on_an_unreachable_store_answers_reads_and_refuses_plans_in_one_line(tmp_path: Path) -> None:
    """A server started while the database is down (nothing listens on port 1): reads through MCP answer, unwitnessed;
    a plan is refused, one line, no password."""
    from mcp import Client

    from proximo.mcp import McpSettings, build_server

    dsn = "postgresql://proximo:not-this-password-42@127.0.0.1:1/ledger"
    world = World(tmp_path / "home", env={"PROXIMO_DB": dsn, "PROXIMO_LEDGER_KEY": KEY, "PROXIMO_DB_TIMEOUT": "0.5"})
    server = build_server(world.host, McpSettings(), tools=world.packs.tools)
    async with Client(server) as client:
        read = await client.call_tool("proximo_read", {"tool": "guest.list", "params": {}})
        planned = await client.call_tool("proximo_plan", {"tool": "guest.config.set",
                                                          "params": {"vmid": 104, "description": "x"}})
    assert not read.is_error and read.structured_content["data"]
    assert read.structured_content["ledger"]["chain"] == "unreachable"
    said = "\n".join(getattr(c, "text", "") for c in planned.content)
    assert planned.is_error and "unreachable" in said and "\n" not in said.strip()
    assert "not-this-password-42" not in said and REDACTED in said
    assert world.sim.model.guests[104].config.get("description") != "x"
