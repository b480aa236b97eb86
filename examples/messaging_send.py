#!/usr/bin/env python3
"""Send an SMS and an MMS and wait for delivery (the guide's messaging snippets).

Import line changed; connection settings from the SIGNALWIRE_* environment variables.
"""

import asyncio

from relay_anyio import RelayClient

client = RelayClient(contexts=["default"])


async def main():
    async with client:
        message = await client.send_message(
            to_number="+15559876543",
            from_number="+15551234567",
            body="Hello from SignalWire RELAY!",
        )
        print(f"Message ID: {message.message_id}")

        # Wait for delivery confirmation
        result = await message.wait(timeout=30.0)
        print(f"Final state: {message.state}")  # delivered, failed, etc.

        message = await client.send_message(
            to_number="+15559876543",
            from_number="+15551234567",
            body="Check out this image!",
            media=["https://example.com/photo.jpg"],
        )
        result = await message.wait(timeout=30.0)
        print(f"MMS final state: {result.params.get('message_state')}")


asyncio.run(main())
