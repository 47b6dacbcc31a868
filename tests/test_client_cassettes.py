"""The client's HTTP behaviour, replayed from recorded exchanges (pytest-recording cassettes in ``cassettes/client``).

Modes (CONTRIBUTING.md says the same):

- ``CI`` set: replay only (record mode ``none``). No server is started; a missing cassette fails the test.
- locally, by default: record mode ``once``. A missing cassette is recorded against the simulator, served by
  uvicorn on a loopback port; an existing one is replayed.
- ``--record-mode=rewrite`` re-records them all against the simulator; with ``PROXIMO_URL``,
  ``PROXIMO_TOKEN_ID`` and ``PROXIMO_TOKEN_SECRET`` (and ``PROXIMO_CA_FILE`` or ``PROXIMO_TLS_FINGERPRINT``)
  set, against a real cluster. Cases that need the simulator's fault injection are skipped there.

The ``Authorization`` header is never written: ``filter_headers`` drops it after checking that the live
request carried ``PVEAPIToken=USER@REALM!TOKENID=...``, in replay too. Requests match on method, scheme,
host, path and query but not the port, so a cassette recorded on one free port replays on any.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _loopback import serve

from proximo import PveApiError
from proximo.pve._client import PveClient, TaskResult, parse_upid
from proximo._host import make_client
from proximo._settings import Settings
from proximo.testing import TOKEN_ID, World

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
CASSETTES = ROOT / "cassettes" / "client"
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
REAL_CLUSTER = bool(os.environ.get("PROXIMO_URL"))
# The simulator's token secret while recording: fixed, so the leak test below can look for it.
RECORDING_SECRET = "cassette-recording-secret-7f3c9a"
REPLAY_URL = "http://127.0.0.1:8006"  # the port is not matched; nothing listens here during replay
NODE = os.environ.get("PROXIMO_TEST_NODE", "pve1")
STORAGE = os.environ.get("PROXIMO_TEST_STORAGE", "local")

sim_only = pytest.mark.skipif(REAL_CLUSTER, reason="needs the simulator's fault injection")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


@dataclass
class Seen:
    """The Authorization values of the live requests, checked and kept here (never in a cassette)."""

    headers: list[str] = field(default_factory=list)

    def dropper(self) -> Any:
        # A closure, not a bound method: pytest-recording deep-copies the config, which would copy ``self``.
        headers = self.headers

        def drop_authorization(key: str, value: str, request: Any) -> None:
            scheme, _, rest = value.partition("=")
            token_id, _, secret = rest.rpartition("=")
            assert scheme == "PVEAPIToken" and "@" in token_id and "!" in token_id and secret, "not a PVEAPIToken header"
            headers.append(value)
            return None  # None: the header is left out of the recording

        return drop_authorization


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def vcr_config(request: pytest.FixtureRequest, seen: Seen) -> dict[str, Any]:
    config: dict[str, Any] = {
        "filter_headers": [("authorization", seen.dropper()), ("cookie", None), ("set-cookie", None)],
        "match_on": ["method", "scheme", "host", "path", "query"],
        "decode_compressed_response": True,
    }
    if request.config.getoption("--record-mode") is None:
        config["record_mode"] = "none" if IN_CI else "once"
    return config


@dataclass
class Endpoint:
    """Where the client talks: the simulator (recording), a real cluster (re-recording), or nothing (replay)."""

    url: str
    token_id: str
    secret: str
    world: World | None = None

    def client(self, *, secret: str | None = None) -> PveClient:
        if REAL_CLUSTER and secret is None:
            return make_client(Settings.from_env())
        return PveClient(self.url, self.token_id, secret or self.secret, backoff=0.0)

    def fault(self, method: str, path_regex: str, status: int, message: str, *, times: int = 1) -> None:
        if self.world is not None:
            self.world.sim.inject_fault(method, path_regex, status, message, times=times)


@pytest.fixture
def pve(vcr: Any, tmp_path: Path) -> Iterator[Endpoint]:
    if REAL_CLUSTER:
        settings = Settings.from_env()
        assert settings.token_secret is not None, "set PROXIMO_TOKEN_SECRET (or PROXIMO_TOKEN_FILE) to record"
        yield Endpoint(settings.url, settings.token_id, settings.token_secret.reveal())
    elif vcr.write_protected:  # replaying: no server at all, the cassette answers
        yield Endpoint(REPLAY_URL, TOKEN_ID, "replay-" + RECORDING_SECRET[:4])
    else:
        world = World(tmp_path)
        world.secret = RECORDING_SECRET
        world.sim.tokens = {TOKEN_ID: RECORDING_SECRET}
        with serve(world.sim.app) as url:
            yield Endpoint(url, TOKEN_ID, RECORDING_SECRET, world)


@asynccontextmanager
async def opened(pve: Endpoint, **kw: Any) -> AsyncIterator[PveClient]:
    async with pve.client(**kw) as client:
        yield client


# --- GET --------------------------------------------------------------------------------------------------------


@pytest.mark.vcr
async def test_get_version_with_the_token_header(pve: Endpoint, seen: Seen, vcr: Any) -> None:
    async with opened(pve) as client:
        data = await client.get("/version")
    assert isinstance(data, dict) and "version" in data and "release" in data
    assert seen.headers and all(h.startswith(f"PVEAPIToken={pve.token_id}=") for h in seen.headers)
    assert vcr.play_count == 1 or not vcr.write_protected


@pytest.mark.vcr
async def test_get_list_and_query_params(pve: Endpoint) -> None:
    async with opened(pve) as client:
        rows = await client.get("/cluster/resources", {"type": "storage"})
    assert rows and all(r["type"] == "storage" for r in rows)


@sim_only
@pytest.mark.vcr
async def test_get_retries_a_503_then_succeeds(pve: Endpoint, vcr: Any) -> None:
    pve.fault("GET", r"^/version$", 503, "service temporarily unavailable", times=2)
    async with opened(pve) as client:
        data = await client.get("/version")
    assert "version" in data
    assert len(vcr.requests) == 3 and (vcr.play_count == 3 or not vcr.write_protected)


@sim_only
@pytest.mark.vcr
async def test_get_gives_up_after_its_retries(pve: Endpoint, vcr: Any) -> None:
    pve.fault("GET", r"^/cluster/status$", 500, "cluster not ready - no quorum?", times=10)
    async with opened(pve) as client:
        with pytest.raises(PveApiError) as caught:
            await client.get("/cluster/status")
    assert caught.value.status == 500 and caught.value.message == "cluster not ready - no quorum?"
    assert len(vcr.requests) == 4, "one try and three retries"


# --- error envelopes ----------------------------------------------------------------------------------------------


@pytest.mark.vcr
async def test_400_parameter_verification(pve: Endpoint, vcr: Any) -> None:
    async with opened(pve) as client:
        with pytest.raises(PveApiError) as caught:
            await client.get("/cluster/resources", {"type": "not-a-type"})
    err = caught.value
    assert err.status == 400 and err.message == "Parameter verification failed."
    assert "type" in err.errors and "enumeration" in err.errors["type"]
    assert "\n" not in str(err) and str(err).startswith("GET /cluster/resources: 400 ")
    assert len(vcr.requests) == 1, "a 4xx is not retried"


@sim_only
@pytest.mark.vcr
async def test_403_permission_check(pve: Endpoint, vcr: Any) -> None:
    pve.fault("GET", r"^/access/acl$", 403, "Permission check failed (/access, Sys.Audit)")
    async with opened(pve) as client:
        with pytest.raises(PveApiError) as caught:
            await client.get("/access/acl")
    assert caught.value.status == 403 and caught.value.message == "Permission check failed (/access, Sys.Audit)"
    assert len(vcr.requests) == 1


@pytest.mark.vcr
async def test_500_from_pve_on_a_missing_object(pve: Endpoint, vcr: Any) -> None:
    async with opened(pve) as client:
        with pytest.raises(PveApiError) as caught:
            await client.get("/storage/no-such-storage-xyz")
    assert caught.value.status == 500 and "does not exist" in caught.value.message
    assert len(vcr.requests) == 4, "PVE answers 500 here, which a GET retries"


@pytest.mark.vcr
async def test_a_wrong_token_is_401(pve: Endpoint) -> None:
    async with opened(pve, secret="wrong-secret-0000") as client:
        with pytest.raises(PveApiError) as caught:
            await client.get("/version")
    assert caught.value.status == 401
    assert "wrong-secret-0000" not in str(caught.value)


@sim_only
@pytest.mark.vcr
async def test_a_mutation_is_never_retried(pve: Endpoint, vcr: Any) -> None:
    pve.fault("POST", r"^/storage$", 503, "service temporarily unavailable", times=5)
    async with opened(pve) as client:
        with pytest.raises(PveApiError) as caught:
            await client.send("POST", "/storage", {"storage": "scratch", "type": "dir", "path": "/srv/scratch"})
    assert caught.value.status == 503
    assert len(vcr.requests) == 1, "a POST that failed may have been applied: the client never sends it twice"
    assert vcr.requests[0].body == b"storage=scratch&type=dir&path=%2Fsrv%2Fscratch"


# --- UPID waits ---------------------------------------------------------------------------------------------------


@pytest.mark.vcr
async def test_wait_on_a_task_by_upid(pve: Endpoint) -> None:
    if pve.world is not None:  # recording on the simulator: a backup task that runs for two status polls
        pve.world.model.start_task(NODE, "vzdump", "104", TOKEN_ID, log=["INFO: starting new backup job", "INFO: Finished Backup of VM 104"],
                                   polls=2)
    async with opened(pve) as client:
        rows = await client.get(f"/nodes/{NODE}/tasks")
        upid = max(rows, key=lambda r: r["starttime"])["upid"]
        progress: list[str] = []
        task = await client.wait_task(NODE, upid, poll=0.01, on_progress=lambda status, lines: progress.append(status))
        status = await client.get(f"/nodes/{NODE}/tasks/{upid}/status")
    decoded = parse_upid(upid)
    assert (status["pid"], status["pstart"], status["starttime"], status["type"]) == (decoded.pid, decoded.pstart,
                                                                                         decoded.starttime, decoded.type)
    assert isinstance(task, TaskResult) and task.upid == upid and task.status == "stopped"
    assert task.ok == (task.exitstatus == "OK" or task.exitstatus.startswith("WARNINGS"))
    assert progress[-1] == "stopped"
    if not REAL_CLUSTER:
        assert progress[0] == "running", "the task was still running at the first poll"
        assert task.log[-1] == "TASK OK" and task.log[0] == "INFO: starting new backup job"


# --- the cassettes themselves -------------------------------------------------------------------------------------


def test_cassettes_exist_for_every_recorded_test() -> None:
    import inspect
    import sys

    module = sys.modules[__name__]
    names = [n for n, f in inspect.getmembers(module, inspect.isfunction)
             if n.startswith("test_") and any(m.name == "vcr" for m in getattr(f, "pytestmark", []))]
    assert len(names) >= 8
    missing = [n for n in names if not (CASSETTES / f"{n}.yaml").is_file()]
    assert not missing or not IN_CI, f"cassettes missing (record them locally first): {missing}"


def test_no_cassette_holds_a_secret_or_an_authorization_header() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    if not files:
        pytest.skip("no cassettes recorded yet")
    secrets_ = [RECORDING_SECRET] + [os.environ[k] for k in ("PROXIMO_TOKEN_SECRET",) if os.environ.get(k)]
    for path in files:
        text = path.read_text()
        lowered = text.lower()
        assert "authorization" not in lowered and "pveapitoken" not in lowered, path.name
        assert "cookie" not in lowered, path.name
        for secret in secrets_:
            assert secret not in text, path.name
        assert "interactions:" in text
