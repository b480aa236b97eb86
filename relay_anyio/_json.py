"""The JSON codec: orjson when installed (``relay-anyio[fast]``), else the stdlib.

Parsing every inbound frame and encoding every request and ack is a fixed cost of the
event path; orjson does both about 4x faster (0.48 vs 1.79 us to parse a 316-byte event
on the dev machine). The two produce the same compact JSON for what RELAY sends:
objects, strings, numbers, booleans and null.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["CODEC", "dumps", "loads"]

dumps: Callable[[Any], str]
loads: Callable[[str | bytes], Any]

try:
    import orjson
except ImportError:  # pragma: no cover - depends on the install
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    loads = json.loads
    CODEC = "json"
else:

    def dumps(value: Any) -> str:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()

    loads = orjson.loads
    CODEC = "orjson"
