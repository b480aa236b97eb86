#!/usr/bin/env python3
"""on_completed: the guide's "on_completed Callback" snippet, inside a call handler.

The lines between the markers are the guide's, unchanged. The handler then waits for
the far end to hang up, so the callback fires while the call is still in the
handler's hands; ``__main__`` runs it as a program configured by SIGNALWIRE_* variables.
"""

from relay_anyio import RelayClient


async def handle_call(call):
    await call.answer()

    # -- the guide's snippet ------------------------------------------------------------
    async def on_play_done(event):
        print(f"Play finished: {event.params.get('state')}")

    action = await call.play(
        [{"type": "tts", "text": "Processing..."}],
        on_completed=on_play_done,
    )
    # No need to await — callback fires automatically
    # -- end of the snippet -------------------------------------------------------------
    await call.wait_for_ended()
    return action


if __name__ == "__main__":
    client = RelayClient(contexts=["default"])
    client.on_call(handle_call)
    client.run()
