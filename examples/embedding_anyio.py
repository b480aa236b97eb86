"""An anyio program (runs on asyncio or trio): an outbound reminder campaign.

Every number is called, at most ``concurrency`` at a time; an answered call hears
the reminder, a number that cannot be reached gets it by SMS instead. Cancelling the
campaign (Ctrl+C) hangs up the calls in progress: the hangup runs in a shielded scope
with its own deadline, so it reaches RELAY even though the task is being cancelled.

    python embedding_anyio.py +15551112222 +15553334444           # asyncio
    RELAY_BACKEND=trio python embedding_anyio.py +15551112222      # trio
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import anyio

from relay_anyio import RelayClient, RelayError

FROM_NUMBER = "+15550000000"
REMINDER = "This is Acme Dental: your appointment is tomorrow at 10 AM."


async def remind(client: RelayClient, number: str) -> str:
    """Call ``number`` and play the reminder, or text it; return what happened."""
    device = {
        "type": "phone",
        "params": {"to_number": number, "from_number": FROM_NUMBER, "timeout": 30},
    }
    try:
        call = await client.dial([[device]], timeout=45)
    except RelayError as exc:  # busy, no answer, failed, or timed out (nothing left ringing)
        message = await client.send_message(
            to_number=number, from_number=FROM_NUMBER, body=REMINDER
        )
        await message.wait(timeout=60)
        return f"not reached ({exc.message}); SMS {message.state}"
    try:
        play = await call.play([{"type": "tts", "text": REMINDER}])
        await play.wait(timeout=120)
        return "reminded by phone"
    finally:
        with anyio.move_on_after(5, shield=True):
            await call.hangup()


async def campaign(
    client: RelayClient, numbers: Sequence[str], *, concurrency: int = 5
) -> dict[str, str]:
    """Remind every number; at most ``concurrency`` calls at once."""
    outcomes: dict[str, str] = {}
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(number: str) -> None:
        async with limiter:
            outcomes[number] = await remind(client, number)

    async with anyio.create_task_group() as tg:
        for number in numbers:
            tg.start_soon(one, number)
    return outcomes


async def main(numbers: Sequence[str]) -> None:
    async with RelayClient(contexts=["campaign"]) as client:
        outcomes = await campaign(client, numbers)
    for number, outcome in outcomes.items():
        print(f"{number}: {outcome}")


if __name__ == "__main__":
    backend = os.environ.get("RELAY_BACKEND", "asyncio")
    anyio.run(main, sys.argv[1:], backend=backend)
