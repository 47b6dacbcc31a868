"""Who is signed in to the console: sessions, the CSRF token of each, and how often sign-in may fail.

A session is a random id in a cookie (HttpOnly, SameSite=Strict; Secure, and the ``__Host-`` prefix, over TLS),
kept only in this process's memory: a restart signs everyone out, and nothing on disk can be stolen or forged to
open one. Each session has its own CSRF token, which every form carries and every POST must return.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

IDLE_TIMEOUT = 15 * 60  # seconds without a request before a session ends
LIFETIME = 8 * 3600  # seconds a session lasts at most, however busy
MAX_FAILURES = 5  # failed sign-ins allowed per window, for one client address and for one approver name
FAILURE_WINDOW = 15 * 60


def same_token(given: object, expected: str) -> bool:
    """A form's token against the expected one, in constant time; anything but a non-empty string is wrong."""
    return isinstance(given, str) and bool(given) and hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class Session:
    id: str = field(repr=False)
    approver: str
    since: float
    seen: float
    csrf: str = field(repr=False)


class Sessions:
    """The open sessions of this console process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._open: dict[str, Session] = {}

    def open(self, approver: str) -> Session:
        now = self._clock()
        session = Session(id=secrets.token_urlsafe(32), approver=approver, since=now, seen=now,
                          csrf=secrets.token_urlsafe(32))
        self._open[session.id] = session
        return session

    def get(self, session_id: str | None, *, touch: bool = True) -> Session | None:
        """The session, if it is open and neither idle too long nor too old. ``touch``: the request counts as
        activity (an open event stream does not: it would keep an abandoned page signed in)."""
        session = self._open.get(session_id or "")
        if session is None:
            return None
        now = self._clock()
        if now - session.seen > IDLE_TIMEOUT or now - session.since > LIFETIME:
            self._open.pop(session.id, None)
            return None
        if touch:
            session.seen = now
        return session

    def close(self, session_id: str | None) -> None:
        self._open.pop(session_id or "", None)

    def close_all_of(self, approver: str) -> None:
        for session in [s for s in self._open.values() if s.approver == approver]:
            self._open.pop(session.id, None)


class SignInLimit:
    """At most MAX_FAILURES failed sign-ins per FAILURE_WINDOW for one client address, and for one approver name.

    On loopback every browser is 127.0.0.1, so the address limit is one limit for the whole machine, and the name
    limit lets whoever can reach the port keep a named approver out for a window: the price of guesses costing a
    window each (docs/console.md)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and self._clock() - times[0] > FAILURE_WINDOW:
            times.popleft()
        return times

    def wait(self, address: str, name: str) -> float:
        """Seconds until a sign-in may be tried again (0: now)."""
        waits = [FAILURE_WINDOW - (self._clock() - times[0])
                 for key in (f"addr:{address}", f"name:{name}") if len(times := self._recent(key)) >= MAX_FAILURES]
        return max(waits, default=0.0)

    def failed(self, address: str, name: str) -> None:
        for key in (f"addr:{address}", f"name:{name}"):
            self._recent(key).append(self._clock())

    def succeeded(self, address: str, name: str) -> None:
        for key in (f"addr:{address}", f"name:{name}"):
            self._failures.pop(key, None)
