"""Service mode: Proximo as its own system user, reached by agents and approvers over unix sockets only.

    $PROXIMO_SERVICE_DIR/            (default /run/proximo, 0755)
        agent.sock      MCP for agents: newline-delimited JSON-RPC, as on stdio. Each connection is served by its own
                        ``proximo serve`` process of the service (inetd style), so an agent session is exactly a
                        stdio session, with the peer's unix account in every ledger record it causes.
        approve.sock    approvals, one JSON object per line each way. The kernel tells the service who is on the
                        other end (SO_PEERCRED); only accounts in PROXIMO_APPROVERS may approve, never the service's
                        own account and never an agent's (PROXIMO_AGENTS).

With ``PROXIMO_A2A_PORT`` (and ``PROXIMO_A2A_TOKEN_FILE``) the service also runs the A2A face, ``proximo-a2a``, on
that loopback port as a child process: same state, same ledger; its parked tasks move on when an approver approves
over approve.sock. With ``PROXIMO_CONSOLE_PORT`` the service serves the approval console (``proximo.console``) itself,
on loopback (TLS needed elsewhere): approvers sign in there with their approver passphrase.

The state directory (token, ledger and its key and mark, plans, approvers) belongs to the service's account, 0700:
an agent running as another account can read none of it, so it can neither use the token directly nor forge
the ledger. ``proximo connect`` is the thin stdio client an MCP client spawns; ``proximo approve`` talks to
approve.sock when the service runs. ``install_files`` is what ``proximo service install`` writes or prints.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shlex
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import anyio
import msgspec
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from ..trust._ledger import Actor, LedgerError
from .._render import plan_document
from .._settings import Settings
from ..trust._state import prepare_home
from ..errors import BadInput, ProximoError

if TYPE_CHECKING:
    from ..trust._pipeline import Host

log = logging.getLogger("proximo.service")

AGENT_SOCKET = "agent.sock"
APPROVE_SOCKET = "approve.sock"
MAX_LINE = 64 * 1024  # an approval request is small; anything longer is not one


# --- who is on the other end --------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int

    @property
    def user(self) -> str:
        return account_name(self.uid)


def account_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def peer_of(sock: socket.socket) -> Peer:
    """The process on the other end of a unix socket, as the kernel reports it (it cannot be spoofed)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid)


def resolve_accounts(names: list[str], what: str) -> set[int]:
    """User names or uids -> uids; an unknown name stops start-up (fail closed, never "nobody is listed")."""
    uids: set[int] = set()
    for name in names:
        if name.isascii() and name.isdigit():
            uids.add(int(name))
            continue
        try:
            uids.add(pwd.getpwnam(name).pw_uid)
        except KeyError:
            raise BadInput(f"{what}: no unix account {name!r}") from None
    return uids


class AccessRules(msgspec.Struct, frozen=True):
    """Who may do what on the sockets, resolved to uids at start."""

    service_uid: int
    approvers: frozenset[int]
    agents: frozenset[int]  # empty: any local account may connect as an agent

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessRules:
        approvers = resolve_accounts(settings.approvers, "PROXIMO_APPROVERS")
        agents = resolve_accounts(settings.agents, "PROXIMO_AGENTS")
        me = os.getuid()
        if me in approvers:
            raise BadInput(f"PROXIMO_APPROVERS names the service's own account ({account_name(me)}): "
                           "the service must never approve its own plans")
        if both := approvers & agents:
            raise BadInput(f"PROXIMO_APPROVERS and PROXIMO_AGENTS share {', '.join(map(account_name, sorted(both)))}: "
                           "an agent's account must not approve")
        return cls(service_uid=me, approvers=frozenset(approvers), agents=frozenset(agents))

    def may_use_agent_socket(self, uid: int) -> bool:
        return uid != self.service_uid and (not self.agents or uid in self.agents)


# --- the approval protocol, server side -----------------------------------------------------------------


class ApprovalDesk:
    """Answers one request on approve.sock. The host does the checking; this only knows who is asking."""

    def __init__(self, host: Host, rules: AccessRules, settings: Settings, hosts: dict[str, Host] | None = None) -> None:
        self.host = host
        self.hosts = hosts or {host.settings.cluster: host}  # several clusters: each plan is decided on its own
        self.rules = rules
        self.settings = settings

    def _for_plan(self, plan_id: Any) -> Host:
        """The host of the plan's cluster, where it is approved or denied (and checked): one ledger holds them all."""
        plan = self.host.get_plan(plan_id)
        return (self.hosts.get(plan.cluster.name) if plan.cluster is not None else None) or self.host

    async def answer(self, peer: Peer, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            return _error("a request is a JSON object with an \"op\"")
        op = request["op"]
        if op == "ping":
            return {"ok": True, "service": self.about(peer)}
        actor = Actor(token_id=self.settings.token_id or "-", face="unix-socket", client=f"uid {peer.uid} ({peer.user})")
        if peer.uid not in self.rules.approvers:
            reason = f"unix account {peer.user} (uid {peer.uid}) is not an approver (PROXIMO_APPROVERS)"
            self.host.record_refusal(actor, f"approve.sock {op}"[:60], {k: v for k, v in request.items() if k != "op"}, reason)
            return _error(reason)
        try:
            if op == "show":
                host = self._for_plan(request.get("plan_id"))
                plan = host.get_plan(request.get("plan_id"))
                await host.check_open(plan)  # no person reads a plan that is closed or stale (the cluster is read)
                return {"ok": True, "plan": plan_document(plan), "needs_person": host.needs_person(plan)}
            if op == "approve":
                typed = request.get("typed_target")
                from ..trust._pipeline import PeerAccount  # the pipeline (and the HTTP stack) only when a person approves

                record = self._for_plan(request.get("plan_id")).approve(
                    request.get("plan_id"), actor, PeerAccount(peer.uid, peer.user), typed_target=typed if isinstance(typed, str) else None)
                return {"ok": True, "seq": record.seq, "hash": record.hash}
            if op == "deny":
                reason = request.get("reason")
                record = self._for_plan(request.get("plan_id")).deny(request.get("plan_id"), actor,
                                                                    reason if isinstance(reason, str) else "declined")
                return {"ok": True, "seq": record.seq, "hash": record.hash}
            if op == "seal":
                reason = request.get("reason")
                if not isinstance(reason, str) or not reason.strip():
                    return _error("sealing needs a reason (what was found, who looked)")
                record = self.host.seal_ledger(actor, reason, approver=peer.user)
                return {"ok": True, "seq": record.seq, "hash": record.hash, "sealed_file": record.outcome["sealed_file"]}
        except (ProximoError, LedgerError) as exc:
            return _error(str(exc))
        return _error(f"unknown op {str(op)[:40]!r} (ping, show, approve, deny, seal)")

    def about(self, peer: Peer) -> dict[str, Any]:
        return {"mode": "service", "user": account_name(self.rules.service_uid), "uid": self.rules.service_uid,
                "home": str(self.settings.home), "approvers": sorted(account_name(u) for u in self.rules.approvers),
                "you": {"uid": peer.uid, "user": peer.user, "approver": peer.uid in self.rules.approvers}}


def _error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": " ".join(message.split())}


async def _serve_approvals(desk: ApprovalDesk, stream: SocketStream) -> None:
    async with stream:
        peer = peer_of(stream.extra(anyio.abc.SocketAttribute.raw_socket))
        reader = BufferedByteReceiveStream(stream)
        while True:
            try:
                line = await reader.receive_until(b"\n", MAX_LINE)
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                return
            except anyio.DelimiterNotFound:
                await stream.send(json.dumps(_error(f"request longer than {MAX_LINE} bytes")).encode() + b"\n")
                return
            try:
                request = json.loads(line)
            except ValueError:
                answer = _error("not JSON")
            else:
                answer = await desk.answer(peer, request)
            await stream.send(json.dumps(answer).encode() + b"\n")


# --- agent sessions --------------------------------------------------------------------------------------


def serve_command(sim_env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The process that serves one agent connection: ``proximo serve`` on the connection as stdin/stdout."""
    env = {**os.environ, **sim_env}
    return [sys.executable, "-m", "proximo", "serve"], env


async def _serve_agent(stream: SocketStream, rules: AccessRules, host: Host, sim_env: dict[str, str]) -> None:
    async with stream:
        sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        peer = peer_of(sock)
        if not rules.may_use_agent_socket(peer.uid):
            actor = Actor(token_id=host.settings.token_id or "-", face="unix-socket", client=f"uid {peer.uid} ({peer.user})")
            host.record_refusal(actor, "agent.sock", {}, f"unix account {peer.user} (uid {peer.uid}) may not connect as an agent")
            return
        command, env = serve_command(sim_env)
        env["PROXIMO_PEER"] = f"uid {peer.uid} ({peer.user})"
        fd = os.dup(sock.fileno())
        os.set_blocking(fd, True)  # the child reads it as a plain file (this also makes ours blocking: we are done with it)
        try:
            process = await anyio.open_process(command, stdin=fd, stdout=fd, stderr=None, env=env)
        finally:
            os.close(fd)
        async with process:
            await process.wait()


# --- the service -----------------------------------------------------------------------------------------


def socket_paths(settings: Settings) -> tuple[Path, Path]:
    return settings.service_dir / AGENT_SOCKET, settings.service_dir / APPROVE_SOCKET


async def _listen(path: Path) -> anyio.abc.SocketListener:
    path.unlink(missing_ok=True)
    listener = await anyio.create_unix_listener(path)
    os.chmod(path, 0o666)  # who may do what is decided by SO_PEERCRED, not by the file mode
    return listener


async def run_service(settings: Settings, *, sim: bool = False, ready: Callable[[str], None] | None = None) -> None:
    """Serve agent.sock and approve.sock until stopped. With ``sim``, over a simulated cluster of its own."""
    from .._host import open_host

    rules = AccessRules.from_settings(settings)
    prepare_home(settings.home)
    try:
        settings.service_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"PROXIMO_SERVICE_DIR {settings.service_dir}: {exc.strerror}") from None
    agent_path, approve_path = socket_paths(settings)
    a2a_port = a2a_port_of(os.environ)
    console = console_of(os.environ)
    async with anyio.create_task_group() as tg:
        sim_env: dict[str, str] = {}
        if sim:
            settings, sim_env = await _start_simulator(settings, tg)
        async with AsyncExitStack() as stack:
            hosts: dict[str, Host] = {}
            for cluster in list(settings.clusters) or [None]:  # PROXIMO_CLUSTERS: a host per cluster, one ledger
                opened = await stack.enter_async_context(open_host(settings, cluster=cluster))
                hosts[opened.settings.cluster] = opened
            host = hosts.get(settings.cluster) or next(iter(hosts.values()))
            tg.start_soon(_walk_the_ledger, host)
            desk = ApprovalDesk(host, rules, settings, hosts)
            agents, approvals = await _listen(agent_path), await _listen(approve_path)
            tg.start_soon(agents.serve, lambda s: _serve_agent(s, rules, host, sim_env))
            tg.start_soon(approvals.serve, lambda s: _serve_approvals(desk, s))
            if a2a_port:
                tg.start_soon(_run_a2a, a2a_port, sim_env)
            if console is not None:
                from ..console import serve_console_app, shared_host

                tg.start_soon(partial(serve_console_app, shared_host(host), host=console.host, port=console.port,
                                      tls=console.tls, where="the service's cluster, as the service's account"))
            if ready is not None:
                ready(f"Proximo service (uid {rules.service_uid}) on {agent_path} and {approve_path}; state in {settings.home}")
            await anyio.sleep_forever()


def a2a_port_of(env: Any) -> str:
    """``PROXIMO_A2A_PORT``: the service also runs the A2A face (``proximo-a2a``) on this loopback port.

    Any local account can reach a loopback TCP port (agent.sock is guarded by SO_PEERCRED instead), so the service
    runs it only with ``PROXIMO_A2A_TOKEN_FILE``: agents that hold the token can hire Proximo, no other account."""
    port = env.get("PROXIMO_A2A_PORT", "").strip()
    if not port:
        return ""
    if not port.isdigit() or int(port) > 65535:
        raise BadInput(f"PROXIMO_A2A_PORT must be a port number (got {port!r})")
    if not env.get("PROXIMO_A2A_TOKEN_FILE", "").strip():
        raise BadInput("PROXIMO_A2A_PORT needs PROXIMO_A2A_TOKEN_FILE in service mode: every local account can reach a "
                       "loopback port, so the A2A face asks for a bearer token there")
    return port


@dataclass(frozen=True)
class ConsoleOptions:
    host: str
    port: int
    tls: tuple[Path, Path] | None


def console_of(env: Any) -> ConsoleOptions | None:
    """``PROXIMO_CONSOLE_PORT``: the service also serves the approval console, in the service's process with the
    service's host, so sessions, the approver file and the ledger stay with the service's account. Loopback unless
    ``PROXIMO_CONSOLE_HOST`` says otherwise, which needs ``PROXIMO_CONSOLE_TLS_CERT`` and ``PROXIMO_CONSOLE_TLS_KEY``."""
    from .._listening import is_loopback

    port = env.get("PROXIMO_CONSOLE_PORT", "").strip()
    if not port:
        return None
    if not port.isdigit() or int(port) > 65535:
        raise BadInput(f"PROXIMO_CONSOLE_PORT must be a port number (got {port!r})")
    host = env.get("PROXIMO_CONSOLE_HOST", "").strip() or "127.0.0.1"
    cert, key = env.get("PROXIMO_CONSOLE_TLS_CERT", "").strip(), env.get("PROXIMO_CONSOLE_TLS_KEY", "").strip()
    if bool(cert) != bool(key):
        raise BadInput("PROXIMO_CONSOLE_TLS_CERT and PROXIMO_CONSOLE_TLS_KEY go together")
    tls = (Path(cert), Path(key)) if cert else None
    if tls is None and not is_loopback(host):
        raise BadInput(f"PROXIMO_CONSOLE_HOST={host} needs PROXIMO_CONSOLE_TLS_CERT and PROXIMO_CONSOLE_TLS_KEY: a "
                       "passphrase and a session cookie must not cross a network in the clear")
    return ConsoleOptions(host=host, port=int(port), tls=tls)


async def _run_a2a(port: str, sim_env: dict[str, str]) -> None:
    """The A2A face as a child process of the service (its own host on the same state; approvals still come through
    approve.sock and land in the same ledger, where the A2A face watches for them)."""
    env = {**os.environ, **sim_env}
    async with await anyio.open_process([sys.executable, "-m", "proximo.a2a", "--port", port], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=None, env=env) as process:
        code = await process.wait()
    log.error("the A2A face (proximo-a2a) exited with status %s", code)


FULL_WALK_INTERVAL = 600.0


async def _walk_the_ledger(host: Host) -> None:
    """A full walk at start and every ten minutes: an edit of an old record stops every apply within that time."""
    while True:
        result = host.ledger.verify()
        if not result.ok:
            log.error("the ledger is broken (%s): every apply stops until an approver seals it", result.reason)
        await anyio.sleep(FULL_WALK_INTERVAL)


async def _start_simulator(settings: Settings, tg: anyio.abc.TaskGroup) -> tuple[Settings, dict[str, str]]:
    """The demo cluster on a loopback port, shared by the service's approvals and every agent session."""
    import secrets

    import uvicorn

    from .._host import make_packs
    from ..model import load_snapshot
    from ..sim import Simulator, demo_snapshot, serve_config
    from .._world import TOKEN_ID

    secret = secrets.token_hex(16)
    simulator = Simulator(load_snapshot(demo_snapshot()), make_packs(settings).semantics, tokens={TOKEN_ID: secret})
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(serve_config(simulator.app, log_level="warning", lifespan="off"))
    tg.start_soon(lambda: server.serve(sockets=[sock]))
    while not server.started:
        await anyio.sleep(0.01)
    env = {"PROXIMO_URL": f"http://127.0.0.1:{port}", "PROXIMO_TOKEN_ID": TOKEN_ID, "PROXIMO_TOKEN_SECRET": secret}
    from .._secret import Secret

    return msgspec.structs.replace(settings, url=env["PROXIMO_URL"], token_id=TOKEN_ID, token_secret=Secret(secret)), env


# --- clients --------------------------------------------------------------------------------------------


class ServiceUnavailable(ProximoError):
    """No service answers on the socket."""


def ask_service(path: Path, request: dict[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
    """One request on approve.sock, one answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        raise ServiceUnavailable(f"no Proximo service answers on {path}: {exc.strerror or exc}") from None
    with sock, sock.makefile("rwb") as stream:
        stream.write(json.dumps(request).encode() + b"\n")
        stream.flush()
        line = stream.readline(MAX_LINE * 16)
    if not line:
        raise ServiceUnavailable(f"the Proximo service on {path} closed the connection without an answer")
    answer = json.loads(line)
    if not isinstance(answer, dict):
        raise ServiceUnavailable(f"the Proximo service on {path} answered something that is not an answer")
    return answer


def connect(path: Path, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """``proximo connect``: join stdin/stdout to agent.sock, byte for byte, until either side ends."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        print(f"proximo connect: no Proximo service answers on {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer

    def upstream() -> None:
        try:
            while chunk := stdin.read1(65536):
                sock.sendall(chunk)
        except OSError:
            pass
        finally:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    threading.Thread(target=upstream, daemon=True).start()
    with sock:
        while chunk := sock.recv(65536):
            stdout.write(chunk)
            stdout.flush()
    return 0


# --- installing -----------------------------------------------------------------------------------------

UNIT = """\
[Unit]
Description=Proximo: plan, approve, apply, prove and undo changes to a Proxmox VE cluster
Documentation=https://github.com/proximo-proxmox/proximo/blob/main/docs/trust-model.md
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User={user}
Group={user}
EnvironmentFile=-/etc/proximo/proximo.env
Environment=PROXIMO_HOME={home} PROXIMO_SERVICE_DIR={run} PROXIMO_TOKEN_FILE=%d/token
# The token secret is handed over by systemd (root-owned /etc/proximo/token, never readable by agents).
LoadCredential=token:/etc/proximo/token
ExecStart={exe} service run
Restart=on-failure
# State: only this account can read it; sockets: anyone can connect, SO_PEERCRED decides what they may do.
StateDirectory={state_name}
StateDirectoryMode=0700
RuntimeDirectory={run_name}
RuntimeDirectoryMode=0755
UMask=0077
# Hardening: Proximo needs the network (the PVE API) and its two directories, nothing else.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6

[Install]
WantedBy=multi-user.target
"""

SYSUSERS = 'u {user} - "Proximo service" {home}\n'

ENV_FILE = """\
# Read by proximo.service. Agents never read this file (root:{user} 0640).
PROXIMO_URL=https://pve1.example:8006
PROXIMO_TOKEN_ID=proximo@pve!agent
# PROXIMO_TLS_FINGERPRINT=AA:BB:...        or PROXIMO_CA_FILE=/etc/proximo/pve-ca.pem
# Unix accounts that may approve over {run}/approve.sock (never an agent's account):
PROXIMO_APPROVERS=alice
# Unix accounts that may connect as agents over {run}/agent.sock (empty: any local account):
PROXIMO_AGENTS=agent
# PROXIMO_POLICY=/etc/proximo/policy.toml
# PROXIMO_LEDGER_ANCHOR=journald,file:/mnt/audit/proximo-anchors.log
# A ledger and plans shared with other Proximo machines (docs/configuration.md), with the same PROXIMO_LEDGER_KEY:
# PROXIMO_DB=postgresql://proximo@db.example:5432/proximo?sslmode=verify-full
# PGPASSWORD=...
"""


def install_files(*, user: str, home: Path, run: Path, exe: str) -> dict[str, tuple[str, int]]:
    """The files ``proximo service install`` writes: path -> (text, mode)."""
    if not home.is_absolute() or not run.is_absolute():
        raise BadInput("--home and --run-dir must be absolute paths")
    if home.parent != Path("/var/lib") or run.parent != Path("/run"):
        raise BadInput("systemd's StateDirectory= and RuntimeDirectory= need --home under /var/lib and --run-dir under /run")
    values = {"user": user, "home": home, "run": run, "exe": exe, "state_name": home.name, "run_name": run.name}
    return {
        "/etc/systemd/system/proximo.service": (UNIT.format(**values), 0o644),
        "/etc/sysusers.d/proximo.conf": (SYSUSERS.format(**values), 0o644),
        "/etc/proximo/proximo.env": (ENV_FILE.format(**values), 0o640),
    }


def next_steps(*, user: str, run: Path, written: bool) -> list[str]:
    steps = [] if written else ["# write the files above (or run this command again with --write as root), then:"]
    return steps + [
        "systemd-sysusers /etc/sysusers.d/proximo.conf",
        f"chgrp {shlex.quote(user)} /etc/proximo/proximo.env && $EDITOR /etc/proximo/proximo.env",
        "install -m 0600 -o root -g root /dev/stdin /etc/proximo/token   # paste the API token's secret",
        "systemctl daemon-reload && systemctl enable --now proximo",
        "proximo doctor                                    # as anyone: says it is in service mode, and what holds",
        f"# MCP clients run `proximo connect` (PROXIMO_SERVICE_DIR={run}); approvers run `proximo approve PLAN_ID`",
    ]
