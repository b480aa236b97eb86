"""``make demo`` / ``relay-anyio demo``: the guide's IVR against the embedded fake server.

It lives in the testing tier because it runs the fake server; the SDK proper never
imports this tier (the CLI does, lazily, for ``demo`` and ``serve``).

Three simulated callers press keys (sales, voicemail, a wrong key): the sales caller
is bridged to an agent (``call.bridge``: the handler prints the agent's leg) until the
agent hangs up. Then an outbound call reaches an answering machine and leaves its
message after the beep, an SMS goes out and one comes in. The fake server's journal
is printed as a timeline per call: every frame between client and server, with
credentials masked.
"""

from __future__ import annotations

from typing import Any

import anyio

from .._builders import Media
from .._call import Call
from .._client import RelayClient
from .._events import DetectEvent
from .._messaging import Message
from .._redact import redact_frame
from . import FakeCall, FakeRelayServer, JournalEntry

__all__ = ["ivr_handler", "leave_voicemail", "run_demo"]

#: The message the outbound call leaves on the answering machine.
REMINDER = "Hello, this is Acme Dental with a reminder of your appointment tomorrow at ten."


async def ivr_handler(call: Call) -> None:
    """The guide's ``relay_ivr.py`` handler; sales is a ``Bridge`` followed to its end."""
    await call.answer()
    recording = await call.record(audio={"direction": "both", "format": "mp3"})
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
        bridge = await call.bridge(
            [
                [
                    {
                        "type": "phone",
                        "params": {"to_number": "+15551001000", "from_number": "+15550000000"},
                    }
                ]
            ],
            timeout=10,
        )
        agent = await bridge.wait_connected()
        print(f"[handler] call {call.call_id[:8]}: bridged to agent leg {agent.call_id[:8]}")
        ended = await bridge.wait_disconnected()
        print(f"[handler] call {call.call_id[:8]}: bridge {ended.params['connect_state']}")
    elif digit == "3":
        play = await call.play(
            [
                {"type": "tts", "text": "Please leave your message after the beep."},
                {"type": "audio", "url": "https://example.com/beep.wav"},
            ]
        )
        await play.wait()
        voicemail = await call.record(
            audio={"direction": "listen", "format": "mp3", "end_silence_timeout": 3.0}
        )
        await voicemail.wait()
    else:
        play = await call.play([{"type": "tts", "text": "Invalid option. Goodbye."}])
        await play.wait()
    await recording.stop()
    await call.hangup()


async def leave_voicemail(call: Call) -> str:
    """An outbound call's script: speak only after the answering machine's beep."""
    detect = await call.detect_answering_machine(wait_for_beep=True, timeout=30)
    result = await detect.wait()
    beep = isinstance(result, DetectEvent) and result.beep
    print(f"[handler] call {call.call_id[:8]}: {'beep heard' if beep else 'no beep'}")
    play = await call.play([Media.tts(REMINDER)])
    await play.wait()
    await call.hangup()
    return "voicemail" if beep else "unknown"


async def _agent_hangs_up(server: FakeRelayServer, caller: FakeCall) -> None:
    """The sales agent answers, talks, and hangs up first."""
    await server.wait_until(lambda: caller.peer is not None, timeout=10)
    assert caller.peer is not None
    await caller.peer.remote_hangup()


def _summary(frame: Any) -> str:
    """One readable line for a frame."""
    if not isinstance(frame, dict):
        return f"(raw) {str(frame)[:60]}"
    if "method" in frame:
        params = frame.get("params") or {}
        method = frame["method"]
        if method == "signalwire.event":
            inner = params.get("params") or {}
            keys = (
                "call_state",
                "end_reason",
                "state",
                "connect_state",
                "message_state",
                "dial_state",
            )
            parts = [f"{k}={inner[k]}" for k in keys if k in inner]
            peer = inner.get("peer")
            if isinstance(peer, dict) and isinstance(peer.get("call_id"), str):
                parts.append(f"peer={peer['call_id'][:8]}")
            detect = inner.get("detect")
            if isinstance(detect, dict) and isinstance(detect.get("params"), dict):
                parts.append(f"detect={detect['params'].get('event')}")
            detail = " ".join(parts)
            result = inner.get("result")
            if isinstance(result, dict) and result:
                digits = (result.get("params") or {}).get("digits")
                detail += f" result={result.get('type')}" + (f" digits={digits}" if digits else "")
            if "url" in inner:
                detail += f" url={inner['url']}"
            return f"event {params.get('event_type')} {detail}".rstrip()
        extras = []
        for key in ("play", "record", "collect", "detect", "devices", "reason", "body", "contexts"):
            if key in params:
                extras.append(f"{key}={_short(params[key])}")
        return f"{method} {' '.join(extras)}".rstrip()
    if "error" in frame:
        return f"error {frame['error']}"
    result = frame.get("result")
    if result == {}:
        return "ack"
    if isinstance(result, dict) and "code" in result:
        return f"result {result.get('code')} {result.get('message', '')}".rstrip()
    return "result"


def _short(value: Any, limit: int = 70) -> str:
    text = redact_frame(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _call_id_of(frame: Any, requests: dict[Any, str] | None = None) -> str | None:
    """The call a frame is about; responses are matched to their request's call."""
    if not isinstance(frame, dict):
        return None
    if "method" not in frame and requests is not None:
        return requests.get(frame.get("id"))
    params = frame.get("params") or {}
    if frame.get("method") == "signalwire.event":
        params = params.get("params") or {}
    value = params.get("call_id") if isinstance(params, dict) else None
    return value if isinstance(value, str) else None


def _print_timeline(title: str, entries: list[JournalEntry], start: float, verbose: bool) -> None:
    print(f"\n== {title}")
    for entry in entries:
        summary = _summary(entry.frame)
        if summary == "ack" and not verbose:
            continue
        arrow = "client -> server" if entry.direction == "in" else "server -> client"
        line = f"  {entry.time - start:7.3f}s  {arrow}  {summary}"
        print(line)
        if verbose:
            print(f"             {redact_frame(entry.frame)}")


async def run_demo(verbose: bool = False) -> None:
    async with FakeRelayServer() as server:
        server.record_duration = 0.2  # the simulated caller speaks for 0.2 s, then silence
        client = RelayClient(
            **server.client_kwargs(), contexts=["main-ivr"], reconnect_min_delay=0.1
        )
        client.on_call(ivr_handler)
        inbound: list[Message] = []
        got_message = anyio.Event()

        @client.on_message
        async def on_message(message: Message) -> None:
            inbound.append(message)
            got_message.set()

        start = anyio.current_time()
        callers = [
            ("1", "caller presses 1: sales"),
            ("3", "caller presses 3: voicemail"),
            ("7", "caller presses 7: invalid option"),
        ]
        calls = []
        async with client:
            for digits, title in callers:
                call = await server.offer_call(context="main-ivr", from_number="+15557770000")
                call.script_digits(digits)
                if digits == "1":
                    await _agent_hangs_up(server, call)
                await call.wait_for_state("ended", timeout=10)
                calls.append((call.call_id, title))
            outbound = await client.dial_phone("+15559876543", "+15551234567", timeout=10)
            machine = server.calls[outbound.call_id]
            machine.script_answering_machine(greeting=0.2)  # the greeting, then the beep
            await leave_voicemail(outbound)
            await machine.wait_for_state("ended", timeout=10)
            calls.append((outbound.call_id, "outbound: voicemail after the beep"))
            message = await client.send_message(
                to_number="+15559876543", from_number="+15551234567", body="Hello from RELAY!"
            )
            final = await message.wait(timeout=10)
            await server.offer_message(
                context="main-ivr", body="Check this out", media=["https://example.com/a.jpg"]
            )
            with anyio.fail_after(5):
                await got_message.wait()
        journal = list(server.journal)
        requests = {
            e.frame.get("id"): call_id
            for e in journal
            if e.direction == "in"
            and isinstance(e.frame, dict)
            and (call_id := _call_id_of(e.frame)) is not None
        }
        owner = [_call_id_of(e.frame, requests) for e in journal]
        session = [
            e
            for e, call_id in zip(journal, owner, strict=True)
            if call_id is None and (verbose or _summary(e.frame) != "ack")
        ]
        _print_timeline("session (connect, auth, dial, messaging)", session, start, verbose)
        for call_id, title in calls:
            entries = [e for e, o in zip(journal, owner, strict=True) if o == call_id]
            _print_timeline(f"call {call_id[:8]}: {title}", entries, start, verbose)
        print(f"\nSMS {message.message_id[:8]} final state: {final.params.get('message_state')}")
        print(f"inbound MMS from {inbound[0].from_number}: {inbound[0].body!r} {inbound[0].media}")
        acks = sum(1 for e in journal if _summary(e.frame) == "ack")
        hidden = "all shown" if verbose else f"{acks} acks/pongs hidden; --verbose shows all"
        print(f"\n{len(journal)} frames in {anyio.current_time() - start:.2f} s ({hidden})")
