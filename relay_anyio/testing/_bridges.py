"""Bridges in the fake server: a ``calling.connect`` from ringing to its end.

A bridge rings its first device for its script's ``delay``, then connects (the device
becomes the peer leg, a ``FakeCall`` the client never dialled) or fails. It ends when
the call that connected hangs up (the peer leg goes with it), when the peer leg hangs
up (``await call.peer.remote_hangup()``: the call lives on), or on
``calling.disconnect`` (both live on). Each end is one ``disconnected`` event on the
call that connected (reference §12.4, §17.4).

What the reference leaves unconfirmed is a switch of ``FakeRelayServer`` (the
``Bridges`` mixin below): whether the peer leg's own state events reach the session
(``bridge_peer_events``), what a bridge called off while still connecting reports
(``bridge_unconnected_end``), and whether a ``failed`` event says why
(``bridge_failure_reason``).
"""

from __future__ import annotations

import functools
from typing import Any

from .._constants import (
    CALL_STATE_ANSWERED,
    CALL_STATE_CREATED,
    CALL_STATE_ENDED,
    CALL_STATE_ENDING,
    EVENT_CALL_CONNECT,
)
from ._calls import FakeCall
from ._devices import announced
from ._scripts import BRIDGE_OUTCOMES, BridgeAttempt
from ._switches import BRIDGE_UNCONNECTED_ENDS, BridgeUnconnectedEnd, choice

__all__ = ["Bridges", "call_off_bridge", "peer_info", "ring", "unbridge"]

JSONObject = dict[str, Any]


class Bridges:
    """The bridge switches of ``FakeRelayServer`` (a mixin), and the end of a bridge.

    * ``bridge_peer_events`` (§17.4), ``False``: the peer leg of a bridge is never
      announced to the session that connected it (no ``calling.call.state`` with its
      ``call_id``; only the ``peer`` object of the ``connected`` event names it).
      ``True``: its ``created``/``answered`` go out before ``connected``, its
      ``ending``/``ended`` when it hangs up or its bridge's call does.
    * ``bridge_unconnected_end`` (§12.4), ``"failed"``: a bridge called off while
      still connecting (``calling.disconnect``, or its call ends) reports
      ``connect_state`` ``failed``; ``"disconnected"``: ``disconnected``;
      ``"silent"``: nothing at all.
    * ``bridge_failure_reason`` (§12.4), ``False``: a ``failed`` event carries only
      ``connect_state`` and ``tag``. ``True``: also ``reason`` (``busy``,
      ``noAnswer``, ``decline``, ``error``: the scripted outcome, see
      ``FakeCall.script_bridge``).
    """

    bridge_peer_events: bool = False
    bridge_unconnected_end: BridgeUnconnectedEnd = "failed"
    bridge_failure_reason: bool = False

    async def end_bridge(self, call: FakeCall) -> None:
        """``call``'s bridge (either leg), or the one it is connecting, ends."""
        if call.peer is not None:
            await unbridge(call)
        elif call.connecting is not None:
            await call_off_bridge(call)


async def ring(call: FakeCall, attempt: BridgeAttempt) -> None:
    """``connecting``, then, ``attempt.script.delay`` seconds later, its outcome."""
    if call.state == CALL_STATE_ENDED or call.connecting is not attempt:
        return
    call.connect_state = "connecting"
    await call.emit(EVENT_CALL_CONNECT, {"tag": attempt.tag, "connect_state": "connecting"})
    outcome = functools.partial(_outcome, call, attempt)
    await call.server.run_after(attempt.script.delay, outcome)


async def _outcome(call: FakeCall, attempt: BridgeAttempt) -> None:
    if call.connecting is not attempt:
        return  # called off (calling.disconnect, the call's end) while ringing
    call.connecting = None
    tag = attempt.tag
    if attempt.script.outcome != "connected":
        call.connect_state = "failed"
        payload: JSONObject = {"tag": tag, "connect_state": "failed"}
        if call.server.bridge_failure_reason:
            payload["reason"] = BRIDGE_OUTCOMES[attempt.script.outcome]
        await call.emit(EVENT_CALL_CONNECT, payload)
        return
    shown = announced(attempt.device, call.server.sip_header_shape)
    peer = FakeCall.register(call.server, call.session, direction="outbound", device=shown, tag=tag)
    peer.bridge_leg = True
    call.peer, peer.peer = peer, call
    for state in (CALL_STATE_CREATED, CALL_STATE_ANSWERED):
        await peer.set_state(state)  # announced only with ``bridge_peer_events``
    call.connect_state = "connected"
    payload = {"tag": tag, "connect_state": "connected", "peer": peer_info(peer)}
    await call.emit(EVENT_CALL_CONNECT, payload)


def peer_info(peer: FakeCall) -> JSONObject:
    """The ``peer`` object of a ``calling.call.connect`` event."""
    return {
        "call_id": peer.call_id,
        "node_id": peer.node_id,
        "tag": peer.tag,
        "device": peer.device,
    }


async def unbridge(call: FakeCall) -> None:
    """``disconnected`` on the call that connected (``call`` may be either leg).

    When that call's own end takes the bridge down, the peer leg ends first; on
    ``calling.disconnect`` or the peer's hang-up, the other leg lives on.
    """
    origin, peer = (call.peer, call) if call.bridge_leg else (call, call.peer)
    if origin is None or peer is None:
        return
    origin.peer = peer.peer = None
    if origin.state in (CALL_STATE_ENDING, CALL_STATE_ENDED):
        await peer.end()
    origin.connect_state = "disconnected"
    payload = {"tag": peer.tag, "connect_state": "disconnected", "peer": peer_info(peer)}
    await origin.emit(EVENT_CALL_CONNECT, payload)


async def call_off_bridge(call: FakeCall) -> None:
    """A bridge still connecting ends: its call ends, or ``calling.disconnect``.

    What the server then says is unconfirmed: ``server.bridge_unconnected_end``.
    """
    attempt, call.connecting = call.connecting, None
    if attempt is None:
        return
    server = call.server
    how = choice("bridge_unconnected_end", server.bridge_unconnected_end, BRIDGE_UNCONNECTED_ENDS)
    call.connect_state = "" if how == "silent" else how
    if how != "silent":
        await call.emit(EVENT_CALL_CONNECT, {"tag": attempt.tag, "connect_state": how})
