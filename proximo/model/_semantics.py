"""What each state-changing API call does to the model: registered by the pack that owns the endpoint.

The same registry drives the simulator (serve a POST), the predictor (apply a plan's steps to a copy)
and undo (each call's inverse, computed from the state before it). A call without semantics cannot be
predicted, so it cannot be planned: ``NotModelled``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from .._apischema import schema, validate
from .._types import ApiCall, Irreversible, Step
from ..errors import NotModelled, PackError, PveApiError
from ._cluster import ClusterModel


class Call(msgspec.Struct, frozen=True):
    """A concrete API call, matched to its schema template and validated."""

    method: str
    path: str
    template: str
    path_params: dict[str, str]
    params: dict[str, Any]
    user: str = "root@pam"


ApplyFn = Callable[[ClusterModel, Call], Any]
InverseFn = Callable[[ClusterModel, Call], "list[Step] | Irreversible"]
NotesFn = Callable[[ClusterModel, Call], list[str]]


class Semantics(msgspec.Struct, frozen=True):
    method: str
    template: str
    apply: ApplyFn
    inverse: InverseFn | None
    notes: NotesFn | None
    owner: str


class SemanticsRegistry:
    """Endpoint -> model mutation. Filled once at start-up through ``proximo_register_semantics``."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Semantics] = {}

    def registrar(self, owner: str) -> Callable[..., None]:
        def register(method: str, template: str, apply: ApplyFn, *, inverse: InverseFn | None = None,
                     notes: NotesFn | None = None) -> None:
            method = method.upper()
            if schema().endpoint(method, template) is None:
                raise PackError(f"pack {owner!r} registers semantics for {method} {template}, which is not in the PVE API")
            if method == "GET":
                raise PackError(f"pack {owner!r} registers semantics for a GET: reads are rendered from the model")
            existing = self._entries.get((method, template))
            if existing is not None:
                raise PackError(f"{method} {template} has semantics from both {existing.owner!r} and {owner!r}")
            self._entries[(method, template)] = Semantics(method, template, apply, inverse, notes, owner)

        return register

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._entries.values(), key=lambda s: (s.template, s.method)))

    def __len__(self) -> int:
        return len(self._entries)

    def bind(self, method: str, path: str, params: dict[str, Any] | None = None, *, user: str = "root@pam") -> tuple[Semantics, Call]:
        """Match and validate a call as PVE would; raise PveApiError (as PVE answers) or NotModelled."""
        method = method.upper()
        match = schema().match(path)
        if match is None:
            raise PveApiError(501, f"Method '{method} {path}' not implemented")
        template, path_params = match
        endpoint = schema().endpoint(method, template)
        if endpoint is None:
            raise PveApiError(501, f"Method '{method} {path}' not implemented")
        typed, errors = validate(endpoint, dict(params or {}), path_params)
        if errors:
            raise PveApiError(400, "Parameter verification failed.", errors)
        entry = self._entries.get((method, template))
        if entry is None:
            raise NotModelled(f"{method} {template} is not modelled: Proximo cannot predict what it does, so it will not plan it")
        return entry, Call(method, path, template, path_params, typed, user)

    def execute(self, model: ClusterModel, method: str, path: str, params: dict[str, Any] | None = None, *, user: str = "root@pam") -> Any:
        entry, call = self.bind(method, path, params, user=user)
        return entry.apply(model, call)

    def notes(self, before: ClusterModel, step: ApiCall) -> list[str]:
        """What a call does that no state diff shows (credentials PVE deletes, say), from its semantics."""
        entry, call = self.bind(step.method, step.path, step.params)
        return list(entry.notes(before, call)) if entry.notes else []

    def inverse(self, before: ClusterModel, step: ApiCall) -> list[Step] | Irreversible:
        entry, call = self.bind(step.method, step.path, step.params)
        if entry.inverse is None:
            return Irreversible(f"{step.method} {call.template} has no undo")
        return entry.inverse(before, call)
