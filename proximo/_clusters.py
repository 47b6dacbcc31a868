"""Several clusters from one Proximo: the clusters file (``PROXIMO_CLUSTERS``, TOML), read and checked strictly.

    default = "east"                       # optional: the cluster used when none is named

    [[cluster]]
    name = "east"                          # an id: lower-case ASCII letters, digits, '-' and '_' (63 at most)
    url = "https://pve-east.example:8006"
    token_id = "proximo@pve!agent"
    token_file = "/etc/proximo/east.token" # the secret, alone in a file (never in this one)
    ca_file = "/etc/proximo/east-ca.pem"   # or tls_fingerprint = "AA:BB:..." (the certificate pinned)
    policy = "/etc/proximo/east.toml"      # a policy file, or an inline table: policy = { max_risk = "HIGH" }

Relative paths are read from the clusters file's folder. Without ``PROXIMO_CLUSTERS`` the single-cluster
variables (``PROXIMO_URL`` ...) make one cluster named ``default``. Every problem is one line naming the file and
the cluster, and Proximo does not start: an unknown key, a duplicate or malformed name, an unreadable token file.

A plan is bound to its cluster's identity (:class:`~proximo._types.ClusterRef`): the name here, the URL, and what
the cluster says it is (:func:`cluster_identity`), so a name re-pointed at another cluster refuses the plans made
on the old one.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ._secret import Secret
from .errors import BadInput
from .pve._fingerprint import normalize_fingerprint

if TYPE_CHECKING:  # settings are read before the model is imported (``proximo --help`` needs neither)
    from .model import ClusterModel

SINGLE = "default"
"""The name of the one cluster the single-cluster variables (``PROXIMO_URL`` ...) configure."""

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")  # a character class of ASCII only: no unicode digits, no '.', no '/'
_CLUSTER_KEYS = ("name", "url", "token_id", "token_file", "ca_file", "tls_fingerprint", "policy")
_FILE_KEYS = ("default", "cluster")


class ClusterConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One cluster of the clusters file, checked: what ``Settings.for_cluster`` puts in place of the single variables."""

    name: str
    url: str
    token_id: str
    token_secret: Secret | None = None
    ca_file: str | None = None
    tls_fingerprint: str | None = None
    policy_path: Path | None = None
    policy_table: dict[str, Any] | None = None


def check_cluster_name(name: object, where: str = "cluster") -> str:
    """``name`` if it is a cluster id (``[a-z0-9][a-z0-9_-]*``, at most 63 characters), else a one-line BadInput."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name)[:80]
        raise BadInput(f"{where}: {shown} is not a cluster name (lower-case ASCII letters, digits, '-' and '_'; "
                       "at most 63, starting with a letter or digit)")
    return name


def load_clusters(path: str | Path) -> tuple[dict[str, ClusterConfig], str]:
    """The clusters in ``path``, by name in file order, and the ``default`` key ("" when the file has none)."""
    where = f"PROXIMO_CLUSTERS: {path}"
    try:
        raw = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise BadInput(f"{where}: cannot read it: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{where}: not valid TOML: {exc}") from None
    _no_unknown(raw, _FILE_KEYS, where)
    entries = raw.get("cluster")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise BadInput(f"{where}: no clusters: add one [[cluster]] table per cluster (name, url, token_id, token_file)")
    base = Path(path).parent
    clusters: dict[str, ClusterConfig] = {}
    for index, entry in enumerate(entries, 1):
        name = check_cluster_name(entry.get("name"), f"{where}: cluster #{index}: name")
        if name in clusters:
            raise BadInput(f"{where}: cluster {name!r} is named twice (names are ids: each once)")
        clusters[name] = _cluster(entry, f"{where}: cluster {name!r}", base)
    default = raw.get("default", "")
    if default != "":
        check_cluster_name(default, f"{where}: default")
        if default not in clusters:
            raise BadInput(f"{where}: default {default!r} is none of the clusters ({', '.join(clusters)})")
    return clusters, default


def _no_unknown(table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in known:
            raise BadInput(f"{where}: unknown key {str(key)[:60]!r} (known: {', '.join(known)})")


def _text(entry: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = entry.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where}: {key} must be " + ("given, as text" if value is None else "text, not empty"))
    return value.strip()


def _cluster(entry: dict[str, Any], where: str, base: Path) -> ClusterConfig:
    _no_unknown(entry, _CLUSTER_KEYS, where)
    url = _text(entry, "url", where).rstrip("/")
    if not re.fullmatch(r"https?://[^\s/?#]+", url, flags=re.ASCII):
        raise BadInput(f"{where}: url must be http(s)://HOST[:PORT] (the API's own path is added), not {url[:80]!r}")
    token_id = _text(entry, "token_id", where)
    if not re.fullmatch(r"[^\s!@]+@[^\s!@]+![A-Za-z][A-Za-z0-9._-]*", token_id, flags=re.ASCII):
        raise BadInput(f"{where}: token_id must be user@realm!tokenname, not {token_id[:80]!r}")
    token_file = base / _text(entry, "token_file", where)
    try:
        secret = token_file.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{where}: token_file {token_file}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    if not secret:
        raise BadInput(f"{where}: token_file {token_file} is empty")
    fingerprint = _text(entry, "tls_fingerprint", where, required=False) or None
    if fingerprint is not None:
        try:
            normalize_fingerprint(fingerprint)
        except ValueError as exc:
            raise BadInput(f"{where}: tls_fingerprint: {exc}") from None
    ca = _text(entry, "ca_file", where, required=False)
    ca_file = str(base / ca) if ca else None
    if ca_file is not None and not Path(ca_file).is_file():
        raise BadInput(f"{where}: ca_file: no such file: {ca_file}")
    policy = entry.get("policy")
    policy_path: Path | None = None
    policy_table: dict[str, Any] | None = None
    if isinstance(policy, dict):
        from .trust._policy import policy_from_table

        policy_from_table(policy, f"{where}: policy")  # checked now: a bad policy stops the start, as PROXIMO_POLICY's
        policy_table = policy
    elif policy is not None:
        policy_path = base / _text(entry, "policy", where)
        if not policy_path.is_file():
            raise BadInput(f"{where}: policy: no such file: {policy_path}")
    return ClusterConfig(name=str(entry["name"]), url=url, token_id=token_id, token_secret=Secret(secret), ca_file=ca_file,
                         tls_fingerprint=fingerprint, policy_path=policy_path, policy_table=policy_table)


def approve_line(command: str, settings: Any, plan_id: str) -> str:
    """What a person types to approve a plan (``command``: ``proximo approve``): with several clusters configured, on
    the cluster of ``settings`` (the host's that made it)."""
    return f"{command} --cluster {settings.cluster} {plan_id}" if settings.clusters else f"{command} {plan_id}"


def cluster_identity(model: ClusterModel) -> str:
    """What a cluster says it is: ``cluster:<name>`` from its /cluster/status row (corosync's cluster name), or
    ``node:<name>`` for a node on its own (PVE lists no cluster row then), or "" when neither is known."""
    rows = model.cluster_status
    for row in rows:
        if row.get("type") == "cluster" and row.get("name"):
            return f"cluster:{row['name']}"
    nodes = sorted(str(r.get("name")) for r in rows if r.get("type") == "node" and r.get("name"))
    return f"node:{nodes[0]}" if len(nodes) == 1 else ""
