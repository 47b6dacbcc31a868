"""Approving a plan at a terminal: with an approver's credential (local mode), or over the service's socket.

A terminal alone proves nothing (an agent can drive a pseudo-terminal): the credential, or the unix account the
service's socket reports, is what counts, and the host (or the service) checks it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from pathlib import Path

import click
import msgspec

from .._render import print_plan
from .._settings import Settings
from .._types import Plan
from ..errors import BadInput, NotApproved, Refused
from ..service import APPROVE_SOCKET, ask_service
from ..trust._ledger import Actor
from ._common import Ask, ask_terminal, console

if TYPE_CHECKING:
    from ..trust._pipeline import Host


TRIES = 3  # unclear answers before the prompt gives up (declined): a person who means yes types it


def confirm(plan: Plan, ask: Ask, echo: Callable[[str], None]) -> tuple[bool, str | None]:
    """Ask until the answer is clear: ``yes`` or ``no`` (CRITICAL: the target's name typed exactly, or ``no``).
    Anything else (``y``, a typo) asks again, at most TRIES times, then declines. Returns (approved, typed name)."""
    critical = plan.risk.value == "CRITICAL"
    prompt = (f"CRITICAL: type the target's name ({plan.target}) to approve, or 'no'" if critical
              else f"Approve {plan.tool} ({plan.risk.value})? type 'yes' or 'no'")
    for left in range(TRIES - 1, -1, -1):
        answer = ask(prompt, False).strip()
        if answer.lower() == "no":
            return False, None
        if critical and answer == plan.target:
            return True, answer
        if not critical and answer.lower() == "yes":
            return True, None
        if left:
            echo(f"{'that is not ' + repr(plan.target) if critical else 'please answer yes or no'} "
                 f"({left} {'try' if left == 1 else 'tries'} left)")
    echo(f"no clear answer after {TRIES} tries")
    return False, None


async def approve_at_terminal(host: Host, plan_id: str, actor: Actor, *, approver: str | None = None,
                              ask: Ask | None = None) -> None:
    """Show the plan, ask the person to confirm it, then for their approver credential.

    A terminal alone proves nothing (an agent can drive a pseudo-terminal): the credential is what counts, and the
    host checks it. ``ask`` stands in for the terminal in tests.
    """
    plan = host.get_plan(plan_id)
    # nobody is asked about a plan that is applied, declined, blocked, expired, or stale: the host reads the cluster
    # (as apply does) before the person reads a plan the cluster no longer matches
    await host.check_open(plan)
    print_plan(console(), plan)
    if ask is None:
        if not sys.stdin.isatty():
            raise BadInput("approve needs a person at an interactive terminal (stdin is not a TTY)")
        ask = ask_terminal
    names = host.approvers.names()
    if not names:
        raise BadInput("no approver is set up: a person runs `proximo approver add NAME` (with --sim for the simulated "
                       "cluster) once, choosing a passphrase the agent does not know; then `proximo approve` asks for it")
    approved, typed = confirm(plan, ask, lambda line: click.echo(line, err=True))
    if not approved:
        host.deny(plan_id, actor, "declined at the terminal")
        click.echo("declined: recorded in the ledger", err=True)
        sys.exit(3)
    name, credential = ask_credential(host, ask, approver)
    host.approve(plan_id, actor, credential, typed_target=typed)
    click.echo(f"approved {plan_id} as {name}: now `proximo apply {plan_id}`", err=True)


def ask_credential(host: Host, ask: Ask, approver: str | None) -> tuple[str, Any]:
    """The approver's name, passphrase and TOTP code, asked at the terminal: (name, Credential)."""
    names = host.approvers.names()
    if not names:
        raise BadInput("no approver is set up: a person runs `proximo approver add NAME` once, choosing a passphrase the "
                       "agent does not know")
    name = approver or (names[0] if len(names) == 1 else ask(f"Approver ({', '.join(names)})", False).strip())
    passphrase = ask(f"Passphrase of approver {name}", True)
    stored = host.approvers.get(name)
    code = ask(f"TOTP code of approver {name}", False) if stored is not None and stored.totp else ""
    from ..trust._pipeline import Credential  # the pipeline comes with the host; `--help` needs neither

    return name, Credential(name, passphrase, code)


def unfreeze_at_terminal(host: Host, actor: Actor, *, approver: str | None = None, ask: Ask | None = None) -> None:
    """Let applies run again: a person at a terminal with their approver credential (a terminal alone proves nothing)."""
    frozen = host.frozen()
    if frozen is None:
        raise Refused("applies are not frozen")
    click.echo(f"applies are frozen since ledger #{frozen.seq}: {frozen.outcome.get('reason')}", err=True)
    if ask is None:
        if not sys.stdin.isatty():
            raise BadInput("unfreeze needs a person at an interactive terminal (stdin is not a TTY)")
        ask = ask_terminal
    name, credential = ask_credential(host, ask, approver)
    record = host.unfreeze(actor, credential)
    click.echo(f"unfrozen by {name} (ledger #{record.seq}): applies may run again", err=True)




def service_socket(settings: Settings) -> Path | None:
    """approve.sock, when a Proximo service runs under another account (then approvals go there)."""
    path = settings.service_dir / APPROVE_SOCKET
    return path if path.exists() else None


def approve_over_socket(path: Path, plan_id: str, ask: Ask, echo: Callable[[str], None]) -> None:
    """``proximo approve`` in service mode: the service shows the plan, the person confirms, their account approves."""
    shown = ask_service(path, {"op": "show", "plan_id": plan_id})
    if not shown.get("ok"):
        raise Refused(str(shown.get("error")))
    plan = msgspec.convert(shown["plan"], Plan)
    print_plan(console(), plan)
    approved, typed = confirm(plan, ask, echo)
    if approved:
        request = {"op": "approve", "plan_id": plan_id, **({"typed_target": typed} if typed is not None else {})}
    else:
        ask_service(path, {"op": "deny", "plan_id": plan_id, "reason": "declined at the terminal"})
        echo("declined: recorded in the ledger")
        sys.exit(3)
    answer = ask_service(path, request)
    if not answer.get("ok"):
        raise NotApproved(str(answer.get("error")))
    echo(f"approved {plan_id} (ledger record #{answer.get('seq')}): the agent's proximo_apply can run it now")
