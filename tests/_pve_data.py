"""The Proxmox data the tests read: ``tests/data/pve``, in the repository.

Proxmox's own test cases, facts read from its source and real API responses, converted by
``scripts/convert_pve_test_data.py`` (each file names its origin: repository, commit, files), and the API
schema per release (``api/``, the input of ``scripts/gen_api_schema.py``). No test reads outside the repository.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PVE_DATA = REPO / "tests" / "data" / "pve"


def pve_data(name: str) -> Any:
    """One data file of ``tests/data/pve`` (``qemu-server.json``, ``samples/proxmoxer.json``), origin and all."""
    return json.loads((PVE_DATA / name).read_text(encoding="utf-8"))


def samples() -> dict[str, Any]:
    """Every real response, by name, from all the repositories they were found in."""
    found: dict[str, Any] = {}
    for path in sorted((PVE_DATA / "samples").glob("*.json")):
        found.update(pve_data(f"samples/{path.name}")["samples"])
    return found


def sample_data(name: str) -> Any:
    """The ``data`` of one real response (``qemu-config-102.community-proxmox``)."""
    return samples()[name]["data"]


def script(name: str) -> ModuleType:
    """A script of ``scripts/`` as a module (``gen_api_schema``), to call its functions."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
