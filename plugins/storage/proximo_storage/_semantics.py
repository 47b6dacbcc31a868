"""What ``POST/PUT/DELETE /storage`` do to a cluster, after pve-storage's API2/Storage/Config.pm.

Facts used (the DELETE handler in src/PVE/API2/Storage/Config.pm): DELETE removes only the definition; the
data stays; the ``/storage/<id>`` ACLs and pool memberships go (pve-access-control src/PVE/AccessControl.pm
``remove_storage_access``); the plugin's ``on_delete_hook`` deletes stored credentials. Nothing checks
whether guests still use the storage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgspec

from proximo import ApiCall, Irreversible, PveApiError, Step
from proximo.model import CREDENTIAL_STORAGE_TYPES, SHARED_STORAGE_TYPES, Call, ClusterModel, as_int, split_list

# PVE::Storage::<Type>Plugin plugindata content: [allowed, default]. The default applies when
# `content` is not given (PVE::Storage::Plugin::parse_config fills it in).
DEFAULT_CONTENT = {
    "dir": "images,rootdir", "nfs": "images", "cifs": "images", "cephfs": "vztmpl,iso,backup",
    "btrfs": "images,rootdir", "zfspool": "images,rootdir", "lvmthin": "images,rootdir", "lvm": "images",
    "rbd": "images", "pbs": "backup", "iscsi": "images", "iscsidirect": "images", "esxi": "import",
}
# Options the plugins require on create (``missing value for required option`` otherwise).
REQUIRED_OPTIONS = {
    "dir": ("path",), "nfs": ("server", "export"), "cifs": ("server", "share"), "zfspool": ("pool",),
    "lvmthin": ("vgname", "thinpool"), "lvm": ("vgname",), "pbs": ("server", "datastore"), "btrfs": ("path",),
    "iscsi": ("portal", "target"), "esxi": ("server", "username", "password"),
}
# Passed on create, kept by PVE outside storage.cfg (in /etc/pve/priv): never part of the config.
SECRET_OPTIONS = ("password", "keyring", "encryption-key", "master-pubkey")
# Default for path-based network storages: PVE mounts them under /mnt/pve/<id>.
MOUNTED_TYPES = ("nfs", "cifs", "cephfs")


def storage_cfg_digest(model: ClusterModel) -> str:
    body = {sid: {k: v for k, v in cfg.items() if k != "digest"} for sid, cfg in model.storages.items()}
    return hashlib.sha1(msgspec.json.encode(body, order="sorted")).hexdigest()


def _write(model: ClusterModel) -> None:
    """storage.cfg is one file: every row carries the file's digest."""
    digest = storage_cfg_digest(model)
    for cfg in model.storages.values():
        cfg["digest"] = digest


def current_cfg_digest(model: ClusterModel, call: Call | None = None) -> str | None:
    """The digest of storage.cfg as GET /storage shows it: what PUT /storage/{storage} compares ``digest`` with."""
    return next(iter(model.storages.values())).get("digest", storage_cfg_digest(model)) if model.storages else None


def _check_digest(model: ClusterModel, call: Call) -> None:
    given = call.params.get("digest")
    if given and model.storages and given != current_cfg_digest(model):
        raise PveApiError(500, "detected modified configuration - file changed by other user? Try again.")


def stored_credentials(cfg: dict[str, Any]) -> str | None:
    """What ``on_delete_hook`` would delete for this storage, if PVE stores credentials for it."""
    kind = cfg.get("type", "")
    if kind == "cifs" and not cfg.get("username"):
        return None
    if kind in ("rbd", "cephfs") and not cfg.get("monhost"):
        return None  # hyper-converged Ceph: the cluster's own keyring, not a stored copy
    return CREDENTIAL_STORAGE_TYPES.get(kind)


def missing_required(kind: str, params: dict[str, Any]) -> str | None:
    """The first option storage type ``kind`` requires on create that ``params`` lacks (PVE::SectionConfig::check_config)."""
    return next((option for option in REQUIRED_OPTIONS.get(kind, ()) if option not in params), None)


def create(model: ClusterModel, call: Call) -> None:
    p = dict(call.params)
    sid = str(p.pop("storage"))
    kind = str(p["type"])
    if sid in model.storages:
        raise PveApiError(500, f"create storage failed: storage ID '{sid}' already defined")
    missing = missing_required(kind, p)
    if missing:  # SectionConfig::check_config dies before the lock: a plain 500, as PVE answers
        raise PveApiError(500, f"missing value for required option '{missing}'")
    for option in SECRET_OPTIONS:
        p.pop(option, None)
    cfg: dict[str, Any] = {"storage": sid, **p}
    cfg.setdefault("content", DEFAULT_CONTENT.get(kind, "images"))
    if kind in MOUNTED_TYPES:
        cfg.setdefault("path", f"/mnt/pve/{sid}")
    if kind in SHARED_STORAGE_TYPES:  # parse_config sets it for these types whatever the file says
        cfg["shared"] = 1
    model.storages[sid] = cfg
    _write(model)


def _configured(model: ClusterModel, sid: str, verb: str) -> dict[str, Any]:
    """Config.pm update/delete look the storage up inside lock_storage_config(..., "<verb> storage failed")."""
    try:
        return model.storage(sid)
    except PveApiError as exc:
        raise PveApiError(exc.status, f"{verb} storage failed: {exc.message}") from None


def update(model: ClusterModel, call: Call) -> None:
    p = dict(call.params)
    sid = call.path_params["storage"]
    cfg = _configured(model, sid, "update")
    _check_digest(model, call)
    p.pop("digest", None)
    for key in split_list(p.pop("delete", None)):
        if key in ("type", "storage"):
            raise PveApiError(400, "Parameter verification failed.", {"delete": f"cannot delete required option '{key}'"})
        cfg.pop(key, None)
    for option in SECRET_OPTIONS:
        p.pop(option, None)
    cfg.update(p)
    _write(model)


def delete(model: ClusterModel, call: Call) -> None:
    sid = call.path_params["storage"]
    _configured(model, sid, "delete")
    for other, cfg in model.storages.items():
        if other != sid and str(cfg.get("base", "")).startswith(f"{sid}:"):
            raise PveApiError(500, "can't remove storage - storage is used as base of another storage")
    del model.storages[sid]  # the volumes stay in model.volumes: only the definition goes
    # PVE::AccessControl::remove_storage_access: the /storage/<id> ACL node (and below) and pool memberships.
    model.acl[:] = [a for a in model.acl if not (a["path"] == f"/storage/{sid}" or a["path"].startswith(f"/storage/{sid}/"))]
    for pool in model.pools.values():
        pool["members"] = [m for m in pool.get("members", []) if not (m.get("type") == "storage" and m.get("storage") == sid)]
    _write(model)


# --- inverses -------------------------------------------------------------------------------------------


def _create_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    return [ApiCall("DELETE", f"/storage/{call.params['storage']}")]


def _update_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    sid = call.path_params["storage"]
    old = before.storage(sid)
    changed = [k for k in call.params if k not in ("storage", "digest", "delete") and k not in SECRET_OPTIONS]
    deleted = split_list(call.params.get("delete"))
    restore = {k: old[k] for k in changed + deleted if k in old}
    remove = sorted({k for k in changed if k not in old})
    params: dict[str, Any] = dict(sorted(restore.items()))
    if remove:
        params["delete"] = ",".join(remove)
    if not params:
        return []
    return [ApiCall("PUT", f"/storage/{sid}", params)]


def recreate_params(model: ClusterModel, cfg: dict[str, Any]) -> dict[str, Any]:
    """The POST /storage that re-creates a definition: every config key that the cluster's create call accepts."""
    accepted = model.api.endpoint("POST", "/storage")
    assert accepted is not None
    return {k: v for k, v in sorted(cfg.items()) if k in accepted.params and k != "digest"}


def _delete_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    sid = call.path_params["storage"]
    cfg = before.storage(sid)
    steps: list[Step] = [ApiCall("POST", "/storage", recreate_params(before, cfg))]
    kinds = {"user": "users", "group": "groups", "token": "tokens"}
    for entry in before.acl:
        if entry["path"] == f"/storage/{sid}" or entry["path"].startswith(f"/storage/{sid}/"):
            steps.append(ApiCall("PUT", "/access/acl", {"path": entry["path"], "roles": entry["roleid"],
                                                        kinds[entry["type"]]: entry["ugid"], "propagate": as_int(entry.get("propagate", 1))}))
    for poolid, pool in sorted(before.pools.items()):
        if any(m.get("type") == "storage" and m.get("storage") == sid for m in pool.get("members", [])):
            steps.append(ApiCall("PUT", "/pools", {"poolid": poolid, "storage": sid}))
    return steps


def _delete_notes(before: ClusterModel, call: Call) -> list[str]:
    sid = call.path_params["storage"]
    cfg = before.storages.get(sid)
    if cfg is None:
        return []
    notes = [f"DELETE /storage/{sid} removes only the definition: the volumes on it are not deleted (not data loss)."]
    acls = [a for a in before.acl if a["path"] == f"/storage/{sid}" or a["path"].startswith(f"/storage/{sid}/")]
    pools = [p for p, pool in sorted(before.pools.items()) if any(m.get("storage") == sid for m in pool.get("members", []))]
    if acls or pools:
        notes.append(f"It also drops {len(acls)} ACL entr{'y' if len(acls) == 1 else 'ies'} on /storage/{sid}"
                     + (f" and its membership of pool {', '.join(pools)}" if pools else "") + "; the undo restores them.")
    secret = stored_credentials(cfg)
    if secret:
        notes.append(f"Proxmox deletes {secret} it stored for '{sid}': no undo can restore them; re-enter them after an undo.")
    return notes


def register_all(register: Callable[..., None]) -> None:
    register("POST", "/storage", create, inverse=_create_inverse)
    register("PUT", "/storage/{storage}", update, inverse=_update_inverse, digest=current_cfg_digest)
    register("DELETE", "/storage/{storage}", delete, inverse=_delete_inverse, notes=_delete_notes)
