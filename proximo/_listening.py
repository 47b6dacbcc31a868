"""What the HTTP faces (MCP over HTTP, A2A, the console) share about where and to whom they listen: loopback, the
Host names answered, the listening socket, and the bearer token compared in constant time (both sides hashed first,
so not even its length leaks)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import anyio

from .errors import BadInput

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp, Receive, Scope, Send


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def allowed_names(bind_host: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The Host names a face answers to (DNS rebinding): loopback, the bound address itself, and the configured names."""
    names = set(LOOPBACK_NAMES)
    if not is_loopback(bind_host) and bind_host not in ("0.0.0.0", "::", ""):
        names.add(bind_host.strip("[]"))
    names.update(n.strip().lower() for n in extra if n.strip())
    return frozenset(names)


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:8080`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket: a busy port is one clear line, and port 0 gets a real one to show."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def url_host(host: str) -> str:
    """``host`` as it stands in a URL (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host


async def serve_on(sock: socket.socket, config: Callable[[], uvicorn.Config], announce: Callable[[], None]) -> None:
    """Serve the app of ``config()`` on the bound ``sock`` until stopped; ``announce`` once it listens (not if it
    never does). The socket is closed on the way out, whatever fails (making the app, too)."""
    import uvicorn

    try:
        web = uvicorn.Server(config())
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(web.serve, sockets=[sock]))
            while not web.started and not web.should_exit:
                await anyio.sleep(0.02)
            if web.started:
                announce()
    finally:
        sock.close()


def token_digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def bearer_matches(authorization: str, expected: bytes) -> bool:
    """Whether an ``Authorization`` header is ``Bearer <token>`` for the token whose digest is ``expected``."""
    scheme, _, value = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token_digest(value.strip()), expected)


async def not_http(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> bool:
    """What a face's guard does with anything but an HTTP request: the lifespan goes through to the app, a websocket
    is closed (no face speaks it). True when the scope was dealt with here."""
    if scope["type"] == "lifespan":
        await app(scope, receive, send)
        return True
    if scope["type"] != "http":
        await send({"type": "websocket.close", "code": 1008})
        return True
    return False
