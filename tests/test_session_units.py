"""Pure functions of the session: unit tests, no I/O."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from relay_anyio._session import _ack


@given(st.one_of(st.text(), st.integers(min_value=-(2**53), max_value=2**53)))
def test_an_ack_is_the_json_rpc_result_for_any_id(fid: str | int) -> None:
    # The fast path writes the id as it is when nothing needs escaping; any other
    # id (quotes, backslashes, control or non-ASCII characters) goes through the
    # JSON encoder. Either way the server must read back exactly the id it sent.
    assert json.loads(_ack(fid)) == {"jsonrpc": "2.0", "id": fid, "result": {}}


def test_an_ack_of_a_uuid_id_is_compact() -> None:
    fid = "0b6a3f2e-5d1c-4c8e-9a41-2f7d6c1e8b90"
    assert _ack(fid) == '{"jsonrpc":"2.0","id":"' + fid + '","result":{}}'
