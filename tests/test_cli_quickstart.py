"""The session transcript in docs/quickstart.md stays true: each ``$ proximo ...`` line in it runs, as a person at an
80-column terminal would run it (stdout a pseudo-terminal, so reads are tables), against the simulated cluster the
quick start serves, and prints what the transcript shows, once plan ids, hashes, times and task ids are normalised.

A plan id the transcript names in a later command stands for the id that run made (matched by order of appearance).
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

from _loopback import serve

from proximo.testing import TOKEN_ID, World

DOC = Path(__file__).resolve().parents[1] / "docs" / "quickstart.md"
PLAN_ID = re.compile(r"p-[0-9a-f]{12}")
NORMAL = [
    (re.compile(r"UPID:\S+"), "UPID:…"),
    (re.compile(r"\b[0-9a-f]{40,64}\b"), "<digest>"),
    (re.compile(r"\b[0-9a-f]{12}\b"), "<hash>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "<time>"),
    (re.compile(r"\b\d+\.\ds\b"), "<seconds>"),
]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def session(text: str) -> list[tuple[str, list[str]]]:
    """The transcript block (```console after "A first session"): each command with the lines it prints."""
    block = re.search(r"## A first session.*?```console\n(.*?)```", text, re.S)
    assert block, "docs/quickstart.md has no session transcript"
    steps: list[tuple[str, list[str]]] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def normal(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        line = PLAN_ID.sub("p-<id>", line.rstrip())
        for pattern, token in NORMAL:
            line = pattern.sub(token, line)
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return out


def at_80_columns(argv: list[str], env: dict[str, str]) -> list[str]:
    """Run with stdout on an 80-column pseudo-terminal (stderr a pipe, shown first, as the apply's progress is)."""
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 80, 0, 0))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=secondary, stderr=subprocess.PIPE, env=env)
    os.close(secondary)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    _, err = proc.communicate(timeout=120)  # small: one error line, or the apply's progress
    stderr = err.decode()
    stdout = ANSI.sub("", b"".join(chunks).decode().replace("\r\n", "\n"))
    return stderr.splitlines() + stdout.splitlines()


def test_the_quickstart_session_is_what_proximo_prints(tmp_path: Path) -> None:
    steps = session(DOC.read_text())
    assert len(steps) >= 5
    world = World(tmp_path / "world")
    with serve(world.sim.app) as url:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_") and k not in ("COLUMNS", "LINES")},
               "PROXIMO_URL": url, "PROXIMO_TOKEN_ID": TOKEN_ID, "PROXIMO_TOKEN_SECRET": world.secret,
               "PROXIMO_HOME": str(tmp_path / "home"), "TERM": "dumb", "NO_COLOR": "1"}
        ids: dict[str, str] = {}  # the transcript's plan ids -> this run's
        for command, shown in steps:
            words = [ids.get(w, w) for w in command.split()]
            assert words[0] == "proximo", command
            printed = at_80_columns([sys.executable, "-m", "proximo", *words[1:]], env)
            for doc_id, run_id in zip(PLAN_ID.findall("\n".join(shown)), PLAN_ID.findall("\n".join(printed)), strict=False):
                ids.setdefault(doc_id, run_id)
            assert normal(printed) == normal(shown), f"$ {command}\n" + "\n".join(printed)
