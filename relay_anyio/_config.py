"""Configuration: arguments and environment resolved and validated in one place.

``ClientConfig`` is what a ``RelayClient`` runs with: the
``SIGNALWIRE_*`` / ``RELAY_*`` environment variables read once, the URL, the TLS
context (one default, honouring ``SIGNALWIRE_RELAY_CA_FILE``) and the transport
checked once, the outbound proxy (``proxy=`` or ``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY``)
resolved and validated once, every timer validated where it is written. ``SessionOptions`` is
its part the session needs. A bad value fails in the ``RelayClient`` constructor
with a message naming the argument or variable to fix, not later in the reconnect
loop as a timeout that fires at once or a ping loop that never sleeps.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypedDict, Unpack
from urllib.parse import urlsplit

import attrs

from ._constants import DEFAULT_RELAY_HOST
from ._proxy import Proxy, ProxySetting, resolve_proxy
from ._transport import TransportName, canonical_transport
from ._version import __version__
from ._websocket import build_ssl_context, check_verifying_context, split_url

__all__ = [
    "AGENT",
    "ClientConfig",
    "ClientOptions",
    "RestConfig",
    "SessionOptions",
    "max_connections",
]

logger = logging.getLogger("relay_anyio.config")

AGENT = f"relay-anyio/{__version__}"
_FORBIDDEN_HOST_CHARS = frozenset("@/?\r\n \\")


def _seconds(*, positive: bool) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator for a duration; the message names the RelayClient argument."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and attribute.name == "open_timeout":
            return
        ok = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (value > 0 if positive else value >= 0)
        )
        if not ok:
            need = "a positive" if positive else "a non-negative"
            raise ValueError(f"{attribute.name} must be {need} number of seconds, got {value!r}")

    return check


def _check_url(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    split_url(value)  # raises ValueError naming the URL


def _check_authentication(
    instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, str]
) -> None:
    if not value or not all(isinstance(v, str) and v for v in value.values()):
        raise ValueError("authentication needs a project and token, or a JWT")


def _relay_host(host: str | None) -> str:
    """``host``, else ``SIGNALWIRE_SPACE``, else the default; refused if it is a URL."""
    host = host or os.environ.get("SIGNALWIRE_SPACE") or DEFAULT_RELAY_HOST
    if any(c in _FORBIDDEN_HOST_CHARS for c in host) or "://" in host:
        raise ValueError(
            f"Invalid host {host!r}: must be a hostname like 'example.signalwire.com' "
            "(optionally with ':port'), not a URL"
        )
    return host


def _masked(authentication: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{key!r}: '***'" for key in authentication) + "}"


def _check_tls(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        check_verifying_context(value)  # raises ValueError


@attrs.frozen
class SessionOptions:
    """Everything a session needs to open, authenticate and keep a connection.

    Validated on construction, so a bad value fails where it is written (the
    RelayClient constructor) with a message naming it, not later in the reconnect
    loop as a timeout that fires at once or a ping loop that never sleeps.
    """

    url: str = attrs.field(validator=_check_url)
    #: Credentials; masked in the repr, which ends up in logs and tracebacks.
    authentication: Mapping[str, str] = attrs.field(validator=_check_authentication, repr=_masked)
    agent: str = AGENT
    transport: TransportName = attrs.field(default="native", converter=canonical_transport)
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, validator=_check_tls)
    #: The HTTP proxy to tunnel through, resolved from ``proxy=`` and the environment
    #: at construction; None: connect directly.
    proxy: Proxy | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(Proxy))
    )
    request_timeout: float = attrs.field(default=10.0, validator=_seconds(positive=True))
    #: Bound on TCP connect + TLS + WebSocket handshake; None: ``request_timeout``.
    open_timeout: float | None = attrs.field(default=None, validator=_seconds(positive=True))
    ping_interval: float = attrs.field(default=30.0, validator=_seconds(positive=True))
    #: How long a ping may go unanswered; by default ``request_timeout``.
    ping_timeout: float = attrs.field(
        default=attrs.Factory(lambda self: self.request_timeout, takes_self=True),
        validator=_seconds(positive=True),
    )
    reconnect_min_delay: float = attrs.field(default=1.0, validator=_seconds(positive=False))
    reconnect_max_delay: float = attrs.field(default=30.0, validator=_seconds(positive=False))
    #: Rejected reconnects retried (with backoff) once a session had been
    #: established; a rejection of the very first connect is final at once.
    auth_retries: int = 3
    #: Host names that did not resolve, in a row, before the first success.
    max_unresolved: int = 3
    disconnect_grace: float = attrs.field(default=5.0, validator=_seconds(positive=False))

    def __attrs_post_init__(self) -> None:
        if self.reconnect_max_delay < self.reconnect_min_delay:
            raise ValueError(
                f"reconnect_max_delay ({self.reconnect_max_delay!r}) must not be less than "
                f"reconnect_min_delay ({self.reconnect_min_delay!r})"
            )
        if self.auth_retries < 0:
            raise ValueError(f"auth_retries must not be negative, got {self.auth_retries}")
        if self.max_unresolved < 1:
            raise ValueError(f"max_unresolved must be at least 1, got {self.max_unresolved}")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return max(1, int(raw))
    except ValueError:
        logger.warning("%s=%r is not an integer; using %d", name, raw, default)
        return default


def max_connections() -> int:
    """``RELAY_MAX_CONNECTIONS``: clients one process may have connected (read at connect)."""
    return _env_int("RELAY_MAX_CONNECTIONS", 1)


def _at_least_one(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a whole number of at least 1, got {value!r}")


@attrs.frozen
class ClientConfig:
    """What a ``RelayClient`` runs with; build it with ``resolve``."""

    session: SessionOptions
    #: The project id ("" with a JWT).
    project: str
    #: ``host[:port]`` of the RELAY endpoint.
    host: str
    contexts: tuple[str, ...] = ()
    max_active_calls: int = attrs.field(default=1000, validator=_at_least_one)
    call_event_buffer: int = attrs.field(default=1000, validator=_at_least_one)
    shutdown_timeout: float = attrs.field(default=5.0, validator=_seconds(positive=False))
    message_ttl: float = attrs.field(default=3600.0, validator=_seconds(positive=True))
    late_result_grace: float = attrs.field(default=2.0, validator=_seconds(positive=False))

    @property
    def url(self) -> str:
        return self.session.url

    @classmethod
    def resolve(
        cls,
        project: str | None = None,
        token: str | None = None,
        jwt_token: str | None = None,
        host: str | None = None,
        contexts: Iterable[str] | None = None,
        max_active_calls: int | None = None,
        **options: Unpack[ClientOptions],
    ) -> ClientConfig:
        """Arguments first, then the environment, then the defaults (see RelayClient).

        The defaults of the options are the fields' defaults here and in
        ``SessionOptions``: one place each.
        """
        unknown = options.keys() - ClientOptions.__optional_keys__
        if unknown:
            # What Python says of a misspelled keyword when the signature names them all.
            raise TypeError(f"unexpected keyword argument {sorted(unknown)[0]!r}")
        jwt_token = jwt_token or os.environ.get("SIGNALWIRE_JWT_TOKEN") or None
        authentication: dict[str, str]
        if jwt_token:
            authentication = {"jwt_token": jwt_token}
        else:
            project = project or os.environ.get("SIGNALWIRE_PROJECT_ID") or None
            token = token or os.environ.get("SIGNALWIRE_API_TOKEN") or None
            if not project:
                raise ValueError(
                    "project is required: pass project=... or set SIGNALWIRE_PROJECT_ID "
                    "(or use jwt_token=... / SIGNALWIRE_JWT_TOKEN)"
                )
            if not token:
                raise ValueError(
                    "token is required: pass token=... or set SIGNALWIRE_API_TOKEN "
                    "(or use jwt_token=... / SIGNALWIRE_JWT_TOKEN)"
                )
            authentication = {"project": project, "token": token}
        url = options.get("url")
        if url is None:
            url = f"wss://{_relay_host(host)}"
        elif not url.startswith(("ws://", "wss://")):
            raise ValueError(f"url must start with ws:// or wss://, got {url!r}")
        ssl_context = options.get("ssl_context")
        if ssl_context is None and url.startswith("wss://"):
            ssl_context = build_ssl_context()  # honours SIGNALWIRE_RELAY_CA_FILE
        tls, relay_host, relay_port, _ = split_url(url)
        # The one place the proxy is chosen and checked: a bad URL fails here.
        resolved_proxy = resolve_proxy(options.get("proxy", True), tls, relay_host, relay_port)
        if max_active_calls is None:
            max_active_calls = _env_int("RELAY_MAX_ACTIVE_CALLS", 1000)
        given: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
        session = SessionOptions(
            url=url,
            authentication=authentication,
            ssl_context=ssl_context,
            proxy=resolved_proxy,
            **{k: given[k] for k in _SESSION_OPTIONS if k in given},
        )
        return cls(
            session=session,
            project=project or "",
            host=url.split("://", 1)[1].split("/", 1)[0],
            contexts=tuple(dict.fromkeys(contexts or ())),
            max_active_calls=max(1, int(max_active_calls)),
            **{k: given[k] for k in _CLIENT_OPTIONS if k in given},
        )


class ClientOptions(TypedDict, total=False):
    """The keyword options of ``RelayClient`` (and ``ClientConfig.resolve``), all optional.

    A ``TypedDict`` so that the options are written once, with their defaults in the
    frozen config classes, and type checkers still flag a misspelled option in user
    code; at run time a misspelled option is a ``TypeError`` as for any function.
    ``None`` for ``url``, ``ssl_context`` or ``ping_timeout`` means the default.
    """

    url: str | None
    """``ws://`` or ``wss://`` URL of the RELAY endpoint; default ``wss://`` + host."""
    ssl_context: ssl.SSLContext | None
    """A verifying TLS context; default: the system store plus ``SIGNALWIRE_RELAY_CA_FILE``."""
    transport: TransportName
    """``"native"`` (default) or ``"trio-websocket"`` (under trio)."""
    proxy: ProxySetting
    """``True`` (default: ``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY``), a proxy URL, or
    ``None`` for a direct connection."""
    request_timeout: float
    """Seconds a request waits for its response; default 10."""
    ping_interval: float
    """Seconds between keepalive pings; default 30."""
    ping_timeout: float | None
    """Seconds a ping may go unanswered before the link counts as dead; default
    ``request_timeout``."""
    reconnect_min_delay: float
    """First reconnect delay in seconds (doubling, ±20 % jitter); default 1."""
    reconnect_max_delay: float
    """Cap of the reconnect delay in seconds; default 30."""
    call_event_buffer: int
    """Events a call's async listeners may fall behind before ``EventOverflow``;
    default 1000."""
    shutdown_timeout: float
    """Seconds leaving ``async with`` waits for calls to hang up; default 5."""
    message_ttl: float
    """Seconds a sent message is tracked for its state events; default 3600."""
    late_result_grace: float
    """Seconds a recording running when its call ends waits for its URL; default 2."""


_SESSION_OPTIONS: Final = (
    "transport",
    "request_timeout",
    "ping_interval",
    "ping_timeout",
    "reconnect_min_delay",
    "reconnect_max_delay",
)
_CLIENT_OPTIONS: Final = (
    "call_event_buffer",
    "shutdown_timeout",
    "message_ttl",
    "late_result_grace",
)


# -- REST (send_task) ----------------------------------------------------------------------

#: The REST half of ``SIGNALWIRE_RELAY_CA_FILE`` (reference §1).
REST_CA_FILE_ENV = "SIGNALWIRE_REST_CA_FILE"


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _rest_ssl_context() -> ssl.SSLContext:
    ca_file = os.environ.get(REST_CA_FILE_ENV) or ""
    try:
        return build_ssl_context(ca_file)
    except ValueError:
        raise ValueError(
            f"{REST_CA_FILE_ENV}={ca_file!r} is not a readable PEM CA bundle"
        ) from None


@attrs.frozen
class RestConfig:
    """Where and as whom a REST request (``send_task``) goes, checked once.

    ``base_url`` is ``https://host[:port]``; plain ``http`` only to a loopback
    address (a test server), because the token travels in the ``Authorization``
    header and must not cross a network in clear. The token is left out of the repr.
    """

    base_url: str
    project: str
    token: str = attrs.field(repr=False)
    ssl_context: ssl.SSLContext | None = None

    @property
    def loopback(self) -> bool:
        """A local test server: no proxy applies."""
        return _is_loopback(urlsplit(self.base_url).hostname or "")

    @classmethod
    def resolve(
        cls,
        project: str | None = None,
        token: str | None = None,
        host: str | None = None,
        *,
        url: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> RestConfig:
        """Arguments, then ``SIGNALWIRE_PROJECT_ID``/``_API_TOKEN``/``_SPACE``, as a client."""
        project = project or os.environ.get("SIGNALWIRE_PROJECT_ID") or None
        token = token or os.environ.get("SIGNALWIRE_API_TOKEN") or None
        if not project:
            raise ValueError(
                "project is required: pass project=... or set SIGNALWIRE_PROJECT_ID "
                "(a JWT cannot send tasks)"
            )
        if not token:
            raise ValueError(
                "token is required: pass token=... or set SIGNALWIRE_API_TOKEN "
                "(a JWT cannot send tasks)"
            )
        base = _rest_base(url) if url is not None else f"https://{_relay_host(host)}"
        if ssl_context is not None:
            check_verifying_context(ssl_context)
        elif base.startswith("https://"):
            ssl_context = _rest_ssl_context()
        return cls(base, project, token, ssl_context)

    @classmethod
    def for_client(cls, config: ClientConfig) -> RestConfig:
        """The REST side of a client: its host (``wss`` -> ``https``), credentials, TLS."""
        auth = config.session.authentication
        if "project" not in auth or "token" not in auth:
            raise ValueError(
                "send_task needs a project and API token: a JWT cannot send tasks; use the "
                "standalone relay_anyio.send_task(..., project=..., token=...)"
            )
        scheme, rest = config.url.split("://", 1)
        base = _rest_base(("https" if scheme == "wss" else "http") + "://" + rest)
        return cls(base, auth["project"], auth["token"], config.session.ssl_context)


def _rest_base(url: str) -> str:
    """``scheme://host[:port]`` of ``url``; refuses plain http to a host not on loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise ValueError(f"Invalid REST URL {url!r}: expected https://host[:port]")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"refusing plain http to {parts.hostname!r}: the API token would cross the "
            "network in clear; plain http (ws://) is only for loopback test servers"
        )
    try:
        parts.port  # noqa: B018  (validates the port)
    except ValueError as exc:
        raise ValueError(f"Invalid REST URL {url!r}: {exc}") from None
    return f"{parts.scheme}://{parts.netloc}"
