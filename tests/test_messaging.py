"""SMS/MMS against the fake server: states, races, errors, inbound, expiry, load."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import anyio
import pytest

from relay_anyio import (
    EVENT_MESSAGING_STATE,
    MESSAGE_STATE_DELIVERED,
    Message,
    MessageExpired,
    RelayError,
    RelayEvent,
)
from relay_anyio.testing import FakeRelayServer, HandlerContext, messaging_send, script_message
from relay_anyio.testing._scripts import Outcome

from .helpers import make_client, messages

pytestmark = pytest.mark.anyio

TO, FROM = "+15559876543", "+15551234567"


async def test_send_and_wait_for_delivery(relay_server: FakeRelayServer) -> None:
    async with make_client(relay_server) as client:
        message = await client.send_message(
            to_number=TO, from_number=FROM, body="Hello from SignalWire RELAY!"
        )
        assert message.state == "queued"
        assert message.direction == "outbound"
        result = await message.wait(timeout=2)
        assert message.state == MESSAGE_STATE_DELIVERED
        assert result.params["message_state"] == "delivered"
        assert message.is_done
        protocol = client.relay_protocol
    [request] = relay_server.received("messaging.send")
    assert request["params"] == {
        "context": protocol,
        "to_number": TO,
        "from_number": FROM,
        "body": "Hello from SignalWire RELAY!",
    }


async def test_mms_with_media_tags_region_and_context(relay_server: FakeRelayServer) -> None:
    async with make_client(relay_server) as client:
        message = await client.send_message(
            to_number=TO,
            from_number=FROM,
            media=["https://example.com/photo.jpg"],
            tags=["vip"],
            region="us",
            context="default",
        )
        await message.wait(timeout=2)
        assert message.media == ["https://example.com/photo.jpg"]
        assert message.tags == ["vip"]
    [request] = relay_server.received("messaging.send")
    assert request["params"] == {
        "context": "default",
        "to_number": TO,
        "from_number": FROM,
        "media": ["https://example.com/photo.jpg"],
        "tags": ["vip"],
        "region": "us",
    }


@pytest.mark.parametrize(
    ("outcome", "reason"), [("undelivered", "carrier_blocked"), ("failed", "invalid_number")]
)
async def test_failure_states_carry_their_reason(
    relay_server: FakeRelayServer, outcome: Any, reason: str
) -> None:
    script_message(relay_server, outcome, reason=reason)
    async with make_client(relay_server) as client:
        message = await client.send_message(to_number=TO, from_number=FROM, body="hi")
        result = await message.wait(timeout=2)
    assert (message.state, message.reason) == (outcome, reason)
    assert result.params["message_state"] == outcome
    assert result.params["reason"] == reason


async def test_state_events_overtaking_the_response_are_not_lost(
    relay_server: FakeRelayServer,
) -> None:
    script_message(relay_server, "delivered", early_events=3)  # every state before the response
    seen: list[str] = []
    completed: list[RelayEvent] = []
    async with make_client(relay_server) as client:
        message = await client.send_message(
            to_number=TO, from_number=FROM, body="race", on_completed=completed.append
        )
        # The held events were applied while send_message took the response: the
        # message is final when it is returned, and its on_completed has run.
        assert message.is_done
        assert message.state == "delivered"
        assert [e.params["message_state"] for e in completed] == ["delivered"]
        message.on(lambda event: seen.append(event.params["message_state"]))
        result = await message.wait(timeout=2)
        assert result is completed[0]
        assert result.params["message_id"] == message.message_id
    assert seen == []  # nothing was delivered twice to a listener added afterwards


async def test_listener_and_on_completed(relay_server: FakeRelayServer) -> None:
    script_message(relay_server, "delivered", delay=0.01)
    listening = anyio.Event()

    async def send_once_listened(ctx: HandlerContext, params: dict[str, Any]) -> dict[str, Any]:
        # The states follow once the test listens (a listener misses those before it),
        # not 0.01 s after the answer, which a busy machine can let pass first.
        ctx.then(listening.wait)
        return await messaging_send(ctx, params)

    relay_server.set_handler("messaging.send", send_once_listened)
    seen: list[str] = []
    completed: list[str] = []
    done = anyio.Event()

    async def on_done(event: RelayEvent) -> None:
        completed.append(event.params["message_state"])
        done.set()

    async with make_client(relay_server) as client:
        message = await client.send_message(
            to_number=TO, from_number=FROM, body="hi", on_completed=on_done
        )
        message.on(lambda event: seen.append(event.params["message_state"]))
        listening.set()
        with anyio.fail_after(10):
            await done.wait()
    assert seen == ["initiated", "sent", "delivered"]
    assert completed == ["delivered"]


async def test_neither_body_nor_media_is_refused_before_sending(
    relay_server: FakeRelayServer,
) -> None:
    async with make_client(relay_server) as client:
        with pytest.raises(ValueError, match="body or media"):
            await client.send_message(to_number=TO, from_number=FROM)
    assert relay_server.received("messaging.send") == []


async def test_server_errors_raise(relay_server: FakeRelayServer) -> None:
    async with make_client(relay_server) as client:
        relay_server.fail_next("messaging.send", code="402", message="Payment required")
        with pytest.raises(RelayError) as info:
            await client.send_message(to_number=TO, from_number=FROM, body="hi")
        assert (info.value.code, info.value.message) == (402, "Payment required")
        # The fake's own validation: a bad number is a 400.
        with pytest.raises(RelayError) as info:
            await client.send_message(to_number="", from_number="+1555", body="hi")
        assert info.value.code == 400


async def test_message_that_never_finishes_expires(relay_server: FakeRelayServer) -> None:
    script_message(relay_server, "stall")
    async with make_client(relay_server, message_ttl=0.2) as client:
        message = await client.send_message(to_number=TO, from_number=FROM, body="into the void")
        with anyio.fail_after(10), pytest.raises(MessageExpired) as info:
            await message.wait()
        assert message.message_id in info.value.message
        assert (info.value.message_id, info.value.ttl) == (message.message_id, 0.2)
        assert message.state == "sent"
        assert len(client._router.messages) == 0


async def test_wait_timeout_keeps_tracking(relay_server: FakeRelayServer) -> None:
    script_message(relay_server, "stall")  # delivered when the test says, below
    async with make_client(relay_server) as client:
        message = await client.send_message(to_number=TO, from_number=FROM, body="slow")
        with pytest.raises(TimeoutError):
            await message.wait(timeout=0.01)
        # Later, RELAY reports it delivered.
        await relay_server.wait_until(
            lambda: len(relay_server.sent_events(EVENT_MESSAGING_STATE)) == 2
        )
        sent = relay_server.sent_events(EVENT_MESSAGING_STATE)[-1]["params"]["params"]
        [session] = relay_server.sessions
        await session.emit(EVENT_MESSAGING_STATE, {**sent, "message_state": "delivered"})
        assert (await message.wait(timeout=10)).params["message_state"] == "delivered"


async def test_inbound_mms(relay_server: FakeRelayServer) -> None:
    received: list[Message] = []
    done = anyio.Event()
    client = make_client(relay_server)

    @client.on_message
    async def handle_message(message: Message) -> None:
        received.append(message)
        done.set()

    async with client:
        sent = await relay_server.offer_message(
            body="Check this out",
            media=["https://example.com/photo.jpg"],
            from_number="+15553333333",
            tags=["t1"],
        )
        with anyio.fail_after(10):
            await done.wait()
    [message] = received
    assert message.message_id == sent["message_id"]
    assert (message.from_number, message.body, message.media) == (
        "+15553333333",
        "Check this out",
        ["https://example.com/photo.jpg"],
    )
    assert (message.direction, message.state, message.segments, message.tags) == (
        "inbound",
        "received",
        2,
        ["t1"],
    )


async def test_slow_or_failing_message_handlers_delay_nothing(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    release = anyio.Event()
    bodies: list[str] = []
    third = anyio.Event()
    client = make_client(relay_server)

    @client.on_message
    async def handle(message: Message) -> None:
        bodies.append(message.body)
        if message.body == "slow":
            await release.wait()
        elif message.body == "boom":
            raise RuntimeError("handler bug")
        else:
            third.set()

    async with client:
        for body in ("slow", "boom", "fast"):
            await relay_server.offer_message(body=body)
        with anyio.fail_after(10):
            await third.wait()
        release.set()
    assert bodies == ["slow", "boom", "fast"]
    assert any("on_message handler failed" in m for m in messages(caplog))


@pytest.mark.timeout(180)  # CPU-bound (3 s idle, 12 s seen loaded): only a hang fails
async def test_500_concurrent_messages_get_their_own_final_state(
    relay_server: FakeRelayServer,
) -> None:
    outcomes: list[Outcome] = ["delivered", "undelivered", "failed"]

    async def handler(ctx: HandlerContext, params: dict[str, Any]) -> dict[str, Any]:
        n = int(params["body"].split()[1])
        script_message(
            ctx.server,
            outcomes[n % 3],
            reason=f"r{n}",
            delay=random.random() * 0.01,
            early_events=n % 2,
        )
        return await messaging_send(ctx, params)

    relay_server.set_handler("messaging.send", handler)
    finals: dict[int, tuple[str, str]] = {}
    # 500 sends queue up in the fake server's Python handlers: the last answer can take
    # over 10 s on a loaded machine (12 s seen); timing is not the subject.
    async with make_client(relay_server, request_timeout=60.0) as client:

        async def send(n: int) -> None:
            message = await client.send_message(to_number=TO, from_number=FROM, body=f"message {n}")
            event = await message.wait(timeout=60)
            assert event.params["message_id"] == message.message_id
            finals[n] = (message.state, message.reason)

        async with anyio.create_task_group() as tg:
            for n in range(500):
                tg.start_soon(send, n)
        assert len(client._router.messages) == 0
    assert finals == {n: (outcomes[n % 3], "" if n % 3 == 0 else f"r{n}") for n in range(500)}


async def test_no_handler_logs_the_drop(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with make_client(relay_server):
        sent = await relay_server.offer_message(body="nobody home")
        await relay_server.wait_until(
            lambda: sent["message_id"] in " ".join(messages(caplog)), what="the drop to be logged"
        )


async def test_a_late_scheduler_still_delivers_one_messages_states_in_order(
    relay_server: FakeRelayServer,
) -> None:
    """Regression (seen on a loaded machine): the fake server ran each delayed state of
    a message in its own timer task; when the loop was late, every timer was due at
    once and trio, which wakes tasks in random order, could send ``sent`` before
    ``initiated``. Blocking the loop on purpose makes all of them due together."""
    for _ in range(8):
        script_message(relay_server, "delivered", delay=0.01)
    async with make_client(relay_server) as client:
        for _ in range(8):
            message = await client.send_message(to_number=TO, from_number=FROM, body="hi")
            seen: list[str] = []

            def record(event: RelayEvent, seen: list[str] = seen) -> None:
                seen.append(event.params["message_state"])

            message.on(record)
            time.sleep(0.1)  # noqa: ASYNC251  the late loop this test is about
            with anyio.fail_after(30):
                await message.wait()
            assert seen == ["initiated", "sent", "delivered"]
