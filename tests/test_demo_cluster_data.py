"""The built-in demo cluster (``proximo/sim/demo_cluster.json``): format, provenance and consistency.

Plain JSON checks, no project imports: the file must be exactly what ``scripts/make_demo_cluster.py``
writes, every path must be a GET route of PVE 9.1, and the data must hang together the way a real cluster's
answers do (every disk exists where its guest runs, every list agrees with /cluster/resources, ...).
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import pathlib
import re
import subprocess
import sys
import urllib.parse
from typing import Any

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
DATA_FILE = REPO / "proximo" / "sim" / "demo_cluster.json"
GENERATOR = REPO / "scripts" / "make_demo_cluster.py"
# PVE 9.1's endpoints and their parameters, as scripts/gen_api_schema.py keeps them from pve-docs' apidata.js
API_SCHEMA = REPO / "proximo" / "pve" / "_data" / "pve-api-9.1.json.gz"

QEMU_DISK = re.compile(r"^(ide\d+|sata\d+|scsi\d+|virtio\d+|efidisk0|tpmstate0|unused\d+)$")
LXC_VOLUME = re.compile(r"^(rootfs|mp\d+|unused\d+)$")
HEX40 = re.compile(r"^[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def api(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["api"]


# --- helpers ---------------------------------------------------------------------------------------------


def guests(api: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in api["/cluster/resources"] if r["type"] in ("qemu", "lxc")]


def config(api: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    return api[f"/nodes/{row['node']}/{row['type']}/{row['vmid']}/config"]


def node_names(api: dict[str, Any]) -> list[str]:
    return [r["node"] for r in api["/nodes"]]


def storage_cfg(api: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["storage"]: r for r in api["/storage"]}


def storage_nodes(api: dict[str, Any], sid: str) -> list[str]:
    restricted = storage_cfg(api)[sid].get("nodes")
    return restricted.split(",") if restricted else node_names(api)


def volume_refs(row: dict[str, Any], conf: dict[str, Any]) -> list[tuple[str, str]]:
    """(config key, volid) of every storage volume a guest config refers to (not 'none', not bind mounts)."""
    pattern = QEMU_DISK if row["type"] == "qemu" else LXC_VOLUME
    refs = []
    for key, value in conf.items():
        if not pattern.match(key):
            continue
        volid = str(value).split(",", 1)[0].removeprefix("volume=")
        if volid == "none" or volid.startswith("/") or ":" not in volid:
            continue
        refs.append((key, volid))
    return refs


def content(api: dict[str, Any], node: str, sid: str) -> dict[str, dict[str, Any]]:
    return {r["volid"]: r for r in api.get(f"/nodes/{node}/storage/{sid}/content", [])}


def walk(value: Any, path: str = ""):
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")


# --- format and provenance -------------------------------------------------------------------------------


def test_header(doc: dict[str, Any]) -> None:
    assert set(doc) == {"format", "captured_at", "api", "extra"}
    assert doc["format"] == "proximo-snapshot/1"
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", doc["captured_at"])
    assert isinstance(doc["api"], dict) and doc["api"]
    assert isinstance(doc["extra"], dict)
    for path, members in doc["extra"].items():
        assert path in doc["api"] and isinstance(members, dict)


def test_file_is_generator_output(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "demo.json"
    subprocess.run([sys.executable, str(GENERATOR), "--output", str(out)], check=True, capture_output=True)
    assert out.read_bytes() == DATA_FILE.read_bytes(), "run scripts/make_demo_cluster.py and commit the result"


def test_file_layout(doc: dict[str, Any]) -> None:
    assert DATA_FILE.read_text(encoding="utf-8") == json.dumps(doc, indent=1, sort_keys=True) + "\n"


def test_paths_are_pve91_get_routes(api: dict[str, Any]) -> None:
    index = json.loads(gzip.decompress(API_SCHEMA.read_bytes()))
    routes = []
    for ep in index["endpoints"]:
        if ep["method"] != "GET":
            continue
        regex = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(ep["path"])) + "$")
        routes.append((regex, ep))
    for path in api:
        base, _, query = path.partition("?")
        matches = [ep for regex, ep in routes if regex.match(base)]
        assert matches, f"{base} is not a GET route in PVE 9.1"
        # the most specific template (fewest placeholders) is the one PVE's router picks
        ep = min(matches, key=lambda e: e["path"].count("{"))
        for name in dict(urllib.parse.parse_qsl(query)):
            assert name in ep["params"], f"{path}: {name} is not a parameter of GET {ep['path']}"


def test_no_json_booleans(api: dict[str, Any]) -> None:
    """PVE's JSON has 0/1, never true/false, in every response modelled here."""
    bad = [p for p, v in walk(api) if isinstance(v, bool)]
    assert not bad, bad[:5]


def test_digests(api: dict[str, Any]) -> None:
    for path, value in walk(api):
        if path.endswith(".digest"):
            assert isinstance(value, str) and HEX40.match(value), path
    # one storage.cfg, one digest
    assert len({r["digest"] for r in api["/storage"]}) == 1
    assert len({r["digest"] for r in api["/cluster/ha/resources"]}) == 1


def _section(conf: dict[str, Any]) -> str:
    """qemu-server write_vm_config's generate_raw_config, for the demo's plain values: the description as a
    comment, then ``key: value`` lines in sorted order."""
    description = conf.get("description")
    assert description is None or re.fullmatch(r"[ -$&-9;-~]*", description)  # nothing encode_text would escape
    head = f"#{description}\n" if description else ""
    return head + "".join(f"{k}: {conf[k]}\n" for k in sorted(conf) if k not in ("digest", "description"))


def test_config_digest_is_sha1_of_the_config_file(api: dict[str, Any]) -> None:
    """The digest is the SHA-1 of the file PVE writes: the main section, then one ``[name]`` section per snapshot."""
    seen = set()
    for row in guests(api):
        base = f"/nodes/{row['node']}/{row['type']}/{row['vmid']}"
        conf = config(api, row)
        text = _section(conf)
        for snap in sorted(r["name"] for r in api[f"{base}/snapshot"] if r["name"] != "current"):
            snap_conf = api[f"{base}/config?snapshot={snap}"]
            assert snap_conf["digest"] == conf["digest"]  # AbstractConfig load_snapshot_config: the file's digest
            text += f"\n[{snap}]\n" + _section(snap_conf)
        assert conf["digest"] == hashlib.sha1(text.encode()).hexdigest(), row["id"]
        seen.add(conf["digest"])
    assert len(seen) == len(guests(api))


# --- cluster and nodes -----------------------------------------------------------------------------------


def test_nodes_agree(api: dict[str, Any]) -> None:
    nodes = node_names(api)
    assert nodes == ["pve1", "pve2", "pve3"]
    status = api["/cluster/status"]
    cluster = [r for r in status if r["type"] == "cluster"]
    assert len(cluster) == 1 and cluster[0]["name"] == "demo" and cluster[0]["nodes"] == 3 and cluster[0]["quorate"] == 1
    node_rows = {r["name"]: r for r in status if r["type"] == "node"}
    assert sorted(node_rows) == nodes
    assert [n for n, r in node_rows.items() if r["local"] == 1] == ["pve1"]
    assert sorted(r["nodeid"] for r in node_rows.values()) == [1, 2, 3]
    corosync = {r["node"]: r for r in api["/cluster/config/nodes"]}
    assert sorted(corosync) == nodes
    resources = {r["node"]: r for r in api["/cluster/resources"] if r["type"] == "node"}
    assert sorted(resources) == nodes
    for name, row in node_rows.items():
        assert row["online"] == 1 and row["id"] == f"node/{name}"
        assert corosync[name]["ring0_addr"] == row["ip"]
        assert corosync[name]["nodeid"] == str(row["nodeid"])
        assert resources[name]["status"] == "online"
        network = {r["iface"]: r for r in api[f"/nodes/{name}/network"]}
        vmbr0 = network["vmbr0"]
        assert ipaddress.ip_address(row["ip"]) in ipaddress.ip_network(vmbr0["cidr"], strict=False)
        assert vmbr0["address"] == row["ip"] and vmbr0["gateway"] == "10.0.0.1"
        for iface in network.values():
            ports = iface.get("bridge_ports", "") + " " + iface.get("slaves", "")
            for port in ports.split():
                assert port in network, f"{name}: {iface['iface']} uses unknown port {port}"
    assert api["/version"]["release"] == "9.1"


def test_pve1_has_an_isolated_bridge(api: dict[str, Any]) -> None:
    vmbr1 = {r["iface"]: r for r in api["/nodes/pve1/network"]}["vmbr1"]
    assert vmbr1["type"] == "bridge" and vmbr1["bridge_ports"] == ""
    assert all(r["iface"] != "vmbr1" for n in ("pve2", "pve3") for r in api[f"/nodes/{n}/network"])


# --- guests ----------------------------------------------------------------------------------------------


def test_vmids_unique_and_every_guest_has_a_config(api: dict[str, Any]) -> None:
    rows = guests(api)
    vmids = [r["vmid"] for r in rows]
    assert len(vmids) == len(set(vmids))
    assert all(isinstance(v, int) for v in vmids)
    assert 14 <= len(rows) <= 16
    config_paths = {p for p in api if re.match(r"^/nodes/[^/]+/(qemu|lxc)/\d+/config$", p)}
    assert config_paths == {f"/nodes/{r['node']}/{r['type']}/{r['vmid']}/config" for r in rows}
    for row in rows:
        assert row["id"] == f"{row['type']}/{row['vmid']}"
        conf = config(api, row)
        name = conf.get("name") if row["type"] == "qemu" else conf.get("hostname")
        assert name == row["name"]
        assert int(conf.get("template", 0)) == row["template"]
        assert row.get("tags") == conf.get("tags")
        assert row["maxmem"] == conf["memory"] * 1024 * 1024
        assert isinstance(conf["memory"], int)
        for key in ("maxdisk", "disk", "maxmem", "mem", "netin", "netout", "diskread", "diskwrite", "uptime"):
            assert isinstance(row[key], int), (row["id"], key)
        if row["status"] == "stopped":
            assert row["uptime"] == 0 and row["mem"] == 0


def test_node_guest_lists_match_resources(api: dict[str, Any]) -> None:
    for node in node_names(api):
        for kind in ("qemu", "lxc"):
            listing = {r["vmid"]: r for r in api[f"/nodes/{node}/{kind}"]}
            expected = {r["vmid"]: r for r in guests(api) if r["node"] == node and r["type"] == kind}
            assert sorted(listing) == sorted(expected), (node, kind)
            for vmid, row in listing.items():
                res = expected[vmid]
                assert isinstance(row["vmid"], int)
                for key in ("name", "status", "maxmem", "maxdisk", "uptime", "mem"):
                    assert row[key] == res[key], (node, vmid, key)
                assert row.get("template", 0) == res["template"]
                assert ("pid" in row) == (row["status"] == "running")


def test_every_volume_exists_where_the_guest_runs(api: dict[str, Any]) -> None:
    for row in guests(api):
        node = row["node"]
        visible = {r["storage"] for r in api[f"/nodes/{node}/storage"]}
        for key, volid in volume_refs(row, config(api, row)):
            sid = volid.split(":", 1)[0]
            assert sid in storage_cfg(api), f"{row['id']} {key}: unknown storage {sid}"
            assert sid in visible and node in storage_nodes(api, sid), f"{row['id']} {key}: {sid} not on {node}"
            listed = content(api, node, sid)
            assert volid in listed, f"{row['id']} {key}: {volid} missing from {node}/{sid}"
            vol = listed[volid]
            if vol["content"] in ("images", "rootdir"):
                assert vol["vmid"] == row["vmid"], f"{volid} is not owned by {row['vmid']}"
                assert vol["content"] == ("rootdir" if row["type"] == "lxc" else "images")
                if "size=" in str(config(api, row)[key]):
                    size = re.search(r"size=(\d+)([KMGT]?)", config(api, row)[key])
                    factor = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[size.group(2)]
                    assert int(size.group(1)) * factor == vol["size"], volid


def test_content_rows(api: dict[str, Any]) -> None:
    vmids = {r["vmid"]: r for r in guests(api)}
    for path, rows in api.items():
        m = re.match(r"^/nodes/([^/]+)/storage/([^/]+)/content$", path)
        if not m:
            continue
        node, sid = m.groups()
        cfg = storage_cfg(api)[sid]
        allowed = set(cfg["content"].split(","))
        assert node in storage_nodes(api, sid)
        assert [r["volid"].lower() for r in rows] == sorted(r["volid"].lower() for r in rows)
        for r in rows:
            assert r["volid"].startswith(f"{sid}:")
            assert r["content"] in allowed, (path, r["volid"])
            assert isinstance(r["size"], int) and r["size"] > 0
            if "vmid" in r:
                assert isinstance(r["vmid"], int) and r["vmid"] in vmids, (path, r["volid"])
            if r["content"] == "backup":
                fn = r["volid"].split("/", 1)[1]
                mm = re.match(r"^vzdump-(qemu|lxc)-(\d+)-(\d{4})_(\d\d)_(\d\d)-(\d\d)_(\d\d)_(\d\d)\.(vma|tar)\.zst$", fn)
                assert mm, fn
                assert r["subtype"] == mm.group(1) and r["vmid"] == int(mm.group(2))
                assert r["subtype"] == vmids[r["vmid"]]["type"]
                assert r["format"] == f"{mm.group(9)}.zst"
                assert r["notes"] == vmids[r["vmid"]]["name"]
            elif r["content"] == "iso":
                assert r["format"] == "iso" and r["volid"].startswith(f"{sid}:iso/")
            elif r["content"] == "vztmpl":
                assert r["volid"].startswith(f"{sid}:vztmpl/")
            else:
                assert cfg["type"] in ("zfspool", "rbd")
                assert r["name"] == r["volid"].split(":", 1)[1].split("/")[-1]
                if "/" in r["volid"].split(":", 1)[1]:
                    base = r["volid"].split(":", 1)[1].split("/")[0]
                    assert r["parent"] == f"{base}@__base__"
                    assert f"{sid}:{base}" in {x["volid"] for x in rows}
                else:
                    assert r["parent"] is None


def test_shared_storage_lists_the_same_content_on_every_node(api: dict[str, Any]) -> None:
    for sid, cfg in storage_cfg(api).items():
        if not cfg.get("shared"):
            continue
        listings = [api[f"/nodes/{n}/storage/{sid}/content"] for n in storage_nodes(api, sid)]
        assert all(listing == listings[0] for listing in listings), sid


def test_storage_views_agree(api: dict[str, Any]) -> None:
    cfg = storage_cfg(api)
    assert sorted(cfg) == ["ceph-rbd", "cifs-iso", "local", "local-zfs", "nfs-backup"]
    res = {(r["storage"], r["node"]): r for r in api["/cluster/resources"] if r["type"] == "storage"}
    for node in node_names(api):
        status = {r["storage"]: r for r in api[f"/nodes/{node}/storage"]}
        assert sorted(status) == sorted(s for s in cfg if node in storage_nodes(api, s))
        for sid, st in status.items():
            r = res[(sid, node)]
            assert r["id"] == f"storage/{node}/{sid}" and r["plugintype"] == cfg[sid]["type"] == st["type"]
            assert r["shared"] == st["shared"] == cfg[sid].get("shared", 0)
            assert r["content"] == st["content"] == cfg[sid]["content"]
            assert (r["disk"], r["maxdisk"]) == (st["used"], st["total"])
            assert st["avail"] == st["total"] - st["used"] and st["active"] == 1 and st["enabled"] == 1
            assert f"/nodes/{node}/storage/{sid}/content" in api
    assert sorted(res) == sorted((s, n) for s in cfg for n in storage_nodes(api, s))


def test_storage_configs(api: dict[str, Any]) -> None:
    cfg = storage_cfg(api)
    assert cfg["local"]["path"] == "/var/lib/vz" and cfg["local"]["type"] == "dir"
    assert cfg["local-zfs"]["pool"] == "rpool/data" and cfg["local-zfs"]["sparse"] == 1
    assert cfg["ceph-rbd"]["type"] == "rbd" and cfg["ceph-rbd"]["shared"] == 1 and cfg["ceph-rbd"]["krbd"] == 0
    assert cfg["ceph-rbd"]["monhost"] and cfg["ceph-rbd"]["username"]
    assert cfg["nfs-backup"]["server"] == "10.0.0.50" and cfg["nfs-backup"]["export"] == "/export/backup"
    assert cfg["nfs-backup"]["prune-backups"] == "keep-daily=7,keep-weekly=4"
    assert cfg["cifs-iso"]["nodes"] == "pve1,pve2" and cfg["cifs-iso"]["username"]
    for sid, row in cfg.items():
        assert "password" not in row and "keyring" not in row, sid


# --- jobs, HA, pools, access -----------------------------------------------------------------------------


def test_ha(api: dict[str, Any]) -> None:
    by_id = {r["vmid"]: r for r in guests(api)}
    sids = {}
    for r in api["/cluster/ha/resources"]:
        kind, vmid = r["sid"].split(":")
        assert r["type"] == kind
        guest = by_id[int(vmid)]
        assert guest["type"] == {"vm": "qemu", "ct": "lxc"}[kind]
        sids[int(vmid)] = r
    assert {"vm:104", "ct:202"} <= {r["sid"] for r in api["/cluster/ha/resources"]}
    for vmid, guest in by_id.items():
        assert ("hastate" in guest) == (vmid in sids), vmid
    for rule in api["/cluster/ha/rules"]:
        for sid in rule["resources"].split(","):
            assert int(sid.split(":")[1]) in sids
        if rule["type"] == "node-affinity":
            for entry in rule["nodes"].split(","):
                assert entry.split(":")[0] in node_names(api)


def test_replication(api: dict[str, Any]) -> None:
    by_id = {r["vmid"]: r for r in guests(api)}
    jobs = api["/cluster/replication"]
    assert any(j["id"] == "104-0" and j["target"] == "pve2" for j in jobs)
    for job in jobs:
        guest = by_id[job["guest"]]
        assert job["id"] == f"{job['guest']}-{job['jobnum']}"
        assert job["source"] == guest["node"] != job["target"] and job["target"] in node_names(api)
        for _, volid in volume_refs(guest, config(api, guest)):
            sid = volid.split(":", 1)[0]
            if storage_cfg(api)[sid]["type"] == "zfspool":
                assert volid in content(api, job["target"], sid), f"replica of {volid} missing on {job['target']}"


def test_backup_jobs(api: dict[str, Any]) -> None:
    vmids = {r["vmid"] for r in guests(api)}
    cfg = storage_cfg(api)
    pools = {p["poolid"] for p in api["/pools"]}
    jobs = {j["id"]: j for j in api["/cluster/backup"]}
    assert sorted(jobs) == ["backup-daily", "backup-db", "backup-pool"]
    for job in jobs.values():
        assert job["type"] == "vzdump" and job["enabled"] in (0, 1) and job["schedule"]
        assert "backup" in cfg[job["storage"]]["content"].split(",")
        selectors = [k for k in ("all", "vmid", "pool") if k in job]
        assert len(selectors) == 1, job["id"]
        for key in ("vmid", "exclude"):
            for v in str(job.get(key, "")).split(","):
                if v:
                    assert int(v) in vmids
        if "pool" in job:
            assert job["pool"] in pools
        assert isinstance(job["next-run"], int)
    assert jobs["backup-daily"]["all"] == 1 and jobs["backup-daily"]["exclude"] == "9000"
    assert jobs["backup-db"]["vmid"] == "105,201" and jobs["backup-db"]["storage"] == "local"


def test_pools(api: dict[str, Any]) -> None:
    for pool in api["/pools"]:
        detail = api["/pools?" + urllib.parse.urlencode({"poolid": pool["poolid"]})]
        assert len(detail) == 1 and detail[0]["poolid"] == pool["poolid"]
        members = detail[0]["members"]
        vm_members = {m["vmid"] for m in members if m["type"] in ("qemu", "lxc")}
        tagged = {r["vmid"] for r in guests(api) if r.get("pool") == pool["poolid"]}
        assert vm_members == tagged
        res = {r["id"]: r for r in api["/cluster/resources"]}
        for m in members:
            assert m["id"] in res
            if m["type"] == "storage":
                assert m["node"] in storage_nodes(api, m["storage"])
            else:
                assert m["node"] == res[m["id"]]["node"] and m["status"] == res[m["id"]]["status"]
        assert f"/pool/{pool['poolid']}" in res


def test_access(api: dict[str, Any]) -> None:
    users = {u["userid"]: u for u in api["/access/users?full=1"]}
    groups = {g["groupid"]: g for g in api["/access/groups"]}
    roles = {r["roleid"]: r for r in api["/access/roles"]}
    tokens = {f"{uid}!{t['tokenid']}" for uid, u in users.items() for t in (u["tokens"] or [])}
    assert {"root@pam", "proximo@pve", "alice@pve"} <= set(users)
    assert "proximo@pve!agent" in tokens
    agent = next(t for t in users["proximo@pve"]["tokens"] if t["tokenid"] == "agent")
    assert agent["privsep"] == 1 and agent["expire"] == 0
    for gid, g in groups.items():
        for uid in filter(None, g.get("users", "").split(",")):
            assert gid in users[uid]["groups"].split(",")
    for uid, u in users.items():
        for gid in filter(None, u["groups"].split(",")):
            assert uid in groups[gid]["users"].split(",")
    assert sum(1 for r in roles.values() if r["special"] == 1) == 17
    assert any(r["special"] == 0 for r in roles.values())
    for acl in api["/access/acl"]:
        assert acl["roleid"] in roles and acl["propagate"] in (0, 1)
        known = {"user": users, "group": groups, "token": tokens}[acl["type"]]
        assert acl["ugid"] in known, acl
    acl = {(a["path"], a["type"], a["ugid"], a["roleid"]) for a in api["/access/acl"]}
    # Proximo's token and its owner: Administrator, so that every write the demo plans passes PVE's permission checks
    assert ("/", "token", "proximo@pve!agent", "Administrator") in acl
    assert ("/", "user", "proximo@pve", "Administrator") in acl
    assert ("/", "user", "alice@pve", "Administrator") in acl
    assert ("/storage/local-zfs", "group", "admins", "PVEDatastoreUser") in acl


def test_firewall(api: dict[str, Any]) -> None:
    assert api["/cluster/firewall/options"]["enable"] == 0
    assert api["/cluster/firewall/options"]["policy_in"] == "DROP"
    assert api["/cluster/firewall/rules"] == []
    # a security group, an ipset and an alias nothing refers to yet, for the firewall pack's tools
    assert [g["group"] for g in api["/cluster/firewall/groups"]] == ["web-in"]
    assert [r["pos"] for r in api["/cluster/firewall/groups/web-in"]] == [0, 1]
    assert [s["name"] for s in api["/cluster/firewall/ipset"]] == ["admins"]
    assert any(e.get("nomatch") == 1 for e in api["/cluster/firewall/ipset/admins"])
    assert [a["name"] for a in api["/cluster/firewall/aliases"]] == ["office"]
    for row in guests(api):
        base = f"/nodes/{row['node']}/{row['type']}/{row['vmid']}/firewall"
        assert "digest" in api[f"{base}/options"]
        rules = api[f"{base}/rules"]
        assert [r["pos"] for r in rules] == list(range(len(rules)))
        assert len({r["digest"] for r in rules}) <= 1


# --- the story the demo tells ----------------------------------------------------------------------------


def test_demo_scenarios(api: dict[str, Any]) -> None:
    by_id = {r["vmid"]: r for r in guests(api)}

    def conf(vmid: int) -> dict[str, Any]:
        return config(api, by_id[vmid])

    assert (by_id[104]["node"], by_id[104]["name"], by_id[104]["status"]) == ("pve1", "web-01", "running")
    assert conf(104)["scsi0"].startswith("local-zfs:vm-104-disk-0,")
    assert conf(104)["ide2"].startswith("local:iso/debian-12.5.0-amd64-netinst.iso,media=cdrom")
    assert conf(104)["boot"] == "order=scsi0;ide2;net0"
    assert by_id[104]["hastate"] == "started"

    assert conf(105)["scsi0"].startswith("ceph-rbd:") and conf(105)["scsi1"].startswith("local-zfs:")
    assert conf(105)["unused0"].startswith("local-zfs:")
    assert conf(106)["scsi0"].startswith("ceph-rbd:")
    assert all(v.split(":")[0] == "ceph-rbd" for _, v in volume_refs(by_id[106], conf(106)))
    assert conf(107)["ostype"] == "win11"
    assert conf(107)["efidisk0"].startswith("local-zfs:") and conf(107)["tpmstate0"].startswith("local-zfs:")
    assert conf(107)["scsi0"].startswith("ceph-rbd:")
    assert by_id[108]["node"] == "pve3" and by_id[108]["status"] == "stopped"
    assert conf(108)["ide2"] == "none,media=cdrom" and conf(108)["scsi0"].startswith("local-zfs:")

    assert by_id[9000]["template"] == 1 and conf(9000)["scsi0"].startswith("local-zfs:base-9000-disk-0,")
    for clone in (120, 121):
        assert by_id[clone]["node"] == "pve1"
        assert conf(clone)["scsi0"].startswith(f"local-zfs:base-9000-disk-0/vm-{clone}-disk-0,")
    assert conf(130)["ide2"] == "local-zfs:vm-130-cloudinit,media=cdrom"
    assert conf(130)["scsi0"].startswith("ceph-rbd:")

    assert conf(201)["rootfs"].startswith("local-zfs:subvol-201-disk-0,") and conf(201)["mp0"].startswith("ceph-rbd:")
    assert conf(202)["rootfs"].startswith("ceph-rbd:") and by_id[202]["hastate"] == "started"
    assert conf(203)["mp1"] == "/srv/data,mp=/data" and conf(203)["rootfs"].startswith("local-zfs:")
    assert conf(204)["unused0"].startswith("local-zfs:") and conf(204)["rootfs"].startswith("ceph-rbd:")
    assert all(conf(v)["unprivileged"] == 1 for v in (201, 202, 203, 204))
