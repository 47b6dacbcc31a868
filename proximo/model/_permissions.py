"""Whether a caller may make an API call, checked on the model the way pve-api-daemon checks it.

After pve-access-control 5ccd07d9 ``PVE::RPCEnvironment`` (``check``, ``check_any``, ``check_full``,
``check_vm_perm``, ``check_perm_modify``, ``exec_api2_perm_check``, ``check_api2_permissions``) and
pve-manager 14a22df3 ``PVE::HTTPServer::rest_handler`` (tokens refused where ``allowtoken`` is 0, then the
method's ``permissions``, both before the parameters are validated). Privileges come from ``_access.Access``.
The handlers' own checks (qemu-server, pve-container, ACL.pm, Pool.pm) are registered with each endpoint's
semantics and call the same ``Caller`` methods.

What the privileges are judged on (``Caller.basis``):

- ``root``: root@pam may do anything (``check_api2_permissions`` and every handler return early for it).
- ``acl``: the model's users, groups, roles, ACL and pools, computed as PVE computes them.
- ``own``: the state was read by a token that sees only part of the access configuration (PVE shortens
  the /access lists for it, ``_cluster.partial_access_reads``), so its own ``GET /access/permissions``
  answer is used: exact on every path it lists (every ACL node and pool member with privileges); elsewhere
  the privileges that propagate from the nearest listed parent. It is taken as the checked token's own
  answer (the predictor checks the token that read the state). Such a plan is incomplete anyway.
- ``unknown``: the model holds no access data at all (a hand-written snapshot without /access/users):
  privilege checks cannot be evaluated and pass; ``permission_note`` makes every plan say so. Rules that do
  not depend on the ACL (only root@pam may ...) still apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from ..pve._apischema import Endpoint, PermissionSpec
from ..errors import PveApiError
from ._access import ROOT, USERID_RE, Access, builtin_roles, normalize_path, split_tokenid
from ._cluster import ClusterModel, split_list

Basis = Literal["root", "acl", "own", "unknown"]


def permission_error(what: str = "") -> PveApiError:
    """PVE::Exception::raise_perm_exc: a 403 ``Permission check failed (what)``."""
    return PveApiError(403, "Permission check failed" + (f" ({what})" if what else ""))


def under_user_config_lock(what: str, exc: PveApiError) -> PveApiError:
    """PVE::AccessControl::lock_user_config(code, WHAT) re-dies with "WHAT: $err": the exception turns into a plain
    error (HTTP 500) whose text is its stringification, "CODE MESSAGE" and a "PARAM: ERROR" line per parameter."""
    text = f"{what}: {exc.status} {exc.message}" + "".join(f"\n{k}: {v}" for k, v in exc.errors.items())
    return PveApiError(500, text)


def template_replace(template: str, data: Mapping[str, Any]) -> str:
    """PVE::Tools::template_replace: ``{name}`` becomes ``data[name]``, or ``-`` where Perl finds it false."""
    out: list[str] = []
    rest = template
    while rest:
        start = rest.find("{")
        end = rest.find("}", start + 1) if start >= 0 else -1
        if start < 0 or end < 0:
            out.append(rest)
            break
        out.append(rest[:start])
        value = data.get(rest[start + 1:end])
        out.append("-" if value is None or isinstance(value, bool) and not value or str(value) in ("", "0") else str(value))
        rest = rest[end + 1:]
    return "".join(out)


def verify_username(userid: Any) -> tuple[str, str, str]:
    """PVE::Auth::Plugin::verify_username: (userid, user, realm), or PVE's error (a plain die: HTTP 500)."""
    text = "" if userid is None else str(userid)
    if len(text) < 3:
        raise PveApiError(500, f"user name '{text}' is too short")
    if len(text) > 64:
        raise PveApiError(500, f"user name '{text}' is too long ({len(text)} > 64)")
    if not USERID_RE.match(text):
        raise PveApiError(500, f"value '{text}' does not look like a valid user name")
    user, _, realm = text.rpartition("@")
    return text, user, realm


def _from_own_answer(answer: Mapping[str, Mapping[str, int]], path: str) -> dict[str, int]:
    """A token's privileges on ``path`` from its own GET /access/permissions answer.

    PVE lists every ACL node and pool member path where the token has privileges (get_effective_permissions);
    on any other path, roles() takes the deepest level with propagating entries: the propagating privileges
    of the nearest listed parent that has any. (A propagating NoAccess leaves its path unlisted, so below it
    this is too generous: one reason such a plan is marked incomplete.)
    """
    if path in answer:
        return dict(answer[path])
    parts = path.split("/")
    while len(parts) > 1:
        parts.pop()
        privs = answer.get("/".join(parts) or "/")
        inherited = {priv: 1 for priv, propagate in (privs or {}).items() if propagate}
        if inherited:
            return inherited
    return {}


class Caller:
    """One request's caller on one model: ``PVE::RPCEnvironment`` for the permission checks of that request."""

    def __init__(self, model: ClusterModel, user: str) -> None:
        self.model = model
        self.user = user
        self.is_root = user == ROOT
        self._access: Access | None = None
        self.basis: Basis
        if self.is_root:
            self.basis = "root"
        elif model.own_permissions is not None and (model.access_partial or not self._known(model)):
            self.basis = "own"
        elif not model.users:
            self.basis = "unknown"
        else:
            self.basis = "acl"
            self._access = Access(model)

    def _known(self, model: ClusterModel) -> bool:
        """Whether the model's user list names this caller (a token: its owner's row lists it)."""
        token = split_tokenid(self.user)
        owner = token[0] if token else self.user
        row = next((u for u in model.users if u.get("userid") == owner), None)
        return row is not None and (token is None or any(t.get("tokenid") == token[1] for t in row.get("tokens") or []))

    # --- RPCEnvironment::permissions and the checks on it ------------------------------------------------

    def permissions(self, path: str | None) -> dict[str, int] | None:
        """Privilege -> propagate flag on ``path``; None when the model cannot say."""
        if self.basis == "root":
            return dict.fromkeys(builtin_roles(self.model)["Administrator"], 1)  # every privilege of its release
        if path is None:  # "ACL check called for undefined ACL path": nothing
            return {}
        if self.basis == "acl":
            assert self._access is not None
            return self._access.privileges_of(self.user, path)
        if self.basis == "own":
            assert self.model.own_permissions is not None
            return _from_own_answer(self.model.own_permissions, path)
        return None

    def check(self, path: str | None, privs: Iterable[str], *, noerr: bool = False) -> bool:
        """RPCEnvironment::check: every privilege, else ``Permission check failed (PATH, PRIV)``."""
        have = self.permissions(path)
        if have is None:
            return True
        for priv in privs:
            if priv not in have:
                if noerr:
                    return False
                raise permission_error(f"{path or ''}, {priv}")
        return True

    def check_any(self, path: str | None, privs: list[str], *, noerr: bool = False) -> bool:
        """RPCEnvironment::check_any: one of the privileges, else ``Permission check failed (PATH, A|B)``."""
        have = self.permissions(path)
        if have is None or any(priv in have for priv in privs):
            return True
        if noerr:
            return False
        raise permission_error(f"{path or ''}, {'|'.join(privs)}")

    def check_full(self, path: str | None, privs: list[str], *, any: bool = False, noerr: bool = False) -> bool:
        return self.check_any(path, privs, noerr=noerr) if any else self.check(path, privs, noerr=noerr)

    def check_vm_perm(self, vmid: Any, pool: str | None, privs: list[str], *, any: bool = False, noerr: bool = False) -> bool:
        """RPCEnvironment::check_vm_perm: the pool's privileges are enough (new guests), else the guest's."""
        if pool and self.check_full(f"/pool/{pool}", privs, any=any, noerr=True):
            return True
        return self.check_full(f"/vms/{vmid}", privs, any=any, noerr=noerr)

    def check_perm_modify(self, path: str | None, *, noerr: bool = False) -> bool:
        """RPCEnvironment::check_perm_modify: Permissions.Modify, or the object's Allocate privilege below it."""
        if not path:
            return self.check("/access", ["Permissions.Modify"], noerr=noerr)
        wanted = ["Permissions.Modify"]
        for prefix, priv in (("/storage/", "Datastore.Allocate"), ("/vms/", "VM.Allocate"), ("/pool/", "Pool.Allocate")):
            if path.startswith(prefix) and len(path) > len(prefix):
                wanted.append(priv)
                break
        return self.check_any(path, wanted, noerr=noerr)

    def check_user_exist(self, userid: Any, *, noerr: bool = False) -> bool:
        """AccessControl::check_user_exist (a plain die, HTTP 500). A list the model only partly holds cannot deny."""
        try:
            name, _, _ = verify_username(userid)
        except PveApiError:
            if noerr:
                return False
            raise
        if self._access is None or name in self._access.users:
            return True
        if noerr:
            return False
        raise PveApiError(500, f"no such user ('{name}')")

    def check_pool_exist(self, pool: str, *, noerr: bool = False) -> bool:
        """RPCEnvironment::check_pool_exist (checked for root@pam too)."""
        if pool in self.model.pools:
            return True
        if noerr:
            return False
        raise permission_error(f"pool '{pool}' does not exist")

    def _groups_allowing(self, privs: list[str]) -> set[str]:
        """RPCEnvironment::filter_groups with any=1: groups on whose /access/groups/<g> one of ``privs`` is held."""
        return {str(g.get("groupid")) for g in self.model.groups
                if self.check_any(f"/access/groups/{g.get('groupid')}", privs, noerr=True)}

    def _members_of(self, groups: set[str]) -> set[str]:
        """RPCEnvironment::group_member_join."""
        return {user for g in self.model.groups if str(g.get("groupid")) in groups for user in split_list(g.get("users"))}

    # --- RPCEnvironment::exec_api2_perm_check / check_api2_permissions -----------------------------------

    def check_request(self, endpoint: Endpoint, path: str, params: Mapping[str, Any]) -> None:
        """What pve-api-daemon checks before the handler runs: tokens where allowed, then the method's permissions."""
        if not endpoint.allowtoken and split_tokenid(self.user) is not None:  # HTTPServer::rest_handler
            raise permission_error(f"URI '{path}' not available with API token, need proper ticket.\n")
        self.check_api2_permissions(endpoint.permissions, params)

    def check_api2_permissions(self, spec: PermissionSpec | None, params: Mapping[str, Any]) -> None:
        if self.is_root:
            return
        if spec is None:  # a method without permissions: root@pam only
            raise permission_error("user != root@pam")
        if spec.user == "all":  # any authenticated user; the handler checks what it needs
            return
        if spec.check:
            self.exec_api2_perm_check(spec.check, params)
            return
        raise permission_error()

    def exec_api2_perm_check(self, check: list[Any], params: Mapping[str, Any], noerr: bool = False) -> bool:
        test = check[0] if check else None
        if test == "and":  # sub-checks run without noerr: a failing one raises even inside an "or"
            for sub in check[1:]:
                self.exec_api2_perm_check(sub, params)
            return True
        if test == "or":
            if any(self.exec_api2_perm_check(sub, params, noerr=True) for sub in check[1:]):
                return True
            if noerr:
                return False
            raise permission_error()
        if test == "perm":
            template, privs = check[1], check[2]
            options = dict(zip(check[3::2], check[4::2], strict=False))
            required = options.get("require_param")
            if required and params.get(required) is None:
                if noerr:
                    return False
                raise permission_error()
            return self.check_full(normalize_path(template_replace(template, params)), list(privs),
                                   any=bool(options.get("any")), noerr=noerr)
        if test == "userid-group":
            return self._userid_group(list(check[1]), dict(zip(check[2::2], check[3::2], strict=False)), params, noerr)
        if test == "userid-param":
            userid, _, realm = verify_username(params.get("userid"))
            if check[1] == "self":
                if not self.check_user_exist(userid, noerr=noerr):
                    return False
                if self.user == userid:
                    return True
                if noerr:
                    return False
                raise permission_error()
            if check[1] == "Realm.AllocateUser":
                return self.check(f"/access/realm/{realm}", ["Realm.AllocateUser"], noerr=noerr)
            raise PveApiError(500, "unknown userid-param test")
        if test == "perm-modify":
            path = normalize_path(template_replace(check[1], params))
            if path is None:
                return False
            return self.check_perm_modify(path, noerr=noerr)
        raise PveApiError(500, "unknown permission test")

    def _userid_group(self, privs: list[str], options: dict[str, Any], params: Mapping[str, Any], noerr: bool) -> bool:
        """``userid-group``: the privileges on /access/groups, or on the groups the user is (or will be) in."""
        userid = params.get("userid")
        check_existing_user = options.get("groups_param") != "create"
        if check_existing_user and not self.check_user_exist(userid, noerr=noerr):
            return False
        if self.check_any("/access/groups", privs, noerr=True):
            return True
        groups = self._groups_allowing(privs)
        if options.get("groups_param"):
            wanted = split_list(params.get("groups"))
            if not wanted:
                raise permission_error(f"/access/groups, {'|'.join(privs)}")
            for group in wanted:
                if group not in groups:
                    raise permission_error(f"/access/groups/{group}, {'|'.join(privs)}")
        if check_existing_user and str(userid) not in self._members_of(groups):
            if noerr:
                return False
            raise permission_error()
        return True


def permission_note(model: ClusterModel) -> str | None:
    """What a plan must say when its permission checks were not judged on the whole access configuration."""
    if model.own_permissions is None and not model.users:
        return ("Permissions not checked: this state holds no access data (no /access/users), so Proximo cannot tell "
                "whether the token may make these calls; Proxmox decides when the plan is applied.")
    if model.access_partial:
        return ("Permissions checked against the token's own GET /access/permissions answer (it cannot read the whole "
                "access configuration): exact on the paths listed there, inherited from the nearest listed parent elsewhere.")
    return None
