"""Settings for the whole test run (tests/ and plugins/*/tests/): speed, and running on parallel workers.

``uv run pytest`` runs on pytest-xdist workers (``-n`` and ``--dist`` in pyproject's addopts; CONTRIBUTING.md says
why that count). ``-n0`` runs everything in one process; ``-p no:xdist`` does too, and then the ``-n``/``--dist``
from addopts are accepted here and ignored, so the debugging command needs no other flag.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# Modules whose tests must share one worker. pytest-xdist's xdist_group marker would say so in the module, but with
# pytest 9.2 it has no effect (xdist 3.8 renames the item's ``_nodeid``, which pytest no longer reads), so the
# scheduler below groups these by path.
ONE_WORKER = {
    "tests/test_service.py": "a module-scoped `proximo service run` process, and the unix accounts it serves",
    "tests/mcp/test_inspector.py": "npx runs the Inspector out of one shared cache: one npx at a time",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """--dist loadgroup: every test is its own unit of work, except that each ONE_WORKER module is one unit."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class ModuleGroups(LoadGroupScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER else super()._split_scope(nodeid)

    return ModuleGroups(config, log)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if pluginmanager.has_plugin("xdist"):
        return
    # -p no:xdist: take the addopts' worker options and run in this one process.
    group = parser.getgroup("xdist", "parallel workers (pytest-xdist is disabled: these are ignored)")
    # _addoption: pytest keeps lowercase short options for plugins (pytest-xdist registers -n the same way).
    group._addoption("-n", "--numprocesses", dest="numprocesses", default=None, help="ignored without pytest-xdist")
    group.addoption("--dist", dest="dist", default="no", help="ignored without pytest-xdist")


# Approver passphrases are hashed with scrypt at n=2**15 (proximo.trust._approvers): a tenth of a second on purpose,
# and well over a hundred approvers are made and checked in a run. In tests a new approver's hash costs n=2**10
# instead; checking a passphrase uses the cost written in its hash, as in production. Tests marked
# ``production_scrypt`` keep the production cost, and test_approvers.py proves with them that it is what a new
# approver gets (test_passphrase_is_kept_as_scrypt_in_an_owner_only_file, test_the_production_cost_is_not_lowered).
TEST_SCRYPT_N = 2**10


@pytest.fixture(autouse=True)
def _test_scrypt_cost(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker("production_scrypt"):
        yield
        return
    from proximo.trust import _approvers

    production = (None, _approvers._SCRYPT_N, _approvers._SCRYPT_R, _approvers._SCRYPT_P)
    # (salt, n, r, p): fail loudly, not quietly slow or wrong, if _hash_passphrase's signature changes
    assert _approvers._hash_passphrase.__defaults__ == production, _approvers._hash_passphrase.__defaults__
    monkeypatch.setattr(_approvers._hash_passphrase, "__defaults__", (None, TEST_SCRYPT_N, *production[2:]))
    _approvers._dummy_hash.cache_clear()  # the unknown-name hash is cached: made at this cost for this test only
    yield
    _approvers._dummy_hash.cache_clear()
