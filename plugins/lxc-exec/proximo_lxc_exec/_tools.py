"""The lxc-exec tools: ``ct.exec`` (a command inside a container) and ``ct.logs`` (a bounded look at its logs).

Both only describe ``SshExec`` steps; the host judges them (on, allow-listed, a running container at its node's
address: proximo/trust/_pipeline.py ``_check_exec``) and only its executor runs them (proximo/trust/_ssh.py).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from proximo import ApiCall, BadInput, Draft, SshExec, plan_tool, tool_table
from proximo.model import ClusterModel, Guest
from proximo.params import VmId, described

# The limits (docs/packs/lxc-exec.md): a command runs at most an hour and returns at most 1 MiB of stdout and stderr.
DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 3600.0
DEFAULT_OUTPUT = 65536
MAX_OUTPUT = 1048576
MAX_ARGS = 256
LOG_TIMEOUT = 30.0
MAX_LOG_LINES = 2000

Arg = Annotated[str, msgspec.Meta(max_length=4096)]
Timeout = Annotated[float, msgspec.Meta(gt=0, le=MAX_TIMEOUT, description=f"seconds before the command is cut (at most {MAX_TIMEOUT:g})")]
OutputLimit = Annotated[int, msgspec.Meta(ge=1, le=MAX_OUTPUT, description=f"bytes of stdout and stderr kept before the command is cut (at most {MAX_OUTPUT})")]
Unit = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9@._:-]{0,254}$", description="a systemd unit, e.g. nginx.service")]
LogFile = Annotated[str, msgspec.Meta(pattern=r"^(/[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+$", max_length=1024,
                                      description="an absolute file path inside the container, e.g. /var/log/syslog")]
Lines = Annotated[int, msgspec.Meta(ge=1, le=MAX_LOG_LINES, description=f"how many of the last lines (at most {MAX_LOG_LINES})")]


class ExecParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    vmid: VmId
    argv: Annotated[list[Arg], msgspec.Meta(min_length=1, max_length=MAX_ARGS)]
    timeout: Timeout = DEFAULT_TIMEOUT
    max_output: OutputLimit = DEFAULT_OUTPUT
    snapshot_first: bool = False


class LogsParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    vmid: VmId
    unit: Unit | None = None
    file: LogFile | None = None
    lines: Lines = 100


described(ExecParams, fields={
    "vmid": "the container (its CTID must be in PROXIMO_EXEC_ALLOW)",
    "argv": "the command and its arguments, one string each (no shell: [\"df\", \"-h\"])",
    "snapshot_first": "take a snapshot before the command, as an undo point (undo rolls back to it)"})
described(LogsParams, fields={"vmid": "the container (its CTID must be in PROXIMO_EXEC_ALLOW)",
                              "unit": "journal lines of this systemd unit (give unit or file)",
                              "file": "the last lines of this file (give unit or file)"})


def _container(view: ClusterModel, vmid: int) -> tuple[Guest, str]:
    guest = view.guests.get(vmid)
    if guest is None or guest.kind != "lxc":
        raise BadInput(f"CT {vmid}: no such container (exec runs in containers only; see `proximo read guest.list`)")
    if not guest.running:
        raise BadInput(f"CT {vmid} is not running: a command runs only in a running container (start it first: guest.start)")
    node = view.nodes.get(guest.node)
    address = str((node.status if node else {}).get("ip") or "")
    if not address:
        raise BadInput(f"node {guest.node}: /cluster/status gives no address to reach it over ssh")
    return guest, address


_NOTE = ("the output comes back in the apply's result and is not kept: the ledger records the argv, the exit status, "
         "the byte counts and a hash of the output")


def _snapname(guest: Guest) -> str:
    taken = {str(s.get("name")) for s in guest.snapshots or []}
    n = 1
    while f"proximo-exec-{n}" in taken:
        n += 1
    return f"proximo-exec-{n}"


def plan_exec(p: ExecParams, view: ClusterModel) -> Draft:
    guest, address = _container(view, p.vmid)
    steps: list[Any] = []
    notes = [_NOTE]
    if p.snapshot_first:
        snapname = _snapname(guest)
        steps.append(ApiCall("POST", f"/nodes/{guest.node}/lxc/{guest.vmid}/snapshot",
                             {"snapname": snapname, "description": "undo point before a command (proximo ct.exec)"}))
        notes.append(f"snapshot {snapname} is taken first, as an undo point: undo rolls the container back to it")
    steps.append(SshExec(node=guest.node, ctid=guest.vmid, argv=list(p.argv), address=address, timeout=p.timeout,
                         max_output=p.max_output))
    return Draft(steps=steps, notes=notes, target=str(guest.vmid))


def plan_logs(p: LogsParams, view: ClusterModel) -> Draft:
    if (p.unit is None) == (p.file is None):
        raise BadInput("ct.logs: give unit=NAME (its journal lines) or file=PATH (its last lines), one of them")
    guest, address = _container(view, p.vmid)
    if p.unit is not None:
        argv = ["journalctl", "--no-pager", "-n", str(p.lines), "-u", p.unit]
    else:
        argv = ["tail", "-n", str(p.lines), "--", str(p.file)]
    return Draft(steps=[SshExec(node=guest.node, ctid=guest.vmid, argv=argv, address=address, timeout=LOG_TIMEOUT,
                                max_output=MAX_OUTPUT)], notes=[_NOTE], target=str(guest.vmid))


TOOLS = tool_table(
    plan_tool("ct.exec", "Plan: run a command in a container",
              "Plan running a command inside a running container (pct exec over ssh to its node). Off unless "
              "PROXIMO_ENABLE_EXEC=1 and the CTID is in PROXIMO_EXEC_ALLOW. HIGH, and a person approves it, unless the "
              "policy's exec_read_only names the command. argv is a list; timeout and output are bounded.",
              ExecParams, plan_exec),
    plan_tool("ct.logs", "Plan: read a container's logs",
              "Plan reading the journal lines of a unit, or the last lines of a file, inside a running container (fixed "
              "argv: journalctl or tail). A read (LOW, no person) when the policy's exec_read_only names ct.logs.",
              LogsParams, plan_logs),
)
