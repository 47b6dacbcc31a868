"""Fixtures shared by the host's test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proximo.testing import TOKEN_ID


@pytest.fixture
def sim_process(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, str | None]]:
    """``proximo sim`` in a child process on a free loopback port; yields the env that points Proximo at it.
    Indirect parameters are more arguments to ``proximo sim``."""
    import os
    import subprocess
    import sys

    secret = "sim-process-secret-5d1e"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_")}, "PROXIMO_SIM_SECRET": secret,
           "PROXIMO_TOKEN_ID": TOKEN_ID, "PROXIMO_HOME": str(tmp_path / "sim-home")}
    extra = list(getattr(request, "param", []))
    # `proximo sim` takes a port number, not a socket: the port is free when probed, but another process (a parallel
    # test worker) may bind it before the child does. The child then exits with "address already in use"; try another.
    for _ in range(5):
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-c", "from proximo.cli import main; main()", "sim", "--port", str(port), *extra],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if _answers_as_the_sim(proc, port, secret):
            break
        proc.wait(timeout=30)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        if "address already in use" not in stderr.lower():
            raise RuntimeError(f"proximo sim exited: {stderr}")
    else:
        raise RuntimeError("proximo sim found no free port in 5 tries")
    try:
        yield {"PROXIMO_URL": f"http://127.0.0.1:{port}", "PROXIMO_TOKEN_ID": TOKEN_ID, "PROXIMO_TOKEN_SECRET": secret}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers_as_the_sim(proc: Any, port: int, secret: str) -> bool:
    """Wait (bounded, a readiness wait, not a timed assertion) until this child serves the port: an authenticated
    answer from our token proves that it is our simulator, not another process that took the port."""
    import time

    import httpx

    headers = {"Authorization": f"PVEAPIToken={TOKEN_ID}={secret}"}
    for _ in range(600):
        if proc.poll() is not None:
            return False
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/api2/json/version", headers=headers, timeout=2)
            if answer.status_code == 200 and proc.poll() is None:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"proximo sim did not answer on port {port}")



def _hypothesis_profile() -> None:
    """Generated tests (hypothesis): moderate, deterministic example counts, so the suite stays fast and repeatable;
    PROXIMO_HYPOTHESIS_EXAMPLES raises them for a long run (bench/security_figures.py)."""
    import os

    from hypothesis import HealthCheck, settings

    settings.register_profile("proximo", max_examples=int(os.environ.get("PROXIMO_HYPOTHESIS_EXAMPLES", "40")),
                              deadline=None, derandomize=True, database=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                     HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
    settings.load_profile("proximo")


_hypothesis_profile()
