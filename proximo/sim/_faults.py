"""Faults the simulator injects on purpose: to rehearse a failing cluster before a real one fails.

A fault is a rule: requests whose method and path (below ``/api2/json``, decoded) match it get a failure instead
of (or besides) their answer. The kinds:

- ``error``: an answer with ``status`` (400, 401, 403, 500, 503, ...) and PVE's error body (``message``).
- ``timeout``: no answer at all. Served over HTTP the connection stays silent until the client gives up; in
  process the client's transport raises ``httpx.ReadTimeout``, as its own timeout would.
- ``reset``: the connection is torn down before an answer (TCP RST over HTTP; ``httpx.ReadError`` in process).
- ``slow``: the answer comes after ``delay`` seconds.
- ``task-fail``: the write runs and its task ends with ``message`` as its exit status (it failed halfway: what
  it did before failing is done, as when a real worker dies mid-way).
- ``task-hang``: the write runs and its task stays ``running`` for good.
- ``node-offline``: ``node`` is down: every ``/nodes/{node}/...`` request answers 595 as pveproxy's proxy does
  when it cannot reach a node, and ``/cluster/resources``, ``/cluster/status`` and ``/nodes`` show it offline.

``landed = true`` on a ``timeout`` or ``reset`` of a write carries the write out before the answer is lost: the
case where the client cannot know whether it happened. ``times`` limits how many requests a rule hits (none:
every one); ``probability`` hits a matching request with that chance, drawn from the file's ``seed`` so a
rehearsal repeats exactly.

The file (``proximo sim --faults FILE``) is TOML::

    seed = 7
    [[fault]]
    method = "DELETE"
    path = "^/storage/"
    status = 500
    message = "cfs-lock 'file-storage_cfg' error: got lock request timeout"
    times = 1
"""

from __future__ import annotations

import functools
import random
import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec

from ..errors import BadInput

FaultKind = Literal["error", "timeout", "reset", "slow", "task-fail", "task-hang", "node-offline"]
KINDS: tuple[str, ...] = ("error", "timeout", "reset", "slow", "task-fail", "task-hang", "node-offline")
METHODS = ("*", "GET", "POST", "PUT", "DELETE")
# AnyEvent::HTTP reports a connection it could not make as status 595 with the OS error as the reason, and
# pveproxy's proxy_request passes that on when the node a request is for cannot be reached
NODE_UNREACHABLE = (595, "No route to host")
_DEFAULT_MESSAGES = {400: "Parameter verification failed.", 401: "authentication failure",
                     403: "Permission check failed", 500: "internal error", 503: "service unavailable"}
_NODE_PATH = re.compile(r"^/nodes/(?P<node>[^/]+)(?:/|$)")
_LIVE_NODE_FIELDS = ("cpu", "mem", "disk", "uptime", "loadavg")  # what pvestatd no longer reports for a node that is down


class Fault(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One rule (see the module's docstring for the kinds)."""

    kind: FaultKind = "error"
    method: str = "*"
    path: str = ""  # a regular expression, searched in the decoded path below /api2/json ("" matches every path)
    status: int = 500
    message: str = ""
    delay: float = 0.0
    node: str = ""
    landed: bool = False
    times: int | None = None
    probability: float = 1.0

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        if self.method not in METHODS:
            raise BadInput(f"fault: method must be one of {', '.join(METHODS)}, not {self.method!r}")
        try:
            _compiled(self.path)
        except re.error as exc:
            raise BadInput(f"fault: path {self.path!r} is not a regular expression ({exc})") from None
        if self.kind == "error" and not 400 <= self.status <= 599:
            raise BadInput(f"fault: an error's status must be 400 to 599, not {self.status}")
        if not 0.0 <= self.probability <= 1.0:
            raise BadInput(f"fault: probability must be between 0 and 1, not {self.probability}")
        if self.times is not None and self.times < 0:
            raise BadInput(f"fault: times must be 0 or more, not {self.times}")
        if not 0.0 <= self.delay <= 3600.0:
            raise BadInput(f"fault: delay must be 0 to 3600 seconds, not {self.delay}")
        if self.kind == "node-offline" and not self.node:
            raise BadInput("fault: a node-offline fault names its node (node = \"pve2\")")
        if not self.message:
            self.message = {"task-fail": "simulated task failure", "timeout": "", "reset": ""}.get(
                self.kind, _DEFAULT_MESSAGES.get(self.status, "simulated failure"))

    def matches(self, method: str, path: str) -> bool:
        if self.kind == "node-offline":
            found = _NODE_PATH.match(path)
            return found is not None and found["node"] == self.node
        return self.method in ("*", method) and _compiled(self.path).search(path) is not None


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class AnswerTimedOut(httpx.ReadTimeout):
    """A ``timeout`` fault: in process, the client's transport raises this as its own read timeout would; served
    over HTTP (``_serve``), the connection stays silent until the client gives up."""


class ConnectionDropped(httpx.ReadError):
    """A ``reset`` fault: in process, the client's transport raises this; served over HTTP, the connection is reset."""


class Faults:
    """The simulator's rules, and what they injected (``injected``: kind -> count), drawn from one seeded random."""

    def __init__(self, rules: list[Fault] | None = None, *, seed: int = 0) -> None:
        self.rules: list[Fault] = list(rules or [])
        self.seed = seed
        self._random = random.Random(seed)
        self.injected: Counter[str] = Counter()
        self._hits: dict[int, int] = {}  # id(rule) -> how many requests it hit

    def _spent(self, rule: Fault) -> bool:
        return rule.times is not None and self._hits.get(id(rule), 0) >= rule.times

    def add(self, fault: Fault) -> Fault:
        self.rules.append(fault)
        return fault

    def clear(self) -> None:
        self.rules.clear()
        self._hits.clear()

    def hit(self, method: str, path: str) -> Fault | None:
        """The first rule this request meets (counted), if any. Node-offline rules are answered first: a node that
        is down answers nothing else."""
        for rule in sorted(self.rules, key=lambda r: r.kind != "node-offline"):
            if self._spent(rule) or not rule.matches(method, path):
                continue
            if rule.probability < 1.0 and self._random.random() >= rule.probability:
                continue
            self._hits[id(rule)] = self._hits.get(id(rule), 0) + 1
            self.injected[rule.kind] += 1
            return rule
        return None

    def offline_nodes(self) -> set[str]:
        return {r.node for r in self.rules if r.kind == "node-offline" and not self._spent(r)}

    def show_offline(self, path: str, data: Any) -> Any:
        """``/cluster/resources``, ``/cluster/status`` and ``/nodes`` as PVE shows them with these nodes down."""
        down = self.offline_nodes()
        if not down or path not in ("/cluster/resources", "/cluster/status", "/nodes") or not isinstance(data, list):
            return data
        rows = []
        for row in data:
            if not isinstance(row, dict) or (row.get("node") or row.get("name")) not in down:
                rows.append(row)
                continue
            row = dict(row)
            if path == "/cluster/status":
                row["online"] = 0
            elif row.get("type") == "node":
                row["status"] = "offline"
                for key in _LIVE_NODE_FIELDS:
                    row.pop(key, None)
            else:  # a guest or a storage on a node that is down: its state is not known
                row["status"] = "unknown"
            rows.append(row)
        return rows


def load_faults(path: str | Path) -> Faults:
    """The faults file (TOML: ``seed`` and ``[[fault]]`` tables); BadInput in one line when it is not one."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise BadInput(f"faults file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"faults file {path} is not TOML: {exc}") from None
    unknown = sorted(set(raw) - {"seed", "fault"})
    if unknown:
        raise BadInput(f"faults file {path}: unknown key(s) {', '.join(unknown)} (it holds seed and [[fault]] tables)")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise BadInput(f"faults file {path}: seed must be a whole number")
    rules = raw.get("fault", [])
    if not isinstance(rules, list):
        raise BadInput(f"faults file {path}: write each fault as a [[fault]] table")
    try:
        faults = [msgspec.convert(rule, Fault) for rule in rules]
    except msgspec.ValidationError as exc:
        raise BadInput(f"faults file {path}: {exc}") from None
    return Faults(faults, seed=seed)
