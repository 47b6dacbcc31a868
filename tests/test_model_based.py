"""A model-based test of the trust pipeline (hypothesis stateful): random sequences of plan, approve, deny, apply, undo,
restart, tamper, fault and concurrent applies against the simulator, in process and through the MCP face (an MCP
session on a host of its own over the same state, whose person accepts the approval form); after every step:

- no write reached the simulator but a step of an apply the host started: the simulator's writes are exactly the
  steps of the applies that returned (never a write twice, never one for a refused apply);
- every apply that ran had a fresh plan (the cluster still matched its fingerprint: a stale one is refused, with
  no write) and an approval record before its apply-start: a person's when the plan needs one, else the policy's;
- the ledger verifies (and after a tamper, verification finds it, the tampered plan is refused, and a person
  seals it before anything runs again);
- every apply that ran to the end left the simulator in the state the plan predicted.

Example counts are moderate (the ``proximo`` profile, ``conftest.py``); ``bench/security_figures.py`` counts what a
run did.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from proximo.errors import ProximoError
from proximo.model._cluster import unread_in
from proximo.testing import World
from proximo.trust._pipeline import ApplyResult

from _hostile import FIGURES

_names = itertools.count(1)

# Changes the demo cluster takes again and again: MEDIUM (auto-approved), a task, and HIGH ones (a person approves).
CHANGES = [
    lambda: ("storage.update", {"storage": "nfs-backup", "prune-backups": f"keep-last={next(_names) % 9 + 1}"}),
    lambda: ("storage.update", {"storage": "local", "prune-backups": f"keep-last={next(_names) % 9 + 1}"}),
    lambda: ("guest.config.set", {"vmid": 201, "description": f"note {next(_names)}"}),
    lambda: ("guest.snapshot.create", {"vmid": 105, "snapname": f"s{next(_names)}"}),
    lambda: ("storage.delete", {"storage": "cifs-iso"}),
    lambda: ("storage.delete", {"storage": "local-zfs"}),
]
FAULTS = [
    {"method": "*", "path_regex": r"^/(storage|nodes)/.*", "status": 500, "message": "cfs-lock error: got lock request timeout"},
    {"method": "*", "path_regex": r"^/(storage|nodes)/.*[^s]$", "kind": "timeout", "landed": True},
    {"method": "*", "path_regex": r"^/(storage|nodes)/.*[^s]$", "kind": "reset"},
    {"method": "GET", "path_regex": r"^/cluster/resources$", "status": 503, "message": "service unavailable"},
    {"method": "POST", "path_regex": r"/snapshot$", "kind": "task-fail", "message": "snapshot failed"},
]


async def _accepts(context: Any, params: Any) -> Any:
    """The person at the MCP client: approves what the form shows (typing the target's name for a CRITICAL plan)."""
    from mcp_types import ElicitResult

    wanted = params.requested_schema.get("properties", {})
    target = params.message.rsplit("type the target's name: ", 1)[-1].strip() if "target" in wanted else ""
    return ElicitResult(action="accept", content={"target": target} if "target" in wanted else {"approve": True})


def _client(machine: Any) -> Any:
    from mcp import Client

    from proximo.mcp import McpSettings, build_server

    server = build_server(machine.world.host, McpSettings(toolset="full"), tools=machine.world.packs.tools)
    return Client(server, elicitation_callback=_accepts)


class Pipeline(RuleBasedStateMachine):
    plans = Bundle("plans")
    applied = Bundle("applied")

    def __init__(self) -> None:
        super().__init__()
        self._stack = contextlib.ExitStack()
        self.home = Path(self._stack.enter_context(tempfile.TemporaryDirectory()))
        self.world = World(self.home)
        self.world.sim.task_polls = 1
        self.portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        self._open()
        self.writes_expected = 0
        self.sealed = False
        self.faults = 0
        FIGURES["sequences"] += 1

    def _open(self) -> None:
        """The host, and an MCP session on its own host over the same state (as a second process would be)."""
        self._host_cm = self.portal.wrap_async_context_manager(self.world.host())
        self.host = self._host_cm.__enter__()
        self._mcp_cm = self.portal.wrap_async_context_manager(_client(self))
        self.mcp = self._mcp_cm.__enter__()

    def _close(self) -> None:
        self._mcp_cm.__exit__(None, None, None)
        self._host_cm.__exit__(None, None, None)

    def teardown(self) -> None:
        self._close()
        self._stack.close()

    def writes(self) -> int:
        return sum(1 for method, _ in self.world.sim.requests if method != "GET")

    # --- rules -------------------------------------------------------------------------------------------

    @rule(target=plans, change=st.sampled_from(CHANGES))
    def plan(self, change: Any) -> Any:
        FIGURES["steps"] += 1
        tool, params = change()
        try:
            return self.portal.call(self.host.plan, tool, params, self.world.actor)
        except ProximoError:
            return None

    @rule(plan=plans)
    def approve(self, plan: Any) -> None:
        FIGURES["steps"] += 1
        if plan is not None:
            with contextlib.suppress(ProximoError):
                self.host.approve(plan.plan_id, self.world.actor, self.world.person)

    @rule(plan=plans)
    def deny(self, plan: Any) -> None:
        FIGURES["steps"] += 1
        if plan is not None:
            with contextlib.suppress(ProximoError):
                self.host.deny(plan.plan_id, self.world.actor, "declined in the model-based test")

    @rule(target=applied, plan=plans)
    def apply(self, plan: Any) -> Any:
        FIGURES["steps"] += 1
        if plan is None:
            return None
        results = self._apply(plan, 1)
        return results[0] if results else None

    @rule(target=applied, change=st.sampled_from(CHANGES), person=st.booleans())
    def plan_and_apply(self, change: Any, person: bool) -> Any:
        """The common path, so that sequences get deep: plan, a person approves (or not), apply."""
        plan = self.plan(change)
        if plan is not None and person:
            self.approve(plan)
        return self.apply(plan)

    @rule(plan=plans, mcp=st.booleans())
    def apply_twice_at_once(self, plan: Any, mcp: bool) -> None:
        """Two applies of one plan at once: both in process, or one of them through the MCP face."""
        FIGURES["steps"] += 1
        if plan is not None:
            assert len(self._apply(plan, 2, mcp=mcp)) <= 1, "two concurrent applies of one plan both ran"

    @rule(target=applied, plan=plans)
    def apply_through_mcp(self, plan: Any) -> Any:
        FIGURES["steps"] += 1
        if plan is None:
            return None
        results = self._apply(plan, 1, mcp=True)
        return results[0] if results else None

    def _apply(self, plan: Any, calls: int, *, mcp: bool = False) -> list[ApplyResult]:
        before = self.writes()
        try:
            # the cluster as apply reads it for this plan (the parts its plan left unread left out too)
            now = self.portal.call(lambda: self.host.state(unread=unread_in(plan.fingerprint)))
            fresh = now.model.fingerprint() == plan.fingerprint
        except ProximoError:
            fresh = None  # the cluster could not be read (a fault): apply decides
        results: list[ApplyResult] = []

        async def one() -> None:
            try:
                results.append(await self.host.apply(plan.plan_id, self.world.actor))
            except ProximoError:
                FIGURES["sequence_refusals"] += 1

        async def through_mcp() -> None:
            """proximo_apply in the MCP session: a person accepts the client's form where the plan needs one."""
            answer = await self.mcp.call_tool("proximo_apply", {"plan_id": plan.plan_id})
            data = answer.structured_content or {}
            if isinstance(data.get("steps"), list):
                results.append(msgspec.convert(data, ApplyResult))
                FIGURES["mcp_applies"] += 1
            else:
                FIGURES["sequence_refusals"] += 1

        async def all_of_them() -> None:
            async with anyio.create_task_group() as tg:
                for index in range(calls):
                    tg.start_soon(through_mcp if mcp and index == 0 else one)

        self.portal.call(all_of_them)
        FIGURES["applies"] += len(results)
        for result in results:
            FIGURES["writes"] += len(result.steps)
            assert fresh is not False, f"plan {plan.plan_id} was stale, and it was applied"
            self.writes_expected += len(result.steps)
            self._check_approval(plan)
            if result.ok:
                assert result.matches_prediction, f"plan {plan.plan_id}: the cluster differs from the prediction: {result.mismatches}"
        if not results:
            assert self.writes() == before, f"a refused apply of {plan.plan_id} wrote"
        return results

    def _check_approval(self, plan: Any) -> None:
        records = self.host.ledger.find(plan_id=plan.plan_id)
        starts = [r for r in records if r.kind == "apply-start"]
        assert len(starts) == 1, f"plan {plan.plan_id} has {len(starts)} apply-start records"
        approvals = [r for r in records if r.kind == "approve" and r.seq < starts[0].seq]
        assert approvals, f"plan {plan.plan_id} ran without an approval record"
        if self.host.needs_person(plan):
            assert approvals[-1].outcome["by"] == "person", f"plan {plan.plan_id} needed a person; approved by {approvals[-1].outcome}"

    @rule(result=applied)
    def undo(self, result: Any) -> None:
        FIGURES["steps"] += 1
        if result is not None:
            with contextlib.suppress(ProximoError):
                self.portal.call(self.host.undo, result.ledger.seq, self.world.actor)

    @rule()
    def restart(self) -> None:
        """The host closes and opens again on the same state folder (a new process would see the same)."""
        FIGURES["steps"] += 1
        self._close()
        self._open()

    @precondition(lambda self: self.faults < 3)
    @rule(fault=st.sampled_from(FAULTS))
    def fault(self, fault: dict[str, Any]) -> None:
        FIGURES["steps"] += 1
        FIGURES["faults"] += 1
        self.faults += 1
        self.world.sim.inject_fault(**fault)

    @precondition(lambda self: not self.sealed and self.host.ledger.head().seq > 0)
    @rule(plan=plans, newest=st.booleans())
    def tamper(self, plan: Any, newest: bool) -> None:
        """Someone with a shell edits a ledger row (drops the append-only trigger first). Verification finds it, the
        plan it touches is refused with no write, and a person seals the ledger before anything runs again."""
        FIGURES["steps"] += 1
        FIGURES["tampers"] += 1
        own = self.host.ledger.find(plan_id=plan.plan_id) if plan is not None else []
        target = own[0].seq if own and not newest else self.host.ledger.head().seq
        db = sqlite3.connect(self.host.ledger.path)
        try:
            db.execute("DROP TRIGGER records_no_update")
            db.execute("UPDATE records SET outcome = ? WHERE seq = ?", ('{"forged": true}', target))
            db.commit()
        finally:
            db.close()
        assert not self.host.ledger.verify().ok
        if plan is not None:
            before = self.writes()
            try:
                self.portal.call(self.host.apply, plan.plan_id, self.world.actor)
            except ProximoError:
                FIGURES["sequence_refusals"] += 1
            else:
                raise AssertionError(f"plan {plan.plan_id} was applied on a tampered ledger")
            assert self.writes() == before
        self.host.seal_ledger(self.world.actor, "tampered in the model-based test", approver="tester")
        self._mcp_cm.__exit__(None, None, None)  # the MCP session's host reopens on the new chain, as a restart would
        self._mcp_cm = self.portal.wrap_async_context_manager(_client(self))
        self.mcp = self._mcp_cm.__enter__()
        self.sealed = True  # once a sequence: what follows runs on the new chain

    # --- invariants ----------------------------------------------------------------------------------------

    @invariant()
    def writes_are_exactly_the_steps_of_applies_that_ran(self) -> None:
        assert self.writes() == self.writes_expected, (self.writes(), self.writes_expected, self.world.sim.requests)

    @invariant()
    def the_ledger_verifies(self) -> None:
        result = self.host.ledger.verify()
        assert result.ok, result.reason


Pipeline.TestCase.settings = settings(max_examples=int(os.environ.get("PROXIMO_HYPOTHESIS_SEQUENCES", "12")), stateful_step_count=14)
test_the_pipeline_holds_under_random_sequences = Pipeline.TestCase
