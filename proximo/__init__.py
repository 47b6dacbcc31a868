"""Proximo: an agent for Proxmox VE whose every change is planned, approved, proven and undoable.

The public API for tool packs is what this module exports; everything in ``proximo._*`` is the host's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

    hookimpl: pluggy.HookimplMarker

# Each public name's module, imported on first use (PEP 562): ``proximo --help`` runs ``proximo.cli``, which is
# inside this package, and must not pay for pluggy, msgspec and the model (issue 14: start-up).
_FROM = {
    **dict.fromkeys(("ToolSpec", "plan_tool", "read_tool", "tool_table"), "._tools"),
    **dict.fromkeys(("ApiCall", "Change", "Draft", "Effect", "Impact", "Irreversible", "Operator", "Plan", "Risk",
                     "SshExec", "Step"), "._types"),
    **dict.fromkeys(("AlreadyApplied", "ApplyFailed", "BadInput", "NotApproved", "NotModelled", "NotRead",
                     "OfflinePlan", "PackError", "PolicyDenied", "ProximoError", "PveApiError", "PveConnectionError",
                     "Refused", "StalePlan", "UnknownTool"), ".errors"),
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "hookimpl":
        import pluggy

        value: Any = pluggy.HookimplMarker("proximo")
    elif name in _FROM:
        value = getattr(importlib.import_module(_FROM[name], __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


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
