#!/usr/bin/env python3
"""Recording: the guide's "Recording" snippet, inside a call handler.

The lines between the markers are the guide's, unchanged; around them, the handler
answers and hangs up, and ``__main__`` runs it as a program configured like the
guide's (SIGNALWIRE_PROJECT_ID / SIGNALWIRE_API_TOKEN / SIGNALWIRE_SPACE).
"""

from relay_anyio import RelayClient


async def handle_call(call):
    await call.answer()
    # -- the guide's snippet ------------------------------------------------------------
    # Start recording
    action = await call.record(audio={"direction": "both", "format": "mp3"})

    # Pause/resume recording
    await action.pause()
    await action.resume()

    # Stop and get result
    await action.stop()
    result = await action.wait()
    url = result.params.get("record", {}).get("url", "")
    print(f"Recording URL: {url}")
    # -- end of the snippet -------------------------------------------------------------
    await call.hangup()


if __name__ == "__main__":
    client = RelayClient(contexts=["default"])
    client.on_call(handle_call)
    client.run()
