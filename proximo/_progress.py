"""What the host says while it applies a plan, as it happens: a face shows it (the CLI draws it live with rich).

Events, not text: each face decides how to show them, and none reimplements the apply to learn where it is.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec


class Checking(msgspec.Struct, frozen=True, tag="checking"):
    """Before the first request: the ledger, the approval, and the plan judged again on the cluster now."""

    plan_id: str
    steps: int


class StepStarted(msgspec.Struct, frozen=True, tag="step"):
    index: int  # from 1
    total: int
    step: str


class TaskPolled(msgspec.Struct, frozen=True, tag="task"):
    """A step's Proxmox task, at each poll: its status and the log lines new since the last poll."""

    index: int
    upid: str
    status: str
    lines: list[str]


class StepDone(msgspec.Struct, frozen=True, tag="done"):
    index: int
    ok: bool
    upid: str = ""
    error: str = ""


class ReadingBack(msgspec.Struct, frozen=True, tag="read-back"):
    """After the last step: the cluster read again, to compare with the prediction."""


ApplyEvent = Checking | StepStarted | TaskPolled | StepDone | ReadingBack
OnEvent = Callable[[ApplyEvent], None]
