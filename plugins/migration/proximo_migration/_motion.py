"""What happens to a guest when it moves, whoever moves it (a migrate call, or the HA stack's LRM): the checks the
migration task makes, and the move itself. Shared by the migrate semantics and the HA semantics of this pack."""

from __future__ import annotations

from typing import Any

from proximo import PveApiError
from proximo.model import ClusterModel, Guest, as_int, split_list
from proximo.model._drives import parse_property_string
from proximo.model._migration import local_resources, lxc_volume_errors, qemu_volume_errors


def storage_map(text: Any) -> dict[str, str]:
    """PVE::JSONSchema::parse_idmap for storages: ``SRC:DST,...`` pairs, a lone ``DST`` for every storage ("" key),
    or ``1`` for the identity map (empty here)."""
    out: dict[str, str] = {}
    for part in split_list(text):
        if part == "1":
            return {}
        src, sep, dst = part.partition(":")
        if sep:
            out[src] = dst
        else:
            out[""] = src
    return out


def _mapped(storagemap: dict[str, str], sid: str) -> str:
    return storagemap.get(sid, storagemap.get("", sid))


def ha_params(g: Guest) -> dict[str, Any]:
    """How the HA stack's LRM migrates (pve-ha-manager PVEVM.pm / PVECT.pm migrate): a VM online with force and its
    local disks, a container by relocation (shutdown, move, start)."""
    return {"online": 1, "force": 1, "with-local-disks": 1} if g.kind == "qemu" else {"restart": 1}


def task_refusal(model: ClusterModel, g: Guest, target: str, params: dict[str, Any]) -> PveApiError | None:
    """QemuMigrate/LXC Migrate ``prepare`` and the volume scan."""
    if g.kind == "qemu":
        blocking = local_resources(g.config)
        if blocking and not as_int(params.get("force")):
            return PveApiError(500, f"can't migrate VM which uses local devices: {', '.join(blocking)}")
        errors = qemu_volume_errors(model, g, target, bool(as_int(params.get("with-local-disks"))))
        if errors:
            return PveApiError(500, "can't migrate VM - check log: " + "; ".join(errors))
    else:
        if g.running and as_int(params.get("online")):
            return PveApiError(500, "lxc live migration is currently not implemented")
        errors = lxc_volume_errors(model, g)
        if errors:
            return PveApiError(500, errors[0])
    if g.running:  # the guest starts on the target (a live migration's target VM, a restarted CT): a missing bridge aborts
        target_node = model.nodes[target]
        for key, value in sorted(g.config.items()):
            if key.startswith("net") and key[3:].isdigit():
                try:
                    bridge = parse_property_string(str(value), "model").get("bridge")
                except ValueError:
                    continue
                if bridge and bridge.startswith("vmbr") and target_node.bridge_exists(bridge) is False:
                    return PveApiError(500, f"migration aborted: the start on {target} fails: bridge '{bridge}' does not exist")
    return None


def move(model: ClusterModel, g: Guest, target: str, storagemap: dict[str, str] | None = None, *, restart: bool = False) -> None:
    """A migration's effect, whoever runs it (a migrate call, or the HA stack's LRM): the config and the guest's
    volumes on node-local storages go to ``target`` (renamed on a ``storagemap``); a volume the target holds already
    (a replica) is reused, and the source keeps its copy as the new replica. The guest's replication jobs switch as
    AbstractMigrate.pm switch_replication_job_target does (a container's only when it goes to its replication target).
    ``restart``: a running guest is restarted there (a container's restart mode, an HA relocation)."""
    source = g.node
    renamed: dict[str, str] = {}
    for vol in g.volumes():
        if vol.storage not in model.storages or model.storage_shared(vol.storage):
            continue
        tsid = _mapped(storagemap or {}, vol.storage)
        new_volid = f"{tsid}:{vol.volid.partition(':')[2]}"
        there = model.volumes.setdefault(tsid, {}).setdefault(target, {})
        if new_volid not in there:
            row = model.volumes.get(vol.storage, {}).get(source, {}).pop(vol.volid, None)
            if row is not None:
                there[new_volid] = {**row, "volid": new_volid}
        if new_volid != vol.volid:
            renamed[vol.volid] = new_volid
    for key, value in list(g.config.items()):
        for old, new in renamed.items():
            if isinstance(value, str) and (value == old or value.startswith(old + ",")):
                g.config[key] = new + value[len(old):]
    jobs = [j for j in model.replication_jobs if as_int(j.get("guest")) == g.vmid]
    if jobs and (g.kind == "qemu" or any(j.get("target") == target for j in jobs)):
        for job in jobs:
            job["source"] = target
            if job.get("target") == target:
                job["target"] = source
    g.node = target
    g.resource["node"] = target
    g.list_row = None  # the source node's list row: the target lists it anew
    if restart and g.running:
        g.resource["uptime"] = 0
    g.write_config()
