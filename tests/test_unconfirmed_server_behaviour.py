"""The client is right whichever way the server behaves where the reference is unsure.

Each test runs against every setting of the fake server's switch for one UNCONFIRMED
behaviour (``relay_anyio/testing/_switches.py``) and asserts what the client did:
redelivery of unacked events on resume (§8.2), action terminal events relative to
``ended`` (§12.7), where a recording's URL sits (§12.7), and how invalid requests
are refused (§17.5).
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from relay_anyio import EVENT_CALL_STATE, Call, RelayClient, RelayError, RelayEvent
from relay_anyio.testing import FakeRelayServer

from .helpers import make_client

pytestmark = pytest.mark.anyio


async def _handled_call(
    relay_server: FakeRelayServer, client: RelayClient, body: Any
) -> tuple[Any, anyio.Event, list[Any]]:
    """Offer a call whose handler answers, then runs ``body(call, out)``."""
    out: list[Any] = []
    done = anyio.Event()
    answered = anyio.Event()

    @client.on_call
    async def handle(call: Call) -> None:
        await call.answer()
        await call.wait_for_answered()
        answered.set()
        try:
            await body(call, out)
        finally:
            done.set()

    fake = await relay_server.offer_call()
    with anyio.fail_after(20):
        await answered.wait()
    return fake, done, out


@pytest.mark.parametrize("redeliver", [True, False], ids=["redelivered", "not-redelivered"])
async def test_a_call_that_ended_while_the_link_was_down_ends_here_too(
    relay_server: FakeRelayServer, redeliver: bool
) -> None:
    """Its waits finish and its listeners get ``ended`` with or without redelivery:
    redelivered, the real event (``hangup``); not, the resume probe finds the call
    gone and ends it (``gone``). Nothing twice."""
    relay_server.redeliver_on_resume = redeliver
    client = make_client(relay_server)
    gate = anyio.Event()

    async def held_back(seconds: float) -> None:
        await gate.wait()  # the client stays away until the call has ended

    client._session.sleep = held_back
    states: list[str] = []
    playing = anyio.Event()

    async def body(call: Call, out: list[Any]) -> None:
        call.on(EVENT_CALL_STATE, lambda e: states.append(e.params["call_state"]))
        play = await call.play_tts("hold on")
        playing.set()
        out.append(await call.wait_for_ended())
        out.append(await play.wait())

    relay_server.play_duration = 60
    async with client:
        fake, done, out = await _handled_call(relay_server, client, body)
        with anyio.fail_after(20):
            await playing.wait()
        await relay_server.drop_connection()
        await fake.remote_hangup()  # sent while no connection is attached
        gate.set()
        with anyio.fail_after(20):
            await done.wait()
        assert client.active_calls == 0
    ended, played = out
    reason = "hangup" if redeliver else "gone"
    assert ended.params["end_reason"] == reason
    after_answer = [state for state in states if state != "answered"]
    assert after_answer == (["ending", "ended"] if redeliver else ["ended"])
    if redeliver:
        assert played.params["state"] == "finished"  # its own event, redelivered
    else:
        assert played.params["state"] == "call_ended"  # lost with the link: the call's end
    probes = [r for r in fake.requests if r["method"] == "calling.clear_digit_bindings"]
    assert len(probes) == (0 if redeliver else 1)


@pytest.mark.parametrize("redeliver", [True, False], ids=["redelivered", "not-redelivered"])
async def test_a_live_call_survives_the_resume_probe(
    relay_server: FakeRelayServer, redeliver: bool
) -> None:
    relay_server.redeliver_on_resume = redeliver
    client = make_client(relay_server)

    async def body(call: Call, out: list[Any]) -> None:
        out.append(call)
        await call.wait_for_ended()

    async with client:
        fake, done, out = await _handled_call(relay_server, client, body)
        await relay_server.drop_connection()
        await relay_server.wait_until(
            lambda: any(r["method"] == "calling.clear_digit_bindings" for r in fake.requests)
        )
        await client.execute("test.ok", {})  # the probe's answer is in
        [call] = out
        assert call.state == "answered"
        play = await call.play_tts("still here")
        assert (await play.wait(timeout=10)).params["state"] == "finished"
        await fake.remote_hangup()
        with anyio.fail_after(10):
            await done.wait()
    [probe] = [r for r in fake.requests if r["method"] == "calling.clear_digit_bindings"]
    assert probe["params"]["realm"] == "relay-anyio-probe"


@pytest.mark.parametrize("location", ["both", "top", "record"])
@pytest.mark.parametrize("when", ["before_ended", "after_ended", "never"])
async def test_a_recording_running_at_the_call_end_keeps_its_url(
    relay_server: FakeRelayServer, when: str, location: str
) -> None:
    """The terminal record event before ``ended``, after it (within the grace), or
    never; its URL at the top level, inside ``record``, or both."""
    relay_server.action_end_on_call_end = when  # type: ignore[assignment]
    relay_server.late_action_delay = 0.1
    relay_server.record_url_location = location  # type: ignore[assignment]
    client = make_client(relay_server, late_result_grace=5.0)
    completed: list[RelayEvent] = []

    async def body(call: Call, out: list[Any]) -> None:
        recording = await call.record(audio={"format": "wav"}, on_completed=completed.append)
        out.append(recording)
        out.append(await recording.wait())

    async with client:
        fake, done, out = await _handled_call(relay_server, client, body)
        await relay_server.wait_for_request("calling.record")
        await fake.remote_hangup()
        with anyio.fail_after(20):
            await done.wait()
    recording, result = out
    expected = f"https://fake-relay.invalid/recordings/{recording.control_id}.wav"
    if when == "never":
        assert result.params["state"] == "call_ended"
        assert recording.call_ended
        assert recording.url == recording.start_result.get("url", "")
    else:
        assert result.params["state"] == "finished"
        assert not recording.call_ended
        assert recording.url == expected
        assert result.url == expected
        assert result.params["record"]["url"] == expected  # the guide's lookup, any shape
    assert [e.params["state"] for e in completed] == [result.params["state"]]


async def test_a_late_result_after_the_grace_is_not_waited_for(
    relay_server: FakeRelayServer,
) -> None:
    """A grace is a bound: a record event later than it finds the wait already done."""
    relay_server.action_end_on_call_end = "after_ended"
    relay_server.late_action_delay = 2.0
    client = make_client(relay_server, late_result_grace=0.2)

    async def body(call: Call, out: list[Any]) -> None:
        recording = await call.record(audio={"format": "wav"})
        out.append(await recording.wait())

    async with client:
        fake, done, out = await _handled_call(relay_server, client, body)
        await relay_server.wait_for_request("calling.record")
        await fake.remote_hangup()
        with anyio.fail_after(20):
            await done.wait()
        assert out[0].params["state"] == "call_ended"
        assert client.active_calls == 0
        await relay_server.wait_until(
            lambda: relay_server.sent_events("calling.call.record") != [], timeout=20
        )
        await client.execute("test.ok", {})  # the late event was read, and dropped


@pytest.mark.relay_violations_allowed("unknown method", "missing", "invalid")
@pytest.mark.parametrize("reply", ["jsonrpc_error", "result_400"])
async def test_an_invalid_request_is_a_relay_error_however_the_server_refuses_it(
    relay_server: FakeRelayServer, reply: str
) -> None:
    relay_server.invalid_request_reply = reply  # type: ignore[assignment]
    client = make_client(relay_server)

    async def body(call: Call, out: list[Any]) -> None:
        base = {"node_id": call.node_id, "call_id": call.call_id}
        for method, params in [
            ("calling.no_such_method", base),
            ("calling.play", {**base, "control_id": "c1"}),  # no "play"
            ("calling.record", base),  # no control_id, no "record"
        ]:
            try:
                await client.execute(method, params)
            except RelayError as exc:
                out.append((method, exc.code))
            else:
                out.append((method, "accepted"))

    async with client:
        fake, done, out = await _handled_call(relay_server, client, body)
        with anyio.fail_after(20):
            await done.wait()
        await fake.remote_hangup()
    codes = dict(out)
    assert "accepted" not in codes.values(), out
    if reply == "result_400":
        assert set(codes.values()) == {400}
    else:
        assert codes["calling.no_such_method"] == -32601
        assert codes["calling.play"] == codes["calling.record"] == -32602
