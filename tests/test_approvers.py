"""Approvers: the credential a person has and an agent does not (passphrase as scrypt, TOTP per RFC 6238)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from proximo.trust import _approvers
from proximo.trust._approvers import ApproverStore, totp_code, totp_uri
from proximo.trust._ledger import Actor
from proximo._settings import Settings
from proximo.cli._trust import add_approver, remove_approver
from proximo.errors import BadInput, NotApproved

RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # RFC 6238 appendix B: ASCII "12345678901234567890"
ACTOR = Actor(token_id="-", face="cli", client="pytest")


def store(tmp_path: Path, now: float = 1_000_000.0) -> ApproverStore:
    return ApproverStore(tmp_path, clock=lambda: now, sleep=lambda _: None)


@pytest.mark.parametrize(("time", "code"), [(59, "287082"), (1111111109, "081804"), (1234567890, "005924"),
                                            (2000000000, "279037")])
def test_totp_matches_rfc_6238_vectors(time: int, code: str) -> None:
    assert totp_code(RFC_SECRET, time // 30) == code  # the RFC's 8-digit codes, last six digits


@pytest.mark.production_scrypt
def test_passphrase_is_kept_as_scrypt_in_an_owner_only_file(tmp_path: Path) -> None:
    approvers = store(tmp_path)
    approvers.add("alice", "correct horse battery")
    raw = (tmp_path / "approvers.json").read_text()
    assert "correct horse battery" not in raw and '"scrypt$32768$8$1$' in raw
    assert stat.S_IMODE((tmp_path / "approvers.json").stat().st_mode) == 0o600
    assert approvers.verify("alice", "correct horse battery").name == "alice"


@pytest.mark.production_scrypt
def test_the_production_cost_is_not_lowered() -> None:
    """Other tests hash at a lower cost (conftest.py); nothing of that is left for a test that does not ask for it."""
    assert _approvers._hash_passphrase.__defaults__ == (None, 2**15, 8, 1)
    assert _approvers._dummy_hash().startswith("scrypt$32768$8$1$")  # an unknown name costs what a known one does


def test_a_passphrase_is_checked_at_the_cost_in_its_hash(tmp_path: Path) -> None:
    """Tests make approvers at a lower cost; checking reads the cost from the hash, so it stays the production code path."""
    approvers = store(tmp_path)
    approvers.add("alice", "correct horse battery")
    stored = approvers.get("alice")
    assert stored is not None and stored.passphrase.startswith("scrypt$1024$8$1$")
    assert approvers.verify("alice", "correct horse battery").name == "alice"


@pytest.mark.parametrize(("name", "passphrase"), [("alice", "wrong horse battery"), ("mallory", "correct horse battery"),
                                                  ("../alice", "correct horse battery"), ("alice", "")])
def test_a_wrong_name_or_passphrase_approves_nothing(tmp_path: Path, name: str, passphrase: str) -> None:
    approvers = store(tmp_path)
    approvers.add("alice", "correct horse battery")
    with pytest.raises(NotApproved, match="^the approver name, passphrase or code is wrong: nothing was approved$"):
        approvers.verify(name, passphrase)


def test_a_wrong_guess_costs_a_delay(tmp_path: Path) -> None:
    slept: list[float] = []
    approvers = ApproverStore(tmp_path, sleep=slept.append)
    approvers.add("alice", "correct horse battery")
    with pytest.raises(NotApproved):
        approvers.verify("alice", "guess")
    assert slept == [1.0]


def test_totp_is_needed_when_set_and_a_code_works_once(tmp_path: Path) -> None:
    now = 1_700_000_000.0
    approvers = store(tmp_path, now)
    alice = approvers.add("alice", "correct horse battery", with_totp=True)
    code = totp_code(alice.totp, int(now) // 30)
    with pytest.raises(NotApproved):
        approvers.verify("alice", "correct horse battery")  # the passphrase alone is not enough
    with pytest.raises(NotApproved):
        approvers.verify("alice", "correct horse battery", "000000" if code != "000000" else "111111")
    assert approvers.verify("alice", "correct horse battery", code).name == "alice"
    with pytest.raises(NotApproved):  # replayed: the same code, the same 30 s
        approvers.verify("alice", "correct horse battery", code)
    later = store(tmp_path, now + 30)
    assert later.verify("alice", "correct horse battery", totp_code(alice.totp, int(now) // 30 + 1)).name == "alice"
    assert totp_uri("alice", alice.totp).startswith(f"otpauth://totp/Proximo%3Aalice?secret={alice.totp}&issuer=Proximo")


@pytest.mark.parametrize("name", ["Alice", "a" * 40, "al ice", "alice/..", "１２３", ""])
def test_bad_names_are_one_line_errors(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadInput, match="^approver name "):
        store(tmp_path).add(name, "correct horse battery")


def test_short_passphrases_and_duplicates_are_refused(tmp_path: Path) -> None:
    approvers = store(tmp_path)
    with pytest.raises(BadInput, match="at least 12 characters"):
        approvers.add("alice", "short")
    approvers.add("alice", "correct horse battery")
    with pytest.raises(BadInput, match="exists already"):
        approvers.add("alice", "another long passphrase")


def test_a_damaged_file_refuses_every_approval(tmp_path: Path) -> None:
    (tmp_path / "approvers.json").write_text("{not json")
    with pytest.raises(BadInput, match="is damaged"):
        store(tmp_path).verify("alice", "correct horse battery")


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"PROXIMO_HOME": str(tmp_path / "home")})


def _answers(mapping: dict[str, str]):  # type: ignore[no-untyped-def]
    return lambda prompt, hidden: next(v for k, v in mapping.items() if prompt.startswith(k))


def test_the_first_approver_is_free_every_later_change_needs_one(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    add_approver(settings, "alice", totp=False, actor=ACTOR, echo=lambda _: None,
                 ask=_answers({"New passphrase": "alice's passphrase", "The same": "alice's passphrase"}))
    # An agent that tries to add itself now needs alice's credential.
    with pytest.raises(NotApproved):
        add_approver(settings, "agent", totp=False, actor=ACTOR, echo=lambda _: None,
                     ask=_answers({"Passphrase of approver alice": "a guess", "New passphrase": "agent's passphrase",
                                   "The same": "agent's passphrase"}))
    assert ApproverStore(settings.home).names() == ["alice"]
    add_approver(settings, "bob", totp=False, actor=ACTOR, echo=lambda _: None,
                 ask=_answers({"Passphrase of approver alice": "alice's passphrase", "New passphrase": "bob's passphrase!",
                               "The same": "bob's passphrase!"}))
    remove_approver(settings, "bob", actor=ACTOR, echo=lambda _: None,
                    ask=_answers({"Approver": "alice", "Passphrase of approver alice": "alice's passphrase"}))
    assert ApproverStore(settings.home).names() == ["alice"]
    from proximo.trust._state import open_ledger

    with open_ledger(settings) as book:
        changes = [(r.outcome["action"], r.outcome["name"], r.outcome["by"]) for r in book.records() if r.kind == "approver"]
    assert changes == [("add", "alice", "(first approver)"), ("add", "bob", "alice"), ("remove", "bob", "alice")]


def test_mismatched_passphrases_change_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(BadInput, match="the two passphrases differ"):
        add_approver(settings, "alice", totp=False, actor=ACTOR, echo=lambda _: None,
                     ask=_answers({"New passphrase": "alice's passphrase", "The same": "alice's passphrasE"}))
    assert not (settings.home / "approvers.json").exists()
    assert json.dumps(ApproverStore(settings.home).names()) == "[]"
