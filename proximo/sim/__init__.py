"""The simulated Proxmox VE cluster: the same model, served over the real API shape."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ._app import RELEASE_VERSIONS, Simulator, simulate_release
from ._faults import Fault, Faults, load_faults

__all__ = ["RELEASE_VERSIONS", "Fault", "Faults", "Simulator", "demo_snapshot", "load_faults", "named_cluster", "serve_config",
           "simulate_release"]


def demo_snapshot() -> dict[str, Any]:
    """The built-in demo cluster, in snapshot format (docs/architecture.md, "The snapshot file")."""
    return json.loads(resources.files("proximo.sim").joinpath("demo_cluster.json").read_text())


def named_cluster(snapshot: dict[str, Any], name: str) -> dict[str, Any]:
    """``snapshot`` as a cluster named ``name``: corosync's cluster name, where PVE shows it (the /cluster/status row
    of type cluster, /cluster/config/totem). Its nodes keep their names: clusters of one site often share them."""
    api = snapshot.get("api") or {}
    for row in api.get("/cluster/status") or []:
        if isinstance(row, dict) and row.get("type") == "cluster":
            row["name"] = name
    totem = api.get("/cluster/config/totem")
    if isinstance(totem, dict) and "cluster_name" in totem:
        totem["cluster_name"] = name
    return snapshot


def serve_config(app: Any, **kwargs: Any) -> Any:
    """A uvicorn Config that serves the simulator's app with pveproxy's status lines (``_serve.py``; imported
    here, on use, so that importing the simulator does not import uvicorn)."""
    from ._serve import serve_config as config

    return config(app, **kwargs)
