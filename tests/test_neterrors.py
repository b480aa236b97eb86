"""The transport's error boundary (``relay_anyio._neterrors``): its rules, as units.

The messages themselves are pinned end to end by test_tls_trust.py,
test_transport_contract.py and test_reliability_*.py; here are the rules that those
cannot reach on demand (a reset while the handshake request is written, trio's
wrapped exceptions) and the proxy's phases.
"""

from __future__ import annotations

import socket
import ssl

import anyio
import pytest
import trio

from relay_anyio import ConnectionLost, TransportError
from relay_anyio._neterrors import Opening, opening, proxy_phase
from relay_anyio.lowlevel import open_websocket

from .test_websocket import byte_stream_pair

pytestmark = pytest.mark.anyio


def _wrapped(cause: BaseException) -> trio.BrokenResourceError:
    """What trio raises for an OS error under its streams."""
    try:
        raise trio.BrokenResourceError from cause
    except trio.BrokenResourceError as exc:
        return exc


async def test_a_stream_gone_while_the_handshake_is_written_is_a_transport_error() -> None:
    """Before, the send of the upgrade request was outside the mapping: a raw anyio error."""
    client_end, server_end = byte_stream_pair()
    await server_end.aclose()
    with pytest.raises(TransportError) as failed:
        await open_websocket(client_end, "relay.test")
    assert "connection closed during the WebSocket handshake with relay.test" in (
        failed.value.message
    )
    assert not failed.value.fatal


def test_trio_wrapped_dns_failure_is_unresolved() -> None:
    error = Opening("relay.example", 443, "TCP connect", None, None).error(
        _wrapped(socket.gaierror(-2, "Name or service not known"))
    )
    assert error.unresolved and not error.fatal
    assert "cannot resolve the host name 'relay.example'" in error.message


def test_trio_wrapped_certificate_failure_is_fatal() -> None:
    cert = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cert.verify_message = "self-signed certificate"
    error = Opening("relay.example", 443, "TLS handshake", None, None).error(_wrapped(cert))
    assert error.fatal
    assert "TLS certificate verification failed for relay.example:443: self-signed" in (
        error.message
    )


def test_the_phase_names_the_failure() -> None:
    reset = ConnectionResetError(104, "Connection reset by peer")
    tcp = Opening("h", 1, "TCP connect", None, None).error(reset)
    assert tcp.message == f"cannot connect to h:1: {reset!r}"
    tls = Opening("h", 1, "TLS handshake", None, None).error(_wrapped(reset))
    assert tls.message == f"TLS handshake with h:1 failed: {reset}"
    proxied = Opening("h", 1, "TCP connect", "http://u:***@p:3128", None).error(reset)
    assert proxied.message.endswith("(through the proxy http://u:***@p:3128)")


def test_proxy_phases() -> None:
    with pytest.raises(TransportError, match="cannot connect to the proxy http://p:1"):
        with proxy_phase("http://p:1", "h:443", "connect"):
            raise ConnectionRefusedError(111, "Connection refused")
    with pytest.raises(TransportError) as unresolved:
        with proxy_phase("http://p:1", "h:443", "connect"):
            raise socket.gaierror(-2, "Name or service not known")
    assert unresolved.value.unresolved and "proxy" in unresolved.value.message
    with pytest.raises(TransportError, match="closed the connection before answering"):
        with proxy_phase("http://p:1", "h:443", "CONNECT"):
            raise anyio.EndOfStream


async def test_opening_leaves_relay_errors_alone_and_bounds_the_time() -> None:
    lost = ConnectionLost("not ours to map")
    with pytest.raises(ConnectionLost) as kept:
        with opening("h", 1, phase="TCP connect", timeout=None):
            raise lost
    assert kept.value is lost
    with pytest.raises(TransportError, match=r"timed out after 0\.01 s in the TCP connect"):
        with opening("h", 1, phase="TCP connect", timeout=0.01):
            await anyio.sleep_forever()
