"""The PVE 9.1 REST API schema, as the one check for every call that Proximo plans, serves or sends.

Derived from Proxmox's own ``apidata.js`` by ``scripts/gen_api_schema.py``. Validation follows
``PVE::JSONSchema``: the same rules and, where it matters to a reader, the same messages. Each endpoint also
keeps its ``permissions`` (what ``proximo.model._permissions`` checks), ``allowtoken`` and ``protected``.
"""

from __future__ import annotations

import functools
import gzip
import ipaddress
import math
import re
from importlib import resources
from typing import Any

import msgspec


class ParamSpec(msgspec.Struct, frozen=True):
    type: str = "string"
    optional: bool = False
    enum: list[str] | None = None
    format: str | None = None
    pattern: str | None = None
    minimum: int | float | str | None = None
    maximum: int | float | str | None = None
    maxLength: int | None = None
    default: Any = None


class PermissionSpec(msgspec.Struct, frozen=True):
    """A method's ``permissions``: a ``check`` tree (``['perm', PATH, [PRIVS], ...]``, ``and``, ``or``, ...)
    and/or ``user`` (``all``: any authenticated user, the handler checks for itself; ``world``: no login)."""

    check: list[Any] | None = None
    user: str | None = None


class Endpoint(msgspec.Struct, frozen=True):
    method: str
    path: str
    params: dict[str, ParamSpec]
    permissions: PermissionSpec | None = None  # None: the method has no permissions, so only root@pam may call it
    allowtoken: bool = True  # False: API tokens are refused (POST /access/ticket, PUT /access/password, TFA writes)
    protected: bool = False  # runs in the privileged daemon (pvedaemon), as PVE proxies it

    @property
    def path_params(self) -> list[str]:
        return _PLACEHOLDER.findall(self.path)


class _Doc(msgspec.Struct):
    pve_docs_version: str
    endpoints: list[Endpoint]


_SEGMENT = r"([^/]+)"
# Placeholder names are not all \w: /nodes/{node}/hardware/pci/{pci-id-or-mapping}
_PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")


def _compile(template: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(template)  # literal, name, literal, name, ..., literal
    return re.compile("^" + "".join(_SEGMENT if i % 2 else re.escape(p) for i, p in enumerate(parts)) + "$")


class ApiSchema:
    """Look up endpoints by concrete path and validate parameters against them."""

    def __init__(self, doc: _Doc) -> None:
        self.version = doc.pve_docs_version
        self.endpoints = doc.endpoints
        self._by_key = {(e.method, e.path): e for e in doc.endpoints}
        # Most specific first: literal segments beat {placeholders}.
        templates = sorted({e.path for e in doc.endpoints}, key=lambda p: (p.count("{"), -p.count("/")))
        self._matchers = [(t, _compile(t)) for t in templates]

    def endpoint(self, method: str, template: str) -> Endpoint | None:
        return self._by_key.get((method, template))

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        """The template a concrete path belongs to, and its path parameters."""
        for template, rx in self._matchers:
            m = rx.match(path)
            if m:
                names = _PLACEHOLDER.findall(template)
                return template, dict(zip(names, m.groups(), strict=True))
        return None

    def methods(self, template: str) -> list[str]:
        return [m for m in ("GET", "POST", "PUT", "DELETE") if (m, template) in self._by_key]


@functools.cache
def schema() -> ApiSchema:
    raw = resources.files("proximo.pve").joinpath("_data/pve-api-9.1.json.gz").read_bytes()
    return ApiSchema(msgspec.json.decode(gzip.decompress(raw), type=_Doc))


# --- validation, after PVE::JSONSchema ------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NUMBER = re.compile(r"[+-]?([0-9]+\.[0-9]+|[0-9]+\.|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?")
_STORAGE_ID = re.compile(r"^[a-z][a-z0-9\-_.]*[a-z0-9]$", re.IGNORECASE)
_NODE = re.compile(r"^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$")
_CONTENT = {"images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import", "none"}

_USER = re.compile(r"^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+$")  # PVE::Auth::Plugin $user_regex @ $realm_regex
_TOKEN = re.compile(r"^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$")  # AccessControl $token_full_regex
_GROUP_OR_ROLE = re.compile(r"^[A-Za-z0-9.\-_]+$")  # AccessControl verify_groupname / verify_rolename
_IP_ALIAS = re.compile(r"^(dc/|guest/)?[A-Za-z][A-Za-z0-9\-_]+$")  # pve-firewall $ip_alias_pattern


def _userid(v: str) -> str | None:
    """PVE::Auth::Plugin::verify_username."""
    if len(v) < 3:
        return f"user name '{v}' is too short"
    if len(v) > 64:
        return f"user name '{v}' is too long ({len(v)} > 64)"
    return None if _USER.match(v) else f"value '{v}' does not look like a valid user name"


def _ip_or_cidr(v: str) -> str | None:
    """pve-firewall pve_verify_ip_or_cidr (Net::IP's own wording for a bad prefix is not reproduced)."""
    address, slash, prefix = v.partition("/")
    try:
        ipaddress.ip_address(address)
        if slash:
            if not prefix.isdigit():
                raise ValueError(v)
            ipaddress.ip_network(v, strict=False)
    except ValueError:
        return "value does not look like a valid IP address or CIDR network"
    return None


# Formats whose violation we can state exactly; other formats are checked by type only. A ``-list`` format checks
# each element of PVE::Tools::split_list with its base format (PVE::JSONSchema::check_format).
_FORMATS: dict[str, Any] = {
    "pve-storage-id": lambda v: None if _STORAGE_ID.match(v) else f"storage ID '{v}' contains illegal characters",
    "pve-node": lambda v: None if _NODE.match(v) else f"value '{v}' does not look like a valid node name",
    "pve-vmid": lambda v: None if re.fullmatch(r"[1-9][0-9]{2,8}", v) else f"value '{v}' does not look like a valid VM ID",
    # PVE::JSONSchema pve-configid (snapshot names, config keys): [a-z][a-z0-9_-]+, case-insensitive
    "pve-configid": lambda v: None if re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]+", v) else f"invalid configuration ID '{v}'",
    "pve-storage-content": lambda v: None if v in _CONTENT else f"invalid content type '{v}'",
    "pve-userid": _userid,
    "pve-tokenid": lambda v: None if _TOKEN.match(v) else f"value '{v}' does not look like a valid token ID",
    "pve-groupid": lambda v: None if _GROUP_OR_ROLE.match(v) else f"group name '{v}' contains invalid characters",
    "pve-roleid": lambda v: None if _GROUP_OR_ROLE.match(v) else f"role name '{v}' contains invalid characters",
    "IPorCIDR": _ip_or_cidr,
    "IPorCIDRorAlias": lambda v: None if _IP_ALIAS.match(v) else _ip_or_cidr(v),
}


def _format_problem(name: str, value: str) -> str | None:
    """What PVE's registered format ``name`` says of ``value`` (None: fine, or a format not checked here)."""
    base, is_list = (name[:-5], True) if name.endswith("-list") else (name, False)
    check = _FORMATS.get(base)
    if check is None:
        return None
    if not is_list:
        return check(value)  # type: ignore[no-any-return]
    return next((problem for item in re.split(r"[,;\s]+", value) if item and (problem := check(item))), None)


@functools.cache
def _perl_regex(pattern: str) -> str:
    """Perl's stringified ``qr//`` (``(?^:...)``, the token id and userid patterns) as a Python pattern."""
    return pattern.replace("(?^:", "(?:")


def coerce(spec: ParamSpec, value: Any) -> tuple[Any, str | None]:
    """Check one value like PVE does, returning it in its typed form, or an error message."""
    if spec.type == "boolean":
        if isinstance(value, bool):
            return int(value), None
        text = str(value).lower()
        if isinstance(value, int) and value in (0, 1):
            return value, None
        if text in _TRUE:
            return 1, None
        if text in _FALSE:
            return 0, None
        return value, f"type check ('boolean') failed - got '{value}'"
    if spec.type in ("integer", "number"):
        if isinstance(value, bool):
            return value, f"type check ('{spec.type}') failed - got '{value}'"
        try:
            number: int | float
            if spec.type == "integer":
                if isinstance(value, float) or not re.fullmatch(r"[+-]?[0-9]+", str(value).strip()):
                    raise ValueError
                number = int(str(value))
            else:
                # PVE::JSONSchema::is_number: no "inf", "nan", "1_000" or surrounding blanks, which float() takes
                if not (math.isfinite(value) if isinstance(value, float) else _NUMBER.fullmatch(str(value))):
                    raise ValueError
                number = float(value)
        except (ValueError, TypeError):
            return value, f"type check ('{spec.type}') failed - got '{value}'"
        if spec.minimum is not None and number < float(spec.minimum):
            return value, f"value must have a minimum value of {spec.minimum}"
        if spec.maximum is not None and number > float(spec.maximum):
            return value, f"value must have a maximum value of {spec.maximum}"
        if spec.enum is not None and str(value) not in spec.enum:  # PVE checks enum whatever the type
            return value, f"value '{value}' does not have a value in the enumeration '{', '.join(spec.enum)}'"
        return number, None
    if spec.type == "array":
        return value, None
    if isinstance(value, (dict, list)):
        return value, f"type check ('string') failed - got {type(value).__name__}"
    text = str(value)
    if spec.maxLength is not None and len(text) > spec.maxLength:
        return value, f"value may only be {spec.maxLength} characters long"
    if spec.enum is not None and text not in spec.enum:
        return value, f"value '{text}' does not have a value in the enumeration '{', '.join(spec.enum)}'"
    if spec.pattern is not None and not re.fullmatch(_perl_regex(spec.pattern), text):
        return value, "value does not match the regex pattern"
    problem = _format_problem(spec.format or "", text)
    if problem:
        return value, f"invalid format - {problem}"
    return text, None


# How many of each indexed option PVE accepts (the schema writes them ``net[n]``): qemu-server and
# pve-container's $MAX_* constants (PVE 9.1).
INDEXED_LIMITS: dict[str, int] = {
    "ide": 4, "sata": 6, "scsi": 31, "virtio": 16, "net": 32, "unused": 256, "mp": 256, "ipconfig": 32,
    "hostpci": 16, "usb": 14, "serial": 4, "parallel": 3, "numa": 8, "virtiofs": 10, "dev": 256, "link": 8,
}
_INDEXED = re.compile(r"([a-z]+)([0-9]+)")


def indexed_spec(endpoint: Endpoint, name: str) -> ParamSpec | None:
    """The spec of an indexed option (``scsi5`` for ``scsi[n]``), if the endpoint has it and the index is in range."""
    match = _INDEXED.fullmatch(name)
    if match is None or (len(match.group(2)) > 1 and match.group(2).startswith("0")):
        return None
    base, index = match.group(1), int(match.group(2))
    spec = endpoint.params.get(f"{base}[n]")
    if spec is None or index >= INDEXED_LIMITS.get(base, 0):
        return None
    return spec


def validate(endpoint: Endpoint, params: dict[str, Any], path_params: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """PVE's parameter verification: typed params, or the per-parameter errors it would answer with."""
    errors: dict[str, str] = {}
    typed: dict[str, Any] = {}
    merged = {**params, **path_params}
    for name, value in merged.items():
        spec = endpoint.params.get(name) or indexed_spec(endpoint, name)
        if spec is None:
            errors[name] = "property is not defined in schema and the schema does not allow additional properties"
            continue
        typed[name], problem = coerce(spec, value)
        if problem:
            errors[name] = problem
    for name, spec in endpoint.params.items():
        if not spec.optional and name not in merged and not name.endswith("[n]"):
            errors[name] = "property is missing and it is not optional"
    for name in path_params:
        typed.pop(name, None)
    return typed, errors
