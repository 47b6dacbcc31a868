"""Restore from a backup: ``POST /nodes/{node}/qemu`` with ``archive``, ``POST /nodes/{node}/lxc`` with ``restore=1``.

qemu-server src/PVE/API2/Qemu.pm create_vm and pve-container src/PVE/API2/LXC.pm create_vm: check_vmid_unused
(``force`` allows an existing guest on this node only), then, for an existing guest, its protection and that it is
not running; the old disks are destroyed (restore_destroy_volumes; LXC destroys the old rootfs and mount points);
each disk of the backup's config is allocated anew on ``storage`` (or where it was, when that storage is usable on
the node); ``unique`` gives new MACs; ``start`` starts it. The config comes from the archive (``backup_configs``,
GET /nodes/{node}/vzdump/extractconfig): a backup whose config was not read is refused as not modelled.
"""

from __future__ import annotations

from typing import Any

from proximo import NotModelled, PveApiError
from proximo.model import Call, ClusterModel, as_int
from proximo.model._drives import parse_size

from . import _semantics as sem
from . import _volumes as vols


def _config_lines(text: str) -> dict[str, Any]:
    """The main section of a config file's text: ``key: value`` lines up to the first ``[section]``."""
    config: dict[str, Any] = {}
    for line in text.splitlines():
        if line.startswith("["):
            break
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if sep:
            config[key.strip()] = value.strip()
    return config


def restore(model: ClusterModel, call: Call, kind: str) -> str:
    p = call.params
    node = call.path_params["node"]
    vmid = as_int(p["vmid"])
    archive = str(p["archive"] if kind == "qemu" else p["ostemplate"])
    emsg = f"unable to restore {'VM' if kind == 'qemu' else 'CT'} {vmid} -"
    row = vols.find_volume(model, archive)
    if row is None or row.get("content") != "backup":
        raise PveApiError(500, f"{emsg} volume '{archive}' does not exist")
    problem = model.storage_problem(archive.partition(":")[0], node)
    if problem:
        raise PveApiError(500, f"{emsg} {problem}")
    text = model.backup_configs.get(archive)
    if text is None:
        raise NotModelled(f"the configuration inside backup '{archive}' was not read "
                          "(GET /nodes/{node}/vzdump/extractconfig): Proximo cannot predict what restoring it creates")
    old = model.guests.get(vmid)
    if old is not None:
        if not as_int(p.get("force")) or old.node != node:
            raise PveApiError(500, f"{emsg} {sem.label(old.kind)} {vmid} already exists on node '{old.node}'")
        if old.kind != kind:
            raise PveApiError(500, f"{emsg} {sem.label(old.kind)} {vmid} already exists on node '{old.node}'")
        old.check_lock()
        if as_int(old.config.get("protection")):
            raise PveApiError(500, f"{emsg} protection mode enabled")
        if old.running:
            raise PveApiError(500, f"{emsg} vm is running" if kind == "qemu" else "can't overwrite running container")
        for _, volid in sem.owned_volumes(model, old):
            vols.free(model, volid, old.node)
        del model.guests[vmid]
    g = sem._new_guest(model, node, kind, vmid, f"{emsg} {{why}}")  # type: ignore[arg-type]
    target = p.get("storage")
    for key, value in _config_lines(text).items():
        if key in ("digest", "lock", "parent") or key.startswith("unused"):
            continue  # a restore brings no snapshot tree and no unused volumes (they are not in the archive)
        if sem.is_volume_key(kind, key) and isinstance(value, str):  # type: ignore[arg-type]
            volume, props = sem.volume_of(kind, value)  # type: ignore[arg-type]
            if not sem._is_cdrom(kind, props) and ":" in volume and not volume.startswith("/"):  # type: ignore[arg-type]
                sid = str(target or volume.partition(":")[0])
                if target is None and model.storage_problem(sid, node):
                    raise PveApiError(500, f"{emsg} {model.storage_problem(sid, node)}")
                size = parse_size(props["size"]) if props.get("size") else 0
                volid = vols.allocate(model, sid, node, vmid, kind, size)
                value = sem.with_volume(kind, props, volid, size)  # type: ignore[arg-type]
        g.config[key] = value
    if as_int(p.get("unique")):
        for key in [k for k in g.config if sem._is_nic(k)]:
            g.config[key] = sem.nic_with_mac(kind, str(g.config[key]), sem._mac(vmid, key, "restore"), keep=False)  # type: ignore[arg-type]
    upid = model.start_task(node, "qmrestore" if kind == "qemu" else "vzrestore", str(vmid), call.user,
                            log=[f"restore {archive} to {kind}/{vmid}"])
    sem._finish_new(model, g, call)
    return upid

