#!/usr/bin/env python3
"""Audio playback: the guide's "Audio Playback" snippet, inside a call handler.

The lines between the markers are the guide's, unchanged; around them, the handler
answers and hangs up, and ``__main__`` runs it as a program configured like the
guide's (SIGNALWIRE_PROJECT_ID / SIGNALWIRE_API_TOKEN / SIGNALWIRE_SPACE).
"""

from relay_anyio import RelayClient


async def handle_call(call):
    await call.answer()
    # -- the guide's snippet ------------------------------------------------------------
    # Play TTS
    action = await call.play([{"type": "tts", "text": "Hello!"}])
    await action.wait()

    # Play audio file
    action = await call.play([{"type": "audio", "url": "https://example.com/audio.mp3"}])

    # Control playback
    await action.pause()
    await action.resume()
    await action.volume(5.0)  # -40.0 to 40.0 dB
    await action.stop()
    # -- end of the snippet -------------------------------------------------------------
    await call.hangup()


if __name__ == "__main__":
    client = RelayClient(contexts=["default"])
    client.on_call(handle_call)
    client.run()
