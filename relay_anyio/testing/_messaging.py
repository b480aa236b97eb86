"""The fake server's ``messaging.send``: scripted delivery progress.

By default a message goes ``initiated`` → ``sent`` → ``delivered`` right after the
response, as the reference's transcript shows. ``script_message`` changes the next
message's fate: a failure with a reason, a delay between states, a message that never
reaches a final state (for expiry tests), or state events that overtake the send
response (which RELAY may do, since it knows the id before it answers).
"""

from __future__ import annotations

import uuid
from typing import Any

from .._constants import (
    EVENT_MESSAGING_STATE,
    MESSAGE_STATE_DELIVERED,
    MESSAGE_STATE_FAILED,
    MESSAGE_STATE_INITIATED,
    MESSAGE_STATE_SENT,
    MESSAGE_STATE_UNDELIVERED,
)
from ._calls import CallHost
from ._context import HandlerContext, ResultCodeError, ok
from ._scripts import MessageScript, Outcome

__all__ = ["messaging_send", "script_message"]


def script_message(
    server: CallHost,
    outcome: Outcome = "delivered",
    *,
    reason: str = "",
    delay: float = 0.0,
    early_events: int = 0,
) -> None:
    """Script the fate of the next message sent to ``server`` (queued, one per message)."""
    if outcome in ("undelivered", "failed") and not reason:
        reason = "carrier_rejected" if outcome == "undelivered" else "unknown_error"
    script = MessageScript(outcome, reason, delay, early_events)
    server.message_scripts.append(script)


def _states(script: MessageScript) -> list[str]:
    terminal = {
        "delivered": [MESSAGE_STATE_SENT, MESSAGE_STATE_DELIVERED],
        "undelivered": [MESSAGE_STATE_SENT, MESSAGE_STATE_UNDELIVERED],
        "failed": [MESSAGE_STATE_FAILED],
        "stall": [MESSAGE_STATE_SENT],
    }[script.outcome]
    return [MESSAGE_STATE_INITIATED, *terminal]


async def messaging_send(ctx: HandlerContext, params: dict[str, Any]) -> dict[str, Any]:
    """Accept a message (400 without a number, or without body and media) and script it."""
    for key in ("to_number", "from_number"):
        if not isinstance(params.get(key), str) or not params[key]:
            raise ResultCodeError("400", f"Invalid parameter: {key} is required")
    if not params.get("body") and not params.get("media"):
        raise ResultCodeError("400", "Invalid parameters: body or media is required")
    queue = ctx.server.message_scripts
    script = queue.popleft() if queue else MessageScript()
    message_id = str(uuid.uuid4())
    message = {
        "message_id": message_id,
        "context": params.get("context", "default"),
        "direction": "outbound",
        "from_number": params["from_number"],
        "to_number": params["to_number"],
        "body": params.get("body", ""),
        "media": params.get("media", []),
        "segments": 1,
        "tags": params.get("tags", []),
    }
    for i, state in enumerate(_states(script)):
        event = {**message, "message_state": state}
        if state in (MESSAGE_STATE_UNDELIVERED, MESSAGE_STATE_FAILED):
            event["reason"] = script.reason
        if i < script.early_events:
            await ctx.session.emit(EVENT_MESSAGING_STATE, event)
        elif script.delay:
            ctx.then(_emitter(ctx, event), delay=script.delay * (i + 1 - script.early_events))
        else:
            ctx.emit(EVENT_MESSAGING_STATE, event)
    return ok("Message accepted", message_id=message_id)


def _emitter(ctx: HandlerContext, event: dict[str, Any]) -> Any:
    async def emit() -> None:
        await ctx.session.emit(EVENT_MESSAGING_STATE, event)

    return emit
