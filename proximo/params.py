"""Parameter types for tool packs: ids as Proxmox accepts them, and structs built from the PVE schema.

Patterns use ``[0-9]`` rather than ``\\d`` so that unicode digits are refused, and the host refuses control
characters in every string before any of these run.

A struct built from the schema (``struct_from_schema``) takes the parameters of every PVE release Proximo knows
(8.4's ``maxfiles`` and 9.1's ``allow-ksm`` alike) and remembers the endpoints it mirrors; once the cluster's
release is known, the host refuses a parameter that release does not have (``release_problems``), in one line,
before the tool plans anything. Proxmox's own check of each step, against that release's API, follows.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from .pve._apischema import INDEXED_LIMITS, RELEASES, Endpoint, ParamSpec, indexed_spec, schema

# PVE::JSONSchema pve-storage-id: [a-z][a-z0-9\-\_\.]*[a-z0-9] (case-insensitive)
StorageId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*[A-Za-z0-9]$", max_length=64,
                                        description="storage ID, e.g. local-zfs")]
# pve-node: a DNS label
# pve-common PVE::JSONSchema pve_verify_iface (ASCII only: [0-9], never \d, which takes other scripts' digits too)
IfaceName = Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z][a-zA-Z0-9_]{1,20}([:.][0-9]+)?$", max_length=20,
                                        description="network interface name")]
NodeName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$", description="node name")]
# pve-vmid: 100 - 999999999
VmId = Annotated[int, msgspec.Meta(ge=100, le=999_999_999, description="guest id (100-999999999)")]
Upid = Annotated[str, msgspec.Meta(pattern=r"^UPID:[A-Za-z0-9-]+:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:[A-Za-z0-9_-]+:[^:\s]*:[^:\s]+:[^\s]*$",
                                   max_length=256, description="a task id (UPID)")]
# no "." or ".." segment: a path means what it says (the client refuses them too, before sending)
# a segment may carry %2F (a volume id's or a CIDR's slash, as Proxmox clients send it): check_api_path judges it
ApiPath = Annotated[str, msgspec.Meta(pattern=r"^(/(?!\.\.?(?:/|$))(?:[A-Za-z0-9_.@!:=+-]|%2F)+)+$", max_length=512,
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
        if spec.format == "pve-iface":
            return IfaceName
    return Annotated[base, msgspec.Meta(**meta)] if meta else base


def _merged(specs: list[ParamSpec]) -> ParamSpec:
    """One spec for a parameter several releases have (newest first): the newest, loosened to take what any of them
    takes (the enum's values united; a minimum, maximum, length or pattern they disagree on dropped)."""
    first = specs[0]
    if all(spec == first for spec in specs[1:]):
        return first
    enums = [spec.enum for spec in specs]
    changes: dict[str, Any] = {"enum": None if None in enums else list(dict.fromkeys(v for enum in enums for v in enum or []))}
    for name in ("minimum", "maximum", "maxLength", "minLength", "pattern"):
        if any(getattr(spec, name) != getattr(first, name) for spec in specs[1:]):
            changes[name] = None
    return msgspec.structs.replace(first, optional=any(spec.optional for spec in specs), **changes)


def _endpoints(method: str, template: str) -> list[Endpoint]:
    """The endpoint in every release that has it, newest first."""
    found = [e for release in reversed(RELEASES) if (e := schema(release).endpoint(method, template)) is not None]
    if not found:
        raise ValueError(f"{method} {template} is not in the PVE API schema")
    return found


def schema_params(method: str, template: str, *, expand_indexed: bool = False, release: str | None = None) -> dict[str, ParamSpec]:
    """The endpoint's parameters by name; with ``expand_indexed``, ``scsi[n]`` becomes scsi0 .. scsi30.

    ``release``: that PVE release's parameters (``view.release`` at plan time); None: every supported release's,
    each spec loosened to take what any release takes (what a tool's parameter struct is built from).
    """
    if release is not None:
        endpoint = schema(release).endpoint(method, template)
        if endpoint is None:
            raise ValueError(f"{method} {template} is not in the PVE {release} API schema")
        params = dict(endpoint.params)
    else:
        each = [e.params for e in _endpoints(method, template)]
        names = dict.fromkeys(name for params_ in reversed(each) for name in params_)  # oldest's order, then newer names
        params = {name: _merged([p[name] for p in each if name in p]) for name in names}
    if not expand_indexed:
        return params
    out: dict[str, ParamSpec] = {}
    for pname, spec in params.items():
        if pname.endswith("[n]"):
            base = pname[:-3]
            out.update({f"{base}{i}": spec for i in range(INDEXED_LIMITS.get(base, 0))})
        else:
            out[pname] = spec
    return out


def struct_from_schema(name: str, method: str, template: str, *, exclude: tuple[str, ...] = (),
                       require: tuple[str, ...] = (), expand_indexed: bool = False,
                       params: dict[str, ParamSpec] | None = None, omit_defaults: bool = False,
                       endpoints: list[tuple[str, str]] | None = None) -> type[msgspec.Struct]:
    """A parameter struct whose fields are exactly the PVE endpoint's parameters (hyphens become ``_``), in every
    release Proximo knows.

    ``expand_indexed`` gives indexed options their real names (``net0``, ``scsi5``); ``params`` replaces the
    endpoint's parameters (e.g. the union of two endpoints' from :func:`schema_params`), and ``endpoints`` then
    names the endpoints they come from, whose release decides which of them a cluster takes (``release_problems``;
    by default ``method`` ``template``).
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
    struct = msgspec.defstruct(name, required + optional, forbid_unknown_fields=True, frozen=True, kw_only=True,
                               module=__name__, omit_defaults=omit_defaults)
    struct.__pve_endpoints__ = tuple(endpoints or [(method, template)])  # type: ignore[attr-defined]
    return struct


S = TypeVar("S", bound=type[msgspec.Struct])


def described(struct: S, *, pve: tuple[tuple[str, str], ...] = (), fields: dict[str, str] | None = None) -> S:
    """Say what a struct's fields are, for the tool's JSON schema (MCP, ``proximo tools TOOL``); validation is unchanged.

    ``pve``: endpoints whose own parameter descriptions the fields take (a hand-written struct mirroring PVE, as the
    firewall's alias struct mirrors ``POST /cluster/firewall/aliases``); unlike a schema struct's endpoints, these
    decide nothing about releases. ``fields``: API name -> a short description, for what PVE leaves undescribed or
    Proximo adds. A field's own ``msgspec.Meta(description=...)`` wins over ``fields``; PVE's text over both.
    """
    struct.__pve_docs__ = tuple(pve)  # type: ignore[attr-defined]
    struct.__param_descriptions__ = dict(fields or {})  # type: ignore[attr-defined]
    return struct


@functools.cache
def _not_in_release(struct: type[msgspec.Struct], release: str) -> dict[str, str]:
    """Field (API name) -> the endpoint and releases that have it, for each field of ``struct`` that mirrors a
    parameter some supported release has on its endpoints but ``release`` has on none of them."""
    mirrored: list[tuple[str, str]] = list(getattr(struct, "__pve_endpoints__", ()))
    found: dict[str, str] = {}
    for field in msgspec.structs.fields(struct):
        pname = field.encode_name
        where = [(f"{method} {template}", r) for method, template in mirrored for r in RELEASES
                 if (e := schema(r).endpoint(method, template)) is not None and _has(e, pname)]
        if where and release not in {r for _, r in where}:
            found[pname] = f"a PVE {' and '.join(sorted({r for _, r in where}))} parameter of {where[0][0]}"
    return found


def _has(endpoint: Endpoint, pname: str) -> bool:
    return pname in endpoint.params or indexed_spec(endpoint, pname) is not None


def release_problems(params: msgspec.Struct, release: str) -> list[str]:
    """The parameters given in ``params`` (not None) that PVE ``release`` does not have on the endpoints the struct
    mirrors, though another release does: each as ``"NAME (a PVE 9.1 parameter of POST /nodes/{node}/qemu)"``."""
    foreign = _not_in_release(type(params), release)
    if not foreign:
        return []
    given = msgspec.to_builtins(params)
    return [f"{pname} ({where})" for pname, where in foreign.items() if given.get(pname) is not None]


def api_params(params: msgspec.Struct) -> dict[str, Any]:
    """The params as the API names them, without unset ones; booleans as PVE's 0/1."""
    out: dict[str, Any] = {}
    for key, value in msgspec.to_builtins(params).items():
        if value is None:
            continue
        out[key] = int(value) if isinstance(value, bool) else value
    return out
