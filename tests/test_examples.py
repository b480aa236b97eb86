"""The guide's programs and snippets, run as written against the fake server.

* ``relay_hello.py``, ``relay_inbound.py``, ``relay_outbound.py``, ``relay_ivr.py`` and
  one snippet program run as separate processes, configured only by the
  ``SIGNALWIRE_*`` variables, over TLS trusted through ``SIGNALWIRE_RELAY_CA_FILE``
  (the production TLS path); serving ones are stopped with SIGINT and must exit 0.
  (``tests/test_docs_examples.py`` covers other branches of the same programs.)
* Each snippet file (``examples/guide_*.py``) keeps the guide's lines inside a call
  handler; its handler runs here in-process, and the test checks the frames it sent
  and what it printed.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest
from anyio.abc import Process

from relay_anyio import Call, RelayClient
from relay_anyio.testing import FakeCall, FakeRelayServer

from .helpers import eventually, make_client, python_process

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
JSON = dict[str, Any]


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (its ``__main__`` block does not run)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def texts(server: FakeRelayServer) -> list[str]:
    """Every TTS text played, in order."""
    return [
        item["params"]["text"]
        for frame in server.received("calling.play")
        for item in frame["params"]["play"]
        if item["type"] == "tts"
    ]


def methods(fake: FakeCall) -> list[str]:
    return [frame["method"] for frame in fake.requests]


def params(frame: JSON) -> JSON:
    """A request's params without the call's ids."""
    return {k: v for k, v in frame["params"].items() if k not in ("node_id", "call_id")}


# -- snippets, in-process --------------------------------------------------------------------


async def run_snippet(
    server: FakeRelayServer,
    name: str,
    drive: Callable[[FakeCall], Awaitable[None]] | None = None,
    configure: Callable[[RelayClient], None] | None = None,
) -> FakeCall:
    """Offer one call to the snippet's handler; fail if the handler raised."""
    module = load(name)
    done = anyio.Event()
    errors: list[BaseException] = []
    client = make_client(server)
    if configure is not None:
        configure(client)

    @client.on_call
    async def handler(call: Call) -> None:
        try:
            await module.handle_call(call)
        except BaseException as exc:
            errors.append(exc)
            raise
        finally:
            done.set()

    async with client:
        fake = await server.offer_call()
        if drive is not None:
            await drive(fake)
        with anyio.fail_after(10):  # a failure detector only
            await done.wait()
        # A snippet that hung up is done once the call has ended (else the client,
        # leaving, would hang up again a call whose "ended" is still on its way).
        await eventually(lambda: fake.state == "ended" or "calling.end" not in methods(fake))
    assert errors == []
    assert server.violations == []
    return fake


async def test_playback_snippet(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    relay_server.play_duration = 0.05
    fake = await run_snippet(relay_server, "guide_playback")
    assert methods(fake) == [
        "calling.answer",
        "calling.play",
        "calling.play",
        "calling.play.pause",
        "calling.play.resume",
        "calling.play.volume",
        "calling.play.stop",
        "calling.end",
    ]
    first, second, pause, resume, volume, stop = fake.requests[1:7]
    assert params(first)["play"] == [{"type": "tts", "params": {"text": "Hello!"}}]
    assert params(second)["play"] == [
        {"type": "audio", "params": {"url": "https://example.com/audio.mp3"}}
    ]
    control = {"control_id": params(second)["control_id"]}
    assert [params(f) for f in (pause, resume, stop)] == [control] * 3
    assert params(volume) == control | {"volume": 5.0}


async def test_recording_snippet(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = await run_snippet(relay_server, "guide_recording")
    assert methods(fake) == [
        "calling.answer",
        "calling.record",
        "calling.record.pause",
        "calling.record.resume",
        "calling.record.stop",
        "calling.end",
    ]
    record = params(fake.requests[1])
    assert record["record"] == {"audio": {"direction": "both", "format": "mp3"}}
    url = f"https://fake-relay.invalid/recordings/{record['control_id']}.mp3"
    assert f"Recording URL: {url}\n" in capsys.readouterr().out


async def test_input_collection_snippet(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async def press(fake: FakeCall) -> None:
        fake.script_digits("4321", terminator="#")
        fake.script_speech("support")

    fake = await run_snippet(relay_server, "guide_input_collection", press)
    assert methods(fake) == [
        "calling.answer",
        "calling.play_and_collect",
        "calling.collect",
        "calling.end",
    ]
    prompt, collect = params(fake.requests[1]), params(fake.requests[2])
    assert prompt["play"] == [{"type": "tts", "params": {"text": "Enter your account number."}}]
    assert prompt["collect"] == {"digits": {"max": 10, "digit_timeout": 3.0, "terminators": "#"}}
    assert {k: v for k, v in collect.items() if k != "control_id"} == {
        "digits": {"max": 4, "digit_timeout": 5.0},
        "speech": {"end_silence_timeout": 2.0},
    }
    out = capsys.readouterr().out
    assert "Account number: 4321\n" in out
    assert "'text': 'support'" in out


async def test_detection_snippet(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async def machine(fake: FakeCall) -> None:
        fake.script_detect("MACHINE")

    fake = await run_snippet(relay_server, "guide_detection", machine)
    detect = params(fake.requests[1])
    assert detect["detect"] == {"type": "machine", "params": {"initial_timeout": 4.5}}
    assert detect["timeout"] == 30.0
    assert "Detected: MACHINE\n" in capsys.readouterr().out


async def test_bridging_snippet(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = await run_snippet(relay_server, "guide_bridging")
    assert methods(fake) == [
        "calling.answer",
        "calling.connect",
        "calling.disconnect",
        "calling.end",
    ]
    assert params(fake.requests[1]) == {
        "devices": [
            [
                {
                    "type": "phone",
                    "params": {"to_number": "+15559876543", "from_number": "+15551234567"},
                }
            ]
        ],
        "ringback": [{"type": "ringtone", "params": {"name": "us"}}],
    }
    out = capsys.readouterr().out
    assert out.splitlines() == ["Bridge: connecting", "Bridge: connected", "Bridge: disconnected"]


async def test_conference_snippet(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load("guide_conference")
    printed: list[str] = []

    def listen(client: RelayClient) -> None:
        def record(event: Any) -> None:
            module.print_conference_event(event)
            printed.append(event.params["status"])

        client.on("calling.conference", record)

    async def until_ended(fake: FakeCall) -> None:
        await fake.wait_for_state("ended")
        await eventually(lambda: len(printed) == 2)

    fake = await run_snippet(relay_server, "guide_conference", until_ended, listen)
    join, leave = params(fake.requests[1]), params(fake.requests[2])
    assert join == {"name": "team-standup", "muted": False, "beep": "true"}
    assert leave == {"conference_id": "conference-id-here"}  # unknown: a 404 no-op
    out = capsys.readouterr().out
    # The join's conference-level events reach client.on; leaving the made-up id did
    # nothing, and the hang-up took the call out of the conference (which then ended).
    assert out.splitlines() == [
        "Conference team-standup: conference-start",
        "Conference team-standup: conference-end",
    ]


async def test_hold_snippet(relay_server: FakeRelayServer) -> None:
    fake = await run_snippet(relay_server, "guide_hold")
    assert methods(fake) == [
        "calling.answer",
        "calling.hold",
        "calling.play",
        "calling.unhold",
        "calling.end",
    ]
    assert not fake.held


async def test_noise_reduction_snippet(relay_server: FakeRelayServer) -> None:
    fake = await run_snippet(relay_server, "guide_noise_reduction")
    assert methods(fake) == [
        "calling.answer",
        "calling.denoise",
        "calling.record",
        "calling.record.stop",
        "calling.denoise.stop",
        "calling.end",
    ]
    assert [params(f) for f in (fake.requests[1], fake.requests[4])] == [{}, {}]
    assert not fake.denoised


async def test_ai_snippet_waits_until_the_session_ends(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async def talk_then_hang_up(fake: FakeCall) -> None:
        await relay_server.wait_for_request("calling.ai")
        await anyio.sleep(0.05)
        assert "AI session over" not in capsys.readouterr().out
        await fake.remote_hangup()

    fake = await run_snippet(relay_server, "guide_ai", talk_then_hang_up)
    ai = params(fake.requests[1])
    assert {k: v for k, v in ai.items() if k != "control_id"} == {
        "prompt": {"text": "You are a helpful assistant."},
        "languages": [{"name": "English", "code": "en-US", "voice": "rime.spore"}],
    }
    assert "AI session over: finished\n" in capsys.readouterr().out


async def test_action_pattern_snippet(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = await run_snippet(relay_server, "guide_action_pattern")
    control_id = params(fake.requests[1])["control_id"]
    assert capsys.readouterr().out.splitlines() == [
        f"Play started, control_id={control_id}",
        "Play finished: finished",
    ]


async def test_on_completed_snippet(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    relay_server.play_duration = 0.05
    seen: list[str] = []

    async def hang_up_after_the_play(fake: FakeCall) -> None:
        await relay_server.wait_for_request("calling.play")
        with anyio.fail_after(10):  # a failure detector only
            while "Play finished" not in "".join(seen):
                seen.append(capsys.readouterr().out)
                await anyio.sleep(0.01)
        await fake.remote_hangup()

    await run_snippet(relay_server, "guide_on_completed", hang_up_after_the_play)
    assert "Play finished: finished\n" in "".join(seen)


async def test_event_listeners_snippet(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async def hang_up_after_the_play(fake: FakeCall) -> None:
        await eventually(lambda: len(relay_server.sent_events("calling.call.play")) == 2)
        await fake.remote_hangup()

    await run_snippet(relay_server, "guide_event_listeners", hang_up_after_the_play)
    assert capsys.readouterr().out.splitlines() == [
        "Call state: answered",
        "Play state: playing",
        "Play state: finished",
        "Call state: ending",
        "Call state: ended",
    ]


async def test_action_streams_example_menu(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/action_streams.py: the partial results as they come, a scoped listener,
    the call followed to its end."""
    clients: list[RelayClient] = []

    async def speak_once_it_listens(fake: FakeCall) -> None:
        fake.hold_input()
        fake.script_speech("I need support please")
        # The caller speaks once the example iterates its collect (its stream is open).
        await eventually(
            lambda: any(call._streams for c in clients for call in c._router.calls.values())
        )
        await fake.give_input()

    fake = await run_snippet(relay_server, "action_streams", speak_once_it_listens, clients.append)
    assert capsys.readouterr().out.splitlines() == [
        "heard so far: I",
        "heard so far: I need",
        "heard so far: I need support",
        "heard: 'i need support please' -> support",
        "prompt playing",
        "prompt finished",
        "call ending",
        "call ended",
    ]
    assert methods(fake) == [
        "calling.answer",
        "calling.play_and_collect",
        "calling.play",
        "calling.end",
    ]
    assert params(fake.requests[2])["play"] == [
        {"type": "tts", "params": {"text": "Connecting you to support."}}
    ]


async def test_action_streams_example_call_back(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """``call_back`` dials with ``listeners=``: it sees the leg from ``created`` on, even
    when RELAY announces the leg before it answers the dial."""
    relay_server.script_dial(["answer"], early_states=True)
    module = load("action_streams")
    async with make_client(relay_server) as client:
        await module.call_back(client, "+15559876543", "+15551234567")
    assert capsys.readouterr().out.splitlines()[:3] == [
        "leg created",
        "leg ringing",
        "leg answered",
    ]
    [dial] = relay_server.received("calling.dial")
    [leg] = [call for call in relay_server.calls.values() if call.requests]
    assert methods(leg) == ["calling.play", "calling.end"]
    assert dial["params"]["devices"][0][0]["params"]["to_number"] == "+15559876543"


async def test_error_handling_snippet(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load("guide_error_handling")
    relay_server.script_dial(["busy"])
    async with make_client(relay_server) as client:
        await module.place_call(client)
        await module.place_call(client)
    failed, answered = capsys.readouterr().out.splitlines()
    [first, second] = relay_server.received("calling.dial")
    assert failed == f"RELAY error -1: Dial failed (tag={first['params']['tag']}): busy"
    assert answered.startswith("Call answered: ")
    assert second["params"]["devices"] == [[module.DEVICE]]
    called = relay_server.calls[answered.split(": ")[1]]
    await relay_server.wait_until(lambda: called.state == "ended")  # follows the hangup's answer


# -- programs, as processes over TLS ---------------------------------------------------------


async def interrupt(process: Process, server: FakeRelayServer) -> str:
    """Ctrl+C, as a user stops a serving program; it must exit 0 quickly.

    First wait until the program has acked every event: a call the server considers
    ended but whose end the program has not read yet is still being handled, and
    shutdown rightly hangs it up (an extra ``calling.end`` the assertions would see).
    """
    await server.wait_until(
        lambda: not server.unacked_events(), timeout=10, what="the program to ack every event"
    )
    process.send_signal(signal.SIGINT)
    assert process.stdout is not None
    out = b""
    with anyio.fail_after(20):  # a failure detector only: it takes well under 1 s
        async for chunk in process.stdout:
            out += chunk
        code = await process.wait()
    assert code == 0, out.decode()
    assert "Traceback" not in out.decode()
    return out.decode()


def open_example(name: str, env: dict[str, str]) -> AbstractAsyncContextManager[Process]:
    """Run ``examples/<name>`` until the block ends (then it is stopped for sure)."""
    return python_process(str(EXAMPLES / name), env=env, stderr=subprocess.STDOUT)


async def test_relay_hello_program(relay_server_tls: FakeRelayServer, env: dict[str, str]) -> None:
    async with open_example("relay_hello.py", env) as process:
        await relay_server_tls.wait_for_session(timeout=10)
        call = await relay_server_tls.offer_call()
        await call.wait_for_state("ended", timeout=10)
        await interrupt(process, relay_server_tls)
    assert methods(call) == ["calling.answer", "calling.play", "calling.end"]
    assert params(call.requests[1])["play"] == [
        {"type": "tts", "params": {"text": "Hello from RELAY!"}}
    ]
    assert call.states == ["created", "answered", "ending", "ended"]


async def test_relay_inbound_program_connects_to_support(
    relay_server_tls: FakeRelayServer, env: dict[str, str]
) -> None:
    async with open_example("relay_inbound.py", env) as process:
        await relay_server_tls.wait_for_session(timeout=10)
        call = await relay_server_tls.offer_call("ivr", from_number="+15557654321")
        call.script_digits("2")
        connect = await relay_server_tls.wait_for_request("calling.connect", timeout=10)
        await call.remote_hangup()  # the caller hangs up once bridged
        out = await interrupt(process, relay_server_tls)
    assert methods(call) == ["calling.answer", "calling.play", "calling.collect", "calling.connect"]
    assert params(call.requests[2]) == {
        "control_id": params(call.requests[2])["control_id"],
        "digits": {"max": 1, "digit_timeout": 5.0},
        "initial_timeout": 10.0,
    }
    assert connect["params"]["devices"] == [
        [{"type": "phone", "params": {"to_number": "+15552002000"}}]
    ]
    assert "Inbound call from {'type': 'phone', 'params': {'from_number': '+15557654321'" in out


async def test_relay_outbound_program(
    relay_server_tls: FakeRelayServer, env: dict[str, str]
) -> None:
    result = await anyio.run_process(
        [sys.executable, str(EXAMPLES / "relay_outbound.py")], env=env, check=False
    )
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    call_id = out.split("Call answered: ")[1].split()[0]
    call = relay_server_tls.calls[call_id]
    # The program returned with RELAY's answer to its calling.end; the fake's
    # ending -> ended follows that answer.
    await relay_server_tls.wait_until(lambda: call.state == "ended")
    assert methods(call) == ["calling.play", "calling.end"]
    assert call.states == ["created", "ringing", "answered", "ending", "ended"]
    [dial] = relay_server_tls.received("calling.dial")
    assert dial["params"]["devices"] == [
        [
            {
                "type": "phone",
                "params": {
                    "from_number": "+15551234567",
                    "to_number": "+15559876543",
                    "timeout": 30,
                },
            }
        ]
    ]


async def test_relay_ivr_program_voicemail_and_sales(
    relay_server_tls: FakeRelayServer, env: dict[str, str]
) -> None:
    relay_server_tls.record_duration = 0.05  # the voicemail ends on silence
    async with open_example("relay_ivr.py", env) as process:
        await relay_server_tls.wait_for_session(timeout=10)
        voicemail = await relay_server_tls.offer_call("main-ivr")
        voicemail.script_digits("3")
        await voicemail.wait_for_state("ended", timeout=10)
        sales = await relay_server_tls.offer_call("main-ivr")
        sales.script_digits("1")
        await sales.wait_for_state("ended", timeout=10)
        await interrupt(process, relay_server_tls)
    assert methods(voicemail) == [
        "calling.answer",
        "calling.record",
        "calling.play_and_collect",
        "calling.play",
        "calling.record",
        "calling.record.stop",
        "calling.end",
    ]
    whole, prompt, beep, message, stop = (params(f) for f in voicemail.requests[1:6])
    assert whole["record"] == {"audio": {"direction": "both", "format": "mp3"}}
    assert [m["params"]["text"] for m in prompt["play"]] == [
        "Welcome to Acme Corp.",
        "Press 1 for sales, 2 for support, or 3 to leave a message.",
    ]
    assert beep["play"] == [
        {"type": "tts", "params": {"text": "Please leave your message after the beep."}},
        {"type": "audio", "params": {"url": "https://example.com/beep.wav"}},
    ]
    assert message["record"] == {
        "audio": {"direction": "listen", "format": "mp3", "end_silence_timeout": 3.0}
    }
    assert stop == {"control_id": whole["control_id"]}
    assert methods(sales) == [
        "calling.answer",
        "calling.record",
        "calling.play_and_collect",
        "calling.play",
        "calling.connect",
        "calling.record.stop",
        "calling.end",
    ]
    assert params(sales.requests[4])["devices"] == [
        [{"type": "phone", "params": {"to_number": "+15551001000", "from_number": "+15550000000"}}]
    ]
    assert texts(relay_server_tls)[-1] == "Connecting you to sales."


async def test_a_snippet_program_runs_as_written(
    relay_server_tls: FakeRelayServer, env: dict[str, str]
) -> None:
    async with open_example("guide_event_listeners.py", env) as process:
        await relay_server_tls.wait_for_session(timeout=10)
        call = await relay_server_tls.offer_call()
        await relay_server_tls.wait_until(
            lambda: len(relay_server_tls.sent_events("calling.call.play")) == 2, timeout=10
        )
        await call.remote_hangup()
        out = await interrupt(process, relay_server_tls)
    assert out.splitlines()[:5] == [
        "Call state: answered",
        "Play state: playing",
        "Play state: finished",
        "Call state: ending",
        "Call state: ended",
    ]
