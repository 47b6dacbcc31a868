"""``proximo console``: its refusals as one line (CliRunner), and ``--sim`` as a newcomer runs it (a child process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from proximo.cli import build_cli
from proximo.console import DEMO_APPROVER


def run(args: list[str], home: Path, **env: str) -> tuple[int, str]:
    clean = {k: None for k in os.environ if k.startswith("PROXIMO_")}
    result = CliRunner().invoke(build_cli(), args, env={**clean, "PROXIMO_HOME": str(home), **env}, catch_exceptions=False)
    return result.exit_code, result.stderr


def test_off_loopback_without_tls_exits_2_with_one_line(tmp_path: Path) -> None:
    code, err = run(["console", "--host", "0.0.0.0"], tmp_path)
    assert code == 2 and err.strip().splitlines() == [
        "proximo: refusing to serve the console on 0.0.0.0 without TLS: a passphrase and a session cookie would cross the "
        "network in the clear. Give --tls-cert and --tls-key, or bind to 127.0.0.1"]


def test_a_certificate_without_its_key_and_no_cluster_exit_2(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not read: the key is missing first")
    code, err = run(["console", "--tls-cert", str(cert)], tmp_path)
    assert code == 2 and "--tls-cert and --tls-key go together" in err
    code, err = run(["console"], tmp_path)
    assert code == 2 and "no cluster configured" in err and "proximo console --sim" in err


def test_console_sim_prints_the_demo_approvers_passphrase_once_and_serves_the_demos_plans(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_")}, "PROXIMO_HOME": str(tmp_path)}
    child = subprocess.Popen([sys.executable, "-m", "proximo", "console", "--sim", "--port", "0"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        said: list[str] = []
        deadline = time.monotonic() + 120
        assert child.stderr is not None
        while time.monotonic() < deadline and not any("serving at" in line for line in said):  # a readiness wait
            line = child.stderr.readline()
            if not line:
                break
            said.append(line)
        text = "".join(said)
        passphrase = re.search(rf"demo approver '{DEMO_APPROVER}', passphrase (\S+) ", text)
        base = re.search(r"serving at (http://127\.0\.0\.1:\d+)/", text)
        assert passphrase and base, text
        with httpx.Client(base_url=base.group(1), follow_redirects=True, timeout=60) as browser:
            form = browser.get("/signin")
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token
            page = browser.post("/signin", data={"csrf": token.group(1), "name": DEMO_APPROVER,
                                                 "passphrase": passphrase.group(1)})
        assert page.status_code == 200 and "Plans waiting for a person" in page.text
        assert "storage.delete" in page.text and "firewall.options.set" in page.text
        assert text.count(passphrase.group(1)) == 1
    finally:
        child.terminate()
        child.wait(timeout=30)
        if child.stderr:
            child.stderr.close()
