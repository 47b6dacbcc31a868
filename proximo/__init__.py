"""Proximo: an agent for Proxmox VE whose every change is planned, approved, proven and undoable.

The public API for tool packs is what this module exports; everything in ``proximo._*`` is the host's.
"""

from __future__ import annotations

import pluggy

from ._tools import ToolSpec, plan_tool, read_tool, tool_table
from ._types import ApiCall, Change, Draft, Effect, Impact, Irreversible, Operator, Plan, Risk, SshExec, Step
from .errors import (
    AlreadyApplied,
    ApplyFailed,
    BadInput,
    NotApproved,
    NotModelled,
    NotRead,
    OfflinePlan,
    PackError,
    PolicyDenied,
    ProximoError,
    PveApiError,
    PveConnectionError,
    Refused,
    StalePlan,
    UnknownTool,
)

hookimpl = pluggy.HookimplMarker("proximo")

__version__ = "0.1.0"

__all__ = [
    "AlreadyApplied",
    "ApiCall",
    "ApplyFailed",
    "BadInput",
    "Change",
    "Draft",
    "Effect",
    "Impact",
    "Irreversible",
    "NotApproved",
    "NotModelled",
    "NotRead",
    "OfflinePlan",
    "Operator",
    "PackError",
    "Plan",
    "PolicyDenied",
    "ProximoError",
    "PveApiError",
    "PveConnectionError",
    "Refused",
    "Risk",
    "SshExec",
    "StalePlan",
    "Step",
    "ToolSpec",
    "UnknownTool",
    "hookimpl",
    "plan_tool",
    "read_tool",
    "tool_table",
]
