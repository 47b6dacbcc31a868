"""Settings for the whole test run (tests/ and plugins/*/tests/): speed, and running on parallel workers.

``uv run pytest`` runs on pytest-xdist workers (``-n`` and ``--dist`` in pyproject's addopts; CONTRIBUTING.md says
why that count). ``-n0`` runs everything in one process; ``-p no:xdist`` does too, and then the ``-n``/``--dist``
from addopts are accepted here and ignored, so the debugging command needs no other flag.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

# httpx (ASGITransport) and httpcore import sniffio inside functions called on every request, inside
# ``try/except ImportError``. sniffio is not installed here (anyio 4 no longer needs it), so each of those calls
# searched the whole sys.path again and failed: about a tenth of the suite's CPU time. Recording the absence once
# makes the same ImportError immediate; what the libraries do without sniffio (assume asyncio) is unchanged.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if pluginmanager.has_plugin("xdist"):
        return
    # -p no:xdist: take the addopts' worker options and run in this one process.
    group = parser.getgroup("xdist", "parallel workers (pytest-xdist is disabled: these are ignored)")
    # _addoption: pytest keeps lowercase short options for plugins (pytest-xdist registers -n the same way).
    group._addoption("-n", "--numprocesses", dest="numprocesses", default=None, help="ignored without pytest-xdist")
    group.addoption("--dist", dest="dist", default="no", help="ignored without pytest-xdist")
