"""``send_task`` on the wire, against a tiny HTTP server this test controls.

The fake RELAY server's REST endpoint is tested in ``test_tasks.py``; here a minimal
loopback HTTP/1.1 server written for this file records the raw request and answers
as told (a status and body, never, or by hanging up), so what the client puts on the
wire is checked byte by byte, independently of the fake server's parser.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import anyio.abc
import attrs
import pytest
from anyio.abc import SocketAttribute

from relay_anyio import (
    AuthenticationError,
    RelayClient,
    RelayError,
    RequestTimeout,
    TransportError,
    send_task,
)
from relay_anyio._config import RestConfig
from relay_anyio._tasks import ERROR_BODY_LIMIT
from relay_anyio._version import __version__

pytestmark = pytest.mark.anyio

PROJECT = "7d5c1e2a-3b4f-4c6d-8e9f-0a1b2c3d4e5f"
TOKEN = "PT9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@attrs.define
class Request:
    """One request as it arrived: the request line, headers (lower-case names), body."""

    line: str
    headers: dict[str, str]
    body: bytes


@attrs.define
class TinyHttp:
    """Answers every request the same way; ``mode`` says how."""

    port: int = 0
    mode: Literal["answer", "hang", "drop"] = "answer"
    status: int = 204
    body: bytes = b""
    requests: list[Request] = attrs.field(factory=list)
    connections: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        async with stream:
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    data += await stream.receive()
                head, _, body = data.partition(b"\r\n\r\n")
                line, *fields = head.decode("latin-1").split("\r\n")
                headers = {}
                for field in fields:
                    name, _, value = field.partition(":")
                    headers[name.strip().lower()] = value.strip()
                while len(body) < int(headers.get("content-length", "0")):
                    body += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return
            self.requests.append(Request(line, headers, body))
            if self.mode == "hang":
                await anyio.sleep_forever()
            if self.mode == "drop":
                return
            reason = {204: "No Content", 401: "Unauthorized"}.get(self.status, "Whatever")
            head_out = f"HTTP/1.1 {self.status} {reason}\r\nConnection: close\r\n"
            if self.status != 204:
                head_out += f"Content-Length: {len(self.body)}\r\n"
            await stream.send(head_out.encode() + b"\r\n" + self.body)


@asynccontextmanager
async def tiny_http(**kwargs: Any) -> AsyncIterator[TinyHttp]:
    server = TinyHttp(**kwargs)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        server.port = listener.extra(SocketAttribute.local_port)
        tg.start_soon(listener.serve, server.handle)
        yield server
        tg.cancel_scope.cancel()


def _basic(project: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{project}:{token}".encode()).decode()


async def test_posts_the_documented_request() -> None:
    async with tiny_http() as server:
        await send_task(
            "office", {"job": "print", "n": 3}, project=PROJECT, token=TOKEN, url=server.url
        )
    [request] = server.requests
    assert request.line == "POST /api/relay/rest/tasks HTTP/1.1"
    assert request.headers["authorization"] == _basic(PROJECT, TOKEN)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"relay-anyio/{__version__}"
    assert json.loads(request.body) == {"context": "office", "message": {"job": "print", "n": 3}}


async def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALWIRE_PROJECT_ID", "env-project")
    monkeypatch.setenv("SIGNALWIRE_API_TOKEN", "env-token")
    async with tiny_http() as server:
        await send_task("office", {}, url=server.url)
        await send_task("office", {}, project="arg-project", token="arg-token", url=server.url)
    first, second = server.requests
    assert first.headers["authorization"] == _basic("env-project", "env-token")
    assert second.headers["authorization"] == _basic("arg-project", "arg-token")


def test_host_comes_from_the_argument_or_signalwire_space(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNALWIRE_SPACE", raising=False)
    assert RestConfig.resolve("p", "t").base_url == "https://relay.signalwire.com"
    monkeypatch.setenv("SIGNALWIRE_SPACE", "example.signalwire.com")
    assert RestConfig.resolve("p", "t").base_url == "https://example.signalwire.com"
    assert RestConfig.resolve("p", "t", "other.example:8443").base_url == (
        "https://other.example:8443"
    )
    with pytest.raises(ValueError, match="not a URL"):
        RestConfig.resolve("p", "t", "https://example.signalwire.com")


def test_missing_credentials_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SIGNALWIRE_PROJECT_ID", "SIGNALWIRE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SIGNALWIRE_JWT_TOKEN", "a.jwt.token")  # not enough for tasks
    with pytest.raises(ValueError, match=r"SIGNALWIRE_PROJECT_ID.*a JWT cannot send tasks"):
        RestConfig.resolve()
    with pytest.raises(ValueError, match="SIGNALWIRE_API_TOKEN"):
        RestConfig.resolve("p")


@pytest.mark.parametrize(
    "url",
    ["http://example.com", "http://10.0.0.1:8080", "ftp://127.0.0.1", "http://u:p@127.0.0.1"],
)
def test_plain_http_only_to_loopback(url: str) -> None:
    with pytest.raises(ValueError, match=r"refusing plain http|Invalid REST URL"):
        RestConfig.resolve("p", "t", url=url)


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:1/", "http://localhost:1"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("https://example.com", "https://example.com"),
    ],
)
def test_accepted_urls(url: str, base: str) -> None:
    assert RestConfig.resolve("p", "t", url=url).base_url == base


def test_a_client_sends_where_it_connects() -> None:
    tls = RelayClient(PROJECT, TOKEN, host="example.signalwire.com")
    assert RestConfig.for_client(tls.config).base_url == "https://example.signalwire.com"
    assert RestConfig.for_client(tls.config).ssl_context is tls.config.session.ssl_context
    local = RelayClient(PROJECT, TOKEN, url="ws://127.0.0.1:9000")
    assert RestConfig.for_client(local.config).base_url == "http://127.0.0.1:9000"
    assert RestConfig.for_client(local.config).token == TOKEN
    assert TOKEN not in repr(RestConfig.for_client(local.config))


async def test_a_ws_client_to_a_real_host_refuses_to_send_the_token_in_clear() -> None:
    client = RelayClient(PROJECT, TOKEN, url="ws://example.com:9000")
    with pytest.raises(ValueError, match="refusing plain http"):
        await client.send_task("office", {})


async def test_a_jwt_client_cannot_send_tasks() -> None:
    client = RelayClient(jwt_token="a.jwt.token", url="ws://127.0.0.1:9")
    with pytest.raises(ValueError, match="a JWT cannot send tasks"):
        await client.send_task("office", {})


async def test_client_send_task_needs_no_connection() -> None:
    async with tiny_http() as server:
        client = RelayClient(PROJECT, TOKEN, url=server.url.replace("http", "ws"))
        await client.send_task("office", {"a": 1})  # never entered: no WebSocket
    [request] = server.requests
    assert request.headers["authorization"] == _basic(PROJECT, TOKEN)
    assert json.loads(request.body) == {"context": "office", "message": {"a": 1}}


@pytest.mark.parametrize(
    ("context", "message", "error", "match"),
    [
        ("", {}, ValueError, "context must be a non-empty string"),
        (None, {}, ValueError, "context must be a non-empty string"),
        ("office", ["not", "an", "object"], TypeError, "must be a JSON object"),
        ("office", "text", TypeError, "must be a JSON object"),
        ("office", {"when": object()}, TypeError, "not JSON-serialisable"),
    ],
)
async def test_bad_input_is_refused_before_anything_is_sent(
    context: Any, message: Any, error: type[Exception], match: str
) -> None:
    async with tiny_http() as server:
        with pytest.raises(error, match=match):
            await send_task(context, message, project=PROJECT, token=TOKEN, url=server.url)
        with pytest.raises(ValueError, match="timeout"):
            await send_task("office", {}, project=PROJECT, token=TOKEN, url=server.url, timeout=0)
    assert server.connections == 0


@pytest.mark.parametrize("status", [200, 202, 400, 404, 500, 503])
async def test_anything_but_204_raises_with_status_and_body(status: int) -> None:
    async with tiny_http(status=status, body=b'{"errors":["no such context"]}') as server:
        with pytest.raises(RelayError) as caught:
            await send_task("office", {}, project=PROJECT, token=TOKEN, url=server.url)
    assert type(caught.value) is RelayError
    assert caught.value.code == status
    assert caught.value.data == {"status": status, "body": '{"errors":["no such context"]}'}
    assert f"HTTP {status}" in str(caught.value)
    assert "no such context" in str(caught.value)
    assert len(server.requests) == 1  # never retried


async def test_401_is_an_authentication_error() -> None:
    async with tiny_http(status=401, body=b"Unauthorized") as server:
        with pytest.raises(AuthenticationError) as caught:
            await send_task("office", {}, project=PROJECT, token=TOKEN, url=server.url)
    assert caught.value.code == 401
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)


async def test_a_large_error_body_is_bounded() -> None:
    async with tiny_http(status=500, body=b"x" * (ERROR_BODY_LIMIT * 50)) as server:
        with pytest.raises(RelayError) as caught:
            await send_task("office", {}, project=PROJECT, token=TOKEN, url=server.url)
    assert caught.value.data["body"] == "x" * ERROR_BODY_LIMIT
    assert len(str(caught.value)) < ERROR_BODY_LIMIT + 200


async def test_no_answer_is_a_request_timeout_and_is_not_retried() -> None:
    async with tiny_http(mode="hang") as server:
        # Timing is the subject: 0.5 s asked, 10 s allowed (generous on a busy machine).
        with anyio.fail_after(10), pytest.raises(RequestTimeout) as caught:
            await send_task("office", {}, project=PROJECT, token=TOKEN, url=server.url, timeout=0.5)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.timeout == 0.5
    assert "POST /api/relay/rest/tasks" in str(caught.value)
    assert len(server.requests) == 1 and server.connections == 1


async def test_a_connection_dropped_before_the_answer_is_not_retried() -> None:
    async with tiny_http(mode="drop") as server:
        with pytest.raises(TransportError):
            await send_task("office", {}, project=PROJECT, token=TOKEN, url=server.url)
    # The task may have been delivered: sending it again could run the job twice.
    assert len(server.requests) == 1 and server.connections == 1


async def test_nothing_listening_is_a_transport_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    await listener.aclose()  # a port nobody listens on
    with pytest.raises(TransportError, match=r"send_task to http://127\.0\.0\.1"):
        await send_task("office", {}, project=PROJECT, token=TOKEN, url=f"http://127.0.0.1:{port}")


async def test_https_proxy_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tiny server plays the proxy: httpx must ask it to CONNECT to the RELAY host
    # (which is never reached: the "proxy" answers 502).
    async with tiny_http(status=502, body=b"no upstream") as proxy:
        for name in ("ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "https_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        with pytest.raises(TransportError):
            await send_task("office", {}, project=PROJECT, token=TOKEN, host="relay.test.invalid")
    [request] = proxy.requests
    assert request.line == "CONNECT relay.test.invalid:443 HTTP/1.1"
    assert "authorization" not in request.headers  # the token goes inside the tunnel only


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + " " + repr(vars(record)))


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


async def test_the_token_is_never_logged(debug_log: _Everything) -> None:
    async with tiny_http() as server:
        await send_task("office", {"a": 1}, project=PROJECT, token=TOKEN, url=server.url)
        server.status, server.body = 500, b"boom"
        with pytest.raises(RelayError):
            await send_task("office", {"a": 1}, project=PROJECT, token=TOKEN, url=server.url)
    text = "\n".join(debug_log.lines)
    assert "office" in text  # the log did record the sends
    assert TOKEN not in text
    assert _basic(PROJECT, TOKEN).split()[1] not in text


def test_importing_the_sdk_does_not_import_httpx() -> None:
    # A worker that only receives never pays httpx's import (about 0.1 s): send_task
    # imports it on first use.
    code = "import sys, relay_anyio; print('httpx' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
