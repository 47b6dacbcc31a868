"""The people who may approve a plan, and the credential each one has that an agent does not.

A pseudo-terminal is not a person: an agent with a shell can run ``proximo approve`` under ``script`` or
Python's ``pty`` and type "yes". So approving above the auto-approve level takes a credential the person set
once with ``proximo approver add``: a passphrase (kept as a scrypt hash) and, optionally, a TOTP code from an
authenticator app (RFC 6238: SHA-1, 30 s, 6 digits; the secret is kept here, so this file is owner-only). The
service's unix socket is the other way (``proximo.service._service``): there the person's own unix account is the
credential.

What this protects depends on who can write ``approvers.json``: in service mode only Proximo's user can; run
as the agent's own user, an agent that can write the file can add itself. docs/trust-model.md says so.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import struct
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from ._state import write_private
from ..errors import BadInput, NotApproved

APPROVERS_FILE = "approvers.json"
_FORMAT = "proximo-approvers/1"
NAME = re.compile(r"[a-z][a-z0-9._-]{0,31}")
MIN_PASSPHRASE = 12
# scrypt at n=2**15, r=8: about 32 MiB and a tenth of a second per guess (the cost is the point).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_TOTP_STEP, _TOTP_DIGITS = 30, 6
_FAILURE_DELAY = 1.0  # seconds added after a wrong credential, so guessing costs time as well as scrypt


class Approver(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    passphrase: str  # "scrypt$n$r$p$salt_hex$hash_hex"
    totp: str = ""  # base32 secret; empty: no second factor
    totp_last_step: int = 0  # the last time step a code was accepted for: a code works once
    added: str = ""


class _File(msgspec.Struct, forbid_unknown_fields=True):
    format: str
    approvers: list[Approver]


def _hash_passphrase(passphrase: str, salt: bytes | None = None, n: int = _SCRYPT_N, r: int = _SCRYPT_R,
                     p: int = _SCRYPT_P) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=128 * 1024 * 1024, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def _passphrase_matches(passphrase: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, _ = stored.split("$")
        if scheme != "scrypt":
            return False
        again = _hash_passphrase(passphrase, bytes.fromhex(salt), int(n), int(r), int(p))
    except (ValueError, OverflowError, MemoryError):
        return False
    return hmac.compare_digest(again.encode(), stored.encode())


def totp_code(secret: str, step: int) -> str:
    """RFC 6238 / RFC 4226: the code for one 30-second time step."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**_TOTP_DIGITS).zfill(_TOTP_DIGITS)


def totp_uri(name: str, secret: str) -> str:
    """What an authenticator app scans (or the person types): otpauth://totp/..."""
    label = urllib.parse.quote(f"Proximo:{name}")
    return f"otpauth://totp/{label}?secret={secret}&issuer=Proximo&algorithm=SHA1&digits={_TOTP_DIGITS}&period={_TOTP_STEP}"


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise BadInput(f"approver name {str(name)[:40]!r}: use 1-32 of a-z, 0-9, '.', '_', '-', starting with a letter")
    return name


class ApproverStore:
    """``approvers.json`` in the state directory (owner-only)."""

    def __init__(self, home: Path, *, clock=time.time, sleep=time.sleep) -> None:  # type: ignore[no-untyped-def]
        self.path = home / APPROVERS_FILE
        self._clock = clock
        self._sleep = sleep

    def _load(self) -> list[Approver]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise BadInput(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            doc = msgspec.json.decode(raw, type=_File)
        except msgspec.MsgspecError as exc:
            raise BadInput(f"{self.path} is damaged ({exc}); no approval is possible until it is repaired") from None
        if doc.format != _FORMAT:
            raise BadInput(f"{self.path}: unsupported format {doc.format!r}")
        return doc.approvers

    def _save(self, approvers: list[Approver]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(self.path, msgspec.json.encode(_File(format=_FORMAT, approvers=approvers)))

    def names(self) -> list[str]:
        return [a.name for a in self._load()]

    def get(self, name: str) -> Approver | None:
        return next((a for a in self._load() if a.name == name), None)

    def add(self, name: str, passphrase: str, *, with_totp: bool = False) -> Approver:
        check_name(name)
        if len(passphrase) < MIN_PASSPHRASE:
            raise BadInput(f"the passphrase must have at least {MIN_PASSPHRASE} characters")
        approvers = self._load()
        if any(a.name == name for a in approvers):
            raise BadInput(f"approver {name!r} exists already (remove it first to change the credential)")
        approver = Approver(name=name, passphrase=_hash_passphrase(passphrase),
                            totp=base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=") if with_totp else "",
                            added=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self._save([*approvers, approver])
        return approver

    def remove(self, name: str) -> None:
        approvers = self._load()
        if not any(a.name == name for a in approvers):
            raise BadInput(f"no approver {name!r}")
        self._save([a for a in approvers if a.name != name])

    def verify(self, name: str, passphrase: str, code: str = "") -> Approver:
        """The approver, if the passphrase (and the TOTP code, where one is set) is right; else NotApproved.

        Every wrong answer costs the same scrypt and a delay, whether or not the name exists.
        """
        approver = self.get(name) if isinstance(name, str) and NAME.fullmatch(name) else None
        ok = _passphrase_matches(passphrase, approver.passphrase if approver else _dummy_hash())
        step = 0
        if ok and approver is not None and approver.totp:
            step = self._totp_step(approver, code)
            ok = step > 0
        if not ok or approver is None:
            self._sleep(_FAILURE_DELAY)
            raise NotApproved("the approver name, passphrase or code is wrong: nothing was approved")
        if step:  # a code works once: remember its step
            self._save([msgspec.structs.replace(a, totp_last_step=step) if a.name == name else a for a in self._load()])
        return approver

    def _totp_step(self, approver: Approver, code: str) -> int:
        """The accepted time step (now, or one step either side for clock drift), 0 when the code is wrong or used."""
        code = (code or "").strip().replace(" ", "")
        if not (code.isascii() and code.isdigit() and len(code) == _TOTP_DIGITS):
            return 0
        now = int(self._clock()) // _TOTP_STEP
        for step in (now - 1, now, now + 1):
            if step > approver.totp_last_step and hmac.compare_digest(totp_code(approver.totp, step), code):
                return step
        return 0


@functools.cache
def _dummy_hash() -> str:
    """What an unknown name is checked against, so it costs what a known one does (made on first use, not at import)."""
    return _hash_passphrase("not a real passphrase", salt=b"\0" * 16)
