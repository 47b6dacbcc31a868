"""The lexical half of PVE::JSONSchema::parse_property_string, with its exact error texts.

A property string is ``key=value`` pairs separated by commas (``local-zfs:vm-104-disk-0,size=32G,iothread=1``);
a value without a key belongs to the format's ``default_key``; an ``alias`` key is stored under its target, and
a ``keyAlias`` key also stores its own name under another key (``virtio=BC:24:...`` is ``model=virtio`` and
``macaddr=BC:24:...``). Values of boolean keys are read with parse_boolean. This module only splits; checking
the values against the format is ``proximo.pve._apischema``'s, and the model's drive parsers use the same split.

After pve-common src/PVE/JSONSchema.pm ``parse_property_string`` and ``parse_boolean``, as each supported PVE
release ships it (``QUIRKS``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import msgspec


class PropertyStringError(ValueError):
    """What parse_property_string dies with (the text, without its newline)."""


class Quirks(msgspec.Struct, frozen=True):
    """How one release's pve-common splits a property string, where releases differ."""

    # "key '$k' is already defined (via alias)": a key given after its alias no longer overwrites it
    # (pve-common 5d84387, 2026-03-26, "schema: parse_property_string: detect alias conflicts")
    alias_conflicts: bool = True
    # a bare value for a boolean default key goes through parse_boolean too (pve-common ac547b8, 2025-09-12,
    # "JSONSchema: property strings: consistently handle default_key of type boolean")
    boolean_default_key: bool = True


# PVE 8.4 runs pve-common from the stable-bookworm branch (8.3.8 at 9196280), which has neither change.
QUIRKS: dict[str, Quirks] = {"8.4": Quirks(alias_conflicts=False, boolean_default_key=False), "9.1": Quirks()}

_KEY_VALUE = re.compile(r"([^=]+)=(.+)")
_TRUE = re.compile(r"1|on|yes|true", re.IGNORECASE)
_FALSE = re.compile(r"0|off|no|false", re.IGNORECASE)


def parse_boolean(value: str) -> str | None:
    """PVE::JSONSchema::parse_boolean: "1" or "0", or None for anything else."""
    if _TRUE.fullmatch(value):
        return "1"
    if _FALSE.fullmatch(value):
        return "0"
    return None


def perl_true(value: str | None) -> bool:
    """Perl's truth of a string: not undef, not empty, not "0"."""
    return value not in (None, "", "0")


def split_property_string(value: str, *, default_key: str | None, aliases: Mapping[str, str] | None = None,
                          key_aliases: Mapping[str, str] | None = None, booleans: Collection[str] = (),
                          quirks: Quirks = QUIRKS["9.1"]) -> dict[str, str]:
    """``a=b,c=d`` to ``{"a": "b", "c": "d"}``, keys resolved through ``aliases`` (written key -> target) and
    ``key_aliases`` (written key -> the key that records it); PropertyStringError as parse_property_string dies.

    Kept on purpose, as Proxmox has it: the duplicate check looks at the key as written, before its alias is
    resolved; a bare value is refused when the default key already holds a true value, and replaces a false one.
    """
    aliases = aliases or {}
    key_aliases = key_aliases or {}
    result: dict[str, str] = {}
    bare_value_seen = False
    for part in value.split(","):
        if not part.strip():
            continue
        if match := _KEY_VALUE.fullmatch(part):
            key, val = match.groups()
            if key in result:
                raise PropertyStringError(f"duplicate key in comma-separated list property: {key}")
            target = aliases.get(key)
            if target is not None:
                if (recorded := key_aliases.get(key)) is not None:
                    if recorded in result:
                        raise PropertyStringError(f"key alias '{recorded}' is already defined")
                    result[recorded] = key
                if quirks.alias_conflicts and target in result:
                    raise PropertyStringError(f"key '{target}' is already defined (via alias)")
                key = target
            result[key] = (parse_boolean(val) or val) if key in booleans else val
        elif "=" not in part:
            if bare_value_seen:
                raise PropertyStringError(f"duplicate key in comma-separated list property: {default_key}")
            if default_key is None:
                raise PropertyStringError("value without key, but schema does not define a default key")
            bare_value_seen = True
            if perl_true(result.get(default_key)):
                raise PropertyStringError(f"duplicate key in comma-separated list property: {default_key}")
            boolean = quirks.boolean_default_key and default_key in booleans
            result[default_key] = (parse_boolean(part) or part) if boolean else part
        else:
            raise PropertyStringError("missing key in comma-separated list property")
    return result
