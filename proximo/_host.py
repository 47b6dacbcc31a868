"""Assembling a host from settings: packs, source, ledger, plan store, and the executor (live only)."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .trust._executor import Executor
from .trust._ledger import Actor, LedgerUnreachable
from .trust._pipeline import Host
from .trust._policy import Policy, load_policy, policy_from_table
from ._plugins import PackManager, make_packs
from ._settings import Settings
from ._parsed_cache import ParsedSnapshotCache
from ._sources import LiveSource, SnapshotSource, Source
from .trust._state import Unreachable, open_ledger, open_plans, shared_store
from .errors import BadInput

log = logging.getLogger("proximo.exec")

if TYPE_CHECKING:  # the HTTP stack is imported when a live host is opened: an offline plan needs none of it
    import httpx

    from .pve._client import PveClient


@functools.cache
def _warn_exec_everywhere(home: str) -> None:
    """Once per process (a server opens a host per call): exec is allowed in every container."""
    log.warning("PROXIMO_EXEC_ALLOW=*: a command may be planned in EVERY container (still HIGH, and a person "
                "approves it unless the policy names it as a read); list CTIDs instead")


def make_client(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> PveClient:
    from .pve._client import PveClient
    from .pve._tls import TlsSettings, make_transport

    if not settings.url and settings.clusters:  # several, none chosen: say which there are
        settings = settings.for_cluster(None)
    if not settings.url:
        raise BadInput("no cluster configured: set PROXIMO_URL or PROXIMO_CLUSTERS (or use --snapshot FILE, or `proximo demo`)")
    if not settings.token_id or not settings.token_secret:
        raise BadInput("set PROXIMO_TOKEN_ID and PROXIMO_TOKEN_SECRET (or PROXIMO_TOKEN_FILE)")
    if transport is None and settings.url.startswith("https://"):
        transport = make_transport(TlsSettings(ca_file=settings.ca_file, fingerprint=settings.tls_fingerprint))
    try:
        return PveClient(settings.url, settings.token_id, settings.token_secret.reveal(), transport=transport)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def policy_of(settings: Settings) -> Policy:
    """The policy of the cluster ``settings`` reach: its inline table (PROXIMO_CLUSTERS), else its policy file."""
    if settings.policy_table is not None:
        return policy_from_table(settings.policy_table, f"PROXIMO_CLUSTERS: cluster {settings.cluster!r}: policy")
    return load_policy(settings.policy_path)


@asynccontextmanager
async def open_host(settings: Settings, *, snapshot: str | Path | None = None, transport: httpx.AsyncBaseTransport | None = None,
                    packs: PackManager | None = None, cluster: str | None = None) -> AsyncIterator[Host]:
    """A host on a live cluster (``PROXIMO_URL``, or ``cluster`` of PROXIMO_CLUSTERS; none named: the one chosen,
    the default, or the only one) or, with ``snapshot``, offline on a snapshot file."""
    if cluster is not None:
        settings = settings.for_cluster(cluster)
    packs = packs or make_packs(settings)
    if settings.exec_enabled and "*" in settings.exec_allow:
        _warn_exec_everywhere(str(settings.home))
    policy = policy_of(settings)  # a broken policy stops the host here, before any read
    client: PveClient | None = None
    source: Source
    executor: Executor | None = None
    if snapshot is not None:
        source = SnapshotSource(snapshot, cache=ParsedSnapshotCache(settings.home / "parsed-snapshots"))
    else:
        client = make_client(settings, transport=transport)
        source = LiveSource(client, settings.url, remember=settings.plan_read_age > 0)
        from .trust._ssh import SshRunner

        executor = Executor(client, ssh=SshRunner(settings))
    store = shared_store(settings)
    try:
        ledger = open_ledger(settings, store)
        plans = open_plans(settings, store)
    except LedgerUnreachable:  # reads answer without it; anything that must be recorded refuses in one line
        ledger = Unreachable(lambda: open_ledger(settings, store))  # type: ignore[assignment]
        plans = Unreachable(lambda: open_plans(settings, store))  # type: ignore[assignment]
    host: Host | None = None
    try:
        host = Host(settings, source=source, packs=packs, ledger=ledger, plans=plans, executor=executor, policy=policy)
        if executor is not None and not isinstance(ledger, Unreachable) and ledger.open_applies():
            await host.reconcile(Actor(token_id=settings.token_id or "-", face="recovery", client="proximo start-up"))
        try:
            yield host
        finally:
            host.flush_repeats()
    finally:
        plans.close()
        (host.ledger if host is not None else ledger).close()  # a seal may have given the host a new one
        if client is not None:
            await client.aclose()


HostFactory = Callable[[], AbstractAsyncContextManager[Host]]


async def served_clusters(settings: Settings, packs: PackManager) -> tuple[HostFactory | dict[str, HostFactory], str, str]:
    """What a long-running face (MCP, A2A) serves: a host factory for the one cluster, or one per cluster of
    PROXIMO_CLUSTERS by name; the default cluster ("" where several have none); where, for its start-up line.
    Each cluster's client is made first, so what is missing is said before anyone connects."""
    if not settings.clusters:
        await make_client(settings).aclose()
        return functools.partial(open_host, settings, packs=packs), "", settings.url
    for cluster in settings.clusters:
        await make_client(settings.for_cluster(cluster)).aclose()
    factories: dict[str, HostFactory] = {cluster: functools.partial(open_host, settings, packs=packs, cluster=cluster)
                                         for cluster in settings.clusters}
    # the chosen one (PROXIMO_CLUSTER), the file's default, the only one, or ""
    return factories, settings.cluster, f"{len(factories)} clusters ({', '.join(factories)})"
