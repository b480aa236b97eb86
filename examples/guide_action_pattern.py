#!/usr/bin/env python3
"""The action pattern: the guide's "The Action Pattern" snippet, inside a call handler.

The lines between the markers are the guide's, unchanged; ``__main__`` runs it as a
program configured by the SIGNALWIRE_* variables.
"""

from relay_anyio import RelayClient


async def handle_call(call):
    await call.answer()
    # -- the guide's snippet ------------------------------------------------------------
    action = await call.play([{"type": "tts", "text": "Hello"}])

    # Fire-and-forget: don't wait for completion
    print(f"Play started, control_id={action.control_id}")

    # Or wait for completion
    result = await action.wait(timeout=30.0)
    print(f"Play finished: {result.params.get('state')}")
    # -- end of the snippet -------------------------------------------------------------
    await call.hangup()


if __name__ == "__main__":
    client = RelayClient(contexts=["default"])
    client.on_call(handle_call)
    client.run()
