"""One MCP server on two simulated clusters (issue 21): every tool takes ``cluster``, ``proximo_clusters`` lists them,
and a plan made on one is refused on the other, by the host (nothing reaches the other cluster, nobody is asked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from _mcp_support import MODES, Person, anyio_backend, text  # noqa: F401
from proximo.mcp import McpSettings, build_server
from proximo.mcp._tools import cluster_bytes
from proximo.testing import SimClusters

pytestmark = pytest.mark.anyio
MEDIUM = {"storage": "nfs-backup", "prune-backups": "keep-last=3"}  # auto-approved
# tests/mcp/test_schemas.py's goals: no tool over 8,000 bytes with the cluster parameter, and 1,250 a tool on average
# besides it (the parameter, an enum of the names, is what several clusters cost every tool: cluster_bytes)
TOOL_GOAL, AVERAGE_GOAL = 8_000, 1_250


def serve(tmp_path: Path, toolset: str = "full", default: str = "") -> tuple[SimClusters, Any]:
    fleet = SimClusters(tmp_path)
    return fleet, build_server(fleet.factories(), McpSettings(toolset=toolset), tools=fleet.packs.tools,
                               default_cluster=default)


def writes(fleet: SimClusters, name: str) -> list[str]:
    return [method for method, _ in fleet[name].sim.requests if method != "GET"]


@pytest.mark.parametrize("mode", MODES)
async def test_plans_on_two_clusters_from_one_server_and_one_refused_on_the_other(mode: str, tmp_path: Path) -> None:
    fleet, server = serve(tmp_path)
    async with Client(server, mode=mode) as client:
        listed = (await client.call_tool("proximo_clusters", {})).structured_content
        assert [(c["name"], c["url"], c["default"]) for c in listed["clusters"]] == [
            ("east", "http://east.sim:8006", False), ("west", "http://west.sim:8006", False)]
        east = (await client.call_tool("pve_storage_update", {**MEDIUM, "cluster": "east"})).structured_content
        west = (await client.call_tool("pve_storage_update", {**MEDIUM, "cluster": "west"})).structured_content
        assert (east["cluster"]["name"], west["cluster"]["name"]) == ("east", "west")
        assert east["cluster"]["id"] == "cluster:east" and west["cluster"]["id"] == "cluster:west"
        wrong = await client.call_tool("proximo_apply", {"plan_id": east["plan_id"], "cluster": "west"})
        assert wrong.is_error and f"plan {east['plan_id']} was made on cluster 'east', not 'west'" in text(wrong)
        assert writes(fleet, "west") == []
        assert not (await client.call_tool("proximo_apply", {"plan_id": east["plan_id"], "cluster": "east"})).is_error
        assert not (await client.call_tool("proximo_apply", {"plan_id": west["plan_id"], "cluster": "west"})).is_error
        tail = (await client.call_tool("proximo_ledger_tail", {"n": 30})).structured_content["records"]
    assert writes(fleet, "east") == ["PUT"] and writes(fleet, "west") == ["PUT"]
    clusters = {(r["plan_id"], r["kind"]): r["outcome"].get("cluster") for r in tail if r["kind"] in ("plan", "apply-result")}
    assert clusters == {(east["plan_id"], "plan"): "east", (east["plan_id"], "apply-result"): "east",
                        (west["plan_id"], "plan"): "west", (west["plan_id"], "apply-result"): "west"}


async def test_without_a_default_a_call_that_names_no_cluster_is_refused_in_one_line(tmp_path: Path) -> None:
    fleet, server = serve(tmp_path)
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in ("pve_storage_update", "pve_storage_list", "proximo_apply", "proximo_undo"):
            schema = tools[name].input_schema
            assert schema["properties"]["cluster"]["enum"] == ["east", "west"] and "cluster" in schema["required"]
        assert "cluster" not in tools["proximo_ledger_tail"].input_schema.get("required", [])
        sizes = [len(json.dumps(t.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":"),
                                ensure_ascii=False).encode()) for t in tools.values()]
        assert max(sizes) <= TOOL_GOAL
        assert sum(sizes) < (AVERAGE_GOAL + cluster_bytes(["east", "west"])) * len(sizes)
        assert cluster_bytes(["east", "west"]) < 100
        for args in (MEDIUM, {**MEDIUM, "cluster": "north"}, {**MEDIUM, "cluster": 3}):
            result = await client.call_tool("pve_storage_update", args)
            line = text(result)
            assert result.is_error and "\n" not in line
            assert "several clusters are served (east, west)" in line or "the clusters are east, west" in line
        assert not (await client.call_tool("proximo_ledger_tail", {"n": 5})).is_error  # the ledger is every cluster's
    assert writes(fleet, "east") == writes(fleet, "west") == []


async def test_a_default_cluster_may_be_left_unnamed(tmp_path: Path) -> None:
    fleet, server = serve(tmp_path, toolset="compact", default="west")
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "cluster" not in tools["proximo_plan"].input_schema.get("required", [])
        made = (await client.call_tool("proximo_plan", {"tool": "storage.update", "params": MEDIUM})).structured_content
        assert made["cluster"]["name"] == "west"
        other = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"], "cluster": "east"})
        assert other.is_error and "made on cluster 'west', not 'east'" in text(other)
        assert not (await client.call_tool("proximo_apply", {"plan_id": made["plan_id"]})).is_error
    assert writes(fleet, "east") == [] and writes(fleet, "west") == ["PUT"]


async def test_nobody_is_asked_to_approve_a_plan_on_the_wrong_cluster(tmp_path: Path) -> None:
    fleet, server = serve(tmp_path, toolset="compact")
    person = Person("accept", {"approve": True})
    async with Client(server, elicitation_callback=person) as client:
        made = (await client.call_tool("proximo_plan", {"tool": "guest.stop", "params": {"vmid": 104},
                                                        "cluster": "east"})).structured_content
        assert made["risk"] in ("HIGH", "CRITICAL")
        wrong = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"], "cluster": "west"})
        assert wrong.is_error and "made on cluster 'east', not 'west'" in text(wrong)
        assert person.asked == []  # the host refused it before any form was shown
        assert not (await client.call_tool("proximo_apply", {"plan_id": made["plan_id"], "cluster": "east"})).is_error
        assert len(person.asked) == 1
    assert writes(fleet, "west") == [] and writes(fleet, "east") == ["POST"]


async def test_a_plan_of_api_call_is_refused_on_the_other_cluster_too(tmp_path: Path) -> None:
    """The binding is the host's, not a named tool's: the generic api.call tool's plans are bound the same way."""
    fleet, server = serve(tmp_path)
    async with Client(server) as client:
        made = (await client.call_tool("pve_api_call", {"method": "PUT", "path": "/storage/nfs-backup", "cluster": "west",
                                                         "params": {"prune-backups": "keep-last=3"}})).structured_content
        assert made["cluster"]["name"] == "west" and not made["blocked"]
        wrong = await client.call_tool("proximo_apply", {"plan_id": made["plan_id"], "cluster": "east"})
        assert wrong.is_error and "made on cluster 'west', not 'east'" in text(wrong)
    assert writes(fleet, "east") == writes(fleet, "west") == []
