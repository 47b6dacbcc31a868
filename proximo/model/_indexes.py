"""Directory indexes: what ``GET`` answers on a path whose children are API paths (``/cluster``, ``/access``,
``/nodes/{node}``, ``/nodes/{node}/qemu/{vmid}``, ``.../status``, ...).

Each is a list of one-key rows, ``[{"subdir": "config"}, ...]``; the key is the placeholder of the method's
``returns.links`` href in the PVE 9.1 API schema (``{name}`` for most). The children are the schema's: the literal
next segments of the API's own paths. Where the handler writes its list by hand, the answer is that list, in its
order, as read in the handler (it can name what the schema does not, such as qemu's ``move``, and leave out what it
does). Some handlers first load the guest's config, so a guest that does not exist is PVE's error there.
"""

from __future__ import annotations

import functools

from ..pve._apischema import schema

# The returns.links href of the 9.1 schema's directory indexes, where it is not {name}.
_ROW_KEY: dict[str, str] = {
    "/access": "subdir",
    "/access/openid": "subdir",
    "/cluster/backup-info": "subdir",
    "/cluster/ha": "id",
    "/cluster/jobs": "subdir",
    "/cluster/sdn": "id",
    "/cluster/sdn/fabrics": "subdir",
    "/nodes/{node}/apt": "id",
    "/nodes/{node}/hardware": "type",
    "/nodes/{node}/hardware/pci/{pci-id-or-mapping}": "method",
    "/nodes/{node}/lxc/{vmid}": "subdir",
    "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}": "cmd",
    "/nodes/{node}/lxc/{vmid}/status": "subdir",
    "/nodes/{node}/qemu/{vmid}": "subdir",
    "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}": "cmd",
    "/nodes/{node}/qemu/{vmid}/status": "subdir",
    "/nodes/{node}/scan": "method",
    "/nodes/{node}/sdn/fabrics/{fabric}": "subdir",
    "/nodes/{node}/sdn/vnets/{vnet}": "subdir",
    "/nodes/{node}/sdn/zones/{zone}": "subdir",
    "/nodes/{node}/services/{service}": "subdir",
    "/nodes/{node}/storage/{storage}": "subdir",
}

# GETs with literal children that answer an object, not an index (no returns.links in the 9.1 schema).
_NOT_INDEXES = frozenset({
    "/access/domains/{realm}", "/access/users/{userid}", "/cluster/backup/{id}", "/cluster/ha/resources/{sid}",
    "/cluster/sdn/ipams/{ipam}", "/cluster/sdn/vnets/{vnet}", "/nodes/{node}/qemu/{vmid}/cloudinit",
})

_VM_FIREWALL = ["rules", "aliases", "ipset", "refs", "options"]  # pve-firewall src/PVE/API2/Firewall/VM.pm index
_SNAPSHOT_CMDS = ["rollback", "config"]  # qemu-server API2/Qemu.pm, pve-container API2/LXC/Snapshot.pm snapshot_cmd_idx

# Lists the handlers write by hand, in their order (qemu-server e6352be6, pve-container 94f55852, pve-manager
# 14a22df3, pve-cluster 7091d92e, pve-access-control 5ccd07d9, pve-storage 0c56bad8, pve-firewall 6f1311f3).
_HANDLER_LISTS: dict[str, list[str]] = {
    # qemu-server src/PVE/API2/Qemu.pm vmdiridx
    "/nodes/{node}/qemu/{vmid}": ["config", "cloudinit", "pending", "status", "unlink", "vncproxy", "termproxy", "migrate",
                                  "resize", "move", "rrd", "rrddata", "monitor", "agent", "snapshot", "spiceproxy",
                                  "sendkey", "firewall", "mtunnel", "remote_migrate"],
    # qemu-server src/PVE/API2/Qemu.pm vmcmdidx
    "/nodes/{node}/qemu/{vmid}/status": ["current", "start", "stop", "reset", "shutdown", "suspend", "reboot"],
    "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}": _SNAPSHOT_CMDS,
    "/nodes/{node}/qemu/{vmid}/firewall": _VM_FIREWALL,
    # pve-container src/PVE/API2/LXC.pm vmdiridx
    "/nodes/{node}/lxc/{vmid}": ["config", "pending", "status", "vncproxy", "termproxy", "vncwebsocket", "spiceproxy",
                                 "migrate", "clone", "initlog", "rrd", "rrddata", "firewall", "snapshot", "resize",
                                 "interfaces"],
    # pve-container src/PVE/API2/LXC/Status.pm vmcmdidx
    "/nodes/{node}/lxc/{vmid}/status": ["current", "start", "stop", "shutdown", "reboot", "migrate"],
    "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}": _SNAPSHOT_CMDS,
    "/nodes/{node}/lxc/{vmid}/firewall": _VM_FIREWALL,
    # pve-manager PVE/API2/Nodes.pm (PVE::API2::Nodes::Nodeinfo) index
    "/nodes/{node}": ["aplinfo", "apt", "capabilities", "ceph", "certificates", "config", "disks", "dns", "firewall",
                      "hardware", "hosts", "journal", "lxc", "migrateall", "netstat", "network", "qemu",
                      "query-oci-repo-tags", "query-url-metadata", "replication", "report", "rrd", "rrddata", "scan",
                      "sdn", "services", "spiceshell", "startall", "status", "stopall", "storage", "subscription",
                      "suspendall", "syslog", "tasks", "termproxy", "time", "version", "vncshell", "vzdump", "wakeonlan"],
    # pve-manager PVE/API2/Cluster.pm index ('sdn' pushed last: PVE 9 always has PVE::Network::SDN)
    "/cluster": ["acme", "backup", "backup-info", "bulk-action", "ceph", "config", "firewall", "ha", "jobs", "log",
                 "mapping", "metrics", "notifications", "nextid", "options", "qemu", "replication", "resources",
                 "status", "tasks", "sdn"],
    # pve-cluster src/PVE/API2/ClusterConfig.pm index
    "/cluster/config": ["nodes", "totem", "join", "qdevice", "apiversion"],
    # pve-manager PVE/API2/HAConfig.pm index
    "/cluster/ha": ["status", "resources", "groups", "rules"],
    # pve-access-control src/PVE/API2/AccessControl.pm index: its subclasses in the order registered, then two more
    "/access": ["users", "groups", "roles", "acl", "domains", "openid", "tfa", "ticket", "password"],
    # pve-manager PVE/API2/Tasks.pm upid_index
    "/nodes/{node}/tasks/{upid}": ["log", "status"],
    # pve-storage src/PVE/API2/Storage/Status.pm diridx
    "/nodes/{node}/storage/{storage}": ["content", "download-url", "file-restore", "import-metadata", "identity",
                                        "oci-registry-pull", "prunebackups", "rrd", "rrddata", "status", "upload"],
    # pve-firewall src/PVE/API2/Firewall/Cluster.pm and Host.pm index
    "/cluster/firewall": ["aliases", "rules", "options", "groups", "ipset", "macros", "refs"],
    "/nodes/{node}/firewall": ["rules", "options", "log"],
}

# Handlers that answer without loading the guest's config: every other guest-level index loads it first.
_NO_CONFIG_LOAD = frozenset({"/nodes/{node}/qemu/{vmid}", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}",
                             "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}", "/nodes/{node}/qemu/{vmid}/firewall",
                             "/nodes/{node}/lxc/{vmid}/firewall"})


@functools.cache
def _schema_children() -> dict[str, tuple[str, ...]]:
    """Each path template -> the literal next segments of the API's paths below it, sorted."""
    children: dict[str, set[str]] = {}
    for endpoint in schema().endpoints:
        segments = endpoint.path.strip("/").split("/")
        for depth in range(1, len(segments)):
            child = segments[depth]
            if not child.startswith("{"):
                children.setdefault("/" + "/".join(segments[:depth]), set()).add(child)
    return {template: tuple(sorted(names)) for template, names in children.items()}


def index_template(template: str) -> bool:
    """Whether GET on this path template answers a directory index."""
    return (template in _HANDLER_LISTS or template in _schema_children()) and template not in _NOT_INDEXES \
        and schema().endpoint("GET", template) is not None


def index_rows(template: str) -> list[dict[str, str]]:
    """The rows of a directory index (``index_template`` must hold)."""
    key = _ROW_KEY.get(template, "name")
    return [{key: name} for name in _HANDLER_LISTS.get(template) or _schema_children()[template]]


def loads_guest_config(template: str) -> bool:
    """Whether the index's handler loads the guest's config first (and so fails for a guest that does not exist)."""
    return template.startswith(("/nodes/{node}/qemu/{vmid}", "/nodes/{node}/lxc/{vmid}")) and template not in _NO_CONFIG_LOAD
