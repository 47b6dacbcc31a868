"""The trust pipeline: PLAN -> APPROVE -> APPLY -> PROVE -> UNDO, owned by the host.

``Host`` is what every face (CLI, MCP, A2A) calls. It is the only holder of the executor, the ledger and
the plan store; packs see copies of the model and return descriptions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from ._approvers import ApproverStore
from ..pve._calls import check_api_path
from ._executor import Executor, StepResult
from ._ledger import REDACTED, Actor, Ledger, LedgerError, LedgerHead, LedgerRecord, LedgerUnreachable, ledger_time, seal
from ._planstore import PlanStore, check_plan_id, new_plan_id
from .._guard import pack_code
from .._progress import Checking, OnEvent, ReadingBack, StepDone, StepStarted, TaskPolled
from .._plugins import PackManager
from ._policy import Policy, scope_of
from .._settings import Settings
from .._sources import Source, State
from .._tools import ToolSpec, check_strings
from .._clusters import cluster_identity
from .._types import ApiCall, Change, ClusterRef, Draft, Impact, Irreversible, LedgerRef, Operator, Plan, Risk, SshExec, Step
from ._ssh import exec_refusal
from ..errors import (
    AlreadyApplied,
    BadInput,
    NotApproved,
    NotModelled,
    NotRead,
    OfflinePlan,
    OtherCluster,
    PackError,
    PolicyDenied,
    ProximoError,
    PveApiError,
    Refused,
    StalePlan,
    UnknownRelease,
)
from ..model import LEAN_READ, ClusterModel, check_nothing_unread_asked, unread_in

log = logging.getLogger("proximo.pipeline")


class Answer(msgspec.Struct, frozen=True):
    """A read tool's answer, with the ledger head the client should keep as a witness."""

    tool: str
    data: Any
    ledger: LedgerRef


class ApplyResult(msgspec.Struct, frozen=True):
    plan_id: str
    ok: bool
    steps: list[StepResult]
    matches_prediction: bool
    mismatches: list[str]
    ledger: LedgerRef

    def for_agent(self, client: str) -> dict[str, Any]:
        """The result for an agent's face (``client``: "MCP client", "A2A client"), without the secret of an API
        token the plan created. PVE shows a new token's secret once, in the answer to its POST; the CLI shows it to
        the person at the terminal, but an agent must not mint itself credentials."""
        data = msgspec.to_builtins(self)
        for step in data["steps"]:
            answer = step.get("data")
            if isinstance(answer, dict) and "full-tokenid" in answer and "value" in answer:
                answer["value"] = f"{REDACTED} (withheld from the {client}: create tokens with `proximo apply` at a terminal)"
        return data


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def plan_hash(plan: Plan) -> str:
    return hashlib.sha256(msgspec.json.encode(plan.content_hash_fields(), order="sorted")).hexdigest()


class Host:
    def __init__(self, settings: Settings, *, source: Source, packs: PackManager, ledger: Ledger, plans: PlanStore,
                 executor: Executor | None, clock: Callable[[], float] = time.time, policy: Policy | None = None,
                 approvers: ApproverStore | None = None) -> None:
        self.settings = settings
        self.policy = policy or Policy()
        self.source = source
        self.packs = packs
        self.ledger = ledger
        self.plans = plans
        self.approvers = approvers or ApproverStore(settings.home)
        self._executor = executor
        self._clock = clock
        self._repeats: _Repeats | None = None  # identical denials in a row: counted, written once
        self._asking: dict[str, float] = {}  # plan id -> until when a person is being asked about it (open_question)

    def operator(self) -> Operator:
        """The operator identity lockout analysers check against (settings, else what the source saw)."""
        sources = list(self.settings.admin_sources) or list(self.source.local_addresses)
        live = self.source.name.startswith("live:")
        host = (urllib.parse.urlsplit(self.settings.url).hostname or "") if live and self.settings.url else ""
        return Operator(token_id=self.settings.token_id, admin_sources=sources, api_host=host)

    @property
    def tools(self):  # type: ignore[no-untyped-def]
        return self.packs.tools

    def head(self) -> LedgerRef:
        """The ledger head a client keeps as a witness; while a shared ledger's database is down, a read still answers,
        with chain "unreachable" and no head instead."""
        try:
            h: LedgerHead = self.ledger.head()
        except LedgerUnreachable:
            return UNREACHABLE
        return LedgerRef(seq=h.seq, head=h.hash, chain=h.chain)

    def _append(self, kind: str, actor: Actor, **fields: Any) -> LedgerRecord:
        record = self._append_once(kind, actor, **fields)
        assert record is not None  # only ``once=True`` appends can be skipped
        return record

    def _append_once(self, kind: str, actor: Actor, **fields: Any) -> LedgerRecord | None:
        self.flush_repeats()
        return self._write(kind, actor, **fields)

    def _write(self, kind: str, actor: Actor, **fields: Any) -> LedgerRecord | None:
        if self.settings.cluster and kind not in _PROXIMO_WIDE:  # every record of this host's work names its cluster
            fields["outcome"] = {**(fields.get("outcome") or {}), "cluster": self.settings.cluster}
        fields = self.settings.scrub(fields)  # redaction goes by key; this catches a token secret pasted as any value
        record = self.ledger.append(kind, actor=actor, **fields)  # type: ignore[arg-type]
        if record is not None:
            self.packs.prove(record, ledger_id=self.ledger.ledger_id)
        return record

    def _deny(self, actor: Actor, tool: Any, params: Any, reason: str, plan_id: str = "") -> None:
        """A refusal, in the ledger: parameters bounded, and a run of identical ones counted instead of repeated."""
        fields = {"tool": _bounded_text(str(tool), 200), "params": bounded_params(params), "plan_id": plan_id,
                  "outcome": {"reason": _bounded_text(reason, MAX_REASON)}}
        key = hashlib.sha256(msgspec.json.encode([actor, fields], order="sorted")).hexdigest()
        run = self._repeats
        if run is not None and run.key == key and self.ledger.head().seq == run.seq and run.count < MAX_REPEATS:
            run.count += 1  # nothing else was recorded since the first one: count it
            return
        self.flush_repeats()
        record = self._write("deny", actor, **fields)
        assert record is not None
        self._repeats = _Repeats(key=key, seq=record.seq, actor=actor, fields=fields)

    def _deny_read(self, actor: Actor, tool: Any, params: Any, reason: str) -> None:
        """A refused read, in the ledger if it can be reached: a read does not need the ledger to answer."""
        try:
            self._deny(actor, tool, params, reason)
        except LedgerUnreachable:
            pass

    def _ours(self, record: LedgerRecord) -> bool:
        """Whether a record is about this host's cluster (one from before records named clusters counts for each)."""
        return record.outcome.get("cluster", self.settings.cluster) == self.settings.cluster

    def record_refusal(self, actor: Actor, what: str, params: Any, reason: str, *, plan_id: str = "") -> None:
        """A request a face refused before it reached a tool (an account that may not approve, a stale plan someone
        tried to approve): a deny record, about ``plan_id`` where there is one (it does not decline the plan)."""
        self._deny(actor, what, params, reason, plan_id=plan_id)

    def seal_ledger(self, actor: Actor, reason: str, *, approver: str) -> LedgerRecord:
        """Set the broken ledger aside and start a new chain that names it (a person decided; see proximo._ledger.seal)."""
        self.flush_repeats()
        where = self.ledger.path or self.ledger.store
        key, mark_path = self.ledger.key, self.ledger.mark_path
        self.ledger.close()
        try:
            record = seal(where, key, actor=actor, reason=f"{reason} (sealed by {approver})", mark_path=mark_path)
        finally:
            self.ledger = Ledger(where, key=key, mark_path=mark_path)
        self.packs.prove(record, ledger_id=self.ledger.ledger_id)
        return record

    def flush_repeats(self) -> None:
        """Write how often the last denial repeated (before any other record, and when the host closes)."""
        run, self._repeats = self._repeats, None
        if run is not None and run.count:
            outcome = {**run.fields["outcome"], "repeated": run.count, "first": run.seq}
            self._write("deny", run.actor, **{**run.fields, "outcome": outcome})

    # --- reads ----------------------------------------------------------------------------------------

    def _resolve(self, tool_id: Any, raw: Any) -> tuple[ToolSpec, msgspec.Struct]:
        if not isinstance(tool_id, str):
            raise BadInput("the tool id must be a string")
        check_strings(tool_id)
        if not isinstance(raw, dict):
            raise BadInput(f"{tool_id}: parameters must be a JSON object")
        tool = self.tools.get(tool_id)
        return tool, tool.parse(raw)

    def _owner_of(self, tool_id: str) -> str:
        """The pack a tool id belongs to, for an error line ("?" if none loaded has it)."""
        return next((t.owner for t in self.tools if t.id == tool_id), "?")

    async def state(self, max_age: float = 0.0, unread: tuple[str, ...] = ()) -> State:
        """The cluster now; only a plan passes ``max_age`` (PROXIMO_PLAN_READ_AGE): apply's checks read afresh.
        ``unread``: parts of the model to leave out (``ClusterModel.unread``); apply reads what its plan read."""
        return await self.source.read_state(max_age, unread)

    async def read(self, tool_id: str, raw: dict[str, Any], actor: Actor) -> Answer:
        try:
            tool, params = self._resolve(tool_id, raw)
            if tool.mutating:
                raise BadInput(f"{tool.id} changes the cluster: make a plan with it (`proximo plan {tool.id} ...`)")
        except BadInput as exc:
            self._deny_read(actor, tool_id, raw, str(exc))
            raise
        state = await self.state()
        view = state.model  # the source reads a model of its own for each call
        if tool.live_reads is not None and self.source.writable:
            for path in tool.live_reads(params, view):
                try:
                    view.other[path] = await self.source.get(path)
                except ProximoError as exc:  # a 403 (the token may not read it) or no answer: the pack says so
                    view.extra[path] = {"error": str(exc)}
        try:
            with pack_code(tool.owner, tool.id):
                data = self.packs.read(tool, params, view, self.operator())
        except BadInput as exc:
            self._deny_read(actor, tool.id, raw, str(exc))
            raise
        return Answer(tool=tool.id, data=data, ledger=self.head())

    # --- PLAN -----------------------------------------------------------------------------------------

    async def plan(self, tool_id: str, raw: dict[str, Any], actor: Actor) -> Plan:
        try:
            tool, params = self._resolve(tool_id, raw)
            if not tool.mutating:
                raise BadInput(f"{tool.id} is a read: run it with `proximo read {tool.id}`")
            self.policy.check_tool(tool.id)
            # Most plans need no guest's firewall files (four GETs a guest, over half of a large cluster's reads): the
            # first read leaves them out; a pack that touches them raises NotRead, and the plan is made again on a
            # read with everything. A snapshot has everything anyway.
            state = await self.state(max_age=self.settings.plan_read_age, unread=LEAN_READ)
            try:
                return self._plan_on(tool, params, state, actor)
            except NotRead:
                log.debug("%s needs what the lean read left out; reading everything", tool.id)
                return self._plan_on(tool, params, await self.state(max_age=self.settings.plan_read_age), actor)
        except (BadInput, NotModelled, PolicyDenied, UnknownRelease) as exc:
            self._deny(actor, tool_id, raw, str(exc))
            raise

    def _plan_on(self, tool: ToolSpec, params: msgspec.Struct, state: State, actor: Actor) -> Plan:
        # The cluster's release decides what is checked from here on: no schema, no plan (UnknownRelease); a
        # parameter its API does not have is refused before the tool runs.
        release = state.model.api.release
        tool.check_release(params, state.model.version, release)
        # pack code runs in both: the tool's plan, then the semantics, analysers and undo of every pack
        with pack_code(tool.owner, tool.id):
            view = state.model.copy()  # hookspecs: the view is the pack's own copy
            draft = self.packs.plan(tool, params, view)
            check_nothing_unread_asked(view)
            return self._finish(tool, msgspec.to_builtins(params), draft, state, actor)

    def _predict(self, before: ClusterModel, steps: list[Step]) -> tuple[ClusterModel, list[ClusterModel], list[str], list[str],
                                                                         list[Step]]:
        """Apply the steps to a copy of the model: the state after, before each step, PVE's refusals, notes, and the
        steps as they will be sent (each with Proxmox's digest of the state it applies to, where the endpoint takes one)."""
        after = before.copy()
        states: list[ClusterModel] = []  # the first is ``before`` itself: _assess checks nothing edits it
        stamped: list[Step] = []
        blockers: list[str] = []
        notes: list[str] = []
        for step in steps:
            if isinstance(step, SshExec):  # accepted as explicitly unpredictable: the model stays as it is
                blockers += self._check_exec(after, step)
                stamped.append(step)
                states.append(after.copy() if states else before)
                notes.append(f"{step.describe()}: exec grants near-root inside CT {step.ctid} (the command runs as root "
                             "there), and what it does cannot be predicted: this plan shows no change for it")
                continue
            if not isinstance(step, ApiCall):
                raise NotModelled(f"{step.describe()}: this kind of step is not modelled, so it cannot be planned")
            if step.method == "GET":
                raise PackError(f"{step.describe()}: a plan's steps change state; reads are not steps")
            check_strings(step.params)
            try:  # the client's own rule, at plan time: a path it would refuse to send is never planned
                check_api_path(step.path)
            except ValueError as exc:
                raise BadInput(f"{step.method} {step.path[:120]!r}: {exc}") from None
            step = self.packs.semantics.stamp(after, step)  # Proxmox's own concurrent-edit check, on every step
            stamped.append(step)
            states.append(after.copy() if states else before)
            try:
                notes.extend(self.packs.semantics.notes(after, step))
                self.packs.semantics.execute(after, step.method, step.path, step.params, user=self._user())
            except PveApiError as exc:
                if exc.status in (400, 501):  # PVE's parameter verification, or no such endpoint: the input is wrong
                    raise BadInput(f"{step.method} {step.path}: {exc}") from None
                blockers.append(f"{step.method} {step.path}: Proxmox would refuse: {exc.message}")
                break
        return after, states, blockers, notes, stamped + list(steps[len(stamped):])

    def _check_exec(self, model: ClusterModel, step: SshExec) -> list[str]:
        """The host's own rules for a command in a container, whichever pack made the step: on, allow-listed (else
        PolicyDenied: a ``deny`` record), a container on that node at the node's address, running (else a blocker)."""
        if why := exec_refusal(self.settings, step.ctid):
            raise PolicyDenied(why)
        if not step.argv or not (0 < step.timeout <= 86400) or step.max_output < 1:
            raise PackError(f"{step.describe()}: an exec step needs a command, a timeout and an output limit")
        check_strings(step.argv)
        guest = model.guests.get(step.ctid)
        if guest is None or guest.kind != "lxc":
            raise BadInput(f"CT {step.ctid}: no such container")
        node = model.nodes.get(step.node)
        if guest.node != step.node or node is None:
            return [f"CT {step.ctid} is on node {guest.node}, not {step.node}"]
        if str(node.status.get("ip") or "") != step.address:
            return [f"node {step.node}'s address in /cluster/status is {node.status.get('ip')!r}, not {step.address!r}"]
        if not guest.running:
            return [f"CT {step.ctid} is not running (pct exec needs it running)"]
        return []

    def _exec_impacts(self, tool_id: str, steps: list[Step]) -> list[Impact]:
        """A command the operator's policy does not name as a read: HIGH at least, and a person approves it."""
        return [Impact(f"lxc/{step.ctid}", "unpredictable", "a command runs as root inside the container "
                       f"({' '.join(step.argv)[:200]}); its effects cannot be predicted or undone by Proximo, and only "
                       "a person may approve it (unless the policy names it in exec_read_only)",
                       risk=Risk.HIGH, needs_person=True)
                for step in steps if isinstance(step, SshExec) and not self.policy.exec_is_read_only(tool_id, step.argv)]

    def _user(self) -> str:
        return self.settings.token_id or "root@pam"

    def _assess(self, tool: ToolSpec | None, params: dict[str, Any], draft: Draft, state: State) -> Assessment:
        """Predict the steps on ``state`` and judge the result: impacts, blockers, risk and undo.

        Planning does this once; apply does it again on the fresh state, so what runs is judged by what it does
        now, not by what a stored plan says about itself.
        """
        before = state.model
        given = msgspec.msgpack.encode(before)
        after, states, refusals, call_notes, steps = self._predict(before, list(draft.steps))
        tool_id = tool.id if tool else "undo"
        change = Change(tool=tool_id, params=params, steps=steps, operator=self.operator())
        impacts = _dedupe(self.packs.impacts(change, before, after) + self._exec_impacts(tool_id, steps))
        undo, undo_note = self._undo(tool, change, before, after, states)
        # A refusal lives in the model (Proxmox's refusals) or in an analyser (Proximo's own rules), never only in a
        # named tool: whatever tool produced the steps, api.call included, gets the same blockers.
        blockers = list(draft.blockers) + refusals + [f"{i.target}: {i.reason}" for i in impacts if i.blocks]
        complete = not state.unseen
        # a command the policy names as a read (exec_read_only) changes nothing Proximo knows of: LOW, like a read
        reads_only = bool(draft.steps) and all(isinstance(s, SshExec) for s in draft.steps) and not any(
            i.effect == "unpredictable" for i in impacts)
        risk = Risk.MEDIUM if draft.steps and not reads_only else Risk.LOW
        for impact in impacts:
            risk = max(risk, impact.floor(), key=lambda r: r.rank)
        if not complete:
            risk = max(risk, Risk.HIGH, key=lambda r: r.rank)
        blockers += self.policy.violations(risk, scope_of(steps, before, after))
        # the state before is what the plan's fingerprint and undo are judged on: a semantics or undo hook that
        # edits it (states[0] is the same object) would make the plan lie about what it was made from
        check_nothing_unread_asked(before, after, *states)
        if msgspec.msgpack.encode(before) != given:
            raise PackError("a pack changed the cluster model while the plan was judged (semantics or undo)")
        return Assessment(steps=steps, after=after, impacts=impacts, blockers=blockers, risk=risk, complete=complete, undo=undo,
                          undo_note=undo_note, notes=list(dict.fromkeys([*draft.notes, *call_notes])), states=states)

    def _finish(self, tool: ToolSpec | None, params: dict[str, Any], draft: Draft, state: State, actor: Actor,
                *, undo_of: int | None = None) -> Plan:
        judged = self._assess(tool, params, draft, state)
        tool_id = tool.id if tool else "undo"
        now = self._clock()
        plan = Plan(
            plan_id=new_plan_id(), tool=tool_id, params=params, risk=judged.risk, reversible=judged.undo is not None,
            blocked=bool(judged.blockers), blockers=judged.blockers, complete=judged.complete, unseen=list(state.unseen),
            impacts=judged.impacts, steps=judged.steps, undo=judged.undo, undo_note=judged.undo_note,
            notes=judged.notes + ([f"planned on the cluster as read {state.age:.1f} s ago (PROXIMO_PLAN_READ_AGE): apply reads it "
                                   "afresh and refuses the plan if anything it rests on changed since"] if state.age else []),
            target=draft.target, created_at=_iso(now), expires_at=_iso(now + self.settings.plan_ttl),
            source=self.source.name, fingerprint=state.model.fingerprint(), undo_of=undo_of, cluster=self.cluster_ref(state.model),
        )
        plan = msgspec.structs.replace(plan, hash=plan_hash(plan))
        self.plans.put(plan)
        record = self._append(
            "undo" if undo_of is not None else "plan", actor, tool=tool_id, params=params, plan_id=plan.plan_id,
            plan_hash=plan.hash, impacts=[msgspec.to_builtins(i) for i in judged.impacts],
            outcome={"risk": judged.risk.value, "blocked": plan.blocked, "steps": [s.describe() for s in plan.steps],
                     **({"undo_of": undo_of} if undo_of is not None else {})},
        )
        return msgspec.structs.replace(plan, ledger=LedgerRef(seq=record.seq, head=record.hash, chain=self.ledger.head().chain))

    def _reassess(self, plan: Plan, state: State) -> Assessment:
        """Judge a stored plan's steps again on the fresh state; StalePlan if they now do something else."""
        try:
            tool = self.tools.get(plan.tool) if plan.undo_of is None else None
        except BadInput:
            raise StalePlan(f"plan {plan.plan_id}: its tool {plan.tool} is not loaded now, so it cannot be judged again") from None
        judged = self._assess(tool, plan.params, Draft(steps=list(plan.steps), target=plan.target), state)
        changes = []
        if judged.risk != plan.risk:
            changes.append(f"risk {plan.risk.value} -> {judged.risk.value}")
        if judged.blockers:
            changes.append(f"now blocked: {'; '.join(judged.blockers)}")
        was, now = {_impact_key(i) for i in plan.impacts}, {_impact_key(i) for i in judged.impacts}
        if was != now:
            changes.append(f"impacts differ ({len(now - was)} new, {len(was - now)} gone)")
        if changes:
            raise StalePlan(f"plan {plan.plan_id} is stale: its steps, judged again on the cluster now, differ from what "
                            f"was shown ({', '.join(changes)}); plan again")
        return judged

    def _undo(self, tool: ToolSpec | None, change: Change, before: ClusterModel, after: ClusterModel,
              states: list[ClusterModel]) -> tuple[list[Step] | None, str]:
        answer = self.packs.undo(tool, change, before, after) if tool is not None else None
        if isinstance(answer, Irreversible):
            return None, answer.reason
        if answer is not None:
            return list(answer), ""
        inverse: list[Step] = []
        for step, state_before in reversed(list(zip(change.steps, states, strict=False))):
            if isinstance(step, SshExec):
                return None, "a command run inside a container cannot be undone by Proximo"
            assert isinstance(step, ApiCall)
            try:
                result = self.packs.semantics.inverse(state_before, step)
            except PveApiError as exc:  # a step Proxmox would refuse (the plan is blocked): it has no inverse
                return None, f"{step.method} {step.path}: Proxmox would refuse it: {exc.message}"
            if isinstance(result, Irreversible):
                return None, result.reason
            inverse += result
        return (inverse, "") if inverse else (None, "nothing to undo")

    # --- APPROVE --------------------------------------------------------------------------------------

    def get_plan(self, plan_id: str) -> Plan:
        """The stored plan, if it is exactly what its ``plan`` record in the ledger hashed (and that record is sound)."""
        plan = self.plans.get(check_plan_id(plan_id))
        records = self.ledger.find(plan_id=plan.plan_id)
        made = [r for r in records if r.kind in ("plan", "undo")]
        if not made:
            raise Refused(f"plan {plan_id} has no plan record in this ledger (it was made in another, or the ledger was sealed)")
        if made[0].plan_hash != plan.hash or plan_hash(plan) != plan.hash:
            raise Refused(f"plan {plan_id} does not match the hash the ledger recorded for it: it was altered")
        if problem := self.ledger.check_record(made[0]):
            raise Refused(f"plan {plan_id}: its plan record is not sound ({problem}): the ledger was altered")
        return msgspec.structs.replace(plan, ledger=LedgerRef(seq=made[0].seq, head=made[0].hash, chain=self.ledger.head().chain))

    def cluster_ref(self, model: ClusterModel) -> ClusterRef:
        """This host's cluster as a plan names it: its name, its URL (live), and what it says it is in ``model``."""
        return ClusterRef(name=self.settings.cluster, url=self.settings.url if self.source.writable else "",
                          id=cluster_identity(model))

    def _check_cluster(self, plan: Plan, model: ClusterModel | None = None) -> None:
        """OtherCluster unless ``plan`` was made on this host's cluster: the same name, at the same URL, and (given the
        cluster as read now) the same cluster answering there. A plan from before clusters were named has only its
        ``source`` (the URL), which apply checks."""
        made = plan.cluster
        if made is None:
            return
        if made.name != self.settings.cluster:
            raise OtherCluster(f"plan {plan.plan_id} was made on cluster {made.name!r}, not {self.settings.cluster!r}: "
                               "a plan applies only to the cluster it was made on")
        if self.source.writable and made.url and made.url != self.settings.url:  # offline plans: the source says it
            raise OtherCluster(f"plan {plan.plan_id} was made on cluster {made.name!r} at {made.url}, and {made.name!r} "
                               f"is now {self.settings.url}: plan again on the cluster there")
        if model is not None and (now := cluster_identity(model)) != made.id:
            raise OtherCluster(f"plan {plan.plan_id} was made on {made.id or 'a cluster that named itself nothing'} "
                               f"(cluster {made.name!r}), and {self.settings.url} now answers as {now or 'nothing'}: "
                               "plan again")

    def _check_open(self, plan: Plan) -> None:
        if self.ledger.find(plan_id=plan.plan_id, kind="apply-start"):
            raise AlreadyApplied(f"plan {plan.plan_id} was already applied; make a new plan")
        declined = [r for r in self.ledger.find(plan_id=plan.plan_id, kind="deny") if r.outcome.get("declined")]
        if declined:  # a person said no: asking again would wear them down; a new plan is a new question
            raise Refused(f"plan {plan.plan_id} was declined by a person ({declined[-1].outcome.get('reason')}); "
                          "make a new plan")
        if plan.blocked:
            raise Refused(f"plan {plan.plan_id} is blocked: {'; '.join(plan.blockers)}")
        if self._clock() > _parse_iso(plan.expires_at):
            raise StalePlan(f"plan {plan.plan_id} expired at {plan.expires_at}; make a new plan")

    async def check_open(self, plan: Plan) -> State | None:
        """Refuse a plan that can no longer be applied (applied, blocked, expired, stale, another cluster's): before
        anyone is asked. Returns the cluster as just read for the freshness check (None where the plan's cluster is not open here)."""
        self._check_open(plan)
        self._check_cluster(plan)
        if self.source.writable and plan.source == self.source.name:
            return await self._fresh_state(plan)
        return None

    async def _fresh_state(self, plan: Plan) -> State:
        """The cluster now, if it still has the configuration the plan was made from; else StalePlan."""
        state = await self.state(unread=unread_in(plan.fingerprint))
        self._check_cluster(plan, state.model)  # before staleness: another cluster is not "changed since"
        now = state.model.fingerprint()
        changed = sorted(k for k in set(now) | set(plan.fingerprint) if now.get(k) != plan.fingerprint.get(k))
        if changed:
            raise StalePlan(f"plan {plan.plan_id} is stale: {', '.join(changed)} changed since it was made; plan again")
        return state

    def needs_person(self, plan: Plan) -> bool:
        if any(impact.needs_person for impact in plan.impacts):  # an analyser said: never on the agent's word
            return True
        return plan.risk is Risk.CRITICAL or plan.risk > self.settings.auto_approve

    def approval(self, plan: Plan) -> LedgerRecord | None:
        """The person's approval apply may rely on: the newest ``approve`` record (unless a denial followed it),
        if it is sound evidence: its own hash and links, the plan's hash, a channel the policy accepts for this
        risk, and an approver who is still an approver."""
        approvals = self.ledger.find(plan_id=plan.plan_id, kind="approve")
        denials = self.ledger.find(plan_id=plan.plan_id, kind="deny")
        if not approvals or (denials and denials[-1].seq > approvals[-1].seq):
            return None
        record = approvals[-1]
        return record if self._approval_problem(plan, record) is None else None

    def _approval_problem(self, plan: Plan, record: LedgerRecord) -> str | None:
        if problem := self.ledger.check_record(record):
            return problem
        if record.plan_hash != plan.hash or (plan.ledger is not None and record.seq <= plan.ledger.seq):
            return f"record {record.seq} approves another version of plan {plan.plan_id}"
        outcome = record.outcome
        channel = outcome.get("channel")
        if outcome.get("by") == "auto":
            return None if not self.needs_person(plan) else f"record {record.seq} is an automatic approval"
        if outcome.get("by") != "person" or channel not in CHANNELS:
            return f"record {record.seq} names no approval channel Proximo knows"
        if self.policy.person_channel_required(plan.risk) and channel not in PERSON_CHANNELS:
            return f"the policy needs a person's own credential for {plan.risk.value}, and record {record.seq} is from {channel}"
        return self._approver_gone(record)

    def _approver_gone(self, record: LedgerRecord) -> str | None:
        """Why a person's record no longer stands because of who made it: an approver removed since, or a unix account
        no longer in PROXIMO_APPROVERS (None: they still may)."""
        outcome = record.outcome
        channel, approver = outcome.get("channel"), outcome.get("approver")
        if channel in APPROVER_CHANNELS and (not isinstance(approver, str) or self.approvers.get(approver) is None):
            return f"record {record.seq}: {approver!r} is no longer an approver"
        if channel == "unix-socket" and not _is_configured_approver(self.settings.approvers, outcome.get("uid"), approver):
            return f"record {record.seq}: unix account {approver!r} is not in PROXIMO_APPROVERS"
        return None

    def sign_in(self, credential: Credential) -> str:
        """The approver's name, if their credential is right (NotApproved otherwise; a wrong one costs scrypt and a
        delay, known name or not). The console opens a session with it; ``approve`` checks a credential the same way."""
        if not self.approvers.names():
            raise NotApproved("no approver is set up: a person runs `proximo approver add NAME` (once) to set a "
                              "passphrase the agent does not know")
        return self.approvers.verify(credential.name, credential.passphrase, credential.code).name

    def _person(self, proof: Proof, plan: Plan | None) -> tuple[str, str, dict[str, Any]]:
        """Check who approves and how: (channel, approver, extra outcome fields); NotApproved when it is not a person.
        ``plan`` None: a decision about no plan (unfreeze), which only a person's own credential or account makes."""
        if isinstance(proof, Credential):
            name = self.sign_in(proof)
            return "credential", name, {"totp": self._has_totp(name)}
        if isinstance(proof, ConsoleSession):
            if self.approvers.get(proof.approver) is None:  # removed since they signed in: their session ends here
                raise NotApproved(f"{proof.approver!r} is no longer an approver: sign in again")
            return "console", proof.approver, {"totp": self._has_totp(proof.approver), "signed_in": _iso(proof.since)}
        if isinstance(proof, PeerAccount):
            if proof.uid == os.getuid():
                raise NotApproved("approvals over the socket never come from Proximo's own unix account")
            if not _is_configured_approver(self.settings.approvers, proof.uid, proof.user):
                raise NotApproved(f"unix account {proof.user} (uid {proof.uid}) is not an approver (PROXIMO_APPROVERS)")
            return "unix-socket", proof.user, {"uid": proof.uid}
        if plan is None:
            raise NotApproved(f"only a person's own credential (an approver passphrase, or an approver's unix account) "
                              f"can do this, not an MCP client's form: {proof.face}")
        if self.policy.person_channel_required(plan.risk):
            raise NotApproved(f"the policy (approval = \"person\") needs a person's own credential for {plan.risk.value} "
                              f"plans, not an MCP client's form: {proof.face}")
        return proof.face, proof.client, {}

    def _has_totp(self, name: str) -> bool:
        approver = self.approvers.get(name)
        return bool(approver is not None and approver.totp)

    def approve(self, plan_id: str, actor: Actor, proof: Proof, *, typed_target: str | None = None) -> LedgerRecord:
        """A person approves a plan. ``proof`` says how they showed they are one; no tool argument reaches here."""
        plan = self.get_plan(plan_id)
        self._check_open(plan)
        try:
            self._check_cluster(plan)
        except OtherCluster as exc:
            self._deny(actor, plan.tool, {}, str(exc), plan_id=plan.plan_id)
            raise
        try:
            channel, approver, extra = self._person(proof, plan)
        except NotApproved as exc:
            self._deny(actor, plan.tool, {}, str(exc), plan_id=plan.plan_id)
            raise
        if plan.risk is Risk.CRITICAL and (typed_target or "").strip() != plan.target:
            self._deny(actor, plan.tool, {}, "the typed name did not match the target", plan_id=plan.plan_id)
            raise NotApproved(f"plan {plan_id} is CRITICAL: approving it needs the target's name typed exactly ({plan.target!r})")
        return self._append("approve", actor, tool=plan.tool, plan_id=plan.plan_id, plan_hash=plan.hash,
                            outcome={"risk": plan.risk.value, "by": "person", "channel": channel, "approver": approver, **extra})

    def deny(self, plan_id: str, actor: Actor, reason: str, *, by: ConsoleSession | None = None) -> LedgerRecord:
        """A person declines a plan: it is dead (``_check_open`` refuses it from then on, for every face). ``by``: the
        signed-in approver who declined it, named in the record (anyone may decline; nothing is checked)."""
        plan = self.get_plan(plan_id)
        who = {"by": "person", "channel": "console", "approver": by.approver} if by is not None else {}
        return self._append("deny", actor, tool=plan.tool, plan_id=plan.plan_id, plan_hash=plan.hash,
                            outcome={"reason": _bounded_text(reason, MAX_REASON), "declined": True, **who})

    def refuse_closed(self, plan: Plan) -> None:
        """Refuse, before anyone is asked, a plan that can no longer be approved: applied, declined, blocked,
        expired or another cluster's (``check_open`` also reads the cluster for staleness, where a source is open)."""
        self._check_open(plan)
        self._check_cluster(plan)

    def open_question(self, plan: Plan) -> None:
        """Note that a person is being asked about ``plan`` now; Refused if someone already is. Two calls that would
        each ask (two proximo_apply calls at once, say) ask once: the second is refused, and the person answers one
        question. The question closes with ``close_question``, or when the plan expires (a client that never answers)."""
        now = self._clock()
        until = self._asking.get(plan.plan_id)
        if until is not None and now <= until:
            raise Refused(f"a person is already being asked about plan {plan.plan_id}; wait for their answer")
        self._asking[plan.plan_id] = _parse_iso(plan.expires_at)

    def close_question(self, plan_id: str) -> None:
        self._asking.pop(plan_id, None)

    # --- FREEZE: the emergency stop ----------------------------------------------------------------------

    def freeze(self, actor: Actor, reason: str) -> LedgerRecord:
        """Stop every apply, in every face and every process on this ledger, until a person unfreezes. Anyone may
        freeze (stopping is always safe); the ``freeze`` record is the state, so no other file can undo it."""
        return self._append("freeze", actor, outcome={"reason": _bounded_text(reason or "no reason given", MAX_REASON)})

    def unfreeze(self, actor: Actor, proof: Proof) -> LedgerRecord:
        """Let applies run again: a person's own credential only (never a client form, never the agent's token)."""
        if self.frozen() is None:
            raise Refused("applies are not frozen")
        try:
            channel, approver, extra = self._person(proof, None)
        except NotApproved as exc:
            self._deny(actor, "unfreeze", {}, str(exc))
            raise
        return self._append("unfreeze", actor, outcome={"by": "person", "channel": channel, "approver": approver, **extra})

    def frozen(self) -> LedgerRecord | None:
        """The ``freeze`` record in force, if any: the newest freeze, unless a sound unfreeze by a person followed."""
        record = self.ledger.latest("freeze", "unfreeze")
        if record is None:
            return None
        if record.kind == "unfreeze":
            outcome = record.outcome
            sound = (self.ledger.check_record(record) is None and outcome.get("by") == "person"
                     and outcome.get("channel") in PERSON_CHANNELS and self._approver_gone(record) is None)
            if sound:
                return None
            # an unfreeze that is not a person's (a forged or broken record) leaves the freeze standing
            return self.ledger.latest("freeze")
        return record

    def _rate_capped(self, plan: Plan) -> str | None:
        """The policy's cap on applies started in the last hour (the ledger's ``apply-start`` records), if reached."""
        overall, by_risk = self.policy.max_applies_per_hour, self.policy.max_applies_per_hour_by_risk.get(plan.risk.value)
        if overall is None and by_risk is None:
            return None
        started = [r for r in self.ledger.since("apply-start", ledger_time(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
                   if self._ours(r)]  # each cluster's policy caps that cluster's applies
        if overall is not None and len(started) >= overall:
            return f"the policy allows {overall} applies an hour, and {len(started)} started in the last hour"
        same = sum(1 for r in started if r.outcome.get("risk") == plan.risk.value)
        if by_risk is not None and same >= by_risk:
            return f"the policy allows {by_risk} {plan.risk.value} applies an hour, and {same} started in the last hour"
        return None

    def _check_not_frozen(self) -> None:
        if (record := self.frozen()) is not None:
            raise Refused(f"applies are frozen since ledger #{record.seq} ({record.outcome.get('reason')}): nothing runs "
                          "until a person runs `proximo unfreeze`")

    # --- APPLY ----------------------------------------------------------------------------------------

    def check_ledger(self) -> None:
        """Refuse to rely on a ledger whose chain or high-water mark is broken (checked from the last checkpoint)."""
        result = self.ledger.check()
        if not result.ok:
            raise Refused(f"the ledger is broken ({result.reason}): every apply stops until a person looks and seals it "
                          "(proximo ledger seal)")

    async def apply(self, plan_id: str, actor: Actor, progress: Callable[[str], Awaitable[None] | None] | None = None,
                    events: OnEvent | None = None) -> ApplyResult:
        """Run a plan's steps, after verifying everything the decision rests on, before the first request:

        the ledger (chain from the last checkpoint, high-water mark), the plan against its ``plan`` record, that
        record itself, the plan still open (unapplied, unblocked, unexpired, this cluster, the policy), the cluster
        unchanged since planning, the steps judged again on the fresh state (same risk, same impacts, no
        blockers), and an approval record that is sound evidence from a channel the policy accepts.

        ``events`` hears where the apply is (``proximo._progress``): checking, each step and its task, reading back.
        """
        emit = events or (lambda event: None)
        if self._executor is not None and any(ledger_id == self.ledger.ledger_id for ledger_id, _ in _ABANDONED):
            await self.reconcile(actor)  # an apply this process gave up on while the ledger was away: closed first
        try:
            self.check_ledger()
            self._check_not_frozen()
            plan = self.get_plan(plan_id)
            emit(Checking(plan_id=plan.plan_id, steps=len(plan.steps)))
        except Refused as exc:
            self._deny(actor, "apply", {"plan_id": plan_id}, str(exc), plan_id=plan_id if isinstance(plan_id, str) else "")
            raise
        try:
            self._check_open(plan)
            self._check_cluster(plan)
            if not self.source.writable or self._executor is None:
                raise OfflinePlan(f"{self.source.name} is a snapshot: there is nothing to apply a plan to")
            if plan.source != self.source.name:
                raise StalePlan(f"plan {plan.plan_id} was made against {plan.source}, not {self.source.name}")
            self.policy.check_tool(plan.tool)  # the policy may have changed since the plan was made
            if reason := self.policy.check_risk(plan.risk):
                raise PolicyDenied(reason)
            if reason := self._rate_capped(plan):
                raise PolicyDenied(reason)
            state = await self._fresh_state(plan)  # first: a stale plan is worth no one's approval
            with pack_code(self._owner_of(plan.tool), plan.tool):  # pack code judges the steps again
                judged = self._reassess(plan, state)
            if self.needs_person(plan) and self.approval(plan) is None:
                approvals = self.ledger.find(plan_id=plan.plan_id, kind="approve")
                why = self._approval_problem(plan, approvals[-1]) if approvals else None
                raise NotApproved(
                    f"plan {plan.plan_id} is {plan.risk.value}, above auto-approval ({self.settings.auto_approve.value}): "
                    + (f"its approval cannot be relied on ({why})" if why else "a person must approve it first")
                    + f": proximo approve {plan.plan_id}"
                )
        except Refused as exc:
            self._deny(actor, plan.tool, {}, str(exc), plan_id=plan.plan_id)
            raise
        if not self.needs_person(plan) and self.approval(plan) is None:  # only a fresh plan is auto-approved
            self._append("approve", actor, tool=plan.tool, plan_id=plan.plan_id, plan_hash=plan.hash,
                         outcome={"risk": plan.risk.value, "by": "auto", "auto_approve": self.settings.auto_approve.value})
        expected = judged.after.fingerprint(predictable=True)
        # What the cluster should look like after each step, so an apply cut short can be told apart afterwards.
        milestones = judged.milestones(plan.fingerprint)
        started = self._append_once("apply-start", actor, tool=plan.tool, plan_id=plan.plan_id, plan_hash=plan.hash, once=True,
                               outcome={"steps": [s.describe() for s in plan.steps], "risk": plan.risk.value, "pid": os.getpid(),
                                        "host": socket.gethostname(), "started": int(self._clock()),
                                        "milestones": milestones})
        if started is None:  # another process started it between our checks and now (the ledger decides, atomically)
            raise AlreadyApplied(f"plan {plan.plan_id} is already being applied or was applied; plans run once")
        try:
            return await self._run_started(plan, expected, actor, progress, emit)
        except LedgerError as exc:
            # The ledger went away after the apply-start (a shared database stopped, a full disk): this process lives
            # on, so reconcile must not wait for it to end; it closes the start like a crash's when the ledger is back.
            _ABANDONED.add((self.ledger.ledger_id, started.seq))
            raise type(exc)(f"plan {plan.plan_id}: started (ledger #{started.seq}) but its result could not be recorded "
                              f"({exc}); it is reconciled like a crash when the ledger is back") from None

    async def _run_started(self, plan: Plan, expected: dict[str, str], actor: Actor,
                           progress: Callable[[str], Awaitable[None] | None] | None, emit: OnEvent) -> ApplyResult:
        """The steps of a plan whose apply-start is in the ledger, the read-back, and the apply-result."""
        assert self._executor is not None
        results: list[StepResult] = []
        self.source.forget()  # a read remembered for plans is from before this change
        for index, step in enumerate(plan.steps, 1):
            emit(StepStarted(index=index, total=len(plan.steps), step=step.describe()))
            result = await self._executor.run(step, progress, on_task=lambda upid, status, lines, i=index: emit(
                TaskPolled(index=i, upid=upid, status=status, lines=list(lines))))
            emit(StepDone(index=index, ok=result.ok, upid=result.upid, error=result.error))
            results.append(result)
            if isinstance(step, SshExec):  # argv, exit status, byte counts and hashes: never the output itself
                self._append("exec", actor, tool=plan.tool, plan_id=plan.plan_id, plan_hash=plan.hash,
                             outcome={**(result.for_ledger().get("data") or {}), "ok": result.ok, "error": result.error})
            if not result.ok:
                break
        ok = len(results) == len(plan.steps) and all(r.ok for r in results)
        mismatches: list[str] = []
        emit(ReadingBack())
        try:
            actual = (await self.state(unread=unread_in(plan.fingerprint))).model.fingerprint(predictable=True)
            mismatches = sorted(k for k in set(actual) | set(expected) if actual.get(k) != expected.get(k)) if ok else []
        except ProximoError as exc:
            mismatches = [f"read back failed: {exc}"]
        record = self._append(
            "apply-result", actor, tool=plan.tool, plan_id=plan.plan_id, plan_hash=plan.hash,
            outcome={"ok": ok, "steps": [r.for_ledger() for r in results], "mismatches": mismatches},
        )
        return ApplyResult(plan_id=plan.plan_id, ok=ok, steps=results, matches_prediction=ok and not mismatches,
                           mismatches=mismatches, ledger=LedgerRef(seq=record.seq, head=record.hash, chain=self.ledger.head().chain))

    # --- recovery -------------------------------------------------------------------------------------

    async def reconcile(self, actor: Actor) -> list[LedgerRecord]:
        """Close apply-start records whose process died mid-apply, with the evidence of what landed.

        Nothing is lost silently: the interrupted apply gets an ``apply-result`` with ``interrupted``, the tasks
        from ``/cluster/tasks`` that started after it, and how many steps the cluster shows as done: it is compared
        with the state predicted after each step (recorded in the apply-start), so a synchronous write cut off
        mid-request is known to have landed or not.
        """
        closed: list[LedgerRecord] = []
        for start in self.ledger.open_applies():
            info = start.outcome
            if not self._ours(start):  # another cluster's apply: its own host reads that cluster's tasks
                continue
            abandoned = (self.ledger.ledger_id, start.seq) in _ABANDONED
            if not abandoned and not _apply_is_dead(info, self._clock()):
                continue
            tasks: list[Any] = []
            try:
                rows = await self.source.get("/cluster/tasks")
                tasks = [r.get("upid") for r in rows or [] if int(r.get("starttime", 0)) >= int(info.get("started", 0))]
            except ProximoError as exc:
                tasks = [f"could not read /cluster/tasks: {exc}"]
            landed, evidence = await self._what_landed(start)
            closed.append(self._append("apply-result", actor, tool=start.tool, plan_id=start.plan_id, plan_hash=start.plan_hash,
                                       outcome={"ok": False, "interrupted": True, "tasks_since_start": tasks,
                                                "landed_steps": landed, "evidence": evidence,
                                                "reason": ("the ledger could not be reached to record this apply's result"
                                                           if abandoned else "the applying process ended before the apply "
                                                           "finished") + "; check these tasks"}))
            _ABANDONED.discard((self.ledger.ledger_id, start.seq))  # closed: once its record is in
        return closed

    async def _what_landed(self, start: LedgerRecord) -> tuple[int | None, str]:
        milestones = start.outcome.get("milestones")
        if not isinstance(milestones, list):
            return None, "the apply-start record holds no predictions to compare with (made by an older Proximo)"
        try:
            plan = self.plans.get(start.plan_id)
            now = (await self.state(unread=unread_in(plan.fingerprint))).model.fingerprint()
        except ProximoError as exc:
            return None, f"could not compare the cluster with the prediction: {exc}"
        return landed_steps(plan.fingerprint, now, milestones)

    # --- UNDO -----------------------------------------------------------------------------------------

    async def undo(self, seq: int, actor: Actor) -> Plan:
        """Plan the inverse of the change recorded at ledger ``seq``, afresh, through the whole pipeline."""
        try:
            if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq < 2**63:  # SQLite's INTEGER
                raise BadInput(f"not a ledger sequence number: {seq!r}")
            record = self.ledger.get(seq)
            if record is None or not record.plan_id:
                raise BadInput(f"ledger record {seq} does not exist or is not about a plan")
            plan = self.get_plan(record.plan_id)
            if plan.cluster is not None and plan.cluster.name != self.settings.cluster:  # its inverse is that cluster's
                raise OtherCluster(f"ledger record {seq}: plan {plan.plan_id} changed cluster {plan.cluster.name!r}, not "
                                   f"{self.settings.cluster!r}: plan its undo on {plan.cluster.name!r}")
            results = self.ledger.find(plan_id=plan.plan_id, kind="apply-result")
            if not results or not results[-1].outcome.get("ok"):
                raise Refused(f"ledger record {seq}: plan {plan.plan_id} was not applied successfully, so there is nothing to undo")
            if plan.undo is None:
                raise Refused(f"ledger record {seq}: {plan.tool} has no undo: {plan.undo_note}")
        except (BadInput, Refused) as exc:
            self._deny(actor, "undo", {"seq": seq}, str(exc))
            raise
        state = await self.state()
        try:
            state.model.api  # noqa: B018 (UnknownRelease: no plan, an undo's neither, for a release without a schema)
        except UnknownRelease as exc:
            self._deny(actor, "undo", {"seq": seq}, str(exc))
            raise
        notes = [f"undoes ledger record {seq}: {plan.tool} {plan.plan_id}"]
        # The inverse was recorded against the state before the change; its digests are made afresh from the state now.
        steps = [ApiCall(s.method, s.path, {k: v for k, v in s.params.items() if k != "digest"}) if isinstance(s, ApiCall) else s
                 for s in plan.undo]
        draft = Draft(steps=steps, notes=notes, target=plan.target)
        with pack_code(self._owner_of(plan.tool), f"the undo of {plan.tool}"):  # semantics and analysers judge it
            return self._finish(None, {"seq": seq}, draft, state, actor, undo_of=seq)


_PROXIMO_WIDE = frozenset({"freeze", "unfreeze", "seal", "approver"})
"""Ledger records about Proximo as a whole, not one cluster: a freeze stops the applies on every cluster."""

# --- approvals -----------------------------------------------------------------------------------------

PERSON_CHANNELS = frozenset({"credential", "unix-socket", "console"})
"""Channels where the approver showed something the agent does not have: a passphrase (and TOTP), their own unix
account on the service's socket, or a console session opened with their passphrase (and TOTP)."""
CHANNELS = PERSON_CHANNELS | {"mcp-elicitation", "a2a-input"}
APPROVER_CHANNELS = frozenset({"credential", "console"})
"""Channels whose record names an approver of ``approvers.json``: the record stands only while that approver does."""


@dataclass(frozen=True)
class Credential:
    """An approver's passphrase (and TOTP code, where one is set), as typed by the person."""

    name: str
    passphrase: str = field(repr=False)
    code: str = field(repr=False, default="")


@dataclass(frozen=True)
class PeerAccount:
    """The unix account on the other end of the service's socket, as the kernel reports it (SO_PEERCRED)."""

    uid: int
    user: str


@dataclass(frozen=True)
class ClientForm:
    """A person's answer carried by a client's form (MCP elicitation, A2A input): as trusted as that client."""

    face: Literal["mcp-elicitation", "a2a-input"]
    client: str


@dataclass(frozen=True)
class ConsoleSession:
    """An approver signed in to the console (``proximo.console``) with their credential, checked by
    :meth:`Host.sign_in` when the session was opened; ``since`` is when (seconds since the epoch)."""

    approver: str
    since: float


Proof = Credential | PeerAccount | ClientForm | ConsoleSession


def _is_configured_approver(configured: list[str], uid: Any, user: Any) -> bool:
    """Whether PROXIMO_APPROVERS names this account (by name or uid)."""
    return (isinstance(user, str) and user in configured) or (isinstance(uid, int) and str(uid) in configured)


# --- judging a plan -----------------------------------------------------------------------------------


class Assessment(msgspec.Struct, frozen=True):
    """What a plan's steps do to a given state, as the host judges it."""

    steps: list[Step]  # as they will be sent: with Proxmox's digest where the endpoint takes one
    after: ClusterModel
    impacts: list[Impact]
    blockers: list[str]
    risk: Risk
    complete: bool
    undo: list[Step] | None
    undo_note: str
    notes: list[str]
    states: list[ClusterModel]  # the state before each step (the state after the last one is ``after``)

    def milestones(self, before: dict[str, str]) -> list[dict[str, str]]:
        """After each step, the fingerprint sections that differ from ``before``: what recovery compares with."""
        after_each = [*self.states[1:], self.after]
        return [_changed_sections(before, state.fingerprint()) for state in after_each]


def _changed_sections(before: dict[str, str], now: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in sorted(now.items()) if before.get(name) != value} | {
        name: "" for name in sorted(set(before) - set(now))}


def landed_steps(before: dict[str, str], now: dict[str, str], milestones: list[Any]) -> tuple[int | None, str]:
    """How many of a plan's steps the cluster shows as done, by comparing it with the predicted state after each.

    Returns (steps, evidence): 0 when it still looks as before, k when it matches the prediction after step k, None
    when it matches no predicted state (someone else changed it too, or a step did something else).
    """
    changed = _changed_sections(before, now)
    if not changed:
        return 0, "the cluster still looks as it did before the apply: no step landed"
    for k, expected in enumerate(milestones, start=1):
        if changed == expected:
            done = "every step" if k == len(milestones) else (f"step 1 of {len(milestones)}" if k == 1
                                                              else f"steps 1..{k} of {len(milestones)}")
            return k, f"the cluster matches the prediction after {done}"
    nearest = min(milestones, key=lambda m: len(set(m.items()) ^ set(changed.items())), default={})
    differ = sorted(set(nearest) ^ set(changed) | {n for n in set(nearest) & set(changed) if nearest[n] != changed[n]})
    return None, f"the cluster matches no predicted state: {', '.join(differ[:10])} differ from the nearest prediction"


def _impact_key(impact: Impact) -> tuple[str, str, str, str, bool, bool]:
    return (impact.target, impact.effect, impact.reason, impact.floor().value, impact.needs_person, impact.blocks)


# --- denials ------------------------------------------------------------------------------------------

MAX_REASON = 1000
MAX_PARAMS = 2048  # bytes of JSON kept of a refused request's parameters; beyond, their size and hash
MAX_REPEATS = 1000  # a run of identical denials is written once, then as one count per this many


@dataclass
class _Repeats:
    key: str
    seq: int
    actor: Actor
    fields: dict[str, Any]
    count: int = 0


def _bounded_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def bounded_params(params: Any) -> dict[str, Any]:
    """A refused request's parameters as the ledger keeps them: whole when small, else their size and SHA-256.

    A refusal must not let a caller grow the ledger (or the answers that quote it) by megabytes.
    """
    if not isinstance(params, dict):
        return {}
    try:
        encoded = msgspec.json.encode(params, enc_hook=repr, order="sorted")
    except (TypeError, ValueError, msgspec.EncodeError):  # keys JSON cannot carry: keep their text only
        encoded = msgspec.json.encode(repr(params))
        params = {}
    if len(encoded) <= MAX_PARAMS and params:
        return msgspec.json.decode(encoded)
    keys = [_bounded_text(str(k), 40) for k in list(params)[:20]]
    return {"truncated": {"bytes": len(encoded), "sha256": hashlib.sha256(encoded).hexdigest(), "keys": keys}}


_ABANDONED: set[tuple[str, int]] = set()
"""(ledger id, seq) of the apply-starts this process gave up on (their result could not be recorded): dead though it lives."""

UNREACHABLE = LedgerRef(seq=0, head="", chain="unreachable")


def _apply_is_dead(info: dict[str, Any], now: float) -> bool:
    """An apply-start is abandoned when its process is gone (same host), or after a day (any host)."""
    if now - float(info.get("started", 0)) > 86400:
        return True
    if info.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(info.get("pid", 0)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, OverflowError):
        return False
    return int(info.get("pid", 0)) <= 0


def _dedupe(impacts: list[Impact]) -> list[Impact]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for impact in sorted(impacts, key=lambda i: (-(i.floor().rank), i.target, i.effect, i.reason)):
        key = (impact.target, impact.effect, impact.reason)
        if key not in seen:
            seen.add(key)
            out.append(impact)
    return out
