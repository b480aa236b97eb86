#!/usr/bin/env python3
"""A reception desk for phone and SIP callers: who is calling, and where they go.

``call.from_``/``call.to`` read the same for a phone number and a SIP URI, and
``call.headers`` has the SIP headers a PBX sent. A caller whose PBX names an account
(``X-Account``) goes straight to the account team, headers passed on with
``bridge_sip``; everyone else gets a menu and ``bridge_phone``. The payloads are
typed (``CollectSpec``), so a misspelled key is a type error, not a silent default.

Configured by the SIGNALWIRE_* environment variables, like the guide's programs.
"""

from relay_anyio import (
    EVENT_CALL_CONNECT,
    Call,
    CollectSpec,
    Media,
    RelayClient,
    RelayEvent,
)

ACCOUNT_TEAM = "sip:accounts@pbx.example.com"
SALES = "+15551001000"
SUPPORT = "+15552002000"
MENU: CollectSpec = {"digits": {"max": 1, "digit_timeout": 5.0}, "initial_timeout": 10.0}

client = RelayClient(contexts=["reception"])


def on_connect(event: RelayEvent) -> None:
    print(f"bridge: {event.params.get('connect_state')}")


@client.on_call
async def handle_call(call: Call) -> None:
    print(f"{call.device_info.type} call from {call.from_} to {call.to}")
    for header in call.headers:
        print(f"  {header.name}: {header.value}")
    await call.answer()
    call.on(EVENT_CALL_CONNECT, handler=on_connect)  # SignalWire's keyword
    account = call.device_info.header("X-Account")
    if account is not None:
        await call.bridge_sip(ACCOUNT_TEAM, headers=call.headers, ringback=[Media.ringtone("us")])
        return
    menu = await call.play_and_collect([Media.tts("Press 1 for sales, 2 for support.")], MENU)
    result = await menu.wait()
    digit = result.params.get("result", {}).get("digits", "")
    await call.bridge_phone(SALES if digit == "1" else SUPPORT, ring_timeout=20)


if __name__ == "__main__":
    client.run()
