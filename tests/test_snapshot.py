"""Snapshots (docs/architecture.md): what the simulator serves, a snapshot holds, and a model built from it equals.

A snapshot is a fixed point of load-and-dump; one taken from the simulator over HTTP equals the model it came
from; plans made offline from it equal plans made live; the fingerprint a plan keeps moves with configuration,
never with metrics.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

import proximo.cli as cli_module
from proximo import BadInput
from proximo.pve._client import PveClient
from proximo._host import make_client, open_host
from proximo._sources import LiveSource, SnapshotSource
from proximo.model import SNAPSHOT_FORMAT, ClusterModel, collect, dump_snapshot, from_api, load_snapshot
from proximo.model._access import permissions_answer
from proximo.sim import demo_snapshot
from proximo.testing import TOKEN_ID, World, snapshot_from

CAPTURED = "2026-01-01T00:00:00Z"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _redump(doc: dict[str, Any]) -> dict[str, Any]:
    return dump_snapshot(from_api(doc["api"], doc["extra"]), captured_at=doc["captured_at"])


# --- (a) load and dump is a fixed point --------------------------------------------------------------------


def test_demo_round_trip_is_a_fixed_point() -> None:
    model = load_snapshot(demo_snapshot())
    first = dump_snapshot(model, captured_at=CAPTURED)
    assert first["format"] == SNAPSHOT_FORMAT and first["captured_at"] == CAPTURED
    again = dump_snapshot(from_api(first["api"]), captured_at=CAPTURED)
    assert again == first
    assert _redump(again) == first


def test_demo_dump_holds_every_path_of_the_demo_file() -> None:
    doc = demo_snapshot()
    dumped = dump_snapshot(load_snapshot(doc))
    assert set(dumped["api"]) == set(doc["api"])
    # what the model interprets may be re-rendered, but never loses a row
    for path, data in doc["api"].items():
        if isinstance(data, list):
            assert len(dumped["api"][path]) == len(data), path


def test_round_trip_after_changes_is_a_fixed_point(tmp_path: Path) -> None:
    world = World(tmp_path)
    semantics = world.packs.semantics
    model = world.model
    semantics.execute(model, "DELETE", "/storage/nfs-backup")
    semantics.execute(model, "PUT", "/storage/ceph-rbd", {"disable": 1})
    semantics.execute(model, "POST", "/storage", {"storage": "dir2", "type": "dir", "path": "/srv/dir2"})
    semantics.execute(model, "PUT", "/pools", {"poolid": "prod", "storage": "local"})
    model.start_task("pve1", "qmstart", "104", TOKEN_ID)
    doc = dump_snapshot(model, captured_at=CAPTURED)
    assert "nfs-backup" not in {r["storage"] for r in doc["api"]["/storage"]}
    assert _redump(doc) == doc
    assert from_api(doc["api"], doc["extra"]).fingerprint() == model.fingerprint()


def test_extra_members_survive_a_round_trip() -> None:
    doc = demo_snapshot()
    doc["extra"] = {"/nodes/pve1/network": {"changes": "--- /etc/network/interfaces\n+++ /etc/network/interfaces.new\n"}}
    model = load_snapshot(doc)
    assert model.nodes["pve1"].network_changes is not None
    dumped = dump_snapshot(model, captured_at=CAPTURED)
    assert dumped["extra"] == doc["extra"]
    assert _redump(dumped) == dumped


# --- (b) a snapshot taken over HTTP equals the simulator's model -------------------------------------------


async def _collect_from(world: World) -> tuple[dict[str, Any], list[str]]:
    async with PveClient("http://pve.sim:8006", TOKEN_ID, world.secret, transport=world.transport()) as client:
        return await collect(LiveSource(client, "http://pve.sim:8006").get)


@pytest.mark.anyio
async def test_snapshot_over_http_equals_the_model(tmp_path: Path) -> None:
    world = World(tmp_path)
    api, unseen = await _collect_from(world)
    assert unseen == []
    served = dump_snapshot(world.model, captured_at=CAPTURED)
    taken = dump_snapshot(from_api(api), captured_at=CAPTURED)
    # and the token's own privileges, which depend on who asks (what permission checks fall back on)
    own = permissions_answer(world.model, TOKEN_ID)
    assert taken["api"] == {**served["api"], "/access/permissions": own}
    assert api == taken["api"]  # the collector reads exactly what a snapshot of the model holds
    assert from_api(api).fingerprint() == world.model.fingerprint()


@pytest.mark.anyio
async def test_snapshot_over_http_after_changes(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.packs.semantics.execute(world.model, "DELETE", "/storage/local-zfs")
    world.packs.semantics.execute(world.model, "PUT", "/access/acl", {"path": "/storage/local", "roles": "PVEDatastoreUser", "users": "bob@pve"})
    api, _ = await _collect_from(world)
    taken = dump_snapshot(from_api(api), captured_at=CAPTURED)["api"]
    assert taken.pop("/access/permissions") == permissions_answer(world.model, TOKEN_ID)
    assert taken == dump_snapshot(world.model, captured_at=CAPTURED)["api"]


@pytest.mark.anyio
async def test_collect_with_a_pool_id_that_needs_quoting(tmp_path: Path) -> None:
    """Pool ids may contain '/' (nested pools): the query must reach PVE encoded once, not twice."""
    doc = demo_snapshot()
    doc["api"]["/pools"].append({"poolid": "prod/db", "comment": "nested"})
    doc["api"]["/pools?poolid=prod%2Fdb"] = [{"poolid": "prod/db", "comment": "nested", "members": []}]
    world = World(tmp_path, doc)
    assert "prod/db" in world.model.pools
    api, unseen = await _collect_from(world)
    assert unseen == []
    assert api["/pools?poolid=prod%2Fdb"] == [{"poolid": "prod/db", "comment": "nested", "members": []}]
    assert from_api(api).pools == world.model.pools


def test_cli_snapshot_writes_what_the_simulator_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``proximo snapshot -o FILE`` against the simulator (in-process transport instead of a socket)."""
    world = World(tmp_path / "world")
    monkeypatch.setattr(cli_module, "make_client", lambda settings, transport=None: make_client(settings, transport=world.transport()))
    out = tmp_path / "snap.json"
    env = {"PROXIMO_URL": "http://pve.sim:8006", "PROXIMO_TOKEN_ID": TOKEN_ID, "PROXIMO_TOKEN_SECRET": world.secret,
           "PROXIMO_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(cli_module.build_cli(), ["snapshot", "-o", str(out)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["format"] == SNAPSHOT_FORMAT and doc["captured_at"].endswith("Z")
    own = {"/access/permissions": permissions_answer(world.model, TOKEN_ID)}  # the capturing token's own privileges
    assert doc["api"] == {**dump_snapshot(world.model)["api"], **own}
    assert dump_snapshot(load_snapshot(doc), captured_at=CAPTURED)["api"] == {**dump_snapshot(world.model, captured_at=CAPTURED)["api"], **own}
    # the simulator can serve the file it wrote
    assert World(tmp_path / "again", doc).model.fingerprint() == world.model.fingerprint()


# --- (c) plans made offline equal plans made live ----------------------------------------------------------

DIFFER = {"plan_id", "created_at", "expires_at", "source", "hash", "ledger", "fingerprint", "cluster"}


def _same_read(live: dict[str, str], offline: dict[str, str]) -> None:
    """A live plan reads no guest's firewall files unless it needs them (a snapshot has them all): its fingerprint
    says so, and is the offline one on every other section."""
    assert live.get("unread") == "guest-firewall" and "unread" not in offline
    assert {k: v for k, v in live.items() if k not in ("firewall", "unread")} == {k: v for k, v in offline.items() if k != "firewall"}
CASES = [
    ("storage.delete", {"storage": "local-zfs"}),
    ("storage.update", {"storage": "ceph-rbd", "disable": 1}),
    ("api.call", {"method": "DELETE", "path": "/storage/nfs-backup"}),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "params"), CASES)
async def test_offline_plan_equals_live_plan(tmp_path: Path, tool: str, params: dict[str, Any]) -> None:
    world = World(tmp_path)
    async with world.host() as host:
        live = await host.plan(tool, params, world.actor)
    async with world.offline() as host:
        offline = await host.plan(tool, params, world.actor)
    a, b = msgspec.to_builtins(live), msgspec.to_builtins(offline)
    assert set(a) == set(b)
    same = {k: a[k] for k in a if k not in DIFFER}
    assert same == {k: b[k] for k in b if k not in DIFFER}
    # spelled out: what the brief names
    for key in ("impacts", "risk", "steps", "undo", "notes"):
        assert a[key] == b[key], key
    _same_read(live.fingerprint, offline.fingerprint)
    assert live.impacts, "these cases all have a blast radius"
    assert live.source.startswith("live:") and offline.source.startswith("snapshot:")
    assert live.plan_id != offline.plan_id and live.hash != offline.hash
    # the same cluster, as it names itself; only the live plan has the URL it reaches it at
    assert live.cluster is not None and offline.cluster is not None
    assert (live.cluster.name, live.cluster.id) == (offline.cluster.name, offline.cluster.id) == ("default", "cluster:demo")
    assert live.cluster.url == "http://pve.sim:8006" and offline.cluster.url == ""


@pytest.mark.anyio
async def test_offline_plan_from_a_collected_snapshot_equals_live(tmp_path: Path) -> None:
    """The whole path: collect over HTTP, write the file, plan offline on it."""
    world = World(tmp_path)
    api, _ = await _collect_from(world)
    path = tmp_path / "taken.json"
    path.write_text(json.dumps({"format": SNAPSHOT_FORMAT, "captured_at": CAPTURED, "api": api, "extra": {}}))
    async with world.host() as host:
        live = await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
    async with open_host(world.settings, snapshot=path, packs=world.packs) as host:
        offline = await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)
    for key in ("impacts", "risk", "steps", "undo", "notes", "blocked", "complete", "reversible"):
        assert getattr(live, key) == getattr(offline, key), key
    _same_read(live.fingerprint, offline.fingerprint)


# --- (d) a wrong file is refused in one line ---------------------------------------------------------------


@pytest.mark.parametrize("doc", [
    {"format": "proximo-snapshot/2", "api": {}},
    {"format": "pve-snapshot", "api": {}},
    {"api": {"/version": {}}},
    {"format": None},
    [],
    "proximo-snapshot/1",
    {"format": SNAPSHOT_FORMAT, "api": [["/version", {}]]},
])
def test_load_snapshot_rejects_a_wrong_header(doc: Any) -> None:
    with pytest.raises(ValueError) as err:
        load_snapshot(doc)
    message = str(err.value)
    assert "\n" not in message and message.startswith("not a Proximo snapshot")


def test_wrong_format_message_names_both_formats() -> None:
    with pytest.raises(ValueError, match=r"^not a Proximo snapshot \(format 'proximo-snapshot/2', expected 'proximo-snapshot/1'\)$"):
        load_snapshot({"format": "proximo-snapshot/2"})


@pytest.mark.parametrize("content", [json.dumps({"format": "x"}), "[]", "not json at all", json.dumps("proximo-snapshot/1")])
def test_snapshot_source_refuses_a_wrong_file_in_one_line(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(BadInput) as err:
        SnapshotSource(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_snapshot_source_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "good.json"
    path.write_text(json.dumps(snapshot_from(demo_snapshot()["api"])))
    assert SnapshotSource(path).name.startswith("snapshot:")



@pytest.mark.anyio
async def test_a_parsed_snapshot_is_read_from_the_cache_and_equals_a_fresh_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import proximo._sources as sources
    from proximo._parsed_cache import ParsedSnapshotCache

    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snapshot_from(demo_snapshot()["api"])))
    cache = ParsedSnapshotCache(tmp_path / "cache")
    first = SnapshotSource(path, cache=cache)
    assert len(list((tmp_path / "cache").glob("*.msgpack"))) == 1

    def no_parse(doc: Any) -> ClusterModel:
        raise AssertionError("parsed again")

    monkeypatch.setattr(sources, "load_snapshot", no_parse)
    second = SnapshotSource(path, cache=cache)
    assert second.name == first.name
    a, b = await first.read_state(), await second.read_state()
    assert msgspec.msgpack.encode(a.model) == msgspec.msgpack.encode(b.model) and a.unseen == b.unseen
    assert a.model is not (await first.read_state()).model, "each read is a model of its own"

    path.write_text(json.dumps(snapshot_from({**demo_snapshot()["api"], "/cluster/backup": []})))
    with pytest.raises(AssertionError, match="parsed again"):  # another file is another entry
        SnapshotSource(path, cache=cache)


@pytest.mark.anyio
async def test_a_broken_cache_entry_is_a_miss_not_an_error(tmp_path: Path) -> None:
    from proximo._parsed_cache import ParsedSnapshotCache

    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snapshot_from(demo_snapshot()["api"])))
    cache = ParsedSnapshotCache(tmp_path / "cache")
    fresh = SnapshotSource(path, cache=cache)
    (entry,) = (tmp_path / "cache").glob("*.msgpack")
    entry.write_bytes(b"\x93not a model")
    again = SnapshotSource(path, cache=cache)
    assert msgspec.msgpack.encode((await again.read_state()).model) == msgspec.msgpack.encode((await fresh.read_state()).model)
    assert entry.read_bytes() != b"\x93not a model", "the entry was written again"


@pytest.mark.anyio
async def test_a_parsed_snapshot_brings_its_guests_volumes_and_a_changed_config_is_parsed_afresh(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import proximo.model._drives as drives
    from proximo._parsed_cache import ParsedSnapshotCache

    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snapshot_from(demo_snapshot()["api"])))
    cache = ParsedSnapshotCache(tmp_path / "cache")
    SnapshotSource(path, cache=cache)  # writes the entry, each guest's volumes with it
    expected = {vmid: g.volumes() for vmid, g in (await SnapshotSource(path, cache=cache).read_state()).model.guests.items()}
    assert any(expected.values())
    monkeypatch.setattr(drives, "_VOLUMES", {})  # a new process: nothing parsed yet
    again = SnapshotSource(path, cache=cache)  # a hit: the entry's volumes are remembered

    def no_parse(config: Any) -> Any:
        raise AssertionError("parsed again")

    monkeypatch.setattr(drives, "_qemu_volumes", no_parse)
    monkeypatch.setattr(drives, "_lxc_volumes", no_parse)
    model = (await again.read_state()).model
    assert {vmid: g.volumes() for vmid, g in model.guests.items()} == expected
    guest = model.guests[104]
    guest.config["scsi1"] = "local-zfs:vm-104-disk-9,size=8G"  # what a step's semantics would do: a config never seen
    with pytest.raises(AssertionError, match="parsed again"):
        guest.volumes()


# --- (e) the fingerprint moves with configuration, not with metrics ----------------------------------------

VOLATILE = ("cpu", "mem", "memhost", "uptime", "disk", "netin", "netout", "diskread", "diskwrite", "pressurecpusome",
            "used", "avail", "used_fraction", "loadavg", "swap")


def _bump(rows: Any) -> None:
    for row in rows if isinstance(rows, list) else [rows]:
        if not isinstance(row, dict):
            continue
        for key in VOLATILE:
            value = row.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row[key] = value + 1
        _bump(row.get("members", []))


def _fp(api: dict[str, Any]) -> dict[str, str]:
    return from_api(api).fingerprint()


@pytest.fixture
def api() -> dict[str, Any]:
    return copy.deepcopy(demo_snapshot()["api"])


def test_fingerprint_ignores_metrics(api: dict[str, Any]) -> None:
    before = _fp(api)
    for path in ("/cluster/resources", "/nodes", "/nodes/pve1/qemu", "/nodes/pve2/lxc", "/nodes/pve1/storage", "/pools?poolid=prod"):
        _bump(api[path])
    assert any(r.get("uptime") for r in api["/cluster/resources"])
    assert _fp(api) == before


def test_fingerprint_ignores_metrics_of_pool_members(api: dict[str, Any]) -> None:
    """/pools?poolid=ID lists members as resource rows with live cpu/mem: a plan must not go stale on them."""
    before = _fp(api)
    _bump(api["/pools?poolid=prod"])
    assert _fp(api) == before
    api["/pools?poolid=prod"][0]["members"].pop()
    assert _fp(api)["access"] != before["access"]


def _changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}


def test_fingerprint_changes_on_a_config_edit(api: dict[str, Any]) -> None:
    before = _fp(api)
    config = api["/nodes/pve1/qemu/104/config"]
    config["memory"] = 8192
    config["digest"] = "0" * 40  # PVE's digest is over the file: any edit changes it
    assert _changed(before, _fp(api)) == {"qemu/104"}


def test_fingerprint_changes_on_a_config_edit_without_a_digest(api: dict[str, Any]) -> None:
    config = api["/nodes/pve1/qemu/104/config"]
    config.pop("digest")
    before = _fp(api)
    config["memory"] = 8192
    assert _changed(before, _fp(api)) == {"qemu/104"}


def test_fingerprint_changes_on_a_storage_edit(tmp_path: Path) -> None:
    world = World(tmp_path)
    before = world.model.fingerprint()
    world.packs.semantics.execute(world.model, "PUT", "/storage/ceph-rbd", {"disable": 1})
    assert _changed(before, world.model.fingerprint()) == {"storage"}


def test_fingerprint_changes_on_a_storage_edit_read_from_the_api(api: dict[str, Any]) -> None:
    before = _fp(api)
    row = next(r for r in api["/storage"] if r["storage"] == "nfs-backup")
    row["prune-backups"] = "keep-last=1"
    assert _changed(before, _fp(api)) == {"storage"}


def test_fingerprint_changes_on_a_guest_status_change(api: dict[str, Any]) -> None:
    before = _fp(api)
    row = next(r for r in api["/cluster/resources"] if r.get("vmid") == 121)
    assert row["status"] == "stopped"
    row["status"] = "running"
    assert _changed(before, _fp(api)) == {"qemu/121"}


def test_fingerprint_changes_when_a_guest_moves_or_goes(api: dict[str, Any]) -> None:
    before = _fp(api)
    moved = copy.deepcopy(api)
    row = next(r for r in moved["/cluster/resources"] if r.get("vmid") == 121)
    row["node"] = "pve2"
    moved["/nodes/pve2/qemu/121/config"] = moved.pop("/nodes/pve1/qemu/121/config")
    assert _changed(before, _fp(moved)) == {"qemu/121"}
    gone = copy.deepcopy(api)
    gone["/cluster/resources"] = [r for r in gone["/cluster/resources"] if r.get("vmid") != 121]
    gone.pop("/nodes/pve1/qemu/121/config")
    gone["/nodes/pve1/qemu"] = [r for r in gone["/nodes/pve1/qemu"] if r["vmid"] != 121]
    assert _changed(before, _fp(gone)) == {"qemu/121"}


def test_fingerprint_changes_on_a_node_going_offline(api: dict[str, Any]) -> None:
    before = _fp(api)
    row = next(r for r in api["/cluster/resources"] if r.get("id") == "node/pve3")
    row["status"] = "offline"
    assert _changed(before, _fp(api)) == {"nodes"}


def test_fingerprint_is_stable_across_copies() -> None:
    model: ClusterModel = load_snapshot(demo_snapshot())
    assert model.copy().fingerprint() == model.fingerprint()
