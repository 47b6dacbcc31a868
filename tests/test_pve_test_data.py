"""The Proxmox test data in ``tests/data/pve``: each file names its origin, and is the converter's output.

The first test runs everywhere. The others check the conversion, not Proximo: they run
``scripts/convert_pve_test_data.py`` on ``../shared/pve-api`` (``convert``) and on git mirrors of Proxmox's
repositories (``convert_repositories``: ``tests/data/pve/from-git``), each skipped where its input is absent
(a plain clone has neither; the harnesses read the committed data).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _pve_data import PVE_DATA, SHARED_PVE_API, pve_data, script

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


def test_committed_data_is_what_the_converter_makes() -> None:
    if not SHARED_PVE_API.is_dir():
        pytest.skip("checks the conversion of ../shared/pve-api (absent here): the committed data is tested without it")
    converter = script("convert_pve_test_data")
    expected = {name: converter.dumps(doc) for name, doc in converter.convert(SHARED_PVE_API).items()}
    committed = {str(path.relative_to(PVE_DATA)): path.read_text(encoding="utf-8") for path in _committed()
                 if path.relative_to(PVE_DATA).parts[0] != "from-git"}
    assert sorted(committed) == sorted(expected)
    stale = [name for name in expected if committed[name] != expected[name]]
    assert not stale, f"{stale} are stale: run scripts/convert_pve_test_data.py"


def test_committed_git_data_is_what_the_converter_makes() -> None:
    converter = script("convert_pve_test_data")
    needed = [converter.MIRRORS / name / "repo" for name in ("proxmox+pve-firewall", "proxmox+pve-access-control")]
    if not all(path.is_dir() for path in needed):
        pytest.skip("checks the conversion of git mirrors of pve-firewall and pve-access-control (absent here): "
                    "the committed data is tested without them")
    expected = {name: converter.dumps(doc) for name, doc in converter.convert_repositories().items()}
    committed = {str(path.relative_to(PVE_DATA)): path.read_text(encoding="utf-8") for path in sorted((PVE_DATA / "from-git").glob("*.json"))}
    assert sorted(committed) == sorted(expected)
    stale = [name for name in expected if committed[name] != expected[name]]
    assert not stale, f"{stale} are stale: run scripts/convert_pve_test_data.py"
