"""Hostile values for the generated tests (``test_property_hostile.py``, ``test_model_based.py``), and the figures
they count: ``bench/security_figures.py`` runs them with ``PROXIMO_FIGURES_FILE`` set and reports what they did."""

from __future__ import annotations

import atexit
import json
import os
from collections import Counter
from typing import Any

from hypothesis import strategies as st

# the profile's examples a generated test (tests/conftest.py); tests that need more or fewer scale from it
EXAMPLES = int(os.environ.get("PROXIMO_HYPOTHESIS_EXAMPLES", "40"))
FIGURES: Counter[str] = Counter()  # cases, refusals, sequences, steps, faults, writes_without_approval, ...

# traversal and its encodings, separators, NUL and other controls, unicode digits and confusables, bidi, shell,
# query and fragment characters, over-long and empty strings, numbers as text
HOSTILE_TEXT: list[str] = [
    "..", "../../etc/passwd", "local-zfs/../..", "./local", "%2e%2e", "%2e%2e%2f", "%2E%2E/", "pve1%2F..%2Fpve2", "..%2F",
    "%252e%252e", "a/b", "/", "//", "\\..\\", "\x00", "local\x00zfs", "\n", "x\r\ny", "\u0085", "\u2028", "\u202e", "\ufeff",
    "１０５", "١٠٥", "߁", "lоcal-zfs", "ｐｖｅ１", "pve1\u200b", "Ω", "🙂", "x" * 5000, "y" * 70, "", " ", "105 ", " 105",
    "-1", "0", "1e3", "0x69", "9" * 40, "?a=1", "#frag", "&x=1", "=", "key=value", ";rm -rf /", "$(id)", "`id`", "*",
    "{vmid}", "%s%n", "<script>",
]
_MARKS = ("..", "%", "\x00", "\\", "\n", "\r", "$(", "`", "{", "<", "?", "#", "&", ";", "*")


def hostile_marker(value: str) -> bool:
    """A value that must never reach Proxmox as part of a path once refused: traversal, encodings, controls,
    non-ASCII, shell or URL syntax, or over-long."""
    return len(value) > 64 or any(m in value for m in _MARKS) or any(ord(c) > 127 for c in value)


def hostile_values() -> st.SearchStrategy[Any]:
    """Hostile strings, random text, and the wrong JSON types: null, booleans, floats (NaN, inf), huge integers,
    lists (a huge one), objects."""
    return st.one_of(
        st.sampled_from(HOSTILE_TEXT), st.sampled_from(HOSTILE_TEXT), st.text(max_size=16),
        st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(),
        st.lists(st.sampled_from(HOSTILE_TEXT), max_size=3), st.just(list(range(10_000))),
        st.dictionaries(st.sampled_from(HOSTILE_TEXT[:8]), st.integers(), max_size=2),
    )


_PLAUSIBLE: dict[str, list[Any]] = {
    "vmid": [105, 204, 110, 999], "node": ["pve1", "pve3"], "target": ["pve2"], "storage": ["local-zfs", "nfs-backup", "cifs-iso"],
    "snapname": ["pre-upgrade"], "name": ["web-03"], "iface": ["vmbr1"], "group": ["web"], "poolid": ["prod"],
    "userid": ["bob@pve"], "tokenid": ["ci"], "roleid": ["Auditor2"], "path": ["/vms/105"], "upid": ["UPID:pve1:x"],
}


def plausible_value(name: str) -> Any:
    return _PLAUSIBLE.get(name, ["1"])[0]


def plausible(name: str) -> st.SearchStrategy[Any]:
    """A value that could be right for a parameter of this name (so some generated calls get as far as a plan)."""
    return st.sampled_from(_PLAUSIBLE.get(name, ["1", 1, "local-zfs", "pve1"]))


@atexit.register
def _write_figures() -> None:
    path = os.environ.get("PROXIMO_FIGURES_FILE")
    if path and FIGURES:
        with open(f"{path}.{os.getpid()}", "w") as out:
            json.dump(dict(FIGURES), out)
