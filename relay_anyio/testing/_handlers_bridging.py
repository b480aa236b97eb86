"""Handlers that join calls: ``calling.connect``/``disconnect``, conferences, ``calling.dial``.

A bridge rings, then connects a peer leg or fails (``_bridges``); a conference announces joins
and leaves to every session with a participant; a dial rings its device groups in
order, legs of a group in parallel, as ``server.script_dial`` scripted them.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any, Final

import attrs

from .._constants import (
    CALL_STATE_ANSWERED,
    CALL_STATE_CREATED,
    CALL_STATE_ENDED,
    CALL_STATE_RINGING,
    EVENT_CALL_DIAL,
)
from ._bridges import ring
from ._calls import CallHost, FakeCall, leave_conference
from ._conferences import FakeConference, conference_event, sessions_of
from ._context import (
    Handler,
    HandlerContext,
    ResultCodeError,
    invalid_params,
    ok,
)
from ._devices import announced
from ._scripts import DIAL_OUTCOMES, BridgeAttempt, DialScript
from ._session import FakeSession

JSONObject = dict[str, Any]

__all__ = ["BRIDGING_HANDLERS", "dial_handler"]


# -- bridging ------------------------------------------------------------------------------


async def _connect(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """A bridge to the first device of the first group, as ``call.script_bridge`` says."""
    call = ctx.call
    groups = device_groups(params)
    if call.peer is not None or call.connecting is not None:
        raise ResultCodeError("409", "Call is already connected")
    tag = params.get("tag")
    attempt = BridgeAttempt(
        tag if isinstance(tag, str) else "", groups[0][0], call.next_bridge_script()
    )
    call.connecting = attempt
    ctx.then(functools.partial(ring, call, attempt))
    return ok("Connecting", call_id=call.call_id)


async def _disconnect(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    if call.peer is not None or call.connecting is not None:
        ctx.then(functools.partial(ctx.server.end_bridge, call))
    return ok("Disconnecting")


# -- conferences ---------------------------------------------------------------------------


async def _join_conference(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """Join (creating it if needed); the result carries ``conference_id``.

    Events: ``conference-start`` (conference-level: no ``call_id``) when it is
    created, then ``participant-join`` (with ``call_id``). Statuses other than
    ``conference-start`` are unconfirmed (reference §12.18).
    """
    call = ctx.call
    name = params.get("name")
    if not isinstance(name, str) or not name:
        raise invalid_params("name is required")
    rooms = ctx.server.conferences
    conference = rooms.get(name)
    created = conference is None
    if conference is None:
        conference = rooms[name] = FakeConference(name, str(uuid.uuid4()))
    if call in conference.participants:
        raise ResultCodeError("409", "Call is already in the conference")
    conference.participants.append(call)
    ctx.then(functools.partial(_announce_join, call, conference, created))
    return ok("Joining conference", conference_id=conference.conference_id)


async def _announce_join(call: FakeCall, conference: FakeConference, created: bool) -> None:
    if created:
        await conference_event(conference, {"status": "conference-start"}, [call.session])
    joined = {"status": "participant-join", "call_id": call.call_id, "node_id": call.node_id}
    await conference_event(conference, joined, sessions_of(conference.participants))


async def _leave_conference_handler(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    conference_id = params.get("conference_id")
    conference = next(
        (c for c in ctx.server.conferences.values() if c.conference_id == conference_id), None
    )
    if conference is None or call not in conference.participants:
        raise ResultCodeError("404", "Conference not found")
    ctx.then(functools.partial(leave_conference, call, conference))
    return ok("Leaving conference")


# -- dial ----------------------------------------------------------------------------------


def device_groups(params: JSONObject) -> list[list[JSONObject]]:
    """``params.devices``: a non-empty list of non-empty groups, else the request is refused."""
    devices = params.get("devices")
    if (
        not isinstance(devices, list)
        or not devices
        or not all(isinstance(group, list) and group for group in devices)
    ):
        raise invalid_params("devices must be a non-empty list of non-empty lists")
    return devices


async def _dial(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    scripts = ctx.server.dial_scripts
    return await _start_dial(ctx, params, scripts.popleft() if scripts else None)


def dial_handler(script_for: Callable[[JSONObject], DialScript | None]) -> Handler:
    """A ``calling.dial`` handler that picks each dial's script from its params.

    ``server.script_dial`` scripts dials in arrival order, which concurrent dials do
    not fix; ``server.set_handler("calling.dial", dial_handler(lambda p: ...))`` can
    choose by tag or device instead. ``None`` means unscripted (every leg answers).
    """

    async def dial(ctx: HandlerContext, params: JSONObject) -> JSONObject:
        return await _start_dial(ctx, params, script_for(params))

    return dial


async def _start_dial(
    ctx: HandlerContext, params: JSONObject, script: DialScript | None
) -> JSONObject:
    tag = params.get("tag")
    if not isinstance(tag, str) or not tag:
        raise invalid_params("tag is required")
    groups = device_groups(params)
    dial = _Dial(ctx.server, ctx.session, tag, groups, script or DialScript())
    if dial.script.early_states:  # the first group's states overtake the response
        legs = await dial.announce_group(0)
        ctx.then(functools.partial(dial.await_answer, 0, legs))
    else:
        ctx.then(functools.partial(dial.ring_group, 0))
    return ok("Dialing")


@attrs.define(eq=False)
class _Dial:
    """One ``calling.dial``: groups are tried in order, the legs of a group in parallel."""

    server: CallHost
    session: FakeSession
    tag: str
    groups: list[list[JSONObject]]
    script: DialScript
    _legs_started: int = 0

    async def ring_group(self, index: int) -> None:
        if index == len(self.groups):
            await self._report("failed", {})
            return
        await self.await_answer(index, await self.announce_group(index))

    async def announce_group(self, index: int) -> list[tuple[FakeCall, str]]:
        """The legs of group ``index``, each announced ``created`` then ``ringing``."""
        legs = [self._new_leg(device) for device in self.groups[index]]
        for state in (CALL_STATE_CREATED, CALL_STATE_RINGING):
            for leg, _ in legs:
                if leg.state != CALL_STATE_ENDED:  # the client may end a leg at once
                    await leg.set_state(state)
        return legs

    async def await_answer(self, index: int, legs: list[tuple[FakeCall, str]]) -> None:
        resolve = functools.partial(self._resolve_group, index, legs)
        await self.server.run_after(self.script.answer_delay, resolve)

    def _new_leg(self, device: JSONObject) -> tuple[FakeCall, str]:
        outcome = self.script.outcome(self._legs_started)
        self._legs_started += 1
        shown = announced(device, self.server.sip_header_shape)
        leg = FakeCall.register(
            self.server, self.session, direction="outbound", device=shown, tag=self.tag
        )
        return leg, outcome

    async def _resolve_group(self, index: int, legs: list[tuple[FakeCall, str]]) -> None:
        # Legs the client ended while they rang (``calling.end``) can no longer answer.
        legs = [(leg, outcome) for leg, outcome in legs if leg.state != CALL_STATE_ENDED]
        winner = next((leg for leg, outcome in legs if outcome == "answer"), None)
        if winner is not None:
            await winner.set_state(CALL_STATE_ANSWERED)
        for leg, outcome in legs:
            if leg is not winner:
                await leg.set_state(CALL_STATE_ENDED, end_reason=DIAL_OUTCOMES[outcome])
        if winner is None:
            await self.ring_group(index + 1)
            return
        call = {
            "call_id": winner.call_id,
            "node_id": winner.node_id,
            "tag": self.tag,
            "device": winner.device,
            "dial_winner": True,
        }
        await self._report("answered", call, node_id=winner.node_id)

    async def _report(self, dial_state: str, call: JSONObject, *, node_id: str = "") -> None:
        params: JSONObject = {"node_id": node_id or self.server.node_id, "tag": self.tag}
        params |= {"dial_state": dial_state, "call": call}
        await self.session.emit(EVENT_CALL_DIAL, params)


#: The methods this module serves, for ``DEFAULT_HANDLERS``.
BRIDGING_HANDLERS: Final[dict[str, Handler]] = {
    "calling.dial": _dial,
    "calling.connect": _connect,
    "calling.disconnect": _disconnect,
    "calling.join_conference": _join_conference,
    "calling.leave_conference": _leave_conference_handler,
}
