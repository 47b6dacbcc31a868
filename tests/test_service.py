"""Service mode with real unix accounts: the service (root here), an agent account and an approver account.

CI runs as root, so these tests create two system accounts (pxagent, pxapprover) and act as them in forked
children that drop to their uid before touching anything: the kernel, not the test, says who is on the other end
of each socket (SO_PEERCRED), and file modes decide what each account can read. The service is a real
``proximo service run --sim`` process; the agent speaks MCP (JSON-RPC lines) over agent.sock, through
``proximo connect`` too; the approver uses approve.sock.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from proximo.service._service import AGENT_SOCKET, APPROVE_SOCKET, ask_service
from proximo._settings import Settings
from proximo.trust._state import open_ledger

AGENT, APPROVER = "pxagent", "pxapprover"
A2A_TOKEN = "service-a2a-token-7c2e94b1d05f3a68"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                                reason="needs root and useradd to create the test's unix accounts (CI runs as root)")
# one pytest-xdist worker runs them all, so the module's service process starts once: ONE_WORKER in conftest.py


# One lock for every process on this machine that may create the accounts: pytest-xdist workers, and other test runs
# (another checkout's suite, say). Two concurrent `useradd NAME` race: the loser fails with "already exists" (exit 9).
ACCOUNTS_LOCK = Path("/run/lock/proximo-test-accounts.lock") if Path("/run/lock").is_dir() else Path("/tmp/proximo-test-accounts.lock")


def ensure_account(name: str) -> int:
    with ACCOUNTS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        try:
            return pwd.getpwnam(name).pw_uid
        except KeyError:
            done = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                                  capture_output=True, text=True, check=False)
            if done.returncode not in (0, 9):  # 9: made meanwhile by a run that does not take this lock
                raise AssertionError(f"useradd {name} failed ({done.returncode}): {done.stderr.strip()}")
            return pwd.getpwnam(name).pw_uid


def as_account(name: str, work: Callable[[], Any]) -> Any:
    """Run ``work`` in a child process that has become ``name`` (uid, gid, no supplementary groups); its JSON result."""
    account = pwd.getpwnam(name)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the account, do the work, say what happened, leave without cleanup
        os.close(read_end)
        try:
            os.setgroups([])
            os.setresgid(account.pw_gid, account.pw_gid, account.pw_gid)
            os.setresuid(account.pw_uid, account.pw_uid, account.pw_uid)
            result: Any = {"value": work()}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which asserts on it
            result = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write_end, json.dumps(result, default=str).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    outcome = json.loads(data)
    if "error" in outcome:
        raise AssertionError(f"as {name}: {outcome['error']}")
    return outcome["value"]


class Rpc:
    """A minimal MCP client: JSON-RPC messages, one per line (the stdio framing agent.sock speaks)."""

    def __init__(self, reader: IO[bytes], writer: IO[bytes]) -> None:
        self.reader, self.writer, self.next_id = reader, writer, 0

    def send(self, message: dict[str, Any]) -> None:
        self.writer.write(json.dumps(message).encode() + b"\n")
        self.writer.flush()

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            line = self.reader.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            message = json.loads(line)
            if message.get("id") == self.next_id:
                return message

    def start(self) -> dict[str, Any]:
        init = self.call("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                        "clientInfo": {"name": "two-account-test", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return init

    def tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.call("tools/call", {"name": name, "arguments": arguments})["result"]


def mcp_over(path: Path, steps: Callable[[Rpc], Any]) -> Any:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(120)
        sock.connect(str(path))
        with sock.makefile("rb") as reader, sock.makefile("wb") as writer:
            rpc = Rpc(reader, writer)
            rpc.start()
            return steps(rpc)


class Service:
    def __init__(self, base: Path, process: subprocess.Popen[bytes]) -> None:
        self.base = base
        self.home = base / "state"
        self.run = base / "run"
        self.process = process

    @property
    def agent_socket(self) -> Path:
        return self.run / AGENT_SOCKET

    @property
    def approve_socket(self) -> Path:
        return self.run / APPROVE_SOCKET

    def settings(self) -> Settings:
        return Settings.from_env({"PROXIMO_HOME": str(self.home / "sim-unused"), "PROXIMO_SERVICE_DIR": str(self.run)})

    def ledger_records(self) -> list[Any]:
        with open_ledger(Settings.from_env({"PROXIMO_HOME": str(self.home)})) as book:
            return list(book.records())


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    ensure_account(AGENT)
    ensure_account(APPROVER)
    base = Path(tempfile.mkdtemp(prefix="proximo-service-", dir="/tmp"))
    os.chmod(base, 0o755)  # so the accounts can reach run/; state/ is the service's own (0700)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_")},
           "PROXIMO_HOME": str(base / "state"), "PROXIMO_SERVICE_DIR": str(base / "run"),
           "PROXIMO_APPROVERS": APPROVER, "PROXIMO_AGENTS": AGENT,
           "PROXIMO_TOOLSET": "full",  # the agents here call pve_* tools by name (each `proximo serve` inherits this)
           "PROXIMO_A2A_PORT": "0", "PROXIMO_A2A_TOKEN_FILE": str(base / "a2a-token"),  # and the A2A face, any port
           "PROXIMO_CONSOLE_PORT": "0"}  # and the approval console, on loopback, any port
    (base / "a2a-token").write_text(A2A_TOKEN)
    os.chmod(base / "a2a-token", 0o600)
    log = base / "service.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "proximo", "service", "run", "--sim"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 60
    while not (base / "run" / APPROVE_SOCKET).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if process.poll() is not None:
        raise AssertionError(f"the service did not start: {log.read_text()}")
    try:
        yield Service(base, process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()  # reaped: a killed child left unreaped failed a later test (a ResourceWarning, as an error)
        shutil.rmtree(base, ignore_errors=True)


def test_the_state_directory_is_the_services_alone(service: Service) -> None:
    info = service.home.stat()
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()

    def snoop() -> dict[str, str]:
        seen = {}
        for name in ("", "ledger.key", "ledger.sqlite", "plans.sqlite"):
            try:
                target = service.home / name
                os.listdir(target) if not name else target.read_bytes()
                seen[name or "."] = "READ"
            except PermissionError:
                seen[name or "."] = "denied"
        return seen

    for account in (AGENT, APPROVER):
        assert set(as_account(account, snoop).values()) == {"denied"}


def test_an_agent_plans_over_the_socket_cannot_approve_and_the_approver_can(service: Service) -> None:
    def agent_plans() -> dict[str, Any]:
        def steps(rpc: Rpc) -> dict[str, Any]:
            planned = rpc.tool("pve_storage_delete", {"storage": "local-zfs"})
            applied = rpc.tool("proximo_apply", {"plan_id": planned["structuredContent"]["plan_id"]})
            return {"plan": planned["structuredContent"], "apply": applied}
        return mcp_over(service.agent_socket, steps)

    first = as_account(AGENT, agent_plans)
    plan_id = first["plan"]["plan_id"]
    assert first["plan"]["risk"] == "HIGH" and first["apply"]["isError"]
    assert "waits for a person" in first["apply"]["content"][0]["text"]

    # The agent tries the approval socket: the kernel says who it is, and it is not an approver.
    refused = as_account(AGENT, lambda: ask_service(service.approve_socket, {"op": "approve", "plan_id": plan_id}))
    assert refused == {"ok": False, "error": f"unix account {AGENT} (uid {pwd.getpwnam(AGENT).pw_uid}) is not an approver "
                                             "(PROXIMO_APPROVERS)"}
    # Root (the service's own account here) is refused too: the service never approves its own plans.
    assert not ask_service(service.approve_socket, {"op": "approve", "plan_id": plan_id})["ok"]

    shown = as_account(APPROVER, lambda: ask_service(service.approve_socket, {"op": "show", "plan_id": plan_id}))
    assert shown["ok"] and shown["plan"]["plan_id"] == plan_id and shown["needs_person"]
    approved = as_account(APPROVER, lambda: ask_service(service.approve_socket, {"op": "approve", "plan_id": plan_id}))
    assert approved["ok"], approved

    def agent_applies() -> dict[str, Any]:
        return mcp_over(service.agent_socket, lambda rpc: rpc.tool("proximo_apply", {"plan_id": plan_id}))

    applied = as_account(AGENT, agent_applies)
    assert not applied.get("isError"), applied
    assert applied["structuredContent"]["ok"] is True

    records = [r for r in service.ledger_records() if r.plan_id == plan_id or r.kind == "deny"]
    approval = next(r for r in records if r.kind == "approve" and r.plan_id == plan_id)
    assert approval.outcome["channel"] == "unix-socket" and approval.outcome["approver"] == APPROVER
    assert approval.outcome["uid"] == pwd.getpwnam(APPROVER).pw_uid
    made = next(r for r in records if r.kind == "plan" and r.plan_id == plan_id)
    assert f"({AGENT})]" in made.actor.client  # the agent's unix account, as the kernel named it
    assert any(r.kind == "deny" and f"{AGENT} (uid" in r.outcome.get("reason", "") for r in records)


def test_an_account_not_in_proximo_agents_cannot_connect(service: Service) -> None:
    def approver_as_agent() -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(str(service.agent_socket))
            try:
                sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n')
                return sock.recv(100).decode()
            except (ConnectionResetError, BrokenPipeError):
                return ""

    assert as_account(APPROVER, approver_as_agent) == ""  # closed at once, nothing served


def test_proximo_connect_bridges_stdio_to_the_service(service: Service) -> None:
    """What an MCP client spawns in service mode: `proximo connect`, as the agent's account."""
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    account = pwd.getpwnam(AGENT)
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(to_child_r, 0)
            os.dup2(from_child_w, 1)
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            os.setgroups([])
            os.setresgid(account.pw_gid, account.pw_gid, account.pw_gid)
            os.setresuid(account.pw_uid, account.pw_uid, account.pw_uid)
            from proximo.service._service import connect

            code = connect(service.agent_socket, os.fdopen(0, "rb"), os.fdopen(1, "wb"))
        except BaseException:  # noqa: BLE001
            code = 70
        os._exit(code)
    os.close(to_child_r)
    os.close(from_child_w)
    with os.fdopen(from_child_r, "rb") as reader, os.fdopen(to_child_w, "wb") as writer:
        rpc = Rpc(reader, writer)
        init = rpc.start()
        tools = rpc.call("tools/list", {})["result"]["tools"]
        writer.close()
        reader.read()
    _, status = os.waitpid(pid, 0)
    assert init["result"]["serverInfo"]["name"] == "proximo"
    assert {"proximo_apply", "pve_storage_delete"} <= {t["name"] for t in tools}
    assert os.waitstatus_to_exitcode(status) == 0


def test_doctor_as_the_agent_says_service_mode_and_what_holds(service: Service) -> None:
    from proximo.cli._doctor import diagnose

    found = as_account(AGENT, lambda: _diagnosis(service))
    assert found["mode"] == "service" and found["ok"]
    findings = {f["what"]: f for f in found["findings"]}
    assert findings["state"]["level"] == "ok" and "you cannot read the service's state directory" in findings["state"]["detail"]
    assert findings["you"]["detail"] == "you are not an approver"
    assert findings["approvers"]["detail"] == f"PROXIMO_APPROVERS: {APPROVER}"
    assert diagnose  # imported in the parent too: the child uses the same code


def _diagnosis(service: Service) -> dict[str, Any]:
    import msgspec

    from proximo.cli._doctor import diagnose

    found = diagnose(Settings.from_env({"PROXIMO_HOME": "/nonexistent", "PROXIMO_SERVICE_DIR": str(service.run)}))
    return {**msgspec.to_builtins(found), "ok": found.ok}


def test_the_service_refuses_an_approver_list_that_names_an_agent_or_itself(tmp_path: Path) -> None:
    from proximo.service._service import AccessRules
    from proximo.errors import BadInput

    ensure_account(AGENT)
    with pytest.raises(BadInput, match="the service must never approve its own plans"):
        AccessRules.from_settings(Settings.from_env({"PROXIMO_APPROVERS": "root"}))
    with pytest.raises(BadInput, match="an agent's account must not approve"):
        AccessRules.from_settings(Settings.from_env({"PROXIMO_APPROVERS": AGENT, "PROXIMO_AGENTS": AGENT}))
    with pytest.raises(BadInput, match="no unix account 'nobody-here'"):
        AccessRules.from_settings(Settings.from_env({"PROXIMO_APPROVERS": "nobody-here"}))


def _a2a_base(service: Service) -> str:
    log = service.base / "service.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a readiness wait on the child's own start-up line
        for line in log.read_text().splitlines():
            if "A2A server at " in line:
                return line.split("A2A server at ", 1)[1].split(" ", 1)[0]
        time.sleep(0.05)
    raise AssertionError(f"the service's A2A face did not start: {log.read_text()}")


def test_the_service_runs_the_a2a_face_and_an_approval_over_the_socket_completes_its_parked_task(service: Service) -> None:
    """PROXIMO_A2A_PORT: the A2A face is part of the service; an agent hires it with the token, a HIGH plan parks in
    input-required, and the approver's approval over approve.sock (their unix account) moves it on."""
    import anyio
    import httpx
    from a2a.client import A2ACardResolver, ClientConfig, create_client
    from a2a.helpers import new_data_part
    from a2a.types import GetTaskRequest, Message, Role, SendMessageRequest, TaskState
    from google.protobuf.json_format import MessageToDict

    base = _a2a_base(service)

    def message(data: dict[str, Any]) -> SendMessageRequest:
        return SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id=os.urandom(8).hex(), parts=[new_data_part(data)]))

    async def hire() -> tuple[str, str, int]:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {A2A_TOKEN}"}, timeout=60) as http:
            async with httpx.AsyncClient() as bare:
                assert (await bare.get(base + "/.well-known/agent-card.json")).status_code == 401
            card = await A2ACardResolver(http, base).get_agent_card()
            client = await create_client(card, client_config=ClientConfig(streaming=False, httpx_client=http))
            planned = [ev async for ev in client.send_message(message({"tool": "guest.stop", "params": {"vmid": 104}}))]
            plan = MessageToDict(planned[-1].task.artifacts[0].parts[1].data)
            parked = [ev async for ev in client.send_message(message({"apply": plan["plan_id"]}))]
            await client.close()
            return plan["plan_id"], parked[-1].task.id, parked[-1].task.status.state

    async def wait_done(task_id: str) -> int:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {A2A_TOKEN}"}, timeout=60) as http:
            card = await A2ACardResolver(http, base).get_agent_card()
            client = await create_client(card, client_config=ClientConfig(streaming=False, httpx_client=http))
            for _ in range(1500):  # a readiness wait, not a timed assertion
                task = await client.get_task(GetTaskRequest(id=task_id))
                if task.status.state not in (TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_WORKING):
                    break
                await anyio.sleep(0.02)
            await client.close()
            return task.status.state

    plan_id, task_id, state = anyio.run(hire)
    assert state == TaskState.TASK_STATE_INPUT_REQUIRED
    approved = as_account(APPROVER, lambda: ask_service(service.approve_socket, {"op": "approve", "plan_id": plan_id}))
    assert approved["ok"], approved
    assert anyio.run(wait_done, task_id) == TaskState.TASK_STATE_COMPLETED
    records = [r for r in service.ledger_records() if r.plan_id == plan_id]
    assert [r.kind for r in records if r.kind in ("approve", "apply-result")] == ["approve", "apply-result"]
    assert next(r for r in records if r.kind == "approve").outcome["channel"] == "unix-socket"
    assert {r.actor.face for r in records if r.kind in ("plan", "apply-result")} == {"a2a"}
    assert A2A_TOKEN not in (service.base / "service.log").read_text()


def test_the_service_serves_the_console_and_a_decision_there_is_its_ledgers_record(service: Service) -> None:
    """PROXIMO_CONSOLE_PORT: the console runs inside the service (its account, its host, its ledger). An approver
    signs in with their approver passphrase (kept in the service's state), and approves what an agent planned over
    agent.sock; the agent's apply then runs."""
    import re

    import httpx

    from proximo.trust._approvers import ApproverStore

    log = service.base / "service.log"
    deadline = time.monotonic() + 60
    base = ""
    while not base and time.monotonic() < deadline:  # a readiness wait on the console's start-up line
        found = re.search(r"proximo console: serving at (http://127\.0\.0\.1:\d+)/", log.read_text())
        base = found.group(1) if found else ""
        time.sleep(0.05)
    assert base, log.read_text()
    passphrase = "a-passphrase-only-the-person-knows"
    ApproverStore(service.home).add("webapprover", passphrase)

    def agent(steps: Callable[[Rpc], Any]) -> Any:
        return as_account(AGENT, lambda: mcp_over(service.agent_socket, steps))

    plan_id = agent(lambda rpc: rpc.tool("pve_guest_stop", {"vmid": 105}))["structuredContent"]["plan_id"]
    with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as browser:
        form = browser.get("/signin")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        signed = browser.post("/signin", data={"csrf": token, "name": "webapprover", "passphrase": passphrase})
        assert signed.status_code == 200 and plan_id in browser.get("/waiting").text
        page = browser.get(f"/plan/{plan_id}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        approved = browser.post(f"/plan/{plan_id}/approve", data={"csrf": csrf})
    assert approved.status_code == 200 and "Approved: ledger record" in approved.text
    applied = agent(lambda rpc: rpc.tool("proximo_apply", {"plan_id": plan_id}))
    assert not applied.get("isError"), applied
    approval = next(r for r in service.ledger_records() if r.kind == "approve" and r.plan_id == plan_id)
    assert approval.outcome["channel"] == "console" and approval.outcome["approver"] == "webapprover"
    assert approval.actor.face == "console"
