"""Strict request validation: which ``calling.*`` requests the fake refuses, and how.

A conformant client never sends a command without the keys the reference marks
required (``shared/relay-protocol.md`` §11.1-11.2), nor a method RELAY does not know.
The fake refuses both, as a real server would, and records them in
``server.violations``. *How* production RELAY refuses them is unconfirmed (§17.5), so
the shape of the refusal is a switch, ``server.invalid_request_reply``:

* ``"jsonrpc_error"``: ``{"error": {"code": -32602, "message": "Invalid params: ..."}}``,
  or ``-32601`` ``"Method not found: ..."`` for an unknown method (§2.3);
* ``"result_400"``: ``{"result": {"code": "400", "message": ...}}`` with the same
  message, the application-level shape of every calling error seen so far (§2.4).

Never a ``200``: a client must turn either into a ``RelayError``.

``REQUIRED_KEYS`` lists, per method, the keys that must be present (and not
``null``): ``node_id`` and ``call_id`` for every call command (all but
``calling.dial``, §11.1), ``control_id`` for every operation and its sub-commands,
then the keys §11.2 marks "(req)". Handlers check the finer shapes (a tap device's
``addr``, DTMF characters...) and refuse through the same ``InvalidRequestError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._switches import InvalidRequestReply

__all__ = ["REQUIRED_KEYS", "InvalidRequestError", "check_request", "refusal"]

JSONObject = dict[str, Any]

_CALL: Final = ("node_id", "call_id")
_OPERATION: Final = (*_CALL, "control_id")


def _call(*keys: str) -> tuple[str, ...]:
    return (*_CALL, *keys)


def _operation(*keys: str) -> tuple[str, ...]:
    return (*_OPERATION, *keys)


#: Keys each method must carry (present, not null), from §11.1 and §11.2 "(req)".
REQUIRED_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "calling.answer": _call(),
    "calling.end": _call(),
    "calling.pass": _call(),
    "calling.dial": ("tag", "devices"),
    "calling.connect": _call("devices"),
    "calling.disconnect": _call(),
    "calling.play": _operation("play"),
    "calling.play.pause": _operation(),
    "calling.play.resume": _operation(),
    "calling.play.stop": _operation(),
    "calling.play.volume": _operation("volume"),
    "calling.record": _operation("record"),
    "calling.record.pause": _operation(),
    "calling.record.resume": _operation(),
    "calling.record.stop": _operation(),
    "calling.play_and_collect": _operation("play", "collect"),
    "calling.play_and_collect.stop": _operation(),
    "calling.play_and_collect.volume": _operation("volume"),
    "calling.collect": _operation(),  # and digits or speech, see _check_collect
    "calling.collect.stop": _operation(),
    "calling.collect.start_input_timers": _operation(),
    "calling.detect": _operation("detect"),
    "calling.detect.stop": _operation(),
    "calling.send_digits": _operation("digits"),
    "calling.tap": _operation("tap", "device"),
    "calling.tap.stop": _operation(),
    "calling.stream": _operation("url"),
    "calling.stream.stop": _operation(),
    "calling.transcribe": _operation(),
    "calling.transcribe.stop": _operation(),
    "calling.send_fax": _operation("document"),
    "calling.send_fax.stop": _operation(),
    "calling.receive_fax": _operation(),
    "calling.receive_fax.stop": _operation(),
    "calling.pay": _operation("payment_connector_url"),
    "calling.pay.stop": _operation(),
    "calling.refer": _call("device"),
    "calling.transfer": _call("dest"),
    "calling.join_conference": _call("name"),
    "calling.leave_conference": _call("conference_id"),
    "calling.join_room": _call("name"),
    "calling.leave_room": _call(),
    "calling.hold": _call(),
    "calling.unhold": _call(),
    "calling.denoise": _call(),
    "calling.denoise.stop": _call(),
    "calling.echo": _call(),
    "calling.queue.enter": _operation("queue_name"),
    "calling.queue.leave": _operation("queue_name"),
    "calling.bind_digit": _call("digits", "bind_method"),
    "calling.clear_digit_bindings": _call(),
    "calling.live_transcribe": _call("action"),
    "calling.live_translate": _call("action"),
    "calling.ai": _operation(),
    "calling.ai.stop": _operation(),
    "calling.amazon_bedrock": _call(),
    "calling.ai_message": _call(),
    "calling.ai_hold": _call(),
    "calling.ai_unhold": _call(),
    "calling.user_event": _call(),
}

_IDS: Final = frozenset(_OPERATION)
#: Payload keys whose JSON type is fixed by the reference (§10).
_OBJECT_KEYS: Final = frozenset({"record", "collect", "detect", "tap", "device"})
_LIST_KEYS: Final = frozenset({"play", "devices"})


class InvalidRequestError(Exception):
    """Raise in a handler to refuse a malformed request (or, internally, an unknown method).

    The server answers in the shape ``server.invalid_request_reply`` selects and
    records a violation: a conformant client never sends such a request.
    """

    def __init__(self, detail: str, *, unknown_method: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.unknown_method = unknown_method

    @property
    def message(self) -> str:
        """``"Method not found: <method>"`` or ``"Invalid params: <detail>"``."""
        prefix = "Method not found" if self.unknown_method else "Invalid params"
        return f"{prefix}: {self.detail}"


def check_request(method: str, params: JSONObject) -> None:
    """Raise ``InvalidRequestError`` if ``params`` lacks a key ``method`` requires.

    Methods missing from ``REQUIRED_KEYS`` (session methods, messaging, custom
    handlers) are not checked here.
    """
    required = REQUIRED_KEYS.get(method)
    if required is None:
        return
    missing = [key for key in required if params.get(key) is None]
    if missing:
        raise InvalidRequestError(f"{', '.join(missing)} required")
    for key in required:
        value = params[key]
        if key in _IDS and (not isinstance(value, str) or not value):
            raise InvalidRequestError(f"{key} must be a non-empty string")
        if key in _OBJECT_KEYS and not isinstance(value, dict):
            raise InvalidRequestError(f"{key} must be an object")
        if key in _LIST_KEYS and not isinstance(value, list):
            raise InvalidRequestError(f"{key} must be a list")
    if method == "calling.collect":
        _check_collect(params, "")
    elif method == "calling.play_and_collect":
        _check_collect(params["collect"], "collect.")


def _check_collect(spec: JSONObject, where: str) -> None:
    """§10.3: at least one of ``digits``/``speech``; ``digits.max`` when digits are."""
    digits, speech = spec.get("digits"), spec.get("speech")
    if digits is None and speech is None:
        raise InvalidRequestError(f"{where}digits or {where}speech required")
    if digits is not None and (not isinstance(digits, dict) or digits.get("max") is None):
        raise InvalidRequestError(f"{where}digits.max required")
    if speech is not None and not isinstance(speech, dict):
        raise InvalidRequestError(f"{where}speech must be an object")


def refusal(error: InvalidRequestError, reply: InvalidRequestReply) -> tuple[str, JSONObject]:
    """``("result", {...})`` or ``("error", {...})``: the body refusing the request."""
    if reply == "result_400":
        return "result", {"code": "400", "message": error.message}
    code = -32601 if error.unknown_method else -32602
    return "error", {"code": code, "message": error.message}
