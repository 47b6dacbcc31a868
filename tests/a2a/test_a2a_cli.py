"""`proximo-a2a`: refusing a reachable bind without a token file, the token file, and `--sim` in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from _a2a_support import TOKEN
from proximo.a2a import DEFAULT_PORT, main
from proximo.a2a._guard import check_bind, read_token
from proximo.errors import BadInput


def test_default_port_and_loopback_without_a_token() -> None:
    assert DEFAULT_PORT == 41241
    check_bind("127.0.0.1", None)
    check_bind("::1", None)


def test_a_reachable_bind_needs_the_token_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="PROXIMO_A2A_TOKEN_FILE"):
        check_bind("0.0.0.0", None)
    result = CliRunner().invoke(main, ["--host", "0.0.0.0", "--port", "0"],
                                env={"PROXIMO_HOME": str(tmp_path), "PROXIMO_A2A_TOKEN_FILE": ""})
    assert result.exit_code == 1 and "PROXIMO_A2A_TOKEN_FILE" in result.output
    short = tmp_path / "short"
    short.write_text("abc\n")
    with pytest.raises(BadInput, match="too short"):
        read_token(str(short))
    good = tmp_path / "token"
    good.write_text(TOKEN + "\n")
    token = read_token(str(good))
    assert token is not None and token.reveal() == TOKEN
    check_bind("0.0.0.0", token)
    assert TOKEN not in repr(token)


def _start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str, str]:
    """`proximo-a2a ARGS` in a child process; (process, base URL, its start-up line) once it says where it listens."""
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_")}, "PROXIMO_HOME": str(tmp_path),
            **(env or {})}
    proc = subprocess.Popen([sys.executable, "-c", "from proximo.a2a import main; main()", *args],
                            env=full, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    line = ""
    for line in proc.stderr:  # the first line names the URL (a readiness wait on the process's own word)
        if "A2A server at " in line:
            break
    assert "A2A server at " in line, line
    return proc, line.split("A2A server at ", 1)[1].split(" ", 1)[0], line


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    proc.wait(timeout=30)
    rest = proc.stderr.read() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    return rest


def test_sim_serves_the_card_in_a_real_process(tmp_path: Path) -> None:
    proc, base, line = _start(tmp_path, "--sim", "--port", "0")
    try:
        card = httpx.get(base + "/.well-known/agent-card.json", timeout=30).json()
    finally:
        _stop(proc)
    assert [s["id"] for s in card["skills"]] == ["inspect", "plan", "apply", "undo", "audit"]
    assert "simulated" in line and "loopback only" in line


def test_the_token_file_is_required_and_never_printed(tmp_path: Path) -> None:
    token_file = tmp_path / "a2a-token"
    token_file.write_text(TOKEN + "\n")
    proc, base, line = _start(tmp_path, "--sim", "--port", "0", env={"PROXIMO_A2A_TOKEN_FILE": str(token_file)})
    try:
        refused = httpx.get(base + "/.well-known/agent-card.json", timeout=30)
        served = httpx.get(base + "/.well-known/agent-card.json", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    finally:
        rest = _stop(proc)
    assert (refused.status_code, served.status_code) == (401, 200)
    assert "bearer token required" in line
    assert TOKEN not in line + rest + refused.text + served.text
