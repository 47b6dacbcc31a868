"""A pinned certificate's SHA-256 fingerprint, checked where settings are read (no TLS or HTTP stack needed)."""

from __future__ import annotations

import re

_HEX_RE = re.compile(r"[0-9A-Fa-f]{64}")


def normalize_fingerprint(value: str) -> str:
    """Return a SHA-256 fingerprint as upper-case ``AA:BB:...``; accepts that form or plain hex."""
    text = value.strip()
    groups = text.split(":") if ":" in text else [text]
    compact = "".join(groups)
    if not _HEX_RE.fullmatch(compact) or (len(groups) > 1 and any(len(g) != 2 for g in groups)):
        raise ValueError("TLS fingerprint must be a SHA-256 digest: 64 hex digits, optionally as AA:BB:...")
    compact = compact.upper()
    return ":".join(compact[i : i + 2] for i in range(0, 64, 2))
