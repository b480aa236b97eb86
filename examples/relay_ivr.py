#!/usr/bin/env python3
"""Complete IVR system with RELAY (the guide's relay_ivr.py; import line changed)."""

from relay_anyio import EVENT_CALL_STATE, RelayClient  # noqa: F401 - as in the guide

client = RelayClient(contexts=["main-ivr"])


@client.on_call
async def handle_call(call):
    await call.answer()

    # Start recording
    recording = await call.record(audio={"direction": "both", "format": "mp3"})

    # Play welcome and collect input
    collect = await call.play_and_collect(
        media=[
            {"type": "tts", "text": "Welcome to Acme Corp."},
            {"type": "tts", "text": "Press 1 for sales, 2 for support, or 3 to leave a message."},
        ],
        collect={"digits": {"max": 1, "digit_timeout": 5.0}},
    )
    result = await collect.wait()
    digit = result.params.get("result", {}).get("digits", "")

    if digit == "1":
        await call.play([{"type": "tts", "text": "Connecting you to sales."}])
        await call.connect(
            [
                [
                    {
                        "type": "phone",
                        "params": {"to_number": "+15551001000", "from_number": "+15550000000"},
                    }
                ]
            ]
        )
    elif digit == "2":
        await call.play([{"type": "tts", "text": "Connecting you to support."}])
        await call.connect(
            [
                [
                    {
                        "type": "phone",
                        "params": {"to_number": "+15552002000", "from_number": "+15550000000"},
                    }
                ]
            ]
        )
    elif digit == "3":
        play = await call.play(
            [
                {"type": "tts", "text": "Please leave your message after the beep."},
                {"type": "audio", "url": "https://example.com/beep.wav"},
            ]
        )
        await play.wait()
        voicemail = await call.record(
            audio={
                "direction": "listen",
                "format": "mp3",
                "end_silence_timeout": 3.0,
            }
        )
        await voicemail.wait()
    else:
        play = await call.play([{"type": "tts", "text": "Invalid option. Goodbye."}])
        await play.wait()

    # Stop recording and hang up
    await recording.stop()
    await call.hangup()


if __name__ == "__main__":
    client.run()
