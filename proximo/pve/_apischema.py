"""The PVE REST API schema of each release Proximo supports, as the one check for every call it plans, serves or sends.

Derived from Proxmox's own ``apidata.js`` by ``scripts/gen_api_schema.py``, one compact file per release
(``_data/pve-api-8.4.json.gz``, ``_data/pve-api-9.1.json.gz``); a cluster's ``/version`` chooses one
(``release_of``, ``schema_for``). Validation follows ``PVE::JSONSchema``: the same rules and, where it matters to a
reader, the same messages, property strings (``scsi0``, ``net0``, ``mp0``, ``agent``) included, key by key. Each
endpoint also keeps its ``permissions`` (what ``proximo.model._permissions`` checks), ``allowtoken`` and ``protected``.
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

from ..errors import UnknownRelease
from ._propstring import QUIRKS, PropertyStringError, Quirks, split_property_string


class ParamSpec(msgspec.Struct, frozen=True):
    """One property of a PVE JSON schema: an API parameter, or a key of a property string (``format_props``)."""

    type: str = "string"
    optional: bool = False
    enum: list[str] | None = None
    format: str | None = None
    pattern: str | None = None
    minimum: int | float | str | None = None
    maximum: int | float | str | None = None
    maxLength: int | None = None
    minLength: int | None = None
    default: Any = None
    requires: str | None = None  # another property that must be given with this one
    # a property string ("format": "property-string"): its keys
    format_props: dict[str, ParamSpec] | None = None
    # a key of a property string: the one a value without a key belongs to; or another name for ``alias``
    # (``keyAlias``: the key that records which name was written, as ``virtio=MAC`` records ``model=virtio``)
    default_key: bool = False
    alias: str | None = None
    keyAlias: str | None = None


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


# The releases Proximo ships a schema for, oldest first. A cluster is matched by major.minor: every 8.4.x is 8.4,
# every 9.1.x is 9.1 (the data is the newest docs of each: 8.4.2 and 9.1.3). 9.0 is not 9.1: 9.0 as released
# lacks parameters 9.1 added (allow-ksm, ha-managed, intel-tdx, lxc env/entrypoint, host-managed NICs, keepattrs
# mount points, ...), and 8.4's schema has what 9.0 removed (glusterfs, maxfiles, drive geometry). See
# docs/compatibility.md.
RELEASES: tuple[str, ...] = ("8.4", "9.1")
DEFAULT_RELEASE = "9.1"  # a model without ``/version`` (a hand-written snapshot), and the simulator by default


class _Doc(msgspec.Struct):
    pve_docs_version: str
    endpoints: list[Endpoint]
    release: str = DEFAULT_RELEASE
    source: dict[str, str] = {}  # where the data comes from: repository, file, commit


_SEGMENT = r"([^/]+)"
# Placeholder names are not all \w: /nodes/{node}/hardware/pci/{pci-id-or-mapping}
_PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")


def _compile(template: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(template)  # literal, name, literal, name, ..., literal
    return re.compile("^" + "".join(_SEGMENT if i % 2 else re.escape(p) for i, p in enumerate(parts)) + "$")


class ApiSchema:
    """One release's API: look up endpoints by concrete path and validate parameters against them."""

    def __init__(self, doc: _Doc) -> None:
        self.release = doc.release
        self.version = doc.pve_docs_version
        self.source = dict(doc.source)
        self.endpoints = doc.endpoints
        self.quirks = QUIRKS.get(doc.release, Quirks())
        self._by_key = {(e.method, e.path): e for e in doc.endpoints}
        # Most specific first: literal segments beat {placeholders}; a placeholder is one segment, so only the
        # templates with as many segments as the path can match it.
        templates = sorted({e.path for e in doc.endpoints}, key=lambda p: (p.count("{"), -p.count("/")))
        self._templates: dict[int, list[str]] = {}
        for t in templates:
            self._templates.setdefault(t.count("/"), []).append(t)
        # Compiled per segment count on the first path of that length: ~830 regexes for both releases cost 80 ms,
        # paid by every process that imports a pack, most of which match a handful of paths or none.
        self._matchers: dict[int, list[tuple[str, re.Pattern[str], tuple[str, ...]]]] = {}
        self._match = functools.lru_cache(maxsize=1 << 16)(self._match_uncached)  # a client asks for the same paths

    def endpoint(self, method: str, template: str) -> Endpoint | None:
        return self._by_key.get((method, template))

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        """The template a concrete path belongs to, and its path parameters."""
        found = self._match(path)
        return None if found is None else (found[0], dict(found[1]))

    def _match_uncached(self, path: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
        depth = path.count("/")
        matchers = self._matchers.get(depth)
        if matchers is None:
            matchers = self._matchers[depth] = [(t, _compile(t), tuple(_PLACEHOLDER.findall(t))) for t in self._templates.get(depth, ())]
        for template, rx, names in matchers:
            m = rx.match(path)
            if m:
                return template, tuple(zip(names, m.groups(), strict=True))
        return None

    def methods(self, template: str) -> list[str]:
        return [m for m in ("GET", "POST", "PUT", "DELETE") if (m, template) in self._by_key]

    def validate(self, endpoint: Endpoint, params: dict[str, Any], path_params: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """PVE's parameter verification as this release does it (see ``validate``)."""
        return validate(endpoint, params, path_params, quirks=self.quirks)

    def unchecked_formats(self, endpoint: Endpoint, params: dict[str, Any]) -> list[tuple[str, str]]:
        """The values of ``params`` whose registered format this release has but Proximo does not check (see
        ``unchecked_formats``)."""
        return unchecked_formats(endpoint, params, quirks=self.quirks)


# --- releases --------------------------------------------------------------------------------------------

_MAJOR_MINOR = re.compile(r"([0-9]+)\.([0-9]+)")


def release_of(version: dict[str, Any] | None) -> str:
    """The release (``major.minor``) a ``GET /version`` answer names: its ``version`` ("8.4.1"), else its
    ``release`` ("8.4"); DEFAULT_RELEASE when there is no answer; the text itself when it names none."""
    if not version:
        return DEFAULT_RELEASE
    return _release(*(text if isinstance(text, str) else None for text in (version.get("version"), version.get("release"))))


@functools.lru_cache(maxsize=64)
def _release(*texts: str | None) -> str:  # every call is checked against a model's release: read each answer once
    for text in texts:
        if text and (m := _MAJOR_MINOR.match(text)):
            return f"{int(m.group(1))}.{int(m.group(2))}"
    return str(next((text for text in texts if text), "?"))


@functools.cache
def schema(release: str = DEFAULT_RELEASE) -> ApiSchema:
    """The API of ``release`` (one of RELEASES), read once."""
    if release not in RELEASES:
        raise UnknownRelease(f"PVE {release} is not a release Proximo has a schema for (it has {', '.join(RELEASES)})")
    raw = resources.files("proximo.pve").joinpath(f"_data/pve-api-{release}.json.gz").read_bytes()
    return ApiSchema(msgspec.json.decode(gzip.decompress(raw), type=_Doc))


def schema_for(version: dict[str, Any] | None) -> ApiSchema:
    """The API of the cluster whose ``GET /version`` answered ``version``; UnknownRelease, in one line naming the
    releases Proximo knows, for any other release (reads need no schema: only plans are refused)."""
    release = release_of(version)
    if release not in RELEASES:
        shown = (version or {}).get("version") or release
        raise UnknownRelease(f"this cluster runs PVE {shown}, a release Proximo does not know: it plans for PVE "
                             f"{' and '.join(RELEASES)} only (any {RELEASES[0]}.x or {RELEASES[-1]}.x); reads still work")
    return schema(release)


# --- validation, after PVE::JSONSchema ------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?([0-9]+\.[0-9]+|[0-9]+\.|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_STORAGE_ID = re.compile(r"^[a-z][a-z0-9\-_.]*[a-z0-9]$", re.IGNORECASE)
_NODE = re.compile(r"^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$")
_CONTENT = {"images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import", "none"}

_USER = re.compile(r"^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+$")  # PVE::Auth::Plugin $user_regex @ $realm_regex
_TOKEN = re.compile(r"^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$")  # AccessControl $token_full_regex
_GROUP_OR_ROLE = re.compile(r"^[A-Za-z0-9.\-_]+$")  # AccessControl verify_groupname / verify_rolename
_IP_ALIAS = re.compile(r"^(dc/|guest/)?[A-Za-z][A-Za-z0-9\-_]+$")  # pve-firewall $ip_alias_pattern

# pve-common src/PVE/ParseUtils.pm $IPV4RE, $IPV6RE
_IPV4OCTET = r"(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])"
_IPV4 = rf"(?:(?:{_IPV4OCTET}\.){{3}}{_IPV4OCTET})"
_H16 = r"(?:[0-9a-fA-F]{1,4})"
_LS32 = rf"(?:(?:{_IPV4}|{_H16}:{_H16}))"
_IPV6 = (rf"(?:(?:(?:(?:{_H16}:){{6}}){_LS32})|(?:(?:::(?:{_H16}:){{5}}){_LS32})|(?:(?:(?:{_H16})?::(?:{_H16}:){{4}}){_LS32})"
         rf"|(?:(?:(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}){_LS32})|(?:(?:(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}){_LS32})"
         rf"|(?:(?:(?:(?:{_H16}:){{0,3}}{_H16})?::(?:{_H16}:){{1}}){_LS32})|(?:(?:(?:(?:{_H16}:){{0,4}}{_H16})?::){_LS32})"
         rf"|(?:(?:(?:(?:{_H16}:){{0,5}}{_H16})?::){_H16})|(?:(?:(?:(?:{_H16}:){{0,6}}{_H16})?::)))")
_IPV4_RE = re.compile(_IPV4)
_IPV6_RE = re.compile(_IPV6)
_CIDR4 = re.compile(rf"{_IPV4}/([0-9]+)")
_CIDR6 = re.compile(rf"{_IPV6}/([0-9]+)")
_DNS_NAME = re.compile(r"(([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)")
_MAC = re.compile(r"[a-f0-9][02468ace](?::[a-f0-9]{2}){5}", re.IGNORECASE)
_SIZE = re.compile(r"[0-9]+(\.[0-9]+)?([KMGT](?:iB)?)?")
_VOLUME_ID = re.compile(r"[a-z][a-z0-9\-_.]*[a-z0-9]:.+", re.IGNORECASE | re.DOTALL)


def _userid(v: str) -> str | None:
    """PVE::Auth::Plugin::verify_username."""
    if len(v) < 3:
        return f"user name '{v}' is too short"
    if len(v) > 64:
        return f"user name '{v}' is too long ({len(v)} > 64)"
    return None if _USER.match(v) else f"value '{v}' does not look like a valid user name"


def _storage_id(v: str) -> str | None:
    """pve-common PVE::JSONSchema::parse_id, for the storage ID format."""
    if len(v) < 2:
        return f"storage ID '{v}' cannot be shorter than 2 characters"
    return None if _STORAGE_ID.match(v) else f"storage ID '{v}' contains illegal characters"


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


def _cidr(v: str, rx: re.Pattern[str], longest: int) -> bool:
    """pve_verify_cidrv4 / pve_verify_cidrv6: the address, and a prefix longer than 7 and at most ``longest``."""
    m = rx.fullmatch(v)
    return m is not None and 7 < int(m.group(1)) <= longest


def _volume_id(v: str) -> str | None:
    """pve-storage PVE::Storage::Plugin::parse_volume_id."""
    return None if _VOLUME_ID.fullmatch(v) else f"unable to parse volume ID '{v}'"


def _mp_path(v: str) -> str | None:
    """pve-container PVE::LXC::Config::verify_lxc_mp_string."""
    return f"{v} contains illegal character sequences" if re.search(r"/\.\.?/|/\.\.?$|^\.\./", v) else None


def _when(ok: bool, message: str) -> str | None:
    return None if ok else message


# Formats whose violation we can state exactly (pve-common src/PVE/JSONSchema.pm register_format, and
# qemu-server, pve-container, pve-storage, pve-firewall, pve-access-control where they register theirs); other
# formats are checked by type only. A ``-list`` format checks each element of PVE::Tools::split_list with its
# base format (PVE::JSONSchema::check_format).
_IPV4_MASKS = frozenset(str(ipaddress.IPv4Network(f"0.0.0.0/{bits}").netmask) for bits in range(33))


def _vlan_id_or_range(value: str) -> str | None:
    """pve-common PVE::JSONSchema pve_verify_vlan_id_or_range: a tag 2-4094, or a rising range of them."""
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", value)
    if m is None:
        return f"invalid VLAN configuration '{value}'"
    for tag in (t for t in m.groups() if t):
        if not 2 <= int(tag) <= 4094:
            return f"invalid VLAN tag '{tag}'"
    if m.group(2) and int(m.group(1)) >= int(m.group(2)):
        return f"VLAN range must go from lower to higher tag '{value}'"
    return None


_FORMATS: dict[str, Any] = {
    "pve-storage-id": _storage_id,
    # pve-common pve_verify_node_name, pve_verify_vmid (their messages do not repeat the value)
    "pve-node": lambda v: _when(_NODE.match(v) is not None, "value does not look like a valid node name"),
    "pve-vmid": lambda v: _when(re.fullmatch(r"[1-9][0-9]{2,8}", v) is not None, "value does not look like a valid VM ID"),
    # PVE::JSONSchema pve-configid (snapshot names, config keys): [a-z][a-z0-9_-]+, case-insensitive
    "pve-configid": lambda v: None if re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]+", v) else f"invalid configuration ID '{v}'",
    "pve-storage-content": lambda v: None if v in _CONTENT else f"invalid content type '{v}'",
    "pve-userid": _userid,
    "pve-tokenid": lambda v: None if _TOKEN.match(v) else f"value '{v}' does not look like a valid token ID",
    "pve-groupid": lambda v: None if _GROUP_OR_ROLE.match(v) else f"group name '{v}' contains invalid characters",
    "pve-roleid": lambda v: None if _GROUP_OR_ROLE.match(v) else f"role name '{v}' contains invalid characters",
    "IPorCIDR": _ip_or_cidr,
    "IPorCIDRorAlias": lambda v: None if _IP_ALIAS.match(v) else _ip_or_cidr(v),
    # pve-common: parse_bridge_id, pve_verify_mac_addr, pve_verify_disk_size (parse_size), pve_verify_urlencoded,
    # pve_verify_ipv4/ipv6/ip, pve_verify_cidr(v4|v6), pve_verify_ipv4_config/ipv6_config, pve_verify_dns_name,
    # pve_verify_address, pve_verify_iface
    "pve-bridge-id": lambda v: _when(re.fullmatch(r"[-_.\w]+", v) is not None, f"invalid bridge ID '{v}'"),
    "mac-addr": lambda v: _when(_MAC.fullmatch(v) is not None, "value does not look like a valid unicast MAC address"),
    "disk-size": lambda v: _when(_SIZE.fullmatch(v) is not None, f"value does not look like a valid disk size: {v}"),
    "urlencoded": lambda v: _when(re.fullmatch(r"[-%a-zA-Z0-9_.!~*'()]*", v) is not None, f"invalid urlencoded string: {v}"),
    "ipv4": lambda v: _when(_IPV4_RE.fullmatch(v) is not None, "value does not look like a valid IPv4 address"),
    "ipv6": lambda v: _when(_IPV6_RE.fullmatch(v) is not None, "value does not look like a valid IPv6 address"),
    "ip": lambda v: _when(_IPV4_RE.fullmatch(v) is not None or _IPV6_RE.fullmatch(v) is not None,
                          "value does not look like a valid IP address"),
    "CIDRv4": lambda v: _when(_cidr(v, _CIDR4, 32), "value does not look like a valid IPv4 CIDR network"),
    "CIDRv6": lambda v: _when(_cidr(v, _CIDR6, 128), "value does not look like a valid IPv6 CIDR network"),
    "CIDR": lambda v: _when(_cidr(v, _CIDR4, 32) or _cidr(v, _CIDR6, 128), "value does not look like a valid CIDR network"),
    "pve-ipv4-config": lambda v: _when(v in ("dhcp", "manual") or _cidr(v, _CIDR4, 32),
                                       "value does not look like a valid ipv4 network configuration"),
    "pve-ipv6-config": lambda v: _when(v in ("auto", "dhcp", "manual") or _cidr(v, _CIDR6, 128),
                                       "value does not look like a valid ipv6 network configuration"),
    "dns-name": lambda v: _when(_DNS_NAME.fullmatch(v) is not None, "value does not look like a valid DNS name"),
    "address": lambda v: _when(_IPV4_RE.fullmatch(v) is not None or _IPV6_RE.fullmatch(v) is not None
                               or _DNS_NAME.fullmatch(v) is not None, f"value does not look like a valid address: {v}"),
    # pve_verify_ipv4mask: a dotted mask from $ipv4_mask_hash (0.0.0.0 to 255.255.255.255), never a prefix length
    "ipv4mask": lambda v: _when(v in _IPV4_MASKS, "value does not look like a valid IP netmask"),
    "pve-vlan-id-or-range": _vlan_id_or_range,
    "pve-iface": lambda v: _when(re.fullmatch(r"[a-z][a-z0-9_]{1,20}([:.][0-9]+)?", v, re.IGNORECASE) is not None,
                                 f"invalid network interface name '{v}'"),
    # pve-storage parse_volume_id; qemu-server verify_volume_id_or_qm_path / verify_volume_id_or_absolute_path
    "pve-volume-id": _volume_id,
    "pve-volume-id-or-absolute-path": lambda v: None if v.startswith("/") else _volume_id(v),
    "pve-volume-id-or-qm-path": lambda v: None if v in ("none", "cdrom") or v.startswith("/") else _volume_id(v),
    "pve-lxc-mp-string": _mp_path,
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


def _unchecked(spec: ParamSpec) -> str | None:
    """The name of ``spec``'s registered format if it is one ``_format_problem`` does not check."""
    if spec.format_props is not None or not spec.format:
        return None
    base = spec.format[:-5] if spec.format.endswith("-list") else spec.format
    return None if base in _FORMATS else spec.format


def unchecked_formats(endpoint: Endpoint, params: dict[str, Any], *,
                      quirks: Quirks = QUIRKS[DEFAULT_RELEASE]) -> list[tuple[str, str]]:
    """``(name, format)`` for each given value, or key of a given property string (``net0.bridge``), whose format PVE
    checks with a registered verifier that Proximo does not reproduce (qemu-server's ``pve-qm-boot``, the firewall's
    ``pve-fw-dport-spec``, ...): such a value passes validate() as a plain string, so a plan says it was not checked."""
    found: list[tuple[str, str]] = []
    for name, value in params.items():
        spec = endpoint.params.get(name) or indexed_spec(endpoint, name)
        if spec is None or value is None:
            continue
        if (fmt := _unchecked(spec)) is not None:
            found.append((name, fmt))
        elif spec.format_props is not None:
            props = _format(spec.format_props)
            try:
                keys = split_property_string(str(value), default_key=props.default_key, aliases=props.aliases,
                                             key_aliases=props.key_aliases, booleans=props.booleans, quirks=quirks)
            except PropertyStringError:
                continue  # validate() refuses it
            found += [(f"{name}.{key}", fmt) for key in keys
                      if key in props.props and (fmt := _unchecked(props.props[key])) is not None]
    return found


@functools.cache
def _perl_regex(pattern: str) -> re.Pattern[str]:
    """Perl's stringified ``qr//`` (``(?^:...)``, the token id and userid patterns) as a compiled Python pattern."""
    return re.compile(pattern.replace("(?^:", "(?:"))


class _Format(msgspec.Struct, frozen=True, eq=False):
    """A property string's format, with what splitting and checking it needs computed once (``_format``); compared
    and hashed by identity, so checks of it are cached (``_property_string_problem``)."""

    props: dict[str, ParamSpec]
    default_key: str | None
    aliases: dict[str, str]
    key_aliases: dict[str, str]
    booleans: frozenset[str]
    required: tuple[str, ...]  # keys that must be given (not optional, not an alias)


_FORMATS_SEEN: dict[int, _Format] = {}  # id(format_props) -> its _Format, which keeps them alive (ids are not reused)


def _format(props: dict[str, ParamSpec]) -> _Format:
    found = _FORMATS_SEEN.get(id(props))
    if found is None:
        found = _FORMATS_SEEN[id(props)] = _Format(
            props=props,
            default_key=next((key for key, spec in props.items() if spec.default_key), None),
            aliases={key: spec.alias for key, spec in props.items() if spec.alias},
            key_aliases={key: spec.keyAlias for key, spec in props.items() if spec.alias and spec.keyAlias},
            booleans=frozenset(key for key, spec in props.items() if spec.type == "boolean"),
            required=tuple(key for key, spec in props.items() if not spec.optional and not spec.alias))
    return found


@functools.lru_cache(maxsize=8192)
def _property_string_problem(fmt: _Format, text: str, path: str, quirks: Quirks) -> str | None:
    """PVE::JSONSchema::parse_property_string then check_object against the format: None, or what it dies with
    ("format error" and a line per key, as PVE::Exception prints the errors it carries). Cached: a plan's steps
    are checked several times (predicted, stamped, inverted, judged again at apply)."""
    try:
        values = split_property_string(text, default_key=fmt.default_key, aliases=fmt.aliases,
                                       key_aliases=fmt.key_aliases, booleans=fmt.booleans, quirks=quirks)
    except PropertyStringError as exc:
        return str(exc)
    # check_object: each property given against its spec, the required ones missing, what the format does not have
    prefix = f"{path}." if path else ""
    errors = {f"{prefix}{key}": "property is missing and it is not optional" for key in fmt.required if key not in values}
    for key, value in values.items():
        spec = fmt.props.get(key)
        where = f"{prefix}{key}"
        if spec is None:
            errors[where] = "property is not defined in schema and the schema does not allow additional properties"
            continue
        _, problem = coerce(spec, value, where, quirks=quirks, words=False)
        if problem:
            errors[where] = problem
        if spec.requires and spec.requires not in values:
            errors[f"{prefix}{spec.requires}"] = f"missing property required by '{where}'"
    if not errors:
        return None
    return "format error\n" + "\n".join(f"{key}: {message}" for key, message in sorted(errors.items()))


def coerce(spec: ParamSpec, value: Any, path: str = "", *, quirks: Quirks = QUIRKS[DEFAULT_RELEASE],
           words: bool = True) -> tuple[Any, str | None]:
    """Check one value like PVE's check_prop does, returning it in its typed form, or an error message.

    First its type (check_type: a boolean is 1 or 0, and, with ``words``, as an API parameter, also ``yes``,
    ``on``, ``true``...; a property string has read its words with parse_boolean already), then, in PVE's order: its format
    (a property string key by key, ``path`` naming it in the messages), pattern, maxLength, minLength, minimum
    and maximum, enum.
    """
    typed: Any
    if spec.type == "boolean":
        if isinstance(value, bool):
            return int(value), None
        if isinstance(value, int) and value in (0, 1):
            return value, None
        text = str(value).lower() if words else str(value)
        if text in (("1", "true", "yes", "on") if words else ("1",)):
            return 1, None
        if text in (("0", "false", "no", "off") if words else ("0",)):
            return 0, None
        return value, f"type check ('boolean') failed - got '{value}'"
    if spec.type in ("integer", "number"):
        if isinstance(value, bool):
            return value, f"type check ('{spec.type}') failed - got '{value}'"
        if spec.type == "integer":  # PVE::JSONSchema::is_integer
            if isinstance(value, float) or not (isinstance(value, int) or _INTEGER.fullmatch(str(value))):
                return value, f"type check ('integer') failed - got '{value}'"
            typed = int(str(value))
        else:  # is_number: no "inf", "nan", "1_000" or surrounding blanks, which float() takes
            if not (math.isfinite(value) if isinstance(value, float) else _NUMBER.fullmatch(str(value))):
                return value, f"type check ('number') failed - got '{value}'"
            typed = float(value)
    elif spec.type == "array" or spec.type == "any":
        return value, None
    elif isinstance(value, (dict, list)):
        return value, f"type check ('string') failed - got {type(value).__name__}"
    else:
        typed = str(value)
    text = str(value)
    if spec.format_props is not None:
        if problem := _property_string_problem(_format(spec.format_props), text, path, quirks):
            return value, f"invalid format - {problem}"
    elif spec.format and (problem := _format_problem(spec.format, text)):
        return value, f"invalid format - {problem}"
    if spec.pattern is not None and not _perl_regex(spec.pattern).fullmatch(text):
        return value, "value does not match the regex pattern"
    if spec.maxLength is not None and len(text) > spec.maxLength:
        return value, f"value may only be {spec.maxLength} characters long"
    if spec.minLength is not None and len(text) < spec.minLength:
        return value, f"value must be at least {spec.minLength} characters long"
    if (spec.minimum is not None or spec.maximum is not None) and _NUMBER.fullmatch(text):
        if spec.maximum is not None and float(text) > float(spec.maximum):
            return value, f"value must have a maximum value of {spec.maximum}"
        if spec.minimum is not None and float(text) < float(spec.minimum):
            return value, f"value must have a minimum value of {spec.minimum}"
    if spec.enum is not None and text not in spec.enum:  # PVE checks enum whatever the type
        return value, f"value '{text}' does not have a value in the enumeration '{', '.join(spec.enum)}'"
    return typed, None


# How many of each indexed option PVE accepts (the schema writes them ``net[n]``): qemu-server and
# pve-container's $MAX_* constants (the same in PVE 8.4 and 9.1).
INDEXED_LIMITS: dict[str, int] = {
    "ide": 4, "sata": 6, "scsi": 31, "virtio": 16, "net": 32, "unused": 256, "mp": 256, "ipconfig": 32,
    "hostpci": 16, "usb": 14, "serial": 4, "parallel": 3, "numa": 8, "virtiofs": 10, "dev": 256, "link": 8,
}
_INDEXED = re.compile(r"([a-z]+)([0-9]+)")


def split_indexed(name: str) -> tuple[str, int] | None:
    """An indexed option's base and index (``scsi5`` -> ``("scsi", 5)``; no leading zeros), or None."""
    match = _INDEXED.fullmatch(name)
    if match is None or (len(match.group(2)) > 1 and match.group(2).startswith("0")):
        return None
    return match.group(1), int(match.group(2))


def indexed_spec(endpoint: Endpoint, name: str) -> ParamSpec | None:
    """The spec of an indexed option (``scsi5`` for ``scsi[n]``), if the endpoint has it and the index is in range."""
    split = split_indexed(name)
    if split is None:
        return None
    base, index = split
    spec = endpoint.params.get(f"{base}[n]")
    if spec is None or index >= INDEXED_LIMITS.get(base, 0):
        return None
    return spec


def validate(endpoint: Endpoint, params: dict[str, Any], path_params: dict[str, str], *,
             quirks: Quirks = QUIRKS[DEFAULT_RELEASE]) -> tuple[dict[str, Any], dict[str, str]]:
    """PVE's parameter verification: typed params, or the per-parameter errors it would answer with.

    ``quirks`` are the release's way of splitting property strings (``ApiSchema.validate`` passes its own).
    """
    errors: dict[str, str] = {}
    typed: dict[str, Any] = {}
    merged = {**params, **path_params}
    for name, value in merged.items():
        spec = endpoint.params.get(name) or indexed_spec(endpoint, name)
        if spec is None:
            errors[name] = "property is not defined in schema and the schema does not allow additional properties"
            continue
        typed[name], problem = coerce(spec, value, name, quirks=quirks)
        if problem:
            errors[name] = problem
        if spec.requires and spec.requires not in merged:
            errors[spec.requires] = f"missing property required by '{name}'"
    for name, spec in endpoint.params.items():
        if not spec.optional and name not in merged and not name.endswith("[n]"):
            errors[name] = "property is missing and it is not optional"
    for name in path_params:
        typed.pop(name, None)
    return typed, errors
