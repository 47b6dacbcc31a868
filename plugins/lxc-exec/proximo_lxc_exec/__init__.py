"""Proximo's lxc-exec pack: a command inside a container (``pct exec`` over ssh), opt-in and fail closed.

Registered through the ``proximo`` entry point group. Pure: its tools describe ``SshExec`` steps; the host checks
them (PROXIMO_ENABLE_EXEC, PROXIMO_EXEC_ALLOW, the container and its node's address) and only the host's executor
connects (proximo/trust/_ssh.py). See docs/packs/lxc-exec.md.
"""

from __future__ import annotations

from typing import Any

import proximo
from proximo import ApiCall, Irreversible
from proximo.model import ClusterModel

from ._tools import TOOLS


@proximo.hookimpl
def proximo_register_tools(register) -> None:  # type: ignore[no-untyped-def]
    for spec in TOOLS.values():
        register(spec)


@proximo.hookimpl
def proximo_undo(change: Any, before: ClusterModel, after: ClusterModel) -> list[Any] | Irreversible | None:
    """ct.exec with snapshot_first: roll back to the snapshot taken before the command; otherwise nothing undoes it."""
    if change.tool not in TOOLS:
        return None
    for step in change.steps:
        if isinstance(step, ApiCall) and step.method == "POST" and step.path.endswith("/snapshot"):
            return [ApiCall("POST", f"{step.path}/{step.params['snapname']}/rollback", {})]
    if change.tool == "ct.logs":
        return Irreversible("reading logs changes nothing")
    return Irreversible("a command run inside a container cannot be undone by Proximo (snapshot_first=true takes an "
                        "undo point first)")
