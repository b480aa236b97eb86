"""Events of actions: one running operation each (play, collect, record, detect...).

Each carries the action's ``control_id`` and a top-level ``state``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, Final, TypeVar

import attrs

from ._envelope import as_float as _as_float
from ._event_base import _StatefulEvent
from ._event_values import (
    CollectResult,
    DetectResult,
    Device,
    _as_int,
    _code,
    _dict,
    _str,
    _structure_value,
)

__all__ = [
    "AIEvent",
    "CollectEvent",
    "DetectEvent",
    "EchoEvent",
    "FaxEvent",
    "HoldEvent",
    "PayEvent",
    "PlayEvent",
    "RecordEvent",
    "ReferEvent",
    "SendDigitsEvent",
    "StreamEvent",
    "TapEvent",
    "TranscribeEvent",
]

_T = TypeVar("_T")


@attrs.frozen
class PlayEvent(_StatefulEvent):
    """``calling.call.play``; ``state`` is playing/paused/finished/error."""


@attrs.frozen
class CollectEvent(_StatefulEvent):
    """``calling.call.collect``: input gathered by ``collect`` / ``play_and_collect``.

    On the wire the input sits at ``result.params`` (``digits``, ``terminator``, or
    ``text``/``confidence`` for speech). ``params`` and ``result`` additionally
    expose those keys directly under ``result``, as the client guide documents.
    """

    @cached_property
    def params(self) -> dict[str, Any]:
        """``raw_params`` with ``result.params.*`` also copied up into ``result``.

        Keys already present in ``result`` (``type``, ``params``...) are never
        overwritten. When there is nothing to add this is ``raw_params`` itself.
        """
        raw = self.raw_params
        result = raw.get("result")
        if not isinstance(result, dict):
            return raw
        inner = result.get("params")
        if not isinstance(inner, dict):
            return raw
        extra = {key: value for key, value in inner.items() if key not in result}
        if not extra:
            return raw
        return {**raw, "result": {**result, **extra}}

    @property
    def result(self) -> dict[str, Any]:
        """``params["result"]``: the wire ``result`` plus its flattened input keys."""
        return _dict(self.params.get("result"))

    @property
    def final(self) -> bool | None:
        """False for interim (partial/continuous) results; None when not sent."""
        value = self.raw_params.get("final")
        return value if isinstance(value, bool) else None

    @property
    def is_final(self) -> bool:
        """True unless the server explicitly marked this result as interim."""
        return self.final is not False

    def _result_value(self, key: str) -> object:
        """``result.params[key]`` (wire shape), else ``result[key]`` (flat shape)."""
        result = self.raw_params.get("result")
        if not isinstance(result, dict):
            return None
        inner = result.get("params")
        if isinstance(inner, dict) and key in inner:
            return inner[key]
        return result.get(key)

    @property
    def result_type(self) -> str:
        """``digit``, ``speech``, ``no_input``, ``no_match`` or ``error``."""
        return _str(_dict(self.raw_params.get("result")).get("type"))

    @property
    def digits(self) -> str:
        return _str(self._result_value("digits"))

    @property
    def terminator(self) -> str:
        """The terminator key that ended digit input, ``""`` if none did."""
        return _str(self._result_value("terminator"))

    @property
    def text(self) -> str:
        """Recognised speech."""
        return _str(self._result_value("text"))

    @property
    def confidence(self) -> float:
        """Speech recognition confidence; 0.0 when not reported."""
        value = _as_float(self._result_value("confidence"))
        return 0.0 if value is None else value

    @cached_property
    def collect_result(self) -> CollectResult | None:
        """The wire ``result`` (unflattened); None when absent or not an object."""
        return _structure_value(self.raw_params.get("result"), CollectResult)


_RECORD_TOP_LEVEL_KEYS: Final = ("url", "duration", "size")


@attrs.frozen
class RecordEvent(_StatefulEvent):
    """``calling.call.record``; ``state`` is recording/paused/finished/no_input.

    ``url``, ``duration`` and ``size`` may arrive inside ``record`` or at the top level;
    the properties read ``record`` first, and ``params`` exposes both places.
    """

    @cached_property
    def params(self) -> dict[str, Any]:
        """``raw_params`` with top-level ``url``/``duration``/``size`` also in ``record``.

        Values already inside ``record`` win. ``record`` is created when it is missing
        and one of those keys exists; a ``record`` that is not an object is left alone
        (a superset never replaces wire data). When there is nothing to add this is
        ``raw_params`` itself.
        """
        raw = self.raw_params
        record = raw.get("record", {})
        if not isinstance(record, dict):
            return raw
        extra = {
            key: raw[key] for key in _RECORD_TOP_LEVEL_KEYS if key in raw and key not in record
        }
        if not extra:
            return raw
        return {**raw, "record": {**record, **extra}}

    @property
    def record(self) -> dict[str, Any]:
        """``params["record"]``: the wire ``record`` plus the top-level result keys."""
        return _dict(self.params.get("record"))

    def _lookup(self, key: str, reader: Callable[[object], _T | None]) -> _T | None:
        raw = self.raw_params
        record = raw.get("record")
        if isinstance(record, dict):
            value = reader(record.get(key))
            if value is not None:
                return value
        return reader(raw.get(key))

    @property
    def url(self) -> str:
        return self._lookup("url", lambda value: _str(value) or None) or ""

    @property
    def duration(self) -> float:
        """Seconds."""
        value = self._lookup("duration", _as_float)
        return 0.0 if value is None else value

    @property
    def size(self) -> int:
        """Bytes."""
        value = self._lookup("size", _as_int)
        return 0 if value is None else value


@attrs.frozen
class DetectEvent(_StatefulEvent):
    """``calling.call.detect``: the outcome is ``detect.params.event``, not ``state``."""

    @property
    def detect(self) -> dict[str, Any]:
        return _dict(self.raw_params.get("detect"))

    @property
    def detect_type(self) -> str:
        """``machine``, ``fax`` or ``digit``."""
        return _str(self.detect.get("type"))

    @property
    def detect_event(self) -> str:
        """``HUMAN``/``MACHINE``/... for machine, ``CED``/``CNG`` for fax, the digit."""
        return _str(_dict(self.detect.get("params")).get("event"))

    @cached_property
    def detect_result(self) -> DetectResult | None:
        return _structure_value(self.raw_params.get("detect"), DetectResult)


@attrs.frozen
class FaxEvent(_StatefulEvent):
    """``calling.call.fax``: ``fax.type`` ``page`` reports progress per page.

    Completion may come as a top-level ``state`` or as ``fax.type`` ``finished``; both
    are readable here.
    """

    @property
    def fax(self) -> dict[str, Any]:
        return _dict(self.raw_params.get("fax"))

    @property
    def fax_type(self) -> str:
        return _str(self.fax.get("type"))


@attrs.frozen
class TapEvent(_StatefulEvent):
    """``calling.call.tap``; ``state`` is tapping/finished."""

    @property
    def tap(self) -> dict[str, Any]:
        return _dict(self.raw_params.get("tap"))

    @property
    def device(self) -> dict[str, Any]:
        return _dict(self.raw_params.get("device"))

    @cached_property
    def device_info(self) -> Device:
        return _structure_value(self.raw_params.get("device"), Device) or Device()


@attrs.frozen
class StreamEvent(_StatefulEvent):
    """``calling.call.stream``; ``state`` is streaming/finished."""

    @property
    def url(self) -> str:
        return _str(self.raw_params.get("url"))

    @property
    def name(self) -> str:
        return _str(self.raw_params.get("name"))


@attrs.frozen
class SendDigitsEvent(_StatefulEvent):
    """``calling.call.send_digits``."""


@attrs.frozen
class ReferEvent(_StatefulEvent):
    """``calling.call.refer``: SIP REFER progress; the response codes are strings."""

    @property
    def sip_refer_to(self) -> str:
        return _str(self.raw_params.get("sip_refer_to"))

    @property
    def sip_refer_response_code(self) -> str:
        return _code(self.raw_params.get("sip_refer_response_code"))

    @property
    def sip_notify_response_code(self) -> str:
        return _code(self.raw_params.get("sip_notify_response_code"))


@attrs.frozen
class HoldEvent(_StatefulEvent):
    """``calling.call.hold``."""


@attrs.frozen
class EchoEvent(_StatefulEvent):
    """``calling.call.echo``."""


@attrs.frozen
class PayEvent(_StatefulEvent):
    """``calling.call.pay``; terminal states are finished/error."""


@attrs.frozen
class TranscribeEvent(_StatefulEvent):
    """``calling.call.transcribe``."""

    @property
    def url(self) -> str:
        return _str(self.raw_params.get("url"))

    @property
    def recording_id(self) -> str:
        return _str(self.raw_params.get("recording_id"))

    @property
    def duration(self) -> float:
        """Seconds."""
        value = _as_float(self.raw_params.get("duration"))
        return 0.0 if value is None else value

    @property
    def size(self) -> int:
        """Bytes."""
        value = _as_int(self.raw_params.get("size"))
        return 0 if value is None else value


@attrs.frozen
class AIEvent(_StatefulEvent):
    """``calling.call.ai``: end of an AI session (shape unconfirmed; ``state`` assumed)."""
