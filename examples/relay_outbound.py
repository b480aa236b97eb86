#!/usr/bin/env python3
"""Make an outbound call with RELAY (the guide's relay_outbound.py; import line changed)."""

import asyncio

from relay_anyio import RelayClient

client = RelayClient(contexts=["default"])


async def main():
    async with client:
        call = await client.dial(
            devices=[
                [
                    {
                        "type": "phone",
                        "params": {
                            "from_number": "+15551234567",
                            "to_number": "+15559876543",
                            "timeout": 30,
                        },
                    }
                ]
            ],
        )
        print(f"Call answered: {call.call_id}")

        action = await call.play(
            [{"type": "tts", "text": "This is an automated message from SignalWire."}]
        )
        await action.wait()
        await call.hangup()


asyncio.run(main())
