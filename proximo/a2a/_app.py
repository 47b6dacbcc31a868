"""The A2A server: the Starlette app (card, JSON-RPC, HTTP+JSON behind the guard) and serving it."""

from __future__ import annotations

import logging
import os
import shlex
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from a2a.helpers import new_text_part
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.types import ListTasksRequest, Message, Role, SendMessageRequest, TaskState
from starlette.applications import Starlette

from .._listening import allowed_names, listen, serve_on, url_host
from .._secret import Secret
from .._settings import Settings
from .._tools import ToolRegistry
from ..errors import BadInput
from .._host import HostFactory
from ..trust._pipeline import Host
from ._card import JSONRPC_PATH, REST_PREFIX, agent_card
from ._executor import CLUSTER_KEY, PARKED_KEY, PLAN_KEY, FaceState, ProximoExecutor, decided
from ._guard import DEFAULT_PORT, Guard, check_bind, read_token
from ._store import SqliteTaskStore

log = logging.getLogger("proximo.a2a")
WATCH_INTERVAL = 0.2  # how often a parked task looks at the ledger for a person's decision (server side)


def build_app(host_factory: HostFactory | Mapping[str, HostFactory], *, tools: ToolRegistry, home: Path, base_url: str,
              bind_host: str = "127.0.0.1", token: Secret | None = None, allowed_hosts: tuple[str, ...] = (),
              tool_patterns: tuple[str, ...] = (), read_only: bool = False, approve_command: str = "proximo approve",
              default_cluster: str = "") -> Any:
    """The A2A app: the hosts are opened in its lifespan, task state is kept in ``home/a2a-tasks.sqlite``.

    ``host_factory``: one cluster's, or each cluster's by name; with several, each request names its cluster (or
    goes to ``default_cluster``) and the card's ``clusters`` skill lists them."""
    from .. import __version__

    factories = dict(host_factory) if isinstance(host_factory, Mapping) else {"": host_factory}
    if default_cluster and default_cluster not in factories:
        raise BadInput(f"the default cluster {default_cluster!r} is not served ({', '.join(factories)})")
    specs = tools.select(tool_patterns, read_only=read_only)
    state = FaceState(specs={s.id: s for s in specs}, approve_command=approve_command)
    several = list(factories) if len(factories) > 1 else []
    card = agent_card(base_url, specs, read_only=read_only, version=__version__, clusters=several, default_cluster=default_cluster)
    store = SqliteTaskStore(home / "a2a-tasks.sqlite")
    handler = DefaultRequestHandler(agent_executor=ProximoExecutor(state), task_store=store, agent_card=card)

    watching: set[str] = set()

    async def watch(task_id: str, context_id: str, plan_id: str, parked: int, cluster: str) -> None:
        """Wait for a person's decision in the ledger, then resume the parked task (which applies it or fails)."""
        try:
            while state.hosts and not decided(state.hosts.get(cluster) or state.host, plan_id, parked):  # type: ignore[arg-type]
                await anyio.sleep(WATCH_INTERVAL)
            if not state.hosts:
                return
            resume = Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), task_id=task_id, context_id=context_id,
                             parts=[new_text_part("a person decided (ledger)")])
            await handler.on_message_send(SendMessageRequest(message=resume), ServerCallContext())
        except Exception:  # the task stays parked in the store; a message on it resumes it
            log.exception("resuming A2A task %s", task_id)
        finally:
            watching.discard(task_id)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack, anyio.create_task_group() as tg:
            hosts: dict[str, Host] = {}
            for cluster, factory in factories.items():
                host = await stack.enter_async_context(factory())
                if host.tools is not tools:
                    raise RuntimeError("build_app: the host's tool registry is not the one the card was generated from")
                hosts[host.settings.cluster] = host

            def start_watch(task_id: str, context_id: str, plan_id: str, parked: int, cluster: str) -> None:
                if task_id not in watching:
                    watching.add(task_id)
                    tg.start_soon(watch, task_id, context_id, plan_id, parked, cluster)

            state.hosts, state.watch = hosts, start_watch
            state.default = default_cluster or (next(iter(hosts)) if len(hosts) == 1 else "")
            # tasks parked before a restart: their approval may come (or have come) while the server was down
            for task in (await store.list(ListTasksRequest(status=TaskState.TASK_STATE_INPUT_REQUIRED))).tasks:
                if PLAN_KEY in task.metadata:
                    start_watch(task.id, task.context_id, str(task.metadata[PLAN_KEY]),
                                int(task.metadata[PARKED_KEY]) if PARKED_KEY in task.metadata else 0,
                                str(task.metadata[CLUSTER_KEY]) if CLUSTER_KEY in task.metadata else state.default)
            try:
                yield
            finally:
                state.watch = None
                tg.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await handler.aclose()  # the SDK's tasks end here, not at event-loop shutdown; the store keeps them
                state.hosts = None
                store.close()

    routes = [*create_agent_card_routes(card), *create_jsonrpc_routes(handler, JSONRPC_PATH),
              *create_rest_routes(handler, path_prefix=REST_PREFIX)]
    app = Starlette(routes=routes, lifespan=lifespan)
    return Guard(app, names=allowed_names(bind_host, allowed_hosts), token=token)


def _say(line: str) -> None:
    print(f"proximo-a2a: {line}", file=sys.stderr, flush=True)


def _list(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


async def serve_a2a(settings: Settings, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, sim: bool = False,
                    env: dict[str, str] | None = None) -> None:
    import uvicorn

    env = dict(os.environ) if env is None else env
    token = read_token(env.get("PROXIMO_A2A_TOKEN_FILE", "").strip())
    check_bind(host, token)
    factory: HostFactory | dict[str, HostFactory]
    default = ""
    if sim:
        from .._world import sim_world

        world = sim_world(settings)
        factory = world.host
        registry, home = world.packs.tools, world.home
        where = f"the built-in simulated cluster (ledger and plans in {world.home})"
        prefix = f"PROXIMO_HOME={shlex.quote(env['PROXIMO_HOME'])} " if env.get("PROXIMO_HOME") else ""
        approve = prefix + "proximo approve --sim"
    else:
        from .._host import make_packs, served_clusters

        packs = make_packs(settings)
        registry, home, approve = packs.tools, Path(settings.home), "proximo approve"
        factory, default, where = await served_clusters(settings, packs)
    sock = listen(host, port)
    base = f"http://{url_host(host)}:{sock.getsockname()[1]}"

    def config() -> uvicorn.Config:
        app = build_app(factory, tools=registry, home=home, base_url=base, bind_host=host, token=token,
                        allowed_hosts=_list(env.get("PROXIMO_ALLOWED_HOSTS", "")),
                        tool_patterns=_list(env.get("PROXIMO_TOOLS", "")),
                        read_only=env.get("PROXIMO_READ_ONLY", "").strip().lower() in ("1", "true", "yes", "on"),
                        approve_command=approve, default_cluster=default)
        return uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")

    await serve_on(sock, config, lambda: _say(f"A2A server at {base} (card: {base}/.well-known/agent-card.json; "
                                              f"{'bearer token required' if token else 'loopback only, no token'}) on {where}"))
