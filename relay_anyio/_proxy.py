"""Outbound HTTP proxies: which one (if any) to use, and the CONNECT tunnel through it.

Why. Many deployments reach the internet only through an egress proxy named in
``HTTPS_PROXY``; SignalWire's own client tunnels through it, so this one must too.
The RELAY connection is tunnelled with HTTP ``CONNECT`` (RFC 9110 §9.3.6); TLS to the
RELAY host then runs inside the tunnel exactly as without a proxy (SNI, certificate
and hostname checks against the RELAY host, the same CA rules), so the proxy sees
only the host name and port.

Which proxy, as ``httpx`` and ``urllib`` read the environment
(``urllib.request.getproxies_environment``: lowercase names win over uppercase ones,
an empty lowercase one unsets, ``HTTP_PROXY`` is ignored under CGI): ``wss://`` uses
``https_proxy``/``HTTPS_PROXY``, ``ws://`` uses ``http_proxy``/``HTTP_PROXY`` (RFC
6455 §4.1), both fall back to ``all_proxy``/``ALL_PROXY``; ``no_proxy``/``NO_PROXY``
lists the hosts reached directly. An explicit ``proxy=`` URL ignores the environment;
``proxy=None`` turns proxying off.

Only ``http://`` proxies are supported (credentials in the URL become
``Proxy-Authorization: Basic``); an ``https://`` or SOCKS proxy is a configuration
error that says so. The password never appears in a repr, a log or a message
(``Proxy.url`` is the masked form).
"""

from __future__ import annotations

import base64
import ipaddress
import os
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Literal

import anyio
import anyio.abc
import attrs

from ._neterrors import proxy_closed, proxy_phase, proxy_refused

__all__ = [
    "Proxy",
    "ProxySetting",
    "authority",
    "bypassed",
    "connect_through",
    "parse_proxy",
    "proxy_from_environment",
    "resolve_proxy",
    "tunnel",
]

#: What ``RelayClient(proxy=...)`` takes: a proxy URL, True (the environment), or None.
ProxySetting = str | Literal[True] | None

#: A CONNECT reply's head (status line and headers) longer than this is refused.
MAX_REPLY_HEAD = 16 * 1024
_READ_SIZE = 4096
_SHOWN_GARBAGE = 40


@attrs.frozen
class Proxy:
    """One HTTP proxy to tunnel through, validated; its repr shows no password.

    ``url`` is the proxy's URL with the password replaced by ``***``: the form every
    message and log line uses. ``source`` names where it came from (``proxy=`` or the
    environment variable), for messages that ask to fix it.
    """

    host: str
    port: int
    url: str
    source: str
    #: The ``Proxy-Authorization`` header value, if the URL had credentials.
    authorization: str | None = attrs.field(default=None, repr=False)

    def connect_request(self, host: str, port: int) -> bytes:
        """The CONNECT request for ``host:port`` (an IPv6 literal gets its brackets)."""
        target = authority(host, port)
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if self.authorization is not None:
            lines.append(f"Proxy-Authorization: {self.authorization}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def authority(host: str, port: int) -> str:
    """``host:port`` as HTTP writes it (an IPv6 literal in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _masked(url: str) -> str:
    """``url`` with the password of its userinfo (if any) replaced by ``***``.

    Works on strings that do not parse as URLs too: it only looks for ``//user:pass@``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, tail = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if not at:
        return url
    user = userinfo.split(":", 1)[0]
    masked = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    return (f"{scheme}://" if sep else "") + masked + slash + tail


def parse_proxy(value: str, source: str) -> Proxy:
    """Validate a proxy URL; ``ValueError`` naming ``source`` (never the password).

    ``host:port`` without a scheme means ``http://host:port``, as for urllib and curl.
    """
    if not isinstance(value, str):
        raise TypeError(f"{source} must be a proxy URL string, got {type(value).__name__}")
    shown = _masked(value)

    def bad(why: str) -> ValueError:
        return ValueError(f"{source}={shown!r} is not a usable proxy URL: {why}")

    text = value.strip()
    if "://" not in text:
        text = f"http://{text}"
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise bad(str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme.startswith("socks"):
        raise bad(
            "SOCKS proxies are not supported; use an http:// proxy, or proxy=None to "
            "connect directly"
        )
    if scheme == "https":
        raise bad("TLS to the proxy (https://) is not supported; use http://host:port")
    if scheme != "http":
        raise bad("expected http://[user:password@]host[:port]")
    if not parts.hostname:
        raise bad("no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise bad("a proxy URL has no path, query or fragment")
    authorization = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        authorization = f"Basic {token}"
    host = parts.hostname
    port = port or 80
    return Proxy(
        host=host,
        port=port,
        url=_masked(f"http://{parts.netloc}"),
        source=source,
        authorization=authorization,
    )


def _variable(kind: str, value: str) -> str:
    """The name of the environment variable that gave ``value`` (for messages)."""
    for name in (f"{kind}_proxy", f"{kind.upper()}_PROXY"):
        if os.environ.get(name) == value:
            return name
    return f"{kind.upper()}_PROXY"


def proxy_from_environment(tls: bool, host: str, port: int) -> Proxy | None:
    """The proxy the environment names for RELAY at ``host:port``, or None (direct)."""
    proxies = urllib.request.getproxies_environment()
    for kind in ("https" if tls else "http", "all"):
        value = proxies.get(kind)
        if value:
            break
    else:
        return None
    if bypassed(host, port, proxies.get("no", "")):
        return None
    return parse_proxy(value, _variable(kind, value))


def resolve_proxy(setting: ProxySetting, tls: bool, host: str, port: int) -> Proxy | None:
    """``RelayClient(proxy=...)`` resolved: True reads the environment, None is direct."""
    if setting is None:
        return None
    if setting is True:
        return proxy_from_environment(tls, host, port)
    if isinstance(setting, str):
        return parse_proxy(setting, "proxy")
    raise TypeError(
        "proxy must be a proxy URL ('http://[user:password@]host:port'), True (use "
        f"HTTPS_PROXY / ALL_PROXY / NO_PROXY) or None (no proxy), got {setting!r}"
    )


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` (the ``NO_PROXY`` value) says to reach ``host:port`` directly.

    Comma-separated entries, case-insensitive: ``*`` (every host); a name, which also
    covers its subdomains (a leading ``.`` or ``*.`` is ignored); an IP address; an IP
    network (``10.0.0.0/8``, as curl reads it); any of them with ``:port`` to match
    that port only (``[v6]:port`` for an IPv6 address).
    """
    host = host.lower().strip("[]").rstrip(".")
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, entry_port = _split_entry(entry)
        if entry_port is not None and entry_port != port:
            continue
        try:
            network = ipaddress.ip_network(name, strict=False)
        except ValueError:
            pass
        else:
            if ip is not None and ip in network:
                return True
            continue
        name = name.removeprefix("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _split_entry(entry: str) -> tuple[str, int | None]:
    """``name[:port]`` / ``[v6]:port`` / a bare IPv6 address -> (name, port or None)."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return name, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        return name, int(port) if port.isdigit() else None
    return entry, None


# -- the tunnel ---------------------------------------------------------------------------


async def tunnel(
    proxy: Proxy,
    host: str,
    port: int,
    send: Callable[[bytes], Awaitable[object]],
    receive: Callable[[], Awaitable[bytes]],
) -> None:
    """Ask ``proxy`` (already connected: ``send``/``receive``) for a tunnel to ``host:port``.

    ``receive`` returns ``b""`` at EOF (or raises anyio's ``EndOfStream``). Returns
    once the proxy answered 2xx: the connection is then a byte pipe to the RELAY host.
    Any other answer, a reply that is not HTTP, or a connection closed first, is a
    retryable ``TransportError`` naming the proxy (masked) and the target.
    """
    target = authority(host, port)
    head = bytearray()
    with proxy_phase(proxy.url, target, "CONNECT"):
        await send(proxy.connect_request(host, port))
        while True:
            chunk = await receive()
            if not chunk:
                raise proxy_closed(proxy.url, target)
            head += chunk
            end = head.find(b"\r\n\r\n")
            if end >= 0 or not head.startswith(b"HTTP/"[: len(head)]):
                break
            if len(head) > MAX_REPLY_HEAD:
                raise proxy_refused(proxy.url, target, "a reply head over 16 KiB")
    if not head.startswith(b"HTTP/"[: len(head)]) or end < 0:
        raise proxy_refused(
            proxy.url, target, f"an answer that is not HTTP: {bytes(head[:_SHOWN_GARBAGE])!r}"
        )
    status_line = bytes(head[: head.find(b"\r\n")]).decode("latin-1")
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not (version.startswith("HTTP/1.") and len(code) == 3 and code.isdigit()):
        raise proxy_refused(
            proxy.url, target, f"an answer that is not HTTP: {status_line[:_SHOWN_GARBAGE]!r}"
        )
    status = int(code)
    if not 200 <= status < 300:
        shown = f"HTTP {status} {_printable(reason)}".rstrip()
        raise proxy_refused(proxy.url, target, shown, _hint(status, proxy))
    if len(head) > end + 4:
        # Nothing may come before we speak (TLS's ClientHello, the WebSocket request);
        # a proxy that sends bytes of its own is not a tunnel.
        raise proxy_refused(proxy.url, target, f"data after its HTTP {status} reply")


def _printable(reason: str) -> str:
    return "".join(c for c in reason[:80] if c.isprintable())


def _hint(status: int, proxy: Proxy) -> str:
    if status != 407:
        return ""
    if proxy.authorization is None:
        return (
            "the proxy wants credentials: put them in the proxy URL, "
            f"http://user:password@host:port ({proxy.source})"
        )
    return f"the proxy did not accept the credentials in {proxy.source}"


async def connect_through(proxy: Proxy, host: str, port: int) -> anyio.abc.SocketStream:
    """TCP to ``proxy`` and a CONNECT tunnel to ``host:port`` over anyio's stream."""
    with proxy_phase(proxy.url, authority(host, port), "connect"):
        stream = await anyio.connect_tcp(proxy.host, proxy.port)
    try:

        async def receive() -> bytes:
            try:
                return await stream.receive(_READ_SIZE)
            except anyio.EndOfStream:
                return b""

        await tunnel(proxy, host, port, stream.send, receive)
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise
    return stream
