"""The console's pages, rendered on the server as whole HTML documents (no template engine, no front-end build).

Every value from a plan, the ledger or a form goes through :func:`html.escape`; the pages load one style sheet and
one small script from the console itself (the Content-Security-Policy allows nothing else).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from html import escape as e
from typing import Any, get_args

from .._types import Plan
from ..trust._ledger import LedgerKind, LedgerRecord, redact
from ._auth import Session
from ._picture import blast_radius_svg, effect_colour, legend
from ._waiting import WaitingPlan
from ..model import ClusterModel

ISO = "%Y-%m-%dT%H:%M:%SZ"


def _when(iso: str, now: float) -> str:
    """``iso`` as "4 min ago" / "in 26 min" beside the time itself."""
    try:
        then = dt.datetime.strptime(iso[:19] + "Z", ISO).replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return e(iso)
    delta = int(then - now)
    size = abs(delta)
    amount = f"{size} s" if size < 120 else f"{size // 60} min" if size < 7200 else f"{size // 3600} h"
    words = f"in {amount}" if delta > 0 else f"{amount} ago"
    return f'<time datetime="{e(iso)}" title="{e(iso)}">{words}</time>'


def _risk(risk: str) -> str:
    return f'<span class="risk risk-{e(risk)}">{e(risk)}</span>'


def layout(title: str, body: str, *, session: Session | None = None, current: str = "") -> str:
    nav = ""
    if session is not None:
        links = [("/", "Waiting plans", "waiting"), ("/ledger", "Ledger", "ledger")]
        items = "".join(f'<li><a href="{href}"{" aria-current=page" if key == current else ""}>{text}</a></li>'
                        for href, text, key in links)
        nav = (f'<nav aria-label="Console"><ul>{items}</ul></nav>'
               f'<div class="who"><span>Signed in as <strong>{e(session.approver)}</strong></span>'
               f'<form method="post" action="/signout">{csrf_field(session.csrf)}<button type="submit">Sign out</button></form></div>')
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{e(title)} · Proximo console</title>
<link rel="stylesheet" href="/static/console.css">
<script src="/static/console.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><a class="brand" href="/">Proximo console</a>{nav}</header>
<main id="main" tabindex="-1">
{body}
</main>
</body>
</html>
"""


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{e(token)}">'


def notice(text: str, kind: str = "ok") -> str:
    role = "alert" if kind == "bad" else "status"
    return f'<p class="notice {kind}" role="{role}">{e(text)}</p>' if text else ""


# --- sign-in --------------------------------------------------------------------------------------------------


def signin_page(token: str, *, error: str = "", name: str = "", next_path: str = "/") -> str:
    body = f"""<div class="signin">
<h1>Sign in as an approver</h1>
{notice(error, "bad")}
<p class="hint">Your approver name and passphrase (set with <code>proximo approver add</code>), and the code from
your authenticator app if your approver has one. The agent's bearer token opens nothing here.</p>
<form method="post" action="/signin" class="stack">
{csrf_field(token)}
<input type="hidden" name="next" value="{e(next_path)}">
<label for="name">Approver name</label>
<input type="text" id="name" name="name" autocomplete="username" autocapitalize="none" spellcheck="false" required
 value="{e(name)}">
<label for="passphrase">Passphrase</label>
<input type="password" id="passphrase" name="passphrase" autocomplete="current-password" required>
<label for="code">Authenticator code <span class="muted">(only if your approver has one)</span></label>
<input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" maxlength="8">
<button type="submit">Sign in</button>
</form>
</div>"""
    return layout("Sign in", body)


# --- waiting plans --------------------------------------------------------------------------------------------


def waiting_rows(plans: list[WaitingPlan], now: float) -> str:
    if not plans:
        return '<tr><td colspan="6">No plan is waiting for a person.</td></tr>'
    return "\n".join(
        f'<tr data-plan="{e(p.plan_id)}"><td><a href="/plan/{e(p.plan_id)}">{e(p.plan_id)}</a></td><td>{_risk(p.risk)}</td>'
        f"<td><code>{e(p.tool)}</code></td><td>{e(p.target) or '-'}</td><td>{_when(p.created_at, now)}</td>"
        f"<td>{_when(p.expires_at, now)}</td></tr>"
        for p in plans)


def waiting_page(plans: list[WaitingPlan], now: float, session: Session, auto_approve: str) -> str:
    body = f"""<h1>Plans waiting for a person</h1>
<p class="hint">Plans above auto-approval ({e(auto_approve)}) that nobody has approved or declined yet, newest first.
This list updates by itself when an agent makes a plan.</p>
<p id="live-status" class="hint" role="status" aria-live="polite">{len(plans)} plan(s) waiting.</p>
<div class="scroll"><table>
<caption class="muted">Waiting plans</caption>
<thead><tr><th scope="col">Plan</th><th scope="col">Risk</th><th scope="col">Tool</th><th scope="col">Target</th>
<th scope="col">Made</th><th scope="col">Expires</th></tr></thead>
<tbody data-waiting>
{waiting_rows(plans, now)}
</tbody></table></div>"""
    return layout("Waiting plans", body, session=session, current="waiting")


# --- a plan ---------------------------------------------------------------------------------------------------


def _records_table(records: Iterable[LedgerRecord], *, link_plans: bool) -> str:
    rows = []
    for r in records:
        who = e(r.actor.face) + (f" · {e(r.actor.client)}" if r.actor.client else "")
        approver = r.outcome.get("approver")
        about = ", ".join(f"{k}={v}" for k, v in _outcome_summary(r).items())
        plan = (f'<a href="/plan/{e(r.plan_id)}">{e(r.plan_id)}</a>' if link_plans and r.plan_id else e(r.plan_id or "-"))
        rows.append(f"<tr><td>{r.seq}</td><td><time datetime=\"{e(r.time)}\">{e(r.time)}</time></td><td>{e(r.kind)}</td>"
                    f"<td><code>{e(r.tool) or '-'}</code></td><td>{plan}</td><td>{who}</td>"
                    f"<td>{e(str(approver)) if approver else '-'}</td><td class=\"reason\">{e(about)}</td></tr>")
    if not rows:
        rows.append('<tr><td colspan="8">No records.</td></tr>')
    return ('<div class="scroll"><table><thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Kind</th>'
            '<th scope="col">Tool</th><th scope="col">Plan</th><th scope="col">Face · client</th><th scope="col">Approver</th>'
            '<th scope="col">Outcome</th></tr></thead><tbody>' + "\n".join(rows) + "</tbody></table></div>")


def _outcome_summary(record: LedgerRecord) -> dict[str, Any]:
    keep = ("risk", "by", "channel", "reason", "ok", "blocked", "declined", "mismatches")
    return {k: v for k, v in redact(record.outcome).items() if k in keep and v not in (None, "", [])}


def plan_page(plan: Plan, session: Session, *, now: float, model: ClusterModel | None, freshness: str, fresh: bool,
              decision: str, can_decide: bool, records: list[LedgerRecord], message: str = "", error: str = "",
              typed: str = "") -> str:
    critical = plan.risk.value == "CRITICAL"
    params = redact(plan.params)
    args = " ".join(f"{k}={v}" for k, v in params.items())
    facts = [("Risk", _risk(plan.risk.value)), ("Tool", f"<code>{e(plan.tool)}</code>"),
             ("Parameters", f"<code>{e(args) or '-'}</code>"), ("Target", e(plan.target) or "-"),
             ("Made", f"{_when(plan.created_at, now)} ({e(plan.created_at)})"),
             ("Expires", f"{_when(plan.expires_at, now)} ({e(plan.expires_at)})"), ("Cluster", e(plan.source)),
             ("Still fresh?", f'<span id="freshness">{e(freshness)}</span>'), ("Decision", e(decision)),
             ("Undo", "reversible: see below" if plan.reversible else f"NO UNDO: {e(plan.undo_note)}")]
    if not plan.complete:
        facts.append(("Incomplete", f"the token cannot see {e(', '.join(plan.unseen))}: more may be affected"))
    impacts = "\n".join(
        f'<tr><td><code>{e(i.target)}</code></td><td>{_swatch(_fill(i.effect))}'
        f"{e(i.effect)}</td><td>{_risk(i.floor().value)}</td><td class=\"reason\">{e(i.reason)}</td>"
        f"<td>{'yes' if i.needs_person else ''}{' · blocks' if i.blocks else ''}</td></tr>" for i in plan.impacts
    ) or '<tr><td colspan="5">Nothing beyond the named object.</td></tr>'
    keys = "".join(f'<li>{_swatch(fill)}{e(effect)}</li>'
                   for effect, fill, _ in legend(plan))
    steps = "".join(f'<li><code class="call">{e(s.describe())}</code></li>' for s in plan.steps)
    undo = ("<ol>" + "".join(f"<li><code>{e(s.describe())}</code></li>" for s in plan.undo) + "</ol>"
            if plan.undo else f"<p>No undo: {e(plan.undo_note)}</p>")
    blockers = ("<h2>Blockers</h2><ul>" + "".join(f"<li>{e(b)}</li>" for b in plan.blockers) + "</ul>") if plan.blockers else ""
    notes = ("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in plan.notes) + "</ul>") if plan.notes else ""
    decide = ""
    if can_decide:
        if critical:
            approve_fields = (f'<label for="target">Type the target\'s name to approve: <code>{e(plan.target)}</code></label>'
                              f'<p class="hint" id="target-hint">CRITICAL: this cannot be undone or locks people out. '
                              f'Anything but the exact name refuses.</p>'
                              f'<input type="text" id="target" name="target" required autocomplete="off" spellcheck="false" '
                              f'aria-describedby="target-hint" value="{e(typed)}">')
        else:
            approve_fields = '<p class="hint">Approving lets the agent apply exactly the steps above, once.</p>'
        decide = f"""<h2 id="decide">Your decision</h2>
<div class="decide-wrap">
<form method="post" action="/plan/{e(plan.plan_id)}/approve" class="decide" id="approve-form">
<fieldset><legend>Approve as {e(session.approver)}</legend>
{csrf_field(session.csrf)}
{approve_fields}
<button type="submit" class="approve">Approve</button>
</fieldset></form>
<form method="post" action="/plan/{e(plan.plan_id)}/deny" class="decide" id="deny-form">
<fieldset><legend>Deny</legend>
{csrf_field(session.csrf)}
<label for="reason">Reason (kept in the ledger)</label>
<textarea id="reason" name="reason" rows="2" required maxlength="1000"></textarea>
<button type="submit" class="deny">Deny</button>
</fieldset></form>
</div>"""
    body = f"""<h1>Plan {e(plan.plan_id)}: <code>{e(plan.tool)}</code> {e(plan.target)}</h1>
{notice(message, "ok")}{notice(error, "bad")}
{'' if fresh else notice("Not open for a decision: " + freshness, "warn")}
<dl class="facts">{''.join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)}</dl>
{decide}
<h2>Blast radius</h2>
<p class="hint">Each affected object is filled in its effect's colour, with an edge from the changed object.
{'The cluster could not be read, so only the affected objects are drawn.' if model is None else ''}</p>
<ul class="legend" aria-label="Effects">{keys}</ul>
<figure class="radius-wrap">{blast_radius_svg(plan, model)}</figure>
<div class="scroll"><table>
<caption class="muted">The blast radius as a table</caption>
<thead><tr><th scope="col">Affected</th><th scope="col">Effect</th><th scope="col">Risk</th><th scope="col">Why</th>
<th scope="col">Person only</th></tr></thead><tbody>{impacts}</tbody></table></div>
<h2>Exact API calls</h2>
<ol>{steps or '<li>none</li>'}</ol>
{blockers}{notes}
<h2>The undo</h2>
{undo}
<h2>This plan in the ledger</h2>
{_records_table(records, link_plans=False)}"""
    return layout(f"Plan {plan.plan_id}", body, session=session)


def _swatch(fill: str) -> str:
    """A colour sample (an SVG presentation attribute: the Content-Security-Policy allows no inline style)."""
    return (f'<svg class="swatch" width="16" height="16" aria-hidden="true" focusable="false"><rect width="16" height="16" '
            f'rx="3" fill="{e(fill)}" stroke="#111827"/></svg>')


def _fill(effect: str) -> str:
    return effect_colour(effect)[0]


# --- the ledger -----------------------------------------------------------------------------------------------


KINDS: tuple[str, ...] = get_args(LedgerKind)


def ledger_page(records: list[LedgerRecord], filters: dict[str, str], session: Session, *, chain: str, chain_ok: bool,
                anchor: str, limit: int) -> str:
    kinds = "".join(f'<option value="{k}"{" selected" if filters.get("kind") == k else ""}>{k}</option>' for k in KINDS)
    body = f"""<h1>Ledger</h1>
{notice("Chain: " + chain, "ok" if chain_ok else "bad")}
<p class="hint" id="anchor">Last anchor: {e(anchor)}</p>
<form method="get" action="/ledger" class="filters" role="search" aria-label="Filter the ledger">
<div><label for="f-kind">Kind</label><select id="f-kind" name="kind"><option value="">any</option>{kinds}</select></div>
<div><label for="f-tool">Tool</label><input type="text" id="f-tool" name="tool" value="{e(filters.get("tool", ""))}"
 placeholder="storage.delete"></div>
<div><label for="f-actor">Actor or approver</label><input type="text" id="f-actor" name="actor"
 value="{e(filters.get("actor", ""))}" placeholder="console, mcp, alice"></div>
<div><label for="f-since">From (UTC)</label><input type="datetime-local" id="f-since" name="since"
 value="{e(filters.get("since", ""))}"></div>
<div><label for="f-until">Until (UTC)</label><input type="datetime-local" id="f-until" name="until"
 value="{e(filters.get("until", ""))}"></div>
<div><button type="submit">Filter</button> <a href="/ledger">clear</a></div>
</form>
<p class="hint">The newest {limit} matching records, newest first.</p>
{_records_table(records, link_plans=True)}"""
    return layout("Ledger", body, session=session, current="ledger")


def message_page(title: str, text: str, session: Session | None = None) -> str:
    return layout(title, f"<h1>{e(title)}</h1>{notice(text, 'bad')}<p><a href=\"/\">Back to the waiting plans</a></p>",
                  session=session)
