"""The ``proximo`` command line, run with click's CliRunner against the simulator on a loopback socket.

Exit codes (issue 2): 0 when a plan or an answer was produced (HIGH and blocked plans too); 2 for bad input,
with one line on stderr; 3 when the pipeline refuses (unapproved, stale, offline, not modelled). ``--json``
output is the plan document of docs/architecture.md. The token secret shows up in no output, ledger row or log record.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _loopback import serve
from click.testing import CliRunner, Result

from proximo.cli import build_cli
from proximo.model import dump_snapshot
from proximo.testing import TOKEN_ID, World

PLAN_FIELDS = {"plan_id", "tool", "params", "risk", "reversible", "blocked", "blockers", "complete", "unseen", "impacts",
               "steps", "undo", "expires_at", "ledger"}
NOT_MODELLED = ["api.call", "method=PUT", "path=/nodes/pve1/time", 'params={"timezone": "UTC"}']


class Cli:
    """``proximo ...`` with PROXIMO_HOME in a temporary folder, pointed at a simulator over loopback."""

    def __init__(self, world: World, url: str, home: Path) -> None:
        self.world = world
        self.env: dict[str, str | None] = {"PROXIMO_URL": url, "PROXIMO_TOKEN_ID": TOKEN_ID, "PROXIMO_TOKEN_SECRET": world.secret,
                    "PROXIMO_HOME": str(home)}
        # None unsets: nothing from the machine running the tests leaks in
        self.env.update(dict.fromkeys(("PROXIMO_LEDGER", "PROXIMO_LEDGER_KEY", "PROXIMO_AUTO_APPROVE", "PROXIMO_DISABLED_PACKS",
                                       "PROXIMO_PLAN_TTL", "PROXIMO_TOKEN_FILE", "PROXIMO_ADMIN_SOURCES", "PROXIMO_CA_FILE",
                                       "PROXIMO_TLS_FINGERPRINT", "PROXIMO_POLICY")))
        self.home = home
        self.outputs: list[str] = []

    def __call__(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        result = CliRunner().invoke(build_cli(), list(args), env={**self.env, **(env or {})}, catch_exceptions=False)
        self.outputs += [result.stdout, result.stderr]
        return result

    def plan(self, *args: str) -> dict[str, Any]:
        result = self("plan", *args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "world")


@pytest.fixture
def cli(world: World, tmp_path: Path) -> Iterator[Cli]:
    with serve(world.sim.app) as url:
        yield Cli(world, url, tmp_path / "home")


def _one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("proximo: "), result.stderr
    return lines[0]


def _writes(world: World) -> list[tuple[str, str]]:
    return [(m, p) for m, p in world.sim.requests if m != "GET"]


# --- exit 0: plans (HIGH, blocked) and answers ------------------------------------------------------------------


def test_plan_high_exits_0_and_shows_the_blast_radius(cli: Cli) -> None:
    result = cli("plan", "storage.delete", "storage=local-zfs")
    assert result.exit_code == 0, result.output
    assert "RISK_HIGH" in result.stdout and "wont-boot" in result.stdout and "qemu/104" in result.stdout
    assert "boot disk scsi0 on local-zfs" in result.stdout
    assert _writes(cli.world) == []


def test_plan_json_has_the_fields_of_the_plan_document(cli: Cli) -> None:
    plan = cli.plan("storage.delete", "storage=local-zfs")
    assert PLAN_FIELDS <= set(plan)
    assert plan["tool"] == "storage.delete" and plan["params"] == {"storage": "local-zfs"}
    assert plan["risk"] == "HIGH" and plan["reversible"] is True and plan["blocked"] is False and plan["complete"] is True
    assert plan["blockers"] == [] and plan["unseen"] == []
    assert plan["steps"] == [{"kind": "api", "method": "DELETE", "path": "/storage/local-zfs", "params": {}}]
    assert plan["undo"][0]["method"] == "POST" and plan["undo"][0]["path"] == "/storage"
    assert all(set(i) >= {"target", "effect", "reason"} for i in plan["impacts"])
    assert set(plan["ledger"]) == {"seq", "head", "chain"} and plan["ledger"]["seq"] >= 1
    assert plan["expires_at"].endswith("Z")


def test_a_blocked_plan_exits_0(cli: Cli) -> None:
    plan = cli.plan("api.call", "method=DELETE", "path=/storage/no-such-store")
    assert plan["blocked"] is True and "does not exist" in plan["blockers"][0]
    result = cli("apply", plan["plan_id"])
    _one_line_error(result, 3)


def test_values_that_parse_as_json_are_json(cli: Cli) -> None:
    plan = cli.plan("storage.update", "storage=ceph-rbd", "disable=1")
    assert plan["params"]["disable"] == 1
    plan = cli.plan("api.call", "method=PUT", "path=/storage/local", 'params={"content": "iso,backup"}')
    step_params = plan["steps"][0]["params"]
    assert step_params.pop("digest")  # the host adds Proxmox's digest of storage.cfg: a concurrent edit is refused
    assert step_params == {"content": "iso,backup"}


@pytest.mark.parametrize("args", [["storage.list"], ["guest.list", "node=pve1"], ["cluster.status"], ["node.list"],
                                  ["storage.content", "storage=local", "node=pve1"]])
def test_reads_exit_0(cli: Cli, args: list[str]) -> None:
    result = cli("read", *args)
    assert result.exit_code == 0, result.output
    result = cli("read", *args, "--json")
    assert result.exit_code == 0
    assert "data" in json.loads(result.stdout)


def test_offline_plan_and_read_on_a_snapshot(cli: Cli, tmp_path: Path) -> None:
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(dump_snapshot(cli.world.model)))
    offline: dict[str, str | None] = {"PROXIMO_URL": None, "PROXIMO_TOKEN_SECRET": None}
    result = cli("plan", "storage.delete", "storage=local-zfs", "--snapshot", str(snap), "--json", env=offline)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["risk"] == "HIGH"
    assert cli("read", "storage.list", "--snapshot", str(snap), env=offline).exit_code == 0
    # apply refuses: offline (no cluster configured) and, against the live cluster, a plan for another source
    _one_line_error(cli("apply", plan["plan_id"], env=offline), 2)
    line = _one_line_error(cli("apply", plan["plan_id"]), 3)
    assert "snapshot:" in line
    assert _writes(cli.world) == []


@pytest.mark.parametrize("command", [["tools"], ["tools", "--json"], ["packs"], ["packs", "--json"], ["ledger", "verify"],
                                     ["ledger", "show"], ["ledger", "show", "--json"], ["ledger", "verify", "--json"]])
def test_listing_commands_exit_0(cli: Cli, command: list[str]) -> None:
    cli.plan("storage.delete", "storage=local-zfs")  # something in the ledger
    result = cli(*command)
    assert result.exit_code == 0, result.output
    if "--json" in command:
        json.loads(result.stdout)


def test_tools_lists_every_tool_of_the_issue(cli: Cli) -> None:
    rows = json.loads(cli("tools", "--json").stdout)
    ids = {r["id"]: r["kind"] for r in rows}
    for tool in ("cluster.status", "cluster.resources", "node.list", "guest.list", "task.status", "task.log", "storage.list",
                 "storage.status", "storage.content"):
        assert ids[tool] == "read", tool
    for tool in ("storage.create", "storage.update", "storage.delete", "api.call"):
        assert ids[tool] == "plan", tool
    packs = {p["name"] for p in json.loads(cli("packs", "--json").stdout)}
    assert {"storage", "core"} <= packs


def test_demo_exits_0(cli: Cli) -> None:
    result = cli("demo")
    assert result.exit_code == 0, result.output
    assert "A person approves it: `proximo approve" in result.stdout and "demo's own approver" in result.stdout
    assert "every one" in result.stdout
    assert not (cli.home / "ledger.sqlite").exists(), "the demo keeps its ledger in a temporary folder"


# --- exit 2: bad input, one line --------------------------------------------------------------------------------

BAD = [
    ["plan", "storage.nuke", "storage=local"],
    ["plan", "storage.delete"],
    ["plan", "storage.delete", "storage"],
    ["plan", "storage.delete", "storage=local", "storage=local-zfs"],
    ["plan", "storage.delete", "storage=local", "force=1"],
    ["plan", "storage.delete", "storage=7"],
    ["plan", "storage.delete", "storage=.."],
    ["plan", "storage.delete", "storage=a/b"],
    ["plan", "storage.delete", "storage=local%2e%2e"],
    ["plan", "storage.delete", "storage=store١٢٣"],
    ["plan", "storage.delete", "storage=" + "x" * 5000],
    ["plan", "api.call", "method=DELETE", "path=/storage/../access/acl"],
    ["plan", "storage.list"],
    ["read", "storage.delete", "storage=local"],
    ["read", "storage.content", "storage=nope"],
    ["undo", "0"],
    ["apply", "not-a-plan"],
    ["apply", "../../etc/passwd"],
]


@pytest.mark.parametrize("args", BAD, ids=lambda a: " ".join(a)[:40])
def test_bad_input_exits_2_with_one_line(cli: Cli, args: list[str]) -> None:
    before = len(cli.world.sim.requests)
    result = cli(*args)
    _one_line_error(result, 2)
    assert result.stdout == ""
    assert [m for m, _ in cli.world.sim.requests[before:] if m != "GET"] == []


def test_bad_input_writes_at_most_a_deny(cli: Cli) -> None:
    cli("plan", "storage.delete", "storage=..")
    rows = json.loads(cli("ledger", "show", "--json").stdout)
    assert [r["kind"] for r in rows] == ["deny"]


def test_bad_settings_exit_2(cli: Cli) -> None:
    _one_line_error(cli("tools", env={"PROXIMO_PLAN_TTL": "ten minutes"}), 2)
    _one_line_error(cli("tools", env={"PROXIMO_AUTO_APPROVE": "CRITICAL"}), 2)


# --- exit 3: refused --------------------------------------------------------------------------------------------


def test_apply_unapproved_exits_3_and_sends_nothing(cli: Cli) -> None:
    plan = cli.plan("storage.delete", "storage=local-zfs")
    line = _one_line_error(cli("apply", plan["plan_id"]), 3)
    assert f"proximo approve {plan['plan_id']}" in line
    assert _writes(cli.world) == []


def test_approve_without_a_terminal_exits_2(cli: Cli) -> None:
    plan = cli.plan("storage.delete", "storage=local-zfs")
    line = _one_line_error(cli("approve", plan["plan_id"]), 2)
    assert "interactive terminal" in line


def test_apply_stale_exits_3(cli: Cli) -> None:
    plan = cli.plan("storage.create", "storage=scratch", "type=dir", "path=/srv/scratch")
    cli.world.packs.semantics.execute(cli.world.model, "PUT", "/storage/local", {"content": "iso"})
    line = _one_line_error(cli("apply", plan["plan_id"]), 3)
    assert "stale" in line
    assert _writes(cli.world) == []


def test_not_modelled_exits_3(cli: Cli) -> None:
    line = _one_line_error(cli("plan", *NOT_MODELLED), 3)
    assert "not modelled" in line


def test_apply_and_undo_exit_0(cli: Cli) -> None:
    plan = cli.plan("storage.create", "storage=scratch", "type=dir", "path=/srv/scratch")
    result = cli("apply", plan["plan_id"], "--json")
    assert result.exit_code == 0, result.output
    applied = json.loads(result.stdout)
    assert applied["ok"] and applied["matches_prediction"]
    assert "scratch" in cli.world.model.storages
    _one_line_error(cli("apply", plan["plan_id"]), 3)  # a second apply
    result = cli("undo", str(applied["ledger"]["seq"]), "--json")
    assert result.exit_code == 0, result.output
    undo = json.loads(result.stdout)
    assert undo["steps"] == [{"kind": "api", "method": "DELETE", "path": "/storage/scratch", "params": {}}]
    assert cli("apply", undo["plan_id"]).exit_code == 0
    assert "scratch" not in cli.world.model.storages
    assert cli("ledger", "verify").exit_code == 0


def test_ledger_verify_exits_1_on_a_broken_chain(cli: Cli) -> None:
    cli.plan("storage.delete", "storage=local-zfs")
    cli.plan("storage.delete", "storage=nfs-backup")
    db = sqlite3.connect(cli.home / "ledger.sqlite")
    db.execute("DROP TRIGGER IF EXISTS records_no_update")  # what someone editing the file would do first
    db.execute("UPDATE records SET tool = 'storage.list' WHERE seq = 1")
    db.commit()
    db.close()
    result = cli("ledger", "verify")
    assert result.exit_code == 1 and "BROKEN at record 1" in result.stdout


# --- the secret ----------------------------------------------------------------------------------------------------


def test_the_secret_is_in_no_output_ledger_or_log(cli: Cli, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    cli.plan("storage.delete", "storage=local-zfs")
    plan = cli.plan("storage.create", "storage=scratch", "type=cifs", "server=10.0.0.9", "share=s", "username=u",
                    "password=" + cli.world.secret)  # the worst case: someone pastes the token secret as a password
    cli("plan", "storage.delete", "storage=local-zfs")
    cli("read", "storage.list")
    cli("apply", plan["plan_id"])
    cli("apply", plan["plan_id"])
    cli("plan", "storage.nuke", f"x={cli.world.secret}")
    cli("plan", "storage.delete", f"storage={cli.world.secret}")  # echoed back in "does not exist"
    cli("read", "storage.content", f"storage=a{cli.world.secret}")
    cli("ledger", "show", "-n", "100")
    cli("ledger", "show", "-n", "100", "--json")
    cli("tools")
    cli("apply", "p-000000000000", env={"PROXIMO_TOKEN_SECRET": "wrong-" + cli.world.secret[:8]})
    secret = cli.world.secret
    assert [out for out in cli.outputs if secret in out] == []
    assert not any(secret in r.getMessage() or secret in str(r.args) for r in caplog.records)
    assert caplog.records, "the client did log its requests"
    ledger_files = sorted(cli.home.glob("ledger.sqlite*"))
    assert ledger_files
    for path in ledger_files:
        assert secret.encode() not in path.read_bytes(), path.name
    # the plan store does keep a password given as a storage parameter (apply sends it): owner-only
    for path in cli.home.glob("plans.sqlite*"):
        assert path.stat().st_mode & 0o777 == 0o600, path.name


def test_secret_params_are_redacted_in_plan_output(cli: Cli) -> None:
    args = ("storage.create", "storage=pbs1", "type=pbs", "server=10.0.0.7", "datastore=d", "username=u@pbs",
            "password=hunter2-pbs", "encryption-key=abcdef0123")
    plan = cli.plan(*args)
    human = cli("plan", *args)
    assert human.exit_code == 0
    for out in (json.dumps(plan), human.stdout, cli("ledger", "show", "-n", "50", "--json").stdout):
        assert "hunter2-pbs" not in out and "abcdef0123" not in out
    assert plan["params"]["password"] == "***redacted***" and plan["steps"][0]["params"]["password"] == "***redacted***"
    assert plan["params"]["username"] == "u@pbs"
    # what apply sends is the real value: the simulator got it (and, like PVE, keeps it out of storage.cfg)
    assert cli("apply", plan["plan_id"]).exit_code == 0
    assert "pbs1" in cli.world.model.storages and "password" not in cli.world.model.storages["pbs1"]
    assert ("POST", "/storage") in cli.world.sim.requests


# --- `proximo snapshot` against `proximo sim`, both real processes over loopback --------------------------------

PLAN_SAME = ("tool", "params", "risk", "reversible", "blocked", "blockers", "complete", "unseen", "impacts", "steps", "undo")


def test_snapshot_of_proximo_sim_loads_back_and_plans_the_same(cli: Cli, sim_process: dict[str, str | None], tmp_path: Path) -> None:
    from proximo.model import load_snapshot
    from proximo.model._access import permissions_answer
    from proximo.sim import demo_snapshot

    out = tmp_path / "taken.json"
    result = cli("snapshot", "-o", str(out), env=sim_process)
    assert result.exit_code == 0, result.output
    assert "could not see" not in result.stderr
    assert str(sim_process["PROXIMO_TOKEN_SECRET"]) not in out.read_text()
    doc = json.loads(out.read_text())
    taken = load_snapshot(doc)
    served = load_snapshot(demo_snapshot())  # what `proximo sim` serves when given no snapshot
    assert taken.fingerprint() == served.fingerprint()
    taken_api = dump_snapshot(taken, captured_at="x")["api"]
    # and the capturing token's own privileges, which depend on who asks
    assert taken_api.pop("/access/permissions") == permissions_answer(served, str(sim_process["PROXIMO_TOKEN_ID"]))
    assert taken_api == dump_snapshot(served, captured_at="x")["api"]
    for args in (["storage.delete", "storage=local-zfs"], ["storage.update", "storage=ceph-rbd", "disable=1"],
                 ["api.call", "method=DELETE", "path=/storage/nfs-backup"]):
        live = json.loads(cli("plan", *args, "--json", env=sim_process).stdout)
        offline = json.loads(cli("plan", *args, "--json", "--snapshot", str(out), env={"PROXIMO_URL": None}).stdout)
        assert {k: live[k] for k in PLAN_SAME} == {k: offline[k] for k in PLAN_SAME}, args
        assert live["impacts"], args


@pytest.mark.parametrize("sim_process", [["--pve-version", "8.4"]], indirect=True)
def test_proximo_sim_simulates_the_release_it_is_given(cli: Cli, sim_process: dict[str, str | None]) -> None:
    """``proximo sim --pve-version 8.4``: its /version, and its API, which Proximo then plans for."""
    plan = json.loads(cli("plan", "storage.update", "storage=nfs-backup", "maxfiles=3", "--json", env=sim_process).stdout)
    assert plan["steps"] == [{"kind": "api", "method": "PUT", "path": "/storage/nfs-backup", "params": {"maxfiles": 3, "digest": plan["steps"][0]["params"]["digest"]}}]
    refused = cli("plan", "vm.create", "node=pve1", "vmid=150", "allow-ksm=0", env=sim_process)
    assert refused.exit_code == 2
    assert refused.stderr.strip().splitlines() == [
        "proximo: vm.create: this cluster runs PVE 8.4.1, whose API does not have allow-ksm (a PVE 9.1 parameter of POST /nodes/{node}/qemu)"]


def test_proximo_sim_refuses_a_release_it_cannot_simulate(cli: Cli) -> None:
    result = cli("sim", "--pve-version", "9.0", "--port", "1")
    assert result.exit_code == 2
    assert result.stderr.strip() == "proximo: the simulator simulates PVE 8.4 and 9.1, not 9.0"
