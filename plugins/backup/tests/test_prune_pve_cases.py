"""pve-storage's own prune test cases (src/test/prune_backups_test.pm, transcribed in tests/data) against the port."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proximo.model import prune_list

DATA = json.loads((Path(__file__).parents[3] / "tests" / "data" / "pve-storage-prune-backups.json").read_text())


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r["volid"])


@pytest.mark.parametrize("case", DATA["cases"], ids=[c["description"] for c in DATA["cases"]])
def test_prune_marks_as_pve_storage_does(case: dict[str, Any]) -> None:
    rows = DATA["lists"][case["list"]]
    # Perl's list_volumes mock filters by vmid (string compare); the type filter is prune_backups' own
    got = prune_list(rows, case["keep"], vmid=case["vmid"], kind=case["type"])
    assert _sorted(got) == _sorted(case["expected"])


def test_the_data_names_its_origin() -> None:
    source = DATA["origin"]["sources"][0]
    assert source["repository"] == "proxmox/pve-storage" and len(source["commit"]) == 40
    assert len(DATA["cases"]) == 22  # every case of the Perl file
