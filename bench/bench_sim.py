"""How many requests a second the simulator serves, over loopback HTTP as `proximo sim` serves them.

    uv run python bench/bench_sim.py [--nodes 32] [--guests 4000] [--seconds 3] [--clients 8]

For each path below, three figures:

- the ASGI application alone, called in this process (what the simulator itself costs per request);
- over loopback HTTP: the cluster of bench/gen_cluster.py served by uvicorn in a child process (as ``proximo sim``
  serves it), for ``--seconds`` each, first with ``--clients`` raw keep-alive connections that read each answer's
  bytes without parsing them (the server's own rate, as wrk or ab measure it; one thread each), then with as many httpx clients
  in threads of this process (what Python clients get: their own CPU shares the 2 cores with the server).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_cluster import generate  # noqa: E402

TOKEN_ID = "proximo@pve!agent"
SECRET = "bench-sim-secret-0123456789"
GOALS = {"/cluster/resources": 1000, "guest config": 3000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hammer(url: str, path: str, seconds: float, clients: int) -> tuple[float, int]:
    headers = {"Authorization": f"PVEAPIToken={TOKEN_ID}={SECRET}"}
    counts = [0] * clients
    size = [0]
    deadline = time.perf_counter() + seconds

    def run(i: int) -> None:
        with httpx.Client(base_url=url, headers=headers) as client:
            while time.perf_counter() < deadline:
                r = client.get("/api2/json" + path)
                r.raise_for_status()
                size[0] = len(r.content)
                counts[i] += 1

    took = in_threads(run, clients)
    return sum(counts) / took, size[0]


def in_threads(run: Callable[[int], None], clients: int) -> float:
    """Run ``run(i)`` in ``clients`` threads at once; the seconds they took."""
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def hammer_raw(port: int, path: str, seconds: float, clients: int) -> float:
    """The server's own rate: keep-alive connections that send a request and read the answer's bytes into a buffer,
    as a load tester does (wrk, ab), without parsing them; one thread each (a socket read releases the GIL)."""
    import re

    request = (f"GET /api2/json{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: PVEAPIToken={TOKEN_ID}={SECRET}\r\n\r\n").encode()
    length_re = re.compile(rb"(?im)^content-length:\s*([0-9]+)")
    counts = [0] * clients
    errors: list[str] = []
    deadline = time.perf_counter() + seconds

    def run(i: int) -> None:
        buf = bytearray(8 << 20)
        view = memoryview(buf)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while time.perf_counter() < deadline:
                sock.sendall(request)
                got, end = 0, -1
                while end < 0:
                    got += sock.recv_into(view[got:])
                    end = buf.find(b"\r\n\r\n", 0, got)
                head = bytes(buf[:end])
                found = length_re.search(head)
                if not head.startswith(b"HTTP/1.1 200") or found is None:
                    errors.append(f"{path}: unexpected answer {head[:200]!r}")
                    return
                total = end + 4 + int(found.group(1))
                while got < total:
                    got += sock.recv_into(view[got:])
                counts[i] += 1

    took = in_threads(run, clients)
    if errors:
        raise SystemExit(errors[0])
    return sum(counts) / took


def in_process(cluster: dict, path: str, seconds: float) -> float:
    import anyio

    from proximo.testing import World

    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp) / "w", cluster)
        app = world.sim.app
        scope = {"type": "http", "method": "GET", "path": "/api2/json" + path, "raw_path": ("/api2/json" + path).encode(),
                 "query_string": b"", "headers": [(b"authorization", f"PVEAPIToken={TOKEN_ID}={world.secret}".encode())]}

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise SystemExit(f"{path}: {message['status']}")

        async def run() -> float:
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                await app(scope, receive, send)
                n += 1
            return n / (time.perf_counter() - start)

        return anyio.run(run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--guests", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    cluster = generate(nodes=args.nodes, guests=args.guests)
    guest = next(r for r in cluster["api"]["/cluster/resources"] if r.get("type") == "qemu")
    paths = {"/cluster/resources": "/cluster/resources",
             "guest config": f"/nodes/{guest['node']}/qemu/{guest['vmid']}/config"}
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = Path(tmp) / "big.json"
        snapshot.write_text(json.dumps(cluster))
        port = free_port()
        env = {**os.environ, "PROXIMO_SIM_SECRET": SECRET, "PROXIMO_TOKEN_ID": TOKEN_ID, "PROXIMO_HOME": str(Path(tmp) / "home")}
        proc = subprocess.Popen([sys.executable, "-m", "proximo", "sim", "--port", str(port), "--snapshot", str(snapshot)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    httpx.get(url + "/api2/json/version", headers={"Authorization": f"PVEAPIToken={TOKEN_ID}={SECRET}"}).raise_for_status()
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None:
                        raise SystemExit(f"proximo sim exited: {proc.stderr.read().decode() if proc.stderr else ''}") from None
                    time.sleep(0.1)
            print(f"cluster: {args.nodes} nodes, {args.guests + 15} guests; {args.clients} keep-alive clients, {args.seconds:.0f} s each")
            print(f"{'GET':<22} {'app req/s':>10} {'HTTP req/s':>11} {'goal':>6} {'httpx req/s':>12} {'answer':>10}")
            for name, path in paths.items():
                alone = in_process(cluster, path, args.seconds)
                raw = hammer_raw(port, path, args.seconds, args.clients)
                rate, size = hammer(url, path, args.seconds, args.clients)
                print(f"{name:<22} {alone:10.0f} {raw:11.0f} {GOALS[name]:6d} {rate:12.0f} {size / 1000:8.1f} KB")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
