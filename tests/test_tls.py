"""Certificate verification against real loopback TLS servers (trustme CA and certificates).

The server does the TLS handshake itself after accepting TCP, and records every byte it receives after
it, so a test can prove that a refused server never saw the request (and so never saw the token).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest
import trustme

from proximo.pve._client import PveClient, PveConnectionError
from proximo.pve._tls import (
    CertificatePinError,
    TlsSettings,
    fingerprint_of,
    make_transport,
    normalize_fingerprint,
)

SECRET = "7e57-5ec2e7-do-not-leak"
TOKEN_ID = "proximo@pve!agent"
BODY = b'{"data":{"version":"8.4.1","release":"8.4"}}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: pve-api-daemon/3.0\r\nContent-Type: application/json;charset=UTF-8\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\nConnection: close\r\n\r\n" + BODY
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Connection:
    def __init__(self) -> None:
        self.handshake_ok = False
        self.received = b""
        self.done = asyncio.Event()


class RecordingTlsServer:
    """A one-answer HTTPS server on 127.0.0.1 that records, per connection, what arrived after TLS."""

    def __init__(self, cert: trustme.LeafCert) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self.ctx)
        self.connections: list[Connection] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RecordingTlsServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self.settle()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def received(self) -> bytes:
        return b"".join(c.received for c in self.connections)

    async def settle(self) -> None:
        """Wait until every accepted connection has been handled to the end."""
        for conn in list(self.connections):
            await asyncio.wait_for(conn.done.wait(), 10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection()
        self.connections.append(conn)
        try:
            await asyncio.wait_for(writer.start_tls(self.ctx), 10)
            conn.handshake_ok = True
            while b"\r\n\r\n" not in conn.received:
                chunk = await asyncio.wait_for(reader.read(65536), 10)
                if not chunk:
                    return
                conn.received += chunk
            writer.write(RESPONSE)
            await writer.drain()
        except (TimeoutError, OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # the client refused us or hung up: what was received is recorded
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            conn.done.set()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def good_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def other_host_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("pve-other.example")


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "pve-root-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def pin_of(cert: trustme.LeafCert) -> str:
    return fingerprint_of(ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode()))


@contextlib.asynccontextmanager
async def serving(cert: trustme.LeafCert) -> AsyncIterator[RecordingTlsServer]:
    async with RecordingTlsServer(cert) as server:
        yield server


def client_for(server: RecordingTlsServer, tls: TlsSettings, get_retries: int = 3) -> PveClient:
    return PveClient(server.url, TOKEN_ID, SECRET, transport=make_transport(tls), backoff=0, get_retries=get_retries)


# --- trust modes -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_system_store_rejects_unknown_ca(good_cert: trustme.LeafCert) -> None:
    async with serving(good_cert) as server:
        async with client_for(server, TlsSettings(), get_retries=3) as c:
            with pytest.raises(PveConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
                await c.get("/version")
        # the default client (no transport) trusts the system store too, not a bundled one
        async with PveClient(server.url, TOKEN_ID, SECRET, get_retries=0) as c:
            with pytest.raises(PveConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
                await c.get("/version")
        await server.settle()
    assert server.received == b""
    assert len(server.connections) == 2  # a failed certificate check is not retried


@pytest.mark.anyio
async def test_ca_file_accepts_its_ca(good_cert: trustme.LeafCert, ca_file: str) -> None:
    async with serving(good_cert) as server:
        async with client_for(server, TlsSettings(ca_file=ca_file)) as c:
            assert await c.get("/version") == {"version": "8.4.1", "release": "8.4"}
        await server.settle()
    assert server.received.startswith(b"GET /api2/json/version HTTP/1.1\r\n")
    assert f"PVEAPIToken={TOKEN_ID}={SECRET}".encode() in server.received  # the recorder does see requests


@pytest.mark.anyio
async def test_ca_file_still_checks_the_hostname(other_host_cert: trustme.LeafCert, ca_file: str) -> None:
    async with serving(other_host_cert) as server:
        async with client_for(server, TlsSettings(ca_file=ca_file)) as c:
            with pytest.raises(PveConnectionError, match="CERTIFICATE_VERIFY_FAILED|[Hh]ostname mismatch"):
                await c.get("/version")
        await server.settle()
    assert server.received == b""


@pytest.mark.anyio
async def test_right_pin_is_accepted(good_cert: trustme.LeafCert) -> None:
    pin = pin_of(good_cert)
    async with serving(good_cert) as server:
        async with client_for(server, TlsSettings(fingerprint=pin)) as c:
            assert await c.get("/version") == {"version": "8.4.1", "release": "8.4"}
        # plain lower-case hex is the same pin
        async with client_for(server, TlsSettings(fingerprint=pin.replace(":", "").lower())) as c:
            assert (await c.get("/version"))["release"] == "8.4"
        await server.settle()
    assert server.received.count(b"GET /api2/json/version") == 2


@pytest.mark.anyio
async def test_pin_replaces_chain_and_hostname_checks(other_host_cert: trustme.LeafCert) -> None:
    # Self-signed PVE certs for another name are the common case: the pin alone decides.
    async with serving(other_host_cert) as server:
        async with client_for(server, TlsSettings(fingerprint=pin_of(other_host_cert))) as c:
            assert (await c.get("/version"))["version"] == "8.4.1"


@pytest.mark.anyio
async def test_wrong_pin_is_refused_before_any_request_byte(
    good_cert: trustme.LeafCert, other_host_cert: trustme.LeafCert
) -> None:
    expected = pin_of(other_host_cert)
    actual = pin_of(good_cert)
    async with serving(good_cert) as server:
        async with client_for(server, TlsSettings(fingerprint=expected), get_retries=3) as c:
            with pytest.raises(PveConnectionError) as info:
                await c.get("/version")
            with pytest.raises(PveConnectionError):
                await c.send("POST", "/nodes/pve1/qemu/104/status/stop", {"skiplock": True})
        await server.settle()
    message = str(info.value)
    assert "\n" not in message
    assert f"expected SHA-256 {expected}, got {actual}" in message
    assert SECRET not in message
    assert isinstance(info.value.__cause__, CertificatePinError)
    # The handshake completed (the server really was reached), yet not one request byte arrived:
    # the Authorization header never left this process. A pin mismatch is not retried either.
    assert len(server.connections) == 2
    assert all(conn.handshake_ok for conn in server.connections)
    assert server.received == b""


@pytest.mark.anyio
async def test_ca_file_and_pin_are_both_enforced(good_cert: trustme.LeafCert, ca_file: str) -> None:
    other = trustme.CA().issue_cert("127.0.0.1")
    async with serving(good_cert) as server:
        async with client_for(server, TlsSettings(ca_file=ca_file, fingerprint=pin_of(good_cert))) as c:
            assert (await c.get("/version"))["release"] == "8.4"
        async with client_for(server, TlsSettings(ca_file=ca_file, fingerprint=pin_of(other))) as c:
            with pytest.raises(PveConnectionError, match="pinned fingerprint"):
                await c.get("/version")
        await server.settle()
    assert server.received.count(b"GET ") == 1


@pytest.mark.anyio
async def test_pinned_transport_standalone_raises_pin_error(good_cert: trustme.LeafCert) -> None:
    wrong = "00" * 32
    async with serving(good_cert) as server:
        async with httpx.AsyncClient(transport=make_transport(TlsSettings(fingerprint=wrong))) as http:
            with pytest.raises(CertificatePinError) as info:
                await http.get(server.url + "/api2/json/version", headers={"Authorization": "x"})
        await server.settle()
    assert info.value.expected == normalize_fingerprint(wrong)
    assert info.value.actual == pin_of(good_cert)
    assert isinstance(info.value, httpx.ConnectError)
    assert server.received == b""


@pytest.mark.anyio
async def test_pinned_transport_refuses_plain_http() -> None:
    transport = make_transport(TlsSettings(fingerprint="AB" * 32))
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx.UnsupportedProtocol):
            await http.get("http://127.0.0.1:9/api2/json/version")


# --- fingerprints ------------------------------------------------------------------------------


def test_normalize_fingerprint_forms() -> None:
    colon = ":".join(["AB"] * 32)
    assert normalize_fingerprint(colon) == colon
    assert normalize_fingerprint("ab" * 32) == colon
    assert normalize_fingerprint(f"  {colon.lower()}\n") == colon


@pytest.mark.parametrize(
    "bad",
    ["", "AB" * 31, "AB" * 33, "ZZ" * 32, ":".join(["AB"] * 31) + ":ABC", "sha256/" + "AB" * 32, "A:B" * 32],
)
def test_bad_fingerprints_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        normalize_fingerprint(bad)
    with pytest.raises(ValueError):
        TlsSettings(fingerprint=bad)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"fingerprint": bad}, TlsSettings)


def test_system_store_is_the_default() -> None:
    assert TlsSettings() == TlsSettings(ca_file=None, fingerprint=None)
    transport = make_transport(TlsSettings())
    assert isinstance(transport, httpx.AsyncHTTPTransport)
