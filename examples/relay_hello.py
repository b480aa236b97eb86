#!/usr/bin/env python3
"""Minimal RELAY example: answer and play a greeting.

The guide's relay_hello.py with two changes: the import line, and the connection
settings, which come from SIGNALWIRE_PROJECT_ID / SIGNALWIRE_API_TOKEN /
SIGNALWIRE_SPACE (the guide's documented alternative to constructor arguments).
"""

from relay_anyio import RelayClient

client = RelayClient(contexts=["default"])


@client.on_call
async def handle_call(call):
    await call.answer()
    action = await call.play([{"type": "tts", "text": "Hello from RELAY!"}])
    await action.wait()
    await call.hangup()


client.run()
