#!/usr/bin/env python3
"""Conference: the guide's "Conference" snippet, inside a call handler.

The lines between the markers are the guide's, unchanged: leaving
``"conference-id-here"`` (an id no conference has) is a no-op, as for any command
the server answers with 404. The conference-level events (no call id) reach
``client.on``; ``__main__`` runs it as a program configured by SIGNALWIRE_* variables.
"""

from relay_anyio import EVENT_CONFERENCE, RelayClient


async def handle_call(call):
    await call.answer()
    # -- the guide's snippet ------------------------------------------------------------
    # Join a conference
    await call.join_conference("team-standup", muted=False, beep="true")

    # Leave a conference
    await call.leave_conference("conference-id-here")
    # -- end of the snippet -------------------------------------------------------------
    await call.hangup()


def print_conference_event(event):
    print(f"Conference {event.params.get('name')}: {event.params.get('status')}")


if __name__ == "__main__":
    client = RelayClient(contexts=["default"])
    client.on(EVENT_CONFERENCE, print_conference_event)
    client.on_call(handle_call)
    client.run()
