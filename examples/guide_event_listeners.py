#!/usr/bin/env python3
"""Event listeners: the guide's "Event Listeners" program (import line changed).

``handle_call`` is the guide's, unchanged; ``__main__`` runs it as a program
configured by the SIGNALWIRE_* variables.
"""

from relay_anyio import EVENT_CALL_PLAY, EVENT_CALL_STATE, RelayClient


async def handle_call(call):
    def on_state_change(event):
        print(f"Call state: {event.params.get('call_state')}")

    def on_play_event(event):
        print(f"Play state: {event.params.get('state')}")

    call.on(EVENT_CALL_STATE, on_state_change)
    call.on(EVENT_CALL_PLAY, on_play_event)

    await call.answer()
    action = await call.play([{"type": "tts", "text": "Hello"}])
    await call.wait_for_ended()
    return action


if __name__ == "__main__":
    client = RelayClient(contexts=["default"])
    client.on_call(handle_call)
    client.run()
