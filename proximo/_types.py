"""The contracts that tools, faces and the ledger rely on (docs/architecture.md, "Contracts"), as msgspec structs.

A mutating tool never changes anything: its pack returns a ``Draft`` (the steps, plus what it wants to say),
and the host turns it into a ``Plan`` (prediction, impacts, risk, undo, expiry, fingerprint).
"""

from __future__ import annotations

import enum
from typing import Any, Literal

import msgspec

HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]


class ApiCall(msgspec.Struct, frozen=True, tag="api", tag_field="kind"):
    """One request to the PVE REST API; ``path`` is relative to ``/api2/json``."""

    method: HttpMethod
    path: str
    params: dict[str, Any] = {}

    def describe(self) -> str:
        """One line for people and the ledger: secret values (``password``, ``keyring``, ...) are redacted."""
        from .trust._ledger import REDACTED, is_secret_key

        args = " ".join(f"{k}={REDACTED if is_secret_key(k) else v}" for k, v in sorted(self.params.items()))
        return f"{self.method} {self.path}" + (f" {args}" if args else "")


class SshExec(msgspec.Struct, frozen=True, tag="ssh", tag_field="kind"):
    """``pct exec`` inside a container, over ssh to its node (the lxc-exec pack, opt-in).

    ``address`` is where the executor connects: the node's address in ``/cluster/status`` when the plan was made
    (the host checks it against the model again). ``argv`` is one list, never a shell string: the executor quotes
    each argument for the node's shell (``proximo/trust/_ssh.py``). ``timeout`` (seconds) and ``max_output``
    (bytes of stdout plus stderr) are enforced; past them the command is cut and the step fails, saying so.
    """

    node: str
    ctid: int
    argv: list[str]
    address: str = ""
    timeout: float = 60.0
    max_output: int = 1048576

    def describe(self) -> str:
        import shlex

        return f"ssh {self.node} ({self.address}): pct exec {self.ctid} -- " + " ".join(shlex.quote(a) for a in self.argv)


Step = ApiCall | SshExec


class Risk(enum.Enum):
    """LOW means "no state change", not "safe" (docs/architecture.md, "Risk")."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _RISK_ORDER.index(self)

    def __ge__(self, other: Risk) -> bool:  # type: ignore[override]
        return self.rank >= other.rank

    def __gt__(self, other: Risk) -> bool:  # type: ignore[override]
        return self.rank > other.rank

    def __le__(self, other: Risk) -> bool:  # type: ignore[override]
        return self.rank <= other.rank

    def __lt__(self, other: Risk) -> bool:  # type: ignore[override]
        return self.rank < other.rank


_RISK_ORDER = [Risk.LOW, Risk.MEDIUM, Risk.HIGH, Risk.CRITICAL]

Effect = Literal[
    "wont-boot",
    "degraded",
    "data-loss",
    "loses-network",
    "unreachable",
    "lockout",
    "downtime",
    "traffic-blocked",
    "traffic-opened",
    "privilege-gain",
    "privilege-loss",
    "backup-fails",
    "recovery-point-lost",
    "replication-fails",
    "ha-error",
    "quorum-risk",
    "unpredictable",
]

#: The least risk an impact of each effect implies; analysers may raise it (``Impact.risk``).
EFFECT_RISK: dict[str, Risk] = {
    "data-loss": Risk.CRITICAL,
    "lockout": Risk.CRITICAL,
}


class Impact(msgspec.Struct, frozen=True, omit_defaults=True):
    """One thing outside the named object that the change affects, found by diffing before and after."""

    target: str
    effect: Effect
    reason: str
    risk: Risk | None = None  # an analyser's floor for the plan's risk, beyond the default for the effect
    needs_person: bool = False  # never auto-approved, whatever PROXIMO_AUTO_APPROVE says (removing protection)
    blocks: bool = False  # no approval can accept it: the plan is blocked with ``reason`` (Proximo's own safety rules)

    def floor(self) -> Risk:
        return self.risk or EFFECT_RISK.get(self.effect, Risk.HIGH)


class Irreversible(msgspec.Struct, frozen=True):
    """Returned instead of undo steps: why this change cannot be undone."""

    reason: str


class Draft(msgspec.Struct, frozen=True):
    """What a pack returns for a mutating tool: the steps, and what only the pack can say about them."""

    steps: list[Step]
    blockers: list[str] = []
    notes: list[str] = []
    target: str = ""  # the object a person must type to approve a CRITICAL plan, e.g. "local-zfs"


class LedgerRef(msgspec.Struct, frozen=True):
    seq: int
    head: str
    chain: str  # "sha256" | "hmac-sha256"; "unreachable" (seq 0, no head): a read answered while the shared ledger was down


class ClusterRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The cluster a plan was made on: a plan applies there and nowhere else (docs/configuration.md, "Several clusters").

    ``name`` is the operator's (PROXIMO_CLUSTERS; ``default`` for PROXIMO_URL), ``url`` where its API was reached
    ("" offline), ``id`` what the cluster says it is (``cluster:<corosync name>`` or ``node:<name>``, from
    /cluster/status): a name re-pointed at another URL, or a URL that now answers as another cluster, refuses it."""

    name: str
    url: str
    id: str


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """A dry run: exactly the steps that apply will run, and what they will do to the cluster."""

    plan_id: str
    tool: str
    params: dict[str, Any]
    risk: Risk
    reversible: bool
    blocked: bool
    blockers: list[str]
    complete: bool
    unseen: list[str]
    impacts: list[Impact]
    steps: list[Step]
    undo: list[Step] | None
    undo_note: str
    notes: list[str]
    target: str
    created_at: str
    expires_at: str
    source: str  # "live:<url>" or "snapshot:<sha256 of the file>"
    fingerprint: dict[str, str]
    hash: str = ""
    ledger: LedgerRef | None = None
    undo_of: int | None = None  # the ledger seq whose change this plan undoes
    cluster: ClusterRef | None = None  # None: a plan made before Proximo named clusters (its ``source`` binds it)

    def content_hash_fields(self) -> dict[str, Any]:
        """What the plan hash covers: everything that decides what runs and what was shown."""
        data = msgspec.to_builtins(self)
        for key in ("hash", "ledger"):
            data.pop(key, None)
        if data.get("cluster") is None:  # a plan stored before clusters were named hashes as it did then
            data.pop("cluster", None)
        return data


class Operator(msgspec.Struct, frozen=True):
    """Who manages the cluster, for lockout analysis (docs/architecture.md, "Who the operator is").

    ``token_id`` is Proximo's own API token (``user@realm!tokenid``; never the secret). ``admin_sources`` are
    the addresses or CIDRs people manage the cluster from: ``PROXIMO_ADMIN_SOURCES`` (or ``--admin-source``),
    else the local address Proximo reaches the API from, if known; empty when neither is known. ``api_host`` is
    the host Proximo reaches the API at (``PROXIMO_URL``'s: a node's address or name); empty offline.
    """

    token_id: str = ""
    admin_sources: list[str] = []
    api_host: str = ""


class Change(msgspec.Struct, frozen=True):
    """What analysers are told about a plan: the tool, its params, the steps, and who the operator is."""

    tool: str
    params: dict[str, Any]
    steps: list[Step]
    operator: Operator = Operator()
