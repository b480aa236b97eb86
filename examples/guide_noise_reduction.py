#!/usr/bin/env python3
"""Noise reduction: the guide's "Noise Reduction" snippet, inside a call handler.

The lines between the markers are the guide's ("... later ..." is a recording made
with the denoiser on); ``__main__`` runs it as a program configured by the
SIGNALWIRE_* variables.
"""

from relay_anyio import RelayClient


async def handle_call(call):
    await call.answer()
    # -- the guide's snippet ------------------------------------------------------------
    await call.denoise()
    # ... later ...
    recording = await call.record(audio={"format": "wav"})
    await recording.stop()
    await call.denoise_stop()
    # -- end of the snippet -------------------------------------------------------------
    await call.hangup()


if __name__ == "__main__":
    client = RelayClient(contexts=["default"])
    client.on_call(handle_call)
    client.run()
