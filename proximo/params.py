"""Parameter types for tool packs: ids as Proxmox accepts them, and structs built from the PVE schema.

Patterns use ``[0-9]`` rather than ``\\d`` so that unicode digits are refused, and the host refuses control
characters in every string before any of these run.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from .pve._apischema import ParamSpec, schema

# PVE::JSONSchema pve-storage-id: [a-z][a-z0-9\-\_\.]*[a-z0-9] (case-insensitive)
StorageId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*[A-Za-z0-9]$", max_length=64,
                                        description="storage ID, e.g. local-zfs")]
# pve-node: a DNS label
NodeName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$", description="node name")]
# pve-vmid: 100 - 999999999
VmId = Annotated[int, msgspec.Meta(ge=100, le=999_999_999, description="guest id (100-999999999)")]
Upid = Annotated[str, msgspec.Meta(pattern=r"^UPID:[A-Za-z0-9-]+:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:[A-Za-z0-9_-]+:[^:\s]*:[^:\s]+:[^\s]*$",
                                   max_length=256, description="a task id (UPID)")]
# no "." or ".." segment: a path means what it says (the client refuses them too, before sending)
ApiPath = Annotated[str, msgspec.Meta(pattern=r"^(/(?!\.\.?(?:/|$))[A-Za-z0-9_.@!:=+-]+)+$", max_length=512,
                                      description="API path relative to /api2/json, e.g. /storage/local-zfs")]
GuestKind = Literal["qemu", "lxc"]

_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool}


def _field_type(spec: ParamSpec) -> Any:
    base = _TYPES.get(spec.type)
    if base is None:
        return Any
    if spec.type == "boolean":
        return bool | Literal[0, 1]  # PVE's booleans are 0/1 (``disable=1``); JSON clients send true/false
    meta: dict[str, Any] = {}
    if spec.type in ("integer", "number"):
        if spec.minimum is not None:
            meta["ge"] = base(spec.minimum)
        if spec.maximum is not None:
            meta["le"] = base(spec.maximum)
    if spec.type == "string":
        if spec.enum:
            return Literal[tuple(spec.enum)]  # type: ignore[misc]
        if spec.maxLength:
            meta["max_length"] = spec.maxLength
        if spec.format == "pve-storage-id":
            return StorageId
        if spec.format == "pve-node":
            return NodeName
    return Annotated[base, msgspec.Meta(**meta)] if meta else base


def schema_params(method: str, template: str, *, expand_indexed: bool = False) -> dict[str, ParamSpec]:
    """The endpoint's parameters by name; with ``expand_indexed``, ``scsi[n]`` becomes scsi0 .. scsi30."""
    from .pve._apischema import INDEXED_LIMITS

    endpoint = schema().endpoint(method, template)
    if endpoint is None:
        raise ValueError(f"{method} {template} is not in the PVE API schema")
    if not expand_indexed:
        return dict(endpoint.params)
    out: dict[str, ParamSpec] = {}
    for pname, spec in endpoint.params.items():
        if pname.endswith("[n]"):
            base = pname[:-3]
            out.update({f"{base}{i}": spec for i in range(INDEXED_LIMITS.get(base, 0))})
        else:
            out[pname] = spec
    return out


def struct_from_schema(name: str, method: str, template: str, *, exclude: tuple[str, ...] = (),
                       require: tuple[str, ...] = (), expand_indexed: bool = False,
                       params: dict[str, ParamSpec] | None = None, omit_defaults: bool = False) -> type[msgspec.Struct]:
    """A parameter struct whose fields are exactly the PVE endpoint's parameters (hyphens become ``_``).

    ``expand_indexed`` gives indexed options their real names (``net0``, ``scsi5``); ``params`` replaces the
    endpoint's parameters (e.g. the union of two endpoints' from :func:`schema_params`).
    """
    specs = params if params is not None else schema_params(method, template, expand_indexed=expand_indexed)
    required: list[tuple[str, Any, Any]] = []
    optional: list[tuple[str, Any, Any]] = []
    for pname, spec in sorted(specs.items()):
        if pname in exclude or pname.endswith("[n]"):
            continue
        attr = re.sub(r"[^A-Za-z0-9_]", "_", pname)
        ftype = _field_type(spec)
        if spec.optional and pname not in require:
            optional.append((attr, ftype | None, msgspec.field(default=None, name=pname)))
        else:
            required.append((attr, ftype, msgspec.field(name=pname)))
    return msgspec.defstruct(name, required + optional, forbid_unknown_fields=True, frozen=True, kw_only=True,
                             module=__name__, omit_defaults=omit_defaults)


def api_params(params: msgspec.Struct) -> dict[str, Any]:
    """The params as the API names them, without unset ones; booleans as PVE's 0/1."""
    out: dict[str, Any] = {}
    for key, value in msgspec.to_builtins(params).items():
        if value is None:
            continue
        out[key] = int(value) if isinstance(value, bool) else value
    return out
