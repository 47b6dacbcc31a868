"""The console's Starlette app: the guard in front of it, sign-in, the pages, the decisions and the live list.

Every decision goes through the host (``Host.approve`` / ``Host.deny``), so it is the same ledger record as from
any other face, naming the approver and the channel ``console``; apply still checks everything again.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._listening import allowed_names, host_name, not_http
from ..errors import BadInput, NotApproved, ProximoError
from ..trust._anchors import check_anchors, read_anchors
from .._host import HostFactory
from ..trust._ledger import Actor
from ..trust._pipeline import ConsoleSession, Credential, Host
from ._auth import Session, Sessions, SignInLimit, same_token
from ._pages import KINDS, ledger_page, message_page, plan_page, signin_page, waiting_page, waiting_rows
from ._waiting import WaitingBoard

POLL = 0.5  # seconds between looks at the ledger's head for the live list (one indexed query when nothing changed)
STREAM_FOR = 300.0  # an event stream ends after this long and the browser reconnects: no stream outlives its session
MAX_FORM = 16 * 1024
LEDGER_ROWS = 200
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_MINUTE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


@dataclass
class Cookies:
    """The cookie names and flags: over TLS, Secure and the ``__Host-`` prefix (host-only, path /, Secure)."""

    tls: bool

    @property
    def session(self) -> str:
        return "__Host-proximo-console" if self.tls else "proximo-console"

    @property
    def signin(self) -> str:
        return "__Host-proximo-signin" if self.tls else "proximo-signin"

    def set(self, response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.tls, httponly=True, samesite="strict")

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.tls, httponly=True, samesite="strict")


@dataclass
class ConsoleState:
    clock: Callable[[], float]
    host: Host | None = None
    board: WaitingBoard | None = None
    sessions: Sessions = field(init=False)
    limit: SignInLimit = field(init=False)
    # one sign-in checked at a time: scrypt takes 32 MiB and a tenth of a second, a wrong answer another second
    checking: anyio.Lock = field(default_factory=anyio.Lock)

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.clock)
        self.limit = SignInLimit(self.clock)


class ConsoleGuard:
    """In front of every request: the Host header must name this console (DNS rebinding), an ``Authorization``
    header is refused outright (no bearer token, the agent's included, opens anything here), and every answer
    carries the security headers."""

    def __init__(self, app: ASGIApp, *, names: frozenset[str]) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await not_http(self.app, scope, receive, send):
            return
        headers = Headers(scope=scope)
        if host_name(headers.get("host", "")) not in self.names:
            await _plain(send, 421, "this Host is not served here (proximo console --allowed-host)")
            return
        if "authorization" in headers:
            await _plain(send, 401, "the console takes no bearer token (the agent's token opens nothing here): "
                                    "sign in as an approver at /signin")
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = MutableHeaders(scope=message)
                extra["content-security-policy"] = CSP
                extra["x-content-type-options"] = "nosniff"
                extra["x-frame-options"] = "DENY"
                extra["referrer-policy"] = "same-origin"  # "no-referrer" makes a browser send "Origin: null" on a form post
                extra["cross-origin-opener-policy"] = "same-origin"
                extra["cache-control"] = extra.get("cache-control") or "no-store"
            await send(message)

        await self.app(scope, receive, secured)


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": body})


def _static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def build_console(host_factory: HostFactory, *, bind_host: str = "127.0.0.1", allowed_hosts: tuple[str, ...] = (),
                  tls: bool = False, clock: Callable[[], float] = time.time) -> ASGIApp:
    """The console app. The host is opened in its lifespan (``host_factory``), as the other HTTP faces do."""
    state = ConsoleState(clock=clock)
    cookies = Cookies(tls)
    css, js = _static("console.css"), _static("console.js")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with host_factory() as host:
            state.host, state.board = host, WaitingBoard(host, clock)
            try:
                yield
            finally:
                state.host = state.board = None

    def host_of() -> Host:
        assert state.host is not None, "the console's host is opened in its lifespan"
        return state.host

    def signed_in(request: Request) -> Session | None:
        """The request's session, while its approver is still an approver (removing one ends their sessions)."""
        session = state.sessions.get(request.cookies.get(cookies.session))
        if session is not None and host_of().approvers.get(session.approver) is None:
            state.sessions.close_all_of(session.approver)
            return None
        return session

    def html(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status)

    def to_signin(request: Request) -> Response:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/signin?" + urllib.parse.urlencode({"next": path}), status_code=303)

    async def form_of(request: Request) -> dict[str, str]:
        """The posted form (application/x-www-form-urlencoded, small), first value of each field."""
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            raise BadInput("a form post is expected")
        body = await request.body()
        if len(body) > MAX_FORM:
            raise BadInput("the form is too large")
        return {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}

    def same_origin(request: Request) -> bool:
        """A browser names the page a POST comes from; one from another origin is refused (the CSRF token is the
        rule, this a second lock). No Origin (an old client): the token alone decides."""
        origin = request.headers.get("origin")
        if origin is None:
            return True
        return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"

    async def posted(request: Request, session: Session | None) -> tuple[dict[str, str] | None, Response | None]:
        """The form of a POST by a signed-in person with the session's CSRF token; else the refusal to send."""
        if session is None:
            return None, html(message_page("Not signed in", "Sign in as an approver first: nothing was done."), 403)
        try:
            form = await form_of(request)
        except BadInput as exc:
            return None, html(message_page("Refused", str(exc), session), 400)
        if not same_origin(request) or not same_token(form.get("csrf"), session.csrf):
            return None, html(message_page("Refused", "The form's CSRF token is missing or wrong (or it came from another "
                                                      "site): nothing was done. Reload the page and try again.", session), 403)
        return form, None

    # --- sign-in ----------------------------------------------------------------------------------------

    async def signin_form(request: Request) -> Response:
        next_path = _local_path(request.query_params.get("next", "/"))
        if signed_in(request) is not None:
            return RedirectResponse(next_path, status_code=303)
        token = request.cookies.get(cookies.signin) or _new_token()
        # a sign-in that succeeded comes back here with ?kept=check: no session now means the cookie was dropped
        error = ("You signed in, but your browser did not keep the session cookie. Allow cookies for this address "
                 "(docs/console.md).") if request.query_params.get("kept") == "check" else ""
        response = html(signin_page(token, error=error, next_path=next_path))
        cookies.set(response, cookies.signin, token, max_age=3600)
        return response

    async def signin(request: Request) -> Response:
        try:
            form = await form_of(request)
        except BadInput as exc:
            return html(message_page("Refused", str(exc)), 400)
        expected = request.cookies.get(cookies.signin, "")
        if not same_origin(request) or not expected or not same_token(form.get("csrf"), expected):
            return html(message_page("Refused", "The sign-in form's CSRF token is missing or wrong: reload the page."), 403)
        name, next_path = form.get("name", "").strip(), _local_path(form.get("next", "/"))
        address = request.client.host if request.client else "?"
        credential = Credential(name, form.get("passphrase", ""), form.get("code", ""))
        async with state.checking:  # the limit is read and counted under the lock: parallel guesses wait their turn
            wait = state.limit.wait(address, name)
            if wait > 0:
                response = html(signin_page(expected, name=name, next_path=next_path,
                                            error=f"Too many failed sign-ins: try again in {int(wait // 60) + 1} min."), 429)
                response.headers["retry-after"] = str(int(wait) + 1)
                return response
            try:
                approver = await anyio.to_thread.run_sync(host_of().sign_in, credential)
            except NotApproved as exc:
                state.limit.failed(address, name)
                said = str(exc).removesuffix(": nothing was approved")  # nothing is approved at sign-in anyway
                return html(signin_page(expected, name=name, next_path=next_path, error=said), 401)
            state.limit.succeeded(address, name)
        session = state.sessions.open(approver)
        response = RedirectResponse("/signin?" + urllib.parse.urlencode({"kept": "check", "next": next_path}), status_code=303)
        cookies.set(response, cookies.session, session.id)
        cookies.clear(response, cookies.signin)
        return response

    async def signout(request: Request) -> Response:
        session = signed_in(request)
        form, refused = await posted(request, session)
        if refused is not None:
            return refused
        state.sessions.close(request.cookies.get(cookies.session))
        response = RedirectResponse("/signin", status_code=303)
        cookies.clear(response, cookies.session)
        return response

    # --- waiting plans ------------------------------------------------------------------------------------

    def waiting_now() -> list[Any]:
        assert state.board is not None
        state.board.refresh()
        return state.board.plans()

    async def waiting(request: Request) -> Response:
        session = signed_in(request)
        if session is None:
            return to_signin(request)
        return html(waiting_page(waiting_now(), clock(), session, host_of().settings.auto_approve.value))

    async def waiting_fragment(request: Request) -> Response:
        if signed_in(request) is None:
            return Response("sign in first", status_code=401, media_type="text/plain")
        return html(waiting_rows(waiting_now(), clock()))

    async def events(request: Request) -> Response:
        """Server-sent events: ``waiting`` (the plan ids) whenever the list changes, whichever process wrote the
        ledger. The stream ends with the session, or after STREAM_FOR (the browser reconnects)."""
        session = signed_in(request)
        if session is None:
            return Response("sign in first", status_code=401, media_type="text/plain")
        session_id = session.id

        async def stream() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            shown = [p.plan_id for p in waiting_now()]
            started = clock()
            while clock() - started < STREAM_FOR and state.sessions.get(session_id, touch=False) is not None:
                await anyio.sleep(POLL)
                if state.board is None:
                    return
                now = [p.plan_id for p in waiting_now()]
                if now != shown:
                    shown = now
                    yield f"event: waiting\ndata: {json.dumps(now)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})

    # --- a plan ---------------------------------------------------------------------------------------------

    def actor(session: Session) -> Actor:
        return Actor(token_id=host_of().settings.token_id or "-", face="console", client=f"{session.approver} (browser)")

    async def show_plan(request: Request, session: Session, plan_id: str, *, message: str = "", error: str = "",
                        status: int = 200, typed: str = "") -> Response:
        host = host_of()
        try:
            plan = host.get_plan(plan_id)
        except ProximoError as exc:
            return html(message_page("No such plan", str(exc), session), 404)
        state_now = None
        try:
            state_now = await host.check_open(plan)  # applied, declined, blocked, expired, stale: read afresh now
            fresh = True
            freshness = ("yes: the cluster was read just now and nothing this plan rests on has changed" if state_now
                         else "not re-read: this plan's cluster is not open here; apply reads it afresh")
        except ProximoError as exc:
            fresh, freshness = False, str(exc)
        model = state_now.model if state_now is not None else None
        if model is None:
            try:
                model = (await host.state(max_age=host.settings.plan_read_age)).model
            except ProximoError:
                model = None
        approval = host.approval(plan)
        records = host.ledger.find(plan_id=plan.plan_id)
        declined = [r for r in records if r.kind == "deny" and r.outcome.get("declined")]
        if any(r.kind == "apply-start" for r in records):
            decision = "applied (or being applied): see the ledger below"
        elif declined:
            who = declined[-1].outcome.get("approver") or declined[-1].actor.face
            decision = f"declined by {who}: {declined[-1].outcome.get('reason')}"
        elif approval is not None:
            decision = (f"approved by {approval.outcome.get('approver') or 'auto-approval'} through "
                        f"{approval.outcome.get('channel') or 'the policy'} (ledger #{approval.seq}): the agent may apply it")
        elif not host.needs_person(plan):
            decision = f"within auto-approval ({host.settings.auto_approve.value}): apply runs on the agent's word"
        else:
            decision = "waiting for a person"
        can_decide = fresh and host.needs_person(plan) and approval is None
        page = plan_page(plan, session, now=clock(), model=model, freshness=freshness, fresh=fresh, decision=decision,
                         can_decide=can_decide, records=records, message=message, error=error, typed=typed)
        return html(page, status)

    async def plan(request: Request) -> Response:
        session = signed_in(request)
        if session is None:
            return to_signin(request)
        said, seq = request.query_params.get("said", ""), request.query_params.get("seq", "")
        message = {"approved": f"Approved: ledger record #{seq} names you and the console. The agent's apply can run it now.",
                   "denied": f"Denied: ledger record #{seq}. The plan is closed; nothing will apply it."}.get(said, "")
        return await show_plan(request, session, request.path_params["plan_id"], message=message if seq.isdigit() else "")

    async def decision(request: Request) -> tuple[Session, dict[str, str]] | Response:
        """The signed-in person and their form, for a decision about a plan; or the refusal to send."""
        session = signed_in(request)
        form, refused = await posted(request, session)
        if refused is not None or form is None or session is None:
            return refused or Response(status_code=400)
        return session, form

    async def approve(request: Request) -> Response:
        asked = await decision(request)
        if isinstance(asked, Response):
            return asked
        (session, form), host, plan_id = asked, host_of(), request.path_params["plan_id"]
        typed = form.get("target", "")
        try:
            plan = host.get_plan(plan_id)
            try:
                await host.check_open(plan)  # a stale plan is worth no one's approval: refused before the credential
            except ProximoError as exc:
                host.record_refusal(actor(session), "approve", {"plan_id": plan.plan_id}, str(exc), plan_id=plan.plan_id)
                raise
            record = host.approve(plan.plan_id, actor(session), ConsoleSession(session.approver, session.since),
                                  typed_target=typed if plan.risk.value == "CRITICAL" else None)
        except NotApproved as exc:
            return await show_plan(request, session, plan_id, error=f"Not approved: {exc}", status=403, typed="")
        except ProximoError as exc:
            return await show_plan(request, session, plan_id, error=f"Not approved: {exc}", status=409)
        return RedirectResponse(f"/plan/{plan.plan_id}?said=approved&seq={record.seq}", status_code=303)

    async def deny(request: Request) -> Response:
        asked = await decision(request)
        if isinstance(asked, Response):
            return asked
        (session, form), host, plan_id = asked, host_of(), request.path_params["plan_id"]
        reason = " ".join(form.get("reason", "").split())
        if not reason:
            return await show_plan(request, session, plan_id, error="Say why you deny it: the reason goes in the ledger.",
                                   status=400)
        try:
            plan = host.get_plan(plan_id)
            host.refuse_closed(plan)  # applied or already declined: nothing left to deny
            record = host.deny(plan.plan_id, actor(session), f"denied in the console: {reason}",
                               by=ConsoleSession(session.approver, session.since))
        except ProximoError as exc:
            return await show_plan(request, session, plan_id, error=f"Not denied: {exc}", status=409)
        return RedirectResponse(f"/plan/{plan.plan_id}?said=denied&seq={record.seq}", status_code=303)

    # --- the ledger ------------------------------------------------------------------------------------------

    async def ledger(request: Request) -> Response:
        session = signed_in(request)
        if session is None:
            return to_signin(request)
        host = host_of()
        query = request.query_params
        filters = {k: query.get(k, "").strip()[:200] for k in ("kind", "tool", "actor", "since", "until")}
        if filters["kind"] not in ("", *KINDS):
            filters["kind"] = ""
        times = {k: f"{filters[k]}:00" if _MINUTE.fullmatch(filters[k]) else "" for k in ("since", "until")}
        records = host.ledger.search(kind=filters["kind"], tool=filters["tool"], actor=filters["actor"],
                                     since=times["since"], until=times["until"], limit=LEDGER_ROWS)
        result = host.ledger.check()
        head = result.head
        chain = (f"{'' if result.ok else f'BROKEN at record {result.first_broken}: '}{result.reason}; head "
                 f"#{head.seq} {head.hash[:16]}… ({head.chain})")
        return html(ledger_page(records, filters, session, chain=chain, chain_ok=result.ok, anchor=_last_anchor(host),
                                limit=LEDGER_ROWS))

    def static(body: bytes, media_type: str) -> Callable[[Request], Any]:
        async def serve(_: Request) -> Response:
            return Response(body, media_type=media_type, headers={"cache-control": "no-cache"})
        return serve

    routes = [
        Route("/signin", signin_form, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        Route("/", waiting, methods=["GET"]),
        Route("/waiting", waiting_fragment, methods=["GET"]),
        Route("/events", events, methods=["GET"]),
        Route("/plan/{plan_id}", plan, methods=["GET"]),
        Route("/plan/{plan_id}/approve", approve, methods=["POST"]),
        Route("/plan/{plan_id}/deny", deny, methods=["POST"]),
        Route("/ledger", ledger, methods=["GET"]),
        Route("/static/console.css", static(css, "text/css"), methods=["GET"]),
        Route("/static/console.js", static(js, "text/javascript"), methods=["GET"]),
        Route("/favicon.ico", lambda _: Response(status_code=204), methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    return ConsoleGuard(app, names=allowed_names(bind_host, allowed_hosts))


def _new_token() -> str:
    import secrets

    return secrets.token_urlsafe(32)


def _local_path(value: str) -> str:
    """Where to go after signing in: a path on this console only (never ``//evil.example`` or a full URL)."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value or any(ord(c) < 32 for c in value):
        return "/"
    return value


def _last_anchor(host: Host) -> str:
    """The newest anchor of this ledger that can be read back here (a file sink), checked against the ledger."""
    spec = host.settings.ledger_anchor
    if not spec:
        return "none: no anchor is configured (PROXIMO_LEDGER_ANCHOR), so only this machine holds the ledger's history"
    files = [entry.strip().removeprefix("file:") for entry in spec.split(",") if entry.strip().startswith("file:")]
    if not files:
        return (f"anchors go to {spec}; read them back with `proximo ledger verify --anchor SOURCE` "
                "(the console reads back file anchors only)")
    try:
        anchors = [a for path in files for a in read_anchors(path)]
    except ProximoError as exc:
        return f"cannot read the anchors back: {exc}"
    mine = [a for a in anchors if a.ledger == host.ledger.ledger_id]
    if not mine:
        return f"no anchor of this ledger in {', '.join(files)} yet"
    last = max(mine, key=lambda a: a.seq)
    report = check_anchors(host.ledger, anchors)
    return f"#{last.seq} ({last.kind} at {last.time}) in {', '.join(files)}: {'OK' if report.ok else 'BROKEN'}, {report.reason}"
