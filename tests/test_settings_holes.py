"""Small holes issue 20 lists, each closed: a clear one-line refusal, never a traceback or a plan born broken."""

from __future__ import annotations

from pathlib import Path

import pytest

from proximo.errors import BadInput
from proximo._settings import MAX_PLAN_TTL, Settings
from proximo.pve._tls import TlsSettings, make_ssl_context
from proximo.testing import World
from proximo.trust._planstore import check_plan_id

BASE = {"PROXIMO_URL": "https://pve1:8006", "PROXIMO_TOKEN_ID": "proximo@pve!agent", "PROXIMO_TOKEN_SECRET": "s3cret"}


@pytest.mark.parametrize("ttl", ["0", "-5", "abc", "1e3", str(MAX_PLAN_TTL + 1), "10000000000000"])
def test_a_plan_ttl_outside_one_second_to_a_week_is_refused(ttl: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"^PROXIMO_PLAN_TTL must be a whole number of seconds from 1 to 604800 \(a week\)$"):
        Settings.from_env({**BASE, "PROXIMO_HOME": str(tmp_path), "PROXIMO_PLAN_TTL": ttl})
    assert Settings.from_env({**BASE, "PROXIMO_HOME": str(tmp_path), "PROXIMO_PLAN_TTL": str(MAX_PLAN_TTL)}).plan_ttl == MAX_PLAN_TTL


@pytest.mark.parametrize("pin", ["zz", "AB:CD", "ab" * 31, "AB:" * 31 + "ABC"])
def test_a_malformed_fingerprint_is_one_line_when_the_settings_are_read(pin: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput) as info:
        Settings.from_env({**BASE, "PROXIMO_HOME": str(tmp_path), "PROXIMO_TLS_FINGERPRINT": pin})
    assert str(info.value).startswith("PROXIMO_TLS_FINGERPRINT: TLS fingerprint must be a SHA-256 digest") and "\n" not in str(info.value)


def test_a_missing_or_broken_ca_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"^PROXIMO_CA_FILE: no such file: .*nope\.pem$"):
        Settings.from_env({**BASE, "PROXIMO_HOME": str(tmp_path), "PROXIMO_CA_FILE": str(tmp_path / "nope.pem")})
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate\n")
    with pytest.raises(BadInput, match=r"^PROXIMO_CA_FILE .*broken\.pem: not a readable CA certificate file"):
        make_ssl_context(TlsSettings(ca_file=str(broken)))


@pytest.mark.parametrize("plan_id", ["p-0123456789ab\n", "p-0123456789ab ", " p-0123456789ab", "p-0123456789AB", "p-0123456789abc"])
def test_a_plan_id_is_exactly_its_form(plan_id: str) -> None:
    with pytest.raises(BadInput, match="not a plan id"):
        check_plan_id(plan_id)
    assert check_plan_id("p-0123456789ab") == "p-0123456789ab"


@pytest.mark.anyio
@pytest.mark.parametrize("seq", [2**63, 10**20, 0, -1])
async def test_an_undo_of_a_sequence_number_sqlite_cannot_hold_is_refused(tmp_path: Path, seq: int) -> None:
    world = World(tmp_path)
    async with world.host() as host:
        with pytest.raises(BadInput, match=f"^not a ledger sequence number: {seq}$"):
            await host.undo(seq, world.actor)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
