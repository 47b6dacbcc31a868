"""Service mode: Proximo as its own system user, reached by agents and approvers over unix sockets only.

See ``_service`` for the sockets and their protocols; docs/trust-model.md for what the mode guarantees.
"""

from ._service import (
    AGENT_SOCKET,
    APPROVE_SOCKET,
    AccessRules,
    ApprovalDesk,
    Peer,
    ServiceUnavailable,
    account_name,
    ask_service,
    connect,
    install_files,
    next_steps,
    peer_of,
    run_service,
)

__all__ = ["AGENT_SOCKET", "APPROVE_SOCKET", "AccessRules", "ApprovalDesk", "Peer", "ServiceUnavailable", "account_name",
           "ask_service", "connect", "install_files", "next_steps", "peer_of", "run_service"]
