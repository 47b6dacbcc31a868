"""Between the API and the model: collect GET responses, build a model from them, render them back.

The snapshot file is ``{"format", "captured_at", "api": {PATH: DATA}, "extra": {...}}`` (docs/architecture.md,
"The snapshot file").
One set of functions serves a live cluster, a snapshot file and the simulator, so the three cannot drift.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from ..errors import NotRead, PveApiError
from ..pve._apischema import schema
from ._cluster import ClusterModel, Guest, Node, Task, as_int, partial_access_reads, partial_cluster_reads, split_list
from ._migration import lxc_precondition, qemu_precondition
from ._access import split_tokenid
from ._firewall import firewall_from_api, firewall_path, firewall_paths, render_firewall
from ._indexes import index_rows, index_template, loads_guest_config

SNAPSHOT_FORMAT = "proximo-snapshot/1"

# Paths read once per cluster, in this order; per-node, per-guest and per-pool paths follow.
CLUSTER_PATHS = [
    "/version",
    "/cluster/status",
    "/cluster/resources",
    "/nodes",
    "/storage",
    "/cluster/config/nodes",
    "/cluster/config/totem",  # the transport decides whether the firewall lets corosync multicast through
    "/cluster/backup",
    "/cluster/replication",
    "/cluster/ha/resources",
    "/cluster/ha/groups",
    "/cluster/ha/rules",
    "/cluster/tasks",
    "/access/users?full=1",
    "/access/groups",
    "/access/roles",
    "/access/acl",
    "/access/permissions",  # the token's own privileges: what the permission checks use when the lists are partial
    "/pools",
    "/cluster/firewall/options",
    "/cluster/firewall/rules",
    "/cluster/firewall/groups",
    "/cluster/firewall/ipset",
    "/cluster/firewall/aliases",
]


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- collecting from a live cluster (or anything that answers GETs) -----------------------------------


READ_PARTS = frozenset({"guest-firewall"})  # what a read can leave out (``collect``, ``ClusterModel.unread``)
LEAN_READ = ("guest-firewall",)  # what a plan's first read leaves out: the pipeline reads it when a pack touches it


def check_nothing_unread_asked(*models: ClusterModel) -> None:
    """NotRead, even when the code that asked for a part the read left out caught the first one: what it found
    without that part is not a plan (``Firewall.asked_unread``)."""
    if any(m.firewall.asked_unread for m in models):
        raise NotRead("a pack asked for the guests' firewall configuration, which this read left out")


async def collect(get: Callable[[str], Awaitable[Any]], *, limit: int = 8, guest_firewall: bool = True,
                  envelope: Callable[[str], Awaitable[dict[str, Any]]] | None = None,
                  extra: dict[str, dict[str, Any]] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Read everything the model needs through ``get``; return the API map and the paths we could not see.

    ``envelope`` reads a path's whole answer: where given, the GETs whose answer carries a member beside ``data``
    that the model keeps (a node network's pending ``changes``) go through it, and those members land in ``extra``
    (``from_api``'s second argument). Without it those members are not read, and a pending network change looks
    like none.

    ``guest_firewall`` False leaves out each guest's four firewall paths (over half of a large cluster's GETs); the
    model built from that read (``from_api(..., guest_firewall=False)``) refuses to be asked about them (NotRead).

    A 403 means the token cannot see that part of the cluster: the path goes to ``unseen`` and every plan
    made from this state says it is incomplete. A 404/501 means "not on this version": silently none.
    PVE never refuses the /access lists; it shortens them for a token that may not audit /access, so that
    case goes to ``unseen`` too (``partial_access_reads``); so are the guests, storages and pools it leaves out of
    every list for a token that may not audit them all (``partial_cluster_reads``: a token limited to a pool).
    """
    api: dict[str, Any] = {}
    unseen: list[str] = []
    failures: list[Exception] = []
    sem = anyio.Semaphore(limit)

    async def fetch(path: str) -> None:
        async with sem:
            try:
                if envelope is not None and extra is not None and _NODE_NETWORK.match(path):
                    body = await envelope(path)
                    api[path] = body.get("data")
                    if members := {k: v for k, v in body.items() if k != "data" and v is not None}:
                        extra[path] = members
                else:
                    api[path] = await get(path)
            except PveApiError as exc:
                if exc.status == 403:  # permission check failed; 401 (bad token) is an error, below
                    unseen.append(path)
                elif "/vzdump/extractconfig?" in path and exc.status != 401:
                    pass  # a backup whose config cannot be read: a restore from it is refused as not modelled
                elif exc.status not in (404, 501) and not (exc.status == 500 and "not implemented" in exc.message.lower()):
                    failures.append(exc)
            except Exception as exc:  # connection errors: the state is unknown, so no plan from it
                failures.append(exc)

    async def fetch_all(paths: list[str]) -> None:
        async with anyio.create_task_group() as tg:
            for p in paths:
                tg.start_soon(fetch, p)
        if failures:
            raise failures[0]  # one clear error, not an exception group

    await fetch_all(CLUSTER_PATHS)
    own = api.get("/access/permissions")
    unseen += partial_access_reads(own if isinstance(own, dict) else None)
    unseen += partial_cluster_reads(own if isinstance(own, dict) else None)  # guests, storages, pools left out of lists
    resources = api.get("/cluster/resources") or []
    nodes = sorted({r["node"] for r in api.get("/nodes") or []} | {r["node"] for r in resources if r.get("type") == "node"})
    second: list[str] = []
    for node in nodes:
        second += [f"/nodes/{node}/qemu", f"/nodes/{node}/lxc", f"/nodes/{node}/network", f"/nodes/{node}/storage"]
        second += [f"/nodes/{node}/firewall/options", f"/nodes/{node}/firewall/rules"]
        second.append(f"/nodes/{node}/status")
    for pool in api.get("/pools") or []:
        second.append("/pools?" + urllib.parse.urlencode({"poolid": pool["poolid"]}))
    for row in resources:
        if row.get("type") in ("qemu", "lxc"):
            base = f"/nodes/{row['node']}/{row['type']}/{as_int(row['vmid'])}"
            second += [f"{base}/config", f"{base}/snapshot"]
            if guest_firewall:  # guest-level options, rules, aliases and ipsets
                second += [f"{base}/firewall/{part}" for part in ("options", "rules", "aliases", "ipset")]
            if row.get("status") == "running":  # only a running guest can have pending changes
                second.append(f"{base}/pending")
    await fetch_all(second)
    third: list[str] = []
    for node in nodes:
        for row in api.get(f"/nodes/{node}/storage") or []:
            if as_int(row.get("enabled", 1)) and as_int(row.get("active", 1)):
                third.append(f"/nodes/{node}/storage/{row['storage']}/content")
    for group in api.get("/cluster/firewall/groups") or []:
        third.append(f"/cluster/firewall/groups/{group['group']}")
    for ipset in api.get("/cluster/firewall/ipset") or []:
        third.append(f"/cluster/firewall/ipset/{ipset['name']}")
    for path, rows in list(api.items()):  # guest ipsets' members
        if path.endswith("/firewall/ipset") and path.startswith("/nodes/"):
            third += [f"{path}/{row['name']}" for row in rows or [] if row.get("name")]
    for row in resources:  # each snapshot's config: what a rollback restores
        if row.get("type") in ("qemu", "lxc"):
            base = f"/nodes/{row['node']}/{row['type']}/{as_int(row['vmid'])}"
            for snap in api.get(f"{base}/snapshot") or []:
                if snap.get("name") and snap["name"] != "current":
                    third.append(f"{base}/config?" + urllib.parse.urlencode({"snapshot": snap["name"]}))
    await fetch_all(third)
    # the config inside every backup: what a restore from it creates (one read a backup; a shared storage's once)
    fourth: dict[str, str] = {}
    for path, rows in api.items():
        if (match := _CONTENT.match(path)) is not None:
            for row in rows or []:
                if row.get("content") == "backup" and row.get("vmid") is not None:
                    fourth.setdefault(str(row["volid"]), f"/nodes/{match.group(1)}/vzdump/extractconfig?"
                                      + urllib.parse.urlencode({"volume": row["volid"]}))
    await fetch_all(sorted(fourth.values()))
    return dict(sorted(api.items())), sorted(set(unseen) | set(missing_reads(api)))


def missing_reads(api: dict[str, Any]) -> list[str]:
    """Reads every plan depends on that are not in ``api``: a plan made without them is incomplete, and says which.

    A guest listed in /cluster/resources whose config was not read would otherwise look like a guest with no disks
    ("destroyed with its disks (none)"). Other absent paths mean "none" (a release without /cluster/ha/rules, a
    storage with no content), so only these are named.
    """
    missing = [path for path in ("/cluster/resources", "/storage") if path not in api]
    for row in api.get("/cluster/resources") or []:
        if row.get("type") in ("qemu", "lxc"):
            path = f"/nodes/{row['node']}/{row['type']}/{as_int(row['vmid'])}/config"
            if path not in api:
                missing.append(path)
    return missing


# --- building a model from API data --------------------------------------------------------------------

_GUEST_CONFIG = re.compile(r"^/nodes/([^/]+)/(qemu|lxc)/(\d+)/config$")
_CONTENT = re.compile(r"^/nodes/([^/]+)/storage/([^/]+)/content$")
_NODE_STORAGE = re.compile(r"^/nodes/([^/]+)/storage$")
_NODE_GUESTS = re.compile(r"^/nodes/([^/]+)/(qemu|lxc)$")
_NODE_NETWORK = re.compile(r"^/nodes/([^/]+)/network$")
_NODE_STATUS = re.compile(r"^/nodes/([^/]+)/status$")
_EXTRACTCONFIG = re.compile(r"^/nodes/([^/]+)/vzdump/extractconfig\?volume=(.+)$")
_GUEST_EXTRA = re.compile(r"^/nodes/([^/]+)/(qemu|lxc)/(\d+)/(snapshot|pending|config\?snapshot=.+)$")

# Paths the model interprets; every other path lands in ``other`` and is served verbatim.
_MODELLED = {
    "/version", "/cluster/status", "/cluster/resources", "/nodes", "/storage", "/cluster/config/nodes",
    "/cluster/backup", "/cluster/replication", "/cluster/ha/resources", "/cluster/ha/groups", "/cluster/ha/rules",
    "/cluster/tasks", "/access/users?full=1", "/access/groups", "/access/roles", "/access/acl", "/access/permissions",
    "/pools",
}


def from_api(api: dict[str, Any], extra: dict[str, dict[str, Any]] | None = None, *, guest_firewall: bool = True) -> ClusterModel:
    """Build a model from GET responses (``data`` members), as a snapshot file or a live read holds them
    (``guest_firewall`` False: a read that left out the guests' firewall paths, see ``collect``)."""
    extra = extra or {}
    m = ClusterModel()
    m.version = dict(api.get("/version") or {})
    m.cluster_status = list(api.get("/cluster/status") or [])
    status_rows = {r.get("name"): r for r in m.cluster_status if r.get("type") == "node"}
    index_rows = {r["node"]: r for r in api.get("/nodes") or []}
    resources = api.get("/cluster/resources") or []
    for row in resources:
        kind = row.get("type")
        if kind == "node":
            name = row["node"]
            m.nodes[name] = Node(name=name, resource=dict(row), index=dict(index_rows.get(name, {})), status=dict(status_rows.get(name, {})))
        elif kind == "storage":
            m.storage_resources.setdefault(row["storage"], {})[row["node"]] = dict(row)
        elif kind not in ("qemu", "lxc"):
            m.other_resources.append(dict(row))
    for name, row in index_rows.items():
        if name not in m.nodes:
            m.nodes[name] = Node(name=name, resource={"id": f"node/{name}", "type": "node", "node": name, "status": row.get("status", "unknown")}, index=dict(row), status=dict(status_rows.get(name, {})))
    m.storages = {row["storage"]: dict(row) for row in api.get("/storage") or []}
    for row in resources:
        if row.get("type") in ("qemu", "lxc"):
            vmid = as_int(row["vmid"])
            config = api.get(f"/nodes/{row['node']}/{row['type']}/{vmid}/config")
            _ensure_node(m, row["node"])  # a guest's node exists even if its row was not readable
            m.guests[vmid] = Guest(vmid=vmid, kind=row["type"], node=row["node"], resource={**row, "vmid": vmid}, config=dict(config or {}))
    # Guests a node's list or a config names but /cluster/resources does not (a partial or hand-written
    # snapshot): keep them, rather than silently drop what the API said.
    for path, data in api.items():
        if match := _NODE_GUESTS.match(path):
            for row in data or []:
                _add_guest(m, api, match.group(1), match.group(2), row)
                g = m.guests.get(as_int(row.get("vmid"), -1))
                if g is not None and g.node == match.group(1) and g.kind == match.group(2):
                    g.list_row = {**row, "vmid": g.vmid}  # a number, as PVE >= 8.2 sends it for containers too
                    g.list_basis = _list_values(g)
    for path in api:
        if match := _GUEST_CONFIG.match(path):
            _add_guest(m, api, match.group(1), match.group(2), {"vmid": match.group(3)})
    m.corosync_nodes = list(api.get("/cluster/config/nodes") or [])
    m.firewall = firewall_from_api(api, guests_read=guest_firewall)
    m.backup_jobs = list(api.get("/cluster/backup") or [])
    m.replication_jobs = list(api.get("/cluster/replication") or [])
    m.ha_resources = list(api.get("/cluster/ha/resources") or [])
    m.ha_groups = api.get("/cluster/ha/groups")
    m.ha_rules = api.get("/cluster/ha/rules")
    m.users = list(api.get("/access/users?full=1") or [])
    m.groups = list(api.get("/access/groups") or [])
    m.roles = list(api.get("/access/roles") or [])
    m.acl = list(api.get("/access/acl") or [])
    own = api.get("/access/permissions")
    m.own_permissions = {str(p): dict(privs) for p, privs in own.items()} if isinstance(own, dict) else None
    for row in api.get("/pools") or []:
        detail = api.get("/pools?" + urllib.parse.urlencode({"poolid": row["poolid"]}))
        m.pools[row["poolid"]] = dict(detail[0] if isinstance(detail, list) and detail else row)
    for row in api.get("/cluster/tasks") or []:
        _load_task(m, row)
    for path, data in api.items():
        if (match := _GUEST_EXTRA.match(path)) and (g := m.guests.get(int(match.group(3)))) is not None:
            what = match.group(4)
            if what == "snapshot":
                g.snapshots = [dict(r) for r in data or []]
            elif what == "pending":
                g.pending = [dict(r) for r in data or []] if any("pending" in r or "delete" in r for r in data or []) else None
            else:
                name = urllib.parse.parse_qs(what.partition("?")[2]).get("snapshot", [""])[0]
                g.snapshot_configs[name] = dict(data or {})
        elif (match := _NODE_STATUS.match(path)) and match.group(1) in m.nodes:
            m.nodes[match.group(1)].node_status = dict(data or {})
    for path, data in api.items():
        if path in _MODELLED or _GUEST_CONFIG.match(path) or _NODE_GUESTS.match(path) or path.startswith("/pools?"):
            continue
        if firewall_path(path):  # typed in m.firewall
            continue
        if _GUEST_EXTRA.match(path) or _NODE_STATUS.match(path):
            continue
        if (match := _EXTRACTCONFIG.match(path)) and isinstance(data, str):
            m.backup_configs[urllib.parse.unquote(match.group(2))] = data
            continue
        if match := _CONTENT.match(path):
            node, sid = match.groups()
            shared = m.storage_shared(sid)
            bucket = m.volumes.setdefault(sid, {}).setdefault("" if shared else node, {})
            for row in data or []:
                bucket[row["volid"]] = dict(row)
        elif match := _NODE_STORAGE.match(path):
            for row in data or []:
                m.storage_status.setdefault(row["storage"], {})[match.group(1)] = dict(row)
        elif (match := _NODE_NETWORK.match(path)) and match.group(1) in m.nodes:
            node = m.nodes[match.group(1)]
            node.network = list(data or [])
            node.network_changes = (extra.get(path) or {}).get("changes")
        else:
            m.other[path] = data
            if path in extra:
                m.extra[path] = dict(extra[path])
    return m


def _ensure_node(m: ClusterModel, node: str) -> None:
    if node not in m.nodes:
        m.nodes[node] = Node(name=node, resource={"id": f"node/{node}", "type": "node", "node": node, "status": "unknown"}, index={}, status={})


def _add_guest(m: ClusterModel, api: dict[str, Any], node: str, kind: str, row: dict[str, Any]) -> None:
    """A guest known from ``/nodes/{node}/{kind}`` (or only from its config): its list row as its resource row."""
    vmid = as_int(row.get("vmid"), -1)
    if vmid < 0 or vmid in m.guests:
        return
    _ensure_node(m, node)
    resource = {k: v for k, v in row.items() if k != "cpus"}
    if "cpus" in row:
        resource["maxcpu"] = row["cpus"]  # the list's ``cpus`` is the resource row's ``maxcpu``
    resource.update(id=f"{kind}/{vmid}", type=kind, node=node, vmid=vmid)
    config = api.get(f"/nodes/{node}/{kind}/{vmid}/config")
    m.guests[vmid] = Guest(vmid=vmid, kind=kind, node=node, resource=resource, config=dict(config or {}))  # type: ignore[arg-type]


def _load_task(m: ClusterModel, row: dict[str, Any]) -> None:
    from ._cluster import Task

    upid = row["upid"]
    user = str(row.get("user", ""))
    if row.get("tokenid"):  # the lists split a token's id (_task_owner); the model keeps it whole, as the UPID has it
        user = f"{user}!{row['tokenid']}"
    m.tasks[upid] = Task(upid=upid, node=row.get("node", ""), type=row.get("type", ""), id=str(row.get("id", "")),
                         user=user, starttime=as_int(row.get("starttime")),
                         exitstatus=row.get("status", "OK"), endtime=as_int(row.get("endtime")), row=dict(row))


def load_snapshot(doc: dict[str, Any]) -> ClusterModel:
    fmt = doc.get("format") if isinstance(doc, dict) else None  # a JSON array or string is no snapshot either
    if fmt != SNAPSHOT_FORMAT:
        raise ValueError(f"not a Proximo snapshot (format {fmt!r}, expected {SNAPSHOT_FORMAT!r})")
    if not isinstance(doc.get("api") or {}, dict) or not isinstance(doc.get("extra") or {}, dict):
        raise ValueError("not a Proximo snapshot ('api' and 'extra' must be JSON objects)")
    return from_api(doc.get("api") or {}, doc.get("extra") or {})


# --- rendering the model as API responses --------------------------------------------------------------


def snapshot_paths(m: ClusterModel) -> list[str]:
    """Every GET path a snapshot of this model holds."""
    paths = [p for p in CLUSTER_PATHS if not p.startswith("/cluster/firewall") and p != "/access/permissions"]
    if m.own_permissions is not None:
        paths.append("/access/permissions")
    if m.ha_groups is None:
        paths.remove("/cluster/ha/groups")
    if m.ha_rules is None:
        paths.remove("/cluster/ha/rules")
    if "/cluster/config/totem" not in m.other:  # a snapshot taken before Proximo read it
        paths.remove("/cluster/config/totem")
    for node in sorted(m.nodes):
        paths += [f"/nodes/{node}/qemu", f"/nodes/{node}/lxc", f"/nodes/{node}/storage"]
        if m.nodes[node].network is not None:
            paths.append(f"/nodes/{node}/network")
        for row in render(m, f"/nodes/{node}/storage"):
            paths.append(f"/nodes/{node}/storage/{row['storage']}/content")
    for vmid, g in sorted(m.guests.items()):
        paths.append(f"/nodes/{g.node}/{g.kind}/{vmid}/config")
        paths.append(f"/nodes/{g.node}/{g.kind}/{vmid}/snapshot")  # as collect reads them
        if g.running or g.pending is not None:
            paths.append(f"/nodes/{g.node}/{g.kind}/{vmid}/pending")
        for name in sorted(g.snapshot_configs):
            paths.append(f"/nodes/{g.node}/{g.kind}/{vmid}/config?" + urllib.parse.urlencode({"snapshot": name}))
    for node in sorted(m.nodes):
        paths.append(f"/nodes/{node}/status")
    for pool in sorted(m.pools):
        paths.append("/pools?" + urllib.parse.urlencode({"poolid": pool}))
    paths += [extractconfig_path(m, volid) for volid in sorted(m.backup_configs) if extractconfig_path(m, volid)]
    paths += firewall_paths(m.firewall, {vmid: (g.node, g.kind) for vmid, g in m.guests.items()})
    paths += list(m.other)
    return sorted(set(paths))


def extractconfig_path(m: ClusterModel, volid: str) -> str:
    """Where a backup's config is read: GET /nodes/{node}/vzdump/extractconfig on a node that lists the backup
    ("" when no node does)."""
    for sid, by_node in m.volumes.items():
        for node, vols in sorted(by_node.items()):
            if volid in vols:
                node = node or next((n for n in sorted(m.storage_nodes(sid)) if m.storage_problem(sid, n) is None), "")
                return f"/nodes/{node}/vzdump/extractconfig?" + urllib.parse.urlencode({"volume": volid}) if node else ""
    return ""


def dump_snapshot(m: ClusterModel, *, captured_at: str | None = None) -> dict[str, Any]:
    api = {path: render(m, path) for path in snapshot_paths(m)}
    extra = {p: dict(v) for p, v in m.extra.items()}
    for name, node in sorted(m.nodes.items()):
        if node.network_changes is not None:
            extra[f"/nodes/{name}/network"] = {"changes": node.network_changes}
    return {"format": SNAPSHOT_FORMAT, "captured_at": captured_at or now_iso(), "api": api, "extra": extra}


def _not_found(path: str) -> PveApiError:
    return PveApiError(501, f"Method 'GET {path}' not implemented")


def render(m: ClusterModel, path: str) -> Any:
    """What ``GET path`` (with its query string, if any) answers as ``data`` for this model."""
    if m.firewall.read and firewall_path(path.partition("?")[0]):
        try:
            return render_firewall(m.firewall, path.partition("?")[0])
        except LookupError:
            pass
    if path in m.other:
        return m.other[path]
    base, _, query = path.partition("?")
    args = dict(urllib.parse.parse_qsl(query))
    match = schema().match(base)
    if match is not None and index_template(match[0]):
        _index_target_exists(m, *match)
        return index_rows(match[0])
    parts = base.strip("/").split("/")
    handler = _RENDERERS.get(parts[0]) if parts and parts[0] else None
    if handler is None:
        raise _not_found(base)
    return handler(m, parts, args, base)


def _index_target_exists(m: ClusterModel, template: str, params: dict[str, str]) -> None:
    """What a directory index's handler checks first: the node (pve-api-daemon proxies to it), the guest's config
    for the handlers that load it (_indexes.loads_guest_config)."""
    if "node" in params:
        _node_or_fail(m, params["node"])
    if "vmid" in params and loads_guest_config(template):
        _guest_or_fail(m, params["node"], template.split("/")[3], params["vmid"])


def _node_or_fail(m: ClusterModel, name: str) -> Node:
    return m.node(name)


def _guest_or_fail(m: ClusterModel, node: str, kind: str, vmid: str) -> Guest:
    g = m.guests.get(as_int(vmid, -1))
    if g is None or g.node != node or g.kind != kind:
        conf = "qemu-server" if kind == "qemu" else "lxc"
        raise PveApiError(500, f"Configuration file 'nodes/{node}/{conf}/{vmid}.conf' does not exist")
    return g


# GET /nodes/{node}/network?type=: the kinds each filter lists (pve-manager PVE/API2/Network.pm index). SDN vnets
# and fabrics are not modelled: a filter that would list them is refused rather than answered without them.
_NETWORK_FILTERS = {"any_bridge": ("bridge", "OVSBridge"), "any_local_bridge": ("bridge", "OVSBridge")}
_SDN_FILTERS = ("include_sdn", "vnet", "fabric")


def _render_network(rows: list[dict[str, Any]], rest: list[str], args: dict[str, str], base: str) -> Any:
    if len(rest) == 1:  # GET /nodes/{node}/network/{iface}: the staged row (network_config reads the pending view)
        for row in rows:
            if row.get("iface") == rest[0]:
                return row
        raise PveApiError(400, "Parameter verification failed.", {"iface": "interface does not exist"})
    if rest:
        raise _not_found(base)
    wanted = args.get("type")
    if not wanted:
        return rows
    if wanted in _SDN_FILTERS:
        raise PveApiError(501, f"Method 'GET {base}?type={wanted}' not implemented by Proximo's model (SDN is not modelled)")
    kinds = _NETWORK_FILTERS.get(wanted, (wanted,))
    return [row for row in rows if row.get("type") in kinds]


def render_members(m: ClusterModel, path: str) -> dict[str, Any]:
    """The members beside ``data`` that ``GET path`` answers with: a node network's pending ``changes`` (set by
    pve-manager PVE/API2/Network.pm index with set_result_attrib), or what a snapshot recorded for other paths."""
    base = path.partition("?")[0]
    if (match := _NODE_NETWORK.match(base)) and (node := m.nodes.get(match.group(1))) is not None:
        return {"changes": node.network_changes} if node.network_changes else {}
    return dict(m.extra.get(path, {}))


def _render_version(m: ClusterModel, parts: list[str], args: dict[str, str], base: str) -> Any:
    if parts != ["version"]:
        raise _not_found(base)
    return m.version


def _guest_resource(g: Guest) -> dict[str, Any]:
    return {**g.resource, "id": g.sid, "type": g.kind, "vmid": g.vmid, "node": g.node}


def _render_cluster(m: ClusterModel, parts: list[str], args: dict[str, str], base: str) -> Any:
    rest = parts[1:]
    if rest == ["backup-info", "not-backed-up"]:
        from ._backups import not_backed_up

        return not_backed_up(m)
    if rest == ["status"]:
        return m.cluster_status
    if rest == ["resources"]:
        rows: list[dict[str, Any]] = [dict(n.resource) for _, n in sorted(m.nodes.items())]
        rows += [_guest_resource(g) for _, g in sorted(m.guests.items())]
        for sid in sorted(m.storages):
            for node in sorted(m.storage_nodes(sid)):
                if m.storage_problem(sid, node) is None:
                    rows.append(_storage_resource(m, sid, node))
        rows += m.other_resources
        wanted = args.get("type")
        if wanted:
            kinds = {"vm": ("qemu", "lxc")}.get(wanted, (wanted,))
            rows = [r for r in rows if r.get("type") in kinds]
        return rows
    if rest == ["config", "nodes"]:
        return m.corosync_nodes
    if rest == ["backup"]:
        return m.backup_jobs
    if len(rest) == 2 and rest[0] == "backup":
        return _find(m.backup_jobs, "id", rest[1], f"backup job '{rest[1]}' does not exist")
    if rest == ["replication"]:
        return m.replication_jobs
    if len(rest) == 2 and rest[0] == "replication":
        return _find(m.replication_jobs, "id", rest[1], f"replication job '{rest[1]}' does not exist")
    if rest == ["ha", "resources"]:
        return m.ha_resources
    if rest == ["ha", "groups"] and m.ha_groups is not None:
        return m.ha_groups
    if rest == ["ha", "rules"] and m.ha_rules is not None:
        return m.ha_rules
    if rest == ["tasks"]:
        return [_task_row(t) for t in sorted(m.tasks.values(), key=lambda t: -t.starttime)]
    raise _not_found(base)


def _find(rows: list[dict[str, Any]], key: str, value: str, message: str) -> dict[str, Any]:
    for row in rows:
        if str(row.get(key)) == value:
            return row
    raise PveApiError(500, message)


def _storage_resource(m: ClusterModel, sid: str, node: str) -> dict[str, Any]:
    cfg = m.storages[sid]
    known = m.storage_resources.get(sid, {}).get(node, {})
    return {
        "disk": 0, "maxdisk": 0, **known,
        "id": f"storage/{node}/{sid}", "type": "storage", "storage": sid, "node": node, "status": "available",
        "plugintype": cfg.get("type"), "content": cfg.get("content", ""), "shared": 1 if m.storage_shared(sid) else 0,
    }


def _task_owner(t: Task) -> dict[str, str]:
    """``user`` and, for a token's task, ``tokenid``, as PVE's task lists and status split them (pve-manager
    PVE/API2/Tasks.pm convert_token_task, PVE/API2/Cluster.pm tasks: PVE::AccessControl::split_tokenid)."""
    token = split_tokenid(t.user)
    return {"user": token[0], "tokenid": token[1]} if token else {"user": t.user}


def _task_row(t: Task) -> dict[str, Any]:
    """A task list row: what it was read with, and what the model knows now (status and endtime once it stopped)."""
    row = {**t.row, "upid": t.upid, "node": t.node, "type": t.type, "id": t.id, **_task_owner(t), "starttime": t.starttime}
    if t.status == "stopped":
        row.update(status=t.exitstatus, endtime=t.endtime or t.starttime)
    return row


def _render_storage(m: ClusterModel, parts: list[str], args: dict[str, str], base: str) -> Any:
    if len(parts) == 1:
        rows = [dict(cfg) for _, cfg in sorted(m.storages.items())]
        return [r for r in rows if not args.get("type") or r.get("type") == args["type"]]
    if len(parts) == 2:
        return m.storage(parts[1])
    raise _not_found(base)


def _render_nodes(m: ClusterModel, parts: list[str], args: dict[str, str], base: str) -> Any:
    if len(parts) == 1:
        return [dict(n.index) or {"node": n.name, "status": n.resource.get("status")} for _, n in sorted(m.nodes.items())]
    name = parts[1]
    node = _node_or_fail(m, name)
    rest = parts[2:]
    if rest in (["qemu"], ["lxc"]):
        return [_guest_list_row(g) for _, g in sorted(m.guests.items()) if g.node == name and g.kind == rest[0]]
    if len(rest) >= 2 and rest[0] in ("qemu", "lxc"):
        g = _guest_or_fail(m, name, rest[0], rest[1])
        if rest[2:] == ["config"] and args.get("snapshot"):
            return _snapshot_config(g, args["snapshot"])
        if rest[2:] == ["config"]:
            if args.get("current") in ("1", "true") and g.pending:
                return {**g.current_config(), "digest": g.digest}
            return {**g.config, "digest": g.digest}
        if rest[2:] == ["status", "current"]:
            row = {**_guest_resource(g), "status": g.resource.get("status", "stopped")}
            if g.kind == "qemu":
                row["qmpstatus"] = "paused" if g.paused else row["status"]
            return row
        if rest[2:] == ["snapshot"]:
            return render_snapshots(g)
        if len(rest) == 5 and rest[2] == "snapshot" and rest[4] == "config":
            return _snapshot_config(g, rest[3])
        if rest[2:] == ["pending"]:
            return render_pending(g)
        if rest[2:] == ["migrate"]:  # the precondition check (GET): Proxmox's own answer, computed
            return qemu_precondition(m, g) if g.kind == "qemu" else lxc_precondition(m, g)
        raise _not_found(base)
    if rest == ["status"]:
        return _node_status(node)
    if rest == ["vzdump", "extractconfig"] and "volume" in args:
        # pve-manager PVE/API2/VZDump.pm extractconfig -> PVE::Storage::extract_vzdump_config: the file's text
        if args["volume"] not in m.backup_configs:
            raise PveApiError(500, f"volume '{args['volume']}' does not exist" if not any(
                args["volume"] in vols for by_node in m.volumes.values() for vols in by_node.values())
                else f"the configuration inside backup '{args['volume']}' was not read")
        return m.backup_configs[args["volume"]]
    if rest[:1] == ["network"] and node.network is not None:
        return _render_network(node.network, rest[1:], args, base)
    if rest == ["storage"]:
        rows = []
        for sid in sorted(m.storages):
            if m.storage_problem(sid, name) is None:
                known = m.storage_status.get(sid, {}).get(name, {})
                cfg = m.storages[sid]
                rows.append({"total": 0, "used": 0, "avail": 0, **known, "storage": sid, "type": cfg.get("type"),
                             "content": cfg.get("content", ""), "shared": 1 if m.storage_shared(sid) else 0,
                             "enabled": 1, "active": 1})
        return rows
    if len(rest) >= 2 and rest[0] == "storage":
        sid = rest[1]
        problem = m.storage_problem(sid, name)
        if problem:
            raise PveApiError(500, problem)
        if rest[2:] == ["content"]:
            rows = sorted(m.volumes.get(sid, {}).get("" if m.storage_shared(sid) else name, {}).values(), key=lambda r: r["volid"])
            if args.get("content"):
                rows = [r for r in rows if r.get("content") == args["content"]]
            if args.get("vmid"):
                rows = [r for r in rows if str(r.get("vmid")) == args["vmid"]]
            return rows
        if rest[2:] == ["status"]:
            row = next(r for r in _render_nodes(m, ["nodes", name, "storage"], {}, base) if r["storage"] == sid)
            return row
        if len(rest) == 4 and rest[2] == "content":
            return _volume_attributes(m, sid, name, rest[3])
        raise _not_found(base)
    if len(rest) >= 2 and rest[0] == "tasks":
        task = m.tasks.get(rest[1])
        if task is None or task.node != name:
            raise PveApiError(500, f"unable to parse worker upid '{rest[1]}'" if not rest[1].startswith("UPID:") else "no such task")
        if rest[2:] == ["status"]:
            if task.polls_left > 0:
                task.polls_left -= 1
            fields = task.upid.split(":")  # UPID:node:PID:PSTART:...: PVE's status decodes them (upid_decode)
            row = {"upid": task.upid, "node": task.node, "pid": int(fields[2], 16), "pstart": int(fields[3], 16), "starttime": task.starttime,
                   "type": task.type, "id": task.id, **_task_owner(task), "status": task.status}
            if task.status == "stopped":
                row["exitstatus"] = task.exitstatus
            return row
        if rest[2:] == ["log"]:
            start, limit = as_int(args.get("start"), 0), as_int(args.get("limit"), 50)
            return [{"n": i + 1, "t": line} for i, line in enumerate(task.log)][start:start + limit]
    if rest == ["tasks"]:
        return [_task_row(t) for t in sorted(m.tasks.values(), key=lambda t: -t.starttime) if t.node == name]
    raise _not_found(base)


def _volume_attributes(m: ClusterModel, sid: str, node: str, volume: str) -> dict[str, Any]:
    """GET /nodes/{node}/storage/{storage}/content/{volume} (pve-storage API2/Storage/Content.pm info): the volume's
    size, used, format, and a backup's notes and protection; ``path`` where the storage has one (a file storage)."""
    volid = volume.replace("%2F", "/")
    volid = volid if ":" in volid else f"{sid}:{volid}"
    row = m.volumes.get(sid, {}).get("" if m.storage_shared(sid) else node, {}).get(volid)
    if row is None:
        raise PveApiError(500, f"volume '{volid}' does not exist")
    info: dict[str, Any] = {"size": as_int(row.get("size")), "used": as_int(row.get("used", row.get("size"))),
                            "format": row.get("format")}
    cfg = m.storages.get(sid, {})
    if cfg.get("path") and row.get("content") == "backup":
        info["path"] = f"{cfg['path']}/dump/{volid.partition(':')[2].rpartition('/')[2]}"
    if row.get("notes"):
        info["notes"] = row["notes"]
    if as_int(row.get("protected")):
        info["protected"] = 1
    return info


def render_snapshots(g: Guest) -> list[dict[str, Any]]:
    """GET .../snapshot: every snapshot, then the "current" row PVE always adds ("You are here!")."""
    rows = [dict(r) for r in g.snapshots or [] if r.get("name") != "current"]
    current: dict[str, Any] = {"name": "current", "digest": g.digest,
                               "description": "You are here!", "running": 1 if g.running else 0}
    if g.config.get("parent"):
        current["parent"] = g.config["parent"]
    return rows + [current]


def _snapshot_config(g: Guest, name: str) -> dict[str, Any]:
    if not any(r.get("name") == name for r in g.snapshots or []) or name == "current":
        raise PveApiError(500, f"snapshot '{name}' does not exist")
    conf = g.snapshot_configs.get(name)
    if conf is None:  # the list was read but not this snapshot's config: do not invent it
        raise PveApiError(501, f"the config of snapshot '{name}' was not read")
    # pve-guest-common src/PVE/AbstractConfig.pm load_snapshot_config: "$snapshot->{digest} = $conf->{digest}"
    return {**conf, "digest": g.digest}


def render_pending(g: Guest) -> list[dict[str, Any]]:
    """GET .../pending, as pve-guest-common src/PVE/GuestHelpers.pm config_with_pending_array lists it: every key of
    the file's main section (the ``digest`` too) with its ``value`` and any ``pending`` value or ``delete`` (2:
    forced), then the keys only the pending section sets, then the deletes of keys that are not set."""
    current = {**g.current_config(), "digest": g.digest}
    pending = g.pending_section()
    deletes = {key.lstrip("!"): 2 if key.startswith("!") else 1 for key in split_list(pending.pop("delete", None))}
    rows: list[dict[str, Any]] = []
    for key in sorted(current):
        if isinstance(current[key], (list, dict)):
            continue  # "next if ref($conf->{$opt})": the raw lxc.* keys
        row = {"key": key, "value": current[key]}
        if key in pending:
            row["pending"] = pending.pop(key)
        if key in deletes:
            row["delete"] = deletes.pop(key)
        rows.append(row)
    rows += [{"key": key, "pending": value} for key, value in sorted(pending.items())]
    return rows + [{"key": key, "delete": force} for key, force in sorted(deletes.items())]


def _node_status(node: Node) -> dict[str, Any]:
    """GET /nodes/{node}/status as read; unread, only what the /nodes row says (PVE's key names)."""
    if node.node_status is not None:
        return node.node_status
    row = {**node.index, **node.resource}
    out: dict[str, Any] = {"uptime": row.get("uptime", 0), "cpu": row.get("cpu", 0)}
    if "maxmem" in row:
        out["memory"] = {"total": row["maxmem"], "used": row.get("mem", 0), "free": row["maxmem"] - row.get("mem", 0)}
    if "maxdisk" in row:
        out["rootfs"] = {"total": row["maxdisk"], "used": row.get("disk", 0), "avail": row["maxdisk"] - row.get("disk", 0)}
    if "maxcpu" in row:
        out["cpuinfo"] = {"cpus": row["maxcpu"]}
    return out


# qemu-server QemuServer.pm vmstatus and pve-container LXC.pm vmstatus report these only for a running guest
_RUNNING_ONLY = ("pid", "memhost", "pressurecpusome", "pressurecpufull", "pressureiosome", "pressureiofull",
                 "pressurememorysome", "pressurememoryfull")
_LIST_KEYS = ("vmid", "name", "status", "maxmem", "maxdisk", "cpus", "mem", "disk", "uptime", "netin", "netout",
              "diskread", "diskwrite", "cpu", "template", "tags", "lock", "pid", "maxswap", "swap", "type")


def _list_values(g: Guest) -> dict[str, Any]:
    """The fields of a /nodes/{node}/{kind} row the model keeps, as it knows them now."""
    row = {k: v for k, v in _guest_resource(g).items() if k in _LIST_KEYS}
    row["cpus"] = g.resource.get("maxcpu", row.get("cpus", 1))  # the resource row's maxcpu is the list's cpus
    if g.kind == "lxc":
        row["type"] = "lxc"
    else:
        row.pop("type", None)
    if not as_int(row.get("template")):
        row.pop("template", None)  # vmstatus: "template => 1" only for a template
    return row


def _guest_list_row(g: Guest) -> dict[str, Any]:
    """A /nodes/{node}/{kind} row: the row read, with what the model changed since (Guest.list_basis)."""
    now = _list_values(g)
    if g.list_row is None:
        return now
    row = dict(g.list_row)
    missing = object()
    for key, value in now.items():
        if g.list_basis.get(key, missing) != value:
            row[key] = value
    for key in g.list_basis:
        if key not in now:
            row.pop(key, None)
    if not g.running:
        for key in _RUNNING_ONLY:
            row.pop(key, None)
    return row


def _render_access(m: ClusterModel, parts: list[str], args: dict[str, str], base: str) -> Any:
    rest = parts[1:]
    if rest == ["users"]:
        if args.get("full") in ("1", "true"):
            return m.users
        return [{k: v for k, v in u.items() if k not in ("tokens", "groups")} for u in m.users]
    if rest == ["groups"]:
        return m.groups
    if rest == ["roles"]:
        return m.roles
    if rest == ["acl"]:
        return m.acl
    if rest == ["permissions"] and m.own_permissions is not None and not args:
        return m.own_permissions
    return _render_access_item(m, rest, base)


def _render_access_item(m: ClusterModel, rest: list[str], base: str) -> Any:
    """One user (with its token map), its tokens, one group (members), one role (privilege map), as PVE answers."""
    if len(rest) >= 2 and rest[0] == "users":
        user = next((u for u in m.users if u.get("userid") == rest[1]), None)
        if user is None:
            raise PveApiError(500, f"no such user ('{rest[1]}')")
        tokens = {str(t.get("tokenid")): {k: v for k, v in t.items() if k != "tokenid"} for t in user.get("tokens") or []}
        if len(rest) == 2:
            groups = user.get("groups")
            return {**{k: v for k, v in user.items() if k not in ("userid", "tokens", "groups", "realm-type")},
                    "groups": groups if isinstance(groups, list) else [g for g in str(groups or "").split(",") if g], "tokens": tokens}
        if rest[2:] == ["token"]:
            return [{"tokenid": name, **info} for name, info in sorted(tokens.items())]
        if len(rest) == 4 and rest[2] == "token":
            if rest[3] not in tokens:
                raise PveApiError(500, f"no such token '{rest[3]}' for user '{rest[1]}'")
            return tokens[rest[3]]
    if len(rest) == 2 and rest[0] == "groups":
        group = next((g for g in m.groups if g.get("groupid") == rest[1]), None)
        if group is None:
            raise PveApiError(500, f"group '{rest[1]}' does not exist")
        members = sorted(u for u in str(group.get("users") or "").split(",") if u)
        return {**({"comment": group["comment"]} if group.get("comment") else {}), "members": members}
    if len(rest) == 2 and rest[0] == "roles":
        role = next((r for r in m.roles if r.get("roleid") == rest[1]), None)
        if role is None:
            raise PveApiError(500, f"role '{rest[1]}' does not exist")
        return {p: 1 for p in sorted(str(role.get("privs") or "").split(",")) if p}
    raise _not_found(base)


def _render_pools(m: ClusterModel, parts: list[str], args: dict[str, str], base: str) -> Any:
    if len(parts) != 1:
        raise _not_found(base)
    if "poolid" in args:
        pool = m.pools.get(args["poolid"])
        if pool is None:
            raise PveApiError(500, f"pool '{args['poolid']}' does not exist")
        return [pool]
    return [{k: v for k, v in p.items() if k != "members"} for _, p in sorted(m.pools.items())]


_RENDERERS: dict[str, Callable[[ClusterModel, list[str], dict[str, str], str], Any]] = {
    "version": _render_version,
    "cluster": _render_cluster,
    "storage": _render_storage,
    "nodes": _render_nodes,
    "access": _render_access,
    "pools": _render_pools,
}
