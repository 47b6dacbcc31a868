"""Proximo's ACL pack: users, groups, roles, ACL entries and tokens; effective privileges; lockout and escalation.

Registered through the ``proximo`` entry point group, exactly like a third-party pack. Pure: the permission
evaluator is :mod:`proximo.model._access` (the simulator serves ``GET /access/permissions`` from it); this
pack describes steps, the semantics of the /access writes and the permission analysers. The host does all I/O.
"""

from __future__ import annotations

from typing import Any

import msgspec

import proximo
from proximo import Impact, Operator, ToolSpec
from proximo.model import ClusterModel

from ._cli import register_doctor
from ._impact import acl_impacts
from ._semantics import register_all
from ._tools import TOOLS, read_doctor

__all__ = ["proximo_impact", "proximo_read", "proximo_register_commands", "proximo_register_semantics",
           "proximo_register_tools"]


@proximo.hookimpl
def proximo_register_tools(register) -> None:  # type: ignore[no-untyped-def]
    for spec in TOOLS.values():
        register(spec)


@proximo.hookimpl
def proximo_register_semantics(register) -> None:  # type: ignore[no-untyped-def]
    register_all(register)


@proximo.hookimpl
def proximo_register_commands(cli) -> None:  # type: ignore[no-untyped-def]
    register_doctor(cli)


@proximo.hookimpl
def proximo_read(tool: ToolSpec, params: msgspec.Struct, view: ClusterModel, operator: Operator | None = None) -> Any:
    """access.doctor, the one read that needs the operator's token id (every other tool answers through its run)."""
    return read_doctor(params, view, operator.token_id if operator else "")  # type: ignore[arg-type]


@proximo.hookimpl
def proximo_impact(change: Any, before: ClusterModel, after: ClusterModel) -> list[Impact]:
    return acl_impacts(change, before, after)
