"""A guest's ``digest`` is Proxmox's: the SHA-1 of the config file's text, as PVE writes the file.

qemu-server src/PVE/QemuServer.pm parse_vm_config and pve-container src/PVE/LXC/Config.pm parse_pct_config take
``Digest::SHA::sha1_hex($raw)`` of the file pve-cluster's cfs_read_file hands them; write_vm_config and
write_pct_config write it: the description as ``#`` comments, the keys sorted, then ``[PENDING]`` (containers:
``[pve:pending]``), special and ``[snapname]`` sections. The model keeps a digest it read; a config it writes gets
the SHA-1 of the text it would write (``Guest.write_config``), so the simulator answers what Proxmox answers and a
plan's later steps carry the digest Proxmox will compare.

Proxmox's own config files (qemu-server src/test/parse-config-input, in tests/data/pve/qemu-server.json) are served as PVE's GET
handlers serve them and written back from the model; real responses (tests/data/pve/samples) keep their digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _loopback import serve
from _pve_data import pve_data, sample_data

from proximo import Risk
from proximo.model import ClusterModel, Guest, file_digest, from_api, render
from proximo.model._drives import parse_guest_config_file
from proximo.testing import World

# qemu-server src/test/parse-config-input/*.conf, by file name (origin: tests/data/pve/qemu-server.json)
CONFIG_FILES: dict[str, str] = pve_data("qemu-server.json")["parse_config"]["configs"]


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


# --- the file text -----------------------------------------------------------------------------------------


def test_qemu_file_text_has_pending_and_snapshot_sections_and_its_digest_is_its_sha1() -> None:
    """write_vm_config: comments (encode_text: ':' and '%' escaped), sorted keys, [PENDING] with the sorted delete list
    ('!' forced: GET pending's ``delete: 2``), then each snapshot; numbers as Perl prints them."""
    g = Guest(vmid=100, kind="qemu", node="pve1", resource={"status": "running"},
              config={"name": "web", "cores": 4, "memory": "4096", "description": "line one\nkey: 50%\n",
                      "parent": "s1", "net1": "virtio=BC:24:11:00:00:02,bridge=vmbr0"},
              pending=[{"key": "cores", "value": 2, "pending": 4}, {"key": "onboot", "value": 1, "delete": 2},
                       {"key": "balloon", "value": 0, "delete": 1}, {"key": "net1", "pending": "virtio=BC:24:11:00:00:02,bridge=vmbr0"},
                       {"key": "name", "value": "web"}, {"key": "digest", "value": "f" * 40}],
              snapshot_configs={"s1": {"name": "web", "cores": 2, "cpulimit": 2.0, "memory": "4096", "snaptime": 1700000000,
                                       "description": "before: upgrade", "digest": "f" * 40}})
    text = ("#line one\n#key%3A 50%25\n"
            "balloon: 0\ncores: 2\nmemory: 4096\nname: web\nonboot: 1\nparent: s1\n"
            "\n[PENDING]\ncores: 4\ndelete: balloon,!onboot\nnet1: virtio=BC:24:11:00:00:02,bridge=vmbr0\n"
            "\n[s1]\n#before%3A upgrade\ncores: 2\ncpulimit: 2\nmemory: 4096\nname: web\nsnaptime: 1700000000\n")
    assert g.file_text() == text
    assert g.digest == _sha1(text) == file_digest(text)  # no digest read: PVE's, from the text
    g.config["digest"] = "0" * 40
    assert g.digest == "0" * 40  # a digest read from the cluster is kept, never recomputed
    g.write_config()
    assert g.config["digest"] == _sha1(text)  # a config the model writes: the SHA-1 of the text it writes


def test_lxc_file_text_has_env_raw_keys_and_pve_pending() -> None:
    """write_pct_config: ``lxc.environment.runtime`` lines from env, then the raw lxc.* keys in order; [pve:pending];
    an unusedN whose volume is mounted again is dropped."""
    g = Guest(vmid=201, kind="lxc", node="pve1", resource={"status": "running"},
              config={"hostname": "ct", "memory": 1024, "rootfs": "local-zfs:subvol-201-disk-0,size=8G",
                      "mp0": "local-zfs:subvol-201-disk-1,mp=/srv", "unused0": "local-zfs:subvol-201-disk-1",
                      "unused1": "local-zfs:subvol-201-disk-2", "env": "A=1\0B=two",
                      "lxc": [["lxc.cgroup2.devices.allow", "c 226:0 rwm"], ["lxc.mount.entry", "/dev/dri dev/dri none bind"]],
                      "description": "files\n"},
              pending=[{"key": "memory", "value": 512, "pending": 1024}])
    text = ("#files\n"
            "hostname: ct\nmemory: 512\nmp0: local-zfs:subvol-201-disk-1,mp=/srv\nrootfs: local-zfs:subvol-201-disk-0,size=8G\n"
            "unused1: local-zfs:subvol-201-disk-2\n"
            "lxc.environment.runtime: A=1\nlxc.environment.runtime: B=two\n"
            "lxc.cgroup2.devices.allow: c 226:0 rwm\nlxc.mount.entry: /dev/dri dev/dri none bind\n"
            "\n[pve:pending]\nmemory: 1024\n")
    assert g.file_text() == text and g.digest == _sha1(text)


# --- Proxmox's own config files ----------------------------------------------------------------------------


def _as_pve_serves_it(text: str, vmid: int) -> dict[str, Any]:
    """GET config, pending and config?snapshot=NAME for a config file, as PVE's handlers answer them: pve-guest-common
    src/PVE/AbstractConfig.pm load_current_config (pending values applied, pending deletes removed),
    load_snapshot_config (the file's digest added) and src/PVE/GuestHelpers.pm config_with_pending_array."""
    parsed = parse_guest_config_file(text, vmid=vmid)
    digest = parsed.pop("digest")
    pending: dict[str, Any] = parsed.pop("pending")  # type: ignore[assignment]
    snapshots: dict[str, dict[str, Any]] = parsed.pop("snapshots")  # type: ignore[assignment]
    parsed.pop("special-sections")
    deletes = {k.lstrip("!"): 2 if k.startswith("!") else 1 for k in str(pending.get("delete", "")).split(",") if k}
    view = {**parsed, **{k: v for k, v in pending.items() if k != "delete"}}
    for key in deletes:
        view.pop(key, None)
    rows = [{"key": k, "value": v, **({"pending": pending[k]} if k in pending else {}),
             **({"delete": deletes[k]} if k in deletes else {})} for k, v in {**parsed, "digest": digest}.items()]
    rows += [{"key": k, "pending": v} for k, v in pending.items() if k != "delete" and k not in parsed]
    base = f"/nodes/pve1/qemu/{vmid}"
    api: dict[str, Any] = {
        "/cluster/resources": [{"id": f"qemu/{vmid}", "type": "qemu", "vmid": vmid, "node": "pve1", "status": "running"}],
        f"{base}/config": {**view, "digest": digest},
        f"{base}/pending": rows,
        f"{base}/snapshot": [{"name": name} for name in snapshots] + [{"name": "current", "digest": digest}],
    }
    for name, snap in snapshots.items():
        api[f"{base}/config?snapshot={name}"] = {**snap, "digest": digest}
    return api


def _without_special_sections(text: str) -> str:
    """The file without its [special:...] sections: the API never shows them (a limit of any reconstruction)."""
    parts = text.split("\n[")  # each section: a blank line, then "[name]"
    return "\n[".join(p for i, p in enumerate(parts) if i == 0 or not p.startswith("special:"))


def _fixtures() -> Iterator[Any]:
    for name, text in sorted(CONFIG_FILES.items()):
        warnings: list[str] = []
        parse_guest_config_file(text, vmid=8006, warnings=warnings)
        if not warnings:  # the files PVE itself writes back unchanged (run_parse_config_tests.pl)
            yield pytest.param(name, id=name)


@pytest.mark.parametrize("name", list(_fixtures()))
def test_proxmox_config_files_are_written_back_to_the_same_text_and_digest(name: str) -> None:
    """qemu-server's own test configs (src/test/parse-config-input: pending, snapshot, special, locked, EFI), served as
    the API serves them, read into the model and written back: the same text, so the same digest, as PVE's."""
    text = CONFIG_FILES[name]
    model = from_api(_as_pve_serves_it(text, 8006))
    g = model.guests[8006]
    assert g.digest == _sha1(text)  # read: kept as the cluster said
    written = g.file_text()
    assert written == _without_special_sections(text)
    if "[special:" not in text:
        g.write_config()
        assert g.config["digest"] == _sha1(text), "the model's digest for the text it writes is Proxmox's"
    assert render(model, "/nodes/pve1/qemu/8006/pending") == sorted(
        _as_pve_serves_it(text, 8006)["/nodes/pve1/qemu/8006/pending"], key=lambda r: (0 if "value" in r else 1, r["key"]))


def test_a_real_responses_digest_is_kept_and_a_write_makes_proxmoxs() -> None:
    """qemu-config-102 (community.proxmox, a real capture): its digest is served and compared as read. Its file text
    cannot be rebuilt from the response (the MAC is masked as ff:ff:...), so the model never recomputes it; after
    a write, the digest is the SHA-1 of the text PVE would write."""
    config = sample_data("qemu-config-102.community-proxmox")
    row = {"id": "qemu/102", "type": "qemu", "vmid": 102, "node": "pve", "status": "stopped", "name": config["name"]}
    world_api = {"/cluster/resources": [row], "/nodes": [{"node": "pve", "status": "online"}],
                 "/nodes/pve/qemu/102/config": config}
    model = from_api(world_api)
    g = model.guests[102]
    assert g.digest == config["digest"] == render(model, "/nodes/pve/qemu/102/config")["digest"]
    assert model.fingerprint() == from_api(world_api).fingerprint()
    g.config["cores"] = 8
    g.write_config()
    assert g.config["digest"] == _sha1(g.file_text()) != config["digest"]
    assert "cores: 8\ncpulimit: 4\n" in g.file_text()


# --- config.set, then its undo, against the simulator ------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _sim_file_digest(model: ClusterModel, vmid: int) -> str:
    return _sha1(model.guests[vmid].file_text())


@pytest.mark.anyio
@pytest.mark.parametrize(("vmid", "change"), [
    (105, {"cores": 8, "description": "db: primary (50%)"}),  # running qemu with a snapshot: cores waits in [PENDING]
    (204, {"mp1": "local-zfs:8,mp=/data"}),  # stopped lxc: a new volume, whose undo takes two steps on one config
])
async def test_config_set_and_its_undo_carry_proxmoxs_digest(tmp_path: Path, vmid: int, change: dict[str, Any]) -> None:
    world = World(tmp_path)
    g = world.model.guests[vmid]
    original = dict(g.config)
    path = f"/nodes/{g.node}/{g.kind}/{vmid}/config"
    with serve(world.sim.app) as url:
        async with world.host(url=url) as host:
            plan = await host.plan("guest.config.set", {"vmid": vmid, **change}, world.actor)
            assert plan.steps[0].params["digest"] == original["digest"]  # type: ignore[union-attr]
            if host.needs_person(plan):
                host.approve(plan.plan_id, world.actor, world.person)
            result = await host.apply(plan.plan_id, world.actor)
            # the digest predicted for the file the change writes is the simulator's, which is Proxmox's
            assert result.ok and result.matches_prediction, result
            after = render(world.model, path)
            assert after["digest"] == _sim_file_digest(world.model, vmid) != original["digest"]

            undo = await host.undo(result.ledger.seq, world.actor)
            assert undo.steps[0].params["digest"] == after["digest"]  # type: ignore[union-attr]  # the state it applies to
            for step in undo.steps[1:]:  # later steps: the digest of the file the earlier ones leave
                assert step.params["digest"] not in (after["digest"], original["digest"])  # type: ignore[union-attr]
            if host.needs_person(undo):  # the undo of a new volume destroys it: CRITICAL, the guest's id typed
                host.approve(undo.plan_id, world.actor, world.person, typed_target=undo.target)
            assert len(undo.steps) == (1 if vmid == 105 else 2) and undo.risk is (Risk.MEDIUM if vmid == 105 else Risk.CRITICAL)
            undone = await host.apply(undo.plan_id, world.actor)
            assert undone.ok and undone.matches_prediction, undone
    back = render(world.model, path)
    if vmid == 105:  # the same file again, so Proxmox's digest again
        assert back == original
    else:  # the new volume is destroyed; the config is the original one
        assert {k: v for k, v in back.items() if k != "digest"} == {k: v for k, v in original.items() if k != "digest"}
        assert back["digest"] == original["digest"]
    assert ("POST" if vmid == 105 else "PUT", path) in world.sim.requests
