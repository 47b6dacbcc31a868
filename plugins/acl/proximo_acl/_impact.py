"""Permission blast radius: effective privileges of every user and token, before and after, diffed.

Seen by every plan (``api.call`` and the named tools alike): privilege-gain / privilege-loss summarised by
privileges and paths; lockout (CRITICAL) when Proximo's own token loses what it needs or is disabled;
escalation grants (HIGH, and a person must approve); tokens that go with a deleted user. Proximo's own rules
block the plan whichever tool made it: deleting root@pam, deleting Proximo's own token or user, and leaving
nobody but root@pam with Permissions.Modify on ``/``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import msgspec

from proximo import Change, Impact, Risk
from proximo.model import ClusterModel, as_int
from proximo.model._access import ROOT, Access, split_tokenid

from ._needs import needed_privileges

ESCALATION_PRIVILEGES = frozenset({"Permissions.Modify", "Sys.Modify", "Realm.Allocate", "User.Modify"})
MAX_LISTED = 6  # paths and groups shown per line; the rest is counted
MAX_PRIVILEGES = 12


def _access_state(model: ClusterModel) -> bytes:
    pools = {pid: sorted((str(m.get("type")), str(m.get("vmid") or m.get("storage"))) for m in pool.get("members") or [])
             for pid, pool in model.pools.items()}
    return msgspec.json.encode([model.users, model.groups, model.roles, model.acl, pools], order="sorted")


def subjects(model: ClusterModel) -> list[str]:
    """Every user and token of the cluster but root@pam (which always has everything)."""
    out = []
    for row in model.users:
        userid = str(row.get("userid"))
        if userid == ROOT:
            continue
        out.append(userid)
        out += [f"{userid}!{t.get('tokenid')}" for t in row.get("tokens") or []]
    return out


def object_paths(model: ClusterModel) -> list[str]:
    """The permission paths of objects that exist: top levels, nodes, guests, storages, pools, groups, SDN zones."""
    paths = {"/", "/access", "/access/groups", "/access/realm", "/nodes", "/vms", "/storage", "/pool", "/sdn", "/mapping"}
    paths.update(f"/nodes/{n}" for n in model.nodes)
    paths.update(f"/vms/{v}" for v in model.guests)
    paths.update(f"/storage/{s}" for s in model.storages)
    paths.update(f"/pool/{p}" for p in model.pools)
    paths.update(f"/access/groups/{g.get('groupid')}" for g in model.groups)
    paths.update(str(a.get("path")) for a in model.acl if str(a.get("path", "")).startswith(("/sdn", "/mapping", "/access")))
    return sorted(paths)


def _enabled(model: ClusterModel, subject: str, now: int | None = None) -> bool:
    """Whether Proxmox would authenticate the subject: the user (and token) exist, are enabled, not expired."""
    now = int(time.time()) if now is None else now
    token = split_tokenid(subject)
    userid = token[0] if token else subject
    row = next((u for u in model.users if u.get("userid") == userid), None)
    if row is None or not as_int(row.get("enable", 1)):
        return False
    if 0 < as_int(row.get("expire")) < now:
        return False
    if token:
        info = next((t for t in row.get("tokens") or [] if t.get("tokenid") == token[1]), None)
        if info is None or 0 < as_int(info.get("expire")) < now:
            return False
    return True


def _target(subject: str) -> str:
    return f"token/{subject}" if split_tokenid(subject) else f"user/{subject}"


def _listing(items: list[str], limit: int = MAX_LISTED) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def _summary(changes: dict[str, set[str]]) -> str:
    """Group paths by the exact set of privileges that changed on them: 'VM.Allocate, VM.Audit on /vms/100, /vms/101'."""
    by_set: dict[tuple[str, ...], list[str]] = {}
    for path, privs in sorted(changes.items()):
        by_set.setdefault(tuple(sorted(privs)), []).append(path)
    parts = [f"{_listing(list(privs), MAX_PRIVILEGES)} on {_listing(paths)}" for privs, paths in sorted(by_set.items(), key=lambda kv: kv[1][0])]
    return "; ".join(parts[:MAX_LISTED]) + (f"; and {len(parts) - MAX_LISTED} more sets" if len(parts) > MAX_LISTED else "")


def _path_classes(old: Access, new: Access, paths: list[str]) -> dict[str, list[str]]:
    """Representative path -> the paths that must have the same privileges as it, for any subject.

    ``/vms/<id>``, ``/storage/<id>`` and ``/nodes/<name>`` with no ACL entry of their own and no pool membership
    (in either model) inherit exactly what their parent propagates, so one of them stands for all: a plan on a
    cluster with thousands of guests evaluates a handful of paths per subject, not thousands.
    """
    own = {"/" + "/".join(key) for access in (old, new) for key in access.acl}
    pooled = {p for access in (old, new) for vms, storages in access.pools.values()
              for p in [*(f"/vms/{v}" for v in vms), *(f"/storage/{s}" for s in storages)]}
    classes: dict[str, list[str]] = {}
    plain: dict[str, str] = {}
    for path in paths:
        parent, _, leaf = path.rpartition("/")
        if parent in ("/vms", "/storage", "/nodes") and path not in own and path not in pooled:
            rep = plain.setdefault(parent, path)
            classes.setdefault(rep, []).append(path)
        else:
            classes.setdefault(path, []).append(path)
    return classes


def _diff(old: _Evaluator, new: _Evaluator, subject: str, classes: dict[str, list[str]]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    gained: dict[str, set[str]] = {}
    lost: dict[str, set[str]] = {}
    for rep, members in classes.items():
        was = set(old.privileges_of(subject, rep)) if subject in old.known else set()
        now = set(new.privileges_of(subject, rep)) if subject in new.known else set()
        for path in members:
            if now - was:
                gained[path] = now - was
            if was - now:
                lost[path] = was - now
    return gained, lost


class _Evaluator(Access):
    def __init__(self, model: ClusterModel) -> None:
        super().__init__(model)
        self.known = set(subjects(model))

    def inputs(self, subject: str) -> bytes:
        """Everything the subject's privileges depend on: when it is equal before and after, nothing changed for it."""
        token = split_tokenid(subject)
        owner = token[0] if token else subject
        names = {("users", owner), ("tokens", subject)} | {("groups", g) for g, members in self.members.items() if owner in members}
        entries = sorted((key, kind, ugid, sorted(node[kind][ugid].items())) for key, node in self.acl.items()
                         for kind, ugid in names if ugid in node[kind])
        roles = sorted({role for *_, granted in entries for role, _ in granted})
        pools = sorted((p, sorted(v), sorted(s)) for p, (v, s) in self.pools.items()) if any(e[0][:1] == ("pool",) for e in entries) else []
        info = (self.users.get(owner, {}).get("enable"), self.users.get(owner, {}).get("expire"), self.tokens.get(subject))
        return msgspec.json.encode([entries, [(r, sorted(self.roles.get(r, ()))) for r in roles], pools, info,
                                    subject in self.known], order="sorted")


def privilege_impacts(change: Change, before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    old, new = _Evaluator(before), _Evaluator(after)
    classes = _path_classes(old, new, sorted(set(object_paths(before)) & set(object_paths(after))))
    for subject in sorted(old.known | new.known):
        if old.inputs(subject) == new.inputs(subject):
            continue
        gained, lost = _diff(old, new, subject, classes)
        if gained:
            escalation = sorted(set().union(*gained.values()) & ESCALATION_PRIVILEGES)
            if escalation:
                yield Impact(_target(subject), "privilege-gain",
                             f"ESCALATION ({', '.join(escalation)}): gains {_summary(gained)}", risk=Risk.HIGH, needs_person=True)
            else:
                yield Impact(_target(subject), "privilege-gain", f"gains {_summary(gained)}")
        if subject not in new.known:  # a deleted user, or a token deleted (alone or with its user): always listed
            token = split_tokenid(subject)
            gone = ("deleted with its user" if token[0] not in new.known else "deleted") if token else "deleted"
            if lost:
                yield Impact(_target(subject), "privilege-loss", f"{gone}; loses {_summary(lost)}")
            else:  # listed, but nobody loses anything through it: no more than the change itself
                yield Impact(_target(subject), "privilege-loss", f"{gone}; it had no privileges", risk=Risk.MEDIUM)
        elif lost:
            yield Impact(_target(subject), "privilege-loss", f"loses {_summary(lost)}")
    yield from _escalating_grants(before, after, new)
    yield from _lockout(change, before, after, old, new)
    yield from _root_deleted(before, after)


def _escalating_grants(before: ClusterModel, after: ClusterModel, new: Access) -> Iterator[Impact]:
    """An ACL entry granting Administrator or an escalation privilege, even to a group nobody is in yet."""
    def key(a: dict[str, Any]) -> tuple[str, str, str, str, int]:
        return (str(a.get("path")), str(a.get("type")), str(a.get("ugid")), str(a.get("roleid")), as_int(a.get("propagate", 1)))

    old_entries = {key(a) for a in before.acl}
    for entry in after.acl:
        path, kind, ugid, role, propagate = key(entry)
        if (path, kind, ugid, role, propagate) in old_entries:
            continue
        dangerous = sorted(new.roles.get(role, frozenset()) & ESCALATION_PRIVILEGES)
        if role == "Administrator" or dangerous:
            what = "the Administrator role" if role == "Administrator" else f"role {role} ({', '.join(dangerous)})"
            yield Impact(f"{kind}/{ugid}", "privilege-gain",
                         f"ESCALATION: grant of {what} on {path}{' (propagating)' if propagate else ''}", risk=Risk.HIGH, needs_person=True)


def _lockout(change: Change, before: ClusterModel, after: ClusterModel, old: _Evaluator, new: _Evaluator) -> Iterator[Impact]:
    me = change.operator.token_id
    owner = me.partition("!")[0]
    if me and (me in old.known or owner in old.known):
        if owner in old.known and owner not in new.known:
            # Proximo's own rules (blocks): it could not act afterwards, not even to undo, and its ledger's actor is gone
            yield Impact(f"user/{owner}", "lockout", f"Proximo's own user {owner} is deleted, and its token {me} with it: "
                         f"{_SELF_DELETE}", blocks=True)
        elif me in old.known and me not in new.known:
            yield Impact(_target(me), "lockout", f"Proximo's own token {me} is deleted: {_SELF_DELETE}", blocks=True)
        elif not _enabled(after, me) and _enabled(before, me):
            # Disabling or expiring keeps the token and its secret: a person can enable it again in Proxmox.
            yield Impact(_target(me), "lockout", f"Proximo's own token {me} can no longer authenticate (disabled or expired)")
        else:
            needs = needed_privileges(before)
            missing: dict[str, set[str]] = {}
            for path, privs in needs.items():
                gone = (set(privs) & set(old.privileges_of(me, path))) - set(new.privileges_of(me, path))
                if gone:
                    missing[path] = gone
            if missing:
                yield Impact(_target(me), "lockout", f"Proximo's own token {me} loses what it needs to keep managing: {_summary(missing)}")
    holders_before = [s for s in sorted(old.known) if _enabled(before, s) and "Permissions.Modify" in old.privileges_of(s, "/")]
    holders_after = [s for s in sorted(new.known) if _enabled(after, s) and "Permissions.Modify" in new.privileges_of(s, "/")]
    if holders_before and not holders_after:
        yield Impact(f"user/{ROOT}", "lockout",
                     f"nobody but root@pam would keep Permissions.Modify on / (had it: {_listing(holders_before)}): only a root@pam "
                     "login could manage permissions afterwards, so Proximo does not make this change", blocks=True)


_SELF_DELETE = ("Proximo could not act afterwards, not even to undo this, and its ledger would name an actor that no longer "
                "exists; do this in Proxmox itself (GUI or pveum), not through Proximo")


def _root_deleted(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """User.pm delete_user does not spare root@pam: user.cfg recreates it bare (userconfig_force_defaults, AccessControl.pm),
    without its TFA, tokens, ACL entries and group memberships. Proximo's own rule: never through Proximo."""
    if any(u.get("userid") == ROOT for u in before.users) and not any(u.get("userid") == ROOT for u in after.users):
        yield Impact(f"user/{ROOT}", "lockout", "root@pam cannot be deleted through Proximo: Proxmox would recreate it bare, "
                     "without its TFA, API tokens, ACL entries and group memberships", blocks=True)


def dropped_with_their_object(before: ClusterModel, after: ClusterModel) -> Iterator[Impact]:
    """ACL entries and pool memberships that go with a guest or storage that goes (remove_vm_access, and
    remove_storage_access in pve-access-control AccessControl.pm): the privilege diff cannot show them, since
    it compares the paths of objects that exist."""
    kept = {(a.get("path"), a.get("type"), a.get("ugid"), a.get("roleid")) for a in after.acl}
    for entry in before.acl:
        path = str(entry.get("path", ""))
        gone = (path.startswith("/vms/") and as_int(path[5:], -1) not in after.guests) or (
            path.startswith("/storage/") and path[9:] not in after.storages)
        if gone and (entry.get("path"), entry.get("type"), entry.get("ugid"), entry.get("roleid")) not in kept:
            subject = str(entry.get("ugid"))
            target = _target(subject) if entry.get("type") != "group" else f"group/{subject}"
            # on an object that is gone: nothing that still exists becomes unreachable
            yield Impact(target, "privilege-loss", f"the ACL entry {entry.get('roleid')} on {path} is removed with its object",
                         risk=Risk.MEDIUM)
    for pid, pool in sorted(before.pools.items()):
        members = {str(m.get("id")) for m in pool.get("members", [])}
        remaining = {str(m.get("id")) for m in after.pools.get(pid, {}).get("members", [])}
        for member in sorted(members - remaining):
            kind, _, ident = member.partition("/")
            if (kind in ("qemu", "lxc") and as_int(ident, -1) not in after.guests) or (kind == "storage" and ident.rpartition("/")[2] not in after.storages):
                yield Impact(f"pool/{pid}", "privilege-loss", f"{member} leaves pool {pid} with its removal: the pool's ACLs no longer reach it",
                             risk=Risk.MEDIUM)


def acl_impacts(change: Change, before: ClusterModel, after: ClusterModel) -> list[Impact]:
    if _access_state(before) == _access_state(after):
        return []  # nothing that decides a privilege changed (users, groups, roles, ACL, pool members)
    return [*privilege_impacts(change, before, after), *dropped_with_their_object(before, after)]
