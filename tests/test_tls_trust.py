"""``SIGNALWIRE_RELAY_CA_FILE`` is honoured on every TLS path that has no ``ssl_context=``.

One function builds the default verifying context (the system store plus that file);
each way of reaching a ``wss://`` server without an explicit context goes through it:
the host from ``SIGNALWIRE_SPACE``, an explicit ``url="wss://..."``, either transport,
and the WebSocket layer called on its own. Each is run against the TLS fake server:
with the variable naming the server's CA it connects; unset, or naming another CA, the
certificate is refused with a fatal TransportError that says so.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

import pytest
import trustme

from relay_anyio import ConnectionState, RelayClient, TransportError
from relay_anyio._transport import CA_FILE_ENV, TransportName, build_ssl_context
from relay_anyio._websocket import connect_websocket
from relay_anyio.testing import FakeRelayServer

from .helpers import FAST

pytestmark = pytest.mark.anyio

Trust = Literal["the server's CA", "unset", "another CA"]
TRUSTS: list[Trust] = ["the server's CA", "unset", "another CA"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (CA_FILE_ENV, "SIGNALWIRE_SPACE", "SIGNALWIRE_PROJECT_ID", "SIGNALWIRE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def _trust(trust: Trust, server: FakeRelayServer, tmp_path: Path, monkeypatch: Any) -> None:
    if trust == "the server's CA":
        monkeypatch.setenv(CA_FILE_ENV, str(server.ca_pem_path(tmp_path)))
    elif trust == "another CA":
        other = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other))
        monkeypatch.setenv(CA_FILE_ENV, str(other))


def _assert_refused(error: TransportError, server: FakeRelayServer) -> None:
    assert error.fatal
    assert "TLS certificate verification failed" in error.message
    assert f"localhost:{server.port}" in error.message
    assert CA_FILE_ENV in error.message  # the fix is named
    assert server.connections == 0  # nothing got past TLS


async def _connects_or_is_refused(
    client: RelayClient, server: FakeRelayServer, trust: Trust
) -> None:
    if trust == "the server's CA":
        async with client:
            assert client.connection_state is ConnectionState.CONNECTED
            await client.execute("signalwire.ping", {})
        assert server.connections == 1
        assert server.violations == []
    else:
        with pytest.raises(TransportError) as refused:
            async with client:
                pytest.fail("must not connect")
        _assert_refused(refused.value, server)
        assert client.connection_state is ConnectionState.CLOSED


@pytest.mark.parametrize("trust", TRUSTS)
async def test_host_from_signalwire_space(
    relay_server_tls: FakeRelayServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    transport: TransportName,
    trust: Trust,
) -> None:
    server = relay_server_tls
    _trust(trust, server, tmp_path, monkeypatch)
    monkeypatch.setenv("SIGNALWIRE_SPACE", f"localhost:{server.port}")
    monkeypatch.setenv("SIGNALWIRE_PROJECT_ID", server.project)
    monkeypatch.setenv("SIGNALWIRE_API_TOKEN", server.token)
    client = RelayClient(contexts=["default"], transport=transport, **FAST)
    assert client.url == f"wss://localhost:{server.port}"
    await _connects_or_is_refused(client, server, trust)


@pytest.mark.parametrize("trust", TRUSTS)
async def test_explicit_wss_url_without_a_context(
    relay_server_tls: FakeRelayServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    transport: TransportName,
    trust: Trust,
) -> None:
    server = relay_server_tls
    _trust(trust, server, tmp_path, monkeypatch)
    client = RelayClient(
        project=server.project,
        token=server.token,
        url=f"wss://localhost:{server.port}",
        contexts=["default"],
        transport=transport,
        **FAST,
    )
    await _connects_or_is_refused(client, server, trust)


@pytest.mark.parametrize("trust", TRUSTS)
async def test_websocket_layer_on_its_own(
    relay_server_tls: FakeRelayServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    trust: Trust,
) -> None:
    """``connect_websocket`` without ``ssl_context=`` (the wsproto transport's engine)."""
    server = relay_server_tls
    _trust(trust, server, tmp_path, monkeypatch)
    if trust == "the server's CA":
        ws = await connect_websocket(f"wss://localhost:{server.port}")
        await ws.aclose()
        assert server.connections == 1
    else:
        with pytest.raises(TransportError) as refused:
            await connect_websocket(f"wss://localhost:{server.port}")
        _assert_refused(refused.value, server)


def test_an_unreadable_ca_file_fails_in_the_constructor_for_an_explicit_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As for ``host=``: a bad variable is a configuration error, found at once."""
    monkeypatch.setenv(CA_FILE_ENV, str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match=CA_FILE_ENV):
        RelayClient(project="p", token="t", url="wss://example.signalwire.com")
    # Plain ws:// has no TLS, so the variable does not matter there.
    RelayClient(project="p", token="t", url="ws://127.0.0.1:1")


def test_the_default_context_verifies_and_adds_the_ca_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    plain = build_ssl_context()
    assert plain.verify_mode is ssl.CERT_REQUIRED and plain.check_hostname
    other = tmp_path / "ca.pem"
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(other))
    monkeypatch.setenv(CA_FILE_ENV, str(other))
    extended = build_ssl_context()
    assert extended.verify_mode is ssl.CERT_REQUIRED and extended.check_hostname
    assert any("trustme" in str(cert["subject"]) for cert in extended.get_ca_certs())
    # In addition to the system store, not instead of it.
    assert len(extended.get_ca_certs()) == len(plain.get_ca_certs()) + 1
