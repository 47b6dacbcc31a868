"""Derive Proximo's compact copy of the PVE API schema from ../shared/pve-api/9.1.

Only what validation and the permission checks need is kept: method, path, each parameter's type and
constraints (from ``pve-api-index.json``), and each method's ``permissions``, ``allowtoken`` and
``protected`` (from the raw tree ``pve-api-schema.json``; the index does not carry them).
``tests/test_apischema.py`` regenerates it and fails if the committed file differs.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

KEEP = ("type", "optional", "enum", "format", "pattern", "minimum", "maximum", "maxLength", "default")
OUT = Path(__file__).resolve().parents[1] / "proximo" / "pve" / "_data" / "pve-api-9.1.json.gz"
SHARED = OUT.parents[2].parent / "shared" / "pve-api" / "9.1"


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
    doc = {"pve_docs_version": index["meta"]["pve_docs_version"], "endpoints": endpoints}
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
