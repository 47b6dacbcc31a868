"""Derive the one-line parameter descriptions the tools' JSON schemas show: ``proximo/pve/_data/pve-api-descriptions.json.gz``.

Input: the same ``apidata.js`` trees ``scripts/gen_api_schema.py`` reads (``tests/data/pve/api/R/pve-api-schema.json.gz``,
or the folder given as the argument). ``gen_api_schema.py`` leaves descriptions out of the validation data on
purpose (they are prose for people); this keeps only each parameter's first sentence, whitespace collapsed and cut
at ``MAX_CHARS``
(``proximo._schema.first_sentence``, which cuts them shorter for the largest tools), newest release first (a
parameter only an older release has keeps that release's text).

Output: ``{"METHOD PATH": {"param": "first sentence"}}``, indexed parameters under their ``name[n]`` form.
``tests/mcp/test_schemas.py`` regenerates it and fails if the committed file differs.

Usage: ``uv run python scripts/gen_param_descriptions.py [PVE_API_DIR]``.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from proximo._schema import DESCRIPTION_LIMITS, first_sentence

RELEASES = ("9.1", "8.4")  # newest first: its wording wins
MAX_CHARS = DESCRIPTION_LIMITS[0]
REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "proximo" / "pve" / "_data" / "pve-api-descriptions.json.gz"
INPUT = REPO / "tests" / "data" / "pve" / "api"


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children") or []:
        yield from _nodes(child)


def descriptions(trees: list[list[dict[str, Any]]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for tree in trees:  # newest first
        for root in tree:
            for node in _nodes(root):
                for method, info in (node.get("info") or {}).items():
                    props = ((info.get("parameters") or {}).get("properties")) or {}
                    params = out.setdefault(f"{method} {node['path']}", {})
                    for name, spec in props.items():
                        text = spec.get("description") if isinstance(spec, dict) else None
                        if isinstance(text, str) and text.strip() and name not in params:
                            params[name] = first_sentence(text, MAX_CHARS)
    return {key: dict(sorted(params.items())) for key, params in sorted(out.items()) if params}


def read_tree(folder: Path) -> list[dict[str, Any]]:
    plain = folder / "pve-api-schema.json"
    raw = plain.read_bytes() if plain.is_file() else gzip.decompress((folder / "pve-api-schema.json.gz").read_bytes())
    tree = json.loads(raw)
    assert isinstance(tree, list)
    return tree


def generate(folder: Path = INPUT) -> bytes:
    doc = descriptions([read_tree(folder / release) for release in RELEASES])
    return gzip.compress(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode(), mtime=0)


def main(argv: list[str]) -> int:
    OUT.write_bytes(generate(Path(argv[1]) if len(argv) > 1 else INPUT))
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
