"""What the /access writes do to the model, after pve-access-control's API2/{ACL,User,Group,Role}.pm.

Facts used (pve-access-control src/PVE/AccessControl.pm and the handlers):
- ``PUT /access/acl`` adds (``delete=1``: removes) one entry per role x user/group/token; ``propagate``
  defaults to 1; the path must pass ``check_path``; unknown roles, users, groups and tokens are refused.
- Deleting a user removes its group memberships, its ACL entries and its tokens (their ACL entries go with
  them: user.cfg drops ACLs of tokens that no longer exist). Deleting a group removes its memberships and
  ACL entries; deleting a role removes the ACL entries that name it. Built-in roles cannot change.
- A new token's secret is returned once (``value``); Proxmox keeps only its hash. It is never stored here.

The calling token's permissions are checked before these semantics run: the schema's checks (``perm-modify``,
``userid-group``, ...) by ``proximo.model._permissions``, and update_acl's own rule here (``check_acl_update``).
The realm's password store and TFA entries are not modelled (see docs/packs/acl.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, Literal

from proximo import ApiCall, Irreversible, PveApiError, Step
from proximo.model import Call, ClusterModel, as_int, split_list
from proximo.model._access import ACL_PATH_RE, BUILTIN_ROLES, builtin_roles, normalize_path, role_table, split_tokenid
from proximo.model._permissions import Caller, under_user_config_lock

KINDS = (("users", "user"), ("groups", "group"), ("tokens", "token"))
KEY_OF_KIND = {kind: key for key, kind in KINDS}
USER_FIELDS = ("enable", "expire", "firstname", "lastname", "email", "comment", "keys")
TOKEN_FIELDS = ("comment", "expire", "privsep")


def _bad(param: str, message: str) -> PveApiError:
    return PveApiError(400, "Parameter verification failed.", {param: message})


# --- reading the access configuration ---------------------------------------------------------------------


def find_user(model: ClusterModel, userid: str) -> dict[str, Any] | None:
    return next((u for u in model.users if u.get("userid") == userid), None)


def user(model: ClusterModel, userid: str) -> dict[str, Any]:
    row = find_user(model, userid)
    if row is None:
        raise PveApiError(500, f"no such user ('{userid}')")
    return row


def find_group(model: ClusterModel, groupid: str) -> dict[str, Any] | None:
    return next((g for g in model.groups if g.get("groupid") == groupid), None)


def find_role(model: ClusterModel, roleid: str) -> dict[str, Any] | None:
    return next((r for r in model.roles if r.get("roleid") == roleid), None)


def role_exists(model: ClusterModel, roleid: str) -> bool:
    """Built-in roles always exist; custom ones when /access/roles lists them (or was not read at all)."""
    return roleid in BUILTIN_ROLES or not model.roles or find_role(model, roleid) is not None


def tokens_of(row: dict[str, Any]) -> list[dict[str, Any]]:
    return list(row.get("tokens") or [])


def find_token(model: ClusterModel, userid: str, tokenid: str) -> dict[str, Any] | None:
    row = find_user(model, userid)
    return next((t for t in tokens_of(row) if t.get("tokenid") == tokenid), None) if row else None


def groups_of(model: ClusterModel, userid: str) -> list[str]:
    """The groups a user is in, as user.cfg's group lines say."""
    return sorted(str(g["groupid"]) for g in model.groups if userid in split_list(g.get("users")))


def _set_members(model: ClusterModel, groupid: str, members: Iterable[str]) -> None:
    group = find_group(model, groupid)
    if group is not None:
        group["users"] = ",".join(sorted(set(members)))


def _sync_user_groups(model: ClusterModel) -> None:
    """``/access/users?full=1`` shows each user's groups; user.cfg keeps them on the group lines."""
    for row in model.users:
        row["groups"] = ",".join(groups_of(model, str(row.get("userid"))))


def acl_entries(model: ClusterModel, kind: str, ugid: str) -> list[dict[str, Any]]:
    return [a for a in model.acl if a.get("type") == kind and a.get("ugid") == ugid]


def _drop_acl(model: ClusterModel, keep: Callable[[dict[str, Any]], bool]) -> None:
    model.acl[:] = [a for a in model.acl if keep(a)]


def grant_steps(entries: Iterable[dict[str, Any]]) -> list[Step]:
    """The PUT /access/acl calls that put these entries (as ``GET /access/acl`` lists them) back."""
    return [ApiCall("PUT", "/access/acl", {"path": a["path"], "roles": a["roleid"], KEY_OF_KIND[a["type"]]: a["ugid"],
                                           "propagate": as_int(a.get("propagate", 1))}) for a in entries]


# --- PUT /access/acl --------------------------------------------------------------------------------------


def update_acl(model: ClusterModel, call: Call) -> None:
    """ACL.pm update_acl: each role x subject is added, or with delete=1 removed."""
    p = call.params
    subjects = [(kind, ugid) for key, kind in KINDS for ugid in split_list(p.get(key))]
    if not subjects:
        raise PveApiError(400, "Parameter verification failed.",
                          {key: "either 'users', 'groups' or 'tokens' is required." for key, _ in KINDS})
    delete = as_int(p.get("delete", 0))
    path = normalize_path(str(p["path"]))
    if path is None or (not delete and not ACL_PATH_RE.match(path)):  # check_path only guards what is added
        raise _bad("path", f"invalid ACL path '{p['path']}'")
    roles = split_list(p.get("roles"))
    for role in roles:
        if not role_exists(model, role):
            raise _acl_failed(f"role '{role}' does not exist")
    # A snapshot without /access/groups (or users) cannot say who exists: only a known list refuses a name.
    for kind, ugid in subjects:
        if kind == "group" and model.groups and find_group(model, ugid) is None:
            raise _acl_failed(f"group '{ugid}' does not exist")
        if kind == "user" and model.users and find_user(model, ugid) is None:
            raise _acl_failed(f"user '{ugid}' does not exist")
        if kind == "token" and model.users:
            owner, name = split_tokenid(ugid) or ("", "")  # the schema's pve-tokenid-list format already refused others
            if find_user(model, owner) is None:
                raise _acl_failed(f"no such user ('{owner}')")
            if find_token(model, owner, name) is None:
                raise _acl_failed(f"no such token '{name}' for user '{owner}'")
    propagate = as_int(p.get("propagate", 1))
    for kind, ugid in subjects:
        for role in roles:
            _drop_acl(model, lambda a: not (a["path"] == path and a["type"] == kind and a["ugid"] == ugid and a["roleid"] == role))
            if not delete:
                model.acl.append({"path": path, "type": kind, "ugid": ugid, "roleid": role, "propagate": propagate})


def _acl_failed(message: str) -> PveApiError:
    """update_acl runs in lock_user_config(..., "ACL update failed"): a plain die there carries that prefix (an
    exception with a status is wrapped by under_user_config_lock)."""
    return PveApiError(500, f"ACL update failed: {message}")


def check_acl_update(model: ClusterModel, call: Call, caller: Caller) -> None:
    """ACL.pm update_acl: without Permissions.Modify on the path (``perm-modify`` also lets VM.Allocate,
    Datastore.Allocate and Pool.Allocate below /vms, /storage, /pool through), a role may be granted or
    removed only if the caller holds all its privileges there, propagated when the grant propagates; NoAccess
    always needs Permissions.Modify. PVE raises it inside the user.cfg lock (``ACL update failed: ...``)."""
    p = call.params
    path = normalize_path(str(p["path"]))
    delete = as_int(p.get("delete", 0))
    if path is None or not (delete or ACL_PATH_RE.match(path)) or not any(p.get(key) for key, _ in KINDS):
        return  # the parameter errors update_acl raises first (the semantics raise them)
    have = caller.permissions(path)
    if have is None or "Permissions.Modify" in have:
        return
    propagate = 1 if p.get("propagate") is None else (1 if as_int(p["propagate"]) else 0)
    verb = "remove" if delete else "add"
    roles = role_table(model)
    for role in split_list(p.get("roles")):
        if role not in roles:
            return  # "role does not exist" comes first
        for priv in sorted(roles[role]):
            if priv not in have:
                reason = f"Cannot {verb} role '{role}' - requires 'Permissions.Modify' or superset of privileges."
            elif propagate and have[priv] != propagate and not delete:  # only adding a propagating ACL can widen access
                reason = f"Cannot {verb} role '{role}' with propagation - requires 'Permissions.Modify' or propagated superset of privileges."
            else:
                continue
            raise under_user_config_lock("ACL update failed", _bad("role", reason))
        if role == "NoAccess":  # no privileges to compare: it needs Permissions.Modify
            raise under_user_config_lock("ACL update failed", _bad("role", f"Cannot {verb} role '{role}' - requires 'Permissions.Modify'"))


def acl_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    p = call.params
    path = normalize_path(str(p["path"])) or str(p["path"])
    delete = as_int(p.get("delete", 0))
    steps: list[Step] = []
    for key, kind in KINDS:
        for ugid in split_list(p.get(key)):
            for role in split_list(p.get("roles")):
                old = next((a for a in before.acl if a["path"] == path and a["type"] == kind and a["ugid"] == ugid and a["roleid"] == role), None)
                if old is not None:
                    steps += grant_steps([old])
                elif not delete:
                    steps.append(ApiCall("PUT", "/access/acl", {"path": path, "roles": role, key: ugid, "delete": 1}))
    return steps


# --- users ------------------------------------------------------------------------------------------------

_BUILTIN_REALMS = ("pam", "pve")


def _check_realm(model: ClusterModel, userid: str) -> None:
    """Realms (domains.cfg) are not in the model: accept pam, pve and realms existing users are in."""
    realm = userid.rpartition("@")[2]
    known = set(_BUILTIN_REALMS) | {str(u.get("userid", "")).rpartition("@")[2] for u in model.users}
    if realm not in known:
        raise PveApiError(500, f"domain '{realm}' does not exist")


def _check_groups(model: ClusterModel, groups: list[str]) -> None:
    for gid in groups:
        if find_group(model, gid) is None:
            raise PveApiError(500, f"no such group '{gid}'")


def _set_user_fields(row: dict[str, Any], params: dict[str, Any]) -> None:
    for key in USER_FIELDS:
        if key in params:
            if params[key] == "" and key != "keys":
                row.pop(key, None)  # PVE writes an empty field, which reads back as absent
            else:
                row[key] = params[key]


def create_user(model: ClusterModel, call: Call) -> None:
    p = call.params
    userid = str(p["userid"])
    if find_user(model, userid) is not None:
        raise PveApiError(500, f"create user failed: user '{userid}' already exists")
    _check_realm(model, userid)
    groups = split_list(p.get("groups"))
    _check_groups(model, groups)
    row: dict[str, Any] = {"userid": userid, "enable": 1, "expire": 0, "realm-type": _realm_type(model, userid), "tokens": None}
    _set_user_fields(row, p)
    model.users.append(row)  # the password goes to the realm (shadow/pam), not user.cfg: not modelled
    for gid in groups:
        _set_members(model, gid, [*split_list(find_group(model, gid).get("users")), userid])  # type: ignore[union-attr]
    _sync_user_groups(model)
    model.users.sort(key=lambda u: str(u.get("userid")))


def _realm_type(model: ClusterModel, userid: str) -> str:
    realm = userid.rpartition("@")[2]
    if realm in _BUILTIN_REALMS:
        return realm
    same = next((u for u in model.users if str(u.get("userid", "")).endswith(f"@{realm}")), {})
    return str(same.get("realm-type", realm))


def update_user(model: ClusterModel, call: Call) -> None:
    p = call.params
    userid = call.path_params["userid"]
    row = user(model, userid)
    if "groups" in p:
        groups = split_list(p["groups"])
        _check_groups(model, groups)
        if not as_int(p.get("append", 0)):
            for gid in groups_of(model, userid):
                _set_members(model, gid, [u for u in split_list(find_group(model, gid).get("users")) if u != userid])  # type: ignore[union-attr]
        for gid in groups:
            _set_members(model, gid, [*split_list(find_group(model, gid).get("users")), userid])  # type: ignore[union-attr]
    elif as_int(p.get("append", 0)):
        raise _bad("append", "parameter 'append' requires 'groups'")
    _set_user_fields(row, p)
    _sync_user_groups(model)


def delete_user(model: ClusterModel, call: Call) -> None:
    userid = call.path_params["userid"]
    row = user(model, userid)
    tokens = {f"{userid}!{t.get('tokenid')}" for t in tokens_of(row)}
    model.users.remove(row)
    for gid in groups_of(model, userid):
        _set_members(model, gid, [u for u in split_list(find_group(model, gid).get("users")) if u != userid])  # type: ignore[union-attr]
    _drop_acl(model, lambda a: not ((a["type"] == "user" and a["ugid"] == userid) or (a["type"] == "token" and a["ugid"] in tokens)))


def _create_user_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    return [ApiCall("DELETE", f"/access/users/{call.params['userid']}")]


def _update_user_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    userid = call.path_params["userid"]
    old = user(before, userid)
    params: dict[str, Any] = {}
    for key in USER_FIELDS:
        if key in call.params:
            params[key] = old.get(key, 0 if key in ("enable", "expire") else "")
    if "groups" in call.params:
        params["groups"] = ",".join(groups_of(before, userid))
    return [ApiCall("PUT", f"/access/users/{userid}", params)] if params else []


def recreate_user_steps(before: ClusterModel, userid: str) -> list[Step]:
    """Everything that puts a deleted user back: the user, its groups, its ACLs, its tokens (new secrets) and theirs."""
    old = user(before, userid)
    params: dict[str, Any] = {"userid": userid, **{k: old[k] for k in USER_FIELDS if old.get(k) not in (None, "")}}
    groups = groups_of(before, userid)
    if groups:
        params["groups"] = ",".join(groups)
    steps: list[Step] = [ApiCall("POST", "/access/users", params)]
    steps += grant_steps(acl_entries(before, "user", userid))
    for token in tokens_of(old):
        steps += recreate_token_steps(before, userid, str(token.get("tokenid")))
    return steps


def _delete_user_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    return recreate_user_steps(before, call.path_params["userid"])


def _delete_user_notes(before: ClusterModel, call: Call) -> list[str]:
    userid = call.path_params["userid"]
    row = find_user(before, userid)
    if row is None:
        return []
    notes = [f"Deleting {userid} also removes its group memberships, its ACL entries and its TFA entries (TFA is not modelled)."]
    tokens = [f"{userid}!{t.get('tokenid')}" for t in tokens_of(row)]
    if tokens:
        notes.append(f"Its API tokens are deleted with it: {', '.join(tokens)}. A deleted token cannot come back with the "
                     "same secret: the undo creates them again with NEW secrets, so whatever used the old ones stays locked out.")
    if userid.endswith("@pve"):
        notes.append(f"The undo cannot restore {userid}'s password (Proxmox keeps only its hash): set a new one after an undo.")
    return notes


# --- tokens -----------------------------------------------------------------------------------------------


def _token_path(call: Call) -> tuple[str, str]:
    return call.path_params["userid"], call.path_params["tokenid"]


def create_token(model: ClusterModel, call: Call) -> dict[str, Any]:
    userid, tokenid = _token_path(call)
    row = user(model, userid)
    if find_token(model, userid, tokenid) is not None:  # User.pm generate_token: raise_param_exc before the lock
        raise _bad("tokenid", "Token already exists.")
    p = call.params
    info: dict[str, Any] = {"privsep": as_int(p.get("privsep", 1)), "expire": as_int(p.get("expire", row.get("expire", 0)))}
    if p.get("comment"):
        info["comment"] = p["comment"]
    row["tokens"] = [*tokens_of(row), {"tokenid": tokenid, **info}]
    # The secret exists only in this answer: Proxmox stores its hash, Proximo stores nothing of it.
    return {"full-tokenid": f"{userid}!{tokenid}", "info": dict(info), "value": str(uuid.uuid4())}


def update_token(model: ClusterModel, call: Call) -> dict[str, Any]:
    userid, tokenid = _token_path(call)
    user(model, userid)
    token = find_token(model, userid, tokenid)
    if token is None:
        raise PveApiError(500, f"no such token '{tokenid}' for user '{userid}'")
    p = call.params
    for key in split_list(p.get("delete")):
        if key not in TOKEN_FIELDS:
            raise _bad("delete", f"invalid property '{key}'")
        token.pop(key, None)
    for key in TOKEN_FIELDS:
        if key in p:
            token[key] = p[key]
    return {k: v for k, v in token.items() if k != "tokenid"}


def delete_token(model: ClusterModel, call: Call) -> None:
    userid, tokenid = _token_path(call)
    row = user(model, userid)
    if find_token(model, userid, tokenid) is None:
        raise PveApiError(500, f"no such token '{tokenid}' for user '{userid}'")
    row["tokens"] = [t for t in tokens_of(row) if t.get("tokenid") != tokenid] or None
    full = f"{userid}!{tokenid}"
    _drop_acl(model, lambda a: not (a["type"] == "token" and a["ugid"] == full))


def recreate_token_steps(before: ClusterModel, userid: str, tokenid: str) -> list[Step]:
    token = find_token(before, userid, tokenid) or {}
    params = {k: token[k] for k in TOKEN_FIELDS if token.get(k) not in (None, "")}
    steps: list[Step] = [ApiCall("POST", f"/access/users/{userid}/token/{tokenid}", params)]
    return steps + grant_steps(acl_entries(before, "token", f"{userid}!{tokenid}"))


def _create_token_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    userid, tokenid = _token_path(call)
    return [ApiCall("DELETE", f"/access/users/{userid}/token/{tokenid}")]


def _update_token_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    userid, tokenid = _token_path(call)
    old = find_token(before, userid, tokenid)
    if old is None:
        return Irreversible(f"token {userid}!{tokenid} does not exist")
    changed = [k for k in TOKEN_FIELDS if k in call.params] + [k for k in split_list(call.params.get("delete")) if k in TOKEN_FIELDS]
    params: dict[str, Any] = {k: old[k] for k in changed if k in old}
    missing = sorted({k for k in changed if k not in old})
    if missing:
        params["delete"] = ",".join(missing)
    return [ApiCall("PUT", f"/access/users/{userid}/token/{tokenid}", params)] if params else []


def _delete_token_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    return recreate_token_steps(before, *_token_path(call))


def _delete_token_notes(before: ClusterModel, call: Call) -> list[str]:
    userid, tokenid = _token_path(call)
    return [f"A deleted token cannot come back with the same secret: the undo creates {userid}!{tokenid} again with a NEW "
            "secret (shown once when it is applied); whatever used the old secret stays locked out."]


def _create_token_notes(before: ClusterModel, call: Call) -> list[str]:
    userid, tokenid = _token_path(call)
    return [f"The secret of {userid}!{tokenid} is shown once, in the apply result, to the person who applies the plan; "
            "Proximo never writes it to the ledger or the plan store. Keep it then: it cannot be read again."]


# --- groups -----------------------------------------------------------------------------------------------


def create_group(model: ClusterModel, call: Call) -> None:
    groupid = str(call.params["groupid"])
    if find_group(model, groupid) is not None:
        raise PveApiError(500, f"create group failed: group '{groupid}' already exists")
    row: dict[str, Any] = {"groupid": groupid, "users": ""}
    if call.params.get("comment"):
        row["comment"] = call.params["comment"]
    model.groups.append(row)
    model.groups.sort(key=lambda g: str(g.get("groupid")))


def _group(model: ClusterModel, groupid: str, verb: str) -> dict[str, Any]:
    """Group.pm update_group / delete_group: refusals carry lock_user_config's "<verb> group failed" prefix."""
    row = find_group(model, groupid)
    if row is None:
        raise PveApiError(500, f"{verb} group failed: group '{groupid}' does not exist")
    return row


def update_group(model: ClusterModel, call: Call) -> None:
    row = _group(model, call.path_params["groupid"], "update")
    if "comment" in call.params:
        if call.params["comment"]:
            row["comment"] = call.params["comment"]
        else:
            row.pop("comment", None)


def delete_group(model: ClusterModel, call: Call) -> None:
    groupid = call.path_params["groupid"]
    model.groups.remove(_group(model, groupid, "delete"))
    _drop_acl(model, lambda a: not (a["type"] == "group" and a["ugid"] == groupid))
    _sync_user_groups(model)


def _create_group_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    return [ApiCall("DELETE", f"/access/groups/{call.params['groupid']}")]


def _update_group_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    old = _group(before, call.path_params["groupid"], "update")
    return [ApiCall("PUT", f"/access/groups/{old['groupid']}", {"comment": old.get("comment", "")})]


def _delete_group_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    old = _group(before, call.path_params["groupid"], "delete")
    params: dict[str, Any] = {"groupid": old["groupid"], **({"comment": old["comment"]} if old.get("comment") else {})}
    steps: list[Step] = [ApiCall("POST", "/access/groups", params)]
    for member in split_list(old.get("users")):
        if find_user(before, member) is not None:
            steps.append(ApiCall("PUT", f"/access/users/{member}", {"groups": old["groupid"], "append": 1}))
    return steps + grant_steps(acl_entries(before, "group", str(old["groupid"])))


# --- roles ------------------------------------------------------------------------------------------------


def _check_privs(model: ClusterModel, privs: list[str]) -> None:
    """Role.pm: each privilege must be one the cluster's release knows (8.4: VM.Monitor; 9.1: VM.GuestAgent.*)."""
    valid = builtin_roles(model)["Administrator"]
    for priv in privs:
        if priv not in valid:
            raise _bad("privs", f"invalid format - invalid privilege '{priv}'")


def create_role(model: ClusterModel, call: Call) -> None:
    roleid = str(call.params["roleid"])
    if role_exists(model, roleid):
        raise PveApiError(500, f"create role failed: role '{roleid}' already exists")
    privs = split_list(call.params.get("privs"))
    _check_privs(model, privs)
    model.roles.append({"roleid": roleid, "privs": ",".join(sorted(set(privs))), "special": 0})
    model.roles.sort(key=lambda r: str(r.get("roleid")))


def _custom_role(model: ClusterModel, roleid: str, action: Literal["update", "delete"]) -> dict[str, Any]:
    """Role.pm update_role / delete_role: built-in roles first, then the lookup inside lock_user_config."""
    if roleid in BUILTIN_ROLES:
        raise PveApiError(500, f"auto-generated role '{roleid}' cannot be {'modified' if action == 'update' else 'deleted'}")
    row = find_role(model, roleid)
    if row is None:
        raise PveApiError(500, f"{action} role failed: role '{roleid}' does not exist")
    return row


def update_role(model: ClusterModel, call: Call) -> None:
    row = _custom_role(model, call.path_params["roleid"], "update")
    privs = split_list(call.params.get("privs"))
    _check_privs(model, privs)
    if as_int(call.params.get("append", 0)):
        privs = [*split_list(row.get("privs")), *privs]
    row["privs"] = ",".join(sorted(set(privs)))


def delete_role(model: ClusterModel, call: Call) -> None:
    roleid = call.path_params["roleid"]
    model.roles.remove(_custom_role(model, roleid, "delete"))
    _drop_acl(model, lambda a: a["roleid"] != roleid)  # user.cfg drops ACL entries of unknown roles


def _create_role_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    return [ApiCall("DELETE", f"/access/roles/{call.params['roleid']}")]


def _update_role_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    old = _custom_role(before, call.path_params["roleid"], "update")
    return [ApiCall("PUT", f"/access/roles/{old['roleid']}", {"privs": old.get("privs", "")})]


def _delete_role_inverse(before: ClusterModel, call: Call) -> list[Step] | Irreversible:
    old = _custom_role(before, call.path_params["roleid"], "delete")
    steps: list[Step] = [ApiCall("POST", "/access/roles", {"roleid": old["roleid"], "privs": old.get("privs", "")})]
    return steps + grant_steps(a for a in before.acl if a["roleid"] == old["roleid"])


def register_all(register: Callable[..., None]) -> None:
    register("PUT", "/access/acl", update_acl, inverse=acl_inverse, check=check_acl_update)
    register("POST", "/access/users", create_user, inverse=_create_user_inverse)
    register("PUT", "/access/users/{userid}", update_user, inverse=_update_user_inverse)
    register("DELETE", "/access/users/{userid}", delete_user, inverse=_delete_user_inverse, notes=_delete_user_notes)
    register("POST", "/access/users/{userid}/token/{tokenid}", create_token, inverse=_create_token_inverse, notes=_create_token_notes)
    register("PUT", "/access/users/{userid}/token/{tokenid}", update_token, inverse=_update_token_inverse)
    register("DELETE", "/access/users/{userid}/token/{tokenid}", delete_token, inverse=_delete_token_inverse, notes=_delete_token_notes)
    register("POST", "/access/groups", create_group, inverse=_create_group_inverse)
    register("PUT", "/access/groups/{groupid}", update_group, inverse=_update_group_inverse)
    register("DELETE", "/access/groups/{groupid}", delete_group, inverse=_delete_group_inverse)
    register("POST", "/access/roles", create_role, inverse=_create_role_inverse)
    register("PUT", "/access/roles/{roleid}", update_role, inverse=_update_role_inverse)
    register("DELETE", "/access/roles/{roleid}", delete_role, inverse=_delete_role_inverse)
