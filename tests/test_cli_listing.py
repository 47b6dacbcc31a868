"""`proximo --help` lists the commands from a cache (proximo/cli/_listing.py): never a stale or wrong list. A pack
installed, changed, removed or disabled shows at once, and the cached help is the built one, byte for byte."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests._help_probe import OLD, from_cache, help_until_cached, run_help

PACK = '''
import click
import proximo


@proximo.hookimpl
def proximo_register_commands(cli: click.Group) -> None:
    @cli.command("{name}")
    def hello() -> None:
        """{help}"""
'''
METADATA = "Metadata-Version: 2.1\nName: fakepack\nVersion: 0.1\n"


def _install(site: Path, help_text: str, *, name: str = "hello-fake", backdate: bool = True) -> None:
    """A pack as an installer leaves it: its module, and a dist-info whose entry point names it."""
    (site / "fakepack.py").write_text(PACK.format(name=name, help=help_text))
    dist = site / "fakepack-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(METADATA)
    (dist / "entry_points.txt").write_text("[proximo]\nfakepack = fakepack\n")
    if backdate:  # old enough that the list built from it is kept: the next --help is answered from the cache
        for path in (site / "fakepack.py", dist / "METADATA", dist / "entry_points.txt", dist, site):
            os.utime(path, (OLD, OLD))


def test_the_cached_help_is_the_built_help(tmp_path: Path) -> None:
    built, imported = run_help(tmp_path)
    assert not from_cache(imported) and "plan " in built and "token-check" in built
    cached, _ = help_until_cached(tmp_path)
    assert cached == built
    for columns in ("60", "200"):  # each command's short help is cut to the width at each run, as click does
        wide, imported = run_help(tmp_path, COLUMNS=columns)
        assert from_cache(imported)
        assert wide == run_help(tmp_path / "fresh", COLUMNS=columns)[0]


def test_a_pack_installed_changed_disabled_or_removed_shows_at_once(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    os.utime(site, (OLD, OLD))
    env = {"PYTHONPATH": str(site)}
    before, _ = help_until_cached(tmp_path, **env)
    assert "hello-fake" not in before

    _install(site, "Say hello from a fake pack.")
    out, imported = run_help(tmp_path, **env)
    assert not from_cache(imported) and "hello-fake   Say hello from a fake pack." in out
    assert help_until_cached(tmp_path, **env)[0] == out

    # the pack's code changes (a new release, an edit to an editable install): its new command and help show
    _install(site, "Say hello, changed.", name="hello-changed", backdate=False)
    out, _ = run_help(tmp_path, **env)
    assert "hello-changed  Say hello, changed." in out and "hello-fake" not in out

    out, _ = run_help(tmp_path, **env, PROXIMO_DISABLED_PACKS="storage, fakepack")
    assert "hello-changed" not in out and "token-check" in out
    assert "hello-changed" in run_help(tmp_path, **env)[0]

    (site / "fakepack.py").unlink()
    shutil.rmtree(site / "fakepack-0.1.dist-info")
    out, _ = run_help(tmp_path, **env)
    assert "hello-" not in out and out == before
