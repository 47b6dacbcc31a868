"""Effective roles and privileges, computed the way Proxmox VE computes them (pure functions on the model).

After pve-access-control 5ccd07d9 (src/PVE/AccessControl.pm, src/PVE/RPCEnvironment.pm):
``PVE::AccessControl::roles`` (the deepest level with a matching entry wins; token beats user beats group at
one level; groups are unioned; non-propagating entries count only at their own path; NoAccess clears the
winning level) and ``PVE::RPCEnvironment::permissions``/``$compile_acl_path`` (pool roles unioned into member
``/vms/<id>`` and ``/storage/<id>``; privilege-separated tokens get the intersection with their owner, other
tokens exactly the owner's; root@pam has everything). It lives in the model because the simulator serves
``GET /access/permissions`` from it; the ACL pack's analysers and tools use the same functions.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import PveApiError
from ._cluster import ClusterModel, as_int, split_list

ROOT = "root@pam"

# PVE::AccessControl $privgroups (9.1): create_roles() derives the built-in roles from these categories.
PRIVILEGE_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "VM": {
        "root": (),
        "admin": ("VM.Config.Disk", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Network", "VM.Config.HWType",
                  "VM.Config.Options", "VM.Allocate", "VM.Clone", "VM.GuestAgent.Unrestricted", "VM.Migrate",
                  "VM.Replicate", "VM.Snapshot", "VM.Snapshot.Rollback"),
        "user": ("VM.Config.CDROM", "VM.Config.Cloudinit", "VM.Console", "VM.Backup", "VM.GuestAgent.FileRead",
                 "VM.GuestAgent.FileSystemMgmt", "VM.GuestAgent.FileWrite", "VM.PowerMgmt"),
        "audit": ("VM.Audit", "VM.GuestAgent.Audit"),
    },
    "Sys": {"root": ("Sys.PowerMgmt", "Sys.Modify", "Sys.Incoming", "Sys.AccessNetwork"),
            "admin": ("Sys.Console", "Sys.Syslog"), "user": (), "audit": ("Sys.Audit",)},
    "Datastore": {"root": (), "admin": ("Datastore.Allocate", "Datastore.AllocateTemplate"),
                  "user": ("Datastore.AllocateSpace",), "audit": ("Datastore.Audit",)},
    "SDN": {"root": (), "admin": ("SDN.Allocate", "SDN.Audit"), "user": ("SDN.Use",), "audit": ("SDN.Audit",)},
    "User": {"root": ("Realm.Allocate",), "admin": ("User.Modify", "Group.Allocate", "Realm.AllocateUser"),
             "user": (), "audit": ()},
    "Pool": {"root": (), "admin": ("Pool.Allocate",), "user": ("Pool.Audit",), "audit": ("Pool.Audit",)},
    "Mapping": {"root": (), "admin": ("Mapping.Modify",), "user": ("Mapping.Use",), "audit": ("Mapping.Audit",)},
}


# PVE 8.4 runs pve-access-control's stable-bookworm branch (0f258e71): its VM category has VM.Monitor, which 9.0
# replaced by VM.GuestAgent.* (and added VM.Replicate); every other category is the same.
PRIVILEGE_GROUPS_84: dict[str, dict[str, tuple[str, ...]]] = {
    **PRIVILEGE_GROUPS,
    "VM": {
        "root": (),
        "admin": ("VM.Config.Disk", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Network", "VM.Config.HWType",
                  "VM.Config.Options", "VM.Allocate", "VM.Clone", "VM.Migrate", "VM.Monitor", "VM.Snapshot",
                  "VM.Snapshot.Rollback"),
        "user": ("VM.Config.CDROM", "VM.Config.Cloudinit", "VM.Console", "VM.Backup", "VM.PowerMgmt"),
        "audit": ("VM.Audit",),
    },
}


def _builtin_roles(groups: dict[str, dict[str, tuple[str, ...]]]) -> dict[str, frozenset[str]]:
    """PVE::AccessControl::create_roles, as data."""
    valid = {"Permissions.Modify"}  # in no category: only Administrator has it
    roles: dict[str, set[str]] = {"NoAccess": set(), "PVEAdmin": set(), "PVEAuditor": set()}
    for cat, tiers in groups.items():
        valid.update(*tiers.values())
        granted = {*tiers["admin"], *tiers["user"], *tiers["audit"]}
        roles.setdefault(f"PVE{cat}Admin", set()).update(granted)
        roles["PVEAdmin"].update(granted)
        if tiers["user"]:
            roles.setdefault(f"PVE{cat}User", set()).update(tiers["user"], tiers["audit"])
        roles["PVEAuditor"].update(tiers["audit"])
    roles["PVEAdmin"].discard("Mapping.Modify")  # only Administrator, root@pam and PVEMappingAdmin
    roles["PVETemplateUser"] = {"VM.Clone", "VM.Audit"}
    roles["Administrator"] = valid
    return {name: frozenset(privs) for name, privs in roles.items()}


BUILTIN_ROLES: dict[str, frozenset[str]] = _builtin_roles(PRIVILEGE_GROUPS)  # 9.1's
ALL_PRIVILEGES: frozenset[str] = BUILTIN_ROLES["Administrator"]
_BUILTIN_ROLES_BY_RELEASE = {"8.4": _builtin_roles(PRIVILEGE_GROUPS_84), "9.1": BUILTIN_ROLES}


def builtin_roles(model: ClusterModel) -> dict[str, frozenset[str]]:
    """The built-in roles of the model's release (Administrator's privileges: every valid one); 9.1's for any other."""
    return _BUILTIN_ROLES_BY_RELEASE.get(model.release, BUILTIN_ROLES)

# PVE::Auth::Plugin user_regex / realm_regex, and the token name (pve-tokenid)
_USER = r"[^\s:/]+"
_REALM = r"[A-Za-z][A-Za-z0-9.\-_]+"
_TOKEN_NAME = r"[A-Za-z][A-Za-z0-9.\-_]+"
USERID_RE = re.compile(rf"^{_USER}@{_REALM}$")
TOKENID_RE = re.compile(rf"^({_USER}@{_REALM})!({_TOKEN_NAME})$")
# PVE::AccessControl::check_path: the ACL paths the API accepts (pools nest up to three levels)
_NAME = r"[A-Za-z0-9.\-_]+"
ACL_PATH_RE = re.compile(
    rf"^(/|/access|/access/groups|/access/groups/{_NAME}|/access/realm|/access/realm/{_NAME}|/nodes|/nodes/{_NAME}"
    rf"|/pool|/pool/{_NAME}|/pool/{_NAME}/{_NAME}|/pool/{_NAME}/{_NAME}/{_NAME}"
    rf"|/sdn|/sdn/zones|/sdn/zones/{_NAME}|/sdn/zones/{_NAME}/{_NAME}|/sdn/zones/{_NAME}/{_NAME}/[1-9][0-9]{{0,3}}"
    rf"|/storage|/storage/{_NAME}|/vms|/vms/[1-9][0-9]{{2,}}|/mapping|/mapping/{_NAME}|/mapping/{_NAME}/{_NAME})$"
)
_ACL_KINDS = {"user": "users", "group": "groups", "token": "tokens"}


def split_tokenid(subject: str) -> tuple[str, str] | None:
    """``user@realm!name`` -> (owner, name), or None when the subject is not a token id."""
    match = TOKENID_RE.match(subject)
    return (match.group(1), match.group(2)) if match else None


def normalize_path(path: str) -> str | None:
    """PVE::AccessControl::normalize_path: squeeze slashes, drop a trailing one, refuse odd characters."""
    if not path:
        return None
    path = re.sub(r"/+", "/", path)
    if path != "/" and path.endswith("/"):
        path = path[:-1]
    path = path or "/"
    if not path.startswith("/"):
        path = "/" + path
    return path if re.fullmatch(r"[A-Za-z0-9.\-_/]+", path) else None


def _components(path: str) -> list[str]:
    """Perl's ``split("/", $path)`` as roles() uses it: trailing empty fields dropped, ``/`` is ``['']``."""
    if path == "/":
        return [""]
    parts = path.split("/")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def role_table(model: ClusterModel) -> dict[str, frozenset[str]]:
    """Role -> privileges: the cluster's own list is the truth; its release's built-in roles fill the gaps."""
    roles: dict[str, frozenset[str]] = dict(builtin_roles(model))
    for row in model.roles:
        roles[str(row.get("roleid"))] = frozenset(split_list(row.get("privs")))
    return roles


class Access:
    """One model's access configuration, indexed for evaluation (build once, ask many times)."""

    def __init__(self, model: ClusterModel) -> None:
        self.roles: dict[str, frozenset[str]] = role_table(model)
        self.users: dict[str, dict[str, Any]] = {str(u.get("userid")): u for u in model.users}
        self.users.setdefault(ROOT, {"userid": ROOT, "enable": 1})  # userconfig_force_defaults
        self.tokens: dict[str, dict[str, Any]] = {}
        for userid, row in self.users.items():
            for token in row.get("tokens") or []:
                self.tokens[f"{userid}!{token.get('tokenid')}"] = token
        self.members: dict[str, set[str]] = {}
        for group in model.groups:
            self.members.setdefault(str(group.get("groupid")), set()).update(split_list(group.get("users")))
        for userid, row in self.users.items():
            groups = row.get("groups")
            for gid in groups if isinstance(groups, list) else split_list(groups):
                self.members.setdefault(str(gid), set()).add(userid)
        # ACL tree: path components -> kind -> ugid -> role -> propagate
        self.acl: dict[tuple[str, ...], dict[str, dict[str, dict[str, int]]]] = {}
        for entry in model.acl:
            path = normalize_path(str(entry.get("path", "")))
            kind = _ACL_KINDS.get(str(entry.get("type")))
            if path is None or kind is None:
                continue
            key = tuple(p for p in path.split("/") if p)
            node = self.acl.setdefault(key, {"users": {}, "groups": {}, "tokens": {}})
            node[kind].setdefault(str(entry.get("ugid")), {})[str(entry.get("roleid"))] = 1 if as_int(entry.get("propagate", 1)) else 0
        self.pools: dict[str, tuple[set[int], set[str]]] = {}
        self.member_of: dict[str, list[str]] = {}  # /vms/<id> or /storage/<id> -> the pools it is a member of
        for poolid, pool in model.pools.items():
            vms: set[int] = set()
            storages: set[str] = set()
            for member in pool.get("members") or []:
                if member.get("type") in ("qemu", "lxc", "openvz"):
                    vms.add(as_int(member.get("vmid"), -1))
                elif member.get("type") == "storage":
                    storages.add(str(member.get("storage")))
            self.pools[str(poolid)] = (vms, storages)
            for target in [f"/vms/{v}" for v in vms] + [f"/storage/{s}" for s in storages]:
                self.member_of.setdefault(target, []).append(str(poolid))
        self._privs: dict[tuple[str, str], dict[str, int]] = {}
        self._pool_role_cache: dict[tuple[str, str], dict[str, int]] = {}

    # --- PVE::AccessControl::roles ----------------------------------------------------------------------

    def stands_for(self, subject: str) -> str | None:
        """Whose ACL entries decide for ``subject``: itself, a non-privsep token's owner, or None (unknown token)."""
        token = split_tokenid(subject)
        if token is None:
            return subject
        info = self.tokens.get(subject)
        if info is None:
            return None
        return subject if as_int(info.get("privsep", 1)) else token[0]

    def roles_of(self, subject: str, path: str) -> dict[str, int]:
        """Role -> propagate flag for ``subject`` on ``path`` (pools not considered, as upstream)."""
        if subject == ROOT:
            return {"Administrator": 1}
        who = self.stands_for(subject)
        if who != subject:
            return self.roles_of(who, path) if who else {}
        roles: dict[str, int] = {}
        key: tuple[str, ...] = ()
        parts = _components(path)
        for i, part in enumerate(parts):
            final = i == len(parts) - 1
            if part:
                key = (*key, part)
            node = self.acl.get(key)
            if node is None:
                continue
            for kind in ("tokens", "users"):
                granted = node[kind].get(subject)
                if granted:
                    new = {r: p for r, p in granted.items() if final or p}
                    if new:
                        roles = new  # overwrite previous settings; a user entry also hides group entries
                        break
            else:
                new = {}
                for gid, granted in node["groups"].items():
                    if subject in self.members.get(gid, ()):
                        new.update({r: p for r, p in granted.items() if final or p})
                if new:
                    roles = new
        if "NoAccess" in roles:
            return {"NoAccess": roles["NoAccess"]}
        return roles

    # --- PVE::RPCEnvironment::permissions -------------------------------------------------------------

    def _pool_roles(self, subject: str, path: str) -> dict[str, int]:
        """The roles ``subject`` has on the pools ``path`` (a guest or storage) is a member of, unioned."""
        found: dict[str, int] = {}
        for poolid in self.member_of.get(path, ()):
            if (subject, poolid) not in self._pool_role_cache:
                self._pool_role_cache[(subject, poolid)] = self.roles_of(subject, f"/pool/{poolid}")
            found.update(dict.fromkeys(self._pool_role_cache[(subject, poolid)], 1))
        return found

    def privileges_of(self, subject: str, path: str) -> dict[str, int]:
        """Privilege -> propagate flag: what ``subject`` may do on ``path``."""
        if subject == ROOT:
            return dict.fromkeys(self.roles["Administrator"], 1)
        cached = self._privs.get((subject, path))
        if cached is not None:
            return cached
        token = split_tokenid(subject)
        who = self.stands_for(subject)
        if who is None or (token is None and not USERID_RE.match(subject)):
            return {}
        if who != subject:  # a token without privilege separation: exactly its owner's privileges
            return self.privileges_of(who, path)
        owner = token[0] if token else ""
        roles = self.effective_roles(subject, path)
        privs: dict[str, int] = {}
        for role, propagate in roles.items():
            for priv in self.roles.get(role, ()):
                privs[priv] = privs.get(priv, 0) or propagate
        if owner and owner != ROOT:
            owner_privs = self.privileges_of(owner, path)
            privs = {p: (owner_privs[p] and v) for p, v in privs.items() if p in owner_privs}
        self._privs[(subject, path)] = privs
        return privs

    def effective_roles(self, subject: str, path: str) -> dict[str, int]:
        """The roles ``$compile_acl_path`` settles on: ACL roles plus roles from a pool the object is in."""
        if subject == ROOT:
            return {"Administrator": 1}
        who = self.stands_for(subject)
        if who != subject:
            return self.effective_roles(who, path) if who else {}
        roles = dict(self.roles_of(subject, path))
        from_pool = self._pool_roles(subject, path)
        if from_pool and "NoAccess" not in roles:
            if "NoAccess" in from_pool:
                roles = {"NoAccess": 0}  # a pool's NoAccess trumps regular roles
            else:
                for role in from_pool:
                    roles.setdefault(role, 0)  # pool-derived roles never propagate
        return roles

    # --- GET /access/permissions ------------------------------------------------------------------------

    def acl_paths(self) -> list[str]:
        """Every node of the ACL tree (iterate_acl_tree visits the intermediate ones too)."""
        paths = {"/"}
        for key in self.acl:
            for i in range(1, len(key) + 1):
                paths.add("/" + "/".join(key[:i]))
        return sorted(paths)

    def effective_permissions(self, subject: str) -> dict[str, dict[str, int]]:
        """RPCEnvironment::get_effective_permissions: every default, ACL and pool-member path with privileges."""
        paths = {"/", "/access", "/access/groups", "/nodes", "/pool", "/sdn", "/storage", "/vms", *self.acl_paths()}
        for vms, storages in self.pools.values():
            paths.update(f"/vms/{v}" for v in vms)
            paths.update(f"/storage/{s}" for s in storages)
        out: dict[str, dict[str, int]] = {}
        for path in sorted(paths):
            privs = self.privileges_of(subject, path)
            if privs:
                out[path] = dict(sorted(privs.items()))
        return out


def check_perm_modify(access: Access, authid: str, path: str) -> bool:
    """RPCEnvironment::check_perm_modify: Permissions.Modify on the path, or the object's Allocate privilege."""
    wanted = {"Permissions.Modify"}
    for prefix, priv in (("/storage/", "Datastore.Allocate"), ("/vms/", "VM.Allocate"), ("/pool/", "Pool.Allocate")):
        if path.startswith(prefix) and len(path) > len(prefix):
            wanted.add(priv)
    return bool(wanted & set(access.privileges_of(authid, path)))


def acl_answer(model: ClusterModel, authid: str) -> list[dict[str, Any]]:
    """What ``GET /access/acl`` lists to ``authid`` (ACL.pm read_acl): all of it with Sys.Audit on /access,
    otherwise only the entries on paths where it may modify permissions."""
    access = Access(model)
    if access.stands_for(authid) is None or authid not in access.users and split_tokenid(authid) is None:
        return model.acl  # a hand-written snapshot that does not list the asking token cannot say what it may see
    if "Sys.Audit" in access.privileges_of(authid, "/access"):
        return model.acl
    return [a for a in model.acl if check_perm_modify(access, authid, str(a.get("path")))]


def permissions_answer(model: ClusterModel, authid: str, userid: str | None = None, path: str | None = None) -> dict[str, dict[str, int]]:
    """What ``GET /access/permissions`` answers ``authid`` (PVE::API2::AccessControl ``permissions``)."""
    access = Access(model)
    target = userid if userid is not None else authid
    token = split_tokenid(target)
    owned = token is not None and token[0] == authid
    if target != authid and not owned and "Sys.Audit" not in access.privileges_of(authid, "/access"):
        raise PveApiError(403, "Permission check failed (/access, Sys.Audit)")
    if path:
        return {path: dict(sorted(access.privileges_of(target, path).items()))}
    return access.effective_permissions(target)


_GUEST_PATH = re.compile(r"^/nodes/[^/]+/(?:qemu|lxc)/(?P<vmid>\d+)(?:/|$)")
_GUEST_INDEX = re.compile(r"^/nodes/[^/]+/(?:qemu|lxc)$")
_STORAGE_AUDIT = frozenset({"Datastore.Audit", "Datastore.AllocateSpace"})


class AuditView:
    """What ``authid``'s reads show: PVE leaves out of its lists each guest, storage and pool it may not audit, and
    refuses a guest's own reads (PVE/API2/Cluster.pm ``resources``, Qemu.pm and LXC.pm ``vmlist`` and ``vmdiridx``,
    Storage/Config.pm and Pool.pm ``index``). ``full`` when it may audit them all (nothing to filter), or when the
    model cannot say who the token is (a snapshot without it: served as recorded)."""

    def __init__(self, model: ClusterModel, authid: str) -> None:
        self.access = Access(model)
        self.authid = authid
        unknown = not model.users or self.access.stands_for(authid) is None
        self.full = unknown or all(privs & set(self.access.privileges_of(authid, root))
                                   for root, privs in (("/vms", {"VM.Audit"}), ("/storage", _STORAGE_AUDIT), ("/pool", {"Pool.Audit"})))

    def _vm(self, vmid: Any) -> bool:
        return "VM.Audit" in self.access.privileges_of(self.authid, f"/vms/{as_int(vmid, -1)}")

    def _storage(self, sid: Any) -> bool:
        return bool(_STORAGE_AUDIT & set(self.access.privileges_of(self.authid, f"/storage/{sid}")))

    def _pool(self, poolid: Any) -> bool:
        return "Pool.Audit" in self.access.privileges_of(self.authid, f"/pool/{poolid}")

    def _row(self, row: Any) -> bool:
        if not isinstance(row, dict):
            return True
        kind = row.get("type")
        if kind in ("qemu", "lxc") or (kind is None and "vmid" in row):
            return self._vm(row.get("vmid"))
        if kind == "storage" or (kind is None and "storage" in row):
            return self._storage(row.get("storage"))
        if kind == "pool" or (kind is None and "poolid" in row):
            return self._pool(row.get("poolid") or row.get("pool"))
        return True

    def check(self, path: str) -> None:
        """PveApiError 403 for a guest's own read the token may not audit."""
        if not self.full and (found := _GUEST_PATH.match(path)) and not self._vm(found["vmid"]):
            raise PveApiError(403, f"Permission check failed (/vms/{found['vmid']}, VM.Audit)")

    def shown(self, path: str, data: Any) -> Any:
        """``data`` as this token is shown it at ``path``."""
        listed = path in ("/cluster/resources", "/storage", "/pools") or _GUEST_INDEX.match(path) \
            or (path.startswith("/nodes/") and path.endswith("/storage") and path.count("/") == 3)
        if self.full or not listed or not isinstance(data, list):
            return data
        return [row for row in data if self._row(row)]
