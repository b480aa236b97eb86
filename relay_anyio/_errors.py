"""The exception tree.

Everything relay_anyio raises on purpose is a ``RelayError`` (or a plain
``ValueError``/``TypeError`` for bad arguments, raised before anything is sent), so one
``except RelayError`` covers the protocol, the network and the server. Backend
exceptions (``OSError``, ``ssl.SSLError``, wsproto's errors, trio's and asyncio's
closed-resource errors) are translated at the transport boundary and never leak.

Every one of them pickles with its attributes (for ``multiprocessing``,
``anyio.to_process``, or a log shipped elsewhere): see ``RelayError.__reduce__``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "BridgeFailed",
    "BridgeTimeout",
    "CallEnded",
    "ConnectionLost",
    "DialTimeout",
    "EventOverflow",
    "MessageExpired",
    "ProtocolError",
    "RelayError",
    "RequestTimeout",
    "TransportError",
]


class RelayError(Exception):
    """An error reported by RELAY or met while talking to it.

    ``code`` is the server's numeric code (JSON-RPC ``error.code`` or the string
    ``result.code`` converted to int), or ``-1`` for errors found on this side.
    ``data`` keeps whatever extra the server sent (``error.data``, the whole result
    object), which the official client throws away.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return f"RELAY error {self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as (class, ``args``, attributes), rebuilt without calling ``__init__``.

        The default would call ``cls(*self.args)``, but ``args`` is always
        ``(code, message)`` while the subclasses' constructors take other arguments
        (``RequestTimeout(method, timeout)``...). Restoring the attributes directly
        works for every subclass, present and future, that chains to this
        ``__init__``.
        """
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))


class AuthenticationError(RelayError):
    """``signalwire.connect`` was rejected: the credentials need fixing."""


class RequestTimeout(RelayError, TimeoutError):
    """No response arrived within the request timeout.

    ``method`` is the request's method and ``timeout`` the limit in seconds. The
    official client raises a plain ``RelayError(-1, "Request timeout for ...")`` here,
    which ``except RelayError`` still catches; this one is also a ``TimeoutError``.
    """

    def __init__(self, method: str, timeout: float) -> None:
        super().__init__(-1, f"Request timeout for {method} after {timeout:g} s")
        self.method = method
        self.timeout = timeout


class ConnectionLost(RelayError):
    """The connection dropped while this request or wait depended on it.

    ``close_code`` is the WebSocket close code when the transport knows it (the
    peer's close frame, or 1006 for a connection that died without one); None for
    losses above the transport (a session restarted, the client closing).
    """

    def __init__(
        self, message: str = "Connection closed", *, close_code: int | None = None
    ) -> None:
        super().__init__(-1, message)
        self.close_code = close_code


class TransportError(RelayError):
    """The WebSocket could not be opened or broke at the transport level.

    ``fatal`` marks failures that retrying cannot fix (a certificate that does not
    verify, a bad URL); the reconnect loop gives up on those at once.
    ``unresolved`` marks a host name that did not resolve (DNS): the reconnect loop
    gives up after a few in a row before the first successful connection, when a
    typo in the host is far likelier than an outage.
    """

    def __init__(self, message: str, *, fatal: bool = False, unresolved: bool = False) -> None:
        super().__init__(-1, message)
        self.fatal = fatal
        self.unresolved = unresolved


class ProtocolError(RelayError):
    """The peer broke the WebSocket or JSON-RPC rules badly enough to drop the link."""

    def __init__(self, message: str) -> None:
        super().__init__(-1, message)


class CallEnded(RelayError):
    """A wait on a call that ended before the awaited thing could happen.

    ``end_reason`` is the server's reason (``hangup``, ``busy``...) when one was given.
    """

    def __init__(self, call_id: str, end_reason: str = "", message: str = "") -> None:
        super().__init__(
            -1, message or f"Call {call_id} ended" + (f" ({end_reason})" if end_reason else "")
        )
        self.call_id = call_id
        self.end_reason = end_reason


class EventOverflow(RelayError):
    """A consumer fell too far behind: its bounded event buffer overflowed.

    Only that consumer (a call's listeners, a message's listeners) fails with it; the
    connection and every other call carry on.
    """

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(-1, f"{what}: more than {limit} events buffered; consumer too slow")
        self.limit = limit


class DialTimeout(RelayError, TimeoutError):
    """``client.dial()`` got no answered leg within its ``timeout``.

    Also a ``TimeoutError``. ``tag`` is the dial's tag and ``timeout`` the limit in
    seconds; the legs still ringing were ended and a leg answered late is hung up.
    """

    def __init__(self, tag: str, timeout: float) -> None:
        super().__init__(-1, f"Dial timed out waiting for answer after {timeout:g} s (tag={tag})")
        self.tag = tag
        self.timeout = timeout


class BridgeFailed(RelayError):
    """A bridge (``call.bridge(...)``) ended without ever connecting.

    ``connect_state`` is how it ended: ``failed`` (no device answered, or the server
    gave up), or ``disconnected`` (it was unbridged, or the server ended it, while
    still connecting). ``reason`` is the server's reason when its event carried one
    (``busy``...; the reference knows no such key, so usually empty).
    """

    def __init__(self, call_id: str, connect_state: str = "failed", reason: str = "") -> None:
        super().__init__(
            -1,
            f"Bridge of call {call_id} {connect_state} before connecting"
            + (f" ({reason})" if reason else ""),
        )
        self.call_id = call_id
        self.connect_state = connect_state
        self.reason = reason


class BridgeTimeout(RelayError, TimeoutError):
    """A wait on a bridge ran out of time. Also a ``TimeoutError``.

    ``waiting_for`` is what was awaited (``connected`` or ``disconnected``) and
    ``timeout`` the limit in seconds. When the bridge's own ``timeout`` ran out
    before it connected, the bridge was given up (``calling.disconnect``); a wait
    with its own, shorter ``timeout`` ends only that wait.
    """

    def __init__(self, call_id: str, timeout: float, waiting_for: str = "connected") -> None:
        super().__init__(-1, f"Bridge of call {call_id} not {waiting_for} after {timeout:g} s")
        self.call_id = call_id
        self.timeout = timeout
        self.waiting_for = waiting_for


class MessageExpired(RelayError):
    """A message stayed without a terminal state longer than the client's ``message_ttl``.

    ``message_id`` names the message, ``ttl`` is the ``message_ttl`` in seconds.
    """

    def __init__(self, message_id: str, ttl: float) -> None:
        super().__init__(
            -1, f"Message {message_id} reached no final state within {ttl:g} s; no longer tracked"
        )
        self.message_id = message_id
        self.ttl = ttl


def _rebuild(cls: type[RelayError], args: tuple[Any, ...], state: dict[str, Any]) -> RelayError:
    """Unpickle a ``RelayError`` (see its ``__reduce__``)."""
    error = cls.__new__(cls, *args)
    # What RelayError.__init__ does with (code, message): sets ``args`` (and, for the
    # TimeoutError subclasses, OSError's errno and strerror).
    super(RelayError, error).__init__(*args)
    error.__dict__.update(state)
    return error
