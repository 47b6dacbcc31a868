"""One model of Proxmox VE: simulator, predictor and offline snapshot.

docs/architecture.md, "One model of Proxmox, three uses", says how the three share it.
"""

from ._cluster import (
    CREDENTIAL_STORAGE_TYPES,
    SHARED_STORAGE_TYPES,
    ClusterModel,
    Guest,
    Node,
    Task,
    as_int,
    file_digest,
    moved_volumes,
    split_list,
    unread_in,
)
from ._drives import GuestVolume, guest_volumes, remember_volumes
from ._firewall import Firewall, FirewallGroup, FirewallIpset, FirewallLevel, current_digest, fw_digest, options_digest
from ._semantics import Call, Semantics, SemanticsRegistry
from ._snapshot import LEAN_READ, READ_PARTS, SNAPSHOT_FORMAT, check_nothing_unread_asked, collect, dump_snapshot, from_api, load_snapshot, missing_reads, render, render_members, snapshot_paths

__all__ = [
    "CREDENTIAL_STORAGE_TYPES",
    "LEAN_READ",
    "READ_PARTS",
    "SHARED_STORAGE_TYPES",
    "SNAPSHOT_FORMAT",
    "Call",
    "Firewall",
    "current_digest",
    "FirewallGroup",
    "FirewallIpset",
    "FirewallLevel",
    "fw_digest",
    "options_digest",
    "ClusterModel",
    "Guest",
    "GuestVolume",
    "Node",
    "Semantics",
    "SemanticsRegistry",
    "Task",
    "as_int",
    "check_nothing_unread_asked",
    "collect",
    "file_digest",
    "dump_snapshot",
    "from_api",
    "guest_volumes",
    "remember_volumes",
    "load_snapshot",
    "missing_reads",
    "moved_volumes",
    "render",
    "render_members",
    "snapshot_paths",
    "split_list",
    "unread_in",
]
