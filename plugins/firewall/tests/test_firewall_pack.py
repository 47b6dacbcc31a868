"""The firewall pack end to end on API-shaped snapshots: lockout, reach, staged rules, plan -> apply -> undo, bad input.

Firewall rows are shaped as pve-firewall's GET handlers (src/PVE/API2/Firewall/*.pm) answer, and as real
captures show them: digest on every row, pos on rules, numbers for enable/ipversion, strings for ports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proximo import BadInput, Risk
from proximo.model import fw_digest, options_digest, render
from proximo.testing import World, snapshot_from
from proximo_firewall._eval import Packet, evaluate
from proximo_firewall._semantics import move

pytestmark = pytest.mark.anyio

ADMIN_OUTSIDE = "192.168.50.10"  # not in local_network 10.0.0.0/24: only rules let it in
ADMIN_INSIDE = "10.0.0.50"  # in local_network: the management ipset always lets it reach 8006


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _rows(rows: list[dict[str, Any]], *, pos: bool = True) -> list[dict[str, Any]]:
    digest = fw_digest(rows)
    return [{**r, "digest": digest, **({"pos": i} if pos else {})} for i, r in enumerate(rows)]


def api(*, enable: int = 0, cluster_rules: list[dict[str, Any]] | None = None, guest_rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    opts = {"enable": enable, "policy_in": "DROP"}
    web_in = [{"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "443", "enable": 1},
              {"type": "in", "action": "DROP", "proto": "tcp", "dport": "80", "enable": 1}]
    guest_opts = {"enable": 1}
    return {
        "/version": {"version": "9.1.1", "release": "9.1", "repoid": "abc"},
        "/cluster/status": [{"type": "cluster", "name": "lab", "nodes": 1, "quorate": 1, "version": 3},
                            {"type": "node", "name": "pve1", "ip": "10.0.0.11", "online": 1, "local": 1, "nodeid": 1}],
        "/nodes": [{"node": "pve1", "status": "online"}],
        "/cluster/resources": [{"id": "node/pve1", "type": "node", "node": "pve1", "status": "online"},
                               {"id": "qemu/100", "type": "qemu", "vmid": 100, "node": "pve1", "status": "running", "name": "web"}],
        "/nodes/pve1/network": [{"iface": "vmbr0", "type": "bridge", "cidr": "10.0.0.11/24", "address": "10.0.0.11", "netmask": "24", "active": 1}],
        "/nodes/pve1/qemu/100/config": {"name": "web", "memory": 1024, "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1",
                                        "digest": "0123456789abcdef0123456789abcdef01234567"},
        "/cluster/firewall/options": {**opts, "digest": options_digest(opts)},
        "/cluster/firewall/rules": _rows(cluster_rules or []),
        "/cluster/firewall/groups": _rows([{"group": "web-in", "comment": "public web"}], pos=False),
        "/cluster/firewall/groups/web-in": _rows(web_in),
        "/cluster/firewall/ipset": _rows([{"name": "admins"}], pos=False),
        "/cluster/firewall/ipset/admins": _rows([{"cidr": "192.168.60.0/24"}, {"cidr": "192.168.60.9", "nomatch": 1}], pos=False),
        "/cluster/firewall/aliases": _rows([{"name": "office", "cidr": "192.168.70.0/24", "ipversion": 4}], pos=False),
        "/nodes/pve1/firewall/options": {"enable": 1, "digest": options_digest({"enable": 1})},
        "/nodes/pve1/firewall/rules": [],
        "/nodes/pve1/qemu/100/firewall/options": {**guest_opts, "digest": options_digest(guest_opts)},
        "/nodes/pve1/qemu/100/firewall/rules": _rows(guest_rules if guest_rules is not None else [{"type": "group", "action": "web-in", "enable": 1}]),
        "/nodes/pve1/qemu/100/firewall/ipset": [],
        "/nodes/pve1/qemu/100/firewall/aliases": [],
    }


def world(tmp_path: Path, admin: str = ADMIN_OUTSIDE, **kw: Any) -> World:
    return World(tmp_path, snapshot_from(api(**kw)), env={"PROXIMO_ADMIN_SOURCES": admin})


# --- the evaluator, construct by construct ----------------------------------------------------------------


def _model(**kw: Any):  # type: ignore[no-untyped-def]
    from proximo.model import from_api

    return from_api(api(**kw))


EVAL_CASES = [
    # (what, model kwargs, target, packet, verdict, decided_by contains)
    ("cluster disabled filters nothing", {}, "node/pve1", Packet(source="1.2.3.4", proto="tcp", dport=8006), "ACCEPT", "cluster firewall disabled"),
    ("policy_in DROP on the host", {"enable": 1}, "node/pve1", Packet(source="1.2.3.4", proto="tcp", dport=8006), "DROP", "cluster policy_in"),
    ("management ipset (local_network) reaches 8006", {"enable": 1}, "node/pve1", Packet(source=ADMIN_INSIDE, proto="tcp", dport=8006),
     "ACCEPT", "management ipset"),
    ("management does not cover 80", {"enable": 1}, "node/pve1", Packet(source=ADMIN_INSIDE, proto="tcp", dport=80), "DROP", "policy_in"),
    ("user DROP on 8006 beats management", {"enable": 1, "cluster_rules": [{"type": "in", "action": "DROP", "proto": "tcp", "dport": "8006", "enable": 1}]},
     "node/pve1", Packet(source=ADMIN_INSIDE, proto="tcp", dport=8006), "DROP", "cluster rule 0"),
    ("disabled rule is skipped", {"enable": 1, "cluster_rules": [{"type": "in", "action": "DROP", "proto": "tcp", "dport": "8006", "enable": 0}]},
     "node/pve1", Packet(source=ADMIN_INSIDE, proto="tcp", dport=8006), "ACCEPT", "management"),
    ("macro expands", {"enable": 1, "cluster_rules": [{"type": "in", "action": "ACCEPT", "macro": "HTTPS", "enable": 1}]},
     "node/pve1", Packet(source="1.2.3.4", proto="tcp", dport=443), "ACCEPT", "cluster rule 0"),
    ("port range and list", {"enable": 1, "cluster_rules": [{"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "10,20:30", "enable": 1}]},
     "node/pve1", Packet(source="1.2.3.4", proto="tcp", dport=25), "ACCEPT", "cluster rule 0"),
    ("proto must match", {"enable": 1, "cluster_rules": [{"type": "in", "action": "ACCEPT", "proto": "udp", "dport": "25", "enable": 1}]},
     "node/pve1", Packet(source="1.2.3.4", proto="tcp", dport=25), "DROP", "policy_in"),
    ("ipset with nomatch", {"enable": 1, "cluster_rules": [{"type": "in", "action": "ACCEPT", "source": "+admins", "proto": "tcp", "dport": "22", "enable": 1}]},
     "node/pve1", Packet(source="192.168.60.9", proto="tcp", dport=22), "DROP", "policy_in"),
    ("ipset member", {"enable": 1, "cluster_rules": [{"type": "in", "action": "ACCEPT", "source": "+admins", "proto": "tcp", "dport": "22", "enable": 1}]},
     "node/pve1", Packet(source="192.168.60.8", proto="tcp", dport=22), "ACCEPT", "cluster rule 0"),
    ("alias", {"enable": 1, "cluster_rules": [{"type": "in", "action": "REJECT", "source": "office", "enable": 1}]},
     "node/pve1", Packet(source="192.168.70.3", proto="tcp", dport=22), "REJECT", "cluster rule 0"),
    ("iface on a host rule", {"enable": 1, "cluster_rules": [{"type": "in", "action": "ACCEPT", "iface": "vmbr1", "proto": "tcp", "dport": "99", "enable": 1}]},
     "node/pve1", Packet(source="1.2.3.4", iface="vmbr0", proto="tcp", dport=99), "DROP", "policy_in"),
    ("out direction uses policy_out ACCEPT", {"enable": 1}, "node/pve1", Packet(direction="out", dest="1.2.3.4", proto="tcp", dport=25), "ACCEPT", "policy_out"),
    ("cluster rules never apply to guests", {"enable": 1, "cluster_rules": [{"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "80", "enable": 1}]},
     "qemu/100", Packet(source="1.2.3.4", proto="tcp", dport=80), "DROP", "group web-in rule 1"),
    ("security group accepts", {"enable": 1}, "qemu/100", Packet(source="1.2.3.4", proto="tcp", dport=443), "ACCEPT", "group web-in rule 0 (from qemu/100 rule 0)"),
    ("guest policy_in DROP", {"enable": 1}, "qemu/100", Packet(source="1.2.3.4", proto="tcp", dport=22), "DROP", "qemu/100 policy_in"),
    ("forward rules are not compiled (iptables)", {"enable": 1, "guest_rules": [{"type": "forward", "action": "ACCEPT", "enable": 1}]},
     "qemu/100", Packet(source="1.2.3.4", proto="tcp", dport=22), "DROP", "policy_in"),
    ("guest without cluster enable is open", {}, "qemu/100", Packet(source="1.2.3.4", proto="tcp", dport=22), "ACCEPT", "cluster firewall disabled"),
    ("DROP policy lets fragmentation-needed through", {"enable": 1}, "qemu/100", Packet(source="1.2.3.4", proto="icmp", icmp_type="fragmentation-needed"),
     "ACCEPT", "PVEFW-Drop"),
    ("DHCP replies are accepted by default", {"enable": 1}, "qemu/100", Packet(source="10.0.0.1", proto="udp", sport=67, dport=68), "ACCEPT", "DHCP"),
]


@pytest.mark.parametrize(("what", "kw", "target", "pkt", "verdict", "by"), EVAL_CASES, ids=[c[0] for c in EVAL_CASES])
def test_evaluator(what: str, kw: dict[str, Any], target: str, pkt: Packet, verdict: str, by: str) -> None:
    result = evaluate(_model(**kw), target, pkt)
    assert (result.verdict, by in result.decided_by) == (verdict, True), result


@pytest.mark.parametrize(("pos", "moveto", "order"), [(0, 2, "bac"), (2, 0, "cab"), (0, 9, "bca"), (1, 1, "abc"), (1, 3, "acb")])
def test_moveto_puts_the_rule_before_the_one_at_moveto(pos: int, moveto: int, order: str) -> None:
    rules = [{"n": c} for c in "abc"]
    move(rules, pos, moveto)
    assert "".join(r["n"] for r in rules) == order


# --- lockout and reach -----------------------------------------------------------------------------------


async def test_enabling_the_cluster_firewall_locks_out_an_operator_outside_local_network(tmp_path: Path) -> None:
    w = world(tmp_path)
    async with w.host() as host:
        plan = await host.plan("firewall.options.set", {"level": "cluster", "enable": 1}, w.actor)
        raw = await host.plan("api.call", {"method": "PUT", "path": "/cluster/firewall/options", "params": {"enable": 1}}, w.actor)
    for p in (plan, raw):
        lockouts = [i for i in p.impacts if i.effect == "lockout"]
        assert p.risk is Risk.CRITICAL and lockouts and lockouts[0].target == "node/pve1" and lockouts[0].needs_person
        assert ADMIN_OUTSIDE in lockouts[0].reason and "8006" in lockouts[0].reason


async def test_an_operator_in_local_network_keeps_the_api_through_the_management_ipset(tmp_path: Path) -> None:
    w = world(tmp_path, admin=ADMIN_INSIDE)
    async with w.host() as host:
        plan = await host.plan("firewall.options.set", {"level": "cluster", "enable": 1}, w.actor)
    assert not [i for i in plan.impacts if i.effect == "lockout"]
    blocked = [i for i in plan.impacts if i.effect == "traffic-blocked" and i.target == "qemu/100"]
    assert any("tcp/80 from" in i.reason and "group web-in rule 1" in i.reason for i in blocked)
    assert any("tcp/22" in i.reason and "qemu/100 policy_in DROP" in i.reason for i in blocked)


async def test_unknown_operator_fails_closed(tmp_path: Path) -> None:
    w = World(tmp_path, snapshot_from(api()))
    async with w.host() as host:
        plan = await host.plan("firewall.options.set", {"level": "cluster", "enable": 1}, w.actor)
    lockout = [i for i in plan.impacts if i.effect == "lockout"]
    assert lockout and plan.risk >= Risk.HIGH
    assert "PROXIMO_ADMIN_SOURCES" in lockout[0].reason or "no address" in lockout[0].reason


async def test_opening_ssh_to_the_internet_is_high(tmp_path: Path) -> None:
    w = world(tmp_path, admin=ADMIN_INSIDE, enable=1)
    async with w.host() as host:
        plan = await host.plan("firewall.rule.add", {"level": "qemu/100", "type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "22",
                                                    "enable": 1}, w.actor)
    opened = [i for i in plan.impacts if i.effect == "traffic-opened"]
    assert opened and opened[0].risk is Risk.HIGH and "0.0.0.0/0" in opened[0].reason and "SSH" in opened[0].reason
    assert plan.risk is Risk.HIGH


async def test_losing_ssh_is_traffic_blocked_on_the_node(tmp_path: Path) -> None:
    w = world(tmp_path, admin=ADMIN_INSIDE, enable=1)
    async with w.host() as host:
        plan = await host.plan("firewall.rule.add", {"level": "node/pve1", "type": "in", "action": "DROP", "proto": "tcp", "dport": "22",
                                                    "enable": 1}, w.actor)
    assert [i for i in plan.impacts if i.effect == "traffic-blocked" and i.target == "node/pve1" and "SSH" in i.reason]
    assert not [i for i in plan.impacts if i.effect == "lockout"]


async def test_a_disabled_rule_is_staged_medium_with_no_impacts(tmp_path: Path) -> None:
    w = world(tmp_path, enable=1)
    async with w.host() as host:
        plan = await host.plan("firewall.rule.add", {"level": "cluster", "type": "in", "action": "DROP", "proto": "tcp", "dport": "8006"}, w.actor)
    assert plan.risk is Risk.MEDIUM and plan.impacts == []
    assert any("staged" in n for n in plan.notes)


# --- plan -> apply -> undo on the simulator --------------------------------------------------------------


async def test_add_then_undo_puts_everything_back(tmp_path: Path) -> None:
    w = world(tmp_path, admin=ADMIN_INSIDE, enable=1)
    before = render(w.model, "/nodes/pve1/qemu/100/firewall/rules")
    async with w.host() as host:
        plan = await host.plan("firewall.rule.add", {"level": "qemu/100", "type": "in", "action": "ACCEPT", "proto": "tcp",
                                                    "dport": "8080", "enable": 1, "comment": "alt web"}, w.actor)
        result = await host.apply(plan.plan_id, w.actor)
        assert result.ok
        rules = render(w.model, "/nodes/pve1/qemu/100/firewall/rules")
        assert rules[0]["dport"] == "8080" and rules[0]["pos"] == 0 and rules[1]["type"] == "group"  # new rules go to 0
        undo = await host.undo(result.ledger.seq, w.actor)
        assert undo.steps[0].method == "DELETE" and undo.steps[0].path.endswith("/rules/0")
        assert (await host.apply(undo.plan_id, w.actor)).ok
    assert render(w.model, "/nodes/pve1/qemu/100/firewall/rules") == before


async def test_delete_then_undo_restores_the_rule_at_its_position(tmp_path: Path) -> None:
    rules = [{"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": str(p), "enable": 1} for p in (1, 2, 3)]
    w = world(tmp_path, admin=ADMIN_INSIDE, enable=1, cluster_rules=rules)
    before = render(w.model, "/cluster/firewall/rules")
    async with w.host() as host:
        plan = await host.plan("firewall.rule.delete", {"level": "cluster", "pos": 1}, w.actor)
        result = await host.apply(plan.plan_id, w.actor)
        assert result.ok and [r["dport"] for r in render(w.model, "/cluster/firewall/rules")] == ["1", "3"]
        undo = await host.undo(result.ledger.seq, w.actor)
        assert (await host.apply(undo.plan_id, w.actor)).ok
    assert render(w.model, "/cluster/firewall/rules") == before


async def test_move_and_options_undo(tmp_path: Path) -> None:
    rules = [{"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": str(p), "enable": 1} for p in (1, 2, 3)]
    w = world(tmp_path, admin=ADMIN_INSIDE, enable=1, cluster_rules=rules)
    before = (render(w.model, "/cluster/firewall/rules"), render(w.model, "/cluster/firewall/options"))
    async with w.host() as host:
        for tool, params in (("firewall.rule.move", {"level": "cluster", "pos": 0, "moveto": 3}),
                             ("firewall.options.set", {"level": "cluster", "policy_in": "REJECT", "policy_out": "DROP"})):
            plan = await host.plan(tool, params, w.actor)
            result = await host.apply(plan.plan_id, w.actor)
            assert result.ok
            undo = await host.undo(result.ledger.seq, w.actor)
            assert (await host.apply(undo.plan_id, w.actor)).ok
    assert (render(w.model, "/cluster/firewall/rules"), render(w.model, "/cluster/firewall/options")) == before


async def test_ipset_and_alias_round_trip(tmp_path: Path) -> None:
    w = world(tmp_path, admin=ADMIN_INSIDE)
    snapshot = json.dumps([render(w.model, p) for p in ("/cluster/firewall/ipset/admins", "/cluster/firewall/aliases")])
    async with w.host() as host:
        for tool, params in (("firewall.ipset.add", {"name": "admins", "cidr": "192.168.61.7/32", "nomatch": True}),
                             ("firewall.alias.create", {"name": "lab", "cidr": "10.9.0.0/16"}),
                             ("firewall.alias.update", {"name": "office", "cidr": "192.168.71.0/24"})):
            plan = await host.plan(tool, params, w.actor)
            result = await host.apply(plan.plan_id, w.actor)
            assert result.ok, tool
            undo = await host.undo(result.ledger.seq, w.actor)
            assert (await host.apply(undo.plan_id, w.actor)).ok, tool
    assert json.dumps([render(w.model, p) for p in ("/cluster/firewall/ipset/admins", "/cluster/firewall/aliases")]) == snapshot


async def test_check_works_offline_on_a_snapshot(tmp_path: Path) -> None:
    w = world(tmp_path, enable=1)
    async with w.offline() as host:
        answer = await host.read("firewall.check", {"target": "qemu/100", "source": "203.0.113.5", "proto": "tcp", "dport": 443}, w.actor)
    data = answer.data if hasattr(answer, "data") else answer
    assert data["verdict"] == "ACCEPT" and "group web-in rule 0" in data["decided_by"]


# --- bad input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tool", "params"), [
    ("firewall.rules", {"level": "node/.."}),
    ("firewall.rules", {"level": "qemu/%2e"}),
    ("firewall.rules", {"level": "qemu/１００"}),
    ("firewall.rules", {"level": "group/../x"}),
    ("firewall.check", {"target": "qemu/100", "source": "not-an-ip", "dport": 22}),
    ("firewall.check", {"target": "qemu/100", "dport": "22; rm"}),
    ("firewall.check", {"target": "qemu/999"}),
    ("firewall.rule.add", {"level": "cluster", "type": "in", "action": "ACCEPT", "bogus": 1}),
    ("firewall.rule.delete", {"level": "cluster", "pos": 5}),
    ("firewall.options.set", {"level": "node/pve1", "policy_in": "DROP"}),
])
async def test_bad_input_is_one_clear_line_and_changes_nothing(tmp_path: Path, tool: str, params: dict[str, Any]) -> None:
    w = world(tmp_path, enable=1)
    before = json.dumps(render(w.model, "/cluster/firewall/rules"))
    async with w.host() as host:
        with pytest.raises(BadInput) as err:
            if tool in ("firewall.rules", "firewall.check"):
                await host.read(tool, params, w.actor)
            else:
                await host.plan(tool, params, w.actor)
    assert "\n" not in str(err.value) and w.secret not in str(err.value)
    assert json.dumps(render(w.model, "/cluster/firewall/rules")) == before


async def test_pve_refuses_a_port_without_protocol(tmp_path: Path) -> None:
    w = world(tmp_path, admin=ADMIN_INSIDE, enable=1)
    async with w.host() as host:
        with pytest.raises(BadInput, match="does not support ports"):
            await host.plan("firewall.rule.add", {"level": "cluster", "type": "in", "action": "ACCEPT", "dport": "80", "enable": 1}, w.actor)


# --- the operator's address, learnt from the API connection (loopback) -------------------------------------


async def test_the_address_proximo_reaches_the_api_from_is_the_operator_over_loopback(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
    from _loopback import serve  # the suite's loopback uvicorn helper

    w = World(tmp_path, snapshot_from(api()))  # no PROXIMO_ADMIN_SOURCES
    with serve(w.sim.app) as url:
        async with w.host(url=url) as host:
            plan = await host.plan("firewall.options.set", {"level": "cluster", "enable": 1}, w.actor)
            assert host.source.local_addresses == ["127.0.0.1"]
    lockout = [i for i in plan.impacts if i.effect == "lockout"]
    assert lockout and "127.0.0.1" in lockout[0].reason and plan.risk is Risk.CRITICAL


async def test_a_lockout_is_never_auto_approved(tmp_path: Path) -> None:
    from proximo import NotApproved

    w = World(tmp_path, snapshot_from(api()), env={"PROXIMO_ADMIN_SOURCES": ADMIN_OUTSIDE, "PROXIMO_AUTO_APPROVE": "HIGH"})
    async with w.host() as host:
        plan = await host.plan("firewall.options.set", {"level": "cluster", "enable": 1}, w.actor)
        with pytest.raises(NotApproved):
            await host.apply(plan.plan_id, w.actor)
    assert w.model.firewall.cluster.options["enable"] == 0


async def test_api_call_and_the_named_tool_report_the_same(tmp_path: Path) -> None:
    w = world(tmp_path, admin=ADMIN_INSIDE, enable=1)
    rule = {"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "3389", "enable": 1}
    async with w.host() as host:
        named = await host.plan("firewall.rule.add", {"level": "qemu/100", **rule}, w.actor)
        raw = await host.plan("api.call", {"method": "POST", "path": "/nodes/pve1/qemu/100/firewall/rules", "params": rule}, w.actor)
    assert named.impacts == raw.impacts and named.risk is raw.risk is Risk.HIGH
    assert any("RDP" in i.reason for i in named.impacts)


async def test_group_and_guest_ipset_round_trip(tmp_path: Path) -> None:
    w = world(tmp_path, admin=ADMIN_INSIDE, enable=1)
    async with w.host() as host:
        for tool, params, path in (
            ("firewall.group.create", {"group": "db-in", "comment": "databases"}, "/cluster/firewall/groups"),
            ("firewall.ipset.create", {"level": "qemu/100", "name": "ipfilter-net0"}, "/nodes/pve1/qemu/100/firewall/ipset"),
        ):
            before = json.dumps(render(w.model, path))
            plan = await host.plan(tool, params, w.actor)
            result = await host.apply(plan.plan_id, w.actor)
            assert result.ok and json.dumps(render(w.model, path)) != before
            undo = await host.undo(result.ledger.seq, w.actor)
            assert (await host.apply(undo.plan_id, w.actor)).ok
            assert json.dumps(render(w.model, path)) == before


async def test_deleting_a_group_in_use_is_blocked(tmp_path: Path) -> None:
    w = world(tmp_path, admin=ADMIN_INSIDE)
    async with w.host() as host:
        plan = await host.plan("firewall.group.delete", {"group": "web-in"}, w.actor)
    assert plan.blocked and any("qemu/100 rule 0" in b for b in plan.blockers)


async def test_renaming_a_group_in_use_moves_the_jumps_and_undo_moves_them_back(tmp_path: Path) -> None:
    """Groups.pm create_security_group with rename: every rule that jumps to the group follows it ($rename_fw_rules)."""
    w = world(tmp_path, admin=ADMIN_INSIDE)
    async with w.host() as host:
        plan = await host.plan("api.call", {"method": "POST", "path": "/cluster/firewall/groups",
                                            "params": {"group": "web-out", "rename": "web-in"}}, w.actor)
        assert not plan.blocked and not plan.impacts  # the same rules, under another name: no jump to nowhere
        result = await host.apply(plan.plan_id, w.actor)
        assert result.ok and w.model.firewall.guests[100].rules[0]["action"] == "web-out"
        assert (await host.apply((await host.undo(result.ledger.seq, w.actor)).plan_id, w.actor)).ok
    assert w.model.firewall.guests[100].rules[0]["action"] == "web-in" and "web-out" not in w.model.firewall.groups


async def test_an_empty_ipfilter_set_stops_a_guest_sending_from_other_addresses(tmp_path: Path) -> None:
    """test-vm-ipfilter2 in pve-firewall: ipfilter with an empty set lets only the NIC's own address out."""
    w = world(tmp_path, admin=ADMIN_INSIDE, enable=1)
    async with w.host() as host:
        plan = await host.plan("firewall.ipset.create", {"level": "qemu/100", "name": "ipfilter-net0"}, w.actor)
        assert (await host.apply(plan.plan_id, w.actor)).ok
    out = evaluate(w.model, "qemu/100", Packet(direction="out", source="10.0.0.77", dest="1.1.1.1", proto="tcp", dport=443))
    assert out.verdict == "DROP" and "ipfilter-net0" in out.decided_by


def test_group_rules_resolve_aliases_in_the_cluster_scope_only() -> None:
    """GROUP-x chains are compiled once from cluster.fw: a guest alias of the same name does not change them."""
    from proximo.model import from_api

    data = api(enable=1)
    data["/cluster/firewall/groups/web-in"] = _rows([{"type": "in", "action": "ACCEPT", "source": "office", "enable": 1}])
    data["/nodes/pve1/qemu/100/firewall/aliases"] = _rows([{"name": "office", "cidr": "172.31.0.0/16", "ipversion": 4}], pos=False)
    model = from_api(data)
    assert evaluate(model, "qemu/100", Packet(source="192.168.70.5", proto="tcp", dport=1)).verdict == "ACCEPT"
    assert evaluate(model, "qemu/100", Packet(source="172.31.0.5", proto="tcp", dport=1)).verdict == "DROP"


# --- PVE's API behaviour, straight through the semantics the simulator serves --------------------------------


def _sim(tmp_path: Path) -> World:
    return world(tmp_path, admin=ADMIN_INSIDE, enable=1, cluster_rules=[{"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "1", "enable": 1}])


def test_create_ignores_pos_and_stores_the_rule_disabled(tmp_path: Path) -> None:
    w = _sim(tmp_path)
    w.packs.semantics.execute(w.model, "POST", "/cluster/firewall/rules", {"type": "in", "action": "ACCEPT", "macro": "ssh", "pos": 1})
    rules = render(w.model, "/cluster/firewall/rules")
    assert [r["pos"] for r in rules] == [0, 1] and rules[0]["enable"] == 0 and rules[0]["macro"] == "SSH" and rules[1]["dport"] == "1"
    assert len({r["digest"] for r in rules}) == 1


@pytest.mark.parametrize(("params", "field"), [
    ({"type": "in", "action": "ACCEPT", "macro": "NoSuchMacro"}, "macro"),
    ({"type": "group", "action": "missing"}, None),  # verify_rule checks the group's name, not that it exists
    ({"type": "in", "action": "ACCEPT", "source": "+nosuchset"}, "source"),
    ({"type": "in", "action": "ACCEPT", "dest": "nosuchalias"}, "dest"),
    ({"type": "in", "action": "ACCEPT", "proto": "icmp", "sport": "80"}, None),
])
def test_pve_verification_errors(tmp_path: Path, params: dict[str, Any], field: str | None) -> None:
    from proximo import PveApiError

    w = _sim(tmp_path)
    before = render(w.model, "/cluster/firewall/rules")
    try:
        w.packs.semantics.execute(w.model, "POST", "/cluster/firewall/rules", params)
    except PveApiError as exc:
        assert exc.status == 400 and (field is None or field in (exc.errors or {})), exc
    else:
        assert field is None  # accepted, as Proxmox accepts it (icmp with a port: what fwtester's files do; the type is in dport)
    if field is not None:
        assert render(w.model, "/cluster/firewall/rules") == before


def test_a_stale_digest_is_refused(tmp_path: Path) -> None:
    from proximo import PveApiError

    w = _sim(tmp_path)
    with pytest.raises(PveApiError, match="file changed by other user"):
        w.packs.semantics.execute(w.model, "DELETE", "/cluster/firewall/rules/0", {"digest": "0" * 40})
    assert len(render(w.model, "/cluster/firewall/rules")) == 1


def test_delete_shifts_positions_up(tmp_path: Path) -> None:
    w = _sim(tmp_path)
    for port in ("2", "3"):
        w.packs.semantics.execute(w.model, "POST", "/cluster/firewall/rules", {"type": "in", "action": "DROP", "proto": "tcp", "dport": port, "enable": 1})
    assert [r["dport"] for r in render(w.model, "/cluster/firewall/rules")] == ["3", "2", "1"]
    w.packs.semantics.execute(w.model, "DELETE", "/cluster/firewall/rules/0")
    assert [(r["pos"], r["dport"]) for r in render(w.model, "/cluster/firewall/rules")] == [(0, "2"), (1, "1")]


async def test_deleting_a_group_empties_it_first_and_undo_restores_its_rules_in_order(tmp_path: Path) -> None:
    w = world(tmp_path, admin=ADMIN_INSIDE, guest_rules=[])
    before = (render(w.model, "/cluster/firewall/groups"), render(w.model, "/cluster/firewall/groups/web-in"))
    async with w.host() as host:
        plan = await host.plan("firewall.group.delete", {"group": "web-in"}, w.actor)
        assert [s.path for s in plan.steps] == ["/cluster/firewall/groups/web-in/0"] * 2 + ["/cluster/firewall/groups/web-in"]
        result = await host.apply(plan.plan_id, w.actor)
        assert result.ok and "web-in" not in w.model.firewall.groups
        undo = await host.undo(result.ledger.seq, w.actor)
        assert (await host.apply(undo.plan_id, w.actor)).ok
    assert (render(w.model, "/cluster/firewall/groups"), render(w.model, "/cluster/firewall/groups/web-in")) == before


def test_pves_own_digest_is_kept_until_the_list_changes(tmp_path: Path) -> None:
    """A digest PVE computed over its file text is what a concurrent-edit check must send back, not ours."""
    data = api(enable=1, cluster_rules=[{"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "1", "enable": 1}])
    data["/cluster/firewall/rules"] = [{**r, "digest": "f" * 40} for r in data["/cluster/firewall/rules"]]
    w = World(tmp_path, snapshot_from(data))
    assert render(w.model, "/cluster/firewall/rules")[0]["digest"] == "f" * 40
    assert render(w.model, "/cluster/firewall/rules/0")["digest"] == "f" * 40
    w.packs.semantics.execute(w.model, "DELETE", "/cluster/firewall/rules/0", {"digest": "f" * 40})
    w.packs.semantics.execute(w.model, "POST", "/cluster/firewall/rules", {"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "1", "enable": 1})
    assert render(w.model, "/cluster/firewall/rules")[0]["digest"] == "f" * 40  # same content again: same file
    w.packs.semantics.execute(w.model, "POST", "/cluster/firewall/rules", {"type": "in", "action": "DROP"})
    assert render(w.model, "/cluster/firewall/rules")[0]["digest"] != "f" * 40
