"""``proximo sim --clusters 2`` in a child process, and the CLI on the clusters file it prints (issue 21): every
command takes ``--cluster``, and a plan made on one cluster is refused on the other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from proximo.cli import build_cli
from proximo.testing import TOKEN_ID

STORAGE = ["storage.update", "storage=nfs-backup", "prune-backups=keep-last=3"]  # MEDIUM: auto-approved


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[Path]:
    """The clusters file ``proximo sim --clusters 2 --port 0`` writes, once both clusters answer."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_")}, "PROXIMO_HOME": str(tmp_path / "sim-home")}
    proc = subprocess.Popen([sys.executable, "-m", "proximo", "sim", "--clusters", "2", "--port", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for _ in range(64):  # bounded: what it says before it serves ends with the export line
            export = proc.stderr.readline()
            if export.strip().startswith("export PROXIMO_CLUSTERS=") or not export:
                break
        path = Path(export.strip().removeprefix("export PROXIMO_CLUSTERS="))
        text = path.read_text()
        urls = [line.split('"')[1] for line in text.splitlines() if line.startswith("url = ")]
        secrets = [(path.parent / f"{name}.token").read_text().strip() for name in ("sim1", "sim2")]
        for url, secret in zip(urls, secrets, strict=True):
            _wait_until_it_answers(proc, url, secret)
        yield path
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


def _wait_until_it_answers(proc: subprocess.Popen[str], url: str, secret: str) -> None:
    for _ in range(600):  # a readiness wait, not a timed assertion
        assert proc.poll() is None, "proximo sim --clusters exited"
        try:
            if httpx.get(f"{url}/api2/json/version", headers={"Authorization": f"PVEAPIToken={TOKEN_ID}={secret}"},
                         timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def proximo(clusters: Path, home: Path, *args: str) -> Result:
    env: dict[str, str | None] = {"PROXIMO_CLUSTERS": str(clusters), "PROXIMO_HOME": str(home)}
    env.update(dict.fromkeys(("PROXIMO_URL", "PROXIMO_TOKEN_ID", "PROXIMO_TOKEN_SECRET", "PROXIMO_TOKEN_FILE", "PROXIMO_CLUSTER",
                              "PROXIMO_LEDGER", "PROXIMO_LEDGER_KEY", "PROXIMO_AUTO_APPROVE", "PROXIMO_POLICY",
                              "PROXIMO_CA_FILE", "PROXIMO_TLS_FINGERPRINT")))
    return CliRunner().invoke(build_cli(), list(args), env=env, catch_exceptions=False)


def test_sim_serves_two_clusters_with_distinct_names_and_the_same_node_names(sims: Path) -> None:
    text = sims.read_text()
    assert text.count("[[cluster]]") == 2 and 'name = "sim1"' in text and 'name = "sim2"' in text
    for name in ("sim1", "sim2"):  # each secret in its own file, never in the clusters file
        assert (sims.parent / f"{name}.token").read_text().strip() not in text
    seen = {}
    for name in ("sim1", "sim2"):
        url = next(line.split('"')[1] for line in text.split("[[cluster]]")[int(name[-1])].splitlines() if line.startswith("url"))
        secret = (sims.parent / f"{name}.token").read_text().strip()
        rows = httpx.get(f"{url}/api2/json/cluster/status", headers={"Authorization": f"PVEAPIToken={TOKEN_ID}={secret}"}).json()["data"]
        seen[name] = ({r["name"] for r in rows if r["type"] == "cluster"}, {r["name"] for r in rows if r["type"] == "node"})
    assert seen["sim1"][0] == {"sim1"} and seen["sim2"][0] == {"sim2"}
    assert seen["sim1"][1] == seen["sim2"][1] and seen["sim1"][1]  # pve1, pve2, ... on both


def test_the_cli_takes_the_cluster_and_refuses_a_plan_on_the_other(sims: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    listed = json.loads(proximo(sims, home, "clusters", "--json").stdout)
    assert [(c["name"], c["chosen"]) for c in listed] == [("sim1", False), ("sim2", False)]
    assert json.loads(proximo(sims, home, "--cluster", "sim2", "clusters", "--json").stdout)[1]["chosen"] is True
    unnamed = proximo(sims, home, "plan", *STORAGE, "--json")
    assert unnamed.exit_code == 2 and unnamed.stderr.strip().count("\n") == 0
    assert "several clusters are configured (sim1, sim2): name one" in unnamed.stderr
    unknown = proximo(sims, home, "--cluster", "nope", "plan", *STORAGE)
    assert unknown.exit_code == 2 and "no cluster 'nope': the clusters are sim1, sim2" in unknown.stderr
    made = proximo(sims, home, "plan", "--cluster", "sim1", *STORAGE, "--json")
    assert made.exit_code == 0, made.output
    plan = json.loads(made.stdout)
    assert plan["cluster"]["name"] == "sim1" and plan["cluster"]["id"] == "cluster:sim1"
    wrong = proximo(sims, home, "apply", "--cluster", "sim2", plan["plan_id"], "--json")
    assert wrong.exit_code == 3 and f"plan {plan['plan_id']} was made on cluster 'sim1', not 'sim2'" in wrong.stderr
    right = proximo(sims, home, "--cluster", "sim1", "apply", plan["plan_id"], "--json")
    assert right.exit_code == 0, right.output
    # no cluster named: apply goes to the cluster the plan names (the same for approve)
    second = json.loads(proximo(sims, home, "plan", "--cluster", "sim2", *STORAGE, "--json").stdout)
    unnamed_apply = proximo(sims, home, "apply", second["plan_id"], "--json")
    assert unnamed_apply.exit_code == 0, unnamed_apply.output
    assert json.loads(unnamed_apply.stdout)["ok"] is True
    missing = proximo(sims, home, "apply", "p-000000000000")
    assert missing.exit_code == 3 and "no plan p-000000000000" in missing.stderr and missing.stderr.count("\n") == 1
    shown = proximo(sims, home, "ledger", "show", "-n", "10", "--json")  # the ledger needs no cluster: it is all of them
    records = json.loads(shown.stdout)
    named = {(r["kind"], r["outcome"].get("cluster")) for r in records if r["plan_id"] == plan["plan_id"]}
    assert {("plan", "sim1"), ("deny", "sim2"), ("apply-start", "sim1"), ("apply-result", "sim1")} <= named
    assert proximo(sims, home, "ledger", "verify").exit_code == 0
