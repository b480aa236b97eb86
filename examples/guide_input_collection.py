#!/usr/bin/env python3
"""Input collection: the guide's "Input Collection" snippet, inside a call handler.

The lines between the markers are the guide's, unchanged (plus one print of what was
collected); around them, the handler answers and hangs up, and ``__main__`` runs it
as a program configured by the SIGNALWIRE_* variables.
"""

from relay_anyio import RelayClient


async def handle_call(call):
    await call.answer()
    # -- the guide's snippet ------------------------------------------------------------
    # Collect digits with prompt
    collect = await call.play_and_collect(
        media=[{"type": "tts", "text": "Enter your account number."}],
        collect={
            "digits": {
                "max": 10,
                "digit_timeout": 3.0,
                "terminators": "#",
            },
        },
    )
    result = await collect.wait()
    digits = result.params.get("result", {}).get("digits", "")

    # Standalone collect (no prompt)
    collect = await call.collect(
        digits={"max": 4, "digit_timeout": 5.0},
        speech={"end_silence_timeout": 2.0},
    )
    result = await collect.wait()
    # -- end of the snippet -------------------------------------------------------------
    print(f"Account number: {digits}")
    print(f"Then: {result.params.get('result', {})}")
    await call.hangup()


if __name__ == "__main__":
    client = RelayClient(contexts=["default"])
    client.on_call(handle_call)
    client.run()
