"""Scrubbing secrets out of frames before they reach a log.

Only the DEBUG frame log calls this, and only when DEBUG is enabled, so it costs
nothing on the hot path. Two passes, as in the official client: values under
credential-shaped keys anywhere in the frame, then any verbatim occurrence of a live
secret (servers echo project ids into other fields).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["SECRET_KEYS", "redact_frame", "scrub"]

SECRET_KEYS = frozenset(
    {
        "token",
        "project",
        "jwt_token",
        "authorization_state",
        "password",
        "authorization_bearer_token",
        "post_prompt_auth_password",
        "dpop_token",
    }
)
_MASK = "***"


def scrub(value: Any) -> Any:
    """``value`` with every string under a credential-shaped key masked (a copy)."""
    if isinstance(value, dict):
        return {
            k: (_MASK if k in SECRET_KEYS and isinstance(v, str) else scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def redact_frame(frame: Any, secrets: Iterable[str] = ()) -> str:
    """Render a frame (parsed or raw) for a log line with every secret masked."""
    if isinstance(frame, bytes | bytearray):
        return f"<binary frame, {len(frame)} bytes>"
    if isinstance(frame, str):
        try:
            frame = json.loads(frame)
        except (ValueError, RecursionError):  # not JSON, or nested beyond the parser
            return _truncate(_mask_raw(frame, secrets))
    try:
        text = json.dumps(scrub(frame), separators=(",", ":"), default=str)
    except RecursionError:
        return "<frame nested too deeply to render>"
    # Mask before truncating so a secret cut at the boundary cannot show in part.
    return _truncate(_mask_values(text, secrets))


def _truncate(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[:limit] + "...(truncated)"


#: A credential-shaped key followed by a string value, in raw (possibly broken) JSON.
_SECRET_PAIR = re.compile(
    r'("(?:' + "|".join(sorted(SECRET_KEYS)) + r')"\s*:\s*)"(?:\\.|[^"\\])*"?'
)


def _mask_raw(text: str, secrets: Iterable[str]) -> str:
    """Mask text that did not parse: key-shaped pairs (as the official client does),
    then live secrets. A truncated frame can still carry a whole token."""
    return _mask_values(_SECRET_PAIR.sub(r'\1"***"', text), secrets)


def _mask_values(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _MASK)
    return text
