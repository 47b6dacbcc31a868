"""Streamable HTTP: a bearer token on every request, and DNS-rebinding protection that stays on.

Why a small ASGI middleware and not the SDK's ``AuthSettings``/``TokenVerifier``: those implement the OAuth
resource-server flow (issuer URL, protected-resource metadata). Proximo's HTTP face has one static secret,
``PROXIMO_HTTP_TOKEN``; checking it is a few lines, compared in constant time (both sides hashed first, so
not even the token's length leaks).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .._listening import bearer_matches, is_loopback, not_http, token_digest
from .._secret import Secret
from ..errors import BadInput

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def check_bind(host: str, token: Secret | None) -> Secret:
    """The token to require: refuse a non-loopback bind without one; make one up for a loopback bind."""
    if token:
        return token
    if not is_loopback(host):
        raise BadInput(f"refusing to listen on {host} without PROXIMO_HTTP_TOKEN: anyone who can reach it could plan "
                       "and apply changes. Set PROXIMO_HTTP_TOKEN (32+ random characters), or bind to 127.0.0.1")
    return Secret(secrets.token_urlsafe(32))


def transport_security(bind_host: str, allowed_hosts: tuple[str, ...] = ()) -> TransportSecuritySettings:
    """Host and Origin headers accepted: loopback, the bound address itself, and the configured names."""
    names = list(LOOPBACK_HOSTS)
    if not is_loopback(bind_host) and bind_host not in ("0.0.0.0", "::", ""):
        names.append(f"[{bind_host}]" if ":" in bind_host else bind_host)
    hosts: list[str] = []
    origins: list[str] = []
    for name in [*names, *allowed_hosts]:
        name = name.strip()
        if not name:
            continue
        has_port = name.rsplit(":", 1)[-1].isdigit() or name.endswith(":*")
        if has_port and not name.endswith("]"):
            hosts.append(name)
            origins += [f"http://{name}", f"https://{name}"]
        else:
            hosts += [name, f"{name}:*"]
            origins += [f"http://{name}", f"https://{name}", f"http://{name}:*", f"https://{name}:*"]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class BearerAuth:
    """Refuse every HTTP request whose ``Authorization`` is not ``Bearer <PROXIMO_HTTP_TOKEN>`` (401)."""

    def __init__(self, app: ASGIApp, token: Secret) -> None:
        if not token:
            raise BadInput("the HTTP face needs a bearer token")
        self.app = app
        self._expected = token_digest(token.reveal())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await not_http(self.app, scope, receive, send):
            return
        header = Headers(scope=scope).get("authorization", "")
        if bearer_matches(header, self._expected):
            await self.app(scope, receive, send)
            return
        reason = "wrong bearer token" if header.strip() else "missing bearer token"
        body = json.dumps({"error": "unauthorized", "error_description": reason}).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="proximo"'),
        ]})
        await send({"type": "http.response.body", "body": body})


def http_app(server: MCPServer[Any], *, token: Secret, bind_host: str = "127.0.0.1",
             allowed_hosts: tuple[str, ...] = ()) -> ASGIApp:
    """The streamable HTTP app (``/mcp``), stateful so elicitation reaches legacy clients, behind the token."""
    app = server.streamable_http_app(transport_security=transport_security(bind_host, allowed_hosts), host=bind_host)
    return BearerAuth(app, token)
