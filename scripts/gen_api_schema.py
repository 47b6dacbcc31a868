"""Derive Proximo's compact copy of the PVE API schema from ../shared/pve-api/9.1/pve-api-index.json.

Only what validation needs is kept: method, path, and each parameter's type and constraints.
``tests/test_apischema.py`` regenerates it and fails if the committed file differs.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

KEEP = ("type", "optional", "enum", "format", "pattern", "minimum", "maximum", "maxLength", "default")
OUT = Path(__file__).resolve().parents[1] / "proximo" / "_data" / "pve-api-9.1.json.gz"


def compact(index: dict) -> bytes:
    endpoints = []
    for ep in index["endpoints"]:
        params = {
            name: {k: spec[k] for k in KEEP if k in spec and not isinstance(spec[k], dict)}
            for name, spec in sorted(ep.get("params", {}).items())
        }
        endpoints.append({"method": ep["method"], "path": ep["path"], "params": params})
    endpoints.sort(key=lambda e: (e["path"], e["method"]))
    doc = {"pve_docs_version": index["meta"]["pve_docs_version"], "endpoints": endpoints}
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return gzip.compress(raw, mtime=0)


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else OUT.parents[2].parent / "shared/pve-api/9.1/pve-api-index.json"
    OUT.write_bytes(compact(json.loads(src.read_text())))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
