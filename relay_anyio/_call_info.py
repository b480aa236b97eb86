"""Who a call is from and to, for phone numbers and SIP endpoints alike.

``call.device`` is the wire dict (the guide's property); ``call.device_info`` is the
same device as a typed ``Device`` value, and ``from_``, ``to`` and ``headers`` read
it without ``.get()`` chains or knowing that a phone device says ``from_number`` and
a SIP one ``from``. Inbound calls take the device of their ``calling.call.receive``;
dialled legs that of their first state event (or, failing that, of the dial's
answer).
"""

from __future__ import annotations

from typing import Any

from ._devices import Device, SipHeader
from ._event_values import _structure_value

__all__ = ["CallInfo"]


class CallInfo:
    """The typed view of ``call.device`` (a mixin of ``Call``)."""

    device: dict[str, Any]
    #: (the device dict it was built from, the value): rebuilt when ``device`` is
    #: replaced, so it is structured once per call, not once per read.
    _device_info_cache: tuple[dict[str, Any], Device] | None = None

    @property
    def device_info(self) -> Device:
        """The call's device as a ``Device`` (``type``, ``from_``, ``to``, ``headers``,
        ``params``); an empty ``Device()`` when the server sent none."""
        device = self.device
        cache = self._device_info_cache
        if cache is None or cache[0] is not device:
            info = _structure_value(device, Device) or Device()
            self._device_info_cache = cache = (device, info)
        return cache[1]

    @property
    def from_(self) -> str:
        """The calling party: a phone number (``+15551110000``) or a SIP URI; ``""`` if
        unknown. On a dialled leg, the caller id it was dialled with."""
        return self.device_info.from_

    @property
    def to(self) -> str:
        """The called party: a phone number or a SIP URI; ``""`` if unknown."""
        return self.device_info.to

    @property
    def headers(self) -> tuple[SipHeader, ...]:
        """The SIP headers of the call's device, in order; empty for phone calls."""
        return self.device_info.headers
