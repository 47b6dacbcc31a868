"""One rule for every path: whatever a named tool refuses, its ``api.call`` twin (the same steps) is refused too.

``REFUSALS`` lists every refusal a named tool makes: each ``raise BadInput`` in a pack's ``_tools.py`` that a
``plan_*`` function reaches (``site``: pack, function, a fragment of its message), and the rules that live only in an
analyser (``site=None``). Its kind says where the rule lives:

- ``a`` Proxmox refuses the call itself: the pack's semantics raise PveApiError as Proxmox answers (its source is
  named in ``rule``), so the predictor blocks the twin ("Proxmox would refuse: ..."), or the host turns Proxmox's
  400 into BadInput.
- ``b`` Proximo's own safety rule: an analyser blocks the plan, with the same reason whichever tool made the steps.
- ``c`` the tool's own check of its parameters: Proxmox's parameter verification (or the API's paths) refuses the
  twin too, or Proxmox accepts the twin and it is harmless (``Accepted`` says what its plan reports, and ``rule`` why).

``test_every_refusal_site_is_listed`` parses every pack's ``_tools.py`` so the table cannot fall behind the code.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, NamedTuple

import pytest

from proximo import BadInput, Plan
from proximo.model import FirewallGroup
from proximo.testing import TOKEN_ID, World

pytestmark = pytest.mark.anyio

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Pve(NamedTuple):
    """Proxmox answers the twin with this status and text (a 400 or 501 reaches the caller as BadInput)."""

    status: int
    text: str


class Rule(NamedTuple):
    """Proximo's own rule: an analyser blocks the twin with the named tool's blocker, which contains ``fragment``."""

    fragment: str


class Accepted(NamedTuple):
    """Proxmox accepts the twin; its plan is not blocked and reports exactly these effects (none: a no-op)."""

    effects: tuple[str, ...] = ()


Expect = Pve | Rule | Accepted


class Refusal(NamedTuple):
    kind: Literal["a", "b", "c"]
    site: tuple[str, str, str] | None  # (pack, function in _tools.py, fragment of its message); None: an analyser's rule
    rule: str  # where the rule lives now; for kind a, Proxmox's file and sub; for an accepted twin, why that is fine
    tool: str
    params: dict[str, Any]
    twins: list[tuple[dict[str, Any], Expect]]  # api.call params, and what comes of them
    setup: Callable[[World], None] | None = None  # a change to the demo cluster first


def _api(method: str, path: str, /, **params: Any) -> dict[str, Any]:
    return {"method": method, "path": path, "params": params}


# --- clusters the rules need, made from the demo cluster -------------------------------------------------------


def _alice_sole_permissions_modify(world: World) -> None:
    """Only alice@pve (through group admins, with a custom role) holds Permissions.Modify on /. Proximo's token holds
    everything else (deleting a user or group, or changing a role, needs no Permissions.Modify in Proxmox)."""
    model = world.model
    administrator = next(r for r in model.roles if r["roleid"] == "Administrator")["privs"].split(",")
    model.roles.append({"roleid": "Delegator", "privs": "Permissions.Modify,Sys.Audit", "special": 0})
    model.roles.append({"roleid": "OpsAdmin", "privs": ",".join(p for p in administrator if p != "Permissions.Modify"),
                        "special": 0})
    model.acl[:] = [a for a in model.acl if not (a["path"] == "/" and a["roleid"] == "Administrator")]
    model.acl.append({"path": "/", "type": "group", "ugid": "admins", "roleid": "Delegator", "propagate": 1})
    for kind, ugid in (("user", "proximo@pve"), ("token", "proximo@pve!agent")):
        model.acl.append({"path": "/", "type": kind, "ugid": ugid, "roleid": "OpsAdmin", "propagate": 1})


def _admins_sole_permissions_modify(world: World) -> None:
    """Group admins (alice@pve and Proximo's own user) is the only way to Permissions.Modify on /: revoking a role
    takes Permissions.Modify (or every privilege of the role), so only the operator's own grant can be the last."""
    model = world.model
    model.acl[:] = [a for a in model.acl if not (a["path"] == "/" and a["type"] == "user")]
    next(g for g in model.groups if g["groupid"] == "admins")["users"] = "alice@pve,proximo@pve"
    next(u for u in model.users if u["userid"] == "proximo@pve")["groups"] = "admins"


def _empty_web_in_used_by_104(world: World) -> None:
    """Security group web-in, emptied, is still jumped to by qemu/104's first rule."""
    fw = world.model.firewall
    fw.groups["web-in"] = FirewallGroup(comment="public web")
    fw.guest(104).rules.insert(0, {"type": "group", "action": "web-in", "enable": 1})


def _lxc_template_with_a_linked_clone(world: World) -> None:
    """CT 204 becomes a template, and CT 300 a linked clone of it (through the pack's own semantics)."""
    world.packs.semantics.execute(world.model, "POST", "/nodes/pve2/lxc/204/template")
    world.packs.semantics.execute(world.model, "POST", "/nodes/pve2/lxc/204/clone", {"newid": 300})


def _pve2_guests_stopped(world: World) -> None:
    for guest in world.model.guests.values():
        if guest.node == "pve2":
            guest.resource["status"] = "stopped"


def _pve1_without_address(world: World) -> None:
    for row in [world.model.nodes["pve1"].status, *world.model.cluster_status]:
        if row.get("name") == "pve1":
            row.pop("ip", None)


PVE_PARAM = "Parameter verification failed."

REFUSALS: list[Refusal] = [
    # --- acl ---------------------------------------------------------------------------------------------------
    Refusal("c", ("acl", "_id", "is not valid (letters, digits"),
            "ids the tools take are narrower than PVE's (safe unquoted in a path); PVE's pve-userid/pve-groupid formats "
            "refuse what PVE refuses", "access.user.create", {"userid": "a:b@pve"},
            [(_api("POST", "/access/users", userid="a:b@pve"),
              Pve(400, f"{PVE_PARAM} (userid: invalid format - value 'a:b@pve' does not look like a valid user name)")),
             (_api("POST", "/access/groups", groupid="a+b"),
              Pve(400, f"{PVE_PARAM} (groupid: invalid format - group name 'a+b' contains invalid characters)"))]),
    Refusal("a", ("acl", "_existing", "does not exist (see `proximo read access."),
            "acl _semantics; pve-access-control AccessControl.pm check_user_exist / check_token_exist, Group.pm delete_group",
            "access.user.delete", {"userid": "nobody@pve"},
            [(_api("DELETE", "/access/users/nobody@pve"), Pve(500, "no such user ('nobody@pve')")),
             (_api("DELETE", "/access/groups/nogroup"), Pve(500, "delete group failed: group 'nogroup' does not exist")),
             (_api("DELETE", "/access/users/alice@pve/token/nope"), Pve(500, "no such token 'nope' for user 'alice@pve'"))]),
    Refusal("a", ("acl", "_acl_params", "is not a permission path Proxmox accepts"),
            "acl _semantics.update_acl; pve-access-control API2/ACL.pm update_acl (check_path)",
            "access.acl.grant", {"path": "/bogus", "roles": "PVEAuditor", "users": "alice@pve"},
            [(_api("PUT", "/access/acl", path="/bogus", roles="PVEAuditor", users="alice@pve"),
              Pve(400, f"{PVE_PARAM} (path: invalid ACL path '/bogus')"))]),
    Refusal("a", ("acl", "_acl_params", "name at least one of users=, groups=, tokens="),
            "acl _semantics.update_acl; pve-access-control API2/ACL.pm update_acl", "access.acl.grant", {"path": "/", "roles": "PVEAuditor"},
            [(_api("PUT", "/access/acl", path="/", roles="PVEAuditor"),
              Pve(400, f"{PVE_PARAM} (groups: either 'users', 'groups' or 'tokens' is required.; "
                       "tokens: either 'users', 'groups' or 'tokens' is required.; users: either 'users', 'groups' or 'tokens' is required.)"))]),
    Refusal("c", ("acl", "_acl_params", "is not a token id (user@realm!token)"),
            "PVE's pve-tokenid-list format (the schema check)", "access.acl.grant", {"path": "/", "roles": "PVEAuditor", "tokens": "alice@pve"},
            [(_api("PUT", "/access/acl", path="/", roles="PVEAuditor", tokens="alice@pve"),
              Pve(400, f"{PVE_PARAM} (tokens: invalid format - value 'alice@pve' does not look like a valid token ID)"))]),
    Refusal("a", ("acl", "_acl_params", "does not exist (see `proximo read access.roles`)"),
            "acl _semantics.update_acl; pve-access-control API2/ACL.pm update_acl",
            "access.acl.grant", {"path": "/", "roles": "NoSuchRole", "users": "alice@pve"},
            [(_api("PUT", "/access/acl", path="/", roles="NoSuchRole", users="alice@pve"),
              Pve(500, "ACL update failed: role 'NoSuchRole' does not exist"))]),
    Refusal("a", ("acl", "_custom_role", "is built in: Proxmox does not let it change"),
            "acl _semantics._custom_role; pve-access-control API2/Role.pm update_role / delete_role",
            "access.role.update", {"roleid": "PVEAdmin", "privs": "VM.Audit"},
            [(_api("PUT", "/access/roles/PVEAdmin", privs="VM.Audit"), Pve(500, "auto-generated role 'PVEAdmin' cannot be modified")),
             (_api("DELETE", "/access/roles/PVEAdmin"), Pve(500, "auto-generated role 'PVEAdmin' cannot be deleted"))]),
    Refusal("a", ("acl", "_custom_role", "does not exist (see `proximo read access.roles`)"),
            "acl _semantics._custom_role; pve-access-control API2/Role.pm update_role / delete_role",
            "access.role.update", {"roleid": "NoRole", "privs": "VM.Audit"},
            [(_api("PUT", "/access/roles/NoRole", privs="VM.Audit"), Pve(500, "update role failed: role 'NoRole' does not exist")),
             (_api("DELETE", "/access/roles/NoRole"), Pve(500, "delete role failed: role 'NoRole' does not exist"))]),
    Refusal("c", ("acl", "_put", ": nothing to change"),
            "Proxmox accepts an update that names nothing (User.pm update_user), and it changes nothing",
            "access.user.update", {"userid": "alice@pve"}, [(_api("PUT", "/access/users/alice@pve"), Accepted())]),
    Refusal("c", ("acl", "plan_acl_revoke", "nothing to revoke"),
            "Proxmox deletes an absent ACL entry without a word (ACL.pm update_acl), and nothing changes",
            "access.acl.revoke", {"path": "/", "roles": "PVEAuditor", "users": "alice@pve"},
            [(_api("PUT", "/access/acl", path="/", roles="PVEAuditor", users="alice@pve", delete=1), Accepted())]),
    Refusal("a", ("acl", "plan_group_create", "already exists"),
            "acl _semantics.create_group; pve-access-control API2/Group.pm create_group", "access.group.create", {"groupid": "admins"},
            [(_api("POST", "/access/groups", groupid="admins"), Pve(500, "create group failed: group 'admins' already exists"))]),
    Refusal("a", ("acl", "plan_role_create", "already exists"),
            "acl _semantics.create_role; pve-access-control API2/Role.pm create_role", "access.role.create", {"roleid": "VMOperator"},
            [(_api("POST", "/access/roles", roleid="VMOperator"), Pve(500, "create role failed: role 'VMOperator' already exists"))]),
    Refusal("c", ("acl", "plan_role_update", "give privs="),
            "an update without privs empties the role in Proxmox (Role.pm update_role); the tool asks for them so that "
            "forgetting them is not that, and the twin's plan reports every holder's loss",
            "access.role.update", {"roleid": "VMOperator"}, [(_api("PUT", "/access/roles/VMOperator"), Accepted(("privilege-loss",)))]),
    Refusal("a", ("acl", "plan_token_create", "already exists"),
            "acl _semantics.create_token; pve-access-control API2/User.pm generate_token (raise_param_exc before the lock)",
            "access.token.create", {"userid": "proximo@pve", "tokenid": "agent"},
            [(_api("POST", "/access/users/proximo@pve/token/agent"), Pve(400, f"{PVE_PARAM} (tokenid: Token already exists.)"))]),
    Refusal("a", ("acl", "plan_user_create", "already exists"),
            "acl _semantics.create_user; pve-access-control API2/User.pm create_user", "access.user.create", {"userid": "alice@pve"},
            [(_api("POST", "/access/users", userid="alice@pve"), Pve(500, "create user failed: user 'alice@pve' already exists"))]),
    Refusal("b", None, "acl _impact._root_deleted (User.pm delete_user allows it; AccessControl.pm userconfig_force_defaults "
            "recreates root@pam bare)", "access.user.delete", {"userid": "root@pam"},
            [(_api("DELETE", "/access/users/root@pam"), Rule("root@pam cannot be deleted through Proximo"))]),
    Refusal("b", None, "acl _impact._lockout: Proximo's own token", "access.token.delete", {"userid": "proximo@pve", "tokenid": "agent"},
            [(_api("DELETE", "/access/users/proximo@pve/token/agent"), Rule(f"Proximo's own token {TOKEN_ID} is deleted"))]),
    Refusal("b", None, "acl _impact._lockout: Proximo's own user", "access.user.delete", {"userid": "proximo@pve"},
            [(_api("DELETE", "/access/users/proximo@pve"), Rule("Proximo's own user proximo@pve is deleted"))]),
    Refusal("b", None, "acl _impact._lockout: the last Permissions.Modify holder on / (ACL delete)",
            "access.acl.revoke", {"path": "/", "roles": "Administrator", "groups": "admins"},
            [(_api("PUT", "/access/acl", path="/", roles="Administrator", groups="admins", delete=1),
              Rule("nobody but root@pam would keep"))],
            _admins_sole_permissions_modify),
    Refusal("b", None, "acl _impact._lockout: the last Permissions.Modify holder on / (user delete)",
            "access.user.delete", {"userid": "alice@pve"},
            [(_api("DELETE", "/access/users/alice@pve"), Rule("nobody but root@pam would keep"))], _alice_sole_permissions_modify),
    Refusal("b", None, "acl _impact._lockout: the last Permissions.Modify holder on / (group delete)",
            "access.group.delete", {"groupid": "admins"},
            [(_api("DELETE", "/access/groups/admins"), Rule("nobody but root@pam would keep"))], _alice_sole_permissions_modify),
    Refusal("b", None, "acl _impact._lockout: the last Permissions.Modify holder on / (role update)",
            "access.role.update", {"roleid": "Delegator", "privs": "Sys.Audit"},
            [(_api("PUT", "/access/roles/Delegator", privs="Sys.Audit"), Rule("nobody but root@pam would keep"))],
            _alice_sole_permissions_modify),
    # --- firewall ----------------------------------------------------------------------------------------------
    Refusal("a", ("firewall", "base_path", "security group '"),
            "firewall _semantics._group; pve-firewall API2/Firewall/Rules.pm GroupRules load_config",
            "firewall.group.delete", {"group": "nogroup"},
            [(_api("DELETE", "/cluster/firewall/groups/nogroup"), Pve(500, "no such security group 'nogroup'"))]),
    Refusal("a", ("firewall", "base_path", "node '"),
            "firewall _semantics.level_of; pve-cluster Cluster.pm remote_node_ip -> pve-common Network.pm get_ip_from_hostname",
            "firewall.rule.add", {"level": "node/pve9", "type": "in", "action": "ACCEPT"},
            [(_api("POST", "/nodes/pve9/firewall/rules", type="in", action="ACCEPT"),
              Pve(500, "hostname lookup 'pve9' failed - failed to get address info for: pve9: Name or service not known"))]),
    Refusal("b", ("firewall", "base_path", "does not exist (see `proximo read guest.list`)"),
            "firewall _impact.firewall_of_missing_guests (Rules.pm VMRules load_config checks nothing: PVE writes the file); "
            "the tool, which needs the guest's node for the path, refuses first",
            "firewall.rule.add", {"level": "qemu/999", "type": "in", "action": "ACCEPT"},
            [(_api("POST", "/nodes/pve1/qemu/999/firewall/rules", type="in", action="ACCEPT"), Rule("guest 999 does not exist"))]),
    Refusal("c", ("firewall", "_need_read", "this state has no firewall configuration"),
            "about the state, not the call: a snapshot taken without the firewall; no twin (a plan from a snapshot is never "
            "applied, and a firewall the token cannot read live makes the plan incomplete, so HIGH)",
            "firewall.rule.add", {"level": "cluster", "type": "in", "action": "ACCEPT"}, [],
            lambda world: setattr(world.model.firewall, "read", False)),
    Refusal("a", ("firewall", "plan_group_create", "already exists"),
            "firewall _semantics._create_or_rename; pve-firewall API2/Firewall/Groups.pm create_security_group",
            "firewall.group.create", {"group": "web-in"},
            [(_api("POST", "/cluster/firewall/groups", group="web-in"), Pve(400, f"{PVE_PARAM} (group: Security group 'web-in' already exists)"))]),
    Refusal("b", None, "firewall _impact.jumps_to_missing_groups (Rules.pm delete_security_group checks only that it is empty)",
            "firewall.group.delete", {"group": "web-in"},
            [(_api("DELETE", "/cluster/firewall/groups/web-in"),
              Rule("security group 'web-in' is deleted while qemu/104 rule 0 still jumps to it"))], _empty_web_in_used_by_104),
    Refusal("b", None, "firewall _impact.jumps_to_missing_groups (Firewall.pm verify_rule checks only the group's name)",
            "firewall.rule.add", {"level": "qemu/104", "type": "group", "action": "nogroup", "enable": 1},
            [(_api("POST", "/nodes/pve1/qemu/104/firewall/rules", type="group", action="nogroup", enable=1),
              Rule("qemu/104 rule 0 would jump to security group 'nogroup', which does not exist"))]),
    Refusal("c", ("firewall", "plan_ipset_remove", "needs an encoded '/' in the API path"),
            "an unencoded '/' makes another path, which no endpoint has", "firewall.ipset.remove", {"name": "admins", "cidr": "10.0.0.0/24"},
            [(_api("DELETE", "/cluster/firewall/ipset/admins/10.0.0.0/24"),
              Pve(501, "Method 'DELETE /cluster/firewall/ipset/admins/10.0.0.0/24' not implemented"))]),
    Refusal("c", ("firewall", "plan_options_set", "is not an option at"),
            "the schema of the level's options endpoint", "firewall.options.set", {"level": "cluster", "nosmurfs": 1},
            [(_api("PUT", "/cluster/firewall/options", nosmurfs=1), Pve(400, f"{PVE_PARAM} (nosmurfs: property is not defined in schema"))]),
    Refusal("c", ("firewall", "plan_options_set", "nothing to change"),
            "Proxmox accepts options that name nothing (Cluster.pm set_options), and nothing changes",
            "firewall.options.set", {"level": "cluster"}, [(_api("PUT", "/cluster/firewall/options"), Accepted())]),
    *(Refusal("a", ("firewall", function, "has no rule at position"),
              "firewall _semantics._pos; pve-firewall API2/Firewall/Rules.pm update_rule / delete_rule", tool,
              {"level": "qemu/104", "pos": 9, **extra}, [(_api(method, "/nodes/pve1/qemu/104/firewall/rules/9", **extra),
                                                          Pve(500, "no rule at position 9"))])
      for function, tool, method, extra in [("plan_rule_update", "firewall.rule.update", "PUT", {"enable": 1}),
                                            ("plan_rule_delete", "firewall.rule.delete", "DELETE", {}),
                                            ("plan_rule_move", "firewall.rule.move", "PUT", {"moveto": 0})]),
    Refusal("c", ("firewall", "plan_rule_update", "nothing to change"),
            "Proxmox accepts an update that names nothing (Rules.pm update_rule, Firewall.pm copy_rule_data), and nothing changes",
            "firewall.rule.update", {"level": "qemu/104", "pos": 0},
            [(_api("PUT", "/nodes/pve1/qemu/104/firewall/rules/0"), Accepted())]),
    Refusal("c", ("firewall", "_ipset_base", "nodes have no ipsets or aliases"),
            "the API has no node ipsets or aliases", "firewall.ipset.create", {"level": "node/pve1", "name": "x1"},
            [(_api("POST", "/nodes/pve1/firewall/ipset", name="x1"), Pve(501, "Method 'POST /nodes/pve1/firewall/ipset' not implemented"))]),
    Refusal("c", ("firewall", "_cidr", "is not an IP address, network or alias name"),
            "PVE's IPorCIDRorAlias format (the schema check)", "firewall.ipset.add", {"name": "admins", "cidr": "not an ip!"},
            [(_api("POST", "/cluster/firewall/ipset/admins", cidr="not an ip!"),
              Pve(400, f"{PVE_PARAM} (cidr: invalid format - value does not look like a valid IP address or CIDR network)"))]),
    # --- guests ------------------------------------------------------------------------------------------------
    Refusal("a", ("guests", "existing", "does not exist (see `proximo read guest.list`)"),
            "guests _semantics.guest_at; pve-guest-common AbstractConfig.pm load_config", "guest.start", {"vmid": 999},
            [(_api("POST", "/nodes/pve1/qemu/999/status/start"), Pve(500, "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist"))]),
    Refusal("a", ("guests", "_storage", "does not exist (see `proximo read storage.list`)"),
            "guests _semantics.materialize; pve-storage Storage.pm storage_config", "vm.create", {"node": "pve1", "vmid": 150, "scsi0": "nostore:8"},
            [(_api("POST", "/nodes/pve1/qemu", vmid=150, scsi0="nostore:8"), Pve(500, "storage 'nostore' does not exist"))]),
    Refusal("a", ("guests", "_node", "does not exist (see `proximo read node.list`)"),
            "guests _semantics._new_guest; pve-cluster Cluster.pm remote_node_ip -> pve-common Network.pm get_ip_from_hostname",
            "vm.create", {"node": "pve9", "vmid": 150},
            [(_api("POST", "/nodes/pve9/qemu", vmid=150),
              Pve(500, "hostname lookup 'pve9' failed - failed to get address info for: pve9: Name or service not known"))]),
    Refusal("c", ("guests", "_disk", "is not a disk key of a"), "the endpoint's schema (disk is an enumeration)",
            "guest.disk.resize", {"vmid": 104, "disk": "net0", "size": "+1G"},
            [(_api("PUT", "/nodes/pve1/qemu/104/resize", disk="net0", size="+1G"),
              Pve(400, f"{PVE_PARAM} (disk: value 'net0' does not have a value in the enumeration"))]),
    Refusal("a", ("guests", "_disk", "has no disk '"), "guests _semantics.disk_resize; qemu-server API2/Qemu.pm resize_vm",
            "guest.disk.resize", {"vmid": 104, "disk": "scsi5", "size": "+1G"},
            [(_api("PUT", "/nodes/pve1/qemu/104/resize", disk="scsi5", size="+1G"), Pve(500, "disk 'scsi5' does not exist"))]),
    Refusal("a", ("guests", "_disk", "is not a storage volume"), "guests _semantics.disk_resize; qemu-server API2/Qemu.pm resize_vm",
            "guest.disk.resize", {"vmid": 104, "disk": "ide2", "size": "+1G"},
            [(_api("PUT", "/nodes/pve1/qemu/104/resize", disk="ide2", size="+1G"), Pve(500, "you can't resize a cdrom"))]),
    Refusal("a", ("guests", "_snapshot_exists", "has no snapshot '"),
            "guests _semantics._snapshot_or_fail; pve-guest-common AbstractConfig.pm snapshot_delete / snapshot_rollback",
            "guest.snapshot.delete", {"vmid": 105, "snapname": "nosnap"},
            [(_api("DELETE", "/nodes/pve1/qemu/105/snapshot/nosnap"), Pve(500, "snapshot 'nosnap' does not exist")),
             (_api("POST", "/nodes/pve1/qemu/105/snapshot/nosnap/rollback"), Pve(500, "snapshot 'nosnap' does not exist"))]),
    Refusal("a", ("guests", "plan_clone", "already exists"), "guests _semantics.clone; qemu-server API2/Qemu.pm clone_vm",
            "guest.clone", {"vmid": 9000, "newid": 104},
            [(_api("POST", "/nodes/pve1/qemu/9000/clone", newid=104), Pve(500, "unable to create VM 104: config file already exists"))]),
    Refusal("a", ("guests", "plan_create", "already exists"),
            "guests _semantics._new_guest; qemu-server API2/Qemu.pm create_vm (AbstractConfig create_and_lock_config -> "
            "pve-cluster Cluster.pm check_vmid_unused), pve-container API2/LXC.pm create_vm", "vm.create", {"node": "pve1", "vmid": 104},
            [(_api("POST", "/nodes/pve1/qemu", vmid=104), Pve(500, "unable to create VM 104 - VM 104 already exists on node 'pve1'")),
             (_api("POST", "/nodes/pve1/lxc", vmid=104, ostemplate="local:vztmpl/x.tar.zst"),
              Pve(500, "VM 104 already exists on node 'pve1'"))]),
    Refusal("a", ("guests", "plan_config_set", "nothing to change"),
            "guests _semantics.config_set; qemu-server API2/Qemu.pm update_vm_api, pve-container API2/LXC/Config.pm update_vm",
            "guest.config.set", {"vmid": 104},
            [(_api("POST", "/nodes/pve1/qemu/104/config", digest="0" * 40), Pve(500, "no options specified")),
             (_api("PUT", "/nodes/pve1/lxc/201/config"), Pve(500, "no options specified"))]),
    Refusal("c", ("guests", "plan_move", "name the disk"), "the endpoint's schema (disk / volume are required)",
            "guest.disk.move", {"vmid": 104, "storage": "ceph-rbd"},
            [(_api("POST", "/nodes/pve1/qemu/104/move_disk", storage="ceph-rbd"), Pve(400, f"{PVE_PARAM} (disk: property is missing"))]),
    Refusal("a", ("guests", "plan_move", "give the target storage"),
            "guests _semantics.disk_move; qemu-server API2/Qemu.pm move_vm_disk, pve-container API2/LXC.pm move_volume",
            "guest.disk.move", {"vmid": 104, "disk": "scsi0"},
            [(_api("POST", "/nodes/pve1/qemu/104/move_disk", disk="scsi0"),
              Pve(400, f"{PVE_PARAM} (storage: both 'storage' and 'target-vmid' missing, either needs to be set"))]),
    Refusal("c", ("guests", "plan_resize", "does not parse"), "the endpoint's schema (size has a pattern)",
            "guest.disk.resize", {"vmid": 104, "disk": "scsi0", "size": "1X"},
            [(_api("PUT", "/nodes/pve1/qemu/104/resize", disk="scsi0", size="1X"), Pve(400, f"{PVE_PARAM} (size: value does not match the regex pattern)"))]),
    Refusal("a", ("guests", "plan_resize", "shrinking a disk is not supported"), "guests _semantics.disk_resize; qemu-server API2/Qemu.pm resize_vm",
            "guest.disk.resize", {"vmid": 104, "disk": "scsi0", "size": "8G"},
            [(_api("PUT", "/nodes/pve1/qemu/104/resize", disk="scsi0", size="8G"), Pve(500, "shrinking disks is not supported"))]),
    Refusal("a", None, "guests _semantics.destroy; qemu-server QemuServer.pm destroy_vm (its own wording)", "guest.destroy", {"vmid": 9000},
            [(_api("DELETE", "/nodes/pve1/qemu/9000"), Pve(500, "base volume 'local-zfs:base-9000-disk-0' is still in use by linked cloned"))]),
    Refusal("a", None, "guests _semantics.destroy; pve-container LXC.pm destroy_lxc_container -> pve-storage Storage.pm vdisk_free",
            "guest.destroy", {"vmid": 204},
            [(_api("DELETE", "/nodes/pve2/lxc/204"), Pve(500, "base volume 'base-204-disk-0' is still in use by linked clones"))],
            _lxc_template_with_a_linked_clone),
    # --- storage -----------------------------------------------------------------------------------------------
    Refusal("a", ("storage", "_existing", "does not exist (see `proximo read storage.list`)"),
            "storage _semantics._configured; pve-storage API2/Storage/Config.pm update / delete (Storage.pm storage_config)",
            "storage.delete", {"storage": "nostore"},
            [(_api("DELETE", "/storage/nostore"), Pve(500, "delete storage failed: storage 'nostore' does not exist")),
             (_api("PUT", "/storage/nostore", disable=1), Pve(500, "update storage failed: storage 'nostore' does not exist"))]),
    Refusal("c", ("storage", "_node", "does not exist (see `proximo read node.list`)"),
            "a typo guard: PVE's pve-node-list format checks only the names' form, and a new storage on no existing node is "
            "available nowhere and used by nothing", "storage.create", {"storage": "newdir", "type": "dir", "path": "/srv/x", "nodes": "pve9"},
            [(_api("POST", "/storage", storage="newdir", type="dir", path="/srv/x", nodes="pve9"), Accepted())]),
    Refusal("a", ("storage", "plan_create", "already exists"), "storage _semantics.create; pve-storage API2/Storage/Config.pm create",
            "storage.create", {"storage": "local", "type": "dir", "path": "/srv/x"},
            [(_api("POST", "/storage", storage="local", type="dir", path="/srv/x"), Pve(500, "create storage failed: storage ID 'local' already defined"))]),
    Refusal("a", ("storage", "plan_create", "missing value for required option"),
            "storage _semantics.create; pve-common SectionConfig.pm check_config", "storage.create",
            {"storage": "newnfs", "type": "nfs", "server": "10.0.0.9"},
            [(_api("POST", "/storage", storage="newnfs", type="nfs", server="10.0.0.9"), Pve(500, "missing value for required option 'export'"))]),
    Refusal("c", ("storage", "plan_update", "nothing to change"),
            "Proxmox accepts an update that names nothing (Config.pm update), and nothing changes",
            "storage.update", {"storage": "local"}, [(_api("PUT", "/storage/local"), Accepted())]),
    # --- network -----------------------------------------------------------------------------------------------
    Refusal("a", ("network", "_node", "does not exist (see `proximo read node.list`)"),
            "network _semantics via ClusterModel.node; pve-manager resolves the node to proxy to (PVE::RPCEnvironment)",
            "network.iface.create", {"node": "pve9", "iface": "vmbr5", "type": "bridge"},
            [(_api("POST", "/nodes/pve9/network", iface="vmbr5", type="bridge"),
              Pve(500, "hostname lookup 'pve9' failed - failed to get address info for: pve9: Name or service not known"))]),
    Refusal("c", ("network", "_node", "was not read"),
            "about the state, not the call: a snapshot without the node's network; the twin is refused as not modelled "
            "(network _semantics._rows: NotModelled, not a BadInput)", "network.apply", {"node": "pve1"}, [],
            lambda world: setattr(world.model.nodes["pve1"], "network", None)),
    Refusal("c", ("network", "_refuse_unmodelled", "is not modelled"),
            "Open vSwitch rows are read, never planned: the twin is refused as not modelled by the semantics "
            "(network _semantics._refuse_unmodelled, NotModelled; plugins/network/tests test_open_vswitch_...)",
            "network.iface.update", {"node": "pve1", "iface": "vmbr9", "mtu": 1400}, [],
            lambda world: (world.model.nodes["pve1"].network or []).append(
                {"iface": "vmbr9", "type": "OVSBridge", "method": "manual", "families": ["inet"], "ovs_type": "OVSBridge"})),
    Refusal("a", ("network", "_row", "does not exist on node"),
            "network _semantics.update_rows / delete_rows; pve-manager API2/Network.pm update_network, delete_network",
            "network.iface.delete", {"node": "pve1", "iface": "vmbr9"},
            [(_api("DELETE", "/nodes/pve1/network/vmbr9"), Pve(400, f"{PVE_PARAM} (iface: interface does not exist)")),
             (_api("PUT", "/nodes/pve1/network/vmbr9", type="bridge"), Pve(400, f"{PVE_PARAM} (iface: interface does not exist)"))]),
    Refusal("a", ("network", "plan_create", "already exists on node"),
            "network _semantics.create_rows; pve-manager API2/Network.pm create_network (no rename: the name is the path)",
            "network.iface.create", {"node": "pve1", "iface": "vmbr0", "type": "bridge"},
            [(_api("POST", "/nodes/pve1/network", iface="vmbr0", type="bridge"), Pve(400, f"{PVE_PARAM} (iface: interface already exists)"))]),
    Refusal("c", ("network", "plan_update", "nothing to change"),
            "Proxmox accepts an update that names nothing but the type (Network.pm update_network) and, for an interface "
            "without addresses, writes the same file", "network.iface.update", {"node": "pve1", "iface": "vmbr1"},
            [(_api("PUT", "/nodes/pve1/network/vmbr1", type="bridge"), Accepted())]),
    # --- migration: migrate and evacuate ------------------------------------------------------------------------
    Refusal("a", ("migration", "_guest", "does not exist (see `proximo read guest.list`)"),
            "migration _migrate.migrate via ClusterModel.guest_on; qemu-server API2/Qemu.pm migrate_vm (load_config)",
            "guest.migrate", {"vmid": 999, "target": "pve2"},
            [(_api("POST", "/nodes/pve1/qemu/999/migrate", target="pve2"),
              Pve(500, "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist"))]),
    Refusal("a", ("migration", "plan_migrate", "does not exist (see `proximo read node.list`)"),
            "migration _migrate.migrate_refusal; pve-cluster Cluster.pm check_node_exists", "guest.migrate", {"vmid": 121, "target": "pve9"},
            [(_api("POST", "/nodes/pve1/qemu/121/migrate", target="pve9"), Pve(500, "no such cluster node 'pve9'"))]),
    Refusal("c", ("migration", "plan_migrate", "is for containers"), "the endpoint's schema: a VM's migrate takes no restart",
            "guest.migrate", {"vmid": 121, "target": "pve2", "restart": True},
            [(_api("POST", "/nodes/pve1/qemu/121/migrate", target="pve2", restart=1),
              Pve(400, f"{PVE_PARAM} (restart: property is not defined in schema and the schema does not allow additional properties)"))]),
    Refusal("c", ("migration", "plan_migrate", "is for VMs"), "the endpoint's schema: a container's migrate takes no with-local-disks",
            "guest.migrate", {"vmid": 201, "target": "pve2", "with-local-disks": True},
            [(_api("POST", "/nodes/pve1/lxc/201/migrate", target="pve2", **{"with-local-disks": 1}),
              Pve(400, f"{PVE_PARAM} (with-local-disks: property is not defined in schema and the schema does not allow additional properties)"))]),
    Refusal("c", ("migration", "plan_evacuate", "does not exist (see `proximo read node.list`)"),
            "an evacuate of a node the cluster lacks has no guests, so no call to send", "node.evacuate", {"node": "pve9"}, []),
    Refusal("a", ("migration", "plan_evacuate", "must be another node of the cluster"),
            "migration _migrate.migrate_refusal; qemu-server API2/Qemu.pm migrate_vm (raise_param_exc target)",
            "node.evacuate", {"node": "pve3", "target": "pve3"},
            [(_api("POST", "/nodes/pve3/qemu/110/migrate", target="pve3", online=1), Pve(400, f"{PVE_PARAM} (target: target is local node.)"))]),
    Refusal("c", ("migration", "plan_evacuate", "has no guests to move"),
            "nothing to send: a node without guests is already empty", "node.evacuate", {"node": "pve2", "include_stopped": False}, [],
            _pve2_guests_stopped),
    Refusal("a", ("migration", "plan_evacuate", "blockers"),
            "migration _migrate._task_refusal; pve-container src/PVE/LXC/Migrate.pm prepare (a bind mount stays)",
            "node.evacuate", {"node": "pve3"},
            [(_api("POST", "/nodes/pve3/lxc/203/migrate", target="pve1", restart=1), Pve(500, "cannot migrate local bind mount point 'mp1'"))]),
    # --- migration: HA ------------------------------------------------------------------------------------------
    Refusal("a", ("migration", "_groups_allowed", "replaced HA groups with HA rules"),
            "migration _ha._groups_open; pve-ha-manager API2/HA/Groups.pm create/update/delete (have_groups_been_migrated)",
            "ha.group.create", {"group": "web", "nodes": "pve1"},
            [(_api("POST", "/cluster/ha/groups", group="web", nodes="pve1"),
              Pve(500, "cannot create group: ha groups have been migrated to rules")),
             (_api("DELETE", "/cluster/ha/groups/web"), Pve(500, "cannot delete group: ha groups have been migrated to rules"))]),
    Refusal("c", ("migration", "_changes", "nothing to change"),
            "Proxmox accepts an update that names nothing (API2/HA/Resources.pm update) and writes the same file",
            "ha.resource.update", {"sid": "vm:104"}, [(_api("PUT", "/cluster/ha/resources/vm:104"), Accepted())]),
    Refusal("a", ("migration", "plan_rule_update", "does not exist"),
            "migration _ha.rule_update; pve-ha-manager API2/HA/Rules.pm update_rule", "ha.rule.update",
            {"rule": "nope", "comment": "x"},
            [(_api("PUT", "/cluster/ha/rules/nope", type="node-affinity", comment="x"),
              Pve(500, "update HA rules failed: HA rule 'nope' does not exist"))]),
    # --- migration: replication ---------------------------------------------------------------------------------
    # The replication tools refuse nothing themselves (their parameter structs refuse malformed ids): every refusal is
    # Proxmox's, in the migration pack's semantics (_replication.py), so the named tool's plan is blocked as its twin's.
    Refusal("a", None, "migration _replication.create; pve-manager API2/ReplicationConfig.pm create", "replication.create",
            {"id": "999-0", "target": "pve2"},
            [(_api("POST", "/cluster/replication", id="999-0", type="local", target="pve2"), Pve(500, "Guest '999' does not exist."))]),
    Refusal("a", None, "migration _replication.create; pve-manager API2/ReplicationConfig.pm create (PVE::Cluster::get_members)",
            "replication.create", {"id": "104-1", "target": "pve9"},
            [(_api("POST", "/cluster/replication", id="104-1", type="local", target="pve9"), Pve(500, "Target 'pve9' does not exist."))]),
    Refusal("a", None, "migration _replication.create; pve-manager API2/ReplicationConfig.pm create", "replication.create",
            {"id": "104-1", "target": "pve1"},
            [(_api("POST", "/cluster/replication", id="104-1", type="local", target="pve1"), Pve(500, "Source and target must not be identical"))]),
    Refusal("a", None, "migration _replication.create; pve-guest-common ReplicationConfig.pm write_config (one job per guest and target)",
            "replication.create", {"id": "104-1", "target": "pve2"},
            [(_api("POST", "/cluster/replication", id="104-1", type="local", target="pve2"),
              Pve(500, "replication job for guest '104' to target 'local/pve2' already exists"))]),
    Refusal("a", None, "migration _replication.create; pve-manager API2/ReplicationConfig.pm create (the id is taken)",
            "replication.create", {"id": "104-0", "target": "pve3"},
            [(_api("POST", "/cluster/replication", id="104-0", type="local", target="pve3"), Pve(500, "replication job '104-0' already exists"))]),
    Refusal("a", None, "migration _replication.create; pve-manager API2/ReplicationConfig.pm create (get_replicatable_volumes: "
            "none, a shared storage only)", "replication.create", {"id": "106-0", "target": "pve1"},
            [(_api("POST", "/cluster/replication", id="106-0", type="local", target="pve1"), Pve(500, "No replicatable volumes found"))]),
    Refusal("a", None, "migration _replication.create; pve-container src/PVE/LXC/Config.pm get_replicatable_volumes (a bind mount)",
            "replication.create", {"id": "203-0", "target": "pve1"},
            [(_api("POST", "/cluster/replication", id="203-0", type="local", target="pve1"),
              Pve(500, "unable to replicate mountpoint type 'bind'"))]),
    Refusal("a", None, "migration _replication.create via ClusterModel.replicate_verdict; qemu-server QemuConfig.pm "
            "get_replicatable_volumes (only zfspool volumes have the replicate feature)", "replication.create", {"id": "108-0", "target": "pve1"},
            [(_api("POST", "/cluster/replication", id="108-0", type="local", target="pve1"),
              Pve(500, "missing replicate feature on volume 'local:108/vm-108-disk-1.qcow2'"))],
            lambda world: world.model.guests[108].config.update(scsi1="local:108/vm-108-disk-1.qcow2,size=1G")),
    Refusal("a", None, "migration _replication.update / delete; pve-manager API2/ReplicationConfig.pm update, delete",
            "replication.update", {"id": "104-9", "comment": "x"},
            [(_api("PUT", "/cluster/replication/104-9", comment="x"), Pve(500, "no such job '104-9'")),
             (_api("DELETE", "/cluster/replication/104-9"), Pve(500, "no such job '104-9'"))]),
    Refusal("a", None, "migration _replication.update; pve-manager API2/ReplicationConfig.pm update (target is required and fixed)",
            "replication.update", {"id": "104-0", "delete": "target"},
            [(_api("PUT", "/cluster/replication/104-0", delete="target"), Pve(500, "unable to delete required option 'target'"))]),
    Refusal("a", None, "migration _replication.schedule_now; pve-manager API2/Replication.pm schedule_now",
            "replication.schedule_now", {"id": "104-9"},
            [(_api("POST", "/nodes/pve1/replication/104-9/schedule_now"), Pve(500, "no such replication job '104-9'"))]),
    # --- backup ------------------------------------------------------------------------------------------------
    Refusal("a", ("backup", "_find", "does not exist on any storage Proximo can see"),
            "backup _semantics._backup_row; pve-storage API2/Storage/Content.pm delete (the volume must exist)",
            "backup.delete", {"volume": "nfs-backup:backup/vzdump-qemu-999-2026_11_27-21_00_02.vma.zst"},
            [(_api("DELETE", "/nodes/pve1/storage/nfs-backup/content/nfs-backup:backup%2Fvzdump-qemu-999-2026_11_27-21_00_02.vma.zst"),
              Pve(500, "volume 'nfs-backup:backup/vzdump-qemu-999-2026_11_27-21_00_02.vma.zst' does not exist"))]),
    Refusal("c", ("backup", "_node_for", "is not available on any online node"),
            "about the state: the tool picks a node that sees the storage; a call names its node, and the semantics "
            "answer for that node", "backup.prune", {"storage": "nfs-backup"}, [],
            lambda world: [world.model.nodes[n].resource.update(status="offline") for n in world.model.nodes]),
    Refusal("c", ("backup", "plan_now", "none of the selected guests is on node"),
            "pve-manager API2/VZDump.pm vzdump: 'silent exit if specified VMs run on other nodes' (answers OK, does nothing)",
            "backup.now", {"node": "pve2", "vmid": "104", "storage": "nfs-backup"},
            [(_api("POST", "/nodes/pve2/vzdump", vmid="104", storage="nfs-backup"), Accepted())]),
    Refusal("a", ("backup", "plan_restore", "needs force=true"),
            "guests _semantics.restore; qemu-server API2/Qemu.pm create_vm (create_and_lock_config: check_vmid_unused)",
            "backup.restore", {"archive": "nfs-backup:backup/vzdump-qemu-104-2026_11_27-21_00_02.vma.zst", "vmid": 104},
            [(_api("POST", "/nodes/pve1/qemu", vmid=104, archive="nfs-backup:backup/vzdump-qemu-104-2026_11_27-21_00_02.vma.zst"),
              Pve(500, "unable to restore VM 104 - VM 104 already exists on node 'pve1'"))]),
    Refusal("a", ("backup", "plan_restore", "backup; "),
            "guests _semantics.restore; pve-container API2/LXC.pm create_vm (check_vmid_unused: the VMID is a VM's)",
            "backup.restore", {"archive": "local:backup/vzdump-lxc-201-2026_11_28-02_09_51.tar.zst", "vmid": 104, "force": True},
            [(_api("POST", "/nodes/pve1/lxc", vmid=104, ostemplate="local:backup/vzdump-lxc-201-2026_11_28-02_09_51.tar.zst",
                   restore=1, force=1),
              Pve(500, "unable to restore CT 104 - VM 104 already exists on node 'pve1'"))]),
    Refusal("a", ("backup", "plan_delete", "is protected"),
            "backup _semantics.content_delete; pve-storage Storage/Plugin.pm free_image (the worker dies)",
            "backup.delete", {"volume": "nfs-backup:backup/vzdump-qemu-104-2026_11_22-01_00_04.vma.zst"},
            [(_api("DELETE", "/nodes/pve1/storage/nfs-backup/content/nfs-backup:backup%2Fvzdump-qemu-104-2026_11_22-01_00_04.vma.zst"),
              Pve(500, "cannot remove protected volume 'backup/vzdump-qemu-104-2026_11_22-01_00_04.vma.zst' on 'nfs-backup'"))]),
    Refusal("a", ("backup", "_prune_call", "does not exist (see `proximo read storage.list`)"),
            "backup _semantics.prune; pve-storage Storage.pm prune_backups (storage_config)", "backup.prune", {"storage": "nostore"},
            [(_api("DELETE", "/nodes/pve1/storage/nostore/prunebackups", **{"prune-backups": "keep-last=1"}),
              Pve(500, "storage 'nostore' does not exist"))]),
    Refusal("a", ("backup", "_prune_call", "does not support backups"),
            "backup _semantics.prune; pve-storage Storage.pm prune_backups", "backup.prune", {"storage": "local-zfs"},
            [(_api("DELETE", "/nodes/pve1/storage/local-zfs/prunebackups", **{"prune-backups": "keep-last=1"}),
              Pve(500, "storage 'local-zfs' does not support backups"))]),
    Refusal("a", ("backup", "_prune_call", "no prune-backups options configured"),
            "backup _semantics.prune; pve-storage Storage.pm prune_backups", "backup.prune", {"storage": "local"},
            [(_api("DELETE", "/nodes/pve1/storage/local/prunebackups"),
              Pve(500, "no prune-backups options configured for storage 'local'"))]),
    Refusal("a", ("backup", "_existing_job", "does not exist (see `proximo read backup.job.list`)"),
            "backup _semantics._job; pve-manager API2/Backup.pm update_job / delete_job", "backup.job.delete", {"id": "nojob"},
            [(_api("PUT", "/cluster/backup/nojob", comment="x"), Pve(400, f"{PVE_PARAM} (id: No such job 'nojob')")),
             (_api("DELETE", "/cluster/backup/nojob"), Pve(400, f"{PVE_PARAM} (id: No such job 'nojob')"))]),
    Refusal("a", ("backup", "plan_job_create", "already exists"),
            "backup _semantics.job_create; pve-manager API2/Backup.pm create_job", "backup.job.create",
            {"id": "backup-daily", "schedule": "02:30", "vmid": "104"},
            [(_api("POST", "/cluster/backup", id="backup-daily", schedule="02:30", vmid="104"), Pve(500, "Job 'backup-daily' already exists"))]),
    Refusal("a", ("backup", "plan_job_update", "no options specified"),
            "backup _semantics.job_update; pve-manager API2/Backup.pm update_job", "backup.job.update", {"id": "backup-db"},
            [(_api("PUT", "/cluster/backup/backup-db"), Pve(500, "no options specified"))]),
    # --- lxc-exec: api.call makes no ssh step, so these have no twin; the host checks the same again for any SshExec
    #     step (proximo/trust/_pipeline.py _check_exec: a container, on that node, at its address, running)
    Refusal("c", ("lxc_exec", "_container", "no such container"),
            "exec runs in containers only; api.call has no exec (the REST API has none)", "ct.exec", {"vmid": 100, "argv": ["df"]}, []),
    Refusal("c", ("lxc_exec", "_container", "is not running"),
            "pve-container src/PVE/CLI/pct.pm exec: \"container '204' not running!\" (on the node, over ssh)",
            "ct.exec", {"vmid": 204, "argv": ["df"]}, []),
    Refusal("c", ("lxc_exec", "_container", "gives no address"),
            "about the state: ssh needs the node's address from /cluster/status", "ct.logs", {"vmid": 201, "unit": "a.service"},
            [], _pve1_without_address),
    Refusal("c", ("lxc_exec", "plan_logs", "one of them"),
            "the tool's own parameters: a unit's journal or a file's tail", "ct.logs", {"vmid": 201}, []),
]


def _id(refusal: Refusal) -> str:
    where = "/".join(refusal.site[:2]) if refusal.site else "analyser"
    return f"{refusal.kind}:{where}:{refusal.tool}"


async def _plan(world: World, tool: str, params: dict[str, Any]) -> Plan | BadInput:
    async with world.host() as host:
        try:
            return await host.plan(tool, params, world.actor)
        except BadInput as exc:
            return exc


def _world(tmp_path: Path, refusal: Refusal) -> World:
    world = World(tmp_path)
    if refusal.setup is not None:
        refusal.setup(world)
    return world


def _analyser_blockers(plan: Plan) -> list[str]:
    return [f"{i.target}: {i.reason}" for i in plan.impacts if i.blocks]


# --- the named tool refuses, and so does its twin --------------------------------------------------------------


@pytest.mark.parametrize("refusal", REFUSALS, ids=_id)
async def test_the_named_tool_refuses(tmp_path: Path, refusal: Refusal) -> None:
    outcome = await _plan(_world(tmp_path, refusal), refusal.tool, refusal.params)
    if refusal.site is not None and refusal.site[2] != "blockers":  # the tool's own early refusal, as its code words it
        assert isinstance(outcome, BadInput) and refusal.site[2] in str(outcome), outcome
    else:
        assert isinstance(outcome, Plan) and outcome.blocked, outcome


@pytest.mark.parametrize(("refusal", "twin", "expect"), [(r, t, e) for r in REFUSALS for t, e in r.twins],
                         ids=[f"{_id(r)}:{t['method']} {t['path']}" for r in REFUSALS for t, _ in r.twins])
async def test_the_api_call_twin_is_refused_too(tmp_path: Path, refusal: Refusal, twin: dict[str, Any], expect: Expect) -> None:
    world = _world(tmp_path, refusal)
    outcome = await _plan(world, "api.call", twin)
    if isinstance(expect, Pve) and expect.status in (400, 501):  # PVE's parameter check or an unknown path: BadInput
        assert isinstance(outcome, BadInput) and f"{expect.status} {expect.text}" in str(outcome), outcome
    elif isinstance(expect, Pve):
        assert isinstance(outcome, Plan) and outcome.blocked, outcome
        assert f"{twin['method']} {twin['path']}: Proxmox would refuse: {expect.text}" in outcome.blockers
    elif isinstance(expect, Rule):
        assert isinstance(outcome, Plan), outcome
        rule = {b for b in _analyser_blockers(outcome) if expect.fragment in b}
        assert rule and rule <= set(outcome.blockers), outcome.blockers
        named = await _plan(_world(tmp_path / "named", refusal), refusal.tool, refusal.params)
        if isinstance(named, Plan):  # the named tool's plan met the same analyser: the same reason, word for word
            assert {b for b in _analyser_blockers(named) if expect.fragment in b} == rule, named.blockers
    else:
        assert isinstance(outcome, Plan) and not outcome.blocked, outcome
        assert {i.effect for i in outcome.impacts} == set(expect.effects), outcome.impacts


def test_each_kind_says_what_its_twins_show() -> None:
    """Kind a twins are Proxmox's answers, kind b twins an analyser's rule; only kind c may be accepted (and say why)."""
    for refusal in REFUSALS:
        expects = {type(e) for _, e in refusal.twins}
        assert expects <= {"a": {Pve}, "b": {Rule}, "c": {Pve, Accepted}}[refusal.kind], refusal
        assert refusal.twins or refusal.kind == "c", f"{_id(refusal)}: a refusal of kind a or b needs its api.call twin"
        assert refusal.rule, refusal


# --- the table cannot fall behind the code -----------------------------------------------------------------------


class Site(NamedTuple):
    pack: str
    function: str
    text: str  # the message's literal parts, "{}" where a value goes; "blockers" for a Draft's blockers
    line: int


def _message(node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return "{}"


def refusal_sites(tools_py: Path) -> Iterator[Site]:
    """Every ``raise BadInput(...)`` and ``blockers=`` in the plan functions of a _tools.py and the helpers they call."""
    pack = tools_py.parent.name.removeprefix("proximo_")
    functions = {n.name: n for n in ast.parse(tools_py.read_text()).body if isinstance(n, ast.FunctionDef)}
    reached: set[str] = set()
    todo = [name for name in functions if name.startswith("plan_")]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        todo += [c.func.id for c in ast.walk(functions[name]) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
                 and c.func.id in functions]
    for name in sorted(reached):
        for node in ast.walk(functions[name]):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and getattr(node.exc.func, "id", None) == "BadInput":
                yield Site(pack, name, _message(node.exc.args[0]) if node.exc.args else "", node.lineno)
            elif isinstance(node, ast.keyword) and node.arg == "blockers":
                yield Site(pack, name, "blockers", node.lineno)


def _sites() -> list[Site]:
    # every module of a pack: a pack in parts (the migration pack) keeps each part's plan functions beside it
    return [site for tools_py in sorted(PLUGINS.glob("*/proximo_*/*.py")) for site in refusal_sites(tools_py)]


def test_every_refusal_site_is_listed() -> None:
    sites = _sites()
    assert len(sites) > 40  # the scan itself still finds what it should
    listed = [r.site for r in REFUSALS if r.site is not None]
    missing = [s for s in sites if not any((p, f) == (s.pack, s.function) and fragment in s.text for p, f, fragment in listed)]
    assert not missing, "refusals made only by a named tool; add them to REFUSALS with their api.call twin:\n" + "\n".join(
        f"  plugins/{s.pack} _tools.py:{s.line} {s.function}: {s.text!r}" for s in missing)
    stale = [site for site in listed if not any((s.pack, s.function) == site[:2] and site[2] in s.text for s in sites)]
    assert not stale, f"REFUSALS names refusal sites that are gone: {stale}"
    ambiguous = [site for site in listed if sum((s.pack, s.function) == site[:2] and site[2] in s.text for s in sites) > 1]
    assert not ambiguous, f"a fragment must name one site: {ambiguous}"


def test_the_scan_finds_a_refusal_it_was_not_told_of(tmp_path: Path) -> None:
    tools_py = tmp_path / "proximo_demo" / "_tools.py"
    tools_py.parent.mkdir()
    tools_py.write_text('''
def _check(view, name):
    if name == "root":
        raise BadInput(f"{name} is protected")

def plan_thing(p, view):
    _check(view, p.name)
    return Draft(steps=[], blockers=["no"])

def read_thing(p, view):
    raise BadInput("a read refuses too, but it changes nothing")
''')
    assert [(s.function, s.text) for s in refusal_sites(tools_py)] == [("_check", "{} is protected"), ("plan_thing", "blockers")]
