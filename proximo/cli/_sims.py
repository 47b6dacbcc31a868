"""``proximo sim --clusters N``: several simulated clusters, one port each, and the clusters file that reaches them."""

from __future__ import annotations

import copy
import secrets
from pathlib import Path
from typing import Any

import anyio
import click

from .._listening import listen, url_host
from .._world import clusters_file
from ..model import load_snapshot
from ..sim import Simulator, load_faults, named_cluster, serve_config


def serve_clusters(doc: dict[str, Any], count: int, *, semantics: Any, token_id: str, folder: Path, host: str, port: int,
                   latency: float, pve_version: str | None, shown: str, faults_file: str | None = None) -> None:
    """Serve ``count`` copies of ``doc`` as clusters ``sim1`` ... ``simN`` (corosync names differ; node names repeat, as
    they do between real clusters), on ``port``, ``port + 1``, ... (0: ports the kernel picks), each with a token
    secret of its own; write the clusters file in ``folder`` and say where it is. ``faults_file``: each cluster
    injects the failures it describes, with rules, counts and seeded draws of its own."""
    import uvicorn

    names = [f"sim{i}" for i in range(1, count + 1)]
    keys = {name: secrets.token_hex(16) for name in names}
    sims = {name: Simulator(load_snapshot(named_cluster(copy.deepcopy(doc), name)), semantics, tokens={token_id: keys[name]},
                            latency=latency, pve_version=pve_version, faults=load_faults(faults_file) if faults_file else None)
            for name in names}
    sockets = {}
    try:
        for offset, name in enumerate(names):
            sockets[name] = listen(host, port + offset if port else 0)  # bound first: the file names the real ports
        urls = {name: f"http://{url_host(host)}:{sock.getsockname()[1]}" for name, sock in sockets.items()}
        path = clusters_file(folder, [(name, urls[name], token_id, keys[name]) for name in names])
        for name in names:
            release = sims[name].model.version.get("version") or sims[name].model.release
            click.echo(f"simulated PVE {release} cluster {name} at {urls[name]}/api2/json ({shown})", err=True)
        click.echo(f"clusters file {path} (token files beside it):", err=True)
        click.echo(path.read_text().rstrip(), err=True)
        click.echo(f"  export PROXIMO_CLUSTERS={path}", err=True)

        async def serve_all() -> None:
            async with anyio.create_task_group() as tg:
                for name in names:
                    server = uvicorn.Server(serve_config(sims[name].app, log_level="warning"))
                    tg.start_soon(lambda s=server, sock=sockets[name]: s.serve(sockets=[sock]))

        anyio.run(serve_all)
    finally:
        for sock in sockets.values():
            sock.close()
