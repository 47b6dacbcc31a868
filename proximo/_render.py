"""Rich terminal output for plans, answers, apply results and ledger records (``--json`` skips this)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._clusters import SINGLE
from .trust._ledger import LedgerRecord, VerifyResult, redact
from ._types import Plan, Risk

if TYPE_CHECKING:  # the pipeline brings the HTTP stack; rendering only reads these
    from .trust._pipeline import Answer, ApplyResult

RISK_STYLE = {Risk.LOW: "green", Risk.MEDIUM: "yellow", Risk.HIGH: "bold red", Risk.CRITICAL: "bold white on red"}


def plan_headline(plan: Plan) -> str:
    """The one line a person reads first, e.g. ``PLAN p-... storage.delete - RISK_HIGH``."""
    flags = [f"RISK_{plan.risk.value}"]
    if plan.blocked:
        flags.append("BLOCKED")
    if not plan.complete:
        flags.append("INCOMPLETE")
    flags.append("reversible" if plan.reversible else "NO UNDO")
    args = " ".join(f"{k}={v}" for k, v in given(redact(plan.params)).items())
    return f"PLAN {plan.plan_id} {plan.tool} {args} - " + " / ".join(flags)


def given(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters a caller gave: a tool's struct sets every other field to None."""
    return {k: v for k, v in params.items() if v is not None}


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan document (docs/architecture.md, "The plan document"), as faces show it: secret params (passwords,
    keyrings) redacted.

    The stored plan keeps them, because apply must send them; nothing a person or an agent reads does.
    """
    data = msgspec.to_builtins(plan)
    data["params"] = redact(data["params"])
    for key in ("steps", "undo"):
        for step in data.get(key) or []:
            if isinstance(step.get("params"), dict):
                step["params"] = redact(step["params"])
    return data


def print_plan(console: Console, plan: Plan) -> None:
    console.print(Text(plan_headline(plan), style=RISK_STYLE[plan.risk]))
    if plan.cluster is not None and plan.cluster.name != SINGLE:  # one of several clusters: say which
        where = ", ".join(part for part in (plan.cluster.url, plan.cluster.id) if part)
        console.print(f"on cluster {plan.cluster.name}" + (f" ({where})" if where else ""), markup=False)
    if plan.impacts:
        console.print(f"affected (cluster-wide): {len(plan.impacts)}")
        table = Table(show_header=False, box=None, padding=(0, 1))
        for impact in plan.impacts:
            table.add_row(impact.target, Text(impact.effect, style="red"), impact.reason)
        console.print(table)
    else:
        console.print("affected (cluster-wide): nothing beyond the named object")
    for blocker in plan.blockers:
        console.print(Text(f"blocked: {blocker}", style="bold red"))
    if plan.unseen:
        console.print(Text(f"incomplete: the token cannot see {', '.join(plan.unseen)}", style="red"))
    console.print("steps:")
    for step in plan.steps:
        console.print(f"  {step.describe()}", markup=False)
    if plan.undo is not None:
        console.print("undo:")
        for step in plan.undo:
            console.print(f"  {step.describe()}", markup=False)
    else:
        console.print(f"undo: none ({plan.undo_note})", markup=False)
    for note in plan.notes:
        console.print(f"note: {note}", markup=False)
    ledger = f"ledger #{plan.ledger.seq} {plan.ledger.head[:12]}" if plan.ledger else ""
    console.print(Text(f"expires {plan.expires_at}  {ledger}", style="dim"))


def print_next(console: Console, plan: Plan, *, person: bool, offline: bool) -> None:
    """The command to run next, so a person need not look it up."""
    if plan.blocked:
        line = "next: nothing to apply: the plan is blocked (see above)"
    elif offline:
        line = "next: made on a snapshot: plan it again against the cluster to apply it"
    elif person:
        line = f"next: a person approves it (proximo approve {plan.plan_id}), then: proximo apply {plan.plan_id}"
    else:
        line = f"next: proximo apply {plan.plan_id}"
    console.print(Text(line, style="bold"))


def print_answer(console: Console, answer: Answer, *, columns: tuple[str, ...] = (), wide: bool = False) -> None:
    """A list of rows as a table that fits the terminal: ``columns`` (the tool's own) first, then the others while
    they fit; a line says what was left out and how to see it. ``wide``: every column."""
    data = msgspec.to_builtins(answer.data)
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        keys: list[str] = []
        for row in data:
            keys += [k for k in row if k not in keys]
        shown = fit_columns(data, keys, columns, 1 << 30 if wide else console.width)
        table = Table(*shown, box=None, padding=(0, 1), pad_edge=False, header_style="bold underline")
        for row in data:
            table.add_row(*(_cell(row.get(k), k) for k in shown))
        # --wide: as wide as the rows are (the terminal scrolls or wraps them), never squeezed into its width
        natural = sum(max(len(k), *(len(_cell(r.get(k), k)) for r in data)) + 2 for k in shown)
        out = console if not wide or natural <= console.width else Console(
            file=console.file, width=natural, highlight=False, soft_wrap=True, force_terminal=console.is_terminal)
        out.print(table)
        dropped = [k for k in keys if k not in shown]
        if dropped:
            console.print(Text(f"{len(dropped)} more columns ({', '.join(dropped)}): --wide shows them, --json shows "
                               "everything", style="dim"), soft_wrap=False)
    else:
        console.print_json(data=data)
    if answer.ledger.chain == "unreachable":
        console.print(Text("ledger unreachable: this read is not witnessed by a ledger head", style="yellow"))
    else:
        console.print(Text(f"ledger head #{answer.ledger.seq} {answer.ledger.head[:12]}", style="dim"))


# A tool that declares no columns: what names a row, where it is and how it is, first.
FALLBACK_FIRST = ("vmid", "name", "id", "node", "status")
_CELL_MAX = 40  # a column wider than this wraps rather than pushes the others out


def fit_columns(rows: list[dict[str, Any]], keys: list[str], preferred: tuple[str, ...], width: int) -> list[str]:
    """The columns to show in ``width`` characters: the preferred ones present (always), then the rest in order,
    each while it still fits."""
    first = [k for k in preferred or FALLBACK_FIRST if k in keys] or keys[:1]
    chosen = list(first)
    used = sum(_width(rows, k) for k in chosen)
    for key in keys:
        if key in chosen:
            continue
        need = _width(rows, key)
        if used + need <= width:
            chosen.append(key)
            used += need
    return first + [k for k in keys if k in chosen and k not in first]


def _width(rows: list[dict[str, Any]], key: str) -> int:
    widest = max((len(_cell(r.get(key), key)) for r in rows), default=0)
    return min(max(widest, len(key)), _CELL_MAX) + 2  # and the padding between columns


# Fields Proxmox gives in bytes (GET /cluster/resources, /nodes, .../content): a table shows them as ls -h does.
BYTE_FIELDS = frozenset({"maxmem", "mem", "memhost", "maxdisk", "disk", "diskread", "diskwrite", "netin", "netout", "size",
                         "total", "used", "avail", "maxswap", "swap"})


def human_bytes(value: int) -> str:
    size = float(value)
    for unit in ("", "K", "M", "G", "T"):
        if abs(size) < 1024 or unit == "T":
            return f"{size:.0f}{unit}" if unit == "" or size >= 10 else f"{size:.1f}{unit}"
        size /= 1024
    return str(value)


def _cell(value: Any, key: str = "") -> str:
    if value is None:
        return ""
    if key in BYTE_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        return human_bytes(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return ",".join(str(v) for v in value)  # as Proxmox writes lists in its own config: pve1,pve2
    if isinstance(value, (list, dict)):
        return msgspec.json.encode(value).decode()
    return str(value)


def print_apply(console: Console, result: ApplyResult) -> None:
    style = "green" if result.ok else "bold red"
    console.print(Text(f"APPLY {result.plan_id}: {'OK' if result.ok else 'FAILED'}", style=style))
    for step in result.steps:
        mark = "ok" if step.ok else "FAILED"
        console.print(f"  [{mark}] {step.step}" + (f" ({step.upid})" if step.upid else "") + (f": {step.error}" if step.error else ""),
                      markup=False)
        if isinstance(step.data, dict) and "full-tokenid" in step.data and "value" in step.data:
            # A new API token's secret: shown here once, to the person; the ledger has it redacted.
            console.print(Text(f"      token {step.data['full-tokenid']} secret: {step.data['value']}  "
                               "(shown once: Proximo does not keep it)", style="bold yellow"))
        if step.output is not None:  # a command's output (lxc-exec): shown here; the ledger keeps its sizes and hashes
            data = step.data if isinstance(step.data, dict) else {}
            console.print(Text(f"      exit status {data.get('exit_status')}, {data.get('stdout_bytes', 0)} bytes of stdout, "
                               f"{data.get('stderr_bytes', 0)} of stderr", style="dim"))
            for name in ("stdout", "stderr"):
                if step.output.get(name):
                    console.print(Text(f"      --- {name}", style="dim"))
                    console.print(Text(_printable(step.output[name].rstrip("\n"))), markup=False, highlight=False)
    if result.ok:
        console.print("read back: matches the prediction" if result.matches_prediction
                      else f"read back: differs from the prediction in {', '.join(result.mismatches)}")
    console.print(Text(f"ledger #{result.ledger.seq} {result.ledger.head[:12]}", style="dim"))


def _printable(text: str) -> str:
    """A container's output as a terminal may show it: control characters (escape sequences) but newline and tab
    are replaced, so a command cannot drive the operator's terminal."""
    import unicodedata

    return "".join(ch if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf") else "\ufffd" for ch in text)


def print_record(console: Console, record: LedgerRecord) -> None:
    summary = record.outcome.get("reason") or record.outcome.get("risk") or ("ok" if record.outcome.get("ok") else "")
    console.print(f"#{record.seq:<5} {record.time} {record.kind:<12} {record.tool:<18} {record.plan_id:<15} "
                  f"{record.actor.face}:{record.actor.token_id}  {summary}  {record.hash[:12]}", markup=False, highlight=False)


def print_verify(console: Console, result: VerifyResult) -> None:
    if result.ok:
        console.print(Text(f"ledger OK: {result.records} records, head #{result.head.seq} {result.head.hash[:16]} ({result.head.chain})", style="green"))
    else:
        console.print(Text(f"ledger BROKEN at record {result.first_broken}: {result.reason}", style="bold red"))
