"""The top-level command list that ``proximo --help`` prints, cached so that it needs neither the packs nor the host.

Building the command tree imports every pack (their ``proximo_register_commands``), and with them pluggy, msgspec,
rich and the model: most of ``--help``'s time (issue 14: start-up). The list is kept in the user's cache directory
with what it was built from, and used only while all of that is unchanged:

- the interpreter, ``sys.path``, and the packs disabled by ``PROXIMO_DISABLED_PACKS``;
- each ``sys.path`` directory's mtime and the distributions in it: installing, upgrading or removing one (a pack,
  its entry point) adds or removes a ``*.dist-info`` there;
- the mtime and size of the file of every module that building the tree imported (the packs' code, ours, their
  dependencies'): the test Python itself makes of a module's bytecode.

A file changed less than two seconds before the list was built could change again within its filesystem's mtime
granularity, unseen: such a list is not kept (git's "racily clean" rule). A command whose short help is its own code
(a ``get_short_help_str`` of its own) cannot be cached either. This module imports only click and the standard
library: it runs before anything else, and for a ``--help`` nothing else does.
"""

from __future__ import annotations

import json
import os
import sys
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

FORMAT = 1
RACY_NS = 2_000_000_000  # coarser than any filesystem's mtime (FAT: 2 s)

_DISTRIBUTIONS = (".dist-info", ".egg-info", ".egg-link", ".pth")

# Plain tuples and dicts rather than msgspec structs: importing msgspec would cost --help a tenth of its budget.
Stat = tuple[int, int]  # (mtime_ns, size)


def disabled_packs(env: Mapping[str, str] | None = None) -> list[str]:
    """The packs ``PROXIMO_DISABLED_PACKS`` names, as the pack manager reads them (stripped, sorted, once each)."""
    value = (os.environ if env is None else env).get("PROXIMO_DISABLED_PACKS", "")
    return sorted({name.strip() for name in value.split(",") if name.strip()})


def _cache_dir() -> Path:
    """platformdirs' user cache directory, computed here: importing platformdirs costs more than the rest of this."""
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "proximo" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "proximo"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "proximo"


def _key() -> dict[str, Any]:
    return {"format": FORMAT, "python": sys.version, "executable": sys.executable, "path": list(sys.path),
            "disabled": disabled_packs()}


def _cache_file(key: dict[str, Any]) -> Path:
    # one file per interpreter and path (a venv's script, `python -m` from another directory): they do not thrash
    # (crc32, not hashlib: loading OpenSSL costs milliseconds; two environments sharing a name only rebuild more)
    digest = zlib.crc32(json.dumps([key["executable"], key["path"]]).encode())
    return _cache_dir() / f"commands-{digest:08x}.json"


def _stat(path: str) -> Stat | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def path_dirs() -> dict[str, list[Any] | None]:
    """Each ``sys.path`` directory's mtime and the distributions in it (their metadata directories carry name and
    version), so an install or removal shows even where mtimes were set by hand. Taken before building the tree: a
    pack installed meanwhile makes the next ``--help`` build it again."""
    found: dict[str, list[Any] | None] = {}
    for entry in sys.path:
        try:
            st = os.stat(entry or ".")
            names = sorted(n for n in os.listdir(entry or ".") if n.endswith(_DISTRIBUTIONS)) if os.path.isdir(entry or ".") else []
        except OSError:
            found[entry] = None
            continue
        found[entry] = [st.st_mtime_ns, names]
    return found


def _module_files() -> list[str]:
    return sorted({file for module in list(sys.modules.values())
                   if isinstance(file := getattr(module, "__file__", None), str)})


def load() -> list[click.Command] | None:
    """The cached top-level commands (stand-ins carrying each one's name and help), or None when the cache is absent,
    unreadable, or anything it was built from has changed."""
    key = _key()
    try:
        doc = json.loads(_cache_file(key).read_text())
        if doc["key"] != key or doc["dirs"] != path_dirs():
            return None
        if any(_stat(file) != tuple(stat) for file, stat in doc["files"]):
            return None
        return [click.Command(c["name"], help=c["help"], short_help=c["short_help"], hidden=c["hidden"],
                              deprecated=c["deprecated"]) for c in doc["commands"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(commands: list[tuple[str, click.Command]], dirs: dict[str, list[Any] | None]) -> bool:
    """Keep the command list just built; ``dirs``: the ``sys.path`` directories as they were before it was built.
    False when it cannot be kept (racy, a command with its own short-help code, an unwritable cache)."""
    for _, cmd in commands:
        if type(cmd).get_short_help_str is not click.Command.get_short_help_str:
            return False
        if not isinstance(cmd.deprecated, (bool, str)):
            return False
    key = _key()
    target = _cache_file(key)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # before the stats: an unwritable cache costs nothing more than the build
        return False
    files = {file: _stat(file) for file in _module_files()}
    mtimes = [s[0] for s in (*files.values(), *dirs.values()) if s is not None]
    if any(mtime > time.time_ns() - RACY_NS for mtime in mtimes):
        return False
    doc = {
        "key": key,
        "dirs": dirs,
        "files": [[file, stat] for file, stat in files.items() if stat is not None],
        "commands": [{"name": name, "help": cmd.help, "short_help": cmd.short_help, "hidden": cmd.hidden,
                      "deprecated": cmd.deprecated} for name, cmd in commands],
    }
    try:
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(doc))
        os.replace(partial, target)  # whole or not at all: another proximo may be reading it
    except OSError:
        return False
    return True
