"""``proximo_apply``: the one destructive tool, and the human approval the agent cannot give itself.

How a plan above ``PROXIMO_AUTO_APPROVE`` gets approved through MCP:

1. A resolver (the SDK's ``Resolve``) runs before the tool body. It asks a person only when the plan needs
   one and has no approval in the ledger yet, and only when the client declared form elicitation. Its
   question is an ``Elicit`` form the *client* shows to its user; the SDK carries it as a mid-call
   ``elicitation/create`` on 2025-11-25 connections and as an ``input_required`` round on 2026-07-28 ones,
   and accepts an answer only to the exact question it sealed into ``request_state`` (an answer the client
   volunteers unasked is discarded).
2. The body turns the person's answer into a ledger record through the host: accept -> ``host.approve``
   (a CRITICAL plan's form asks for the target's name, which the host checks), decline or cancel ->
   ``host.deny``. Then ``host.apply`` runs, and the host enforces everything again (fresh, unexpired,
   unapplied, approved).
3. A client that cannot show a form gets a plain tool error: the plan waits for ``proximo approve PLAN_ID``
   at a terminal. Calling proximo_apply again after that finds the approval in the ledger and applies.

No tool argument can approve anything: proximo_apply's schema has ``plan_id`` and nothing else, and any
other argument is refused before the resolver runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from mcp.server.mcpserver import (
    AcceptedElicitation,
    CancelledElicitation,
    Context,
    DeclinedElicitation,
    Elicit,
    ElicitationResult,
    Resolve,
)
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from ..trust._ledger import Actor, redact
from .._clusters import approve_line
from ..trust._pipeline import ApplyResult, ClientForm, Host
from .._types import Plan, Risk
from ..errors import ProximoError
from ._results import actor, client_name, face, failure, structured
from ._tools import FaceTool

ELICITATION_FACE = "mcp-elicitation"


class Approval(BaseModel):
    """The form for a MEDIUM or HIGH plan."""

    approve: bool = Field(default=False, title="Approve and apply this plan now",
                          description="Tick to apply exactly the steps shown; leave unticked to refuse.")


class CriticalApproval(BaseModel):
    """The form for a CRITICAL plan: the person types the target's name."""

    target: str = Field(title="Type the target's name to approve",
                        description="This change cannot be undone or locks people out. Type the name exactly to approve; "
                                    "anything else refuses.")


@dataclass(frozen=True)
class NoQuestion:
    """The resolver's answer when nobody is asked: ``go`` (the host decides), ``no-form`` (wait for a terminal), or
    ``busy`` (another call is asking the person about this plan right now: ``reason`` says so)."""

    kind: Literal["go", "no-form", "busy"]
    reason: str = ""


class ApplyParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    plan_id: Annotated[str, msgspec.Meta(description="from the plan's answer")]


def _can_elicit(ctx: Context[Any, Any]) -> bool:
    """Form elicitation declared (a bare ``elicitation: {}`` means form, as in the SDK's own check)."""
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def question(host: Host, plan: Plan) -> str:
    """What the person reads in the form. Built from the plan alone, so it renders the same every round."""
    args = " ".join(f"{k}={v}" for k, v in redact(plan.params).items())
    lines = [
        f"Proximo asks you (not the agent) to approve plan {plan.plan_id}:",
        f"{plan.tool} {args}".strip(),
        f"Risk {plan.risk.value} (auto-approval stops at {host.settings.auto_approve.value}); "
        + ("reversible." if plan.reversible else f"NO UNDO: {plan.undo_note}."),
    ]
    if not plan.complete:
        lines.append(f"INCOMPLETE: the token cannot see {', '.join(plan.unseen)}, so more may be affected.")
    if plan.impacts:
        lines.append(f"Affected across the cluster ({len(plan.impacts)}):")
        lines += [f"  {i.target} {i.effect}: {i.reason}" for i in plan.impacts[:12]]
        if len(plan.impacts) > 12:
            lines.append(f"  ... and {len(plan.impacts) - 12} more (proximo://plan/{plan.plan_id})")
    else:
        lines.append("Affected across the cluster: nothing beyond the named object.")
    lines.append("Steps:")
    lines += [f"  {s.describe()}" for s in plan.steps]
    lines.append(f"The plan expires at {plan.expires_at}.")
    if plan.risk is Risk.CRITICAL:
        lines.append(f"To approve, type the target's name: {plan.target}")
    return "\n".join(lines)


async def ask_person(plan_id: str, ctx: Context[Any, Any]) -> Elicit[Any] | NoQuestion:
    host = face(ctx).host
    try:
        plan = host.get_plan(plan_id)
        await host.check_open(plan)  # nobody is asked about a plan that is applied, blocked, expired or stale
    except ProximoError:
        return NoQuestion("go")  # host.apply refuses it, with the reason and a deny record
    if not host.needs_person(plan) or host.approval(plan) is not None:
        return NoQuestion("go")
    if not _can_elicit(ctx) or host.policy.person_channel_required(plan.risk):
        return NoQuestion("no-form")  # the policy wants a person's own credential: no client form can carry it
    # One question per plan at a time. On 2026-07-28 connections the SDK runs this resolver again in the round
    # that brings the person's answer (``request_state`` set): that is the same call asking on, not a second one.
    if ctx.request_state is None:
        try:
            host.open_question(plan)
        except ProximoError as exc:
            return NoQuestion("busy", str(exc))
    return Elicit(question(host, plan), CriticalApproval if plan.risk is Risk.CRITICAL else Approval)


def waiting(host: Host, plan: Plan, approve_command: str) -> str:
    why = ("the policy needs a person's own credential for it, which no client form carries"
           if host.policy.person_channel_required(plan.risk) else "this MCP client cannot show an approval form")
    return (f"plan {plan.plan_id} is {plan.risk.value}, above auto-approval ({host.settings.auto_approve.value}), and {why}: "
            f"it waits for a person to run `{approve_line(approve_command, host.settings, plan.plan_id)}` with their approver "
            f"credential (or to approve it in the approval console, `proximo console`); call proximo_apply again after "
            f"that. Nothing was applied")


def apply_summary(result: ApplyResult) -> tuple[str, str]:
    """(summary, error): the line the model reads; ``error`` is set when the apply failed."""
    if not result.ok:
        failed = next((s for s in result.steps if not s.ok), None)
        # the client's error names the call already ("DELETE /storage/x: 403 ..."); a task failure does not
        where = (f": {failed.error}" if failed.error.startswith(failed.step.split(" ", 2)[0] + " ")
                 else f" at {failed.step}: {failed.error}") if failed else ""
        log = f"; task log: {' | '.join(failed.log_tail[-5:])}" if failed and failed.log_tail else ""
        done = sum(1 for s in result.steps if s.ok)
        return "", (f"apply of plan {result.plan_id} failed{where}{log} ({done} step(s) had run before it; "
                    f"see the ledger record #{result.ledger.seq})")
    match = ("the cluster matches the prediction" if result.matches_prediction
             else f"but the cluster differs from the prediction in: {', '.join(result.mismatches)}")
    return (f"Applied plan {result.plan_id}: {len(result.steps)} step(s) OK; {match}. "
            f"To undo it, plan the undo with proximo_undo(seq={result.ledger.seq})."), ""


def _person(ctx: Context[Any, Any]) -> Actor:
    host = face(ctx).host
    return Actor(token_id=host.settings.token_id or "-", face=ELICITATION_FACE, client=client_name(ctx))


async def proximo_apply(plan_id: str, ctx: Context[Any, Any],
                        person: Annotated[ElicitationResult[Any], Resolve(ask_person)]) -> CallToolResult:
    state = face(ctx)
    host = state.host
    agent = actor(ctx)
    try:
        if not isinstance(person, AcceptedElicitation) or not isinstance(person.data, NoQuestion):
            host.close_question(plan_id)  # this call asked the person, and has their answer
        match person:
            case AcceptedElicitation(data=NoQuestion(kind="busy", reason=reason)):
                return failure(host, f"{reason}: nothing was applied by this call")
            case AcceptedElicitation(data=NoQuestion(kind="no-form")):
                plan = host.get_plan(plan_id)
                if host.approval(plan) is None:  # a person may have approved at a terminal meanwhile
                    return failure(host, waiting(host, plan, state.settings.approve_command))
            case AcceptedElicitation(data=NoQuestion()):
                pass
            case AcceptedElicitation(data=CriticalApproval(target=typed)):
                host.approve(plan_id, _person(ctx), ClientForm(ELICITATION_FACE, client_name(ctx)), typed_target=typed)
            case AcceptedElicitation(data=Approval(approve=True)):
                host.approve(plan_id, _person(ctx), ClientForm(ELICITATION_FACE, client_name(ctx)))
            case AcceptedElicitation():
                host.deny(plan_id, _person(ctx), "not approved in the MCP client's approval form")
                return failure(host, f"plan {plan_id} was not approved by the person (the box was left unticked): nothing was applied")
            case DeclinedElicitation():
                host.deny(plan_id, _person(ctx), "declined in the MCP client's approval form")
                return failure(host, f"plan {plan_id} was declined by the person: nothing was applied")
            case CancelledElicitation():
                host.deny(plan_id, _person(ctx), "the MCP client's approval form was dismissed")
                return failure(host, f"plan {plan_id}: the approval form was dismissed, so it counts as refused: nothing was applied")

        sent = 0

        async def progress(message: str) -> None:
            nonlocal sent
            sent += 1
            await ctx.report_progress(sent, None, message)

        # Host.apply checks "not applied yet" and then reads the cluster before it records apply-start: two calls
        # for one plan through this server must not both pass that check.
        if plan_id in state.applying:
            return failure(host, f"plan {plan_id} is being applied right now by another call; nothing more was done")
        state.applying.add(plan_id)
        try:
            result = await host.apply(plan_id, agent, progress=progress)
        finally:
            state.applying.discard(plan_id)
    except ProximoError as exc:
        return failure(host, str(exc))
    summary, error = apply_summary(result)
    if error:
        failed = next((s for s in result.steps if not s.ok), None)
        if failed is not None and failed.log_tail:
            await ctx.report_progress(sent + 1, None, f"{failed.step}: failed; task log:\n" + "\n".join(failed.log_tail))
    return structured(host, result.for_agent("MCP client"), summary=summary, error=error)




def apply_tool() -> FaceTool:
    return FaceTool.build(
        proximo_apply, name="proximo_apply", title="Apply a plan",
        description=("Run exactly a plan's steps, once checked fresh and approved. Above auto-approval a person "
                     "approves (a form in the client, or `proximo approve PLAN_ID` in a terminal), never an argument."),
        params=ApplyParams,
        hints=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False,
                              open_world_hint=True),
    )
