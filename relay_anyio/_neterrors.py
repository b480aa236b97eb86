"""The transport's one error boundary: backend exceptions in, the ``RelayError`` family out.

Why one place. The transport meets exceptions from several libraries (``OSError`` and
``ssl.SSLError`` from the OS, ``socket.gaierror`` from DNS, anyio's and trio's
stream errors, trio-websocket's ``ConnectionClosed``/``ConnectionRejected`` and the
h11/wsproto errors behind them) in several phases (TCP connect, the proxy's CONNECT,
TLS, the WebSocket handshake, the data phase). Which of them means what, and the
message and flags (``fatal``, ``unresolved``) of the ``TransportError`` or
``ConnectionLost`` each becomes, is decided here and nowhere else; the modules that do
the I/O only say which phase they are in (``opening``, ``proxy_phase``,
``handshake_errors``) or, on the per-frame path where a context manager per read
would cost, catch ``STREAM_GONE`` and ask here for the error.

Nothing here does I/O; every rule is a pure function of the exception and the phase.
"""

from __future__ import annotations

import math
import socket
import ssl
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import anyio

from ._errors import ConnectionLost, RelayError, TransportError

__all__ = [
    "CA_FILE_ENV",
    "HANDSHAKE_PHASE",
    "STREAM_GONE",
    "TLS_PHASE",
    "Opening",
    "client_left_errors",
    "handshake_errors",
    "handshake_failed",
    "mapped",
    "opening",
    "proxy_closed",
    "proxy_phase",
    "proxy_refused",
    "trio_websocket_lost",
    "trio_websocket_open_failed",
    "unresolved_host",
]

#: Environment variable naming an extra PEM CA bundle to trust (reference §1).
CA_FILE_ENV = "SIGNALWIRE_RELAY_CA_FILE"

#: Backend exceptions that mean "this byte stream is gone" (any phase, any backend
#: anyio wraps; ``OSError`` includes ``ssl.SSLError`` and ``ConnectionResetError``).
STREAM_GONE: tuple[type[BaseException], ...] = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
)


def _open_failures() -> tuple[type[BaseException], ...]:
    """What a connect or a handshake may raise: ``STREAM_GONE``, plus trio's own.

    trio is optional: if it was never imported, none of its exceptions can occur.
    """
    trio = sys.modules.get("trio")
    if trio is None:
        return STREAM_GONE
    return (*STREAM_GONE, trio.BrokenResourceError, trio.ClosedResourceError)


def _unwrapped(exc: BaseException) -> BaseException:
    """The OS-level cause under trio's wrappers (``trio.BrokenResourceError`` from ...).

    anyio's own wrappers are left as they are: their messages have always shown them.
    """
    trio = sys.modules.get("trio")
    cause: BaseException | None = exc
    while trio is not None and isinstance(cause, trio.BrokenResourceError):
        cause = cause.__cause__
    return cause if cause is not None else exc


def _first_in_chain(exc: BaseException, kind: type[BaseException]) -> Any:
    """``exc`` or the first of its ``__cause__`` chain that is a ``kind``, else None."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, kind):
            return cause
        cause = cause.__cause__
    return None


@contextmanager
def mapped(
    kinds: tuple[type[BaseException], ...], translate: Callable[[BaseException], RelayError]
) -> Iterator[None]:
    """Inside, an exception of ``kinds`` leaves as ``translate(exc)`` (context dropped).

    The building block of every mapping here (httpcore's ``map_exceptions`` idea).
    """
    try:
        yield
    except kinds as exc:
        raise translate(exc) from None


# -- opening: TCP, TLS, the WebSocket handshake ------------------------------------------

#: Phases of an open whose errors name the TLS handshake even when the OS reported them.
TLS_PHASE = "TLS handshake"
HANDSHAKE_PHASE = "WebSocket handshake"


class Opening:
    """One attempt to open a connection to ``host:port``: the phase it is in, its errors.

    The code that opens moves ``phase`` on; ``error`` and ``timed_out`` turn what went
    wrong into the ``TransportError`` the reconnect loop acts on. ``proxy`` (the masked
    proxy URL, or None) is named in every message of an attempt that goes through one.
    """

    def __init__(
        self, host: str, port: int, phase: str, proxy: str | None, host_header: str | None
    ) -> None:
        self.host = host
        self.port = port
        self.phase = phase
        self.proxy = proxy
        self.host_header = host_header or host

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def _via(self, message: str) -> str:
        return f"{message} (through the proxy {self.proxy})" if self.proxy else message

    def error(self, exc: BaseException) -> TransportError:
        """The rules, in order: DNS, certificate, TLS, then the phase decides."""
        where = self.where
        if self.phase == HANDSHAKE_PHASE:
            return TransportError(
                self._via(
                    f"connection closed during the WebSocket handshake with {self.host_header} "
                    f"({type(exc).__name__})"
                )
            )
        cause = _unwrapped(exc)
        unresolved = _first_in_chain(exc, socket.gaierror)
        if unresolved is not None and _first_in_chain(cause, OSError) is unresolved:
            return unresolved_host(self.host, unresolved)
        untrusted = _first_in_chain(exc, ssl.SSLCertVerificationError)
        if untrusted is not None:
            return TransportError(
                self._via(
                    f"TLS certificate verification failed for {where}: "
                    f"{untrusted.verify_message}. "
                    f"If the server uses a private CA, trust it with {CA_FILE_ENV}."
                ),
                fatal=True,
            )
        if isinstance(cause, ssl.SSLError) or self.phase == TLS_PHASE:
            return TransportError(self._via(f"TLS handshake with {where} failed: {cause}"))
        return TransportError(self._via(f"cannot connect to {where}: {cause!r}"))

    def timed_out(self, timeout: float) -> TransportError:
        return TransportError(
            self._via(f"timed out after {timeout:g} s in the {self.phase} with {self.where}")
        )


@contextmanager
def opening(
    host: str,
    port: int,
    *,
    phase: str,
    timeout: float | None,
    proxy: str | None = None,
    host_header: str | None = None,
) -> Iterator[Opening]:
    """Bound an open by ``timeout`` and map what it raises (see ``Opening``).

    ``TransportError`` raised inside (a handshake the peer refused, a proxy's answer)
    leaves as it is; backend exceptions leave as ``Opening.error``; the deadline as
    ``Opening.timed_out``.
    """
    attempt = Opening(host, port, phase, proxy, host_header)
    with anyio.move_on_after(timeout if timeout is not None else math.inf) as deadline:
        with mapped(_open_failures(), attempt.error):
            yield attempt
    if deadline.cancelled_caught:
        assert timeout is not None
        raise attempt.timed_out(timeout)


def unresolved_host(host: str, exc: socket.gaierror) -> TransportError:
    """A RELAY host name that did not resolve: likely a typo in the configuration."""
    return TransportError(
        f"cannot resolve the host name {host!r} ({exc.strerror or exc}): check the host "
        "(host= or SIGNALWIRE_SPACE, e.g. 'example.signalwire.com')",
        unresolved=True,
    )


def handshake_errors(host: str) -> AbstractContextManager[None]:
    """Around a client WebSocket handshake over a stream: a stream gone is a TransportError.

    ``host`` is what the handshake sends as ``Host`` (``name`` or ``name:port``).
    """
    return mapped(
        _open_failures(),
        Opening(host, 0, HANDSHAKE_PHASE, None, host).error,
    )


def client_left_errors() -> AbstractContextManager[None]:
    """Around the server side's handshake reads: a stream gone is the client leaving."""
    return mapped(
        STREAM_GONE, lambda exc: ConnectionLost("client left during the WebSocket handshake")
    )


def handshake_failed(where: str, status: int, detail: str) -> TransportError:
    """A peer that did not upgrade: ``status`` is its HTTP status, 0 if it spoke no HTTP.

    A 4xx other than 408/429 is fatal: the URL or the credentials are wrong, and
    retrying cannot fix that.
    """
    shown = f"HTTP {status}" + (f" ({detail})" if detail else "") if status else detail
    return TransportError(
        f"WebSocket handshake with {where} failed: {shown}",
        fatal=400 <= status < 500 and status not in (408, 429),
    )


# -- the proxy: TCP to it, then its CONNECT ---------------------------------------------


def proxy_phase(proxy: str, target: str, phase: str) -> AbstractContextManager[None]:
    """Around the TCP connect to a proxy (``phase="connect"``) or its CONNECT exchange.

    ``proxy`` is the masked proxy URL; ``target`` the RELAY ``host:port`` tunnelled to.
    A proxy host that does not resolve counts as unresolved (a typo, as for the host).
    """

    def translate(exc: BaseException) -> RelayError:
        cause = _unwrapped(exc)
        unresolved = _first_in_chain(exc, socket.gaierror)
        if phase == "connect" and unresolved is not None:
            return TransportError(
                f"cannot resolve the proxy host of {proxy} "
                f"({unresolved.strerror or unresolved}): check proxy= or HTTPS_PROXY / "
                "ALL_PROXY",
                unresolved=True,
            )
        if phase == "connect":
            return TransportError(f"cannot connect to the proxy {proxy}: {cause!r}")
        return proxy_closed(proxy, target, type(cause).__name__)

    return mapped(_open_failures(), translate)


def proxy_closed(proxy: str, target: str, detail: str = "") -> TransportError:
    """The proxy dropped the connection before its CONNECT reply was complete."""
    shown = f" ({detail})" if detail else ""
    return TransportError(
        f"the proxy {proxy} closed the connection before answering the CONNECT to {target}{shown}"
    )


def proxy_refused(proxy: str, target: str, reply: str, hint: str = "") -> TransportError:
    """The proxy answered the CONNECT with something other than a 2xx (or not HTTP)."""
    shown = f" ({hint})" if hint else ""
    return TransportError(f"the proxy {proxy} refused the tunnel to {target}: {reply}{shown}")


# -- trio-websocket -----------------------------------------------------------------------


def trio_websocket_lost(exc: Any) -> ConnectionLost:
    """trio-websocket's ``ConnectionClosed`` as ours (its close code and reason kept)."""
    reason = exc.reason
    code = getattr(reason, "code", None)
    text = getattr(reason, "reason", None)
    detail = f", {text}" if text else ""
    return ConnectionLost(f"WebSocket closed (code {code}{detail})", close_code=code)


def trio_websocket_open_failed(where: str, error: BaseException | None) -> TransportError:
    """What trio-websocket's reader ended with before the upgrade completed.

    ``ConnectionRejected`` carries the HTTP status; anything else (a stream that closed,
    an h11/wsproto parse error on a reply that is not HTTP) means no upgrade came.
    """
    from trio_websocket import ConnectionRejected  # only called on that transport

    if isinstance(error, ConnectionRejected):
        return handshake_failed(where, error.status_code, "")
    detail = f": {error}" if error is not None else ""
    return TransportError(
        f"WebSocket handshake with {where} failed: the server closed the "
        f"connection or did not answer with a WebSocket upgrade{detail}"
    )
