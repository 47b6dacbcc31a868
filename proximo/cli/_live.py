"""``proximo apply``'s live view: each step, its task's UPID, the time it has taken and the last lines of its log,
drawn from the events the host emits while it applies (``proximo._progress``)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from .._progress import ApplyEvent, Checking, ReadingBack, StepDone, StepStarted, TaskPolled

LOG_LINES = 3  # a task's last log lines shown under its step


class _Step:
    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self.ended: float | None = None
        self.upid = ""
        self.status = "sending"
        self.ok: bool | None = None
        self.log: deque[str] = deque(maxlen=LOG_LINES)


class ApplyView:
    """What the apply is doing now, as a rich renderable (``Live`` redraws it)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.total = 0
        self.phase = "checking the ledger, the approval and the cluster"
        self.steps: list[_Step] = []

    def __call__(self, event: ApplyEvent) -> None:
        if isinstance(event, Checking):
            self.total = event.steps
        elif isinstance(event, StepStarted):
            self.total = event.total
            self.steps.append(_Step(event.step))
            self.phase = ""
        elif isinstance(event, TaskPolled) and self.steps:
            step = self.steps[event.index - 1]
            step.upid, step.status = event.upid, event.status or "running"
            step.log.extend(line for line in event.lines if line.strip())
        elif isinstance(event, StepDone) and self.steps:
            step = self.steps[event.index - 1]
            step.ended, step.ok, step.upid = time.monotonic(), event.ok, event.upid or step.upid
            step.status = "ok" if event.ok else f"FAILED: {event.error}"
        elif isinstance(event, ReadingBack):
            self.phase = "reading the cluster back"

    def __rich__(self) -> RenderableType:
        now = time.monotonic()
        lines: list[RenderableType] = []
        for number, step in enumerate(self.steps, 1):
            took = (step.ended or now) - step.started
            style = "green" if step.ok else "bold red" if step.ok is False else "yellow"
            line = Text(f"[{number}/{self.total}] ", style=style)
            line.append(f"{step.label}  {step.status}  {took:.1f}s")
            lines.append(line)
            if step.upid:  # a line of its own: a UPID is longer than the rest put together
                lines.append(Text(f"      task {step.upid}", style="dim"))
            lines += [Text(f"      | {entry}", style="dim") for entry in step.log]
        if self.phase:
            lines.append(Text(f"{self.phase} ... {now - self.started:.1f}s", style="dim"))
        return Group(*lines)


@contextmanager
def live_apply(console: Console) -> Iterator[ApplyView]:
    """The view, redrawn four times a second on a terminal; elsewhere (a pipe, a log) drawn once, at the end."""
    view = ApplyView()
    with Live(view, console=console, refresh_per_second=4, transient=False):
        try:
            yield view
        finally:
            view.phase = ""  # the result (or the error) says how it ended; the steps that ran stay on screen
    if not console.is_terminal and view.steps:
        console.line()  # Live's last drawing ends without one off a terminal
