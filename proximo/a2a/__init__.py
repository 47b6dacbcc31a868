"""The A2A face (``proximo-a2a``, the ``[a2a]`` extra): Proximo as an agent other agents can hire.

    build_app(host_factory, tools=registry, home=..., base_url=...)   a Starlette app: card, JSON-RPC, HTTP+JSON
    serve_a2a(settings, host=..., port=41241, sim=...)                 what ``proximo-a2a`` runs

The same host, pipeline, tool registry and ledger as the MCP face; the card's skills (inspect, plan, apply, undo,
audit) are generated from the registry. The server: ``_app``; requests: ``_request``; tasks: ``_executor``; task
state beside the ledger: ``_store``; the HTTP guard (Host allow-list, bearer token off loopback): ``_guard``.
See docs/a2a.md. Importing this package costs nothing: the A2A SDK is imported with ``_app``, when a server is built.
"""

from __future__ import annotations

import logging
import sys
from functools import partial
from typing import Any

import click

from ._guard import DEFAULT_PORT

__all__ = ["DEFAULT_PORT", "build_app", "main", "serve_a2a"]


def __getattr__(name: str) -> Any:
    if name in ("build_app", "serve_a2a"):
        from . import _app

        return getattr(_app, name)
    raise AttributeError(name)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", "bind", default="127.0.0.1", show_default=True,
              help="Address to listen on; off loopback needs PROXIMO_A2A_TOKEN_FILE.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port (0: any free port).")
@click.option("--sim", is_flag=True, help="Serve the built-in simulated cluster (as `proximo serve --sim`).")
def main(bind: str, port: int, sim: bool) -> None:
    """Proximo's A2A server: other agents plan, apply (a person approves above auto-approval), undo and audit."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="proximo-a2a: %(name)s: %(message)s")
    import anyio

    from .._settings import Settings
    from ..errors import ProximoError

    try:
        from ._app import serve_a2a
    except ImportError as exc:
        raise click.ClickException(f"the A2A face needs the a2a extra: pip install 'proximo-proxmox[a2a]' ({exc})") from None
    try:
        settings = Settings.from_env()
        anyio.run(partial(serve_a2a, settings, host=bind, port=port, sim=sim))
    except ProximoError as exc:
        raise click.ClickException(str(exc)) from None
    except BaseExceptionGroup as group:
        first = next((e for e in group.exceptions if isinstance(e, ProximoError)), None)
        if first is None:
            raise
        raise click.ClickException(str(first)) from None

