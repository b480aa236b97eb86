#!/usr/bin/env python3
"""Hold / unhold: the guide's "Hold / Unhold" snippet, inside a call handler.

The lines between the markers are the guide's ("... do something ..." is a short
message played while the caller is on hold); ``__main__`` runs it as a program
configured by the SIGNALWIRE_* variables.
"""

from relay_anyio import RelayClient


async def handle_call(call):
    await call.answer()
    # -- the guide's snippet ------------------------------------------------------------
    await call.hold()
    # ... do something ...
    await (await call.play([{"type": "tts", "text": "Still there?"}])).wait()
    await call.unhold()
    # -- end of the snippet -------------------------------------------------------------
    await call.hangup()


if __name__ == "__main__":
    client = RelayClient(contexts=["default"])
    client.on_call(handle_call)
    client.run()
