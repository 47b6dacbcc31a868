"""Convert the Proxmox test cases, facts and real API responses Proximo's tests use into ``tests/data/pve``.

Input: a ``pve-api`` folder as kept beside the repository (``../shared/pve-api``; another folder may be
given as the first argument). It holds Proxmox's own test cases as data (``tests/``: expected values from
the unit tests of pve-storage, qemu-server, pve-container, pve-access-control and pve-firewall, each case
naming its repository, commit and file), facts read from Proxmox's source (``facts/``), the PVE 9.1 API
schema (``9.1/pve-api-schema.json``, from pve-docs ``api-viewer/apidata.js``) and real API responses found
in public test suites (``samples/``, listed in ``samples/SOURCES.md``).

Output: one JSON file per upstream repository (``tests/data/pve/<repository>.json``; the third-party
responses in ``tests/data/pve/samples/<repository>.json``). Each file starts with ``origin``: the
repository, the commit and the upstream files its data was taken from, the license, and what in
``pve-api`` it was converted from. Only the cases and fields the tests read are kept; no Proxmox code is.
One folder for all of it, beside the host's tests: the same data serve ``tests/`` and the packs' tests
(``plugins/*/tests``), so one converter, one check and one list of origins cover them.

- ``pve-storage.json``: ``parse_volname`` and ``get_subdir`` cases (input, expected result or error).
- ``qemu-server.json``: ``boot_order`` (the boot index of each device, read from the expected QEMU
  command lines of ``src/test/cfg2cmd``; ``template`` is copied from the fixture's main section, since a
  template starts with its disks only), ``parse_config`` (config files by name, and the strict and
  non-strict round trips of run_parse_config_tests.pl) and ``parse_drive`` (what ``parse_drive`` returns
  for the drive strings of the test fixtures: computed by Proxmox's code, not asserted by a test).
- ``pve-container.json``: ``parse_volume`` of the mount-point strings of the snapshot test fixtures (computed).
- ``pve-access-control.json``: the built-in roles (``create_roles``), the user.cfg fixtures as the REST API
  returns them (``GET`` answers, ``/access/permissions?userid=`` computed by Proxmox's code), and the
  ``roles`` / ``privs`` / ``check`` cases of perm-test*.pl and api-get-permissions-test.pl.
- ``pve-firewall.json``: for each ``test/test-*`` folder, its configuration as the API returns it and
  every packet simulation of its ``tests`` file (the hops the packet passes, the expected verdict).
- ``pve-docs.json``: the ``permissions.description`` of every 9.1 method whose permissions are
  ``user: all`` without a check, where it has one (the rest of the schema is ``proximo/pve/_data``, made by gen_api_schema.py).
- ``samples/*.json``: real responses by name, each with its upstream file and line; the ``{"data": ...}``
  envelope some mocks keep is removed, so ``data`` is the response's ``data`` member.

Run ``uv run python scripts/convert_pve_test_data.py [PVE_API_DIR]`` after ``pve-api`` changes and commit the
result. ``--check`` converts again, writes nothing, and exits 1 naming every committed file that differs: it needs
the input, so it is not part of the test suite (a clone runs every test without ``pve-api``); ``.ci/run`` runs it
where ``../shared/pve-api`` is present.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "tests" / "data" / "pve"
PVE_API = REPO.parent / "shared" / "pve-api"
CONVERTER = "scripts/convert_pve_test_data.py"
AGPL = "AGPL-3.0-or-later"

# The responses in samples/, by the repository they were found in (samples/SOURCES.md): file and line, checked
# at the commit named (proxmoxer's commit is not in the mirror read: its samples name the mock functions).
SAMPLE_REPOSITORIES: dict[str, dict[str, Any]] = {
    "go-proxmox": {
        "repository": "luthermonson/go-proxmox",
        "commit": "c85962ec2ea3318fa961791e88f366a946fd66f6",
        "license": "Apache-2.0",
        "samples": {
            "access-acl.go-proxmox": ("tests/mocks/pve7x/access.go", 9),
            "cluster-resources.go-proxmox": ("tests/mocks/pve9x/cluster.go", 97),
            "cluster-status.go-proxmox": ("tests/mocks/pve9x/cluster.go", 26),
            "lxc-config-101.pvesh-pretty.go-proxmox": ("tests/mocks/pve7x/nodes.go", 966),
            "lxc-migrate-precondition.SYNTHETIC-WRONG-KEYS.go-proxmox": ("tests/mocks/pve9x/containers.go", 417),
            "network-list.node1.go-proxmox": ("tests/mocks/pve7x/nodes.go", 701),
            "network-list.node2-ipv6.go-proxmox": ("tests/mocks/pve7x/nodes.go", 834),
            "network-list.vlans.go-proxmox": ("tests/mocks/pve8x/nodes.go", 203),
            "qemu-migrate-precondition.SYNTHETIC.go-proxmox": ("tests/mocks/pve9x/virtual_machines.go", 726),
            "qemu-status-current.go-proxmox": ("tests/mocks/pve8x/virtual_machines.go", 10),
            "storage-content.SYNTHETIC.go-proxmox": ("tests/mocks/pve8x/storage.go", 103),
            "storage-list.SYNTHETIC.go-proxmox": ("tests/mocks/pve8x/storage.go", 11),
        },
    },
    "community.proxmox": {
        "repository": "ansible-collections/community.proxmox",
        "commit": "4a7ebd9242023782dddb888ba7006614367f28cd",
        "license": "GPL-3.0-or-later",
        "samples": {
            "cluster-resources.pve9.community-proxmox": ("tests/unit/plugins/modules/test_proxmox_firewall_info.py", 56),
            "cluster-resources-vm.community-proxmox": ("tests/unit/plugins/modules/test_proxmox_vm_info.py", 25),
            "firewall-aliases.community-proxmox": ("tests/unit/plugins/modules/test_proxmox_firewall_info.py", 50),
            "firewall-groups.community-proxmox": ("tests/unit/plugins/modules/test_proxmox_firewall_info.py", 45),
            "firewall-ipset-name.community-proxmox": ("tests/unit/plugins/modules/test_proxmox_firewall_info.py", 82),
            "firewall-ipset.community-proxmox": ("tests/unit/plugins/modules/test_proxmox_firewall_info.py", 80),
            "firewall-rules.community-proxmox": ("tests/unit/plugins/modules/test_proxmox_firewall_info.py", 23),
            "firewall-rules.doc-sample.community-proxmox": ("plugins/modules/proxmox_firewall_info.py", 160),
            "nodes-lxc-list.pre-8.2-string-vmid.community-proxmox": ("tests/unit/plugins/modules/test_proxmox_vm_info.py", 151),
            "nodes-qemu-list.community-proxmox": ("tests/unit/plugins/modules/test_proxmox_vm_info.py", 230),
            "qemu-config-102.community-proxmox": ("tests/unit/plugins/inventory/test_proxmox.py", 333),
            "qemu-config-103.community-proxmox": ("tests/unit/plugins/inventory/test_proxmox.py", 352),
            "storage-content.pbs.community-proxmox": ("tests/unit/plugins/modules/test_proxmox_storage_contents_info.py", 24),
        },
    },
    "proxmoxer": {
        "repository": "proxmoxer/proxmoxer",
        "commit": "0473ab7fd78491c60cfdee95a17c7b5e77ac6079",
        "license": "MIT",
        "samples": {
            "error-responses.proxmoxer": ("tests/api_mock.py (_cb_url_metadata, _cb_password_auth)", None),
            "task-status.proxmoxer": ("tests/api_mock.py (_cb_task_status)", None),
        },
    },
}

# The user.cfg fixtures of tests/access (``fixtures/NAME`` there, ``NAME`` here): repository and file.
ACCESS_FIXTURES: dict[str, tuple[str, str]] = {
    "fixtures/api-get-permissions-test.cfg": ("proxmox/pve-access-control", "src/test/api-get-permissions-test.cfg"),
    "fixtures/pve-storage.volume-access.user.cfg": ("proxmox/pve-storage", "src/test/run_volume_access_tests.pl ($user_cfg)"),
    "fixtures/test1.cfg": ("proxmox/pve-access-control", "src/test/test1.cfg"),
    "fixtures/test2.cfg": ("proxmox/pve-access-control", "src/test/test2.cfg"),
    "fixtures/test3.cfg": ("proxmox/pve-access-control", "src/test/test3.cfg"),
    "fixtures/test4.cfg": ("proxmox/pve-access-control", "src/test/test4.cfg"),
    "fixtures/test5.cfg": ("proxmox/pve-access-control", "src/test/test5.cfg"),
    "fixtures/test7.cfg": ("proxmox/pve-access-control", "src/test/test7.cfg"),
    "fixtures/user.cfg.ex": ("proxmox/pve-access-control", "user.cfg.ex"),
}


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _only(values: Iterable[str], what: str) -> str:
    """The one value all the cases agree on (a converted file names one commit of one repository)."""
    found = set(values)
    if len(found) != 1:
        raise ValueError(f"{what}: expected one value, found {sorted(found)}")
    return found.pop()


def _source(repository: str, commit: str, files: list[str]) -> dict[str, Any]:
    return {"repository": repository, "commit": commit, "files": files}


def _origin(sources: list[dict[str, Any]], converted_from: list[str], **more: Any) -> dict[str, Any]:
    return {"sources": sources, **more, "converted_from": [f"pve-api/{name}" for name in converted_from],
            "converted_by": CONVERTER}


def _of_kind(cases: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [case for case in cases if case["kind"] == kind]


def _commit(cases: list[dict[str, Any]], repository: str) -> str:
    """The commit of ``repository`` all the cases were taken at."""
    found = _only((case["source"]["repo"] for case in cases), "repository")
    if found != repository:
        raise ValueError(f"cases come from {found}, not {repository}")
    return _only((case["source"]["commit"] for case in cases), f"{repository} commit")


def pve_storage(pve_api: Path) -> dict[str, Any]:
    cases = _read(pve_api / "tests" / "storage" / "cases.json")
    kinds = ("parse_volname", "get_subdir")
    used = [case for case in cases if case["kind"] in kinds]
    files = [f'{_only((case["source"]["path"] for case in _of_kind(used, kind)), kind)} ({kind})' for kind in kinds]
    origin = _origin([_source("proxmox/pve-storage", _commit(used, "proxmox/pve-storage"), files)],
                     ["tests/storage/cases.json"], license=AGPL)
    return {"origin": origin, **{kind: [{"id": case["id"], "input": case["input"], "expect": case["expect"]}
                                         for case in _of_kind(used, kind)] for kind in kinds}}


def _main_section_value(config_text: str, key: str) -> str | None:
    """``key``'s value in a guest config file's main section (the lines before the first ``[section]``)."""
    for line in config_text.splitlines():
        if line.startswith("["):
            break
        match = re.fullmatch(rf"{re.escape(key)}:\s*(.*?)\s*", line)
        if match:
            return match.group(1)
    return None


def qemu_server(pve_api: Path) -> dict[str, Any]:
    folder = pve_api / "tests" / "guest-config"
    cases = _read(folder / "cases.json")
    boot, parse = _of_kind(cases, "boot_order"), _of_kind(cases, "parse_config")
    drives = _read(folder / "computed-qemu-parse_drive.json")
    commit = _commit(boot + parse, "proxmox/qemu-server")
    if drives["_meta"]["source"]["commit"] != commit:
        raise ValueError("parse_drive was computed at another qemu-server commit")

    boot_cases = []
    for case in boot:
        data = case["input"]
        inputs: dict[str, Any] = {"devices": data["devices"], "boot": data["boot"], "bootdisk": data["bootdisk"]}
        template = _main_section_value((folder / data["file"]).read_text(encoding="utf-8"), "template")
        if template is not None:
            inputs["template"] = template
        boot_cases.append({"id": case["id"], "file": case["source"]["path"], "input": inputs, "expect": case["expect"]})

    configs: dict[str, str] = {}
    parse_cases = []
    for case in parse:
        data = case["input"]
        name = Path(data["file"]).name
        if configs.setdefault(name, data["config"]) != data["config"]:
            raise ValueError(f"two texts for {name}")
        parse_cases.append({"id": case["id"], "config": name, "config_filename": data["config_filename"],
                            "strict": data["strict"], "expect": {k: v for k, v in case["expect"].items() if k != "expected_file"}})

    files = [
        "src/test/cfg2cmd/*.conf and their expected command lines *.conf.cmd, run by src/test/run_config2command_tests.pl (boot_order)",
        f"{_only((case['source']['path'] for case in parse), 'parse_config')} with src/test/parse-config-input/*.conf"
        " and src/test/parse-config-expected/* (parse_config)",
        f"{drives['_meta']['source']['path']} parse_drive, run on the drive strings of the src/test/ fixtures (parse_drive)",
    ]
    origin = _origin([_source("proxmox/qemu-server", commit, files)],
                     ["tests/guest-config/cases.json", "tests/guest-config/computed-qemu-parse_drive.json",
                      "tests/guest-config/fixtures/qemu-server/cfg2cmd (template)"],
                     license=AGPL, computed_not_asserted=["parse_drive"])
    return {"origin": origin, "boot_order": boot_cases,
            "parse_config": {"configs": {name: configs[name] for name in sorted(configs)},
                             "configs_from": "src/test/parse-config-input", "cases": parse_cases},
            "parse_drive": drives["drives"]}


def pve_container(pve_api: Path) -> dict[str, Any]:
    volumes = _read(pve_api / "tests" / "guest-config" / "computed-lxc-parse_volume.json")
    source = volumes["_meta"]["source"]
    files = [f"{source['path']} parse_volume, run on the mount points of the src/test/snapshot-* fixtures (parse_volume)"]
    origin = _origin([_source(source["repo"], source["commit"], files)], ["tests/guest-config/computed-lxc-parse_volume.json"],
                     license=AGPL, computed_not_asserted=["parse_volume"])
    return {"origin": origin, "parse_volume": volumes["volumes"]}


def pve_access_control(pve_api: Path) -> dict[str, Any]:
    folder = pve_api / "tests" / "access"
    cases = _read(folder / "cases.json")
    shapes = _read(folder / "api-shapes.json")
    roles = _read(pve_api / "facts" / "builtin-roles.json")
    commit = _commit(cases, "proxmox/pve-access-control")
    if roles["_source"]["commit"] != commit:
        raise ValueError("the built-in roles were read at another pve-access-control commit")
    fixtures = {name.removeprefix("fixtures/"): answers for name, answers in shapes.items() if not name.startswith("_")}
    named = {f"fixtures/{name}" for name in fixtures}
    if named != set(ACCESS_FIXTURES):
        raise ValueError(f"access fixtures differ from ACCESS_FIXTURES: {sorted(named ^ set(ACCESS_FIXTURES))}")

    kept = ("subject", "path", "request", "expect", "observed_error_message")
    converted = []
    for case in cases:
        row = {"id": case["id"], "kind": case["kind"], "fixture": case["config_file"].removeprefix("fixtures/")}
        row |= {key: case[key] for key in kept if key in case}
        row["expect"] = {key: value for key, value in case["expect"].items() if key != "joined"}
        row["file"] = case["source"]["path"] + (f":{case['source']['line']}" if "line" in case["source"] else "")
        converted.append(row)

    # the fixtures, then the API handlers whose answers are the fixtures' GET answers, by repository
    files: dict[str, list[str]] = {"proxmox/pve-access-control": sorted({case["source"]["path"] for case in cases})}
    files["proxmox/pve-access-control"].append(f"{roles['_source']['path']} {', '.join(roles['_source']['functions'])} (builtin_roles)")
    for repository, path in ACCESS_FIXTURES.values():
        files.setdefault(repository, []).append(f"{path} (fixture)")
    commits = {"proxmox/pve-access-control": commit, "proxmox/pve-storage": _commit(
        _read(pve_api / "tests" / "storage" / "cases.json"), "proxmox/pve-storage")}
    for handler in shapes["_meta"]["sources"]:
        if commits.setdefault(handler["repo"], handler["commit"]) != handler["commit"]:
            raise ValueError(f"{handler['repo']}: two commits")
        files.setdefault(handler["repo"], []).append(f"{handler['path']} (the GET answers)")
    origin = _origin([_source(repository, commits[repository], paths) for repository, paths in files.items()],
                     ["tests/access/cases.json", "tests/access/api-shapes.json", "facts/builtin-roles.json"],
                     license=AGPL, computed_not_asserted=["GET /access/permissions?userid= answers"],
                     assumed=shapes["_meta"]["mocked_cluster_state"])
    return {"origin": origin,
            "builtin_roles": {"privileges": roles["privileges"], "roles": roles["roles"]},
            "fixtures": fixtures, "cases": converted}


def _endpoint_info(info: dict[str, Any]) -> dict[str, Any]:
    """What a packet simulation needs of an endpoint: its kind, and for a guest its vmid and NIC."""
    return {key: info[key] for key in ("type", "vmid", "net") if key in info}


def _corosync_section(text: str, name: str) -> dict[str, str]:
    """One top-level section of a corosync.conf (``name { key: value ... }``) as GET /cluster/config/<name> gives it."""
    match = re.search(rf"^{name}\s*{{(.*?)^}}", text, re.M | re.S)
    if match is None:
        raise ValueError(f"corosync.conf has no {name} section")
    return dict(re.findall(r"^\s*(\w+):\s*(\S+)\s*$", match.group(1), re.M))


def pve_firewall(pve_api: Path) -> dict[str, Any]:
    folder = pve_api / "tests" / "firewall"
    cases = _read(folder / "cases.json")
    upstream = cases["upstream"]
    environment = {key: cases["environment"][key] for key in ("node", "host_ip", "local_network")}
    # test/corosync.conf's totem section, as GET /cluster/config/totem answers it: its transport decides the
    # corosync multicast rule (Firewall.pm ruleset_generate_host_rules)
    environment["totem"] = _corosync_section((folder / "cases" / "corosync.conf").read_text(), "totem")
    testdirs: dict[str, Any] = {}
    for testdir in cases["testdirs"]:
        shapes = _read(folder / "api-shapes" / f"{testdir['name']}.json")
        meta = shapes["_meta"]
        seen = {"node": meta["node"], "host_ip": meta["simulator"]["host_ip"], "local_network": meta["simulator"]["local_network"]}
        if seen != {k: environment[k] for k in seen} or meta["upstream"]["commit"] != upstream["commit"]:
            raise ValueError(f"{testdir['name']} assumes another world")
        lines = [{"line": meta_line["line"],
                  "simulations": [{"from": sim["from"], "to": sim["to"],
                                   "from_info": _endpoint_info(sim["from_info"]), "to_info": _endpoint_info(sim["to_info"]),
                                   "packet": {key: sim["packet"][key] for key in ("proto", "sport", "dport", "source", "dest")},
                                   "hops": [{key: hop[key] for key in ("chain", "at", "iface_in", "iface_out")} for hop in sim["hops"]],
                                   "expect": sim["expect"]} for sim in meta_line["simulations"]]}
                 for meta_line in testdir["test_meta"]]
        api = {path: data for path, data in shapes.items() if not path.startswith("_")}
        testdirs[testdir["name"]] = {"api": api, "lines": lines}
    files = [f"{upstream['test_dir']}{name}/ (cluster.fw, host.fw, <vmid>.fw, tests)" for name in testdirs]
    files += [f"{upstream['test_dir']}corosync.conf (the totem section)",
              f"{upstream['runner']} and {upstream['simulator']} (the hops of each simulated packet)",
              f"{upstream['api']} (the configuration as the API returns it)"]
    origin = _origin([_source("proxmox/pve-firewall", upstream["commit"], files)],
                     ["tests/firewall/cases.json", "tests/firewall/api-shapes/*.json"], license=AGPL)
    return {"origin": origin, "environment": environment, "testdirs": testdirs}


def _schema_methods(node: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for method, info in (node.get("info") or {}).items():
        yield method, node["path"], info
    for child in node.get("children") or []:
        yield from _schema_methods(child)


def _directory_indexes(node: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """GETs that list literal children and whose answer links each row by one key: the schema's directory indexes."""
    get = (node.get("info") or {}).get("GET")
    children = [child["path"].rsplit("/", 1)[1] for child in node.get("children") or []]
    literal = [name for name in children if not name.startswith("{")]
    links = ((get or {}).get("returns") or {}).get("links")
    if get and literal and links:
        yield {"path": node["path"], "key": links[0]["href"].strip("{}"), "children": literal}
    for child in node.get("children") or []:
        yield from _directory_indexes(child)


def pve_docs(pve_api: Path) -> dict[str, Any]:
    meta = _read(pve_api / "9.1" / "pve-api-index.json")["meta"]
    descriptions = {}
    indexes: list[dict[str, Any]] = []
    for root in _read(pve_api / "9.1" / "pve-api-schema.json"):
        indexes.extend(_directory_indexes(root))
        for method, path, info in _schema_methods(root):
            permissions = info.get("permissions") or {}
            if permissions.get("user") == "all" and "check" not in permissions and "description" in permissions:
                descriptions[f"{method} {path}"] = permissions["description"]
    origin = _origin([_source(meta["source_repo"], meta["source_commit"], [meta["source_path"]])],
                     ["9.1/pve-api-schema.json", "9.1/pve-api-index.json (meta)"], pve_docs_version=meta["pve_docs_version"])
    return {"origin": origin, "user_all_permission_descriptions": dict(sorted(descriptions.items())),
            "directory_indexes": indexes}


def samples(pve_api: Path, key: str) -> dict[str, Any]:
    repository = SAMPLE_REPOSITORIES[key]
    converted = {}
    for name, (file, line) in sorted(repository["samples"].items()):
        data = _read(pve_api / "samples" / f"{name}.json")
        if isinstance(data, dict) and set(data) == {"data"}:  # the mock kept the response envelope
            data = data["data"]
        converted[name] = {"file": file, **({"line": line} if line is not None else {}), "data": data}
    files = sorted({file for file, _ in repository["samples"].values()})
    origin = _origin([_source(repository["repository"], repository["commit"], files)], ["samples/*.json", "samples/SOURCES.md"],
                     license=repository["license"])
    return {"origin": origin, "samples": converted}


def convert(pve_api: Path) -> dict[str, dict[str, Any]]:
    """Every data file, by its path under tests/data/pve."""
    listed = {name for repository in SAMPLE_REPOSITORIES.values() for name in repository["samples"]}
    present = {path.stem for path in (pve_api / "samples").glob("*.json")}
    if listed != present:
        raise ValueError(f"samples/ and SAMPLE_REPOSITORIES differ: {sorted(listed ^ present)}")
    files = {
        "pve-storage.json": pve_storage(pve_api),
        "qemu-server.json": qemu_server(pve_api),
        "pve-container.json": pve_container(pve_api),
        "pve-access-control.json": pve_access_control(pve_api),
        "pve-firewall.json": pve_firewall(pve_api),
        "pve-docs.json": pve_docs(pve_api),
    }
    files.update({f"samples/{key}.json": samples(pve_api, key) for key in SAMPLE_REPOSITORIES})
    return files


def dumps(doc: dict[str, Any]) -> str:
    """JSON, a value on one line where it fits in ``LINE`` characters or holds only short scalars (a privilege
    map, a list of names), else a member a line."""
    return _dump(doc, "") + "\n"


LINE = 160
WORD = 60


def _dump(value: Any, indent: str) -> str:
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or len(indent) + len(flat) <= LINE:
        return flat
    members = value.values() if isinstance(value, dict) else value
    if not any(isinstance(member, dict | list) or (isinstance(member, str) and len(member) > WORD) for member in members):
        return flat
    inner = indent + " "
    if isinstance(value, dict):
        members = [f"{inner}{json.dumps(key, ensure_ascii=False)}: {_dump(item, inner)}" for key, item in value.items()]
        return "{\n" + ",\n".join(members) + "\n" + indent + "}"
    return "[\n" + ",\n".join(inner + _dump(item, inner) for item in value) + "\n" + indent + "]"


def stale(pve_api: Path) -> list[str]:
    """The files of ``tests/data/pve`` that differ from a conversion of ``pve_api`` (missing or extra ones too)."""
    expected = {name: dumps(doc) for name, doc in convert(pve_api).items()}
    committed = {str(path.relative_to(OUTPUT)): path.read_text(encoding="utf-8") for path in sorted(OUTPUT.rglob("*.json"))}
    return sorted(name for name in set(expected) | set(committed) if expected.get(name) != committed.get(name))


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if a != "--check"]
    pve_api = Path(args[0]) if args else PVE_API
    if "--check" in argv[1:]:
        differ = stale(pve_api)
        print(f"stale: {', '.join(differ)}: run scripts/convert_pve_test_data.py" if differ else "tests/data/pve is the conversion of its input")
        return 1 if differ else 0
    for name, doc in convert(pve_api).items():
        path = OUTPUT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(doc), encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
