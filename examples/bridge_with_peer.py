#!/usr/bin/env python3
"""A sales line: put the caller through to an agent, and follow the bridge to its end.

``call.bridge(...)`` sends the ``calling.connect`` that ``connect()`` sends and returns a
``Bridge``: ``wait_connected()`` gives the agent's leg as a ``Call`` (``BridgeFailed``
if nobody answered, ``BridgeTimeout`` once the bridge's own ``timeout`` ran out, and
then the bridge is called off), ``wait_disconnected()`` returns when either party left
the bridge. Leaving the ``async with`` block unbridges, whatever happened inside it.

    python examples/bridge_with_peer.py

Configured by the SIGNALWIRE_* environment variables, like the guide's programs.
"""

from relay_anyio import BridgeFailed, BridgeTimeout, Call, CallEnded, Device, Media, RelayClient

AGENT = Device.phone("+15551001000", "+15550000000", timeout=20)
SORRY = [Media.tts("Sorry, nobody can take your call right now. Please call again later.")]
THANKS = [Media.tts("Your agent has left the call. Thank you for calling Acme. Goodbye.")]


async def handle_call(call: Call) -> None:
    await call.answer()
    try:
        async with await call.bridge(
            [[AGENT]], ringback=[Media.ringtone("us")], timeout=30
        ) as bridge:
            agent = await bridge.wait_connected()
            print(f"call {call.call_id}: bridged to agent leg {agent.call_id}")
            ended = await bridge.wait_disconnected()
            print(f"call {call.call_id}: bridge {ended.params['connect_state']}")
    except (BridgeFailed, BridgeTimeout) as exc:
        print(f"call {call.call_id}: no agent ({exc})")
        goodbye = SORRY
    except CallEnded:
        print(f"call {call.call_id}: the caller hung up")
        return
    else:
        goodbye = THANKS
    if call.state == "answered":  # the caller is still there: the agent left, or never came
        await (await call.play(goodbye)).wait()
        await call.hangup()


if __name__ == "__main__":
    client = RelayClient(contexts=["sales"])
    client.on_call(handle_call)
    client.run()
