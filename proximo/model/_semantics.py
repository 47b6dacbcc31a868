"""What each state-changing API call does to the model: registered by the pack that owns the endpoint.

The same registry drives the simulator (serve a POST), the predictor (apply a plan's steps to a copy)
and undo (each call's inverse, computed from the state before it). A call without semantics cannot be
predicted, so it cannot be planned: ``NotModelled``.

A request (``execute``) is checked against its caller's permissions as pve-api-daemon checks it: the schema's
``permissions`` before the parameters are validated, then the handler's own rules (``check``, registered
with the endpoint by the pack that owns it) before it runs. ``notes`` and ``inverse`` are not requests.

Every call is matched and validated against the API of the model's own release (``ClusterModel.api``, chosen
by its ``/version``): a call an 8.4 cluster would refuse is refused on an 8.4 model, with Proxmox's answer.
Semantics are registered once, for an endpoint any supported release has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ..pve._apischema import RELEASES, schema
from .._types import ApiCall, Irreversible, Step
from ..errors import NotModelled, PackError, PveApiError
from ._access import ROOT
from ._cluster import ClusterModel
from ._permissions import Caller, permission_note


class Call(msgspec.Struct, frozen=True):
    """A concrete API call, matched to its schema template and validated."""

    method: str
    path: str
    template: str
    path_params: dict[str, str]
    params: dict[str, Any]
    user: str = ROOT


ApplyFn = Callable[[ClusterModel, Call], Any]
InverseFn = Callable[[ClusterModel, Call], "list[Step] | Irreversible"]
NotesFn = Callable[[ClusterModel, Call], list[str]]
# The handler's own permission checks (beyond the schema's): raise PveApiError as the handler would.
CheckFn = Callable[[ClusterModel, Call, Caller], None]
# The digest the endpoint compares its ``digest`` parameter with, in this state (None: nothing to compare).
DigestFn = Callable[[ClusterModel, Call], "str | None"]


class Semantics(msgspec.Struct, frozen=True):
    method: str
    template: str
    apply: ApplyFn
    inverse: InverseFn | None
    notes: NotesFn | None
    owner: str
    check: CheckFn | None = None
    digest: DigestFn | None = None
    verifies: tuple[str, ...] = ()  # parameters whose registered format ``apply`` checks itself, as PVE's handler does


class SemanticsRegistry:
    """Endpoint -> model mutation. Filled once at start-up through ``proximo_register_semantics``."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Semantics] = {}

    def registrar(self, owner: str) -> Callable[..., None]:
        def register(method: str, template: str, apply: ApplyFn, *, inverse: InverseFn | None = None,
                     notes: NotesFn | None = None, check: CheckFn | None = None, digest: DigestFn | None = None,
                     verifies: tuple[str, ...] = ()) -> None:
            method = method.upper()
            endpoints = [e for release in RELEASES if (e := schema(release).endpoint(method, template)) is not None]
            if not endpoints:
                raise PackError(f"pack {owner!r} registers semantics for {method} {template}, which is not in the PVE API "
                                f"of any release Proximo knows ({', '.join(RELEASES)})")
            if method == "GET":
                raise PackError(f"pack {owner!r} registers semantics for a GET: reads are rendered from the model")
            existing = self._entries.get((method, template))
            if existing is not None:
                raise PackError(f"{method} {template} has semantics from both {existing.owner!r} and {owner!r}")
            if digest is not None and not any("digest" in e.params for e in endpoints):
                raise PackError(f"pack {owner!r} gives a digest for {method} {template}, which takes none")
            self._entries[(method, template)] = Semantics(method, template, apply, inverse, notes, owner, check, digest, verifies)

        return register

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._entries.values(), key=lambda s: (s.template, s.method)))

    def __len__(self) -> int:
        return len(self._entries)

    def bind(self, model: ClusterModel, method: str, path: str, params: dict[str, Any] | None = None, *,
             caller: Caller | None = None) -> tuple[Semantics, Call]:
        """Match and validate a call as ``model``'s release of PVE would; raise PveApiError (as PVE answers),
        NotModelled, or UnknownRelease (no schema for the model's release).

        With a ``caller`` it is a request: the schema's permissions are checked first, as pve-api-daemon
        checks them before the handler validates anything (HTTPServer::rest_handler).
        """
        method = method.upper()
        api = model.api
        match = api.match(path)
        if match is None:
            raise PveApiError(501, f"Method '{method} {path}' not implemented")
        template, path_params = match
        endpoint = api.endpoint(method, template)
        if endpoint is None:
            raise PveApiError(501, f"Method '{method} {path}' not implemented")
        if caller is not None:
            caller.check_request(endpoint, path, {**(params or {}), **path_params})
        typed, errors = api.validate(endpoint, dict(params or {}), path_params)
        if errors:
            raise PveApiError(400, "Parameter verification failed.", errors)
        entry = self._entries.get((method, template))
        if entry is None:
            raise NotModelled(f"{method} {template} is not modelled: Proximo cannot predict what it does, so it will not plan it")
        return entry, Call(method, path, template, path_params, typed, caller.user if caller else ROOT)

    def execute(self, model: ClusterModel, method: str, path: str, params: dict[str, Any] | None = None, *, user: str = ROOT) -> Any:
        """Serve one request by ``user``: PVE's permission checks, then the endpoint's effect on ``model``."""
        caller = Caller(model, user)
        entry, call = self.bind(model, method, path, params, caller=caller)
        if entry.check is not None:
            entry.check(model, call, caller)
        return entry.apply(model, call)

    def notes(self, before: ClusterModel, step: ApiCall) -> list[str]:
        """What a call does that no state diff shows (credentials PVE deletes, say), from its semantics; and
        that its permissions were not judged on the whole access configuration, when they were not."""
        entry, call = self.bind(before, step.method, step.path, step.params)
        notes = list(entry.notes(before, call)) if entry.notes else []
        endpoint = before.api.endpoint(call.method, call.template)
        formats = [f"{name} ({fmt})" for name, fmt in (before.api.unchecked_formats(endpoint, dict(step.params)) if endpoint else [])
                   if name.split(".")[0] not in entry.verifies]
        if formats:
            notes.append(f"{step.method} {step.path}: Proximo does not check the format of {', '.join(formats)}; Proxmox "
                         "checks it when the step runs and answers 400 if it is wrong (the apply stops there)")
        unchecked = permission_note(before)
        return notes + [unchecked] if unchecked else notes

    def stamp(self, state: ClusterModel, step: ApiCall) -> ApiCall:
        """The step with Proxmox's ``digest`` of ``state`` added, where the endpoint takes one and the step has none.

        Proxmox then refuses the step if the object changed after the plan read it (a concurrent edit), instead of
        the last writer winning. Only endpoints whose semantics say what they compare are stamped.
        """
        if "digest" in step.params:
            return step
        try:
            entry, call = self.bind(state, step.method, step.path, step.params)
        except (PveApiError, NotModelled):
            return step  # refused anyway: the predictor says why
        value = entry.digest(state, call) if entry.digest is not None else None
        return ApiCall(step.method, step.path, {**step.params, "digest": value}) if value else step

    def inverse(self, before: ClusterModel, step: ApiCall) -> list[Step] | Irreversible:
        entry, call = self.bind(before, step.method, step.path, step.params)
        if entry.inverse is None:
            return Irreversible(f"{step.method} {call.template} has no undo")
        return entry.inverse(before, call)
