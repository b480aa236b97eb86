#!/usr/bin/env python3
"""Receive SMS/MMS (the guide's on_message snippet; import line changed)."""

from relay_anyio import RelayClient

client = RelayClient(contexts=["default"])


@client.on_message
async def handle_message(message):
    print(f"From: {message.from_number}")
    print(f"Body: {message.body}")
    if message.media:
        print(f"Media: {message.media}")


client.run()
