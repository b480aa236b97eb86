"""``Device``: the device of a call as a typed value, and the builders of wire devices.

One class for one concept. Read side: ``call.device_info``, ``event.device_info`` and
``peer_info.device`` are ``Device`` values structured (with cattrs, leniently) from
the wire's ``{"type": ..., "params": {...}}``, with ``from_``, ``to`` and ``headers``
read the same way for a phone number and a SIP endpoint (the older Python SDK read
only the phone keys, so SIP calls showed ``None``). Write side: ``Device.phone(...)``
and ``Device.sip(...)`` build the wire dict that ``dial``/``connect`` take, so the
name users look for (the TypeScript SDK's ``Device`` builders) is the name they read
back. The builders return plain dicts, not ``Device`` values, because the wire dicts
are what every command takes (the guide's code writes them by hand) and what a
program may store, log or edit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ._builders import check_seconds, check_strings, check_text, header_items
from ._payloads import PhoneDevice, SipDevice, SipHeaderItem

__all__ = ["Device", "SipHeader"]


@attrs.frozen
class SipHeader:
    """One SIP header of a call (``X-Account: 42``); ``Device.sip(headers=...)`` takes these
    too.

    SIP header names are case-insensitive: compare with ``Device.header(name)``.
    """

    name: str
    value: str


def _first_str(params: dict[str, Any], keys: tuple[str, str]) -> str:
    for key in keys:
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _from_of(device: Device) -> str:
    keys = ("from_number", "from") if device.type == "phone" else ("from", "from_number")
    return _first_str(device.params, keys)


def _to_of(device: Device) -> str:
    keys = ("to_number", "to") if device.type == "phone" else ("to", "to_number")
    return _first_str(device.params, keys)


def _header_value(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a number sent as a JSON number is still the header's text
    return None


def _headers_of(device: Device) -> tuple[SipHeader, ...]:
    """The wire's ``headers``: a list of ``{"name", "value"}`` (reference §17.3), or an
    object ``{"X-Name": "value"}`` (the shape is unconfirmed; both are read). Entries
    without a usable name or value are skipped, like every malformed key of an event."""
    raw = device.params.get("headers")
    pairs: Iterable[tuple[object, object]]
    if isinstance(raw, dict):
        pairs = raw.items()
    elif isinstance(raw, list):
        pairs = [(h.get("name"), h.get("value")) for h in raw if isinstance(h, dict)]
    else:
        return ()
    headers: list[SipHeader] = []
    for name, value in pairs:
        text = _header_value(value)
        if isinstance(name, str) and name and text is not None:
            headers.append(SipHeader(name, text))
    return tuple(headers)


@attrs.frozen
class Device:
    """A device: ``{"type": "phone" | "sip" | ..., "params": {...}}`` (see the module doc).

    ``from_``, ``to`` and ``headers`` are derived from ``params`` (``from_number`` /
    ``to_number`` of a phone, ``from`` / ``to`` of SIP and the others, ``""`` when
    absent); ``params`` stays the wire dict, whose keys depend on ``type`` and may
    grow. Like ``params``, the derived fields take part in equality, not in the hash.
    For a call, ``from_`` and ``to`` are the device's own: on an inbound call
    ``from_`` is the caller; on a dialled leg ``from_`` is the caller id you dialled
    with and ``to`` the number or URI you called.
    """

    type: str = ""
    params: dict[str, Any] = attrs.field(factory=dict, hash=False)
    #: The calling side: a phone number or a SIP URI.
    from_: str = attrs.field(
        init=False, hash=False, default=attrs.Factory(_from_of, takes_self=True)
    )
    #: The called side: a phone number or a SIP URI.
    to: str = attrs.field(init=False, hash=False, default=attrs.Factory(_to_of, takes_self=True))
    #: SIP headers, in wire order (empty for phone calls).
    headers: tuple[SipHeader, ...] = attrs.field(
        init=False, hash=False, default=attrs.Factory(_headers_of, takes_self=True)
    )

    def header(self, name: str) -> str | None:
        """The value of the first SIP header called ``name`` (any case), None if absent."""
        wanted = name.lower()
        return next((h.value for h in self.headers if h.name.lower() == wanted), None)

    @staticmethod
    def phone(
        to: str,
        from_: str | None = None,
        *,
        timeout: float | None = None,
        max_duration: int | None = None,
    ) -> PhoneDevice:
        """A phone device: ``{"type": "phone", "params": {"to_number", "from_number"...}}``.

        ``to`` and ``from_`` are E.164 numbers (``from_`` one of yours: the caller id;
        ``connect`` may leave it out). ``timeout``: seconds the leg rings;
        ``max_duration``: seconds it may last.
        """
        device: PhoneDevice = {"type": "phone", "params": {"to_number": check_text("to", to)}}
        params = device["params"]
        if from_ is not None:
            params["from_number"] = check_text("from_", from_)
        if timeout is not None:
            params["timeout"] = check_seconds("timeout", timeout)
        if max_duration is not None:
            params["max_duration"] = _whole_seconds("max_duration", max_duration)
        return device

    @staticmethod
    def sip(
        to: str,
        from_: str | None = None,
        *,
        from_name: str | None = None,
        headers: Mapping[str, str] | Iterable[SipHeaderItem | SipHeader] | None = None,
        codecs: Iterable[str] | None = None,
        timeout: float | None = None,
        max_duration: int | None = None,
        webrtc_media: bool | None = None,
    ) -> SipDevice:
        """A SIP device: ``{"type": "sip", "params": {"to", "from", "headers"...}}``.

        ``to``/``from_`` are SIP URIs (``"sip:bob@example.com"``); ``from_name`` the
        display name. ``headers`` (custom ``X-`` headers) may be a mapping or a list of
        ``{"name", "value"}`` dicts or ``SipHeader``; the wire gets the list form, in
        order. ``codecs``: e.g. ``["PCMU", "OPUS"]``.
        """
        device: SipDevice = {"type": "sip", "params": {"to": check_text("to", to)}}
        params = device["params"]
        if from_ is not None:
            params["from"] = check_text("from_", from_)
        if from_name is not None:
            params["from_name"] = check_text("from_name", from_name)
        if headers is not None:
            params["headers"] = header_items(headers)
        if codecs is not None:
            params["codecs"] = check_strings("codecs", codecs)
        if timeout is not None:
            params["timeout"] = check_seconds("timeout", timeout)
        if max_duration is not None:
            params["max_duration"] = _whole_seconds("max_duration", max_duration)
        if webrtc_media is not None:
            if not isinstance(webrtc_media, bool):
                raise TypeError(f"webrtc_media must be True or False, not {webrtc_media!r}")
            params["webrtc_media"] = webrtc_media
        return device


def _whole_seconds(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number of seconds, not {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0 seconds, not {value}")
    return value
