"""Bad credentials and bad configuration fail fast, naming what to fix."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import anyio
import pytest

from relay_anyio import AuthenticationError, RelayClient, TransportError
from relay_anyio.testing import FakeRelayServer

from .helpers import CA_FILE_ENV, FAST

pytestmark = pytest.mark.anyio

CREDENTIALS = ("SIGNALWIRE_PROJECT_ID", "SIGNALWIRE_API_TOKEN", "SIGNALWIRE_JWT_TOKEN")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*CREDENTIALS, "SIGNALWIRE_SPACE", CA_FILE_ENV, "RELAY_MAX_CONNECTIONS"):
        monkeypatch.delenv(name, raising=False)


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({}, ["project", "SIGNALWIRE_PROJECT_ID", "jwt_token"]),
        ({"project": "p"}, ["token", "SIGNALWIRE_API_TOKEN"]),
        ({"token": "t"}, ["SIGNALWIRE_PROJECT_ID"]),
        ({"project": "p", "token": "t", "host": "https://x.signalwire.com/"}, ["not a URL"]),
        ({"project": "p", "token": "t", "host": "me@x.signalwire.com"}, ["Invalid host"]),
        ({"project": "p", "token": "t", "url": "http://127.0.0.1:1"}, ["ws://", "wss://"]),
        ({"project": "p", "token": "t", "url": "ws://127.0.0.1:port"}, ["Invalid RELAY URL"]),
        ({"project": "p", "token": "t", "transport": "websockets"}, ["unknown transport"]),
        ({"project": "p", "token": "t", "request_timeout": 0}, ["request_timeout", "positive"]),
        ({"project": "p", "token": "t", "ping_interval": -5}, ["ping_interval", "positive"]),
        ({"project": "p", "token": "t", "ping_timeout": float("nan")}, ["ping_timeout"]),
        (
            {"project": "p", "token": "t", "reconnect_min_delay": 5, "reconnect_max_delay": 1},
            ["reconnect_max_delay", "reconnect_min_delay"],
        ),
        (
            {"project": "p", "token": "t", "ssl_context": _unverified()},
            ["certificate and hostname"],
        ),
    ],
    ids=[
        "no-credentials",
        "no-token",
        "no-project",
        "host-is-a-url",
        "host-with-at",
        "http-url",
        "bad-port",
        "unknown-transport",
        "zero-timeout",
        "negative-ping",
        "nan-ping-timeout",
        "max-below-min",
        "unverified-tls",
    ],
)
def test_bad_configuration_fails_in_the_constructor(
    kwargs: dict[str, Any], names: list[str]
) -> None:
    with pytest.raises(ValueError) as bad:
        RelayClient(**kwargs)
    for name in names:
        assert name in str(bad.value)


def test_an_unreadable_ca_file_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CA_FILE_ENV, str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match=CA_FILE_ENV):
        RelayClient(project="p", token="t", host="example.signalwire.com")
    (tmp_path / "garbage.pem").write_text("not a certificate")
    monkeypatch.setenv(CA_FILE_ENV, str(tmp_path / "garbage.pem"))
    with pytest.raises(ValueError, match=CA_FILE_ENV):
        RelayClient(project="p", token="t", host="example.signalwire.com")


@pytest.mark.parametrize("auth", ["project-token", "jwt"])
async def test_bad_credentials_fail_fast_and_say_what_to_check(
    relay_server: FakeRelayServer, auth: str
) -> None:
    kwargs: dict[str, Any] = (
        {"project": "test-project", "token": "wrong"}
        if auth == "project-token"
        else {"jwt_token": "wrong.jwt.token"}
    )
    # Backoff as in production: a retry would show as a second of delay (and a
    # second connect frame), which is what this pins.
    timers = {**FAST, "reconnect_min_delay": 1.0, "reconnect_max_delay": 1.0}
    client = RelayClient(url=relay_server.url, **kwargs, **timers)
    with anyio.fail_after(30), pytest.raises(AuthenticationError) as rejected:
        async with client:
            pytest.fail("must not connect")
    assert len(relay_server.received("signalwire.connect")) == 1
    message = rejected.value.message
    assert "Authentication failed" in message  # the server's words...
    if auth == "project-token":  # ...and what to fix
        assert "SIGNALWIRE_PROJECT_ID" in message and "SIGNALWIRE_API_TOKEN" in message
    else:
        assert "SIGNALWIRE_JWT_TOKEN" in message
    assert rejected.value.data == {"signalwire_error_code": "AUTH_REQUIRED"}


async def test_a_host_that_does_not_resolve_fails_fast_naming_the_host() -> None:
    """Before the first connection a name that does not resolve is a typo far more
    often than an outage: after three in a row the client gives up and says so."""
    client = RelayClient(project="p", token="t", host="relay.example.invalid", **FAST)
    with anyio.fail_after(10), pytest.raises(TransportError) as failed:
        async with client:
            pytest.fail("must not connect")
    assert failed.value.fatal and failed.value.unresolved
    assert "relay.example.invalid" in failed.value.message
    assert "SIGNALWIRE_SPACE" in failed.value.message


async def test_trio_websocket_under_asyncio_fails_at_once(anyio_backend_name: str) -> None:
    if anyio_backend_name != "asyncio":
        pytest.skip("the point is running it under asyncio")
    async with FakeRelayServer() as server:
        client = RelayClient(
            project="test-project",
            token="test-token",
            url=server.url,
            transport="trio-websocket",
            **FAST,
        )
        with anyio.fail_after(2), pytest.raises(ValueError, match="only runs under trio"):
            async with client:
                pytest.fail("must not connect")
        assert server.connections == 0


def test_the_wsproto_transport_name_is_a_deprecated_alias_of_native() -> None:
    with pytest.warns(DeprecationWarning, match="transport='native'"):
        client = RelayClient(project="p", token="t", transport="wsproto")
    assert client.config.session.transport == "native"
    with pytest.raises(ValueError, match="use 'native' or 'trio-websocket'"):
        RelayClient(project="p", token="t", transport="websockets")  # type: ignore[arg-type]


def test_the_configuration_is_resolved_once_from_arguments_and_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIGNALWIRE_PROJECT_ID", "env-project")
    monkeypatch.setenv("SIGNALWIRE_API_TOKEN", "env-token")
    monkeypatch.setenv("SIGNALWIRE_SPACE", "example.signalwire.com")
    monkeypatch.setenv("RELAY_MAX_ACTIVE_CALLS", "7")
    client = RelayClient(contexts=["a", "b", "a"], token="arg-token")
    config = client.config
    assert (config.project, config.host, config.url) == (
        "env-project",
        "example.signalwire.com",
        "wss://example.signalwire.com",
    )
    assert config.session.authentication == {"project": "env-project", "token": "arg-token"}
    assert config.contexts == ("a", "b")
    assert config.max_active_calls == 7
    assert config.session.ssl_context is not None  # wss: the one default context
    assert "arg-token" not in repr(config)


def test_a_misspelled_option_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="'reqest_timeout'"):
        RelayClient(project="p", token="t", reqest_timeout=5.0)  # type: ignore[call-arg]


def test_options_left_out_or_none_take_the_config_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SIGNALWIRE_SPACE", raising=False)
    session = RelayClient(project="p", token="t", url=None, ping_timeout=None).config.session
    assert (session.request_timeout, session.ping_interval, session.ping_timeout) == (
        10.0,
        30.0,
        10.0,
    )
    assert (session.reconnect_min_delay, session.reconnect_max_delay) == (1.0, 30.0)
    assert session.url == "wss://relay.signalwire.com"
    tuned = RelayClient(project="p", token="t", request_timeout=4.0, shutdown_timeout=0.5).config
    # ping_timeout follows request_timeout unless given
    assert (tuned.session.request_timeout, tuned.session.ping_timeout) == (4.0, 4.0)
    assert tuned.shutdown_timeout == 0.5
    assert tuned.call_event_buffer == 1000
