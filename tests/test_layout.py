"""The layout shows the architecture, and the imports keep to it: no circles, faces above the host.

    faces       proximo.cli (the launcher: it starts the others), proximo.mcp, proximo.a2a, proximo.service,
                proximo.console (the service runs it too)
    host        proximo._host, _world, _plugins, _tools, _render, _settings, ... and proximo.trust
    below       proximo.pve (talking to Proxmox), proximo.model, proximo.sim
    packs       plugins/*/proximo_*: proximo's public API, its model, the schema (proximo.pve), proximo.cli for commands

Every import counts, function-level ones included (a lazy import is still a dependency); only those under
``if TYPE_CHECKING:`` are left out.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FACES = ("proximo.cli", "proximo.mcp", "proximo.a2a", "proximo.service", "proximo.console")
BELOW_THE_FACES = ("proximo.trust", "proximo.pve", "proximo.model", "proximo.sim", "proximo._")


def _module_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    roots = [REPO / "proximo", *sorted(p for p in (REPO / "plugins").glob("*/proximo_*") if p.is_dir())]
    for root in roots:
        for file in root.rglob("*.py"):
            parts = list(file.relative_to(root.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = file
    return found


MODULES = _module_files()


def _imports(name: str, file: Path) -> set[str]:
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                submodules = [f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in MODULES]
                found.update(submodules)
                if len(submodules) < len(node.names):
                    found.add(module)
            for field in ("body", "orelse", "handlers", "finalbody"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    visit(inner)

    visit(ast.parse(file.read_text()).body)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, file) for name, file in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            strong(v)
    return found


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".") or (package.endswith("._") and name.startswith(package))


def test_the_scan_sees_every_package() -> None:
    assert {"proximo.trust._pipeline", "proximo.pve._client", "proximo.cli", "proximo.mcp", "proximo_guests._semantics",
            "proximo_acl._tools"} <= set(MODULES)
    assert "proximo.trust._ledger" in GRAPH["proximo.trust._pipeline"]  # relative imports are resolved


def test_no_import_circles() -> None:
    assert _cycles() == []


def test_no_face_imports_another_but_the_launcher_starts_them() -> None:
    for name, imported in GRAPH.items():
        face = next((f for f in FACES if _in(name, f)), None)
        if face is None:
            continue
        others = {m for m in imported if any(_in(m, f) for f in FACES if f != face)}
        if face == "proximo.cli":  # `proximo serve` and `proximo service` start the other faces
            others = {m for m in others if not _in(m, "proximo.cli")}
            assert all(m in ("proximo.mcp", "proximo.service", "proximo.console") for m in others), (name, others)
        elif face == "proximo.service":  # the service serves the console itself, as its own account, with its host
            assert others <= {"proximo.console"}, f"{name} imports another face: {sorted(others)}"
        else:
            assert others == set(), f"{name} imports another face: {sorted(others)}"


def test_nothing_below_the_faces_imports_a_face() -> None:
    for name, imported in GRAPH.items():
        if any(_in(name, f) for f in FACES) or not name.startswith("proximo.") or name == "proximo.__main__":
            continue  # (``python -m proximo`` is the launcher's own entry)
        faces = sorted(m for m in imported if any(_in(m, f) for f in FACES))
        assert faces == [], f"{name} imports a face: {faces}"


def test_packs_use_only_proximos_public_api_and_model() -> None:
    allowed = ("proximo", "proximo.model", "proximo.params", "proximo.pve", "proximo.cli", "proximo.testing")
    for name, imported in GRAPH.items():
        if name.startswith("proximo."):
            continue
        if not name.startswith("proximo_"):
            continue
        host = sorted(m for m in imported if m.startswith("proximo.") or m == "proximo")
        private = [m for m in host if not any(m == a or (a == "proximo.model" and m.startswith("proximo.model.")) for a in allowed)]
        assert private == [], f"{name} reaches into the host: {private}"


def test_building_the_cli_imports_neither_the_http_stack_nor_the_pipeline() -> None:
    """`proximo --help` (issue 14: start-up) builds the whole command tree; the HTTP client, the pipeline and the host
    are imported when a command runs, not before (bench/bench_cli_start.py measures what that saves)."""
    import subprocess
    import sys

    probe = ("import sys, proximo.cli; proximo.cli.build_cli(); "
             "print(sorted(m for m in ('httpx', 'httpcore', 'proximo.trust._pipeline', 'proximo._host') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_help_from_the_command_cache_imports_only_click(tmp_path: Path) -> None:
    """`proximo --help` with the command list cached (proximo/cli/_listing.py): no pack, no pluggy, msgspec or rich,
    nothing beyond click and the standard library (issue 14: start-up under 0.15 s)."""
    from tests._help_probe import help_until_cached

    _, imported = help_until_cached(tmp_path)
    outside = sorted({m.partition(".")[0] for m in imported} - set(sys.stdlib_module_names) - {"click", "proximo", "__main__"})
    assert outside == [], outside
    assert not {"proximo._plugins", "proximo._settings", "proximo.cli._common", "proximo.model", "proximo._tools"} & set(imported)


def test_an_offline_plan_imports_no_http_stack(tmp_path: Path) -> None:
    """`proximo plan --snapshot` sends no request: the HTTP client (httpx, the PVE client, TLS) is not imported."""
    import subprocess

    import json

    from proximo.sim import demo_snapshot

    snapshot = tmp_path / "demo.json"
    snapshot.write_text(json.dumps(demo_snapshot()))
    probe = ("import sys; "
             f"sys.argv = ['proximo', 'plan', 'guest.stop', 'vmid=104', '--snapshot', {str(snapshot)!r}, '--json']; "
             "from proximo.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('httpx', 'httpcore', 'proximo.pve._client', 'proximo.pve._tls') if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin", "PROXIMO_HOME": str(tmp_path / "home")})
    assert '"plan_id"' in done.stdout, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr
