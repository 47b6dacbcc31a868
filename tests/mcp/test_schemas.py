"""What ``tools/list`` costs a client, and what its schemas say: every property described and typed, indexed options
as one pattern with their exact range, the sizes under the goals docs/mcp.md states (measured in-process through the
SDK's own client, as ``scripts/mcp_sizes.py`` measures them), and every schema valid JSON Schema (2020-12).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from _mcp_support import anyio_backend  # noqa: F401
from _pve_data import script
from proximo._schema import first_sentence, index_range, input_schema
from proximo.mcp._compact import example
from proximo.testing import World

REPO = Path(__file__).resolve().parents[2]
# Issue 13's goals: compact under 4,000 bytes; full under 100,000 for the 80 tools of its five packs (1,250 a tool:
# a pack added since keeps that average), and no tool over 8,000.
COMPACT_GOAL, FULL_GOAL, TOOL_GOAL = 4_000, 100_000, 8_000
ISSUE_13_PACKS, ISSUE_13_TOOLS = ("core", "storage", "guests", "firewall", "acl"), 80


SIZES = script("mcp_sizes")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("sizes"))  # every built-in pack, nothing else


@pytest.fixture(scope="module")
def listed(world: World) -> dict[str, tuple[Any, list[dict[str, Any]]]]:
    import anyio

    async def each() -> dict[str, tuple[Any, list[dict[str, Any]]]]:
        return {name: await SIZES.measure(world, name, settings) for name, settings in SIZES.VARIANTS.items()}

    return anyio.run(each)


def properties(schema: dict[str, Any], where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every property schema in ``schema``: named, by pattern, in ``$defs``, and inside object properties."""
    found: list[tuple[str, dict[str, Any]]] = []
    for group in ("properties", "patternProperties"):
        for name, prop in schema.get(group, {}).items():
            found.append((f"{where}{name}", prop))
            if prop.get("type") == "object":
                found += properties(prop, f"{where}{name}.")
    for name, definition in schema.get("$defs", {}).items():
        found += properties(definition, f"{where}$defs.{name}.")
    return found


TYPED = ("type", "enum", "anyOf", "$ref", "const")


def test_every_property_of_every_tool_is_described_and_typed(listed: dict[str, Any]) -> None:
    for variant in ("full", "compact"):
        _, tools = listed[variant]
        for tool in tools:
            for name, prop in properties(tool["inputSchema"]):
                assert prop.get("description"), f"{variant}: {tool['name']}.{name} has no description"
                assert any(key in prop for key in TYPED), f"{variant}: {tool['name']}.{name} is untyped: {prop}"
                for option in prop.get("anyOf", []):
                    assert any(key in option for key in TYPED), f"{tool['name']}.{name}: untyped anyOf option"


def test_sizes_are_under_the_goals(listed: dict[str, Any], world: World) -> None:
    size = {name: found[0] for name, found in listed.items()}
    registry = list(world.packs.tools)
    assert size["compact"].bytes < COMPACT_GOAL and size["compact"].tools == 8
    assert size["compact read-only"].bytes < size["compact"].bytes and size["compact read-only"].tools == 5
    assert size["full"].tools == len(registry) + 4
    assert size["full"].bytes < FULL_GOAL / ISSUE_13_TOOLS * size["full"].tools
    _, full = listed["full"]
    newer = {"pve_" + t.id.replace(".", "_") for t in registry if t.owner not in ISSUE_13_PACKS}
    original = [t for t in full if t["name"] not in newer]  # the five packs' tools and the face's own
    assert len(original) == ISSUE_13_TOOLS
    assert SIZES.encoded({"tools": original}) < FULL_GOAL
    assert size["full read-only"].tools == sum(not t.mutating for t in registry) + 2
    for variant in SIZES.VARIANTS:
        assert size[variant].largest_bytes <= TOOL_GOAL, (variant, size[variant].largest, size[variant].largest_bytes)


def test_no_output_schema_but_one_plan_schema_resource(listed: dict[str, Any]) -> None:
    _, tools = listed["full"]
    assert not [t["name"] for t in tools if "outputSchema" in t]


def test_every_schema_is_valid_json_schema(listed: dict[str, Any]) -> None:
    """In-process, beside the Inspector's --strict run (test_inspector.py): each inputSchema is a valid 2020-12 schema."""
    for variant in ("full", "compact"):
        for tool in listed[variant][1]:
            jsonschema.Draft202012Validator.check_schema(tool["inputSchema"])


def test_describe_examples_meet_the_schema_they_come_with(world: World) -> None:
    for spec in world.packs.tools:
        jsonschema.Draft202012Validator(spec.input_schema()).validate(example(spec).params)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 8, 10, 11, 14, 16, 30, 31, 32, 99, 100, 101, 256, 1000, 1234])
def test_index_range_matches_exactly_0_to_count(count: int) -> None:
    rx = re.compile(f"^{index_range(count)}$")
    assert [n for n in range(3000) if rx.match(str(n))] == list(range(count))
    assert not any(rx.match(s) for s in ("00", "01", "007", "-1", "1.0", "\u0661"))  # no leading zero, no other digits


def test_indexed_options_are_one_pattern_and_the_struct_still_decides(world: World, listed: dict[str, Any]) -> None:
    spec = world.packs.tools.get("guest.config.set")
    shown = next(t for t in listed["full"][1] if t["name"] == spec.mcp_name)["inputSchema"]
    assert not [name for name in shown["properties"] if re.fullmatch(r"(mp|net|scsi|ide|virtio|sata|unused)[0-9]+", name)]
    mp = next(pattern for pattern in shown["patternProperties"] if pattern.startswith("^mp"))
    assert re.match(mp, "mp255") and not re.match(mp, "mp256") and not re.match(mp, "mp07")
    assert shown["patternProperties"][mp]["type"] == "string" and shown["patternProperties"][mp]["description"]
    check = jsonschema.Draft202012Validator(shown)
    assert check.is_valid({"vmid": 104, "mp255": "local-zfs:8,mp=/srv", "net31": "virtio,bridge=vmbr0"})
    assert not check.is_valid({"vmid": 104, "mp256": "x"}) and not check.is_valid({"vmid": 104, "net32": "x"})
    spec.parse({"vmid": 104, "mp255": "local-zfs:8,mp=/srv"})  # the struct takes each name, as before
    with pytest.raises(Exception, match="mp256"):
        spec.parse({"vmid": 104, "mp256": "x"})


def test_pve_descriptions_and_types_for_what_msgspec_left_untyped(world: World) -> None:
    status = world.packs.tools.get("guest.config.set").input_schema()["properties"]
    assert status["memory"] == {"description": "Memory properties", "anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert status["cores"]["type"] == "integer"  # VMs and containers disagree on its bounds, not its type
    resize = world.packs.tools.get("guest.disk.resize").input_schema()["properties"]["disk"]
    assert resize["type"] == "string" and re.match(resize["pattern"], "mp255") and re.match(resize["pattern"], "scsi30")
    assert not re.match(resize["pattern"], "scsi31") and re.match(resize["pattern"], "rootfs")
    create = world.packs.tools.get("storage.create").input_schema()["properties"]
    assert create["content"]["description"] == "Allowed content types"
    assert create["nodes"]["description"] == "List of nodes for which the storage configuration applies"


def test_full_lists_cut_descriptions_to_fit_and_describe_keeps_them(world: World) -> None:
    spec = world.packs.tools.get("guest.config.set")
    whole, fitted = spec.input_schema(), input_schema(spec.params, 7_400)
    assert whole["properties"]["ostype"]["description"] == "Specify guest operating system"
    assert len(fitted["properties"]["ostype"]["description"]) <= 24 and set(fitted["properties"]) == set(whole["properties"])
    assert len(msgspec.json.encode(fitted)) <= 7_400 < len(msgspec.json.encode(whole))
    small = world.packs.tools.get("storage.delete")
    assert input_schema(small.params, 7_400) == small.input_schema()  # only the largest tools are cut


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("Specify guest operating system. This is used to enable special optimization.", 100, "Specify guest operating system"),
    ("Use e.g. 'local'. Next.", 100, "Use e.g. 'local'"),
    ("The (unique) ID of the VM.", 12, "ID of VM"),
    ("Amount of target RAM for the VM in MiB.", 20, "Amount of target\u2026"),
    ("Line one\n  continues here.", 100, "Line one continues here"),
])
def test_first_sentence(text: str, limit: int, expected: str) -> None:
    assert first_sentence(text, limit) == expected


def test_the_descriptions_file_is_what_the_script_makes() -> None:
    generator = script("gen_param_descriptions")
    committed = (REPO / "proximo" / "pve" / "_data" / "pve-api-descriptions.json.gz").read_bytes()
    assert committed == generator.generate(), "stale: run scripts/gen_param_descriptions.py"
