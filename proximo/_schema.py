"""The JSON Schema a tool's parameters are shown with (MCP ``inputSchema``, ``proximo tools TOOL``): slim and described.

msgspec's own schema of a parameter struct is exact but large and mute: ``guest.config.set`` lists mp0 .. mp255 one
by one, optional fields carry ``anyOf [T, null]`` and ``default: null``, and almost no property says what it is.
This is the same schema, made for a reader (a model pays for every byte of it in each conversation):

- optional fields show their type alone (leaving a field out is how to leave it unset);
- PVE's booleans (``bool | 0 | 1``) show as ``boolean``: clients send true/false;
- a run of indexed options (``mp0`` .. ``mp255`` with one schema) becomes one ``patternProperties`` entry whose
  pattern takes exactly that index range; a long enum of such names becomes one pattern the same way;
- every property has a short description: the PVE API schema's own (first sentence) where the parameter mirrors a PVE
  parameter (``__pve_endpoints__``, or the endpoints ``proximo.params.described`` names), else the field's
  ``msgspec.Meta(description=...)``, else the text ``described(fields=...)`` gives it;
- a field typed ``Any`` (two endpoints disagree on its shape) shows the types PVE gives it, as a type or an ``anyOf``.

The schema only ever shows less than the struct takes; ``ToolSpec.parse`` (the struct) still decides what is valid.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from importlib import resources
from typing import Any

import msgspec

from .pve._apischema import INDEXED_LIMITS, split_indexed

# A budget (``input_schema(struct, budget)``, what MCP's full toolset gives each tool) cuts descriptions shorter only
# for the two tools with a hundred options or more (guest.config.set, vm.create); every other tool keeps its first
# sentences whole (up to 100 characters).
DESCRIPTION_LIMITS = (100, 16)  # the longest a description gets, and the shortest a budget may cut it to
_ENUM_TO_PATTERN = 16  # an enum longer than this is shown as a pattern when one is shorter
# A sentence ends at ". " or a final "." (not "e.g. ", "i.e. ", "etc. ", nor a "..." in the text).
_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)(?<!etc)(?<!\.)\.(?=\s|$)")
# What a sentence too long for its limit loses first (before it is cut): a leading "Specify"-like verb, asides in
# parentheses, articles. "Specify guest boot order" -> "Guest boot order"; "The (unique) ID of the VM" -> "ID of VM".
_TERSE = ((re.compile(r"^(?:Specify|Specifies|Set|Sets|Configure|Select) (?=\S)"), ""), (re.compile(r" ?\([^()]*\)"), ""),
          (re.compile(r"\b(?:[Tt]he|[Aa]n?) (?=\S)"), ""))


def first_sentence(text: str, limit: int = DESCRIPTION_LIMITS[0]) -> str:
    """The first sentence of ``text``, on one line, at most ``limit`` characters (made terse, then cut at a word, with
    an ellipsis: one character, three bytes, like '...')."""
    flat = " ".join(text.split())
    end = _SENTENCE_END.search(flat)
    sentence = (flat[: end.start()] if end else flat).rstrip(" :;,")
    if len(sentence) > limit:
        terse = sentence
        for pattern, replacement in _TERSE:
            terse = pattern.sub(replacement, terse)
        sentence = terse[:1].upper() + terse[1:] if sentence[:1].isupper() else terse
    if len(sentence) > limit:
        sentence = sentence[: limit - 1].rsplit(" ", 1)[0].rstrip(" :;,(") + "\u2026"
    return sentence


@functools.cache
def pve_descriptions() -> dict[str, dict[str, str]]:
    """``"METHOD PATH" -> {param: first sentence}`` (``scripts/gen_param_descriptions.py``)."""
    raw = resources.files("proximo.pve").joinpath("_data/pve-api-descriptions.json.gz").read_bytes()
    found = json.loads(gzip.decompress(raw))
    assert isinstance(found, dict)
    return found


def pve_description(endpoints: tuple[tuple[str, str], ...], name: str) -> str | None:
    """What the PVE API says of parameter ``name`` (``mp5`` is ``mp[n]``) on the first of ``endpoints`` that has it."""
    table = pve_descriptions()
    split = split_indexed(name)
    for method, template in endpoints:
        params = table.get(f"{method} {template}", {})
        text = params.get(name) or (params.get(f"{split[0]}[n]") if split else None)
        if text:
            return text
    return None


def _pve_types(endpoints: tuple[tuple[str, str], ...], name: str) -> dict[str, Any] | None:
    """The JSON types PVE gives ``name`` on ``endpoints`` in any release: for a field the struct types ``Any``."""
    from .pve._apischema import RELEASES, indexed_spec, schema

    specs = [spec for method, template in endpoints for release in RELEASES
             if (endpoint := schema(release).endpoint(method, template)) is not None
             and (spec := endpoint.params.get(name) or indexed_spec(endpoint, name)) is not None]
    if not specs:
        return None
    kinds = {spec.type for spec in specs}
    if {"integer", "number"} <= kinds:  # an integer is a number
        kinds.discard("integer")
    # The type alone: endpoints that disagree on a parameter disagree on its values too (a VM's ostype is not a
    # container's), and PVE checks the value for the guest at hand. Names that fold into one short pattern (a VM's
    # disks and a container's volumes: scsi0 .. scsi30, mp0 .. mp255, ...) are shown as it.
    shown: list[dict[str, Any]] = []
    for kind in sorted(kinds & {"string", "integer", "number", "boolean"}):
        strings = [spec.enum for spec in specs if spec.type == "string"]
        pattern = (_names_pattern(sorted({v for enum in strings for v in enum or ()}))
                   if kind == "string" and all(strings) else None)
        shown.append({"type": kind, "pattern": pattern} if pattern else {"type": kind})
    if not shown:
        return None
    return shown[0] if len(shown) == 1 else {"anyOf": shown}


# --- indexed names ------------------------------------------------------------------------------------


def _digit_class(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"[{lo}{hi}]" if hi == lo + 1 else f"[{lo}-{hi}]"


def _digits(lo: str, hi: str) -> list[str]:
    """Regex alternatives for the numbers lo..hi, both of the same length."""
    if len(lo) == 1:
        return [_digit_class(int(lo), int(hi))]
    if lo[0] == hi[0]:
        return [lo[0] + rest for rest in _digits(lo[1:], hi[1:])]
    width, parts, tail = len(lo) - 1, [], []
    first, last = int(lo[0]), int(hi[0])
    if lo[1:] != "0" * width:
        parts += [lo[0] + rest for rest in _digits(lo[1:], "9" * width)]
        first += 1
    if hi[1:] != "9" * width:
        tail = [hi[0] + rest for rest in _digits("0" * width, hi[1:])]
        last -= 1
    if first <= last:
        lead = _digit_class(first, last)
        parts.append(lead + ("[0-9]" if width == 1 else f"[0-9]{{{width}}}"))
    return parts + tail


def index_range(count: int) -> str:
    """A regex (no anchors) matching exactly the decimal numbers 0 .. count-1, without leading zeros."""
    parts: list[str] = []
    low = 0
    while low < count:
        high = min(count - 1, 10 ** len(str(low)) - 1)
        parts += _digits(str(low), str(high))
        low = high + 1
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def _names_pattern(names: list[str]) -> str | None:
    """One anchored pattern taking exactly ``names`` (runs ``base0`` .. ``baseN`` folded), or None if no run folds."""
    runs: dict[str, set[int]] = {}
    plain: list[str] = []
    for name in names:
        split = split_indexed(name)
        if split:
            runs.setdefault(split[0], set()).add(split[1])
        else:
            plain.append(name)
    parts = [re.escape(name) for name in sorted(plain)]
    folded = False
    for base, seen in sorted(runs.items()):
        if seen == set(range(len(seen))) and len(seen) > 2:
            parts.append(base + index_range(len(seen)))
            folded = True
        else:
            parts += [f"{base}{i}" for i in sorted(seen)]
    return "^(?:" + "|".join(parts) + ")$" if folded else None


# --- the schema -----------------------------------------------------------------------------------------


def object_schema(struct: Any) -> dict[str, Any]:
    """A msgspec type's JSON Schema with its root inlined (not a ``$ref``), other definitions under ``$defs``."""
    (ref,), components = msgspec.json.schema_components([struct], ref_template="#/$defs/{name}")
    name = ref["$ref"].rsplit("/", 1)[-1]
    top = dict(components.pop(name))
    if components:
        top["$defs"] = components
    return top


_NULL = {"type": "null"}
_PVE_BOOL = [{"type": "boolean"}, {"enum": [0, 1]}]


def _slim(prop: dict[str, Any]) -> dict[str, Any]:
    """One property without ``null`` (optional fields are left out instead) and with PVE booleans as ``boolean``; a
    default that says nothing (null, "", {}, []: what leaving the field out means anyway) is left out too."""
    prop = dict(prop)
    if "default" in prop and prop["default"] in (None, "", {}, []):
        del prop["default"]
    options = prop.get("anyOf")
    if options is not None:
        rest = [o for o in options if o != _NULL]
        if rest == _PVE_BOOL:
            rest = [{"type": "boolean"}]
        del prop["anyOf"]
        if len(rest) == 1:
            prop = {**prop, **rest[0]}
        elif rest:
            prop["anyOf"] = rest
    if prop == _PVE_BOOL[1]:
        prop = {"type": "boolean"}
    enum = prop.get("enum")
    if isinstance(enum, list) and len(enum) > _ENUM_TO_PATTERN and all(isinstance(v, str) for v in enum):
        pattern = _names_pattern(enum)
        if pattern is not None and len(pattern) < len(json.dumps(enum)):
            del prop["enum"]
            prop = {"type": "string", **prop, "pattern": pattern}
    return prop


def _describe(prop: dict[str, Any], text: str | None, limit: int) -> dict[str, Any]:
    text = text or prop.get("description")
    if not text:
        return prop
    return {"description": first_sentence(text, limit), **{k: v for k, v in prop.items() if k != "description"}}


def _body(prop: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in prop.items() if k != "description"}, sort_keys=True)


def _fold_indexed(props: dict[str, dict[str, Any]], required: set[str], endpoints: tuple[tuple[str, str], ...],
                  limit: int) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Runs of indexed options (all of base0 .. baseN-1, optional, one schema) as patternProperties."""
    runs: dict[str, list[str]] = {}
    for name in props:
        split = split_indexed(name)
        if split and split[0] in INDEXED_LIMITS:
            runs.setdefault(split[0], []).append(name)
    patterns: dict[str, dict[str, Any]] = {}
    folded: set[str] = set()
    for base, names in runs.items():
        count = len(names)
        if (count < 3 or set(names) != {f"{base}{i}" for i in range(count)} or required & set(names)
                or len({_body(props[n]) for n in names}) != 1):
            continue
        # the description PVE gives the option (its pattern says which indexes)
        text = pve_description(endpoints, f"{base}0") or props[names[0]].get("description") or base
        shown = _describe({k: v for k, v in props[names[0]].items() if k != "description"}, text, limit)
        patterns[f"^{base}{index_range(count)}$"] = shown
        folded |= set(names)
    return {n: p for n, p in props.items() if n not in folded}, patterns


def _build(struct: Any, limit: int) -> dict[str, Any]:
    raw = object_schema(struct)
    # the endpoints the struct mirrors, then any it only takes descriptions from (``proximo.params.described``)
    endpoints: tuple[tuple[str, str], ...] = (*getattr(struct, "__pve_endpoints__", ()), *getattr(struct, "__pve_docs__", ()))
    extra: dict[str, str] = getattr(struct, "__param_descriptions__", {})
    required = set(raw.get("required", ()))
    props: dict[str, dict[str, Any]] = {}
    for name, prop in raw.get("properties", {}).items():
        prop = _slim(prop)
        if not prop or prop == {"description": prop.get("description")}:  # Any: what PVE says it is
            prop = {**prop, **(_pve_types(endpoints, name) or {})}
        prop = _describe(prop, pve_description(endpoints, name) if endpoints else None, limit)
        props[name] = prop if prop.get("description") else _describe(prop, extra.get(name), limit)
    props, patterns = _fold_indexed(props, required, endpoints, limit)
    out: dict[str, Any] = {"type": "object", "properties": props}
    if patterns:
        out["patternProperties"] = patterns
    if raw.get("required"):
        out["required"] = raw["required"]
    if "additionalProperties" in raw:
        out["additionalProperties"] = raw["additionalProperties"]
    if "$defs" in raw:
        out["$defs"] = {name: _build_def(d, limit) for name, d in raw["$defs"].items()}
        _inline_single_refs(out)
    return out


def _inline_single_refs(schema: dict[str, Any]) -> None:
    """A definition one top-level property alone refers to goes inline there (a ``$ref`` and its name cost more)."""
    defs: dict[str, Any] = schema["$defs"]
    text = json.dumps(schema)
    for name in list(defs):
        ref = f"#/$defs/{name}"
        users = [p for p in schema["properties"].values() if p.get("$ref") == ref]
        if len(users) == 1 and text.count(json.dumps(ref)) == 1:
            prop = users[0]
            del prop["$ref"]
            prop.update({k: v for k, v in defs.pop(name).items() if k != "description"})
    if not defs:
        del schema["$defs"]


def _build_def(definition: dict[str, Any], limit: int) -> dict[str, Any]:
    """A nested struct's schema (``$defs``): its properties slimmed and described as the top level's are."""
    out = {k: v for k, v in definition.items() if k not in ("title", "description")}  # the property describes it
    if "properties" in out:
        out["properties"] = {n: _describe(_slim(p), None, limit) for n, p in out["properties"].items()}
    return out


@functools.cache
def input_schema(struct: Any, budget: int | None = None) -> dict[str, Any]:
    """The slim, described JSON Schema of a parameter struct (see the module docstring); cached.

    ``budget``: the most bytes it may take (as compact JSON), reached by cutting descriptions shorter: what a list of
    every tool shows (MCP's full toolset). None: descriptions up to 100 characters, what one tool's own description
    shows (``proximo tools TOOL``, MCP's ``proximo_describe``). Callers get a shared dict: copy it before changing it.
    """
    longest, shortest = DESCRIPTION_LIMITS
    built = _build(struct, longest)
    if budget is None or _size(built) <= budget:
        return built
    # the longest limit that fits (the size grows with the limit): a few builds, for the few tools that need it
    low, high = shortest, longest - 1
    while low < high:
        middle = (low + high + 1) // 2
        if _size(_build(struct, middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    return _build(struct, low)


def _size(schema: dict[str, Any]) -> int:
    return len(json.dumps(schema, separators=(",", ":"), ensure_ascii=False).encode())


# Values for the parameters tools share (the demo cluster has them), for describe's example: the first candidate the
# parameter's schema takes is used ("target" is a node, a storage or a firewall target, by tool).
_EXAMPLE_VALUES: dict[str, tuple[Any, ...]] = {
    "node": ("pve1",), "storage": ("local",), "vmid": (104,), "newid": (150,), "target": ("qemu/104", "pve2"),
    "snapname": ("before-upgrade",), "userid": ("alice@pve",), "subject": ("alice@pve",), "groupid": ("ops",),
    "roleid": ("Auditor",), "tokenid": ("ci",), "path": ("/vms/104",), "roles": ("PVEVMUser",), "name": ("example",),
    "cidr": ("192.0.2.10",), "upid": ("UPID:pve1:00001234:00ABCDEF:65000000:qmstart:104:root@pam:",),
    "type": ("dir",), "disk": ("scsi0",), "size": ("+1G",), "action": ("ACCEPT",), "group": ("webservers",),
    "level": ("cluster",), "sid": ("vm:104",), "iface": ("vmbr0",), "argv": (["df", "-h"],),
    "id": ("104-0",),  # a replication job (<guest>-<n>); taken only where a field's pattern allows it
    "volume": ("nfs-backup:backup/vzdump-qemu-104-2026_11_27-21_00_02.vma.zst",),  # a backup of the demo cluster
    "archive": ("nfs-backup:backup/vzdump-qemu-104-2026_11_27-21_00_02.vma.zst",),
}


def _takes(prop: dict[str, Any], value: Any) -> bool:
    if "enum" in prop:
        return value in prop["enum"]
    kind_ = prop.get("type")
    if kind_ == "string":
        return isinstance(value, str) and re.search(prop.get("pattern", ""), value) is not None
    return kind_ != "integer" or isinstance(value, int)


def example_value(name: str, prop: dict[str, Any]) -> Any:
    """A value ``prop`` takes, for a tool's example (MCP describe, ``proximo tools TOOL``): the shared parameters'
    demo values first, then the schema's own; None for a free string there is nothing better to say of."""
    for value in _EXAMPLE_VALUES.get(name, ()):
        if _takes(prop, value):
            return value
    if "enum" in prop:
        return prop["enum"][0]
    kind_ = prop.get("type")
    if kind_ == "integer" or kind_ == "number":
        return prop.get("minimum", 1)
    if kind_ == "boolean":
        return True
    if kind_ == "object":
        return {}
    if kind_ == "array":
        return []
    return None
