"""Derive Proximo's compact copy of the PVE API schema, ``proximo/pve/_data/pve-api-9.1.json.gz``.

Input: Proxmox publishes its whole REST API as a generated data file, ``api-viewer/apidata.js`` in the
``proxmox/pve-docs`` repository (the data behind the online API viewer). This script reads it as JSON from
``../shared/pve-api/9.1`` beside the repository (or the folder given as its argument):

- ``pve-api-schema.json``: apidata.js of pve-docs 9.1.3, commit a8736b6d6169ea9679ee02285ea36fdab42e85c3
  (2026-04-30), with only its JavaScript wrapper removed: the tree of paths, each method's ``info``.
- ``pve-api-index.json``: the same tree flattened to one entry per method and path (``params`` with their
  type and constraints, ``path_params``); its ``meta`` names that repository, file and commit.

Only what validation and the permission checks need is kept: method, path, each parameter's type and
constraints (from the index), and each method's ``permissions``, ``allowtoken`` and ``protected`` (from the
raw tree; the index does not carry them). The output names its origin in ``source`` (repository, file,
commit, from the index's ``meta``). ``tests/test_apischema.py`` regenerates it where ``../shared`` is present
and fails if the committed file differs.

Usage: ``uv run python scripts/gen_api_schema.py [PVE_API_9_1_DIR]``.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

KEEP = ("type", "optional", "enum", "format", "pattern", "minimum", "maximum", "maxLength", "default")
REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "proximo" / "pve" / "_data" / "pve-api-9.1.json.gz"
SHARED = REPO.parent / "shared" / "pve-api" / "9.1"


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


def compact(index: dict[str, Any], tree: list[dict[str, Any]]) -> bytes:
    rules = access_rules(tree)
    endpoints = []
    for ep in index["endpoints"]:
        params = {
            name: {k: spec[k] for k in KEEP if k in spec and not isinstance(spec[k], dict)}
            for name, spec in sorted(ep.get("params", {}).items())
        }
        endpoints.append({"method": ep["method"], "path": ep["path"], "params": params, **rules[(ep["method"], ep["path"])]})
    endpoints.sort(key=lambda e: (e["path"], e["method"]))
    meta = index["meta"]
    source = {"repository": meta["source_repo"], "file": meta["source_path"], "commit": meta["source_commit"]}
    doc = {"pve_docs_version": meta["pve_docs_version"], "source": source, "endpoints": endpoints}
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return gzip.compress(raw, mtime=0)


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else SHARED
    index = json.loads((folder / "pve-api-index.json").read_text())
    tree = json.loads((folder / "pve-api-schema.json").read_text())
    OUT.write_bytes(compact(index, tree))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
