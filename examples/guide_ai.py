#!/usr/bin/env python3
"""AI agent on a call: the guide's "AI Agent on a Call" snippet, inside a call handler.

The lines between the markers are the guide's, unchanged: ``ai.wait()`` returns when
the AI session ends (its own end event, or the end of the call); ``__main__`` runs it
as a program configured by the SIGNALWIRE_* variables.
"""

from relay_anyio import RelayClient


async def handle_call(call):
    await call.answer()
    # -- the guide's snippet ------------------------------------------------------------
    ai = await call.ai(
        prompt={"text": "You are a helpful assistant."},
        languages=[{"name": "English", "code": "en-US", "voice": "rime.spore"}],
    )
    await ai.wait()  # Blocks until AI session ends
    # -- end of the snippet -------------------------------------------------------------
    print(f"AI session over: {ai.result.params.get('state')}")


if __name__ == "__main__":
    client = RelayClient(contexts=["default"])
    client.on_call(handle_call)
    client.run()
