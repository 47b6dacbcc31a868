"""Hostile and random input, generated (hypothesis), through every tool of the host's registry and ``api.call``, in
process, through the CLI and through the MCP face: a clean refusal or a valid plan, never anything else.

For every generated call:
- the answer is a plan, a read's answer, or a ProximoError (one line, no traceback): nothing else escapes;
- nothing is written to the simulator (planning and reading never write);
- every request that reached the simulator is a route of its API, without ``..`` or NUL (no path outside the
  endpoint the tool means);
- a refused input reaches the simulator nowhere: no request path carries a hostile value that was refused;
- every planned step is a route of the API, and a plan is what ``check_api_path`` accepts.

The example counts are moderate (the ``proximo`` hypothesis profile, ``conftest.py``); ``PROXIMO_HYPOTHESIS_EXAMPLES``
raises them for a long run, and ``bench/security_figures.py`` counts what a run generated.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest
from click.testing import CliRunner
from hypothesis import given, note, settings
from hypothesis import strategies as st
from _loopback import serve

from proximo import ApiCall, Plan
from proximo.cli import build_cli
from proximo.errors import ProximoError
from proximo.pve._calls import check_api_path
from proximo.testing import TOKEN_ID, World

from _hostile import EXAMPLES, FIGURES, HOSTILE_TEXT, hostile_marker, hostile_values, plausible, plausible_value

# --- the world every example of a test shares (one host, one simulator: an example costs a plan, not a start-up)


@contextmanager
def hosted(tmp_path: Path) -> Iterator[tuple[World, Any, Any]]:
    world = World(tmp_path, env={"PROXIMO_PLAN_READ_AGE": "300"})  # a plan reuses the read: examples stay cheap
    with anyio.from_thread.start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(world.host()) as host:
            yield world, host, portal


def tool_ids(world: World) -> list[str]:
    return sorted(t.id for t in world.packs.tools)


def check_requests(world: World, since: int, raw: Any, refused: bool) -> None:
    """What reached the simulator since request number ``since``: reads only, routes of the API, and (for a refused
    input) none that carries a hostile value of it."""
    api = world.sim._model.api
    hostile = [v for v in _strings(raw) if hostile_marker(v)]
    for method, path in world.sim.requests[since:]:
        assert method == "GET", f"a plan or a read wrote: {method} {path}"
        assert "\x00" not in path and "/../" not in path + "/" and api.match(path) is not None, path
        if refused:
            assert not any(v in path for v in hostile), f"a refused value reached Proxmox: {path}"


def check_plan(world: World, plan: Plan) -> None:
    api = world.sim._model.api
    for step in plan.steps:
        if isinstance(step, ApiCall):
            check_api_path(step.path)
            assert api.match(step.path) is not None, step.path


def check_refusal(exc: BaseException) -> None:
    assert isinstance(exc, ProximoError), f"{type(exc).__name__}: {exc}"
    text = str(exc)
    assert text and "Traceback" not in text and len(text) < 4000, text


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value[:50]:
            yield from _strings(v)


@st.composite
def tool_call(draw: st.DrawFn, ids: list[str], world: World) -> tuple[str, dict[str, Any]]:
    """A tool of the registry, and parameters: each of its own, left out, plausible or hostile; sometimes a stray key."""
    tool_id = draw(st.sampled_from(ids))
    props = list(world.packs.tools.get(tool_id).input_schema().get("properties", {}))
    params: dict[str, Any] = {}
    for name in props:
        choice = draw(st.sampled_from(["omit", "plausible", "hostile", "hostile"]))
        if choice == "plausible":
            params[name] = draw(plausible(name))
        elif choice == "hostile":
            params[name] = draw(hostile_values())
    if draw(st.integers(0, 9)) == 0:
        params[draw(st.sampled_from(HOSTILE_TEXT))] = draw(hostile_values())
    return tool_id, params


def run_in_process(world: World, host: Any, portal: Any, tool_id: str, raw: dict[str, Any]) -> None:
    since = len(world.sim.requests)
    mutating = world.packs.tools.get(tool_id).mutating
    FIGURES["cases"] += 1
    try:
        answer = portal.call(host.plan if mutating else host.read, tool_id, raw, world.actor)
    except BaseException as exc:  # the check says which ones are clean
        check_refusal(exc)
        FIGURES["refusals"] += 1
        check_requests(world, since, raw, refused=True)
        return
    if mutating:
        check_plan(world, answer)
    check_requests(world, since, raw, refused=False)


TRAVERSALS = ["..", "../x", "%2e%2e", "%2F", "a/b", "\x00", "１０５", "lоcal-zfs"]


def path_parameters(world: World, tool_id: str) -> list[str]:
    """The parameters of a tool that become part of a PVE path: the placeholders of the endpoints it mirrors."""
    import re

    spec = world.packs.tools.get(tool_id)
    templates = [t for _, t in getattr(spec.params, "__pve_endpoints__", ())]
    props = set(spec.input_schema().get("properties", {}))
    return sorted({name for t in templates for name in re.findall(r"{(\w+)}", t)} & props)


def test_every_id_of_every_tool_refuses_traversal_and_confusables(tmp_path: Path) -> None:
    """Not drawn but swept: each parameter that becomes part of a path (every id) of each tool of the registry, set
    to each traversal, encoding, NUL, unicode digit and confusable above; the other parameters plausible."""
    with hosted(tmp_path) as (world, host, portal):
        swept = 0
        for tool_id in tool_ids(world):
            props = list(world.packs.tools.get(tool_id).input_schema().get("properties", {}))
            base = {name: plausible_value(name) for name in props}
            for name in path_parameters(world, tool_id):
                for value in TRAVERSALS:
                    run_in_process(world, host, portal, tool_id, {**base, name: value})
                    swept += 1
        assert swept > 300 and [r for r in world.sim.requests if r[0] != "GET"] == []


def test_every_tool_of_the_registry_refuses_hostile_input_cleanly(tmp_path: Path) -> None:
    with hosted(tmp_path) as (world, host, portal):
        ids = tool_ids(world)

        @settings(max_examples=EXAMPLES * 5 // 2)  # the registry has 104 tools: more draws
        @given(call=tool_call(ids, world))
        def every_tool(call: tuple[str, dict[str, Any]]) -> None:
            note(repr(call))
            run_in_process(world, host, portal, *call)

        every_tool()
        assert [r for r in world.sim.requests if r[0] != "GET"] == []


API_TEMPLATES = ["/nodes/{x}/qemu/105/config", "/nodes/pve1/qemu/{x}/config", "/storage/{x}", "/nodes/pve1/lxc/{x}/status/start",
                 "/access/acl{x}", "/cluster/firewall/rules/{x}", "/pools/{x}", "/{x}", "/nodes/pve1/{x}/105/config",
                 "/nodes/pve1/storage/{x}/content/{x}"]


@st.composite
def api_call(draw: st.DrawFn) -> dict[str, Any]:
    piece = draw(st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=12)))
    template = draw(st.sampled_from(API_TEMPLATES))
    call: dict[str, Any] = {"method": draw(st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "put", "", ".."])),
                            "path": draw(st.one_of(st.just(template.replace("{x}", piece)), hostile_values()))}
    if draw(st.booleans()):
        call["params"] = draw(st.one_of(st.dictionaries(st.sampled_from(["description", "delete", "digest", "..", "a/b"]),
                                                        hostile_values(), max_size=3), hostile_values()))
    return call


def test_api_call_never_plans_a_path_outside_the_api(tmp_path: Path) -> None:
    with hosted(tmp_path) as (world, host, portal):
        @given(raw=api_call())
        def through_api_call(raw: dict[str, Any]) -> None:
            note(repr(raw))
            run_in_process(world, host, portal, "api.call", raw)

        through_api_call()


def _cli_value(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


@pytest.mark.parametrize("kind", ["plan", "read"])
def test_the_cli_refuses_hostile_input_in_one_line(tmp_path: Path, kind: str) -> None:
    world = World(tmp_path / "world")
    mutating = kind == "plan"
    ids = [t.id for t in sorted(world.packs.tools, key=lambda t: t.id) if t.mutating is mutating]
    with serve(world.sim.app) as url:
        env = {"PROXIMO_URL": url, "PROXIMO_TOKEN_ID": TOKEN_ID, "PROXIMO_TOKEN_SECRET": world.secret,
               "PROXIMO_HOME": str(tmp_path / "home"), "PROXIMO_PLAN_READ_AGE": "300"}

        @settings(max_examples=max(5, EXAMPLES * 3 // 8))  # a CLI run and a cluster read each: fewer, the same checks
        @given(call=tool_call(ids, world))
        def through_the_cli(call: tuple[str, dict[str, Any]]) -> None:
            tool_id, raw = call
            args = [f"{k}={_cli_value(v)}" for k, v in raw.items() if isinstance(k, str) and "\x00" not in k + _cli_value(v)]
            note(repr(args))
            since = len(world.sim.requests)
            FIGURES["cases"] += 1
            result = CliRunner().invoke(build_cli(), [kind, tool_id, *args], env=env)
            assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
            assert "Traceback" not in result.output
            if result.exit_code != 0:
                FIGURES["refusals"] += 1
                lines = result.stderr.strip().splitlines()
                assert result.exit_code in (1, 2, 3) and len(lines) == 1 and lines[0].startswith("proximo: "), result.stderr
            check_requests(world, since, raw, refused=result.exit_code != 0)

        through_the_cli()


def test_the_mcp_face_refuses_hostile_input_in_one_line(tmp_path: Path) -> None:
    from mcp import Client

    from proximo.mcp import McpSettings, build_server

    world = World(tmp_path, env={"PROXIMO_PLAN_READ_AGE": "300"})
    server = build_server(world.host, McpSettings(toolset="full"), tools=world.packs.tools)
    ids = tool_ids(world)
    with anyio.from_thread.start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(Client(server)) as client:
            @given(call=tool_call(ids, world))
            def through_mcp(call: tuple[str, dict[str, Any]]) -> None:
                tool_id, raw = call
                note(repr(call))
                since = len(world.sim.requests)
                FIGURES["cases"] += 1
                result = portal.call(client.call_tool, world.packs.tools.get(tool_id).mcp_name, raw)
                text = "\n".join(getattr(c, "text", "") for c in result.content)
                assert "Traceback" not in text
                if result.is_error:
                    FIGURES["refusals"] += 1
                    assert text.strip(), "an error without a message"
                check_requests(world, since, raw, refused=bool(result.is_error))

            through_mcp()
    assert [r for r in world.sim.requests if r[0] != "GET"] == []
