"""The one holder of the API token secret."""

from __future__ import annotations

from typing import Any

from .trust._ledger import REDACTED

# Shorter secrets are not scrubbed: replacing a few common characters would garble every record, and a real
# PVE token secret is a 36-character UUID.
_SCRUB_MIN = 8


class Secret:
    """Prints as ``***`` everywhere (repr, str, f-strings, logs, debugger views); ``reveal()`` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def scrub(self, value: Any) -> Any:
        """``value`` with the secret replaced wherever it occurs in its strings (keys too), at any depth.

        For what Proximo says back (ledger records, CLI errors, MCP answers): bad input may echo the secret.
        """
        if len(self._value) < _SCRUB_MIN:
            return value
        if isinstance(value, str):
            return value.replace(self._value, REDACTED) if self._value in value else value
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)
