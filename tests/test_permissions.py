"""Proxmox's permission checks on writes, in the one model the simulator and the predictor share.

The schema's ``permissions`` (PVE::RPCEnvironment::check_api2_permissions / exec_api2_perm_check, pve-access-control
5ccd07d9) and the handlers' own rules (qemu-server, pve-container, ACL.pm, Pool.pm): a plan the token cannot carry
out is blocked with Proxmox's own text, whichever tool made it, and the simulator answers the request as
pve-api-daemon does. Each case names the Proxmox function whose behaviour it pins.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest

from proximo import BadInput, PveApiError, Risk
from proximo.model import ClusterModel, load_snapshot
from proximo.model._permissions import Caller, permission_note, template_replace
from proximo.sim import demo_snapshot
from proximo.testing import TOKEN_ID, World, snapshot_from

pytestmark = pytest.mark.anyio

OWNER = "proximo@pve"
VM_CONFIG = "VM.Config.Disk|VM.Config.CDROM|VM.Config.CPU|VM.Config.Memory|VM.Config.Network|VM.Config.HWType|VM.Config.Options|VM.Config.Cloudinit"
NOT_CHECKED = ("Permissions not checked: this state holds no access data (no /access/users), so Proximo cannot tell "
               "whether the token may make these calls; Proxmox decides when the plan is applied.")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def acl(path: str, kind: str, ugid: str, role: str, propagate: int = 1) -> dict[str, Any]:
    return {"path": path, "type": kind, "ugid": ugid, "roleid": role, "propagate": propagate}


def both(path: str, role: str, propagate: int = 1) -> list[dict[str, Any]]:
    """The same grant for Proximo's user and its privilege-separated token (the token gets the intersection)."""
    return [acl(path, "user", OWNER, role, propagate), acl(path, "token", TOKEN_ID, role, propagate)]


def demo_with(*rows: dict[str, Any], privsep: int = 1, roles: dict[str, str] | None = None) -> dict[str, Any]:
    """The demo cluster with Proximo's own ACL entries replaced by ``rows``."""
    doc = copy.deepcopy(demo_snapshot())
    api = doc["api"]
    api["/access/acl"] = [a for a in api["/access/acl"] if a["ugid"] not in (OWNER, TOKEN_ID)] + list(rows)
    for user in api["/access/users?full=1"]:
        for token in user.get("tokens") or []:
            if f"{user['userid']}!{token['tokenid']}" == TOKEN_ID:
                token["privsep"] = privsep
    for roleid, privs in (roles or {}).items():
        api["/access/roles"].append({"roleid": roleid, "privs": privs, "special": 0})
    return doc


def model_with(*rows: dict[str, Any], privsep: int = 1, roles: dict[str, str] | None = None) -> ClusterModel:
    return load_snapshot(demo_with(*rows, privsep=privsep, roles=roles))


def refusal(world: World, method: str, path: str, params: dict[str, Any] | None = None, user: str = TOKEN_ID) -> PveApiError:
    """What the shared model answers ``user`` for this request (on a copy: nothing changes)."""
    with pytest.raises(PveApiError) as info:
        world.packs.semantics.execute(world.model.copy(), method, path, params or {}, user=user)
    return info.value


def allowed(world: World, method: str, path: str, params: dict[str, Any] | None = None, user: str = TOKEN_ID) -> None:
    world.packs.semantics.execute(world.model.copy(), method, path, params or {}, user=user)


async def plan_of(world: World, tool: str, params: dict[str, Any]) -> Any:
    async with world.host() as host:
        return await host.plan(tool, params, world.actor)


# --- the evaluator: RPCEnvironment ------------------------------------------------------------------------


def test_template_replace_fills_what_perl_finds_true_and_dashes_the_rest() -> None:
    """PVE::Tools::template_replace: ``$data->{$3} || '-'``."""
    assert template_replace("/vms/{vmid}", {"vmid": 100}) == "/vms/100"
    assert template_replace("/pool/{pool}", {}) == "/pool/-"
    assert template_replace("/vms/{vmid}", {"vmid": "0"}) == "/vms/-"
    assert template_replace("/sdn/zones/{zone}/{vnet}", {"zone": "z", "vnet": ""}) == "/sdn/zones/z/-"


def test_a_privilege_separated_token_gets_the_intersection_with_its_owner() -> None:
    """RPCEnvironment::permissions: privsep token = own ACL AND owner's; no privsep = exactly the owner's."""
    rows = [acl("/", "token", TOKEN_ID, "PVEVMAdmin"), acl("/", "user", OWNER, "PVEVMUser")]
    token = Caller(model_with(*rows), TOKEN_ID)
    assert token.check("/vms/104", ["VM.PowerMgmt"]) is True  # both have it
    with pytest.raises(PveApiError, match=r"^403 Permission check failed \(/vms/104, VM.Allocate\)$"):
        token.check("/vms/104", ["VM.Allocate"])  # the token's role has it, its owner's does not
    shared = Caller(model_with(*rows, privsep=0), TOKEN_ID)
    assert shared.check("/vms/104", ["VM.PowerMgmt"]) and not shared.check("/vms/104", ["VM.Allocate"], noerr=True)
    owners_only = Caller(model_with(acl("/", "user", OWNER, "PVEVMAdmin"), privsep=0), TOKEN_ID)
    assert owners_only.check("/vms/104", ["VM.Allocate"])  # no ACL of its own: the owner's privileges, all of them
    alone = Caller(model_with(acl("/", "user", OWNER, "PVEVMAdmin")), TOKEN_ID)
    assert not alone.check("/vms/104", ["VM.Audit"], noerr=True)  # privsep without its own ACL: nothing


def test_check_any_names_every_privilege_and_check_the_first_missing() -> None:
    caller = Caller(model_with(*both("/", "PVEAuditor")), TOKEN_ID)
    with pytest.raises(PveApiError, match=r"Permission check failed \(/storage, Datastore.Allocate\|Permissions.Modify\)"):
        caller.check_any("/storage", ["Datastore.Allocate", "Permissions.Modify"])
    with pytest.raises(PveApiError, match=r"Permission check failed \(/vms/104, VM.Allocate\)"):
        caller.check("/vms/104", ["VM.Audit", "VM.Allocate", "VM.Clone"])


def test_root_at_pam_passes_every_check_but_a_token_of_root_is_not_root() -> None:
    """check_api2_permissions returns early for ``$username eq 'root@pam'``; root@pam!x is another name."""
    doc = demo_with(*both("/", "Administrator"))
    root = next(u for u in doc["api"]["/access/users?full=1"] if u["userid"] == "root@pam")
    root["tokens"] = [{"tokenid": "ops", "privsep": 0, "expire": 0}]
    model = load_snapshot(doc)
    token = Caller(model, "root@pam!ops")
    assert token.check("/", ["Sys.Modify", "Permissions.Modify"])  # no privsep: root's privileges, every one
    with pytest.raises(PveApiError, match=r"Permission check failed \(user != root@pam\)"):
        token.check_api2_permissions(None, {})  # a method without permissions
    Caller(model, "root@pam").check_api2_permissions(None, {})


def test_a_method_without_permissions_is_root_at_pams_alone(tmp_path: Path) -> None:
    """POST /cluster/config has no ``permissions``: 403 before anything else, even for Administrator."""
    world = World(tmp_path)
    with pytest.raises(PveApiError) as info:
        world.packs.semantics.bind(world.model, "POST", "/cluster/config", {"clustername": "x"}, caller=Caller(world.model, TOKEN_ID))
    assert (info.value.status, info.value.message) == (403, "Permission check failed (user != root@pam)")


def test_api_tokens_are_refused_where_the_schema_says_allowtoken_0(tmp_path: Path) -> None:
    """PVE::HTTPServer::rest_handler: POST /access/ticket, PUT /access/password and TFA writes need a ticket."""
    world = World(tmp_path)
    with pytest.raises(PveApiError) as info:
        world.packs.semantics.bind(world.model, "PUT", "/access/password", {"userid": "bob@pve", "password": "x" * 10},
                                   caller=Caller(world.model, TOKEN_ID))
    assert info.value.status == 403
    assert info.value.message == "Permission check failed (URI '/access/password' not available with API token, need proper ticket.\n)"


# --- check kinds through the shared model ------------------------------------------------------------------


def test_perm_with_any_on_a_path_filled_from_the_path(tmp_path: Path) -> None:
    """['perm', '/vms/{vmid}', [VM.Config.*], any => 1] (update_vm): one VM.Config privilege on that guest."""
    world = World(tmp_path, demo_with(*both("/vms/105", "PVEVMAdmin")))
    error = refusal(world, "PUT", "/nodes/pve1/qemu/104/config", {"cores": 2})
    assert (error.status, error.message) == (403, f"Permission check failed (/vms/104, {VM_CONFIG})")
    allowed(world, "PUT", "/nodes/pve1/qemu/105/config", {"cores": 2})


def test_perm_with_a_path_filled_from_a_body_parameter(tmp_path: Path) -> None:
    """['perm-modify', '{path}'] (update_acl) takes {path} from the request body."""
    world = World(tmp_path, demo_with(*both("/", "PVEAdmin")))
    error = refusal(world, "PUT", "/access/acl", {"path": "/nodes", "roles": "PVEAuditor", "users": "bob@pve"})
    assert (error.status, error.message) == (403, "Permission check failed (/nodes, Permissions.Modify)")


def test_and_or_and_require_param_of_clone(tmp_path: Path) -> None:
    """clone_vm: ['and', perm VM.Clone, ['or', perm /vms/{newid} VM.Allocate, perm /pool/{pool} VM.Allocate require_param pool]]."""
    clone = "/nodes/pve1/qemu/9000/clone"
    only_clone = World(tmp_path / "a", demo_with(*both("/vms/9000", "PVETemplateUser")))
    error = refusal(only_clone, "POST", clone, {"newid": 150})
    assert (error.status, error.message) == (403, "Permission check failed")  # the 'or' failed: no detail
    error = refusal(only_clone, "POST", clone, {"newid": 150, "pool": "prod"})
    assert error.message == "Permission check failed"
    no_clone = World(tmp_path / "b", demo_with(*both("/", "PVEVMUser")))
    assert refusal(no_clone, "POST", clone, {"newid": 150}).message == "Permission check failed (/vms/9000, VM.Clone)"
    in_pool = World(tmp_path / "c", demo_with(*both("/vms/9000", "PVETemplateUser"), *both("/pool/prod", "PVEVMAdmin"),
                                              *both("/storage", "PVEDatastoreUser"), *both("/sdn", "PVESDNUser")))
    refusal_or_none = in_pool.packs.semantics.execute(in_pool.model.copy(), "POST", clone, {"newid": 150, "pool": "prod"}, user=TOKEN_ID)
    assert str(refusal_or_none).startswith("UPID:")


def test_userid_param_and_userid_group(tmp_path: Path) -> None:
    """create_user: ['and', ['userid-param', 'Realm.AllocateUser'], ['userid-group', ['User.Modify'], groups_param => 'create']]."""
    world = World(tmp_path, demo_with(*both("/access/realm/pve", "PVEUserAdmin"),
                                      acl("/access/groups/operators", "user", OWNER, "PVEUserAdmin"),
                                      acl("/access/groups/operators", "token", TOKEN_ID, "PVEUserAdmin")))
    allowed(world, "POST", "/access/users", {"userid": "erin@pve", "groups": "operators"})
    error = refusal(world, "POST", "/access/users", {"userid": "erin@pve", "groups": "admins"})
    assert error.message == "Permission check failed (/access/groups/admins, User.Modify)"
    assert refusal(world, "POST", "/access/users", {"userid": "erin@pve"}).message == "Permission check failed (/access/groups, User.Modify)"
    assert refusal(world, "POST", "/access/users", {"userid": "erin@pam"}).message == "Permission check failed (/access/realm/pam, Realm.AllocateUser)"
    # update_user (groups_param => 'update'): without User.Modify on /access/groups, the groups must be named and
    # modifiable, and the user must be in one of them
    allowed(world, "PUT", "/access/users/bob@pve", {"comment": "ops", "groups": "operators"})
    assert refusal(world, "PUT", "/access/users/bob@pve", {"comment": "ops"}).message == "Permission check failed (/access/groups, User.Modify)"
    assert refusal(world, "PUT", "/access/users/alice@pve", {"groups": "operators"}).message == "Permission check failed"
    # check_user_exist runs first, as a plain die
    error = refusal(world, "PUT", "/access/users/nobody@pve", {"comment": "x"})
    assert (error.status, error.message) == (500, "no such user ('nobody@pve')")


def test_userid_param_self_or_userid_group_for_tokens(tmp_path: Path) -> None:
    """Token endpoints: ['or', ['userid-param', 'self'], ['userid-group', ['User.Modify']]]: a token is not its owner."""
    world = World(tmp_path, demo_with(*both("/", "PVEAuditor")))
    error = refusal(world, "POST", f"/access/users/{OWNER}/token/second", {})
    assert (error.status, error.message) == (403, "Permission check failed")
    allowed(world, "POST", f"/access/users/{OWNER}/token/second", {}, user=OWNER)  # the user itself may


def test_user_all_leaves_it_to_the_handler(tmp_path: Path) -> None:
    """POST /nodes/{node}/qemu is ``user => 'all'``: create_vm raises the bare raise_perm_exc() without VM.Allocate."""
    world = World(tmp_path, demo_with(*both("/", "PVEAuditor")))
    error = refusal(world, "POST", "/nodes/pve1/qemu", {"vmid": 150, "memory": 512})
    assert (error.status, error.message) == (403, "Permission check failed")
    pool = World(tmp_path / "p", demo_with(*both("/pool/prod", "PVEVMAdmin"), *both("/", "PVEAuditor", 0)))
    allowed(pool, "POST", "/nodes/pve1/qemu", {"vmid": 150, "memory": 512, "pool": "prod"})  # VM.Allocate on the pool
    error = refusal(pool, "POST", "/nodes/pve1/qemu", {"vmid": 150, "memory": 512, "pool": "nope"})
    assert (error.status, error.message) == (403, "Permission check failed (pool 'nope' does not exist)")


@pytest.mark.parametrize("method,path,params,message", [
    ("POST", "/storage", {"storage": "s2", "type": "dir", "path": "/srv/s2"}, "/storage, Datastore.Allocate"),
    ("DELETE", "/storage/local-zfs", {}, "/storage, Datastore.Allocate"),
    ("POST", "/access/roles", {"roleid": "R", "privs": "VM.Audit"}, "/access, Sys.Modify"),
    ("POST", "/access/groups", {"groupid": "g"}, "/access/groups, Group.Allocate"),
    ("POST", "/nodes/pve1/qemu/104/snapshot", {"snapname": "s1"}, "/vms/104, VM.Snapshot"),
    ("POST", "/nodes/pve1/qemu/104/snapshot/s1/rollback", {}, "/vms/104, VM.Snapshot|VM.Snapshot.Rollback"),
    ("POST", "/nodes/pve1/qemu/104/status/stop", {}, "/vms/104, VM.PowerMgmt"),
    ("POST", "/nodes/pve1/lxc/201/status/start", {}, "/vms/201, VM.PowerMgmt"),
    ("DELETE", "/nodes/pve3/qemu/108", {}, "/vms/108, VM.Allocate"),
    ("POST", "/nodes/pve1/qemu/104/firewall/rules", {"type": "in", "action": "ACCEPT"}, "/vms/104, VM.Config.Network"),
    ("PUT", "/nodes/pve1/firewall/options", {"enable": 1}, "/nodes/pve1, Sys.Modify"),
    ("PUT", "/cluster/firewall/options", {"enable": 1}, "/, Sys.Modify"),
    ("PUT", "/pools", {"poolid": "prod", "comment": "x"}, "/pool/prod, Pool.Allocate"),
])
def test_the_schemas_checks_of_the_modelled_writes(tmp_path: Path, method: str, path: str, params: dict[str, Any], message: str) -> None:
    """Read-only (PVEAuditor on /): every write is refused by its schema ``permissions`` with PVE's text."""
    world = World(tmp_path, demo_with(*both("/", "PVEAuditor")))
    error = refusal(world, method, path, params)
    assert (error.status, error.message) == (403, f"Permission check failed ({message})")


def test_raw_lxc_keys_are_not_api_parameters(tmp_path: Path) -> None:
    """``lxc.*`` lines exist only in the config file: the API's schema refuses them, for root@pam too."""
    error = refusal(World(tmp_path), "PUT", "/nodes/pve2/lxc/204/config", {"lxc.apparmor.profile": "unconfined"}, user="root@pam")
    assert error.status == 400 and "lxc.apparmor.profile" in error.errors


# --- handler rules: QEMU (qemu-server API2/Qemu.pm) --------------------------------------------------------


@pytest.mark.parametrize("key,value", [("args", "-foo"), ("hookscript", "local:snippets/hook.sh"), ("affinity", "0-3"),
                                       ("vmgenid", "1")])
def test_options_in_no_class_are_root_at_pams_alone(tmp_path: Path, key: str, value: str) -> None:
    """$check_vm_modify_config_perm: an option in none of its classes dies "only root can set '<opt>' config"."""
    world = World(tmp_path)  # Proximo's token is Administrator: still not root@pam
    error = refusal(world, "PUT", "/nodes/pve1/qemu/104/config", {key: value})
    assert (error.status, error.message) == (500, f"only root can set '{key}' config")
    allowed(world, "PUT", "/nodes/pve1/qemu/104/config", {key: value}, user="root@pam")


@pytest.mark.parametrize("key,value,privilege", [
    ("cores", 2, "VM.Config.CPU"), ("memory", 2048, "VM.Config.Memory"), ("vga", "std", "VM.Config.HWType"),
    ("onboot", 1, "VM.Config.Options"), ("boot", "order=scsi0", "VM.Config.Disk"), ("freeze", 1, "VM.PowerMgmt"),
    ("net0", "virtio,bridge=vmbr0", "VM.Config.Network"),
])
def test_each_option_class_needs_its_own_privilege(tmp_path: Path, key: str, value: Any, privilege: str) -> None:
    """$check_vm_modify_config_perm: cpu, memory, hwtype, general, power, disk and network options."""
    others = sorted({"VM.Config.CPU", "VM.Config.Memory", "VM.Config.HWType", "VM.Config.Options", "VM.Config.Disk",
                     "VM.PowerMgmt", "VM.Config.Network", "VM.Audit", "SDN.Use"} - {privilege})
    world = World(tmp_path, demo_with(*both("/", "Partial"), roles={"Partial": ",".join(others)}))
    error = refusal(world, "PUT", "/nodes/pve3/qemu/108/config", {key: value})
    assert (error.status, error.message) == (403, f"Permission check failed (/vms/108, {privilege})")
    with_it = World(tmp_path / "all", demo_with(*both("/", "Partial"), roles={"Partial": ",".join([*others, privilege])}))
    allowed(with_it, "PUT", "/nodes/pve3/qemu/108/config", {key: value})


def test_startup_also_needs_sys_modify_on_root(tmp_path: Path) -> None:
    world = World(tmp_path, demo_with(*both("/", "PVEVMAdmin")))
    assert refusal(world, "PUT", "/nodes/pve3/qemu/108/config", {"startup": "order=1"}).message == "Permission check failed (/, Sys.Modify)"


def test_a_new_disk_needs_space_on_its_storage_and_a_cdrom_its_own_privilege(tmp_path: Path) -> None:
    """$check_storage_access (Datastore.AllocateSpace for STORAGE:SIZE) and $check_drive_perms (CD-ROM vs disk)."""
    world = World(tmp_path, demo_with(*both("/vms", "PVEVMAdmin"), *both("/sdn", "PVESDNUser")))
    error = refusal(world, "PUT", "/nodes/pve3/qemu/108/config", {"scsi1": "local-zfs:4"})
    assert error.message == "Permission check failed (/storage/local-zfs, Datastore.AllocateSpace)"
    cdrom_only = World(tmp_path / "c", demo_with(*both("/", "CD"), roles={"CD": "VM.Config.CDROM,Datastore.Audit,VM.Audit"}))
    allowed(cdrom_only, "PUT", "/nodes/pve3/qemu/108/config", {"ide2": "local:iso/debian-12.5.0-amd64-netinst.iso,media=cdrom"})
    error = refusal(cdrom_only, "PUT", "/nodes/pve3/qemu/108/config", {"delete": "scsi0"})
    assert error.message == "Permission check failed (/vms/108, VM.Config.Disk)"
    error = refusal(world, "PUT", "/nodes/pve3/qemu/108/config", {"scsi1": "/dev/sdb"})
    assert (error.status, error.message) == (500, "Only root can pass arbitrary filesystem paths.")


def test_a_nic_needs_sdn_use_on_its_bridge(tmp_path: Path) -> None:
    """QemuServer::check_bridge_access -> GuestHelpers::check_vnet_access: PVEVMAdmin has no SDN.Use."""
    world = World(tmp_path, demo_with(*both("/", "PVEVMAdmin")))
    error = refusal(world, "PUT", "/nodes/pve3/qemu/108/config", {"net1": "virtio,bridge=vmbr0"})
    assert error.message == "Permission check failed (/sdn/zones/localnetwork/vmbr0, SDN.Use)"
    error = refusal(world, "PUT", "/nodes/pve3/qemu/108/config", {"net1": "virtio,bridge=vmbr0,tag=20"})
    assert error.message == "Permission check failed (/sdn/zones/localnetwork/vmbr0/20, SDN.Use)"
    vlan = World(tmp_path / "v", demo_with(*both("/", "PVEVMAdmin"), *both("/sdn/zones/localnetwork/vmbr0/20", "PVESDNUser")))
    allowed(vlan, "PUT", "/nodes/pve3/qemu/108/config", {"net1": "virtio,bridge=vmbr0,tag=20"})


def test_host_devices_are_root_at_pams(tmp_path: Path) -> None:
    """check_usb_perm / check_hostpci_perm / update_vm_api's serial rule."""
    world = World(tmp_path)
    assert refusal(world, "PUT", "/nodes/pve3/qemu/108/config", {"usb0": "host=1234:5678"}).message == \
        "only root can set 'usb0' config for real devices"
    assert refusal(world, "PUT", "/nodes/pve3/qemu/108/config", {"hostpci0": "0000:01:00.0"}).message == \
        "only root can set 'hostpci0' config for non-mapped devices"
    assert refusal(world, "PUT", "/nodes/pve3/qemu/108/config", {"serial0": "/dev/ttyS0"}).message == \
        "only root can modify 'serial0' config for real devices"
    allowed(world, "PUT", "/nodes/pve3/qemu/108/config", {"usb0": "host=spice"})
    allowed(world, "PUT", "/nodes/pve3/qemu/108/config", {"serial0": "socket"})


def test_skiplock_is_root_at_pams(tmp_path: Path) -> None:
    """raise_param_exc({ skiplock => "Only root may use this option." }): a 400, before the lock is looked at."""
    world = World(tmp_path)
    error = refusal(world, "POST", "/nodes/pve1/qemu/104/status/stop", {"skiplock": 1})
    assert (error.status, error.errors) == (400, {"skiplock": "Only root may use this option."})


# --- handler rules: containers (pve-container LXC.pm check_ct_modify_config_perm) ----------------------------


@pytest.mark.parametrize("params,message", [
    ({"mp2": "/srv/host,mp=/mnt/host"}, "mount point type bind is only allowed for root@pam"),
    ({"mp2": "/dev/sdb1,mp=/mnt/disk"}, "mount point type device is only allowed for root@pam"),
    ({"dev0": "/dev/ttyUSB0"}, "configuring device passthrough is only allowed for root@pam"),
    ({"features": "nesting=1,keyctl=1"}, "changing feature flags (except nesting) is only allowed for root@pam"),
    ({"hookscript": "local:snippets/hook.sh"}, "changing the hookscript is only allowed for root@pam"),
])
def test_container_options_only_root_may_set(tmp_path: Path, params: dict[str, Any], message: str) -> None:
    world = World(tmp_path)
    error = refusal(world, "PUT", "/nodes/pve2/lxc/204/config", params)
    assert (error.status, error.message) == (403, f"Permission check failed ({message})")
    allowed(world, "PUT", "/nodes/pve2/lxc/204/config", params, user="root@pam")


def test_container_nesting_needs_vm_allocate_and_a_privileged_container_root(tmp_path: Path) -> None:
    world = World(tmp_path, demo_with(*both("/", "NoAlloc"), roles={"NoAlloc": "VM.Audit,VM.Config.Options,VM.Config.Disk"}))
    assert refusal(world, "PUT", "/nodes/pve2/lxc/204/config", {"delete": "features"}).message == \
        "Permission check failed (/vms/204, VM.Allocate)"
    world.model.guests[204].config["unprivileged"] = 0
    assert refusal(world, "PUT", "/nodes/pve2/lxc/204/config", {"features": "nesting=0"}).message == \
        "Permission check failed (changing feature flags for privileged container is only allowed for root@pam)"


def test_creating_a_privileged_container_needs_sys_modify(tmp_path: Path) -> None:
    world = World(tmp_path, demo_with(*both("/", "PVEAdmin")))
    params = {"vmid": 150, "ostemplate": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst", "rootfs": "local-zfs:4"}
    assert refusal(world, "POST", "/nodes/pve1/lxc", {**params, "unprivileged": 0}).message == "Permission check failed (/, Sys.Modify)"
    allowed(world, "POST", "/nodes/pve1/lxc", params)


# --- handler rules: ACL.pm update_acl, Pool.pm update_pool -------------------------------------------------


def test_granting_needs_permissions_modify_or_a_superset_of_the_roles_privileges(tmp_path: Path) -> None:
    """update_acl: perm-modify lets VM.Allocate through on /vms/<id>, then only roles whose privileges the caller
    holds (propagated, for a propagating grant); raised inside the user.cfg lock, so a plain 500."""
    world = World(tmp_path, demo_with(*both("/vms/108", "PVEVMAdmin", 0)))
    grant = {"path": "/vms/108", "users": "bob@pve"}
    allowed(world, "PUT", "/access/acl", {**grant, "roles": "PVEVMUser", "propagate": 0})
    error = refusal(world, "PUT", "/access/acl", {**grant, "roles": "PVEAdmin", "propagate": 0})
    assert (error.status, error.message) == (500, "ACL update failed: 400 Parameter verification failed.\nrole: Cannot add role "
                                                  "'PVEAdmin' - requires 'Permissions.Modify' or superset of privileges.")
    error = refusal(world, "PUT", "/access/acl", {**grant, "roles": "PVEVMUser"})  # propagate defaults to 1
    assert "Cannot add role 'PVEVMUser' with propagation - requires 'Permissions.Modify' or propagated superset" in error.message
    assert refusal(world, "PUT", "/access/acl", {**grant, "roles": "NoAccess", "propagate": 0}).message.endswith(
        "role: Cannot add role 'NoAccess' - requires 'Permissions.Modify'")
    error = refusal(world, "PUT", "/access/acl", {"path": "/vms/104", "users": "bob@pve", "roles": "PVEVMUser"})
    assert (error.status, error.message) == (403, "Permission check failed (/vms/104, Permissions.Modify|VM.Allocate)")


def test_pool_membership_needs_the_right_to_modify_the_members_permissions(tmp_path: Path) -> None:
    world = World(tmp_path, demo_with(*both("/pool", "PVEPoolAdmin"), *both("/", "PVEAuditor", 0)))
    error = refusal(world, "PUT", "/pools", {"poolid": "prod", "storage": "local"})
    assert (error.status, error.message) == (500, "update pools failed: 403 Permission check failed (/storage/local, "
                                                  "Permissions.Modify|Datastore.Allocate)")


# --- through the pipeline: a blocked plan, whichever tool made it ------------------------------------------


@pytest.mark.parametrize("tool,params", [
    ("guest.config.set", {"vmid": 104, "args": "-foo"}),
    ("api.call", {"method": "POST", "path": "/nodes/pve1/qemu/104/config", "params": {"args": "-foo"}}),
])
async def test_a_root_only_option_blocks_the_plan_with_proxmoxs_text(tmp_path: Path, tool: str, params: dict[str, Any]) -> None:
    plan = await plan_of(World(tmp_path), tool, params)
    assert plan.blocked
    assert plan.blockers == ["POST /nodes/pve1/qemu/104/config: Proxmox would refuse: only root can set 'args' config"]


@pytest.mark.parametrize("tool,params", [
    ("guest.config.set", {"vmid": 204, "mp1": "/srv/host,mp=/mnt/host"}),
    ("api.call", {"method": "PUT", "path": "/nodes/pve2/lxc/204/config", "params": {"mp1": "/srv/host,mp=/mnt/host"}}),
])
async def test_a_container_bind_mount_blocks_the_plan(tmp_path: Path, tool: str, params: dict[str, Any]) -> None:
    plan = await plan_of(World(tmp_path), tool, params)
    assert plan.blocked and plan.blockers == [
        "PUT /nodes/pve2/lxc/204/config: Proxmox would refuse: Permission check failed (mount point type bind is only allowed for root@pam)"]


@pytest.mark.parametrize("tool,params", [
    ("access.acl.grant", {"path": "/", "roles": "PVEAuditor", "users": "bob@pve"}),
    ("api.call", {"method": "PUT", "path": "/access/acl", "params": {"path": "/", "roles": "PVEAuditor", "users": "bob@pve"}}),
])
async def test_an_acl_grant_needs_permissions_modify(tmp_path: Path, tool: str, params: dict[str, Any]) -> None:
    plan = await plan_of(World(tmp_path, demo_with(*both("/", "PVEAdmin"))), tool, params)
    assert plan.blockers == ["PUT /access/acl: Proxmox would refuse: Permission check failed (/, Permissions.Modify)"]
    ok = await plan_of(World(tmp_path / "admin"), tool, params)  # the demo's token: Administrator
    assert not ok.blocked and ok.complete


async def test_the_cluster_firewall_needs_sys_modify_and_a_guests_vm_config_network(tmp_path: Path) -> None:
    world = World(tmp_path, demo_with(*both("/", "PVEAdmin")))
    plan = await plan_of(world, "api.call", {"method": "PUT", "path": "/cluster/firewall/options", "params": {"enable": 0}})
    assert plan.blockers == ["PUT /cluster/firewall/options: Proxmox would refuse: Permission check failed (/, Sys.Modify)"]
    node = await plan_of(world, "api.call", {"method": "PUT", "path": "/nodes/pve1/firewall/options", "params": {"enable": 0}})
    assert node.blockers == ["PUT /nodes/pve1/firewall/options: Proxmox would refuse: Permission check failed (/nodes/pve1, Sys.Modify)"]
    guest = await plan_of(world, "api.call", {"method": "PUT", "path": "/nodes/pve1/qemu/104/firewall/options", "params": {"enable": 1}})
    assert not guest.blocked  # PVEAdmin has VM.Config.Network


async def test_a_write_the_token_may_make_plans_as_before(tmp_path: Path) -> None:
    plan = await plan_of(World(tmp_path, demo_with(*both("/", "PVEAdmin"))), "guest.config.set", {"vmid": 108, "cores": 4})
    assert not plan.blocked and plan.complete and plan.risk is Risk.MEDIUM
    assert not any(n.startswith("Permissions") for n in plan.notes)


async def test_a_bad_parameter_only_root_may_pass_is_bad_input(tmp_path: Path) -> None:
    """PVE answers 400 (raise_param_exc); the predictor treats a 400 as wrong input, as for any 400."""
    with pytest.raises(BadInput, match="skiplock: Only root may use this option"):
        await plan_of(World(tmp_path), "guest.stop", {"vmid": 104, "skiplock": True})


def test_notes_and_inverse_are_not_requests(tmp_path: Path) -> None:
    """SemanticsRegistry.notes and .inverse bind without a caller: no permission is checked."""
    from proximo import ApiCall

    world = World(tmp_path, demo_with(*both("/", "PVEAuditor")))
    step = ApiCall("DELETE", "/storage/local-zfs")
    assert refusal(world, "DELETE", "/storage/local-zfs").status == 403
    assert world.packs.semantics.notes(world.model, step)
    assert world.packs.semantics.inverse(world.model, step)


# --- the simulator answers as pve-api-daemon does ----------------------------------------------------------


async def test_the_simulator_answers_403_and_500_over_http(tmp_path: Path) -> None:
    world = World(tmp_path, demo_with(*both("/", "PVEAdmin")))
    auth = {"Authorization": f"PVEAPIToken={TOKEN_ID}={world.secret}"}
    async with httpx.AsyncClient(transport=world.transport(), base_url="http://pve.sim:8006/api2/json") as client:
        firewall = await client.put("/cluster/firewall/options", data={"enable": "1"}, headers=auth)
        args = await client.post("/nodes/pve1/qemu/104/config", data={"args": "-foo"}, headers=auth)
        ok = await client.post("/nodes/pve1/qemu/104/config", data={"onboot": "1"}, headers=auth)
    assert firewall.status_code == 403
    assert firewall.json() == {"data": None, "message": "Permission check failed (/, Sys.Modify)\n"}
    assert args.status_code == 500 and args.json()["message"] == "only root can set 'args' config\n"
    assert ok.status_code == 200 and ok.json()["data"].startswith("UPID:pve1:")
    assert world.model.firewall.cluster.options.get("enable") == 0 and "args" not in world.model.guests[104].config


# --- what the checks are judged on ------------------------------------------------------------------------


async def test_without_access_data_the_plan_says_permissions_were_not_checked(tmp_path: Path) -> None:
    """A hand-written snapshot without /access/users: the checks cannot be evaluated; they pass and the plan says so."""
    api = {k: v for k, v in demo_snapshot()["api"].items() if not k.startswith("/access") and not k.startswith("/pools")}
    world = World(tmp_path, snapshot_from(api))
    plan = await plan_of(world, "api.call", {"method": "PUT", "path": "/storage/local", "params": {"content": "iso,backup"}})
    assert not plan.blocked and NOT_CHECKED in plan.notes
    args = await plan_of(world, "guest.config.set", {"vmid": 104, "args": "-foo"})  # a rule that needs no ACL still holds
    assert args.blockers == ["POST /nodes/pve1/qemu/104/config: Proxmox would refuse: only root can set 'args' config"]
    assert permission_note(world.model) == NOT_CHECKED


async def test_a_token_that_cannot_audit_access_is_checked_on_its_own_permissions(tmp_path: Path) -> None:
    """PVE shortens /access/acl and /access/users for it (never a 403): the plan is incomplete, and the checks use
    its own GET /access/permissions answer."""
    world = World(tmp_path, demo_with(*both("/vms", "PVEVMAdmin"), *both("/sdn", "PVESDNUser")))
    async with world.host() as host:
        state = await host.state()
        plan = await host.plan("guest.config.set", {"vmid": 108, "cores": 4}, world.actor)
        refused = await host.plan("storage.update", {"storage": "local", "content": "iso,backup"}, world.actor)
    # nor does PVE list it a storage or a pool it may not audit (partial_cluster_reads)
    assert state.unseen == ["/access/acl", "/access/users?full=1", "pools it may not audit (no Pool.Audit on /pool)",
                            "storages it may not audit (no Datastore.Audit on /storage)"]
    assert state.model.own_permissions is not None
    assert not plan.blocked and not plan.complete and plan.risk is Risk.HIGH
    assert any(n.startswith("Permissions checked against the token's own GET /access/permissions") for n in plan.notes)
    assert refused.blockers == ["PUT /storage/local: Proxmox would refuse: Permission check failed (/storage, Datastore.Allocate)"]


def test_the_own_answer_is_exact_where_listed_and_inherited_below() -> None:
    """get_effective_permissions lists every ACL node: elsewhere roles() takes the deepest level with propagating entries."""
    model = ClusterModel(own_permissions={"/": {"VM.Audit": 1, "Sys.Audit": 0}, "/vms": {"VM.PowerMgmt": 0},
                                          "/storage": {"Datastore.Audit": 1}, "/storage/local": {"Datastore.AllocateSpace": 0}})
    caller = Caller(model, TOKEN_ID)
    assert caller.basis == "own"
    assert not caller.check("/storage/local", ["Datastore.Audit"], noerr=True)  # listed: exactly that
    assert caller.check("/storage/nfs-backup", ["Datastore.Audit"])  # from /storage, which propagates it
    assert caller.check("/vms/105", ["VM.Audit"])  # /vms propagates nothing: from /
    assert not caller.check("/vms/105", ["VM.PowerMgmt"], noerr=True)
    assert not caller.check("/nodes/pve1", ["Sys.Audit"], noerr=True)  # not propagated from /
