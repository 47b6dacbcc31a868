"""The cluster model: what a Proxmox VE cluster looks like through its API, typed where blast radius needs it.

Every entity keeps the API rows it was read from (``raw`` and friends), so nothing a real cluster returns
is lost and the simulator can render it back unchanged. Semantics (``_semantics.py``) mutate the model;
the predictor runs them on a copy; analysers compare two models.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from typing import Any, Literal

import msgspec

from ..errors import PveApiError
from ..pve._apischema import ApiSchema, release_of, schema_for
from ._drives import DriveError, GuestVolume, guest_volumes, write_guest_config_file, write_pct_config_file
from ._firewall import Firewall
from ._network import NetworkUnknown, active_rows, without_stamps
from ._volumes import VolumeError, parse_volname_for, parse_volume_id

GuestKind = Literal["qemu", "lxc"]

# The guest that owns a volume, from its name (vm-104-disk-0, subvol-201-disk-1, base-9000-disk-0/vm-120-disk-0): for the
# names the model cannot parse with their storage's plugin.
_OWNER_RE = re.compile(r"(?:^|[:/])(?:vm|base|subvol|basevol)-([0-9]+)-[^/]*$")
# The only storage type whose volumes have the ``replicate`` feature (pve-storage src/PVE/Storage/ZFSPoolPlugin.pm
# volume_has_feature; pvesr.pm's $replicatable_storage_types on the target).
REPLICABLE_STORAGE_TYPE = "zfspool"

# PVE::Storage::Plugin @SHARED_STORAGE: these types are shared whatever the config says.
SHARED_STORAGE_TYPES = frozenset({"iscsi", "nfs", "cifs", "rbd", "cephfs", "iscsidirect", "glusterfs", "zfs", "drbd", "pbs"})
# on_delete_hook of these plugins removes credentials PVE stored (pve-storage src/PVE/Storage/<Type>Plugin.pm).
CREDENTIAL_STORAGE_TYPES = {
    "cifs": "the CIFS credentials file",
    "pbs": "the PBS password, encryption key and master public key",
    "rbd": "the Ceph keyring and ceph config",
    "cephfs": "the CephFS secret",
    "esxi": "the ESXi credentials",
}


def partial_access_reads(own_permissions: dict[str, dict[str, int]] | None) -> list[str]:
    """The /access lists a token with these privileges (its GET /access/permissions) sees only part of.

    PVE shortens them, never refuses them: every ACL entry is listed only to Sys.Audit on /access (ACL.pm
    read_acl), every user only to User.Modify or Sys.Audit on /access/groups (User.pm index). Nothing when
    the token's privileges were not read.
    """
    if own_permissions is None:
        return []
    groups = own_permissions.get("/access/groups", {})
    partial = [] if "Sys.Audit" in own_permissions.get("/access", {}) else ["/access/acl"]
    return partial + ([] if "Sys.Audit" in groups or "User.Modify" in groups else ["/access/users?full=1"])


# What a token must hold on each root for PVE to list every object of that kind to it, and how a plan names what it
# could not see otherwise. PVE filters these lists silently, object by object (PVE/API2/Cluster.pm ``resources``:
# VM.Audit on /vms/{vmid}, Datastore.Audit or Datastore.AllocateSpace on /storage/{sid}, Pool.Audit on /pool/{id};
# the same checks in the node's qemu and lxc indexes, Storage/Config.pm and Pool.pm ``index``).
LISTED_WITH: tuple[tuple[str, frozenset[str], str], ...] = (
    ("/vms", frozenset({"VM.Audit"}), "guests it may not audit (no VM.Audit on /vms)"),
    ("/storage", frozenset({"Datastore.Audit", "Datastore.AllocateSpace"}), "storages it may not audit (no Datastore.Audit on /storage)"),
    ("/pool", frozenset({"Pool.Audit"}), "pools it may not audit (no Pool.Audit on /pool)"),
)


def partial_cluster_reads(own_permissions: dict[str, dict[str, int]] | None) -> list[str]:
    """What a token with these privileges (its GET /access/permissions) is not shown: PVE leaves out of its lists every
    guest, storage or pool it may not audit, without a 403, so only its privileges on the roots tell. Nothing when
    the token's privileges were not read."""
    if own_permissions is None:
        return []
    return [what for root, privs, what in LISTED_WITH if not privs & set(own_permissions.get(root, {}))]


def file_digest(text: str) -> str:
    """Digest::SHA::sha1_hex of a config file's bytes, as PVE computes every config ``digest``."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def split_list(value: Any) -> list[str]:
    """PVE list strings: comma, semicolon or space separated."""
    if value is None:
        return []
    return [part for part in str(value).replace(";", ",").replace(" ", ",").split(",") if part]


def as_int(value: Any, default: int = 0) -> int:
    """Real responses are looser than the schema: numbers may arrive as strings."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class Node(msgspec.Struct):
    name: str
    resource: dict[str, Any]  # its /cluster/resources row
    index: dict[str, Any]  # its /nodes row
    status: dict[str, Any]  # its /cluster/status row
    network: list[dict[str, Any]] | None = None
    network_changes: str | None = None
    node_status: dict[str, Any] | None = None  # GET /nodes/{node}/status (None: not read)

    def active_network(self) -> list[dict[str, Any]] | None:
        """The rows of the configuration the node runs now (``network`` is the staged one): None when the network
        was not read; NetworkUnknown when the pending diff cannot be taken back (proximo.model._network)."""
        if self.network is None:
            return None
        return active_rows(self.network, self.network_changes)

    def bridge_exists(self, bridge: str) -> bool | None:
        """Whether the node runs this bridge (Linux or OVS) by its active configuration, which is what a guest start
        finds; None when the network was not read or its active configuration is unknown."""
        try:
            rows = self.active_network()
        except NetworkUnknown:
            return None
        if rows is None:
            return None
        return any(row.get("iface") == bridge and row.get("type") in ("bridge", "OVSBridge") for row in rows)

    @property
    def online(self) -> bool:
        return self.resource.get("status", self.index.get("status")) == "online"


class Guest(msgspec.Struct):
    vmid: int
    kind: GuestKind
    node: str
    resource: dict[str, Any]  # its /cluster/resources row
    config: dict[str, Any]  # GET .../config (PVE's default view: pending changes applied)
    snapshots: list[dict[str, Any]] | None = None  # GET .../snapshot, with its "current" row (None: not read)
    snapshot_configs: dict[str, dict[str, Any]] = {}  # snapname -> GET .../config?snapshot=NAME
    pending: list[dict[str, Any]] | None = None  # GET .../pending rows of a running guest (None: nothing pending)
    # its GET /nodes/{node}/{kind} row as read (every field PVE sent: pid, serial, pressure*, ...), and what the model
    # said of the fields it keeps at that time: a field the model has changed since is served anew
    list_row: dict[str, Any] | None = None
    list_basis: dict[str, Any] = {}
    rolled_back_to: str = ""  # set by a rollback on this model: what was written since that snapshot is gone
    paused: bool = False  # suspended to RAM (qmpstatus "paused"); status stays "running"

    @property
    def sid(self) -> str:
        return f"{self.kind}/{self.vmid}"

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.config.get("hostname") or self.resource.get("name") or self.vmid)

    @property
    def running(self) -> bool:
        return self.resource.get("status") == "running"

    @property
    def template(self) -> bool:
        return as_int(self.resource.get("template", self.config.get("template", 0))) == 1

    def volumes(self) -> list[GuestVolume]:
        return guest_volumes(self.kind, self.config)

    def check_lock(self, skiplock: bool = False) -> None:
        """PVE::AbstractConfig::check_lock (skipped with skiplock=1, which only root may pass)."""
        lock = self.config.get("lock")
        if lock and not skiplock:
            raise PveApiError(500, f"{'VM' if self.kind == 'qemu' else 'CT'} is locked ({lock})")

    # --- the config file and its digest ----------------------------------------------------------------
    #
    # ``config`` is GET .../config: the file's main section with its [PENDING] values applied; ``pending`` the
    # GET .../pending rows; ``snapshot_configs`` each GET .../config?snapshot=NAME. Together they are the file
    # (/etc/pve/nodes/<node>/qemu-server/<vmid>.conf, .../lxc/<vmid>.conf), whose SHA-1 is the ``digest`` PVE
    # answers and compares: qemu-server src/PVE/QemuServer.pm parse_vm_config and pve-container
    # src/PVE/LXC/Config.pm parse_pct_config take ``Digest::SHA::sha1_hex($raw)`` of the text pve-cluster's
    # cfs_read_file hands them. A digest read from the cluster is kept as it is; one is computed only for a
    # config the model wrote (``write_config``) or for one that came without a digest.

    def current_config(self) -> dict[str, Any]:
        """The config without its pending changes: GET .../config?current=1, the file's main section
        (pve-guest-common src/PVE/AbstractConfig.pm load_current_config, undone)."""
        conf = dict(self.config)
        for row in self.pending or []:
            key = row.get("key")
            if key == "digest" or not isinstance(key, str) or not ("pending" in row or as_int(row.get("delete"))):
                continue  # a row of the listing, not a pending change
            if "value" in row:
                conf[key] = row["value"]
            else:
                conf.pop(key, None)
        return conf

    def pending_section(self) -> dict[str, Any]:
        """The file's pending section from the pending rows: each ``pending`` value, and ``delete`` as
        AbstractConfig print_pending_delete writes it (sorted, ``!`` for a forced delete: ``delete: 2``)."""
        section: dict[str, Any] = {}
        deletes: dict[str, bool] = {}
        for row in self.pending or []:
            key = row.get("key")
            if key == "digest" or not isinstance(key, str):
                continue
            if "pending" in row:
                section[key] = row["pending"]
            if as_int(row.get("delete")):
                deletes[key] = as_int(row["delete"]) == 2
        if deletes:
            section["delete"] = ",".join(("!" if force else "") + key for key, force in sorted(deletes.items()))
        return section

    def file_text(self, *, times: bool = True) -> str:
        """The config file as write_vm_config (qemu-server src/PVE/QemuServer.pm) or write_pct_config
        (pve-container src/PVE/LXC/Config.pm) writes it: main section, pending section, snapshot sections.

        What the API does not show cannot be written: a [special:cloudinit] section (old cloud-init values
        awaiting regeneration), a masked ``cipassword``, a snapshot whose config was not read. Without ``times``,
        the snapshot sections leave out ``snaptime``: the second PVE takes a snapshot in, which no prediction knows.
        """
        doc: dict[str, Any] = {k: v for k, v in self.current_config().items() if k != "digest"}
        doc["pending"] = self.pending_section()
        doc["snapshots"] = {name: {k: v for k, v in conf.items() if k != "digest" and (times or k != "snaptime")}
                            for name, conf in self.snapshot_configs.items()}
        return write_guest_config_file(doc) if self.kind == "qemu" else write_pct_config_file(doc)

    @property
    def digest(self) -> str:
        """PVE's digest of this guest's config: as read, else the SHA-1 of ``file_text``."""
        return str(self.config.get("digest") or file_digest(self.file_text()))

    @property
    def predictable_digest(self) -> str:
        """The SHA-1 of the config file without its snapshot times: what an apply's prediction is compared on (a
        snapshot taken a second later than predicted is the predicted snapshot); PVE's digest where no file text
        can be written."""
        try:
            return file_digest(self.file_text(times=False))
        except DriveError:
            return self.digest

    def write_config(self) -> None:
        """A config write (PVE::AbstractConfig write_config): the file is written again, so the digest is the
        SHA-1 of its new text. PVE's own refusals of the file come back as its errors."""
        try:
            text = self.file_text()
        except DriveError as exc:
            raise PveApiError(500, str(exc)) from None
        self.config["digest"] = file_digest(text)


class Task(msgspec.Struct):
    upid: str
    node: str
    type: str
    id: str
    user: str  # as in the UPID: a token's full id (user@realm!tokenid) for a task a token started
    starttime: int
    exitstatus: str = "OK"
    log: list[str] = []
    polls_left: int = 0  # the simulator reports "running" this many more times
    endtime: int = 0
    row: dict[str, Any] = {}  # its /cluster/tasks row as read: every field PVE sent (pid, pstart, saved, ...)

    @property
    def status(self) -> str:
        return "running" if self.polls_left > 0 else "stopped"


def unread_in(fingerprint: dict[str, str]) -> tuple[str, ...]:
    """The parts of the model a plan was made without (``ClusterModel.unread``, kept in its fingerprint): what apply
    and recovery read too, so that they compare like with like."""
    return tuple(part for part in fingerprint.get("unread", "").split(",") if part)


class ClusterModel(msgspec.Struct):
    """A whole cluster. Treat it as read-only outside semantics: the host hands packs copies."""

    version: dict[str, Any] = {}
    cluster_status: list[dict[str, Any]] = []
    nodes: dict[str, Node] = {}
    storages: dict[str, dict[str, Any]] = {}  # /storage rows: the whole storage config
    storage_status: dict[str, dict[str, dict[str, Any]]] = {}  # sid -> node -> /nodes/{node}/storage row
    storage_resources: dict[str, dict[str, dict[str, Any]]] = {}  # sid -> node -> /cluster/resources row
    volumes: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}  # sid -> node ("" if shared) -> volid -> row
    guests: dict[int, Guest] = {}
    other_resources: list[dict[str, Any]] = []  # /cluster/resources rows of other types (pool, sdn, ...)
    backup_jobs: list[dict[str, Any]] = []
    replication_jobs: list[dict[str, Any]] = []
    ha_resources: list[dict[str, Any]] = []
    ha_groups: list[dict[str, Any]] | None = None
    ha_rules: list[dict[str, Any]] | None = None
    users: list[dict[str, Any]] = []  # /access/users?full=1
    groups: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    acl: list[dict[str, Any]] = []
    pools: dict[str, dict[str, Any]] = {}  # poolid -> /pools?poolid=ID row (with members)
    # GET /access/permissions as the token that read the state got it: its own privileges, path -> priv -> propagate.
    # None: not read (a hand-written snapshot, the simulator's own model).
    own_permissions: dict[str, dict[str, int]] | None = None
    corosync_nodes: list[dict[str, Any]] = []
    tasks: dict[str, Task] = {}
    firewall: Firewall = msgspec.field(default_factory=Firewall)  # cluster, node and guest firewall config (_firewall.py)
    # volid -> the guest config inside a backup, as GET /nodes/{node}/vzdump/extractconfig?volume=VOLID answers it
    # (the file's text): what a restore creates
    backup_configs: dict[str, str] = {}
    other: dict[str, Any] = {}  # GET paths the model does not interpret yet, served verbatim
    extra: dict[str, dict[str, Any]] = {}  # members beside `data` for paths in `other`

    @property
    def release(self) -> str:
        """The PVE release (major.minor) this cluster's ``/version`` names; 9.1 when it has none (pve._apischema.release_of)."""
        return release_of(self.version)

    @property
    def api(self) -> ApiSchema:
        """The API of this cluster's release: what every call to it is checked against. UnknownRelease for a
        release Proximo has no schema for (reads need none; plans are refused)."""
        return schema_for(self.version)

    @property
    def access_partial(self) -> bool:
        """The token that read this state saw only part of the access configuration (partial_access_reads)."""
        return bool(partial_access_reads(self.own_permissions))

    # --- copying and fingerprints ------------------------------------------------------------------

    def copy(self) -> ClusterModel:
        """A deep copy; a msgpack round trip is several times faster than copy.deepcopy here."""
        return msgspec.msgpack.decode(msgspec.msgpack.encode(self), type=ClusterModel)

    @property
    def unread(self) -> list[str]:
        """Parts of the cluster this model was read without (``collect``): touching one raises NotRead."""
        return [] if self.firewall.guests_read else ["guest-firewall"]

    def fingerprint(self, *, predictable: bool = False) -> dict[str, str]:
        """Hashes of the configuration a plan depends on, by section (no volatile metrics). ``predictable``: what an
        apply compares its prediction with, where times PVE sets as it writes (a snapshot's) are left out."""

        def h(value: Any) -> str:
            return hashlib.sha256(msgspec.json.encode(value, order="sorted")).hexdigest()[:16]

        sections: dict[str, Any] = {
            "storage": self.storages,
            # the release too: a plan judged against one release's API is not applied to another's
            "nodes": [self.release, {n: [node.online, node.network, without_stamps(node.network_changes)]
                                     for n, node in sorted(self.nodes.items())}],
            "jobs": [self.backup_jobs, self.replication_jobs],
            "ha": [self.ha_resources, self.ha_groups, self.ha_rules],
            # pool members are /cluster/resources-like rows with live cpu/mem/uptime: only who is a member counts
            "access": [self.users, self.groups, self.roles, self.acl,
                       {pid: {**{k: v for k, v in pool.items() if k != "members"},
                              "members": sorted(str(m.get("id")) for m in pool.get("members", []))}
                        for pid, pool in sorted(self.pools.items())},
                       # what the permission checks were judged on when the lists above are partial
                       self.own_permissions if self.access_partial else None],
            "firewall": self.firewall.canonical(),
            "other": self.other,
        }
        for vmid, g in sorted(self.guests.items()):
            sections[g.sid] = [g.node, g.resource.get("status"), g.template, g.predictable_digest if predictable else g.digest,
                               sorted(str(r.get("name")) for r in g.snapshots or [] if r.get("name") != "current")]
        hashed = {name: h(value) for name, value in sections.items()}
        if self.unread:  # said, not hashed: apply and recovery read the same parts (unread_in)
            hashed["unread"] = ",".join(self.unread)
        return hashed

    # --- storages ------------------------------------------------------------------------------------

    def storage(self, sid: str) -> dict[str, Any]:
        try:
            return self.storages[sid]
        except KeyError:
            raise PveApiError(500, f"storage '{sid}' does not exist") from None

    def storage_shared(self, sid: str) -> bool:
        cfg = self.storages.get(sid, {})
        return cfg.get("type") in SHARED_STORAGE_TYPES or as_int(cfg.get("shared")) == 1

    def storage_nodes(self, sid: str) -> set[str]:
        """Nodes where the storage is configured (ignoring ``disable``)."""
        cfg = self.storages.get(sid)
        if cfg is None:
            return set()
        restricted = set(split_list(cfg.get("nodes")))
        return restricted & set(self.nodes) if restricted else set(self.nodes)

    def storage_problem(self, sid: str, node: str) -> str | None:
        """Why a guest on ``node`` could not activate a volume on ``sid``: PVE's own message, or None."""
        cfg = self.storages.get(sid)
        if cfg is None:
            return f"storage '{sid}' does not exist"
        if as_int(cfg.get("disable")) == 1:
            return f"storage '{sid}' is disabled"
        if node not in self.storage_nodes(sid):
            return f"storage '{sid}' is not available on node '{node}'"
        return None

    def storage_content(self, sid: str) -> set[str]:
        return set(split_list(self.storages.get(sid, {}).get("content")))

    def volumes_on(self, sid: str, node: str) -> dict[str, dict[str, Any]]:
        key = "" if self.storage_shared(sid) else node
        return self.volumes.setdefault(sid, {}).setdefault(key, {})

    # --- guests --------------------------------------------------------------------------------------

    def volume_start_problem(self, guest: Guest, vol: GuestVolume) -> str | None:
        """PVE's error for this volume when the guest starts on its node, or None if it would activate.

        QEMU and LXC activate every configured volume at start and die on a storage that does not exist,
        is disabled or is not on the node; QEMU also checks the storage allows the volume's content type
        (QemuServer::check_volume_storage_type). The storage checks are pve-storage src/PVE/Storage.pm
        ``storage_config``, ``storage_check_enabled`` and ``storage_check_node``, run by ``activate_volumes``.
        """
        problem = self.storage_problem(vol.storage, guest.node)
        if problem:
            return problem
        if guest.kind == "qemu":
            needed = "iso" if vol.role == "cdrom" else "images"
            if needed not in self.storage_content(vol.storage):
                return f"storage '{vol.storage}' does not support content-type '{needed}'"
        return None

    # --- replication ---------------------------------------------------------------------------------

    def _owner_and_vtype(self, vol: GuestVolume) -> tuple[int | None, str]:
        """PVE::Storage::path's owner and vtype of a volume; a name the model cannot parse counts as an image of the
        guest its name says."""
        try:
            parsed = parse_volname_for(str(self.storages[vol.storage].get("type")), parse_volume_id(vol.volid)[1])
            return (int(parsed.vmid) if parsed.vmid else None), parsed.vtype
        except VolumeError:
            owner = _OWNER_RE.search(vol.volid)
            return (int(owner.group(1)) if owner else None), "images"

    def replicate_verdict(self, guest: Guest, vol: GuestVolume) -> bool | str:
        """Whether replication takes ``vol`` of ``guest``: True, False (skipped), or PVE's error, which refuses a job's
        create (pve-manager PVE/API2/ReplicationConfig.pm create) and stops every run.

        get_replicatable_volumes (qemu-server src/PVE/QemuConfig.pm, pve-container src/PVE/LXC/Config.pm), for one
        volume: QEMU skips CD-ROMs (cloud-init drives are CD-ROMs) and ``replicate=0`` drives before looking the
        storage up; both then die on a storage that does not exist (``storage_config``), skip shared storages and
        volumes owned by another guest, die on a volume that is not an image; LXC skips ``replicate=0`` only then;
        both die on a volume without the ``replicate`` feature, which only zfspool volumes have. unusedN and
        vmstate volumes are replicated (replicate=1).
        """
        if guest.kind == "qemu" and (vol.role in ("cdrom", "cloudinit") or not vol.replicate):
            return False
        if vol.storage not in self.storages:
            return f"storage '{vol.storage}' does not exist"
        if self.storage_shared(vol.storage):
            return False
        owner, vtype = self._owner_and_vtype(vol)
        if owner != guest.vmid:
            return False
        if vtype != "images":
            return f"unable to replicate volume '{vol.volid}', type '{vtype}'"
        if not vol.replicate:
            return False
        if self.storages[vol.storage].get("type") != REPLICABLE_STORAGE_TYPE:
            return f"missing replicate feature on volume '{vol.volid}'"
        return True

    def replication_problem(self, guest: Guest, vol: GuestVolume, node: str) -> str | None:
        """Why a replication run of ``guest`` dies on ``vol`` on ``node`` (its source, or its target through ``pvesr
        prepare-local-job`` and ``pvesm import``), or None (not replicated, or fine): ``replicate_verdict``, then the
        activation of the volume's storage on that node."""
        verdict = self.replicate_verdict(guest, vol)
        if verdict is not True:
            return verdict or None
        return self.storage_problem(vol.storage, node)

    def replicas_on(self, vmid: int, node: str) -> tuple[list[str], list[str]]:
        """The volumes of guest ``vmid`` on ``node``'s own zfspool storages (where replicas live: the only replicable
        type, never shared), as read; and the zfspool storages available there whose contents on ``node`` were not read."""
        named: list[str] = []
        unread: list[str] = []
        for sid, cfg in sorted(self.storages.items()):
            if cfg.get("type") != REPLICABLE_STORAGE_TYPE or self.storage_shared(sid) or node not in self.storage_nodes(sid):
                continue
            rows = self.volumes.get(sid, {}).get(node)
            if rows is None:
                unread.append(sid)
                continue
            named += [volid for volid, row in rows.items()
                      if as_int(row.get("vmid"), -1) == vmid or ((m := _OWNER_RE.search(volid)) and int(m.group(1)) == vmid)]
        return sorted(named), unread

    def start_problems(self, guest: Guest) -> dict[str, tuple[GuestVolume, str]]:
        """Every volume that would stop this guest from starting, by config key (``unusedN`` never does)."""
        return {v.key: (v, p) for v in guest.volumes() if v.needed_at_start and (p := self.volume_start_problem(guest, v))}

    def bridge_problems(self, guest: Guest) -> dict[str, str]:
        """NICs whose bridge does not exist on the guest's node, by config key, with PVE's start error.

        QEMU (read_bridge_mtu while building the command line) and LXC (update_lxc_config) both die with
        ``bridge '<br>' does not exist`` (pve-common src/PVE/Network.pm ``read_bridge_mtu``). A NIC
        without ``bridge=`` (QEMU user networking) never needs one; a node whose network was not read is
        not judged, and neither is a name other than ``vmbrN`` that the node lacks (it may be an SDN vnet).
        """
        from ._drives import parse_property_string

        node = self.nodes.get(guest.node)
        problems: dict[str, str] = {}
        for key, value in guest.config.items():
            if not (key.startswith("net") and key[3:].isascii() and key[3:].isdigit()):
                continue
            try:
                bridge = parse_property_string(str(value), "model").get("bridge")
            except ValueError:
                continue
            # Only a vmbrN name is surely a node bridge: another name may be an SDN vnet, which is not modelled.
            if bridge and node is not None and node.bridge_exists(bridge) is False and bridge.startswith("vmbr"):
                problems[key] = f"bridge '{bridge}' does not exist"
        return problems

    def node(self, name: str) -> Node:
        """The node, or PVE's answer for a name it cannot proxy to (pve-manager resolves the node by name first)."""
        node = self.nodes.get(name)
        if node is None:
            raise PveApiError(500, f"hostname lookup '{name}' failed - failed to get address info for: {name}: Name or service not known")
        return node

    def guest_on(self, node: str, kind: str, vmid: int | str) -> Guest:
        """The guest a ``/nodes/{node}/{kind}/{vmid}`` path names; PVE's answer when its config is not on that node."""
        g = self.guests.get(as_int(vmid, -1))
        if g is None or g.node != node or g.kind != kind:
            folder = "qemu-server" if kind == "qemu" else "lxc"
            raise PveApiError(500, f"Configuration file 'nodes/{node}/{folder}/{vmid}.conf' does not exist")
        return g

    def guest(self, vmid: int | str) -> Guest:
        try:
            return self.guests[int(vmid)]
        except (KeyError, ValueError):
            raise PveApiError(500, f"Configuration file 'nodes/*/qemu-server/{vmid}.conf' does not exist") from None

    def guests_using_storage(self, sid: str) -> list[tuple[Guest, list[GuestVolume]]]:
        found = []
        for _, guest in sorted(self.guests.items()):
            vols = [v for v in guest.volumes() if v.storage == sid]
            if vols:
                found.append((guest, vols))
        return found

    # --- tasks ---------------------------------------------------------------------------------------

    def start_task(self, node: str, type: str, id: str, user: str, *, log: list[str] | None = None,
                   exitstatus: str = "OK", polls: int = 0) -> str:
        """Record a task as PVE's worker would and return its UPID (PVE::Tools::upid_encode)."""
        now = int(time.time())
        n = next(_task_counter)
        pid, pstart = 100000 + n, 1000000 + n
        upid = f"UPID:{node}:{pid:08X}:{pstart:08X}:{now:08X}:{type}:{id}:{user}:"
        self.tasks[upid] = Task(upid=upid, node=node, type=type, id=id, user=user, starttime=now,
                                exitstatus=exitstatus, log=list(log or []) + [f"TASK {exitstatus}"],
                                polls_left=polls, endtime=now)
        return upid


_task_counter = itertools.count(1)


def _volume_ids(model: ClusterModel) -> set[str]:
    return {volid for by_node in model.volumes.values() for vols in by_node.values() for volid in vols}


def moved_volumes(before: ClusterModel, after: ClusterModel) -> dict[str, str]:
    """Volumes whose data moved rather than vanished: old volid -> new volid.

    A guest's disk key that names a volume before and a different, new volume after, while the old one
    is gone: ``move_disk``/``move_volume`` with ``delete=1``, and a template conversion (vm-* -> base-*); and a
    migrated guest's local volumes, now on its new node (the same volid, or another storage's).
    Destroying the old volume there is not data loss: the data lives on in the new one.
    """
    moved: dict[str, str] = {}
    for vmid, old in before.guests.items():  # a migration: the local volumes copied to the new node, then removed
        new = after.guests.get(vmid)
        if new is None or new.node == old.node:
            continue
        now = {v.key: v for v in new.volumes()}
        for vol in old.volumes():
            there = now.get(vol.key)
            if there is not None and there.volid in after.volumes.get(there.storage, {}).get(new.node, {}):
                moved[vol.volid] = there.volid
    old_ids, new_ids = _volume_ids(before), _volume_ids(after)
    if old_ids <= new_ids:
        return moved  # no volume is gone, so none moved away
    for vmid, old in before.guests.items():
        new = after.guests.get(vmid)
        if new is None or new == old:
            continue
        now = {v.key: v.volid for v in new.volumes()}
        for vol in old.volumes():
            target = now.get(vol.key)
            if target and target != vol.volid and vol.volid not in new_ids and target not in old_ids:
                moved[vol.volid] = target
    return moved
