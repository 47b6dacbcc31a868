"""The access tools: reads answered from the model, and plans whose parameters mirror PVE's /access endpoints."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from proximo import ApiCall, BadInput, Draft, plan_tool, read_tool, tool_table
from proximo.model import ClusterModel, render, split_list
from proximo.model._access import ACL_PATH_RE, ROOT, Access, normalize_path, split_tokenid
from proximo.params import api_params, described, struct_from_schema

from . import _semantics as sem
from ._needs import TOOL_ROUTES, doctor

# Ids the tools accept: PVE's rules, narrowed to characters that are safe in a URL path segment unquoted
# (PVE's user part allows anything but blanks, ':' and '/'; use api.call for the exotic ones).
_USER_PART = r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*"
_REALM = r"[A-Za-z][A-Za-z0-9._-]+"
_NAME = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"
USERID = re.compile(rf"^{_USER_PART}@{_REALM}$")
TOKENID = re.compile(rf"^{_USER_PART}@{_REALM}![A-Za-z][A-Za-z0-9._-]+$")
NAME = re.compile(rf"^{_NAME}$")

Subject = Annotated[str, msgspec.Meta(pattern=rf"^{_USER_PART}@{_REALM}(![A-Za-z][A-Za-z0-9._-]+)?$", max_length=128,
                                      description="a user id (user@realm) or a token id (user@realm!token)")]
AclPath = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9./_-]*$", max_length=512, description="a permission path, e.g. /vms/100")]

AclGrantParams = struct_from_schema("AclGrantParams", "PUT", "/access/acl", exclude=("delete",))
AclRevokeParams = struct_from_schema("AclRevokeParams", "PUT", "/access/acl", exclude=("delete", "propagate"))
# What PVE's API schema leaves undescribed (its standard formats carry no text), for the tools' JSON schemas.
_ACCESS_FIELDS = {
    "comment": "Free-form comment", "email": "E-mail address", "firstname": "First name", "lastname": "Last name",
    "groups": "Groups the user is in, comma-separated", "groupid": "Group id", "roleid": "Role id",
    "privs": "Privileges, comma-separated (e.g. VM.Audit,VM.PowerMgmt)",
    "append": "Add to the existing groups or privileges instead of replacing them",
}


def _access(struct: Any) -> Any:
    return described(struct, fields=_ACCESS_FIELDS)


UserCreateParams = _access(struct_from_schema("UserCreateParams", "POST", "/access/users", exclude=("password",)))
UserUpdateParams = _access(struct_from_schema("UserUpdateParams", "PUT", "/access/users/{userid}"))
UserRef = struct_from_schema("UserRef", "DELETE", "/access/users/{userid}")
GroupCreateParams = _access(struct_from_schema("GroupCreateParams", "POST", "/access/groups"))
GroupUpdateParams = _access(struct_from_schema("GroupUpdateParams", "PUT", "/access/groups/{groupid}"))
GroupRef = _access(struct_from_schema("GroupRef", "DELETE", "/access/groups/{groupid}"))
RoleCreateParams = _access(struct_from_schema("RoleCreateParams", "POST", "/access/roles"))
RoleUpdateParams = _access(struct_from_schema("RoleUpdateParams", "PUT", "/access/roles/{roleid}"))
RoleRef = _access(struct_from_schema("RoleRef", "DELETE", "/access/roles/{roleid}"))
TokenCreateParams = _access(struct_from_schema("TokenCreateParams", "POST", "/access/users/{userid}/token/{tokenid}"))
TokenUpdateParams = _access(struct_from_schema("TokenUpdateParams", "PUT", "/access/users/{userid}/token/{tokenid}"))
TokenRef = struct_from_schema("TokenRef", "DELETE", "/access/users/{userid}/token/{tokenid}")


class NoParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class AclListParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    path: AclPath | None = None
    ugid: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class TokensParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    userid: Subject | None = None


class PermissionsParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    subject: Subject
    path: AclPath = "/"


class DoctorParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    subject: Subject | None = None  # default: Proximo's own token (PROXIMO_TOKEN_ID)
    tools: list[Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_.]*$", max_length=64)]] | None = None


described(AclListParams, fields={"ugid": "Only entries for this user, group or token"})
described(DoctorParams, fields={"tools": "Tool ids to check (default: every tool)"})


# --- input checks ---------------------------------------------------------------------------------------------


def _id(kind: str, value: str, rx: re.Pattern[str]) -> str:  # the ids a tool accepts, before any lookup
    if not rx.match(value):
        raise BadInput(f"{kind} {value!r} is not valid (letters, digits, '.', '_', '-'; see `proximo read access.{kind}s`)")
    return value


def _existing(kind: str, value: str, rx: re.Pattern[str], find: Callable[[str], dict[str, Any] | None]) -> dict[str, Any]:
    row = find(_id(kind, value, rx))
    if row is None:
        raise BadInput(f"{kind} '{value}' does not exist (see `proximo read access.{kind}s`)")
    return row


def _existing_user(view: ClusterModel, userid: str) -> dict[str, Any]:
    return _existing("user", userid, USERID, lambda v: sem.find_user(view, v))


def _existing_group(view: ClusterModel, groupid: str) -> dict[str, Any]:
    return _existing("group", groupid, NAME, lambda v: sem.find_group(view, v))


def _existing_token(view: ClusterModel, userid: str, tokenid: str) -> dict[str, Any]:
    _existing_user(view, userid)
    _id("token", tokenid, NAME)
    return _existing("token", f"{userid}!{tokenid}", re.compile(".*"), lambda v: sem.find_token(view, userid, tokenid))


def _acl_params(p: Any, view: ClusterModel) -> dict[str, Any]:
    params = api_params(p)
    path = normalize_path(str(params["path"]))
    if path is None or not ACL_PATH_RE.match(path):
        raise BadInput(f"'{params['path']}' is not a permission path Proxmox accepts (/, /vms/ID, /storage/ID, /pool/ID, /nodes/NODE, /access/..., /sdn/..., /mapping/...)")
    params["path"] = path
    subjects = [(key, ugid) for key, _ in sem.KINDS for ugid in split_list(params.get(key))]
    if not subjects:
        raise BadInput("name at least one of users=, groups=, tokens=")
    for key, ugid in subjects:
        if key == "users":
            _existing_user(view, ugid)
        elif key == "groups":
            _existing_group(view, ugid)
        else:
            if not TOKENID.match(ugid):
                raise BadInput(f"token {ugid!r} is not a token id (user@realm!token)")
            owner, name = split_tokenid(ugid) or ("", "")
            _existing_token(view, owner, name)
    for role in split_list(params.get("roles")):
        _id("role", role, NAME)
        if not sem.role_exists(view, role):
            raise BadInput(f"role '{role}' does not exist (see `proximo read access.roles`)")
    return params


# --- reads ----------------------------------------------------------------------------------------------------


def read_users(p: NoParams, view: ClusterModel) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "tokens"} | {"tokens": [t.get("tokenid") for t in row.get("tokens") or []]}
            for row in render(view, "/access/users?full=1")]


def read_tokens(p: TokensParams, view: ClusterModel) -> list[dict[str, Any]]:
    if p.userid is not None:
        _existing_user(view, p.userid)
    rows = []
    for user in view.users:
        if p.userid is None or user.get("userid") == p.userid:
            for token in user.get("tokens") or []:
                rows.append({"tokenid": f"{user.get('userid')}!{token.get('tokenid')}", "userid": user.get("userid"),
                             **{k: v for k, v in token.items() if k != "tokenid"}})
    return rows


def read_roles(p: NoParams, view: ClusterModel) -> list[dict[str, Any]]:
    access = Access(view)
    listed = {str(r.get("roleid")): r for r in view.roles}
    return [listed.get(rid) or {"roleid": rid, "privs": ",".join(sorted(privs)), "special": 1}
            for rid, privs in sorted(access.roles.items())]


def read_acl(p: AclListParams, view: ClusterModel) -> list[dict[str, Any]]:
    return [a for a in render(view, "/access/acl")
            if (p.path is None or a.get("path") == p.path) and (p.ugid is None or a.get("ugid") == p.ugid)]


LIVE_PERMISSIONS = "/access/permissions"


def live_paths(p: Any, view: Any = None) -> list[str]:
    """What the host reads live for ``access.permissions``: Proxmox's own answer for the subject and path."""
    return [f"{LIVE_PERMISSIONS}?userid={p.subject}&path={p.path}"] if p.path else [f"{LIVE_PERMISSIONS}?userid={p.subject}"]


def read_permissions(p: PermissionsParams, view: ClusterModel) -> dict[str, Any]:
    access = Access(view)
    token = split_tokenid(p.subject)
    if p.subject != ROOT and (p.subject not in access.tokens if token else p.subject not in access.users):
        raise BadInput(f"{'token' if token else 'user'} '{p.subject}' does not exist (see `proximo read access.{'tokens' if token else 'users'}`)")
    roles = access.roles_of(p.subject, p.path)
    effective = access.effective_roles(p.subject, p.path)
    privileges = sorted(access.privileges_of(p.subject, p.path))
    answer: dict[str, Any] = {
        "subject": p.subject, "path": p.path, "roles": sorted(roles),
        "pool_roles": sorted(set(effective) - set(roles)), "privileges": privileges,
    }
    if token is not None:
        info = access.tokens[p.subject]
        answer["privsep"] = int(info.get("privsep", 1) or 0)
    live_path = live_paths(p)[0]
    if live_path in view.other:
        pve = sorted((view.other[live_path] or {}).get(p.path, {}))
        answer["proxmox"] = pve
        answer["agrees_with_proxmox"] = pve == privileges
        if pve != privileges:
            answer["disagreement"] = (f"Proxmox says {', '.join(pve) or 'nothing'}; the model computes {', '.join(privileges) or 'nothing'}"
                                      " (the model may be missing ACL entries the token cannot list)")
    elif live_path in view.extra:
        answer["proxmox"] = None
        answer["proxmox_unavailable"] = str(view.extra[live_path].get("error"))
    return answer


def read_doctor(p: DoctorParams, view: ClusterModel, operator_token: str) -> dict[str, Any]:
    subject = p.subject or operator_token
    if not subject:
        raise BadInput("access.doctor: no subject: set PROXIMO_TOKEN_ID (or --token-id), or pass subject=user@realm!token")
    result = doctor(view, subject, sorted(p.tools) if p.tools is not None else sorted(TOOL_ROUTES))
    if not result["known"]:
        raise BadInput(f"{subject} is not a user or token of this cluster (see `proximo read access.tokens`)")
    live = view.other.get(LIVE_PERMISSIONS)  # what Proxmox says about the token Proximo runs as
    if live is not None and subject == operator_token:
        result["proxmox_on_root"] = sorted((live or {}).get("/", {}))
    return result


# --- plans ----------------------------------------------------------------------------------------------------


def plan_acl_grant(p: Any, view: ClusterModel) -> Draft:
    params = _acl_params(p, view)
    return Draft(steps=[ApiCall("PUT", "/access/acl", params)], target=params["path"])


def plan_acl_revoke(p: Any, view: ClusterModel) -> Draft:
    params = _acl_params(p, view)
    present = [(key, ugid, role) for key, kind in sem.KINDS for ugid in split_list(params.get(key)) for role in split_list(params["roles"])
               if any(a["path"] == params["path"] and a["type"] == kind and a["ugid"] == ugid and a["roleid"] == role for a in view.acl)]
    if not present:
        raise BadInput(f"no such ACL entry on {params['path']}: nothing to revoke (see `proximo read access.acl path={params['path']}`)")
    return Draft(steps=[ApiCall("PUT", "/access/acl", {**params, "delete": 1})], target=params["path"])


def plan_user_create(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    _id("user", params["userid"], USERID)
    if sem.find_user(view, params["userid"]) is not None:
        raise BadInput(f"user '{params['userid']}' already exists")
    for gid in split_list(params.get("groups")):
        _existing_group(view, gid)
    return Draft(steps=[ApiCall("POST", "/access/users", params)], target=params["userid"],
                 notes=["No password is set through Proximo (it would sit in the plan): set one with `pveum passwd` if the realm needs it."])


def _put(tool: str, path: str, params: dict[str, Any], target: str, hint: str = "") -> Draft:
    """An update of one object: refused when it would change nothing."""
    if not params:
        raise BadInput(f"{tool}: nothing to change{hint}")
    return Draft(steps=[ApiCall("PUT", path, params)], target=target)


def plan_user_update(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    userid = params.pop("userid")
    _existing_user(view, userid)
    for gid in split_list(params.get("groups")):
        _existing_group(view, gid)
    return _put("access.user.update", f"/access/users/{userid}", params, userid)


def plan_user_delete(p: Any, view: ClusterModel) -> Draft:
    _existing_user(view, p.userid)  # root@pam, Proximo's own user, the last Permissions.Modify holder: _impact.py blocks them
    return Draft(steps=[ApiCall("DELETE", f"/access/users/{p.userid}")], target=p.userid)


def plan_group_create(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    _id("group", params["groupid"], NAME)
    if sem.find_group(view, params["groupid"]) is not None:
        raise BadInput(f"group '{params['groupid']}' already exists")
    return Draft(steps=[ApiCall("POST", "/access/groups", params)], target=params["groupid"])


def plan_group_update(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    groupid = params.pop("groupid")
    _existing_group(view, groupid)
    return _put("access.group.update", f"/access/groups/{groupid}", params, groupid,
                " (comment=...); members change with access.user.update groups=...")


def plan_group_delete(p: Any, view: ClusterModel) -> Draft:
    _existing_group(view, p.groupid)
    return Draft(steps=[ApiCall("DELETE", f"/access/groups/{p.groupid}")], target=p.groupid)


def _custom_role(view: ClusterModel, roleid: str) -> None:
    _id("role", roleid, NAME)
    if roleid in sem.BUILTIN_ROLES:
        raise BadInput(f"role '{roleid}' is built in: Proxmox does not let it change")
    if sem.find_role(view, roleid) is None:
        raise BadInput(f"role '{roleid}' does not exist (see `proximo read access.roles`)")


def plan_role_create(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    _id("role", params["roleid"], NAME)
    if sem.role_exists(view, params["roleid"]):
        raise BadInput(f"role '{params['roleid']}' already exists")
    return Draft(steps=[ApiCall("POST", "/access/roles", params)], target=params["roleid"])


def plan_role_update(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    roleid = params.pop("roleid")
    _custom_role(view, roleid)
    if "privs" not in params:
        raise BadInput("access.role.update: give privs=...")
    return Draft(steps=[ApiCall("PUT", f"/access/roles/{roleid}", params)], target=roleid)


def plan_role_delete(p: Any, view: ClusterModel) -> Draft:
    _custom_role(view, p.roleid)
    return Draft(steps=[ApiCall("DELETE", f"/access/roles/{p.roleid}")], target=p.roleid)


def plan_token_create(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    userid, tokenid = params.pop("userid"), params.pop("tokenid")
    _existing_user(view, userid)
    _id("token", tokenid, NAME)
    if sem.find_token(view, userid, tokenid) is not None:
        raise BadInput(f"token '{userid}!{tokenid}' already exists")
    return Draft(steps=[ApiCall("POST", f"/access/users/{userid}/token/{tokenid}", params)], target=f"{userid}!{tokenid}")


def plan_token_update(p: Any, view: ClusterModel) -> Draft:
    params = api_params(p)
    userid, tokenid = params.pop("userid"), params.pop("tokenid")
    _existing_token(view, userid, tokenid)
    return _put("access.token.update", f"/access/users/{userid}/token/{tokenid}", params, f"{userid}!{tokenid}")


def plan_token_delete(p: Any, view: ClusterModel) -> Draft:
    _existing_token(view, p.userid, p.tokenid)
    return Draft(steps=[ApiCall("DELETE", f"/access/users/{p.userid}/token/{p.tokenid}")], target=f"{p.userid}!{p.tokenid}")





TOOLS = tool_table(
    read_tool("access.users", "Users", "Users with their groups and token names (GET /access/users?full=1).", NoParams, read_users,
              columns=("userid", "enable", "groups", "expire", "tokens")),
    read_tool("access.groups", "Groups", "Groups and their members (GET /access/groups).", NoParams, lambda p, v: render(v, "/access/groups")),
    read_tool("access.roles", "Roles", "Built-in and custom roles with their privileges (GET /access/roles).", NoParams, read_roles),
    read_tool("access.acl", "ACL", "ACL entries (GET /access/acl), optionally on one path or for one user/group/token.", AclListParams, read_acl),
    read_tool("access.tokens", "API tokens", "API tokens with privilege separation and expiry; never their secrets.", TokensParams, read_tokens),
    msgspec.structs.replace(read_tool(
        "access.permissions", "Effective permissions",
        "The roles and effective privileges of a user or token on a path, computed as Proxmox does (pools, groups, "
        "privilege separation, NoAccess); live, also Proxmox's own GET /access/permissions, and whether they agree.",
        PermissionsParams, read_permissions), live_reads=live_paths),
    # run=None: this read needs to know whose token Proximo's is, which only the pack's proximo_read is told.
    msgspec.structs.replace(read_tool(
        "access.doctor", "Doctor: can Proximo's token do its job?",
        "Checks that Proximo's token (or subject=) has the privileges each tool needs (from the PVE 9.1 schema), names "
        "every missing privilege and path, the privilege-separation trap, and the pveum command that fixes it.",
        DoctorParams, read_doctor), run=None, live_reads=lambda p, view: [LIVE_PERMISSIONS]),
    plan_tool("access.acl.grant", "Plan: grant a role", "Plan PUT /access/acl: give users/groups/tokens a role on a path.",
          AclGrantParams, plan_acl_grant),
    plan_tool("access.acl.revoke", "Plan: revoke a role", "Plan PUT /access/acl delete=1: take a role on a path away.",
          AclRevokeParams, plan_acl_revoke),
    plan_tool("access.user.create", "Plan: create a user", "Plan POST /access/users (no password: set it with pveum passwd).",
          UserCreateParams, plan_user_create),
    plan_tool("access.user.update", "Plan: update a user", "Plan PUT /access/users/{userid}: enable, expire, groups (append=1 adds), ...",
          UserUpdateParams, plan_user_update),
    plan_tool("access.user.delete", "Plan: delete a user", "Plan DELETE /access/users/{userid}: its tokens, ACL entries and memberships go too.",
          UserRef, plan_user_delete),
    plan_tool("access.group.create", "Plan: create a group", "Plan POST /access/groups.", GroupCreateParams, plan_group_create),
    plan_tool("access.group.update", "Plan: update a group", "Plan PUT /access/groups/{groupid} (its comment).", GroupUpdateParams, plan_group_update),
    plan_tool("access.group.delete", "Plan: delete a group", "Plan DELETE /access/groups/{groupid}: memberships and its ACL entries go.",
          GroupRef, plan_group_delete),
    plan_tool("access.role.create", "Plan: create a role", "Plan POST /access/roles.", RoleCreateParams, plan_role_create),
    plan_tool("access.role.update", "Plan: update a role", "Plan PUT /access/roles/{roleid}: every holder's privileges change.",
          RoleUpdateParams, plan_role_update),
    plan_tool("access.role.delete", "Plan: delete a role", "Plan DELETE /access/roles/{roleid}: ACL entries naming it go.",
          RoleRef, plan_role_delete),
    plan_tool("access.token.create", "Plan: create an API token",
          "Plan POST /access/users/{userid}/token/{tokenid}; the secret is shown once when applied, never stored.",
          TokenCreateParams, plan_token_create),
    plan_tool("access.token.update", "Plan: update an API token", "Plan PUT /access/users/{userid}/token/{tokenid}: privsep, expire, comment.",
          TokenUpdateParams, plan_token_update),
    plan_tool("access.token.delete", "Plan: delete an API token",
          "Plan DELETE /access/users/{userid}/token/{tokenid}; an undo makes a new token with a NEW secret.", TokenRef, plan_token_delete),
)

assert set(TOOL_ROUTES) >= {t for t, tool in TOOLS.items() if tool.mutating}, "a mutating tool has no declared routes"
