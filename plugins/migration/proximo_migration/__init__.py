"""Proximo's migration pack: guests moved between nodes, nodes evacuated, HA resources and rules, replication jobs.

Registered through the ``proximo`` entry point group, exactly like a third-party pack. Pure: it describes steps,
model semantics and impact analysers; the host does all I/O. Three parts, each with its tools, semantics and
analysers: migration and evacuation (``_migrate``), HA (``_ha``), replication jobs (``_replication``).
"""

from __future__ import annotations

from typing import Any

import proximo
from proximo import Impact
from proximo.model import ClusterModel

from . import _ha, _migrate, _replication

_PARTS = (_migrate, _ha, _replication)


@proximo.hookimpl
def proximo_register_tools(register) -> None:  # type: ignore[no-untyped-def]
    for part in _PARTS:
        for spec in part.TOOLS.values():
            register(spec)


@proximo.hookimpl
def proximo_register_semantics(register) -> None:  # type: ignore[no-untyped-def]
    for part in _PARTS:
        part.register_all(register)


@proximo.hookimpl
def proximo_impact(change: Any, before: ClusterModel, after: ClusterModel) -> list[Impact]:
    return [impact for part in _PARTS for impact in part.impacts(change, before, after)]
