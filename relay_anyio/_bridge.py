"""Bridges: a call connected to another party, with that party's leg and a lifetime.

``bridge = await call.bridge(devices)`` sends ``calling.connect`` (the frame
``connect()`` sends for the same arguments) and returns a ``Bridge`` that follows the
call's ``calling.call.connect`` events (reference §12.4, §17.4): ``connecting``, then
``connected`` with the ``peer`` leg, or ``failed``; later ``disconnected``. The peer
becomes a ``Call`` of the client, routed like any other, so whatever the server sends
about it reaches it. The reader updates a bridge synchronously, before the call's
waiters and listeners see the event; a call that never bridges pays nothing (its
``_bridge`` is a class attribute until a bridge is made).

Whether RELAY sends the peer leg's own ``calling.call.state`` events to this client is
unconfirmed (§17.4). Either way the call's ``disconnected`` ends the bridge; a peer the
server said nothing about since the bridge connected is then ended here (its
``end_reason`` is ``"disconnected"``), one it did report on lives until its own
``ended``. When the call ends first, every wait on the bridge ends with ``CallEnded``,
as actions do; ``async with`` unbridges on the way out, shielded and bounded like an
action's stop (``_cleanup``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

import anyio

from ._cleanup import CLEANUP_TIMEOUT, stop_quietly
from ._commands import ControlCommands
from ._constants import (
    CALL_STATE_ENDED,
    CONNECT_STATE_CONNECTED,
    CONNECT_STATE_CONNECTING,
    CONNECT_STATE_DISCONNECTED,
    CONNECT_STATE_FAILED,
    EVENT_CALL_CONNECT,
    EVENT_CALL_STATE,
)
from ._errors import BridgeFailed, BridgeTimeout, CallEnded, RelayError, RequestTimeout
from ._events import RelayEvent, make_event
from ._payloads import DeviceSpec, MediaItem
from ._sync import LazyEvent

__all__ = ["PEER_END_REASON", "Bridge", "BridgeHost", "Bridging", "PeerRegistry"]

logger = logging.getLogger("relay_anyio.call")

#: ``end_reason`` of a peer leg ended here because its bridge ended and the server
#: never reported on the leg itself.
PEER_END_REASON = "disconnected"

_C_co = TypeVar("_C_co", covariant=True)


class BridgeHost(Protocol):
    """What a bridge needs of the calls it joins (``Call``, through ``Bridging``)."""

    call_id: str
    node_id: str
    end_reason: str
    _ended: LazyEvent
    _bridge: Bridge[Any] | None
    _state_events: dict[str, RelayEvent]

    async def _command(
        self, method: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]: ...

    def _adopt_peer(self, info: dict[str, Any]) -> tuple[Self, bool] | None: ...

    def _deliver(self, event_type: str, params: dict[str, Any], timestamp: float) -> None: ...

    def _state_params(self, state: str, end_reason: str) -> dict[str, Any]: ...

    def _finish(self, error: RelayError | None = None) -> None: ...


CallT = TypeVar("CallT", bound=BridgeHost)


class PeerRegistry(Protocol[_C_co]):
    """Who makes a bridge's peer leg a routed call (the client's router)."""

    def adopt_peer(self, info: dict[str, Any]) -> tuple[_C_co, bool] | None:
        """The peer leg ``info`` describes, and whether it is new (the bridge's own)."""
        ...


class Bridge(Generic[CallT]):
    """A bridge started with ``call.bridge(...)``: its state, its peer, its end.

    ``state`` is the latest ``connect_state`` (``connecting`` until the server says
    more), ``peer`` the other leg once connected (a ``Call``; it stays set after the
    bridge ends, while ``call.peer`` goes back to None). ``timeout`` is the bridge's
    own limit: see ``wait_connected``. ``async with await call.bridge(...) as
    bridge:`` unbridges when the block is left, for any reason.
    """

    def __init__(
        self, call: CallT, *, tag: str | None = None, timeout: float | None = None
    ) -> None:
        #: The call that was bridged (the one ``bridge()`` was called on).
        self.call: CallT = call
        self.tag: str = tag or ""
        self.timeout: float | None = timeout
        self.state: str = CONNECT_STATE_CONNECTING
        self._peer: CallT | None = None
        self._owns_peer = False
        self._connected = LazyEvent()  # connected, or over without connecting
        self._over = LazyEvent()
        #: The event that ended the bridge (``disconnected``, ``failed``), if one did.
        self._end_event: RelayEvent | None = None
        #: Why a wait fails: never connected (failed, call ended, timed out...).
        self._error: RelayError | None = None
        self._deadline = None if timeout is None else anyio.current_time() + timeout

    def __repr__(self) -> str:
        peer = f" peer={self._peer.call_id}" if self._peer is not None else ""
        over = " over" if self._over.is_set() else ""
        return f"<Bridge of {self.call.call_id} {self.state}{peer}{over}>"

    def _log_fields(self) -> dict[str, str]:
        return {"call_id": self.call.call_id}

    @property
    def peer(self) -> CallT | None:
        """The other leg, once connected (None before, and for a bridge that failed)."""
        return self._peer

    @property
    def is_over(self) -> bool:
        """True once the bridge has ended: disconnected, failed, given up, or its call ended."""
        return self._over.is_set()

    def _other(self, call: object) -> CallT | None:
        """``call``'s other leg while the bridge is up."""
        if self._peer is None or self._over.is_set():
            return None
        return self._peer if call is self.call else self.call

    # -- intake (reader side, synchronous) -----------------------------------------

    def _on_connect_event(self, call: object, event: RelayEvent) -> None:
        """A ``calling.call.connect`` event of ``call`` (routed by ``Call._deliver``)."""
        if call is not self.call or self._over.is_set():
            return
        params = event.raw_params
        tag = params.get("tag")
        if self.tag and isinstance(tag, str) and tag and tag != self.tag:
            return  # another bridge's late event
        state = params.get("connect_state")
        if not isinstance(state, str) or (
            state == CONNECT_STATE_CONNECTING and self._connected.is_set()
        ):
            return  # a bridge never goes back (a late or replayed event)
        self.state = state
        if state == CONNECT_STATE_CONNECTED:
            if not self._connected.is_set():
                self._adopt(params.get("peer"))
                self._connected.set()
        elif state == CONNECT_STATE_FAILED:
            self._end(event, BridgeFailed(self.call.call_id, state, _reason(params)))
        elif state == CONNECT_STATE_DISCONNECTED:
            never = not self._connected.is_set()
            error = BridgeFailed(self.call.call_id, state, _reason(params)) if never else None
            self._end(event, error)

    def _adopt(self, info: object) -> None:
        adopted = self.call._adopt_peer(info) if isinstance(info, dict) else None
        if adopted is None:
            logger.warning(
                "bridge of call %s connected without a usable peer: %r",
                self.call.call_id,
                info,
                extra=self._log_fields(),
            )
            self._error = RelayError(-1, f"Bridge of call {self.call.call_id} has no peer", info)
            return
        peer, self._owns_peer = adopted
        self._peer = peer
        if peer._bridge is None:
            peer._bridge = self

    def _call_finished(self, call: object, error: RelayError | None) -> None:
        """``call`` ended (``Call._finish``): if it is the bridged call, so is the bridge."""
        if call is self.call and not self._over.is_set():
            self._end(None, error or CallEnded(self.call.call_id, self.call.end_reason))

    def _end(self, event: RelayEvent | None, error: RelayError | None) -> None:
        """The bridge is over (once): wake every wait, let go of both legs."""
        self._end_event = event
        if error is not None:
            self._error = error
        self._over.set()
        self._connected.set()
        call, peer = self.call, self._peer
        if call._bridge is self:
            call._bridge = None
        if peer is None:
            return
        if peer._bridge is self:
            peer._bridge = None
        if self._owns_peer and not peer._ended.is_set() and not peer._state_events:
            # The server never reported on the leg: it is gone with its bridge.
            if error is None or isinstance(error, CallEnded):
                ended = peer._state_params(CALL_STATE_ENDED, PEER_END_REASON)
                peer._deliver(EVENT_CALL_STATE, ended, 0.0)
            else:
                peer._finish(error)  # the session is gone: so is everything of it

    def _end_here(self) -> None:
        """End a bridge the server did not confirm ending (unbridged, given up)."""
        if self._over.is_set():
            return
        if not self._connected.is_set():
            self._end(None, BridgeFailed(self.call.call_id, CONNECT_STATE_DISCONNECTED))
            return
        params = {
            "call_id": self.call.call_id,
            "node_id": self.call.node_id,
            "tag": self.tag,
            "connect_state": CONNECT_STATE_DISCONNECTED,
        }
        self.state = CONNECT_STATE_DISCONNECTED
        self._end(make_event(EVENT_CALL_CONNECT, params), None)

    # -- user API --------------------------------------------------------------------

    async def wait_connected(self, timeout: float | None = None) -> CallT:
        """Wait until connected; return the peer ``Call``.

        Raises ``BridgeFailed`` if the bridge ended without connecting, ``CallEnded``
        if the call ended first (``ConnectionLost`` if its session was replaced).
        ``timeout`` bounds this wait only (``BridgeTimeout``; the bridge goes on and a
        later wait still works). The bridge's own ``timeout`` (``call.bridge(...,
        timeout=)``, counted from the start) gives the bridge up: when it runs out
        before ``connected``, ``calling.disconnect`` is sent (shielded, bounded) and
        this and every later wait raise ``BridgeTimeout``. A bridge that connected
        returns its peer, even after it ended.
        """
        if not self._connected.is_set():
            limit, gives_up = timeout, False
            if self._deadline is not None:
                left = max(0.0, self._deadline - anyio.current_time())
                if limit is None or left <= limit:
                    limit, gives_up = left, True
            try:
                await self._connected.wait(limit)
            except TimeoutError:
                assert limit is not None
                if not gives_up:
                    raise BridgeTimeout(self.call.call_id, limit) from None
                await self._give_up()
        if self._peer is not None:
            return self._peer
        assert self._error is not None
        raise self._error

    async def _give_up(self) -> None:
        """The bridge's own timeout ran out before ``connected``: call the bridge off.

        One that connected meanwhile (the server took no notice) is kept: it is up,
        and ``wait_connected`` returns its peer.
        """
        assert self.timeout is not None
        await self._unbridge_quietly()
        if self._peer is None:
            self._error = BridgeTimeout(self.call.call_id, self.timeout)
            if not self._over.is_set():
                self._end(None, self._error)

    async def wait_disconnected(self, timeout: float | None = None) -> RelayEvent:
        """Wait until the bridge is over; return the event that ended it.

        That is the ``disconnected`` event (one made here when the bridge was
        unbridged without the server confirming it in time), or ``failed``. Raises
        ``CallEnded`` when the call ended before its bridge did (and the error that
        ended it otherwise: ``BridgeTimeout`` for a bridge given up, ``ConnectionLost``),
        ``BridgeTimeout`` after ``timeout`` seconds (the bridge is not affected).
        """
        if not self._over.is_set():
            try:
                await self._over.wait(timeout)
            except TimeoutError:
                assert timeout is not None
                raise BridgeTimeout(self.call.call_id, timeout, "disconnected") from None
        if self._end_event is not None:
            return self._end_event
        assert self._error is not None
        raise self._error

    async def disconnect(self) -> dict[str, Any]:
        """Unbridge (``calling.disconnect``) and wait for ``disconnected``; neither leg hangs up.

        The wait is bounded (2 s): if the server does not confirm by then, the bridge
        ends here anyway. A bridge still connecting is called off (its waits raise
        ``BridgeFailed``). Returns the RPC result; ``{}`` (nothing sent) when the bridge
        or the call is over already.
        """
        if self._over.is_set() or self.call._ended.is_set():
            return {}
        result = await self.call._command("calling.disconnect")
        if result:
            with anyio.move_on_after(CLEANUP_TIMEOUT):
                await self._over.wait()
        self._end_here()
        return result

    async def _unbridge_quietly(self) -> None:
        """``calling.disconnect`` for cleanup: shielded, bounded, never raising."""
        if self._over.is_set() or self.call._ended.is_set():
            return
        send = functools.partial(self.call._command, "calling.disconnect")
        await stop_quietly(self, send, self._over, logger)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._unbridge_quietly()
        self._end_here()


def _reason(params: Mapping[str, Any]) -> str:
    """Why a bridge failed, if the event says (no key is confirmed: both are read)."""
    for key in ("reason", "end_reason"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


class Bridging(ControlCommands):
    """``bridge()`` and ``peer`` (a mixin of ``Call``); see the module docstring."""

    _state_events: dict[str, RelayEvent]
    _failure: RelayError | None
    #: The bridge this call is part of (made by it, or as its peer); None while unbridged.
    _bridge: Bridge[Any] | None = None
    #: Who registers peer legs: the client's router, set on every call it makes.
    _peers: PeerRegistry[Any] | None = None

    def _deliver(self, event_type: str, params: dict[str, Any], timestamp: float) -> None:
        raise NotImplementedError  # the call's

    def _state_params(self, state: str, end_reason: str) -> dict[str, Any]:
        raise NotImplementedError  # the call's

    def _finish(self, error: RelayError | None = None) -> None:
        raise NotImplementedError  # the call's

    def _adopt_peer(self, info: dict[str, Any]) -> tuple[Self, bool] | None:
        peers = self._peers
        return None if peers is None else peers.adopt_peer(info)

    @property
    def peer(self) -> Self | None:
        """The other leg while this call is bridged (by ``bridge()``), else None.

        On a peer leg, the call that bridged it. ``connect()`` tracks no peer (it is
        the guide's API: events only).
        """
        bridge = self._bridge
        other = None if bridge is None else bridge._other(self)
        return other if isinstance(other, type(self)) else None

    async def bridge(
        self,
        devices: Sequence[Sequence[DeviceSpec | Mapping[str, Any]]],
        *,
        ringback: Sequence[MediaItem | Mapping[str, Any]] | None = None,
        tag: str | None = None,
        max_duration: int | None = None,
        max_price_per_minute: float | None = None,
        status_url: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Bridge[Self]:
        """Bridge this call to devices, as ``connect()``; return the ``Bridge``.

        The same ``calling.connect`` as ``connect()`` with these arguments; returns
        once RELAY accepted it. ``timeout`` (seconds from now) is how long the bridge
        may take to connect: see ``Bridge.wait_connected``. One bridge at a time:
        ``RuntimeError`` while this call is bridged or connecting (``disconnect()``
        first). On an ended call nothing is sent and the bridge is over at once (its
        waits raise ``CallEnded``). If this is cancelled or times out once the request
        may have reached RELAY, the bridge is called off (shielded, bounded).
        """
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        bridge: Bridge[Self] = Bridge(self, tag=tag, timeout=timeout)
        if self._ended.is_set():
            bridge._end(None, self._failure or CallEnded(self.call_id, self.end_reason))
            return bridge
        if self._bridge is not None:
            raise RuntimeError(f"call {self.call_id} is already bridged: disconnect() first")
        self._bridge = bridge  # before sending: an event that overtakes the response counts
        try:
            result = await self.connect(
                devices,
                ringback=ringback,
                tag=tag,
                max_duration=max_duration,
                max_price_per_minute=max_price_per_minute,
                status_url=status_url,
                **kwargs,
            )
        except BaseException as exc:
            if isinstance(exc, RequestTimeout | anyio.get_cancelled_exc_class()):
                await bridge._unbridge_quietly()  # still registered: its end event counts
            bridge._end_here()  # nobody holds it: let go of the call
            raise
        if not result:  # 404/410: the call is gone
            bridge._end(None, CallEnded(self.call_id, self.end_reason or "gone"))
        return bridge
