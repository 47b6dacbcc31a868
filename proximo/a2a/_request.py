"""What a client asks, read from its message: a DataPart or a TextPart in the CLI's syntax. Nothing else.

    {"tool": "storage.delete", "params": {"storage": "X"}}   a read (answered) or a plan tool (a plan)
    {"apply": "PLAN_ID"}                                      apply a plan (a person approves above auto-approval)
    {"undo": SEQ}                                             plan the undo of the change at ledger record SEQ
    {"audit": "verify"} / {"audit": "tail", "n": 20}          the ledger's chain, or its newest records
    storage.delete storage=X   /   apply PLAN_ID   /   undo SEQ   /   audit verify   /   audit tail 20

With several clusters (PROXIMO_CLUSTERS) each request names one: ``"cluster": NAME`` beside the other keys, or
text that starts ``--cluster NAME``; the default cluster (or the only one) may go unnamed.

Any other key is refused (one line), as unknown parameters are everywhere: no key approves anything.
"""

from __future__ import annotations

import shlex
from typing import Any

import msgspec

from .._form import coerce_form
from .._tools import ToolRegistry
from ..errors import BadInput


class Call(msgspec.Struct, frozen=True):
    kind: str  # "tool", "apply", "undo", "audit"
    tool: str = ""
    params: dict[str, Any] = {}
    plan_id: str = ""
    seq: int = 0
    audit: str = ""
    n: int = 20
    cluster: str | None = None  # None: the default cluster (the face refuses where several have no default)


SHAPES: dict[str, set[str]] = {"tool": {"tool", "params"}, "apply": {"apply"}, "undo": {"undo"}, "audit": {"audit", "n"}}
MAX_TAIL = 200


def _ints(value: Any) -> Any:
    """A DataPart carries every number as a double (google.protobuf.Value): whole ones are integers again."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def from_data(data: Any) -> Call:
    if not isinstance(data, dict):
        raise BadInput("a DataPart must be an object: {\"tool\": ID, \"params\": {...}}, {\"apply\": PLAN_ID}, "
                       "{\"undo\": SEQ} or {\"audit\": \"verify\" | \"tail\"}")
    data = _ints(data)
    cluster = data.pop("cluster", None)
    if cluster is not None and not isinstance(cluster, str):
        raise BadInput("cluster must be a cluster's name")
    return msgspec.structs.replace(_from_data(data), cluster=cluster)


def _from_data(data: dict[str, Any]) -> Call:
    kind = next((k for k in SHAPES if k in data), None)
    if kind is None:
        raise BadInput(f"unknown request {sorted(data)[:5]}: expected one of tool, apply, undo, audit")
    extra = sorted(set(data) - SHAPES[kind])
    if extra:
        raise BadInput(f"unknown field(s) {', '.join(extra)} in a {kind} request (allowed: {', '.join(sorted(SHAPES[kind]))})")
    if kind == "tool":
        if not isinstance(data["tool"], str) or not isinstance(data.get("params", {}), dict):
            raise BadInput("tool must be a tool id and params an object")
        return Call("tool", tool=data["tool"], params=data.get("params", {}))
    if kind == "apply":
        if not isinstance(data["apply"], str):
            raise BadInput("apply must be a plan id")
        return Call("apply", plan_id=data["apply"])
    if kind == "undo":
        if not isinstance(data["undo"], int) or isinstance(data["undo"], bool):
            raise BadInput("undo must be a ledger seq (a number)")
        return Call("undo", seq=data["undo"])
    what, n = data["audit"], data.get("n", 20)
    if what not in ("verify", "tail") or not isinstance(n, int) or not 1 <= n <= MAX_TAIL:
        raise BadInput(f"audit must be \"verify\" or \"tail\" (with n from 1 to {MAX_TAIL})")
    return Call("audit", audit=what, n=n)


def from_text(text: str, tools: ToolRegistry) -> Call:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise BadInput(f"cannot read the request: {exc}") from None
    cluster = None
    if words[:1] == ["--cluster"]:
        if len(words) < 2:
            raise BadInput("--cluster needs a cluster's name")
        cluster, words = words[1], words[2:]
    if not words:
        raise BadInput("empty request")
    return msgspec.structs.replace(_from_words(words, tools), cluster=cluster)


def _from_words(words: list[str], tools: ToolRegistry) -> Call:
    head, rest = words[0], words[1:]
    if head == "apply" and len(rest) == 1:
        return Call("apply", plan_id=rest[0])
    if head == "undo" and len(rest) == 1 and rest[0].isdigit():
        return Call("undo", seq=int(rest[0]))
    if head == "audit" and rest and rest[0] in ("verify", "tail") and len(rest) <= 2:
        n = rest[1] if len(rest) == 2 else "20"
        if not n.isdigit() or not 1 <= int(n) <= MAX_TAIL:
            raise BadInput(f"audit tail N: N from 1 to {MAX_TAIL}")
        return Call("audit", audit=rest[0], n=int(n))
    pairs: dict[str, str] = {}
    for word in rest:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise BadInput(f"expected key=value, got {word!r}")
        if key in pairs:
            raise BadInput(f"parameter {key!r} given twice")
        pairs[key] = value
    spec = next((t for t in tools if t.id == head), None)  # an unknown id stays strings: the host refuses it
    params = coerce_form(spec.input_schema(), pairs) if spec is not None else dict(pairs)
    return Call("tool", tool=head, params=params)
