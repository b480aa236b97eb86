"""Conferences as the fake server sees them: who is in one, and the events it sends."""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from .._constants import EVENT_CONFERENCE
from ._session import FakeSession

__all__ = ["FakeConference", "Participant", "conference_event", "sessions_of"]

JSONObject = dict[str, Any]


class Participant(Protocol):
    """What a conference knows of a call in it (a ``FakeCall``; no import of it here)."""

    call_id: str
    node_id: str
    session: FakeSession


@attrs.define(eq=False)
class FakeConference:
    """A conference some calls of the fake server have joined."""

    name: str
    conference_id: str
    participants: list[Participant] = attrs.field(factory=list)


def sessions_of(calls: list[Participant]) -> list[FakeSession]:
    """The sessions owning ``calls``, each once, in order."""
    return list({id(c.session): c.session for c in calls}.values())


async def conference_event(
    conference: FakeConference, payload: JSONObject, sessions: list[FakeSession]
) -> None:
    """Send a ``calling.conference`` event about ``conference`` to each of ``sessions``."""
    params = {"conference_id": conference.conference_id, "name": conference.name, **payload}
    for session in sessions:
        await session.emit(EVENT_CONFERENCE, params)
