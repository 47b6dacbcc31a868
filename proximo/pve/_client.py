"""The client Proximo uses to talk to the Proxmox VE REST API (docs/architecture.md, "Talking to Proxmox").

Why it looks the way it does:

- GETs are idempotent, so they retry transient failures (connection errors, 429, 5xx but 501) with
  exponential backoff. Mutations never retry: a POST that timed out may have been applied, and doing it
  twice is the executor's decision, not the transport's.
- Paths come from plans and packs. A path that could mean something other than what was shown in the
  plan (``..``, ``//``, encoded dots or slashes, a smuggled query) is refused before any byte is sent.
  Path parameters arrive already quoted; this module quotes nothing a second time.
- The API token secret lives only in the ``Authorization`` header (which httpx masks in reprs). Every
  error message is built here from method, path, status and PVE's message, with the secret scrubbed
  even if a server echoes it back.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from inspect import isawaitable
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

import anyio
import httpx
import msgspec

from .._secret import Secret
from ._calls import (  # re-exported: the client's own checks, apart so that plans need no HTTP stack
    API_PREFIX,
    check_api_path,
    is_upid,
    _NODE_RE,
    parse_upid,
    _SECRET_RE,
    TaskResult,
    TaskTimeoutError,
    _TOKEN_ID_RE,
    Upid,
    _write_permit,
    WriteRefused,
    writing,  # noqa: F401 (the executor's, kept here beside the client it permits)
)
from ._tls import CertificatePinError, TlsSettings, make_ssl_context
from ..errors import PveApiError, PveConnectionError

__all__ = [
    "PveApiError",
    "PveClient",
    "PveConnectionError",
    "TaskResult",
    "TaskTimeoutError",
    "Upid",
    "WriteRefused",
    "is_upid",
    "parse_upid",
]

log = logging.getLogger("proximo.client")

def _encode_value(key: str, value: Any) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        return "1" if value else "0"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TypeError(f"parameter {key!r}: cannot send a {type(value).__name__} to the PVE API")


def _encode_params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """PVE's parameter encoding: booleans as 0/1, lists as repeated keys, None left out."""
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if not isinstance(key, str):
            raise TypeError("parameter names must be strings")
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            pairs.extend((key, _encode_value(key, v)) for v in value if v is not None)
        else:
            pairs.append((key, _encode_value(key, value)))
    return pairs


def _one_line(text: str, limit: int = 1000) -> str:
    """Server text as one bounded line: error messages end up in logs, terminals and the ledger."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _has_cert_error(exc: BaseException) -> bool:
    """A failed certificate check is not transient: retrying it only hides the problem."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, (ssl.SSLCertVerificationError, CertificatePinError)):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _retryable_exc(exc: httpx.HTTPError) -> bool:
    """Connection trouble is worth another try; a bad certificate or a protocol bug is not."""
    if not isinstance(exc, httpx.TransportError) or isinstance(exc, httpx.UnsupportedProtocol):
        return False
    return not _has_cert_error(exc)


def _retryable_status(status: int) -> bool:
    return status == 429 or (500 <= status <= 599 and status != 501)


class PveClient:
    """An async client for one PVE cluster endpoint, authenticated with an API token.

    ``verify`` is used only when no ``transport`` is given; for a CA file or a pinned fingerprint pass
    ``transport=proximo._tls.make_transport(TlsSettings(...))``. ``verify=False`` is refused: pin the
    certificate instead.
    """

    log_page = 500  # task log lines fetched per request

    def __init__(
        self,
        base_url: str,
        token_id: str,
        token_secret: str,
        *,
        verify: ssl.SSLContext | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        get_retries: int = 3,
        backoff: float = 0.2,
    ) -> None:
        if not isinstance(token_id, str) or not _TOKEN_ID_RE.fullmatch(token_id):
            # Not echoed: a whole "user@realm!id=SECRET" string pasted here would leak the secret.
            raise ValueError("token_id must look like user@realm!tokenid")
        if not isinstance(token_secret, str) or not _SECRET_RE.fullmatch(token_secret):
            raise ValueError("token secret must be non-empty printable ASCII without spaces")
        if verify is False:
            raise ValueError("verify=False is refused: pin the certificate's SHA-256 fingerprint instead")
        if get_retries < 0 or backoff < 0 or timeout <= 0:
            raise ValueError("get_retries and backoff must be >= 0 and timeout > 0")

        try:
            parts = urlsplit(base_url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ValueError("base_url must look like https://HOST:8006") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("base_url must look like https://HOST:8006")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("base_url must not carry credentials, a query or a fragment")
        if parts.path.rstrip("/") not in ("", API_PREFIX):
            raise ValueError("base_url must be the server root, like https://HOST:8006")
        in_process = isinstance(transport, (httpx.MockTransport, httpx.ASGITransport))
        if parts.scheme == "http" and not in_process and not _is_loopback(parts.hostname):
            # The token would cross the network in clear text.
            raise ValueError("plain http is allowed only to a loopback address or an in-process app")

        self.base_url = f"{parts.scheme}://{parts.netloc}"
        self.token_id = token_id
        self._secret = Secret(token_secret)
        self._get_retries = get_retries
        self._backoff = backoff
        self.local_addresses: list[str] = []  # our side of the API connection, as the cluster sees us (lockout analysis)
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            headers={
                "Authorization": f"PVEAPIToken={token_id}={token_secret}",
                "Accept": "application/json",
                "User-Agent": "proximo",
            },
            verify=verify if isinstance(verify, ssl.SSLContext) else make_ssl_context(TlsSettings()),
            transport=transport,
            timeout=timeout,
            follow_redirects=False,  # a redirect would carry the token somewhere not chosen here
            trust_env=False,  # no proxy or netrc from the environment sees the token
            event_hooks={"request": [self._guard_writes]},  # every request, however it was made, passes here
        )
        self._permit: object | None = None

    def take_write_permit(self) -> object:
        """Hand the right to send writes to one holder (the executor), once.

        From then on every non-GET request this client makes outside ``writing(permit)`` is refused
        (``WriteRefused``), whoever holds a reference to the client. A client whose permit was never
        taken (a standalone script, the snapshot command) sends what it is asked.
        """
        if self._permit is not None:
            raise WriteRefused("this client's write permit was already handed out")
        self._permit = object()
        return self._permit

    async def _guard_writes(self, request: httpx.Request) -> None:
        if self._permit is not None and request.method != "GET" and _write_permit.get() is not self._permit:
            log.warning("refused %s %s from outside the executor", request.method, request.url.path)
            raise WriteRefused(f"{request.method} {request.url.path}: refused: only the executor sends writes, "
                               "for a stored, fresh, approved plan")

    def __repr__(self) -> str:
        return f"PveClient(base_url={self.base_url!r}, token_id={self.token_id!r})"

    async def __aenter__(self) -> PveClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # --- requests ------------------------------------------------------------------------------

    async def get(self, path: str, params: Mapping[str, Any] | None = None, *, envelope: bool = False) -> Any:
        """GET ``path`` (relative to /api2/json) and return the ``data`` member (``envelope``: the whole answer, with
        members PVE puts beside ``data``, such as a node network's ``changes``); retries transient failures."""
        check_api_path(path)
        query = _encode_params(params)
        attempt = 0
        while True:
            last = attempt >= self._get_retries
            retry_after: float | None = None
            try:
                response = await self._exchange("GET", path, query=query)
            except httpx.HTTPError as exc:
                if last or not _retryable_exc(exc):
                    raise self._connection_error("GET", path, exc) from exc
                reason = type(exc).__name__
            else:
                if last or not _retryable_status(response.status_code):
                    return self._unwrap("GET", path, response, envelope=envelope)
                reason = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
            delay = max(self._backoff * (2**attempt), retry_after or 0.0)
            attempt += 1
            log.debug("GET %s: %s, retry %d/%d in %.2fs", path, reason, attempt, self._get_retries, delay)
            await _sleep(delay)

    async def send(
        self,
        method: Literal["POST", "PUT", "DELETE"],
        path: str,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one mutation and return ``data`` (often a UPID). Never retried: it may have been applied."""
        if method not in ("POST", "PUT", "DELETE"):
            raise ValueError("send() takes POST, PUT or DELETE; use get() to read")
        check_api_path(path)
        pairs = _encode_params(params)
        try:
            if method == "DELETE":
                response = await self._exchange(method, path, query=pairs)
            else:
                response = await self._exchange(method, path, form=pairs)
        except httpx.HTTPError as exc:
            raise self._connection_error(method, path, exc) from exc
        return self._unwrap(method, path, response)

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        form: list[tuple[str, str]] | None = None,
    ) -> httpx.Response:
        """One HTTP exchange. The path was checked by the caller and is sent as given (no re-quoting)."""
        headers: dict[str, str] = {}
        content: bytes | None = None
        if form is not None:
            content = urlencode(form, quote_via=quote).encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        log.debug("%s %s", method, path)
        started = time.monotonic()
        response = await self._http.request(
            method,
            self.base_url + API_PREFIX + path,
            params=tuple(query) if query else None,
            content=content,
            headers=headers,
        )
        elapsed_ms = (time.monotonic() - started) * 1000
        self._note_local_address(response)
        log.debug("%s %s -> %d (%.0f ms)", method, path, response.status_code, elapsed_ms)
        return response

    def _note_local_address(self, response: httpx.Response) -> None:
        """Remember the local socket address of the connection (absent for in-process transports)."""
        stream = response.extensions.get("network_stream")
        try:
            addr = stream.get_extra_info("client_addr") if stream is not None else None
        except Exception:  # a closed socket: nothing to learn from this exchange
            addr = None
        if isinstance(addr, tuple) and addr and str(addr[0]) not in self.local_addresses:
            self.local_addresses.append(str(addr[0]))

    def _connection_error(self, method: str, path: str, exc: httpx.HTTPError) -> PveConnectionError:
        """A one-line PveConnectionError that says whether a mutation may have landed anyway."""
        if isinstance(exc, httpx.TimeoutException):
            what = f"timed out after {self._timeout:g}s ({type(exc).__name__})"
        else:
            what = f"{type(exc).__name__}: {_one_line(self._scrub(str(exc))) or 'no detail'}"
        # Nothing left this machine if the connection never came up; otherwise a mutation may have landed.
        not_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
        note = "" if method == "GET" or not_sent else "; it may have been applied, check before repeating it"
        return PveConnectionError(self._scrub(f"{method} {path}: cannot reach {self.base_url}: {what}{note}"))

    def _unwrap(self, method: str, path: str, response: httpx.Response, *, envelope: bool = False) -> Any:
        """Return the envelope's ``data`` (or the envelope) or raise PveApiError with PVE's message and errors."""
        status = response.status_code
        try:
            body = msgspec.json.decode(response.content) if response.content else None
        except msgspec.DecodeError:
            body = None
        if 200 <= status < 300:
            if not isinstance(body, dict) or "data" not in body:
                raise PveApiError(status, "response is not a PVE JSON envelope", method=method, path=path)
            return body if envelope else body["data"]
        message = ""
        errors: dict[str, str] = {}
        if isinstance(body, dict):
            if isinstance(body.get("message"), str):
                message = body["message"]
            if isinstance(body.get("errors"), dict):
                errors = {self._scrub(str(k)): _one_line(self._scrub(str(v))) for k, v in body["errors"].items()}
        if not message.strip():
            message = response.reason_phrase or httpx.codes.get_reason_phrase(status) or "error"
        log.debug("%s %s: error %d", method, path, status)
        raise PveApiError(status, _one_line(self._scrub(message)), errors, method=method, path=path)

    def _scrub(self, text: str) -> str:
        """Remove the secret from server-supplied text (a hostile or broken server may echo headers)."""
        secret = self._secret.reveal()
        return text.replace(secret, "<secret>") if secret in text else text

    # --- tasks ---------------------------------------------------------------------------------

    async def wait_task(
        self,
        node: str,
        upid: str,
        *,
        poll: float = 0.5,
        timeout: float = 600,
        on_progress: Callable[[str, list[str]], Awaitable[None] | None] | None = None,
    ) -> TaskResult:
        """Poll a task until it stops, keeping its whole log; ``on_progress(status, new_lines)`` each poll.

        ``ok`` is true for ``OK`` and ``WARNINGS: n``. Raises TaskTimeoutError if still running after
        ``timeout`` seconds (the task itself is not stopped).
        """
        if not isinstance(node, str) or not _NODE_RE.fullmatch(node):
            raise ValueError("node must be a PVE node name")
        parse_upid(upid)
        if poll <= 0 or timeout <= 0:
            raise ValueError("poll and timeout must be > 0")
        base = f"/nodes/{node}/tasks/{quote(upid, safe=':@!')}"
        deadline = anyio.current_time() + timeout
        lines: list[str] = []
        while True:
            status = await self.get(base + "/status")
            state = str(status.get("status", "")) if isinstance(status, dict) else ""
            # Read again from the last line seen: a running task may have had it half-written.
            start = max(len(lines) - 1, 0)
            tail = await self._read_log(base + "/log", start)
            reported = len(lines)
            if tail:
                lines = lines[:start] + tail
            new = lines[reported:]
            if on_progress is not None:
                result = on_progress(state, new)
                if isawaitable(result):
                    await result
            if state == "stopped":
                exitstatus = str(status.get("exitstatus", "unknown")) if isinstance(status, dict) else "unknown"
                ok = exitstatus == "OK" or exitstatus.startswith("WARNINGS")
                log.debug("task %s on %s: %s", upid, node, exitstatus)
                return TaskResult(upid=upid, node=node, status=state, exitstatus=exitstatus, ok=ok, log=lines)
            if anyio.current_time() + poll > deadline:
                raise TaskTimeoutError(node, upid, timeout, lines)
            await _sleep(poll)

    async def _read_log(self, path: str, start: int) -> list[str]:
        """Task log lines after the first ``start`` ones, page by page (rows are ``{n, t}``, n from 1)."""
        out: list[str] = []
        while True:
            rows = await self.get(path, {"start": start, "limit": self.log_page})
            rows = rows if isinstance(rows, list) else []
            page = [r for r in rows if isinstance(r, dict) and isinstance(r.get("n"), int)]
            # PVE answers an empty log with one placeholder row; it is not a line of the log.
            if len(page) == 1 and page[0]["n"] == 1 and page[0].get("t") == "no content" and start == 0:
                page = []
            fresh = sorted((r for r in page if r["n"] > start), key=lambda r: r["n"])
            for row in fresh:
                out.append(str(row.get("t", "")))
            if not fresh:
                return out
            start = fresh[-1]["n"]
            if len(page) < self.log_page:
                return out


def _retry_after(response: httpx.Response) -> float | None:
    """Honour a numeric Retry-After (capped: a GET is not worth waiting minutes for)."""
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), 30.0)
    except ValueError:
        return None


async def _sleep(seconds: float) -> None:
    """Indirection so tests can observe backoff without waiting."""
    await anyio.sleep(seconds)
