"""``proximo demo``: the whole trust pipeline on the built-in simulated cluster, in a temporary folder.

Plan a storage delete that boot disks live on, approve it with the credential of an approver the demo makes
for itself in its temporary state (a real person uses `proximo approve` and their own passphrase), apply,
verify the ledger, undo, and show every guest can start again. Then what Proximo refuses or stops for: a template
destroy, a firewall lockout, and a node's management address moved to another bridge; a node evacuated for
maintenance; and a tighter backup retention, with every recovery point it costs named before anything runs.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from ._approve import confirm
from ._common import Ask
from ..trust._approvers import ApproverStore
from ..trust._ledger import Actor
from ..trust._pipeline import Credential, Host
from .._render import print_apply, print_plan, print_verify
from ..errors import ProximoError
from ..model import ClusterModel
from .._world import DEMO_OPERATOR, DEMO_STORAGE, TOKEN_ID, World



def unbootable(model: ClusterModel) -> dict[str, list[str]]:
    """Guests (not templates) that could not start now, with PVE's reasons."""
    out: dict[str, list[str]] = {}
    for _, guest in sorted(model.guests.items()):
        problems = model.start_problems(guest)
        if problems and not guest.template:
            out[guest.sid] = sorted({msg for _, msg in problems.values()})
    return out


DEMO_APPROVER = "demo-operator"


def _approve(console: Console, host: Host, plan_id: str, actor: Actor, passphrase: str, ask: Ask | None) -> bool:
    """The person's step. At a terminal the person confirms, as `proximo approve` asks (an unclear answer such as
    `y` asks again); the demo's own approver's passphrase stands in for theirs. False: they declined."""
    plan = host.get_plan(plan_id)
    if not host.needs_person(plan):
        console.print(f"{plan.risk.value} is within auto-approval: apply goes ahead on the agent's word.")
        return True
    console.print(f"A person approves it: `proximo approve {plan_id}`, confirming the plan and giving their approver "
                  f"passphrase. Here the demo's own approver {DEMO_APPROVER!r} (made for this run) does it.")
    person = Actor(token_id=TOKEN_ID, face="demo", client="proximo demo")
    if ask is not None:
        approved, _ = confirm(plan, ask, lambda line: console.print(line, markup=False))
        if not approved:
            host.deny(plan_id, person, "declined in the demo")
            console.print("Declined: recorded in the ledger, and nothing is applied. (`proximo demo` again to see the rest.)")
            return False
    host.approve(plan_id, person, Credential(DEMO_APPROVER, passphrase), typed_target=plan.target)
    return True


DEMO_TEMPLATE = 9000


async def _guest_destroy_chapter(console: Console, host: Host, world: World, actor: Actor) -> None:
    """6. A destroy Proxmox would refuse: a template whose base volume linked clones still read from."""
    template = world.model.guests[DEMO_TEMPLATE]
    console.print(Rule(f"6. BLOCKED: destroy template {template.sid} ({template.name})"))
    console.print(f"$ proximo plan guest.destroy vmid={DEMO_TEMPLATE}")
    plan = await host.plan("guest.destroy", {"vmid": DEMO_TEMPLATE}, actor)
    print_plan(console, plan)
    clones = sorted(i.target for i in plan.impacts if i.effect == "wont-boot")
    try:
        await host.apply(plan.plan_id, actor)
    except ProximoError as exc:
        console.print(f"Apply is refused: {exc}")
    if not plan.blocked or not clones or DEMO_TEMPLATE not in world.model.guests:
        raise ProximoError("the guest-destroy chapter did not end where it should: see above")
    console.print(f"The template stays; its linked clones {', '.join(clones)} keep their base volume.")




async def _firewall_lockout_chapter(console: Console, world: World, actor: Actor) -> None:
    """7. Enabling the cluster firewall (policy_in DROP) would cut the operator off the API: the plan says so first."""
    console.print(Rule("7. LOCKOUT: enable the cluster firewall with policy DROP"))
    console.print(f"You manage the cluster from {DEMO_OPERATOR} (PROXIMO_ADMIN_SOURCES={DEMO_OPERATOR}).")
    console.print("$ proximo plan firewall.options.set level=cluster enable=1 policy_in=DROP")
    async with world.host(admin_sources=[DEMO_OPERATOR]) as host:
        plan = await host.plan("firewall.options.set", {"level": "cluster", "enable": 1, "policy_in": "DROP"}, actor)
        print_plan(console, plan)
        try:
            await host.apply(plan.plan_id, actor)
        except ProximoError as exc:
            console.print(f"The agent tries to apply it: refused: {exc}")
    locked = sorted(i.target for i in plan.impacts if i.effect == "lockout")
    if plan.risk.value != "CRITICAL" or not locked or world.model.firewall.cluster.options.get("enable") != 0:
        raise ProximoError("the firewall chapter did not end where it should: see above")
    console.print(f"Nothing changed: the cluster firewall is still off; {', '.join(locked)} would have been cut off from tcp/8006.")


DEMO_NODE = "pve1"


async def _network_lockout_chapter(console: Console, host: Host, world: World, actor: Actor) -> None:
    """8. Moving a node's management address to another bridge: staged (no live effect), then judged on apply."""
    node = world.model.nodes[DEMO_NODE]
    ip = next(str(r.get("ip")) for r in world.model.cluster_status if r.get("name") == DEMO_NODE)
    console.print(Rule(f"8. LOCKOUT: move {DEMO_NODE}'s management address {ip} from vmbr0 to vmbr1"))
    cidr = next(str(r["cidr"]) for r in node.network or [] if r.get("iface") == "vmbr0")
    gateway = next(str(r["gateway"]) for r in node.network or [] if r.get("iface") == "vmbr0")
    stages = [("network.iface.update", {"node": DEMO_NODE, "iface": "vmbr0", "delete": "cidr,gateway"}),
              ("network.iface.update", {"node": DEMO_NODE, "iface": "vmbr1", "cidr": cidr, "gateway": gateway})]
    for tool, params in stages:
        console.print(f"$ proximo plan {tool} " + " ".join(f"{k}={v}" for k, v in params.items()))
        staged = await host.plan(tool, params, actor)
        console.print(f"{staged.risk.value}: " + " ".join(staged.notes), markup=False)
        await host.apply(staged.plan_id, actor)
    console.print(f"Both changes are staged in /etc/network/interfaces.new on {DEMO_NODE}; {DEMO_NODE} still runs vmbr0 "
                  "with its address. Applying them is judged on what the node would run:")
    console.print(f"$ proximo plan network.apply node={DEMO_NODE}")
    plan = await host.plan("network.apply", {"node": DEMO_NODE}, actor)
    print_plan(console, plan)
    try:
        await host.apply(plan.plan_id, actor)
    except ProximoError as exc:
        console.print(f"The agent tries to apply it: refused: {exc}")
    effects = {i.effect for i in plan.impacts}
    revert = await host.plan("network.revert", {"node": DEMO_NODE}, actor)
    reverted = await host.apply(revert.plan_id, actor)
    still = world.model.nodes[DEMO_NODE]
    if plan.risk.value != "CRITICAL" or not {"lockout", "quorum-risk"} <= effects or not reverted.ok or still.network_changes:
        raise ProximoError("the network chapter did not end where it should: see above")
    console.print(f"Nothing was applied; `proximo plan network.revert node={DEMO_NODE}` dropped the staged file, and "
                  f"{DEMO_NODE} keeps {ip} on vmbr0.")


async def _evacuate_chapter(console: Console, host: Host, world: World, actor: Actor, passphrase: str, ask: Ask | None) -> bool:
    """9. Maintenance: every guest off a node, each to the node with the most free memory that takes it."""
    node = "pve3"
    console.print(Rule(f"9. MAINTENANCE: evacuate {node}"))
    console.print(f"$ proximo plan node.evacuate node={node}")
    plan = await host.plan("node.evacuate", {"node": node}, actor)
    print_plan(console, plan)
    console.print("A guest that cannot move blocks the plan, with Proxmox's own reason. Leave it where it is and move the rest:")
    console.print(f"$ proximo plan node.evacuate node={node} leave_unmovable=1")
    plan = await host.plan("node.evacuate", {"node": node, "leave_unmovable": True}, actor)
    print_plan(console, plan)
    if not _approve(console, host, plan.plan_id, actor, passphrase, ask):
        return False
    result = await host.apply(plan.plan_id, actor)
    print_apply(console, result)
    left = sorted(g.sid for g in world.model.guests.values() if g.node == node)
    if not result.ok or len(left) != 1:
        raise ProximoError("the evacuate chapter did not end where it should: see above")
    console.print(f"{node} now runs only {', '.join(left)}, which Proxmox cannot move (a bind mount); "
                  f"`proximo undo {result.ledger.seq}` would bring the others back.")
    return True


DEMO_BACKUP_STORAGE = "nfs-backup"
DEMO_LAST_BACKUP = "nfs-backup:backup/vzdump-lxc-203-2026_11_27-21_03_15.tar.zst"  # lxc/203's only backup


async def _retention_chapter(console: Console, host: Host, world: World, actor: Actor) -> None:
    """10. A tighter retention: what the next backup run and a prune remove, guest by guest, before anything runs;
    and the change that leaves a guest with no recovery point at all."""
    console.print(Rule(f"10. RETENTION: keep-last=1 on {DEMO_BACKUP_STORAGE}, before anything is removed"))
    before = sorted(v for by_node in world.model.volumes.get(DEMO_BACKUP_STORAGE, {}).values() for v in by_node)
    console.print("$ proximo plan backup.job.update id=backup-daily prune-backups=keep-last=1")
    job = await host.plan("backup.job.update", {"id": "backup-daily", "prune-backups": "keep-last=1"}, actor)
    print_plan(console, job)
    console.print(f"$ proximo plan backup.prune storage={DEMO_BACKUP_STORAGE} prune-backups=keep-last=1")
    prune = await host.plan("backup.prune", {"storage": DEMO_BACKUP_STORAGE, "prune-backups": "keep-last=1"}, actor)
    print_plan(console, prune)
    console.print("Proxmox's retention keeps each guest's newest backup (and every protected one). A retention that "
                  "went further, deleting the last one, is named before it happens:")
    console.print(f"$ proximo plan backup.delete volume={DEMO_LAST_BACKUP}")
    last = await host.plan("backup.delete", {"volume": DEMO_LAST_BACKUP}, actor)
    print_plan(console, last)
    after = sorted(v for by_node in world.model.volumes.get(DEMO_BACKUP_STORAGE, {}).values() for v in by_node)
    none_left = [i.target for i in last.impacts if i.effect == "recovery-point-lost" and "no backup of it remains" in i.reason]
    pruned = [i.target for i in prune.impacts if i.effect == "recovery-point-lost"]
    if not pruned or not none_left or before != after or last.undo:
        raise ProximoError("the retention chapter did not end where it should: see above")
    console.print(f"Nothing was removed: {len(after)} backups still on {DEMO_BACKUP_STORAGE}. The prune would cost "
                  f"{', '.join(sorted(pruned))} older recovery points; the delete would leave {', '.join(none_left)} "
                  "with none (HIGH, and no undo).")


async def run_demo(console: Console, ask: Ask | None = None) -> None:
    """``ask``: the person at a terminal, who confirms each approval; None: the demo approves on its own."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="proximo-demo-") as tmp:
        world = World(Path(tmp))
        actor = Actor(token_id=TOKEN_ID, face="demo", client="proximo demo")
        passphrase = secrets.token_urlsafe(18)  # the demo's own approver, in its temporary state only
        ApproverStore(world.home).add(DEMO_APPROVER, passphrase)
        guests = len(world.model.guests)
        console.print(Rule("Proximo demo: a simulated 3-node cluster"))
        console.print(f"{len(world.model.nodes)} nodes, {guests} guests, {len(world.model.storages)} storages. "
                      f"Ledger and plans in {tmp} (deleted afterwards).")
        async with world.host() as host:
            console.print(Rule(f"1. PLAN: delete storage {DEMO_STORAGE}"))
            console.print(f"$ proximo plan storage.delete storage={DEMO_STORAGE}")
            plan = await host.plan("storage.delete", {"storage": DEMO_STORAGE}, actor)
            print_plan(console, plan)
            console.print(f"Nothing has changed yet: {len(unbootable(world.model))} guests unbootable right now.")

            console.print(Rule("2. APPROVE: a person, not the agent"))
            try:
                await host.apply(plan.plan_id, actor)
            except ProximoError as exc:
                console.print(f"The agent tries to apply it straight away: refused: {exc}")
            if not _approve(console, host, plan.plan_id, actor, passphrase, ask):
                return

            console.print(Rule("3. APPLY: exactly the planned steps"))
            result = await host.apply(plan.plan_id, actor)
            print_apply(console, result)
            broken = unbootable(world.model)
            console.print(f"Now {len(broken)} guests cannot start: {', '.join(broken)}")

            console.print(Rule("4. PROVE: the ledger"))
            print_verify(console, host.ledger.verify())

            console.print(Rule(f"5. UNDO: ledger record #{result.ledger.seq}"))
            undo = await host.undo(result.ledger.seq, actor)
            print_plan(console, undo)
            if not _approve(console, host, undo.plan_id, actor, passphrase, ask):
                return
            undone = await host.apply(undo.plan_id, actor)
            print_apply(console, undone)
            broken = unbootable(world.model)
            back = DEMO_STORAGE in world.model.storages
            console.print(f"storage {DEMO_STORAGE} {'is back' if back else 'is still missing'}; "
                          f"{guests - len(broken)} of {guests} guests can start"
                          + (" (every one)" if not broken else f"; still broken: {', '.join(broken)}"))
            print_verify(console, host.ledger.verify())
            if broken or not back or not undone.ok:
                raise ProximoError("the demo did not end where it should: see above")

            await _guest_destroy_chapter(console, host, world, actor)
            await _firewall_lockout_chapter(console, world, actor)
            await _network_lockout_chapter(console, host, world, actor)
            if not await _evacuate_chapter(console, host, world, actor, passphrase, ask):
                return
            await _retention_chapter(console, host, world, actor)
        console.print(Rule(f"done in {time.monotonic() - started:.1f}s"))
