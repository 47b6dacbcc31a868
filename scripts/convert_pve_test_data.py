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

The cases pve-api does not hold are read straight from git mirrors of Proxmox's repositories (bare or
checked out, ``<owner>+<name>/repo`` in a mirrors folder: by default ``.mirror`` beside the repository, or the
second argument), at the commits the pve-api data names, into ``tests/data/pve/from-git/``:

- ``from-git/pve-firewall.json``: the pve-firewall ``test/test-*`` folders not in ``pve-firewall.json``, in its
  shape: the configuration as the API returns it (Firewall.pm's parsers followed where the files need them)
  and each simulation (fwtester.pl's zones and FirewallSimulator.pm's route_packet).
- ``from-git/pve-access-control.json``: the perm-test*.pl not in ``pve-access-control.json``: their user.cfg
  as GET answers (parse_user_config) and their ``roles`` / ``privs`` cases.

Run ``uv run python scripts/convert_pve_test_data.py [PVE_API_DIR [MIRRORS_DIR]]`` after ``pve-api`` or the
mirrors change and commit the result. ``--check`` converts again, writes nothing, and exits 1 naming every
committed file that differs; each part is checked where its input is present and said to be unchecked where it is
not. It needs the inputs, so it is not part of the test suite (a clone runs every test with neither); ``.ci/run``
runs it where ``../shared/pve-api`` is present.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import subprocess
import sys
import urllib.parse
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
    match = re.search(rf"^{name}\s*{{(.*?)^}}", text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise ValueError(f"corosync.conf has no {name} section")
    return dict(re.findall(r"^\s*(\w+):\s*(\S+)\s*$", match.group(1), re.MULTILINE))


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


# --- straight from Proxmox's repositories --------------------------------------------------------------
# The folders of pve-firewall's test/ and the perm-tests of pve-access-control that pve-api does not hold, read
# from a git mirror or a checkout (default: the mirrors beside the repository, ../.mirror/<owner>+<name>/repo).
# Proxmox's parsers are followed line by line where the data needs them (the functions are named); what the
# suites do not use and would need more than these files (macros, /etc/services names, SDN ipsets) is refused,
# not guessed.

MIRRORS = REPO.parent / ".mirror"
FIREWALL_TESTDIRS = ["test-default-rules1", "test-errors2", "test-errors4", "test-ipset2", "test-vm-ipfilter1", "test-vm-ipfilter2"]
PERM_TESTS = ["perm-test6.pl", "perm-test8.pl"]


class Checkout:
    """A git repository, bare (a mirror) or checked out: its HEAD commit and the files at HEAD."""

    def __init__(self, path: Path, repository: str) -> None:
        self.repository = repository
        bare = (path / "objects").is_dir() and (path / "HEAD").is_file()
        self._git = ["git", f"--git-dir={path}"] if bare else ["git", "-C", str(path)]
        self.commit = self._run("rev-parse", "HEAD").strip()

    def _run(self, *args: str) -> str:
        return subprocess.run([*self._git, *args], check=True, capture_output=True, text=True).stdout

    def read(self, path: str) -> str | None:
        """The file at HEAD, or None when HEAD has no such file."""
        listed = self._run("ls-tree", "--name-only", "HEAD", "--", path).strip()
        return self._run("show", f"HEAD:{path}") if listed else None

    def files(self, folder: str) -> list[str]:
        return sorted(Path(name).name for name in self._run("ls-tree", "--name-only", "HEAD", f"{folder}/").split())


def _perl_block(text: str, start: str, what: str) -> str:
    """The text of a Perl hash literal ``start ... };`` (up to the first ``};`` at the start of a line)."""
    match = re.search(rf"{re.escape(start)}(.*?)^\s*}};", text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise ValueError(f"{what}: '{start}' not found")
    return match.group(1)


def _perl_keys(block: str) -> set[str]:
    """The keys of a Perl ``{ name => 1, 'other-name' => 1 }`` literal."""
    return {a or b for a, b in re.findall(r"^\s*(?:'([^']+)'|(\w+))\s*=>", block, re.MULTILINE)}


class _FwWorld:
    """What fwtester.pl and FirewallSimulator.pm assume: the guests, the host address, the zones, the defaults."""

    def __init__(self, checkout: Checkout) -> None:
        tester = checkout.read("test/fwtester.pl") or ""
        simulator = checkout.read("src/PVE/FirewallSimulator.pm") or ""
        firewall = checkout.read("src/PVE/Firewall.pm") or ""

        def found(pattern: str, text: str, what: str) -> str:
            match = re.search(pattern, text)
            if match is None:
                raise ValueError(f"{what} not found")
            return match.group(1)

        self.host_ip = found(r"my \$host_ip = '([^']+)';", tester, "fwtester.pl $host_ip")
        self.local_network = found(r"PVE::Firewall::local_network\('([^']+)'\);", tester, "fwtester.pl local_network")
        self.zones = found(r"my @test_zones = qw\(([^)]*)\);", tester, "fwtester.pl @test_zones").split()
        self.guests: dict[str, dict[int, dict[str, str]]] = {"qemu": {}, "lxc": {}}
        kind, vmid = "", 0
        for match in re.finditer(r'(qemu|lxc)\s*=>\s*\{|(\d+)\s*=>\s*\{|(net\d+)\s*=>\s*"([^"]*)"',
                                 _perl_block(tester, "my $vmdata = {", "fwtester.pl $vmdata")):
            if match.group(1):
                kind = match.group(1)
            elif match.group(2):
                vmid = int(match.group(2))
                self.guests[kind][vmid] = {}
            else:
                self.guests[kind][vmid][match.group(3)] = match.group(4)
        packet = _perl_block(simulator, "my $pkg = {", "FirewallSimulator.pm $pkg")
        self.packet: dict[str, Any] = {key: (None if value == "undef" else value.strip("'"))
                                       for key, value in re.findall(r"(\w+) => ('[^']*'|undef),", packet)}
        self.default_source = found(r"\$pkg->\{source\} = '([^']+)' if !defined", simulator, "default source")
        self.default_dest = found(r"\$pkg->\{dest\} = '([^']+)' if !defined", simulator, "default dest")
        self.icmp_types = _perl_keys(_perl_block(firewall, "my $icmp_type_names = {", "Firewall.pm $icmp_type_names"))
        self.icmpv6_types = _perl_keys(_perl_block(firewall, "my $icmpv6_type_names = {", "Firewall.pm $icmpv6_type_names"))
        corosync = checkout.read("test/corosync.conf") or ""
        self.totem = _corosync_section(corosync, "totem")
        # GET /cluster/config/nodes: a row per nodelist node, its keys as written (values are strings)
        self.corosync_nodes = [{"node": fields["name"], **fields} for fields in (
            dict(re.findall(r"^\s*(\w+):\s*(\S+)\s*$", body, re.MULTILINE))
            for body in re.findall(r"^\s*node\s*\{(.*?)\}", _corosync_section_text(corosync, "nodelist"), re.MULTILINE | re.DOTALL))]

    def nic(self, vmid: int, netnum: int) -> dict[str, Any]:
        """extract_vm_info / extract_ct_info: the devices a guest NIC's packets pass."""
        kind = "qemu" if vmid in self.guests["qemu"] else "lxc"
        if vmid not in self.guests[kind]:
            raise ValueError(f"no such guest {vmid}")
        fields = dict(part.partition("=")[::2] for part in self.guests[kind][vmid][f"net{netnum}"].split(","))
        return {"type": "vm" if kind == "qemu" else "ct", "vmid": vmid, "net": f"net{netnum}", "bridge": fields["bridge"],
                "fwbr": f"fwbr{vmid}i{netnum}", "tapdev": f"{'tap' if kind == 'qemu' else 'veth'}{vmid}i{netnum}",
                "fwln": f"fwln{vmid}i{netnum}", "fwpr": f"fwpr{vmid}p{netnum}"}


def _corosync_section_text(text: str, name: str) -> str:
    match = re.search(rf"^{name}\s*{{(.*?)^}}", text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise ValueError(f"corosync.conf has no {name} section")
    return match.group(1)


_BRIDGE_PORT = re.compile(r"^([a-zA-Z][a-zA-Z0-9]{0,9})/(\S+)$")  # FirewallSimulator.pm $bridge_interface_pattern


def _zone(world: _FwWorld, zone: str, *, source: bool) -> dict[str, Any]:
    """simulate_firewall: an endpoint (``from`` when ``source``) as FirewallSimulator.pm describes it."""
    if zone == "host":
        return {"type": "host"}
    if zone in ("outside", "nfvm"):
        return {"type": "bport", "bridge": "vmbr0", "iface": "eth0" if zone == "outside" else "tapXYZ"}
    if match := re.fullmatch(r"ct(\d+)", zone):
        return world.nic(int(match.group(1)), 0)
    if match := re.fullmatch(r"vm(\d+)(i(\d))?" if source else r"vm(\d+)", zone):
        return world.nic(int(match.group(1)), int(match.group(3) or 0) if source else 0)
    if match := _BRIDGE_PORT.match(zone):
        return {"type": "bport", "bridge": match.group(1), "iface": match.group(2)}
    raise ValueError(f"unable to parse zone '{zone}'")


def _route(start: dict[str, Any], target: dict[str, Any]) -> list[dict[str, Any]]:
    """FirewallSimulator.pm route_packet: the chains a packet passes, where, and with which interfaces."""
    hops = []
    state = {"host": "host", "bport": "from-bport"}.get(start["type"], "fwbr-out")
    goal = "host" if target["type"] == "host" else target["iface"] if target["type"] == "bport" else target["tapdev"]
    physdev_in = None
    while state != goal:
        chain, nxt, next_physdev_in, iface_in, iface_out = None, None, None, None, None
        if state == "from-bport":
            nxt, next_physdev_in = start["bridge"], start["iface"]
        elif state == "host":
            if target["type"] == "host":
                raise ValueError("from/to needs to be different")
            chain, iface_in, iface_out = "PVEFW-OUTPUT", "lo", target["bridge"]
            nxt = target["iface"] if target["type"] == "bport" else "fwbr-in"
        elif state == "fwbr-out":
            chain, nxt, next_physdev_in = "PVEFW-FORWARD", start["bridge"], start["fwpr"]
            iface_in = iface_out = start["fwbr"]
        elif state == "fwbr-in":
            chain, nxt = "PVEFW-FORWARD", target["tapdev"]
            iface_in = iface_out = target["fwbr"]
        elif re.fullmatch(r"[a-zA-Z][a-zA-Z0-9]{0,9}", state):
            if physdev_in is None:
                raise ValueError("missing physdev_in")
            if target["type"] == "host":
                chain, iface_in, iface_out, nxt = "PVEFW-INPUT", state, "lo", "host"
            else:
                chain, iface_in, iface_out = "PVEFW-FORWARD", state, target["bridge"]
                nxt = target["iface"] if target["type"] == "bport" else "fwbr-in"
        else:
            raise ValueError(f"cannot route from {state}")
        if chain:
            hops.append({"chain": chain, "at": state, "iface_in": iface_in, "iface_out": iface_out})
        state, physdev_in = nxt, next_physdev_in
    return hops


def _fw_tests(text: str, world: _FwWorld) -> list[dict[str, Any]]:
    """fwtester.pl run_tests: each ``{ key => value, ... }`` line, expanded over the zones when from or to is missing."""
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if not re.fullmatch(r"\{.*\}\s*", line):
            raise ValueError(f"tests line {number}: parse error")
        pairs = re.findall(r"(\w+)\s*=>\s*(?:'([^']*)'|(-?\d+))", line)
        rest = re.sub(r"(\w+)\s*=>\s*(?:'([^']*)'|(-?\d+))", "", line.strip()[1:-1])
        if rest.replace(",", "").strip():
            raise ValueError(f"tests line {number}: cannot read {rest!r}")
        test: dict[str, Any] = {key: text_value if not number_value else int(number_value)
                                for key, text_value, number_value in pairs}
        if "from" not in test and "to" not in test:
            raise ValueError(f"tests line {number}: missing zone specification (from, to)")
        runs = ([dict(test, to=zone) for zone in world.zones if zone != test["from"]] if "to" not in test else
                [dict(test, **{"from": zone}) for zone in world.zones if zone != test["to"]] if "from" not in test else [test])
        lines.append({"line": number, "simulations": [_simulate(world, run) for run in runs]})
    return lines


def _simulate(world: _FwWorld, test: dict[str, Any]) -> dict[str, Any]:
    """simulate_firewall: the packet (defaults filled in), its endpoints and hops, and the expected verdict."""
    if test["from"] == test["to"]:
        raise ValueError("from/to needs to be different")
    packet = dict(world.packet)
    for key, value in test.items():
        if key in ("from", "to", "action", "id"):
            continue
        if key not in packet:
            raise ValueError(f"unknown attribute '{key}'")
        packet[key] = value
    start, target = _zone(world, test["from"], source=True), _zone(world, test["to"], source=False)
    if start["type"] == "host" and packet["source"] is None:
        packet["source"] = world.host_ip
    if target["type"] == "host" and packet["dest"] is None:
        packet["dest"] = world.host_ip
    packet["source"] = packet["source"] if packet["source"] is not None else world.default_source
    packet["dest"] = packet["dest"] if packet["dest"] is not None else world.default_dest
    return {"from": test["from"], "to": test["to"], "from_info": _endpoint_info(start), "to_info": _endpoint_info(target),
            "packet": _packet(packet), "hops": _route(start, target), "expect": test["action"]}


def _packet(packet: dict[str, Any]) -> dict[str, Any]:
    """The packet's fields; the address types only where a test sets one other than UNICAST (the default)."""
    kept = {key: packet[key] for key in ("proto", "sport", "dport", "source", "dest")}
    return kept | {key: packet[key] for key in ("srctype", "dsttype") if packet.get(key, "UNICAST") != "UNICAST"}


# Firewall.pm: names and limits
_FW_NAME = r"[A-Za-z][A-Za-z0-9\-\_]+"  # $security_group_name_pattern, $ipset_name_pattern, $ip_alias_pattern
_PROTOCOLS_WITH_PORTS = {"udp", "17", "udplite", "136", "tcp", "6", "dccp", "33", "sctp", "132"}
# /etc/protocols is not read: the names the suites use, and their numbers (anything else is refused)
_PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58, "udplite": 136, "sctp": 132, "dccp": 33, "igmp": 2}
_RULE_ENV_TYPES = {"ct": ["in", "out", "group"], "vm": ["in", "out", "group"], "group": ["in", "out", "forward"],
                   "cluster": ["in", "out", "forward", "group"], "host": ["in", "out", "forward", "group"]}


def _perl_true(value: Any) -> bool:
    """Perl's truth: undef, "" and "0" are false (``-dport 0`` is not checked as a port)."""
    return value not in (None, "", "0", 0)


class _RuleDropped(ValueError):
    """parse_fw_rule died: generic_fw_config_parser warns and drops the line (it is not in the API)."""


def _ip_or_cidr(cidr: str) -> tuple[str, int]:
    """parse_ip_or_cidr: an address or network, ``/32`` and ``/128`` dropped."""
    address, _, prefix = cidr.partition("/")
    try:
        version = ipaddress.ip_address(address).version
    except ValueError:
        raise ValueError("value does not look like a valid IP address or CIDR network") from None
    if prefix and not prefix.isdigit():
        raise ValueError("value does not look like a valid IP address or CIDR network")
    return re.sub(r"/128$" if version == 6 else r"/32$", "", cidr), version


def _address_list(text: str) -> int | None:
    """parse_address_list: the IP version of a literal list; None for an ipset or alias name."""
    if text.startswith("+") and re.fullmatch(r"\+\S+", text):
        if len(text) > 65:
            raise ValueError("ipset name too long")
        return None
    if re.fullmatch(rf"(dc/|guest/)?{_FW_NAME}", text):
        if len(text) > 64:
            raise ValueError("alias name too long")
        return None
    version = None
    elements = text.split(",")
    for element in elements:
        first, dash, last = element.partition("-")
        try:  # Net::IP->new: an address, a network (host bits clear) or an a-b range
            new = ipaddress.ip_network(element, strict=True).version if not dash else \
                _same_version(ipaddress.ip_address(first), ipaddress.ip_address(last))
        except ValueError:
            raise ValueError(f"not converted: Net::IP's answer to '{element}' is not modelled here") from None
        if version and new != version:
            raise ValueError(f"detected mixed ipv4/ipv6 addresses in address list '{text}'")
        version = new
    if len(elements) > 1 and any("-" in element for element in elements):
        raise ValueError("you can't use a range in a list")
    return version


def _same_version(first: ipaddress.IPv4Address | ipaddress.IPv6Address, last: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    if first.version != last.version:
        raise ValueError("mixed range")
    return first.version


def _ports(text: str, icmp_names: set[str] | None) -> None:
    """parse_port_name_number_or_range (ICMP type names allowed in dport when the rule is ICMP)."""
    count, icmp = 0, False
    for item in text.split(","):
        if match := re.fullmatch(r"([0-9]+):([0-9]+)", item):
            count += 2
            low, high = int(match.group(1)), int(match.group(2))
            for port in (low, high):
                if port > 65535:
                    raise ValueError(f"invalid port '{port}'")
            if low > high:
                raise ValueError(f"backwards range '{low}:{high}' not allowed, did you mean '{high}:{low}'?")
        elif item.isdigit():
            count += 1
            if int(item) > 65535:
                raise ValueError(f"invalid port '{item}'")
        elif icmp_names is not None and item in icmp_names:
            icmp = True
        else:
            raise ValueError(f"not converted: /etc/services is not read ('{item}')")
    if icmp and count:
        raise ValueError("ICMP ports not allowed in port range")
    if count > 15:
        raise ValueError("too many entries in port list (> 15 numbers)")


def _verify_rule(rule: dict[str, Any], cluster: dict[str, Any], conf: dict[str, Any] | None, env: str, world: _FwWorld) -> None:
    """verify_rule (``$noerr``): a rule's errors by parameter (the first message for each), and its ipversion."""
    errors: dict[str, str] = {}
    version: int | None = None

    def error(param: str, message: str) -> None:
        errors.setdefault(param, message)

    def set_version(new: int | None) -> None:
        nonlocal version
        if new:
            if version and new != version:
                raise ValueError("detected mixed ipv4/ipv6 addresses in rule")
            version = new

    def check_ipset_or_alias(name: str) -> None:
        value = rule.get(name)
        if not _perl_true(value):
            return
        if value.startswith("+"):
            if match := re.fullmatch(rf"\+(guest/|dc/|sdn/)?({_FW_NAME})", value):
                if match.group(2) not in cluster["ipset"] and not (conf and match.group(2) in conf.get("ipset", {})):
                    error(name, f"no such ipset '{match.group(2)}'")
            else:
                error(name, f"invalid ipset name '{value}'")
        elif match := re.fullmatch(rf"(guest/|dc/)?({_FW_NAME})", value):
            scope, alias = match.group(1) or "", match.group(2).lower()
            if alias not in cluster["aliases"] and not (conf and alias in conf.get("aliases", {})):
                error(name, f"no such alias '{value}'")
            found = (conf or {}).get("aliases", {}).get(alias) if scope != "dc/" else None
            if scope != "guest/" and not found:
                found = cluster["aliases"].get(alias)
            set_version((found or {}).get("ipversion"))  # dies (the line is dropped) on a mixed rule

    kind, action = rule.get("type"), rule.get("action")
    if not kind:
        error("type", "missing property")
    if not action:
        error("action", "missing property")
    if kind:
        if kind not in _RULE_ENV_TYPES[env]:
            error("type", f"invalid rule type '{kind}' for rule_env '{env}'")
        if kind in ("in", "out", "forward"):
            if kind == "forward" and action == "REJECT":
                error("action", "cannot define REJECT rules on forward chain")
            if action and not re.fullmatch(r"ACCEPT|DROP|REJECT", action):
                error("action", f"unknown action '{action}'")
        elif kind == "group":
            if env == "group":
                error("type", "security groups not allowed")
            if action and not re.fullmatch(_FW_NAME, action):
                error("action", "invalid characters in security group name")
        else:
            error("type", f"unknown rule type '{kind}'")
    if _perl_true(rule.get("iface")):
        if env == "group":
            error("type", "parameter -i not allowed for this rule type")
        if not re.fullmatch(r"[a-z][a-z0-9_]{1,20}([:.]\d+)?", rule["iface"], re.IGNORECASE):  # pve_verify_iface
            error("iface", f"invalid network interface name '{rule['iface']}'")
        if env in ("vm", "ct") and not re.fullmatch(r"net(\d+)", rule["iface"]):
            error("iface", "value does not match the regex pattern 'net\\d+'")
    if _perl_true(rule.get("macro")) or "icmp-type" in rule:
        raise ValueError("not converted: macros and icmp-type are not read from Firewall.pm")
    proto = rule.get("proto")
    icmp = proto in ("icmp", "icmpv6", "ipv6-icmp")
    if _perl_true(proto):
        if proto not in _PROTOCOLS and not (proto.isdigit() and int(proto) in _PROTOCOLS.values()):
            raise ValueError(f"not converted: /etc/protocols is not read ('{proto}')")
        set_version(4 if proto == "icmp" else 6 if icmp else None)
    for key in ("dport", "sport"):
        if _perl_true(rule.get(key)):
            try:
                _ports(rule[key], world.icmp_types | world.icmpv6_types if key == "dport" and icmp else None)
            except ValueError as exc:
                if str(exc).startswith("not converted"):
                    raise
                error(key, str(exc))
            if not _perl_true(proto):
                error("proto", f"missing property - '{key}' requires this property")
            if proto not in _PROTOCOLS_WITH_PORTS and not (key == "dport" and icmp):
                error(key, f"protocol '{proto or ''}' does not support ports")
    for key in ("source", "dest"):
        if _perl_true(rule.get(key)):
            try:
                set_version(_address_list(rule[key]))
            except ValueError as exc:
                if str(exc).startswith("not converted"):
                    raise
                error(key, str(exc))
            check_ipset_or_alias(key)
    if version:
        rule["ipversion"] = version
    if errors:
        rule["errors"] = errors


def _fw_rule(line: str, cluster: dict[str, Any], conf: dict[str, Any] | None, env: str, world: _FwWorld) -> dict[str, Any]:
    """parse_fw_rule: one ``[|]TYPE ACTION [options] [# comment]`` line."""
    rule: dict[str, Any] = {}
    if match := re.search(r"#\s*(.*?)\s*$", line):
        rule["comment"], line = match.group(1), line[:match.start()]
    rule["enable"] = 0 if line.startswith("|") else 1
    line = line.removeprefix("|")
    match = re.match(r"(\S+)\s+(\S+)\s*", line)
    if match is None:
        raise _RuleDropped(f"unable to parse rule: {line}")
    rule["type"], rule["action"], line = match.group(1).lower(), match.group(2), line[match.end():]
    if rule["type"] in ("in", "out", "forward") and (macro := re.fullmatch(r"(\S+)\((ACCEPT|DROP|REJECT)\)", rule["action"])):
        rule["macro"], rule["action"] = macro.group(1), macro.group(2)
    flags = [("iface", r"-i (\S+)\s*"), ("proto", r"(?:-p|--?proto) (\S+)\s*"), ("dport", r"--?dport (\S+)\s*"),
             ("sport", r"--?sport (\S+)\s*"), ("source", r"--?source (\S+)\s*"), ("dest", r"--?dest (\S+)\s*"),
             ("log", r"--?log (emerg|alert|crit|err|warning|notice|info|debug|nolog)\s*"), ("icmp-type", r"--?icmp-type (\S+)\s*")]
    while line:
        for key, pattern in flags if rule["type"] != "group" else flags[:1]:
            if match := re.match(pattern, line):
                rule[key], line = match.group(1), line[match.end():]
                break
        else:
            break
    if line:
        raise _RuleDropped(f"unable to parse rule parameters: {line}")
    try:
        _verify_rule(rule, cluster, conf, env, world)
    except ValueError as exc:
        if str(exc).startswith("not converted"):
            raise
        raise _RuleDropped(str(exc)) from None
    return rule


_OPTION_PARSERS: dict[str, list[tuple[str, str]]] = {
    # parse_clusterfw_option, parse_hostfw_option, parse_vmfw_option: (pattern, how the value is kept)
    "cluster": [(r"(enable):\s*(\d+)\s*", "enable"), (r"(ebtables):\s*(0|1)\s*", "int"),
                (r"(policy_(?:in|out|forward)):\s*(ACCEPT|DROP|REJECT)\s*", "upper"), (r"(log_ratelimit):\s*(\S+)\s*", "text")],
    "host": [(r"(enable|nosmurfs|tcpflags|ndp|log_nf_conntrack|nf_conntrack_allow_invalid|protection_synflood|nftables):\s*(0|1)\s*", "int"),
             (r"(log_level_(?:in|out|forward)|tcp_flags_log_level|smurf_log_level):\s*((?:emerg|alert|crit|err|warning|notice|info|debug|nolog)\s*)?",
              "level"),
             (r"(nf_conntrack_helpers):\s*(.*)", "refuse"),
             (r"(nf_conntrack_max|nf_conntrack_tcp_timeout_established|nf_conntrack_tcp_timeout_syn_recv|protection_synflood_rate"
              r"|protection_synflood_burst|protection_limit):\s*(\d+)\s*", "int")],
    "guest": [(r"(enable|dhcp|ndp|radv|macfilter|ipfilter|ips):\s*(0|1)\s*", "int"),
              (r"(log_level_in|log_level_out):\s*((?:emerg|alert|crit|err|warning|notice|info|debug|nolog)\s*)?", "level"),
              (r"(policy_(?:in|out)):\s*(ACCEPT|DROP|REJECT)\s*", "upper"), (r"(ips_queues):\s*(\d+(?::\d+)?)\s*", "text"),
              (r"(layer2_protocols):\s*(.*)", "refuse")],
}


def _fw_option(line: str, env: str) -> tuple[str, Any] | None:
    """One option line, or None when the parser does not know it (generic_fw_config_parser warns and drops it)."""
    for pattern, how in _OPTION_PARSERS["guest" if env in ("vm", "ct") else env]:
        if match := re.fullmatch(pattern, line, re.IGNORECASE):
            name, value = match.group(1).lower(), match.group(2)
            if how == "refuse":
                raise ValueError(f"not converted: {name} is checked against system files")
            if how == "enable" and int(value) > 1:
                raise ValueError("not converted: an enable timestamp depends on the clock (parse_clusterfw_option)")
            return name, (int(value) if how in ("int", "enable") else value.upper() if how == "upper"
                          else value.strip().lower() if how == "level" and value else "" if how == "level" else value)
    return None


def _fw_config(text: str | None, env: str, cluster: dict[str, Any] | None, world: _FwWorld) -> dict[str, Any]:
    """generic_fw_config_parser with the empty config of load_clusterfw_conf / load_hostfw_conf / load_vmfw_conf."""
    sections = {"cluster": ("options", "aliases", "groups", "rules", "ipset"), "host": ("options", "rules")}.get(
        env, ("options", "aliases", "rules", "ipset"))
    conf: dict[str, Any] = {"options": {}, "rules": [], "aliases": {}, "groups": {}, "group_comments": {}, "ipset": {}, "ipset_comments": {}}
    if not text:
        return conf
    cluster = cluster if cluster is not None else conf  # cluster.fw checks its names against itself, as it is read
    section, name, seen = None, "", set[str]()
    for raw in text.split("\n"):
        line = raw.strip(" \t")
        if not line or line.startswith("#"):
            continue
        if (kind := _section_header(line, sections)) is not None:
            section, title, comment = kind
            if section in ("groups", "ipset"):
                name = title.lower()
                if len(name) > (18 if section == "groups" else 64) or not re.fullmatch(_FW_NAME, name):
                    section = None  # "invalid ... name": the lines up to the next section are skipped
                    continue
                conf[section][name] = []
                if comment:
                    conf["group_comments" if section == "groups" else "ipset_comments"][name] = comment
                seen = set()
            continue
        if section is None:
            continue  # "skip line - no section"
        if section == "options":
            if (option := _fw_option(line, env)) is not None:
                conf["options"][option[0]] = option[1]
        elif section == "aliases":
            conf["aliases"].update(_fw_alias(line))
        elif section in ("rules", "groups"):
            try:
                rule = _fw_rule(line, cluster, conf if section == "rules" else None, env if section == "rules" else "group", world)
            except _RuleDropped:
                continue
            (conf["rules"] if section == "rules" else conf["groups"][name]).append(rule)
        else:
            conf["ipset"][name].append(_ipset_entry(line, cluster, conf, seen))
    return conf


def _section_header(line: str, sections: tuple[str, ...]) -> tuple[str, str, str | None] | None:
    """A ``[options]``, ``[aliases]``, ``[rules]``, ``[group NAME] # comment`` or ``[ipset NAME] # comment`` line
    the file may hold (section, name, comment); None for any other line (it is read in the current section)."""
    for section in sections:
        if section in ("groups", "ipset"):
            word = "group" if section == "groups" else "ipset"
            if match := re.fullmatch(rf"\[{word}\s+(\S+)\]\s*(?:#\s*(.*?)\s*)?", line, re.IGNORECASE):
                return section, match.group(1), match.group(2)
        elif re.fullmatch(rf"\[{section}\]", line, re.IGNORECASE):
            return section, "", None
    return None


def _fw_alias(line: str) -> dict[str, dict[str, Any]]:
    """parse_alias: ``name cidr [# comment]`` by its lower-cased name (nothing when the address does not parse)."""
    comment = None
    if match := re.search(r"\s*#\s*(.*?)\s*$", line):
        comment, line = match.group(1), line[:match.start()]
    match = re.fullmatch(r"(\S+)\s(\S+)", line)
    if match is None:
        raise ValueError(f"not converted: alias line '{line}'")
    try:
        cidr, version = _ip_or_cidr(match.group(2))
    except ValueError:
        return {}
    return {match.group(1).lower(): {"name": match.group(1), "cidr": cidr, "ipversion": version, **({"comment": comment} if comment else {})}}


def _ipset_entry(line: str, cluster: dict[str, Any], conf: dict[str, Any], seen: set[str]) -> dict[str, Any]:
    """An ipset line of generic_fw_config_parser: ``[!]cidr-or-alias [# comment]`` with its errors."""
    comment = None
    if match := re.search(r"#\s*(.*?)\s*$", line):
        comment, line = match.group(1), line[:match.start()]
    match = re.fullmatch(r"(!)?\s*(\S+)\s*", line)
    if match is None:
        raise ValueError(f"not converted: ipset line '{line}'")
    nomatch, cidr = match.group(1), match.group(2)
    errors: dict[str, str] = {}
    if alias := re.fullmatch(rf"(dc/|guest/)?({_FW_NAME})", cidr):
        scope, lower = alias.group(1) or "", alias.group(2).lower()
        found = conf["aliases"].get(lower) if scope != "dc/" else None
        if scope != "guest/" and not found:
            found = cluster["aliases"].get(lower)
        if not found:
            errors["cidr"] = f"no such alias '{alias.group(2)}'"
    else:
        try:
            cidr = _ip_or_cidr(cidr)[0]
        except ValueError as exc:
            errors["cidr"] = str(exc)
    if "cidr" not in errors and cidr in seen:
        errors["cidr"] = f"duplicate ipset entry for '{cidr}'"
    if re.search(r"/0+$", cidr):
        errors["cidr"] = "a zero prefix is not allowed in ipset entries\n"
    seen.add(cidr)
    return {"cidr": cidr, **({"nomatch": 1} if nomatch else {}), **({"comment": comment} if comment else {}),
            **({"errors": errors} if errors else {})}


def _with_digest(rows: list[dict[str, Any]], *, positions: bool = False) -> list[dict[str, Any]]:
    """copy_list_with_digest: SHA-1 over ``key:value\\n`` of every row's sorted keys (nested values skipped);
    GET .../rules numbers the rows after (``pos``)."""
    sha = hashlib.sha1()
    for row in rows:
        for key in sorted(row):
            if row[key] is not None and not isinstance(row[key], dict | list):
                sha.update(f"{key}:{row[key]}\n".encode())
    digest = sha.hexdigest()
    return [{**({"pos": pos} if positions else {}), **row, "digest": digest} for pos, row in enumerate(rows)]


def _options_with_digest(options: dict[str, Any]) -> dict[str, Any]:
    """copy_opject_with_digest."""
    sha = hashlib.sha1()
    for key in sorted(options):
        sha.update(f"{key}:{options[key]}\n".encode())
    return {**options, "digest": sha.hexdigest()}


_RULE_KEYS = ("type", "action", "macro", "iface", "source", "dest", "proto", "dport", "sport", "icmp-type", "log", "comment",
              "enable", "ipversion", "errors")


def _fw_api(prefix: str, conf: dict[str, Any], sections: tuple[str, ...]) -> dict[str, Any]:
    """The GETs of one firewall level (API2/Firewall/{Cluster,Host,VM,Rules,Groups,IPSet,Aliases}.pm)."""
    api: dict[str, Any] = {f"{prefix}/options": _options_with_digest(conf["options"])}

    def rules(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _with_digest([{key: row[key] for key in _RULE_KEYS if key in row} for row in rows], positions=True)

    api[f"{prefix}/rules"] = rules(conf["rules"])
    if "groups" in sections:
        api[f"{prefix}/groups"] = _with_digest([{"group": name, **({"comment": conf["group_comments"][name]} if name in conf["group_comments"] else {})}
                                                for name in sorted(conf["groups"])])
        api.update({f"{prefix}/groups/{name}": rules(conf["groups"][name]) for name in sorted(conf["groups"])})
    if "ipset" in sections:
        api[f"{prefix}/ipset"] = _with_digest([{"name": name, **({"comment": conf["ipset_comments"][name]} if name in conf["ipset_comments"] else {})}
                                               for name in sorted(conf["ipset"])])
        api.update({f"{prefix}/ipset/{name}": _with_digest(conf["ipset"][name]) for name in sorted(conf["ipset"])})
    if "aliases" in sections:
        api[f"{prefix}/aliases"] = _with_digest([{key: alias[key] for key in ("cidr", "comment", "ipversion", "name") if key in alias}
                                                 for _, alias in sorted(conf["aliases"].items())])
    return api


def _fw_testdir_api(checkout: Checkout, testdir: str, world: _FwWorld, node: str) -> dict[str, Any]:
    """A testdir's configuration as the API answers it (TRANSLATION.md of pve-api/tests/firewall)."""
    folder = f"test/{testdir}"
    cluster = _fw_config(checkout.read(f"{folder}/cluster.fw"), "cluster", None, world)
    host = _fw_config(checkout.read(f"{folder}/host.fw"), "host", cluster, world)
    api = _fw_api("/cluster/firewall", cluster, ("groups", "ipset", "aliases"))
    api["/cluster/config/nodes"] = world.corosync_nodes
    api |= _fw_api(f"/nodes/{node}/firewall", host, ())
    for kind, guests in world.guests.items():
        for vmid, config in guests.items():
            conf = _fw_config(checkout.read(f"{folder}/{vmid}.fw"), "vm" if kind == "qemu" else "ct", cluster, world)
            api[f"/nodes/{node}/{kind}/{vmid}/config"] = dict(config)
            api |= _fw_api(f"/nodes/{node}/{kind}/{vmid}/firewall", conf, ("ipset", "aliases"))
    return api


def pve_firewall_repository(checkout: Checkout, node: str, testdirs: list[str]) -> dict[str, Any]:
    """pve-firewall's test folders read from the repository: the same shape as ``pve_firewall``'s."""
    world = _FwWorld(checkout)
    environment = {"node": node, "host_ip": world.host_ip, "local_network": world.local_network, "totem": world.totem}
    converted = {}
    for testdir in testdirs:
        tests = checkout.read(f"test/{testdir}/tests")
        if tests is None:
            raise ValueError(f"{checkout.repository} has no test/{testdir}/tests")
        converted[testdir] = {"api": _fw_testdir_api(checkout, testdir, world, node), "lines": _fw_tests(tests, world)}
    files = [f"test/{name}/ (cluster.fw, host.fw, <vmid>.fw, tests)" for name in testdirs]
    files += ["test/corosync.conf (nodelist and totem)",
              "test/fwtester.pl ($vmdata, $host_ip, local_network, @test_zones) and src/PVE/FirewallSimulator.pm"
              " (simulate_firewall, route_packet: each packet and its hops)",
              "src/PVE/Firewall.pm (generic_fw_config_parser, parse_fw_rule, verify_rule, parse_*_option, parse_alias,"
              " copy_list_with_digest: the configuration as the API returns it)"]
    origin = {"sources": [_source(checkout.repository, checkout.commit, files)], "license": AGPL,
              "converted_from": [f"{checkout.repository} at {checkout.commit} (git)"], "converted_by": CONVERTER}
    return {"origin": origin, "environment": environment, "testdirs": converted}


# pve-access-control: the perm-test*.pl scripts and their user.cfg, as the REST API answers it
_REALM_TYPES = {"pam": "pam", "pve": "pve"}  # domains.cfg of the tests (the built-in realms)
_USERID = re.compile(r"[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+")  # PVE::Auth::Plugin verify_username (a realm, no token)
_TOKENID = re.compile(rf"({_USERID.pattern})!([A-Za-z][A-Za-z0-9.\-_]+)")  # split_tokenid
_ROLE_OR_GROUP = re.compile(r"[A-Za-z0-9.\-_]+")  # verify_rolename, verify_groupname


def _split_list(text: str) -> list[str]:
    """PVE::Tools::split_list: commas, semicolons or spaces between the items."""
    return [item for item in re.split(r"[;,\s]+", text or "") if item]


def _normalize_path(text: str) -> str | None:
    """AccessControl.pm normalize_path."""
    if not text:
        return None
    path = re.sub(r"/+", "/", text).removesuffix("/") or "/"
    path = path if path.startswith("/") else f"/{path}"
    return path if re.fullmatch(r"[A-Za-z0-9.\-_/]+", path) else None


def _user_cfg(text: str, builtin: dict[str, list[str]]) -> dict[str, Any]:
    """AccessControl.pm parse_user_config (and userconfig_force_defaults): users, groups, roles, acl, pools."""
    valid = {priv for privs in builtin.values() for priv in privs}
    cfg: dict[str, Any] = {"users": {}, "groups": {}, "roles": {name: set(privs) for name, privs in builtin.items()},
                           "acl": {}, "pools": {}, "vms": {}}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        data = [part.strip() for part in line.split(":")]
        while data and data[-1] == "":
            data.pop()  # Perl's split drops trailing empty fields
        kind, data = data[0], data[1:] + [""] * 8
        if kind == "user":
            user, enable, expire = data[0], data[1], data[2] or "0"
            if not _USERID.fullmatch(user) or not expire.isdigit():
                continue
            cfg["users"][user] = {"enable": 1 if enable not in ("", "0") else 0, "expire": int(expire), "groups": set(), "tokens": {}}
            if any(data[3:7]):
                raise ValueError("not converted: user names, email, comment and keys (decode_text)")
        elif kind == "group":
            group, members = data[0], data[1]
            if not _ROLE_OR_GROUP.fullmatch(group):
                continue
            cfg["groups"].setdefault(group, set())
            if data[2]:
                raise ValueError("not converted: group comments")
            for user in _split_list(members):
                if _USERID.fullmatch(user) and user in cfg["users"]:
                    cfg["users"][user]["groups"].add(group)
                if _USERID.fullmatch(user):
                    cfg["groups"][group].add(user)
        elif kind == "role":
            role, privs = data[0], data[1]
            if _ROLE_OR_GROUP.fullmatch(role):
                cfg["roles"].setdefault(role, set()).update(priv for priv in _split_list(privs) if priv in valid)
        elif kind == "acl":
            propagate, path, members, roles = 1 if data[0] not in ("", "0") else 0, _normalize_path(data[1]), data[2], data[3]
            if path is None:
                continue
            for role in _split_list(roles):
                if not _ROLE_OR_GROUP.fullmatch(role) or role not in cfg["roles"]:
                    continue
                for member in _split_list(members):
                    if (group := re.fullmatch(r"@(\S+)", member)) and _ROLE_OR_GROUP.fullmatch(group.group(1)):
                        cfg["acl"][(path, "group", group.group(1), role)] = propagate
                    elif _USERID.fullmatch(member):
                        cfg["acl"][(path, "user", member, role)] = propagate
                    elif (token := _TOKENID.fullmatch(member)) and token.group(2) in cfg["users"].get(token.group(1), {}).get("tokens", {}):
                        cfg["acl"][(path, "token", member, role)] = propagate  # check_token_exist
        elif kind == "pool":
            pool, comment, vms, storages = data[0], data[1], data[2], data[3]
            if not re.fullmatch(r"[A-Za-z0-9\-_]+(/[A-Za-z0-9\-_]+){0,2}", pool):  # verify_poolname
                continue
            entry = cfg["pools"].setdefault(pool, {"vms": set(), "storage": set()})
            parent = pool
            while "/" in parent:  # a nested pool's parents exist too
                parent = parent.rsplit("/", 1)[0]
                cfg["pools"].setdefault(parent, {"vms": set(), "storage": set()})
            if comment:
                entry["comment"] = comment
            for vmid in _split_list(vms):
                if vmid.isdigit() and int(vmid) not in cfg["vms"]:
                    entry["vms"].add(int(vmid))
                    cfg["vms"][int(vmid)] = pool
            entry["storage"].update(s for s in _split_list(storages) if re.fullmatch(r"[a-z][a-z0-9\-_.]*[a-z0-9]", s, re.IGNORECASE))
        elif kind == "token":
            token, expire, privsep = _TOKENID.fullmatch(data[0]), data[1] or "0", data[2]
            if token is None or not expire.isdigit() or token.group(1) not in cfg["users"]:
                continue
            if data[3]:
                raise ValueError("not converted: token comments")
            cfg["users"][token.group(1)]["tokens"][token.group(2)] = {"expire": int(expire), "privsep": 1 if privsep not in ("", "0") else 0}
        else:
            raise ValueError(f"not converted: user.cfg line '{line}'")
    cfg["users"].setdefault("root@pam", {"enable": 1, "groups": set(), "tokens": {}})
    return cfg


def _user_cfg_api(cfg: dict[str, Any], builtin: dict[str, list[str]], node: str) -> dict[str, Any]:
    """The GETs a snapshot reads of user.cfg (API2/User.pm index full=1, Group.pm, Role.pm, ACL.pm read_acl,
    pve-manager API2/Pool.pm index); pool members as in the tests' world (``assumed``)."""
    types = {"user": 0, "group": 1, "token": 2}  # ACL.pm read_acl: users, groups, tokens of each path (iterate_acl_tree)
    users = []
    for userid in sorted(cfg["users"]):
        user = cfg["users"][userid]
        realm_type = _REALM_TYPES.get(userid.rsplit("@", 1)[1])
        tokens = [{"expire": token["expire"], "privsep": token["privsep"], "tokenid": name} for name, token in sorted(user["tokens"].items())]
        users.append({"enable": user["enable"], **({"expire": user["expire"]} if "expire" in user else {}), "groups": ",".join(sorted(user["groups"])),
                      **({"realm-type": realm_type} if realm_type else {}), "tokens": tokens or None, "userid": userid})
    api: dict[str, Any] = {
        "GET /access/users?full=1": users,
        "GET /access/groups": [{"groupid": group, "users": ",".join(sorted(members))} for group, members in sorted(cfg["groups"].items())],
        "GET /access/roles": [{"privs": ",".join(sorted(privs)), "roleid": role, "special": int(role in builtin)}
                              for role, privs in sorted(cfg["roles"].items())],
        "GET /access/acl": [{"path": path, "propagate": propagate, "roleid": role, "type": kind, "ugid": ugid}
                            for (path, kind, ugid, role), propagate in sorted(cfg["acl"].items(), key=lambda item: (
                                item[0][0].split("/")[1:] if item[0][0] != "/" else [], types[item[0][1]], item[0][2], item[0][3]))],
        "GET /pools": [{**({"comment": pool["comment"]} if "comment" in pool else {}), "poolid": poolid} for poolid, pool in sorted(cfg["pools"].items())],
    }
    for poolid, pool in sorted(cfg["pools"].items()):
        members = [{"id": f"qemu/{vmid}", "node": node, "status": "unknown", "type": "qemu", "vmid": vmid} for vmid in sorted(pool["vms"], key=str)]
        members += [{"content": "images,rootdir", "id": f"storage/{node}/{storage}", "node": node, "plugintype": "dir", "shared": 0,
                     "status": "unknown", "storage": storage, "type": "storage"} for storage in sorted(pool["storage"])]
        api["GET /pools?" + urllib.parse.urlencode({"poolid": poolid})] = [{**({"comment": pool["comment"]} if "comment" in pool else {}), "members": members, "poolid": poolid}]
    return api


_PERM_CALL = re.compile(r"(check_roles|check_permissions?)\(\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*((?:'[^']*'\s*\.?\s*)+),?\s*\);")


def _perm_cases(name: str, text: str) -> tuple[str, list[dict[str, Any]]]:
    """A perm-test*.pl: its user.cfg, and each check_roles (AccessControl::roles) / check_permission(s)
    (RPCEnvironment::permissions) call with its expected, sorted, comma-joined answer (string literals joined by ``.``)."""
    match = re.search(r'^my \$cfgfn = "([^"]+)";', text, re.MULTILINE)
    if match is None:
        raise ValueError(f"{name}: no $cfgfn")
    cases: list[dict[str, Any]] = []
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        start, line = number + 1, lines[number]
        number += 1
        if not line.startswith("check_"):
            continue
        statement = re.sub(r"#.*", "", line)
        while not statement.rstrip().endswith(");") and number < len(lines):
            statement += " " + re.sub(r"#.*", "", lines[number])
            number += 1
        call = _PERM_CALL.fullmatch(statement.strip())
        if call is None:
            raise ValueError(f"{name}:{start}: cannot read {statement!r}")
        kind = "roles" if call.group(1) == "check_roles" else "privs"
        expected = "".join(re.findall(r"'([^']*)'", call.group(4)))
        cases.append({"id": f"{name.removesuffix('.pl')}#{len(cases) + 1}", "kind": kind, "fixture": match.group(1),
                      "subject": call.group(2), "path": call.group(3), "expect": {kind: _split_list(expected)},
                      "file": f"src/test/{name}:{start}"})
    return match.group(1), cases


def pve_access_control_repository(checkout: Checkout, perm_tests: list[str], builtin: dict[str, list[str]], node: str) -> dict[str, Any]:
    """pve-access-control's perm-tests read from the repository: user.cfg fixtures (as GET answers) and cases."""
    fixtures, cases = {}, []
    for name in perm_tests:
        text = checkout.read(f"src/test/{name}")
        if text is None:
            raise ValueError(f"{checkout.repository} has no src/test/{name}")
        fixture, found = _perm_cases(name, text)
        fixtures[fixture] = _user_cfg_api(_user_cfg(checkout.read(f"src/test/{fixture}") or "", builtin), builtin, node)
        cases += found
    files = [f"src/test/{name}" for name in perm_tests] + [f"src/test/{fixture} (fixture)" for fixture in fixtures]
    files += ["src/PVE/AccessControl.pm (parse_user_config, normalize_path: the fixtures as the API returns them)"]
    origin = {"sources": [_source(checkout.repository, checkout.commit, files)], "license": AGPL,
              "converted_from": [f"{checkout.repository} at {checkout.commit} (git)"], "converted_by": CONVERTER,
              "assumed": {"domains.cfg": "the realms pam and pve", "nodename": node,
                          "vmlist": f"every VMID that is a pool member exists as type qemu on node \"{node}\"",
                          "storage.cfg": "every storage that is a pool member is a dir storage, content images,rootdir, not shared"}}
    return {"origin": origin, "fixtures": fixtures, "cases": cases}


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


def convert_repositories(mirrors: Path = MIRRORS) -> dict[str, dict[str, Any]]:
    """The data read straight from Proxmox's repositories (``mirrors``/<owner>+<name>/repo), by path under
    tests/data/pve: the cases pve-api does not hold. Fails when a repository holds a case folder or perm-test
    neither part converts (a newer commit: add it to FIREWALL_TESTDIRS or PERM_TESTS)."""
    firewall = Checkout(mirrors / "proxmox+pve-firewall" / "repo", "proxmox/pve-firewall")
    access = Checkout(mirrors / "proxmox+pve-access-control" / "repo", "proxmox/pve-access-control")
    # what the pve-api part holds: its committed output (the same commits, checked here)
    held_fw = _read(OUTPUT / "pve-firewall.json")
    held_access = _read(OUTPUT / "pve-access-control.json")
    for held, checkout in ((held_fw, firewall), (held_access, access)):
        if held["origin"]["sources"][0]["commit"] != checkout.commit:
            raise ValueError(f"{checkout.repository}: the mirror is at {checkout.commit}, tests/data/pve at another commit")
    testdirs = [name for name in firewall.files("test") if name.startswith("test-")]
    unknown = sorted(set(testdirs) - set(held_fw["testdirs"]) - set(FIREWALL_TESTDIRS))
    perm_tests = [name for name in access.files("src/test") if re.fullmatch(r"perm-test\d+\.pl", name)]
    held_perm = {case["file"].split(":")[0].removeprefix("src/test/") for case in held_access["cases"]}
    unknown += sorted(set(perm_tests) - held_perm - set(PERM_TESTS))
    if unknown:
        raise ValueError(f"not converted yet: {unknown}")
    return {
        # fwtester.pl names this node by the host's name (it replaces proxself in corosync.conf): proxself
        "from-git/pve-firewall.json": pve_firewall_repository(firewall, "proxself", FIREWALL_TESTDIRS),
        "from-git/pve-access-control.json": pve_access_control_repository(access, PERM_TESTS, held_access["builtin_roles"]["roles"], "pve"),
    }


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


def stale(pve_api: Path, mirrors: Path = MIRRORS) -> tuple[list[str], list[str]]:
    """The files of ``tests/data/pve`` that differ from a conversion of the inputs (missing or extra ones too), and
    the inputs that are absent (their part is not checked)."""
    expected: dict[str, str] = {}
    unchecked: list[str] = []
    parts = [("", pve_api.is_dir(), f"{pve_api} (absent): the files converted from pve-api", lambda: convert(pve_api))]
    needed = [mirrors / name / "repo" for name in ("proxmox+pve-firewall", "proxmox+pve-access-control")]
    parts.append(("from-git", all(path.is_dir() for path in needed), f"{mirrors} (no mirrors of pve-firewall and "
                  "pve-access-control): tests/data/pve/from-git", lambda: convert_repositories(mirrors)))
    committed = {str(path.relative_to(OUTPUT)): path.read_text(encoding="utf-8") for path in sorted(OUTPUT.rglob("*.json"))}
    for folder, present, absent, convert_part in parts:
        if not present:
            unchecked.append(absent)
            continue
        expected.update((name, dumps(doc)) for name, doc in convert_part().items())
        mine = {name for name in committed if (Path(name).parts[0] == "from-git") == (folder == "from-git")}
        expected.update((name, "") for name in mine - set(expected))  # a committed file the conversion no longer makes
    return sorted(name for name in expected if expected[name] != committed.get(name)), unchecked


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if a != "--check"]
    pve_api = Path(args[0]) if args else PVE_API
    mirrors = Path(args[1]) if len(args) > 1 else MIRRORS
    if "--check" in argv[1:]:
        differ, unchecked = stale(pve_api, mirrors)
        for what in unchecked:
            print(f"not checked: {what}")
        print(f"stale: {', '.join(differ)}: run scripts/convert_pve_test_data.py" if differ
              else "tests/data/pve is the conversion of the inputs present")
        return 1 if differ else 0
    for part in (lambda: convert(pve_api), lambda: convert_repositories(mirrors)):  # the second reads the first's output
        for name, doc in part().items():
            path = OUTPUT / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dumps(doc), encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
