"""Every error Proximo raises on purpose, as one hierarchy.

    ProximoError                  one line for a person; ``exit_code`` for the CLI
    ├── BadInput                  the caller's input is wrong (exit 2); nothing was sent or written
    │   └── UnknownTool
    ├── Refused                   the pipeline will not do it (exit 3); nothing was sent
    │   ├── NotModelled           a step has no semantics in the model: it cannot be predicted
    │   ├── NotRead               the plan touched a part of the cluster its read left out (the host reads
    │   │                         it and plans again; seen only if that cannot happen)
    │   ├── StalePlan             the cluster changed since the plan read it, or the plan expired
    │   ├── NotApproved           above the auto-approve level and no person has approved it
    │   ├── AlreadyApplied        a plan runs at most once
    │   ├── OfflinePlan           a plan made from a snapshot cannot be applied
    │   ├── OtherCluster          a plan made on one cluster is never approved or applied on another
    │   ├── PolicyDenied          the policy file forbids it
    │   └── UnknownRelease        the cluster runs a PVE release Proximo has no schema for: no plans, reads only
    ├── PackError                 a tool pack broke a contract (duplicate tool id, bad steps)
    ├── ApplyFailed               Proxmox refused or failed a step while applying (the ledger has it)
    ├── PveApiError               what Proxmox answered with an error status (the model raises it too,
    │                             so the simulator answers exactly as Proxmox would)
    ├── PveConnectionError        Proxmox could not be reached
    └── LedgerError               the ledger cannot be opened, read or written (proximo.trust._ledger)
"""

from __future__ import annotations


class ProximoError(Exception):
    """Base class: ``str(error)`` is one line a person can act on."""

    exit_code = 1


class BadInput(ProximoError):
    """``about``: the tool whose parameters were wrong ("" for a tool id that is not one), so each face can say
    where its user reads them (``proximo tools X``, ``proximo_describe``); None when it is not about a tool."""

    exit_code = 2

    def __init__(self, message: str = "", *, about: str | None = None) -> None:
        super().__init__(message)
        self.about = about


class UnknownTool(BadInput):
    pass


class Refused(ProximoError):
    exit_code = 3


class NotModelled(Refused):
    pass


class OtherCluster(Refused):
    """The plan was made on another cluster (another name, URL, or the cluster answering there is another one)."""


class NotRead(Refused):
    """A part of the model this read left out was touched (``ClusterModel.unread``). Not a LookupError on purpose:
    code that tolerates a missing key must not take it for "nothing there"."""


class StalePlan(Refused):
    pass


class NotApproved(Refused):
    pass


class AlreadyApplied(Refused):
    pass


class OfflinePlan(Refused):
    pass


class PolicyDenied(Refused):
    pass


class UnknownRelease(Refused):
    pass


class PackError(ProximoError):
    pass


class ApplyFailed(ProximoError):
    exit_code = 1


class PveApiError(ProximoError):
    """An error answer from the PVE API: HTTP status, PVE's message, and its per-parameter errors."""

    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None, *, method: str = "", path: str = "") -> None:
        self.status = status
        self.message = message.strip()
        self.errors = dict(errors or {})
        self.method = method
        self.path = path
        super().__init__(self._line())

    def _line(self) -> str:
        where = f"{self.method} {self.path}: " if self.method else ""
        # one line: a property string's errors come as lines of their own ("format error\nscsi1.bogus: ...")
        detail = "; ".join(f"{k}: {v}".replace("\n", "; ") for k, v in sorted(self.errors.items()))
        return f"{where}{self.status} {self.message}" + (f" ({detail})" if detail else "")


class PveConnectionError(ProximoError):
    """Proxmox could not be reached (DNS, refused, TLS, timeout)."""
