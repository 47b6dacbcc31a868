"""The one holder of the API token secret."""

from __future__ import annotations


class Secret:
    """Prints as ``***`` everywhere (repr, str, f-strings, logs, debugger views); ``reveal()`` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)
