"""``key=value`` read by the JSON schema (``proximo._form``), as a face reads form strings: by each parameter's type,
named properties and ``patternProperties`` (``mp[N]``) alike; and the host's guard on every pack's analyser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import proximo
from proximo._form import coerce_form, params_of, suggest
from proximo.errors import PackError
from proximo.testing import World

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "vmid": {"type": "integer", "minimum": 100, "description": "guest id"},
        "name": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "disable": {"anyOf": [{"type": "boolean"}, {"enum": [0, 1]}, {"type": "null"}], "default": None},
        "onboot": {"type": "boolean"},
        "ratio": {"type": "number"},
        "kind": {"enum": ["lxc", "qemu"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "params": {"type": "object"},
        "memory": {},
        "limits": {"$ref": "#/$defs/Limits"},
    },
    "patternProperties": {"^mp[0-9]+$": {"type": "string", "description": "a mount point, e.g. local-zfs:8"}},
    "required": ["vmid"],
    "$defs": {"Limits": {"type": "object"}},
}


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("vmid", "104", 104),
    ("name", "123", "123"),  # the schema takes a string: it stays one
    ("disable", "1", 1),  # enum [0, 1]
    ("disable", "true", True),
    ("onboot", "yes", True),
    ("onboot", "off", False),
    ("ratio", "0.5", 0.5),
    ("ratio", "2", 2),
    ("kind", "qemu", "qemu"),
    ("tags", '["a", "b"]', ["a", "b"]),
    ("params", '{"content": "iso"}', {"content": "iso"}),
    ("limits", '{"cpu": 2}', {"cpu": 2}),  # through $ref
    ("memory", "1024", "1024"),  # any type: the form string, as Proxmox takes it
    ("mp3", "local-zfs:8", "local-zfs:8"),  # a patternProperties key
    ("vmid", "web-01", "web-01"),  # not an integer: left for parse to refuse, naming the field
    ("tags", "not json", "not json"),
    ("nosuch", "1", "1"),  # unknown: parse refuses it with a suggestion
])
def test_values_are_coerced_by_the_schema_type(key: str, value: str, expected: Any) -> None:
    got = coerce_form(SCHEMA, {key: value})[key]
    assert got == expected and type(got) is type(expected)


def test_params_of_lists_required_first_and_names_patterns() -> None:
    rows = {p.name: p for p in params_of(SCHEMA)}
    assert params_of(SCHEMA)[0].name == "vmid" and rows["vmid"].required and rows["vmid"].example == "104"  # the demo's guest (proximo._schema.example_value)
    assert rows["mp[N]"].type == "string" and rows["mp[N]"].example == "local-zfs:8"
    assert rows["disable"].type == "0|1" and rows["disable"].example == "1"
    assert rows["kind"].type == "lxc|qemu" and rows["tags"].type == "JSON list" and rows["limits"].type == "JSON object"
    assert rows["memory"].type == "any" and not rows["name"].required


def test_suggest_only_what_is_close() -> None:
    assert suggest("storge", ["storage", "node"]) == "storage"
    assert suggest("zzz", ["storage", "node"]) is None


class BrokenAnalyser:
    @proximo.hookimpl
    def proximo_impact(self, change: Any, before: Any, after: Any) -> list[Any]:
        return [1 / 0]


@pytest.mark.anyio
async def test_an_analyser_failing_names_its_pack(tmp_path: Path) -> None:
    world = World(tmp_path, extra_packs=[("broken", BrokenAnalyser())])
    async with world.host() as host:
        with pytest.raises(PackError, match=r"^pack 'broken' failed in its analyser, judging storage.delete: ZeroDivisionError"):
            await host.plan("storage.delete", {"storage": "local-zfs"}, world.actor)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_a_refused_secret_is_not_echoed(tmp_path: Path) -> None:
    from proximo.errors import BadInput

    world = World(tmp_path)
    tool = world.packs.tools.get("storage.create")
    with pytest.raises(BadInput) as refused:
        tool.parse({"storage": "pbs1", "type": "pbs", "password": 424242})
    assert str(refused.value).startswith("storage.create: password: expected a string, got an integer")
    assert "424242" not in str(refused.value)
    with pytest.raises(BadInput, match=r"storage: expected a string, got an integer \(7\)"):  # others are shown
        tool.parse({"storage": 7, "type": "dir"})
