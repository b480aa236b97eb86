"""The switches of the fake server: one per behaviour the reference leaves UNCONFIRMED.

The fake server must not agree with a client by construction. Wherever
``shared/relay-protocol.md`` only guesses what production RELAY does, the fake offers
each plausible behaviour behind a plain attribute of ``FakeRelayServer``, so a
client's tests can run against every one of them. This module holds their value
types and the check that turns a misspelt value into an error at the point of use,
not into a silent third behaviour.

| attribute | values (default first) | reference |
|---|---|---|
| ``redeliver_on_resume`` | ``True``, ``False`` | §6.2, §8.2 |
| ``action_end_on_call_end`` | ``"before_ended"``, ``"after_ended"``, ``"never"`` | §6.3 |
| ``late_action_delay`` | seconds, ``0.0`` | §6.3 |
| ``record_url_location`` | ``"both"``, ``"top"``, ``"record"`` | §12.7 |
| ``record_result_url`` | ``True``, ``False`` | §11.2, §11.7 |
| ``invalid_request_reply`` | ``"jsonrpc_error"``, ``"result_400"`` | §17.5, §2.3, §2.4 |
| ``disconnect_close_delay`` | seconds, ``0.05``; ``None`` = never close | §7 |
| ``task_event_shape`` | ``"flat"``, ``"nested"`` | §17.1 (in ``_tasks``) |
| ``task_unrouted`` | ``"drop"``, ``"hold"``, ``"reject"`` | §17.1 (in ``_tasks``) |
| ``task_error_body`` | ``"json"``, ``"text"``, ``"empty"`` | §17.1 (in ``_tasks``) |
| ``sip_header_shape`` | ``"list"``, ``"object"``, ``"omitted"`` | §17.3 |
| ``machine_not_ready`` | ``False``, ``True`` | §17.2 |
| ``detect_end`` | ``"silent"``, ``"finished_event"``, ``"finished_state"`` | §12.8, §17.2 |
| ``bridge_peer_events`` | ``False``, ``True`` | §17.4 (in ``_handlers_bridging``) |
| ``bridge_unconnected_end`` | ``"failed"``, ``"disconnected"``, ``"silent"`` | §12.4 |
| ``bridge_failure_reason`` | ``False``, ``True`` | §12.4 |
"""

from __future__ import annotations

from typing import Final, Literal, TypeVar

__all__ = [
    "ACTION_END_CHOICES",
    "BRIDGE_UNCONNECTED_ENDS",
    "DETECT_ENDS",
    "INVALID_REQUEST_REPLIES",
    "RECORD_URL_LOCATIONS",
    "SIP_HEADER_SHAPES",
    "ActionEnd",
    "BridgeUnconnectedEnd",
    "DetectEnd",
    "InvalidRequestReply",
    "RecordUrlLocation",
    "SipHeaderShape",
    "choice",
]

#: When the terminal events of running actions go out, relative to ``ended``.
ActionEnd = Literal["before_ended", "after_ended", "never"]
ACTION_END_CHOICES: Final[tuple[ActionEnd, ...]] = ("before_ended", "after_ended", "never")

#: Where a finished ``calling.call.record`` carries ``url``/``duration``/``size``.
RecordUrlLocation = Literal["both", "top", "record"]
RECORD_URL_LOCATIONS: Final[tuple[RecordUrlLocation, ...]] = ("both", "top", "record")

#: How the server refuses a malformed request or an unknown method.
InvalidRequestReply = Literal["jsonrpc_error", "result_400"]
INVALID_REQUEST_REPLIES: Final[tuple[InvalidRequestReply, ...]] = ("jsonrpc_error", "result_400")

#: How a SIP device's headers appear in the server's events: the reference's list of
#: ``{"name", "value"}``, an object ``{"X-Name": "value"}``, or not at all.
SipHeaderShape = Literal["list", "object", "omitted"]
SIP_HEADER_SHAPES: Final[tuple[SipHeaderShape, ...]] = ("list", "object", "omitted")

#: What a detector sends after its last result: nothing (it goes quiet), a
#: ``detect.params.event`` ``finished``, or a top-level ``state`` ``finished``.
DetectEnd = Literal["silent", "finished_event", "finished_state"]
DETECT_ENDS: Final[tuple[DetectEnd, ...]] = ("silent", "finished_event", "finished_state")

#: What the server sends when a bridge still ``connecting`` ends (its call ends, or
#: ``calling.disconnect`` calls it off): ``connect_state`` ``failed``,
#: ``disconnected``, or nothing at all.
BridgeUnconnectedEnd = Literal["failed", "disconnected", "silent"]
BRIDGE_UNCONNECTED_ENDS: Final[tuple[BridgeUnconnectedEnd, ...]] = (
    "failed",
    "disconnected",
    "silent",
)

_S = TypeVar("_S", bound=str)


def choice(name: str, value: object, allowed: tuple[_S, ...]) -> _S:
    """``value`` if it is one of ``allowed``; else ValueError naming the switch."""
    for option in allowed:
        if value == option:
            return option
    options = ", ".join(repr(option) for option in allowed)
    raise ValueError(f"FakeRelayServer.{name} must be one of {options}, not {value!r}")
