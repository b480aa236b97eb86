"""A first IVR: the app built in docs/getting-started.md and tested in docs/testing.md.

Callers hear a menu: 1 connects them to sales, 2 records a voicemail (and texts its
link to the staff phone), anything else (or nothing) says goodbye.

    relay-anyio run my_ivr.py:build_client     # SIGNALWIRE_* variables say where
    pytest test_my_ivr.py                      # against the fake server, no account
"""

from __future__ import annotations

from typing import Any

from relay_anyio import Call, RelayClient

MENU = "Thanks for calling Acme. Press 1 for sales, or 2 to leave a message."
SALES = "Connecting you to sales."
BEEP = "Please leave a message after the beep."
THANKS = "Thank you. Goodbye."
SORRY = "Sorry, I did not get that. Goodbye."

IVR_NUMBER = "+15550000000"  # the number callers dial (caller id of what we place)
SALES_NUMBER = "+15551001000"
STAFF_NUMBER = "+15550001111"  # gets a text for every voicemail


async def say(call: Call, text: str) -> None:
    """Speak ``text`` and wait until it has been played (or the call ended)."""
    play = await call.play([{"type": "tts", "text": text}])
    await play.wait()


async def ivr(call: Call, client: RelayClient) -> None:
    """One caller, from answer to goodbye."""
    await call.answer()
    menu = await call.play_and_collect(
        media=[{"type": "tts", "text": MENU}],
        collect={"digits": {"max": 1, "digit_timeout": 5.0}, "initial_timeout": 10.0},
    )
    result = await menu.wait()
    digit = result.params.get("result", {}).get("digits", "")

    if digit == "1":
        await say(call, SALES)
        sales = {"type": "phone", "params": {"to_number": SALES_NUMBER, "from_number": IVR_NUMBER}}
        await call.connect([[sales]], ringback=[{"type": "ringtone", "name": "us"}])
        return  # bridged: returning leaves the call up; RELAY ends it with the parties

    if digit == "2":
        await say(call, BEEP)
        recording = await call.record(
            audio={"direction": "listen", "format": "mp3", "beep": True, "end_silence_timeout": 3.0}
        )
        await recording.wait(timeout=300)  # ends on silence, or when the caller hangs up
        caller = call.device.get("params", {}).get("from_number", "unknown")
        await client.send_message(
            to_number=STAFF_NUMBER,
            from_number=IVR_NUMBER,
            body=f"Voicemail from {caller}: {recording.url}",
        )
        await say(call, THANKS)
    else:
        await say(call, SORRY)
    await call.hangup()


def build_client(**options: Any) -> RelayClient:
    """The app: a client on the ``main-ivr`` context running :func:`ivr` for each call.

    ``options`` go to :class:`RelayClient` (tests pass the fake server's
    ``client_kwargs()``; in production the ``SIGNALWIRE_*`` variables are enough).
    """
    client = RelayClient(contexts=["main-ivr"], **options)

    @client.on_call
    async def handle_call(call: Call) -> None:
        await ivr(call, client)

    return client


if __name__ == "__main__":
    build_client().run()
