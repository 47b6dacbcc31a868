"""What every MCP answer looks like: structured content with the ledger head, or a one-line tool error.

Successful answers carry ``ledger {seq, head, chain}`` in their structured content; errors carry the head
in the text (and in ``_meta``), so whatever the client keeps of the transcript witnesses the chain.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import msgspec
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, TextContent

from ..trust._ledger import Actor, LedgerRecord
from ..trust._pipeline import Host
from .._types import LedgerRef
from ..errors import BadInput
from ._settings import McpSettings

LEDGER_META = "proximo/ledger"


# the host of the cluster the tool call being run named (its ``cluster`` argument): set around each call
_CALL_HOST: ContextVar[Host | None] = ContextVar("proximo_mcp_call_host", default=None)


@dataclass(frozen=True)
class FaceState:
    """The server lifespan's state: a host per cluster served, for the server's lifetime, and the face's settings.

    The hosts share one ledger and one plan store; ``host`` is the one the current call named (``cluster``), else
    the default cluster's (the only one, or the clusters file's default), else the first: for what needs no cluster
    (the ledger, the plan resources)."""

    hosts: dict[str, Host]
    settings: McpSettings
    default: str = ""  # "" when several clusters are served and none is the default
    applying: set[str] = field(default_factory=set)  # plan ids being applied now: a second call is refused, not raced

    @property
    def host(self) -> Host:
        chosen = _CALL_HOST.get()
        if chosen is not None:
            return chosen
        return self.hosts[self.default] if self.default else next(iter(self.hosts.values()))

    def choose(self, cluster: object) -> Host:
        """The host of ``cluster`` (None: the default one); a one-line BadInput naming the clusters otherwise."""
        if cluster is None:
            if self.default or len(self.hosts) == 1:
                return self.hosts[self.default] if self.default else next(iter(self.hosts.values()))
            raise BadInput(f"several clusters are served ({', '.join(self.hosts)}): name one with the cluster parameter "
                           "(proximo_clusters lists them)")
        host = self.hosts.get(cluster) if isinstance(cluster, str) else None
        if host is None:
            raise BadInput(f"no cluster {str(cluster)[:80]!r}: the clusters are {', '.join(self.hosts)}")
        return host

    @contextmanager
    def on(self, host: Host) -> Iterator[None]:
        """Run a tool call on ``host``: everything it reaches through ``face(ctx).host`` is that cluster's."""
        token = _CALL_HOST.set(host)
        try:
            yield
        finally:
            _CALL_HOST.reset(token)


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
    """What leaves the face: Proximo's own token secrets (every cluster's) scrubbed from it, wherever they are (bad
    input echoes values)."""
    return host.settings.scrub(value)


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


class ClusterRow(msgspec.Struct, frozen=True):
    name: str
    url: str
    default: bool


class ClustersAnswer(msgspec.Struct, frozen=True):
    clusters: list[ClusterRow]
    ledger: LedgerRef


def cluster_rows(state: FaceState) -> list[ClusterRow]:
    """The clusters served, as ``proximo_clusters`` lists them."""
    return [ClusterRow(name=name, url=host.settings.url, default=name == state.default) for name, host in state.hosts.items()]
