"""The A2A executor: one request -> one task, through the same host (and so the same pipeline and ledger) as every face.

    read   -> completed, the answer as an artifact
    plan   -> completed, the plan document as an artifact (a plan changes nothing)
    apply  -> working (progress while Proxmox tasks run) -> completed with the ledger receipt, or failed
              above auto-approval first: the task parks in input-required (the plan id and the ledger seq in its
              metadata) until a person approves (``proximo approve PLAN_ID``: the approver's credential, never the
              calling agent's token) or denies. The server watches the ledger (``_app``) and then resumes the task
              itself, so a subscribed client hears of it without polling. Nothing in a message can approve: a
              message on a parked task finds it parked again.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from a2a.helpers import new_data_part, new_task, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import Message, TaskState
from google.protobuf.json_format import MessageToDict

from .._clusters import approve_line
from .._render import plan_document
from .._tools import ToolSpec
from .._types import Plan
from ..errors import BadInput, ProximoError
from ..trust._ledger import Actor
from ..trust._pipeline import Host
from ._request import Call, from_data, from_text

log = logging.getLogger("proximo.a2a")

PLAN_KEY = "proximo/plan_id"
PARKED_KEY = "proximo/parked_at"  # the ledger seq when the task parked: a deny after it is the person's answer
CLUSTER_KEY = "proximo/cluster"  # the cluster a parked apply is on


@dataclass
class FaceState:
    """What the executor needs; ``hosts`` (one per cluster, by name) are set by the server's lifespan, for its lifetime.

    ``host`` is the default cluster's (or the first's): for what needs no cluster (the ledger, refusals of requests
    that name none); ``choose`` gives the cluster a request names."""

    specs: dict[str, ToolSpec]
    approve_command: str = "proximo approve"
    hosts: dict[str, Host] | None = None
    default: str = ""  # "" when several clusters are served and none is the default
    applying: set[str] = field(default_factory=set)
    # start watching the ledger for a person's decision on a parked task (set by the server's lifespan)
    watch: Callable[[str, str, str, int, str], None] | None = None

    @property
    def host(self) -> Host | None:
        if not self.hosts:
            return None
        return self.hosts[self.default] if self.default else next(iter(self.hosts.values()))

    def choose(self, cluster: str | None) -> Host:
        """The host of ``cluster`` (None: the default's); a one-line BadInput naming the clusters otherwise."""
        assert self.hosts, "the A2A face runs only inside its server's lifespan"
        if cluster is None:
            if self.default or len(self.hosts) == 1:
                return self.hosts[self.default] if self.default else next(iter(self.hosts.values()))
            raise BadInput(f"several clusters are served ({', '.join(self.hosts)}): name one (\"cluster\": NAME, or "
                           "text starting --cluster NAME)")
        if cluster not in self.hosts:
            raise BadInput(f"no cluster {cluster[:80]!r}: the clusters are {', '.join(self.hosts)}")
        return self.hosts[cluster]


def _outgoing(hosts: Any, value: Any) -> Any:
    """``value`` without any served cluster's token secret (bad input may echo one back)."""
    for host in hosts:
        value = host.settings.scrub(value)
    return value


def read_call(message: Message | None, specs: dict[str, ToolSpec]) -> Call:
    if message is None or not message.parts:
        raise BadInput("empty message: send a DataPart {\"tool\": ID, \"params\": {...}} or text `TOOL key=value`")
    data = [p for p in message.parts if p.HasField("data")]
    text = [p.text for p in message.parts if p.HasField("text") and p.text.strip()]
    if len(data) + len(text) != 1:
        raise BadInput("send exactly one DataPart or one TextPart per request")
    if data:
        return from_data(MessageToDict(data[0].data))
    return from_text(text[0], specs.values())  # type: ignore[arg-type]


class ProximoExecutor(AgentExecutor):
    def __init__(self, state: FaceState) -> None:
        self.state = state

    @property
    def host(self) -> Host:
        """The default cluster's host: for refusals and what every cluster shares (the ledger)."""
        assert self.state.host is not None, "the A2A face runs only inside its server's lifespan"
        return self.state.host

    def _hosts(self) -> list[Host]:
        return list((self.state.hosts or {}).values())

    def _actor(self, context: RequestContext, host: Host | None = None) -> Actor:
        user = context.call_context.user if context.call_context else None
        who = getattr(user, "user_name", "") or "a2a client"
        return Actor(token_id=(host or self.host).settings.token_id or "-", face="a2a", client=str(who)[:200])

    def _text(self, updater: TaskUpdater, text: str) -> Message:
        return updater.new_agent_message([new_text_part(_outgoing(self._hosts(), text))])

    async def _artifact(self, updater: TaskUpdater, name: str, data: Any, summary: str) -> None:
        data = _outgoing(self._hosts(), msgspec.to_builtins(data))
        await updater.add_artifact([new_text_part(_outgoing(self._hosts(), summary)), new_data_part(data)], name=name)

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        task_id = context.task_id or ""
        context_id = task.context_id if task is not None else context.context_id or ""
        updater = TaskUpdater(event_queue, task_id, context_id)
        if task is None:
            await event_queue.enqueue_event(new_task(task_id, context_id, TaskState.TASK_STATE_SUBMITTED,
                                                     history=[context.message] if context.message else []))
        elif task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED and PLAN_KEY in task.metadata:
            # a message to a parked apply (after a restart, say) only resumes the watch: it cannot approve
            parked = int(task.metadata[PARKED_KEY]) if PARKED_KEY in task.metadata else 0
            try:
                host = self.state.choose(str(task.metadata[CLUSTER_KEY]) if CLUSTER_KEY in task.metadata else None)
            except BadInput as exc:  # the cluster it parked on is no longer served
                await updater.failed(self._text(updater, f"{exc}: nothing was applied"))
                return
            await self._apply(updater, host, str(task.metadata[PLAN_KEY]), self._actor(context, host), parked=parked)
            return
        try:
            call = read_call(context.message, self.state.specs)
            host = self.state.choose(call.cluster)
        except ProximoError as exc:
            self.host.record_refusal(self._actor(context), "a2a", {}, str(exc))
            await updater.update_status(TaskState.TASK_STATE_REJECTED, self._text(updater, f"refused: {exc}"))
            return
        try:
            await self._run(call, host, updater, self._actor(context, host))
        except BadInput as exc:  # an unknown tool or parameter: refused (the host wrote the deny record)
            await updater.update_status(TaskState.TASK_STATE_REJECTED, self._text(updater, f"refused: {exc}"))
        except ProximoError as exc:
            await updater.failed(self._text(updater, str(exc)))

    async def _run(self, call: Call, host: Host, updater: TaskUpdater, actor: Actor) -> None:
        if call.kind == "tool":
            spec = self.state.specs.get(call.tool)
            if spec is not None and spec.mutating:
                await self._plan(updater, host, await host.plan(spec.id, call.params, actor))
            else:  # an unknown or unselected id goes to the host, which refuses it (with a suggestion) and records it
                if spec is None and call.tool in {t.id for t in host.tools}:
                    host.record_refusal(actor, call.tool, call.params, "not served by this A2A face")
                    raise BadInput(f"{call.tool} is not served here (PROXIMO_TOOLS / PROXIMO_READ_ONLY leave it out)")
                answer = await host.read(call.tool, call.params, actor)
                await self._artifact(updater, "answer", answer, f"{call.tool}: answered; nothing changed.")
                await updater.complete()
        elif call.kind == "undo":
            await self._plan(updater, host, await host.undo(call.seq, actor))
        elif call.kind == "audit":
            if call.audit == "verify":
                result = host.ledger.verify()
                summary = (f"The ledger's {result.records} records chain correctly." if result.ok
                           else f"The ledger is BROKEN at record #{result.first_broken}: {result.reason}")
                await self._artifact(updater, "ledger-verify", {**msgspec.to_builtins(result), "ledger": host.head()}, summary)
            else:
                await self._artifact(updater, "ledger-tail", {"records": host.ledger.tail(call.n), "ledger": host.head()},
                                     f"The newest {call.n} ledger records, oldest first.")
            await updater.complete()
        else:
            await self._apply(updater, host, call.plan_id, actor)

    async def _plan(self, updater: TaskUpdater, host: Host, plan: Plan) -> None:
        if plan.blocked:
            after = f" It is BLOCKED: {'; '.join(plan.blockers)}"
        elif host.needs_person(plan):
            after = (f" {plan.risk.value} is above auto-approval ({host.settings.auto_approve.value}): applying it waits "
                     "for a person's approval.")
        else:
            after = f" {plan.risk.value} is within auto-approval: {{\"apply\": \"{plan.plan_id}\"}} runs it."
        summary = f"Plan {plan.plan_id}: {plan.tool}, risk {plan.risk.value}, {len(plan.impacts)} impacts. Nothing has changed.{after}"
        await self._artifact(updater, "plan", plan_document(plan), summary)
        await updater.complete()

    async def _apply(self, updater: TaskUpdater, host: Host, plan_id: str, actor: Actor, *, parked: int | None = None) -> None:
        """Apply a plan on ``host``'s cluster; above auto-approval, park the task in input-required (``parked``:
        resumed from there)."""
        try:
            plan = host.get_plan(plan_id)
            await host.check_open(plan)
        except ProximoError as exc:
            if parked is None:
                host.record_refusal(actor, "apply", {"plan_id": plan_id}, str(exc))
            await updater.failed(self._text(updater, f"{exc}: nothing was applied"))
            return
        if host.needs_person(plan) and host.approval(plan) is None:
            if parked is not None and (denied := denial(host, plan, parked)):
                await updater.failed(self._text(updater, denied))
                return
            at = host.head().seq if parked is None else parked
            ask = (f"plan {plan.plan_id} is {plan.risk.value}, above auto-approval "
                   f"({host.settings.auto_approve.value}): it waits for a person to run "
                   f"`{approve_line(self.state.approve_command, host.settings, plan.plan_id)}` with their approver credential. "
                   "No message from an agent can approve it; this task continues by itself once they decide.")
            await updater.update_status(TaskState.TASK_STATE_INPUT_REQUIRED, self._text(updater, ask),
                                        metadata={PLAN_KEY: plan.plan_id, PARKED_KEY: at, CLUSTER_KEY: host.settings.cluster})
            if self.state.watch is not None:
                self.state.watch(updater.task_id, updater.context_id, plan.plan_id, at, host.settings.cluster)
            return
        await updater.start_work(self._text(updater, f"applying plan {plan.plan_id}: checking it is still fresh"))
        if plan.plan_id in self.state.applying:
            await updater.failed(self._text(updater, f"plan {plan.plan_id} is being applied right now by another task"))
            return
        self.state.applying.add(plan.plan_id)

        async def progress(message: str) -> None:
            await updater.update_status(TaskState.TASK_STATE_WORKING, self._text(updater, message))

        try:
            result = await host.apply(plan.plan_id, actor, progress=progress)
        except ProximoError as exc:
            await updater.failed(self._text(updater, f"{exc}: nothing was applied"))
            return
        finally:
            self.state.applying.discard(plan.plan_id)
        receipt = result.for_agent("A2A client")
        if result.ok:
            match = ("the cluster matches the prediction" if result.matches_prediction
                     else f"the cluster differs from the prediction in: {', '.join(result.mismatches)}")
            await self._artifact(updater, "receipt", receipt,
                                 f"Applied plan {result.plan_id}: {len(result.steps)} step(s) OK; {match}. "
                                 f"Ledger record #{result.ledger.seq}; undo with {{\"undo\": {result.ledger.seq}}}.")
            await updater.complete()
        else:
            failed = next((s for s in result.steps if not s.ok), None)
            why = f" at {failed.step}: {failed.error}" if failed else ""
            await self._artifact(updater, "receipt", receipt, f"apply of plan {result.plan_id} failed{why}")
            await updater.failed(self._text(updater, f"apply of plan {result.plan_id} failed{why} "
                                                     f"(ledger record #{result.ledger.seq})"))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
        await updater.cancel(updater.new_agent_message([new_text_part("canceled by the client; nothing was applied")]))



def denial(host: Host, plan: Plan, parked: int) -> str | None:
    """The reason the parked plan will not run: a person's deny record after it parked, or its expiry."""
    found = [r for r in host.ledger.find(plan_id=plan.plan_id, kind="deny") if r.seq > parked]
    if found:
        return (f"plan {plan.plan_id} was denied by a person ({found[-1].outcome.get('reason', 'denied')}): "
                "nothing was applied")
    if time.time() > datetime.fromisoformat(plan.expires_at.replace("Z", "+00:00")).timestamp():
        return f"plan {plan.plan_id} expired at {plan.expires_at} before a person approved it: nothing was applied"
    return None


def decided(host: Host, plan_id: str, parked: int) -> bool:
    """Whether a parked plan has a person's answer (an approval, a denial) or can no longer run."""
    try:
        plan = host.get_plan(plan_id)
    except ProximoError:
        return True
    return host.approval(plan) is not None or denial(host, plan, parked) is not None
