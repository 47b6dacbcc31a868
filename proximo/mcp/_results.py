"""What every MCP answer looks like: structured content with the ledger head, or a one-line tool error.

Successful answers carry ``ledger {seq, head, chain}`` in their structured content; errors carry the head
in the text (and in ``_meta``), so whatever the client keeps of the transcript witnesses the chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import msgspec
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, TextContent

from ..trust._ledger import Actor, LedgerRecord
from ..trust._pipeline import Host
from .._types import LedgerRef
from ._settings import McpSettings

LEDGER_META = "proximo/ledger"


@dataclass(frozen=True)
class FaceState:
    """The server lifespan's state: one host for the server's lifetime, and the face's settings."""

    host: Host
    settings: McpSettings
    applying: set[str] = field(default_factory=set)  # plan ids being applied now: a second call is refused, not raced


def face(ctx: Context[Any, Any]) -> FaceState:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, FaceState), "the MCP face runs only inside build_server's lifespan"
    return state


def client_name(ctx: Context[Any, Any]) -> str:
    """The MCP client's own name and version (as it reports them), for the ledger's actor."""
    params = ctx.request_context.session.client_params
    info = params.client_info if params is not None else None
    name = f"{info.name} {info.version}".strip()[:200] if info is not None else "unnamed MCP client"
    peer = face(ctx).settings.peer  # in service mode: the unix account the kernel says is on the other end
    return f"{name} [{peer}]" if peer else name


def actor(ctx: Context[Any, Any], face_name: str = "mcp") -> Actor:
    host = face(ctx).host
    return Actor(token_id=host.settings.token_id or "-", face=face_name, client=client_name(ctx))


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def outgoing(host: Host, value: Any) -> Any:
    """What leaves the face: Proximo's own token secret scrubbed from it, wherever it is (bad input echoes values)."""
    return host.settings.token_secret.scrub(value) if host.settings.token_secret else value


def structured(host: Host, payload: Any, *, summary: str = "", error: str = "") -> CallToolResult:
    """A result whose structured content is ``payload`` (a struct or dict), with its JSON as text too."""
    data = outgoing(host, msgspec.to_builtins(payload))
    assert isinstance(data, dict)
    summary, error = outgoing(host, summary), outgoing(host, error)
    content = [TextContent(type="text", text=error or summary)] if (error or summary) else []
    content.append(TextContent(type="text", text=json.dumps(data)))
    if error:
        return CallToolResult(content=content, structured_content=data, is_error=True, _meta={LEDGER_META: data.get("ledger")})
    return CallToolResult(content=content, structured_content=data)


def failure(host: Host, reason: str) -> CallToolResult:
    """A tool error the model reads: one line with the reason, then the ledger head that stands after it."""
    head = host.head()
    text = f"{one_line(outgoing(host, reason))} [ledger #{head.seq} {head.head[:16]}]"
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True,
                          _meta={LEDGER_META: msgspec.to_builtins(head)})


class VerifyAnswer(msgspec.Struct, frozen=True):
    ok: bool
    records: int
    first_broken: int | None
    reason: str
    ledger: LedgerRef


class TailAnswer(msgspec.Struct, frozen=True):
    records: list[LedgerRecord]
    ledger: LedgerRef
