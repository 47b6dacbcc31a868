"""The operator's policy file (``PROXIMO_POLICY``, TOML): limits no agent request can lift.

    deny_tools = ["guest.destroy", "access.*"]   # tool ids or globs: refused before anything is planned
    max_risk = "HIGH"                              # a plan above this risk is blocked
    vmids = [100, "200-299"]                       # the only guests a plan may change
    nodes = ["pve1", "pve2"]                       # the only nodes a plan may change anything on
    storages = ["local-zfs", "nfs-backup"]         # the only storages a plan may change
    approval = "person"                            # HIGH and CRITICAL need a person's own credential or unix
                                                   # account, not an MCP client's form ("any", the default, allows it)
    exec_read_only = ["ct.logs", "df", "systemctl status"]
                                                   # lxc-exec: commands (argv prefixes, words split on blanks) or
                                                   # tool ids that run as reads (LOW, no person); still ledgered
    max_applies_per_hour = 30                      # applies started in the last hour, every face and process
    max_applies_per_hour_by_risk = {HIGH = 5, CRITICAL = 1}

A missing key means no limit. Scope is judged on what the plan changes, not on what the tool says: the steps'
paths (``/nodes/{node}/qemu/{vmid}``, ``/storage/{storage}``) plus every guest and storage whose modelled state
differs before and after (a migration touches the node it lands on; a clone touches its new vmid). A file that
does not parse, an unknown key or a bad value stops the host at start: fail closed, never "no policy".
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from .._types import ApiCall, Risk, SshExec, Step
from ..errors import BadInput, PolicyDenied
from ..model import ClusterModel, as_int


_TOOL_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class Scope(msgspec.Struct, frozen=True):
    """What a plan changes, by kind of object."""

    vmids: frozenset[int] = frozenset()
    nodes: frozenset[str] = frozenset()
    storages: frozenset[str] = frozenset()


class Policy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    deny_tools: list[str] = []
    max_risk: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"] | None = None
    vmids: list[int | str] | None = None
    nodes: list[str] | None = None
    storages: list[str] | None = None
    approval: Literal["any", "person"] = "any"
    exec_read_only: list[str] = []
    # applies started in the last hour (every face and process on the ledger): overall, and per plan risk
    max_applies_per_hour: Annotated[int, msgspec.Meta(ge=0)] | None = None
    max_applies_per_hour_by_risk: dict[Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"], Annotated[int, msgspec.Meta(ge=0)]] = {}

    def exec_is_read_only(self, tool_id: str, argv: list[str]) -> bool:
        """Whether the operator names this command (or the tool that built it) as a read: an entry that is a tool id
        (``ct.logs``) names that tool's commands; any other entry is an argv prefix: ``systemctl status`` names
        ``["systemctl", "status", ...]`` with any further arguments (so name only commands whose every argument reads)."""
        for entry in self.exec_read_only:
            if _TOOL_ID.match(entry):
                if entry == tool_id:
                    return True
                continue
            words = entry.split()
            if words and argv[:len(words)] == words:
                return True
        return False

    def person_channel_required(self, risk: Risk) -> bool:
        """Whether only a person's own credential or account may approve a plan of this risk (not a client's form)."""
        return self.approval == "person" and risk >= Risk.HIGH

    def check_tool(self, tool_id: str) -> None:
        for pattern in self.deny_tools:
            if fnmatch.fnmatchcase(tool_id, pattern):
                raise PolicyDenied(f"{tool_id}: the policy file denies this tool (deny_tools {pattern!r})")

    def check_risk(self, risk: Risk) -> str | None:
        if self.max_risk is not None and risk > Risk(self.max_risk):
            return f"policy: risk {risk.value} is above the policy's max_risk {self.max_risk}"
        return None

    def violations(self, risk: Risk, scope: Scope) -> list[str]:
        """Why the policy blocks a plan of this risk and scope (empty: it does not)."""
        found = [reason] if (reason := self.check_risk(risk)) else []
        if self.vmids is not None:
            allowed = _vmid_ranges(self.vmids)
            outside = sorted(v for v in scope.vmids if not any(lo <= v <= hi for lo, hi in allowed))
            if outside:
                found.append(f"policy: guest(s) {', '.join(map(str, outside))} are outside the allowed vmids")
        for kind, allowed_names, touched in (("node", self.nodes, scope.nodes), ("storage", self.storages, scope.storages)):
            if allowed_names is not None and (outside_names := sorted(touched - set(allowed_names))):
                found.append(f"policy: {kind}(s) {', '.join(outside_names)} are outside the allowed {kind}s")
        return found


def _vmid_ranges(items: list[int | str]) -> list[tuple[int, int]]:
    ranges = []
    for item in items:
        text = str(item)
        lo, sep, hi = text.partition("-")
        if not (lo.isascii() and lo.isdigit() and (not sep or (hi.isascii() and hi.isdigit()))):
            raise BadInput(f"PROXIMO_POLICY: vmids entry {item!r} is not a vmid or a range like '100-199'")
        ranges.append((int(lo), int(hi) if sep else int(lo)))
    return ranges


def load_policy(path: str | Path | None) -> Policy:
    """The policy at ``path`` (none: no limits). Any problem with the file is a BadInput, so the host does not start."""
    if not path:
        return Policy()
    try:
        raw = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise BadInput(f"PROXIMO_POLICY: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"PROXIMO_POLICY: {path} is not valid TOML: {exc}") from None
    return policy_from_table(raw, f"PROXIMO_POLICY: {path}")


def policy_from_table(raw: object, where: str) -> Policy:
    """A policy from its TOML table (a policy file's, or a cluster's inline ``policy`` in PROXIMO_CLUSTERS); any
    problem is a BadInput that starts with ``where``."""
    try:
        policy = msgspec.convert(raw, Policy)
    except msgspec.ValidationError as exc:
        raise BadInput(f"{where}: {exc}") from None
    if policy.vmids is not None:
        try:
            _vmid_ranges(policy.vmids)
        except BadInput as exc:
            raise BadInput(f"{where}: {str(exc).removeprefix('PROXIMO_POLICY: ')}") from None
    return policy


def scope_of(steps: list[Step], before: ClusterModel, after: ClusterModel) -> Scope:
    """Every guest, node and storage the steps name in their paths or change in the model."""
    vmids: set[int] = set()
    nodes: set[str] = set()
    storages: set[str] = set()
    for step in steps:
        if isinstance(step, SshExec):  # a command in a container changes that container, on its node
            vmids.add(step.ctid)
            nodes.add(step.node)
            continue
        match = before.api.match(step.path) if isinstance(step, ApiCall) else None
        named = match[1] if match else {}
        if "node" in named:
            nodes.add(named["node"])
        if "vmid" in named:
            vmids.add(as_int(named["vmid"], -1))
        if "storage" in named:
            storages.add(named["storage"])
    for vmid in set(before.guests) | set(after.guests):
        old, new = before.guests.get(vmid), after.guests.get(vmid)
        if old != new:
            vmids.add(vmid)
            nodes.update(g.node for g in (old, new) if g is not None)
    for sid in set(before.storages) | set(after.storages) | set(before.volumes) | set(after.volumes):
        if _storage_row(before, sid) != _storage_row(after, sid) or before.volumes.get(sid) != after.volumes.get(sid):
            storages.add(sid)
    return Scope(vmids=frozenset(vmids), nodes=frozenset(nodes), storages=frozenset(storages))


def _storage_row(model: ClusterModel, sid: str) -> dict[str, object] | None:
    # every /storage row carries the digest of the whole storage.cfg: one storage's edit changes all of them
    row = model.storages.get(sid)
    return None if row is None else {k: v for k, v in row.items() if k != "digest"}
