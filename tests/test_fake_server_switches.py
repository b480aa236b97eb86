"""The fake server's switches for unconfirmed behaviour, each in every setting.

Like ``test_fake_server.py`` these drive the server with a hand-written client, frame
by frame, so they pin what a client under test sees with each setting, whatever the
SDK does with it.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from relay_anyio import ConnectionLost
from relay_anyio.testing import DEFAULT_HANDLERS, FakeRelayServer
from relay_anyio.testing._validation import REQUIRED_KEYS

from .test_fake_server import RawClient, answered_call, raw_client
from .test_fake_server import relay_server as relay_server

pytestmark = pytest.mark.anyio

JSONObject = dict[str, Any]


async def no_more_frames(client: RawClient) -> None:
    """Nothing is pending for ``client``: the next frame is the answer to a ping.

    The server answers a connection's frames in order, after the events their
    handling produced, so anything it meant to send comes before the pong.
    """
    pong = await client.call("signalwire.ping")
    assert pong["result"] == {}, pong


# -- redeliver_on_resume -------------------------------------------------------------------


@pytest.mark.parametrize("redeliver", [True, False])
async def test_redeliver_on_resume(relay_server: FakeRelayServer, redeliver: bool) -> None:
    relay_server.redeliver_on_resume = redeliver
    with anyio.fail_after(5):
        async with raw_client(relay_server) as first:
            result = (await first.connect(contexts=["default"]))["result"]
            auth_event = await first.recv()  # neither of these is acked
            call = await relay_server.offer_call()
            offer = await first.recv()
        await relay_server.wait_until(lambda: relay_server.active_connections == 0)
        await call.remote_hangup()  # produced while away: queued on the session
        unacked = relay_server.unacked_events()
        assert [f["id"] for f in unacked[:2]] == [auth_event["id"], offer["id"]]
        assert len(unacked) == 4

        async with raw_client(relay_server) as second:
            resumed = await second.connect(protocol=result["protocol"])
            assert resumed["result"]["session_restored"] is True
            if redeliver:
                replay = [await second.recv() for _ in range(4)]
                assert replay == unacked
                assert relay_server.dropped_on_resume == []
                for frame in replay:
                    await second.ack(frame)
            else:
                assert relay_server.dropped_on_resume == unacked
                # A late ack of a dropped event is harmless (no violation).
                await second.ack(offer)
            await second.event("signalwire.authorization.state")
            await no_more_frames(second)
            assert relay_server.unacked_events() == []
            # The session lives on either way: new events flow.
            await relay_server.offer_call()
            assert (await second.event("calling.call.receive"))["call_state"] == "created"
        assert relay_server.unknown_acks == []


async def test_redeliver_on_resume_applies_to_a_taken_over_half_open_link(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.redeliver_on_resume = False
    with anyio.fail_after(5):
        async with raw_client(relay_server) as first:
            result = await first.authenticate(contexts=["default"])
            await relay_server.wait_until(lambda: not relay_server.unacked_events())
            relay_server.stop_reading()
            await relay_server.offer_call()  # never written: the link is half-open
            async with raw_client(relay_server) as second:
                await second.connect(protocol=result["protocol"])
                await second.event("signalwire.authorization.state")
                await no_more_frames(second)
            frames = relay_server.dropped_on_resume
            assert [f["params"]["event_type"] for f in frames] == ["calling.call.receive"]


# -- action_end_on_call_end / late_action_delay --------------------------------------------


async def _start_play_and_record(
    server: FakeRelayServer, client: RawClient, ids: JSONObject
) -> None:
    server.play_duration = 60  # both run until the call ends
    await client.call("calling.play", ids | {"control_id": "p", "play": []})
    assert (await client.event("calling.call.play"))["state"] == "playing"
    record = {"record": {"audio": {"format": "wav"}}}
    await client.call("calling.record", ids | {"control_id": "r"} | record)
    assert (await client.event("calling.call.record"))["state"] == "recording"


def _describe(params: JSONObject) -> tuple[str, str]:
    if "call_state" in params:
        return ("state", params["call_state"])
    return (params["control_id"], params["state"])


@pytest.mark.parametrize("by", ["calling.end", "remote"])
@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (
            "before_ended",
            [("state", "ending"), ("p", "finished"), ("r", "finished"), ("state", "ended")],
        ),
        (
            "after_ended",
            [("state", "ending"), ("state", "ended"), ("p", "finished"), ("r", "finished")],
        ),
        ("never", [("state", "ending"), ("state", "ended")]),
    ],
)
async def test_action_end_on_call_end(
    relay_server: FakeRelayServer, when: str, expected: list[tuple[str, str]], by: str
) -> None:
    relay_server.action_end_on_call_end = when  # type: ignore[assignment]
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            await _start_play_and_record(relay_server, client, ids)
            if by == "remote":
                await relay_server.calls[ids["call_id"]].remote_hangup()
            else:
                await client.call("calling.end", ids | {"reason": "hangup"})
            events = [await client.event() for _ in expected]
            assert [_describe(e) for e in events] == expected
            await no_more_frames(client)
            if when != "never":
                [record] = [e for e in events if e.get("control_id") == "r"]
                assert record["url"].endswith("/r.wav")
            # The call is gone: a late stop is refused and produces nothing.
            stop = await client.call("calling.record.stop", ids | {"control_id": "r"})
            assert stop["result"]["code"] == "410"
            await no_more_frames(client)
            call = relay_server.calls[ids["call_id"]]
            assert not any(action.active for action in call.actions.values())


async def test_late_action_delay(relay_server: FakeRelayServer) -> None:
    relay_server.action_end_on_call_end = "after_ended"
    relay_server.late_action_delay = 0.1
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            await _start_play_and_record(relay_server, client, ids)
            await relay_server.calls[ids["call_id"]].remote_hangup()
            assert (await client.event())["call_state"] == "ending"
            assert (await client.event())["call_state"] == "ended"
            # Not yet: the server's next frame is the pong, the late events follow it.
            await no_more_frames(client)
            assert (await client.event("calling.call.play"))["state"] == "finished"
            assert (await client.event("calling.call.record"))["state"] == "finished"
    times = {
        (f["params"]["event_type"], f["params"]["params"].get("call_state")): e.time
        for e in relay_server.journal
        if e.direction == "out" and isinstance(f := e.frame, dict) and "params" in f
        if isinstance(f["params"], dict) and "event_type" in f["params"]
    }
    gap = times[("calling.call.record", None)] - times[("calling.call.state", "ended")]
    assert gap >= 0.09


async def test_a_bad_action_end_value_is_an_error(relay_server: FakeRelayServer) -> None:
    relay_server.action_end_on_call_end = "later"  # type: ignore[assignment]
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (_client, ids):
            with pytest.raises(ValueError, match="action_end_on_call_end"):
                await relay_server.calls[ids["call_id"]].remote_hangup()


# -- disconnect_close_delay ----------------------------------------------------------------


@pytest.mark.parametrize("restart", [False, True])
async def test_disconnect_close_delay_none_never_closes(
    relay_server: FakeRelayServer, restart: bool
) -> None:
    relay_server.disconnect_close_delay = None
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            session = await relay_server.wait_for_session()
            await relay_server.send_disconnect(restart=restart)
            request = await client.recv()
            assert request["method"] == "signalwire.disconnect"
            await client.send({"jsonrpc": "2.0", "id": request["id"], "result": {}})
            # Well past the default delay (0.05 s): no close frame, no frame at all.
            with anyio.move_on_after(0.3) as quiet:
                await client.recv_raw()
            assert quiet.cancelled_caught
            assert client.ws.close_code is None
            assert relay_server.active_connections == 1 and relay_server.close_codes == {}
            # The link still works both ways.
            await no_more_frames(client)
            await session.emit("calling.call.play", {"call_id": "c", "state": "playing"})
            assert (await client.event("calling.call.play"))["state"] == "playing"
        await relay_server.wait_until(lambda: relay_server.active_connections == 0)
        assert relay_server.close_codes == {1: 1000}  # closed by the client, not the server
        assert relay_server.unknown_acks == []


async def test_disconnect_close_delay_zero_closes_at_once(relay_server: FakeRelayServer) -> None:
    relay_server.disconnect_close_delay = 0
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            await relay_server.send_disconnect()
            assert (await client.recv())["method"] == "signalwire.disconnect"
            with pytest.raises(ConnectionLost):
                await client.recv()
            assert client.ws.close_code == 1000


# -- record_url_location / record_result_url -----------------------------------------------

_FACTS = {"url", "duration", "size"}


@pytest.mark.parametrize("location", ["both", "top", "record"])
@pytest.mark.parametrize("ended_by", ["stop", "call end"])
async def test_record_url_location(
    relay_server: FakeRelayServer, location: str, ended_by: str
) -> None:
    relay_server.record_url_location = location  # type: ignore[assignment]
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            audio = {"format": "wav", "direction": "both"}
            started = await client.call(
                "calling.record", ids | {"control_id": "r", "record": {"audio": audio}}
            )
            url = started["result"]["url"]
            assert (await client.event("calling.call.record"))["state"] == "recording"
            if ended_by == "stop":
                await client.call("calling.record.stop", ids | {"control_id": "r"})
            else:
                await relay_server.calls[ids["call_id"]].remote_hangup()
                assert (await client.event("calling.call.state"))["call_state"] == "ending"
            finished = await client.event("calling.call.record")
            assert finished["state"] == "finished"
            top = finished.keys() & _FACTS
            inner = finished["record"].keys() & _FACTS
            assert (top, inner) == {
                "both": (_FACTS, _FACTS),
                "top": (_FACTS, set()),
                "record": (set(), _FACTS),
            }[location]
            assert finished["record"]["audio"] == audio
            for where in (finished, finished["record"]):
                if "url" in where:
                    assert where["url"] == url


@pytest.mark.parametrize("in_result", [True, False])
async def test_record_result_url(relay_server: FakeRelayServer, in_result: bool) -> None:
    relay_server.record_result_url = in_result
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            started = await client.call(
                "calling.record", ids | {"control_id": "r", "record": {"audio": {}}}
            )
            assert started["result"]["code"] == "200"
            assert ("url" in started["result"]) is in_result
            await client.event("calling.call.record")
            await client.call("calling.record.stop", ids | {"control_id": "r"})
            finished = await client.event("calling.call.record")
            assert finished["url"].endswith("/r.mp3")  # the event has it either way


# -- invalid_request_reply -----------------------------------------------------------------

_IDS = {"node_id": "n", "call_id": "c", "control_id": "k"}
_COLLECT = {"digits": {"max": 1}}
#: A value of the right type for every key of REQUIRED_KEYS.
_FILLERS: JSONObject = _IDS | {
    "tag": "t",
    "devices": [[{"type": "phone", "params": {"to_number": "+1", "from_number": "+2"}}]],
    "play": [],
    "volume": 0,
    "record": {"audio": {}},
    "collect": _COLLECT,
    "detect": {"type": "machine", "params": {}},
    "digits": "1",
    "tap": {"type": "audio", "params": {}},
    "device": {"type": "rtp", "params": {"addr": "127.0.0.1", "port": 4000}},
    "url": "wss://example.com/s",
    "document": "https://example.com/d.pdf",
    "payment_connector_url": "https://example.com/pay",
    "dest": "https://example.com/swml",
    "name": "n",
    "conference_id": "x",
    "queue_name": "q",
    "bind_method": "calling.play",
    "action": {"start": {}},
}


def test_required_keys_cover_every_calling_handler() -> None:
    calling = {m for m in DEFAULT_HANDLERS if m.startswith("calling.")}
    assert calling == set(REQUIRED_KEYS)
    assert {key for keys in REQUIRED_KEYS.values() for key in keys} <= _FILLERS.keys()
    assert all("call_id" in keys for m, keys in REQUIRED_KEYS.items() if m != "calling.dial")


def _expect_refusal(response: JSONObject, reply: str, code: int, text: str) -> None:
    if reply == "result_400":
        assert "error" not in response, response
        assert response["result"]["code"] == "400", response
        assert text in response["result"]["message"]
    else:
        assert "result" not in response, response
        assert response["error"]["code"] == code, response
        assert text in response["error"]["message"]


REPLIES = pytest.mark.parametrize("reply", ["jsonrpc_error", "result_400"])


@REPLIES
@pytest.mark.relay_violations_allowed("sent an invalid")
async def test_every_required_key_is_required(relay_server: FakeRelayServer, reply: str) -> None:
    relay_server.invalid_request_reply = reply  # type: ignore[assignment]
    with anyio.fail_after(10):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            expected = []
            for method, keys in REQUIRED_KEYS.items():
                for key in keys:
                    params = {k: _FILLERS[k] for k in keys if k != key}
                    response = await client.call(method, params)
                    _expect_refusal(response, reply, -32602, f"Invalid params: {key} required")
                    expected.append(f"connection 1: sent an invalid {method}: {key} required")
                params = {k: _FILLERS[k] for k in keys} | {keys[0]: None}
                response = await client.call(method, params)  # null is missing too
                _expect_refusal(response, reply, -32602, f"{keys[0]} required")
                expected.append(f"connection 1: sent an invalid {method}: {keys[0]} required")
            await no_more_frames(client)  # nothing took effect: no events
            assert relay_server.violations == expected
            assert relay_server.calls == {}


@REPLIES
@pytest.mark.parametrize(
    ("method", "params", "detail"),
    [
        ("calling.play", {"play": "hello"}, "play must be a list"),
        ("calling.play", {"play": [], "control_id": ""}, "control_id must be a non-empty"),
        ("calling.record", {"record": []}, "record must be an object"),
        ("calling.detect", {"detect": "machine"}, "detect must be an object"),
        ("calling.collect", {}, "digits or speech required"),
        ("calling.collect", {"digits": {"terminators": "#"}}, "digits.max required"),
        ("calling.collect", {"speech": "yes"}, "speech must be an object"),
        ("calling.play_and_collect", {"play": [], "collect": {}}, "collect.digits or"),
        ("calling.play_and_collect", {"play": [], "collect": {"digits": {}}}, "collect.digits.max"),
        # Finer checks made by the handlers take the same road.
        ("calling.tap", {"tap": {"type": "audio"}, "device": {}}, "tap needs both type"),
        ("calling.send_digits", {"digits": "12x"}, "digits must be"),
    ],
)
async def test_malformed_payloads_are_refused(
    relay_server: FakeRelayServer, reply: str, method: str, params: JSONObject, detail: str
) -> None:
    relay_server.invalid_request_reply = reply  # type: ignore[assignment]
    relay_server.expect_violations = True
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            response = await client.call(method, ids | {"control_id": "k"} | params)
            _expect_refusal(response, reply, -32602, detail)
            await no_more_frames(client)
            assert relay_server.calls[ids["call_id"]].actions == {}
            [violation] = relay_server.violations
            assert violation.startswith(f"connection 1: sent an invalid {method}: ")
            assert detail in violation


@REPLIES
@pytest.mark.parametrize(
    "method",
    ["calling.play_and_collect.pause", "calling.begin", "calling.accept", "blade.whatever"],
)
@pytest.mark.relay_violations_allowed("sent unknown method")
async def test_unknown_methods_are_refused(
    relay_server: FakeRelayServer, reply: str, method: str
) -> None:
    relay_server.invalid_request_reply = reply  # type: ignore[assignment]
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            response = await client.call(method, ids | {"control_id": "k"})
            _expect_refusal(response, reply, -32601, f"Method not found: {method}")
            await no_more_frames(client)
            assert relay_server.violations == [f"connection 1: sent unknown method {method!r}"]


async def test_a_conformant_request_is_no_violation(relay_server: FakeRelayServer) -> None:
    relay_server.invalid_request_reply = "result_400"
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            collect = {"control_id": "k", "play": [], "collect": {"speech": {}}}
            response = await client.call("calling.play_and_collect", ids | collect)
            assert response["result"]["code"] == "200"
            assert relay_server.violations == []


# -- replies of clients to server requests -------------------------------------------------


async def test_method_not_found_reply_to_an_unknown_server_request_is_fine(
    relay_server: FakeRelayServer,
) -> None:
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            for request_id in ("u1", 7):
                request: JSONObject = {"jsonrpc": "2.0", "id": request_id, "method": "x.new"}
                request["params"] = {}
                await relay_server.send_raw(json_text(request))
                assert (await client.recv())["id"] == request_id
                error = {"code": -32601, "message": "Method not found: x.new"}
                await client.send({"jsonrpc": "2.0", "id": request_id, "error": error})
            # A raw event is acked like any other.
            event = {"event_type": "calling.call.play", "params": {"call_id": "c"}}
            raw = {"jsonrpc": "2.0", "id": "e1", "method": "signalwire.event", "params": event}
            await relay_server.send_raw(json_text(raw))
            await client.ack(await client.recv())
            await no_more_frames(client)
        assert relay_server.violations == []
        assert relay_server.unknown_acks == []


@pytest.mark.relay_violations_allowed("with an error")
async def test_an_error_reply_to_a_ping_is_a_violation(relay_server: FakeRelayServer) -> None:
    relay_server.ping_interval = 0.01
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            ping = await client.recv()
            relay_server.ping_interval = None
            error = {"code": -32601, "message": "Method not found"}
            await client.send({"jsonrpc": "2.0", "id": ping["id"], "error": error})
            await relay_server.wait_until(lambda: bool(relay_server.violations))
            assert relay_server.violations == [
                f"connection 1: answered signalwire.ping {ping['id']!r} with an error"
            ]


def json_text(frame: JSONObject) -> str:
    return json.dumps(frame)
