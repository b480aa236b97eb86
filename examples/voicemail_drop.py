#!/usr/bin/env python3
"""Appointment reminders that leave their voicemail at the beep.

``dial_phone`` places the call, ``detect_answering_machine(wait_for_beep=True)`` tells
a person from a machine and, for a machine, waits for the end of its greeting, so the
message is not spoken into the greeting and lost; ``Media`` builds the message.

    python examples/voicemail_drop.py +15559876543 [+15551234567]

Configured by the SIGNALWIRE_* environment variables, like the guide's programs.
"""

import sys

import anyio

from relay_anyio import Call, DetectAction, DetectEvent, Media, MediaItem, RelayClient

REMINDER: list[MediaItem] = [
    Media.tts("This is Acme Dental with a reminder of your appointment tomorrow at ten."),
    Media.silence(0.5),
    Media.tts("To reschedule, call us back at 555 0100. Goodbye."),
]


def verdict(detect: DetectAction) -> str:
    """What answered: ``human``, ``voicemail`` (at the beep), ``machine`` (no beep heard)
    or ``unknown``."""
    result = detect.result  # a DetectEvent, or the "call ended" result of a hang-up
    if isinstance(result, DetectEvent) and result.human:
        return "human"
    if isinstance(result, DetectEvent) and result.beep:
        return "voicemail"
    return "machine" if detect.machine else "unknown"


async def remind(client: RelayClient, to: str, from_: str) -> str:
    call: Call = await client.dial_phone(to, from_, ring_timeout=30, timeout=45)
    try:
        detect = await call.detect_answering_machine(wait_for_beep=True, timeout=45)
        await detect.wait()
        outcome = verdict(detect)
        hello = "Hello!" if outcome == "human" else "Hello, this is a message for you."
        play = await call.play([Media.tts(hello), *REMINDER])
        await play.wait()
        return outcome
    finally:
        with anyio.move_on_after(5, shield=True):  # hang up even when cancelled
            await call.hangup()


async def main(to: str, from_: str) -> None:
    async with RelayClient(contexts=["default"]) as client:
        print(f"{to}: {await remind(client, to, from_)}")


if __name__ == "__main__":
    number = sys.argv[1] if len(sys.argv) > 1 else "+15559876543"
    caller_id = sys.argv[2] if len(sys.argv) > 2 else "+15551234567"
    anyio.run(main, number, caller_id)
