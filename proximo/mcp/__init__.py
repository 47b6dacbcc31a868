"""The MCP face: every Proximo tool over stdio or streamable HTTP, through the host and nothing else.

    build_server(host_factory, settings, tools=registry)   an MCPServer; one host per server lifetime
    http_app(server, token=...)                            its streamable HTTP app behind a bearer token
    serve_mcp(settings, mcp_settings, transport=..., sim=...)  what ``proximo serve`` / ``proximo-proxmox`` run

Tools (``McpSettings.toolset``): ``compact``, the default, serves ``proximo_search``, ``proximo_describe``,
``proximo_read`` and ``proximo_plan``, which reach every tool in the host's registry by id (``_compact``); ``full``
serves one ``pve_*`` tool per tool (generated, see ``_tools``). Both add ``proximo_apply``, ``proximo_undo``,
``proximo_ledger_verify`` and ``proximo_ledger_tail``; plans, ledger records and the plan's schema are resources.
How a person approves what the agent cannot: ``_approval``. How HTTP is guarded: ``_http``.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, Literal

import anyio
import msgspec
from mcp.server.mcpserver import MCPServer

from .._host import HostFactory
from ..trust._pipeline import Host
from .._settings import Settings
from .._tools import ToolRegistry
from .._world import sim_world
from ..errors import BadInput, ProximoError
from ._compact import compact_tools
from ._face import clusters_tool, face_tools
from .._listening import is_loopback, listen, serve_on, url_host
from ._http import BearerAuth, check_bind, http_app, transport_security
from ._resources import add_resources
from ._results import FaceState
from ._settings import McpSettings
from ._tools import HostTool, add_cluster_parameter, cluster_bytes, select_specs


__all__ = ["BearerAuth", "FaceState", "McpSettings", "build_server", "http_app", "is_loopback", "serve_async",
           "serve_mcp", "transport_security"]

log = logging.getLogger("proximo.mcp")


INSTRUCTIONS = """\
Proximo manages a Proxmox VE cluster; every change goes PLAN -> APPROVE -> APPLY -> PROVE -> UNDO.
Tools named pve_* either read (answered at once) or plan (titled "Plan: ..."). A plan changes nothing: it shows
the exact API calls, the blast radius across the cluster, the risk and the undo (its JSON schema is the resource
proximo://schema/plan). To make the change, call proximo_apply(plan_id): the host runs exactly the planned steps.
Plans above the auto-approval level need a person's approval, which no tool argument can give: the client shows
the person a form, or the plan waits for `proximo approve PLAN_ID` in a terminal. proximo_undo(seq) plans the undo
of an applied change. Every answer carries the ledger head (seq and hash): the hash-chained record of every plan,
approval and apply."""

COMPACT_INSTRUCTIONS = """\
Proximo manages a Proxmox VE cluster; every change goes PLAN -> APPROVE -> APPLY -> PROVE -> UNDO.
Find a tool with proximo_search (words such as: storage, firewall rule, acl, snapshot), see its parameters and an
example with proximo_describe, then run it by id: proximo_read(tool, params) for a read (answered at once),
proximo_plan(tool, params) for a change. A plan changes nothing: it shows the exact API calls, the blast radius
across the cluster, the risk and the undo (its JSON schema is the resource proximo://schema/plan). To make the
change, call proximo_apply(plan_id): the host runs exactly the planned steps. Plans above the auto-approval level
need a person's approval, which no tool argument can give: the client shows the person a form, or the plan waits
for `proximo approve PLAN_ID` in a terminal. proximo_undo(seq) plans the undo of an applied change. Every answer
carries the ledger head (seq and hash): the hash-chained record of every plan, approval and apply."""

READ_ONLY_INSTRUCTIONS = """Proximo, read-only (PROXIMO_READ_ONLY=1): the pve_* tools read a Proxmox VE cluster, and proximo_ledger_verify /
proximo_ledger_tail show the hash-chained record of what was planned, approved and applied. Nothing here plans or
changes anything. Every answer carries the ledger head (seq and hash)."""

COMPACT_READ_ONLY_INSTRUCTIONS = """\
Proximo, read-only (PROXIMO_READ_ONLY=1): find a read tool with proximo_search, see its parameters with
proximo_describe and run it with proximo_read(tool, params); proximo_ledger_verify / proximo_ledger_tail show the
hash-chained record of what was planned, approved and applied. Nothing here plans or changes anything. Every answer
carries the ledger head (seq and hash)."""

CLUSTERS_NOTE = """

This server manages several clusters ({names}{default}): every tool takes cluster=NAME, and proximo_clusters lists
them. A plan applies only on the cluster it was made on."""

NOTHING_SELECTED = ("PROXIMO_TOOLS{ro} selects no tool: this server serves only the ledger tools{apply}. "
                    "See `proximo tools` for the ids.")


def instructions(settings: McpSettings, served: int) -> str:
    compact = settings.toolset == "compact"
    if settings.read_only:
        text = COMPACT_READ_ONLY_INSTRUCTIONS if compact else READ_ONLY_INSTRUCTIONS
    else:
        text = COMPACT_INSTRUCTIONS if compact else INSTRUCTIONS
    return text if served else f"{nothing_selected(settings)}\n\n{text}"


def nothing_selected(settings: McpSettings) -> str:
    return NOTHING_SELECTED.format(ro=" with PROXIMO_READ_ONLY=1" if settings.read_only else "",
                                   apply="" if settings.read_only else " (and apply and undo, for plans made before)")


def build_server(host_factory: HostFactory | Mapping[str, HostFactory], settings: McpSettings | None = None, *,
                 tools: ToolRegistry, default_cluster: str = "", name: str = "proximo") -> MCPServer[FaceState]:
    """An MCP server whose tools are generated from ``tools``, the registry of the hosts ``host_factory`` opens.

    ``host_factory``: one cluster's, or each cluster's by name (PROXIMO_CLUSTERS); with several, every tool takes
    ``cluster`` (one of the names; required where ``default_cluster`` is "" and the tool works on one cluster) and
    ``proximo_clusters`` lists them. The hosts are opened in the server's lifespan (once per stdio process, once per
    HTTP server, once per in-memory connection) and are the only thing the handlers call.
    """
    from .. import __version__

    settings = settings or McpSettings()
    factories = dict(host_factory) if isinstance(host_factory, Mapping) else {"": host_factory}
    several = len(factories) > 1
    if default_cluster and default_cluster not in factories:
        raise BadInput(f"the default cluster {default_cluster!r} is not served ({', '.join(factories)})")

    @asynccontextmanager
    async def lifespan(_: MCPServer[FaceState]) -> AsyncIterator[FaceState]:
        async with AsyncExitStack() as stack:
            hosts: dict[str, Host] = {}
            for cluster, factory in factories.items():
                host = await stack.enter_async_context(factory())
                if host.tools is not tools:
                    raise RuntimeError("build_server: the host's tool registry is not the one the tools were generated from")
                if cluster and host.settings.cluster != cluster:
                    raise RuntimeError(f"build_server: the host for {cluster!r} is on cluster {host.settings.cluster!r}")
                hosts[host.settings.cluster] = host
            only = next(iter(hosts)) if len(hosts) == 1 else ""
            yield FaceState(hosts=hosts, settings=settings, default=default_cluster or only)

    specs = select_specs(tools, settings)
    if not specs:  # said at startup (stderr) and in the instructions the client reads
        log.warning("%s", nothing_selected(settings))
    names = list(factories) if several else []
    if settings.toolset == "compact":
        served: list[Any] = compact_tools(specs, read_only=settings.read_only, registered={t.id for t in tools})
    else:
        reserve = cluster_bytes(names) if several else 0
        served = [HostTool.from_spec(spec, reserve=reserve) for spec in specs]
    own = face_tools(read_only=settings.read_only)
    text = instructions(settings, len(specs))
    if several:
        own.append(clusters_tool())
        add_cluster_parameter([*served, *own], names, required=not default_cluster)
        text += CLUSTERS_NOTE.format(names=", ".join(names), default=f"; the default is {default_cluster}"
                                     if default_cluster else "; name one in every call that reads, plans or applies")
    server: MCPServer[FaceState] = MCPServer(
        name, title="Proximo", version=__version__, lifespan=lifespan, instructions=text,
        tools=[*served, *own], log_level="WARNING",
    )
    add_resources(server)
    return server


# --- serving ------------------------------------------------------------------------------------------


def _stderr_logging() -> None:
    """Everything the server says goes to stderr: on stdio, stdout is the protocol stream."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="proximo: %(name)s: %(message)s")


def _say(line: str) -> None:
    print(f"proximo: {line}", file=sys.stderr, flush=True)  # never stdout: on stdio that is the protocol stream


def sim_approve_command() -> str:
    """What a person types to approve a plan made on ``serve --sim`` (naming PROXIMO_HOME when it was set)."""
    home = os.environ.get("PROXIMO_HOME")
    return (f"PROXIMO_HOME={shlex.quote(home)} " if home else "") + "proximo approve --sim"


async def serve_async(settings: Settings, mcp_settings: McpSettings, *, transport: Literal["stdio", "http"] = "stdio",
                      host: str = "127.0.0.1", port: int = 8765, sim: bool = False) -> None:
    _stderr_logging()
    token = check_bind(host, mcp_settings.http_token) if transport == "http" else None
    factory: HostFactory | dict[str, HostFactory]
    default = ""
    if sim:
        world = sim_world(settings)
        factory = world.host
        registry = world.packs.tools
        mcp_settings = msgspec.structs.replace(mcp_settings, approve_command=sim_approve_command())
        where = f"the built-in simulated cluster (ledger and plans in {world.home})"
    else:
        from .._host import make_packs, served_clusters

        packs = make_packs(settings)
        registry = packs.tools
        factory, default, where = await served_clusters(settings, packs)
    server = build_server(factory, mcp_settings, tools=registry, default_cluster=default)
    count = len(await server.list_tools())
    if transport == "stdio":
        _say(f"MCP server on stdio: {count} tools ({mcp_settings.toolset} toolset) on {where}")
        await server.run_stdio_async()
        return
    import uvicorn

    assert token is not None
    sock = listen(host, port)  # bound here, so a busy port is one clear line and --port 0 shows the real port

    def config() -> uvicorn.Config:
        if not mcp_settings.http_token:
            _say(f"PROXIMO_HTTP_TOKEN is not set; this run's bearer token is: {token.reveal()}")
        app = http_app(server, token=token, bind_host=host, allowed_hosts=mcp_settings.allowed_hosts)
        return uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")

    await serve_on(sock, config, lambda: _say(f"MCP server at http://{url_host(host)}:{sock.getsockname()[1]}/mcp "
                                              f"(bearer token required): {count} tools ({mcp_settings.toolset} toolset) "
                                              f"on {where}"))


def serve_mcp(settings: Settings, mcp_settings: McpSettings, **options: Any) -> None:
    """Run the server until the client hangs up (stdio) or the process is stopped (HTTP)."""
    try:
        anyio.run(partial(serve_async, settings, mcp_settings, **options))
    except BaseExceptionGroup as group:  # a lifespan failure arrives wrapped by the task groups
        first = _first_proximo_error(group)
        if first is None:
            raise
        raise first from None


def _first_proximo_error(error: BaseException) -> ProximoError | None:
    if isinstance(error, ProximoError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _first_proximo_error(inner)
            if found is not None:
                return found
    return None
