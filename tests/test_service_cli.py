"""`proximo doctor` in local mode, `proximo service install`, and the service's settings checks (no accounts needed)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from proximo.trust._approvers import ApproverStore
from proximo.cli import build_cli

CLEAN = dict.fromkeys(("PROXIMO_LEDGER", "PROXIMO_LEDGER_KEY", "PROXIMO_POLICY", "PROXIMO_TOKEN_SECRET", "PROXIMO_TOKEN_FILE",
                       "PROXIMO_LEDGER_ANCHOR", "PROXIMO_URL"))


def run(*args: str, **env: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_cli(), list(args), env={**CLEAN, **env}, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_doctor_in_local_mode_says_what_does_not_hold(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fresh = json.loads(run("doctor", "--json", PROXIMO_HOME=str(home), PROXIMO_SERVICE_DIR=str(tmp_path / "no-service"))[1])
    assert [f["level"] for f in fresh["findings"]] == ["warn"] and not home.exists()  # doctor looks, it makes nothing
    assert run("ledger", "show", PROXIMO_HOME=str(home))[0] == 0  # first use makes the state directory
    code, out, _ = run("doctor", "--json", PROXIMO_HOME=str(home), PROXIMO_SERVICE_DIR=str(tmp_path / "no-service"))
    found = json.loads(out)
    assert code == 0 and found["mode"] == "local"
    assert any("An agent with a shell as this account can read the token" in line for line in found["does_not_hold"])
    levels = {f["what"]: f["level"] for f in found["findings"]}
    assert levels["state"] == "ok" and levels["ledger"] == "ok" and levels["ledger key"] == "ok"
    assert levels["approvers"] == "warn" and levels["policy"] == "warn"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_doctor_fails_on_a_state_directory_others_can_read_and_a_broken_ledger(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ApproverStore(home).add("alice", "alice's passphrase")
    os.chmod(home, 0o755)
    import sqlite3

    from proximo.trust._ledger import Actor, Ledger
    from proximo._settings import Settings
    from proximo.trust._state import open_ledger

    with open_ledger(Settings.from_env({"PROXIMO_HOME": str(home)})) as book:
        book.append("plan", actor=Actor(token_id="-", face="cli"), tool="x")
    db = sqlite3.connect(home / "ledger.sqlite")
    db.execute("DROP TRIGGER records_no_update")
    db.execute("UPDATE records SET tool = 'y'")
    db.commit()
    db.close()
    os.chmod(home, 0o755)  # (opening the ledger tightened it again: loosen it for the check below)
    code, out, _ = run("doctor", "--json", PROXIMO_HOME=str(home), PROXIMO_SERVICE_DIR=str(tmp_path / "no-service"))
    found = json.loads(out)
    levels = {f["what"]: (f["level"], f["detail"]) for f in found["findings"]}
    assert code == 1 and not found["ok"]
    assert levels["ledger"][0] == "fail" and "hash does not match its content" in levels["ledger"][1]
    assert levels["approvers"] == ("ok", "1: alice")
    assert Ledger  # the ledger module is what doctor reads through


def test_service_install_prints_a_hardened_unit(tmp_path: Path) -> None:
    code, out, _ = run("service", "install", "--exe", "/opt/proximo/bin/proximo")
    assert code == 0
    for line in ("User=proximo", "StateDirectoryMode=0700", "RuntimeDirectoryMode=0755", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ProtectHome=yes", "CapabilityBoundingSet=", "LoadCredential=token:/etc/proximo/token",
                 "Environment=PROXIMO_HOME=/var/lib/proximo PROXIMO_SERVICE_DIR=/run/proximo PROXIMO_TOKEN_FILE=%d/token",
                 "ExecStart=/opt/proximo/bin/proximo service run", "systemctl daemon-reload && systemctl enable --now proximo"):
        assert line in out, line
    assert 'u proximo - "Proximo service" /var/lib/proximo' in out


def test_service_install_writes_under_a_root_and_keeps_an_existing_env_file(tmp_path: Path) -> None:
    code, _, err = run("service", "install", "--write", "--root", str(tmp_path), "--exe", "/usr/bin/proximo")
    assert code == 0, err
    unit = tmp_path / "etc/systemd/system/proximo.service"
    env_file = tmp_path / "etc/proximo/proximo.env"
    assert unit.read_text().startswith("[Unit]") and stat.S_IMODE(env_file.stat().st_mode) == 0o640
    env_file.write_text("PROXIMO_URL=https://mine:8006\n")
    code, _, err = run("service", "install", "--write", "--root", str(tmp_path), "--exe", "/usr/bin/proximo")
    assert code == 0 and "kept" in err and env_file.read_text() == "PROXIMO_URL=https://mine:8006\n"


def test_service_install_refuses_paths_systemd_cannot_manage(tmp_path: Path) -> None:
    code, _, err = run("service", "install", "--home", "/srv/proximo")
    assert code == 2 and err.count("\n") == 1 and "StateDirectory=" in err


def test_connect_without_a_service_is_one_line(tmp_path: Path) -> None:
    code, _, err = run("connect", "--socket", str(tmp_path / "agent.sock"))
    assert code == 1 and err.startswith("proximo connect: no Proximo service answers on ") and err.count("\n") == 1


@pytest.mark.anyio
async def test_the_approval_desk_answers_bad_requests_in_one_line_and_changes_nothing(tmp_path: Path) -> None:
    """approve.sock's requests, as a hostile client would send them (the desk is what the socket hands each line to)."""
    from proximo.service._service import AccessRules, ApprovalDesk, Peer
    from proximo.testing import World

    world = World(tmp_path)
    rules = AccessRules(service_uid=0, approvers=frozenset({4242}), agents=frozenset())
    approver, stranger = Peer(pid=1, uid=4242, gid=4242), Peer(pid=2, uid=4343, gid=4343)
    async with world.host() as host:
        plan = await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
        desk = ApprovalDesk(host, rules, world.settings)
        before = host.ledger.head().seq
        for request in ([], "approve", {"op": 5}, {"op": "approve", "plan_id": "../../etc/passwd"},
                        {"op": "approve", "plan_id": ["p-0"]}, {"op": "approve", "plan_id": "p-0123456789ab\n"},
                        {"op": "approve", "plan_id": "p-０１２３４５６７８９ab"}, {"op": "seal"}, {"op": "seal", "reason": " "},
                        {"op": "format-disk"}, {"op": "show", "plan_id": "p-" + "a" * 5000}):
            answer = await desk.answer(approver, request)
            assert answer["ok"] is False and "\n" not in answer["error"] and len(answer["error"]) < 300, (request, answer)
        refused = await desk.answer(stranger, {"op": "approve", "plan_id": plan.plan_id, "junk": "x" * 100_000})
        assert refused["ok"] is False and "is not an approver" in refused["error"]
        kinds = [r.kind for r in host.ledger.records(since=before + 1)]
        assert "approve" not in kinds and len(msgspec_bytes(host.ledger.tail(1)[0])) < 4096
        with pytest.raises(Exception):
            await host.apply(plan.plan_id, world.actor)
        ping = await desk.answer(stranger, {"op": "ping"})
        assert ping["ok"] and ping["service"]["you"] == {"uid": 4343, "user": "4343", "approver": False}


def msgspec_bytes(value: object) -> bytes:
    import msgspec

    return msgspec.json.encode(value)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_approvers_of_the_simulated_cluster_live_beside_its_ledger(tmp_path: Path) -> None:
    ApproverStore(tmp_path / "sim").add("alice", "alice's passphrase")  # where `proximo serve --sim` keeps its state
    assert run("approver", "list", "--sim", PROXIMO_HOME=str(tmp_path))[1] == "alice\n"
    assert run("approver", "list", PROXIMO_HOME=str(tmp_path))[1] == ""
