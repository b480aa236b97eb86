#!/usr/bin/env python3
"""Bridging: the guide's "Bridging / Connecting" snippet, inside a call handler.

The lines between the markers are the guide's, unchanged; around them, the handler
answers, listens to the bridge's progress, and hangs up; ``__main__`` runs it as a
program configured by the SIGNALWIRE_* variables.
"""

from relay_anyio import EVENT_CALL_CONNECT, RelayClient


async def handle_call(call):
    call.on(EVENT_CALL_CONNECT, lambda event: print(f"Bridge: {event.params['connect_state']}"))
    await call.answer()
    # -- the guide's snippet ------------------------------------------------------------
    # Bridge to another number
    await call.connect(
        devices=[
            [
                {
                    "type": "phone",
                    "params": {"to_number": "+15559876543", "from_number": "+15551234567"},
                }
            ]
        ],
        ringback=[{"type": "ringtone", "name": "us"}],
    )

    # Disconnect (unbridge)
    await call.disconnect()
    # -- end of the snippet -------------------------------------------------------------
    await call.hangup()


if __name__ == "__main__":
    client = RelayClient(contexts=["default"])
    client.on_call(handle_call)
    client.run()
