"""The approval console: a small web app where a person sees a plan's blast radius and approves or denies it.

``proximo console`` serves it on loopback (``--sim``: over the simulated cluster, with a demo approver); in service
mode the service runs it itself (``PROXIMO_CONSOLE_PORT``), as the service's account. See docs/console.md for the
pages and security properties, and docs/trust-model.md for what it guarantees in which deployment.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from .._listening import is_loopback, listen, serve_on, url_host
from .._settings import Settings
from ..errors import BadInput
from ..trust._pipeline import Host
from .._host import HostFactory
from ._app import build_console

if TYPE_CHECKING:
    from .._world import World

__all__ = ["DEFAULT_PORT", "DEMO_APPROVER", "build_console", "check_bind", "serve_console", "serve_console_app",
           "shared_host"]

DEFAULT_PORT = 8766
DEMO_APPROVER = "console-demo"


def check_bind(host: str, tls: tuple[Path, Path] | None) -> None:
    """Off loopback, the console needs TLS: a session cookie and a passphrase must not cross a network in the clear."""
    if tls is None and not is_loopback(host):
        raise BadInput(f"refusing to serve the console on {host} without TLS: a passphrase and a session cookie would "
                       "cross the network in the clear. Give --tls-cert and --tls-key, or bind to 127.0.0.1")


def _say(line: str) -> None:
    print(f"proximo console: {line}", file=sys.stderr, flush=True)


async def serve_console_app(factory: HostFactory, *, host: str, port: int, tls: tuple[Path, Path] | None = None,
                            allowed_hosts: tuple[str, ...] = (), where: str = "") -> None:
    """Serve the console until cancelled (the service runs this in its own task group, with its own host)."""
    import uvicorn

    check_bind(host, tls)
    sock = listen(host, port)
    base = f"{'https' if tls else 'http'}://{url_host(host)}:{sock.getsockname()[1]}/"

    def config() -> uvicorn.Config:
        app = build_console(factory, bind_host=host, allowed_hosts=allowed_hosts, tls=tls is not None)
        return uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2,
                              ssl_certfile=str(tls[0]) if tls else None, ssl_keyfile=str(tls[1]) if tls else None)

    await serve_on(sock, config, lambda: _say(f"serving at {base}{' on ' + where if where else ''}"))


def shared_host(host: Host) -> HostFactory:
    """A factory that hands out a host someone else opened (the service's own): the console does not close it."""

    @asynccontextmanager
    async def factory() -> AsyncIterator[Host]:
        yield host

    return factory


async def serve_console(settings: Settings, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, sim: bool = False,
                        tls: tuple[Path, Path] | None = None, allowed_hosts: tuple[str, ...] = (),
                        demo_plans: bool = True) -> None:
    """``proximo console``: on the configured cluster, or (``sim``) the simulated one with a demo approver."""
    check_bind(host, tls)
    if sim:
        from .._world import sim_world
        from ..trust._approvers import ApproverStore

        world = sim_world(settings)
        store = ApproverStore(world.home)
        if DEMO_APPROVER in store.names():
            store.remove(DEMO_APPROVER)
        passphrase = secrets.token_urlsafe(18)
        store.add(DEMO_APPROVER, passphrase)
        _say(f"demo approver {DEMO_APPROVER!r}, passphrase {passphrase} (shown once; a new one each run)")
        if demo_plans:
            await _demo_plans(world)
        await serve_console_app(world.host, host=host, port=port, tls=tls, allowed_hosts=allowed_hosts,
                                where=f"the built-in simulated cluster (ledger and plans in {world.home})")
        return
    if not settings.url:
        raise BadInput("no cluster configured: set PROXIMO_URL, PROXIMO_TOKEN_ID and PROXIMO_TOKEN_SECRET "
                       "(or `proximo console --sim` for the simulated cluster)")
    from .._host import make_client, make_packs, open_host

    await make_client(settings).aclose()  # names what is missing before anyone signs in
    packs = make_packs(settings)
    await serve_console_app(partial(open_host, settings, packs=packs), host=host, port=port, tls=tls,
                            allowed_hosts=allowed_hosts, where=settings.url)


async def _demo_plans(world: World) -> None:
    """The demo's two plans, made by its agent when none waits, so a newcomer has something to look at."""
    from .._world import demo_plans
    from ._waiting import WaitingBoard

    async with world.host() as host:
        board = WaitingBoard(host)
        board.refresh()
        if board.plans():
            return
    made = await demo_plans(world)
    _say("made the demo's plans, as an agent would: " + "; ".join(f"{p.plan_id} {p.tool} ({p.risk.value})" for p in made))
