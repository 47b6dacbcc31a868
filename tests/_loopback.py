"""The simulator served by uvicorn on a real loopback socket, for tests that need real HTTP.

A socket bound to 127.0.0.1 port 0 gets a free port from the kernel (no guess-and-race); uvicorn serves on it
in a thread with its own event loop, so a test's own loop (anyio) talks to it over TCP like a real cluster.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
