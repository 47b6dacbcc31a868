"""The executor: the only code in Proximo that sends a state-changing request to Proxmox.

The host calls it from ``Host.apply`` alone, after the plan was found stored, unmodified, unexpired,
approved and fresh. Nothing else holds the writing side of the client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from .._types import ApiCall, SshExec, Step
from ..pve._calls import TaskTimeoutError, is_upid, writing
from ..errors import NotModelled, PveApiError, PveConnectionError

Progress = Callable[[str], Awaitable[None] | None]


class StepResult(msgspec.Struct, frozen=True, omit_defaults=True):
    step: str
    ok: bool
    data: Any = None
    upid: str = ""
    exitstatus: str = ""
    error: str = ""
    log_tail: list[str] = []
    # an SshExec step's stdout and stderr: for the caller only; the ledger keeps their sizes and hashes (in ``data``)
    output: dict[str, str] | None = None

    def for_ledger(self) -> dict[str, Any]:
        """What the ledger keeps of this result: everything but a command's output."""
        data = msgspec.to_builtins(self)
        data.pop("output", None)
        return data


class Executor:
    def __init__(self, client: Any, ssh: Any = None) -> None:
        self._client = client
        self._ssh = ssh  # proximo.trust._ssh.SshRunner: runs SshExec steps (the lxc-exec pack); None: refused
        # From here on the client refuses writes that do not come from ``run`` (see _client.writing).
        self._permit = client.take_write_permit()

    async def run(self, step: Step, progress: Progress | None = None,
                  on_task: Callable[[str, str, list[str]], None] | None = None) -> StepResult:
        """Send one step; a task's progress goes to ``progress`` (a line) and ``on_task(upid, status, new_lines)``."""
        if isinstance(step, SshExec) and self._ssh is not None:
            ok, record, output, error = await self._ssh.run(step)
            return StepResult(step=step.describe(), ok=ok, data=record, error=error, output=output or None)
        if not isinstance(step, ApiCall):
            raise NotModelled(f"{step.describe()}: no pack that runs this kind of step is enabled")
        label = step.describe()
        try:
            with writing(self._permit):
                data = await self._client.send(step.method, step.path, step.params)
        except (PveApiError, PveConnectionError) as exc:
            return StepResult(step=label, ok=False, error=str(exc))
        if not is_upid(data):
            return StepResult(step=label, ok=True, data=data)
        node = data.split(":")[1]

        async def report(status: str, lines: list[str]) -> None:
            if on_task is not None:
                on_task(data, status, lines)
            if progress is not None:
                out = progress(f"{label}: {status}" + (f" - {lines[-1]}" if lines else ""))
                if out is not None:
                    await out

        try:
            task = await self._client.wait_task(node, data, on_progress=report)
        except (PveApiError, PveConnectionError, TaskTimeoutError, ValueError) as exc:
            return StepResult(step=label, ok=False, upid=data, error=f"waiting on {data}: {exc}")
        return StepResult(step=label, ok=task.ok, upid=data, exitstatus=task.exitstatus,
                          error="" if task.ok else f"task failed: {task.exitstatus}", log_tail=task.log[-20:])
