"""The simulator served by uvicorn on a real loopback socket, for tests that need real HTTP.

A socket bound to 127.0.0.1 port 0 gets a free port from the kernel (no guess-and-race); uvicorn serves on it
in a thread with its own event loop, so a test's own loop (anyio) talks to it over TCP like a real cluster.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import uvicorn

from proximo.sim import serve_config


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1 with a free port; yields the base URL (``http://127.0.0.1:PORT``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(serve_config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"sim-{port}")
    thread.start()
    try:
        # Bounded wait for start-up (a readiness check, not a timed assertion).
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError("the loopback simulator did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@asynccontextmanager
async def serve_here(make_app: Callable[[str], Any]) -> AsyncIterator[str]:
    """Serve an ASGI app (with its lifespan) on 127.0.0.1 with a free port, in the test's own event loop; yields the
    base URL. For faces whose app needs the test's loop (the MCP HTTP app, the A2A app); ``make_app(base)`` builds it
    once the port is known (the A2A card names its own URL)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    web = uvicorn.Server(uvicorn.Config(make_app(base), log_level="warning", access_log=False, lifespan="on"))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: web.serve(sockets=[sock]))
            while not web.started:  # a readiness wait, not a timed assertion
                await anyio.sleep(0.01)
            try:
                yield base
            finally:
                web.should_exit = True
    finally:
        sock.close()

