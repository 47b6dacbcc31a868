"""The only code that calls ``pm.hook``: a typed facade over pluggy's PluginManager (tox 4's habit).

Built-in packs are found through the ``proximo`` entry point group like any third-party pack. Dispatch to
an owning pack goes through a hook caller that holds only that pack, so another pack's wrapper cannot
intercept, swallow or answer first; collecting hooks are called pack by pack for the same reason.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from importlib import metadata
from typing import Any

import click
import msgspec
import pluggy

from . import hookspecs
from ._guard import pack_code
from ._tools import ToolRegistry, ToolSpec
from ._types import Draft, Impact, Irreversible, Step
from ._settings import Settings
from .errors import PackError
from .model import ClusterModel, SemanticsRegistry, check_nothing_unread_asked

log = logging.getLogger("proximo.plugins")

ENTRY_POINT_GROUP = "proximo"


class PackInfo(msgspec.Struct, frozen=True):
    name: str
    distribution: str
    version: str
    tools: list[str]
    semantics: list[str]


@functools.cache
def _entry_points() -> tuple[metadata.EntryPoint, ...]:
    """The installed packs, by name: scanning every distribution's metadata costs tens of milliseconds, and a
    command builds its pack manager more than once (the CLI's own commands, then its host)."""
    return tuple(sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name))


class PackManager:
    """Loads packs and calls their hooks. Build one per host; nothing here is module-global."""

    def __init__(self, *, disabled: Iterable[str] = (), load_entry_points: bool = True, extra: Iterable[tuple[str, object]] = ()) -> None:
        self._pm = pluggy.PluginManager("proximo")
        self._pm.add_hookspecs(hookspecs)
        self._dists: dict[str, tuple[str, str]] = {}
        self.disabled = sorted({d.strip() for d in disabled if d.strip()})
        for name in self.disabled:
            self._pm.set_blocked(name)
        if load_entry_points:
            self._load_entry_points()
        for name, pack in extra:
            self._register(pack, name, ("(inline)", ""))
        self._pm.check_pending()
        self.tools = ToolRegistry()
        self.semantics = SemanticsRegistry()
        for name, plugin in self._plugins():
            self._call_one(plugin, "proximo_register_tools", register=self.tools.registrar(name))
            self._call_one(plugin, "proximo_register_semantics", register=self.semantics.registrar(name))

    def _load_entry_points(self) -> None:
        seen: dict[str, str] = {}
        for ep in _entry_points():
            dist = ep.dist.name if ep.dist else "?"
            if ep.name in seen:
                raise PackError(f"two distributions register the pack name {ep.name!r}: {seen[ep.name]} and {dist}")
            seen[ep.name] = dist
            if self._pm.is_blocked(ep.name):
                continue
            self._register(ep.load(), ep.name, (dist, ep.dist.version if ep.dist else ""))

    def _register(self, pack: object, name: str, dist: tuple[str, str]) -> None:
        if self._pm.is_blocked(name):
            return
        if self._pm.get_plugin(name) is not None:
            raise PackError(f"pack {name!r} is registered twice")
        self._pm.register(pack, name=name)
        self._dists[name] = dist

    def _plugins(self) -> list[tuple[str, object]]:
        return sorted(((name, plugin) for name, plugin in self._pm.list_name_plugin() if plugin is not None), key=lambda np: np[0])

    def _call_one(self, plugin: object, hook: str, **kwargs: Any) -> Any:
        """Call one hook on one pack, with no other pack's implementation or wrapper in the way."""
        others = [p for _, p in self._plugins() if p is not plugin]
        return self._pm.subset_hook_caller(hook, remove_plugins=others)(**kwargs)

    def _owner(self, tool: ToolSpec) -> object:
        plugin = self._pm.get_plugin(tool.owner)
        if plugin is None:
            raise PackError(f"tool {tool.id!r} belongs to pack {tool.owner!r}, which is not loaded")
        return plugin

    # --- the hooks, one typed method each ---------------------------------------------------------------

    def packs(self) -> list[PackInfo]:
        infos = []
        for name, _ in self._plugins():
            dist, version = self._dists.get(name, ("?", ""))
            infos.append(PackInfo(
                name=name, distribution=dist, version=version,
                tools=[t.id for t in self.tools if t.owner == name],
                semantics=[f"{s.method} {s.template}" for s in self.semantics if s.owner == name],
            ))
        return infos

    def read(self, tool: ToolSpec, params: msgspec.Struct, view: ClusterModel, operator: Any = None) -> Any:
        owner = self._owner(tool)  # a tool of a pack that is not loaded any more answers nothing
        if tool.run is not None:
            return tool.run(params, view)
        return self._call_one(owner, "proximo_read", tool=tool, params=params, view=view, operator=operator)

    def plan(self, tool: ToolSpec, params: msgspec.Struct, view: ClusterModel) -> Draft:
        owner = self._owner(tool)
        if tool.run is not None:
            draft = tool.run(params, view)
        else:
            draft = self._call_one(owner, "proximo_plan", tool=tool, params=params, view=view)
        if not isinstance(draft, Draft):
            raise PackError(f"pack {tool.owner!r} returned {type(draft).__name__} for {tool.id}, not a Draft")
        return draft

    def impacts(self, change: Any, before: ClusterModel, after: ClusterModel) -> list[Impact]:
        # Analysers share one before/after pair: one that edits it could hide another pack's blast radius (or fake
        # a fingerprint), so the pair is encoded before and after them all and the plan is refused if it moved.
        given = (msgspec.msgpack.encode(before), msgspec.msgpack.encode(after))
        found = self._analyse(change, before, after)
        check_nothing_unread_asked(before, after)  # first: asking marks the model, which the check below would see
        if (msgspec.msgpack.encode(before), msgspec.msgpack.encode(after)) != given:
            raise PackError(f"pack {self._tamperer(change, given)!r} changed the cluster models it was given to analyse; "
                            "its impacts cannot be trusted")
        return found

    def _analyse(self, change: Any, before: ClusterModel, after: ClusterModel, only: str | None = None) -> list[Impact]:
        found: list[Impact] = []
        for name, plugin in self._plugins():
            if only is not None and name != only:
                continue
            with pack_code(name, f"its analyser, judging {getattr(change, 'tool', 'a plan')}"):
                results = self._call_one(plugin, "proximo_impact", change=change, before=before, after=after)
            for result in results:
                for impact in result or []:
                    if not isinstance(impact, Impact):
                        raise PackError(f"pack {name!r} returned {type(impact).__name__} as an impact")
                    found.append(impact)
        return found

    def _tamperer(self, change: Any, given: tuple[bytes, bytes]) -> str:
        """Which pack moved the models: each analyser again, alone, on fresh copies (rare, so cost does not matter)."""
        for name, _ in self._plugins():
            before, after = (msgspec.msgpack.decode(b, type=ClusterModel) for b in given)
            self._analyse(change, before, after, only=name)
            if (msgspec.msgpack.encode(before), msgspec.msgpack.encode(after)) != given:
                return name
        return "/".join(name for name, _ in self._plugins())  # one that edits only sometimes: still refused, all named

    def undo(self, tool: ToolSpec, change: Any, before: ClusterModel, after: ClusterModel) -> list[Step] | Irreversible | None:
        return self._call_one(self._owner(tool), "proximo_undo", change=change, before=before, after=after)

    def prove(self, record: Any, ledger_id: str) -> None:
        for name, plugin in self._plugins():
            try:
                self._call_one(plugin, "proximo_prove", record=record, ledger_id=ledger_id)
            except Exception:  # a sink failing must not undo the append
                log.exception("pack %s failed in proximo_prove", name)

    def register_commands(self, cli: click.Group) -> None:
        for _, plugin in self._plugins():
            self._call_one(plugin, "proximo_register_commands", cli=cli)


def make_packs(settings: Settings, *, extra: Iterable[tuple[str, object]] = (), load_entry_points: bool = True) -> PackManager:
    """The packs for one host: every installed pack but the disabled ones, the ledger anchors' sinks when set."""
    if settings.ledger_anchor:  # the built-in anchor sinks, an internal plugin on the proximo_prove hook
        from .trust._anchors import ANCHOR_PACK, AnchorPack, sinks_from_spec  # the HTTP stack, only when anchored

        extra = [*extra, (ANCHOR_PACK, AnchorPack(sinks_from_spec(settings.ledger_anchor, token=settings.ledger_anchor_token)))]
    return PackManager(disabled=settings.disabled_packs, extra=extra, load_entry_points=load_entry_points)
