"""Wire-level constants of the SignalWire RELAY protocol.

Names and values match the official ``signalwire.relay.constants`` module so that code
written against the official SDK (``from signalwire.relay import EVENT_CALL_STATE``)
keeps working when pointed at this package. Two event types the official module lacks
are added (``EVENT_CALL_HOLD``, ``EVENT_CALL_AI``): the official client dispatches both
but never named them. ``AGENT_STRING`` is deliberately absent: this SDK identifies
itself with its own agent string, which belongs next to the connect logic.

Every value here is what goes on (or comes off) the wire; none of them is a tuning
knob that user code is expected to change.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CALL_STATES",
    "CALL_STATE_ANSWERED",
    "CALL_STATE_CREATED",
    "CALL_STATE_ENDED",
    "CALL_STATE_ENDING",
    "CALL_STATE_RINGING",
    "CONNECT_STATE_CONNECTED",
    "CONNECT_STATE_CONNECTING",
    "CONNECT_STATE_DISCONNECTED",
    "CONNECT_STATE_FAILED",
    "DEFAULT_RELAY_HOST",
    "DETECT_TYPE_DIGIT",
    "DETECT_TYPE_FAX",
    "DETECT_TYPE_MACHINE",
    "END_REASON_ABANDONED",
    "END_REASON_BUSY",
    "END_REASON_CANCEL",
    "END_REASON_DECLINE",
    "END_REASON_ERROR",
    "END_REASON_HANGUP",
    "END_REASON_MAX_DURATION",
    "END_REASON_NOT_FOUND",
    "END_REASON_NO_ANSWER",
    "EVENT_AUTHORIZATION_STATE",
    "EVENT_CALLING_ERROR",
    "EVENT_CALL_AI",
    "EVENT_CALL_COLLECT",
    "EVENT_CALL_CONNECT",
    "EVENT_CALL_DENOISE",
    "EVENT_CALL_DETECT",
    "EVENT_CALL_DIAL",
    "EVENT_CALL_ECHO",
    "EVENT_CALL_FAX",
    "EVENT_CALL_HOLD",
    "EVENT_CALL_PAY",
    "EVENT_CALL_PLAY",
    "EVENT_CALL_QUEUE",
    "EVENT_CALL_RECEIVE",
    "EVENT_CALL_RECORD",
    "EVENT_CALL_REFER",
    "EVENT_CALL_SEND_DIGITS",
    "EVENT_CALL_STATE",
    "EVENT_CALL_STREAM",
    "EVENT_CALL_TAP",
    "EVENT_CALL_TRANSCRIBE",
    "EVENT_CONFERENCE",
    "EVENT_MESSAGING_RECEIVE",
    "EVENT_MESSAGING_STATE",
    "MESSAGE_STATE_DELIVERED",
    "MESSAGE_STATE_FAILED",
    "MESSAGE_STATE_INITIATED",
    "MESSAGE_STATE_QUEUED",
    "MESSAGE_STATE_RECEIVED",
    "MESSAGE_STATE_SENT",
    "MESSAGE_STATE_UNDELIVERED",
    "MESSAGE_TERMINAL_STATES",
    "METHOD_SIGNALWIRE_CONNECT",
    "METHOD_SIGNALWIRE_DISCONNECT",
    "METHOD_SIGNALWIRE_EVENT",
    "METHOD_SIGNALWIRE_PING",
    "METHOD_SIGNALWIRE_RECEIVE",
    "METHOD_SIGNALWIRE_UNRECEIVE",
    "PLAY_STATE_ERROR",
    "PLAY_STATE_FINISHED",
    "PLAY_STATE_PAUSED",
    "PLAY_STATE_PLAYING",
    "PROTOCOL_VERSION",
    "RECORD_STATE_FINISHED",
    "RECORD_STATE_NO_INPUT",
    "RECORD_STATE_PAUSED",
    "RECORD_STATE_RECORDING",
]

# -- Session -----------------------------------------------------------------------------

#: Version object sent in ``signalwire.connect``. A plain dict (as in the official SDK) so
#: it serialises with any JSON encoder; treat it as read-only and copy it before
#: embedding it in an outgoing frame that something else might mutate.
PROTOCOL_VERSION: Final[dict[str, int]] = {"major": 2, "minor": 0, "revision": 0}

#: Host used when neither an argument nor ``SIGNALWIRE_SPACE`` names one.
DEFAULT_RELAY_HOST: Final = "relay.signalwire.com"

# -- JSON-RPC methods of the session layer -----------------------------------------------

METHOD_SIGNALWIRE_CONNECT: Final = "signalwire.connect"
METHOD_SIGNALWIRE_EVENT: Final = "signalwire.event"
METHOD_SIGNALWIRE_PING: Final = "signalwire.ping"
METHOD_SIGNALWIRE_DISCONNECT: Final = "signalwire.disconnect"
METHOD_SIGNALWIRE_RECEIVE: Final = "signalwire.receive"
METHOD_SIGNALWIRE_UNRECEIVE: Final = "signalwire.unreceive"

#: Arrives through ``signalwire.event`` and carries the blob needed to resume a session.
EVENT_AUTHORIZATION_STATE: Final = "signalwire.authorization.state"

# -- Call lifecycle ----------------------------------------------------------------------

CALL_STATE_CREATED: Final = "created"
CALL_STATE_RINGING: Final = "ringing"
CALL_STATE_ANSWERED: Final = "answered"
CALL_STATE_ENDING: Final = "ending"
CALL_STATE_ENDED: Final = "ended"

#: Lifecycle order. Code compares positions in this tuple ("is the call at or past
#: answered?"), so the order is part of the contract, not just the membership.
CALL_STATES: Final[tuple[str, ...]] = (
    CALL_STATE_CREATED,
    CALL_STATE_RINGING,
    CALL_STATE_ANSWERED,
    CALL_STATE_ENDING,
    CALL_STATE_ENDED,
)

# ``end_reason`` of an ``ended`` call. The spelling is the server's, including the one
# camelCase value (``noAnswer``) among snake_case ones.
END_REASON_HANGUP: Final = "hangup"
END_REASON_CANCEL: Final = "cancel"
END_REASON_BUSY: Final = "busy"
END_REASON_NO_ANSWER: Final = "noAnswer"
END_REASON_DECLINE: Final = "decline"
END_REASON_ERROR: Final = "error"
END_REASON_ABANDONED: Final = "abandoned"
END_REASON_MAX_DURATION: Final = "max_duration"
END_REASON_NOT_FOUND: Final = "not_found"

# ``connect_state`` of ``calling.call.connect`` (bridging progress).
CONNECT_STATE_CONNECTING: Final = "connecting"
CONNECT_STATE_CONNECTED: Final = "connected"
CONNECT_STATE_DISCONNECTED: Final = "disconnected"
CONNECT_STATE_FAILED: Final = "failed"

# -- Event types (``params.event_type`` of ``signalwire.event``) -------------------------

EVENT_CALL_STATE: Final = "calling.call.state"
EVENT_CALL_RECEIVE: Final = "calling.call.receive"
EVENT_CALL_CONNECT: Final = "calling.call.connect"
EVENT_CALL_PLAY: Final = "calling.call.play"
EVENT_CALL_COLLECT: Final = "calling.call.collect"
EVENT_CALL_RECORD: Final = "calling.call.record"
EVENT_CALL_DETECT: Final = "calling.call.detect"
EVENT_CALL_FAX: Final = "calling.call.fax"
EVENT_CALL_TAP: Final = "calling.call.tap"
EVENT_CALL_SEND_DIGITS: Final = "calling.call.send_digits"
EVENT_CALL_DIAL: Final = "calling.call.dial"
EVENT_CALL_REFER: Final = "calling.call.refer"
EVENT_CALL_DENOISE: Final = "calling.call.denoise"
EVENT_CALL_PAY: Final = "calling.call.pay"
EVENT_CALL_QUEUE: Final = "calling.call.queue"
EVENT_CALL_STREAM: Final = "calling.call.stream"
EVENT_CALL_ECHO: Final = "calling.call.echo"
EVENT_CALL_TRANSCRIBE: Final = "calling.call.transcribe"
EVENT_CALL_HOLD: Final = "calling.call.hold"
#: Completion event of an AI session. Its existence and shape are unconfirmed; the
#: official client only uses the string to recognise the end of ``calling.ai``.
EVENT_CALL_AI: Final = "calling.call.ai"
EVENT_CONFERENCE: Final = "calling.conference"
EVENT_CALLING_ERROR: Final = "calling.error"

EVENT_MESSAGING_RECEIVE: Final = "messaging.receive"
EVENT_MESSAGING_STATE: Final = "messaging.state"

# -- Messaging ---------------------------------------------------------------------------

MESSAGE_STATE_QUEUED: Final = "queued"
MESSAGE_STATE_INITIATED: Final = "initiated"
MESSAGE_STATE_SENT: Final = "sent"
MESSAGE_STATE_DELIVERED: Final = "delivered"
MESSAGE_STATE_UNDELIVERED: Final = "undelivered"
MESSAGE_STATE_FAILED: Final = "failed"
MESSAGE_STATE_RECEIVED: Final = "received"

#: States after which the server sends no further ``messaging.state`` for a message, so
#: waiters resolve and tracking stops.
MESSAGE_TERMINAL_STATES: Final[tuple[str, ...]] = (
    MESSAGE_STATE_DELIVERED,
    MESSAGE_STATE_UNDELIVERED,
    MESSAGE_STATE_FAILED,
)

# -- Action states -----------------------------------------------------------------------

PLAY_STATE_PLAYING: Final = "playing"
PLAY_STATE_PAUSED: Final = "paused"
PLAY_STATE_FINISHED: Final = "finished"
PLAY_STATE_ERROR: Final = "error"

RECORD_STATE_RECORDING: Final = "recording"
RECORD_STATE_PAUSED: Final = "paused"
RECORD_STATE_FINISHED: Final = "finished"
RECORD_STATE_NO_INPUT: Final = "no_input"

# ``detect.type`` of ``calling.detect`` requests and ``calling.call.detect`` events.
DETECT_TYPE_MACHINE: Final = "machine"
DETECT_TYPE_FAX: Final = "fax"
DETECT_TYPE_DIGIT: Final = "digit"
