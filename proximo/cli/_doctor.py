"""``proximo doctor``: which deployment this is, what holds in it, and what to fix.

What holds depends on who can read the state directory (docs/trust-model.md): in service mode an agent running as
another account reaches Proximo only over MCP; in local mode an agent with this account's shell can do anything
this account can, the token included. Doctor says which, from what it can observe, and never claims more.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

import msgspec

from ..trust._approvers import ApproverStore
from ..trust._ledger import LedgerError
from .._host import policy_of
from ..service import APPROVE_SOCKET, ServiceUnavailable, ask_service
from .._settings import Settings
from ..trust._state import KEY_FILE, open_ledger
from ..errors import ProximoError

Level = Literal["ok", "warn", "fail"]


class Finding(msgspec.Struct, frozen=True):
    level: Level
    what: str
    detail: str
    fix: list[list[str]] = []  # commands that fix it, as argv: shown quoted for a shell (shlex.join)


class Diagnosis(msgspec.Struct, frozen=True):
    mode: Literal["service", "local"]
    summary: str
    holds: list[str]
    does_not_hold: list[str]
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not any(f.level == "fail" for f in self.findings)


SERVICE_HOLDS = [
    "An agent running as another account cannot read the token, the ledger (or its key and mark), the plans or the "
    "approvers: it reaches Proximo only over MCP (agent.sock, or HTTP with the bearer token).",
    "Above auto-approval, only the accounts in PROXIMO_APPROVERS approve, over approve.sock; the kernel names the "
    "account (SO_PEERCRED), so no pseudo-terminal or forged message can stand in for them.",
    "Apply verifies the ledger (chain from the last checkpoint, high-water mark), the plan against its record, the "
    "approval record, and judges the steps again on the fresh cluster before the first request.",
]
SERVICE_GAPS = [
    "Anyone with root, or with the service's own account, can do all of it: keep them from the agent.",
    "MCP elicitation approvals are as trustworthy as the MCP client that draws the form; `approval = \"person\"` in "
    "the policy file refuses them for HIGH and CRITICAL.",
]
LOCAL_HOLDS = [
    "Against an agent that only speaks MCP: every change is planned, shown, approved above auto-approval, proven in "
    "the ledger, and judged again at apply.",
    "A pseudo-terminal alone approves nothing: approval takes an approver's passphrase (and TOTP code, where set).",
    "Edited, inserted, reordered, deleted or truncated ledger records stop every apply until a person seals the ledger.",
]
LOCAL_GAPS = [
    "An agent with a shell as this account can read the token and call Proxmox itself, read the ledger key, and rewrite "
    "the state directory (approvers included). Nothing in one account can stop that: run Proximo as its own user "
    "(`proximo service install`) and give the agent only `proximo connect`.",
]


def diagnose(settings: Settings) -> Diagnosis:
    findings: list[Finding] = []
    service = _ping(settings.service_dir / APPROVE_SOCKET)
    if service is not None and service.get("uid") != os.getuid():
        you = service.get("you", {})
        findings.append(Finding("ok", "service", f"Proximo runs as {service.get('user')} (uid {service.get('uid')}); "
                                                 f"you are {you.get('user')} (uid {you.get('uid')})"))
        approvers = service.get("approvers") or []
        findings.append(Finding("ok" if approvers else "fail", "approvers",
                                f"PROXIMO_APPROVERS: {', '.join(approvers)}" if approvers
                                else "no account may approve: plans above auto-approval can never run"))
        findings.append(Finding("ok", "you", "you may approve over approve.sock" if you.get("approver")
                                else "you are not an approver"))
        home = Path(str(service.get("home", "")))
        readable = bool(str(home)) and os.access(home, os.R_OK)
        findings.append(Finding("fail" if readable else "ok", "state",
                                f"you can read the service's state directory {home}: fix its owner and mode (0700)" if readable
                                else f"you cannot read the service's state directory {home}"))
        return Diagnosis(mode="service", summary=f"service mode: Proximo runs as {service.get('user')}, agents reach it "
                                                  f"over {settings.service_dir}", holds=SERVICE_HOLDS,
                         does_not_hold=SERVICE_GAPS, findings=findings)
    if service is not None:
        findings.append(Finding("warn", "service", "a Proximo service runs as your own account: an agent with your shell "
                                                   "is the service; run it as its own user"))
    findings += _local_findings(settings)
    return Diagnosis(mode="local", summary=f"local mode: Proximo runs as you ({_me()}), its state in {settings.home}",
                     holds=LOCAL_HOLDS, does_not_hold=LOCAL_GAPS, findings=findings)


def _ping(path: Path) -> dict[str, object] | None:
    if not path.exists():
        return None
    try:
        answer = ask_service(path, {"op": "ping"}, timeout=5)
    except (ServiceUnavailable, OSError, ValueError):
        return None
    service = answer.get("service")
    return service if answer.get("ok") and isinstance(service, dict) else None


def _me() -> str:
    from ..service import account_name

    return account_name(os.getuid())


def _cluster_findings(settings: Settings) -> list[Finding]:
    """Which cluster this account's Proximo talks to; with none, the commands that set one up (a token id holds
    a `!`, which bash expands unless quoted: shlex quotes it)."""
    if settings.clusters:  # PROXIMO_CLUSTERS: checked strictly when read, so each has its URL and token
        return [Finding("ok", "cluster", f"{name}: {c.url} as {c.token_id}" + (" (chosen)" if name == settings.cluster else ""))
                for name, c in settings.clusters.items()]
    if settings.url and settings.token_id:
        return [Finding("ok", "cluster", f"{settings.url} as {settings.token_id}")]
    token = settings.token_id or "proximo@pve!agent"
    user, _, name = token.partition("!")
    return [Finding("warn", "cluster", "no cluster configured (PROXIMO_URL, PROXIMO_TOKEN_ID): on a node, make a token; "
                                       "here, point Proximo at it", [
        ["pveum", "user", "token", "add", user, name, "--privsep", "1"],
        ["pveum", "acl", "modify", "/", "--tokens", token, "--roles", "PVEAuditor"],
        ["export", "PROXIMO_URL=https://pve1.example.org:8006", f"PROXIMO_TOKEN_ID={token}",
         f"PROXIMO_TOKEN_FILE={settings.home / 'token'}"],
    ])]


def _local_findings(settings: Settings) -> list[Finding]:
    out: list[Finding] = []
    home = settings.home
    if not home.exists():
        return [Finding("warn", "state", f"{home} does not exist yet (made on first use, 0700)")]
    info = home.stat()
    mode = stat.S_IMODE(info.st_mode)
    private = not mode & 0o077 and info.st_uid == os.getuid()
    out.append(Finding("ok" if private else "fail", "state", f"{home}: mode {mode:04o}, owner uid {info.st_uid}",
                       [] if private else [["chmod", "700", str(home)]]))
    out += _cluster_findings(settings)
    if settings.token_secret is not None and os.environ.get("PROXIMO_TOKEN_SECRET"):
        out.append(Finding("warn", "token", "PROXIMO_TOKEN_SECRET is in the environment: every process of this account "
                                            "(an agent's too) can read it; use PROXIMO_TOKEN_FILE (0600) or service mode",
                           [["export", f"PROXIMO_TOKEN_FILE={settings.home / 'token'}"], ["unset", "PROXIMO_TOKEN_SECRET"]]))
    elif token_file := os.environ.get("PROXIMO_TOKEN_FILE"):
        try:
            token_mode = stat.S_IMODE(Path(token_file).stat().st_mode)
            out.append(Finding("ok" if not token_mode & 0o077 else "fail", "token", f"{token_file}: mode {token_mode:04o}",
                               [["chmod", "600", token_file]] if token_mode & 0o077 else []))
        except OSError as exc:
            out.append(Finding("fail", "token", f"{token_file}: {exc.strerror}"))
    try:
        with open_ledger(settings) as book:
            checked = book.check()
            keyed = book.chain == "hmac-sha256"
            out.append(Finding("ok" if checked.ok else "fail", "ledger",
                               f"{book.where}: {checked.head.seq} records, {book.chain}; {checked.reason}"))
            out.append(Finding("ok" if keyed else "warn", "ledger key",
                               f"keyed ({settings.home / KEY_FILE} or PROXIMO_LEDGER_KEY)" if keyed
                               else "unkeyed (made before keys were the default): anyone who can write it can rewrite it"))
    except (LedgerError, ProximoError) as exc:
        out.append(Finding("fail", "ledger", str(exc)))
    try:
        approvers = ApproverStore(home).names()
        out.append(Finding("ok" if approvers else "warn", "approvers",
                           f"{len(approvers)}: {', '.join(approvers)}" if approvers
                           else "none: plans above auto-approval wait until a person runs `proximo approver add NAME`",
                           [] if approvers else [["proximo", "approver", "add", _me()]]))
    except ProximoError as exc:
        out.append(Finding("fail", "approvers", str(exc)))
    out.append(Finding("ok" if settings.ledger_anchor else "warn", "anchors",
                       f"PROXIMO_LEDGER_ANCHOR: {settings.ledger_anchor}" if settings.ledger_anchor
                       else "none: nothing outside the database witnesses the shared ledger, and whoever controls the "
                            "database could rewrite it (PROXIMO_LEDGER_ANCHOR)" if settings.db
                       else "none: nothing outside this machine witnesses the ledger (PROXIMO_LEDGER_ANCHOR)"))
    try:
        policy = policy_of(settings)
        out.append(Finding("ok" if policy.approval == "person" else "warn", "policy",
                           "approval = \"person\": HIGH and CRITICAL need a person's own credential" if policy.approval == "person"
                           else "MCP elicitation may approve HIGH and CRITICAL plans (as far as the client is trusted)"))
    except ProximoError as exc:
        out.append(Finding("fail", "policy", str(exc)))
    out.append(Finding("warn", "deployment", "an agent with a shell as this account is not contained: see `does not hold`"))
    return out
