"""The two checks every ``wss://`` link passes through: the URL and the TLS context.

``build_ssl_context`` is the one place the default client context is built;
``check_verifying_context`` refuses one that would not verify; ``split_url`` reads a
RELAY URL. Both transports and the config use them, so they live apart from either.
"""

from __future__ import annotations

import os
import ssl
from urllib.parse import urlsplit

from ._neterrors import CA_FILE_ENV

__all__ = ["build_ssl_context", "check_verifying_context", "split_url"]


def build_ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The default verifying client context, plus ``SIGNALWIRE_RELAY_CA_FILE`` if set.

    The one place the default context is built: every ``wss://`` connection opened
    without an explicit ``ssl_context`` (the client with ``host=``/``SIGNALWIRE_SPACE``
    or ``url=``, either transport, ``connect_websocket`` on its own) uses it. As
    in the official client, the extra bundle is trusted *in addition to* the system
    store, and hostname checking stays on. An unreadable bundle is a ``ValueError``
    naming the variable.
    """
    ctx = ssl.create_default_context()
    ca_file = ca_file if ca_file is not None else os.environ.get(CA_FILE_ENV) or None
    if ca_file:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"{CA_FILE_ENV}={ca_file!r} is not a readable PEM CA bundle: {exc}"
            ) from None
    return ctx


def split_url(url: str) -> tuple[bool, str, int, str]:
    """``ws[s]://host[:port][/path]`` -> (tls, host, port, resource)."""
    expected = "expected ws://host[:port] or wss://host[:port]"
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"Invalid RELAY URL {url!r}: {expected}")
    try:
        explicit_port = parts.port
    except ValueError as exc:
        raise ValueError(f"Invalid RELAY URL {url!r}: {exc}; {expected}") from None
    tls = parts.scheme == "wss"
    port = explicit_port or (443 if tls else 80)
    resource = parts.path or "/"
    if parts.query:
        resource += "?" + parts.query
    return tls, parts.hostname, port, resource


def check_verifying_context(ctx: ssl.SSLContext) -> None:
    """Refuse a client TLS context that would not verify the certificate and hostname."""
    if ctx.verify_mode != ssl.CERT_REQUIRED or not ctx.check_hostname:
        raise ValueError(
            "refusing a TLS context without certificate and hostname checks: "
            "RELAY is only reached over verified TLS"
        )
