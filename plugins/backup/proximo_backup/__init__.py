"""Proximo's backup pack: backups, restore, retention and vzdump jobs, with every guest's recovery points in the
blast radius.

Registered through the ``proximo`` entry point group, exactly like a third-party pack. Pure: it describes steps,
model semantics and impact analysers; the host does all I/O. The recovery-point view itself is the model's
(``proximo.model.recovery_points``), so every pack reads the same one.
"""

from __future__ import annotations

from typing import Any

import proximo
from proximo import Impact
from proximo.model import ClusterModel

from ._impact import backup_impacts
from ._semantics import register_all
from ._tools import TOOLS


@proximo.hookimpl
def proximo_register_tools(register) -> None:  # type: ignore[no-untyped-def]
    for spec in TOOLS.values():
        register(spec)


@proximo.hookimpl
def proximo_register_semantics(register) -> None:  # type: ignore[no-untyped-def]
    register_all(register)


@proximo.hookimpl
def proximo_impact(change: Any, before: ClusterModel, after: ClusterModel) -> list[Impact]:
    return backup_impacts(change, before, after)
