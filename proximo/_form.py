"""A tool's parameters as a person types and reads them: ``key=value`` form strings coerced by the JSON schema
(as Proxmox itself takes form strings), one line per parameter for help, "did you mean" suggestions, and msgspec's
validation messages said in an operator's words.

The schema (``ToolSpec.input_schema()``) is the one source: what MCP clients are shown is what the CLI shows and
coerces by. It may list indexed keys one by one (``mp0`` .. ``mp255``) or as one ``patternProperties`` entry.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from typing import Any

import msgspec

from ._schema import example_value

_INT = re.compile(r"^[+-]?[0-9]+$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# ``^mp\d+$`` (or ``^mp[0-9]+$``) -> ``mp[N]``: how a person reads an indexed key
_INDEXED = re.compile(r"^\^?([A-Za-z_-]+)(?:\\d\+|\[0-9\]\+|\\d\{[0-9,]+\}|\[0-9\]\{[0-9,]+\})\$?$")


class Param(msgspec.Struct, frozen=True):
    """One parameter as help shows it."""

    name: str  # ``mp[N]`` for a pattern
    type: str  # ``integer``, ``string``, ``0|1``, ``lxc|qemu``, ``JSON list`` ...
    required: bool
    default: Any
    description: str
    example: str


def suggestions(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The choices closest to a mistyped name, closest first; none when none is close."""
    return difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest choice to a mistyped name, if any is close."""
    close = suggestions(word, choices, n=1)
    return close[0] if close else None


def property_schema(schema: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The schema of ``key``: a named property, or the first ``patternProperties`` entry whose pattern matches."""
    props = schema.get("properties") or {}
    if key in props:
        return dict(props[key])
    for pattern, sub in (schema.get("patternProperties") or {}).items():
        if re.search(pattern, key):
            return dict(sub)
    return None


def _alternatives(prop: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """The schemas a value may match: ``anyOf``/``oneOf`` flattened, ``$ref`` resolved, ``null`` left out."""
    if "$ref" in prop:
        return _alternatives(defs.get(prop["$ref"].rsplit("/", 1)[-1], {}), defs)
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return [alt for sub in prop[key] for alt in _alternatives(sub, defs)]
    if prop.get("type") == "null":
        return []
    return [prop]


def _types(alt: dict[str, Any]) -> list[str]:
    kind = alt.get("type")
    return list(kind) if isinstance(kind, list) else [kind] if isinstance(kind, str) else []


def coerce_form(schema: dict[str, Any], raw: dict[str, str]) -> dict[str, Any]:
    """Form strings -> JSON values by each parameter's type. A string the schema takes as a string stays one
    (``name=123`` is the name "123"); lists and objects are JSON; a key the schema lacks stays a string, for
    ``ToolSpec.parse`` to refuse with a suggestion."""
    defs = schema.get("$defs") or {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        prop = property_schema(schema, key)
        out[key] = value if prop is None else _coerce(value, _alternatives(prop, defs))
    return out


def _coerce(value: str, alts: list[dict[str, Any]]) -> Any:
    if not alts or any("string" in _types(a) for a in alts) or any(value in a.get("enum", ()) for a in alts):
        return value
    for alt in alts:
        for member in alt.get("enum", ()):
            if not isinstance(member, str) and json.dumps(member) == value:
                return member  # enum [0, 1] takes "1" as 1
    for alt in alts:
        for kind in _types(alt):
            if kind == "integer" and _INT.match(value):
                return int(value)
            if kind == "number":
                try:
                    return int(value) if _INT.match(value) else float(value)
                except ValueError:
                    pass
            if kind == "boolean" and value.lower() in _TRUE | _FALSE:
                return value.lower() in _TRUE
            if kind in ("array", "object"):
                try:
                    return json.loads(value)
                except ValueError:
                    pass
    return value  # parse names the field and what it expected


def params_of(schema: dict[str, Any]) -> list[Param]:
    """Every parameter, required ones first, for ``proximo tools TOOL`` and ``--help``."""
    defs = schema.get("$defs") or {}
    required = set(schema.get("required") or [])
    rows = [_param(name, prop, defs, name in required) for name, prop in (schema.get("properties") or {}).items()]
    rows += [_param(_pattern_name(pattern), prop, defs, False) for pattern, prop in (schema.get("patternProperties") or {}).items()]
    return sorted(rows, key=lambda p: not p.required)


def _pattern_name(pattern: str) -> str:
    match = _INDEXED.match(pattern)
    return f"{match.group(1)}[N]" if match else pattern


def _param(name: str, prop: dict[str, Any], defs: dict[str, Any], required: bool) -> Param:
    alts = _alternatives(prop, defs)
    description = str(prop.get("description") or next((a["description"] for a in alts if a.get("description")), ""))
    return Param(name=name, type=type_name(alts), required=required, default=prop.get("default"),
                 description=description, example=_example(name, alts, description))


def type_name(alts: list[dict[str, Any]]) -> str:
    names: list[str] = []
    for alt in alts:
        if "enum" in alt:
            names.append("|".join(str(m) for m in alt["enum"]))
        for kind in _types(alt):
            names.append({"array": "JSON list", "object": "JSON object"}.get(kind, kind))
    if "boolean" in names and "0|1" in names:
        names.remove("boolean")  # PVE's booleans: 0 or 1 (true/false/yes/no work too)
    return " or ".join(dict.fromkeys(names)) or "any"


def _example(name: str, alts: list[dict[str, Any]], description: str) -> str:
    """An example as typed at the command line: the schema's own, a description's "e.g. X", else the one shared
    example of a parameter (``proximo._schema.example_value``, also MCP's describe)."""
    for alt in alts:
        if alt.get("examples"):
            return str(alt["examples"][0])
    if match := re.search(r"e\.g\.\s+([^\s,;)]+)", description):
        return match.group(1)
    for alt in alts:
        value = example_value(name, alt)
        if value is not None:
            return form_text(value)
    return ""


def form_text(value: Any) -> str:
    """A value as key=value takes it: PVE's 0/1 for booleans, JSON for lists and objects."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# msgspec's words -> an operator's
_TYPE_WORDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
               "array": "a JSON list", "object": "a JSON object", "null": "nothing"}
_AT = re.compile(r" - at `\$(?:\.([^`\[]+))?[^`]*`$")


def _words(types: str) -> str:
    return " or ".join(_TYPE_WORDS.get(t.strip(), t.strip()) for t in types.split("|") if t.strip() != "null") or "nothing"


def plain_error(error: msgspec.ValidationError, raw: dict[str, Any], struct: type[msgspec.Struct]) -> str:
    """msgspec's message for ``raw`` not converting to ``struct``, said as an operator would: the field's name
    first, what was expected, and the closest of the struct's names for an unknown one."""
    message = str(error)
    names = [f.encode_name for f in msgspec.structs.fields(struct)]
    at = _AT.search(message)
    field = at.group(1) if at and at.group(1) else ""
    text = message[:at.start()] if at else message
    if m := re.fullmatch(r"Object contains unknown field `(.+)`", text):
        close = suggest(m.group(1), names)
        return f"unknown parameter {m.group(1)!r}" + (f" - did you mean {close!r}?" if close else "")
    if m := re.fullmatch(r"Object missing required field `(.+)`", text):
        return f"missing required parameter {m.group(1)!r}"
    from .trust._ledger import redact  # a password's value is never echoed back, even when it is the wrong type

    value = redact({field: raw.get(field)})[field] if field else None
    shown = "" if value is None else repr(value if len(str(value)) <= 40 else f"{str(value)[:37]}...")
    if m := re.fullmatch(r"Expected `([^`]+)`, got `([^`]+)`", text):
        return f"{field or 'parameters'}: expected {_words(m.group(1))}, got {_words(m.group(2))}" + (f" ({shown})" if shown else "")
    if m := re.fullmatch(r"Expected `str` matching regex '(.+)'", text):
        return f"{field}: {shown or 'the value'} is not valid here (it must match {m.group(1)})"
    if m := re.fullmatch(r"Expected `([^`]+)` (.+)", text):
        return f"{field}: {shown + ' is not ' if shown else 'expected '}{_words(m.group(1))} {m.group(2)}"
    if m := re.fullmatch(r"Invalid enum value (.+)", text):
        return f"{field}: {m.group(1)} is not one of the allowed values"
    return f"{field}: {text}" if field else text
