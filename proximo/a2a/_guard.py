"""The A2A face's HTTP guard: a Host-header allow-list (DNS rebinding) and, when set, a bearer token.

Loopback binds accept loopback Host names only (plus ``PROXIMO_ALLOWED_HOSTS``); a bind off loopback needs
``PROXIMO_A2A_TOKEN_FILE``, compared in constant time (both sides hashed first, so not even its length leaks).
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .._listening import bearer_matches, host_name, is_loopback, not_http, token_digest
from .._secret import Secret
from ..errors import BadInput

DEFAULT_PORT = 41241
MIN_TOKEN = 16


def read_token(path: str) -> Secret | None:
    if not path:
        return None
    try:
        value = Path(path).read_text().strip()
    except OSError as exc:
        raise BadInput(f"PROXIMO_A2A_TOKEN_FILE: cannot read {path}: {exc.strerror or exc}") from None
    if len(value) < MIN_TOKEN:
        raise BadInput(f"PROXIMO_A2A_TOKEN_FILE: the token is too short (use at least {MIN_TOKEN} random characters)")
    return Secret(value)


def check_bind(host: str, token: Secret | None) -> None:
    if token is None and not is_loopback(host):
        raise BadInput(f"refusing to listen on {host} without PROXIMO_A2A_TOKEN_FILE: anyone who can reach it could "
                       "plan and apply changes. Set it (a file holding 32+ random characters), or bind to 127.0.0.1")


class Guard:
    def __init__(self, app: ASGIApp, *, names: frozenset[str], token: Secret | None) -> None:
        self.app = app
        self.names = names
        self._expected = token_digest(token.reveal()) if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await not_http(self.app, scope, receive, send):
            return
        headers = Headers(scope=scope)
        if host_name(headers.get("host", "")) not in self.names:
            await _refuse(send, 421, "misdirected", "this Host is not served here (PROXIMO_ALLOWED_HOSTS)")
            return
        if self._expected is not None:
            if not bearer_matches(headers.get("authorization", ""), self._expected):
                await _refuse(send, 401, "unauthorized", "wrong or missing bearer token", bearer=True)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, error: str, description: str, *, bearer: bool = False) -> None:
    body = json.dumps({"error": error, "error_description": description}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if bearer:
        headers.append((b"www-authenticate", b'Bearer realm="proximo"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
