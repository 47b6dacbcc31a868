"""Test helpers for Proximo and for tool-pack authors (a pytest plugin, entry point ``pytest11``).

    def test_my_pack(proximo_world):
        async with proximo_world.host() as host:      # a host on the simulated demo cluster
            plan = await host.plan("storage.delete", {"storage": "local-zfs"}, proximo_world.actor)

``World`` builds a simulator and hosts against it in-process (httpx ASGI transport) or over a real loopback
socket; ``snapshot_from`` builds a model from API-shaped data you write in a test, and ``operator_access`` the
access rows that let Proximo's token make the writes a test plans (Proxmox's permission checks are modelled).
``SimClusters`` is several simulated clusters under one Proximo (one ledger, a clusters file), a ``World`` each.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ._world import TOKEN_ID, SimClusters, World, operator_access, snapshot_from


@pytest.fixture
def proximo_world(tmp_path: Path) -> World:
    """A simulated demo cluster with a host factory; ledger and plans live in ``tmp_path``."""
    return World(tmp_path)


__all__ = ["TOKEN_ID", "SimClusters", "World", "operator_access", "proximo_world", "snapshot_from"]
