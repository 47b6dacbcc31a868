"""The MCP face's own settings (``PROXIMO_TOOLSET``, ``PROXIMO_TOOLS``, ``PROXIMO_READ_ONLY``, ``PROXIMO_HTTP_TOKEN``, ...).

The host's settings (cluster, ledger, auto-approve level) stay in :class:`proximo._settings.Settings`; these
only decide what the face exposes and how it listens.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, get_args

import msgspec

from .._secret import Secret
from ..errors import BadInput

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
MIN_TOKEN_LENGTH = 16
Toolset = Literal["compact", "full"]
TOOLSETS: tuple[str, ...] = get_args(Toolset)


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadInput(f"{name} must be 1 or 0 (got {value!r})")


def _list(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


class McpSettings(msgspec.Struct, kw_only=True, frozen=True):
    """What the MCP face exposes and how it listens."""

    # PROXIMO_TOOLSET / --toolset: "compact" (a few tools that search, describe, read and plan every tool: a small
    # tools/list) or "full" (one MCP tool per tool)
    toolset: Toolset = "compact"
    tools: tuple[str, ...] = ()  # PROXIMO_TOOLS: tool ids or glob patterns; empty = every tool
    read_only: bool = False  # PROXIMO_READ_ONLY=1: only LOW tools (reads and the ledger); no plan, apply or undo
    http_token: Secret | None = None  # PROXIMO_HTTP_TOKEN: the bearer token HTTP clients must send
    allowed_hosts: tuple[str, ...] = ()  # PROXIMO_ALLOWED_HOSTS / --allowed-host: Host headers besides loopback
    approve_command: str = "proximo approve"  # what a person types in a terminal (the sim adds PROXIMO_HOME=...)
    peer: str = ""  # PROXIMO_PEER: set by the service for one agent connection ("uid 1001 (agent)"), for the ledger

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> McpSettings:
        env = os.environ if env is None else env
        token = env.get("PROXIMO_HTTP_TOKEN", "").strip()
        if token and len(token) < MIN_TOKEN_LENGTH:
            raise BadInput(f"PROXIMO_HTTP_TOKEN is too short: use at least {MIN_TOKEN_LENGTH} random characters")
        toolset = env.get("PROXIMO_TOOLSET", "").strip().lower() or "compact"
        if toolset not in TOOLSETS:
            raise BadInput(f"PROXIMO_TOOLSET must be {' or '.join(TOOLSETS)} (got {toolset!r})")
        return cls(
            toolset=toolset,  # type: ignore[arg-type]  # checked just above
            tools=_list(env.get("PROXIMO_TOOLS", "")),
            read_only=_flag(env, "PROXIMO_READ_ONLY"),
            http_token=Secret(token) if token else None,
            allowed_hosts=_list(env.get("PROXIMO_ALLOWED_HOSTS", "")),
            peer=env.get("PROXIMO_PEER", "")[:100],
        )
