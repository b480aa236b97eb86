"""Pure functions of the session: unit tests, no I/O."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_anyio import ConnectionLost
from relay_anyio._session import _ack, _Connection, _NotSent


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
