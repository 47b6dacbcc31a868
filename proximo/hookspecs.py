"""The hooks a Proximo tool pack can implement.

A pack is a module (or object) registered under the entry point group ``proximo``; the host's built-in
packs are registered exactly that way. Every hook is called by keyword, so an implementation may take
fewer arguments than the spec names. Only ``proximo._plugins.PackManager`` calls these hooks.

The call sequence, from start-up to undo::

    start-up    proximo_register_tools(register)        every pack: its ToolSpecs
                proximo_register_semantics(register)    every pack: model semantics for its endpoints
                proximo_register_commands(cli)          every pack: extra CLI commands (optional)

    read          the tool's own ``run(params, view)`` (ToolSpec.run), or, for a tool registered without one,
                proximo_read(tool, params, view)        the owning pack only: the answer, from the model

    PLAN          the tool's own ``run(params, view)``, or, for a tool registered without one,
                proximo_plan(tool, params, view)        the owning pack only: a Draft (steps; no I/O)
      predict     the host applies the steps to a copy of the model, through the registered semantics;
                  a step without semantics refuses the plan (NotModelled); an SshExec step (lxc-exec)
                  is accepted as unpredictable: no change in the model, HIGH and a person unless the
                  policy names the command (docs/packs/lxc-exec.md)
      impact    proximo_impact(change, before, after)   EVERY pack: impacts found by diffing the two states
      undo      proximo_undo(change, before, after)     the owning pack only; None lets the host compose
                                                        the inverse of each step from its semantics
      risk        the host: max of the impacts' floors, MEDIUM for any change, HIGH if incomplete
      store       the host: plan id, expiry, fingerprint of what it read; a ``plan`` ledger record

    APPROVE       the host: auto up to PROXIMO_AUTO_APPROVE, else a person (``approve`` / ``deny`` record)
    APPLY         the host's executor, and nothing else: re-check the fingerprint, ``apply-start`` record,
                  run each step, wait on UPIDs, read back, ``apply-result`` record
    PROVE       proximo_prove(record, ledger_id)        EVERY pack: after each ledger append (sinks, anchors)
    UNDO          ``proximo undo SEQ``: the recorded inverse becomes a new plan, through all of the above

Packs never receive the client, the ledger or the executor: the host does all I/O.

A live plan's model may have been read without some parts (``ClusterModel.unread``: each guest's firewall files).
Touching one raises :class:`proximo.NotRead` from any hook; let it propagate (it is not a LookupError), and the
host plans again on a read with everything (it also notices when a hook caught it: asking marks the model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    import msgspec

    from .trust._ledger import LedgerRecord
    from ._types import Change
    from ._tools import ToolSpec
    from ._types import Draft, Impact, Irreversible, Operator, Step
    from .model import ClusterModel

hookspec = pluggy.HookspecMarker("proximo")


# --- start-up -----------------------------------------------------------------------------------------


@hookspec
def proximo_register_tools(register: Callable[[ToolSpec], None]) -> None:
    """Register this pack's tools.

    :param register: call once per tool with a :class:`proximo.ToolSpec`. Tool ids are dotted
        (``storage.delete``); an id registered twice stops start-up with an error naming both packs.
    """


@hookspec
def proximo_register_semantics(register: Callable[..., None]) -> None:
    """Register what each state-changing endpoint this pack owns does to the model.

    :param register: ``register(method, template, apply, inverse=None, notes=None, check=None, digest=None,
        verifies=())``. ``template`` is the PVE API path as the schema writes it (``/storage/{storage}``); it must
        exist in the schema of a release Proximo supports (8.4, 9.1).
        ``apply(model, call)`` mutates the model and returns the API's ``data`` (a UPID for async calls),
        raising :class:`proximo.PveApiError` exactly as Proxmox would refuse. ``inverse(before, call)``
        returns the steps that undo the call, computed from the state before it, or an
        :class:`proximo.Irreversible` saying why there is none. ``notes(before, call)`` returns lines for
        the plan about what the call does that no diff of the model shows (e.g. credentials PVE deletes).
        ``check(model, call, caller)`` makes the permission checks the endpoint's handler makes beyond the
        schema's ``permissions``, raising :class:`proximo.PveApiError` with the handler's text.
        ``digest(state, call)`` is the ``digest`` Proxmox compares the call's own with in that state; the host
        adds it to each step. ``verifies`` names the parameters whose registered format ``apply`` checks itself;
        any other given value whose format the schema only names is reported in a plan note as not checked.
    """


@hookspec
def proximo_register_commands(cli: click.Group) -> None:
    """Add commands to the ``proximo`` CLI. Commands must go through the host for any change. ``--help`` lists them
    from a cache that follows the pack's code (proximo/cli/_listing.py): they must not depend on anything else.

    :param cli: the root click group.
    """


# --- reading and planning (dispatched to the owning pack only) ----------------------------------------


@hookspec(firstresult=True)
def proximo_read(tool: ToolSpec, params: msgspec.Struct, view: ClusterModel, operator: Operator) -> Any:
    """Answer a read tool from the model. Called only on the pack that registered ``tool``, and only for a tool
    registered without its own ``run`` (most tools carry one: :func:`proximo.read_tool`); use it for a read that
    needs the operator.

    :param tool: the tool being read.
    :param params: validated parameters (an instance of ``tool.params``).
    :param view: a copy of the cluster model; changing it changes nothing. Live, it also holds what the host
        read for ``tool.live_reads`` (in ``view.other``; unreadable paths in ``view.extra`` as ``{"error"}``).
    :param operator: who the operator is (Proximo's own token id, the admin sources).
    :return: JSON-serialisable data (msgspec structs are fine).
    """


@hookspec(firstresult=True)
def proximo_plan(tool: ToolSpec, params: msgspec.Struct, view: ClusterModel) -> Draft | None:
    """Describe what a mutating tool would do. Called only on the pack that registered ``tool``, and only for a
    tool registered without its own ``run`` (most tools carry one: :func:`proximo.plan_tool`).

    Pure: no I/O, no mutation. Raise :class:`proximo.BadInput` for input the cluster makes wrong
    (a storage that does not exist); return ``Draft(steps, blockers=[...])`` for a change that cannot
    succeed, so the person sees why.

    :param view: a copy of the cluster model as read for this plan.
    """


# --- blast radius and undo ----------------------------------------------------------------------------


@hookspec
def proximo_impact(change: Change, before: ClusterModel, after: ClusterModel) -> list[Impact] | None:
    """Find what the change affects by comparing the two states. Called on EVERY pack for every plan.

    Do not ask the tool what it affects: diff ``before`` and ``after``, so that ``api.call`` and the named
    tool report the same impacts. Both models are shared: read them, never change them.

    This is also where Proximo's own refusals live (deleting root@pam, Proximo's own token, ...): an impact with
    ``blocks=True`` blocks the plan with its reason, whichever tool made the steps. A refusal kept only in a
    tool's ``proximo_plan`` would be bypassed by ``api.call``.

    :param change: the tool, its params and the steps.
    :return: impacts; ``target`` and ``effect`` are those docs/architecture.md lists under "Impacts".
    """


@hookspec(firstresult=True)
def proximo_undo(change: Change, before: ClusterModel, after: ClusterModel) -> list[Step] | Irreversible | None:
    """The steps that undo the change. Called only on the pack that owns the tool.

    Return None to let the host compose the inverse of each step from its registered semantics
    (the usual case). Return :class:`proximo.Irreversible` when nothing can undo it.
    """


# --- proof --------------------------------------------------------------------------------------------


@hookspec
def proximo_prove(record: LedgerRecord, ledger_id: str) -> None:
    """Receive every ledger record right after it is appended (forward it to syslog, a SIEM, ...).

    Called on every pack; an exception here is logged and does not undo the append.

    :param record: the record as appended (params already redacted).
    :param ledger_id: the id of the chain the record belongs to (32 hex characters; a sealed ledger's
        successor has a new one). The built-in anchors (``PROXIMO_LEDGER_ANCHOR``) send it with seq and hash.
    """
