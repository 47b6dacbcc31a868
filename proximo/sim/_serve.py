"""Serving the simulator over HTTP with uvicorn, with pveproxy's status lines.

pveproxy writes the handler's message into the status line (``HTTP/1.1 500 storage 'x' does not exist``:
pve-http-server src/PVE/APIServer/AnyEvent.pm ``response``), and clients read it there (proxmoxer raises its
errors with the reason phrase). ASGI has no field for a reason phrase and uvicorn writes the standard one
(``STATUS_PHRASES``), so the simulator puts it under an extension key of ``http.response.start``
(``REASON_KEY``, which other ASGI servers ignore) and the h11 protocol here writes it into the status line.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ._app import REASON_KEY
from ._faults import AnswerTimedOut, ConnectionDropped

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


class _ReasonConnection:
    """The cycle's h11 connection for one ``send``: the Response it writes carries ``reason``."""

    def __init__(self, conn: h11.Connection, reason: bytes) -> None:
        self._conn = conn
        self._reason = reason

    def send(self, event: Any) -> bytes | None:
        if isinstance(event, h11.Response):
            event = h11.Response(status_code=event.status_code, headers=event.headers, reason=self._reason,
                                 http_version=event.http_version)
        return self._conn.send(event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _with_reasons(app: Any) -> Any:
    """The ASGI app, with each response's reason phrase written by the request's own cycle (``send.__self__``:
    uvicorn's RequestResponseCycle)."""

    async def reasoned(scope: Message, receive: Any, send: Send) -> None:
        cycle = getattr(send, "__self__", None)

        async def send_with_reason(message: Message) -> None:
            reason = message.get(REASON_KEY) if message.get("type") == "http.response.start" else None
            if not isinstance(reason, bytes) or cycle is None or not hasattr(cycle, "conn"):
                return await send(message)
            conn = cycle.conn
            cycle.conn = _ReasonConnection(conn, reason)
            try:
                await send(message)
            finally:
                cycle.conn = conn

        try:
            return await app(scope, receive, send_with_reason if scope.get("type") == "http" else send)
        except AnswerTimedOut:  # no answer: the connection stays silent until the client gives up on it
            with anyio.move_on_after(_SILENCE):
                while (await receive()).get("type") != "http.disconnect":
                    pass
            _reset(cycle)
        except ConnectionDropped:
            _reset(cycle)

    return reasoned


_SILENCE = 600.0  # the longest a timed-out answer keeps its connection open when the client never gives up


def _reset(cycle: Any) -> None:
    """Tear the request's connection down with a TCP reset (SO_LINGER 0, then close), as a dying proxy would."""
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return
    cycle.disconnected = True  # uvicorn then sends nothing more on it (no 500 for "returned without a response")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:  # already closed by the client
            pass
    transport.abort()


class PveStatusLineProtocol(H11Protocol):
    """uvicorn's h11 protocol, writing the reason phrase the simulator gives (``REASON_KEY``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = _with_reasons(self.app)

    def connection_made(self, transport: asyncio.Transport) -> None:
        # h11 writes the head and the body in two writes; with Nagle on, the body waits for the client's delayed
        # ACK (40 ms on Linux) on every keep-alive request. pveproxy writes head and body in one push_write
        # (pve-http-server AnyEvent.pm ``response``), so it never waits; TCP_NODELAY gives the simulator the same.
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def serve_config(app: Any, **kwargs: Any) -> uvicorn.Config:
    """A uvicorn Config for the simulator's ASGI app: ASGI 3 (uvicorn would take a bound method for ASGI 2), no
    uvicorn Server header (the simulator says pve-api-daemon, as PVE does), pveproxy's status lines."""
    return uvicorn.Config(app, interface="asgi3", server_header=False, http=PveStatusLineProtocol, **kwargs)
