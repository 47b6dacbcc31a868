"""The agent card, generated from the tool registry: five skills (inspect, plan, apply, undo, audit), nothing per tool;
a sixth, clusters, where several clusters are served (their names, and how a request names one)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill

from .._tools import ToolSpec

JSONRPC_PATH = "/a2a/jsonrpc"
REST_PREFIX = "/a2a/rest"


def _example(spec: ToolSpec) -> str:
    schema = spec.input_schema()
    required = schema.get("required", [])
    return json.dumps({"tool": spec.id, "params": {name: "..." for name in required}})


def skills(specs: list[ToolSpec], *, read_only: bool, clusters: Sequence[str] = (), default_cluster: str = "") -> list[AgentSkill]:
    reads = [s for s in specs if not s.mutating]
    plans = [s for s in specs if s.mutating]
    out = [AgentSkill(
        id="inspect", name="Inspect the cluster",
        description=f"Run one of {len(reads)} read tools (answered at once, changes nothing). Send a DataPart "
                    "{\"tool\": ID, \"params\": {...}} or text `TOOL key=value ...`. Tool ids: `proximo tools`.",
        tags=["proxmox", "read"], examples=[_example(s) for s in reads[:2]] + ["guest.list"],
        input_modes=["application/json", "text/plain"], output_modes=["application/json"])]
    if not read_only:
        out += [
            AgentSkill(
                id="plan", name="Plan a change",
                description=f"Plan with one of {len(plans)} plan tools: the artifact is the plan (exact API calls, "
                            "blast radius, risk, undo). A plan changes nothing; unknown params are refused.",
                tags=["proxmox", "plan"], examples=[_example(s) for s in plans[:2]] + ["storage.delete storage=backup"],
                input_modes=["application/json", "text/plain"], output_modes=["application/json"]),
            AgentSkill(
                id="apply", name="Apply a plan",
                description="Run exactly a plan's steps: {\"apply\": PLAN_ID}. Within auto-approval the task goes "
                            "working -> completed with the ledger receipt. Above it the task waits in input-required "
                            "until a PERSON approves with their own credential (`proximo approve PLAN_ID`); no message "
                            "from an agent can approve. Subscribe to the task to hear the rest (no polling).",
                tags=["proxmox", "apply"], examples=['{"apply": "PLAN_ID"}', "apply PLAN_ID"],
                input_modes=["application/json", "text/plain"], output_modes=["application/json"]),
            AgentSkill(
                id="undo", name="Plan an undo",
                description="Plan the undo of an applied change, by its apply-result's ledger seq: {\"undo\": SEQ}. "
                            "It is a plan; apply it like any other.",
                tags=["proxmox", "undo"], examples=['{"undo": 42}', "undo 42"],
                input_modes=["application/json", "text/plain"], output_modes=["application/json"]),
        ]
    if clusters:
        default = f" The default is {default_cluster}." if default_cluster else " There is no default: name one in each request."
        out.append(AgentSkill(
            id="clusters", name="Choose the cluster",
            description=f"This agent manages {len(clusters)} clusters: {', '.join(clusters)}.{default} Add \"cluster\": "
                        "NAME to a request (or start its text with --cluster NAME). A plan applies only on the cluster "
                        "it was made on.",
            tags=["proxmox", "clusters"], examples=[f'{{"tool": "guest.list", "cluster": "{clusters[0]}"}}',
                                                   f"--cluster {clusters[0]} guest.list"],
            input_modes=["application/json", "text/plain"], output_modes=["application/json"]))
    out.append(AgentSkill(
        id="audit", name="Audit the ledger",
        description="Verify the hash-chained ledger ({\"audit\": \"verify\"}) or read its newest records "
                    "({\"audit\": \"tail\", \"n\": 20}).",
        tags=["ledger", "audit"], examples=['{"audit": "verify"}', '{"audit": "tail", "n": 20}', "audit tail 5"],
        input_modes=["application/json", "text/plain"], output_modes=["application/json"]))
    return out


def agent_card(base_url: str, specs: list[ToolSpec], *, read_only: bool = False, version: str = "",
               clusters: Sequence[str] = (), default_cluster: str = "") -> AgentCard:
    base = base_url.rstrip("/")
    return AgentCard(
        name="Proximo",
        description=("A Proxmox VE agent you can trust: every change goes PLAN -> APPROVE -> APPLY -> ledger -> UNDO. "
                     "Plans above the auto-approval level wait for a person's approval, which no agent can give."),
        version=version,
        supported_interfaces=[
            AgentInterface(url=base + JSONRPC_PATH, protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=base + REST_PREFIX, protocol_binding="HTTP+JSON", protocol_version="1.0"),
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["application/json", "text/plain"],
        default_output_modes=["application/json", "text/plain"],
        skills=skills(specs, read_only=read_only, clusters=list(clusters), default_cluster=default_cluster),
    )
