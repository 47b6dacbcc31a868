"""The compact PVE 9.1 schema Proximo ships, and how it matches paths and validates parameters like PVE.

The committed ``proximo/pve/_data/pve-api-R.json.gz`` must be exactly what ``scripts/gen_api_schema.py`` makes of
``tests/data/pve/api/R/pve-api-index.json.gz`` and ``pve-api-schema.json.gz`` (pve-docs' apidata.js as JSON) for each
release R; everything else reads the committed compact file. Messages are PVE::JSONSchema's
(check_prop / check_type and the registered formats in pve-common and pve-storage).
"""

from __future__ import annotations

import gzip
import itertools
import json
from typing import Any

import pytest
from _pve_data import PVE_DATA, REPO, script

from proximo.pve._apischema import ApiSchema, Endpoint, ParamSpec, PermissionSpec, _Doc, schema, validate

API_INPUT = PVE_DATA / "api"
COMPACT = REPO / "proximo" / "pve" / "_data" / "pve-api-9.1.json.gz"
UPID = "UPID:pve1:0001A2B3:00C4D5E6:6745F0A1:qmstart:104:proximo@pve!agent:"


@pytest.fixture(scope="module")
def index() -> dict[str, Any]:
    return script("gen_api_schema").read_input(API_INPUT / "9.1", "pve-api-index.json")


@pytest.fixture(scope="module")
def tree() -> list[dict[str, Any]]:
    return script("gen_api_schema").read_input(API_INPUT / "9.1", "pve-api-schema.json")


def _endpoint(method: str, template: str) -> Endpoint:
    ep = schema().endpoint(method, template)
    assert ep is not None, f"{method} {template} missing from the compact schema"
    return ep


# --- the committed file is the generator's output ----------------------------------------------------------


@pytest.mark.parametrize("release", ["8.4", "9.1"])
def test_committed_schema_is_generated_from_the_index(release: str) -> None:
    generator = script("gen_api_schema")
    index, tree = (generator.read_input(API_INPUT / release, name) for name in ("pve-api-index.json", "pve-api-schema.json"))
    expected = gzip.decompress(generator.compact(index, tree, release))
    committed = gzip.decompress((REPO / "proximo" / "pve" / "_data" / f"pve-api-{release}.json.gz").read_bytes())
    assert committed == expected, f"proximo/pve/_data/pve-api-{release}.json.gz is stale: run scripts/gen_api_schema.py"


def test_compact_schema_covers_every_endpoint(index: dict[str, Any]) -> None:
    s = schema()
    assert s.version == index["meta"]["pve_docs_version"] == "9.1.3"
    assert len(s.endpoints) == index["meta"]["endpoint_count"] == len(index["endpoints"])
    for ep in index["endpoints"]:
        mine = s.endpoint(ep["method"], ep["path"])
        assert mine is not None, (ep["method"], ep["path"])
        assert set(mine.params) == set(ep["params"]), (ep["method"], ep["path"])
        assert mine.path_params == ep["path_params"], (ep["method"], ep["path"])


def test_compact_schema_keeps_each_methods_permissions(tree: list[dict[str, Any]]) -> None:
    """What RPCEnvironment::check_api2_permissions reads of a method: ``check``/``user``, ``allowtoken``."""
    def nodes(node: dict[str, Any]) -> Any:
        yield node
        for child in node.get("children") or []:
            yield from nodes(child)

    seen = 0
    for root in tree:
        for node in nodes(root):
            for method, info in (node.get("info") or {}).items():
                mine = _endpoint(method, node["path"])
                raw = info.get("permissions")
                if raw is None:
                    assert mine.permissions is None, (method, node["path"])
                else:
                    assert mine.permissions is not None
                    assert (mine.permissions.check, mine.permissions.user) == (raw.get("check"), raw.get("user")), (method, node["path"])
                assert mine.allowtoken == bool(info.get("allowtoken", 1))
                seen += 1
    assert seen == len(schema().endpoints)


def test_compact_schema_is_pve_9_1_3_and_names_its_origin() -> None:
    """pve-docs 9.1.3: 649 endpoints on 431 paths, from apidata.js at the commit gen_api_schema.py names."""
    assert schema().version == "9.1.3" and len(schema().endpoints) == 649
    assert len({e.path for e in schema().endpoints}) == 431
    assert json.loads(gzip.decompress(COMPACT.read_bytes()))["source"] == {
        "repository": "proxmox/pve-docs", "file": "api-viewer/apidata.js", "commit": "a8736b6d6169ea9679ee02285ea36fdab42e85c3"}


def test_compact_schema_keeps_token_refusals_and_permissions() -> None:
    # tokens can call everything but these: allowtoken => 0 (pve-access-control src/PVE/API2/AccessControl.pm
    # create_ticket and change_password, src/PVE/API2/TFA.pm)
    assert sorted(f"{e.method} {e.path}" for e in schema().endpoints if not e.allowtoken) == [
        "DELETE /access/tfa/{userid}/{id}", "POST /access/tfa/{userid}", "POST /access/ticket", "PUT /access/password",
        "PUT /access/tfa/{userid}/{id}"]
    assert _endpoint("PUT", "/access/acl").permissions == PermissionSpec(check=["perm-modify", "{path}"])
    assert _endpoint("POST", "/cluster/config").permissions is None  # no permissions: root@pam only


# --- matching concrete paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "template", "params"), [
    ("/version", "/version", {}),
    ("/storage", "/storage", {}),
    ("/storage/local-zfs", "/storage/{storage}", {"storage": "local-zfs"}),
    ("/nodes/pve1/storage", "/nodes/{node}/storage", {"node": "pve1"}),
    ("/nodes/pve1/storage/local-zfs/content", "/nodes/{node}/storage/{storage}/content", {"node": "pve1", "storage": "local-zfs"}),
    ("/nodes/pve1/storage/local/content/local:iso%2Fdebian.iso", "/nodes/{node}/storage/{storage}/content/{volume}",
     {"node": "pve1", "storage": "local", "volume": "local:iso%2Fdebian.iso"}),
    ("/nodes/pve1/qemu/104/config", "/nodes/{node}/qemu/{vmid}/config", {"node": "pve1", "vmid": "104"}),
    ("/nodes/pve1/qemu/104/status/current", "/nodes/{node}/qemu/{vmid}/status/current", {"node": "pve1", "vmid": "104"}),
    ("/nodes/pve1/qemu/104/status/start", "/nodes/{node}/qemu/{vmid}/status/start", {"node": "pve1", "vmid": "104"}),
    ("/nodes/pve2/lxc/202/firewall/rules/3", "/nodes/{node}/lxc/{vmid}/firewall/rules/{pos}", {"node": "pve2", "vmid": "202", "pos": "3"}),
    (f"/nodes/pve1/tasks/{UPID}", "/nodes/{node}/tasks/{upid}", {"node": "pve1", "upid": UPID}),
    (f"/nodes/pve1/tasks/{UPID}/status", "/nodes/{node}/tasks/{upid}/status", {"node": "pve1", "upid": UPID}),
    (f"/nodes/pve1/tasks/{UPID}/log", "/nodes/{node}/tasks/{upid}/log", {"node": "pve1", "upid": UPID}),
    ("/cluster/firewall/groups/web/0", "/cluster/firewall/groups/{group}/{pos}", {"group": "web", "pos": "0"}),
    ("/cluster/firewall/ipset/management/10.0.0.0%2F24", "/cluster/firewall/ipset/{name}/{cidr}", {"name": "management", "cidr": "10.0.0.0%2F24"}),
    ("/access/users/proximo@pve/token/agent", "/access/users/{userid}/token/{tokenid}", {"userid": "proximo@pve", "tokenid": "agent"}),
    ("/cluster/ha/resources/vm:104", "/cluster/ha/resources/{sid}", {"sid": "vm:104"}),
    ("/pools", "/pools", {}),
    # placeholder names are not all \w
    ("/nodes/pve1/hardware/pci/0000:01:00.0", "/nodes/{node}/hardware/pci/{pci-id-or-mapping}",
     {"node": "pve1", "pci-id-or-mapping": "0000:01:00.0"}),
    ("/nodes/pve1/hardware/pci/gpu-map/mdev", "/nodes/{node}/hardware/pci/{pci-id-or-mapping}/mdev",
     {"node": "pve1", "pci-id-or-mapping": "gpu-map"}),
    ("/nodes/pve1/nonsense", None, None),
    ("/nonsense", None, None),
    ("/storage/local-zfs/extra", None, None),
    ("storage", None, None),
])
def test_match(path: str, template: str | None, params: dict[str, str] | None) -> None:
    found = schema().match(path)
    if template is None:
        assert found is None
    else:
        assert found == (template, params)


def test_no_two_templates_of_the_index_overlap() -> None:
    """So a concrete path matches at most one template, whatever order the matcher tries them in."""
    paths = sorted({e.path for e in schema().endpoints})
    overlapping = []
    for a, b in itertools.combinations(paths, 2):
        sa, sb = a.strip("/").split("/"), b.strip("/").split("/")
        if len(sa) == len(sb) and all(x == y or x.startswith("{") or y.startswith("{") for x, y in zip(sa, sb, strict=True)):
            overlapping.append((a, b))
    assert overlapping == []


def _synthetic(paths: list[str]) -> ApiSchema:
    return ApiSchema(_Doc(pve_docs_version="test", endpoints=[Endpoint("GET", p, {}) for p in paths]))


@pytest.mark.parametrize("order", [1, -1])
def test_literal_segments_win_over_placeholders(order: int) -> None:
    """PVE's router tries a literal child before the {param} one: /nodes/{node}/storage is not /nodes/{node}/{x}."""
    s = _synthetic(["/nodes/{node}/storage", "/nodes/{node}/{x}", "/nodes", "/nodes/{node}"][::order])
    assert s.match("/nodes/pve1/storage") == ("/nodes/{node}/storage", {"node": "pve1"})
    assert s.match("/nodes/pve1/qemu") == ("/nodes/{node}/{x}", {"node": "pve1", "x": "qemu"})
    assert s.match("/nodes/pve1") == ("/nodes/{node}", {"node": "pve1"})
    assert s.match("/nodes") == ("/nodes", {})
    assert s.match("/nodes/pve1/storage/local") is None


def test_methods() -> None:
    assert schema().methods("/storage/{storage}") == ["GET", "PUT", "DELETE"]
    assert schema().methods("/storage") == ["GET", "POST"]
    assert schema().methods("/nonsense") == []


# --- validation, with PVE's messages ----------------------------------------------------------------------

UNKNOWN = "property is not defined in schema and the schema does not allow additional properties"
MISSING = "property is missing and it is not optional"


def test_valid_create_is_typed() -> None:
    typed, errors = validate(_endpoint("POST", "/storage"), {"storage": "nfs2", "type": "nfs", "server": "10.0.0.5",
                                                               "export": "/srv", "content": "images,iso", "port": "2049",
                                                               "disable": "yes"}, {})
    assert errors == {}
    assert typed == {"storage": "nfs2", "type": "nfs", "server": "10.0.0.5", "export": "/srv", "content": "images,iso",
                     "port": 2049, "disable": 1}


def test_unknown_property() -> None:
    _, errors = validate(_endpoint("POST", "/storage"), {"storage": "s1", "type": "dir", "path": "/x", "bogus": "1"}, {})
    assert errors == {"bogus": UNKNOWN}


def test_unknown_path_param_is_not_a_body_param() -> None:
    typed, errors = validate(_endpoint("DELETE", "/storage/{storage}"), {}, {"storage": "local-zfs"})
    assert errors == {} and typed == {}
    _, errors = validate(_endpoint("DELETE", "/storage/{storage}"), {"force": 1}, {"storage": "local-zfs"})
    assert errors == {"force": UNKNOWN}


def test_missing_required() -> None:
    _, errors = validate(_endpoint("POST", "/storage"), {"storage": "s1"}, {})
    assert errors == {"type": MISSING}
    _, errors = validate(_endpoint("PUT", "/access/acl"), {"users": "u@pve"}, {})
    assert errors == {"path": MISSING, "roles": MISSING}


def test_enum() -> None:
    ep = _endpoint("POST", "/storage")
    _, errors = validate(ep, {"storage": "s1", "type": "ext4"}, {})
    assert errors == {"type": "value 'ext4' does not have a value in the enumeration "
                              "'btrfs, cephfs, cifs, dir, esxi, iscsi, iscsidirect, lvm, lvmthin, nfs, pbs, rbd, zfs, zfspool'"}


def test_enum_applies_to_integers_too() -> None:
    """saferemove-stepsize is an integer with an enum; PVE checks the enum whatever the type."""
    ep = _endpoint("POST", "/storage")
    _, errors = validate(ep, {"storage": "s1", "type": "lvm", "vgname": "vg", "saferemove-stepsize": 3}, {})
    assert errors == {"saferemove-stepsize": "value '3' does not have a value in the enumeration '1, 2, 4, 8, 16, 32'"}
    typed, errors = validate(ep, {"storage": "s1", "type": "lvm", "vgname": "vg", "saferemove-stepsize": "16"}, {})
    assert errors == {} and typed["saferemove-stepsize"] == 16


@pytest.mark.parametrize("value", ["abc", "1.5", "", "0x10", "1e3", 1.5, True])
def test_integer_type(value: Any) -> None:
    _, errors = validate(_endpoint("POST", "/storage"), {"storage": "s1", "type": "nfs", "port": value}, {})
    assert errors == {"port": f"type check ('integer') failed - got '{value}'"}


@pytest.mark.parametrize(("value", "expected"), [("2049", 2049), (2049, 2049), ("+22", 22)])
def test_integer_accepted(value: Any, expected: int) -> None:
    typed, errors = validate(_endpoint("POST", "/storage"), {"storage": "s1", "type": "nfs", "port": value}, {})
    assert errors == {} and typed["port"] == expected


@pytest.mark.parametrize(("value", "message"), [
    ("0", "value must have a minimum value of 1"),
    ("-5", "value must have a minimum value of 1"),
    ("65536", "value must have a maximum value of 65535"),
])
def test_minimum_maximum(value: str, message: str) -> None:
    _, errors = validate(_endpoint("POST", "/storage"), {"storage": "s1", "type": "nfs", "port": value}, {})
    assert errors == {"port": message}


def test_minimum_and_maximum_of_path_params() -> None:
    ep = _endpoint("POST", "/nodes/{node}/qemu/{vmid}/status/start")
    # check_prop: the format (pve-vmid) before minimum and maximum
    assert validate(ep, {}, {"node": "pve1", "vmid": "99"})[1] == {"vmid": "invalid format - value does not look like a valid VM ID"}
    assert validate(ep, {}, {"node": "pve1", "vmid": "1000000000"})[1] == {"vmid": "invalid format - value does not look like a valid VM ID"}
    assert validate(ep, {}, {"node": "pve1", "vmid": "abc"})[1] == {"vmid": "type check ('integer') failed - got 'abc'"}
    assert validate(ep, {}, {"node": "pve1", "vmid": "104"}) == ({}, {})


@pytest.mark.parametrize(("value", "expected"), [
    ("1", 1), ("0", 0), (1, 1), (0, 0), (True, 1), (False, 0),
    ("yes", 1), ("no", 0), ("on", 1), ("off", 0), ("true", 1), ("false", 0), ("YES", 1), ("Off", 0),
])
def test_boolean_accepted(value: Any, expected: int) -> None:
    typed, errors = validate(_endpoint("PUT", "/storage/{storage}"), {"disable": value}, {"storage": "ceph-rbd"})
    assert errors == {}
    assert typed == {"disable": expected}


@pytest.mark.parametrize("value", ["2", "maybe", "", "y", 2, "enabled"])
def test_boolean_refused(value: Any) -> None:
    _, errors = validate(_endpoint("PUT", "/storage/{storage}"), {"disable": value}, {"storage": "ceph-rbd"})
    assert errors == {"disable": f"type check ('boolean') failed - got '{value}'"}


@pytest.mark.parametrize(("value", "ok"), [
    ("0.5", True), (".5", True), ("4", True), (0.25, True), ("1e2", True),
    ("inf", False), ("nan", False), ("1_000", False), (" 4", False), ("4.5.1", False), (float("nan"), False),
])
def test_number_is_pves_is_number(value: Any, ok: bool) -> None:
    ep = _endpoint("PUT", "/nodes/{node}/qemu/{vmid}/config")
    _, errors = validate(ep, {"cpulimit": value}, {"node": "pve1", "vmid": "104"})
    assert errors == ({} if ok else {"cpulimit": f"type check ('number') failed - got '{value}'"})


@pytest.mark.parametrize("sid", ["local-zfs", "ceph.rbd", "a1", "nfs_backup", "Local2", "ab"])
def test_storage_id_accepted(sid: str) -> None:
    assert validate(_endpoint("DELETE", "/storage/{storage}"), {}, {"storage": sid}) == ({}, {})


@pytest.mark.parametrize("sid", ["1abc", "-abc", "abc-", "abc.", "a b", "a/b", "ab$", "_ab"])
def test_storage_id_refused(sid: str) -> None:
    """pve-common PVE::JSONSchema::parse_id: ^[a-z][a-z0-9\\-\\_\\.]*[a-z0-9]$, after a length check (below)."""
    _, errors = validate(_endpoint("DELETE", "/storage/{storage}"), {}, {"storage": sid})
    assert errors == {"storage": f"invalid format - storage ID '{sid}' contains illegal characters"}


@pytest.mark.parametrize("sid", ["x", ""])
def test_storage_id_too_short(sid: str) -> None:
    """parse_id: "cannot be shorter than 2 characters" comes before the pattern."""
    _, errors = validate(_endpoint("DELETE", "/storage/{storage}"), {}, {"storage": sid})
    assert errors == {"storage": f"invalid format - storage ID '{sid}' cannot be shorter than 2 characters"}


def test_storage_id_list_and_content_list() -> None:
    ep = _endpoint("PUT", "/pools")
    assert validate(ep, {"poolid": "prod", "storage": "local,ceph-rbd"}, {})[1] == {}
    assert validate(ep, {"poolid": "prod", "storage": "local,x"}, {})[1] == {
        "storage": "invalid format - storage ID 'x' cannot be shorter than 2 characters"}
    ep = _endpoint("PUT", "/storage/{storage}")
    assert validate(ep, {"content": "images,rootdir"}, {"storage": "local"})[1] == {}
    assert validate(ep, {"content": "images,videos"}, {"storage": "local"})[1] == {
        "content": "invalid format - invalid content type 'videos'"}


def test_node_name_format() -> None:
    ep = _endpoint("GET", "/nodes/{node}/storage")
    assert validate(ep, {}, {"node": "pve1"}) == ({}, {})
    assert validate(ep, {}, {"node": "pve_1"})[1] == {"node": "invalid format - value does not look like a valid node name"}


def test_max_length_and_pattern() -> None:
    ep = _endpoint("PUT", "/storage/{storage}")
    assert validate(ep, {"digest": "a" * 65}, {"storage": "local"})[1] == {"digest": "value may only be 64 characters long"}
    assert validate(ep, {"fingerprint": "zz"}, {"storage": "local"})[1] == {"fingerprint": "value does not match the regex pattern"}
    good = ":".join(["ab"] * 32)
    assert validate(ep, {"fingerprint": good}, {"storage": "local"})[1] == {}


def test_several_errors_at_once() -> None:
    _, errors = validate(_endpoint("POST", "/storage"), {"storage": "x", "port": "0", "nope": 1}, {})
    assert errors == {
        "storage": "invalid format - storage ID 'x' cannot be shorter than 2 characters",
        "port": "value must have a minimum value of 1",
        "nope": UNKNOWN,
        "type": MISSING,
    }


def test_param_spec_defaults() -> None:
    """Nothing in the compact file is lost between the generator and the structs."""
    spec = _endpoint("POST", "/storage").params["port"]
    assert spec == ParamSpec(type="integer", optional=True, minimum=1, maximum=65535)
