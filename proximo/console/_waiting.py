"""Which plans wait for a person: made, above auto-approval, unblocked, and neither decided nor applied yet.

The ledger is the one place every face and every process writes to, so the console reads the answer from it, not
from its own memory: a plan an agent makes through another process (``proximo serve``, the A2A face, a service
session) shows up as soon as its ``plan`` record is in the ledger. :class:`WaitingBoard` reads only the records
added since it last looked (the head's seq says whether there are any), so polling it twice a second is cheap.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import msgspec

from .._types import Plan
from ..errors import ProximoError
from ..trust._ledger import ledger_time
from ..trust._pipeline import Host

LOOK_BACK = 86400.0  # seconds of ledger a new console reads at least (plans live PROXIMO_PLAN_TTL, 10 min by default)
DECIDING_KINDS = frozenset({"approve", "apply-start"})  # a declined ``deny`` decides too; any other deny is a refusal


class WaitingPlan(msgspec.Struct, frozen=True):
    plan_id: str
    tool: str
    risk: str
    target: str
    created_at: str
    expires_at: str
    seq: int  # the plan's own record: newest first sorts by it


def _expired(plan: WaitingPlan, now: float) -> bool:
    expires = dt.datetime.strptime(plan.expires_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    return now > expires


class WaitingBoard:
    """The waiting plans, kept up to date from the ledger by :meth:`refresh` (reads only what is new)."""

    def __init__(self, host: Host, clock: Callable[[], float] = time.time) -> None:
        self._host = host
        self._clock = clock
        self._seen = 0  # the last ledger seq read
        self._chain = ""  # a sealed ledger starts a new chain: read it from the start
        self._open: dict[str, WaitingPlan] = {}

    def refresh(self) -> bool:
        """Read the records added since the last look; True when the list may have changed."""
        ledger = self._host.ledger
        head = ledger.head()
        if head.seq < self._seen or ledger.ledger_id != self._chain:
            self._seen, self._chain, self._open = 0, ledger.ledger_id, {}
            # a plan older than its time to live is expired: the first look starts where none could still be open
            back = max(LOOK_BACK, self._host.settings.plan_ttl)
            since = ledger_time(dt.datetime.fromtimestamp(self._clock() - back, dt.UTC))
            self._seen = ledger.first_at(since) - 1
        if head.seq == self._seen:
            return False
        for record in ledger.records(since=self._seen + 1):
            if record.kind in ("plan", "undo") and not record.outcome.get("blocked"):
                plan = self._load(record.plan_id)
                if plan is not None and self._host.needs_person(plan):
                    self._open[plan.plan_id] = WaitingPlan(plan.plan_id, plan.tool, plan.risk.value, plan.target,
                                                           plan.created_at, plan.expires_at, record.seq)
            elif record.kind in DECIDING_KINDS or (record.kind == "deny" and record.outcome.get("declined")):
                self._open.pop(record.plan_id, None)
            self._seen = record.seq
        return True

    def _load(self, plan_id: str) -> Plan | None:
        try:
            return self._host.get_plan(plan_id)
        except ProximoError:  # altered, or made in another ledger: nobody should be asked about it
            return None

    def plans(self) -> list[WaitingPlan]:
        """Newest first; a plan whose time ran out is no longer waiting (apply would refuse it)."""
        now = self._clock()
        return sorted((p for p in self._open.values() if not _expired(p, now)), key=lambda p: -p.seq)
