"""The Proxmox test data in ``tests/data/pve``: each file names its origin, and is the converter's output.

Whether they are still the conversion of their inputs is checked by ``scripts/convert_pve_test_data.py --check``,
which needs those inputs (``../shared/pve-api``, git mirrors of pve-firewall and pve-access-control) and so is not a
test here: ``.ci/run`` runs it where ``../shared/pve-api`` is present.
"""

from __future__ import annotations

import re
from pathlib import Path

from _pve_data import PVE_DATA, pve_data

COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _committed() -> list[Path]:
    return sorted(PVE_DATA.rglob("*.json"))


def test_every_data_file_names_its_origin() -> None:
    assert _committed(), "tests/data/pve is empty"
    for path in _committed():
        origin = pve_data(str(path.relative_to(PVE_DATA)))["origin"]
        assert origin["converted_by"] == "scripts/convert_pve_test_data.py", path.name
        assert origin["sources"], path.name
        for source in origin["sources"]:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+", source["repository"]), (path.name, source)
            assert COMMIT.match(source["commit"]), (path.name, source)
            assert source["files"] and all(isinstance(file, str) and file for file in source["files"]), (path.name, source)

