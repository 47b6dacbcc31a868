"""docs/hooks.md documents every hookspec with its exact arguments, and every hook is exercised by a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from proximo import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, fn in vars(hookspecs).items() if name.startswith("proximo_") and callable(fn))


def test_there_are_hooks() -> None:
    assert {"proximo_register_tools", "proximo_plan", "proximo_impact", "proximo_undo", "proximo_prove"} <= set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_heading_with_its_arguments(name: str) -> None:
    doc = (ROOT / "docs" / "hooks.md").read_text()
    args = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert f"## {name}({args})" in doc


def test_no_heading_documents_a_hook_that_does_not_exist() -> None:
    doc = (ROOT / "docs" / "hooks.md").read_text()
    assert sorted(re.findall(r"^## (proximo_\w+)\(", doc, re.M)) == HOOKS


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_implemented_by_some_test_or_pack(name: str) -> None:
    sources = [p for p in [*ROOT.glob("plugins/*/**/*.py"), *ROOT.glob("tests/**/*.py")] if p.name != "test_hooks_doc.py"]
    assert any(f"def {name}(" in p.read_text() for p in sources), f"no pack or test implements {name}"


@pytest.mark.parametrize("name", HOOKS)
def test_every_hookspec_has_a_docstring(name: str) -> None:
    assert (getattr(hookspecs, name).__doc__ or "").strip()
