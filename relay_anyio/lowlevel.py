"""The lower tier: the session and the transports on their own, for experts and tests.

``RelayClient`` is built from these parts, and they are usable without it:

- ``Session`` runs RELAY's JSON-RPC session (authentication, acks, exactly-once
  delivery, keepalive, reconnect and resume) over any ``MessageTransport``,
  handing events to a ``SessionListener``. ``connect=`` chooses the link: by default
  the transport named in ``SessionOptions``; ``memory_transport_pair`` gives an
  in-memory one whose other end a test can play as the server.
- ``open_transport`` opens a ``MessageTransport`` from a URL (``"native"`` or
  ``"trio-websocket"``); ``open_websocket``/``accept_websocket`` run the WebSocket
  opening handshake over any anyio byte stream (client and server side), the way
  trio-websocket's ``wrap_client_stream`` does, and return the native ``WebSocket``.
- ``Backoff`` and ``GiveUp`` are the reconnect loop's policies; ``check_result``
  applies RELAY's result-code rule to a response.

What is here is documented and tested like the top tier; it may change in a minor
release (with a changelog entry), which the top tier does not.
"""

from ._config import SessionOptions
from ._memory import MemoryClose, MemoryItem, MemoryTransport, memory_transport_pair
from ._reconnect import Backoff, GiveUp
from ._rpc import check_result
from ._session import ConnectionState, Session, SessionListener
from ._transport import MessageTransport, TransportName, open_transport
from ._websocket import WebSocket, accept_websocket, open_websocket

__all__ = [
    "Backoff",
    "ConnectionState",
    "GiveUp",
    "MemoryClose",
    "MemoryItem",
    "MemoryTransport",
    "MessageTransport",
    "Session",
    "SessionListener",
    "SessionOptions",
    "TransportName",
    "WebSocket",
    "accept_websocket",
    "check_result",
    "memory_transport_pair",
    "open_transport",
    "open_websocket",
]
