"""Proxmox's own firewall test cases (pve-firewall test/, as data in tests/data/pve/pve-firewall.json and, for the
folders pve-api does not hold, tests/data/pve/from-git/pve-firewall.json), through firewall.check.

Each simulation is composed hop by hop as fwtester.pl runs it: the verdict is the first non-ACCEPT of the
source's outbound hop and the destination's inbound hop. The configuration comes in API shapes; the
node's address and network (which fwtester.pl gives PVE as local_network) are added as /cluster/status and
/nodes/{node}/network rows, the way a real cluster shows them.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from proximo_firewall._tools import TOOLS, CheckParams

from proximo.model import ClusterModel, from_api

PVE_DATA = Path(__file__).resolve().parents[3] / "tests" / "data" / "pve"
FIREWALL = json.loads((PVE_DATA / "pve-firewall.json").read_text())
FROM_GIT = json.loads((PVE_DATA / "from-git" / "pve-firewall.json").read_text())
assert FROM_GIT["environment"] == FIREWALL["environment"] and not set(FROM_GIT["testdirs"]) & set(FIREWALL["testdirs"])
TESTDIRS: dict[str, Any] = {**FIREWALL["testdirs"], **FROM_GIT["testdirs"]}


def _model(testdir: str) -> ClusterModel:
    api = copy.deepcopy(TESTDIRS[testdir]["api"])  # the model may keep and change what it is given
    environment = FIREWALL["environment"]
    node, ip = environment["node"], environment["host_ip"]
    prefix = environment["local_network"].split("/")[1]
    api["/cluster/status"] = [{"type": "node", "name": node, "ip": ip, "online": 1, "local": 1}]
    api["/cluster/config/totem"] = environment["totem"]
    api[f"/nodes/{node}/network"] = [{"iface": "vmbr0", "type": "bridge", "cidr": f"{ip}/{prefix}", "active": 1}]
    return from_api(api)


def _check(model: ClusterModel, target: str, direction: str, iface: str | None, pkt: dict[str, Any]) -> str:
    proto = pkt["proto"]
    icmp = proto in ("icmp", "icmpv6")
    params = CheckParams(target=target, direction=direction, iface=iface, source=pkt["source"], dest=pkt["dest"], proto=proto,
                         dport=None if icmp or pkt["dport"] is None else int(pkt["dport"]),
                         sport=None if pkt["sport"] is None else int(pkt["sport"]),
                         icmp_type=str(pkt["dport"]) if icmp and pkt["dport"] is not None else None)
    return str(TOOLS["firewall.check"].run(params, model)["verdict"])


def _guest_target(info: dict[str, Any]) -> str:
    return f"{'qemu' if info['type'] == 'vm' else 'lxc'}/{info['vmid']}"


def _simulate(model: ClusterModel, sim: dict[str, Any], node: str) -> str:
    for hop in sim["hops"]:
        chain, at = hop["chain"], hop["at"]
        if chain == "PVEFW-INPUT":
            verdict = _check(model, f"node/{node}", "in", hop["iface_in"], sim["packet"])
        elif chain == "PVEFW-OUTPUT":
            verdict = _check(model, f"node/{node}", "out", hop["iface_out"], sim["packet"])
        elif at == "fwbr-out":
            verdict = _check(model, _guest_target(sim["from_info"]), "out", sim["from_info"]["net"], sim["packet"])
        elif at == "fwbr-in":
            verdict = _check(model, _guest_target(sim["to_info"]), "in", sim["to_info"]["net"], sim["packet"])
        else:
            continue  # bridging between ports on vmbrN: no PVE chain filters it
        if verdict != "ACCEPT":
            return verdict
    return "ACCEPT"


def _address_type_refused(sim: dict[str, Any]) -> str | None:
    """Why a simulation is not run: FirewallSimulator.pm takes a packet's address types (``srctype``/``dsttype``,
    UNICAST unless the test says) as given, while iptables' ``-m addrtype`` (the corosync multicast rule of
    Firewall.pm enable_host_firewall) reads them from the address, and so does firewall.check: a multicast
    address sent as UNICAST is a packet no kernel sees."""
    for field, key in (("source", "srctype"), ("dest", "dsttype")):
        given = sim["packet"].get(key, "UNICAST")
        own = "MULTICAST" if ipaddress.ip_address(sim["packet"][field]).is_multicast else "UNICAST"
        if given != own:
            return f"not modelled: {key} {given} for the {own.lower()} address {sim['packet'][field]} (firewall.check reads the type from the address)"
    return None


def _simulations() -> list[Any]:
    out = []
    for name, testdir in TESTDIRS.items():
        for line in testdir["lines"]:
            for i, sim in enumerate(line["simulations"]):
                refused = _address_type_refused(sim)
                marks = [pytest.mark.xfail(strict=True, reason=refused)] if refused else []
                out.append(pytest.param(name, sim, id=f"{name}:{line['line']}:{i}:{sim['from']}->{sim['to']}", marks=marks))
    return out


SIMULATIONS = _simulations()


def test_the_suite_is_all_there() -> None:
    """pve-api's 7 folders (84 lines, 125 simulations) and the 6 read from git (58 lines, 119 simulations)."""
    assert len(FIREWALL["testdirs"]) == 7 and sum(len(testdir["lines"]) for testdir in FIREWALL["testdirs"].values()) == 84
    assert len(FROM_GIT["testdirs"]) == 6 and sum(len(testdir["lines"]) for testdir in FROM_GIT["testdirs"].values()) == 58
    assert len(SIMULATIONS) == 125 + 119
    refused = [p.id for p in SIMULATIONS if p.marks]
    assert refused == ["test-default-rules1:15:0:host->outside", "test-default-rules1:33:0:outside->host"]


@pytest.mark.parametrize(("testdir", "sim"), SIMULATIONS)
def test_pve_firewall_case(testdir: str, sim: dict[str, Any]) -> None:
    model = _model(testdir)
    assert _simulate(model, sim, FIREWALL["environment"]["node"]) == sim["expect"]


@pytest.mark.parametrize("testdir", sorted({p.values[0] for p in SIMULATIONS}))
def test_the_model_renders_the_api_shapes_byte_for_byte(testdir: str) -> None:
    """Digests included: the simulator answers these GETs exactly as PVE did for these files."""
    from proximo.model import render

    model = _model(testdir)
    for path, data in TESTDIRS[testdir]["api"].items():
        if "/firewall/" in path:
            assert render(model, path) == data, path
