"""One running operation of a call (``FakeAction``) and the shapes of its events.

Pure functions of an action: what its terminal event carries when a stop, its timer
or its call's end finishes it (a recording's URL, a collect's ``no_input``, a fax's
result...). ``_calls.finish_action`` sends them; the handlers reuse the field sets.
"""

from __future__ import annotations

from typing import Any, Final

import anyio
import attrs

from .._constants import (
    EVENT_CALL_COLLECT,
    EVENT_CALL_FAX,
    EVENT_CALL_RECORD,
    EVENT_CALL_STREAM,
    EVENT_CALL_TAP,
    EVENT_CALL_TRANSCRIBE,
    PLAY_STATE_FINISHED,
)
from ._switches import RECORD_URL_LOCATIONS, RecordUrlLocation, choice

__all__ = [
    "FAKE_MEDIA_HOST",
    "RECORDING_BYTES_PER_SECOND",
    "FakeAction",
    "collect_payload",
    "fax_direction",
    "fax_result",
    "record_finished",
    "recording_url",
    "stream_fields",
    "tap_fields",
    "terminal_payload",
    "transcribe_finished",
]

JSONObject = dict[str, Any]

_TERMINAL_ACTION_STATES: Final = frozenset({"finished", "error", "no_input", "no_match"})
FAKE_MEDIA_HOST: Final = "https://fake-relay.invalid"
RECORDING_BYTES_PER_SECOND: Final = 8000


@attrs.define(eq=False)
class FakeAction:
    """One operation (play, record, collect, detect...) running on a ``FakeCall``.

    ``kind`` is the method that started it; ``event_type`` the event that carries its
    state. Kept after it finishes so late ``stop``/``pause`` requests still find it.
    """

    control_id: str
    kind: str
    event_type: str
    params: JSONObject
    started_at: float
    state: str = ""
    #: The play timer ran out while paused: finish as soon as it is resumed.
    finish_on_resume: bool = False
    #: Units of work done so far (fax pages).
    progress: int = 0

    @property
    def active(self) -> bool:
        return self.state not in _TERMINAL_ACTION_STATES


def terminal_payload(
    action: FakeAction, *, record_url_location: object, device: JSONObject
) -> JSONObject:
    """The event that ends ``action`` while it still runs (a stop, its timer, its call's end).

    ``record_url_location`` is the server's switch (checked only for a recording),
    ``device`` the call's (a fax result names its numbers).
    """
    kind = action.event_type
    if kind == EVENT_CALL_RECORD:
        location = choice("record_url_location", record_url_location, RECORD_URL_LOCATIONS)
        return record_finished(action, location)
    if kind == EVENT_CALL_COLLECT:
        return collect_payload({"type": "no_input"})
    if kind == EVENT_CALL_TAP:
        return {"state": "finished", **tap_fields(action)}
    if kind == EVENT_CALL_STREAM:
        return {"state": "finished", **stream_fields(action)}
    if kind == EVENT_CALL_TRANSCRIBE:
        return transcribe_finished(action)
    if kind == EVENT_CALL_FAX:
        pages = action.progress
        return {"fax": fax_result(device, action, pages, success=False, text="stopped")}
    return {"state": PLAY_STATE_FINISHED}


def record_finished(action: FakeAction, location: RecordUrlLocation) -> JSONObject:
    """A finished recording: ``url``, ``duration`` and ``size`` where ``location`` says.

    The reference (§12.7) has them at the top level of the params or inside
    ``record``, and tells clients to read ``record.*`` first, then the top level:
    ``"both"`` puts them in both places, ``"top"`` and ``"record"`` only in one.
    """
    duration = round(max(0.0, anyio.current_time() - action.started_at), 3)
    url = recording_url(action)
    size = int(duration * RECORDING_BYTES_PER_SECOND)
    record = action.params.get("record")
    audio = record.get("audio", {}) if isinstance(record, dict) else {}
    facts = {"url": url, "duration": duration, "size": size}
    top = facts if location in ("both", "top") else {}
    inner = facts if location in ("both", "record") else {}
    return {"state": "finished", **top, "record": {"audio": audio, **inner}}


def recording_url(action: FakeAction) -> str:
    """Where the fake says a recording is stored (its format's extension)."""
    record = action.params.get("record")
    audio = record.get("audio", {}) if isinstance(record, dict) else {}
    extension = audio.get("format", "mp3") if isinstance(audio, dict) else "mp3"
    return f"{FAKE_MEDIA_HOST}/recordings/{action.control_id}.{extension}"


def collect_payload(result: JSONObject) -> JSONObject:
    """A final ``calling.call.collect``: ``finished`` for input, else the result type."""
    kind = result.get("type")
    state = "finished" if kind in ("digit", "speech") else kind
    return {"result": result, "final": True, "state": state}


def tap_fields(action: FakeAction) -> JSONObject:
    """``tap`` and ``device`` as the request gave them: every tap event repeats them."""
    return {"tap": action.params.get("tap"), "device": action.params.get("device")}


def stream_fields(action: FakeAction) -> JSONObject:
    """``url`` (and ``name``) of the request: every stream event repeats them."""
    fields: JSONObject = {"url": action.params.get("url")}
    if "name" in action.params:
        fields["name"] = action.params["name"]
    return fields


def transcribe_finished(action: FakeAction) -> JSONObject:
    """The ``finished`` of a transcription: its URL, duration and size."""
    duration = round(max(0.0, anyio.current_time() - action.started_at), 3)
    return {
        "state": "finished",
        "url": f"{FAKE_MEDIA_HOST}/transcriptions/{action.control_id}.wav",
        "recording_id": action.control_id,
        "duration": duration,
        "size": int(duration * RECORDING_BYTES_PER_SECOND),
    }


def fax_direction(action: FakeAction) -> str:
    """``send`` or ``receive``, as the fax events name the direction."""
    return "send" if action.kind == "calling.send_fax" else "receive"


def fax_result(
    device: JSONObject, action: FakeAction, pages: int, *, success: bool, text: str
) -> JSONObject:
    """The ``fax`` object of a finished fax (§12.9); ``device`` is the call's."""
    numbers = device.get("params", {})
    numbers = numbers if isinstance(numbers, dict) else {}
    document = action.params.get("document") or f"{FAKE_MEDIA_HOST}/faxes/{action.control_id}.pdf"
    params = {
        "direction": fax_direction(action),
        "identity": action.params.get("identity", numbers.get("to_number", "")),
        "remote_identity": numbers.get("from_number", ""),
        "document": document,
        "success": success,
        "result": "0" if success else "1",
        "result_text": text,
        "pages": pages,
    }
    return {"type": "finished", "params": params}
