"""Conferences as the fake server sees them: who is in one, and the events it sends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from .._constants import EVENT_CONFERENCE
from ._session import FakeSession

if TYPE_CHECKING:
    from ._calls import FakeCall

__all__ = ["FakeConference", "conference_event", "leave_conference", "sessions_of"]

JSONObject = dict[str, Any]


@attrs.define(eq=False)
class FakeConference:
    """A conference some calls of the fake server have joined."""

    name: str
    conference_id: str
    participants: list[FakeCall] = attrs.field(factory=list)


async def leave_conference(call: FakeCall, conference: FakeConference) -> None:
    """``participant-leave``; the last one out also gets ``conference-end``."""
    if call not in conference.participants:
        return
    sessions = sessions_of(conference.participants)
    conference.participants.remove(call)
    left = {"status": "participant-leave", "call_id": call.call_id, "node_id": call.node_id}
    await conference_event(conference, left, sessions)
    if not conference.participants:
        call.server.conferences.pop(conference.name, None)
        await conference_event(conference, {"status": "conference-end"}, [call.session])


def sessions_of(calls: list[FakeCall]) -> list[FakeSession]:
    """The sessions owning ``calls``, each once, in order."""
    return list({id(c.session): c.session for c in calls}.values())


async def conference_event(
    conference: FakeConference, payload: JSONObject, sessions: list[FakeSession]
) -> None:
    """Send a ``calling.conference`` event about ``conference`` to each of ``sessions``."""
    params = {"conference_id": conference.conference_id, "name": conference.name, **payload}
    for session in sessions:
        await session.emit(EVENT_CONFERENCE, params)
