"""Derive Proximo's compact copies of the PVE API schema, one per release it supports: ``proximo/pve/_data/pve-api-R.json.gz``.

Input: Proxmox publishes its whole REST API as a generated data file, ``api-viewer/apidata.js`` in the
``proxmox/pve-docs`` repository (the data behind the online API viewer). This script reads it as JSON, for each
release R in ``RELEASES``, from ``tests/data/pve/api/R`` in the repository (gzip-compressed there, as taken from
the ``pve-api`` folder the project started from), or from the folder given as its argument (one folder per
release, plain or ``.gz`` files):

- ``pve-api-schema.json``: apidata.js with only its JavaScript wrapper removed: the tree of paths, each method's
  ``info``. 9.1: pve-docs 9.1.3, commit a8736b6d6169ea9679ee02285ea36fdab42e85c3 (2026-04-30); 8.4: pve-docs 8.4.2
  (branch stable-bookworm), commit ae1bf37ed06b2fab39c9fa28a0e6c18e6435b7de (2026-03-16).
- ``pve-api-index.json``: the same tree flattened to one entry per method and path (``params`` with their type and
  constraints, ``format_props`` for property strings, ``path_params``); its ``meta`` names that repository, file
  and commit.

Only what validation and the permission checks need is kept: method, path, each parameter's type and
constraints and, for a property string, each of its keys (``format_props``: type, constraints, ``default_key``,
``alias``, ``keyAlias``, ``requires``; PVE::JSONSchema parse_property_string reads no more), from the index; and
each method's ``permissions``, ``allowtoken`` and ``protected``, from the raw tree (the index does not carry
them). Descriptions, ``typetext`` and ``format_description`` are documentation and are left out. Each output
names its release and its origin in ``source`` (repository, file, commit, from the index's ``meta``).
``tests/test_apischema.py`` regenerates them from ``tests/data/pve/api`` and fails if a committed file differs.

Usage: ``uv run python scripts/gen_api_schema.py [PVE_API_DIR]`` (a folder with ``8.4/`` and ``9.1/``).
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RELEASES = ("8.4", "9.1")
KEEP = ("type", "optional", "enum", "format", "pattern", "minimum", "maximum", "maxLength", "minLength", "default", "requires")
KEEP_IN_PROPERTY_STRING = ("type", "optional", "enum", "format", "pattern", "minimum", "maximum", "maxLength", "minLength",
                           "default_key", "alias", "keyAlias", "requires")
FLAGS = ("optional", "default_key")  # Perl-style 0/1 in the data: booleans here
REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "proximo" / "pve" / "_data"
INPUT = REPO / "tests" / "data" / "pve" / "api"


def read_input(folder: Path, name: str) -> Any:
    """``name`` in ``folder``, plain or gzip-compressed (``name.gz``)."""
    plain = folder / name
    return json.loads(plain.read_bytes() if plain.is_file() else gzip.decompress((folder / f"{name}.gz").read_bytes()))


def out_path(release: str) -> Path:
    return DATA / f"pve-api-{release}.json.gz"


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children") or []:
        yield from _nodes(child)


def access_rules(tree: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(method, path) -> what RPCEnvironment::check_api2_permissions and the HTTP server read of the method.

    ``permissions`` keeps ``check`` and ``user`` (its ``description`` is prose for people); a method without
    one is absent here too, which PVE reads as root@pam only. ``allowtoken`` 0 refuses API tokens.
    """
    rules: dict[tuple[str, str], dict[str, Any]] = {}
    for root in tree:
        for node in _nodes(root):
            for method, info in (node.get("info") or {}).items():
                rule: dict[str, Any] = {"allowtoken": bool(info.get("allowtoken", 1)), "protected": bool(info.get("protected", 0))}
                permissions = info.get("permissions")
                if permissions is not None:
                    rule["permissions"] = {k: permissions[k] for k in ("check", "user") if k in permissions}
                rules[(method, node["path"])] = rule
    return rules


def _spec(spec: dict[str, Any], keep: tuple[str, ...]) -> dict[str, Any]:
    out = {k: (bool(spec[k]) if k in FLAGS else spec[k]) for k in keep if k in spec and not isinstance(spec[k], dict)}
    if "format_props" in spec:
        out["format_props"] = {key: _spec(sub, KEEP_IN_PROPERTY_STRING) for key, sub in sorted(spec["format_props"].items())}
    return out


def compact(index: dict[str, Any], tree: list[dict[str, Any]], release: str) -> bytes:
    rules = access_rules(tree)
    endpoints = []
    for ep in index["endpoints"]:
        params = {name: _spec(spec, KEEP) for name, spec in sorted(ep.get("params", {}).items())}
        endpoints.append({"method": ep["method"], "path": ep["path"], "params": params, **rules[(ep["method"], ep["path"])]})
    endpoints.sort(key=lambda e: (e["path"], e["method"]))
    meta = index["meta"]
    source = {"repository": meta["source_repo"], "file": meta["source_path"], "commit": meta["source_commit"]}
    doc = {"release": release, "pve_docs_version": meta["pve_docs_version"], "source": source, "endpoints": endpoints}
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return gzip.compress(raw, mtime=0)


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else INPUT
    for release in RELEASES:
        index, tree = read_input(folder / release, "pve-api-index.json"), read_input(folder / release, "pve-api-schema.json")
        out = out_path(release)
        out.write_bytes(compact(index, tree, release))
        print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
