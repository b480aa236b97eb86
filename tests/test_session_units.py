"""Pure functions of the session: unit tests, no I/O."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_anyio import AuthenticationError, ConnectionLost, TransportError, parse_event
from relay_anyio._reconnect import GiveUp
from relay_anyio._rpc import Inbox
from relay_anyio._rpc import NotSent as _NotSent
from relay_anyio._rpc import RpcConnection as _Connection
from relay_anyio._rpc import ack as _ack


@given(st.one_of(st.text(), st.integers(min_value=-(2**53), max_value=2**53)))
def test_an_ack_is_the_json_rpc_result_for_any_id(fid: str | int) -> None:
    # The fast path writes the id as it is when nothing needs escaping; any other
    # id (quotes, backslashes, control or non-ASCII characters) goes through the
    # JSON encoder. Either way the server must read back exactly the id it sent.
    assert json.loads(_ack(fid)) == {"jsonrpc": "2.0", "id": fid, "result": {}}


def test_an_ack_of_a_uuid_id_is_compact() -> None:
    fid = "0b6a3f2e-5d1c-4c8e-9a41-2f7d6c1e8b90"
    assert _ack(fid) == '{"jsonrpc":"2.0","id":"' + fid + '","result":{}}'


class _DeadLink:
    """A transport whose sends fail at once, without yielding (a link already gone)."""

    async def send_text(self, text: str) -> None:
        raise ConnectionLost("WebSocket closed (code 1006, send failed)")


@pytest.mark.anyio
async def test_a_failed_send_marks_the_connection_lost_at_once() -> None:
    """Regression: found by the 200-call fault scenario, which hung.

    A send can fail without yielding; until the reader noticed, the session handed
    the same connection to a caller retrying on ConnectionLost, whose send failed
    again at once: a retry loop that never yielded, so the reader never ran.
    """
    conn = _Connection(_DeadLink(), 1)  # type: ignore[arg-type]
    with pytest.raises(ConnectionLost, match="may or may not have taken effect"):
        await conn.request("test.ok", {})
    assert conn.lost is not None
    with pytest.raises(_NotSent):  # the next attempt waits for another connection
        await conn.request("test.ok", {})


# -- the envelope rule: the reader and parse_event read an odd envelope alike -----------


class _Host:
    authorization_state: str | None = None

    def secrets(self) -> list[str]:
        return []

    def server_disconnect(self, conn: object, *, restart: bool) -> None:
        raise AssertionError("not expected")


def _event_frame(fid: str, outer_timestamp: object, inner: dict[str, object]) -> str:
    params: dict[str, object] = {"event_type": "calling.call.state", "params": inner}
    if outer_timestamp is not _ABSENT:
        params["timestamp"] = outer_timestamp
    return json.dumps({"jsonrpc": "2.0", "id": fid, "method": "signalwire.event", "params": params})


_ABSENT = object()


@pytest.mark.parametrize(
    ("outer", "inner_timestamp", "expected"),
    [
        ("bad", 5.0, 5.0),  # the case the two parsers used to disagree on
        (_ABSENT, 5.0, 5.0),
        (None, 7, 7.0),
        (True, 3.0, 3.0),  # a bool is not a number here
        (2.5, 9.0, 2.5),
        (4, 9.0, 4.0),
        (10**400, 6.0, 6.0),  # too large for a double: the fallback, not a lost frame
        ("bad", "worse", 0.0),
    ],
)
def test_the_reader_and_parse_event_read_an_envelope_timestamp_alike(
    outer: object, inner_timestamp: object, expected: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stdlib codec (used without orjson) parses integers of any size; orjson
    # refuses the frame outright, which the bad-input tests cover.
    monkeypatch.setattr("relay_anyio._rpc._loads", json.loads)
    inner: dict[str, object] = {"call_id": "c1", "call_state": "answered"}
    inner["timestamp"] = inner_timestamp
    raw = _event_frame("e1", outer, inner)
    replies, events = Inbox(_Host()).take_batch(_Connection(None, 1), [raw])  # type: ignore[arg-type]
    assert [json.loads(r)["id"] for r in replies] == ["e1"]
    assert [(t, ts) for t, _, ts in events] == [("calling.call.state", expected)]
    parsed = parse_event(json.loads(raw)["params"])
    assert parsed.timestamp == expected


def test_the_inbox_drops_a_redelivered_event_until_it_forgets() -> None:
    inbox = Inbox(_Host())
    conn = _Connection(None, 1)  # type: ignore[arg-type]
    frame = _event_frame("e1", 1.0, {"call_id": "c1"})
    assert len(inbox.take_batch(conn, [frame, frame])[1]) == 1
    replies, events = inbox.take_batch(conn, [frame])
    assert (len(replies), events) == (1, [])  # acked again, not routed again
    inbox.forget()
    assert len(inbox.take_batch(conn, [frame])[1]) == 1


# -- the give-up rules --------------------------------------------------------------------


def _rejection() -> AuthenticationError:
    return AuthenticationError(-32002, "rejected")


def test_a_first_rejection_gives_up_at_once() -> None:
    with pytest.raises(AuthenticationError):
        GiveUp(auth_retries=3, max_unresolved=3).on_rejected(_rejection())


def test_after_a_session_rejections_are_retried_then_raised() -> None:
    policy = GiveUp(auth_retries=2, max_unresolved=3)
    policy.on_ready()
    policy.on_rejected(_rejection())
    policy.on_rejected(_rejection())
    with pytest.raises(AuthenticationError):
        policy.on_rejected(_rejection())
    policy.on_ready()  # a success starts the count over
    policy.on_rejected(_rejection())


def test_dns_failures_have_their_own_limit_before_any_success() -> None:
    policy = GiveUp(auth_retries=0, max_unresolved=2)
    policy.on_transport_error(TransportError("no such host", unresolved=True))
    with pytest.raises(TransportError) as caught:
        policy.on_transport_error(TransportError("no such host", unresolved=True))
    assert caught.value.fatal and caught.value.unresolved
    after = GiveUp(auth_retries=0, max_unresolved=1)
    after.on_ready()  # once a session existed, DNS failures are an outage: retried
    for _ in range(5):
        after.on_transport_error(TransportError("no such host", unresolved=True))


def test_a_resolvable_failure_resets_the_dns_count() -> None:
    policy = GiveUp(auth_retries=0, max_unresolved=2)
    policy.on_transport_error(TransportError("no such host", unresolved=True))
    policy.on_transport_error(TransportError("refused"))
    policy.on_transport_error(TransportError("no such host", unresolved=True))
    policy.on_lost("reset")
    policy.on_transport_error(TransportError("no such host", unresolved=True))


def test_a_fatal_transport_error_gives_up_at_once_even_after_a_session() -> None:
    policy = GiveUp(auth_retries=3, max_unresolved=3)
    policy.on_ready()
    with pytest.raises(TransportError):
        policy.on_transport_error(TransportError("certificate verify failed", fatal=True))
