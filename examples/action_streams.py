#!/usr/bin/env python3
"""Action streams and listener handles: a speech menu that shows what it hears, live.

``handle_call`` asks which department the caller wants and prints the recogniser's
partial results as they come (``async for event in question``: every event of the
collect, its final result last), speaks the answer with a listener scoped to that
playback (``with call.on(...)``), then hangs up and follows the call to its end
(``call.events(EVENT_CALL_STATE)``). ``call_back`` dials with ``listeners=``, so it
sees the leg ring. See docs/streams.md.

    python examples/action_streams.py            # serve the menu
    python examples/action_streams.py +15559876543 +15551234567   # call a number back

Configured by the SIGNALWIRE_* environment variables, like the guide's programs.
"""

import sys

import anyio

from relay_anyio import (
    EVENT_CALL_PLAY,
    EVENT_CALL_STATE,
    Call,
    CollectEvent,
    RelayClient,
    RelayEvent,
)

DEPARTMENTS = ("sales", "support", "billing")


def show_playback(event: RelayEvent) -> None:
    print(f"prompt {event.params['state']}")


async def handle_call(call: Call) -> None:
    await call.answer()
    question = await call.prompt_tts(
        "Which department would you like: sales, support or billing?",
        {"speech": {"hints": list(DEPARTMENTS)}, "partial_results": True},
    )
    async for event in question:  # the prompt's play events, partial results, the result
        if isinstance(event, CollectEvent) and not event.is_final:
            print(f"heard so far: {event.text}")
    result = question.result
    heard = result.text.lower() if isinstance(result, CollectEvent) else ""
    department = next((name for name in DEPARTMENTS if name in heard), None)
    print(f"heard: {heard!r} -> {department}")
    answer = f"Connecting you to {department}." if department else "Sorry, goodbye."
    with call.on(EVENT_CALL_PLAY, show_playback):  # this playback only
        play = await call.play([{"type": "tts", "text": answer}])
        await play.wait()
    async with call.events(EVENT_CALL_STATE) as states:
        await call.hangup()
        async for event in states:  # ends after "ended"
            print(f"call {event.params['call_state']}")


async def call_back(client: RelayClient, to: str, from_: str) -> None:
    def ringing(event: RelayEvent) -> None:  # from the leg's very first state
        print(f"leg {event.params['call_state']}")

    call = await client.dial_phone(to, from_, listeners={EVENT_CALL_STATE: ringing})
    try:
        play = await call.play([{"type": "tts", "text": "Hello, you asked us to call back."}])
        await play.wait()
    finally:
        with anyio.move_on_after(5, shield=True):  # hang up even when cancelled
            await call.hangup()


async def main(to: str, from_: str) -> None:
    async with RelayClient(contexts=["default"]) as client:
        await call_back(client, to, from_)


if __name__ == "__main__":
    if len(sys.argv) > 2:
        anyio.run(main, sys.argv[1], sys.argv[2])
    else:
        menu = RelayClient(contexts=["default"])
        menu.on_call(handle_call)
        menu.run()
