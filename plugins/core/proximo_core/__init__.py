"""Proximo's core pack: cluster-wide reads, task status, and ``api.call`` for any modelled endpoint.

Registered through the ``proximo`` entry point group, exactly like a third-party pack.
"""

from __future__ import annotations

import proximo

from . import _semantics
from ._tools import TOOLS

__all__ = ["proximo_register_semantics", "proximo_register_tools"]


@proximo.hookimpl
def proximo_register_tools(register) -> None:  # type: ignore[no-untyped-def]
    for spec in TOOLS.values():
        register(spec)


@proximo.hookimpl
def proximo_register_semantics(register) -> None:  # type: ignore[no-untyped-def]
    _semantics.register_all(register)
