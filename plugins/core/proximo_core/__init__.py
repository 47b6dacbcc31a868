"""Proximo's core pack: cluster-wide reads, task status, and ``api.call`` for any modelled endpoint.

Registered through the ``proximo`` entry point group, exactly like a third-party pack.
"""

from __future__ import annotations

from typing import Any

import msgspec

import proximo
from proximo import Draft, ToolSpec
from proximo.model import ClusterModel

from . import _semantics
from ._tools import TOOLS, ApiCallParams

__all__ = ["proximo_plan", "proximo_read", "proximo_register_semantics", "proximo_register_tools"]


@proximo.hookimpl
def proximo_register_tools(register) -> None:  # type: ignore[no-untyped-def]
    for tool in TOOLS.values():
        register(tool.spec)


@proximo.hookimpl
def proximo_register_semantics(register) -> None:  # type: ignore[no-untyped-def]
    _semantics.register_all(register)


@proximo.hookimpl
def proximo_read(tool: ToolSpec, params: msgspec.Struct, view: ClusterModel) -> Any:
    return TOOLS[tool.id].run(params, view)


@proximo.hookimpl
def proximo_plan(tool: ToolSpec, params: msgspec.Struct, view: ClusterModel) -> Draft:
    assert isinstance(params, ApiCallParams)
    return Draft(steps=[proximo.ApiCall(method=params.method, path=params.path, params=dict(params.params))])
