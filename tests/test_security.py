"""Secrets stay out of logs; TLS is verified, with no plaintext fallback."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
import trustme
from anyio.streams.tls import TLSStream

from relay_anyio import (
    EVENT_CALL_PLAY,
    AuthenticationError,
    Call,
    ConnectionState,
    Message,
    RelayClient,
    TransportError,
)
from relay_anyio.testing import FakeRelayServer

from .helpers import CA_FILE_ENV, FAST, eventually

pytestmark = pytest.mark.anyio

PROJECT = "7d5c1e2a-3b4f-4c6d-8e9f-0a1b2c3d4e5f"
TOKEN = "PT9f8e7d6c5b4a39281706f5e4d3c2b1a0"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJwIjoiN2Q1YyJ9.c2lnbmF0dXJlLXNlY3JldA"


class _Everything(logging.Handler):
    """Every record of every logger, formatted as a log file would hold it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # includes tracebacks


@pytest.fixture
def debug_log() -> Iterator[_Everything]:
    handler = _Everything()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _issued_blobs(server: FakeRelayServer) -> list[str]:
    return [
        f["params"]["params"]["authorization_state"]
        for f in server.sent_events("signalwire.authorization.state")
    ]


async def _whole_session(server: FakeRelayServer, client: RelayClient) -> None:
    """A call, a message, a drop (resume), a restart (fresh session), a rejected
    connect in between: every path that logs frames and connects."""
    done = anyio.Event()
    server.play_duration = 0.01

    @client.on_call
    async def handle(call: Call) -> None:
        call.on(EVENT_CALL_PLAY, lambda event: None)
        await call.answer()
        await (await call.play([{"type": "tts", "text": "hi"}])).wait()
        await call.hangup()
        done.set()

    @client.on_message
    async def on_message(message: Message) -> None:
        pass

    async with client:
        await server.offer_call()
        with anyio.fail_after(10):  # a failure detector only
            await done.wait()
        await server.offer_message(body="hello")
        await server.drop_connection()
        await eventually(lambda: server.connections == 2)
        await eventually(lambda: client.connection_state is ConnectionState.CONNECTED)
        server.fail_next("signalwire.connect", code=-32002, message="nope", jsonrpc_error=True)
        await server.send_disconnect(restart=True)
        await eventually(lambda: server.connections == 4)
        await eventually(lambda: client.connection_state is ConnectionState.CONNECTED)
        await client.execute("test.echo", {"project": PROJECT, "token": TOKEN})
    assert len(_issued_blobs(server)) >= 3


async def _echo(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {"code": "200", "message": "ok", "echo": params}


@pytest.mark.parametrize("auth", ["project-token", "jwt"])
async def test_a_debug_log_of_a_whole_session_holds_no_secret(
    debug_log: _Everything, auth: str
) -> None:
    kwargs: dict[str, Any] = (
        {"project": PROJECT, "token": TOKEN} if auth == "project-token" else {"jwt_token": JWT}
    )
    async with FakeRelayServer(project=PROJECT, token=TOKEN, jwt_tokens=[JWT]) as server:
        server.set_handler("test.echo", _echo)
        client = RelayClient(url=server.url, contexts=["default"], **kwargs, **FAST)
        await _whole_session(server, client)
        blobs = _issued_blobs(server)
        assert server.authorization_states_seen  # the client did send them back
        assert server.violations == []
    text = "\n".join(debug_log.lines)
    assert "signalwire.connect" in text and "recv" in text  # the frames were logged
    secrets = {"token": TOKEN, "jwt": JWT}
    if auth == "project-token":
        # An identifier, not a credential; masked as the official client does. With
        # a JWT the client never learns it, so the server's echoes stay visible.
        secrets["project"] = PROJECT
    leaked = {name for name, value in secrets.items() if value in text}
    leaked |= {f"authorization_state {blob[:8]}..." for blob in blobs if blob in text}
    # Nor a telling fragment of one (a frame cut at a length limit).
    leaked |= {name for name, value in secrets.items() if value[-12:] in text}
    leaked |= {f"part of {blob[:8]}..." for blob in blobs if blob.split(":")[0][-12:] in text}
    culprits = [line[:300] for line in debug_log.lines if TOKEN[-12:] in line or JWT[-12:] in line]
    assert leaked == set(), culprits[:3]


async def test_secrets_stay_out_of_reprs_and_errors() -> None:
    async with FakeRelayServer(project=PROJECT, token="the-right-token") as server:
        client = RelayClient(url=server.url, project=PROJECT, token=TOKEN, **FAST)
        for text in (repr(client), repr(client._session.options), str(client._session.options)):
            assert TOKEN not in text
        with pytest.raises(AuthenticationError) as rejected:
            async with client:
                pass
        assert server.violations == []  # a wrong token is no protocol violation
    assert TOKEN not in str(rejected.value) and TOKEN not in repr(rejected.value)


# -- TLS ------------------------------------------------------------------------------


class _Recording(anyio.abc.ByteStream):
    """A byte stream that keeps the first chunk it received."""

    def __init__(self, inner: anyio.abc.ByteStream, first: list[bytes]) -> None:
        self._inner = inner
        self._first = first

    async def receive(self, max_bytes: int = 65536) -> bytes:
        data = await self._inner.receive(max_bytes)
        if not self._first:
            self._first.append(data)
        return data

    async def send(self, item: bytes) -> None:
        await self._inner.send(item)

    async def send_eof(self) -> None:
        await self._inner.send_eof()

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Peer:
    def __init__(self) -> None:
        self.port = 0
        #: What each connection sent first (a TLS ClientHello starts with 0x16).
        self.first_bytes: list[bytes] = []


@asynccontextmanager
async def tls_peer(cert_names: tuple[str, ...]) -> AsyncIterator[tuple[_Peer, trustme.CA]]:
    """A TLS server whose certificate names only ``cert_names``."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*cert_names).configure_cert(context)
    peer = _Peer()

    async def serve(tcp: anyio.abc.SocketStream) -> None:
        first: list[bytes] = []
        recording = _Recording(tcp, first)
        try:
            tls = await TLSStream.wrap(recording, server_side=True, ssl_context=context)
            await tls.receive()
        except (OSError, anyio.EndOfStream, anyio.BrokenResourceError):
            pass  # the client refused our certificate, as it should
        finally:
            peer.first_bytes.extend(first)
            await anyio.aclose_forcefully(tcp)

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        peer.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, serve)
            yield peer, ca
            tg.cancel_scope.cancel()


async def test_a_certificate_for_another_host_is_refused_for_good() -> None:
    async with tls_peer(("relay.example.com",)) as (peer, ca):
        context = ssl.create_default_context()
        ca.configure_trust(context)  # trusted CA, wrong name
        client = RelayClient(
            project="p", token="t", host=f"127.0.0.1:{peer.port}", ssl_context=context, **FAST
        )
        with anyio.fail_after(5), pytest.raises(TransportError) as refused:
            async with client:
                pytest.fail("must not connect")
        await anyio.sleep(0.05)  # a retry, if there were one, would show up here
    assert refused.value.fatal
    assert "TLS certificate verification failed for 127.0.0.1" in refused.value.message
    assert "mismatch" in refused.value.message.lower()
    assert len(peer.first_bytes) == 1
    assert peer.first_bytes[0][:1] == b"\x16"


async def test_an_untrusted_certificate_is_refused_for_good(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CA_FILE_ENV, raising=False)
    async with tls_peer(("localhost", "127.0.0.1")) as (peer, _):
        client = RelayClient(project="p", token="t", host=f"localhost:{peer.port}", **FAST)
        with anyio.fail_after(5), pytest.raises(TransportError) as refused:
            async with client:
                pytest.fail("must not connect")
        await anyio.sleep(0.05)  # a retry, if there were one, would show up here
    assert refused.value.fatal
    assert CA_FILE_ENV in refused.value.message
    assert len(peer.first_bytes) == 1  # one attempt, no retry
    assert peer.first_bytes[0][:1] == b"\x16"  # a TLS ClientHello, never plaintext


async def test_no_plaintext_fallback_when_the_server_does_not_speak_tls() -> None:
    """host= always means wss: against a plain WebSocket server it fails, and not one
    byte of HTTP (let alone the credentials) is sent in the clear."""
    async with FakeRelayServer(tls=False) as server:
        client = RelayClient(project="p", token="t", host=f"127.0.0.1:{server.port}", **FAST)
        # The session itself: its reconnect loop retries this non-fatal failure.
        with anyio.move_on_after(0.5):
            await client._session.run()
        assert server.connections == 0
        assert server.journal == []
    assert client.url.startswith("wss://")


def test_a_context_without_verification_is_refused() -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="certificate and hostname"):
        RelayClient(project="p", token="t", host="example.signalwire.com", ssl_context=context)
