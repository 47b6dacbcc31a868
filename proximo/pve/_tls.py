"""How Proximo checks that it is talking to the real Proxmox VE API (docs/architecture.md, "Talking to Proxmox").

Three modes, never a silent ``verify=False``:

- default: the system trust store, hostname checked;
- ``ca_file``: only that CA is trusted, hostname still checked;
- ``fingerprint``: the leaf certificate's SHA-256 must equal the pin. PVE's self-signed certificates are
  the common case, so chain and hostname checks are off in this mode (unless a ``ca_file`` is given too):
  the pin replaces them. The pin is checked right after the TLS handshake, inside the connection
  pool's network layer, before a single request byte is written, so the ``Authorization`` header
  never reaches an impostor.
"""

from __future__ import annotations

import hashlib
import ssl
import typing
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from contextlib import contextmanager

import httpcore
import httpx
import msgspec

from ..errors import BadInput
from ._fingerprint import normalize_fingerprint

__all__ = [
    "CertificatePinError",
    "TlsSettings",
    "fingerprint_of",
    "make_ssl_context",
    "make_transport",
    "normalize_fingerprint",
]



class TlsSettings(msgspec.Struct, frozen=True):
    """Where trust in the PVE certificate comes from; both empty means the system trust store."""

    ca_file: str | None = None
    fingerprint: str | None = None  # SHA-256 of the DER certificate: "AA:BB:..." or plain hex

    def __post_init__(self) -> None:
        # Refuse a malformed pin when the settings are made, not on the first connection.
        if self.fingerprint is not None:
            normalize_fingerprint(self.fingerprint)


class CertificatePinError(httpx.ConnectError):
    """The server's certificate does not match the pinned fingerprint; nothing was sent to it."""

    def __init__(self, host: str, expected: str, actual: str) -> None:
        self.host = host
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"TLS certificate of {host} does not match the pinned fingerprint: "
            f"expected SHA-256 {expected}, got {actual}"
        )


def fingerprint_of(der: bytes) -> str:
    """SHA-256 fingerprint of a DER certificate, in the form ``normalize_fingerprint`` returns."""
    return normalize_fingerprint(hashlib.sha256(der).hexdigest())


def make_ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """The client SSL context for ``tls``; verification is off only when a pin replaces it."""
    if tls.ca_file is not None:
        # Only this CA is trusted (not the system store too): an operator who names a CA means it.
        try:
            ctx = ssl.create_default_context(cafile=tls.ca_file)
        except (OSError, ssl.SSLError) as exc:  # missing, unreadable, or no certificate in it: one line, not a trace
            raise BadInput(f"PROXIMO_CA_FILE {tls.ca_file}: not a readable CA certificate file "
                           f"({getattr(exc, 'strerror', None) or exc.__class__.__name__})") from None
    elif tls.fingerprint is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the pin, checked in _PinnedStream.start_tls, replaces it
    else:
        ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def make_transport(tls: TlsSettings, *, retries: int = 0) -> httpx.AsyncBaseTransport:
    """An httpx transport that verifies the PVE certificate as ``tls`` says.

    ``retries`` is httpcore's connect retry count (connection refused/timeouts only; a pin mismatch
    is never retried).
    """
    ctx = make_ssl_context(tls)
    if tls.fingerprint is None:
        return httpx.AsyncHTTPTransport(verify=ctx, retries=retries, trust_env=False)
    return _PinnedTransport(ctx, normalize_fingerprint(tls.fingerprint), retries=retries)


# --- pinning -------------------------------------------------------------------------------------


class _PinnedStream(httpcore.AsyncNetworkStream):
    """A TCP stream whose TLS upgrade only succeeds for the pinned certificate."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, pin: str) -> None:
        self._inner = inner
        self._pin = pin

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        tls_stream = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        ssl_object = tls_stream.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        actual = fingerprint_of(der) if der else "(no certificate)"
        if actual != self._pin:
            await tls_stream.aclose()
            raise CertificatePinError(self._describe(server_hostname), self._pin, actual)
        return tls_stream

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)

    def _describe(self, server_hostname: str | None) -> str:
        addr = self._inner.get_extra_info("server_addr")
        if isinstance(addr, tuple) and len(addr) >= 2:
            return f"{server_hostname or addr[0]}:{addr[1]}"
        return server_hostname or "the server"


class _PinningBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, with every TCP stream wrapped in ``_PinnedStream``."""

    def __init__(self, pin: str, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._pin = pin
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _PinnedStream(stream, self._pin)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return _PinnedStream(stream, self._pin)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpcore exception -> httpx exception, as httpx's own transport maps them (most specific wins).
_EXC_MAP: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


@contextmanager
def _map_httpcore_exceptions() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for cls in type(exc).__mro__:
            mapped = _EXC_MAP.get(cls)
            if mapped is not None:
                raise mapped(str(exc)) from exc
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, inner: AsyncIterable[bytes]) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _map_httpcore_exceptions():
            async for part in self._inner:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()


class _PinnedTransport(httpx.AsyncBaseTransport):
    """httpx's AsyncHTTPTransport, reduced to what Proximo needs, over a pinning network backend."""

    def __init__(self, ssl_context: ssl.SSLContext, pin: str, *, retries: int = 0) -> None:
        self.pin = pin
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            retries=retries,
            network_backend=_PinningBackend(pin),
        )

    def __repr__(self) -> str:
        return f"_PinnedTransport(pin={self.pin!r})"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        if request.url.scheme != "https":
            # A pin means nothing without TLS; refusing keeps the token off a cleartext connection.
            raise httpx.UnsupportedProtocol("a pinned connection must use https", request=request)
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _map_httpcore_exceptions():
            resp = await self._pool.handle_async_request(req)
        assert isinstance(resp.stream, AsyncIterable)
        return httpx.Response(
            status_code=resp.status,
            headers=resp.headers,
            stream=_ResponseStream(resp.stream),
            extensions=resp.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
