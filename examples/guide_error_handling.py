#!/usr/bin/env python3
"""Error handling: the guide's "Error Handling" snippet around an outbound dial.

The lines between the markers are the guide's, with ``[{...}]`` filled in with a
device; ``__main__`` runs it as a program configured by the SIGNALWIRE_* variables.
"""

import asyncio

from relay_anyio import RelayClient, RelayError

DEVICE = {"type": "phone", "params": {"to_number": "+15559876543", "from_number": "+15551234567"}}


async def place_call(client):
    # -- the guide's snippet ------------------------------------------------------------
    try:
        call = await client.dial(devices=[[DEVICE]])
    except RelayError as e:
        print(f"RELAY error {e.code}: {e.message}")
    # -- end of the snippet -------------------------------------------------------------
    else:
        print(f"Call answered: {call.call_id}")
        await call.hangup()


async def main():
    async with RelayClient(contexts=["default"]) as client:
        await place_call(client)


if __name__ == "__main__":
    asyncio.run(main())
