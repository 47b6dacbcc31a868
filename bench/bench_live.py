"""A live plan against the simulator over loopback HTTP with a per-request delay, next to the naive way to read.

    uv run python bench/bench_live.py [--nodes 32] [--guests 4000] [--latency 0.005]

Serves the cluster of bench/gen_cluster.py with uvicorn on 127.0.0.1 (in this process, each request delayed by
``--latency`` seconds as a distant pveproxy would be), then in the same run:

- the naive sequential read: ``GET .../config`` of every guest, one request at a time, with one httpx client;
- ``proximo plan storage.delete storage=local-zfs --json`` in a new process pointed at it (whole process), with
  the number of requests the simulator served for it.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_cluster import generate  # noqa: E402

from proximo.sim import serve_config  # noqa: E402
from proximo.testing import TOKEN_ID, World  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--guests", type=int, default=4000)
    parser.add_argument("--latency", type=float, default=0.005)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp) / "world", generate(nodes=args.nodes, guests=args.guests))
        world.sim.latency = args.latency
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(serve_config(world.sim.app, log_level="warning", lifespan="off", access_log=False))
        threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
        while not server.started:
            time.sleep(0.01)
        headers = {"Authorization": f"PVEAPIToken={TOKEN_ID}={world.secret}"}
        guests = sorted(world.model.guests.values(), key=lambda g: g.vmid)
        print(f"cluster: {args.nodes} nodes, {len(guests)} guests; {args.latency * 1000:.0f} ms per request")

        start = time.perf_counter()
        with httpx.Client(base_url=url, headers=headers) as client:
            for g in guests:
                client.get(f"/api2/json/nodes/{g.node}/{g.kind}/{g.vmid}/config").raise_for_status()
        naive = time.perf_counter() - start
        print(f"naive sequential read of every guest config: {naive:.2f} s, {len(guests)} GETs")

        served = len(world.sim.requests)
        env = {**os.environ, "PROXIMO_URL": url, "PROXIMO_TOKEN_ID": TOKEN_ID, "PROXIMO_TOKEN_SECRET": world.secret,
               "PROXIMO_HOME": str(Path(tmp) / "home")}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "proximo", "plan", "storage.delete", "storage=local-zfs", "--json"],
                              env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        requests = len(world.sim.requests) - served
        outcome = "ok" if done.returncode == 0 else f"failed: {done.stderr.strip().splitlines()[-1:]}"
        print(f"live plan storage.delete (whole process): {elapsed:.2f} s, {requests} requests "
              f"({requests / len(guests):.1f} per guest), {elapsed / naive:.2f}x the naive read; {outcome}")
        server.should_exit = True


if __name__ == "__main__":
    main()
