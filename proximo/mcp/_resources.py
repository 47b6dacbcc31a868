"""Plans and ledger records as MCP resources: ``proximo://plan/{plan_id}`` and ``proximo://ledger/{seq}``; and the
JSON schemas of what the tools answer (``proximo://schema/plan``, ``proximo://schema/answer``), given once here rather
than as an output schema on every tool."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from .._render import plan_document
from .._tools import object_schema
from .._types import Plan
from ..trust._pipeline import Answer
from ..errors import BadInput, ProximoError
from ._results import face, outgoing

JSON = "application/json"


def add_resources(server: MCPServer[Any]) -> None:
    @server.resource("proximo://schema/plan", name="plan-schema", title="The plan's JSON schema", mime_type=JSON,
                     description="What every plan tool and proximo_undo answer with (structured content).")
    def plan_schema() -> str:
        return json.dumps(object_schema(Plan))

    @server.resource("proximo://schema/answer", name="answer-schema", title="A read's JSON schema", mime_type=JSON,
                     description="What every read tool answers with (structured content).")
    def answer_schema() -> str:
        return json.dumps(object_schema(Answer))

    @server.resource("proximo://plan/{plan_id}", name="plan", title="A stored plan", mime_type=JSON,
                     description="A plan as the host stored it (checked against the hash the ledger recorded), "
                                 "with the ledger head.")
    async def plan(plan_id: str, ctx: Context[Any, Any]) -> str:
        host = face(ctx).host
        try:
            stored = host.get_plan(plan_id)
        except BadInput as exc:
            raise ResourceNotFoundError(str(exc)) from None
        except ProximoError as exc:
            raise ResourceError(str(exc)) from None
        return json.dumps(outgoing(host, {"plan": plan_document(stored), "ledger": msgspec.to_builtins(host.head())}))

    @server.resource("proximo://ledger/{seq}", name="ledger-record", title="A ledger record", mime_type=JSON,
                     description="One ledger record by its sequence number, with the ledger head.")
    async def record(seq: str, ctx: Context[Any, Any]) -> str:
        host = face(ctx).host
        found = host.ledger.get(int(seq)) if seq.isascii() and seq.isdigit() and len(seq) < 19 else None  # not '١٢'
        if found is None:
            raise ResourceNotFoundError(f"no ledger record {seq[:40]!r} (the head is #{host.head().seq})")
        return json.dumps(outgoing(host, {"record": msgspec.to_builtins(found), "ledger": msgspec.to_builtins(host.head())}))
