"""PveClient against httpx.MockTransport: envelopes, retries, encodings, tasks, path safety, secrecy."""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from _pve_data import sample_data

import proximo.pve._client as client_mod
from proximo.pve._client import (
    PveApiError,
    PveClient,
    PveConnectionError,
    TaskResult,
    TaskTimeoutError,
    Upid,
    is_upid,
    parse_upid,
)

SECRET = "5ec2e7f0-d00d-4bad-beef-c0ffee5ec2e7"
TOKEN_ID = "proximo@pve!agent"
BASE = "https://pve1:8006"
UPID = "UPID:node1:000FF1FD:10F9374C:630D702C:vzdump:110:root@pam:"

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record backoff and poll sleeps instead of waiting."""
    recorded: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(client_mod, "_sleep", fake_sleep)
    return recorded


def make_client(handler: Handler, **kw: Any) -> PveClient:
    kw.setdefault("backoff", 0.01)
    return PveClient(BASE, TOKEN_ID, SECRET, transport=httpx.MockTransport(handler), **kw)


def envelope(data: Any, status: int = 200, reason: str | None = None, **extra: Any) -> httpx.Response:
    ext = {"reason_phrase": reason.encode()} if reason else {}
    return httpx.Response(status, json={"data": data, **extra}, extensions=ext)


class Recorder:
    """A handler that answers from a script and keeps every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


# --- construction ------------------------------------------------------------------------------


def test_token_id_is_validated_without_echoing_the_secret() -> None:
    for bad in ["root@pam", "root!tok", f"root@pam!tok={SECRET}", "", "root@pam!"]:
        with pytest.raises(ValueError) as info:
            PveClient(BASE, bad, SECRET)
        assert SECRET not in str(info.value)
        assert "\n" not in str(info.value)


def test_bad_secret_and_insecure_options_are_refused() -> None:
    with pytest.raises(ValueError):
        PveClient(BASE, TOKEN_ID, "")
    with pytest.raises(ValueError):
        PveClient(BASE, TOKEN_ID, "abc\r\nX-Evil: 1")
    with pytest.raises(ValueError, match="verify=False"):
        PveClient(BASE, TOKEN_ID, SECRET, verify=False)
    for cleartext in ["http://pve1:8006", "http://127.evil.example:8006"]:
        with pytest.raises(ValueError, match="loopback"):
            PveClient(cleartext, TOKEN_ID, SECRET)
    with pytest.raises(ValueError):
        PveClient("https://pve1:99999", TOKEN_ID, SECRET)
    PveClient("http://127.0.0.1:8006", TOKEN_ID, SECRET)  # the simulator on loopback
    PveClient("http://[::1]:8006", TOKEN_ID, SECRET)
    with pytest.raises(ValueError):
        PveClient("https://user:pw@pve1:8006", TOKEN_ID, SECRET)
    with pytest.raises(ValueError):
        PveClient("https://pve1:8006/somewhere", TOKEN_ID, SECRET)


@pytest.mark.anyio
async def test_repr_and_context_manager() -> None:
    async with make_client(Recorder(envelope({}))) as c:
        assert SECRET not in repr(c)
        assert TOKEN_ID in repr(c)
        assert SECRET not in repr(vars(c))


# --- envelopes ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_get_unwraps_data_and_sends_token_header() -> None:
    rec = Recorder(envelope({"version": "8.4.1", "release": "8.4"}))
    async with make_client(rec) as c:
        assert await c.get("/version") == {"version": "8.4.1", "release": "8.4"}
    (req,) = rec.requests
    assert str(req.url) == "https://pve1:8006/api2/json/version"
    assert req.headers["Authorization"] == f"PVEAPIToken={TOKEN_ID}={SECRET}"
    assert req.method == "GET"


@pytest.mark.anyio
async def test_null_data_and_non_envelope() -> None:
    async with make_client(Recorder(envelope(None))) as c:
        assert await c.get("/cluster/ha/groups") is None
    async with make_client(Recorder(httpx.Response(200, text="<html>proxy</html>"))) as c:
        with pytest.raises(PveApiError, match="not a PVE JSON envelope"):
            await c.get("/version")


@pytest.mark.anyio
async def test_error_with_parameter_errors_is_one_line() -> None:
    body = {
        "data": None,
        "errors": {"content": "value 'foo' does not have a value in the enumeration 'images, iso'\n"},
    }
    rec = Recorder(httpx.Response(400, json=body, extensions={"reason_phrase": b"Parameter verification failed."}))
    async with make_client(rec) as c:
        with pytest.raises(PveApiError) as info:
            await c.send("PUT", "/storage/x", {"content": "foo"})
    err = info.value
    assert str(err) == (
        "PUT /storage/x: 400 Parameter verification failed. "
        "(content: value 'foo' does not have a value in the enumeration 'images, iso')"
    )
    assert (err.status, err.method, err.path) == (400, "PUT", "/storage/x")
    assert err.message == "Parameter verification failed."
    assert err.errors == {"content": "value 'foo' does not have a value in the enumeration 'images, iso'"}


@pytest.mark.anyio
async def test_error_message_from_body_sample() -> None:
    sample = sample_data("error-responses.proxmoxer")["query-url-metadata_500"]
    rec = Recorder(httpx.Response(500, json=sample))
    async with make_client(rec, get_retries=0) as c:
        with pytest.raises(PveApiError) as info:
            await c.get("/nodes/pve1/query-url-metadata", {"url": "https://sub.domain.tld/x.iso"})
    assert "\n" not in str(info.value)
    assert info.value.message.startswith("invalid server response: '500 Can't connect")
    assert info.value.status == 500


@pytest.mark.anyio
async def test_401_without_message_uses_reason_phrase() -> None:
    rec = Recorder(envelope(None, 401, reason="authentication failure"))
    async with make_client(rec) as c:
        with pytest.raises(PveApiError) as info:
            await c.get("/version")
    assert str(info.value) == "GET /version: 401 authentication failure"
    assert len(rec.requests) == 1  # 4xx is never retried


# --- retries -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_get_retries_5xx_with_exponential_backoff(sleeps: list[float]) -> None:
    rec = Recorder(envelope(None, 500), envelope(None, 502), envelope(None, 595), envelope("ok"))
    async with make_client(rec, get_retries=3, backoff=0.01) as c:
        assert await c.get("/cluster/resources") == "ok"
    assert len(rec.requests) == 4
    assert sleeps == pytest.approx([0.01, 0.02, 0.04])


@pytest.mark.anyio
async def test_get_gives_up_after_retries(sleeps: list[float]) -> None:
    rec = Recorder(envelope(None, 503, reason="Service Unavailable"))
    async with make_client(rec, get_retries=2) as c:
        with pytest.raises(PveApiError) as info:
            await c.get("/version")
    assert info.value.status == 503
    assert len(rec.requests) == 3
    assert len(sleeps) == 2


@pytest.mark.anyio
async def test_get_retries_429_and_honours_retry_after(sleeps: list[float]) -> None:
    busy = httpx.Response(429, json={"data": None}, headers={"Retry-After": "0.5"})
    rec = Recorder(busy, envelope(1))
    async with make_client(rec) as c:
        assert await c.get("/version") == 1
    assert sleeps == [0.5]


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 401, 403, 404, 501])
async def test_get_does_not_retry_4xx_or_501(status: int, sleeps: list[float]) -> None:
    rec = Recorder(envelope(None, status))
    async with make_client(rec) as c:
        with pytest.raises(PveApiError):
            await c.get("/version")
    assert len(rec.requests) == 1
    assert sleeps == []


@pytest.mark.anyio
async def test_get_retries_connection_errors(sleeps: list[float]) -> None:
    rec = Recorder(httpx.ConnectError("connection refused"), httpx.ReadTimeout("slow"), envelope([1, 2]))
    async with make_client(rec) as c:
        assert await c.get("/nodes") == [1, 2]
    assert len(rec.requests) == 3
    assert sleeps == pytest.approx([0.01, 0.02])


@pytest.mark.anyio
async def test_get_connection_error_after_retries(sleeps: list[float]) -> None:
    rec = Recorder(httpx.ConnectError("connection refused"))
    async with make_client(rec, get_retries=1) as c:
        with pytest.raises(PveConnectionError, match=r"^GET /nodes: cannot reach https://pve1:8006: ConnectError"):
            await c.get("/nodes")
    assert len(rec.requests) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_send_never_retries(method: str, sleeps: list[float]) -> None:
    rec = Recorder(envelope(None, 500))
    async with make_client(rec) as c:
        with pytest.raises(PveApiError):
            await c.send(method, "/nodes/pve1/qemu/104/status/start")  # type: ignore[arg-type]
    assert len(rec.requests) == 1

    rec = Recorder(httpx.ConnectError("connection refused"))
    async with make_client(rec) as c:
        with pytest.raises(PveConnectionError) as info:
            await c.send(method, "/nodes/pve1/qemu/104/status/start")  # type: ignore[arg-type]
    assert len(rec.requests) == 1
    assert "may have been applied" not in str(info.value)  # nothing left the machine
    assert sleeps == []


@pytest.mark.anyio
async def test_send_timeout_says_it_may_have_been_applied() -> None:
    rec = Recorder(httpx.ReadTimeout("timed out"))
    async with make_client(rec, timeout=5) as c:
        with pytest.raises(PveConnectionError) as info:
            await c.send("POST", "/nodes/pve1/qemu/104/status/stop")
    assert len(rec.requests) == 1
    assert str(info.value) == (
        "POST /nodes/pve1/qemu/104/status/stop: cannot reach https://pve1:8006: "
        "timed out after 5s (ReadTimeout); it may have been applied, check before repeating it"
    )


# --- encodings ---------------------------------------------------------------------------------


PARAMS = {"enable": True, "disable": False, "vmid": 104, "name": "a b&c=d", "net": ["x", "y"], "skip": None}
PAIRS = [("enable", "1"), ("disable", "0"), ("vmid", "104"), ("name", "a b&c=d"), ("net", "x"), ("net", "y")]


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_post_put_send_form_body(method: str) -> None:
    rec = Recorder(envelope(UPID))
    async with make_client(rec) as c:
        assert await c.send(method, "/nodes/pve1/qemu/104/config", PARAMS) == UPID  # type: ignore[arg-type]
    (req,) = rec.requests
    assert req.method == method
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert req.url.query == b""
    body = req.content.decode()
    assert body == "enable=1&disable=0&vmid=104&name=a%20b%26c%3Dd&net=x&net=y"
    assert parse_qsl(body) == PAIRS


@pytest.mark.anyio
async def test_post_without_params_has_empty_body() -> None:
    rec = Recorder(envelope(None))
    async with make_client(rec) as c:
        await c.send("POST", "/nodes/pve1/qemu/104/status/start")
    assert rec.requests[0].content == b""


@pytest.mark.anyio
async def test_delete_sends_params_in_query() -> None:
    rec = Recorder(envelope(None))
    async with make_client(rec) as c:
        await c.send("DELETE", "/nodes/pve1/qemu/104", {"purge": True, "destroy-unreferenced-disks": False})
    (req,) = rec.requests
    assert req.method == "DELETE"
    assert req.content == b""
    assert req.url.path == "/api2/json/nodes/pve1/qemu/104"
    assert parse_qsl(req.url.query.decode()) == [("purge", "1"), ("destroy-unreferenced-disks", "0")]


@pytest.mark.anyio
async def test_get_params_use_pve_encoding() -> None:
    rec = Recorder(envelope([]))
    async with make_client(rec) as c:
        await c.get("/access/users", {"full": True, "enabled": False})
    assert rec.requests[0].url.query == b"full=1&enabled=0"


@pytest.mark.anyio
async def test_path_is_not_quoted_twice() -> None:
    rec = Recorder(envelope(None))
    async with make_client(rec) as c:
        await c.get("/nodes/pve1/storage/local/content/local:iso/debian%2B12.iso")
        await c.get(f"/nodes/node1/tasks/{UPID}/status")
    assert rec.requests[0].url.raw_path == b"/api2/json/nodes/pve1/storage/local/content/local:iso/debian%2B12.iso"
    assert rec.requests[1].url.raw_path == f"/api2/json/nodes/node1/tasks/{UPID}/status".encode()


@pytest.mark.anyio
async def test_unsupported_param_type_is_refused_before_sending() -> None:
    rec = Recorder(envelope(None))
    async with make_client(rec) as c:
        with pytest.raises(TypeError):
            await c.send("POST", "/x", {"nested": {"a": 1}})
        with pytest.raises(ValueError):
            await c.send("GET", "/x")  # type: ignore[arg-type]
    assert rec.requests == []


# --- path safety -------------------------------------------------------------------------------

HOSTILE_PATHS = [
    "/nodes/../x",
    "/nodes/./x",
    "/nodes/pve1/..",
    "/storage/%2e%2e",
    "/storage/%2E%2E/x",
    "/storage/a%2fb",
    "/storage/a%2Fb",
    "/storage/a%5cb",
    "/storage/%252e%252e",
    "/storage/a%00",
    "/storage/a%zz",
    "/storage/a%2",
    "/a//b",
    "//evil.example/x",
    "/x?y=1",
    "/x#frag",
    "storage/x",
    "",
    "/nodes/pve1\r\nX-Evil: 1",
    "/nodes/pve 1",
    "/nodes/{node}/qemu",
    "/nodes/pvé",
    "/nodes\\..\\x",
    # a volume id's or a CIDR's own slash is accepted as %2F, nothing around it (issue 22)
    "/nodes/n/storage/nfs-bak/content/nfs-bak:backup%2F..%2F..%2Fetc%2Fshadow",
    "/nodes/n/storage/nfs-bak/content/nfs-bak:backup%2F.",
    "/nodes/n/storage/nfs-bak/content/nfs-bak:backup%2F",
    "/nodes/n/storage/nfs-bak/content/nfs-bak:backup%2F%2Fx",
    "/nodes/n/storage/nfs-bak/content/nfs-bak:backup%2F%2e%2e",
    "/nodes/n/storage/nfs-bak/content/nfs-bak:backup%2fvzdump-qemu-101.vma.zst",
    "/nodes/n/storage/nfs-bak/content/nfs-bak:backup%252Fvzdump-qemu-101.vma.zst",
    "/nodes/n/storage/nfs-bak/content/nfs-bak:%2Fetc%2Fshadow",
    "/nodes/n/storage/nfs-bak/content/..%2Fx",
    "/cluster/firewall/ipset/m/10.0.0.0%2F24%2F..",
]

ENCODED_SLASH_PATHS = [
    "/nodes/n/storage/nfs-bak/content/nfs-bak:backup%2Fvzdump-qemu-101-2026_11_28-02_00_03.vma.zst",
    "/nodes/pve/storage/pbs/content/pbs:backup%2Fvm%2F101%2F2026-11-28T02:00:03Z",
    "/cluster/firewall/ipset/management/10.0.0.0%2F24",
    "/cluster/firewall/ipset/v6/fd00::%2F64",
]


@pytest.mark.anyio
@pytest.mark.parametrize("path", ENCODED_SLASH_PATHS)
async def test_a_volume_ids_encoded_slash_goes_out_exactly_as_given(path: str) -> None:
    rec = Recorder(envelope(None))
    async with make_client(rec) as c:
        await c.get(path)
    assert rec.requests[0].url.raw_path == f"/api2/json{path}".encode()


@pytest.mark.anyio
@pytest.mark.parametrize("path", HOSTILE_PATHS)
async def test_hostile_paths_are_refused_before_any_request(path: str) -> None:
    rec = Recorder(envelope(None))
    async with make_client(rec) as c:
        with pytest.raises(ValueError):
            await c.get(path)
        with pytest.raises(ValueError):
            await c.send("POST", path, {"a": 1})
        with pytest.raises(ValueError):
            await c.send("DELETE", path)
    assert rec.requests == []


# --- UPIDs -------------------------------------------------------------------------------------


def test_parse_upid() -> None:
    assert parse_upid(UPID) == Upid(
        node="node1", pid=0x000FF1FD, pstart=0x10F9374C, starttime=0x630D702C, type="vzdump", id="110", user="root@pam"
    )
    # empty id, 9-digit pstart, token user
    u = parse_upid("UPID:pve-2:00001234:1ABCDEF01:65A0B1C2:aptupdate::root@pam!proximo:")
    assert (u.node, u.pstart, u.id, u.user) == ("pve-2", 0x1ABCDEF01, "", "root@pam!proximo")
    assert is_upid(UPID)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "UPID:node1:000FF1FD:10F9374C:630D702C:vzdump:110:root@pam",  # no trailing colon
        "UPID:node1:000FF1FD:10F9374C:630D702C:vzdump:110:root@pam:keep-running",  # proxmoxer test suffix
        "UPID:node1:FF1FD:10F9374C:630D702C:vzdump:110:root@pam:",  # pid not 8 digits
        "UPID:node1:000FF1FD:10F9374C:630D702C:vzdump:110::",  # no user
        "UPID:-node:000FF1FD:10F9374C:630D702C:vzdump:110:root@pam:",
        "UPID:node1:000FF1FG:10F9374C:630D702C:vzdump:110:root@pam:",
        "UPID:node1:000FF1FD:10F9374C:630D702C:vzdump:110:root@pam:\n",
        "upid:node1:000FF1FD:10F9374C:630D702C:vzdump:110:root@pam:",
    ],
)
def test_parse_upid_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_upid(bad)
    assert not is_upid(bad)


def test_is_upid_non_strings() -> None:
    assert not is_upid(None)
    assert not is_upid(42)
    assert not is_upid({"upid": UPID})


# --- tasks -------------------------------------------------------------------------------------


class FakeTask:
    """Serves /status and /log for one task: running for ``running_polls`` polls, then the final state."""

    def __init__(self, final: dict[str, Any], lines: list[str], running: dict[str, Any], running_polls: int) -> None:
        self.final = final
        self.running = running
        self.all_lines = lines
        self.running_polls = running_polls
        self.polls = 0
        self.log_requests: list[tuple[int, int]] = []

    def visible(self) -> list[str]:
        if self.polls > self.running_polls:
            return self.all_lines
        return self.all_lines[: len(self.all_lines) * self.polls // (self.running_polls + 1)]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        assert path.startswith(f"/api2/json/nodes/node1/tasks/{self.final['upid']}/")
        if path.endswith("/status"):
            self.polls += 1
            return envelope(self.final if self.polls > self.running_polls else self.running)
        assert path.endswith("/log")
        start = int(request.url.params["start"])
        limit = int(request.url.params["limit"])
        self.log_requests.append((start, limit))
        lines = self.visible()
        if not lines:
            return envelope([{"n": 1, "t": "no content"}], total=1)
        rows = [{"n": i + 1, "t": t} for i, t in enumerate(lines)][start : start + limit]
        return envelope(rows, total=len(lines))


def task_from_sample(final_key: str, lines: list[str], running_polls: int) -> FakeTask:
    sample = sample_data("task-status.proxmoxer")
    final = dict(sample[final_key]["data"])
    running = dict(sample["running"]["data"])
    final["upid"] = running["upid"] = UPID  # the sample's UPIDs carry test-harness suffixes
    return FakeTask(final, lines, running, running_polls)


@pytest.mark.anyio
async def test_wait_task_running_then_ok(sleeps: list[float]) -> None:
    lines = [f"INFO: line {i}" for i in range(1, 7)] + ["TASK OK"]
    task = task_from_sample("stopped_ok", lines, running_polls=2)
    progress: list[tuple[str, list[str]]] = []

    async def on_progress(status: str, new: list[str]) -> None:
        progress.append((status, new))

    async with make_client(task) as c:
        result = await c.wait_task("node1", UPID, poll=0.25, on_progress=on_progress)
    assert result == TaskResult(upid=UPID, node="node1", status="stopped", exitstatus="OK", ok=True, log=lines)
    assert [p[0] for p in progress] == ["running", "running", "stopped"]
    assert [line for _, new in progress for line in new] == lines  # each line reported once, in order
    assert sleeps == [0.25, 0.25]


@pytest.mark.anyio
async def test_wait_task_failure(sleeps: list[float]) -> None:
    lines = ["INFO: starting new backup job", "ERROR: interrupted by signal", "TASK ERROR: interrupted by signal"]
    task = task_from_sample("stopped_error", lines, running_polls=1)
    seen: list[str] = []
    async with make_client(task) as c:
        result = await c.wait_task("node1", UPID, on_progress=lambda status, new: seen.extend(new))
    assert result.ok is False
    assert result.exitstatus == "interrupted by signal"
    assert result.status == "stopped"
    assert result.log == lines
    assert seen == lines


@pytest.mark.anyio
async def test_wait_task_warnings_count_as_ok(sleeps: list[float]) -> None:
    task = task_from_sample("stopped_ok", ["WARN: x", "TASK WARNINGS: 1"], running_polls=0)
    task.final["exitstatus"] = "WARNINGS: 1"
    async with make_client(task) as c:
        result = await c.wait_task("node1", UPID)
    assert result.ok is True
    assert result.exitstatus == "WARNINGS: 1"


@pytest.mark.anyio
async def test_wait_task_empty_log(sleeps: list[float]) -> None:
    task = task_from_sample("stopped_ok", [], running_polls=0)
    async with make_client(task) as c:
        result = await c.wait_task("node1", UPID)
    assert result.log == []


@pytest.mark.anyio
async def test_task_log_is_paginated(sleeps: list[float]) -> None:
    lines = [f"line {i}" for i in range(1, 9)]
    task = task_from_sample("stopped_ok", lines, running_polls=0)
    async with make_client(task) as c:
        c.log_page = 3
        result = await c.wait_task("node1", UPID)
    assert result.log == lines
    assert task.log_requests == [(0, 3), (3, 3), (6, 3)]


@pytest.mark.anyio
async def test_half_written_last_line_is_read_again(sleeps: list[float]) -> None:
    task = task_from_sample("stopped_ok", ["a", "b is half"], running_polls=1)
    task.visible = lambda: task.all_lines  # type: ignore[method-assign]
    progress: list[list[str]] = []

    def grow(status: str, new: list[str]) -> None:
        progress.append(new)
        task.all_lines = ["a", "b is half written", "TASK OK"]

    async with make_client(task) as c:
        result = await c.wait_task("node1", UPID, on_progress=grow)
    assert result.log == ["a", "b is half written", "TASK OK"]
    assert progress == [["a", "b is half"], ["TASK OK"]]
    assert task.log_requests == [(0, 500), (1, 500)]


@pytest.mark.anyio
async def test_wait_task_times_out() -> None:
    task = task_from_sample("stopped_ok", ["a"], running_polls=10**6)
    async with make_client(task) as c:
        with pytest.raises(TaskTimeoutError) as info:
            await c.wait_task("node1", UPID, poll=0.01, timeout=0.05)
    assert info.value.upid == UPID
    assert isinstance(info.value, TimeoutError)


@pytest.mark.anyio
async def test_wait_task_validates_its_arguments() -> None:
    rec = Recorder(envelope(None))
    async with make_client(rec) as c:
        with pytest.raises(ValueError):
            await c.wait_task("node1", "UPID:bogus")
        with pytest.raises(ValueError):
            await c.wait_task("../x", UPID)
    assert rec.requests == []


# --- the secret never leaks --------------------------------------------------------------------


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that is bound but not listening: connecting is refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _leak_surfaces(exc: BaseException) -> list[str]:
    surfaces = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for attr in ("message", "errors", "args"):
        if hasattr(exc, attr):
            surfaces.append(repr(getattr(exc, attr)))
    return surfaces


@pytest.mark.anyio
async def test_secret_appears_in_no_error_repr_or_log(
    caplog: pytest.LogCaptureFixture, refused_port: int, sleeps: list[float]
) -> None:
    caplog.set_level(logging.DEBUG)  # root: proximo.client, httpx, httpcore all captured
    for name in ("proximo.client", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)

    hooked: list[str] = []

    def echo_handler(status: int, reason: str) -> Handler:
        def handler(request: httpx.Request) -> httpx.Response:
            hooked.append(repr(request))  # what an event hook would print
            hooked.append(repr(request.headers))
            auth = request.headers["Authorization"]
            # a hostile server echoing the header back in every field it has
            body = {"data": None, "message": f"bad token {auth}", "errors": {"token": auth}}
            return httpx.Response(status, json=body, extensions={"reason_phrase": reason.encode()})

        return handler

    def timeout_handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    failures: list[BaseException] = []
    clients: list[PveClient] = []

    async def expect(exc_type: type[BaseException], c: PveClient, call: Callable[[PveClient], Any]) -> None:
        clients.append(c)
        async with c:
            with pytest.raises(exc_type) as info:
                await call(c)
        failures.append(info.value)

    await expect(PveApiError, make_client(echo_handler(401, "authentication failure")), lambda c: c.get("/version"))
    await expect(PveApiError, make_client(echo_handler(403, "Permission check failed")), lambda c: c.send("POST", "/x"))
    await expect(PveApiError, make_client(echo_handler(500, "Internal Server Error")), lambda c: c.get("/version"))
    await expect(PveConnectionError, make_client(timeout_handler), lambda c: c.get("/version"))
    await expect(PveConnectionError, make_client(timeout_handler), lambda c: c.send("PUT", "/x", {"a": 1}))
    await expect(
        PveConnectionError,
        PveClient(f"https://127.0.0.1:{refused_port}", TOKEN_ID, SECRET, get_retries=1, backoff=0),
        lambda c: c.get("/version"),
    )
    await expect(
        PveConnectionError,
        PveClient(f"http://127.0.0.1:{refused_port}", TOKEN_ID, SECRET, get_retries=0),
        lambda c: c.send("DELETE", "/x"),
    )
    await expect(ValueError, make_client(echo_handler(200, "OK")), lambda c: c.get("/nodes/../x"))
    with pytest.raises(ValueError) as bad_token:
        PveClient(BASE, f"{TOKEN_ID}={SECRET}", SECRET)
    failures.append(bad_token.value)

    assert len(failures) == 9
    assert "Connect" in str(failures[5])  # really a refused connection, not something else
    surfaces = [s for exc in failures for s in _leak_surfaces(exc)]
    surfaces += [repr(c) for c in clients] + hooked
    surfaces += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert any("proximo.client" == r.name for r in caplog.records)
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # the real-socket paths were logged
    leaks = [s for s in surfaces if SECRET in s]
    assert leaks == []
    assert all("\n" not in str(exc) for exc in failures)
