"""Settings from ``PROXIMO_*`` environment variables, read once, with the token secret kept out of reprs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import platformdirs

from ._clusters import SINGLE, ClusterConfig, load_clusters
from ._secret import Secret
from ._types import Risk
from .errors import BadInput
from .pve._fingerprint import normalize_fingerprint

MAX_PLAN_TTL = 7 * 24 * 3600


# the single-cluster variables: a clusters file says all of this per cluster, so they may not be set beside it
_SINGLE_VARIABLES = ("PROXIMO_URL", "PROXIMO_TOKEN_ID", "PROXIMO_TOKEN_SECRET", "PROXIMO_TOKEN_FILE", "PROXIMO_CA_FILE",
                     "PROXIMO_TLS_FINGERPRINT")


class Settings(msgspec.Struct, kw_only=True):
    # The cluster these settings reach (url, token, TLS and policy are its own): "default" for the single-cluster
    # variables; with PROXIMO_CLUSTERS, the one chosen (--cluster, PROXIMO_CLUSTER, the file's default, the only one),
    # or "" while none is (then nothing reaches a cluster: see ``for_cluster``).
    cluster: str = SINGLE
    clusters: dict[str, ClusterConfig] = {}  # PROXIMO_CLUSTERS, by name in file order; empty: the single variables
    default_cluster: str = ""  # the clusters file's ``default`` key
    url: str = ""
    token_id: str = ""
    token_secret: Secret | None = None
    ca_file: str | None = None
    tls_fingerprint: str | None = None
    plan_ttl: int = 600
    # PROXIMO_PLAN_READ_AGE: a plan may use the cluster as read up to this many seconds ago (a long-running MCP or
    # A2A server, where one read of a large cluster takes seconds); 0: every plan reads afresh. Apply always re-reads.
    plan_read_age: float = 0.0
    auto_approve: Risk = Risk.MEDIUM
    home: Path = Path(".")
    ledger_path: Path = Path("ledger.sqlite")
    # PROXIMO_DB: postgresql://... puts the ledger and the plans in one PostgreSQL database that any number of Proximo
    # processes on any number of machines share (proximo/trust/_pg.py); unset: SQLite files in PROXIMO_HOME
    db: Secret | None = None
    db_password: Secret | None = None  # PROXIMO_DB's password, scrubbed from what Proximo records and says
    db_timeout: float = 5.0  # PROXIMO_DB_TIMEOUT: seconds to wait for a connection before refusing
    ledger_key: Secret | None = None  # PROXIMO_LEDGER_KEY (else the key file in the state directory)
    ledger_anchor: str = ""  # PROXIMO_LEDGER_ANCHOR: where each record's (ledger id, seq, hash) is also sent
    ledger_anchor_token: Secret | None = None  # PROXIMO_LEDGER_ANCHOR_TOKEN: bearer token for http(s) anchors
    disabled_packs: list[str] = []
    admin_sources: list[str] = []
    policy_path: Path | None = None  # PROXIMO_POLICY: the operator's limits (see proximo/trust/_policy.py)
    policy_table: dict[str, object] | None = None  # a cluster's inline policy table (PROXIMO_CLUSTERS)
    approvers: list[str] = []  # PROXIMO_APPROVERS: unix accounts (names or uids) that may approve over the service socket
    agents: list[str] = []  # PROXIMO_AGENTS: unix accounts that may connect to the service as agents (empty: any)
    service_dir: Path = Path("/run/proximo")  # PROXIMO_SERVICE_DIR: where the service's sockets are
    # the lxc-exec pack (docs/packs/lxc-exec.md): off unless PROXIMO_ENABLE_EXEC=1; only the CTIDs in PROXIMO_EXEC_ALLOW
    exec_enabled: bool = False
    exec_allow: list[str] = []  # CTIDs as text, or "*" (every container); empty: none
    ssh_user: str = "root"  # PROXIMO_SSH_USER
    ssh_key: Path | None = None  # PROXIMO_SSH_KEY: the private key file (never read but by the executor's ssh)
    ssh_known_hosts: Path | None = None  # PROXIMO_SSH_KNOWN_HOSTS (default $PROXIMO_HOME/known_hosts)
    ssh_port: int = 22  # PROXIMO_SSH_PORT

    def cluster_names(self) -> list[str]:
        """Every cluster configured, in the clusters file's order (the single-cluster variables: one)."""
        return list(self.clusters) or [self.cluster]

    def for_cluster(self, name: str | None) -> Settings:
        """These settings on cluster ``name`` (None: the one already chosen, the default, or the only one); a name
        that is not configured, or none where several are and none is the default, is a one-line BadInput."""
        if not self.clusters:
            if name is None or name == self.cluster:
                return self
            raise BadInput(f"no cluster {name[:80]!r}: one cluster is configured, {self.cluster!r} (PROXIMO_URL); "
                           "PROXIMO_CLUSTERS configures several")
        if name is None:
            if self.cluster:
                return self
            raise BadInput(f"several clusters are configured ({', '.join(self.clusters)}): name one (--cluster NAME, "
                           "or the cluster parameter), or set default in PROXIMO_CLUSTERS")
        config = self.clusters.get(name)
        if config is None:
            raise BadInput(f"no cluster {name[:80]!r}: the clusters are {', '.join(self.clusters)}")
        return msgspec.structs.replace(self, cluster=name, url=config.url, token_id=config.token_id,
                                       token_secret=config.token_secret, ca_file=config.ca_file,
                                       tls_fingerprint=config.tls_fingerprint, policy_path=config.policy_path,
                                       policy_table=config.policy_table)

    def scrub(self, value: Any) -> Any:
        """``value`` without any secret these settings hold (this cluster's token secret, every other's in
        PROXIMO_CLUSTERS, and PROXIMO_DB's password), wherever it occurs: what Proximo says or records may echo input that carried one."""
        secrets = [self.token_secret, *(c.token_secret for c in self.clusters.values()), self.db_password]
        for secret in dict.fromkeys(s for s in secrets if s):  # the chosen cluster's is also in clusters
            value = secret.scrub(value)
        return value

    def exec_allows(self, ctid: int) -> bool:
        """Whether PROXIMO_EXEC_ALLOW lets a command run in this container (fail closed: nothing when empty)."""
        return "*" in self.exec_allow or str(ctid) in self.exec_allow

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("PROXIMO_HOME") or platformdirs.user_data_dir("proximo"))
        clusters: dict[str, ClusterConfig] = {}
        default_cluster = ""
        if env.get("PROXIMO_CLUSTERS"):
            if both := [name for name in _SINGLE_VARIABLES if env.get(name)]:
                raise BadInput(f"PROXIMO_CLUSTERS and {', '.join(both)} are both set: the clusters file names each "
                               "cluster's URL, token and TLS; unset the single-cluster variables")
            clusters, default_cluster = load_clusters(env["PROXIMO_CLUSTERS"])
        secret = env.get("PROXIMO_TOKEN_SECRET")
        if not secret and env.get("PROXIMO_TOKEN_FILE"):
            try:
                secret = Path(env["PROXIMO_TOKEN_FILE"]).read_text().strip()
            except OSError as exc:
                raise BadInput(f"PROXIMO_TOKEN_FILE: cannot read {env['PROXIMO_TOKEN_FILE']}: {exc.strerror}") from None
        try:
            ttl = int(env.get("PROXIMO_PLAN_TTL", "600"))
        except ValueError:
            ttl = 0
        if not 1 <= ttl <= MAX_PLAN_TTL:  # a plan born expired is no plan; a far expiry overflows the clock
            raise BadInput(f"PROXIMO_PLAN_TTL must be a whole number of seconds from 1 to {MAX_PLAN_TTL} (a week)")
        fingerprint = env.get("PROXIMO_TLS_FINGERPRINT") or None
        if fingerprint is not None:
            try:
                normalize_fingerprint(fingerprint)
            except ValueError as exc:
                raise BadInput(f"PROXIMO_TLS_FINGERPRINT: {exc}") from None
        ca_file = env.get("PROXIMO_CA_FILE") or None
        if ca_file is not None and not Path(ca_file).is_file():
            raise BadInput(f"PROXIMO_CA_FILE: no such file: {ca_file}")
        try:
            read_age = float(env.get("PROXIMO_PLAN_READ_AGE", "0"))
        except ValueError:
            read_age = -1.0
        if not 0 <= read_age <= 300:  # NaN fails both comparisons
            raise BadInput("PROXIMO_PLAN_READ_AGE must be a number of seconds from 0 to 300")
        level = env.get("PROXIMO_AUTO_APPROVE", "MEDIUM").upper()
        if level not in ("LOW", "MEDIUM", "HIGH"):
            raise BadInput("PROXIMO_AUTO_APPROVE must be LOW, MEDIUM or HIGH (CRITICAL always needs a person)")
        key = env.get("PROXIMO_LEDGER_KEY")
        anchor = env.get("PROXIMO_LEDGER_ANCHOR", "").strip()
        anchor_token = Secret(env["PROXIMO_LEDGER_ANCHOR_TOKEN"]) if env.get("PROXIMO_LEDGER_ANCHOR_TOKEN") else None
        if anchor or anchor_token:  # a bad value stops start-up here, in one line (the anchors bring the HTTP stack)
            from .trust._anchors import sinks_from_spec

            sinks_from_spec(anchor, token=anchor_token)
        db = env.get("PROXIMO_DB", "").strip()
        if db and not db.startswith(("postgresql://", "postgres://")):  # never echoed: it may hold a password
            raise BadInput("PROXIMO_DB must be a postgresql:// URL (unset it for the SQLite ledger in PROXIMO_HOME)")
        try:
            db_timeout = float(env.get("PROXIMO_DB_TIMEOUT", "5"))
        except ValueError:
            db_timeout = 0.0
        if not 0.5 <= db_timeout <= 120:  # NaN fails both comparisons
            raise BadInput("PROXIMO_DB_TIMEOUT must be a number of seconds from 0.5 to 120")
        enable = env.get("PROXIMO_ENABLE_EXEC", "").strip()
        if enable not in ("", "0", "1"):
            raise BadInput("PROXIMO_ENABLE_EXEC must be 1 (on) or 0 (off)")
        allow = _names(env.get("PROXIMO_EXEC_ALLOW", ""))
        for ctid in allow:
            if ctid != "*" and not (ctid.isascii() and ctid.isdigit() and 100 <= int(ctid) <= 999999999):
                raise BadInput(f"PROXIMO_EXEC_ALLOW: {ctid!r} is not a CTID (or '*' for every container)")
        try:
            ssh_port = int(env.get("PROXIMO_SSH_PORT", "22"))
        except ValueError:
            ssh_port = 0
        if not 0 < ssh_port < 65536:
            raise BadInput("PROXIMO_SSH_PORT must be a port number")
        policy_path = Path(env["PROXIMO_POLICY"]) if env.get("PROXIMO_POLICY") else None
        # a cluster with no policy of its own has PROXIMO_POLICY's
        clusters = {name: msgspec.structs.replace(c, policy_path=policy_path)
                    if c.policy_path is None and c.policy_table is None else c for name, c in clusters.items()}
        settings = cls(
            cluster="" if clusters else SINGLE,
            clusters=clusters,
            default_cluster=default_cluster,
            url=env.get("PROXIMO_URL", "").rstrip("/"),
            token_id=env.get("PROXIMO_TOKEN_ID", ""),
            token_secret=Secret(secret) if secret else None,
            ca_file=ca_file,
            tls_fingerprint=fingerprint,
            plan_ttl=ttl,
            plan_read_age=read_age,
            auto_approve=Risk(level),
            home=home,
            ledger_path=Path(env.get("PROXIMO_LEDGER") or home / "ledger.sqlite"),
            db=Secret(db) if db else None,
            db_password=_db_password(db),
            db_timeout=db_timeout,
            ledger_key=Secret(key) if key else None,
            ledger_anchor=anchor,
            ledger_anchor_token=anchor_token,
            disabled_packs=[p for p in env.get("PROXIMO_DISABLED_PACKS", "").split(",") if p.strip()],
            admin_sources=[s for s in env.get("PROXIMO_ADMIN_SOURCES", "").split(",") if s.strip()],
            policy_path=policy_path,
            approvers=_names(env.get("PROXIMO_APPROVERS", "")),
            agents=_names(env.get("PROXIMO_AGENTS", "")),
            service_dir=Path(env.get("PROXIMO_SERVICE_DIR") or "/run/proximo"),
            exec_enabled=enable == "1",
            exec_allow=[str(int(c)) if c != "*" else c for c in allow],
            ssh_user=env.get("PROXIMO_SSH_USER") or "root",
            ssh_key=Path(env["PROXIMO_SSH_KEY"]) if env.get("PROXIMO_SSH_KEY") else None,
            ssh_known_hosts=Path(env.get("PROXIMO_SSH_KNOWN_HOSTS") or home / "known_hosts"),
            ssh_port=ssh_port,
        )
        chosen = env.get("PROXIMO_CLUSTER") or None  # the cluster a process works on, where it is not named per call
        if not clusters:
            return settings.for_cluster(chosen)
        chosen = chosen or default_cluster or (next(iter(clusters)) if len(clusters) == 1 else None)
        return settings.for_cluster(chosen) if chosen else settings


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _db_password(dsn: str) -> Secret | None:
    if not dsn:
        return None
    from .trust._pg import dsn_password  # the DSN's parsing only: psycopg itself is imported when a store is opened

    password = dsn_password(dsn)
    return Secret(password) if password else None
