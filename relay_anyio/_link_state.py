"""What the session reports upward: the link's state, and the listener it reports to."""

from __future__ import annotations

import enum
from typing import Any, Protocol

__all__ = ["ConnectionState", "SessionListener"]


class ConnectionState(enum.Enum):
    """Where the client's link to RELAY stands; see ``RelayClient.on_connection_state``."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class SessionListener(Protocol):
    """What the session tells the client. Called from the reader: never block."""

    def session_event(self, event_type: str, params: dict[str, Any], timestamp: float) -> None:
        """One event, acked already and seen for the first time in this session."""
        ...

    def session_state(self, state: ConnectionState, *, fresh_session: bool) -> None:
        """The link's state changed; ``fresh_session``: the server forgot the old one."""
        ...
