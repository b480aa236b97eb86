"""Behaviours a mutation pass showed no test pinned; each test fails when one breaks."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest

import relay_anyio._constants as constants
from relay_anyio import (
    EVENT_CALL_PLAY,
    Call,
    CallEnded,
    ConnectionLost,
    RelayError,
    RelayEvent,
)
from relay_anyio._redact import redact_frame
from relay_anyio.testing import FakeRelayServer, HandlerContext, ok
from relay_anyio.testing._calls import FakeCall

from .helpers import eventually, make_client

pytestmark = pytest.mark.anyio

JSON = dict[str, Any]


async def test_a_wait_for_already_waiting_when_the_call_ends_raises_call_ended(
    relay_server: FakeRelayServer,
) -> None:
    outcome: list[CallEnded] = []
    waiting = anyio.Event()
    client = make_client(relay_server)

    @client.on_call
    async def handle(call: Call) -> None:
        await call.answer()
        waiting.set()
        try:
            await call.wait_for(EVENT_CALL_PLAY)  # never comes: the call ends first
        except CallEnded as exc:
            outcome.append(exc)

    async with client:
        fake = await relay_server.offer_call()
        with anyio.fail_after(10):
            await waiting.wait()
        await fake.remote_hangup("busy")
        await eventually(lambda: outcome, timeout=10)
    [error] = outcome
    assert (error.call_id, error.end_reason) == (fake.call_id, "busy")


async def _never_sleep(seconds: float) -> None:
    raise AssertionError(f"backoff of {seconds} s where a reconnect at once was due")


async def test_after_disconnect_the_client_reconnects_at_once_though_the_server_never_closes(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.disconnect_close_delay = None  # the server never closes the socket
    client = make_client(relay_server, reconnect_min_delay=30.0, reconnect_max_delay=30.0)
    client._session.sleep = _never_sleep
    async with client:
        await relay_server.send_disconnect()
        await relay_server.wait_until(lambda: relay_server.connections == 2)
        await client.execute("test.ok", {})
    assert 1 in relay_server.close_codes and relay_server.close_codes[1] == 1000  # we closed it
    assert len(relay_server.received("signalwire.connect")) == 2


async def test_after_disconnect_requests_in_flight_get_the_grace_then_the_link_closes(
    relay_server: FakeRelayServer,
) -> None:
    """A request the server never answers keeps the old link for ``disconnect_grace``,
    then fails with ConnectionLost, and the client reconnects at once (no backoff)."""
    relay_server.disconnect_close_delay = None
    client = make_client(relay_server, reconnect_min_delay=30.0, reconnect_max_delay=30.0)
    session = client._session
    session.options = attrs.evolve(session.options, disconnect_grace=0.3)
    session.sleep = _never_sleep
    relay_server.withhold_next("test.ok")
    outcome: list[BaseException] = []
    async with client, anyio.create_task_group() as tg:

        async def in_flight() -> None:
            try:
                await client.execute("test.ok", {}, timeout=30)
            except RelayError as exc:
                outcome.append(exc)

        tg.start_soon(in_flight)
        await relay_server.wait_for_request("test.ok")
        asked = anyio.current_time()
        await relay_server.send_disconnect()
        await eventually(lambda: outcome, timeout=20)
        assert anyio.current_time() - asked >= 0.3  # the request had its grace
        await relay_server.wait_until(lambda: relay_server.connections == 2)
        await client.execute("test.ok", {})
    [error] = outcome
    assert isinstance(error, ConnectionLost)


def test_a_frame_that_is_not_json_loses_its_secrets_in_the_log() -> None:
    broken = '{"jsonrpc":"2.0","params":{"authentication":{"token":"PT-s3cr3t-value","pro'
    assert "PT-s3cr3t-value" not in redact_frame(broken)  # key-shaped pair
    echoed = "error: project proj-1234-abcd is not allowed (truncated"
    assert "proj-1234-abcd" not in redact_frame(echoed, ["proj-1234-abcd"])  # live secret
    assert "is not allowed" in redact_frame(echoed, ["proj-1234-abcd"])


async def test_secrets_in_a_broken_frame_stay_out_of_the_debug_log(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="relay_anyio.frames")
    async with make_client(relay_server) as client:
        await relay_server.send_raw('{"token": "leaked-token-1", "oops": ')
        await relay_server.send_raw(f"server echoes {relay_server.token} and breaks")
        await client.execute("test.ok", {})  # both frames have been read
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "oops" in text and "echoes" in text  # the frames were logged...
    assert "leaked-token-1" not in text  # ...without the secrets
    assert relay_server.token not in text


async def test_a_dial_answered_by_a_leg_never_announced_still_returns_a_call(
    relay_server: FakeRelayServer,
) -> None:
    async def answer_at_once(ctx: HandlerContext, params: JSON) -> JSON:
        device = params["devices"][0][0]
        leg = FakeCall.register(
            ctx.server, ctx.session, direction="outbound", device=device, tag=params["tag"]
        )
        leg.state = "answered"
        leg.states.extend(("created", "answered"))
        info = {
            "call_id": leg.call_id,
            "node_id": leg.node_id,
            "tag": params["tag"],
            "device": device,
        }
        ctx.emit(
            "calling.call.dial",
            {"tag": params["tag"], "node_id": leg.node_id, "dial_state": "answered", "call": info},
        )
        return ok("Dialing")

    relay_server.set_handler("calling.dial", answer_at_once)
    device = {"type": "phone", "params": {"to_number": "+15551112222", "from_number": "+1555"}}
    async with make_client(relay_server) as client:
        call = await client.dial([[device]], timeout=10)
        assert isinstance(call, Call)
        assert call.state == "answered"
        assert call.direction == "outbound"
        [leg] = relay_server.calls.values()
        assert (call.call_id, call.node_id) == (leg.call_id, leg.node_id)
        await call.hangup()  # the call works: the server knows it
        await call.wait_for_ended(timeout=10)
    assert leg.states[-1] == "ended"


async def test_max_active_calls_counts_every_live_call_dialled_legs_included(
    relay_server: FakeRelayServer,
) -> None:
    """Decided (as the official client): every live call occupies a slot -- an
    inbound call until it ends, even after its handler returned, and a dialled leg;
    the limit is applied to inbound offers."""
    held = anyio.Event()
    client = make_client(relay_server, max_active_calls=2)

    @client.on_call
    async def answer_and_return(call: Call) -> None:
        await call.answer()
        held.set()  # and return: the call stays up, and keeps its slot

    device = {"type": "phone", "params": {"to_number": "+15551112222", "from_number": "+1555"}}
    async with client:
        dialled = await client.dial([[device]], timeout=10)
        first = await relay_server.offer_call()
        with anyio.fail_after(10):
            await held.wait()
        assert client.active_calls == 2
        second = await relay_server.offer_call()
        await relay_server.wait_until(
            lambda: any(r["method"] == "calling.pass" for r in second.requests)
        )
        await dialled.hangup()
        await dialled.wait_for_ended(timeout=10)
        third = await relay_server.offer_call()  # a slot is free again
        await third.wait_for_state("answered")
        await first.remote_hangup()
        await third.remote_hangup()
    assert [r["method"] for r in second.requests] == ["calling.pass"]


async def test_the_acks_of_a_read_are_written_before_any_of_its_events_is_routed(
    relay_server: FakeRelayServer,
) -> None:
    """A routing step (a plain listener runs inside it) records which acks the
    client had written by then: every event of the batch is acked already."""
    relay_server.stamp_events = True
    written: list[str] = []
    seen: list[tuple[int, frozenset[str]]] = []
    client = make_client(relay_server)

    def on_custom(event: RelayEvent) -> None:
        seen.append((event.params[FakeRelayServer.EVENT_SEQ_KEY], frozenset(written)))

    client.on("test.custom", on_custom)
    async with client:
        ws = client._session._conn.ws  # type: ignore[union-attr]
        send_texts = ws.send_texts

        async def recording_send_texts(texts: list[str]) -> None:
            written.extend(json.loads(t)["id"] for t in texts if '"result"' in t)
            await send_texts(texts)

        ws.send_texts = recording_send_texts  # type: ignore[method-assign]
        session = await relay_server.wait_for_session()
        await session.emit_many([("test.custom", {"n": n}) for n in range(20)])
        await eventually(lambda: len(seen) == 20)
    ids = {
        frame["params"]["params"][FakeRelayServer.EVENT_SEQ_KEY]: frame["id"]
        for frame in relay_server.sent_events("test.custom")
    }
    for seq, acked in seen:
        assert ids[seq] in acked, f"event {seq} was routed before its ack was written"


#: The wire names, written out from the reference (§3, §6, §12, §13), not imported:
#: client and fake server share ``_constants.py``, so a typo there would pass the
#: rest of the suite.
WIRE_NAMES = {
    "METHOD_SIGNALWIRE_CONNECT": "signalwire.connect",
    "METHOD_SIGNALWIRE_EVENT": "signalwire.event",
    "METHOD_SIGNALWIRE_PING": "signalwire.ping",
    "METHOD_SIGNALWIRE_DISCONNECT": "signalwire.disconnect",
    "METHOD_SIGNALWIRE_RECEIVE": "signalwire.receive",
    "METHOD_SIGNALWIRE_UNRECEIVE": "signalwire.unreceive",
    "EVENT_AUTHORIZATION_STATE": "signalwire.authorization.state",
    "EVENT_CALL_STATE": "calling.call.state",
    "EVENT_CALL_RECEIVE": "calling.call.receive",
    "EVENT_CALL_CONNECT": "calling.call.connect",
    "EVENT_CALL_PLAY": "calling.call.play",
    "EVENT_CALL_COLLECT": "calling.call.collect",
    "EVENT_CALL_RECORD": "calling.call.record",
    "EVENT_CALL_DETECT": "calling.call.detect",
    "EVENT_CALL_FAX": "calling.call.fax",
    "EVENT_CALL_TAP": "calling.call.tap",
    "EVENT_CALL_SEND_DIGITS": "calling.call.send_digits",
    "EVENT_CALL_DIAL": "calling.call.dial",
    "EVENT_CALL_REFER": "calling.call.refer",
    "EVENT_CALL_DENOISE": "calling.call.denoise",
    "EVENT_CALL_PAY": "calling.call.pay",
    "EVENT_CALL_QUEUE": "calling.call.queue",
    "EVENT_CALL_STREAM": "calling.call.stream",
    "EVENT_CALL_ECHO": "calling.call.echo",
    "EVENT_CALL_TRANSCRIBE": "calling.call.transcribe",
    "EVENT_CALL_HOLD": "calling.call.hold",
    "EVENT_CALL_AI": "calling.call.ai",
    "EVENT_CONFERENCE": "calling.conference",
    "EVENT_CALLING_ERROR": "calling.error",
    "EVENT_MESSAGING_RECEIVE": "messaging.receive",
    "EVENT_MESSAGING_STATE": "messaging.state",
    "EVENT_TASK": "queuing.relay.tasks",
}


def test_event_and_method_names_are_the_wire_names() -> None:
    defined = {
        name: value
        for name, value in vars(constants).items()
        if name.startswith(("EVENT_", "METHOD_")) and isinstance(value, str)
    }
    assert defined == WIRE_NAMES
