"""HA resources, groups and rules: tools, semantics and blast radius (not built yet)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proximo import Impact, tool_table
from proximo.model import ClusterModel

TOOLS = tool_table()


def register_all(register: Callable[..., None]) -> None:
    """Nothing registered yet: the endpoints stay not modelled."""


def impacts(change: Any, before: ClusterModel, after: ClusterModel) -> list[Impact]:
    return []
