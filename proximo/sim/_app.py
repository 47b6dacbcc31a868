"""The simulator: the PVE REST API served from the model, as an ASGI app.

It answers like ``pve-api-daemon``: the ``{"data": ...}`` envelope, PVE's error bodies and status codes,
``PVEAPIToken`` auth, UPIDs for async work with ``/nodes/{node}/tasks/{upid}/status|log``. Writes go through
the same registered semantics the predictor uses, so what a plan predicts is what the simulator does.

It simulates one release of PVE (8.4 or 9.1): the one its model's ``/version`` names, or the one it is told
(``pve_version``, which then becomes its ``/version``). Every request is checked against that release's API. A
snapshot of a release Proximo has no schema for (7.4, say) is served read-only, as recorded: its writes answer 501.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import msgspec

from ..pve._apischema import RELEASES, release_of
from ..errors import BadInput, NotModelled, PveApiError, UnknownRelease
from ..model import ClusterModel, SemanticsRegistry, render, render_members
from ..model._access import AuditView, acl_answer, permissions_answer
from ._faults import NODE_UNREACHABLE, AnswerTimedOut, ConnectionDropped, Fault, Faults

log = logging.getLogger("proximo.sim")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_AUTH = re.compile(r"^PVEAPIToken=(?P<token>[^=\s]+)=(?P<secret>\S+)$")
_PREFIX = "/api2/json"


# What ``GET /version`` answers on a simulated release when the model's own ``/version`` names another one
# (pve-manager's version and the short commit id it was built from).
RELEASE_VERSIONS: dict[str, dict[str, str]] = {
    "8.4": {"release": "8.4", "version": "8.4.1", "repoid": "2a5fa54a8503f96d"},
    "9.1": {"release": "9.1", "version": "9.1.2", "repoid": "6a3e57f2"},
}


def simulate_release(model: ClusterModel, pve_version: str | None) -> None:
    """Make ``model`` a cluster of ``pve_version`` (a release, ``8.4``, or a version, ``8.4.1``): its ``/version``
    and so its API. None keeps the model's own. BadInput for a release the simulator cannot simulate."""
    if not pve_version:
        return
    release = release_of({"version": pve_version})
    if release not in RELEASES:
        raise BadInput(f"the simulator simulates PVE {' and '.join(RELEASES)}, not {pve_version}")
    if release != model.release or not model.version:
        model.version = dict(RELEASE_VERSIONS[release])
    if pve_version != release:  # a full version asked for: answer it
        model.version["version"] = pve_version


class _Encoded(bytes):
    """A response body already encoded as JSON (a cached GET answer)."""


class Simulator:
    """A simulated Proxmox VE cluster. ``app`` is the ASGI application; ``model`` is its live state."""

    def __init__(self, model: ClusterModel, semantics: SemanticsRegistry, *, tokens: dict[str, str] | None = None,
                 latency: float = 0.0, task_polls: int = 0, pve_version: str | None = None,
                 faults: Faults | None = None) -> None:
        simulate_release(model, pve_version)
        self._model = model
        # GET answers, encoded, for one generation of the model: a write, or anyone taking the model (who may
        # change it in place), starts a new one. pveproxy answers a big /cluster/resources without re-reading
        # a 4,000-guest cluster for every client; the simulator must keep up with many clients too.
        self._generation = 0
        self._answers: dict[tuple[str, str], _Encoded] = {}
        self._answers_generation = -1
        self.semantics = semantics
        self.tokens = dict(tokens) if tokens is not None else {"proximo@pve!agent": secrets.token_hex(16)}
        self.latency = latency
        self.task_polls = task_polls  # each status read of an async task counts this down; "running" while above 0
        self.faults = faults if faults is not None else Faults()  # failures to inject (``_faults``)
        self.requests: list[tuple[str, str]] = []  # (method, path) of every authenticated request
        self._views: dict[str, tuple[int, AuditView]] = {}  # token -> (generation, what its reads show)

    @property
    def model(self) -> ClusterModel:
        """The simulated cluster's live state. Whoever takes it may change it, so cached answers are dropped."""
        self._generation += 1
        return self._model

    def inject_fault(self, method: str = "*", path_regex: str = "", status: int = 500, message: str = "", *,
                     times: int | None = 1, kind: str = "error", **more: Any) -> Fault:
        """Add a fault rule (``_faults.Fault``): by default the next matching request answers ``status``."""
        return self.faults.add(msgspec.convert({"kind": kind, "method": method, "path": path_regex, "status": status,
                                                "message": message, "times": times, **more}, Fault))

    def _authorised(self, headers: dict[str, str]) -> str | None:
        match = _AUTH.match(headers.get("authorization", "").strip())
        if not match:
            return None
        expected = self.tokens.get(match["token"])
        if expected is None or not hmac.compare_digest(expected.encode(), match["secret"].encode()):
            return None
        return match["token"]

    # --- ASGI -------------------------------------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, payload = await self.handle(
            scope["method"], scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0],
            scope.get("query_string", b"").decode("latin-1"),
            {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])},
            body,
        )
        headers = [(b"server", b"pve-api-daemon/3.0")]
        if payload is _NO_BODY:  # pveproxy's own refusal (a failed login): the message is in the status line only
            data, reason = b"", _AUTH_FAILED
        else:
            # compact, as pve-http-server Formatter/Standard.pm writes it (to_json with utf8, no pretty printing)
            data = payload if isinstance(payload, _Encoded) else msgspec.json.encode(payload)
            headers.insert(0, (b"content-type", b"application/json;charset=UTF-8"))
            reason = _reason(status, payload)
        start: dict[str, Any] = {"type": "http.response.start", "status": status,
                                 "headers": [*headers, (b"content-length", str(len(data)).encode())]}
        if reason is not None:
            start[REASON_KEY] = reason.encode()
        await send(start)
        await send({"type": "http.response.body", "body": data})

    async def handle(self, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        """(status, JSON body) of a request, as pve-api-daemon answers it."""
        if self.latency:
            await anyio.sleep(self.latency)
        if not raw_path.startswith(_PREFIX + "/"):
            return 404, {"data": None}
        token = self._authorised(headers)
        if token is None:
            return 401, _NO_BODY
        # each segment decoded on its own: a slash a segment carries (a volume id's, a CIDR's) stays %2F, as the
        # path template matches it and as plans write it
        path = "/".join(urllib.parse.unquote(seg).replace("/", "%2F") for seg in raw_path[len(_PREFIX):].split("/"))
        self.requests.append((method, path))
        fault = self.faults.hit(method, path)
        if fault is not None:
            if fault.kind == "node-offline":
                return NODE_UNREACHABLE[0], _error_body(PveApiError(NODE_UNREACHABLE[0], NODE_UNREACHABLE[1]))
            if fault.kind == "error":
                return fault.status, _error_body(PveApiError(fault.status, fault.message))
            if fault.kind == "slow":
                await anyio.sleep(fault.delay)
            if fault.kind in ("timeout", "reset") and not (fault.landed and method != "GET"):
                raise _lost(fault)
        status, payload = self._carry_out(method, path, query, token, headers, body)
        if fault is not None and fault.kind in ("timeout", "reset"):  # landed: done, and then the answer is lost
            raise _lost(fault)
        if fault is not None and fault.kind in ("task-fail", "task-hang") and status == 200:
            self._fail_task(payload.get("data"), fault)
        return status, payload

    def _carry_out(self, method: str, path: str, query: str, token: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        try:
            if method == "GET":
                _check_get(self._model, path, query)
                if path == "/access/permissions":  # the answer depends on who asks (their own, or Sys.Audit on /access)
                    if not self._model.users:  # a model without users cannot say who the token is (writes go unchecked too)
                        raise PveApiError(501, "Method 'GET /access/permissions' not implemented by the simulator: its model has no users")
                    args = dict(urllib.parse.parse_qsl(query))
                    return 200, {"data": permissions_answer(self._model, token, args.get("userid"), args.get("path"))}
                if path == "/access/acl":  # so does this list (Sys.Audit on /access, else what the token may modify)
                    return 200, {"data": acl_answer(self._model, token)}
                view = self._view(token)
                view.check(path)
                if not view.full or (self.faults.offline_nodes() and path in ("/cluster/resources", "/cluster/status", "/nodes")):
                    data = render(self._model, path + (f"?{query}" if query else ""))
                    return 200, {"data": self.faults.show_offline(path, view.shown(path, data)),
                                 **render_members(self._model, path + (f"?{query}" if query else ""))}
                return 200, self._answer(path, query)
            params = _params(method, query, headers, body)
            self._generation += 1  # even a refused write may have changed something before it failed
            data = self.semantics.execute(self._model, method, path, params, user=token)
            self._slow_tasks(data)
            self._sync_tokens(data)
            return 200, {"data": data}
        except PveApiError as exc:
            return exc.status, _error_body(exc)
        except (NotModelled, UnknownRelease) as exc:
            return 501, _error_body(PveApiError(501, f"Method '{method} {path}' not implemented by the simulator ({exc})"))
        except Exception:
            log.exception("simulator failed on %s %s", method, path)
            return 500, _error_body(PveApiError(500, "internal simulator error"))

    def _view(self, token: str) -> AuditView:
        """What this token's reads show (PVE filters lists by what it may audit), for the model's current generation."""
        kept = self._views.get(token)
        if kept is None or kept[0] != self._generation:
            kept = (self._generation, AuditView(self._model, token))
            self._views[token] = kept
        return kept[1]

    def _fail_task(self, upid: Any, fault: Fault) -> None:
        """The task a write started fails with the fault's message, or never ends (``task-hang``)."""
        task = self._model.tasks.get(upid) if isinstance(upid, str) else None
        if task is None:
            return
        if fault.kind == "task-hang":
            task.polls_left = 2**31
            return
        task.exitstatus = fault.message
        task.log = [line for line in task.log if not line.startswith("TASK ")] + [f"TASK ERROR: {fault.message}"]

    def _answer(self, path: str, query: str) -> _Encoded:
        if self._answers_generation != self._generation:
            self._answers.clear()
            self._answers_generation = self._generation
        answer = self._answers.get((path, query))
        if answer is None:
            full = path + (f"?{query}" if query else "")
            answer = _Encoded(msgspec.json.encode({"data": render(self._model, full), **render_members(self._model, full)}))
            if "/tasks/" not in path:  # reading a task's status counts down its polls: never the same answer twice
                self._answers[(path, query)] = answer
        return answer

    def _sync_tokens(self, data: Any) -> None:
        """A token created here can log in with the secret it was given; a deleted one (or its user's) cannot."""
        if isinstance(data, dict) and isinstance(data.get("full-tokenid"), str) and isinstance(data.get("value"), str):
            self.tokens[data["full-tokenid"]] = data["value"]
        known = {f"{u.get('userid')}!{t.get('tokenid')}" for u in self._model.users for t in u.get("tokens") or []}
        if self._model.users:  # a snapshot without users cannot say which tokens exist
            for token_id in [t for t in self.tokens if t not in known]:
                del self.tokens[token_id]

    def _slow_tasks(self, data: Any) -> None:
        if isinstance(data, str) and data in self._model.tasks:
            self._model.tasks[data].polls_left = self.task_polls


def _lost(fault: Fault) -> Exception:
    """The answer that never comes (``timeout``) or the connection torn down (``reset``)."""
    if fault.kind == "timeout":
        return AnswerTimedOut("simulated timeout: the simulator never answered")
    return ConnectionDropped("[Errno 104] Connection reset by peer (simulated)")


def _check_get(model: ClusterModel, path: str, query: str) -> None:
    """A GET is checked against the release's schema as PVE checks it: unknown routes 501, bad query parameters 400.
    A release without a schema is served as recorded."""
    try:
        api = model.api
    except UnknownRelease:
        return
    match = api.match(path)
    endpoint = api.endpoint("GET", match[0]) if match else None
    if match is None or endpoint is None:
        raise PveApiError(501, f"Method 'GET {path}' not implemented")
    _, errors = api.validate(endpoint, dict(urllib.parse.parse_qsl(query, keep_blank_values=True)), match[1])
    if errors:
        raise PveApiError(400, "Parameter verification failed.", errors)


def _params(method: str, query: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """PVE takes form-encoded bodies (and JSON); repeated keys become lists; DELETE uses the query string."""
    params: dict[str, Any] = {}
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if body:
        if headers.get("content-type", "").startswith("application/json"):
            params.update(json.loads(body))
        else:
            pairs += urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
    for key, value in pairs:
        if key in params:
            params[key] = (params[key] if isinstance(params[key], list) else [params[key]]) + [value]
        else:
            params[key] = value
    return params


def _error_body(exc: PveApiError) -> dict[str, Any]:
    """The JSON formatter's error body: ``data`` null, the handler's ``message`` and any per-parameter ``errors``
    (pve-http-server src/PVE/APIServer/Formatter/Standard.pm prepare_response_data; the message is in the body
    since 9a2112e, "fix #6503: return api handler errors in the json body")."""
    body: dict[str, Any] = {"data": None}
    if exc.errors:
        body["errors"] = exc.errors
    body["message"] = exc.message + "\n"
    return body


# The ASGI "http.response.start" key that carries the reason phrase: an extension other servers ignore, which
# serve_config's protocol writes into the status line (proximo/sim/_serve.py).
REASON_KEY = "proximo.reason"
_NO_BODY: Any = object()  # an answer with no body at all
# pve-manager PVE/HTTPServer.pm auth_handler (26c10a2e, "unify error message in case of auth failure"): a token that
# does not verify dies with this; no login formatter serves json, so pve-http-server's AnyEvent.pm answers 401 with
# it as the reason phrase and no content
_AUTH_FAILED = "Authentication failed!"


def _reason(status: int, payload: Any) -> str | None:
    """The status line's reason phrase as pveproxy writes it (pve-http-server src/PVE/APIServer/AnyEvent.pm
    ``response``: the handler's message, its first line only; the standard phrase when there is none)."""
    if status < 400 or not isinstance(payload, dict) or not isinstance(payload.get("message"), str):
        return None
    return payload["message"].split("\n", 1)[0] or None
