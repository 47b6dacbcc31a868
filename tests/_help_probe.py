"""`proximo --help` in a child process, with its own user cache directory: what it printed and what it imported."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

PROBE = """
import sys
sys.argv = ["proximo", "--help"]
from proximo.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)))
"""
OLD = time.time() - 3600  # an mtime well before any cache is built: not "racily clean" (_listing.RACY_NS)


def run_help(tmp_path: Path, **env: str) -> tuple[str, list[str]]:
    """(stdout, the modules imported) of one `proximo --help`, its cache under tmp_path/cache, run from tmp_path/cwd."""
    cwd = tmp_path / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    os.utime(cwd, (OLD, OLD))  # sys.path[0] of `python -c`: its mtime is part of what the cache is checked against
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_")}, "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "100", **env}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env=full, capture_output=True, text=True, check=True)
    return done.stdout, done.stderr.rpartition("\nMODULES ")[2].split()


def from_cache(imported: list[str]) -> bool:
    return "proximo._plugins" not in imported


def help_until_cached(tmp_path: Path, **env: str) -> tuple[str, list[str]]:
    """`proximo --help` run until it answers from its cache: the first run builds the list and keeps it, unless a file
    it was built from changed in the last two seconds (then it is not kept; this waits that out, bounded)."""
    for _ in range(5):
        out, imported = run_help(tmp_path, **env)
        if from_cache(imported):
            return out, imported
        time.sleep(1)
    raise AssertionError("proximo --help never answered from its cache")
