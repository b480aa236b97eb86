#!/usr/bin/env python3
"""Detection: the guide's "Detection (Answering Machine, Fax, DTMF)" snippet.

The lines between the markers are the guide's, unchanged (plus one print of the
result); around them, the handler answers and hangs up, and ``__main__`` runs it as a
program configured by the SIGNALWIRE_* variables.
"""

from relay_anyio import RelayClient


async def handle_call(call):
    await call.answer()
    # -- the guide's snippet ------------------------------------------------------------
    # Answering machine detection
    detect = await call.detect(
        detect={"type": "machine", "params": {"initial_timeout": 4.5}},
        timeout=30.0,
    )
    result = await detect.wait()
    machine_result = result.params.get("detect", {})
    # -- end of the snippet -------------------------------------------------------------
    print(f"Detected: {machine_result.get('params', {}).get('event')}")
    await call.hangup()


if __name__ == "__main__":
    client = RelayClient(contexts=["default"])
    client.on_call(handle_call)
    client.run()
