"""Fixtures shared by the guests pack's tests: the anyio backend and a world on the API-shaped test cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from _guests_cluster import make_snapshot

from proximo.testing import World


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, make_snapshot())
