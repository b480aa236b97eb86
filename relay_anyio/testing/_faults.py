"""Faults a real network or server can produce, on demand: the fake's fault injection.

``Faults`` holds what is pending: per method, the faults the next requests meet
(refused, delayed, withheld, dropped at), and the countdown of ``drop_randomly`` /
``drop_after`` that every frame read or written advances. ``FaultInjection`` is the
part of ``FakeRelayServer``'s API that arms them and that breaks connections now
(drop, close, ``signalwire.disconnect``, raw frames, a half-open link).
"""

from __future__ import annotations

import logging
import random
from collections import deque

import anyio

from .._constants import METHOD_SIGNALWIRE_DISCONNECT
from ._endpoint import Endpoint, Fault
from ._session import Connection
from ._wire import JSONObject, response

__all__ = ["FaultInjection", "Faults"]

logger = logging.getLogger("relay_anyio.testing")


class Faults:
    """The faults pending on one server (see ``FaultInjection`` for what each does)."""

    def __init__(self) -> None:
        self._pending: dict[str, deque[Fault]] = {}
        #: Connections aborted by the drop countdown so far.
        self.random_drops = 0
        self._rng: random.Random | None = None
        self._left = 0
        self._countdown = 0
        self._mean_gap = 1.0

    def add(self, method: str, fault: Fault) -> None:
        """Queue ``fault`` for the next ``method`` request (after those already queued)."""
        self._pending.setdefault(method, deque()).append(fault)

    def take(self, method: str) -> Fault | None:
        """The fault pending for the next ``method`` request, if any (consumed)."""
        faults = self._pending.get(method)
        return faults.popleft() if faults else None

    def drop_randomly(self, count: int, mean_gap: float, seed: int) -> None:
        """Arm ``count`` drops at random gaps (see ``FaultInjection.drop_randomly``)."""
        if count < 0 or mean_gap < 1:
            raise ValueError("count must be >= 0 and mean_gap >= 1")
        self._rng = random.Random(seed)
        self._left = count
        self._mean_gap = mean_gap
        self._countdown = self._gap()

    def drop_after(self, frames: int) -> None:
        """Arm one drop ``frames`` frames from now, replacing any random ones."""
        if frames < 1:
            raise ValueError("frames must be >= 1")
        self._rng = None
        self._left = 1
        self._countdown = frames

    def _gap(self) -> int:
        if self._rng is None:
            return 0
        return self._rng.randint(1, max(1, round(2 * self._mean_gap) - 1))

    def tick(self) -> bool:
        """One frame passed; True when the connection must be dropped here."""
        if self._left <= 0:
            return False
        self._countdown -= 1
        if self._countdown > 0:
            return False
        self._left -= 1
        self.random_drops += 1
        self._countdown = self._gap()
        return True


class FaultInjection:
    """``FakeRelayServer``'s fault primitives: one per failure a network or server has."""

    disconnect_close_delay: float | None
    _endpoint: Endpoint
    _faults: Faults

    @property
    def random_drops(self) -> int:
        """Connections aborted by ``drop_randomly`` (or ``drop_after``) so far."""
        return self._faults.random_drops

    @random_drops.setter
    def random_drops(self, value: int) -> None:
        self._faults.random_drops = value

    def _target(self, number: int | None) -> Connection:
        return self._endpoint.target(number)

    async def drop_connection(self, *, connection: int | None = None) -> None:
        """Abort the socket without a close frame (a crash, a dead network)."""
        target = self._target(connection)
        await target.abort()
        await target.done.wait()

    async def close_connection(
        self, code: int = 1000, reason: str = "", *, connection: int | None = None
    ) -> None:
        """Close the WebSocket politely with ``code``."""
        target = self._target(connection)
        await target.close(code, reason)
        await target.done.wait()

    async def send_disconnect(
        self, restart: bool = False, *, connection: int | None = None
    ) -> None:
        """Send ``signalwire.disconnect``; close the socket ``disconnect_close_delay`` later.

        With ``restart`` the session is forgotten, as the reference says a restart
        means a fresh session on the next connect.
        """
        target = self._target(connection)
        if restart and target.session is not None:
            self._endpoint.registry.sessions.pop(target.session.protocol, None)
        disconnect = {"restart": restart}
        await self._endpoint.send_request(target, METHOD_SIGNALWIRE_DISCONNECT, disconnect)
        delay = self.disconnect_close_delay
        if delay is not None:

            async def close_later() -> None:
                await anyio.sleep(delay)
                await target.close(1000, "")

            target.start_soon(close_later)

    async def send_raw(self, data: str | bytes, *, connection: int | None = None) -> None:
        """Send a text (str) or binary (bytes) frame exactly as given.

        A request in it (a JSON object with ``method`` and an ``id``) expects a reply
        like any server request: a result, or an error if no client must serve it
        (a method other than ``signalwire.event``/``ping``/``disconnect``, params
        that are not an object); other replies are recorded in ``violations``.
        """
        await self._endpoint.send_raw(self._target(connection), data)

    def fail_next(
        self,
        method: str,
        code: str | int = "500",
        message: str = "Internal error",
        *,
        jsonrpc_error: bool = False,
    ) -> None:
        """Refuse the next ``method`` request: ``result {code, message}`` or a JSON-RPC error.

        The request has no other effect (no handler runs, no events).
        """
        key, payload = (
            ("error", {"code": int(code), "message": message})
            if jsonrpc_error
            else ("result", {"code": str(code), "message": message})
        )

        async def fail(endpoint: Endpoint, conn: Connection, frame: JSONObject) -> None:
            await conn.send(response(frame, **{key: payload}))

        self._faults.add(method, fail)

    def delay_next(self, method: str, seconds: float) -> None:
        """Handle the next ``method`` request ``seconds`` late; other frames go on meanwhile."""

        async def delay(endpoint: Endpoint, conn: Connection, frame: JSONObject) -> None:
            async def answer_later() -> None:
                await anyio.sleep(seconds)
                await endpoint.answer(conn, frame)

            conn.start_soon(answer_later)

        self._faults.add(method, delay)

    def withhold_next(self, method: str) -> None:
        """Swallow the next ``method`` request: no answer, no effect, ever."""

        async def withhold(endpoint: Endpoint, conn: Connection, frame: JSONObject) -> None:
            logger.debug("connection %d: withholding %s", conn.number, frame.get("id"))

        self._faults.add(method, withhold)

    def drop_next(self, method: str, *, after_effect: bool = False) -> None:
        """Drop the connection at the next ``method`` request.

        ``after_effect=False``: the link dies as the request arrives; it never takes
        effect. ``after_effect=True``: the request takes effect (its events follow,
        queued for the resumed session) but the link dies before the response is
        written. Either way the client sees a request in flight at a drop.
        """

        async def drop(endpoint: Endpoint, conn: Connection, frame: JSONObject) -> None:
            if after_effect:
                await endpoint.answer(conn, frame, lose_response=True)
            else:
                logger.debug("connection %d: dropping at %s", conn.number, method)
                await conn.abort()

        self._faults.add(method, drop)

    def drop_randomly(self, count: int, *, mean_gap: float, seed: int) -> None:
        """Abort the live connection at ``count`` random points of the traffic.

        Every frame read or written (on any connection) advances a countdown; when it
        reaches zero the connection is aborted at that frame: an incoming frame is
        lost unprocessed, an outgoing batch is cut there. Gaps are drawn uniformly
        from 1 to ``2 * mean_gap - 1`` frames by ``random.Random(seed)``, so a run
        is reproducible up to scheduling. ``random_drops`` counts the drops.
        """
        self._faults.drop_randomly(count, mean_gap, seed)

    def drop_after(self, frames: int) -> None:
        """Abort the live connection at the ``frames``-th frame read or written from now.

        The deterministic cousin of ``drop_randomly`` (and it replaces any
        pending random drops): ``drop_after(1)`` drops at the very next frame.
        """
        self._faults.drop_after(frames)

    def stop_reading(self) -> None:
        """Half-open every open connection: nothing is read, answered or sent; none closes.

        Events produced meanwhile stay unacknowledged on the session and are
        delivered when the client resumes it on a new connection. New connections
        are served normally.
        """
        for conn in self._endpoint.open.values():
            conn.pause()

    def resume_reading(self) -> None:
        """Undo ``stop_reading``: frames that arrived meanwhile are processed now."""
        for conn in self._endpoint.open.values():
            conn.resume()
