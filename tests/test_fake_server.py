"""The fake RELAY server, driven by a hand-written client over a real WebSocket.

No SDK client is involved: every frame is written out here, so these tests pin the
server's wire behaviour (what a client under test will see) independently of the
client code they will later exercise.
"""

from __future__ import annotations

import json
import re
import ssl
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from relay_anyio import ConnectionLost, TransportError
from relay_anyio._websocket import WebSocket, connect_websocket
from relay_anyio.testing import (
    AUTH_FAILED_CODE,
    AUTH_FAILED_ERROR_CODE,
    AUTH_FAILED_MESSAGE,
    NOT_AUTHENTICATED_CODE,
    FakeRelayServer,
    HandlerContext,
    JournalEntry,
    pytest_plugin,
)
from relay_anyio.testing._handlers_media import _finish_play

pytestmark = pytest.mark.anyio

# The plugin's fixtures, bound here rather than loaded as a plugin: this module must
# work whether or not the ``relay_anyio`` pytest11 entry point is installed, and a
# module-level fixture simply shadows the plugin's one of the same name.
relay_server = pytest_plugin.relay_server
relay_server_tls = pytest_plugin.relay_server_tls

JSONObject = dict[str, Any]
PROJECT_AUTH = {"project": "test-project", "token": "test-token"}
BLOB = re.compile(r"^[A-Za-z0-9+/]+=*:[A-Za-z0-9+/]+=*$")


class RawClient:
    """A client with no logic of its own: frames go out and come in as written."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self._inbox: deque[str | bytes] = deque()
        self._ids = 0

    async def send(self, frame: JSONObject) -> None:
        await self.ws.send_text(json.dumps(frame))

    async def request(self, method: str, params: JSONObject | None = None) -> str:
        self._ids += 1
        request_id = f"r{self._ids}"
        await self.send(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        )
        return request_id

    async def recv_raw(self) -> str | bytes:
        while not self._inbox:
            self._inbox.extend(await self.ws.receive_batch())
        return self._inbox.popleft()

    async def recv(self) -> JSONObject:
        frame = json.loads(await self.recv_raw())
        assert isinstance(frame, dict)
        return frame

    async def call(self, method: str, params: JSONObject | None = None) -> JSONObject:
        """Send a request; the next frame must be its response."""
        request_id = await self.request(method, params)
        response = await self.recv()
        assert response["id"] == request_id, response
        return response

    async def event(self, event_type: str | None = None, *, ack: bool = True) -> JSONObject:
        """The next frame, which must be an event; returns its inner params."""
        frame = await self.recv()
        assert frame["method"] == "signalwire.event", frame
        if event_type is not None:
            assert frame["params"]["event_type"] == event_type, frame
        if ack:
            await self.ack(frame)
        inner: JSONObject = frame["params"]["params"]
        return inner

    async def ack(self, frame: JSONObject) -> None:
        await self.send({"jsonrpc": "2.0", "id": frame["id"], "result": {}})

    async def connect(self, **params: Any) -> JSONObject:
        """``signalwire.connect`` with the official client's fields plus ``params``."""
        connect: JSONObject = {
            "version": {"major": 2, "minor": 0, "revision": 0},
            "agent": "relay-anyio-tests/0",
            "event_acks": True,
            "authentication": PROJECT_AUTH,
        }
        return await self.call("signalwire.connect", connect | params)

    async def authenticate(self, **params: Any) -> JSONObject:
        """Connect, then take and ack the authorization state; returns the result."""
        result: JSONObject = (await self.connect(**params))["result"]
        await self.event("signalwire.authorization.state")
        return result


@asynccontextmanager
async def raw_client(server: FakeRelayServer) -> AsyncIterator[RawClient]:
    ssl_context = server.client_ssl_context() if server.tls else None
    ws = await connect_websocket(server.url, ssl_context=ssl_context)
    try:
        yield RawClient(ws)
    finally:
        await ws.aclose()


@asynccontextmanager
async def answered_call(
    server: FakeRelayServer,
) -> AsyncIterator[tuple[RawClient, JSONObject]]:
    """A client subscribed to ``default`` holding an answered inbound call."""
    async with raw_client(server) as client:
        await client.authenticate(contexts=["default"])
        call = await server.offer_call()
        await client.event("calling.call.receive")
        ids = {"call_id": call.call_id, "node_id": call.node_id}
        assert (await client.call("calling.answer", ids))["result"]["code"] == "200"
        await client.event("calling.call.state")
        yield client, ids


# -- handshake ---------------------------------------------------------------------------


async def test_connect_with_project_and_token(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            response = await client.connect()
            result = response["result"]
            assert re.fullmatch(r"signalwire_[0-9a-f]{32}", result["protocol"])
            assert result["session_restored"] is False
            assert result["nodeid"] == relay_server.node_id
            assert result["authorization"] == {}
            assert result["identity"] and result["sessionid"]
            frame = await client.recv()
            assert frame["method"] == "signalwire.event" and frame["id"]
            outer = frame["params"]
            assert outer["event_type"] == "signalwire.authorization.state"
            assert isinstance(outer["timestamp"], float)
            assert BLOB.match(outer["params"]["authorization_state"])
        assert relay_server.violations == []


async def test_connect_with_jwt() -> None:
    with anyio.fail_after(5):
        async with (
            FakeRelayServer(jwt_tokens=["jwt-1", "jwt-2"]) as server,
            raw_client(server) as client,
        ):
            result = await client.authenticate(authentication={"jwt_token": "jwt-2"})
            assert result["protocol"].startswith("signalwire_")
            assert server.violations == []


@pytest.mark.parametrize(
    "auth",
    [
        {"project": "test-project", "token": "wrong"},
        {"project": "other", "token": "test-token"},
        {"jwt_token": "not-issued"},
        {},
    ],
)
async def test_bad_credentials_get_an_auth_error(
    relay_server: FakeRelayServer, auth: JSONObject
) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            response = await client.connect(authentication=auth)
            assert response["error"] == {
                "code": AUTH_FAILED_CODE,
                "message": AUTH_FAILED_MESSAGE,
                "data": {"signalwire_error_code": AUTH_FAILED_ERROR_CODE},
            }
            # Still unauthenticated: a proper connect on the same socket works.
            assert (await client.authenticate())["session_restored"] is False


# Deliberate: the test checks that the violation is recorded.
@pytest.mark.relay_violations_allowed("before authenticating")
async def test_requests_before_authentication_are_refused_and_recorded(
    relay_server: FakeRelayServer,
) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            response = await client.call("calling.answer", {"call_id": "c", "node_id": "n"})
            assert response["error"]["code"] == NOT_AUTHENTICATED_CODE
            assert relay_server.received("calling.answer")
            assert relay_server.violations == [
                "connection 1: sent calling.answer before authenticating"
            ]


# Deliberate: a connect without version, agent and event_acks.
@pytest.mark.relay_violations_allowed("connect without")
async def test_missing_connect_fields_are_recorded_not_rejected(
    relay_server: FakeRelayServer,
) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.call("signalwire.connect", {"authentication": PROJECT_AUTH})
            await client.event("signalwire.authorization.state")
            assert len(relay_server.violations) == 3
            assert (await client.call("signalwire.ping"))["result"] == {}


# -- acks, sessions, resume ----------------------------------------------------------------


# Deliberate: an ack of an id the server never sent.
@pytest.mark.relay_violations_allowed("acknowledged unknown")
async def test_acks_are_tracked_and_unknown_ones_recorded(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.connect()
            event = await client.recv()
            assert relay_server.unacked_events() == [event]
            await client.ack(event)
            await client.send({"jsonrpc": "2.0", "id": "nope", "result": {}})
            await relay_server.wait_until(lambda: relay_server.unknown_acks == ["nope"])
            assert relay_server.acked_event_ids == [event["id"]]
            assert relay_server.unacked_events() == []


async def test_resume_redelivers_unacked_then_queued_events(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as first:
            result = (await first.connect(contexts=["default"]))["result"]
            auth_event = await first.recv()  # not acked
            call = await relay_server.offer_call()
            offer = await first.recv()  # not acked
        await relay_server.wait_until(lambda: relay_server.active_connections == 0)
        await call.remote_hangup("busy")  # no connection: queued on the session

        async with raw_client(relay_server) as second:
            blob = auth_event["params"]["params"]["authorization_state"]
            resumed = await second.connect(protocol=result["protocol"], authorization_state=blob)
            assert resumed["result"]["protocol"] == result["protocol"]
            assert resumed["result"]["session_restored"] is True
            replay = [await second.recv() for _ in range(5)]
            assert replay[:2] == [auth_event, offer]
            states = [f["params"]["params"]["call_state"] for f in replay[2:4]]
            assert states == ["ending", "ended"]
            assert replay[3]["params"]["params"]["end_reason"] == "busy"
            assert replay[4]["params"]["event_type"] == "signalwire.authorization.state"
            assert replay[4]["id"] != auth_event["id"]
            assert relay_server.authorization_states_seen == [blob]
            assert relay_server.subscribed_contexts() == {"default"}


async def test_resume_takes_over_a_half_open_connection(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as first:
            result = await first.authenticate(contexts=["default"])
            await relay_server.wait_until(lambda: not relay_server.unacked_events())
            relay_server.stop_reading()  # the server never learns that ``first`` gave up
            await relay_server.offer_call()
            async with raw_client(relay_server) as second:
                resumed = await second.connect(protocol=result["protocol"])
                assert resumed["result"]["session_restored"] is True
                assert (await second.event())["context"] == "default"
                await second.event("signalwire.authorization.state")
                with pytest.raises(ConnectionLost):
                    await first.recv()  # the stale connection was closed
                await relay_server.wait_until(lambda: relay_server.active_connections == 1)
                assert (await relay_server.wait_for_session()).connection == 2


async def test_forgotten_sessions_are_not_resumed(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as first:
            old = await first.authenticate(contexts=["default"])
        relay_server.forget_sessions()
        async with raw_client(relay_server) as second:
            new = await second.authenticate(protocol=old["protocol"])
            assert new["protocol"] != old["protocol"]
            assert new["session_restored"] is False
            assert relay_server.subscribed_contexts() == set()
            with pytest.raises(LookupError):
                await relay_server.offer_call("default")


# Deliberate: ``contexts`` that are not a list.
@pytest.mark.relay_violations_allowed("contexts must be a list of strings")
async def test_receive_and_unreceive_contexts(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate(contexts=["default"])
            received = await client.call("signalwire.receive", {"contexts": ["sales", "support"]})
            assert received["result"] == {"code": "200", "message": "Receiving events"}
            session = await relay_server.wait_for_session()
            assert relay_server.subscribed_contexts(session) == {"default", "sales", "support"}
            dropped = await client.call("signalwire.unreceive", {"contexts": ["default"]})
            assert dropped["result"]["message"] == "Unreceiving events"
            assert (await client.call("signalwire.receive", {"contexts": []}))["result"]
            bad = await client.call("signalwire.receive", {"contexts": "sales"})
            assert bad["error"]["code"] == -32602
            assert session.contexts == ["sales", "support"]


# -- calls ---------------------------------------------------------------------------------


async def test_inbound_call_answer_play_end(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate(contexts=["office"])
            call = await relay_server.offer_call("office", from_number="+15550001111")
            offer = await client.event("calling.call.receive")
            assert offer["context"] == "office" and offer["call_state"] == "created"
            assert offer["device"]["params"]["from_number"] == "+15550001111"
            ids = {"call_id": call.call_id, "node_id": call.node_id}

            answered = await client.call("calling.answer", ids)
            assert answered["result"] == {"code": "200", "message": "Answered"}
            assert (await client.event("calling.call.state"))["call_state"] == "answered"

            play = await client.call("calling.play", ids | {"control_id": "k1", "play": []})
            assert play["result"]["control_id"] == "k1"
            assert (await client.event("calling.call.play"))["state"] == "playing"
            finished = await client.event("calling.call.play")
            assert finished == ids | {"control_id": "k1", "state": "finished"}

            ended = await client.call("calling.end", ids | {"reason": "hangup"})
            assert ended["result"]["message"] == "Disconnecting call"
            assert (await client.event("calling.call.state"))["call_state"] == "ending"
            last = await client.event("calling.call.state")
            assert last["call_state"] == "ended" and last["end_reason"] == "hangup"

            gone = await client.call("calling.answer", ids)
            assert gone["result"] == {"code": "410", "message": "Call is gone"}
            missing = await client.call("calling.answer", {"call_id": "x", "node_id": "y"})
            assert missing["result"] == {"code": "404", "message": "Call not found"}
        assert call.states == ["created", "answered", "ending", "ended"]
        assert [r["method"] for r in call.requests] == [
            "calling.answer",
            "calling.play",
            "calling.end",
            "calling.answer",
        ]


async def test_offer_needs_a_subscribed_session(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate(contexts=["default"])
            with pytest.raises(LookupError):
                await relay_server.offer_call("sales")


async def test_remote_hangup_and_wait_for_state(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            call = relay_server.calls[ids["call_id"]]
            await call.wait_for_state("answered", timeout=1)
            await call.remote_hangup("hangup")
            assert (await client.event("calling.call.state"))["call_state"] == "ending"
            assert (await client.event("calling.call.state"))["end_reason"] == "hangup"
            assert call.end_reason == "hangup"
            with pytest.raises(TimeoutError):
                await call.wait_for_state("ringing", timeout=0.01)


async def test_play_and_collect_reports_scripted_input(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            call = relay_server.calls[ids["call_id"]]
            call.script_digits("42")
            call.script_speech("sales", confidence=0.8)
            expected = [
                {"type": "digit", "params": {"digits": "42", "terminator": "#"}},
                {"type": "speech", "params": {"text": "sales", "confidence": 0.8}},
                {"type": "no_input"},
            ]
            for index, result in enumerate(expected):
                spec = {"digits": {"max": 2}, "speech": {}}
                control = {"control_id": f"c{index}", "play": [], "collect": spec}
                await client.call("calling.play_and_collect", ids | control)
                assert (await client.event("calling.call.play"))["state"] == "playing"
                assert (await client.event("calling.call.play"))["state"] == "finished"
                collect = await client.event("calling.call.collect")
                assert collect["result"] == result and collect["final"] is True


async def test_collect_without_prompt(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            relay_server.calls[ids["call_id"]].script_digits("7", terminator="")
            await client.call("calling.collect", ids | {"control_id": "c", "digits": {"max": 1}})
            collect = await client.event("calling.call.collect")
            assert collect["result"]["params"] == {"digits": "7", "terminator": ""}
            assert collect["state"] == "finished"


async def test_record_stop_and_call_end_report_the_recording(
    relay_server: FakeRelayServer,
) -> None:
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            audio = {"format": "wav"}
            response = await client.call(
                "calling.record", ids | {"control_id": "r1", "record": {"audio": audio}}
            )
            assert response["result"]["url"].endswith("/r1.wav")
            assert (await client.event("calling.call.record"))["state"] == "recording"
            await client.call("calling.record.pause", ids | {"control_id": "r1"})
            assert (await client.event("calling.call.record"))["state"] == "paused"
            await client.call("calling.record.resume", ids | {"control_id": "r1"})
            assert (await client.event("calling.call.record"))["state"] == "recording"
            await client.call("calling.record.stop", ids | {"control_id": "r1"})
            finished = await client.event("calling.call.record")
            assert finished["state"] == "finished"
            assert finished["url"] == finished["record"]["url"] == response["result"]["url"]
            assert finished["record"]["audio"] == audio
            assert {"duration", "size"} <= finished.keys() & finished["record"].keys()

            await client.call("calling.record", ids | {"control_id": "r2", "record": {}})
            await client.event("calling.call.record")
            await relay_server.calls[ids["call_id"]].remote_hangup()
            assert (await client.event("calling.call.state"))["call_state"] == "ending"
            unfinished = await client.event("calling.call.record")
            assert unfinished["control_id"] == "r2" and unfinished["state"] == "finished"
            assert (await client.event("calling.call.state"))["call_state"] == "ended"


async def test_record_duration_ends_recordings_by_themselves(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.record_duration = 0
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            await client.call("calling.record", ids | {"control_id": "r", "record": {}})
            assert (await client.event("calling.call.record"))["state"] == "recording"
            assert (await client.event("calling.call.record"))["state"] == "finished"
            late_stop = await client.call("calling.record.stop", ids | {"control_id": "r"})
            assert late_stop["result"]["code"] == "200"  # a stop racing the end is fine


async def test_play_duration_pause_resume_and_stop(relay_server: FakeRelayServer) -> None:
    relay_server.play_duration = 60  # its timer is run by hand below, when it is paused
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            control = ids | {"control_id": "p1"}
            await client.call("calling.play", control | {"play": []})
            assert (await client.event("calling.call.play"))["state"] == "playing"
            await client.call("calling.play.pause", control)
            assert (await client.event("calling.call.play"))["state"] == "paused"
            call = relay_server.calls[ids["call_id"]]
            await _finish_play(call, call.actions["p1"])  # its time runs out while paused
            await client.call("calling.play.resume", control)
            assert (await client.event("calling.call.play"))["state"] == "playing"
            assert (await client.event("calling.call.play"))["state"] == "finished"

            relay_server.play_duration = 60
            await client.call("calling.play", ids | {"control_id": "p2", "play": []})
            await client.event("calling.call.play")
            volume = ids | {"control_id": "p2", "volume": -3.5}
            assert (await client.call("calling.play.volume", volume))["result"]["code"] == "200"
            await client.call("calling.play.stop", ids | {"control_id": "p2"})
            assert (await client.event("calling.call.play"))["state"] == "finished"
            unknown = await client.call("calling.play.stop", ids | {"control_id": "zz"})
            assert unknown["result"]["code"] == "404"


async def test_detect_reports_the_scripted_event(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            relay_server.calls[ids["call_id"]].script_detect("MACHINE")
            for expected in ("MACHINE", "HUMAN"):
                detect = {"type": "machine", "params": {}}
                await client.call("calling.detect", ids | {"control_id": "d", "detect": detect})
                event = await client.event("calling.call.detect")
                assert event["detect"] == {"type": "machine", "params": {"event": expected}}


# Deliberate: a method RELAY does not have.
@pytest.mark.relay_violations_allowed("unknown method 'blade.whatever'")
async def test_pass_and_other_calling_methods(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            assert (await client.call("calling.hold", ids))["result"] == {
                "code": "200",
                "message": "OK",
            }
            assert (await client.call("calling.pass", ids))["result"]["code"] == "200"
            assert relay_server.calls[ids["call_id"]].passed
            missing = await client.call("calling.hold", {"call_id": "x", "node_id": "y"})
            assert missing["result"]["code"] == "404"
            unknown = await client.call("blade.whatever")
            assert unknown["error"]["code"] == -32601


# -- dial ----------------------------------------------------------------------------------


def phone(number: str) -> JSONObject:
    return {"type": "phone", "params": {"to_number": number, "from_number": "+15550000000"}}


async def dial(client: RawClient, devices: list[list[JSONObject]]) -> list[JSONObject]:
    """Dial and collect every event up to the ``calling.call.dial`` outcome."""
    response = await client.call("calling.dial", {"tag": "T1", "devices": devices})
    assert response["result"] == {"code": "200", "message": "Dialing"}
    events = []
    while True:
        frame = await client.recv()
        await client.ack(frame)
        events.append(frame["params"])
        if frame["params"]["event_type"] == "calling.call.dial":
            return events


def legs(events: list[JSONObject]) -> list[tuple[str, str, str | None]]:
    """(to_number, call_state, end_reason) of each leg state event."""
    return [
        (
            e["params"]["device"]["params"]["to_number"],
            e["params"]["call_state"],
            e["params"].get("end_reason"),
        )
        for e in events
        if e["event_type"] == "calling.call.state"
    ]


async def test_parallel_dial_first_answer_wins(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            events = await dial(client, [[phone("+1A"), phone("+1B")]])
            assert legs(events) == [
                ("+1A", "created", None),
                ("+1B", "created", None),
                ("+1A", "ringing", None),
                ("+1B", "ringing", None),
                ("+1A", "answered", None),
                ("+1B", "ended", "cancel"),
            ]
            assert all(e["params"]["tag"] == "T1" for e in events)
            outcome = events[-1]["params"]
            assert outcome["dial_state"] == "answered" and "call_id" not in outcome
            winner = outcome["call"]
            assert winner["dial_winner"] is True and winner["tag"] == "T1"
            assert relay_server.calls[winner["call_id"]].state == "answered"


async def test_serial_dial_follows_the_script(relay_server: FakeRelayServer) -> None:
    relay_server.script_dial(["busy", "answer"], answer_delay=0.01)
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            events = await dial(client, [[phone("+1A")], [phone("+1B")]])
            assert legs(events) == [
                ("+1A", "created", None),
                ("+1A", "ringing", None),
                ("+1A", "ended", "busy"),
                ("+1B", "created", None),
                ("+1B", "ringing", None),
                ("+1B", "answered", None),
            ]
            assert events[-1]["params"]["dial_state"] == "answered"


async def test_dial_with_no_answer_fails(relay_server: FakeRelayServer) -> None:
    relay_server.script_dial(["no_answer"])
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            events = await dial(client, [[phone("+1A")]])
            assert legs(events)[-1] == ("+1A", "ended", "noAnswer")
            assert events[-1]["params"]["dial_state"] == "failed"
            assert events[-1]["params"]["call"] == {}
    with pytest.raises(ValueError):
        relay_server.script_dial(["maybe"])


async def test_messaging_send_reports_delivery(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            params = {"context": "default", "to_number": "+1B", "from_number": "+1A", "body": "hi"}
            response = await client.call("messaging.send", params)
            message_id = response["result"]["message_id"]
            for state in ("initiated", "sent", "delivered"):
                event = await client.event("messaging.state")
                assert event["message_id"] == message_id and event["message_state"] == state


async def test_offer_message_delivers_an_inbound_message(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate(contexts=["texts"])
            sent = await relay_server.offer_message("texts", body="hi", media=["https://x/a.jpg"])
            event = await client.event("messaging.receive")
            assert event == sent
            assert event["direction"] == "inbound" and event["message_state"] == "received"
            assert event["body"] == "hi" and event["media"] == ["https://x/a.jpg"]
            with pytest.raises(LookupError):
                await relay_server.offer_message("elsewhere", body="lost")


async def test_custom_handler_events_follow_its_response(relay_server: FakeRelayServer) -> None:
    async def custom(ctx: HandlerContext, params: JSONObject) -> JSONObject:
        ctx.emit("calling.custom", {"echo": params["value"]})
        return {"code": "200", "message": "custom"}

    relay_server.set_handler("calling.custom", custom)
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            response = await client.call("calling.custom", {"value": 3})
            assert response["result"]["message"] == "custom"
            assert await client.event("calling.custom") == {"echo": 3}


# -- fault injection -------------------------------------------------------------------------


async def test_fail_next_with_a_result_code_or_a_jsonrpc_error(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.fail_next("signalwire.receive", code="402", message="Payment required")
    relay_server.fail_next("signalwire.receive", code=-32000, message="boom", jsonrpc_error=True)
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            receive = {"contexts": ["sales"]}
            first = await client.call("signalwire.receive", receive)
            assert first["result"] == {"code": "402", "message": "Payment required"}
            second = await client.call("signalwire.receive", receive)
            assert second["error"] == {"code": -32000, "message": "boom"}
            assert (await client.call("signalwire.receive", receive))["result"]["code"] == "200"
            assert relay_server.subscribed_contexts() == {"sales"}  # failures had no effect


async def test_delay_next_keeps_serving_other_requests(relay_server: FakeRelayServer) -> None:
    relay_server.delay_next("signalwire.ping", 0.05)
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            slow = await client.request("signalwire.ping")
            fast = await client.request("signalwire.ping")
            assert [(await client.recv())["id"] for _ in range(2)] == [fast, slow]


async def test_withhold_next_never_answers(relay_server: FakeRelayServer) -> None:
    relay_server.withhold_next("signalwire.ping")
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            await client.request("signalwire.ping")
            answered = await client.request("signalwire.ping")
            assert (await client.recv())["id"] == answered


async def test_withheld_connect(relay_server: FakeRelayServer) -> None:
    relay_server.withhold_next("signalwire.connect")
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.request("signalwire.connect", {"authentication": PROJECT_AUTH})
            with anyio.move_on_after(0.05) as scope:
                await client.recv()
            assert scope.cancelled_caught
            assert (await client.connect())["result"]["protocol"]


async def test_drop_connection_gives_no_close_frame(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            await relay_server.drop_connection()
            assert relay_server.active_connections == 0
            with pytest.raises(ConnectionLost):
                await client.recv()
            assert client.ws.close_code == 1006


async def test_close_connection_with_a_code(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            await relay_server.close_connection(4000, "bye")
            with pytest.raises(ConnectionLost):
                await client.recv()
            assert (client.ws.close_code, client.ws.close_reason) == (4000, "bye")
        with pytest.raises(LookupError):
            await relay_server.close_connection()


@pytest.mark.parametrize("restart", [False, True])
async def test_send_disconnect_then_close(relay_server: FakeRelayServer, restart: bool) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            result = await client.authenticate()
            await relay_server.send_disconnect(restart=restart)
            request = await client.recv()
            assert request["method"] == "signalwire.disconnect"
            assert request["params"] == {"restart": restart}
            await client.send({"jsonrpc": "2.0", "id": request["id"], "result": {}})
            with pytest.raises(ConnectionLost):
                await client.recv()
        assert relay_server.unknown_acks == []
        async with raw_client(relay_server) as again:
            resumed = await again.authenticate(protocol=result["protocol"])
            assert resumed["session_restored"] is not restart


async def test_send_raw_frames(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            await relay_server.send_raw("{not json")
            await relay_server.send_raw(b"\x00\x01")
            await relay_server.send_raw('{"jsonrpc": "2.0", "method": "signalwire.event"}')
            assert await client.recv_raw() == "{not json"
            assert await client.recv_raw() == b"\x00\x01"
            assert (await client.recv())["method"] == "signalwire.event"
            out = [e.frame for e in relay_server.journal if e.direction == "out"]
            assert out[-3:-1] == ["{not json", b"\x00\x01"]


async def test_stop_reading_makes_the_link_half_open(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate(contexts=["default"])
            await relay_server.wait_until(lambda: not relay_server.unacked_events())
            relay_server.stop_reading()
            ping = await client.request("signalwire.ping")
            await relay_server.offer_call()  # not written while half-open
            with anyio.move_on_after(0.05) as scope:
                await client.recv()
            assert scope.cancelled_caught
            assert relay_server.active_connections == 1
            assert len(relay_server.unacked_events()) == 1
            relay_server.resume_reading()
            assert (await client.recv())["id"] == ping


async def test_server_pings_and_client_pings(relay_server: FakeRelayServer) -> None:
    relay_server.ping_interval = 0.01
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            ping = await client.recv()
            assert ping["method"] == "signalwire.ping" and ping["params"] == {}
            await client.send({"jsonrpc": "2.0", "id": ping["id"], "result": {}})
            await relay_server.wait_until(lambda: len(relay_server.ping_replies) == 1)
            relay_server.ping_interval = None
            assert relay_server.unknown_acks == []


# -- TLS ---------------------------------------------------------------------------------


async def test_tls_with_the_test_ca(relay_server_tls: FakeRelayServer, tmp_path: Path) -> None:
    with anyio.fail_after(5):
        assert relay_server_tls.url.startswith("wss://localhost:")
        kwargs = relay_server_tls.client_kwargs()
        assert kwargs["ssl_context"].check_hostname
        async with raw_client(relay_server_tls) as client:
            assert (await client.authenticate())["protocol"]
        cafile = relay_server_tls.ca_pem_path(tmp_path)
        context = ssl.create_default_context(cafile=str(cafile))
        ws = await connect_websocket(relay_server_tls.url, ssl_context=context)
        await ws.aclose()
        with pytest.raises(TransportError) as rejected:
            await connect_websocket(relay_server_tls.url, ssl_context=ssl.create_default_context())
        assert rejected.value.fatal


# -- journal and serving ---------------------------------------------------------------------


# Deliberate: frames that are not JSON objects, asserted on below.
@pytest.mark.relay_violations_allowed("not a JSON object")
async def test_journal_records_every_frame_in_order(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            await client.ws.send_text("{oops")
            await client.ws.send_bytes(b"\xff")
            await client.call("signalwire.ping")
        async with raw_client(relay_server) as client:
            await client.authenticate()
        await relay_server.wait_for_connections(2)
        journal = relay_server.journal
        assert all(isinstance(entry, JournalEntry) for entry in journal)
        assert [(e.direction, e.connection) for e in journal[:4]] == [
            ("in", 1),
            ("out", 1),
            ("out", 1),
            ("in", 1),
        ]
        assert journal[0].frame == relay_server.received("signalwire.connect")[0]
        assert [e.frame for e in journal[4:6]] == ["{oops", b"\xff"]
        assert [e.time for e in journal] == sorted(e.time for e in journal)
        assert {e.connection for e in journal} == {1, 2}
        assert len(relay_server.received("signalwire.ping")) == 1
        assert len(relay_server.sent_events("signalwire.authorization.state")) == 2
        assert relay_server.violations == [
            "connection 1: sent a frame that is not a JSON object",
            "connection 1: sent a frame that is not a JSON object",
        ]


async def test_wait_for_request_sees_past_and_future_frames(
    relay_server: FakeRelayServer,
) -> None:
    found: list[JSONObject] = []

    async def wait_for_second_ping() -> None:
        second = await relay_server.wait_for_request(
            "signalwire.ping", lambda frame: frame["params"].get("n") == 2
        )
        found.append(second)

    with anyio.fail_after(5):
        async with raw_client(relay_server) as client, anyio.create_task_group() as tg:
            tg.start_soon(wait_for_second_ping)
            await client.authenticate()
            await client.call("signalwire.ping", {"n": 1})
            first = await relay_server.wait_for_request("signalwire.ping")
            assert first["params"] == {"n": 1} and found == []
            await client.call("signalwire.ping", {"n": 2})
        assert found[0]["params"] == {"n": 2}
        with pytest.raises(TimeoutError, match=r"calling\.answer"):
            await relay_server.wait_for_request("calling.answer", timeout=0.01)


async def test_serve_in_a_task_group() -> None:
    with anyio.fail_after(5):
        server = FakeRelayServer()
        with pytest.raises(RuntimeError):
            _ = server.url  # not listening yet
        async with anyio.create_task_group() as tg:
            assert await tg.start(server.serve) is server
            assert server.url == f"ws://127.0.0.1:{server.port}"
            assert server.client_kwargs() == {
                "project": "test-project",
                "token": "test-token",
                "url": server.url,
            }
            with pytest.raises(RuntimeError):
                server.client_ssl_context()  # tls=False
            async with raw_client(server) as client:
                await client.authenticate()
                assert (await server.wait_for_session()).connection == 1
            tg.cancel_scope.cancel()


async def test_listen_on_a_chosen_port(free_tcp_port: int) -> None:
    with anyio.fail_after(5):
        async with FakeRelayServer(port=free_tcp_port) as server, raw_client(server) as client:
            assert server.port == free_tcp_port
            assert (await client.authenticate())["protocol"]


async def test_wait_until_sees_a_change_outside_the_server(relay_server: FakeRelayServer) -> None:
    """A predicate on client state (``client.active_calls == 0``) can turn true after
    the server's last change; wait_until must still see it (it re-checks every 10 ms)."""
    outside: list[int] = []

    async def change_later() -> None:
        await anyio.sleep(0.05)
        outside.append(1)

    async with anyio.create_task_group() as tg:
        tg.start_soon(change_later)
        with anyio.fail_after(5):  # it would never return without the re-checks
            await relay_server.wait_until(lambda: bool(outside))
