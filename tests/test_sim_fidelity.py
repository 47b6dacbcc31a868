"""The simulator where third-party clients found it differed from Proxmox: directory indexes, the status line,
and real responses served back whole.

- ``GET`` on a directory (``/cluster``, ``/access``, ``/nodes/{node}``, ``/nodes/{node}/qemu/{vmid}``, ...) answers
  its index, as the handlers do (checked against the 9.1 schema tree's directory indexes, kept in tests/data/pve/pve-docs.json).
- pveproxy writes the handler's message into the status line (pve-http-server src/PVE/APIServer/AnyEvent.pm
  ``response``), where clients such as proxmoxer read it; the JSON body carries it too (Formatter/Standard.pm).
- Every real response in the samples, read into the model and rendered back, keeps every field Proxmox sent.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import pytest
from uvicorn.server import ServerState
from _loopback import serve
from _pve_data import pve_data, sample_data
from test_conformance import SAMPLE_PATHS, _contains

from proximo.model import dump_snapshot, from_api, render
from proximo.model._indexes import index_rows, index_template
from proximo.pve._apischema import schema
from proximo.sim import serve_config
from proximo.sim._serve import PveStatusLineProtocol
from proximo.testing import TOKEN_ID, World


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _http(world: World) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=world.sim.app), base_url="http://pve.sim:8006/api2/json",
                             headers={"Authorization": f"PVEAPIToken={TOKEN_ID}={world.secret}"})


# --- directory indexes ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_directory_indexes_answer_as_the_handlers_do(tmp_path: Path) -> None:
    world = World(tmp_path)
    async with _http(world) as http:
        vm = await http.get("/nodes/pve1/qemu/104")
        ct = await http.get("/nodes/pve1/lxc/201")
        vm_status = await http.get("/nodes/pve1/qemu/104/status")
        cluster = await http.get("/cluster")
        access = await http.get("/access")
        node = await http.get("/nodes/pve1")
        snapshot = await http.get("/nodes/pve1/qemu/105/snapshot/before-upgrade")
        missing_ct = await http.get("/nodes/pve1/lxc/999")
        missing_vm = await http.get("/nodes/pve1/qemu/999")
        missing_node = await http.get("/nodes/nope/qemu/104")
    # qemu-server src/PVE/API2/Qemu.pm vmdiridx, as written (the pyproxmox README shows a real one of PVE 5: the same
    # list, less what later versions added)
    assert vm.status_code == 200 and [r["subdir"] for r in vm.json()["data"]][:14] == [
        "config", "cloudinit", "pending", "status", "unlink", "vncproxy", "termproxy", "migrate", "resize", "move", "rrd",
        "rrddata", "monitor", "agent"]
    assert {"subdir": "interfaces"} in ct.json()["data"] and {"subdir": "config"} in ct.json()["data"]
    assert vm_status.json()["data"] == [{"subdir": s} for s in ("current", "start", "stop", "reset", "shutdown", "suspend", "reboot")]
    assert {"name": "resources"} in cluster.json()["data"] and {"name": "sdn"} == cluster.json()["data"][-1]
    assert access.json()["data"][-2:] == [{"subdir": "ticket"}, {"subdir": "password"}]
    assert {"name": "qemu"} in node.json()["data"] and {"name": "storage"} in node.json()["data"]
    assert snapshot.json()["data"] == [{"cmd": "rollback"}, {"cmd": "config"}]
    # pve-container's vmdiridx loads the config first; qemu-server's does not
    assert missing_ct.status_code == 500 and missing_ct.json()["message"] == "Configuration file 'nodes/pve1/lxc/999.conf' does not exist\n"
    assert missing_vm.status_code == 200
    assert missing_node.status_code == 500 and "hostname lookup 'nope' failed" in missing_node.json()["message"]


def test_every_directory_index_of_the_schema_is_served_with_its_row_key() -> None:
    # (path, row key, literal children) of every GET of the 9.1 schema tree whose returns link to its children
    indexes = [(i["path"], i["key"], i["children"]) for i in pve_data("pve-docs.json")["directory_indexes"]]
    assert len(indexes) > 40
    for path, key, children in indexes:
        assert index_template(path), path
        rows = index_rows(path)
        assert {k for row in rows for k in row} == {key}, path
        names = [row[key] for row in rows]
        # the schema's children, or the handler's own list: mostly the same names (a handler may name a few more or
        # fewer: qemu's vmdiridx lists 'move' and leaves out 'clone')
        assert len(set(names) & set(children)) >= min(len(children), len(names)) // 2, path
    # GETs with literal children that answer an object are not indexes
    for template in ("/access/users/{userid}", "/cluster/backup/{id}", "/nodes/{node}/qemu/{vmid}/cloudinit"):
        assert schema().endpoint("GET", template) is not None and not index_template(template)


# --- the status line --------------------------------------------------------------------------------------------


def _raw_status_line(url: str, path: str, token: str) -> tuple[str, bytes]:
    """The status line and body as they cross the wire (http.client, as proxmoxer's requests does underneath)."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        conn.request("GET", "/api2/json" + path, headers={"Authorization": token})
        response = conn.getresponse()
        return f"{response.status} {response.reason}", response.read()
    finally:
        conn.close()


def test_error_messages_are_in_the_status_line_and_the_body(tmp_path: Path) -> None:
    world = World(tmp_path)
    token = f"PVEAPIToken={TOKEN_ID}={world.secret}"
    with serve(world.sim.app) as url:
        missing = _raw_status_line(url, "/storage/no-such-storage", token)
        bad_param = _raw_status_line(url, "/cluster/resources?type=guests", token)
        fine = _raw_status_line(url, "/version", token)
        bad_token = _raw_status_line(url, "/version", "PVEAPIToken=x@pve!y=wrong")
    assert missing[0] == "500 storage 'no-such-storage' does not exist"
    assert json.loads(missing[1]) == {"data": None, "message": "storage 'no-such-storage' does not exist\n"}
    assert bad_param[0] == "400 Parameter verification failed."
    assert json.loads(bad_param[1])["errors"] == {"type": "value 'guests' does not have a value in the enumeration 'vm, storage, node, sdn'"}
    assert fine[0] == "200 OK"
    # pve-manager PVE/HTTPServer.pm auth_handler: "Authentication failed!", in the status line, with no body
    assert bad_token == ("401 Authentication failed!", b"")



class _SocketTransport(asyncio.Transport):
    """The two extras uvicorn's protocol reads from a transport, from a real accepted socket."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"socket": self.sock, "sockname": self.sock.getsockname(), "peername": self.sock.getpeername()}.get(name, default)


def test_the_served_simulator_sends_without_waiting_for_the_clients_ack() -> None:
    # pveproxy writes a response in one push_write (AnyEvent.pm response); uvicorn's h11 writes head and body apart,
    # so without TCP_NODELAY every keep-alive request waited 40 ms for the client's delayed ACK (about 50 ms a GET
    # on loopback, 0.7 ms with it).
    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()):
        accepted, _ = listener.accept()
        with accepted:
            config = serve_config(app)
            config.load()
            loop = asyncio.new_event_loop()
            try:
                protocol = PveStatusLineProtocol(config=config, server_state=ServerState(), app_state={}, _loop=loop)
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
                protocol.connection_made(_SocketTransport(accepted))
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            finally:
                loop.close()


# --- real responses, served back whole --------------------------------------------------------------------------


def _resource_rows(path: str, data: Any) -> dict[str, Any]:
    """What a real read holds beside a guest list or config: the guests' /cluster/resources rows, sampled at another
    moment (another uptime), so the model has two sources for the same guests."""
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[0] == "nodes" and parts[2] in ("qemu", "lxc"):
        rows = [{"id": f"{parts[2]}/{r['vmid']}", "type": parts[2], "node": parts[1], "vmid": int(r["vmid"]),
                 "name": r.get("name"), "status": r.get("status"), "maxcpu": r.get("cpus"), "maxmem": r.get("maxmem"),
                 "uptime": int(r.get("uptime") or 0) + 7, "template": 0} for r in data]
        return {"/cluster/resources": rows}
    if len(parts) == 5 and parts[0] == "nodes" and parts[2] in ("qemu", "lxc") and parts[4] == "config":
        return {"/cluster/resources": [{"id": f"{parts[2]}/{parts[3]}", "type": parts[2], "node": parts[1],
                                        "vmid": int(parts[3]), "status": "stopped", "template": 0}]}
    return {}


@pytest.mark.parametrize("name", sorted(SAMPLE_PATHS))
def test_every_real_response_is_served_back_with_every_field(name: str) -> None:
    """Each sample read as a real read has it (beside the /cluster/resources rows of its guests), rendered back, and
    again after a snapshot round trip: every row, every field, every value Proxmox sent."""
    path, context = SAMPLE_PATHS[name]
    data = sample_data(name)
    if path == "/cluster/resources" and any(r["type"] == "storage" for r in data):
        context = {"/storage": [{"storage": r["storage"], "type": r["plugintype"], "content": r["content"]}
                                for r in data if r["type"] == "storage"]}
    model = from_api({**context, **_resource_rows(path, data), path: data})
    assert _contains(render(model, path), data) == []
    doc = dump_snapshot(model)
    again = from_api(doc["api"], doc["extra"])
    assert _contains(render(again, path), data) == []


def test_the_demo_cluster_is_served_back_whole() -> None:
    """Every path of the demo snapshot (whose rows have the shapes of PVE 9.1's answers) renders back as it was
    read: the same rows with the same fields and values (a list's order aside)."""
    from proximo.sim import demo_snapshot

    doc = demo_snapshot()
    dumped = dump_snapshot(from_api(doc["api"], doc["extra"]))["api"]
    for path, data in doc["api"].items():
        if isinstance(data, list):
            key = lambda row: json.dumps(row, sort_keys=True)  # noqa: E731
            assert sorted(map(key, dumped[path])) == sorted(map(key, data)), path
        else:
            assert dumped[path] == data, path


def test_task_rows_keep_their_fields_and_split_a_tokens_id(tmp_path: Path) -> None:
    """/cluster/tasks rows keep pid, pstart, saved, ...; a token's task lists ``user`` and ``tokenid`` apart
    (pve-manager PVE/API2/Cluster.pm tasks and PVE/API2/Tasks.pm: split_tokenid), in the list and the status."""
    upid = "UPID:pve1:0003A1B2:0123ABCD:6937F0A0:qmstart:104:proximo@pve!agent:"
    row = {"upid": upid, "node": "pve1", "pid": 238002, "pstart": 19114957, "starttime": 1765273760, "type": "qmstart",
           "id": "104", "user": "proximo@pve", "tokenid": "agent", "endtime": 1765273762, "status": "OK", "saved": "1"}
    model = from_api({"/nodes": [{"node": "pve1", "status": "online"}], "/cluster/tasks": [row]})
    assert render(model, "/cluster/tasks") == [row]
    assert render(model, "/nodes/pve1/tasks") == [row]
    status = render(model, f"/nodes/pve1/tasks/{upid}/status")
    assert (status["user"], status["tokenid"], status["pid"], status["pstart"]) == ("proximo@pve", "agent", 238002, 19114957)
    world = World(tmp_path)
    started = world.model.start_task("pve1", "qmstart", "104", TOKEN_ID)
    listed = next(r for r in render(world.model, "/cluster/tasks") if r["upid"] == started)
    assert (listed["user"], listed["tokenid"]) == tuple(TOKEN_ID.split("!"))


# --- cached answers ----------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_cached_answer_never_outlives_a_change_of_the_model(tmp_path: Path) -> None:
    """GET answers are cached per generation of the model: a write through the API, or a change made by whoever
    took ``sim.model``, is seen by the next read."""
    world = World(tmp_path)
    async with _http(world) as http:
        first = (await http.get("/storage")).json()["data"]
        assert (await http.get("/storage")).json()["data"] == first
        created = await http.post("/storage", data={"storage": "scratch2", "type": "dir", "path": "/srv/scratch2", "content": "images"})
        assert created.status_code == 200, created.text
        assert "scratch2" in {s["storage"] for s in (await http.get("/storage")).json()["data"]}
        world.sim.model.storages.pop("scratch2")
        assert "scratch2" not in {s["storage"] for s in (await http.get("/storage")).json()["data"]}


@pytest.mark.anyio
async def test_a_tasks_status_is_read_afresh_each_time(tmp_path: Path) -> None:
    """Task status is never served from the answer cache: each read counts the task down (the read itself counts one)."""
    world = World(tmp_path)
    world.sim.task_polls = 3
    async with _http(world) as http:
        vm = next(g for g in world.model.guests.values() if g.kind == "qemu" and g.resource.get("status") == "stopped")
        upid = (await http.post(f"/nodes/{vm.node}/qemu/{vm.vmid}/status/start")).json()["data"]
        seen = [(await http.get(f"/nodes/{vm.node}/tasks/{upid}/status")).json()["data"]["status"] for _ in range(3)]
    assert seen == ["running", "running", "stopped"]
