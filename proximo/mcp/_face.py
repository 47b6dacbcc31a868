"""The face's own tools besides apply: plan an undo, verify and read the ledger."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, ToolAnnotations

from ..trust._ledger import LedgerHead
from ..errors import ProximoError
from ._results import ClustersAnswer, TailAnswer, VerifyAnswer, actor, cluster_rows, face, failure, structured
from ._tools import FaceTool, annotations, plan_result

MAX_TAIL = 200


class UndoParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    seq: Annotated[int, msgspec.Meta(description="its apply-result's seq")]


class KeptHead(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A ledger head the client kept from an earlier answer (its ``ledger.seq`` and ``ledger.head``)."""

    seq: Annotated[int, msgspec.Meta(ge=0, le=2**62, description="its seq")]
    head: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$", description="its head")]


class VerifyParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    expected_head: Annotated[KeptHead | None, msgspec.Meta(description="an earlier answer's ledger")] = None


class TailParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    n: Annotated[int, msgspec.Meta(description=f"how many (1-{MAX_TAIL})")] = 20


async def proximo_undo(seq: int, ctx: Context[Any, Any]) -> CallToolResult:
    host = face(ctx).host
    try:
        return plan_result(host, await host.undo(seq, actor(ctx)))
    except ProximoError as exc:
        return failure(host, str(exc))


async def proximo_ledger_verify(ctx: Context[Any, Any], expected_head: dict[str, Any] | None = None) -> CallToolResult:
    host = face(ctx).host
    try:
        kept = msgspec.convert(expected_head, KeptHead) if expected_head is not None else None
        result = host.ledger.verify(
            expected_head=LedgerHead(seq=kept.seq, hash=kept.head, chain=host.ledger.chain) if kept else None)
    except ProximoError as exc:
        return failure(host, str(exc))
    answer = VerifyAnswer(ok=result.ok, records=result.records, first_broken=result.first_broken, reason=result.reason,
                          ledger=host.head())
    summary = (f"The ledger's {result.records} records chain correctly." if result.ok
               else f"The ledger is BROKEN at record #{result.first_broken}: {result.reason}")
    return structured(host, answer, summary=summary)


async def proximo_ledger_tail(ctx: Context[Any, Any], n: int = 20) -> CallToolResult:
    host = face(ctx).host
    if not 1 <= n <= MAX_TAIL:
        return failure(host, f"proximo_ledger_tail: n must be between 1 and {MAX_TAIL}")
    try:
        records = host.ledger.tail(n)
    except ProximoError as exc:
        return failure(host, str(exc))
    return structured(host, TailAnswer(records=records, ledger=host.head()))


class ClustersParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


async def proximo_clusters(ctx: Context[Any, Any]) -> CallToolResult:
    state = face(ctx)
    answer = ClustersAnswer(clusters=cluster_rows(state), ledger=state.host.head())
    return structured(state.host, answer, summary=f"{len(answer.clusters)} clusters: "
                      + ", ".join(c.name + (" (default)" if c.default else "") for c in answer.clusters)
                      + ". Every tool takes cluster=NAME; a plan applies only on the cluster it was made on.")


def clusters_tool() -> FaceTool:
    """``proximo_clusters``: served when several clusters are (one cluster needs no name)."""
    return FaceTool.build(
        proximo_clusters, name="proximo_clusters", title="List the clusters",
        description="The clusters this server manages: name, API URL, default. Every tool takes cluster=NAME.",
        params=ClustersParams, needs_cluster=False,
        hints=ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
    )


def face_tools(*, read_only: bool) -> list[FaceTool]:
    from ._approval import apply_tool

    ledger_hints = dict(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    tools = [
        FaceTool.build(
            proximo_ledger_verify, name="proximo_ledger_verify", title="Verify the ledger",
            description="Check the ledger's hash chain; names the first broken record. expected_head must be in it.",
            params=VerifyParams, hints=ToolAnnotations(**ledger_hints), needs_cluster=False,
        ),
        FaceTool.build(
            proximo_ledger_tail, name="proximo_ledger_tail", title="Ledger tail",
            description="The newest n ledger records, oldest first.",
            params=TailParams, hints=ToolAnnotations(**ledger_hints), needs_cluster=False,
        ),
    ]
    if read_only:
        return tools
    return [
        apply_tool(),
        # Undo only plans (it changes nothing), so it is annotated as every plan tool is; proximo_apply, which runs
        # the undo, is the destructive one that clients confirm.
        FaceTool.build(
            proximo_undo, name="proximo_undo", title="Plan: undo a change",
            description="Plan the undo of the change whose apply-result is ledger record seq; changes nothing.",
            params=UndoParams, hints=annotations(plans=True),
        ),
        *tools,
    ]
