"""The guest tools. Parameters mirror PVE's names and constraints (8.4's and 9.1's: the host refuses what the cluster's
release does not have); the mutating ones only describe API calls.

Tools that act on an existing guest take its ``vmid`` and find the node and type (qemu or lxc) in the model;
their parameters are the union of the QEMU and container endpoints', and Proxmox's own parameter check runs
for the guest's type when the plan is predicted (a QEMU-only option on a container is one clear error).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from proximo import ApiCall, BadInput, Draft, Step, plan_tool, read_tool, tool_table
from proximo.pve import ParamSpec
from proximo.model import ClusterModel, Guest, render
from proximo.model._drives import DriveError, is_unused_key, parse_size
from proximo.model._snapshot import render_pending
from proximo.params import NodeName, VmId, api_params, described, schema_params, struct_from_schema

from ._volumes import backups_of
from ._semantics import ha_resource, is_volume_key, volume_of

_VMID = ParamSpec(type="integer", minimum=100, maximum=999_999_999)
_ANY = ParamSpec(type="any", optional=True)
_NOT_SETTABLE = re.compile(r"^(unused|dev)[0-9]+$")  # unusedN/devN writes are not modelled: refused as unknown


def _union(method_templates: list[tuple[str, str]], *, expand: bool = False, exclude: tuple[str, ...] = ("node",)) -> dict[str, ParamSpec]:
    """The parameters of several endpoints (QEMU and LXC); where their specs differ, PVE's check decides later
    (a property string's keys, say: ``net0`` is a string either way, checked key by key for the guest's type)."""
    out: dict[str, ParamSpec] = {}
    each = [schema_params(method, template, expand_indexed=expand) for method, template in method_templates]
    for specs in each:
        for name, spec in specs.items():
            if name in exclude or _NOT_SETTABLE.match(name):
                continue
            if name in out and _shape(out[name]) != _shape(spec):
                spec = msgspec.structs.replace(_ANY, optional=out[name].optional or spec.optional)
            if not all(name in other for other in each):  # one type's name only (disk/volume): optional here
                spec = msgspec.structs.replace(spec, optional=True)
            out[name] = spec
    out["vmid"] = _VMID
    return out


def _shape(spec: ParamSpec) -> ParamSpec:
    """What a parameter struct's field is made of (a property string's keys are PVE's to check)."""
    return msgspec.structs.replace(spec, format_props=None)


def _both(method: str, suffix: str) -> list[tuple[str, str]]:
    return [(method, f"/nodes/{{node}}/qemu/{{vmid}}{suffix}"), (method, f"/nodes/{{node}}/lxc/{{vmid}}{suffix}")]


def _struct(name: str, method_templates: list[tuple[str, str]], *, expand: bool = False) -> type[msgspec.Struct]:
    """The union of the endpoints' parameters; the endpoints decide which a cluster's release takes."""
    return struct_from_schema(name, "GET", "/version", params=_union(method_templates, expand=expand), omit_defaults=True,
                              endpoints=method_templates)  # omit_defaults: plans show what was given


class VmidParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    vmid: VmId


class ConfigReadParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    vmid: VmId
    current: bool = False


class NodeParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    node: NodeName


VmCreateParams = struct_from_schema("VmCreateParams", "POST", "/nodes/{node}/qemu", expand_indexed=True, omit_defaults=True,
                                    params={**{k: v for k, v in schema_params("POST", "/nodes/{node}/qemu", expand_indexed=True).items()
                                               if not _NOT_SETTABLE.match(k)}, "vmid": _VMID})
CtCreateParams = struct_from_schema("CtCreateParams", "POST", "/nodes/{node}/lxc", expand_indexed=True, omit_defaults=True,
                                    params={**{k: v for k, v in schema_params("POST", "/nodes/{node}/lxc", expand_indexed=True).items()
                                               if not _NOT_SETTABLE.match(k)}, "vmid": _VMID})
StartParams = _struct("GuestStartParams", _both("POST", "/status/start"))
StopParams = _struct("GuestStopParams", _both("POST", "/status/stop"))
ShutdownParams = _struct("GuestShutdownParams", _both("POST", "/status/shutdown"))
RebootParams = _struct("GuestRebootParams", _both("POST", "/status/reboot"))
SuspendParams = _struct("GuestSuspendParams", _both("POST", "/status/suspend"))
ResumeParams = _struct("GuestResumeParams", _both("POST", "/status/resume"))
CloneParams = _struct("GuestCloneParams", _both("POST", "/clone"))
ConfigSetParams = _struct("GuestConfigSetParams", [("POST", "/nodes/{node}/qemu/{vmid}/config"), ("PUT", "/nodes/{node}/lxc/{vmid}/config")],
                          expand=True)
SnapshotCreateParams = _struct("GuestSnapshotCreateParams", _both("POST", "/snapshot"))
SnapshotRollbackParams = _struct("GuestSnapshotRollbackParams", _both("POST", "/snapshot/{snapname}/rollback"))
SnapshotDeleteParams = _struct("GuestSnapshotDeleteParams", _both("DELETE", "/snapshot/{snapname}"))
ResizeParams = _struct("GuestDiskResizeParams", _both("PUT", "/resize"))
MoveParams = _struct("GuestDiskMoveParams", [("POST", "/nodes/{node}/qemu/{vmid}/move_disk"), ("POST", "/nodes/{node}/lxc/{vmid}/move_volume")])
TemplateParams = _struct("GuestTemplateParams", _both("POST", "/template"))
_DestroyBase = _struct("GuestDestroyBase", _both("DELETE", ""))


class DestroyParams(_DestroyBase, forbid_unknown_fields=True, frozen=True, kw_only=True):  # type: ignore[misc,valid-type]
    stop: bool = False  # Proximo's own: put a hard stop before the destroy, and say so in the plan


# What the tools' JSON schemas say of fields PVE leaves undescribed, or Proximo adds.
described(ConfigReadParams, fields={"current": "Show the running config, not the pending one"})
described(DestroyParams, fields={"stop": "Stop the guest (hard) first, as a step of the plan"})
described(ResumeParams, fields={"nocheck": "Skip PVE's check that the guest is suspended (migration use)"})


# --- helpers -------------------------------------------------------------------------------------------


def existing(view: ClusterModel, vmid: int) -> Guest:
    g = view.guests.get(vmid)
    if g is None:
        raise BadInput(f"guest {vmid} does not exist (see `proximo read guest.list`)")
    return g


def _base(g: Guest) -> str:
    return f"/nodes/{g.node}/{g.kind}/{g.vmid}"


def _params(p: msgspec.Struct, *drop: str) -> dict[str, Any]:
    out = api_params(p)
    for key in ("vmid", "node", *drop):
        out.pop(key, None)
    return out


def _storage(view: ClusterModel, sid: str | None) -> None:
    if sid is not None and sid not in view.storages:
        raise BadInput(f"storage '{sid}' does not exist (see `proximo read storage.list`)")


def _node(view: ClusterModel, node: str | None) -> None:
    if node is not None and node not in view.nodes:
        raise BadInput(f"node '{node}' does not exist (see `proximo read node.list`)")


def _disk_storages(view: ClusterModel, kind: str, params: dict[str, Any]) -> None:
    """Every storage a disk or mount point value names must exist (STORAGE:SIZE or STORAGE:VOLUME)."""
    for key, value in params.items():
        if not isinstance(value, str) or not is_volume_key(kind, key):
            continue
        volume, _ = volume_of(kind, value)
        if ":" in volume and not volume.startswith("/"):
            _storage(view, volume.partition(":")[0])


def _disk(g: Guest, key: str) -> str:
    """A disk key of the guest that names a volume (not a CD-ROM), or one clear error."""
    if not is_volume_key(g.kind, key) or is_unused_key(key):
        raise BadInput(f"'{key}' is not a disk key of a {'VM' if g.kind == 'qemu' else 'container'} "
                       f"({'scsi0, virtio1, sata0, ide0, efidisk0, ...' if g.kind == 'qemu' else 'rootfs, mp0, ...'})")
    if key not in g.config:
        raise BadInput(f"{g.sid} has no disk '{key}'")
    volume, props = volume_of(g.kind, g.config[key])
    if props.get("media") == "cdrom" or ":" not in volume:
        raise BadInput(f"{g.sid} {key} is not a storage volume ({g.config[key]})")
    return volume


# --- reads ----------------------------------------------------------------------------------------------


def read_status(p: VmidParams, view: ClusterModel) -> dict[str, Any]:
    g = existing(view, p.vmid)
    row = render(view, f"{_base(g)}/status/current")
    ha = ha_resource(view, g)
    row["ha"] = {"managed": 1, "sid": ha["sid"], "state": ha.get("state", "started")} if ha else {"managed": 0}
    return row


def read_config(p: ConfigReadParams, view: ClusterModel) -> dict[str, Any]:
    g = existing(view, p.vmid)
    config = render(view, f"{_base(g)}/config" + ("?current=1" if p.current else ""))
    pending = [r for r in render_pending(g) if "pending" in r or "delete" in r]
    return {"vmid": g.vmid, "type": g.kind, "node": g.node, "config": config, "pending": pending}


def read_snapshots(p: VmidParams, view: ClusterModel) -> list[dict[str, Any]]:
    g = existing(view, p.vmid)
    return render(view, f"{_base(g)}/snapshot")


def read_backups(p: VmidParams, view: ClusterModel) -> list[dict[str, Any]]:
    existing(view, p.vmid)
    return backups_of(view, p.vmid)


def read_node_status(p: NodeParams, view: ClusterModel) -> dict[str, Any]:
    _node(view, p.node)
    return render(view, f"/nodes/{p.node}/status")


# --- plans ----------------------------------------------------------------------------------------------


def plan_create(kind: str) -> Callable[[Any, ClusterModel], Draft]:
    def plan(p: Any, view: ClusterModel) -> Draft:
        params = api_params(p)
        node = str(params.pop("node"))
        _node(view, node)
        if params["vmid"] in view.guests:
            raise BadInput(f"guest {params['vmid']} already exists ({view.guests[params['vmid']].sid})")
        _storage(view, params.get("storage"))
        _disk_storages(view, kind, params)
        return Draft(steps=[ApiCall("POST", f"/nodes/{node}/{kind}", params)], target=str(params["vmid"]))

    return plan


def plan_power(action: str) -> Callable[[Any, ClusterModel], Draft]:
    def plan(p: Any, view: ClusterModel) -> Draft:
        g = existing(view, p.vmid)
        return Draft(steps=[ApiCall("POST", f"{_base(g)}/status/{action}", _params(p))], target=str(g.vmid))

    return plan


def plan_clone(p: Any, view: ClusterModel) -> Draft:
    g = existing(view, p.vmid)
    params = _params(p)
    _storage(view, params.get("storage"))
    _node(view, params.get("target"))
    if params["newid"] in view.guests:
        raise BadInput(f"guest {params['newid']} already exists ({view.guests[params['newid']].sid})")
    name_key = "name" if g.kind == "qemu" else "hostname"
    other = "hostname" if g.kind == "qemu" else "name"
    if other in params:  # the same meaning under the other type's name
        params.setdefault(name_key, params.pop(other))
    notes = []
    full = params.get("full", 0 if g.template else 1)
    if not full:
        notes.append(f"a linked clone needs a template: {g.sid} is {'a template' if g.template else 'not a template, so Proxmox refuses'}")
    return Draft(steps=[ApiCall("POST", f"{_base(g)}/clone", params)], notes=notes, target=str(params["newid"]))


def plan_config_set(p: Any, view: ClusterModel) -> Draft:
    g = existing(view, p.vmid)
    params = _params(p)
    if not any(k for k in params if k not in ("digest", "skiplock", "background_delay")):
        raise BadInput("guest.config.set: nothing to change (give at least one option, or delete=...)")
    _disk_storages(view, g.kind, params)
    method = "POST" if g.kind == "qemu" else "PUT"  # qemu: the async POST, as the web UI does; lxc has only PUT
    return Draft(steps=[ApiCall(method, f"{_base(g)}/config", params)], target=str(g.vmid))


def _snapshot_exists(g: Guest, name: str) -> None:
    if not any(r.get("name") == name for r in g.snapshots or []) or name == "current":
        raise BadInput(f"{g.sid} has no snapshot '{name}' (see `proximo read guest.snapshots vmid={g.vmid}`)")


def plan_snapshot_create(p: Any, view: ClusterModel) -> Draft:
    g = existing(view, p.vmid)
    return Draft(steps=[ApiCall("POST", f"{_base(g)}/snapshot", _params(p))], target=str(g.vmid))


def plan_snapshot_rollback(p: Any, view: ClusterModel) -> Draft:
    g = existing(view, p.vmid)
    _snapshot_exists(g, p.snapname)
    return Draft(steps=[ApiCall("POST", f"{_base(g)}/snapshot/{p.snapname}/rollback", _params(p, "snapname"))], target=str(g.vmid))


def plan_snapshot_delete(p: Any, view: ClusterModel) -> Draft:
    g = existing(view, p.vmid)
    _snapshot_exists(g, p.snapname)
    return Draft(steps=[ApiCall("DELETE", f"{_base(g)}/snapshot/{p.snapname}", _params(p, "snapname"))], target=str(g.vmid))


_SIZE = re.compile(r"^(\+)?([0-9]+(?:\.[0-9]+)?[KMGT]?)$")


def plan_resize(p: Any, view: ClusterModel) -> Draft:
    g = existing(view, p.vmid)
    _disk(g, p.disk)
    match = _SIZE.fullmatch(p.size)
    if match is None:
        raise BadInput(f"size '{p.size}' does not parse: give [+]NUMBER[KMGT], e.g. 40G or +8G")
    _, props = volume_of(g.kind, g.config[p.disk])
    if not match.group(1) and props.get("size"):
        try:
            if parse_size(match.group(2)) < parse_size(props["size"]):
                raise BadInput(f"{g.sid} {p.disk} is {props['size']}: shrinking a disk is not supported (Proxmox refuses; "
                               "a resize can only grow)")
        except DriveError:
            pass
    params = _params(p)
    return Draft(steps=[ApiCall("PUT", f"{_base(g)}/resize", {k: v for k, v in params.items() if v is not None})],
                 notes=["a resize cannot be undone: Proxmox never shrinks a disk"], target=str(g.vmid))


def plan_move(p: Any, view: ClusterModel) -> Draft:
    g = existing(view, p.vmid)
    params = _params(p)
    key = params.pop("disk", None) or params.pop("volume", None)
    if key is None:
        raise BadInput("guest.disk.move: name the disk (disk= for a VM, volume= for a container)")
    if not params.get("storage"):
        raise BadInput("guest.disk.move: give the target storage (storage=)")
    _storage(view, params["storage"])
    _disk(g, key)
    params["disk" if g.kind == "qemu" else "volume"] = key
    path = f"{_base(g)}/{'move_disk' if g.kind == 'qemu' else 'move_volume'}"
    return Draft(steps=[ApiCall("POST", path, params)], target=str(g.vmid))


def plan_template(p: Any, view: ClusterModel) -> Draft:
    g = existing(view, p.vmid)
    return Draft(steps=[ApiCall("POST", f"{_base(g)}/template", _params(p))],
                 notes=["converting to a template cannot be undone"], target=str(g.vmid))


def plan_destroy(p: Any, view: ClusterModel) -> Draft:
    g = existing(view, p.vmid)
    params = _params(p, "stop")
    steps: list[Step] = []
    notes: list[str] = []
    # A template with linked clones: Proxmox refuses (the semantics), and _impact.py names each clone
    if g.running and p.stop:
        steps.append(ApiCall("POST", f"{_base(g)}/status/stop"))
        notes.append(f"{g.sid} is running: the plan stops it hard first (stop=true), then destroys it")
    elif g.running:
        notes.append(f"{g.sid} is running: Proxmox refuses to destroy a running guest; stop it first, or plan with stop=true")
    steps.append(ApiCall("DELETE", _base(g), params))
    return Draft(steps=steps, notes=notes, target=str(g.vmid))




TOOLS = tool_table(
    read_tool("guest.status", "Guest status", "Status of a VM or container (GET .../status/current) with its HA state.",
          VmidParams, read_status),
    read_tool("guest.config", "Guest config", "A guest's configuration (GET .../config) and its pending changes; "
          "current=true gives the running values.", ConfigReadParams, read_config),
    read_tool("guest.snapshots", "Guest snapshots", "A guest's snapshots (GET .../snapshot), with the 'current' row.",
          VmidParams, read_snapshots, columns=("name", "snaptime", "parent", "description")),
    read_tool("guest.backups", "Guest backups", "Backups of a guest on every backup storage, newest first.",
          VmidParams, read_backups),
    read_tool("node.status", "Node status", "A node's CPU, memory, root filesystem, kernel and versions (GET /nodes/{node}/status).",
          NodeParams, read_node_status),
    plan_tool("vm.create", "Plan: create a VM", "Plan POST /nodes/{node}/qemu; disks as STORAGE:SIZE_GiB allocate new volumes.",
          VmCreateParams, plan_create("qemu")),
    plan_tool("ct.create", "Plan: create a container", "Plan POST /nodes/{node}/lxc from an ostemplate in 'vztmpl' content.",
          CtCreateParams, plan_create("lxc")),
    plan_tool("guest.start", "Plan: start a guest", "Plan a start; for an HA-managed guest it becomes an HA request.",
          StartParams, plan_power("start")),
    plan_tool("guest.stop", "Plan: stop a guest", "Plan a hard stop; HA-managed guests are stopped through HA (requested state 'stopped').",
          StopParams, plan_power("stop")),
    plan_tool("guest.shutdown", "Plan: shut a guest down", "Plan a clean shutdown (through HA for HA-managed guests).",
          ShutdownParams, plan_power("shutdown")),
    plan_tool("guest.reboot", "Plan: reboot a guest", "Plan a reboot (bypasses HA).", RebootParams, plan_power("reboot")),
    plan_tool("guest.suspend", "Plan: suspend a guest", "Plan a suspend to RAM (bypasses HA).", SuspendParams, plan_power("suspend")),
    plan_tool("guest.resume", "Plan: resume a guest", "Plan resuming a suspended guest.", ResumeParams, plan_power("resume")),
    plan_tool("guest.clone", "Plan: clone a guest", "Plan a full or linked clone (a linked clone needs a template).",
          CloneParams, plan_clone),
    plan_tool("guest.config.set", "Plan: change a guest's config", "Plan a config change with the config digest "
          "(POST for VMs, PUT for containers); disk, NIC, protection and passthrough effects are reported.",
          ConfigSetParams, plan_config_set),
    plan_tool("guest.snapshot.create", "Plan: snapshot a guest", "Plan a snapshot (undo deletes it).",
          SnapshotCreateParams, plan_snapshot_create),
    plan_tool("guest.snapshot.rollback", "Plan: roll back to a snapshot", "Plan a rollback: what was written since is lost (no undo).",
          SnapshotRollbackParams, plan_snapshot_rollback),
    plan_tool("guest.snapshot.delete", "Plan: delete a snapshot", "Plan deleting a snapshot: its state is lost (no undo).",
          SnapshotDeleteParams, plan_snapshot_delete),
    plan_tool("guest.disk.resize", "Plan: grow a disk", "Plan growing a disk (size=40G or +8G); shrinking is refused; no undo.",
          ResizeParams, plan_resize),
    plan_tool("guest.disk.move", "Plan: move a disk", "Plan moving a disk to another storage (qemu move_disk: disk=; "
          "lxc move_volume: volume=); checks content type, node and free space; undo moves it back.", MoveParams, plan_move),
    plan_tool("guest.template", "Plan: convert to a template", "Plan converting a guest to a template (irreversible).",
          TemplateParams, plan_template),
    plan_tool("guest.destroy", "Plan: destroy a guest", "Plan DELETE of a guest (purge, destroy-unreferenced-disks); "
          "protection, running, linked clones, HA, replication, backup jobs and pools are checked; the newest backup is named.",
          DestroyParams, plan_destroy),
)
