"""Issue 13: the CLI as a new operator meets it, each command a real ``proximo`` process against the simulator on a
loopback socket (stdout a pipe, as in a script; ``--text`` where the test reads the table a terminal shows).

Finding tools and their parameters, values read by the parameter's type, errors in one line with a suggestion,
read tables that fit 80 columns, plans that name the next command, ``--version``, and ``serve``'s hint.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _loopback import serve

from proximo.testing import TOKEN_ID, World

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-a-pack.md"


class Proximo:
    """``proximo ARGS`` in a child process, PROXIMO_HOME in a temporary folder, pointed at the simulator."""

    def __init__(self, world: World, url: str, home: Path) -> None:
        self.world = world
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("PROXIMO_")},
                    "PROXIMO_URL": url, "PROXIMO_TOKEN_ID": TOKEN_ID, "PROXIMO_TOKEN_SECRET": world.secret,
                    "PROXIMO_HOME": str(home), "COLUMNS": "80", "TERM": "dumb"}

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "proximo", *args], env={**self.env, **(env or {})},
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = self(*args, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def plan(self, *args: str) -> dict[str, Any]:
        return json.loads(self.ok("plan", *args, "--json"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def proximo(tmp_path: Path) -> Iterator[Proximo]:
    world = World(tmp_path / "world")
    with serve(world.sim.app) as url:
        yield Proximo(world, url, tmp_path / "home")


def one_line(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("proximo: "), done.stderr
    return lines[0]


# --- finding a tool and its parameters -------------------------------------------------------------------------


def test_version(proximo: Proximo) -> None:
    from importlib.metadata import version

    assert proximo.ok("--version").strip() == f"proximo {version('proximo-proxmox')}"


def test_tools_has_a_header_and_a_filter(proximo: Proximo) -> None:
    listed = proximo.ok("tools").splitlines()
    assert listed[0].split() == ["TOOL", "KIND", "PACK", "TITLE"]
    assert "`proximo tools TOOL` shows a tool's parameters" in listed[-1]
    found = [line.split()[0] for line in proximo.ok("tools", "storage").splitlines()[1:-1]]
    assert {"storage.list", "storage.delete", "storage.update"} <= set(found)
    assert "guest.list" not in found and "firewall.rule.add" not in found
    # every word must match; a PVE path matches too
    assert [line.split()[0] for line in proximo.ok("tools", "storage", "delete").splitlines()[1:-1]] == ["storage.delete"]
    by_path = [line.split()[0] for line in proximo.ok("tools", "/access/acl").splitlines()[1:-1]]
    assert "access.acl" in by_path and "storage.list" not in by_path
    line = one_line(proximo("tools", "no-such-thing"))
    assert line == "proximo: no tool matches 'no-such-thing'"


def test_tools_TOOL_shows_each_parameter(proximo: Proximo) -> None:
    shown = proximo.ok("tools", "storage.update")
    lines = shown.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line.strip() and not line.startswith(" ")}
    assert rows["storage"][1:] == ["string", "required", "e.g.", "local"]  # type, required, example (the demo's storage)
    assert lines[lines.index(next(x for x in lines if x.startswith("storage ")))+1].rstrip() == "    The storage identifier"
    assert rows["disable"][1:] == ["boolean", "optional", "e.g.", "1"]
    assert rows["format"][1] == "qcow2|raw|subvol|vmdk"
    assert all(len(line) <= 80 for line in lines if not line.startswith("    ") and "PVE API" not in line)
    assert "PVE API: PUT /storage/{storage}" in shown
    assert "example: proximo plan storage.update storage=local" in shown
    detail = json.loads(proximo.ok("tools", "storage.update", "--json"))
    disable = next(p for p in detail["params"] if p["name"] == "disable")
    assert disable == {"name": "disable", "type": "boolean", "required": False, "default": None,
                       "description": "Flag to disable the storage", "example": "1"}


@pytest.mark.parametrize("command", ["plan", "read"])
def test_plan_and_read_TOOL_help_show_the_tool_parameters(proximo: Proximo, command: str) -> None:
    tool = "guest.config.set" if command == "plan" else "storage.content"
    shown = proximo.ok(command, tool, "--help")
    assert f"Usage: proximo {command}" in shown  # the command's own help first
    assert f"{tool} ({command}, pack" in shown
    assert "vmid" in shown if command == "plan" else "storage" in shown
    # an option's value is not taken for the tool
    assert f"{tool} ({command}, pack" in proximo.ok(command, "--snapshot", "cluster.json", tool, "--help")
    generic = proximo.ok(command, "--help")
    assert "PARAMETER" not in generic


def test_a_tool_without_a_pack_help_is_one_line(proximo: Proximo) -> None:
    line = one_line(proximo("plan", "storage.delet", "--help"))
    assert "did you mean storage.delete?" in line


# --- values as Proxmox takes them ------------------------------------------------------------------------------


def test_values_are_read_by_the_parameter_type(proximo: Proximo) -> None:
    rule = proximo.plan("firewall.rule.add", "level=cluster", "type=in", "action=ACCEPT", "proto=tcp", "dport=22",
                        "comment=1234", "enable=1")
    assert rule["params"]["dport"] == "22" and rule["params"]["comment"] == "1234"  # strings stay strings
    assert rule["params"]["enable"] == 1  # an integer
    vm = proximo.plan("vm.create", "node=pve1", "vmid=150", "memory=1024", "cores=2", "name=123")
    assert vm["params"]["vmid"] == 150 and vm["params"]["cores"] == 2 and vm["params"]["name"] == "123"
    assert vm["params"]["memory"] == "1024"  # PVE 9's memory is a property string
    storage = proximo.plan("storage.update", "storage=ceph-rbd", "disable=1")
    assert storage["params"]["disable"] == 1
    # lists and objects are still JSON
    call = proximo.plan("api.call", "method=PUT", "path=/storage/local", 'params={"content": "iso,backup"}')
    assert call["params"]["params"] == {"content": "iso,backup"}


# --- errors in the operator's words ------------------------------------------------------------------------------


def test_unknown_tool_and_parameter_suggest_the_closest(proximo: Proximo) -> None:
    assert one_line(proximo("read", "storge.list")) == (
        "proximo: unknown tool 'storge.list' - did you mean storage.list? (see `proximo tools`)")
    assert one_line(proximo("plan", "storage.delete", "storge=local-zfs")) == (
        "proximo: storage.delete: unknown parameter 'storge' - did you mean 'storage'? (see `proximo tools storage.delete`)")


def test_a_wrong_type_names_the_field_and_what_it_expects(proximo: Proximo) -> None:
    line = one_line(proximo("plan", "guest.stop", "vmid=web-01"))
    assert line == "proximo: guest.stop: vmid: expected an integer, got a string ('web-01') (see `proximo tools guest.stop`)"
    line = one_line(proximo("plan", "storage.delete", "storage=a/b"))
    assert line.startswith("proximo: storage.delete: storage: 'a/b' is not valid here (it must match ")


def _install_example_pack(where: Path) -> dict[str, str]:
    """docs/writing-a-pack.md's pack, installed as a distribution with its entry point (PYTHONPATH), as a reader would."""
    source = next(b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S) if "proximo_register_semantics" in b)
    (where / "proximo_backupjobs.py").write_text(source)
    info = where / "proximo_backupjobs-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: proximo-backupjobs\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[proximo]\nbackupjobs = proximo_backupjobs\n")
    # the built-in backup pack models the same endpoint: the example stands in for it, as the doc says
    return {"PYTHONPATH": os.pathsep.join([str(where), os.environ.get("PYTHONPATH", "")]), "PROXIMO_DISABLED_PACKS": "backup"}


def test_a_pack_exception_is_one_line_naming_pack_and_tool(proximo: Proximo, tmp_path: Path) -> None:
    (tmp_path / "pack").mkdir()
    env = _install_example_pack(tmp_path / "pack")
    # the documented pack's undo looks up a job that is not there: StopIteration, deep in pack code
    done = proximo("plan", "backup.job.disable", "id=no-such-job", env=env)
    line = one_line(done, 1)
    assert line.startswith("proximo: pack 'backupjobs' failed in backup.job.disable: StopIteration")
    assert "Traceback" not in done.stderr
    debug = proximo("--debug", "plan", "backup.job.disable", "id=no-such-job", env=env)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr and "_inverse" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == line


def test_a_warning_is_one_line_and_debug_shows_the_log(proximo: Proximo) -> None:
    """Without --debug a warning (an anchor sink that cannot be reached) is one line; --debug shows the whole log."""
    env = {"PROXIMO_LEDGER_ANCHOR": "http://127.0.0.1:9/anchor"}  # the discard port: nothing listens
    done = proximo("plan", "storage.delete", "storage=local-zfs", "--json", env=env)
    assert done.returncode == 0 and json.loads(done.stdout)["risk"] == "HIGH"
    assert done.stderr.splitlines() == ["proximo: ledger anchor http://127.0.0.1:9/anchor: record 1 not sent: [Errno 111] "
                                        "Connection refused"]
    debug = proximo("--debug", "plan", "storage.delete", "storage=local-zfs", "--json", env=env)
    assert " DEBUG proximo." in debug.stderr and " WARNING proximo.anchors: ledger anchor" in debug.stderr


@pytest.mark.anyio
async def test_the_host_guards_pack_code_for_every_face(tmp_path: Path) -> None:
    """The guard is in the host: MCP callers (any caller of Host.plan) get the same one line."""
    import types

    from proximo.errors import PackError

    source = next(b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S) if "proximo_register_semantics" in b)
    module = types.ModuleType("proximo_backupjobs")
    exec(compile(source, str(DOC), "exec"), module.__dict__)
    world = World(tmp_path, extra_packs=[("backupjobs", module)], env={"PROXIMO_DISABLED_PACKS": "backup"})
    async with world.host() as host:
        with pytest.raises(PackError, match=r"^pack 'backupjobs' failed in backup.job.disable: StopIteration"):
            await host.plan("backup.job.disable", {"id": "no-such-job"}, world.actor)


# --- reads that fit the terminal ----------------------------------------------------------------------------------


def test_read_into_a_pipe_is_json_and_text_is_a_table_that_fits(proximo: Proximo) -> None:
    piped = json.loads(proximo.ok("read", "guest.list"))
    assert {row["name"] for row in piped["data"]} >= {"web-01", "db-01"}
    table = proximo.ok("read", "guest.list", "--text").splitlines()
    assert all(len(line) <= 80 for line in table), table
    assert table[0].split()[:4] == ["vmid", "name", "node", "status"]  # the tool's own columns first
    web = next(line.split() for line in table if " web-01 " in line)
    assert web[:4] == ["104", "web-01", "pve1", "running"]  # whole values, not cut to fit
    assert web[table[0].split().index("maxmem")] == "4.0G"  # bytes as ls -h shows them; the JSON keeps 4294967296
    assert next(r for r in piped["data"] if r["name"] == "web-01")["maxmem"] == 4294967296
    dropped = " ".join(table[next(i for i, line in enumerate(table) if "more columns" in line):])
    assert "--wide" in dropped and "--json" in dropped and "uptime" in dropped
    wide = proximo.ok("read", "guest.list", "--wide").splitlines()  # a table, even into a pipe
    assert "uptime" in wide[0].split() and not any("more columns" in line for line in wide)


def test_storage_list_shows_what_an_operator_looks_for(proximo: Proximo) -> None:
    table = proximo.ok("read", "storage.list", "--text").splitlines()
    assert table[0].split()[:3] == ["storage", "type", "content"]
    local_zfs = next(line.split() for line in table if line.startswith("local-zfs"))
    assert local_zfs[:2] == ["local-zfs", "zfspool"] and "pve1,pve2,pve3" in local_zfs  # available_on, as PVE lists
    assert all(len(line) <= 80 for line in table)


def test_a_tool_without_columns_shows_what_names_a_row_first(proximo: Proximo) -> None:
    table = proximo.ok("read", "firewall.aliases", "--text").splitlines()  # rows: cidr, comment, ipversion, name, digest
    assert table[0].split()[0] == "name"


# --- plans: what was given, and what to run next -----------------------------------------------------------------


def test_a_plan_shows_the_given_parameters_and_the_next_command(proximo: Proximo) -> None:
    shown = proximo.ok("plan", "storage.update", "storage=ceph-rbd", "disable=1")
    headline = shown.splitlines()[0]
    # disable is a PVE boolean: its schema says boolean, so "1" is read as true (PVE is sent 1)
    assert "storage.update storage=ceph-rbd disable=True - RISK_HIGH" in headline
    assert "None" not in shown
    plan_id = headline.split()[1]
    assert shown.strip().splitlines()[-1] == f"next: a person approves it (proximo approve {plan_id}), then: proximo apply {plan_id}"
    low = proximo.ok("plan", "storage.create", "storage=scratch", "type=dir", "path=/srv/scratch")
    low_id = low.splitlines()[0].split()[1]
    assert low.strip().splitlines()[-1] == f"next: proximo apply {low_id}"
    assert proximo("apply", low_id).returncode == 0  # the command it names works


def test_the_next_command_of_a_blocked_or_offline_plan(proximo: Proximo, tmp_path: Path) -> None:
    from proximo.model import dump_snapshot

    blocked = proximo.ok("plan", "api.call", "method=DELETE", "path=/storage/no-such-store")
    assert blocked.strip().splitlines()[-1] == "next: nothing to apply: the plan is blocked (see above)"
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(dump_snapshot(proximo.world.model)))
    offline = proximo.ok("plan", "storage.delete", "storage=local-zfs", "--snapshot", str(snap), env={"PROXIMO_URL": ""})
    assert offline.strip().splitlines()[-1] == "next: made on a snapshot: plan it again against the cluster to apply it"


# --- serve's hint ------------------------------------------------------------------------------------------------


def test_sim_prints_export_lines_a_shell_takes_as_they_are(proximo: Proximo) -> None:
    """`proximo sim`'s export line, pasted into an interactive bash (history expansion on: a bare `!agent` fails)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**proximo.env, "PROXIMO_SIM_SECRET": "s3!cret x", "PROXIMO_TOKEN_ID": "ops@pve!agent"}
    child = subprocess.Popen([sys.executable, "-m", "proximo", "sim", "--port", str(port)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stderr is not None
        child.stderr.readline()
        export = child.stderr.readline().strip()
    finally:
        child.terminate()
        child.communicate(timeout=30)
    assert export.startswith("export ")
    shell = subprocess.run(["bash", "-c", f"set -o history -o histexpand\n{export}\n"
                                          "printf '%s\\n' \"$PROXIMO_URL\" \"$PROXIMO_TOKEN_ID\" \"$PROXIMO_TOKEN_SECRET\""],
                           capture_output=True, text=True, timeout=30)
    assert shell.stderr == "" and shell.stdout.splitlines() == [f"http://127.0.0.1:{port}", "ops@pve!agent", "s3!cret x"]


def test_serve_without_a_cluster_names_only_its_own_options(proximo: Proximo) -> None:
    done = proximo("serve", env={"PROXIMO_URL": ""})
    line = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and "--sim" in line and "--snapshot" not in line
    assert "--sim" in proximo.ok("serve", "--help")


# --- apply: live progress from the host's events ------------------------------------------------------------------


def test_apply_shows_each_step_its_task_time_and_log(proximo: Proximo) -> None:
    plan = proximo.plan("guest.start", "vmid=204")  # MEDIUM: within auto-approval; the start is a Proxmox task
    done = proximo("apply", plan["plan_id"], env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    shown = done.stderr.splitlines()
    assert re.fullmatch(r"\[1/1\] POST /nodes/pve2/lxc/204/status/start  ok  [0-9]+\.[0-9]s", shown[0])  # elapsed
    assert re.fullmatch(r"      task UPID:pve2:[0-9A-F:]+:vzstart:204:proximo@pve!agent:", shown[1])  # the task
    assert shown[2].strip() == "| TASK OK"  # the task log's last lines
    assert done.stdout.startswith(f"APPLY {plan['plan_id']}: OK")
    # --json: stdout is the result alone, nothing drawn
    quiet = proximo("apply", proximo.plan("guest.start", "vmid=108")["plan_id"], "--json")
    assert quiet.returncode == 0 and quiet.stderr == "" and json.loads(quiet.stdout)["ok"]


@pytest.mark.anyio
async def test_the_host_emits_apply_events_in_order(tmp_path: Path) -> None:
    from proximo._progress import ApplyEvent, Checking, ReadingBack, StepDone, StepStarted, TaskPolled

    world = World(tmp_path)
    seen: list[ApplyEvent] = []
    async with world.host() as host:
        plan = await host.plan("guest.start", {"vmid": 204}, world.actor)
        result = await host.apply(plan.plan_id, world.actor, events=seen.append)
    assert result.ok
    kinds = [type(e) for e in seen]
    assert kinds[0] is Checking and kinds[1] is StepStarted and kinds[-2] is StepDone and kinds[-1] is ReadingBack
    polls = [e for e in seen if isinstance(e, TaskPolled)]
    assert polls and all(p.upid == result.steps[0].upid for p in polls) and polls[-1].status == "stopped"
    assert [line for p in polls for line in p.lines][-1] == "TASK OK"
    assert seen[1] == StepStarted(index=1, total=1, step=plan.steps[0].describe())
    assert seen[-2] == StepDone(index=1, ok=True, upid=result.steps[0].upid)


# --- doctor: fix lines a shell takes as they are -------------------------------------------------------------------


def test_doctor_fix_lines_are_quoted_for_a_shell(proximo: Proximo, tmp_path: Path) -> None:
    home = tmp_path / "my home"  # a space, and below the token id's `!`, which bash's history expansion eats
    home.mkdir(mode=0o755)
    env = {"PROXIMO_HOME": str(home), "PROXIMO_URL": "", "PROXIMO_TOKEN_ID": "", "PROXIMO_TOKEN_SECRET": ""}
    shown = proximo("doctor", env=env).stdout
    home.chmod(0o755)  # doctor opened the ledger, which made the folder private again
    found = json.loads(proximo("doctor", "--json", env=env).stdout)["findings"]
    fixes = [argv for f in found for argv in f["fix"]]
    assert ["chmod", "700", str(home)] in fixes
    assert any("PROXIMO_TOKEN_ID=proximo@pve!agent" in argv for argv in fixes)
    lines = [line.split("fix: ", 1)[1] for line in shown.splitlines() if line.strip().startswith("fix: ")]
    assert len(lines) == len(fixes)
    for line, argv in zip(lines, fixes, strict=True):
        # what an interactive bash (history expansion on) hands the command: exactly the argv
        echoed = subprocess.run(["bash", "-c", f"set -o history -o histexpand\nprintf '%s\\n' {line}"], capture_output=True,
                                text=True, timeout=30)
        assert echoed.returncode == 0 and echoed.stderr == "", (line, echoed.stderr)
        assert echoed.stdout.splitlines() == argv, line
