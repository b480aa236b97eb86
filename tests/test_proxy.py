"""Outbound HTTP proxies: the session tunnels through a real proxy (proxy.py) on loopback.

The proxy runs as a subprocess (``tests/proxy_server.py``) and logs every tunnel it
opens, so each test asserts what the proxy saw, not only that the session worked:
``HTTPS_PROXY``/``ALL_PROXY`` and ``proxy=`` go through it (plain and TLS fake servers,
both backends, both transports, a call handled end to end), ``NO_PROXY`` and
``proxy=None`` do not, a proxy that wants credentials gets them from the URL. Refusals
(403, 502, not HTTP, a closed connection) come from a tiny loopback server of our own;
each is a retryable ``TransportError`` naming the proxy with the password masked.
"""

from __future__ import annotations

import logging
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
import trustme
from anyio.streams.tls import TLSStream

from relay_anyio import Call, ConnectionState, RelayClient, TransportError
from relay_anyio._proxy import Proxy, bypassed, parse_proxy
from relay_anyio.lowlevel import TransportName, open_transport
from relay_anyio.testing import FakeRelayServer

from .helpers import CA_FILE_ENV, FAST

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
PROXY_VARIABLES = [
    name
    for kind in ("https", "http", "all", "no")
    for name in (f"{kind}_proxy", f"{kind.upper()}_PROXY")
]
USER, PASSWORD = "relay-user", "s3cret-pw"
#: A generous bound for anything that waits: a hang detector on a loaded machine.
WAIT = 30


@pytest.fixture(params=["native", "trio-websocket"])
def transport(request: pytest.FixtureRequest, anyio_backend_name: str) -> TransportName:
    name: TransportName = request.param
    if name == "trio-websocket" and anyio_backend_name != "trio":
        pytest.skip("trio-websocket runs under trio only")
    return name


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*PROXY_VARIABLES, "REQUEST_METHOD", CA_FILE_ENV, "SIGNALWIRE_SPACE"):
        monkeypatch.delenv(name, raising=False)


# -- the real proxy ----------------------------------------------------------------------


class ProxyProcess:
    """A running proxy.py: its URL and the tunnels it opened (since ``reset``)."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self._log = log
        self._seen = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_with(self, user: str, password: str) -> str:
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def _lines(self) -> list[str]:
        return self._log.read_text(encoding="ascii").splitlines()

    def reset(self) -> None:
        self._seen = len(self._lines())

    @property
    def connects(self) -> list[str]:
        """``CONNECT host:port`` per tunnel opened since the last ``reset``."""
        return self._lines()[self._seen :]


@contextmanager
def run_proxy(directory: Path, *flags: str) -> Iterator[ProxyProcess]:
    """proxy.py on a free loopback port; ready once it printed the port; killed after.

    It runs in a session of its own so that its worker processes go with it: stdin
    closing asks it to stop, then the whole group is killed (by the group's id).
    """
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "connects.log"
    log.write_text("", encoding="ascii")
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.proxy_server",
            str(log),
            "--data-dir",
            str(directory / "data"),
            "--log-file",
            str(directory / "proxy.log"),
            *flags,
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until it listens, or dies (EOF)
        if not line.strip().isdigit():
            output = (directory / "proxy.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"proxy.py did not start (exit {proc.poll()}): {line!r}\n{output}")
        yield ProxyProcess(int(line), log)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.fixture(scope="module")
def _plain_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    with run_proxy(tmp_path_factory.mktemp("proxy")) as running:
        yield running


@pytest.fixture(scope="module")
def _auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    with run_proxy(
        tmp_path_factory.mktemp("auth-proxy"), "--basic-auth", f"{USER}:{PASSWORD}"
    ) as p:
        yield p


@pytest.fixture
def proxy(_plain_proxy: ProxyProcess) -> ProxyProcess:
    """The plain proxy, its tunnel log starting with this test."""
    _plain_proxy.reset()
    return _plain_proxy


@pytest.fixture
def auth_proxy(_auth_proxy: ProxyProcess) -> ProxyProcess:
    """A proxy that wants ``USER:PASSWORD`` (Basic), its log starting with this test."""
    _auth_proxy.reset()
    return _auth_proxy


def target(server: FakeRelayServer) -> str:
    """What the proxy logs for a tunnel to ``server`` (the URL's host, not an address)."""
    host = "localhost" if server.tls else "127.0.0.1"
    return f"CONNECT {host}:{server.port}"


async def handle_one_call(client: RelayClient, server: FakeRelayServer) -> None:
    """Connect, take one inbound call (answer, hang up), disconnect: end to end."""
    done = anyio.Event()

    @client.on_call
    async def handler(call: Call) -> None:
        await call.answer()
        await call.hangup()
        done.set()

    with anyio.fail_after(WAIT):  # a hang detector only (a refused tunnel is retried)
        async with client:
            assert client.connection_state is ConnectionState.CONNECTED
            await server.offer_call()
            await done.wait()
    assert len(server.received("calling.answer")) == 1
    assert len(server.received("calling.end")) == 1


def client_for(server: FakeRelayServer, **kwargs: Any) -> RelayClient:
    options: dict[str, Any] = {**server.client_kwargs(), "contexts": ["default"], **FAST}
    options.update(kwargs)
    return RelayClient(**options)


# -- through the proxy -------------------------------------------------------------------


async def test_https_proxy_from_the_environment_carries_a_tls_session(
    relay_server_tls: FakeRelayServer,
    proxy: ProxyProcess,
    transport: TransportName,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Production's setup: SIGNALWIRE_SPACE, the CA file, HTTPS_PROXY; nothing else."""
    server = relay_server_tls
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("SIGNALWIRE_SPACE", f"localhost:{server.port}")
    monkeypatch.setenv(CA_FILE_ENV, str(server.ca_pem_path(tmp_path)))
    client = RelayClient(
        project=server.project,
        token=server.token,
        contexts=["default"],
        transport=transport,
        **FAST,
    )
    await handle_one_call(client, server)
    assert proxy.connects == [target(server)]
    assert server.connections == 1


@pytest.mark.parametrize("variable", ["ALL_PROXY", "all_proxy", "https_proxy"])
async def test_other_variables_name_the_proxy_for_wss(
    relay_server_tls: FakeRelayServer,
    proxy: ProxyProcess,
    transport: TransportName,
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    await handle_one_call(client_for(relay_server_tls, transport=transport), relay_server_tls)
    assert proxy.connects == [target(relay_server_tls)]


async def test_plain_ws_uses_http_proxy_then_all_proxy(
    relay_server: FakeRelayServer,
    proxy: ProxyProcess,
    transport: TransportName,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ws://`` is HTTP's scheme (RFC 6455 §4.1): HTTPS_PROXY is not for it."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")  # would fail if used
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    await handle_one_call(client_for(relay_server, transport=transport), relay_server)
    assert proxy.connects == [target(relay_server)]
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:1")
    async with client_for(relay_server, transport=transport) as client:
        await client.execute("signalwire.ping", {})
    assert proxy.connects == [target(relay_server)] * 2


async def test_an_explicit_proxy_ignores_the_environment(
    relay_server: FakeRelayServer,
    proxy: ProxyProcess,
    transport: TransportName,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    client = client_for(relay_server, transport=transport, proxy=proxy.url)
    await handle_one_call(client, relay_server)
    assert proxy.connects == [target(relay_server)]


async def test_proxy_none_connects_directly_whatever_the_environment(
    relay_server_tls: FakeRelayServer,
    proxy: ProxyProcess,
    transport: TransportName,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    client = client_for(relay_server_tls, transport=transport, proxy=None)
    assert client.config.session.proxy is None
    await handle_one_call(client, relay_server_tls)
    assert proxy.connects == []
    # The same client setup without proxy=None does go through it (the test can fail).
    async with client_for(relay_server_tls, transport=transport) as again:
        await again.execute("signalwire.ping", {})
    assert proxy.connects == [target(relay_server_tls)]


@pytest.mark.parametrize(
    "no_proxy", ["localhost", ".localhost", "example.com, LOCALHOST", "*", "localhost:{port}"]
)
async def test_no_proxy_bypasses_the_proxy(
    relay_server_tls: FakeRelayServer,
    proxy: ProxyProcess,
    no_proxy: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = relay_server_tls
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy.format(port=server.port))
    async with client_for(server) as client:
        await client.execute("signalwire.ping", {})
    assert proxy.connects == []
    assert server.connections == 1


async def test_no_proxy_for_another_host_or_port_does_not_bypass(
    relay_server_tls: FakeRelayServer, proxy: ProxyProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = relay_server_tls
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("no_proxy", f"example.com,notlocalhost,localhost:{server.port + 1}")
    async with client_for(server) as client:
        await client.execute("signalwire.ping", {})
    assert proxy.connects == [target(server)]


# -- credentials -------------------------------------------------------------------------


async def test_a_proxy_that_wants_credentials_gets_them_from_the_url(
    relay_server_tls: FakeRelayServer,
    auth_proxy: ProxyProcess,
    transport: TransportName,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = auth_proxy.url_with(USER, PASSWORD)
    await handle_one_call(
        client_for(relay_server_tls, transport=transport, proxy=url), relay_server_tls
    )
    assert auth_proxy.connects == [target(relay_server_tls)]
    assert PASSWORD not in caplog.text


async def test_without_credentials_the_proxy_answers_407(
    relay_server_tls: FakeRelayServer, auth_proxy: ProxyProcess, transport: TransportName
) -> None:
    with anyio.fail_after(WAIT), pytest.raises(TransportError) as refused:
        async with open_transport(
            relay_server_tls.url,
            transport=transport,
            ssl_context=relay_server_tls.client_ssl_context(),
            proxy=parse_proxy(auth_proxy.url, "HTTPS_PROXY"),
        ):
            pytest.fail("must not open")
    error = refused.value
    assert not error.fatal  # retried like any failure to connect
    assert f"the proxy {auth_proxy.url} refused" in error.message
    assert "HTTP 407" in error.message
    assert "http://user:password@host:port (HTTPS_PROXY)" in error.message  # the fix
    assert auth_proxy.connects == []
    assert relay_server_tls.connections == 0


async def test_wrong_credentials_are_refused_and_never_shown(
    relay_server_tls: FakeRelayServer, auth_proxy: ProxyProcess, transport: TransportName
) -> None:
    with anyio.fail_after(WAIT), pytest.raises(TransportError) as refused:
        async with open_transport(
            relay_server_tls.url,
            transport=transport,
            ssl_context=relay_server_tls.client_ssl_context(),
            proxy=parse_proxy(auth_proxy.url_with(USER, "wrong-pw"), "proxy"),
        ):
            pytest.fail("must not open")
    message = refused.value.message
    assert "HTTP 407" in message and "did not accept the credentials" in message
    assert f"http://{USER}:***@127.0.0.1:{auth_proxy.port}" in message
    assert "wrong-pw" not in message and "wrong-pw" not in repr(refused.value)


# -- TLS inside the tunnel ---------------------------------------------------------------


@asynccontextmanager
async def tls_server(names: list[str]) -> AsyncIterator[tuple[int, list[str | None], str]]:
    """A TLS server with a certificate for ``names``: it records the SNI it is sent.

    Yields (port, server names seen, CA PEM). It completes TLS and then closes, so a
    client fails in the WebSocket handshake: enough to see what TLS checked.
    """
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    seen: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: seen.append(name)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:  # closed even when cancelled mid-handshake
            try:
                tls = await TLSStream.wrap(stream, server_side=True, ssl_context=context)
                await anyio.aclose_forcefully(tls)
            except (OSError, anyio.BrokenResourceError, anyio.EndOfStream):
                pass

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            yield port, seen, ca.cert_pem.bytes().decode()
            tg.cancel_scope.cancel()


async def test_tls_inside_the_tunnel_sends_the_relay_host_as_sni(
    proxy: ProxyProcess, transport: TransportName
) -> None:
    async with tls_server(["localhost"]) as (port, seen, ca_pem):
        context = ssl.create_default_context(cadata=ca_pem)
        with anyio.fail_after(WAIT), pytest.raises(TransportError) as failed:
            async with open_transport(
                f"wss://localhost:{port}",
                transport=transport,
                ssl_context=context,
                proxy=parse_proxy(proxy.url, "proxy"),
            ):
                pytest.fail("the server speaks no WebSocket")
    assert seen == ["localhost"]  # SNI names the RELAY host, not the proxy
    assert proxy.connects == [f"CONNECT localhost:{port}"]
    assert "WebSocket handshake" in failed.value.message


async def test_the_certificate_is_checked_against_the_relay_host(
    proxy: ProxyProcess, transport: TransportName
) -> None:
    """A certificate valid for another name fails, fatal, through the tunnel too."""
    async with tls_server(["relay.example"]) as (port, _, ca_pem):
        context = ssl.create_default_context(cadata=ca_pem)
        with anyio.fail_after(WAIT), pytest.raises(TransportError) as failed:
            async with open_transport(
                f"wss://localhost:{port}",
                transport=transport,
                ssl_context=context,
                proxy=parse_proxy(proxy.url, "proxy"),
            ):
                pytest.fail("must not open")
    error = failed.value
    assert error.fatal
    assert f"TLS certificate verification failed for localhost:{port}" in error.message
    assert f"through the proxy {proxy.url}" in error.message
    assert proxy.connects == [f"CONNECT localhost:{port}"]


async def test_an_untrusted_relay_certificate_through_the_proxy_is_fatal(
    relay_server_tls: FakeRelayServer, proxy: ProxyProcess, transport: TransportName
) -> None:
    """The CA rules are the usual ones: the system store does not know the fake CA."""
    client = client_for(
        relay_server_tls,
        transport=transport,
        proxy=proxy.url,
        ssl_context=ssl.create_default_context(),
    )
    with anyio.fail_after(WAIT), pytest.raises(TransportError) as refused:
        async with client:
            pytest.fail("must not connect")
    assert refused.value.fatal
    assert CA_FILE_ENV in refused.value.message
    assert proxy.connects == [target(relay_server_tls)]
    assert relay_server_tls.connections == 0


# -- refusals (a loopback server of our own) --------------------------------------------


class Refuser:
    """A fake proxy that answers every CONNECT with one canned reply (or hangs up)."""

    def __init__(self, port: int, requests: anyio.abc.ObjectReceiveStream[bytes]) -> None:
        self.port = port
        self.requests = requests

    @property
    def url(self) -> str:
        return f"http://{USER}:{PASSWORD}@127.0.0.1:{self.port}"

    @property
    def masked(self) -> str:
        return f"http://{USER}:***@127.0.0.1:{self.port}"


@asynccontextmanager
async def refusing_proxy(reply: bytes | None, *, keep_open: bool = False) -> AsyncIterator[Refuser]:
    sender, receiver = anyio.create_memory_object_stream[bytes](100)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    head += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return
            await sender.send(head)
            if reply is not None:
                await stream.send(reply)
            if keep_open:
                await anyio.sleep_forever()

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg, sender, receiver:
            tg.start_soon(listener.serve, handle)
            yield Refuser(port, receiver)
            tg.cancel_scope.cancel()


REFUSALS = {
    "403": (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "HTTP 403 Forbidden"),
    "502": (b"HTTP/1.0 502 Bad Gateway\r\n\r\n", "HTTP 502 Bad Gateway"),
    "not HTTP": (b"SSH-2.0-OpenSSH_9.6\r\n", "an answer that is not HTTP: b'SSH-2.0"),
    "closed": (None, "closed the connection before answering the CONNECT"),
    "stalls": (None, "timed out after 0.5 s"),
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
async def test_a_refusing_proxy_is_a_clear_retryable_error(
    refusal: str, transport: TransportName
) -> None:
    reply, expected = REFUSALS[refusal]
    # Each reply stays unanswered after it (a client must not wait for more); "closed"
    # hangs up at once; "stalls" never answers, so the open timeout ends it.
    keep_open = refusal != "closed"
    async with refusing_proxy(reply, keep_open=keep_open) as refuser:
        with anyio.fail_after(WAIT), pytest.raises(TransportError) as refused:
            async with open_transport(
                "wss://relay.example:443",
                transport=transport,
                proxy=parse_proxy(refuser.url, "HTTPS_PROXY"),
                open_timeout=0.5 if refusal == "stalls" else WAIT,
            ):
                pytest.fail("must not open")
        request = await refuser.requests.receive()
    error = refused.value
    assert not error.fatal
    assert expected in error.message
    assert refuser.masked in error.message
    assert PASSWORD not in error.message and PASSWORD not in repr(error)
    # What the proxy was sent: CONNECT to the RELAY host, credentials as Basic.
    assert request.startswith(b"CONNECT relay.example:443 HTTP/1.1\r\n")
    assert b"\r\nHost: relay.example:443\r\n" in request
    assert b"\r\nProxy-Authorization: Basic cmVsYXktdXNlcjpzM2NyZXQtcHc=\r\n" in request


async def test_the_reconnect_loop_retries_a_refusing_proxy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with refusing_proxy(REFUSALS["502"][0]) as refuser:
        client = RelayClient(
            project="p", token="t", url="ws://relay.example", proxy=refuser.url, **FAST
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.connect)
            with anyio.fail_after(WAIT):
                for _ in range(3):  # the first attempt and two retries
                    await refuser.requests.receive()
            tg.cancel_scope.cancel()
    failures = [r.getMessage() for r in caplog.records if "connection failed" in r.getMessage()]
    assert len(failures) >= 2
    assert all(refuser.masked in f and "HTTP 502" in f for f in failures)
    assert PASSWORD not in caplog.text


async def test_an_unreachable_proxy_is_a_retryable_error(transport: TransportName) -> None:
    async with refusing_proxy(None) as refuser:
        port = refuser.port  # free once the listener is closed
    with anyio.fail_after(WAIT), pytest.raises(TransportError) as failed:
        async with open_transport(
            "ws://relay.example", transport=transport, proxy=parse_proxy(f"127.0.0.1:{port}", "p")
        ):
            pytest.fail("must not open")
    assert not failed.value.fatal and not failed.value.unresolved
    assert f"cannot connect to the proxy http://127.0.0.1:{port}" in failed.value.message


async def test_a_proxy_host_that_does_not_resolve_counts_as_unresolved(
    transport: TransportName,
) -> None:
    with anyio.fail_after(WAIT), pytest.raises(TransportError) as failed:
        async with open_transport(
            "wss://relay.example",
            transport=transport,
            proxy=parse_proxy("http://no-such-proxy.invalid:3128", "HTTPS_PROXY"),
        ):
            pytest.fail("must not open")
    assert failed.value.unresolved
    assert "no-such-proxy.invalid" in failed.value.message


# -- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("socks5://127.0.0.1:1080", "SOCKS proxies are not supported"),
        ("socks5h://u:pw-secret@127.0.0.1:1080", "SOCKS proxies are not supported"),
        ("https://proxy.example:443", "TLS to the proxy"),
        ("ftp://proxy.example", "expected http://"),
        ("http://", "no host"),
        ("http://u:pw-secret@proxy.example:port", "Port could not be cast"),
        ("http://proxy.example:3128/path", "no path"),
        ("http://proxy.example:99999", "out of range"),
    ],
)
def test_a_bad_proxy_url_fails_in_the_constructor(value: str, why: str) -> None:
    with pytest.raises(ValueError, match="not a usable proxy URL") as bad:
        RelayClient(project="p", token="t", proxy=value)
    assert why in str(bad.value)
    assert str(bad.value).startswith("proxy=")
    assert "pw-secret" not in str(bad.value)


def test_a_bad_proxy_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://u:pw-secret@127.0.0.1:1080")
    with pytest.raises(ValueError, match=r"^ALL_PROXY='socks5://u:\*\*\*@127") as bad:
        RelayClient(project="p", token="t")
    assert "proxy=None" in str(bad.value)  # the way out
    assert "pw-secret" not in str(bad.value)
    # ... and proxy=None is that way out; NO_PROXY too.
    assert RelayClient(project="p", token="t", proxy=None).config.session.proxy is None
    monkeypatch.setenv("NO_PROXY", "signalwire.com")
    assert RelayClient(project="p", token="t").config.session.proxy is None


def test_a_proxy_of_another_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="proxy must be a proxy URL"):
        RelayClient(project="p", token="t", proxy=3128)  # type: ignore[arg-type]


def test_which_variable_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    """As urllib reads them: lowercase wins, HTTPS for wss, HTTP for ws, ALL as fallback."""

    def chosen(url: str) -> Proxy | None:
        return RelayClient(project="p", token="t", url=url).config.session.proxy

    assert chosen("wss://relay.example") is None
    monkeypatch.setenv("ALL_PROXY", "http://all.example:1")
    assert chosen("wss://relay.example") == parse_proxy("http://all.example:1", "ALL_PROXY")
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.example:2")
    monkeypatch.setenv("https_proxy", "http://lower.example:3")
    picked = chosen("wss://relay.example")
    assert picked is not None and (picked.host, picked.source) == ("lower.example", "https_proxy")
    picked = chosen("ws://relay.example")
    assert picked is not None and picked.host == "all.example"
    monkeypatch.setenv("HTTP_PROXY", "http://plain.example:4")
    picked = chosen("ws://relay.example")
    assert picked is not None and picked.host == "plain.example"
    monkeypatch.setenv("REQUEST_METHOD", "GET")  # CGI: HTTP_PROXY may be a request header
    picked = chosen("ws://relay.example")
    assert picked is not None and picked.host == "all.example"


def test_the_proxy_parses_as_urllib_and_hides_the_password() -> None:
    proxy = parse_proxy("http://us%40er:p%3Ass@proxy.example:3128/", "proxy")
    assert (proxy.host, proxy.port) == ("proxy.example", 3128)
    assert proxy.url == "http://us%40er:***@proxy.example:3128"
    # Percent-decoded, as httpx and urllib send them: "us@er:p:ss".
    assert proxy.authorization == "Basic dXNAZXI6cDpzcw=="
    assert "p%3Ass" not in repr(proxy) and "dXNAZXI6cDpzcw" not in repr(proxy)
    assert parse_proxy("proxy.example:8080", "HTTPS_PROXY").url == "http://proxy.example:8080"
    assert parse_proxy("http://proxy.example", "p").port == 80
    assert parse_proxy("http://user@proxy.example", "p").authorization == "Basic dXNlcjo="
    request = parse_proxy("http://[::1]:3128", "p").connect_request("::1", 443)
    assert request == b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "expected"),
    [
        ("relay.signalwire.com", 443, "", False),
        ("relay.signalwire.com", 443, "*", True),
        ("relay.signalwire.com", 443, "signalwire.com", True),
        ("relay.signalwire.com", 443, ".signalwire.com", True),
        ("relay.signalwire.com", 443, "*.signalwire.com", True),
        ("relay.signalwire.com", 443, "SignalWire.COM", True),
        ("relay.signalwire.com", 443, "wire.com", False),
        ("relay.signalwire.com", 443, "relay.signalwire.com:443", True),
        ("relay.signalwire.com", 443, "relay.signalwire.com:8443", False),
        ("relay.signalwire.com", 443, " a.example , signalwire.com ", True),
        ("10.1.2.3", 443, "10.0.0.0/8", True),
        ("10.1.2.3", 443, "10.1.2.3", True),
        ("10.1.2.3", 443, "11.0.0.0/8", False),
        ("::1", 443, "::1", True),
        ("::1", 443, "[::1]:443", True),
        ("::1", 443, "[::1]:80", False),
        ("localhost", 443, "10.0.0.0/8", False),
    ],
)
def test_no_proxy_matching(host: str, port: int, no_proxy: str, expected: bool) -> None:
    assert bypassed(host, port, no_proxy) is expected
