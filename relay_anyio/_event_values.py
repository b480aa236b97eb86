"""The lenient readers and nested value objects that event properties return.

Each reader takes a value pulled out of a wire dict and returns it only if it has the
type the caller promises, else the caller's default; the value classes are structured
with cattrs on first access (see ``_event_base`` for why events are lazy).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

__all__ = [
    "EVENT_CONVERTER",
    "CollectResult",
    "DetectResult",
    "Device",
    "DialCallInfo",
    "PeerInfo",
]

_T = TypeVar("_T")

# -- Defensive readers -------------------------------------------------------------------
# Each takes a value pulled out of the wire dict and returns it only if it has the type
# the caller promises; otherwise the caller's default. ``bool`` is excluded from the
# numeric readers because JSON ``true`` must not read as a duration of 1 second.


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _code(value: object) -> str:
    """Result codes are strings on the wire; accept a bare JSON integer as well."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _as_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():  # 128000.0 is still a byte count
        return int(value)
    return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str_list(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    if all(isinstance(item, str) for item in value):
        return value
    return [item for item in value if isinstance(item, str)]


# -- Nested value objects ----------------------------------------------------------------
# Dict-valued fields exclude themselves from hashing so that these frozen objects stay
# hashable (by their scalar fields) while still comparing equal by full value.


@attrs.frozen
class Device:
    """A device object: ``{"type": "phone", "params": {...}}``.

    ``params`` stays a plain dict because its keys depend on ``type`` (phone, sip,
    webrtc, rtp...) and the server may add more.
    """

    type: str = ""
    params: dict[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class CollectResult:
    """``result`` of a collect event: ``type`` is digit/speech/no_input/no_match/error."""

    type: str = ""
    params: dict[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class DetectResult:
    """``detect`` of a detect event; the outcome is ``params["event"]``."""

    type: str = ""
    params: dict[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class PeerInfo:
    """``peer`` of a connect event: the other leg of a bridge."""

    call_id: str = ""
    node_id: str = ""
    tag: str = ""
    device: Device | None = None


@attrs.frozen
class DialCallInfo:
    """``call`` of a dial event: the winning leg when ``dial_winner`` is true."""

    call_id: str = ""
    node_id: str = ""
    tag: str = ""
    device: Device | None = None
    dial_winner: bool = False


#: Converter for everything in this module: the nested value objects above (lenient:
#: unknown keys are ignored, missing or mistyped keys give the field default) and the
#: event classes (``EVENT_CONVERTER.structure(payload, RelayEvent)`` dispatches on
#: ``event_type`` exactly like ``parse_event``).
EVENT_CONVERTER: Final = cattrs.Converter()

_STRUCTURE_ERRORS: Final = (
    cattrs.BaseValidationError,
    TypeError,
    ValueError,
    KeyError,
    AttributeError,
)


def _structure_value(value: object, cls: type[_T]) -> _T | None:
    """Structure a wire dict into ``cls``; anything that is not a usable dict gives None.

    The leniency lives in the per-field hooks; the ``except`` is a backstop so that no
    frame, however odd, turns a property read into an exception.
    """
    if not isinstance(value, dict):
        return None
    try:
        return EVENT_CONVERTER.structure(value, cls)
    except _STRUCTURE_ERRORS:
        return None


def _lenient_str(value: object, _: object) -> str:
    return _str(value)


def _lenient_bool(value: object, _: object) -> bool:
    # No truthiness: the string "false" must not become True.
    return value if isinstance(value, bool) else False


def _lenient_dict(value: object, _: object) -> dict[str, Any]:
    return _dict(value)


def _lenient_device(value: object, _: object) -> Device | None:
    return _structure_value(value, Device)


# Keyed by resolved annotation. Per-field overrides (rather than converter-wide hooks for
# ``str``/``bool``) keep the leniency scoped to these wire objects, so EVENT_CONVERTER
# stays a normal strict converter for anything else registered on it.
_LENIENT_FIELD_HOOKS: Final[dict[object, Callable[[object, object], object]]] = {
    str: _lenient_str,
    bool: _lenient_bool,
    dict[str, Any]: _lenient_dict,
    Device | None: _lenient_device,
}


def _register_value_class(cls: type[Any]) -> None:
    hints = typing.get_type_hints(cls)
    # Typed loosely: cattrs types **overrides against its own keyword options too.
    overrides: dict[str, Any] = {
        field.name: override(struct_hook=_LENIENT_FIELD_HOOKS[hints[field.name]])
        for field in attrs.fields(cls)
    }
    hook = make_dict_structure_fn(cls, EVENT_CONVERTER, **overrides)
    EVENT_CONVERTER.register_structure_hook(cls, hook)


for _value_cls in (Device, CollectResult, DetectResult, PeerInfo, DialCallInfo):
    _register_value_class(_value_cls)
