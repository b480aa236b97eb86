"""What a test observes of the fake server: connections, sessions, the journal, waits.

``Observing`` is the part of ``FakeRelayServer``'s API that reads its state and
waits for it to change: every change calls ``notify``, which wakes the waiters
(``wait_until`` and its specialised cousins) without polling the loop hot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

import anyio

from .._constants import METHOD_SIGNALWIRE_EVENT
from ._endpoint import Endpoint
from ._session import FakeSession
from ._wire import JournalEntry, JSONObject

__all__ = ["Observing"]

_T = TypeVar("_T")
#: How often ``wait_until`` and friends re-check when the server's state is still.
_RECHECK_INTERVAL: Final = 0.01


class Observing:
    """``FakeRelayServer``'s views of its state and its waits."""

    #: Every frame received and sent, in order.
    journal: list[JournalEntry]
    _endpoint: Endpoint
    _changed: anyio.Event

    @property
    def connections(self) -> int:
        """How many WebSocket connections were accepted so far."""
        return self._endpoint.count

    @property
    def active_connections(self) -> int:
        """How many WebSocket connections are open now."""
        return len(self._endpoint.open)

    @property
    def sessions(self) -> list[FakeSession]:
        """Sessions a client can still resume, oldest first."""
        return list(self._endpoint.registry.sessions.values())

    def received(self, method: str | None = None) -> list[JSONObject]:
        """Request frames received from clients (with that ``method``), in order."""
        return [
            entry.frame
            for entry in self.journal
            if entry.direction == "in"
            and isinstance(entry.frame, dict)
            and "method" in entry.frame
            and (method is None or entry.frame["method"] == method)
        ]

    def sent_events(self, event_type: str | None = None) -> list[JSONObject]:
        """``signalwire.event`` frames written to clients, re-deliveries included."""
        return [
            entry.frame
            for entry in self.journal
            if entry.direction == "out"
            and isinstance(entry.frame, dict)
            and entry.frame.get("method") == METHOD_SIGNALWIRE_EVENT
            and (event_type is None or entry.frame["params"]["event_type"] == event_type)
        ]

    def subscribed_contexts(self, session: FakeSession | None = None) -> set[str]:
        """Contexts of one session, or of every resumable session when None."""
        sessions = self.sessions if session is None else [session]
        return {context for s in sessions for context in s.contexts}

    def unacked_events(self, session: FakeSession | None = None) -> list[JSONObject]:
        """Unacknowledged events of one session, or of every resumable session."""
        sessions = self.sessions if session is None else [session]
        return [frame for s in sessions for frame in s.unacked_events()]

    def notify(self) -> None:
        """Wake ``wait_until`` waiters: call after changing state they may watch."""
        self._changed.set()
        self._changed = anyio.Event()

    # The waits take a ``timeout`` (ASYNC109) on purpose: a test helper that blocks
    # forever by default turns a failing test into a hung run.
    async def wait_until(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109, RUF100
        what: str = "a condition",
    ) -> None:
        """Wait until ``predicate()`` is true.

        Re-checked whenever the server's state changes, and every 10 ms: predicates
        often read the client's state too (``client.active_calls == 0``), which can
        change after the server's last change (a handler returning once its last
        response arrived).
        """
        await self._wait_for(lambda: True if predicate() else None, timeout, what)

    async def _wait_for(self, find: Callable[[], _T | None], seconds: float, what: str) -> _T:
        try:
            with anyio.fail_after(seconds):
                while (found := find()) is None:
                    with anyio.move_on_after(_RECHECK_INTERVAL):
                        await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"timed out after {seconds:g} s waiting for {what}") from None
        return found

    async def wait_for_request(
        self,
        method: str,
        predicate: Callable[[JSONObject], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109, RUF100
    ) -> JSONObject:
        """The first request with ``method`` (and matching ``predicate``), past or future."""

        def find() -> JSONObject | None:
            frames = self.received(method)
            return next((f for f in frames if predicate is None or predicate(f)), None)

        return await self._wait_for(find, timeout, f"a {method} request")

    async def wait_for_connections(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109, RUF100
        """Wait until ``count`` connections have been accepted in total."""
        await self.wait_until(
            lambda: self._endpoint.count >= count,
            timeout=timeout,
            what=f"{count} connection(s)",
        )

    async def wait_for_session(self, timeout: float = 5.0) -> FakeSession:  # noqa: ASYNC109, RUF100
        """The session of the newest authenticated open connection, once there is one."""

        def find() -> FakeSession | None:
            return next(
                (
                    c.session
                    for c in reversed(self._endpoint.open.values())
                    if c.session is not None
                ),
                None,
            )

        return await self._wait_for(find, timeout, "an authenticated connection")
