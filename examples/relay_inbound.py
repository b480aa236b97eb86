#!/usr/bin/env python3
"""Handle inbound calls with RELAY (the guide's relay_inbound.py; import line changed)."""

from relay_anyio import RelayClient

client = RelayClient(contexts=["ivr"])


@client.on_call
async def handle_call(call):
    print(f"Inbound call from {call.device}")
    await call.answer()

    # Play a menu
    action = await call.play([{"type": "tts", "text": "Press 1 for sales, 2 for support."}])
    await action.wait()

    # Collect a digit
    collect = await call.collect(
        digits={"max": 1, "digit_timeout": 5.0},
        initial_timeout=10.0,
    )
    result = await collect.wait()

    digit = result.params.get("result", {}).get("digits", "")
    if digit == "1":
        await call.connect([[{"type": "phone", "params": {"to_number": "+15551001000"}}]])
    elif digit == "2":
        await call.connect([[{"type": "phone", "params": {"to_number": "+15552002000"}}]])
    else:
        play = await call.play([{"type": "tts", "text": "Invalid selection. Goodbye."}])
        await play.wait()
        await call.hangup()


client.run()
