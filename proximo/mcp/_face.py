"""The face's own tools besides apply: plan an undo, verify and read the ledger."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, ToolAnnotations

from ..trust._ledger import LedgerHead
from .._types import Plan
from ..errors import ProximoError
from ._results import TailAnswer, VerifyAnswer, actor, face, failure, structured
from ._tools import FaceTool, plan_result

MAX_TAIL = 200


class UndoParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    seq: int


class KeptHead(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A ledger head the client kept from an earlier answer (its ``ledger.seq`` and ``ledger.head``)."""

    seq: Annotated[int, msgspec.Meta(ge=0, le=2**62)]
    head: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class VerifyParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    expected_head: KeptHead | None = None


class TailParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    n: int = 20


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


def face_tools(*, read_only: bool) -> list[FaceTool]:
    from ._approval import apply_tool

    ledger_hints = dict(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    tools = [
        FaceTool.build(
            proximo_ledger_verify, name="proximo_ledger_verify", title="Verify the ledger",
            description=("Walk the ledger's hash chain and its high-water mark and name the first broken record, if any. "
                         "Give expected_head {seq, head} from an earlier answer's ledger to check it is still in the chain "
                         "(records removed from the end are caught this way too)."),
            params=VerifyParams, output=VerifyAnswer, hints=ToolAnnotations(title="Verify the ledger", **ledger_hints),
        ),
        FaceTool.build(
            proximo_ledger_tail, name="proximo_ledger_tail", title="Newest ledger records",
            description=f"The newest n ledger records (plans, approvals, denials, applies, results), oldest first; n up to {MAX_TAIL}.",
            params=TailParams, output=TailAnswer, hints=ToolAnnotations(title="Newest ledger records", **ledger_hints),
        ),
    ]
    if read_only:
        return tools
    return [
        apply_tool(),
        # Undo only plans (it changes nothing), but it is the first step of reverting a change, so it is marked
        # destructive like apply: clients that confirm destructive tools confirm this one too.
        FaceTool.build(
            proximo_undo, name="proximo_undo", title="Plan the undo of a change",
            description=("Plan the undo of the change recorded at ledger record SEQ (the seq of its apply-result, as "
                         "proximo_apply reports it). The undo is a new plan with its own blast radius; it changes nothing "
                         "until proximo_apply runs it."),
            params=UndoParams, output=Plan,
            hints=ToolAnnotations(title="Plan the undo of a change", read_only_hint=False, destructive_hint=True,
                                  idempotent_hint=False, open_world_hint=True),
        ),
        *tools,
    ]
