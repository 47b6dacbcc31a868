"""A simulated cluster with everything a host needs, in one folder: for tests, the demo and ``serve --sim``.

``World`` builds a simulator from a snapshot (the built-in demo cluster by default) and opens hosts against
it in-process (httpx ASGI transport) or over a real loopback socket. Nothing here imports pytest: the
pytest fixtures live in :mod:`proximo.testing`.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from ._host import make_packs, open_host
from .trust._approvers import ApproverStore
from .trust._ledger import Actor, Ledger
from .trust._pipeline import Credential, Host
from ._plugins import PackManager
from ._settings import Settings
from .trust._state import open_ledger
from .model import SNAPSHOT_FORMAT, ClusterModel, load_snapshot
from .sim import Simulator, demo_snapshot
from ._types import Plan

TOKEN_ID = "proximo@pve!agent"
APPROVER = "tester"
DEMO_STORAGE = "local-zfs"  # boot disks live on it: deleting it is the demo's first story
DEMO_OPERATOR = "192.168.1.50"  # outside the nodes' local network, so only the API port rules let it in


def operator_access(role: str = "Administrator") -> dict[str, list[dict[str, Any]]]:
    """``/access/users?full=1`` and ``/access/acl`` rows for Proximo's user and its privilege-separated token, both
    with ``role`` on /: what a test cluster needs for the token's writes to pass Proxmox's permission checks."""
    owner, _, name = TOKEN_ID.partition("!")
    return {
        "/access/users?full=1": [{"userid": owner, "enable": 1, "expire": 0, "groups": "", "realm-type": "pve",
                                  "tokens": [{"tokenid": name, "privsep": 1, "expire": 0}]}],
        "/access/acl": [{"path": "/", "type": kind, "ugid": ugid, "roleid": role, "propagate": 1}
                        for kind, ugid in (("user", owner), ("token", TOKEN_ID))],
    }


def snapshot_from(api: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A snapshot document from GET responses written in a test (docs/architecture.md, "The snapshot file")."""
    return {"format": SNAPSHOT_FORMAT, "captured_at": "2026-01-01T00:00:00Z", "api": api, "extra": extra or {}}


class World:
    """A simulated cluster plus everything a host needs, in a temporary folder."""

    def __init__(self, home: Path, snapshot: dict[str, Any] | None = None, *, extra_packs: Iterable[tuple[str, object]] = (),
                 env: dict[str, str] | None = None, pve_version: str | None = None, settings: Settings | None = None,
                 secret: str | None = None, packs: PackManager | None = None) -> None:
        """``pve_version``: the PVE release the simulated cluster runs (``8.4``, ``9.1``, or a version such as
        ``8.4.1``); by default the snapshot's own ``/version``, and 9.1 for the demo cluster or a snapshot without one.
        ``settings``, ``secret`` and ``packs``: one of several clusters (:class:`SimClusters`) gives its own."""
        self.home = home
        self.secret = secret or secrets.token_hex(16)
        self.settings = settings or Settings.from_env({
            "PROXIMO_HOME": str(home), "PROXIMO_URL": "http://pve.sim:8006", "PROXIMO_TOKEN_ID": TOKEN_ID,
            "PROXIMO_TOKEN_SECRET": self.secret, **(env or {})})
        self.packs: PackManager = packs or make_packs(self.settings, extra=extra_packs)
        # the caller's document is copied (the simulator changes what it serves); the demo's is parsed afresh each time
        self.snapshot = copy.deepcopy(snapshot) if snapshot else demo_snapshot()
        self.sim = Simulator(load_snapshot(self.snapshot), self.packs.semantics, tokens={TOKEN_ID: self.secret},
                             pve_version=pve_version)
        self.actor = Actor(token_id=TOKEN_ID, face="test", client="pytest")
        self._person: Credential | None = None

    @property
    def person(self) -> Credential:
        """An approver's credential, for tests that play the person: the approver is made in this world on first use."""
        if self._person is None:
            passphrase = secrets.token_urlsafe(18)
            ApproverStore(self.home).add(APPROVER, passphrase)
            self._person = Credential(APPROVER, passphrase)
        return self._person

    def ledger(self) -> Ledger:
        """This world's ledger, opened as the host opens it (keyed, with its high-water mark)."""
        return open_ledger(self.settings)

    @property
    def model(self) -> ClusterModel:
        return self.sim.model

    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=self.sim.app)

    @asynccontextmanager
    async def host(self, *, url: str | None = None, **settings: Any) -> AsyncIterator[Host]:
        """A host on the simulator: in-process, or over HTTP at ``url`` (e.g. a loopback uvicorn)."""
        import msgspec

        s = msgspec.structs.replace(self.settings, **settings) if settings else self.settings
        if url:
            s = msgspec.structs.replace(s, url=url)
        async with open_host(s, transport=None if url else self.transport(), packs=self.packs) as host:
            yield host

    @asynccontextmanager
    async def offline(self, path: Path | None = None) -> AsyncIterator[Host]:
        """A host on a snapshot file of the simulator's current state."""
        import json

        from .model import dump_snapshot

        path = path or self.home / "snapshot.json"
        path.write_text(json.dumps(dump_snapshot(self.sim.model)))
        async with open_host(self.settings, snapshot=path, packs=self.packs) as host:
            yield host


async def demo_plans(world: World) -> list[Plan]:
    """The two plans of ``proximo demo`` a person most wants to look at, made as an agent makes them: deleting the
    storage boot disks live on (HIGH), and enabling the cluster firewall with policy DROP while the operator manages
    the cluster from DEMO_OPERATOR (CRITICAL: a lockout). ``proximo console --sim`` and its screenshots show them."""
    async with world.host() as host:
        storage = await host.plan("storage.delete", {"storage": DEMO_STORAGE}, world.actor)
    async with world.host(admin_sources=[DEMO_OPERATOR]) as host:
        firewall = await host.plan("firewall.options.set", {"level": "cluster", "enable": 1, "policy_in": "DROP"}, world.actor)
    return [storage, firewall]


def clusters_file(folder: Path, clusters: Iterable[tuple[str, str, str, str]], *, default: str = "") -> Path:
    """A clusters file (PROXIMO_CLUSTERS) in ``folder`` for each (name, URL, token id, secret), each secret in a token
    file of its own beside it (mode 0600); ``default``: the file's default cluster."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"default = {json.dumps(default)}", ""] if default else []
    for name, url, token_id, secret in clusters:
        token = folder / f"{name}.token"
        token.touch(mode=0o600)
        token.write_text(secret + "\n")
        lines += ["[[cluster]]", f"name = {json.dumps(name)}", f"url = {json.dumps(url)}", f"token_id = {json.dumps(token_id)}",
                  f"token_file = {json.dumps(token.name)}", ""]
    path = folder / "clusters.toml"
    path.write_text("\n".join(lines))
    return path


class SimClusters:
    """Several simulated clusters and one Proximo on them all: one home (one ledger, one plan store), a clusters file,
    and a :class:`World` per cluster: the demo cluster (or ``snapshot``) under the cluster's name, its nodes keeping
    theirs (clusters often share node names). Each serves in-process at ``http://NAME.sim:8006``."""

    def __init__(self, home: Path, names: Iterable[str] = ("east", "west"), *, snapshot: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None) -> None:
        from .sim import named_cluster

        self.home = home
        keys = {name: secrets.token_hex(16) for name in names}
        self.file = clusters_file(home / "clusters", [(n, f"http://{n}.sim:8006", TOKEN_ID, k) for n, k in keys.items()])
        self.settings = Settings.from_env({"PROXIMO_HOME": str(home), "PROXIMO_CLUSTERS": str(self.file), **(env or {})})
        self.packs: PackManager = make_packs(self.settings)
        self.worlds = {name: World(home, named_cluster(copy.deepcopy(snapshot) if snapshot else demo_snapshot(), name),
                                   settings=self.settings.for_cluster(name), secret=key, packs=self.packs)
                       for name, key in keys.items()}

    def __getitem__(self, name: str) -> World:
        return self.worlds[name]

    def factories(self) -> dict[str, Any]:
        """Each cluster's host factory, by name: what a face serving all of them opens (``build_server``)."""
        return {name: world.host for name, world in self.worlds.items()}


def sim_world(settings: Settings) -> World:
    """The simulated cluster ``proximo serve --sim`` serves; its ledger and plans live in ``PROXIMO_HOME/sim``.

    ``proximo approve --sim`` opens the same folder, so a person can approve what an MCP client planned.
    The operator's own choices that still make sense on a simulated cluster carry over.
    """
    env = {"PROXIMO_AUTO_APPROVE": settings.auto_approve.value, "PROXIMO_PLAN_TTL": str(settings.plan_ttl)}
    if settings.disabled_packs:
        env["PROXIMO_DISABLED_PACKS"] = ",".join(settings.disabled_packs)
    if settings.admin_sources:
        env["PROXIMO_ADMIN_SOURCES"] = ",".join(settings.admin_sources)
    if settings.policy_path:
        env["PROXIMO_POLICY"] = str(settings.policy_path)
    return World(Path(settings.home) / "sim", env=env)
