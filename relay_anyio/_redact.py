"""Scrubbing secrets out of frames before they reach a log.

Only the DEBUG frame log calls this, and only when DEBUG is enabled, so it costs
nothing on the hot path. Two passes, as in the official client: values under
credential-shaped keys anywhere in the frame, then any verbatim occurrence of a live
secret (servers echo project ids into other fields).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

__all__ = ["SECRET_KEYS", "redact_frame"]

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


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (_MASK if k in SECRET_KEYS and isinstance(v, str) else _scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def redact_frame(frame: Any, secrets: Iterable[str] = ()) -> str:
    """Render a frame (parsed or raw) for a log line with every secret masked."""
    if isinstance(frame, bytes | bytearray):
        return f"<binary frame, {len(frame)} bytes>"
    if isinstance(frame, str):
        try:
            frame = json.loads(frame)
        except ValueError:
            return _truncate(_mask_values(frame, secrets))
    text = json.dumps(_scrub(frame), separators=(",", ":"), default=str)
    # Mask before truncating so a secret cut at the boundary cannot show in part.
    return _truncate(_mask_values(text, secrets))


def _truncate(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[:limit] + "...(truncated)"


def _mask_values(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _MASK)
    return text
